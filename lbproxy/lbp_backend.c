/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_backend.c -- the backend pool of one proxy listener: power-of-two
 * choice, passive outlier ejection, active checks (run by lbp_check.c; the
 * pool starts and stops them and acts on the verdict) and idle upstream
 * connections. Everything runs on the pool's event loop (one thread).
 *
 * Key invariant: a backend in pool->v holds one reference from the pool and
 * has b->pool set; a removed backend is "detached" (b->pool NULL, no idle
 * connections, no check) and lives until the last request drops its
 * reference.
 */
#include "lbproxy/lbp_backend.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "lbproxy/lbp_check.h"
#include "lbproxy/lbp_io.h"

#define EWMA_ALPHA      0.25
#define WINDOW_SIZE     100u /* outcomes in the success window */
#define EJECT_LEVEL_MAX 16u  /* doubling steps kept (eject_max_ms caps anyway) */
/* Without new samples a backend's latency drifts to the pool mean, halving
 * the gap every STALE_HALF_LIFE_MS: a backend that lost every choice after
 * one slow answer is tried again (it would otherwise never get a sample). */
#define STALE_HALF_LIFE_MS 5000u

/* An idle keep-alive connection to a backend, and when it went idle. */
struct idle_conn {
    struct lbp_io *io;
    uint64_t since_ms;
};

struct lbp_backend {
    unsigned refs;
    struct lbp_pool *pool; /* borrowed; NULL once detached */
    struct event_base *base;
    char name[CM_ADDR_STRLEN];
    struct cm_addr addr;

    uint32_t outstanding;
    uint64_t requests, ok, failed_5xx, failed_connect, failed_reset, failed_timeout;
    double ewma_ms;
    bool has_ewma;
    uint64_t ewma_at_ms;                   /* time of the last sample */
    uint8_t window[(WINDOW_SIZE + 7) / 8]; /* bit set = failure */
    uint32_t win_count, win_pos, win_fail;

    uint32_t consecutive; /* consecutive failures */
    bool ejected;         /* until ejected_until_ms (lazily cleared) */
    uint64_t ejected_until_ms;
    uint64_t healthy_since_ms; /* end of the last ejection */
    uint32_t eject_level;      /* next ejection lasts base << level */
    uint32_t ejections;

    struct lbp_check check; /* lbp_check.c's; started while in a pool with checks */

    struct idle_conn *idle; /* owned connections, LIFO: oldest first */
    uint32_t idle_count, idle_cap;
    struct event *idle_timer; /* owned or NULL: closes the expired ones */
};

struct lbp_pool {
    struct event_base *base; /* borrowed */
    char *name;              /* owned */
    struct lbp_pool_params params;
    bool has_check;
    struct lbp_check_conf checks; /* the service's check, when has_check */

    struct lbp_backend **v; /* owned references, in set order */
    size_t count;
    size_t *scratch; /* count entries, for pick */

    uint64_t rng;
    uint64_t picks, panic_picks, ejections, ejections_skipped;
};

/* ---- small helpers ------------------------------------------------------ */

static bool backend_is_ejected(const struct lbp_backend *b, uint64_t now)
{
    return b->ejected && now < b->ejected_until_ms;
}

/* Clears an expired ejection (the backend becomes available again). */
static void backend_refresh(struct lbp_backend *b, uint64_t now)
{
    if (b->ejected && now >= b->ejected_until_ms) {
        b->ejected = false;
        b->healthy_since_ms = b->ejected_until_ms;
        b->consecutive = 0;
        cm_log_info("backend returns after ejection pool=\"%s\" backend=%s",
                    b->pool != NULL ? b->pool->name : "", b->name);
    }
}

static bool backend_check_up(const struct lbp_backend *b)
{
    return lbp_check_verdict(&b->check) != LBP_CHECK_DOWN;
}

/* ---- lifetime ----------------------------------------------------------- */

void lbp_pool_params_default(struct lbp_pool_params *p)
{
    p->eject_consecutive = 5;
    p->eject_base_ms = 30000;
    p->eject_max_ms = 300000;
    p->max_eject_percent = 50;
    p->idle_max = 1024;
    p->idle_timeout_ms = 15000;
    p->active_checks = true;
}

