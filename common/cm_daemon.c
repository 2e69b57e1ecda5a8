/* SPDX-License-Identifier: Apache-2.0 */
/* cm_daemon.c -- signals and the tick of a daemon's loop (see cm_daemon.h). */
#include "common/cm_daemon.h"

#include <signal.h>
#include <stddef.h>
#include <sys/time.h>

#include <event2/event.h>

#include "common/cm_err.h"

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct cm_daemon_events *e = arg;

    (void)what;
    if (sig == SIGHUP)
        e->hooks.reload(e->hooks.arg);
    else
        e->hooks.stop(e->hooks.arg, (int)sig);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct cm_daemon_events *e = arg;

    (void)fd;
    (void)what;
    e->hooks.tick(e->hooks.arg);
}

int cm_daemon_events_start(struct cm_daemon_events *e, struct event_base *base,
                           const struct cm_daemon_hooks *hooks)
{
    struct timeval one_s = {1, 0};

    e->hooks = *hooks;
    e->hup = evsignal_new(base, SIGHUP, on_signal, e);
    e->term = evsignal_new(base, SIGTERM, on_signal, e);
    e->intr = evsignal_new(base, SIGINT, on_signal, e);
    if (e->hup == NULL || e->term == NULL || e->intr == NULL || evsignal_add(e->hup, NULL) != 0 ||
        evsignal_add(e->term, NULL) != 0 || evsignal_add(e->intr, NULL) != 0)
        return CM_ENOMEM;
    if (hooks->tick == NULL)
        return CM_OK;
    e->tick = event_new(base, -1, EV_PERSIST, on_tick, e);
    if (e->tick == NULL || event_add(e->tick, &one_s) != 0)
        return CM_ENOMEM;
    return CM_OK;
}

void cm_daemon_events_fini(struct cm_daemon_events *e)
{
    struct event **evs[] = {&e->hup, &e->term, &e->intr, &e->tick};

    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL)
            event_free(*evs[i]);
        *evs[i] = NULL;
    }
}
