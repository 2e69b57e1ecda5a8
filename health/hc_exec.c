/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_exec.c -- exec credential plugins as non-blocking child processes.
 *
 * One run at a time per plugin. The child is started with posix_spawnp()
 * (stdin /dev/null, stdout and stderr on O_NONBLOCK pipes read by libevent,
 * its own process group); its output is bounded, the run has a deadline after
 * which the whole group gets SIGKILL, and the child is always reaped with
 * waitpid(WNOHANG) polled on a short timer (no SIGCHLD handler: the loop is
 * shared with curl). Every buffer that held a credential is wiped.
 */
#include "health/hc_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_kubeconfig.h"

extern char **environ;

#define STDERR_KEEP      2048u  /* first bytes of the plugin's stderr kept for messages */
#define READ_BUDGET      65536u /* bytes read per wakeup and pipe */
#define REAP_POLL_MS     10u
#define BACKOFF_MIN_MS   1000u
#define BACKOFF_MAX_MS   60000u
#define REFRESH_AHEAD_MS 300000u /* at most 5 minutes before expiry */

enum exec_state {
    EXEC_IDLE = 0,    /* no child */
    EXEC_RUNNING = 1, /* child started, pipes open or not yet reaped */
};

struct hc_exec {
    /* configuration (owned copies) */
    char *context, *command, *api_version, *install_hint;
    char **argv; /* command, args, NULL */
    char **envs; /* "NAME=value" entries of the exec section */
    size_t envc;
    enum hc_exec_interactive interactive;
    bool provide_cluster_info;
    uint32_t timeout_ms;
    /* binding (borrowed) */
    struct event_base *base;
    const struct hc_kube_target *t;
    hc_exec_done_fn *done;
    void *done_arg;
    /* the run in progress */
    enum exec_state state;
    pid_t pid;
    int out_fd, err_fd;
    struct event *out_ev, *err_ev, *deadline, *reap, *refresh; /* owned */
    char *out;                                                 /* owned; stdout, wiped */
    size_t out_len, out_cap;
    char errtxt[STDERR_KEEP + 1];
    size_t err_len;
    bool timed_out, too_big, reaped;
    int wait_status;
    /* the credential (owned, wiped) */
    char *token, *cert, *key;
    size_t cert_len, key_len;
    int64_t expiry; /* wall-clock seconds, 0 = none */
    uint64_t gen, unauth_gen, runs;
    uint32_t backoff_ms;
};

static void wipe_free(char *p, size_t len)
{
    if (p != NULL)
        OPENSSL_cleanse(p, len);
    free(p);
}

