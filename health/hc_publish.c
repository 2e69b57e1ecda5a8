/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_publish.c -- the per-target PUT state machine of hc_publish.h.
 *
 * Invariant: a target sends only pub->doc, the newest document, and
 * pub->doc's generation never decreases, so a target never receives an
 * older generation after a newer one. The document is refcounted: each PUT
 * in flight holds a reference (curl reads the body from it without a copy),
 * and an offer replaces pub->doc without touching PUTs in flight.
 */
#include "health/hc_publish.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "common/cm_backoff.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_http.h"

#define PUB_PATH     "/v1/state"
#define PUB_RESP_MAX 1024 /* response bytes kept for the error reason */
#define PUB_AUTH     "Authorization: Bearer "

/* One document version, shared by pub->doc and the PUTs sending it. */
struct pub_doc {
    unsigned refs;
    uint64_t generation;
    size_t len;
    char text[]; /* len bytes + NUL */
};

enum pub_state {
    TS_IDLE = 0,    /* nothing offered yet */
    TS_SENDING = 1, /* one PUT in flight (req, sending) */
    TS_WAIT = 2,    /* last PUT ended (success or permanent error); timer: full interval */
    TS_BACKOFF = 3, /* transient error; timer: backoff, then the newest document */
};

struct pub_target {
    struct hc_publish *pub; /* borrowed: the owner */
    char *url;              /* owned: base + "/v1/state", as configured */
    char *name;             /* owned: base URL without credentials (logs, metrics) */
    enum pub_state state;
    struct event *timer;     /* owned: full interval or backoff, per state */
    struct hc_http_req *req; /* in flight, else NULL */
    struct pub_doc *sending; /* reference held while req runs */
    uint64_t acked_generation;
    uint64_t sent, succeeded, failed;
    long last_status;
    bool ok;
    bool failing;              /* a failure was logged, no success since */
    long logged_status;        /* last_status of the failure logged */
    struct cm_backoff backoff; /* retries after transient failures (+-20 % jitter) */
    char last_error[160];
    size_t resp_len;
    char resp[PUB_RESP_MAX + 1];
};

struct hc_publish {
    struct event_base *base; /* borrowed */
    struct hc_http *http;    /* borrowed */
    struct hc_publish_params p;
    char *token;          /* owned, wiped on free; NULL = no Authorization */
    struct pub_doc *doc;  /* reference to the newest document, NULL before the first offer */
    struct pub_target *t; /* owned array of count */
    size_t count;
    uint64_t rng;
};

static void target_send(struct pub_target *t);

void hc_publish_params_default(struct hc_publish_params *p)
{
    p->full_interval_ms = 10000;
    p->timeout_ms = 5000;
    p->backoff_min_ms = 250;
    p->backoff_max_ms = 10000;
    p->ca_file = NULL;
    p->cert = NULL;
    p->key = NULL;
}

/* ---- documents ---------------------------------------------------------- */

static struct pub_doc *doc_new(uint64_t generation, const char *text, size_t len)
{
    struct pub_doc *d = malloc(sizeof(*d) + len + 1);

    if (d == NULL)
        return NULL;
    d->refs = 1;
    d->generation = generation;
    d->len = len;
    if (len > 0)
        memcpy(d->text, text, len);
    d->text[len] = '\0';
    return d;
}

static struct pub_doc *doc_ref(struct pub_doc *d)
{
    d->refs++;
    return d;
}

static void doc_unref(struct pub_doc *d)
{
    if (d != NULL && --d->refs == 0)
        free(d);
}

/* ---- helpers ------------------------------------------------------------ */

static void timer_arm(struct event *ev, uint32_t ms)
{
    struct timeval tv = cm_ms_to_timeval(ms);

    evtimer_add(ev, &tv);
}

/* Replaces control and non-ASCII bytes so a peer's text stays one log line. */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
    }
}

/*
 * The base URL without a trailing '/' (@keep_auth) or also without
 * "user:password@" (for logs and labels). NULL on ENOMEM.
 */
static char *base_url(const char *url, bool keep_auth)
{
    const char *sep = strstr(url, "://");
    const char *host = sep != NULL ? sep + 3 : url;
    size_t authority = strcspn(host, "/?#");
    size_t skip_from = 0, skip = 0, len = strlen(url);
    char *out;

    for (size_t i = authority; !keep_auth && i > 0; i--) {
        if (host[i - 1] == '@') {
            skip_from = (size_t)(host - url);
            skip = i;
            break;
        }
    }
    while (len > 0 && url[len - 1] == '/')
        len--;
    out = malloc(len - skip + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, url, skip_from);
    memcpy(out + skip_from, url + skip_from + skip, len - skip_from - skip);
    out[len - skip] = '\0';
    return out;
}

