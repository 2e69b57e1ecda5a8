/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_probe.c -- data-plane probes (see hc_probe.h for the contract).
 *
 * Each probe is a struct with its own libevent timer; probes live in a
 * chained hash table keyed by (service, member, address), which grows by
 * doubling, so ensure/get are O(1) and mark/sweep are one pass. A turn that
 * finds the process at max_in_flight goes to a FIFO of waiting probes, which
 * is drained each time a probe finishes. Transfers run on the shared hc_http
 * multi handle; a probe owns its easy handle only until hc_http_start()
 * takes it, and its request handle only while the transfer runs.
 *
 * Invariants: p->req != NULL exactly while the probe is in flight (counted
 * in ps->in_flight); p->queued exactly while it is on the wait FIFO.
 */
#include "health/hc_probe.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_http.h"

#define BODY_MAX             4096 /* bytes of body looked at for expect_body */
#define LATE_BUCKETS         40   /* log2 buckets of start lateness, in microseconds */
#define DEFAULT_MAX_INFLIGHT 512
#define FIRST_RUN_MAX_MS     1000

struct probe {
    struct hc_probes *ps; /* borrowed back pointer */
    struct probe *hnext;  /* hash chain */
    uint32_t hash;
    char *service, *member, *address; /* owned, one allocation (service) */

    /* The check, copied (strings owned). */
    enum cm_check_type type;
    char *path;        /* owned, starts with '/' */
    char *host;        /* owned, NULL = address */
    char *expect_body; /* owned, NULL = any */
    uint16_t port, status_min, status_max;
    bool tls_verify;
    uint32_t interval_ms, timeout_ms;

    bool wanted;             /* reconcile mark */
    bool changed;            /* on ps->changed_list: the report has not taken it yet */
    LIST_ENTRY(probe) clink; /* changed_list link */
    struct event *timer;     /* owned: the next turn */
    uint64_t due_us;         /* monotonic time the next turn is scheduled for */
    uint64_t queued_due_us;  /* the scheduled time of the turn waiting in the FIFO */
    bool queued;             /* on the wait FIFO */
    struct probe *qnext;     /* wait FIFO link */
    struct hc_http_req *req; /* borrowed from hc_http while in flight, else NULL */

    /* Per-run scratch, reset at start. */
    char *body; /* owned while in flight when expect_body is set */
    size_t body_len;
    bool body_found; /* expect_body seen in the first BODY_MAX bytes */
    bool stopped_ok; /* we aborted the transfer on purpose (enough seen) */
    long os_errno;   /* CURLINFO_OS_ERRNO */
    double connect_run_ms, ttfb_ms;

    struct hc_probe_status st;
    double samples[HC_PROBE_RTT_SAMPLES];
    unsigned nsamples, sample_next;
};

struct hc_probes {
    struct event_base *base; /* borrowed */
    struct hc_http *http;    /* borrowed */
    struct hc_probes_params params;
    hc_probes_changed_fn *changed;
    void *arg;

    struct probe **buckets; /* owned array of chains */
    size_t nbuckets;        /* power of two */
    size_t count;
    size_t in_flight;
    struct probe *qhead, *qtail;     /* waiting for a slot, FIFO */
    LIST_HEAD(, probe) changed_list; /* reported status changed since hc_probes_take_changed() */
    bool taken;                      /* hc_probes_take_changed() ran once */

    uint64_t rng; /* cm_rand state for jitter */
    uint64_t runs, failures, skipped, deferred;
    uint64_t failures_by_class[HC_PROBE_FAIL_COUNT];
    uint64_t late_count, late_hist[LATE_BUCKETS];
    double late_sum_ms, late_max_ms;
    struct cm_log_ratelimit start_rl;
};

static void on_turn(evutil_socket_t fd, short what, void *arg);

static uint32_t key_hash(const char *service, const char *member, const char *address)
{
    const char *parts[3] = {service, member, address};
    uint32_t h = CM_FNV1A32_INIT;

    for (int i = 0; i < 3; i++) {
        h = cm_fnv1a32_str(h, parts[i]);
        h = cm_fnv1a32_byte(h, 0xff); /* separator: ("ab","c") != ("a","bc") */
    }
    return h;
}

