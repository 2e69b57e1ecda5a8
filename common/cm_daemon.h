/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_daemon.h -- the loop scaffolding every daemon shares: SIGHUP (reload),
 * SIGTERM and SIGINT (stop) and an optional 1 s tick, as events of the
 * daemon's event loop, with one setup and one teardown.
 */
#ifndef COMMON_CM_DAEMON_H
#define COMMON_CM_DAEMON_H

struct event;
struct event_base;

/** SIGHUP, or the 1 s tick. */
typedef void cm_daemon_fn(void *arg);
/** SIGTERM or SIGINT (@sig says which; a daemon may drain first). */
typedef void cm_daemon_stop_fn(void *arg, int sig);

struct cm_daemon_hooks {
    cm_daemon_fn *reload;    /* SIGHUP */
    cm_daemon_stop_fn *stop; /* SIGTERM, SIGINT */
    cm_daemon_fn *tick;      /* every second; NULL = no tick */
    void *arg;               /* borrowed, given to every hook */
};

/* Embedded by the daemon; the fields are private. */
struct cm_daemon_events {
    struct cm_daemon_hooks hooks;
    struct event *hup, *term, *intr, *tick; /* owned */
};

/**
 * Registers the signal events (and the tick) on @base (borrowed). CM_ENOMEM
 * when an event cannot be made or added; call cm_daemon_events_fini() then
 * too.
 */
int cm_daemon_events_start(struct cm_daemon_events *e, struct event_base *base,
                           const struct cm_daemon_hooks *hooks);
/** Frees the events; a zeroed or half-started @e is fine. */
void cm_daemon_events_fini(struct cm_daemon_events *e);

#endif /* COMMON_CM_DAEMON_H */