/*
 * Reads a consumer's error reply: {"error": "reason"} (cm_ctl), the reason
 * copied to @reason ("" if none, raw text if not JSON).
 */
static void parse_reply(const char *body, size_t len, char *reason, size_t cap)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    json_t *err = json_object_get(doc, "error");

    if (json_is_string(err))
        cm_strlcpy(reason, json_string_value(err), cap);
    else
        cm_strlcpy(reason, body, cap); /* NUL-terminated by the caller */
    for (size_t n = strlen(reason); n > 0 && strchr(" \t\r\n", reason[n - 1]) != NULL; n--)
        reason[n - 1] = '\0';
    json_decref(doc);
    sanitize(reason);
}

/* ---- outcomes ----------------------------------------------------------- */

/* Logs a failure once when the target starts failing or the failure's
 * status changes; retries in the same condition log at debug only. */
static void note_failure(struct pub_target *t, bool transient, const char *what)
{
    const char *next = transient ? "retrying with backoff"
                                 : "not retried before the full interval or a newer document";

    t->ok = false;
    t->failed++;
    cm_strlcpy(t->last_error, what, sizeof(t->last_error));
    if (!t->failing || t->logged_status != t->last_status) {
        cm_log_warn("publish to %s: %s; %s", t->name, what, next);
        t->failing = true;
        t->logged_status = t->last_status;
    } else {
        cm_log_debug("publish to %s: %s; %s (failures=%" PRIu64 ")", t->name, what, next,
                     t->failed);
    }
}

static void note_success(struct pub_target *t, uint64_t generation)
{
    if (t->failing)
        cm_log_info("publish to %s: ok again, generation=%" PRIu64 " status=%ld", t->name,
                    generation, t->last_status);
    else
        cm_log_debug("publish to %s: generation=%" PRIu64 " status=%ld", t->name, generation,
                     t->last_status);
    t->failing = false;
    t->ok = true;
    t->succeeded++;
    t->acked_generation = generation;
    cm_backoff_reset(&t->backoff);
    t->last_error[0] = '\0';
}

static void schedule_backoff(struct pub_target *t)
{
    uint32_t delay = cm_backoff_next(&t->backoff, &t->pub->rng);

    t->state = TS_BACKOFF;
    timer_arm(t->timer, delay > 0 ? delay : 1);
}

/* After a success or a permanent error: the newest document at once if
 * there is a newer one, else wait for the full interval. */
static void settle(struct pub_target *t, uint64_t generation)
{
    if (t->pub->doc->generation > generation) {
        target_send(t);
        return;
    }
    t->state = TS_WAIT;
    if (t->pub->p.full_interval_ms > 0)
        timer_arm(t->timer, t->pub->p.full_interval_ms);
}

/* ---- transfers ---------------------------------------------------------- */

static int on_data(void *arg, long status, const char *data, size_t len)
{
    struct pub_target *t = arg;
    size_t room = PUB_RESP_MAX - t->resp_len;

    (void)status;
    if (len > room)
        len = room;
    memcpy(t->resp + t->resp_len, data, len);
    t->resp_len += len;
    t->resp[t->resp_len] = '\0';
    return 0;
}

static void on_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct pub_target *t = arg;
    struct pub_doc *d = t->sending;
    uint64_t generation = d->generation;
    char why[sizeof(t->last_error)], text[128];

    (void)aborted; /* on_data never aborts */
    assert(t->state == TS_SENDING);
    t->req = NULL;
    t->sending = NULL;
    doc_unref(d);
    t->last_status = rc == CM_OK ? status : 0;
    if (rc != CM_OK) {
        cm_strlcpy(text, reason, sizeof(text));
        sanitize(text);
        snprintf(why, sizeof(why), "%s (%s)", cm_strerror(rc), text);
        note_failure(t, true, why);
        schedule_backoff(t);
        return;
    }
    if (status >= 200 && status < 300) {
        note_success(t, generation);
        settle(t, generation);
        return;
    }
    parse_reply(t->resp, t->resp_len, text, sizeof(text));
    snprintf(why, sizeof(why), "HTTP %ld generation=%" PRIu64 ": %s", status, generation,
             text[0] != '\0' ? text : "no reason given");
    note_failure(t, status >= 500, why);
    if (status >= 500) {
        schedule_backoff(t);
        return;
    }
    cm_backoff_reset(&t->backoff); /* the target answered: not a connectivity problem */
    settle(t, generation);
}

