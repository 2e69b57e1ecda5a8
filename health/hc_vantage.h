/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_vantage.h -- this vantage: the member clusters, the data-plane probes,
 * the state document (hc_report) and its publisher, and the cycle that
 * rebuilds and offers the document when something changes.
 *
 *   hc_cluster x N --changed--+
 *   hc_probes ------changed---+--> debounce (100 ms) --> rebuild --> state_file
 *                                  + CPU budget            ^    \--> hc_publish
 *   1 s tick (API away, grace) ----------------------------+
 *
 * Rules of the cycle:
 * - A change arms one rebuild HC_VANTAGE_DEBOUNCE_MS later; changes while it
 *   is armed join it, so change-driven documents are at least that far apart.
 * - A burst -- at least HC_VANTAGE_BURST_CHANGES changes by the end of the
 *   debounce (a rollout, a relist, an API flapping) -- gathers until
 *   HC_VANTAGE_BURST_GATHER_MS after its first change: a document carries a
 *   burst's changes together, a lone change is not held back.
 * - Rebuilds (the report update, the state file, the offer) spend at most
 *   HC_VANTAGE_REBUILD_CPU_US_PER_S of CPU per second on average, bursts of
 *   up to HC_VANTAGE_REBUILD_BURST_US aside: a change that finds the budget
 *   spent is rebuilt once it has refilled, at most
 *   HC_VANTAGE_THROTTLE_MAX_MS after the debounce. A quiet vantage answers
 *   a change within the debounce; under a stream of changes each document
 *   gathers more of them, and consumers get fewer, larger steps instead of
 *   a document every 100 ms that each costs them a parse.
 * - Nothing is built or offered until every member has listed its objects
 *   once (or is unreachable or unauthorized), or until health.startup_grace_ms
 *   has passed since hc_vantage_new(): a document built earlier would claim
 *   that services vanished. Consumers keep the previous document meanwhile
 *   (the state file's, offered by hc_vantage_start()).
 * - A rebuild that changes the content takes the next generation (hc_report)
 *   and offers the document to the publisher at once. The state file is a
 *   warm-start copy: it is written at once when the last write is at least
 *   HC_VANTAGE_STATE_WRITE_MS old, otherwise once that much time has passed
 *   since the last write (the latest document then; the ones between are
 *   never written), and always before a document would be offered
 *   HC_VANTAGE_STATE_LAG_MAX generations past the file's. A stream of
 *   changes costs one write + fdatasync a second instead of one a document.
 *   hc_vantage_flush() writes what is pending (at shutdown). After a crash
 *   the file may be up to HC_VANTAGE_STATE_WRITE_MS (and fewer than
 *   HC_VANTAGE_STATE_LAG_MAX documents) behind what consumers saw: the
 *   restart serves that older document until the members have listed, and
 *   continues its generations HC_VANTAGE_STATE_LAG_MAX past the file's
 *   (hc_vantage_resume_generation()), so it never resumes below a
 *   generation a consumer saw.
 *
 * The monotonic clock can be injected (struct hc_vantage_params) so that a
 * test drives the debounce and the grace with hc_vantage_poll() and
 * hc_vantage_tick() instead of waiting. Single-threaded: every function runs
 * on the loop's thread.
 */
#ifndef HEALTH_HC_VANTAGE_H
#define HEALTH_HC_VANTAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct cm_buf;
struct cm_conf;
struct cm_conf_member;
struct hc_fedsvcs;
struct hc_http;
struct hc_kube_target;
struct hc_report;
struct hc_vantage;

#define HC_VANTAGE_DEBOUNCE_MS          100
#define HC_VANTAGE_BURST_CHANGES        32
#define HC_VANTAGE_BURST_GATHER_MS      300
#define HC_VANTAGE_REBUILD_CPU_US_PER_S 20000  /* 2 % of a core */
#define HC_VANTAGE_REBUILD_BURST_US     200000 /* the budget's ceiling */
#define HC_VANTAGE_THROTTLE_MAX_MS      2000
#define HC_VANTAGE_STATE_WRITE_MS       1000 /* state file writes at least this far apart */
#define HC_VANTAGE_STATE_LAG_MAX        64   /* documents offered past the file's generation */

/** Monotonic milliseconds (cm_mono_ms() unless a test supplies its own). */
typedef uint64_t hc_vantage_clock_fn(void *arg);

struct hc_vantage_params {
    hc_vantage_clock_fn *clock; /* NULL = cm_mono_ms */
    void *clock_arg;
    /* CPU microseconds used so far by this thread (cm_thread_cpu_us unless a
     * test supplies its own), to account rebuilds; called with clock_arg. */
    hc_vantage_clock_fn *cpu_clock;
};

struct hc_vantage_stats {
    uint64_t generation;           /* of the current document */
    uint64_t rebuilds;             /* hc_report_update() runs (after the members synced) */
    uint64_t documents;            /* rebuilds that gave a new generation */
    uint64_t offers;               /* documents offered to the publisher */
    uint64_t writes, write_errors; /* health.state_file */
    uint64_t written_generation;   /* the last written to health.state_file (or resumed from) */
    bool write_pending;            /* a state file write is due at write_due_ms */
    uint64_t write_due_ms;         /* on the vantage's clock */
    bool synced;                   /* publishing: every member listed once, or the grace ran out */
    bool armed;                    /* a debounced rebuild is due at due_ms */
    uint64_t due_ms;               /* on the vantage's clock */
    uint64_t rebuild_cpu_us;       /* CPU spent in rebuilds */
    uint64_t postponed;            /* rebuilds scheduled after the debounce by the CPU budget */
    uint64_t bursts;               /* rebuilds that gathered a burst past the debounce */
    int64_t budget_us;             /* the CPU budget left (negative: overdrawn) */
};

/**
 * A vantage for @conf (a reference is taken) on @base with @http (both
 * borrowed, must outlive it). Takes ownership of @report (also on failure):
 * the generation and previous document come from the state file. Creates
 * the probes (health.max_probes in flight) and the publisher (when
 * health.publish_to lists targets); the startup grace starts now. @p may be
 * NULL. NULL on ENOMEM.
 */
struct hc_vantage *hc_vantage_new(struct event_base *base, struct hc_http *http,
                                  struct cm_conf *conf, struct hc_report *report,
                                  const struct hc_vantage_params *p);
/** Stops every member, probe and push. Accepts NULL. */
void hc_vantage_free(struct hc_vantage *v);

/**
 * Starts a cluster per member from @targets (conf->member_count entries,
 * taken with the array, also on failure), the 1 s tick, a first rebuild,
 * and offers the current document (the state file's when nothing was built
 * yet). CM_OK or CM_ENOMEM.
 */
int hc_vantage_start(struct hc_vantage *v, struct hc_kube_target **targets);

/**
 * Switches to @conf (a reference is taken on success) with @targets (taken,
 * also on failure; conf->member_count entries). Members whose target, lb mode
 * and health.api settings are unchanged keep running; the others restart
 * with their last-known data. Registry members stay, unless @conf configures
 * a member of the same name or drops their region (logged). The publisher is
 * recreated and gets the current document at once. On failure (CM_ENOMEM)
 * the old configuration stays in force.
 */
int hc_vantage_reload(struct hc_vantage *v, struct cm_conf *conf, struct hc_kube_target **targets);

/*
 * Registry members (members_from; hc_registry finds them): they join the
 * configured members in v's configuration (cm_conf_with_members) and in every
 * document, and leave them again, without a restart. Only after
 * hc_vantage_start().
 */

/**
 * Adds the registry member @m (name, region and zone read) reached through @t
 * (taken, also on failure), or changes the one of that name: a new endpoint,
 * CA or token (a rotated Secret) restarts its watches, keeping its last-known
 * data meanwhile; the same place and target change nothing. CM_EEXIST when
 * @m->name is a configured member (the caller reports it, naming both),
 * CM_EINVAL before the start or for a region or zone @m does not index,
 * CM_ENOMEM (nothing changed). The document follows (debounced).
 */
int hc_vantage_add_member(struct hc_vantage *v, const struct cm_conf_member *m,
                          struct hc_kube_target *t);
/**
 * Removes the registry member @name: its watches and probes stop and the next
 * document leaves it out (so do consumers' answers). CM_ENOENT when there is
 * no such registry member, CM_ENOMEM (nothing changed).
 */
int hc_vantage_remove_member(struct hc_vantage *v, const char *name);
/** Registry members held. */
size_t hc_vantage_registry_members(const struct hc_vantage *v);
/**
 * While @pending, nothing is built or published (as before every member's
 * first list), for at most health.startup_grace_ms from hc_vantage_new(): the
 * registry's first list brings members that a document must not claim gone.
 */
void hc_vantage_hold_for_registry(struct hc_vantage *v, bool pending);
/** The host cluster's services for the documents (@s borrowed until the next call; NULL none). */
void hc_vantage_set_services(struct hc_vantage *v, const struct hc_fedsvcs *s);

/** Something the document depends on changed: arms the debounced rebuild. */
void hc_vantage_changed(struct hc_vantage *v);
/** hc_vantage_changed() calls so far (the event loop gathers while they come fast). */
uint64_t hc_vantage_change_count(const struct hc_vantage *v);
/** Runs the armed rebuild and the pending state file write when due (their timers call this). */
void hc_vantage_poll(struct hc_vantage *v);
/**
 * The 1 s tick: rebuilds while some member's API is not ok (its "for N min"
 * reason moves) or while the startup grace may run out.
 */
void hc_vantage_tick(struct hc_vantage *v);
/** Rebuilds now (if the members synced); writes and offers a changed document. */
void hc_vantage_rebuild(struct hc_vantage *v);
/** Writes the current document to health.state_file now if the file is behind it (shutdown). */
void hc_vantage_flush(struct hc_vantage *v);
/**
 * The generation to continue from after a state file of generation @file_gen
 * (0: none): far enough past it that no document a consumer may have seen
 * before the file was last written is ever taken again.
 */
uint64_t hc_vantage_resume_generation(uint64_t file_gen);

/**
 * The current document serialized (borrowed, valid until the loop runs
 * again; *len bytes), or NULL before there is one. What GET /v1/state serves.
 */
const char *hc_vantage_state_text(const struct hc_vantage *v, size_t *len);
/** The current document parsed (new reference), or NULL before there is one (tests, tools). */
json_t *hc_vantage_state(const struct hc_vantage *v);
void hc_vantage_get_stats(const struct hc_vantage *v, struct hc_vantage_stats *out);
/** Prometheus text: generation, state file, members, watches, probes, publisher (any time). */
void hc_vantage_metrics(const struct hc_vantage *v, struct cm_buf *out);

#endif /* HEALTH_HC_VANTAGE_H */
