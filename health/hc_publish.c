/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_publish.c -- the per-target PUT state machine of hc_publish.h.
 *
 * Invariant: a target sends only pub->doc, the newest document, and
 * pub->doc's generation never decreases, so a target never receives an
 * older generation after a newer one. It sends pub->doc whole, or as a delta
 * (cm_state_delta_apply) from the document the target last acknowledged
 * when one is held, the target did not just refuse a delta (409: the whole
 * document next) and the delta is at most half the document's size. The
 * delta is made from the two texts (the services' spans compared byte for
 * byte), so it says exactly what the whole document says. The full
 * interval's resend of the generation the target acknowledged is a refresh
 * (the same generation, no changes: the target counts the vantage alive). The document is
 * refcounted: each PUT in flight holds a reference (curl reads the body from it without a copy),
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
#include "common/cm_jscan.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_http.h"

#define PUB_PATH     "/v1/state"
#define PUB_RESP_MAX 1024 /* response bytes kept for the error reason */
#define PUB_AUTH     "Authorization: Bearer "

/* Where a value stands in a document's text. */
struct pub_span {
    size_t off, len;
};

/* A service of a document: its key as written (no quotes) and its value. */
struct pub_svc {
    struct pub_span key, val;
};

/*
 * A document's top level, read once (cm_jscan) when a delta is made from or
 * to it: "members" and "services" by span, every other member as a whole
 * "key":value span. ok is false when the text is not what we serialize
 * (keys out of order, a delta's own keys): then only whole documents go.
 */
struct pub_index {
    bool ok;
    struct pub_span members; /* the value; len 0 when absent */
    struct pub_span *head;   /* owned: the other members, "key":value */
    size_t head_count;
    struct pub_svc *svc; /* owned, in key order */
    size_t svc_count;
};