static struct probe *find(const struct hc_probes *ps, const char *service, const char *member,
                          const char *address, uint32_t h)
{
    for (struct probe *p = ps->buckets[h & (ps->nbuckets - 1)]; p != NULL; p = p->hnext) {
        if (p->hash == h && strcmp(p->service, service) == 0 && strcmp(p->member, member) == 0 &&
            strcmp(p->address, address) == 0)
            return p;
    }
    return NULL;
}

static int grow(struct hc_probes *ps)
{
    size_t n = ps->nbuckets * 2;
    struct probe **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct probe *p = ps->buckets[i];

        while (p != NULL) {
            struct probe *next = p->hnext;

            p->hnext = nb[p->hash & (n - 1)];
            nb[p->hash & (n - 1)] = p;
            p = next;
        }
    }
    free(ps->buckets);
    ps->buckets = nb;
    ps->nbuckets = n;
    return CM_OK;
}

static void queue_remove(struct hc_probes *ps, struct probe *p)
{
    struct probe *prev = NULL;

    if (!p->queued)
        return;
    for (struct probe *q = ps->qhead; q != NULL; prev = q, q = q->qnext) {
        if (q != p)
            continue;
        if (prev != NULL)
            prev->qnext = q->qnext;
        else
            ps->qhead = q->qnext;
        if (ps->qtail == q)
            ps->qtail = prev;
        break;
    }
    p->qnext = NULL;
    p->queued = false;
}

static void run_reset(struct probe *p)
{
    free(p->body);
    p->body = NULL;
    p->body_len = 0;
    p->body_found = false;
    p->stopped_ok = false;
    p->os_errno = 0;
    p->connect_run_ms = -1;
    p->ttfb_ms = -1;
}

static void check_free(struct probe *p)
{
    free(p->path);
    free(p->host);
    free(p->expect_body);
    p->path = p->host = p->expect_body = NULL;
}

/* Stops the probe (no callbacks) and releases it; the caller unlinks it from the hash. */
static void probe_free(struct probe *p)
{
    struct hc_probes *ps = p->ps;

    if (p->req != NULL) {
        hc_http_req_cancel(p->req);
        p->req = NULL;
        ps->in_flight--;
    }
    queue_remove(ps, p);
    if (p->changed)
        LIST_REMOVE(p, clink);
    if (p->timer != NULL)
        event_free(p->timer);
    run_reset(p);
    check_free(p);
    free(p->service);
    free(p);
}

void hc_probes_set_source(struct hc_probes *ps, const char *source)
{
    cm_strlcpy(ps->params.source, source != NULL ? source : "", sizeof(ps->params.source));
}

void hc_probes_params_default(struct hc_probes_params *p)
{
    *p = (struct hc_probes_params){0};
    p->max_in_flight = DEFAULT_MAX_INFLIGHT;
}

struct hc_probes *hc_probes_new(struct event_base *base, struct hc_http *http,
                                const struct hc_probes_params *p, hc_probes_changed_fn *changed,
                                void *arg)
{
    struct hc_probes *ps = calloc(1, sizeof(*ps));

    if (ps == NULL)
        return NULL;
    ps->base = base;
    ps->http = http;
    if (p != NULL)
        ps->params = *p;
    else
        hc_probes_params_default(&ps->params);
    if (ps->params.max_in_flight == 0)
        ps->params.max_in_flight = DEFAULT_MAX_INFLIGHT;
    ps->changed = changed;
    ps->arg = arg;
    ps->start_rl = (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(5, 60);
    ps->nbuckets = 64;
    ps->buckets = calloc(ps->nbuckets, sizeof(*ps->buckets));
    if (ps->buckets == NULL) {
        free(ps);
        return NULL;
    }
    cm_rand_seed(&ps->rng, ps);
    return ps;
}

void hc_probes_free(struct hc_probes *ps)
{
    if (ps == NULL)
        return;
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct probe *p = ps->buckets[i];

        while (p != NULL) {
            struct probe *next = p->hnext;

            probe_free(p);
            p = next;
        }
    }
    free(ps->buckets);
    free(ps);
}

