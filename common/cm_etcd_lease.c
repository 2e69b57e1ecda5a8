/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_lease.c -- the grant/put/keepalive state machine of cm_etcd_lease.h.
 *
 * Invariant: at most one request is in flight (l->call); l->seq counts the
 * values set and l->written the one the last successful put carried, so a
 * value set while a request runs is put when it ends.
 */
#include "common/cm_etcd_lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_backoff.h"
#include "common/cm_err.h"
#include "common/cm_etcd.h"
#include "common/cm_etcd_proto.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_time.h"

enum lease_state {
    LS_IDLE = 0,      /* no value yet */
    LS_GRANTING = 1,  /* lease grant in flight */
    LS_PUTTING = 2,   /* put in flight */
    LS_KEEPING = 3,   /* written; the timer sends the next keepalive */
    LS_KEEPALIVE = 4, /* keepalive in flight */
    LS_BACKOFF = 5,   /* after a failure; the timer retries */
};

struct cm_etcd_lease {
    struct event_base *base; /* borrowed */
    struct cm_etcd *e;       /* borrowed */
    char *key;               /* owned */
    struct cm_etcd_lease_params p;
    enum lease_state state;
    struct cm_etcd_call *call; /* the request in flight */
    struct event *timer;       /* owned: keepalive or backoff */
    char *value;               /* owned: the newest value */
    size_t value_len;
    uint64_t seq;         /* values set */
    uint64_t sending_seq; /* the value the put in flight carries */
    uint64_t written;     /* the value etcd holds under the current lease (0 = none) */
    struct cm_backoff backoff;
    struct cm_log_ratelimit rl;
    uint64_t rng;
    struct cm_etcd_lease_stats st;
};

static void step(struct cm_etcd_lease *l);

void cm_etcd_lease_params_default(struct cm_etcd_lease_params *p)
{
    p->ttl_s = 30;
    p->backoff_min_ms = 250;
    p->backoff_max_ms = 5000;
}

static uint64_t keepalive_ms(const struct cm_etcd_lease *l)
{
    int64_t ttl = l->st.ttl_s > 0 ? l->st.ttl_s : l->p.ttl_s;
    uint64_t ms = (uint64_t)ttl * 1000 / 3;

    return ms > 200 ? ms : 200;
}

static void timer_arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = cm_ms_to_timeval(ms);

    evtimer_add(ev, &tv);
}

static void set_ok(struct cm_etcd_lease *l, bool ok)
{
    if (ok) {
        cm_backoff_reset(&l->backoff);
        l->st.last_error[0] = '\0';
    }
    if (l->st.ok == ok)
        return;
    if (ok && l->st.since_ms != 0)
        cm_log_info("etcd: %s written again after %.1f s (lease %" PRId64 ", revision %" PRId64 ")",
                    l->key, (double)(cm_mono_ms() - l->st.since_ms) / 1000.0, l->st.lease,
                    l->st.revision);
    l->st.ok = ok;
    l->st.since_ms = cm_mono_ms();
}

static void fail(struct cm_etcd_lease *l, const char *what, const struct cm_etcd_result *res)
{
    uint32_t delay = cm_backoff_next(&l->backoff, &l->rng);

    l->st.failures++;
    snprintf(l->st.last_error, sizeof(l->st.last_error), "%s: %s (at %s)", what, res->reason,
             res->endpoint);
    if (l->st.ok || l->st.failures == 1)
        cm_log_warn("etcd: %s of %s failed: %s (at %s); etcd keeps the last value until the "
                    "lease ends; retry in %" PRIu32 " ms",
                    what, l->key, res->reason, res->endpoint, delay);
    else
        cm_log_ratelimited(&l->rl, CM_LOG_WARN,
                           "etcd: %s of %s still failing: %s (at %s); retry in %" PRIu32
                           " ms (failures=%" PRIu64 ")",
                           what, l->key, res->reason, res->endpoint, delay, l->st.failures);
    set_ok(l, false);
    l->state = LS_BACKOFF;
    timer_arm(l->timer, delay > 0 ? delay : 1);
}

/* The lease is gone (expired while etcd or we were away): start over. */
static void lease_lost(struct cm_etcd_lease *l, const char *why)
{
    cm_log_warn("etcd: lease %" PRId64 " of %s is gone (%s); granting a new one", l->st.lease,
                l->key, why);
    l->st.lease = 0;
    l->written = 0;
    set_ok(l, false);
}

static void on_grant(void *arg, const struct cm_etcd_result *res)
{
    struct cm_etcd_lease *l = arg;
    char err[CM_ETCD_ERR_MAX];
    int64_t id = 0, ttl = 0;

    l->call = NULL;
    if (res->kind != CM_ETCD_OK) {
        fail(l, "lease grant", res);
        return;
    }
    if (cm_etcd_parse_lease(res->body, res->len, &id, &ttl, err, sizeof(err)) != CM_OK ||
        ttl <= 0) {
        struct cm_etcd_result bad = *res;

        bad.reason = ttl <= 0 && id != 0 ? "granted TTL 0" : err;
        fail(l, "lease grant", &bad);
        return;
    }
    l->st.lease = id;
    l->st.ttl_s = ttl;
    l->st.grants++;
    l->written = 0;
    cm_log_debug("etcd: lease %" PRId64 " granted for %s, ttl=%" PRId64 " s", id, l->key, ttl);
    step(l);
}