/* One document version (or a delta), shared by pub->doc and the PUTs sending it. */
struct pub_doc {
    unsigned refs;
    uint64_t generation;
    bool delta;            /* the text is a delta (cm_state_delta_apply) */
    struct pub_index *idx; /* owned, built on first use; NULL before */
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
    struct event *timer;      /* owned: full interval or backoff, per state */
    struct hc_http_req *req;  /* in flight, else NULL */
    struct pub_doc *sending;  /* reference held while req runs (a document or a delta) */
    struct pub_doc *sent_doc; /* reference while req runs: the document @sending stands for */
    struct pub_doc *acked;    /* reference: the last document the target accepted, or NULL */
    bool whole_next;          /* the target refused a delta (409): the whole document next */
    uint64_t acked_generation;
    uint64_t sent, succeeded, failed, deltas;
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
    d->delta = false;
    d->idx = NULL;
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

static void index_free(struct pub_index *x)
{
    if (x == NULL)
        return;
    free(x->head);
    free(x->svc);
    free(x);
}

static void doc_unref(struct pub_doc *d)
{
    if (d != NULL && --d->refs == 0) {
        index_free(d->idx);
        free(d);
    }
}

/* ---- deltas ------------------------------------------------------------- */

static bool grow(void **arr, size_t *cap, size_t count, size_t size)
{
    void *p;

    if (count < *cap)
        return true;
    *cap = *cap != 0 ? 2 * *cap : 64;
    p = realloc(*arr, *cap * size);
    if (p == NULL)
        return false;
    *arr = p;
    return true;
}

static int span_cmp(const char *text_a, struct pub_span a, const char *text_b, struct pub_span b)
{
    int c = memcmp(text_a + a.off, text_b + b.off, a.len < b.len ? a.len : b.len);

    return c != 0 ? c : (a.len > b.len) - (a.len < b.len);
}

static bool span_eq(const char *text_a, struct pub_span a, const char *text_b, struct pub_span b)
{
    return a.len == b.len && memcmp(text_a + a.off, text_b + b.off, a.len) == 0;
}

/* The services object of @d: each key and value span, in strictly increasing key order. */
static bool index_services(struct pub_doc *d, struct pub_index *x, struct cm_jscan *s)
{
    size_t cap = 0;
    struct cm_jstr key;

    if (!cm_jscan_enter(s, CM_JOBJECT))
        return false;
    while (cm_jscan_key(s, &key)) {
        struct pub_svc *v;

        if (!grow((void **)&x->svc, &cap, x->svc_count, sizeof(*x->svc)))
            return false;
        v = &x->svc[x->svc_count];
        v->key.off = (size_t)(key.p - d->text);
        v->key.len = key.len;
        if (x->svc_count > 0 &&
            span_cmp(d->text, x->svc[x->svc_count - 1].key, d->text, v->key) >= 0)
            return false;
        cm_jscan_peek(s);
        v->val.off = (size_t)(s->p - d->text);
        if (!cm_jscan_skip(s))
            return false;
        v->val.len = (size_t)(s->p - d->text) - v->val.off;
        x->svc_count++;
    }
    return s->err == CM_OK;
}

/* @d's index, built on first use; NULL on ENOMEM. */
static const struct pub_index *doc_index(struct pub_doc *d)
{
    struct pub_index *x;
    struct cm_jscan s;
    struct cm_jstr key;
    size_t cap = 0;
    bool ok = true;

    if (d->idx != NULL)
        return d->idx;
    x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    cm_jscan_init(&s, d->text, d->len);
    ok = cm_jscan_enter(&s, CM_JOBJECT);
    while (ok && cm_jscan_key(&s, &key)) {
        size_t start = (size_t)(key.p - d->text) - 1; /* the opening quote */

        if (cm_jstr_is(&key, "services")) {
            ok = index_services(d, x, &s);
        } else if (cm_jstr_is(&key, "members")) {
            cm_jscan_peek(&s);
            x->members.off = (size_t)(s.p - d->text);
            ok = cm_jscan_skip(&s);
            x->members.len = (size_t)(s.p - d->text) - x->members.off;
        } else if (cm_jstr_is(&key, "base_generation") || cm_jstr_is(&key, "removed")) {
            ok = false; /* a delta's own keys: this text cannot be the base of one */
        } else {
            ok =
                grow((void **)&x->head, &cap, x->head_count, sizeof(*x->head)) && cm_jscan_skip(&s);
            if (ok) {
                x->head[x->head_count].off = start;
                x->head[x->head_count].len = (size_t)(s.p - d->text) - start;
                x->head_count++;
            }
        }
    }
    x->ok = ok && cm_jscan_end(&s);
    d->idx = x;
    return x;
}

static void app(struct cm_buf *b, bool *bad, const void *p, size_t n)
{
    if (!*bad && cm_buf_append(b, p, n) != CM_OK)
        *bad = true;
}

/* The head member "key": of span @h (its key, up to the colon). */
static struct pub_span head_key(const char *text, struct pub_span h)
{
    const char *colon = memchr(text + h.off + 1, '"', h.len - 1);

    return (struct pub_span){h.off, colon != NULL ? (size_t)(colon - (text + h.off)) + 1 : h.len};
}

/*
 * A refresh of @d (cm_state_delta_is_refresh): its head and base_generation
 * its own generation, for the full-interval resend of a generation the
 * target holds. NULL when @d's text is not one we read.
 */
static struct pub_doc *refresh_make(struct pub_doc *d)
{
    const struct pub_index *x = doc_index(d);
    struct pub_doc *r = NULL;
    struct cm_buf out;
    bool bad = false;
    char num[48];