static void wipe_str(char **p)
{
    if (*p != NULL)
        wipe_free(*p, strlen(*p));
    *p = NULL;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void hc_exec_set_timeout(struct hc_exec *x, uint32_t timeout_ms)
{
    x->timeout_ms = timeout_ms != 0 ? timeout_ms : HC_EXEC_TIMEOUT_MS;
}

struct hc_exec *hc_exec_new(const struct hc_exec_conf *c, uint32_t timeout_ms)
{
    struct hc_exec *x = calloc(1, sizeof(*x));
    bool ok;

    if (x == NULL)
        return NULL;
    x->out_fd = x->err_fd = -1;
    x->interactive = c->interactive;
    x->provide_cluster_info = c->provide_cluster_info;
    x->timeout_ms = timeout_ms != 0 ? timeout_ms : HC_EXEC_TIMEOUT_MS;
    x->backoff_ms = BACKOFF_MIN_MS;
    x->context = strdup(c->context != NULL ? c->context : "");
    x->command = strdup(c->command);
    x->api_version = strdup(c->api_version);
    x->install_hint = dup_or_null(c->install_hint);
    x->argv = calloc(c->argc + 2, sizeof(char *));
    x->envs = calloc(c->envc + 1, sizeof(char *));
    ok = x->context != NULL && x->command != NULL && x->api_version != NULL &&
         (c->install_hint == NULL || x->install_hint != NULL) && x->argv != NULL && x->envs != NULL;
    if (ok)
        ok = (x->argv[0] = strdup(c->command)) != NULL;
    for (size_t i = 0; ok && i < c->argc; i++)
        ok = (x->argv[i + 1] = strdup(c->args[i])) != NULL;
    for (size_t i = 0; ok && i < c->envc; i++) {
        x->envs[i] = cm_str_join(c->env[2 * i], '=', c->env[2 * i + 1]);
        ok = x->envs[i] != NULL;
        x->envc = i + 1;
    }
    if (!ok) {
        hc_exec_free(x);
        return NULL;
    }
    return x;
}

static void close_pipe(int *fd, struct event **ev)
{
    if (*ev != NULL)
        event_free(*ev);
    *ev = NULL;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void drop_credential(struct hc_exec *x)
{
    wipe_str(&x->token);
    wipe_free(x->cert, x->cert_len);
    wipe_free(x->key, x->key_len);
    x->cert = x->key = NULL;
    x->cert_len = x->key_len = 0;
    x->expiry = 0;
}

static void run_fini(struct hc_exec *x)
{
    close_pipe(&x->out_fd, &x->out_ev);
    close_pipe(&x->err_fd, &x->err_ev);
    wipe_free(x->out, x->out_cap);
    x->out = NULL;
    x->out_len = x->out_cap = 0;
    x->state = EXEC_IDLE;
    x->pid = 0;
}

void hc_exec_free(struct hc_exec *x)
{
    if (x == NULL)
        return;
    if (x->state == EXEC_RUNNING && x->pid > 0 && !x->reaped) {
        kill(-x->pid, SIGKILL);
        /* SIGKILL cannot be caught: the wait is for the kernel, not the plugin. */
        while (waitpid(x->pid, NULL, 0) == -1 && errno == EINTR)
            ;
    }
    run_fini(x);
    drop_credential(x);
    if (x->deadline != NULL)
        event_free(x->deadline);
    if (x->reap != NULL)
        event_free(x->reap);
    if (x->refresh != NULL)
        event_free(x->refresh);
    for (size_t i = 0; x->argv != NULL && x->argv[i] != NULL; i++)
        free(x->argv[i]);
    for (size_t i = 0; i < x->envc; i++)
        wipe_str(&x->envs[i]); /* env values may be secrets */
    free(x->argv);
    free(x->envs);
    free(x->context);
    free(x->command);
    free(x->api_version);
    free(x->install_hint);
    free(x);
}

/* ---- ExecCredential ---------------------------------------------------------- */

/* RFC 3339 (Go's time.RFC3339 as metav1.Time writes it) to Unix seconds. */
static bool parse_rfc3339(const char *s, int64_t *out)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0, sign = 0;
    const char *p;

    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return false;
    p = s + n;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
            return false;
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = (int64_t)timegm(&tm) - (int64_t)sign * (oh * 3600 + om * 60);
    return true;
}

/* The string member @key of @o, copied; its bytes in @o wiped. NULL if absent. */
static int take_secret(json_t *o, const char *key, char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    const char *s;
    size_t len;

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "status.%s is not a string", key);
        return CM_EPARSE;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0)
        return CM_OK;
    *out = strndup(s, len);
    /* jansson owns the buffer: wiped in place before json_decref frees it. */
    OPENSSL_cleanse((char *)(uintptr_t)s, len);
    if (*out == NULL)
        return CM_ENOMEM;
    if (strlen(*out) != len) {
        snprintf(err, errlen, "status.%s contains a NUL byte", key);
        return CM_EPARSE;
    }
    return CM_OK;
}

static bool token_ok(const char *t)
{
    for (const unsigned char *p = (const unsigned char *)t; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return false; /* it goes into an HTTP header */
    }
    return true;
}