static void on_put(void *arg, const struct cm_etcd_result *res)
{
    struct cm_etcd_lease *l = arg;
    char err[CM_ETCD_ERR_MAX];
    int64_t rev = 0;

    l->call = NULL;
    if (res->kind == CM_ETCD_REFUSED && res->code == CM_ETCD_CODE_NOT_FOUND) {
        lease_lost(l, res->reason);
        step(l);
        return;
    }
    if (res->kind != CM_ETCD_OK) {
        fail(l, "put", res);
        return;
    }
    if (cm_etcd_parse_revision(res->body, res->len, &rev, err, sizeof(err)) == CM_OK)
        l->st.revision = rev;
    l->st.puts++;
    l->written = l->sending_seq;
    if (l->written == l->seq)
        set_ok(l, true);
    cm_log_debug("etcd: put %s: %zu bytes, lease %" PRId64 ", revision %" PRId64, l->key,
                 l->value_len, l->st.lease, rev);
    step(l);
}

static void on_keepalive(void *arg, const struct cm_etcd_result *res)
{
    struct cm_etcd_lease *l = arg;
    char err[CM_ETCD_ERR_MAX];
    int64_t id = 0, ttl = 0;

    l->call = NULL;
    if (res->kind != CM_ETCD_OK) {
        fail(l, "lease keepalive", res);
        return;
    }
    if (cm_etcd_parse_lease(res->body, res->len, &id, &ttl, err, sizeof(err)) != CM_OK) {
        struct cm_etcd_result bad = *res;

        bad.reason = err;
        fail(l, "lease keepalive", &bad);
        return;
    }
    l->st.keepalives++;
    if (ttl <= 0) {
        lease_lost(l, "keepalive: TTL 0");
    } else if (l->written == l->seq) {
        set_ok(l, true);
    }
    step(l);
}

/* Sends what the state asks for next; arms the keepalive timer when idle. */
static void step(struct cm_etcd_lease *l)
{
    char *body = NULL;
    int rc;

    if (l->value == NULL) {
        l->state = LS_IDLE;
        return;
    }
    if (l->st.lease == 0) {
        l->state = LS_GRANTING;
        body = cm_etcd_body_lease_grant(l->p.ttl_s);
        rc = cm_etcd_call(l->e, CM_ETCD_PATH_GRANT, body, 0, NULL, on_grant, l, &l->call);
    } else if (l->written != l->seq) {
        l->state = LS_PUTTING;
        l->sending_seq = l->seq;
        body = cm_etcd_body_put(l->key, strlen(l->key), l->value, l->value_len, l->st.lease);
        rc = cm_etcd_call(l->e, CM_ETCD_PATH_PUT, body, 0, NULL, on_put, l, &l->call);
    } else {
        l->state = LS_KEEPING;
        timer_arm(l->timer, keepalive_ms(l));
        return;
    }
    if (rc != CM_OK) {
        struct cm_etcd_result res = {.reason = "out of memory", .endpoint = "-"};

        fail(l, l->state == LS_GRANTING ? "lease grant" : "put", &res);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cm_etcd_lease *l = arg;
    char *body;
    int rc;

    (void)fd;
    (void)what;
    if (l->call != NULL)
        return;
    if (l->state == LS_KEEPING ||
        (l->state == LS_BACKOFF && l->st.lease != 0 && l->written == l->seq)) {
        /* The keepalive's own timeout is the interval: a member that does not
         * answer is left before the lease can run out. */
        l->state = LS_KEEPALIVE;
        body = cm_etcd_body_keepalive(l->st.lease);
        rc = cm_etcd_call(l->e, CM_ETCD_PATH_KEEPALIVE, body, (long)keepalive_ms(l), NULL,
                          on_keepalive, l, &l->call);
        if (rc != CM_OK) {
            struct cm_etcd_result res = {.reason = "out of memory", .endpoint = "-"};

            fail(l, "lease keepalive", &res);
        }
        return;
    }
    step(l);
}

struct cm_etcd_lease *cm_etcd_lease_new(struct event_base *base, struct cm_etcd *e, const char *key,
                                        const struct cm_etcd_lease_params *p)
{
    struct cm_etcd_lease *l = calloc(1, sizeof(*l));

    if (l == NULL)
        return NULL;
    l->base = base;
    l->e = e;
    l->p = *p;
    if (l->p.ttl_s < 1)
        l->p.ttl_s = 1;
    l->key = strdup(key);
    cm_backoff_init(&l->backoff, p->backoff_min_ms, p->backoff_max_ms, CM_BACKOFF_JITTER_EQUAL);
    l->rl = (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(1, 30);
    cm_rand_seed(&l->rng, l);
    l->timer = evtimer_new(base, on_timer, l);
    if (l->key == NULL || l->timer == NULL) {
        cm_etcd_lease_free(l);
        return NULL;
    }
    return l;
}

void cm_etcd_lease_free(struct cm_etcd_lease *l)
{
    if (l == NULL)
        return;
    cm_etcd_call_cancel(l->call);
    if (l->timer != NULL)
        event_free(l->timer);
    free(l->value);
    free(l->key);
    free(l);
}

int cm_etcd_lease_set(struct cm_etcd_lease *l, const char *value, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return CM_ENOMEM;
    memcpy(copy, value, len);
    copy[len] = '\0';
    free(l->value);
    l->value = copy;
    l->value_len = len;
    l->seq++;
    if (l->state == LS_IDLE || l->state == LS_KEEPING) {
        evtimer_del(l->timer);
        step(l); /* otherwise the request in flight or the backoff timer gets to it */
    }
    return CM_OK;
}

const char *cm_etcd_lease_key(const struct cm_etcd_lease *l)
{
    return l->key;
}

void cm_etcd_lease_get_stats(const struct cm_etcd_lease *l, struct cm_etcd_lease_stats *out)
{
    *out = l->st;
}