/* ---- scheduling ---- */

static uint64_t jittered_us(struct hc_probes *ps, uint32_t interval_ms)
{
    double f = 0.9 + 0.2 * cm_rand_unit(&ps->rng); /* +-10 % */

    return (uint64_t)((double)interval_ms * 1000.0 * f);
}

static void arm(struct probe *p, uint64_t now)
{
    uint64_t d = p->due_us > now ? p->due_us - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(d / 1000000u), .tv_usec = (suseconds_t)(d % 1000000u)};

    evtimer_add(p->timer, &tv);
}

static void schedule_next(struct probe *p, uint64_t now)
{
    p->due_us += jittered_us(p->ps, p->interval_ms);
    if (p->due_us <= now) /* far behind (a stalled loop): do not catch up in a burst */
        p->due_us = now + jittered_us(p->ps, p->interval_ms);
    arm(p, now);
}

static void note_lateness(struct hc_probes *ps, uint64_t due, uint64_t now)
{
    uint64_t late_us = now > due ? now - due : 0;
    double ms = (double)late_us / 1000.0;
    unsigned b = 0;

    while (b + 1 < LATE_BUCKETS && (1ULL << b) <= late_us)
        b++; /* bucket b holds [2^(b-1), 2^b) us; bucket 0 holds 0 */
    ps->late_hist[b]++;
    ps->late_count++;
    ps->late_sum_ms += ms;
    if (ms > ps->late_max_ms)
        ps->late_max_ms = ms;
}

/* ---- one run ---- */

static int on_data(void *arg, long status, const char *data, size_t len)
{
    struct probe *p = arg;
    size_t take;

    (void)status;
    if (p->expect_body == NULL) {
        p->stopped_ok = true; /* the status line and the first byte are all we need */
        return 1;
    }
    if (p->body == NULL) {
        p->body = malloc(BODY_MAX + 1);
        if (p->body == NULL)
            return 1; /* body_found stays false: the run fails, we do not lie */
    }
    take = len < BODY_MAX - p->body_len ? len : BODY_MAX - p->body_len;
    memcpy(p->body + p->body_len, data, take);
    p->body_len += take;
    p->body[p->body_len] = '\0';
    if (memmem(p->body, p->body_len, p->expect_body, strlen(p->expect_body)) != NULL) {
        p->body_found = true;
        p->stopped_ok = true;
        return 1;
    }
    if (p->body_len >= BODY_MAX) {
        p->stopped_ok = true; /* 4 KiB seen without it: a result (body lacks ...) */
        return 1;
    }
    return 0;
}

static void on_info(void *arg, CURL *easy)
{
    struct probe *p = arg;
    curl_off_t lookup = 0, connect = 0, pre = 0, start = 0;
    long err = 0;

    curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pre);
    curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &start);
    curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &err);
    p->os_errno = err;
    if (connect > 0)
        p->connect_run_ms = (double)(connect - (lookup < connect ? lookup : 0)) / 1000.0;
    if (start > 0 && pre > 0 && start >= pre)
        p->ttfb_ms = (double)(start - pre) / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Adds an RTT sample; true when the reported rtt_ms moved. */
static bool add_sample(struct probe *p, double ms)
{
    double tmp[HC_PROBE_RTT_SAMPLES], med, band;

    p->samples[p->sample_next] = ms;
    p->sample_next = (p->sample_next + 1) % HC_PROBE_RTT_SAMPLES;
    if (p->nsamples < HC_PROBE_RTT_SAMPLES)
        p->nsamples++;
    p->st.rtt_ewma_ms = p->st.rtt_ewma_ms < 0 ? ms : 0.3 * ms + 0.7 * p->st.rtt_ewma_ms;
    memcpy(tmp, p->samples, p->nsamples * sizeof(tmp[0]));
    med = median(tmp, p->nsamples);
    if (p->st.rtt_ms < 0) {
        p->st.rtt_ms = med;
        return true;
    }
    band = p->st.rtt_ms * 0.1;
    if (band < 1.0)
        band = 1.0;
    if (fabs(med - p->st.rtt_ms) > band) {
        p->st.rtt_ms = med;
        return true;
    }
    return false;
}

