/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report_int.h -- the records behind hc_report, shared by hc_report.c
 * (records, marks, configuration, the API) and hc_report_build.c (building
 * the marked records, committing them, the document as text). Not for
 * other modules.
 *
 *   hc_report
 *    +- svc ...  one record per service key ("ns/name") in the document or
 *    |           marked: its fragment text
 *    |             "\"ns/name\":{\"members\":{\"m1\":{...},...}[,\"port\":N]},"
 *    |           and per member where its entry sits in that text, its
 *    |           verdict and probe targets; the members marked for a rebuild
 *    +- order    the included records sorted by key (re-sorted when the set changes)
 *    +- members  the members section, serialized
 *    +- parts    the document as iovecs: header, every fragment in order
 *                (the last without its comma), tail -- joined into one text
 *                only when asked (the publisher, GET /v1/state)
 *    +- file     the state file's layout: the head and every fragment in a
 *                slot padded with spaces (JSON whitespace), so that the file
 *                written before the last one (PATH.prev) is brought up to date
 *                by writing the head and, of each slot changed since, the
 *                bytes from the first to the last that changed, in place,
 *                before it swaps with PATH (cm_file_patch_atomic); a new
 *                layout when a part outgrows its slot or the services change
 */
#ifndef HEALTH_HC_REPORT_INT_H
#define HEALTH_HC_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include <jansson.h>

#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "health/hc_entry.h"

struct cm_conf;
struct cm_conf_service;
struct hc_cluster;
struct hc_fedsvc;
struct hc_fedsvcs;
struct hc_k8s_obj;
struct hc_probes;

#define REP_LABEL_MAX  63 /* a DNS label */
#define REP_OUTAGE_MAX 24

/* One (service, member) entry as published. */
struct ent {
    bool present;      /* the member reports the service */
    bool healthy;      /* its verdict: seeds a probe with no result at the next rebuild */
    bool federates;    /* its Service is annotated fedgslb.io/federate */
    uint16_t svc_port; /* its Service's first port (hc_endpoint_pick_port), 0: none */
    size_t off, len;   /* "\"member\":{...}" within the record's text */
    char **targets;    /* owned: the addresses its probes connect to */
    size_t target_count;
};

/* One service key of the document, or marked to be looked at. */
struct svc {
    struct svc *hnext; /* hash chain */
    struct svc *dnext; /* the dirty list */
    uint64_t hash;
    const struct cm_conf_service *csvc; /* borrowed from r->conf; NULL: annotated */
    bool fed;                           /* one of the host cluster's services (hc_fedsvc) */
    uint64_t fed_epoch;                 /* the hc_report_set_services() call that listed it */
    char *rules;      /* owned: its rules as last seen, {"placement":...} (rep_rules), or NULL */
    struct ent *ents; /* owned, r->member_count */
    char *text;       /* owned fragment (see above); NULL while not included */
    size_t text_len;
    uint8_t *dbits;            /* owned: members marked, one bit each; NULL: none */
    bool dall;                 /* every member marked */
    bool marked;               /* on the dirty list */
    bool included;             /* in the document */
    uint16_t port;             /* "port"; 0: none */
    uint64_t text_gen;         /* generation in which text last changed */
    size_t slot_off, slot_cap; /* its slot in the state file's layout */
    /* The bytes of its slot the changes to text touched, as [lo, hi) (empty
     * when lo >= hi): [1] while r's writes were d_epoch, [0] the write before
     * (rep_note_change); a patch writes only those since PATH.prev. */
    uint64_t d_epoch;
    size_t d_lo[2], d_hi[2];
    size_t ns_len; /* key[ns_len] is the '/' */
    size_t key_len;
    char key[]; /* "ns/name" */
};

/* Per member of r->conf. */
struct mem {
    char *qname; /* owned: "\"name\":" */
    size_t qname_len;
    const struct hc_cluster *seen; /* the cluster of the last update (compared only) */
    bool all;                      /* every entry of the member is marked */
    bool rtt_stale;                /* its probe RTT median must be read again */
    double rtt_ms;                 /* that median; < 0 none */
    char outage[REP_OUTAGE_MAX];   /* outage words of the last rebuild; "" while ok */
    int shown_api;                 /* what its row in the members section showed: API state */
    time_t shown_seen;             /* (-1: no cluster), last_seen while not ok, RTT */
    double shown_rtt;
};

/* A configured service, for lookup by key. */
struct conf_key {
    const char *ns, *name; /* borrowed from the conf */
    const struct cm_conf_service *csvc;
};