    if (x == NULL || !x->ok || x->head_count == 0)
        return NULL;
    cm_buf_init(&out, d->len + 64);
    app(&out, &bad, "{", 1);
    for (size_t h = 0; h < x->head_count; h++) {
        app(&out, &bad, d->text + x->head[h].off, x->head[h].len);
        app(&out, &bad, ",", 1);
    }
    snprintf(num, sizeof(num), "\"base_generation\":%" PRIu64 "}", d->generation);
    app(&out, &bad, num, strlen(num));
    if (!bad) {
        r = doc_new(d->generation, out.data, out.len);
        if (r != NULL)
            r->delta = true;
    }
    cm_buf_fini(&out);
    return r;
}

/*
 * The delta from @base (the target's acknowledged document) to @next: the
 * head of @next, its members when they changed, "removed" and the changed
 * services, verbatim. NULL when no delta can say it (either text not ours, a
 * top-level member gone) or it would be more than half @next's size: then
 * the whole document goes.
 */
static struct pub_doc *delta_make(struct pub_doc *base, struct pub_doc *next, const char **why)
{
    const struct pub_index *a = doc_index(base), *b = doc_index(next);
    struct cm_buf out;
    struct pub_doc *d = NULL;
    size_t i = 0, j = 0, nrem = 0, nchg = 0;
    bool bad = false;
    char num[32];

    *why = "out of memory";
    if (a == NULL || b == NULL)
        return NULL;
    *why = "a text the delta maker does not read";
    if (!a->ok || !b->ok)
        return NULL;
    *why = "the top-level members differ";
    if (a->head_count != b->head_count || (a->members.len != 0 && b->members.len == 0))
        return NULL;
    for (size_t h = 0; h < a->head_count; h++) {
        if (!span_eq(base->text, head_key(base->text, a->head[h]), next->text,
                     head_key(next->text, b->head[h])))
            return NULL;
    }
    *why = "larger than half the document";
    cm_buf_init(&out, next->len + 64);
    app(&out, &bad, "{", 1);
    for (size_t h = 0; h < b->head_count; h++) {
        app(&out, &bad, next->text + b->head[h].off, b->head[h].len);
        app(&out, &bad, ",", 1);
    }
    if (b->members.len != 0 && !span_eq(base->text, a->members, next->text, b->members)) {
        app(&out, &bad, "\"members\":", 10);
        app(&out, &bad, next->text + b->members.off, b->members.len);
        app(&out, &bad, ",", 1);
    }
    snprintf(num, sizeof(num), "%" PRIu64, base->generation);
    app(&out, &bad, "\"base_generation\":", 18);
    app(&out, &bad, num, strlen(num));
    app(&out, &bad, ",\"removed\":[", 12);
    for (i = 0, j = 0; i < a->svc_count; i++) {
        int c = 1;

        while (j < b->svc_count &&
               (c = span_cmp(base->text, a->svc[i].key, next->text, b->svc[j].key)) > 0)
            j++;
        if (j < b->svc_count && c == 0)
            continue;
        if (nrem++ > 0)
            app(&out, &bad, ",", 1);
        app(&out, &bad, "\"", 1);
        app(&out, &bad, base->text + a->svc[i].key.off, a->svc[i].key.len);
        app(&out, &bad, "\"", 1);
    }
    app(&out, &bad, "],\"services\":{", 14);
    for (i = 0, j = 0; j < b->svc_count && out.len <= next->len / 2; j++) {
        const struct pub_svc *v = &b->svc[j];
        int c = -1;

        while (i < a->svc_count &&
               (c = span_cmp(base->text, a->svc[i].key, next->text, v->key)) < 0)
            i++;
        if (i < a->svc_count && c == 0 && span_eq(base->text, a->svc[i].val, next->text, v->val))
            continue;
        if (nchg++ > 0)
            app(&out, &bad, ",", 1);
        app(&out, &bad, "\"", 1);
        app(&out, &bad, next->text + v->key.off, v->key.len);
        app(&out, &bad, "\":", 2);
        app(&out, &bad, next->text + v->val.off, v->val.len);
    }
    app(&out, &bad, "}}", 2);
    if (!bad && out.len <= next->len / 2) {
        d = doc_new(next->generation, out.data, out.len);
        if (d != NULL)
            d->delta = true;
    }
    cm_buf_fini(&out);
    return d;
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
    struct pub_doc *d = t->sending, *doc = t->sent_doc;
    uint64_t generation = d->generation;
    bool delta = d->delta;
    char why[sizeof(t->last_error)], text[128];