/* Words for a failed transfer ("" when the run succeeded) and its class.
 * Returns ok. */
static bool judge(struct probe *p, int rc, long status, bool aborted, const char *reason, char *err,
                  size_t cap, enum hc_probe_fail *cls)
{
    err[0] = '\0';
    if (rc == CM_OK || (aborted && p->stopped_ok)) {
        if (p->type == CM_CHECK_TCP)
            return true;
        if (status < p->status_min || status > p->status_max) {
            snprintf(err, cap, "status %ld", status);
            *cls = HC_PROBE_FAIL_STATUS;
            return false;
        }
        if (p->expect_body != NULL && !p->body_found) {
            snprintf(err, cap, "body lacks \"%.64s\"", p->expect_body);
            *cls = HC_PROBE_FAIL_BODY;
            return false;
        }
        return true;
    }
    if (rc == CM_ETIMEDOUT) {
        snprintf(err, cap, "timeout after %" PRIu32 " ms", p->timeout_ms);
        *cls = HC_PROBE_FAIL_TIMEOUT;
    } else if (p->os_errno == ECONNREFUSED) {
        snprintf(err, cap, "connection refused");
        *cls = HC_PROBE_FAIL_REFUSED;
    } else if (p->os_errno == EHOSTUNREACH || p->os_errno == ENETUNREACH) {
        snprintf(err, cap, "%s",
                 p->os_errno == EHOSTUNREACH ? "host unreachable" : "network unreachable");
        *cls = HC_PROBE_FAIL_UNREACHABLE;
    } else if (p->type == CM_CHECK_HTTPS &&
               (rc == CM_EACCES || strstr(reason, "SSL") != NULL || strstr(reason, "TLS") != NULL ||
                strstr(reason, "certificate") != NULL)) {
        snprintf(err, cap, "TLS: %s", reason);
        *cls = HC_PROBE_FAIL_TLS;
    } else if (rc == CM_ECONNREFUSED) {
        snprintf(err, cap, "cannot connect: %s", reason);
        *cls = HC_PROBE_FAIL_REFUSED;
    } else {
        snprintf(err, cap, "%s", reason[0] != '\0' ? reason : cm_strerror(rc));
        *cls = HC_PROBE_FAIL_OTHER;
    }
    return false;
}

const char *hc_probe_fail_name(enum hc_probe_fail c)
{
    static const char *const names[HC_PROBE_FAIL_COUNT] = {
        "status", "body", "timeout", "refused", "unreachable", "tls", "other",
    };

    return c < HC_PROBE_FAIL_COUNT ? names[c] : "other";
}

/* Applies one result to the verdict; true when something reported changed. */
static bool apply_result(struct probe *p, bool ok)
{
    struct hc_probe_status *st = &p->st;
    enum hc_probe_verdict old_v = st->verdict;
    bool old_pending = st->pending;

    if (st->verdict == HC_PROBE_UNKNOWN) {
        st->verdict = ok ? HC_PROBE_UP : HC_PROBE_DOWN;
        st->streak = 1;
    } else {
        st->streak = ok == st->last_ok ? st->streak + 1 : 1;
        if (st->verdict == HC_PROBE_UP && !ok && st->streak >= st->fall)
            st->verdict = HC_PROBE_DOWN;
        else if (st->verdict == HC_PROBE_DOWN && ok && st->streak >= st->rise)
            st->verdict = HC_PROBE_UP;
    }
    st->last_ok = ok;
    st->pending = ok != (st->verdict == HC_PROBE_UP);
    if (old_v != st->verdict && old_v != HC_PROBE_UNKNOWN)
        cm_log_info("probe service=%s member=%s address=%s now=%s reason=\"%s\"", p->service,
                    p->member, p->address, st->verdict == HC_PROBE_UP ? "up" : "down",
                    ok ? "probe ok" : st->last_error);
    return old_v != st->verdict || old_pending != st->pending;
}