static void idle_close_all(struct lbp_backend *b)
{
    for (uint32_t i = 0; i < b->idle_count; i++)
        lbp_io_free(b->idle[i].io);
    b->idle_count = 0;
    if (b->idle_timer != NULL)
        event_del(b->idle_timer);
}

/* After every active check: a "down" backend keeps no idle connections. */
static void backend_check_result(void *arg, enum lbp_check_state verdict)
{
    if (verdict == LBP_CHECK_DOWN)
        idle_close_all(arg);
}

static struct lbp_backend *backend_new(struct lbp_pool *pool, const struct cm_addr *addr,
                                       const char *name)
{
    struct lbp_backend *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->pool = pool;
    b->base = pool->base;
    b->addr = *addr;
    cm_strlcpy(b->name, name, sizeof(b->name));
    lbp_check_init(&b->check, b->name, &b->addr, backend_check_result, b);
    return b;
}

/* Leaves the pool: no idle connections, no checks, no pool pointer. */
static void backend_detach(struct lbp_backend *b)
{
    idle_close_all(b);
    lbp_check_stop(&b->check);
    b->pool = NULL;
}

void lbp_backend_ref(struct lbp_backend *b)
{
    b->refs++;
}

void lbp_backend_unref(struct lbp_backend *b)
{
    if (b == NULL)
        return;
    if (--b->refs > 0)
        return;
    backend_detach(b);
    if (b->idle_timer != NULL)
        event_free(b->idle_timer);
    free(b->idle);
    free(b);
}

struct lbp_pool *lbp_pool_new(struct event_base *base, const char *name,
                              const struct lbp_pool_params *p, const struct cm_conf_check *check)
{
    struct lbp_pool *pool = calloc(1, sizeof(*pool));

    if (pool == NULL)
        return NULL;
    pool->base = base;
    pool->name = strdup(name != NULL ? name : "");
    if (pool->name == NULL)
        goto fail;
    if (p != NULL)
        pool->params = *p;
    else
        lbp_pool_params_default(&pool->params);
    /* The https client context only when checks will run. */
    if (check != NULL) {
        if (lbp_check_conf_init(&pool->checks, check, pool->params.active_checks, base, pool->name,
                                &pool->rng) != CM_OK)
            goto fail;
        pool->has_check = true;
    }
    cm_rand_seed(&pool->rng, pool);
    return pool;
fail:
    free(pool->name);
    free(pool);
    return NULL;
}

void lbp_pool_free(struct lbp_pool *pool)
{
    if (pool == NULL)
        return;
    for (size_t i = 0; i < pool->count; i++) {
        backend_detach(pool->v[i]);
        lbp_backend_unref(pool->v[i]);
    }
    free(pool->v);
    free(pool->scratch);
    lbp_check_conf_fini(&pool->checks);
    free(pool->name);
    free(pool);
}

/* ---- the set ------------------------------------------------------------ */

static struct lbp_backend *pool_find(const struct lbp_pool *pool, const char *name)
{
    for (size_t i = 0; i < pool->count; i++) {
        if (strcmp(pool->v[i]->name, name) == 0)
            return pool->v[i];
    }
    return NULL;
}

static bool checks_enabled(const struct lbp_pool *pool)
{
    return pool->has_check && pool->params.active_checks && pool->base != NULL;
}

/* Parses every address into @parsed and its canonical name into @names. */
static int parse_all(const char *const *addrs, size_t n, struct cm_addr *parsed,
                     char (*names)[CM_ADDR_STRLEN], char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (addrs[i] == NULL || cm_addr_parse(addrs[i], 0, &parsed[i]) != CM_OK) {
            snprintf(err, errlen, "bad backend address \"%s\" (want ip:port or [v6]:port)",
                     addrs[i] != NULL ? addrs[i] : "(null)");
            return CM_EINVAL;
        }
        cm_addr_format((const struct sockaddr *)&parsed[i].ss, names[i], sizeof(names[i]));
    }
    return CM_OK;
}

