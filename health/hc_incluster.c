/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_incluster.c -- client-go's InClusterConfig for fedgslb-health: the
 * server from the service environment variables, the mounted CA and token.
 * Runs at (re)load time only; the token file is read again per request by
 * hc_http.
 */
#include "health/hc_incluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_str.h"
#include "health/hc_kubeconfig.h"

#define SA_FILE_MAX (1024u * 1024)

/* The whole file (NUL-terminated), at most SA_FILE_MAX bytes. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    char *buf = malloc(SA_FILE_MAX + 1);
    size_t n = 0;
    int fd, rc;

    if (buf == NULL)
        return CM_ENOMEM;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        rc = cm_err_from_errno(errno);
        snprintf(err, errlen, "in-cluster: %s: cannot read: %s", path, cm_strerror(rc));
        free(buf);
        return rc;
    }
    rc = cm_file_read_capped(fd, buf, SA_FILE_MAX, &n);
    if (rc != CM_OK)
        snprintf(err, errlen, "in-cluster: %s: cannot read: %s", path, cm_strerror(rc));
    close(fd);
    if (rc == CM_OK && n == SA_FILE_MAX) {
        snprintf(err, errlen, "in-cluster: %s: larger than %u bytes", path, SA_FILE_MAX);
        rc = CM_ETOOBIG;
    }
    if (rc != CM_OK) {
        OPENSSL_cleanse(buf, n);
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return CM_OK;
}

static void trim(char *s, size_t *len)
{
    size_t start = 0, n = *len;

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (start < n && (s[start] == ' ' || s[start] == '\t' || s[start] == '\n'))
        start++;
    memmove(s, s + start, n - start);
    OPENSSL_cleanse(s + n - start, *len - (n - start));
    s[n - start] = '\0';
    *len = n - start;
}

static int server_url(struct hc_kube_target *t, char *err, size_t errlen)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    uint64_t p;
    size_t n;

    if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
        snprintf(err, errlen,
                 "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                 "must be set (is fedgslb-health running in a pod?)");
        return CM_ECONFIG;
    }
    if (!cm_parse_u64(port, 65535, &p) || p == 0 || strpbrk(host, "/@?# []") != NULL) {
        snprintf(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST/PORT do not form a URL");
        return CM_ECONFIG;
    }
    n = strlen(host) + 32;
    t->server = malloc(n);
    if (t->server == NULL)
        return CM_ENOMEM;
    /* client-go: net.JoinHostPort, so an IPv6 address gets brackets. */
    snprintf(t->server, n, strchr(host, ':') != NULL ? "https://[%s]:%u" : "https://%s:%u", host,
             (unsigned)p);
    return CM_OK;
}

static int fill(struct hc_kube_target *t, const char *dir, char *err, size_t errlen)
{
    char *ca = cm_str_join(dir, '/', "ca.crt"), *ns = cm_str_join(dir, '/', "namespace");
    char *buf = NULL;
    size_t len = 0;
    int rc;

    t->token_file = cm_str_join(dir, '/', "token");
    if (ca == NULL || ns == NULL || t->token_file == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    rc = server_url(t, err, errlen);
    if (rc == CM_OK)
        rc = read_file(t->token_file, &t->token, &len, err, errlen);
    if (rc != CM_OK)
        goto out;
    trim(t->token, &len);
    if (len == 0 || strlen(t->token) != len) {
        snprintf(err, errlen, "in-cluster: %s: %s", t->token_file,
                 len == 0 ? "file is empty" : "contains a NUL byte");
        rc = CM_ECONFIG;
        goto out;
    }
    rc = read_file(ca, &t->ca_pem, &t->ca_pem_len, err, errlen);
    if (rc != CM_OK)
        goto out;
    if (strstr(t->ca_pem, "-----BEGIN CERTIFICATE-----") == NULL) {
        snprintf(err, errlen, "in-cluster: %s: no PEM certificate", ca);
        rc = CM_ECONFIG;
        goto out;
    }
    /* The namespace file is optional (client-go falls back to "default"). */
    if (read_file(ns, &buf, &len, err, errlen) == CM_OK) {
        trim(buf, &len);
        t->namespace_ = buf;
        buf = NULL;
    }
    err[0] = '\0';
out:
    free(buf);
    free(ca);
    free(ns);
    return rc;
}

int hc_incluster_load(const char *member, const char *dir, struct hc_kube_target **out, char *err,
                      size_t errlen)
{
    struct hc_kube_target *t = calloc(1, sizeof(*t));
    const char *env = getenv("FEDGSLB_SERVICEACCOUNT_DIR");
    int rc;

    if (dir == NULL)
        dir = env != NULL && env[0] != '\0' ? env : HC_INCLUSTER_DIR;
    if (t == NULL)
        return CM_ENOMEM;
    t->context = strdup(member);
    t->cluster = strdup("in-cluster");
    t->user = strdup("in-cluster");
    if (t->context == NULL || t->cluster == NULL || t->user == NULL)
        rc = CM_ENOMEM;
    else
        rc = fill(t, dir, err, errlen);
    if (rc != CM_OK) {
        hc_kube_target_free(t);
        return rc;
    }
    *out = t;
    return CM_OK;
}
