/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_probe.h -- data-plane probes of members' load balancers, with RTT.
 *
 *   hc_probes (one per process, on the shared hc_http multi handle)
 *    +- probe ... one per (service, member, address): its check, its timer,
 *                 the verdict with rise/fall hysteresis, recent RTT samples
 *
 * Kubernetes readiness is not health: a probe exercises the path a client
 * takes. Types (cm_conf_check.type):
 *   http / https  GET check.path; the status must be within
 *                 [status_min, status_max] and, if expect_body is set, the
 *                 first 4 KiB of the body must contain it. The Host header
 *                 and TLS SNI / verification name are check.host (default:
 *                 the address); the connection goes to the address anyway
 *                 (CURLOPT_CONNECT_TO). TLS verification on unless
 *                 tls_verify is false. A fresh connection every time
 *                 (no reuse), so every probe measures the path.
 *   tcp           connect only.
 *
 * Scheduling: every interval_ms with +-10 % jitter; the first run of a new
 * probe at a random point within min(interval_ms, 1 s). A probe still running
 * when its next turn comes skips that turn (counted; logged at debug). At most
 * params.max_in_flight probes run at once: a turn over the cap is deferred by
 * a few ms until a slot frees (counted), never dropped silently.
 *
 * Verdict: unknown until the first result, which sets it directly. Then
 * `fall` consecutive failures turn an up probe down and `rise` consecutive
 * successes turn a down probe up. `pending` is true while the last result
 * disagrees with the verdict (fewer than rise/fall in a row).
 *
 * RTT sample per successful probe: tcp -> TCP connect time; http(s) -> time
 * from the request sent to the first response byte (STARTTRANSFER minus
 * PRETRANSFER), which a user-space relay delays as a WAN would. Kept as an
 * EWMA (alpha 0.3) and the median of the last 16 samples. `rtt_ms` (the
 * figure reported and ranked on) is the median, but it only moves when the
 * median differs from it by more than max(1 ms, 10 %), so that noise does
 * not produce a new state document after every probe.
 *
 * Changes that matter -- the first result, and anything the state document
 * shows of a probe: verdict, pending, the reported rtt_ms, the error text,
 * the count of failures (successes) while the verdict is in question --
 * call the changed callback; the caller debounces. A probe failing the same
 * way again changes nothing.
 */
#ifndef HEALTH_HC_PROBE_H
#define HEALTH_HC_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/cm_conf.h"

struct hc_http;
struct hc_probes;

#define HC_PROBE_ERR_MAX     160
#define HC_PROBE_RTT_SAMPLES 16

struct hc_probes_params {
    uint32_t max_in_flight; /* default 512 */
    /* IP literal the probes connect from ("" = any): a multi-homed checker
     * probes from its public address (health.probe_source). */
    char source[64];
};

enum hc_probe_verdict {
    HC_PROBE_UNKNOWN = 0, /* no result yet */
    HC_PROBE_UP = 1,
    HC_PROBE_DOWN = 2,
};

struct hc_probe_status {
    enum hc_probe_verdict verdict;
    bool pending;                      /* last result disagrees with the verdict */
    bool last_ok;                      /* the last result */
    uint32_t streak;                   /* consecutive results equal to last_ok */
    uint32_t rise, fall;               /* from the check, for "probe 2/3 failed" */
    double rtt_ms;                     /* reported median; < 0 when no sample yet */
    double rtt_ewma_ms;                /* < 0 when no sample yet */
    double connect_ms;                 /* last TCP connect time; < 0 unknown */
    char last_error[HC_PROBE_ERR_MAX]; /* in words: "connection refused", "status 500",
                                          "body lacks \"ok\"", "timeout after 3000 ms";
                                          "" after a success */
    uint64_t runs, failures, skipped, deferred;
};

/**
 * Verdict, pending state or reported RTT changed for some probe. Called from
 * the loop once the probe's status is updated; it may reconcile
 * (mark/ensure/sweep) or free the set.
 */
typedef void hc_probes_changed_fn(void *arg);

void hc_probes_params_default(struct hc_probes_params *p);