/* Installs @nv (@ncount references, taken over) as the set; removed backends are detached. */
static void pool_commit(struct lbp_pool *pool, struct lbp_backend **nv, size_t ncount,
                        size_t *nscratch)
{
    for (size_t i = 0; i < pool->count; i++) {
        struct lbp_backend *old = pool->v[i];
        bool kept = false;

        for (size_t j = 0; j < ncount && !kept; j++)
            kept = nv[j] == old;
        if (!kept)
            backend_detach(old);
        lbp_backend_unref(old);
    }
    free(pool->v);
    free(pool->scratch);
    pool->v = nv;
    pool->scratch = nscratch;
    pool->count = ncount;
    for (size_t i = 0; i < pool->count && checks_enabled(pool); i++) {
        if (!lbp_check_is_started(&pool->v[i]->check))
            lbp_check_start(&pool->v[i]->check, &pool->checks);
    }
}

int lbp_pool_set_backends(struct lbp_pool *pool, const char *const *addrs, size_t n, char *err,
                          size_t errlen)
{
    struct cm_addr *parsed = NULL;
    char(*names)[CM_ADDR_STRLEN] = NULL;
    struct lbp_backend **nv = NULL;
    size_t *nscratch = NULL;
    size_t ncount = 0;
    int rc = CM_OK;

    if (n > 0) {
        parsed = calloc(n, sizeof(*parsed));
        names = calloc(n, sizeof(*names));
        nv = calloc(n, sizeof(*nv));
        nscratch = calloc(n, sizeof(*nscratch));
        if (parsed == NULL || names == NULL || nv == NULL || nscratch == NULL) {
            rc = CM_ENOMEM;
            goto out;
        }
    }
    /* Validate everything first: a bad address changes nothing. */
    rc = parse_all(addrs, n, parsed, names, err, errlen);
    if (rc != CM_OK)
        goto out;
    /* Build the new set; kept backends move over with their state. */
    for (size_t i = 0; i < n; i++) {
        struct lbp_backend *b = NULL;
        bool dup = false;

        for (size_t j = 0; j < ncount && !dup; j++)
            dup = strcmp(nv[j]->name, names[i]) == 0;
        if (dup)
            continue;
        b = pool_find(pool, names[i]);
        if (b != NULL)
            lbp_backend_ref(b);
        else
            b = backend_new(pool, &parsed[i], names[i]);
        if (b == NULL) {
            rc = CM_ENOMEM;
            goto out;
        }
        nv[ncount++] = b;
    }
    pool_commit(pool, nv, ncount, nscratch);
    nv = NULL; /* moved into the pool */
    nscratch = NULL;
out:
    /* On failure: new backends die here, kept ones lose the extra reference. */
    for (size_t i = 0; nv != NULL && i < ncount; i++)
        lbp_backend_unref(nv[i]);
    free(nv);
    free(nscratch);
    free(names);
    free(parsed);
    return rc;
}

size_t lbp_pool_size(const struct lbp_pool *pool)
{
    return pool->count;
}

/* ---- choice ------------------------------------------------------------- */

static double pool_mean_ewma(const struct lbp_pool *pool)
{
    double sum = 0;
    size_t k = 0;

    for (size_t i = 0; i < pool->count; i++) {
        if (pool->v[i]->has_ewma) {
            sum += pool->v[i]->ewma_ms;
            k++;
        }
    }
    return k > 0 ? sum / (double)k : 1.0;
}

/* (outstanding + 1) x latency; @mean (< 0: not computed yet) is filled on demand. */
static double backend_score(const struct lbp_pool *pool, const struct lbp_backend *b, uint64_t now,
                            double *mean)
{
    double lat;

    if (!b->has_ewma || now - b->ewma_at_ms >= STALE_HALF_LIFE_MS) {
        if (*mean < 0)
            *mean = pool_mean_ewma(pool);
    }
    if (!b->has_ewma) {
        lat = *mean;
    } else if (now - b->ewma_at_ms >= STALE_HALF_LIFE_MS) {
        uint64_t halvings = (now - b->ewma_at_ms) / STALE_HALF_LIFE_MS;

        lat = halvings >= 30 ? *mean
                             : *mean + (b->ewma_ms - *mean) / (double)(1u << (unsigned)halvings);
    } else {
        lat = b->ewma_ms;
    }
    /* A zero latency would make outstanding irrelevant. */
    if (lat < 0.001)
        lat = 0.001;
    return ((double)b->outstanding + 1.0) * lat;
}