    (void)aborted; /* on_data never aborts */
    assert(t->state == TS_SENDING);
    t->req = NULL;
    t->sending = NULL;
    t->sent_doc = NULL;
    doc_unref(d);
    t->last_status = rc == CM_OK ? status : 0;
    if (rc == CM_OK && status >= 200 && status < 300) {
        doc_unref(t->acked);
        t->acked = doc; /* the reference moves */
        doc = NULL;
        t->whole_next = false;
    }
    doc_unref(doc);
    if (rc == CM_OK && status == 409 && delta) {
        /* The target does not hold the delta's base (it restarted, or
         * another writer came between): the whole document, at once. */
        parse_reply(t->resp, t->resp_len, text, sizeof(text));
        cm_log_info("publish to %s: delta generation=%" PRIu64 " refused (%s); sending the whole "
                    "document",
                    t->name, generation, text[0] != '\0' ? text : "409");
        t->whole_next = true;
        target_send(t);
        return;
    }
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

    struct pub_doc *body = NULL;

    assert(t->req == NULL && pub->doc != NULL);
    evtimer_del(t->timer);
    t->resp_len = 0;
    t->resp[0] = '\0';
    /* A delta from what the target acknowledged, when one says it in half the bytes. */
    if (t->acked != NULL && !t->whole_next && t->acked->generation < pub->doc->generation) {
        const char *why = NULL;

        body = delta_make(t->acked, pub->doc, &why);
        if (body == NULL)
            cm_log_debug("publish to %s: the whole document: a delta from generation %" PRIu64
                         ": %s",
                         t->name, t->acked->generation, why);
    }
    /* The full interval's resend of what the target holds: a refresh, not the document. */
    if (t->acked != NULL && !t->whole_next && t->acked->generation == pub->doc->generation)
        body = refresh_make(pub->doc);
    if (body == NULL)
        body = doc_ref(pub->doc);
    rc = build_request(t, body, &easy, &headers);
    if (rc == CM_OK) {
        rc = hc_http_start(pub->http, easy, headers, NULL, &o, &t->req); /* owns both */
    } else {
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers); /* the token is only added last, and cleansed */
    }
    t->sent++;
    if (rc != CM_OK) {
        doc_unref(body);
        t->last_status = 0;
        note_failure(t, true, "cannot start request: out of memory");
        schedule_backoff(t);
        return;
    }
    t->sending = body;
    t->sent_doc = doc_ref(pub->doc);
    t->deltas += body->delta;
    t->state = TS_SENDING;
    cm_log_debug("publish to %s: PUT generation=%" PRIu64 " bytes=%zu%s", t->name,
                 pub->doc->generation, body->len, body->delta ? " (a delta)" : "");
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
        doc_unref(t->sent_doc);
        doc_unref(t->acked);
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
        {"fedgslb_health_publish_deltas_total", "counter",
         "Of the PUTs started, those that sent a delta from the acknowledged generation."},
    };
    struct cm_buf labels;

    cm_buf_init(&labels, 4096);
    for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
        cm_metrics_family(out, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < pub->count; i++) {
            const struct pub_target *t = &pub->t[i];
            const double v[] = {(double)t->sent,   (double)t->succeeded,
                                (double)t->failed, (double)t->acked_generation,
                                t->ok ? 1.0 : 0.0, (double)t->deltas};

            cm_buf_reset(&labels);
            cm_metrics_label(&labels, "target", t->name);
            cm_metrics_sample(out, fam[f].name, cm_buf_cstr(&labels), v[f]);
        }
    }
    cm_buf_fini(&labels);
}