static int check_status(json_t *st, char **token, char **cert, char **key, int64_t *expiry,
                        char *err, size_t errlen)
{
    json_t *exp = json_object_get(st, "expirationTimestamp");
    int rc;

    if ((rc = take_secret(st, "token", token, err, errlen)) != CM_OK ||
        (rc = take_secret(st, "clientCertificateData", cert, err, errlen)) != CM_OK ||
        (rc = take_secret(st, "clientKeyData", key, err, errlen)) != CM_OK)
        return rc;
    if ((*cert == NULL) != (*key == NULL)) {
        snprintf(err, errlen, "exec plugin returned %s without %s",
                 *cert != NULL ? "clientCertificateData" : "clientKeyData",
                 *cert != NULL ? "clientKeyData" : "clientCertificateData");
        return CM_EPARSE;
    }
    if (*token == NULL && *cert == NULL) {
        snprintf(err, errlen, "exec plugin didn't return a token or cert/key pair");
        return CM_EPARSE;
    }
    if (*token != NULL && !token_ok(*token)) {
        snprintf(err, errlen, "status.token contains spaces or control characters");
        return CM_EPARSE;
    }
    if (*cert != NULL &&
        (strncmp(*cert, "-----BEGIN ", 11) != 0 || strncmp(*key, "-----BEGIN ", 11) != 0)) {
        snprintf(err, errlen, "status.clientCertificateData/clientKeyData are not PEM");
        return CM_EPARSE;
    }
    *expiry = 0;
    if (exp != NULL && !json_is_null(exp) &&
        (!json_is_string(exp) || !parse_rfc3339(json_string_value(exp), expiry) || *expiry <= 0)) {
        snprintf(err, errlen, "status.expirationTimestamp is not an RFC 3339 time");
        return CM_EPARSE;
    }
    return CM_OK;
}

int hc_exec_parse(const char *json, size_t len, const char *api_version, char **token, char **cert,
                  char **key, int64_t *expiry, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *st;
    const char *av, *kind;
    int rc = CM_EPARSE;

    *token = *cert = *key = NULL;
    if (root == NULL || !json_is_object(root)) {
        /* Not jerr.text: it quotes the input, which may hold the secret. */
        snprintf(err, errlen, "output is not a JSON object (line %d, column %d)", jerr.line,
                 jerr.column);
        goto out;
    }
    av = json_string_value(json_object_get(root, "apiVersion"));
    kind = json_string_value(json_object_get(root, "kind"));
    if (kind == NULL || strcmp(kind, "ExecCredential") != 0) {
        snprintf(err, errlen, "output is not an ExecCredential (kind %.64s)",
                 kind != NULL ? kind : "missing");
        goto out;
    }
    if (av == NULL || strcmp(av, api_version) != 0) {
        snprintf(err, errlen,
                 "exec plugin is configured to use API version %.80s, plugin returned version "
                 "%.80s",
                 api_version, av != NULL ? av : "(none)");
        goto out;
    }
    st = json_object_get(root, "status");
    if (!json_is_object(st)) {
        snprintf(err, errlen, "exec plugin didn't return a status field");
        goto out;
    }
    rc = check_status(st, token, cert, key, expiry, err, errlen);
out:
    json_decref(root);
    if (rc != CM_OK) {
        wipe_str(token);
        wipe_str(cert);
        wipe_str(key);
    }
    return rc;
}

/* ---- the child process --------------------------------------------------------- */

static void run_start(struct hc_exec *x);

static void schedule(struct hc_exec *x, uint64_t ms)
{
    struct timeval tv = cm_ms_to_timeval(ms);

    evtimer_add(x->refresh, &tv);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_start(arg);
}