struct lbp_backend *lbp_pool_pick(struct lbp_pool *pool, const struct lbp_backend *exclude)
{
    uint64_t now = cm_mono_ms();
    size_t k = 0;
    struct lbp_backend *a, *c, *won;
    double mean = -1.0;
    uint32_t i, j;

    for (size_t x = 0; x < pool->count; x++) {
        struct lbp_backend *b = pool->v[x];

        backend_refresh(b, now);
        if (b != exclude && !b->ejected && backend_check_up(b))
            pool->scratch[k++] = x;
    }
    if (k == 0) {
        /* Panic: everyone but @exclude, as if healthy. */
        for (size_t x = 0; x < pool->count; x++) {
            if (pool->v[x] != exclude)
                pool->scratch[k++] = x;
        }
        if (k == 0)
            return NULL;
        pool->panic_picks++;
    }
    pool->picks++;
    if (k == 1) {
        won = pool->v[pool->scratch[0]];
    } else {
        i = cm_rand_below(&pool->rng, (uint32_t)k);
        j = cm_rand_below(&pool->rng, (uint32_t)k - 1u);
        if (j >= i)
            j++;
        a = pool->v[pool->scratch[i]];
        c = pool->v[pool->scratch[j]];
        won = backend_score(pool, c, now, &mean) < backend_score(pool, a, now, &mean) ? c : a;
    }
    lbp_backend_ref(won);
    return won;
}

/* ---- outcomes and ejection --------------------------------------------- */

static void window_push(struct lbp_backend *b, bool failed)
{
    uint32_t byte = b->win_pos / 8u;
    uint8_t bit = (uint8_t)(1u << (b->win_pos % 8u));

    if (b->win_count == WINDOW_SIZE) {
        if (b->window[byte] & bit)
            b->win_fail--;
    } else {
        b->win_count++;
    }
    if (failed) {
        b->window[byte] |= bit;
        b->win_fail++;
    } else {
        b->window[byte] &= (uint8_t)~bit;
    }
    b->win_pos = (b->win_pos + 1u) % WINDOW_SIZE;
}

static size_t pool_ejected_count(const struct lbp_pool *pool, uint64_t now)
{
    size_t k = 0;

    for (size_t i = 0; i < pool->count; i++)
        k += backend_is_ejected(pool->v[i], now) ? 1u : 0u;
    return k;
}

static void backend_eject(struct lbp_backend *b, uint64_t now)
{
    struct lbp_pool *pool = b->pool;
    const struct lbp_pool_params *p = &pool->params;
    uint64_t dur;

    b->consecutive = 0;
    if ((pool_ejected_count(pool, now) + 1u) * 100u >
        (uint64_t)p->max_eject_percent * pool->count) {
        pool->ejections_skipped++;
        cm_log_info("ejection skipped (max_eject_percent) pool=\"%s\" backend=%s", pool->name,
                    b->name);
        return;
    }
    /* A backend healthy for eject_max_ms starts over at eject_base_ms. */
    if (b->healthy_since_ms != 0 && now - b->healthy_since_ms >= p->eject_max_ms)
        b->eject_level = 0;
    dur = (uint64_t)p->eject_base_ms << b->eject_level;
    if (dur > p->eject_max_ms)
        dur = p->eject_max_ms;
    else if (b->eject_level < EJECT_LEVEL_MAX)
        b->eject_level++;
    b->ejected = true;
    b->ejected_until_ms = now + dur;
    b->ejections++;
    pool->ejections++;
    idle_close_all(b);
    cm_log_warn("backend ejected pool=\"%s\" backend=%s duration_ms=%llu ejections=%u", pool->name,
                b->name, (unsigned long long)dur, b->ejections);
}

void lbp_backend_begin(struct lbp_backend *b)
{
    b->outstanding++;
}

