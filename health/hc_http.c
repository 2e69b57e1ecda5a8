/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_http.c -- libcurl multi_socket on libevent (curl docs/examples/
 * multi-event.c): curl tells us which sockets to watch (socket callback) and
 * when to call it back (timer callback); libevent tells curl what happened
 * through curl_multi_socket_action(); finished transfers are collected with
 * curl_multi_info_read() after every action.
 *
 * Invariant: a request is in h->reqs exactly while its easy handle is added
 * to the multi handle. Done callbacks run after the request left both.
 */
#include "health/hc_http.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_exec.h"
#include "health/hc_kubeconfig.h"

#define TLS_DRAIN_MAX 64 /* socket actions per wakeup for records OpenSSL holds */

struct hc_http {
    struct event_base *base;  /* borrowed */
    CURLM *multi;             /* owned */
    struct event *timer;      /* owned: curl's single timeout */
    struct hc_http_req *reqs; /* owned list of requests in flight */
    size_t active;
    uint64_t
        freed; /* requests freed so far: an easy handle noted before a call may be gone after */
    struct cm_log_ratelimit token_rl; /* unreadable tokenFile warnings */
};

struct hc_http_req {
    struct hc_http *h;             /* borrowed */
    CURL *easy;                    /* owned */
    struct curl_slist *headers;    /* owned; holds the bearer token: wiped on free */
    struct curl_slist *connect_to; /* owned; CURLOPT_CONNECT_TO, NULL if none */
    struct hc_http_opts o;
    struct hc_exec *exec; /* borrowed from the target: told about a 401 */
    uint64_t exec_gen;    /* the plugin credential this request carried */
    /* Parked until the exec plugin's run ends (no easy handle yet): */
    const struct hc_kube_target *wait_t; /* borrowed */
    char *wait_url;                      /* owned; non-NULL while parked */
    bool aborted;
    char errbuf[CURL_ERROR_SIZE];
    struct hc_http_req *prev, *next;
};

/* Per-socket state, attached with curl_multi_assign(). */
struct sock_ctx {
    struct hc_http *h;
    curl_socket_t fd;
    struct event *ev; /* owned */
    CURL *easy;       /* borrowed: the transfer curl last named for the socket */
};

static void check_multi_info(struct hc_http *h);

static void req_unlink(struct hc_http_req *r)
{
    struct hc_http *h = r->h;

    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    h->active--;
}

/* Header lists may hold an Authorization header: wiped before freeing. */
static void wipe_headers(struct curl_slist *headers)
{
    for (struct curl_slist *s = headers; s != NULL; s = s->next)
        OPENSSL_cleanse(s->data, strlen(s->data));
    curl_slist_free_all(headers);
}

static void req_free(struct hc_http_req *r)
{
    r->h->freed++;
    /* The easy handle first: it still points at both lists. */
    curl_easy_cleanup(r->easy);
    free(r->wait_url);
    wipe_headers(r->headers);
    curl_slist_free_all(r->connect_to);
    free(r);
}

/* Whether OpenSSL holds received records of @easy's connection not read yet. */
static bool tls_pending(CURL *easy)
{
    struct curl_tlssessioninfo *ti = NULL;

    if (curl_easy_getinfo(easy, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || ti == NULL ||
        ti->backend != CURLSSLBACKEND_OPENSSL || ti->internals == NULL)
        return false;
    return SSL_has_pending(ti->internals) == 1;
}

/*
 * TLS connections read ahead (on_ssl_ctx): one recv takes every record that
 * arrived, where OpenSSL would otherwise read a header and a body per record.
 * curl 7.88 then stops once the current record is consumed (SSL_pending),
 * leaving whole records buffered with nothing left on the socket to wake it:
 * a watch event would wait for the next one. So, after curl read from the
 * socket, it is asked again while OpenSSL holds records (at most
 * TLS_DRAIN_MAX times; the socket stays watched for anything after).
 */
static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct sock_ctx *sc = arg;
    struct hc_http *h = sc->h;
    CURL *easy = sc->easy; /* sc may be freed by the action: nothing of it is used after */
    uint64_t freed = h->freed;
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;

    curl_multi_socket_action(h->multi, fd, action, &running);
    for (int i = 0; i < TLS_DRAIN_MAX && easy != NULL && h->freed == freed && tls_pending(easy);
         i++)
        curl_multi_socket_action(h->multi, fd, CURL_CSELECT_IN, &running);
    check_multi_info(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hc_http *h = arg;
    int running = 0;

    (void)fd;
    (void)what;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    struct hc_http *h = arg;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    tv = cm_ms_to_timeval((uint64_t)timeout_ms);
    /* 0 means "call socket_action now": the loop runs it on its next turn. */
    return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct hc_http *h = arg;
    struct sock_ctx *sc = sockp;
    short kind;

    if (what == CURL_POLL_REMOVE) {
        if (sc != NULL) {
            event_free(sc->ev);
            free(sc);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                   EV_PERSIST);
    if (sc == NULL) {
        sc = calloc(1, sizeof(*sc));
        if (sc == NULL)
            return -1;
        sc->h = h;
        sc->fd = s;
        curl_multi_assign(h->multi, s, sc);
    } else {
        event_free(sc->ev);
    }
    sc->easy = easy;
    sc->ev = event_new(h->base, s, kind, on_socket_event, sc);
    if (sc->ev == NULL || event_add(sc->ev, NULL) != 0)
        return -1;
    return 0;
}

static int map_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_OK:
        return CM_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return CM_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return CM_ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY:
        return CM_ENOMEM;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return CM_EACCES;
    default:
        return CM_EIO;
    }
}