/* KUBERNETES_EXEC_INFO, as client-go builds it. NULL on ENOMEM. */
static char *exec_info(const struct hc_exec *x)
{
    json_t *spec = json_pack("{s:b}", "interactive", 0);
    json_t *root = json_pack("{s:s, s:s, s:o}", "kind", "ExecCredential", "apiVersion",
                             x->api_version, "spec", spec);
    const struct hc_kube_target *t = x->t;
    char *s = NULL;

    if (root == NULL)
        return NULL;
    if (x->provide_cluster_info && t != NULL) {
        json_t *cl = json_pack("{s:s}", "server", t->server);

        if (cl != NULL && t->tls_server_name != NULL)
            json_object_set_new(cl, "tls-server-name", json_string(t->tls_server_name));
        if (cl != NULL && t->insecure_skip_tls_verify)
            json_object_set_new(cl, "insecure-skip-tls-verify", json_true());
        if (cl != NULL && t->proxy_url != NULL)
            json_object_set_new(cl, "proxy-url", json_string(t->proxy_url));
        if (cl != NULL && t->ca_pem != NULL) {
            size_t n = 4 * ((t->ca_pem_len + 2) / 3) + 1;
            unsigned char *b = malloc(n);

            if (b != NULL) {
                EVP_EncodeBlock(b, (const unsigned char *)t->ca_pem, (int)t->ca_pem_len);
                json_object_set_new(cl, "certificate-authority-data", json_string((char *)b));
            }
            free(b);
        }
        if (cl != NULL)
            json_object_set_new(spec, "cluster", cl);
    }
    s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

/* environ, the exec section's env (which overrides) and KUBERNETES_EXEC_INFO. */
static char **build_env(const struct hc_exec *x, char *info)
{
    size_t n = 0, k = 0;
    char **env;

    while (environ[n] != NULL)
        n++;
    env = calloc(n + x->envc + 2, sizeof(char *));
    if (env == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq != NULL ? (size_t)(eq - environ[i]) + 1 : strlen(environ[i]);
        bool shadowed = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;

        for (size_t j = 0; !shadowed && j < x->envc; j++)
            shadowed = strncmp(environ[i], x->envs[j], nl) == 0;
        if (!shadowed)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < x->envc; j++)
        env[k++] = x->envs[j];
    env[k++] = info;
    env[k] = NULL;
    return env;
}

/* The first lines of stderr, on one line, for a message. */
static void stderr_excerpt(const struct hc_exec *x, char *buf, size_t cap)
{
    size_t o = 0, lines = 0;

    for (size_t i = 0; i < x->err_len && o + 4 < cap && lines < 5; i++) {
        unsigned char c = (unsigned char)x->errtxt[i];

        if (c == '\n') {
            if (i + 1 < x->err_len) {
                buf[o++] = ' ';
                buf[o++] = '|';
                buf[o++] = ' ';
            }
            lines++;
        } else {
            buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
    }
    buf[o] = '\0';
}

static void run_failed(struct hc_exec *x, const char *what)
{
    char excerpt[600];

    stderr_excerpt(x, excerpt, sizeof(excerpt));
    cm_log_error("context=%s command=%s: exec credential plugin failed: %s%s%s", x->context,
                 x->command, what, excerpt[0] != '\0' ? "; stderr: " : "", excerpt);
    schedule(x, x->backoff_ms);
    x->backoff_ms = x->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : x->backoff_ms * 2;
}

static void accept_credential(struct hc_exec *x, char *token, char *cert, char *key, int64_t expiry)
{
    int64_t now = (int64_t)time(NULL);
    uint64_t delay_ms;

    drop_credential(x);
    x->token = token;
    x->cert = cert;
    x->key = key;
    x->cert_len = cert != NULL ? strlen(cert) : 0;
    x->key_len = key != NULL ? strlen(key) : 0;
    x->expiry = expiry;
    x->gen++;
    x->backoff_ms = BACKOFF_MIN_MS;
    if (expiry == 0) {
        cm_log_info("context=%s command=%s: exec credential plugin: new credential, no expiry",
                    x->context, x->command);
        return;
    }
    /* Refresh ahead of expiry: a fifth of the lifetime, at most 5 minutes. */
    delay_ms = expiry > now ? (uint64_t)(expiry - now) * 1000 : 0;
    delay_ms -= delay_ms / 5 < REFRESH_AHEAD_MS ? delay_ms / 5 : REFRESH_AHEAD_MS;
    if (delay_ms < BACKOFF_MIN_MS)
        delay_ms = BACKOFF_MIN_MS;
    cm_log_info("context=%s command=%s: exec credential plugin: new credential, expires in %llds, "
                "refresh in %llums",
                x->context, x->command, (long long)(expiry - now), (unsigned long long)delay_ms);
    schedule(x, delay_ms);
}

static void notify(struct hc_exec *x)
{
    if (x->done != NULL)
        x->done(x->done_arg, x);
}

static void run_finish(struct hc_exec *x)
{
    char err[256], what[512];
    char *token = NULL, *cert = NULL, *key = NULL;
    int64_t expiry = 0;
    int st = x->wait_status;

    event_del(x->deadline);
    event_del(x->reap);
    if (x->timed_out) {
        snprintf(what, sizeof(what), "timed out after %ums (killed)", x->timeout_ms);
    } else if (x->too_big) {
        snprintf(what, sizeof(what), "output exceeds %u bytes (killed)", HC_EXEC_OUTPUT_MAX);
    } else if (WIFSIGNALED(st)) {
        snprintf(what, sizeof(what), "killed by signal %d", WTERMSIG(st));
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(what, sizeof(what), "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    } else if (hc_exec_parse(x->out != NULL ? x->out : "", x->out_len, x->api_version, &token,
                             &cert, &key, &expiry, err, sizeof(err)) != CM_OK) {
        snprintf(what, sizeof(what), "%s", err);
    } else if (expiry != 0 && expiry <= (int64_t)time(NULL)) {
        /* Already expired: using it would only earn 401s; back off instead. */
        wipe_str(&token);
        wipe_str(&cert);
        wipe_str(&key);
        snprintf(what, sizeof(what), "exec plugin returned an expired credential");
    } else {
        run_fini(x);
        accept_credential(x, token, cert, key, expiry);
        notify(x);
        return;
    }
    run_fini(x);
    run_failed(x, what);
    notify(x);
}

static void try_reap(struct hc_exec *x)
{
    struct timeval tv = cm_ms_to_timeval(REAP_POLL_MS);
    int st = 0;
    pid_t p = waitpid(x->pid, &st, WNOHANG);

    if (p == x->pid || (p == -1 && errno == ECHILD)) {
        x->reaped = true;
        x->wait_status = p == x->pid ? st : (1 << 8); /* reaped elsewhere: a failure */
        run_finish(x);
        return;
    }
    evtimer_add(x->reap, &tv); /* pipes closed before exit: poll until it exits */
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    try_reap(arg);
}

static void kill_child(struct hc_exec *x)
{
    kill(-x->pid, SIGKILL);
    /* A grandchild may hold the pipes open: stop reading, then reap. */
    close_pipe(&x->out_fd, &x->out_ev);
    close_pipe(&x->err_fd, &x->err_ev);
    try_reap(x);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct hc_exec *x = arg;

    (void)fd;
    (void)what;
    x->timed_out = true;
    kill_child(x);
}

static bool grow_out(struct hc_exec *x, size_t need)
{
    size_t cap = x->out_cap != 0 ? x->out_cap : 4096;
    char *n;

    while (cap < need)
        cap *= 2;
    if (cap > HC_EXEC_OUTPUT_MAX + 1)
        cap = HC_EXEC_OUTPUT_MAX + 1;
    n = malloc(cap);
    if (n == NULL)
        return false;
    if (x->out != NULL)
        memcpy(n, x->out, x->out_len);
    wipe_free(x->out, x->out_cap); /* no realloc: the old copy would stay unwiped */
    x->out = n;
    x->out_cap = cap;
    return true;
}

/* Reads what one pipe has (a budget per wakeup). Returns false at EOF or error. */
static bool drain(struct hc_exec *x, int fd, bool is_out)
{
    char buf[8192];
    size_t budget = READ_BUDGET;

    while (budget > 0) {
        ssize_t n = read(fd, buf, sizeof(buf));

        if (n == -1 && (errno == EAGAIN || errno == EINTR))
            return true;
        if (n <= 0)
            return false;
        budget -= (size_t)n < budget ? (size_t)n : budget;
        if (!is_out) {
            size_t k = (size_t)n < STDERR_KEEP - x->err_len ? (size_t)n : STDERR_KEEP - x->err_len;

            memcpy(x->errtxt + x->err_len, buf, k);
            x->err_len += k;
            continue;
        }
        if (x->out_len + (size_t)n > HC_EXEC_OUTPUT_MAX ||
            (x->out_len + (size_t)n + 1 > x->out_cap && !grow_out(x, x->out_len + (size_t)n + 1))) {
            OPENSSL_cleanse(buf, sizeof(buf));
            x->too_big = true;
            return false;
        }
        memcpy(x->out + x->out_len, buf, (size_t)n);
        x->out_len += (size_t)n;
        x->out[x->out_len] = '\0';
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return true;
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    struct hc_exec *x = arg;
    bool is_out = fd == x->out_fd;

    (void)what;
    if (x->state != EXEC_RUNNING)
        return;
    if (drain(x, fd, is_out))
        return;
    if (x->too_big) {
        kill_child(x);
        return;
    }
    if (is_out)
        close_pipe(&x->out_fd, &x->out_ev);
    else
        close_pipe(&x->err_fd, &x->err_ev);
    if (x->out_fd < 0 && x->err_fd < 0)
        try_reap(x);
}

/* posix_spawnp() with stdin /dev/null, stdout and stderr on the pipes, a new
 * process group and default signal handling. CM_OK or a CM_* code. */
static int spawn(struct hc_exec *x, int out_w, int err_w, char **env)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    int e;

    if (posix_spawn_file_actions_init(&fa) != 0)
        return CM_ENOMEM;
    if (posix_spawnattr_init(&at) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return CM_ENOMEM;
    }
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGHUP);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    /* Nothing else of ours (API sockets, the control listener) reaches the plugin. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    e = posix_spawnp(&x->pid, x->command, &fa, &at, x->argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return e == 0 ? CM_OK : cm_err_from_errno(e);
}

static void spawn_failed(struct hc_exec *x, int rc)
{
    char what[1024];

    if (rc == CM_ENOENT || rc == CM_EACCES) {
        /* kubectl's wording, with the installHint when the section has one. */
        snprintf(what, sizeof(what), "executable %s %s%s%s", x->command,
                 rc == CM_ENOENT ? "not found" : "not executable",
                 x->install_hint != NULL ? "; It looks like you are trying to use a client-go "
                                           "credential plugin that is not installed. "
                                         : "",
                 x->install_hint != NULL ? x->install_hint : "");
        for (char *p = what; *p != '\0'; p++) {
            if (*p == '\n' || *p == '\r' || *p == '\t')
                *p = ' ';
        }
    } else {
        snprintf(what, sizeof(what), "cannot start: %s", cm_strerror(rc));
    }
    run_failed(x, what);
}