void lbp_backend_end(struct lbp_backend *b, enum lbp_outcome o, uint64_t latency_us)
{
    uint64_t now;
    bool failed;

    if (b->outstanding > 0)
        b->outstanding--;
    if (o == LBP_OUTCOME_ABANDONED)
        return;
    now = cm_mono_ms();
    backend_refresh(b, now); /* an ended ejection starts a new streak first */
    b->requests++;
    switch (o) {
    case LBP_OUTCOME_OK:
        b->ok++;
        break;
    case LBP_OUTCOME_5XX:
        b->failed_5xx++;
        break;
    case LBP_OUTCOME_CONNECT:
        b->failed_connect++;
        break;
    case LBP_OUTCOME_RESET:
        b->failed_reset++;
        break;
    case LBP_OUTCOME_TIMEOUT:
    default:
        b->failed_timeout++;
        break;
    }
    if (o == LBP_OUTCOME_OK || o == LBP_OUTCOME_5XX) {
        double ms = (double)latency_us / 1000.0;

        b->ewma_ms = b->has_ewma ? EWMA_ALPHA * ms + (1.0 - EWMA_ALPHA) * b->ewma_ms : ms;
        b->has_ewma = true;
        b->ewma_at_ms = now;
    }
    failed = o != LBP_OUTCOME_OK;
    window_push(b, failed);
    if (!failed) {
        b->consecutive = 0;
        return;
    }
    b->consecutive++;
    if (b->pool == NULL || b->pool->params.eject_consecutive == 0)
        return;
    if (!b->ejected && b->consecutive >= b->pool->params.eject_consecutive)
        backend_eject(b, now);
}

const struct sockaddr *lbp_backend_sockaddr(const struct lbp_backend *b, socklen_t *len)
{
    if (len != NULL)
        *len = b->addr.len;
    return (const struct sockaddr *)&b->addr.ss;
}

const char *lbp_backend_name(const struct lbp_backend *b)
{
    return b->name;
}

/* ---- idle connections --------------------------------------------------- */

static void idle_remove(struct lbp_backend *b, struct lbp_io *io)
{
    for (uint32_t i = 0; i < b->idle_count; i++) {
        if (b->idle[i].io == io) {
            memmove(&b->idle[i], &b->idle[i + 1], (b->idle_count - i - 1) * sizeof(b->idle[0]));
            b->idle_count--;
            break;
        }
    }
    lbp_io_free(io);
}

/* An idle upstream must not speak: any byte (or EOF) closes it. */
static void idle_read_cb(struct lbp_io *io, void *arg)
{
    idle_remove(arg, io);
}

static void idle_event_cb(struct lbp_io *io, short what, void *arg)
{
    (void)what; /* EOF or error: both close */
    idle_remove(arg, io);
}

static void idle_timer_arm(struct lbp_backend *b, uint64_t now)
{
    uint64_t due, wait;
    struct timeval tv;

    if (b->idle_count == 0 || b->pool == NULL)
        return;
    due = b->idle[0].since_ms + b->pool->params.idle_timeout_ms;
    wait = due > now ? due - now : 0;
    tv = cm_ms_to_timeval(wait);
    event_add(b->idle_timer, &tv);
}

/* The oldest idle connections are at the bottom: close those past the timeout. */
static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_backend *b = arg;
    uint64_t now = cm_mono_ms();
    uint32_t n = 0;

    (void)fd;
    (void)what;
    if (b->pool == NULL)
        return;
    while (n < b->idle_count && b->idle[n].since_ms + b->pool->params.idle_timeout_ms <= now)
        lbp_io_free(b->idle[n++].io);
    if (n > 0) {
        memmove(&b->idle[0], &b->idle[n], (b->idle_count - n) * sizeof(b->idle[0]));
        b->idle_count -= n;
    }
    idle_timer_arm(b, now);
}

