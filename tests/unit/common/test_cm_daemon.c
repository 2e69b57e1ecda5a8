/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_daemon.c -- the daemons' loop scaffolding: a real SIGHUP reaches
 * the reload hook, SIGTERM and SIGINT the stop hook with their number, and
 * the tick runs every second; teardown leaves no event behind.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/cm_daemon.h"
#include "common/cm_err.h"

struct seen {
    struct event_base *base;
    int reloads, ticks, last_stop;
};

static void on_reload(void *arg)
{
    struct seen *s = arg;

    s->reloads++;
    event_base_loopbreak(s->base);
}

static void on_stop(void *arg, int sig)
{
    struct seen *s = arg;

    s->last_stop = sig;
    event_base_loopbreak(s->base);
}

static void on_tick(void *arg)
{
    struct seen *s = arg;

    s->ticks++;
    event_base_loopbreak(s->base);
}

static void test_signals_and_tick(void **state)
{
    struct seen s = {0};
    struct cm_daemon_events ev;
    const struct cm_daemon_hooks hooks = {
        .reload = on_reload, .stop = on_stop, .tick = on_tick, .arg = &s};

    (void)state;
    memset(&ev, 0, sizeof(ev));
    s.base = event_base_new();
    assert_non_null(s.base);
    assert_int_equal(cm_daemon_events_start(&ev, s.base, &hooks), CM_OK);

    raise(SIGHUP);
    event_base_dispatch(s.base);
    assert_int_equal(s.reloads, 1);
    assert_int_equal(s.last_stop, 0);

    raise(SIGTERM);
    event_base_dispatch(s.base);
    assert_int_equal(s.last_stop, SIGTERM);
    raise(SIGINT);
    event_base_dispatch(s.base);
    assert_int_equal(s.last_stop, SIGINT);
    assert_int_equal(s.reloads, 1);

    event_base_dispatch(s.base); /* nothing else pending: the tick ends it */
    assert_int_equal(s.ticks, 1);

    cm_daemon_events_fini(&ev);
    cm_daemon_events_fini(&ev); /* idempotent */
    event_base_free(s.base);
}

static void test_no_tick(void **state)
{
    struct seen s = {0};
    struct cm_daemon_events ev;
    const struct cm_daemon_hooks hooks = {.reload = on_reload, .stop = on_stop, .arg = &s};

    (void)state;
    memset(&ev, 0, sizeof(ev));
    s.base = event_base_new();
    assert_int_equal(cm_daemon_events_start(&ev, s.base, &hooks), CM_OK);
    assert_null(ev.tick);
    cm_daemon_events_fini(&ev);
    event_base_free(s.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signals_and_tick),
        cmocka_unit_test(test_no_tick),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
