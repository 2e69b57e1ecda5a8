/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_kubeconfig.h -- kubeconfig files, read the way kubectl reads them, down
 * to the one thing the watcher needs: how to reach and authenticate to the API
 * server of one context.
 *
 * Parsed with libyaml. Several files (a $KUBECONFIG-style list) merge as
 * kubectl merges them: for clusters, users and contexts the first file that
 * defines a name wins; current-context comes from the first file that sets it.
 * Relative paths inside a file (certificate-authority, client-certificate,
 * client-key, tokenFile) resolve against that file's directory.
 *
 * Secrets (token, password, key data) are held in memory only; they never
 * appear in error messages or logs.
 */
#ifndef HEALTH_HC_KUBECONFIG_H
#define HEALTH_HC_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define HC_KUBECONFIG_ERR_MAX 512

struct hc_exec;

/* Everything needed to talk to one context's API server. All strings owned. */
struct hc_kube_target {
    char *context;    /* the context name */
    char *cluster;    /* the cluster name the context refers to */
    char *user;       /* the user name the context refers to */
    char *server;     /* "https://host:port" (no trailing slash) */
    char *namespace_; /* context namespace, NULL when not set */
    /* TLS trust: PEM bytes (from certificate-authority-data, or read from the
     * certificate-authority file at load time), NULL = system trust store. */
    char *ca_pem;
    size_t ca_pem_len;
    bool insecure_skip_tls_verify;
    char *tls_server_name; /* NULL when not set */
    char *proxy_url;       /* NULL when not set */
    /* Credentials (at most one kind is used, in this order): */
    char *token;           /* bearer token (token, or read from tokenFile) */
    char *token_file;      /* path, kept so a rotated token can be re-read */
    char *client_cert_pem; /* client certificate PEM (data or file) */
    size_t client_cert_pem_len;
    char *client_key_pem; /* client key PEM (data or file) */
    size_t client_key_pem_len;
    char *username; /* basic auth */
    char *password;
    /* exec credential plugin (owned), NULL when the user has none. It
     * supplies the token or client certificate at request time. */
    struct hc_exec *exec;
};

/**
 * Loads @paths (a ':'-separated list, as $KUBECONFIG) and resolves @context
 * (NULL = current-context). On failure returns a CM_* code and writes a
 * reason naming the file, context and field into @err, e.g.
 *   "conf/kubeconfig.yaml: context \"jpn\": user \"jpn-admin\": exec: interactiveMode
 *    must be specified for aws-iam-authenticator to use exec authentication plugin"
 *   "conf/kubeconfig.yaml: context \"eur\" not found"
 *   "conf/kubeconfig.yaml: cluster \"usa\": certificate-authority
 *    /x/ca.crt: cannot read: No such file or directory"
 */
int hc_kubeconfig_load(const char *paths, const char *context, struct hc_kube_target **out,
                       char *err, size_t errlen);

/** Wipes the secrets and frees. Accepts NULL. */
void hc_kube_target_free(struct hc_kube_target *t);

/**
 * Whether @a and @b reach the same server the same way: server, trust (CA,
 * insecure, TLS server name), proxy and every credential (an exec plugin by
 * its configuration). A member whose target is the same keeps its watches.
 */
bool hc_kube_target_same(const struct hc_kube_target *a, const struct hc_kube_target *b);

/**
 * A copy of @t (every field, secrets included). NULL on ENOMEM, and for a
 * target with an exec plugin (whose child and cache cannot be shared).
 */
struct hc_kube_target *hc_kube_target_copy(const struct hc_kube_target *t);

/* Flags for hc_kubeconfig_load_mem(). */
#define HC_KUBECONFIG_NO_FILES 0x1u /* referenced files (CA, cert, key, token) are an error */

/**
 * hc_kubeconfig_load() for one kubeconfig held in memory: @len bytes at @data
 * (borrowed, need not be NUL-terminated) are parsed as if read from the file
 * @name, which names it in messages and anchors relative paths. For tests and
 * the fuzz target (which passes HC_KUBECONFIG_NO_FILES so that arbitrary input
 * never opens arbitrary files). Same return codes and @err text.
 */
int hc_kubeconfig_load_mem(const char *name, const char *data, size_t len, const char *context,
                           unsigned flags, struct hc_kube_target **out, char *err, size_t errlen);

#endif /* HEALTH_HC_KUBECONFIG_H */