void lbp_backend_idle_put(struct lbp_backend *b, struct lbp_io *io)
{
    const struct lbp_pool_params *p;

    if (io == NULL)
        return;
    if (b->pool == NULL || b->ejected || !backend_check_up(b) ||
        evbuffer_get_length(lbp_io_input(io)) > 0) {
        lbp_io_free(io);
        return;
    }
    p = &b->pool->params;
    if (b->idle_count >= p->idle_max || p->idle_timeout_ms == 0) {
        lbp_io_free(io);
        return;
    }
    if (b->idle_timer == NULL) {
        b->idle_timer = evtimer_new(b->base, idle_timer_cb, b);
        if (b->idle_timer == NULL) {
            lbp_io_free(io);
            return;
        }
    }
    if (b->idle_count == b->idle_cap) {
        uint32_t ncap = b->idle_cap == 0 ? 4u : b->idle_cap * 2u;
        struct idle_conn *nv;

        if (ncap > p->idle_max)
            ncap = p->idle_max;
        nv = realloc(b->idle, ncap * sizeof(*nv));
        if (nv == NULL) {
            lbp_io_free(io);
            return;
        }
        b->idle = nv;
        b->idle_cap = ncap;
    }
    lbp_io_setcb(io, idle_read_cb, NULL, idle_event_cb, b);
    lbp_io_read_enable(io, true);
    b->idle[b->idle_count].io = io;
    b->idle[b->idle_count].since_ms = cm_mono_ms();
    if (b->idle_count++ == 0)
        idle_timer_arm(b, b->idle[0].since_ms);
}

void lbp_pool_set_idle(struct lbp_pool *pool, uint32_t idle_max, uint32_t idle_timeout_ms)
{
    pool->params.idle_max = idle_max;
    pool->params.idle_timeout_ms = idle_timeout_ms;
}

struct lbp_io *lbp_backend_idle_take(struct lbp_backend *b)
{
    while (b->idle_count > 0) {
        struct lbp_io *io = b->idle[--b->idle_count].io;

        /* Data or EOF that the loop has not delivered yet: not reusable. */
        if (evbuffer_get_length(lbp_io_input(io)) > 0) {
            lbp_io_free(io);
            continue;
        }
        lbp_io_setcb(io, NULL, NULL, NULL, NULL);
        return io;
    }
    if (b->idle_timer != NULL)
        event_del(b->idle_timer);
    return NULL;
}

/* ---- stats -------------------------------------------------------------- */

void lbp_pool_get_stats(const struct lbp_pool *pool, struct lbp_pool_stats *out)
{
    uint64_t now = cm_mono_ms();

    memset(out, 0, sizeof(*out));
    out->backends = pool->count;
    for (size_t i = 0; i < pool->count; i++) {
        const struct lbp_backend *b = pool->v[i];

        if (!backend_is_ejected(b, now) && backend_check_up(b))
            out->available++;
    }
    out->picks = pool->picks;
    out->panic_picks = pool->panic_picks;
    out->ejections = pool->ejections;
    out->ejections_skipped = pool->ejections_skipped;
}

static void backend_stats(const struct lbp_backend *b, uint64_t now, struct lbp_backend_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->name = b->name;
    out->check_state = lbp_check_verdict(&b->check);
    out->check_up = backend_check_up(b);
    out->ejected = backend_is_ejected(b, now);
    out->ejected_ms_left = out->ejected ? b->ejected_until_ms - now : 0;
    out->ejections = b->ejections;
    out->outstanding = b->outstanding;
    out->requests = b->requests;
    out->ok = b->ok;
    out->failed_5xx = b->failed_5xx;
    out->failed_connect = b->failed_connect;
    out->failed_reset = b->failed_reset;
    out->failed_timeout = b->failed_timeout;
    out->latency_ewma_ms = b->has_ewma ? b->ewma_ms : -1.0;
    out->success_rate =
        b->win_count > 0 ? (double)(b->win_count - b->win_fail) / (double)b->win_count : 1.0;
    out->idle = b->idle_count;
    out->consecutive_failures = b->consecutive;
    out->checks = lbp_check_runs(&b->check);
}

void lbp_pool_backend_stats(const struct lbp_pool *pool, size_t i, struct lbp_backend_stats *out)
{
    if (i >= pool->count) {
        memset(out, 0, sizeof(*out));
        return;
    }
    backend_stats(pool->v[i], cm_mono_ms(), out);
}

static const char *pool_check_name(const struct lbp_pool *pool, const struct lbp_backend_stats *s)
{
    if (!checks_enabled(pool))
        return "off";
    return lbp_check_state_name(s->check_state);
}