/*
 * The streak as the document's reason shows it: counted while the verdict is
 * in question (pending), up to `fall` for a probe down, not at all for one up.
 */
static uint32_t shown_streak(const struct hc_probe_status *st)
{
    if (st->pending)
        return st->streak;
    if (st->verdict == HC_PROBE_DOWN)
        return st->streak < st->fall ? st->streak : st->fall;
    return 0;
}

/* Whether a result changed what the state document shows of the probe (its
 * state, rtt_ms and error, and the reason's words and counts). */
static bool shown_changed(const struct hc_probe_status *before, const struct hc_probe_status *after)
{
    return before->verdict != after->verdict || before->pending != after->pending ||
           before->rtt_ms != after->rtt_ms || shown_streak(before) != shown_streak(after) ||
           strcmp(before->last_error, after->last_error) != 0;
}

static void start_waiting(struct hc_probes *ps);

static void on_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct probe *p = arg;
    struct hc_probes *ps = p->ps;
    enum hc_probe_fail cls = HC_PROBE_FAIL_OTHER;
    char err[HC_PROBE_ERR_MAX];
    struct hc_probe_status before = p->st;
    bool ok, changed;

    p->req = NULL;
    ps->in_flight--;
    ok = judge(p, rc, status, aborted, reason != NULL ? reason : "", err, sizeof(err), &cls);
    cm_strlcpy(p->st.last_error, err, sizeof(p->st.last_error));
    p->st.runs++;
    ps->runs++;
    if (!ok) {
        p->st.failures++;
        ps->failures++;
        ps->failures_by_class[cls]++;
    }
    if (p->connect_run_ms >= 0)
        p->st.connect_ms = p->connect_run_ms;
    changed = apply_result(p, ok);
    if (ok) {
        double sample = p->type == CM_CHECK_TCP ? p->connect_run_ms : p->ttfb_ms;

        if (sample >= 0 && add_sample(p, sample))
            changed = true;
    }
    if (p->st.runs == 1 || shown_changed(&before, &p->st))
        changed = true;
    if (changed && !p->changed) {
        p->changed = true;
        LIST_INSERT_HEAD(&ps->changed_list, p, clink);
    }
    run_reset(p);
    cm_log_debug("probe service=%s member=%s address=%s ok=%d error=\"%s\"", p->service, p->member,
                 p->address, ok, p->st.last_error);
    start_waiting(ps);
    /* Last: the callback may reconcile (and free this probe). */
    if (changed && ps->changed != NULL)
        ps->changed(ps->arg);
}

static int format_host(char *buf, size_t cap, const char *name)
{
    int n = strchr(name, ':') != NULL ? snprintf(buf, cap, "[%s]", name)
                                      : snprintf(buf, cap, "%s", name);

    return n < 0 || (size_t)n >= cap ? CM_ETOOBIG : CM_OK;
}

