/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_exec.h -- kubeconfig exec credential plugins (client.authentication.k8s.io
 * v1 and v1beta1 ExecCredential), run the way kubectl runs them, but as a
 * child process driven by the event loop so that a slow or hung plugin never
 * blocks the watches of other members.
 *
 *   IDLE --(first request, refresh timer, 401)--> RUNNING --(exit 0, valid
 *    ^                                               |      ExecCredential)
 *    |                                               v
 *    +---- credential cached until expirationTimestamp, refreshed ahead of it
 *    +---- failure: the error is logged, next run after a backoff
 *
 * The child gets stdin from /dev/null (interactiveMode is never honoured with
 * a terminal: fedgslb-health has none), stdout and stderr on pipes, its own
 * process group, and KUBERNETES_EXEC_INFO. Its stdout is capped at 1 MiB, the
 * run at a timeout (SIGKILL to the group, then reaped). Credentials are wiped
 * before their memory is released and never logged.
 */
#ifndef HEALTH_HC_EXEC_H
#define HEALTH_HC_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct hc_exec;
struct hc_kube_target;

#define HC_EXEC_OUTPUT_MAX (1024u * 1024)
#define HC_EXEC_TIMEOUT_MS 10000u /* default of health.exec_timeout_ms */

enum hc_exec_interactive {
    HC_EXEC_NEVER = 0,        /* interactiveMode: Never */
    HC_EXEC_IF_AVAILABLE = 1, /* IfAvailable (v1beta1 default): run without a terminal */
    HC_EXEC_ALWAYS = 2,       /* Always: refused (no terminal, as kubectl refuses) */
};

/* The exec section of a kubeconfig user. Strings borrowed by hc_exec_new(). */
struct hc_exec_conf {
    const char *context;     /* names the member in messages */
    const char *command;     /* resolved: relative paths with '/' against the file's dir */
    const char *const *args; /* @argc entries */
    size_t argc;
    const char *const *env; /* @envc pairs: name, value, name, value ... */
    size_t envc;            /* number of pairs */
    const char *api_version;
    const char *install_hint; /* NULL when not set */
    enum hc_exec_interactive interactive;
    bool provide_cluster_info;
};

/**
 * A plugin runner (no child yet). Copies @c. NULL on allocation failure.
 * @timeout_ms 0 = HC_EXEC_TIMEOUT_MS.
 */
struct hc_exec *hc_exec_new(const struct hc_exec_conf *c, uint32_t timeout_ms);
/**
 * Sets how long one run may take (health.exec_timeout_ms; 0 =
 * HC_EXEC_TIMEOUT_MS), before hc_exec_start(): it applies from the next run.
 */
void hc_exec_set_timeout(struct hc_exec *x, uint32_t timeout_ms);
/** Kills a running child (SIGKILL, reaped), wipes the credential. Accepts NULL. */
void hc_exec_free(struct hc_exec *x);

/** Called after every run of the plugin, successful or not. */
typedef void hc_exec_done_fn(void *arg, struct hc_exec *x);

/**
 * Binds to @base and @t (both borrowed, must outlive @x; @t supplies
 * KUBERNETES_EXEC_INFO), sets @done (called with @arg after each run; may be
 * NULL) and starts the first run. Idempotent: later calls change nothing.
 * CM_OK or CM_ENOMEM.
 */
int hc_exec_attach(struct hc_exec *x, struct event_base *base, const struct hc_kube_target *t,
                   hc_exec_done_fn *done, void *arg);

/** No usable credential, and a run is in progress that may bring one. */
bool hc_exec_pending(const struct hc_exec *x);

/*
 * The cached credential (borrowed, valid until the event loop runs again),
 * NULL when there is none or it has expired. A run that returns a new one
 * bumps the generation.
 */
const char *hc_exec_token(const struct hc_exec *x);
const char *hc_exec_cert(const struct hc_exec *x, size_t *len);
const char *hc_exec_key(const struct hc_exec *x, size_t *len);
uint64_t hc_exec_generation(const struct hc_exec *x);

/**
 * A request sent with generation @gen was answered 401: the credential is
 * dropped and the plugin runs again, once per generation.
 */
void hc_exec_unauthorized(struct hc_exec *x, uint64_t gen);

/** Same plugin configuration (command, args, env, versions, modes)? NULLs compare equal. */
bool hc_exec_same(const struct hc_exec *a, const struct hc_exec *b);

/** Runs started so far (tests, metrics). */
uint64_t hc_exec_runs(const struct hc_exec *x);

/**
 * Parses an ExecCredential (@len bytes at @json, borrowed) for @api_version.
 * On success the credential is moved into the out-parameters (owned by the
 * caller: wipe before free): a token, or a certificate and key; *expiry 0 =
 * none. On failure writes the reason (no secrets) into @err.
 */
int hc_exec_parse(const char *json, size_t len, const char *api_version, char **token, char **cert,
                  char **key, int64_t *expiry, char *err, size_t errlen);

#endif /* HEALTH_HC_EXEC_H */
