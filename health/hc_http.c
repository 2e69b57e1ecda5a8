/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_http.c -- requests to Kubernetes API servers on common/cm_curl: TLS and
 * credentials from a kubeconfig target, and requests parked while an exec
 * credential plugin runs.
 *
 * Every request the caller holds is an hc_http_req in h->reqs: parked (no
 * transfer yet, wait_url set) or launched (cr set). It leaves the list just
 * before its done callback runs, or when cancelled.
 */
#include "health/hc_http.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "common/cm_curl.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_exec.h"
#include "health/hc_kubeconfig.h"

struct hc_http {
    struct event_base *base;       /* borrowed */
    struct cm_curl *curl;          /* owned: the transfers */
    LIST_HEAD(, hc_http_req) reqs; /* owned list of the requests the callers hold */
    size_t active;
    struct cm_log_ratelimit token_rl; /* unreadable tokenFile warnings */
};

struct hc_http_req {
    struct hc_http *h;      /* borrowed */
    struct cm_curl_req *cr; /* the transfer once launched (borrowed handle), else NULL */
    struct cm_curl_opts o;  /* the caller's */
    struct hc_exec *exec;   /* borrowed from the target: told about a 401 */
    uint64_t exec_gen;      /* the plugin credential this request carried */
    /* Parked until the exec plugin's run ends (no transfer yet): */
    const struct hc_kube_target *wait_t; /* borrowed */
    char *wait_url;                      /* owned; non-NULL while parked */
    LIST_ENTRY(hc_http_req) link;
};

static void req_unlink(struct hc_http_req *r)
{
    struct hc_http *h = r->h;

    LIST_REMOVE(r, link);
    h->active--;
}

static void req_free(struct hc_http_req *r)
{
    free(r->wait_url);
    free(r);
}

static int req_on_data(void *arg, long status, const char *data, size_t len)
{
    struct hc_http_req *r = arg;

    return r->o.on_data != NULL ? r->o.on_data(r->o.arg, status, data, len) : 0;
}

static void req_on_info(void *arg, CURL *easy)
{
    struct hc_http_req *r = arg;

    if (r->o.on_info != NULL)
        r->o.on_info(r->o.arg, easy);
}

static void req_on_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct hc_http_req *r = arg;
    struct cm_curl_opts o = r->o;

    if (r->exec != NULL && status == 401)
        hc_exec_unauthorized(r->exec, r->exec_gen);
    req_unlink(r);
    req_free(r);
    if (o.on_done != NULL)
        o.on_done(o.arg, rc, status, aborted, reason);
}

struct hc_http *hc_http_new(struct event_base *base)
{
    struct hc_http *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->base = base;
    h->token_rl = (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(1, 60);
    h->curl = cm_curl_new(base);
    if (h->curl == NULL) {
        free(h);
        return NULL;
    }
    return h;
}

void hc_http_free(struct hc_http *h)
{
    if (h == NULL)
        return;
    while (!LIST_EMPTY(&h->reqs))
        hc_http_req_cancel(LIST_FIRST(&h->reqs));
    cm_curl_free(h->curl);
    free(h);
}

void hc_http_req_cancel(struct hc_http_req *r)
{
    if (r == NULL)
        return;
    cm_curl_req_cancel(r->cr);
    req_unlink(r);
    req_free(r);
}

size_t hc_http_active(const struct hc_http *h)
{
    return h->active;
}

struct cm_curl *hc_http_curl(struct hc_http *h)
{
    return h->curl;
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

/* Hands @easy (taken, with both lists) to cm_curl for @r. */
static int req_launch(struct hc_http_req *r, CURL *easy, struct curl_slist *headers,
                      struct curl_slist *connect_to)
{
    struct cm_curl_opts co = {.timeout_ms = r->o.timeout_ms,
                              .connect_timeout_ms = r->o.connect_timeout_ms,
                              .on_data = req_on_data,
                              .on_done = req_on_done,
                              .on_info = req_on_info,
                              .arg = r};

    return cm_curl_start(r->h->curl, easy, headers, connect_to, &co, &r->cr);
}

static struct hc_http_req *req_new(struct hc_http *h, const struct cm_curl_opts *o)
{
    struct hc_http_req *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->h = h;
    r->o = *o;
    LIST_INSERT_HEAD(&h->reqs, r, link);
    h->active++;
    return r;
}

int hc_http_start(struct hc_http *h, CURL *easy, struct curl_slist *headers,
                  struct curl_slist *connect_to, const struct cm_curl_opts *o,
                  struct hc_http_req **out)
{
    struct hc_http_req *r = req_new(h, o);

    if (r == NULL) {
        cm_curl_headers_free(headers);
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
        cm_curl_headers_free(*headers);
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
    struct hc_http_req *r = LIST_FIRST(&h->reqs);

    while (r != NULL) {
        char *url = r->wait_url;
        struct cm_curl_opts o = r->o;
        int rc;

        if (url == NULL || r->exec != x) {
            r = LIST_NEXT(r, link);
            continue;
        }
        r->wait_url = NULL;
        rc = req_go(r, r->wait_t, url);
        free(url);
        if (rc == CM_OK) {
            r = LIST_NEXT(r, link);
            continue;
        }
        req_unlink(r);
        req_free(r);
        if (o.on_done != NULL)
            o.on_done(o.arg, rc, 0, false, "cannot start the request");
        r = LIST_FIRST(&h->reqs);
    }
}

int hc_http_get(struct hc_http *h, const struct hc_kube_target *t, const char *url,
                const struct cm_curl_opts *o, struct hc_http_req **out)
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