static void check_multi_info(struct hc_http *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct hc_http_req *r = NULL;
        struct hc_http_opts o;
        char reason[CURL_ERROR_SIZE];
        long status = 0;
        bool aborted;
        int rc;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        rc = map_curl(msg->data.result);
        cm_strlcpy(reason, r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(msg->data.result),
                   sizeof(reason));
        o = r->o;
        aborted = r->aborted;
        if (r->exec != NULL && status == 401)
            hc_exec_unauthorized(r->exec, r->exec_gen);
        if (o.on_info != NULL)
            o.on_info(o.arg, msg->easy_handle);
        curl_multi_remove_handle(h->multi, r->easy);
        req_unlink(r);
        req_free(r);
        if (o.on_done != NULL)
            o.on_done(o.arg, rc, status, aborted, reason);
    }
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct hc_http_req *r = arg;
    size_t n = size * nmemb;
    long status = 0;

    if (r->o.on_data == NULL)
        return n;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->o.on_data(r->o.arg, status, ptr, n) != 0) {
        r->aborted = true;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    return n;
}

struct hc_http *hc_http_new(struct event_base *base)
{
    struct hc_http *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->base = base;
    h->token_rl = (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(1, 60);
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, on_timer, h);
    if (h->multi == NULL || h->timer == NULL) {
        hc_http_free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return h;
}

void hc_http_free(struct hc_http *h)
{
    if (h == NULL)
        return;
    while (h->reqs != NULL)
        hc_http_req_cancel(h->reqs);
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    if (h->timer != NULL)
        event_free(h->timer);
    free(h);
}

void hc_http_req_cancel(struct hc_http_req *r)
{
    if (r == NULL)
        return;
    if (r->easy != NULL)
        curl_multi_remove_handle(r->h->multi, r->easy);
    req_unlink(r);
    req_free(r);
}

size_t hc_http_active(const struct hc_http *h)
{
    return h->active;
}

/* Every TLS connection reads ahead: see on_socket_event(). */
static CURLcode on_ssl_ctx(CURL *e, void *ctx, void *arg)
{
    (void)e;
    (void)arg;
    SSL_CTX_set_read_ahead((SSL_CTX *)ctx, 1);
    return CURLE_OK;
}

static int set_tls(CURL *e, const struct hc_kube_target *t)
{
    struct curl_blob b;
    CURLcode cc = CURLE_OK;
    const char *cert = t->client_cert_pem, *key = t->client_key_pem;
    size_t cert_len = t->client_cert_pem_len, key_len = t->client_key_pem_len;

    if (t->ca_pem != NULL) {
        b = (struct curl_blob){.data = t->ca_pem, .len = t->ca_pem_len, .flags = CURL_BLOB_COPY};
        cc = curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    }
    if (cc == CURLE_OK && t->insecure_skip_tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        cc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (t->exec != NULL && hc_exec_cert(t->exec, &cert_len) != NULL) {
        cert = hc_exec_cert(t->exec, &cert_len); /* the plugin's pair beats the file's */
        key = hc_exec_key(t->exec, &key_len);
    }
    if (cc == CURLE_OK && cert != NULL && key != NULL) {
        b = (struct curl_blob){
            .data = (void *)(uintptr_t)cert, .len = cert_len, .flags = CURL_BLOB_COPY};
        cc = curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
        curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        if (cc == CURLE_OK) {
            b = (struct curl_blob){
                .data = (void *)(uintptr_t)key, .len = key_len, .flags = CURL_BLOB_COPY};
            cc = curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
            curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
        }
    }
    if (cc == CURLE_OK && t->proxy_url != NULL)
        cc = curl_easy_setopt(e, CURLOPT_PROXY, t->proxy_url);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
    return cc == CURLE_OK ? CM_OK : CM_EINVAL;
}

/*
 * tls-server-name: libcurl 7.88 has no option for "verify and send SNI for
 * this name, but connect to that host". The URL's host is what curl uses for
 * both, so the request goes to https://<tls-server-name>:<port>/... with
 * CURLOPT_CONNECT_TO pointing that name at the real server, and an explicit
 * Host header keeps what the API server expects. @url is replaced by the
 * rewritten one (owned by the caller, free with curl_free()).
 */
static int set_server_name(const struct hc_kube_target *t, const char *url, char **rewritten,
                           struct curl_slist **headers, struct curl_slist **connect_to)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    char line[1024];
    struct curl_slist *l;
    int rc = CM_EINVAL;

    *rewritten = NULL;
    if (u == NULL)
        return CM_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    snprintf(line, sizeof(line), "%s:%s:%s:%s", t->tls_server_name, port, host, port);
    *connect_to = curl_slist_append(NULL, line);
    snprintf(line, sizeof(line), "Host: %s:%s", host, port);
    l = curl_slist_append(*headers, line);
    if (*connect_to == NULL || l == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    *headers = l;
    if (curl_url_set(u, CURLUPART_HOST, t->tls_server_name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, rewritten, 0) != CURLUE_OK)
        goto out;
    rc = CM_OK;
out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

#define TOKEN_FILE_MAX 16384

/*
 * The bearer token for this request. A tokenFile is read again for every
 * request (projected service-account tokens rotate while we run); when it
 * cannot be read the token loaded at start is used. @buf is wiped by the
 * caller.
 */
static const char *current_token(struct hc_http *h, const struct hc_kube_target *t, char *buf,
                                 size_t cap)
{
    size_t len = 0, start = 0;
    int fd;

    if (t->exec != NULL)
        return hc_exec_token(t->exec); /* NULL until the plugin delivered */
    if (t->token_file == NULL)
        return t->token;
    fd = open(t->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto fallback;
    /* a read error keeps what was read before it: the checks below judge it */
    (void)cm_file_read_capped(fd, buf, cap - 1, &len);
    close(fd);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    while (start < len && (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\n'))
        start++;
    buf[len] = '\0';
    if (start < len && memchr(buf + start, '\0', len - start) == NULL)
        return buf + start;
fallback:
    cm_log_ratelimited(
        &h->token_rl, CM_LOG_WARN,
        "context %s: tokenFile %s unreadable or empty; using the token read at start", t->context,
        t->token_file);
    return t->token;
}

static int auth_headers(struct hc_http *h, CURL *e, const struct hc_kube_target *t,
                        struct curl_slist **headers)
{
    struct curl_slist *l;
    char tokbuf[TOKEN_FILE_MAX];
    const char *token;
    int rc = CM_OK;

    l = curl_slist_append(*headers, "Accept: application/json");
    if (l == NULL)
        return CM_ENOMEM;
    *headers = l;
    token = current_token(h, t, tokbuf, sizeof(tokbuf));
    if (token != NULL) {
        size_t n = strlen(token) + sizeof("Authorization: Bearer ");
        char *hdr = malloc(n);

        if (hdr == NULL) {
            rc = CM_ENOMEM;
            goto out;
        }
        snprintf(hdr, n, "Authorization: Bearer %s", token);
        l = curl_slist_append(*headers, hdr);
        OPENSSL_cleanse(hdr, n);
        free(hdr);
        if (l == NULL) {
            rc = CM_ENOMEM;
            goto out;
        }
        *headers = l;
    } else if (t->username != NULL && t->client_cert_pem == NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, t->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, t->password != NULL ? t->password : "");
    }
out:
    OPENSSL_cleanse(tokbuf, sizeof(tokbuf));
    return rc;
}

/* Hands @easy (taken, with both lists) to the multi handle for @r. */
static int req_launch(struct hc_http_req *r, CURL *easy, struct curl_slist *headers,
                      struct curl_slist *connect_to)
{
    const struct hc_http_opts *o = &r->o;

    r->easy = easy;
    r->headers = headers;
    r->connect_to = connect_to;
    if (connect_to != NULL)
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    if (headers != NULL)
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    return curl_multi_add_handle(r->h->multi, easy) == CURLM_OK ? CM_OK : CM_ENOMEM;
}

static struct hc_http_req *req_new(struct hc_http *h, const struct hc_http_opts *o)
{
    struct hc_http_req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->h = h;
    r->o = *o;
    r->next = h->reqs;
    if (h->reqs != NULL)
        h->reqs->prev = r;
    h->reqs = r;
    h->active++;
    return r;
}

int hc_http_start(struct hc_http *h, CURL *easy, struct curl_slist *headers,
                  struct curl_slist *connect_to, const struct hc_http_opts *o,
                  struct hc_http_req **out)
{
    struct hc_http_req *r = req_new(h, o);

    if (r == NULL) {
        wipe_headers(headers);
        curl_slist_free_all(connect_to);
        curl_easy_cleanup(easy);
        return CM_ENOMEM;
    }
    if (req_launch(r, easy, headers, connect_to) != CM_OK) {
        req_unlink(r);
        req_free(r);
        return CM_ENOMEM;
    }
    if (out != NULL)
        *out = r;
    return CM_OK;
}

/* An easy handle for GET @url against @t, with TLS and credentials as of now. */
static int build_get(struct hc_http *h, const struct hc_kube_target *t, const char *url, CURL **out,
                     struct curl_slist **headers, struct curl_slist **connect_to)
{
    char *rewritten = NULL;
    CURL *e = curl_easy_init();
    int rc;

    *headers = *connect_to = NULL;
    if (e == NULL)
        return CM_ENOMEM;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "fedgslb-health/0.1");
    rc = set_tls(e, t);
    if (rc == CM_OK && t->tls_server_name != NULL)
        rc = set_server_name(t, url, &rewritten, headers, connect_to);
    if (rc == CM_OK)
        rc = auth_headers(h, e, t, headers);
    if (rc == CM_OK)
        curl_easy_setopt(e, CURLOPT_URL, rewritten != NULL ? rewritten : url);
    curl_free(rewritten);
    if (rc != CM_OK) {
        wipe_headers(*headers);
        curl_slist_free_all(*connect_to);
        *headers = *connect_to = NULL;
        curl_easy_cleanup(e);
        return rc;
    }
    *out = e;
    return CM_OK;
}

/* Builds and launches @r (parked or new); on failure @r is still linked. */
static int req_go(struct hc_http_req *r, const struct hc_kube_target *t, const char *url)
{
    struct curl_slist *headers, *connect_to;
    CURL *e = NULL;
    int rc;

    r->exec = t->exec;
    r->exec_gen = t->exec != NULL ? hc_exec_generation(t->exec) : 0;
    rc = build_get(r->h, t, url, &e, &headers, &connect_to);
    if (rc == CM_OK)
        rc = req_launch(r, e, headers, connect_to);
    return rc;
}

/*
 * The exec plugin of some target finished a run: the requests parked for it
 * go out now, with the new credential (or without one after a failed run,
 * to meet the usual 401 path). A request that cannot start completes with
 * its error; its callback may cancel others, so the scan starts over.
 */
static void on_exec_done(void *arg, struct hc_exec *x)
{
    struct hc_http *h = arg;
    struct hc_http_req *r = h->reqs;

    while (r != NULL) {
        char *url = r->wait_url;
        struct hc_http_opts o = r->o;
        int rc;

        if (url == NULL || r->exec != x) {
            r = r->next;
            continue;
        }
        r->wait_url = NULL;
        rc = req_go(r, r->wait_t, url);
        free(url);
        if (rc == CM_OK) {
            r = r->next;
            continue;
        }
        req_unlink(r);
        req_free(r);
        if (o.on_done != NULL)
            o.on_done(o.arg, rc, 0, false, "cannot start the request");
        r = h->reqs;
    }
}

int hc_http_get(struct hc_http *h, const struct hc_kube_target *t, const char *url,
                const struct hc_http_opts *o, struct hc_http_req **out)
{
    struct hc_http_req *r;
    int rc;

    if (t->exec != NULL && hc_exec_attach(t->exec, h->base, t, on_exec_done, h) != CM_OK)
        return CM_ENOMEM;
    r = req_new(h, o);
    if (r == NULL)
        return CM_ENOMEM;
    if (t->exec != NULL && hc_exec_pending(t->exec)) {
        /* No credential yet and the plugin is running: sending now would
         * only earn a 401 and a backoff. Parked until the run ends (bounded
         * by the plugin's timeout). */
        r->exec = t->exec;
        r->wait_t = t;
        r->wait_url = strdup(url);
        rc = r->wait_url != NULL ? CM_OK : CM_ENOMEM;
    } else {
        rc = req_go(r, t, url);
    }
    if (rc != CM_OK) {
        req_unlink(r);
        req_free(r);
        return rc;
    }
    if (out != NULL)
        *out = r;
    return CM_OK;
}