/* Builds the easy handle for @p. CM_ENOMEM / CM_ETOOBIG. */
static int build_easy(struct probe *p, CURL **out, struct curl_slist **connect_to)
{
    char addr[300], host[300], url[2400], line[700];
    const char *scheme = p->type == CM_CHECK_HTTPS ? "https" : "http";
    CURL *e;
    int rc;

    *out = NULL;
    *connect_to = NULL;
    rc = format_host(addr, sizeof(addr), p->address);
    if (rc == CM_OK)
        rc = format_host(host, sizeof(host), p->host != NULL ? p->host : p->address);
    if (rc != CM_OK)
        return rc;
    if (p->type == CM_CHECK_TCP) /* connect only: no Host header, no SNI */
        rc = snprintf(url, sizeof(url), "http://%s:%u/", addr, (unsigned)p->port);
    else
        rc = snprintf(url, sizeof(url), "%s://%s:%u%s", scheme, host, (unsigned)p->port, p->path);
    if (rc < 0 || (size_t)rc >= sizeof(url))
        return CM_ETOOBIG;
    if (p->host != NULL && p->type != CM_CHECK_TCP) {
        snprintf(line, sizeof(line), "%s:%u:%s:%u", host, (unsigned)p->port, addr,
                 (unsigned)p->port);
        *connect_to = curl_slist_append(NULL, line);
        if (*connect_to == NULL)
            return CM_ENOMEM;
    }
    e = curl_easy_init();
    if (e == NULL) {
        curl_slist_free_all(*connect_to);
        *connect_to = NULL;
        return CM_ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, p->type == CM_CHECK_HTTPS ? "https" : "http");
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    if (p->ps->params.source[0] != '\0') {
        char iface[80];

        snprintf(iface, sizeof(iface), "host!%s", p->ps->params.source);
        curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
    }
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "fedgslb-health/probe");
    if (p->type == CM_CHECK_TCP)
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    if (p->type == CM_CHECK_HTTPS && !p->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    *out = e;
    return CM_OK;
}

static void probe_start(struct probe *p, uint64_t due, uint64_t now)
{
    struct hc_probes *ps = p->ps;
    struct cm_curl_opts o = {.timeout_ms = (long)p->timeout_ms,
                             .connect_timeout_ms = (long)p->timeout_ms,
                             .on_data = on_data,
                             .on_done = on_done,
                             .on_info = on_info,
                             .arg = p};
    struct curl_slist *connect_to = NULL;
    CURL *e = NULL;
    int rc;

    run_reset(p);
    rc = build_easy(p, &e, &connect_to);
    if (rc == CM_OK)
        rc = hc_http_start(ps->http, e, NULL, connect_to, &o, &p->req);
    if (rc != CM_OK) {
        p->req = NULL;
        cm_log_ratelimited(&ps->start_rl, CM_LOG_WARN,
                           "probe service=%s member=%s address=%s: cannot start: %s", p->service,
                           p->member, p->address, cm_strerror(rc));
        return;
    }
    ps->in_flight++;
    note_lateness(ps, due, now);
}

/* Starts waiting probes while there are free slots. */
static void start_waiting(struct hc_probes *ps)
{
    uint64_t now = cm_mono_us();

    while (ps->qhead != NULL && ps->in_flight < ps->params.max_in_flight) {
        struct probe *p = ps->qhead;

        ps->qhead = p->qnext;
        if (ps->qhead == NULL)
            ps->qtail = NULL;
        p->qnext = NULL;
        p->queued = false;
        probe_start(p, p->queued_due_us, now);
    }
}

static void on_turn(evutil_socket_t fd, short what, void *arg)
{
    struct probe *p = arg;
    struct hc_probes *ps = p->ps;
    uint64_t now = cm_mono_us(), due = p->due_us;

    (void)fd;
    (void)what;
    if (p->req != NULL || p->queued) {
        p->st.skipped++;
        ps->skipped++;
        cm_log_debug("probe service=%s member=%s address=%s: still running, turn skipped",
                     p->service, p->member, p->address);
    } else if (ps->in_flight >= ps->params.max_in_flight) {
        p->st.deferred++;
        ps->deferred++;
        p->queued = true;
        p->queued_due_us = due;
        if (ps->qtail != NULL)
            ps->qtail->qnext = p;
        else
            ps->qhead = p;
        ps->qtail = p;
    } else {
        probe_start(p, due, now);
    }
    schedule_next(p, now);
}

/* ---- reconcile ---- */