static int build_request(struct pub_target *t, struct pub_doc *d, CURL **easy,
                         struct curl_slist **headers)
{
    const char *token = t->pub->token;
    struct curl_slist *l;
    CURL *e = curl_easy_init();
    char *auth = NULL;
    size_t n;

    *easy = e;
    if (e == NULL)
        return CM_ENOMEM;
    if (curl_easy_setopt(e, CURLOPT_URL, t->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, "fedgslb-health/0.1") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT") != CURLE_OK)
        return CM_ENOMEM;
    if (t->pub->p.ca_file != NULL &&
        curl_easy_setopt(e, CURLOPT_CAINFO, t->pub->p.ca_file) != CURLE_OK)
        return CM_ENOMEM;
    if (t->pub->p.cert != NULL &&
        (curl_easy_setopt(e, CURLOPT_SSLCERT, t->pub->p.cert) != CURLE_OK ||
         curl_easy_setopt(e, CURLOPT_SSLKEY, t->pub->p.key) != CURLE_OK))
        return CM_ENOMEM;
    /* The body stays valid: t->sending holds a reference until on_done. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, &d->text[0]);
    l = curl_slist_append(*headers, "Content-Type: application/json");
    if (l == NULL)
        return CM_ENOMEM;
    *headers = l;
    l = curl_slist_append(*headers, "Expect:"); /* no 100-continue round trip */
    if (l == NULL)
        return CM_ENOMEM;
    *headers = l;
    if (token == NULL)
        return CM_OK;
    n = sizeof(PUB_AUTH) + strlen(token);
    auth = malloc(n);
    if (auth == NULL)
        return CM_ENOMEM;
    snprintf(auth, n, PUB_AUTH "%s", token);
    l = curl_slist_append(*headers, auth);
    OPENSSL_cleanse(auth, n);
    free(auth);
    if (l == NULL)
        return CM_ENOMEM;
    *headers = l;
    return CM_OK;
}

/* Starts a PUT of the newest document. On failure to start, backs off. */
static void target_send(struct pub_target *t)
{
    struct hc_publish *pub = t->pub;
    struct cm_curl_opts o = {.timeout_ms = pub->p.timeout_ms,
                             .connect_timeout_ms = pub->p.timeout_ms,
                             .on_data = on_data,
                             .on_done = on_done,
                             .arg = t};
    struct curl_slist *headers = NULL;
    CURL *easy = NULL;
    int rc;

    assert(t->req == NULL && pub->doc != NULL);
    evtimer_del(t->timer);
    t->resp_len = 0;
    t->resp[0] = '\0';
    rc = build_request(t, pub->doc, &easy, &headers);
    if (rc == CM_OK) {
        rc = hc_http_start(pub->http, easy, headers, NULL, &o, &t->req); /* owns both */
    } else {
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers); /* the token is only added last, and cleansed */
    }
    t->sent++;
    if (rc != CM_OK) {
        t->last_status = 0;
        note_failure(t, true, "cannot start request: out of memory");
        schedule_backoff(t);
        return;
    }
    t->sending = doc_ref(pub->doc);
    t->state = TS_SENDING;
    cm_log_debug("publish to %s: PUT generation=%" PRIu64 " bytes=%zu", t->name,
                 pub->doc->generation, pub->doc->len);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pub_target *t = arg;

    (void)fd;
    (void)what;
    assert(t->state == TS_WAIT || t->state == TS_BACKOFF);
    target_send(t);
}

/* ---- API ---------------------------------------------------------------- */