static void run_start(struct hc_exec *x)
{
    struct timeval tv = cm_ms_to_timeval(x->timeout_ms);
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    char *info = NULL, *info_env = NULL, **env = NULL;
    int rc = CM_ENOMEM;

    if (x->state == EXEC_RUNNING || x->base == NULL)
        return;
    event_del(x->refresh);
    x->err_len = 0;
    x->timed_out = x->too_big = x->reaped = false;
    info = exec_info(x);
    info_env = info != NULL ? cm_str_join("KUBERNETES_EXEC_INFO", '=', info) : NULL;
    env = info_env != NULL ? build_env(x, info_env) : NULL;
    if (env == NULL)
        goto out;
    if (pipe2(out, O_CLOEXEC) == -1 || pipe2(err, O_CLOEXEC) == -1) {
        rc = cm_err_from_errno(errno);
        goto out;
    }
    rc = spawn(x, out[1], err[1], env);
    if (rc != CM_OK)
        goto out;
    x->runs++;
    x->state = EXEC_RUNNING;
    x->out_fd = out[0];
    x->err_fd = err[0];
    out[0] = err[0] = -1;
    fcntl(x->out_fd, F_SETFL, O_NONBLOCK);
    fcntl(x->err_fd, F_SETFL, O_NONBLOCK);
    x->out_ev = event_new(x->base, x->out_fd, EV_READ | EV_PERSIST, on_pipe, x);
    x->err_ev = event_new(x->base, x->err_fd, EV_READ | EV_PERSIST, on_pipe, x);
    evtimer_add(x->deadline, &tv);
    if (x->out_ev == NULL || x->err_ev == NULL) {
        kill_child(x); /* reaped and reported through run_finish() */
        rc = CM_OK;
        goto out;
    }
    event_add(x->out_ev, NULL);
    event_add(x->err_ev, NULL);
    cm_log_debug("context=%s command=%s: exec credential plugin started pid=%ld", x->context,
                 x->command, (long)x->pid);
out:
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
    free(env);
    free(info);
    free(info_env);
    if (rc != CM_OK)
        spawn_failed(x, rc);
}

