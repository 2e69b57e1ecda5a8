/* SPDX-License-Identifier: Apache-2.0 */
/* io_loop.h -- what the stream tests (test_lbp_io.c, test_lbp_io_tls.c)
 * share: running a real event loop until a condition holds or a generous
 * deadline passes (no timing assertions), a tick that keeps EVLOOP_ONCE
 * returning, and a byte pattern whose corruption shows. */
#ifndef TESTS_UNIT_LBPROXY_IO_LOOP_H
#define TESTS_UNIT_LBPROXY_IO_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <event2/event.h>

#define DEADLINE_MS 20000 /* generous bound for a condition that should hold soon */
#define SETTLE_MS   200   /* how long "nothing more happens" is watched */

static inline long io_loop_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A persistent timer on this keeps event_base_loop(EVLOOP_ONCE) returning. */
static inline void io_loop_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

typedef bool io_loop_pred_fn(void *arg);
typedef void io_loop_step_fn(void *arg);

/*
 * Runs @base until @pred(@arg) holds or @ms pass (@pred NULL: for @ms);
 * @step(@arg), when given, runs after every loop pass. Returns whether
 * @pred holds.
 */
static inline bool io_loop_run(struct event_base *base, io_loop_pred_fn *pred,
                               io_loop_step_fn *step, void *arg, long ms)
{
    long end = io_loop_now_ms() + ms;

    while (pred == NULL || !pred(arg)) {
        if (io_loop_now_ms() >= end)
            return pred != NULL && pred(arg);
        event_base_loop(base, EVLOOP_ONCE);
        if (step != NULL)
            step(arg);
    }
    return true;
}

static inline void io_loop_fill_pattern(unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)((i * 7u + i / 251u) & 0xffu);
}

#endif /* TESTS_UNIT_LBPROXY_IO_LOOP_H */