struct hc_publish *hc_publish_new(struct event_base *base, struct hc_http *http,
                                  const char *const *urls, size_t url_count, const char *token,
                                  const struct hc_publish_params *p)
{
    struct hc_publish *pub = calloc(1, sizeof(*pub));

    if (pub == NULL)
        return NULL;
    pub->base = base;
    pub->http = http;
    pub->p = *p;
    if (pub->p.backoff_min_ms == 0)
        pub->p.backoff_min_ms = 1;
    if (pub->p.backoff_max_ms < pub->p.backoff_min_ms)
        pub->p.backoff_max_ms = pub->p.backoff_min_ms;
    cm_rand_seed(&pub->rng, pub);
    pub->t = calloc(url_count > 0 ? url_count : 1, sizeof(*pub->t));
    if (pub->t == NULL || (token != NULL && (pub->token = strdup(token)) == NULL))
        goto fail;
    for (size_t i = 0; i < url_count; i++) {
        struct pub_target *t = &pub->t[i];
        char *base_u = base_url(urls[i], true);
        size_t n = base_u != NULL ? strlen(base_u) + sizeof(PUB_PATH) : 0;

        pub->count++; /* from here hc_publish_free() releases it */
        t->pub = pub;
        cm_backoff_init(&t->backoff, pub->p.backoff_min_ms, pub->p.backoff_max_ms,
                        CM_BACKOFF_JITTER_20PCT);
        t->url = base_u != NULL ? malloc(n) : NULL;
        if (t->url != NULL)
            snprintf(t->url, n, "%s" PUB_PATH, base_u);
        free(base_u);
        t->name = base_url(urls[i], false);
        t->timer = evtimer_new(base, on_timer, t);
        if (t->url == NULL || t->name == NULL || t->timer == NULL)
            goto fail;
    }
    return pub;
fail:
    hc_publish_free(pub);
    return NULL;
}

void hc_publish_free(struct hc_publish *pub)
{
    if (pub == NULL)
        return;
    for (size_t i = 0; i < pub->count; i++) {
        struct pub_target *t = &pub->t[i];

        hc_http_req_cancel(t->req); /* its done callback does not run */
        doc_unref(t->sending);
        if (t->timer != NULL)
            event_free(t->timer);
        free(t->url);
        free(t->name);
    }
    free(pub->t);
    doc_unref(pub->doc);
    if (pub->token != NULL) {
        OPENSSL_cleanse(pub->token, strlen(pub->token));
        free(pub->token);
    }
    free(pub);
}

int hc_publish_offer(struct hc_publish *pub, uint64_t generation, const char *text, size_t len)
{
    struct pub_doc *d;

    if (pub->doc != NULL && generation <= pub->doc->generation) {
        cm_log_debug("publish: offer generation=%" PRIu64 " ignored, have %" PRIu64, generation,
                     pub->doc->generation);
        return CM_OK;
    }
    d = doc_new(generation, text, len);
    if (d == NULL)
        return CM_ENOMEM;
    doc_unref(pub->doc);
    pub->doc = d;
    /* Busy targets pick it up when their PUT ends, backing-off ones when
     * their timer fires. */
    for (size_t i = 0; i < pub->count; i++) {
        if (pub->t[i].state == TS_IDLE || pub->t[i].state == TS_WAIT)
            target_send(&pub->t[i]);
    }
    return CM_OK;
}

size_t hc_publish_target_count(const struct hc_publish *pub)
{
    return pub->count;
}

void hc_publish_target_stats(const struct hc_publish *pub, size_t i,
                             struct hc_publish_target_stats *out)
{
    const struct pub_target *t;

    assert(i < pub->count);
    t = &pub->t[i];
    memset(out, 0, sizeof(*out));
    out->url = t->name;
    out->in_flight = t->req != NULL;
    out->ok = t->ok;
    out->acked_generation = t->acked_generation;
    out->sent = t->sent;
    out->succeeded = t->succeeded;
    out->failed = t->failed;
    out->last_status = t->last_status;
    cm_strlcpy(out->last_error, t->last_error, sizeof(out->last_error));
}

void hc_publish_metrics(const struct hc_publish *pub, struct cm_buf *out)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"fedgslb_health_publish_sent_total", "counter", "State document PUTs started."},
        {"fedgslb_health_publish_succeeded_total", "counter",
         "State document PUTs the target accepted (2xx)."},
        {"fedgslb_health_publish_failed_total", "counter",
         "State document PUTs that failed (transport error or error status)."},
        {"fedgslb_health_publish_acked_generation", "gauge",
         "Newest generation the target acknowledged (0 = none yet)."},
        {"fedgslb_health_publish_up", "gauge", "1 if the last PUT to the target succeeded."},
    };
    struct cm_buf labels;

    cm_buf_init(&labels, 4096);
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        cm_metrics_family(out, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < pub->count; i++) {
            const struct pub_target *t = &pub->t[i];
            const double v[] = {(double)t->sent, (double)t->succeeded, (double)t->failed,
                                (double)t->acked_generation, t->ok ? 1.0 : 0.0};

            cm_buf_reset(&labels);
            cm_metrics_label(&labels, "target", t->name);
            cm_metrics_sample(out, fam[f].name, cm_buf_cstr(&labels), v[f]);
        }
    }
    cm_buf_fini(&labels);
}