int hc_exec_attach(struct hc_exec *x, struct event_base *base, const struct hc_kube_target *t,
                   hc_exec_done_fn *done, void *arg)
{
    if (x->base != NULL)
        return CM_OK;
    x->done = done;
    x->done_arg = arg;
    x->deadline = evtimer_new(base, on_deadline, x);
    x->reap = evtimer_new(base, on_reap, x);
    x->refresh = evtimer_new(base, on_refresh, x);
    if (x->deadline == NULL || x->reap == NULL || x->refresh == NULL)
        return CM_ENOMEM;
    x->base = base;
    x->t = t;
    run_start(x);
    return CM_OK;
}

static bool fresh(const struct hc_exec *x)
{
    return x->expiry == 0 || (int64_t)time(NULL) < x->expiry;
}

bool hc_exec_pending(const struct hc_exec *x)
{
    return x->state == EXEC_RUNNING && !(fresh(x) && (x->token != NULL || x->cert != NULL));
}

const char *hc_exec_token(const struct hc_exec *x)
{
    return fresh(x) ? x->token : NULL;
}

const char *hc_exec_cert(const struct hc_exec *x, size_t *len)
{
    *len = x->cert_len;
    return fresh(x) ? x->cert : NULL;
}

const char *hc_exec_key(const struct hc_exec *x, size_t *len)
{
    *len = x->key_len;
    return fresh(x) ? x->key : NULL;
}