static int copy_check(struct probe *p, uint16_t port, const struct cm_conf_check *c,
                      const char *path)
{
    const char *want_path = path != NULL ? path : (c->path != NULL ? c->path : "/");
    size_t plen = strlen(want_path);
    char *np = malloc(plen + 2), *nh = NULL, *nb = NULL;

    if (np == NULL)
        goto nomem;
    if (want_path[0] != '/') {
        np[0] = '/';
        memcpy(np + 1, want_path, plen + 1);
    } else {
        memcpy(np, want_path, plen + 1);
    }
    if (c->host != NULL && c->host[0] != '\0' && (nh = strdup(c->host)) == NULL)
        goto nomem;
    if (c->expect_body != NULL && c->expect_body[0] != '\0' &&
        (nb = strdup(c->expect_body)) == NULL)
        goto nomem;
    check_free(p);
    p->path = np;
    p->host = nh;
    p->expect_body = nb;
    p->type = c->type;
    p->port = port;
    p->status_min = c->status_min;
    p->status_max = c->status_max;
    p->tls_verify = c->tls_verify;
    p->interval_ms = c->interval_ms > 0 ? c->interval_ms : 10000;
    p->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : 3000;
    p->st.rise = c->rise > 0 ? c->rise : 1;
    p->st.fall = c->fall > 0 ? c->fall : 1;
    return CM_OK;
nomem:
    free(np);
    free(nh);
    free(nb);
    return CM_ENOMEM;
}

void hc_probes_mark(struct hc_probes *ps)
{
    for (size_t i = 0; i < ps->nbuckets; i++)
        for (struct probe *p = ps->buckets[i]; p != NULL; p = p->hnext)
            p->wanted = false;
}

static struct probe *probe_new(struct hc_probes *ps, const char *service, const char *member,
                               const char *address, uint32_t h)
{
    size_t ls = strlen(service) + 1, lm = strlen(member) + 1, la = strlen(address) + 1;
    struct probe *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->service = malloc(ls + lm + la);
    p->timer = evtimer_new(ps->base, on_turn, p);
    if (p->service == NULL || p->timer == NULL) {
        if (p->timer != NULL)
            event_free(p->timer);
        free(p->service);
        free(p);
        return NULL;
    }
    memcpy(p->service, service, ls);
    p->member = p->service + ls;
    memcpy(p->member, member, lm);
    p->address = p->member + lm;
    memcpy(p->address, address, la);
    p->ps = ps;
    p->hash = h;
    p->st.rtt_ms = p->st.rtt_ewma_ms = p->st.connect_ms = -1;
    p->connect_run_ms = p->ttfb_ms = -1;
    return p;
}

int hc_probes_ensure(struct hc_probes *ps, const char *service, const char *member,
                     const char *address, uint16_t port, const struct cm_conf_check *check,
                     const char *path)
{
    uint32_t h, old_interval;
    struct probe *p;
    uint64_t now;
    bool fresh = false;
    int rc;

    if (service == NULL || member == NULL || address == NULL || check == NULL || address[0] == '\0')
        return CM_EINVAL;
    if (port == 0)
        port = check->port;
    if (port == 0)
        return CM_EINVAL;
    h = key_hash(service, member, address);
    p = find(ps, service, member, address, h);
    if (p == NULL) {
        if (ps->count >= ps->nbuckets && grow(ps) != CM_OK)
            return CM_ENOMEM;
        p = probe_new(ps, service, member, address, h);
        if (p == NULL)
            return CM_ENOMEM;
        fresh = true;
    }
    old_interval = p->interval_ms;
    rc = copy_check(p, port, check, path);
    if (rc != CM_OK) {
        if (fresh)
            probe_free(p);
        return rc;
    }
    p->wanted = true;
    now = cm_mono_us();
    if (fresh) {
        uint32_t first = p->interval_ms < FIRST_RUN_MAX_MS ? p->interval_ms : FIRST_RUN_MAX_MS;

        p->hnext = ps->buckets[h & (ps->nbuckets - 1)];
        ps->buckets[h & (ps->nbuckets - 1)] = p;
        ps->count++;
        p->due_us = now + (uint64_t)(cm_rand_unit(&ps->rng) * first * 1000.0);
        arm(p, now);
    } else if (p->interval_ms < old_interval && p->due_us > now + p->interval_ms * 1000ULL) {
        /* A much shorter interval should not wait out the old, long one. */
        p->due_us = now + jittered_us(ps, p->interval_ms);
        arm(p, now);
    }
    return CM_OK;
}