static json_t *backend_json(const struct lbp_pool *pool, const struct lbp_backend_stats *s)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:I}", "address",
        s->name, "check", pool_check_name(pool, s), "ejected", s->ejected, "ejected_ms_left",
        (json_int_t)s->ejected_ms_left, "ejections", (json_int_t)s->ejections, "outstanding",
        (json_int_t)s->outstanding, "requests", (json_int_t)s->requests, "ok", (json_int_t)s->ok,
        "failed_5xx", (json_int_t)s->failed_5xx, "failed_connect", (json_int_t)s->failed_connect,
        "failed_reset", (json_int_t)s->failed_reset, "failed_timeout",
        (json_int_t)s->failed_timeout, "success_rate", s->success_rate, "idle", (json_int_t)s->idle,
        "consecutive_failures", (json_int_t)s->consecutive_failures);

    if (o != NULL &&
        json_object_set_new(o, "latency_ewma_ms",
                            s->latency_ewma_ms < 0 ? json_null() : json_real(s->latency_ewma_ms)) !=
            0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *lbp_pool_json(const struct lbp_pool *pool)
{
    json_t *arr = json_array();
    json_t *doc = NULL;
    struct lbp_pool_stats ps;
    uint64_t now = cm_mono_ms();

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < pool->count; i++) {
        struct lbp_backend_stats s;

        backend_stats(pool->v[i], now, &s);
        if (json_array_append_new(arr, backend_json(pool, &s)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    lbp_pool_get_stats(pool, &ps);
    /* "o" steals @arr, also when the pack fails. */
    doc =
        json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:I}", "pool", pool->name, "backends", arr,
                  "available", (json_int_t)ps.available, "picks", (json_int_t)ps.picks,
                  "panic_picks", (json_int_t)ps.panic_picks, "ejections", (json_int_t)ps.ejections,
                  "ejections_skipped", (json_int_t)ps.ejections_skipped);
    return doc;
}

/* ---- metrics ------------------------------------------------------------ */

enum stat_id {
    ST_REQUESTS = 0,
    ST_SUCCESS_RATE,
    ST_LATENCY_S,
    ST_EJECTED,
    ST_EJECTIONS,
    ST_OUTSTANDING,
    ST_CHECK_UP,
    ST_IDLE,
    ST_OK,
    ST_5XX,
    ST_CONNECT,
    ST_RESET,
    ST_TIMEOUT,
    ST_OUTCOMES, /* a family of ST_OK .. ST_TIMEOUT, by outcome label */
};

static double stat_value(const struct lbp_backend_stats *s, enum stat_id id)
{
    switch (id) {
    case ST_REQUESTS:
        return (double)s->requests;
    case ST_SUCCESS_RATE:
        return s->success_rate;
    case ST_LATENCY_S:
        return s->latency_ewma_ms / 1000.0;
    case ST_EJECTED:
        return s->ejected ? 1 : 0;
    case ST_EJECTIONS:
        return (double)s->ejections;
    case ST_OUTSTANDING:
        return (double)s->outstanding;
    case ST_CHECK_UP:
        return s->check_up ? 1 : 0;
    case ST_IDLE:
        return (double)s->idle;
    case ST_OK:
        return (double)s->ok;
    case ST_5XX:
        return (double)s->failed_5xx;
    case ST_CONNECT:
        return (double)s->failed_connect;
    case ST_RESET:
        return (double)s->failed_reset;
    case ST_TIMEOUT:
        return (double)s->failed_timeout;
    case ST_OUTCOMES:
    default:
        return 0;
    }
}

/* Per-backend families. */
static const struct {
    const char *name, *type, *help;
    enum stat_id stat;
} backend_metrics[] = {
    {"fedgslb_proxy_backend_requests_total", "counter",
     "Requests that ended on the backend (abandoned ones excluded).", ST_REQUESTS},
    {"fedgslb_proxy_backend_outcomes_total", "counter",
     "Request outcomes per backend: ok, 5xx, connect, reset, timeout.", ST_OUTCOMES},
    {"fedgslb_proxy_backend_success_rate", "gauge",
     "Share of successes over the backend's last 100 requests.", ST_SUCCESS_RATE},
    {"fedgslb_proxy_backend_latency_ewma_seconds", "gauge",
     "Moving average of the time to the response head (absent without samples).", ST_LATENCY_S},
    {"fedgslb_proxy_backend_ejected", "gauge", "1 while the backend is ejected as an outlier.",
     ST_EJECTED},
    {"fedgslb_proxy_backend_ejections_total", "counter", "Outlier ejections of the backend.",
     ST_EJECTIONS},
    {"fedgslb_proxy_backend_outstanding", "gauge", "Requests in flight to the backend.",
     ST_OUTSTANDING},
    {"fedgslb_proxy_backend_check_up", "gauge", "Active check verdict: 1 up or unknown, 0 down.",
     ST_CHECK_UP},
    {"fedgslb_proxy_backend_idle_connections", "gauge",
     "Idle keep-alive connections held for the backend.", ST_IDLE},
};

static const struct {
    const char *outcome;
    enum stat_id stat;
} outcome_metrics[] = {
    {"ok", ST_OK},       {"5xx", ST_5XX},         {"connect", ST_CONNECT},
    {"reset", ST_RESET}, {"timeout", ST_TIMEOUT},
};

static const struct {
    const char *name, *help;
    size_t offset; /* of a uint64_t in struct lbp_pool */
} pool_metrics[] = {
    {"fedgslb_proxy_pool_picks_total", "Backend choices made.", offsetof(struct lbp_pool, picks)},
    {"fedgslb_proxy_pool_panic_picks_total", "Choices made with no available backend (panic mode).",
     offsetof(struct lbp_pool, panic_picks)},
    {"fedgslb_proxy_pool_ejections_skipped_total",
     "Ejections skipped because of max_eject_percent.",
     offsetof(struct lbp_pool, ejections_skipped)},
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void metric_sample(struct cm_buf *out, const char *name, const char *pool,
                          const char *backend, const char *outcome, double v)
{
    struct cm_buf lbl;

    cm_buf_init(&lbl, 4096);
    cm_metrics_label(&lbl, "pool", pool);
    if (backend != NULL)
        cm_metrics_label(&lbl, "backend", backend);
    if (outcome != NULL)
        cm_metrics_label(&lbl, "outcome", outcome);
    cm_metrics_sample(out, name, cm_buf_cstr(&lbl), v);
    cm_buf_fini(&lbl);
}

static void metric_backend(struct cm_buf *out, size_t m, const struct lbp_pool *pool,
                           const struct lbp_backend_stats *s)
{
    const char *name = backend_metrics[m].name;
    enum stat_id id = backend_metrics[m].stat;

    if (id == ST_OUTCOMES) {
        for (size_t o = 0; o < ARRAY_LEN(outcome_metrics); o++)
            metric_sample(out, name, pool->name, s->name, outcome_metrics[o].outcome,
                          stat_value(s, outcome_metrics[o].stat));
    } else if (id != ST_LATENCY_S || s->latency_ewma_ms >= 0) {
        metric_sample(out, name, pool->name, s->name, NULL, stat_value(s, id));
    }
}

void lbp_pools_metrics(const struct lbp_pool *const *pools, size_t n, struct cm_buf *out)
{
    uint64_t now = cm_mono_ms();

    for (size_t m = 0; m < ARRAY_LEN(backend_metrics); m++) {
        cm_metrics_family(out, backend_metrics[m].name, backend_metrics[m].type,
                          backend_metrics[m].help);
        for (size_t p = 0; p < n; p++) {
            for (size_t i = 0; i < pools[p]->count; i++) {
                struct lbp_backend_stats s;

                backend_stats(pools[p]->v[i], now, &s);
                metric_backend(out, m, pools[p], &s);
            }
        }
    }
    for (size_t m = 0; m < ARRAY_LEN(pool_metrics); m++) {
        cm_metrics_family(out, pool_metrics[m].name, "counter", pool_metrics[m].help);
        for (size_t p = 0; p < n; p++) {
            uint64_t v;

            memcpy(&v, (const char *)pools[p] + pool_metrics[m].offset, sizeof(v));
            metric_sample(out, pool_metrics[m].name, pools[p]->name, NULL, NULL, (double)v);
        }
    }
}

void lbp_pool_metrics(const struct lbp_pool *pool, struct cm_buf *out)
{
    lbp_pools_metrics(&pool, 1, out);
}