uint64_t hc_exec_generation(const struct hc_exec *x)
{
    return x->gen;
}

uint64_t hc_exec_runs(const struct hc_exec *x)
{
    return x->runs;
}

void hc_exec_unauthorized(struct hc_exec *x, uint64_t gen)
{
    if (gen != x->gen || gen == x->unauth_gen || x->state == EXEC_RUNNING)
        return;
    if (x->token == NULL && x->cert == NULL && evtimer_pending(x->refresh, NULL))
        return; /* a failed run is waiting out its backoff */
    x->unauth_gen = gen;
    cm_log_info("context=%s command=%s: credential rejected (401); running the exec plugin again",
                x->context, x->command);
    drop_credential(x);
    run_start(x);
}

static bool same_opt(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool hc_exec_same(const struct hc_exec *a, const struct hc_exec *b)
{
    size_t i;

    if (a == NULL || b == NULL)
        return a == b;
    if (strcmp(a->command, b->command) != 0 || strcmp(a->api_version, b->api_version) != 0 ||
        !same_opt(a->install_hint, b->install_hint) || a->interactive != b->interactive ||
        a->provide_cluster_info != b->provide_cluster_info || a->envc != b->envc ||
        a->timeout_ms != b->timeout_ms)
        return false;
    for (i = 0; a->argv[i] != NULL && b->argv[i] != NULL; i++) {
        if (strcmp(a->argv[i], b->argv[i]) != 0)
            return false;
    }
    if (a->argv[i] != b->argv[i])
        return false;
    for (i = 0; i < a->envc; i++) {
        if (strcmp(a->envs[i], b->envs[i]) != 0)
            return false;
    }
    return true;
}