struct hc_report {
    struct cm_log_ratelimit refused_rl; /* addresses dropped by the address rule */
    uint64_t generation;
    json_t *previous;     /* owned reference: the state file's document, until the first commit */
    bool committed;       /* a document was built */
    bool full;            /* rebuild everything at the next update */
    bool had_probes;      /* the last update had a probe set */
    struct cm_conf *conf; /* reference: the configuration of the records; NULL before */
    const struct hc_fedsvcs *fedsvcs; /* borrowed: the host cluster's services, or NULL */
    bool members_moved;               /* members joined or left: the members section changes */
    struct orphan {
        char *key, *member, *target; /* owned: a probe of an entry whose member left */
    } * orphans;                     /* owned, norphans; stopped at the next update */
    size_t norphans;
    uint64_t fed_epoch; /* hc_report_set_services() calls */
    struct mem *mem;    /* owned, member_count */
    size_t member_count;
    size_t *by_name;        /* owned: member indices sorted by name */
    struct conf_key *ckeys; /* owned: conf->services sorted by (ns, name) */
    char *tail;             /* owned: the document's tail (struct doc_prep), NULL before */
    size_t tail_len;
    struct svc **buckets; /* owned chains, nbuckets a power of two */
    size_t nbuckets, nsvc;
    struct svc *dirty;  /* marked records */
    struct svc **order; /* owned array of the included records, sorted by key */
    size_t norder;
    bool order_stale;
    char *members_text; /* owned: the members section, serialized */
    char *head;         /* owned: "{\"generated_at\":...,\"members\":{...},\"services\":{" */
    size_t head_len;
    struct iovec *parts; /* owned: the document in order, nparts (see above) */
    size_t nparts, parts_cap, doc_len;
    size_t frag_total; /* bytes of the included records' fragments */
    char *text;        /* owned: the parts joined (made on demand for text_gen), or NULL */
    size_t text_len, text_cap;
    uint64_t text_gen;
    char *prev_text; /* owned: hc_report_text() of previous, made on first use */
    size_t prev_len;
    json_t *doc;   /* owned: text parsed for hc_report_doc(), made on first use */
    char *scratch; /* owned: an entry serialized */
    size_t scratch_cap;
    /* The state file's layout (above) and the two files it rotates through. */
    uint64_t layout; /* 0: none yet; bumped whenever slots move */
    size_t head_cap; /* the head's slot; the fragments' slots follow */
    struct file_copy {
        bool known;
        uint64_t layout, gen; /* what it holds */
        struct cm_file_id id;
    } file[2];                /* [0] at PATH, [1] at PATH.prev */
    uint64_t patches, wholes; /* writes of either kind */
    uint64_t patch_bytes;     /* bytes the patches wrote */
    char *spaces;             /* owned: REP_PAD_CHUNK spaces, for padding */
};

#define REP_PAD_CHUNK 4096

/* The new state of one marked record, until the update commits. */
struct sent {
    bool built;     /* rebuilt (else the committed entry stays, maybe moved) */
    bool present;   /* in the new text */
    bool healthy;   /* built: the verdict */
    bool federates; /* built: as in struct ent */
    uint16_t svc_port;
    size_t off, len; /* within the new text */
    char **targets;  /* built: owned */
    size_t target_count;
};

struct stage {
    struct svc *s;
    struct sent *sents; /* owned, member_count */
    char *text;         /* owned: the new fragment, NULL when not included */
    size_t text_len;
    bool included;
    uint16_t port;
    bool changed; /* the document's content changes with it */
};

/* The next document, prepared before the update commits. */
struct doc_prep {
    bool ready; /* a new generation is to be made */
    char *head; /* owned */
    size_t head_len;
    char *tail; /* owned: "},\"vantage\":\"V\",\"version\":1}" */
    size_t tail_len;
    struct svc **order; /* owned: room for the included records */
    size_t doc_len;
};

/* One update's work; everything but the owned arrays borrowed. */
struct build {
    struct hc_report *r;
    struct hc_cluster *const *clusters;
    struct hc_probes *probes;
    struct hc_entry_ctx ectx;
    struct cm_state_opts opts;
    const struct hc_k8s_obj **sos; /* owned scratch: the Service in each member */
    char **etext;                  /* owned scratch: entries built for one record */
    size_t *elen;
    struct stage *stages; /* owned */
    size_t nstages;
    json_t *check; /* owned: what the stages built, as one document's services to validate */
    bool full;     /* everything is rebuilt (a new configuration, probe set or report) */
};

/* hc_report.c */
bool rep_marked(const struct svc *s, size_t m);
/** Notes that @s's text changes from @old (@old_len bytes, NULL: none) to @text. */
void rep_note_change(struct hc_report *r, struct svc *s, const char *old, size_t old_len,
                     const char *text, size_t len);
void rep_svc_remove(struct hc_report *r, struct svc *s);
void rep_clear_marks(struct hc_report *r);

/*
 * hc_report_build.c, in the order of an update:
 *   rep_build_marked   every marked record rebuilt and validated into b->stages
 *   rep_drop_probes    probes the rebuilt entries no longer want stop
 *   rep_members_text   the members section, when it changed
 *   rep_prepare        limits checked, the next document's memory taken
 *   rep_commit         stages installed, marks cleared, the next parts made (cannot fail)
 * Until rep_commit nothing the document is made of changes; a failure
 * leaves the marks for the next update.
 */
int rep_build_marked(struct build *b);
/** The service-level rules of @fs (NULL: none) as a JSON object; NULL on ENOMEM. */
json_t *rep_rules(const struct hc_fedsvc *fs);
void rep_drop_probes(struct build *b);
/** *out: the new members section (owned), or NULL when it did not change. */
int rep_members_text(struct build *b, char **out);
/** Whether a stage changes the document's content. */
bool rep_changed(const struct build *b);
/** p->tail for r->conf (the vantage may have changed). */
int rep_tail(const struct hc_report *r, struct doc_prep *p);
int rep_prepare(struct build *b, const char *members_text, time_t now, struct doc_prep *p);
/** Takes @members_text (may be NULL) and @p (a new generation when p->ready). */
void rep_commit(struct build *b, char *members_text, struct doc_prep *p);
void rep_prep_fini(struct doc_prep *p);
void rep_build_fini(struct build *b);
/** The bytes of the fragment order[@i] in the state file (the last one has no comma). */
size_t rep_file_len(const struct hc_report *r, size_t i);
/** The parts joined into r->text (once per generation). */
int rep_join(struct hc_report *r);
void rep_ent_clear(struct ent *e);

#endif /* HEALTH_HC_REPORT_INT_H */