void hc_probes_remove(struct hc_probes *ps, const char *service, const char *member,
                      const char *address)
{
    uint32_t h = key_hash(service, member, address);
    struct probe **pp = &ps->buckets[h & (ps->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->hnext) {
        struct probe *p = *pp;

        if (p->hash == h && strcmp(p->service, service) == 0 && strcmp(p->member, member) == 0 &&
            strcmp(p->address, address) == 0) {
            *pp = p->hnext;
            ps->count--;
            probe_free(p);
            start_waiting(ps); /* its slot, if it was in flight */
            return;
        }
    }
}

bool hc_probes_take_changed(struct hc_probes *ps, hc_probes_each_fn *fn, void *arg)
{
    bool first = !ps->taken;

    ps->taken = true;
    while (!LIST_EMPTY(&ps->changed_list)) {
        struct probe *p = LIST_FIRST(&ps->changed_list);

        LIST_REMOVE(p, clink);
        p->changed = false;
        if (!first)
            fn(arg, p->service, p->member);
    }
    return first;
}

void hc_probes_sweep(struct hc_probes *ps)
{
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct probe **pp = &ps->buckets[i];

        while (*pp != NULL) {
            struct probe *p = *pp;

            if (p->wanted) {
                pp = &p->hnext;
                continue;
            }
            *pp = p->hnext;
            ps->count--;
            probe_free(p);
        }
    }
    start_waiting(ps); /* slots freed by cancelled probes */
}

/* ---- queries ---- */

const struct hc_probe_status *hc_probes_get(const struct hc_probes *ps, const char *service,
                                            const char *member, const char *address)
{
    const struct probe *p = find(ps, service, member, address, key_hash(service, member, address));

    return p != NULL ? &p->st : NULL;
}

double hc_probes_member_rtt(const struct hc_probes *ps, const char *member)
{
    double *v = NULL, r = -1;
    size_t n = 0, cap = 0;

    for (size_t i = 0; i < ps->nbuckets; i++) {
        for (const struct probe *p = ps->buckets[i]; p != NULL; p = p->hnext) {
            if (p->st.rtt_ms < 0 || strcmp(p->member, member) != 0)
                continue;
            if (n == cap) {
                size_t ncap = cap == 0 ? 16 : cap * 2;
                double *nv = realloc(v, ncap * sizeof(*v));

                if (nv == NULL)
                    goto out; /* out of memory: the median of what we have */
                v = nv;
                cap = ncap;
            }
            v[n++] = p->st.rtt_ms;
        }
    }
out:
    if (n > 0)
        r = median(v, n);
    free(v);
    return r;
}

void hc_probes_get_stats(const struct hc_probes *ps, struct hc_probes_stats *out)
{
    uint64_t c50, c99, seen = 0;
    bool got50 = false;

    memset(out, 0, sizeof(*out));
    out->probes = ps->count;
    out->in_flight = ps->in_flight;
    out->runs = ps->runs;
    out->failures = ps->failures;
    memcpy(out->failures_by_class, ps->failures_by_class, sizeof(out->failures_by_class));
    out->skipped = ps->skipped;
    out->deferred = ps->deferred;
    out->late_count = ps->late_count;
    out->late_max_ms = ps->late_max_ms;
    if (ps->late_count == 0)
        return;
    out->late_mean_ms = ps->late_sum_ms / (double)ps->late_count;
    c50 = (ps->late_count + 1) / 2;
    c99 = ps->late_count - ps->late_count / 100; /* ceil(0.99 n) for n < 100 too */
    for (unsigned b = 0; b < LATE_BUCKETS; b++) {
        double upper_ms = b == 0 ? 0.0 : (double)(1ULL << b) / 1000.0;

        if (upper_ms > ps->late_max_ms)
            upper_ms = ps->late_max_ms; /* no bound beyond what was seen */
        seen += ps->late_hist[b];
        if (!got50 && seen >= c50) {
            out->late_p50_ms = upper_ms;
            got50 = true;
        }
        if (seen >= c99) {
            out->late_p99_ms = upper_ms;
            break;
        }
    }
}