/** @base and @http borrowed, must outlive the set. NULL on ENOMEM. */
struct hc_probes *hc_probes_new(struct event_base *base, struct hc_http *http,
                                const struct hc_probes_params *p, hc_probes_changed_fn *changed,
                                void *arg);
/** Cancels every probe in flight (no callbacks). Accepts NULL. */
void hc_probes_free(struct hc_probes *ps);

/** Changes the source address (reload); applies from each probe's next run. */
void hc_probes_set_source(struct hc_probes *ps, const char *source);

/*
 * Reconciling with the wanted set, after every report rebuild:
 *   hc_probes_mark(ps);
 *   for each (service, member, address) wanted: hc_probes_ensure(...);
 *   hc_probes_sweep(ps);    -- stops and frees every probe not ensured
 * A probe whose key already exists keeps its verdict and samples; if its
 * target or check changed, the new ones apply from its next turn.
 */
void hc_probes_mark(struct hc_probes *ps);

/**
 * Wants the probe for (@service "ns/name", @member, @address). @address is an
 * IPv4/IPv6 literal or a host name (for hostname-only load balancers); @port
 * the port to probe; @check borrowed for the call (copied: path, host and
 * expect_body included); @path overrides check->path when not NULL (the
 * fedgslb.io/health-path annotation). Starts a new probe, or updates an
 * existing one. CM_ENOMEM / CM_EINVAL.
 */
int hc_probes_ensure(struct hc_probes *ps, const char *service, const char *member,
                     const char *address, uint16_t port, const struct cm_conf_check *check,
                     const char *path);

void hc_probes_sweep(struct hc_probes *ps);

/** Stops and forgets the probe (@service, @member, @address), if there is one. */
void hc_probes_remove(struct hc_probes *ps, const char *service, const char *member,
                      const char *address);

/** A probe's service and member (borrowed for the call). */
typedef void hc_probes_each_fn(void *arg, const char *service, const char *member);

/**
 * Hands over every probe whose reported status changed (what the changed
 * callback announced) since the last call, once each, and forgets them:
 * the report re-judges only those entries. The first call on a set returns
 * true without calling @fn (a new set: everything is new to its consumer);
 * later ones false. One consumer takes them.
 */
bool hc_probes_take_changed(struct hc_probes *ps, hc_probes_each_fn *fn, void *arg);

/** The probe's status (borrowed, valid until the loop runs again), NULL if none. */
const struct hc_probe_status *hc_probes_get(const struct hc_probes *ps, const char *service,
                                            const char *member, const char *address);

/**
 * Median of the reported rtt_ms of every probe of @member that has one, or
 * -1 when none has: the member's row in the state document.
 */
double hc_probes_member_rtt(const struct hc_probes *ps, const char *member);

/* Why a probe failed, for metrics (the reason text says more). */
enum hc_probe_fail {
    HC_PROBE_FAIL_STATUS = 0,      /* an HTTP status outside the accepted range */
    HC_PROBE_FAIL_BODY = 1,        /* the body lacks expect_body */
    HC_PROBE_FAIL_TIMEOUT = 2,     /* no answer within timeout_ms */
    HC_PROBE_FAIL_REFUSED = 3,     /* connection refused */
    HC_PROBE_FAIL_UNREACHABLE = 4, /* host or network unreachable */
    HC_PROBE_FAIL_TLS = 5,         /* TLS handshake or certificate */
    HC_PROBE_FAIL_OTHER = 6,
    HC_PROBE_FAIL_COUNT = 7,
};

/** "status", "body", "timeout", "refused", "unreachable", "tls", "other". */
const char *hc_probe_fail_name(enum hc_probe_fail c);

struct hc_probes_stats {
    size_t probes;
    size_t in_flight;
    uint64_t runs, failures, skipped, deferred;
    uint64_t failures_by_class[HC_PROBE_FAIL_COUNT]; /* failures by enum hc_probe_fail */
    /* Start lateness: actual start minus scheduled time, over every run. */
    uint64_t late_count;
    double late_mean_ms;
    double late_max_ms;
    double late_p50_ms, late_p99_ms; /* from a log2 histogram: upper bucket bounds */
};
void hc_probes_get_stats(const struct hc_probes *ps, struct hc_probes_stats *out);

#endif /* HEALTH_HC_PROBE_H */
