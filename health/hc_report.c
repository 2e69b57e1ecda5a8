/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.c -- cluster caches + configuration -> state document v1, kept
 * incrementally (hc_report.h has the rules, hc_report_int.h the records,
 * hc_report_build.c the rebuilding, hc_entry the entries).
 *
 * An update gathers marks -- the services each cluster and the probe set
 * noted as changed (hc_cluster_take_changes, hc_probes_take_changed), all of
 * a member's entries when its cluster went or said "everything" or its
 * outage words moved, everything for a new configuration, probe set or
 * report -- and rebuilds the marked entries only. Everything is validated
 * and allocated before it is committed, so a failure leaves the document
 * and the marks as they were. Service keys are DNS labels joined by '/'
 * (checked when a key is marked; configured ones by the configuration), so
 * they need no JSON escaping.
 */
#include "health/hc_report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_cluster.h"
#include "health/hc_endpoint.h"
#include "health/hc_fedsvc.h"
#include "health/hc_probe.h"
#include "health/hc_report_int.h"

/* Refused addresses are logged at most this often (every rebuild sees them again). */
#define REFUSED_LOG_BURST    5
#define REFUSED_LOG_PERIOD_S 60

/* ---- records ---- */

static uint64_t key_hash(const char *key, size_t len)
{
    return cm_fnv1a64(CM_FNV1A64_INIT, key, len);
}

static void svc_free(struct svc *s, size_t member_count)
{
    for (size_t m = 0; s->ents != NULL && m < member_count; m++)
        rep_ent_clear(&s->ents[m]);
    free(s->ents);
    free(s->text);
    free(s->rules);
    free(s->dbits);
    free(s);
}

static struct svc *svc_find(const struct hc_report *r, const char *key, size_t len, uint64_t h)
{
    for (struct svc *s = r->nbuckets > 0 ? r->buckets[h & (r->nbuckets - 1)] : NULL; s != NULL;
         s = s->hnext) {
        if (s->hash == h && s->key_len == len && memcmp(s->key, key, len) == 0)
            return s;
    }
    return NULL;
}

static int svc_grow(struct hc_report *r)
{
    size_t n = r->nbuckets == 0 ? 256 : r->nbuckets * 2;
    struct svc **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return CM_ENOMEM;
    CM_CHAIN_REHASH(struct svc, r->buckets, r->nbuckets, nb, n, hnext, hash);
    free(r->buckets);
    r->buckets = nb;
    r->nbuckets = n;
    return CM_OK;
}

/* The configured service ns/name, or NULL. */
static const struct cm_conf_service *conf_lookup(const struct hc_report *r, const char *ns,
                                                 size_t ns_len, const char *name)
{
    size_t lo = 0, hi = r->conf->service_count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct conf_key *k = &r->ckeys[mid];
        int c = strncmp(k->ns, ns, ns_len);

        if (c == 0)
            c = k->ns[ns_len] == '\0' ? strcmp(k->name, name) : 1;
        if (c == 0)
            return k->csvc;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * The record of "ns/name" (@len bytes at @key), made when absent. NULL when
 * the key is not two DNS labels (such a Service cannot be in the document)
 * or on ENOMEM (*rc).
 */
static struct svc *svc_get(struct hc_report *r, const char *key, size_t len, int *rc)
{
    const char *slash = memchr(key, '/', len);
    size_t ns_len = slash != NULL ? (size_t)(slash - key) : 0;
    uint64_t h = key_hash(key, len);
    struct svc *s = svc_find(r, key, len, h);

    if (s != NULL)
        return s;
    if (slash == NULL || !cm_str_is_dns_label(key, ns_len) ||
        !cm_str_is_dns_label(slash + 1, len - ns_len - 1))
        return NULL;
    if (r->nsvc >= r->nbuckets && svc_grow(r) != CM_OK && r->nbuckets == 0) {
        *rc = CM_ENOMEM;
        return NULL;
    }
    s = calloc(1, sizeof(*s) + len + 1);
    if (s != NULL)
        s->ents = calloc(r->member_count + 1, sizeof(*s->ents));
    if (s == NULL || s->ents == NULL) {
        free(s);
        *rc = CM_ENOMEM;
        return NULL;
    }
    memcpy(s->key, key, len);
    s->key[len] = '\0';
    s->key_len = len;
    s->ns_len = ns_len;
    s->hash = h;
    s->csvc = conf_lookup(r, key, ns_len, key + ns_len + 1);
    s->hnext = r->buckets[h & (r->nbuckets - 1)];
    r->buckets[h & (r->nbuckets - 1)] = s;
    r->nsvc++;
    return s;
}

void rep_svc_remove(struct hc_report *r, struct svc *s)
{
    struct svc **pp = &r->buckets[s->hash & (r->nbuckets - 1)];

    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    r->nsvc--;
    svc_free(s, r->member_count);
}

/* ---- marks ---- */

/* On the dirty list, no member marked: the record is composed again from the
 * entries it has (one went away), nothing rebuilt. */
static void mark_record(struct hc_report *r, struct svc *s)
{
    if (!s->marked) {
        s->marked = true;
        s->dnext = r->dirty;
        r->dirty = s;
    }
}

static void mark(struct hc_report *r, struct svc *s, size_t m, bool all)
{
    if (!s->marked) {
        s->marked = true;
        s->dnext = r->dirty;
        r->dirty = s;
    }
    if (all || s->dall) {
        s->dall = true;
        return;
    }
    if (s->dbits == NULL)
        s->dbits = calloc(r->member_count / 8 + 1, 1);
    if (s->dbits == NULL)
        s->dall = true; /* no memory for the bits: every member then */
    else
        s->dbits[m / 8] |= (uint8_t)(1u << (m % 8));
}

bool rep_marked(const struct svc *s, size_t m)
{
    return s->dall || (s->dbits != NULL && (s->dbits[m / 8] & (1u << (m % 8))) != 0);
}

/* Marks key in member @m; keys that cannot be in the document are ignored. */
static int mark_key(struct hc_report *r, const char *key, size_t len, size_t m)
{
    int rc = CM_OK;
    struct svc *s = svc_get(r, key, len, &rc);

    if (s != NULL)
        mark(r, s, m, false);
    return rc;
}

struct mark_arg {
    struct hc_report *r;
    size_t member;
    int rc;
};

static void on_cluster_change(void *arg, const char *key)
{
    struct mark_arg *ma = arg;

    if (ma->rc == CM_OK)
        ma->rc = mark_key(ma->r, key, strlen(key), ma->member);
}

static void on_probe_change(void *arg, const char *service, const char *member)
{
    struct mark_arg *ma = arg;
    int m = cm_conf_member_index(ma->r->conf, member);

    if (m < 0 || ma->rc != CM_OK)
        return;
    ma->r->mem[m].rtt_stale = true;
    ma->rc = mark_key(ma->r, service, strlen(service), (size_t)m);
}

/* Every entry member @m has, and every Service its cluster holds. */
static int mark_member(struct hc_report *r, size_t m, const struct hc_cluster *c)
{
    int rc = CM_OK;

    r->mem[m].rtt_stale = true;
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext) {
            if (r->full || s->ents[m].present)
                mark(r, s, m, r->full);
        }
    }
    for (size_t i = 0; c != NULL && rc == CM_OK && i < hc_cluster_count(c, HC_K8S_SERVICE); i++) {
        const struct hc_k8s_obj *so = hc_cluster_obj(c, HC_K8S_SERVICE, i);
        char key[2 * REP_LABEL_MAX + 2];
        int n = snprintf(key, sizeof(key), "%s/%s", so->ns, so->name);

        if (n > 0 && (size_t)n < sizeof(key))
            rc = mark_key(r, key, (size_t)n, m);
    }
    return rc;
}

/*
 * The host cluster's services as marks: each one (every member of it) whose
 * rules differ from those of the last call, or which is new (@all: every
 * one), and each one that is no longer listed. The set's memory is the
 * caller's: the rules are kept as text to compare with.
 */
static int mark_fedsvcs(struct hc_report *r, bool all)
{
    int rc = CM_OK;

    r->fed_epoch++;
    for (size_t i = 0; r->fedsvcs != NULL && rc == CM_OK && i < r->fedsvcs->count; i++) {
        const struct hc_fedsvc *fs = &r->fedsvcs->v[i];
        struct svc *s = svc_get(r, fs->key, strlen(fs->key), &rc);
        json_t *rules = s != NULL ? rep_rules(fs) : NULL;
        char *text = rules != NULL ? json_dumps(rules, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

        json_decref(rules);
        if (s != NULL && text == NULL)
            rc = CM_ENOMEM;
        if (s == NULL || text == NULL) {
            free(text);
            continue;
        }
        if (all || !s->fed || s->rules == NULL || strcmp(s->rules, text) != 0)
            mark(r, s, 0, true);
        free(s->rules);
        s->rules = text;
        s->fed = true;
        s->fed_epoch = r->fed_epoch;
    }
    for (size_t b = 0; rc == CM_OK && b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext) {
            if (!s->fed || s->fed_epoch == r->fed_epoch)
                continue;
            s->fed = false;
            free(s->rules);
            s->rules = NULL;
            mark(r, s, 0, true);
        }
    }
    return rc;
}

/*
 * Gathers this update's marks: what the clusters and the probe set noted,
 * members whose cluster changed or whose outage words moved, everything
 * when the probe set is new or gone (r->full).
 */
static int collect(struct hc_report *r, struct hc_cluster *const *clusters,
                   struct hc_probes *probes, time_t now)
{
    struct mark_arg ma = {.r = r, .rc = CM_OK};

    if (probes == NULL ? r->had_probes : hc_probes_take_changed(probes, on_probe_change, &ma))
        r->full = true;
    r->had_probes = probes != NULL;
    for (size_t m = 0; m < r->member_count; m++) {
        struct mem *me = &r->mem[m];
        const struct hc_cluster *c = clusters[m];
        char words[REP_OUTAGE_MAX] = "";

        if (c != me->seen)
            me->all = true;
        me->seen = c;
        ma.member = m;
        if (c != NULL && hc_cluster_take_changes(clusters[m], on_cluster_change, &ma))
            me->all = true;
        if (c != NULL && hc_cluster_api(c) != HC_API_OK)
            hc_endpoint_outage_words(hc_cluster_bad_since(c), now, words, sizeof(words));
        if (strcmp(words, me->outage) != 0)
            me->all = true;
        cm_strlcpy(me->outage, words, sizeof(me->outage));
    }
    if (ma.rc != CM_OK)
        return ma.rc;
    for (size_t m = 0; m < r->member_count; m++) {
        int rc = CM_OK;

        if (r->full || r->mem[m].all)
            rc = mark_member(r, m, clusters[m]);
        if (rc != CM_OK)
            return rc;
        r->mem[m].all = false;
    }
    /* The host cluster's services too. */
    if (r->full) {
        int rc = mark_fedsvcs(r, true);

        if (rc != CM_OK)
            return rc;
    }
    /* Configured services are in the document even when no member has them. */
    for (size_t i = 0; r->full && i < r->conf->service_count; i++) {
        const struct cm_conf_service *cs = &r->conf->services[i];
        char key[2 * REP_LABEL_MAX + 2];
        int n = snprintf(key, sizeof(key), "%s/%s", cs->ns, cs->name);
        int rc = CM_OK;
        struct svc *s = n > 0 && (size_t)n < sizeof(key) ? svc_get(r, key, (size_t)n, &rc) : NULL;

        if (rc != CM_OK)
            return rc;
        if (s != NULL)
            mark(r, s, 0, true);
    }
    return CM_OK;
}

/* Forgets every mark (after a commit). */
void rep_clear_marks(struct hc_report *r)
{
    while (r->dirty != NULL) {
        struct svc *s = r->dirty;

        r->dirty = s->dnext;
        s->dnext = NULL;
        s->marked = s->dall = false;
        free(s->dbits);
        s->dbits = NULL;
    }
    r->full = false;
}

/* ---- configuration ---- */

/* "@s" as a JSON string followed by @suffix; *len its length. NULL on ENOMEM. */
static char *quote(const char *s, const char *suffix, size_t *len)
{
    json_t *j = json_string(s);
    char *q = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    size_t ql = q != NULL ? strlen(q) : 0, sl = strlen(suffix);
    char *out = q != NULL ? realloc(q, ql + sl + 1) : NULL;

    json_decref(j);
    if (out == NULL) {
        free(q);
        return NULL;
    }
    memcpy(out + ql, suffix, sl + 1);
    *len = ql + sl;
    return out;
}

static int cmp_conf_key(const void *a, const void *b)
{
    const struct conf_key *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);

    return c != 0 ? c : strcmp(x->name, y->name);
}

/* A member's name and index, for sorting. */
struct name_idx {
    const char *name;
    size_t idx;
};

static int cmp_name_idx(const void *a, const void *b)
{
    return strcmp(((const struct name_idx *)a)->name, ((const struct name_idx *)b)->name);
}

static void free_mem(struct mem *mem, size_t n)
{
    for (size_t m = 0; mem != NULL && m < n; m++)
        free(mem[m].qname);
    free(mem);
}

/* What a new configuration needs, made before anything changes. */
struct adopt {
    struct mem *mem;
    size_t *by_name;
    struct conf_key *ckeys;
    struct ent **ents; /* one new array per record, in bucket order */
    long *remap;       /* old member index -> new, -1: gone */
};

static void adopt_fini(struct adopt *a, size_t member_count, size_t nsvc)
{
    free_mem(a->mem, member_count);
    free(a->by_name);
    free(a->ckeys);
    for (size_t i = 0; a->ents != NULL && i < nsvc; i++)
        free(a->ents[i]);
    free(a->ents);
    free(a->remap);
}

static int adopt_prepare(const struct hc_report *r, const struct cm_conf *conf, struct adopt *a)
{
    size_t n = conf->member_count;
    struct name_idx *ni = calloc(n + 1, sizeof(*ni));
    int rc = CM_OK;

    a->mem = calloc(n + 1, sizeof(*a->mem));
    a->by_name = calloc(n + 1, sizeof(*a->by_name));
    a->ckeys = calloc(conf->service_count + 1, sizeof(*a->ckeys));
    a->ents = calloc(r->nsvc + 1, sizeof(*a->ents));
    a->remap = calloc(r->member_count + 1, sizeof(*a->remap));
    if (ni == NULL || a->mem == NULL || a->by_name == NULL || a->ckeys == NULL || a->ents == NULL ||
        a->remap == NULL)
        rc = CM_ENOMEM;
    for (size_t m = 0; rc == CM_OK && m < n; m++) {
        a->mem[m].qname = quote(conf->members[m].name, ":", &a->mem[m].qname_len);
        a->mem[m].rtt_ms = -1;
        ni[m] = (struct name_idx){conf->members[m].name, m};
        if (a->mem[m].qname == NULL)
            rc = CM_ENOMEM;
    }
    for (size_t i = 0; rc == CM_OK && i < r->nsvc; i++) {
        a->ents[i] = calloc(n + 1, sizeof(*a->ents[i]));
        if (a->ents[i] == NULL)
            rc = CM_ENOMEM;
    }
    if (rc == CM_OK) {
        qsort(ni, n, sizeof(*ni), cmp_name_idx);
        for (size_t k = 0; k < n; k++)
            a->by_name[k] = ni[k].idx;
        for (size_t i = 0; i < conf->service_count; i++)
            a->ckeys[i] =
                (struct conf_key){conf->services[i].ns, conf->services[i].name, &conf->services[i]};
        qsort(a->ckeys, conf->service_count, sizeof(*a->ckeys), cmp_conf_key);
        for (size_t m = 0; m < r->member_count; m++)
            a->remap[m] = cm_conf_member_index(conf, r->conf->members[m].name);
    }
    free(ni);
    return rc;
}

/* The probes of an entry whose member left, stopped at the next update (the
 * probe set is not at hand here). Targets taken from @e. */
static int orphan_probes(struct hc_report *r, const char *key, const char *member, struct ent *e)
{
    for (size_t i = 0; i < e->target_count; i++) {
        struct orphan *no = realloc(r->orphans, (r->norphans + 1) * sizeof(*no));

        if (no == NULL)
            return CM_ENOMEM;
        r->orphans = no;
        no[r->norphans] = (struct orphan){strdup(key), strdup(member), e->targets[i]};
        if (no[r->norphans].key == NULL || no[r->norphans].member == NULL) {
            free(no[r->norphans].key);
            free(no[r->norphans].member);
            return CM_ENOMEM;
        }
        e->targets[i] = NULL;
        r->norphans++;
    }
    return CM_OK;
}

static bool same_member(const struct cm_conf_member *a, const struct cm_conf_member *b)
{
    return a->region == b->region && a->zone == b->zone && a->lb_mode == b->lb_mode &&
           (a->lb_address == NULL
                ? b->lb_address == NULL
                : b->lb_address != NULL && strcmp(a->lb_address, b->lb_address) == 0);
}

/*
 * Members joined or left (a configuration extending the same loaded one,
 * cm_conf_with_members, as the registry makes them): what the members that
 * stay knew carries over by name, a member that moved is rebuilt, and the
 * records that had an entry of a member that left are composed again
 * without it. Nothing else changed, so nothing else is rebuilt.
 */
static void carry_members(struct hc_report *r, const struct cm_conf *conf, struct adopt *a)
{
    for (size_t m = 0; m < r->member_count; m++) {
        struct mem *nm;

        if (a->remap[m] < 0)
            continue;
        nm = &a->mem[a->remap[m]];
        nm->seen = r->mem[m].seen;
        nm->all = r->mem[m].all || !same_member(&r->conf->members[m], &conf->members[a->remap[m]]);
        nm->rtt_stale = r->mem[m].rtt_stale;
        nm->rtt_ms = r->mem[m].rtt_ms;
        memcpy(nm->outage, r->mem[m].outage, sizeof(nm->outage));
        nm->shown_api = r->mem[m].shown_api;
        nm->shown_seen = r->mem[m].shown_seen;
        nm->shown_rtt = r->mem[m].shown_rtt;
    }
    r->members_moved = true; /* the members section changes with them */
}

/*
 * Switches the records to @conf: entries follow their member by name (a
 * member added or removed only adds or drops its own). A configuration that
 * extends the same loaded one (registry members joining or leaving) marks
 * only what those members touch (carry_members); any other one marks
 * everything at the next collect. CM_ENOMEM leaves everything as it was.
 */
static int adopt_conf(struct hc_report *r, struct cm_conf *conf)
{
    struct adopt a = {0};
    bool partial = r->conf != NULL && cm_conf_loaded(r->conf) == cm_conf_loaded(conf);
    size_t i = 0;
    int rc = adopt_prepare(r, conf, &a);

    if (rc != CM_OK) {
        adopt_fini(&a, conf->member_count, r->nsvc);
        return rc;
    }
    if (partial)
        carry_members(r, conf, &a);
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext, i++) {
            bool lost = false;

            for (size_t m = 0; m < r->member_count; m++) {
                if (a.remap[m] >= 0) {
                    a.ents[i][a.remap[m]] = s->ents[m];
                    continue;
                }
                lost = lost || s->ents[m].present;
                if (partial &&
                    orphan_probes(r, s->key, r->conf->members[m].name, &s->ents[m]) != CM_OK)
                    r->full = true; /* no memory to remember them: a sweep will */
                rep_ent_clear(&s->ents[m]);
            }
            free(s->ents);
            s->ents = a.ents[i];
            a.ents[i] = NULL;
            free(s->dbits); /* marks (by the old indexes) widen to the whole record */
            s->dbits = NULL;
            if (!partial) {
                s->dall = s->marked = false;
                s->dnext = NULL;
            } else if (s->marked || lost) {
                s->dall = s->dall || s->marked;
                mark_record(r, s); /* a lost entry only: composed again, nothing rebuilt */
            }
        }
    }
    if (!partial)
        r->dirty = NULL;
    free_mem(r->mem, r->member_count);
    free(r->by_name);
    free(r->ckeys);
    r->mem = a.mem;
    r->by_name = a.by_name;
    r->ckeys = a.ckeys;
    a.mem = NULL;
    a.by_name = NULL;
    a.ckeys = NULL;
    adopt_fini(&a, 0, r->nsvc);
    r->member_count = conf->member_count;
    cm_conf_unref(r->conf);
    r->conf = cm_conf_ref(conf);
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext)
            s->csvc = conf_lookup(r, s->key, s->ns_len, s->key + s->ns_len + 1);
    }
    if (!partial)
        r->full = true;
    return CM_OK;
}

/* ---- the update ---- */

/* Whether a document differing from the current one is to be made. */
static bool new_document(const struct hc_report *r, const struct build *b, const char *members,
                         const struct doc_prep *p)
{
    return !r->committed || rep_changed(b) || members != NULL || r->tail == NULL ||
           r->tail_len != p->tail_len || memcmp(r->tail, p->tail, p->tail_len) != 0;
}

/* The probes of the entries of members that left (orphan_probes) stop. */
static void drop_orphans(struct hc_report *r, struct hc_probes *probes)
{
    for (size_t i = 0; i < r->norphans; i++) {
        struct orphan *o = &r->orphans[i];

        if (probes != NULL)
            hc_probes_remove(probes, o->key, o->member, o->target);
        free(o->key);
        free(o->member);
        free(o->target);
    }
    free(r->orphans);
    r->orphans = NULL;
    r->norphans = 0;
}

/* Everything after the marks: build, reconcile probes, prepare, commit. */
static int rebuild(struct hc_report *r, struct build *b, time_t now, bool *changed)
{
    struct doc_prep p = {0};
    char *members = NULL;
    bool full = r->full;
    int rc;

    b->full = full;
    if (full && b->probes != NULL)
        hc_probes_mark(b->probes);
    rc = rep_build_marked(b);
    if (rc != CM_OK)
        return rc; /* before any sweep: a failed build must not stop probes */
    if (full && b->probes != NULL)
        hc_probes_sweep(b->probes);
    else
        rep_drop_probes(b);
    drop_orphans(r, b->probes);
    rc = rep_members_text(b, &members);
    if (rc == CM_OK)
        rc = rep_tail(r, &p);
    if (rc == CM_OK && new_document(r, b, members, &p))
        rc = rep_prepare(b, members, now, &p);
    if (rc != CM_OK) {
        free(members);
        rep_prep_fini(&p);
        r->members_moved = true; /* what the members section showed was not committed */
        return rc;
    }
    *changed = p.ready;
    rep_commit(b, members, &p);
    return CM_OK;
}

int hc_report_update(struct hc_report *r, struct cm_conf *conf, struct hc_cluster *const *clusters,
                     struct hc_probes *probes, time_t now, bool *changed)
{
    struct build b = {
        .r = r,
        .clusters = clusters,
        .probes = probes,
        .ectx = {.conf = conf, .probes = probes, .now = now, .refused_rl = &r->refused_rl}};
    int rc = CM_OK;

    *changed = false;
    if (conf != r->conf)
        rc = adopt_conf(r, conf);
    if (rc == CM_OK)
        rc = collect(r, clusters, probes, now);
    if (rc != CM_OK) {
        r->full = true; /* changes were taken but maybe not all marked */
        return rc;
    }
    cm_state_opts_from_conf(&b.opts, conf);
    rc = rebuild(r, &b, now, changed);
    rep_build_fini(&b); /* after a failure the marks stay for the next update */
    if (rc == CM_OK && *changed && !r->committed) {
        r->committed = true;
        json_decref(r->previous); /* the records carry the verdicts from now on */
        r->previous = NULL;
    }
    return rc;
}

/* ---- the API ---- */

struct hc_report *hc_report_new(uint64_t generation, json_t *previous)
{
    struct hc_report *r = calloc(1, sizeof(*r));

    if (r != NULL) {
        r->refused_rl =
            (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(REFUSED_LOG_BURST, REFUSED_LOG_PERIOD_S);
        r->generation = generation;
        r->previous = json_incref(previous);
        r->full = true;
        /* A restart resumes past the file's generation: the document offered
         * until the first one is built says the generation it is offered as
         * (a consumer holds it under that number, the base of later deltas). */
        if (previous != NULL &&
            json_integer_value(json_object_get(previous, "generation")) != (json_int_t)generation) {
            json_decref(r->previous);
            r->previous = json_copy(previous);
            if (r->previous == NULL || json_object_set_new(r->previous, "generation",
                                                           json_integer((json_int_t)generation))) {
                hc_report_free(r);
                return NULL;
            }
        }
    }
    return r;
}

void hc_report_free(struct hc_report *r)
{
    if (r == NULL)
        return;
    for (size_t b = 0; b < r->nbuckets; b++) {
        struct svc *s = r->buckets[b], *next;

        for (; s != NULL; s = next) {
            next = s->hnext;
            svc_free(s, r->member_count);
        }
    }
    free(r->buckets);
    free(r->order);
    free_mem(r->mem, r->member_count);
    free(r->by_name);
    free(r->ckeys);
    free(r->tail);
    free(r->head);
    free(r->parts);
    free(r->members_text);
    free(r->text);
    free(r->prev_text);
    free(r->scratch);
    free(r->spaces);
    drop_orphans(r, NULL);
    json_decref(r->doc);
    json_decref(r->previous);
    cm_conf_unref(r->conf);
    free(r);
}

void hc_report_set_services(struct hc_report *r, const struct hc_fedsvcs *s)
{
    r->fedsvcs = s;
    /* Before the first update everything is built anyway. */
    if (r->conf != NULL && mark_fedsvcs(r, false) != CM_OK)
        r->full = true;
}

json_t *hc_report_doc(struct hc_report *r)
{
    if (!r->committed)
        return r->previous;
    if (r->doc == NULL && rep_join(r) == CM_OK)
        r->doc = json_loadb(r->text, r->text_len, 0, NULL);
    return r->doc;
}

uint64_t hc_report_generation(const struct hc_report *r)
{
    return r->generation;
}

const char *hc_report_text(struct hc_report *r, size_t *len)
{
    if (r->committed) {
        *len = 0;
        if (rep_join(r) != CM_OK)
            return NULL;
        *len = r->text_len;
        return r->text;
    }
    if (r->prev_text == NULL && r->previous != NULL) {
        r->prev_text = json_dumps(r->previous, JSON_COMPACT | JSON_SORT_KEYS);
        r->prev_len = r->prev_text != NULL ? strlen(r->prev_text) : 0;
    }
    *len = r->prev_len;
    return r->prev_text;
}

void hc_report_time(time_t t, char *buf, size_t cap)
{
    cm_time_format_rfc3339((int64_t)t, buf, cap);
}

/* What the state file gave: its generation and document. */
struct loaded {
    uint64_t gen;
    json_t *doc; /* owned */
};

/* cm_file_parse_fn: a JSON object with a non-negative integer "generation". */
static int parse_state_file(void *arg, const char *path, const char *text, size_t len, char *err,
                            size_t errlen)
{
    struct loaded *l = arg;
    json_error_t je;
    json_t *doc, *g;

    (void)path;
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return CM_EPARSE;
    }
    g = json_object_get(doc, "generation");
    if (!json_is_integer(g) || json_integer_value(g) < 0) {
        snprintf(err, errlen, "generation: missing or not a non-negative integer");
        json_decref(doc);
        return CM_EPARSE;
    }
    json_decref(l->doc);
    l->gen = (uint64_t)json_integer_value(g);
    l->doc = doc;
    return CM_OK;
}

int hc_report_load(const char *path, bool check, uint64_t *gen, json_t **out, char *err,
                   size_t errlen)
{
    struct cm_file_load_info info;
    struct loaded l = {0};
    int rc;

    *gen = 0;
    *out = NULL;
    rc = cm_file_load(path, CM_STATE_FILE_MAX_BYTES, parse_state_file, &l,
                      check ? CM_FILE_LOAD_READONLY : CM_FILE_LOAD_DEFAULT, &info, err, errlen);
    if (rc == CM_ENOENT)
        return CM_OK;
    if (rc == CM_OK && check && info.fell_back) {
        snprintf(err, errlen, "%s", info.reason);
        rc = CM_EPARSE;
    }
    if (rc != CM_OK) {
        json_decref(l.doc);
        return rc;
    }
    *gen = l.gen;
    *out = l.doc;
    return CM_OK;
}

/* Bytes @a and @b (@n each) have in common from the start. */
static size_t common_prefix(const char *a, const char *b, size_t n)
{
    size_t i = 0;

    while (i + 64 <= n && memcmp(a + i, b + i, 64) == 0)
        i += 64;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Bytes @a and @b (@n each) have in common at the end. */
static size_t common_suffix(const char *a, const char *b, size_t n)
{
    size_t i = 0;

    while (i + 64 <= n && memcmp(a + n - i - 64, b + n - i - 64, 64) == 0)
        i += 64;
    while (i < n && a[n - i - 1] == b[n - i - 1])
        i++;
    return i;
}

/* Adds [@lo, @hi) to the range *@rlo, *@rhi (empty when lo >= hi). */
static void range_add(size_t *rlo, size_t *rhi, size_t lo, size_t hi)
{
    if (lo >= hi)
        return;
    if (*rlo >= *rhi) {
        *rlo = lo;
        *rhi = hi;
        return;
    }
    *rlo = lo < *rlo ? lo : *rlo;
    *rhi = hi > *rhi ? hi : *rhi;
}

void rep_note_change(struct hc_report *r, struct svc *s, const char *old, size_t old_len,
                     const char *text, size_t len)
{
    uint64_t epoch = r->patches + r->wholes;
    size_t n = old_len < len ? old_len : len, lo, hi;

    if (s->d_epoch != epoch) {
        bool last = s->d_epoch + 1 == epoch;

        s->d_lo[0] = last ? s->d_lo[1] : 0;
        s->d_hi[0] = last ? s->d_hi[1] : 0;
        s->d_lo[1] = s->d_hi[1] = 0;
        s->d_epoch = epoch;
    }
    /*
     * In the file the last fragment has no comma (a space there), so when
     * the length changes its final byte is not compared and everything up
     * to the longer end counts; at one length the comma sits at one place.
     */
    if (old == NULL || text == NULL) {
        lo = 0;
        hi = old_len > len ? old_len : len;
    } else if (old_len != len) {
        lo = common_prefix(old, text, n > 0 ? n - 1 : 0);
        hi = old_len > len ? old_len : len;
    } else {
        lo = common_prefix(old, text, n);
        hi = len - common_suffix(old + lo, text + lo, len - lo);
    }
    range_add(&s->d_lo[1], &s->d_hi[1], lo, hi);
}

/* The bytes of @s's slot changed since the file written before the last one
 * (PATH.prev, which holds generation @gen) as [*lo, *hi); empty: none. */
static void slot_changed(const struct hc_report *r, const struct svc *s, uint64_t gen, size_t *lo,
                         size_t *hi)
{
    uint64_t epoch = r->patches + r->wholes;

    *lo = *hi = 0;
    if (s->text_gen <= gen)
        return;
    if (s->d_epoch == epoch) {
        range_add(lo, hi, s->d_lo[0], s->d_hi[0]);
        range_add(lo, hi, s->d_lo[1], s->d_hi[1]);
    } else if (s->d_epoch + 1 == epoch) {
        range_add(lo, hi, s->d_lo[1], s->d_hi[1]);
    } else {
        *hi = s->slot_cap; /* not noted (cannot happen): the whole slot */
    }
    *hi = *hi < s->slot_cap ? *hi : s->slot_cap;
}

/* Appends bytes [@lo, @hi) of a slot holding the @len bytes at @p padded
 * with spaces to @iov (room checked by the caller: slot_parts()). */
static size_t range_iov(const struct hc_report *r, struct iovec *iov, const char *p, size_t len,
                        size_t lo, size_t hi)
{
    size_t n = 0, pad;

    if (lo < len) {
        iov[n++] = (struct iovec){.iov_base = (void *)(uintptr_t)(p + lo),
                                  .iov_len = (hi < len ? hi : len) - lo};
        lo = len;
    }
    for (pad = hi > lo ? hi - lo : 0; pad > 0; n++) {
        size_t k = pad < REP_PAD_CHUNK ? pad : REP_PAD_CHUNK;

        iov[n] = (struct iovec){.iov_base = r->spaces, .iov_len = k};
        pad -= k;
    }
    return n;
}

/* Appends @len bytes at @p and spaces up to @cap to @iov (room checked by the caller). */
static size_t slot_iov(const struct hc_report *r, struct iovec *iov, const char *p, size_t len,
                       size_t cap)
{
    return range_iov(r, iov, p, len, 0, cap);
}

/* Parts one slot may take: its text and its padding in chunks. */
static size_t slot_parts(size_t len, size_t cap)
{
    return 1 + (cap - len + REP_PAD_CHUNK - 1) / REP_PAD_CHUNK;
}

/* The bytes of the slots changed since the copy at PATH.prev, written in
 * place (CM_ENOTSUP: that copy cannot be patched; the caller writes the
 * whole file). */
static int write_patch(struct hc_report *r, const char *path, struct cm_file_id *id, char *err,
                       size_t errlen)
{
    const struct file_copy *pv = &r->file[1];
    struct cm_file_patch *patch;
    struct iovec *iov;
    size_t np = 0, ni = 0, need, bytes;
    int rc;

    if (!pv->known || pv->layout != r->layout || pv->gen >= r->generation)
        return CM_ENOTSUP;
    need = slot_parts(r->head_len, r->head_cap);
    for (size_t i = 0; i < r->norder; i++) {
        const struct svc *s = r->order[i];

        if (s->text_gen > pv->gen)
            need += slot_parts(rep_file_len(r, i), s->slot_cap);
    }
    patch = calloc(r->norder + 1, sizeof(*patch));
    iov = calloc(need, sizeof(*iov));
    if (patch == NULL || iov == NULL) {
        free(patch);
        free(iov);
        return CM_ENOMEM;
    }
    patch[np++] = (struct cm_file_patch){.off = 0, .iov = iov, .n = 0};
    patch[0].n = slot_iov(r, iov, r->head, r->head_len, r->head_cap);
    ni = patch[0].n;
    bytes = 0;
    for (size_t i = 0; i < r->norder; i++) {
        const struct svc *s = r->order[i];
        size_t lo, hi;

        slot_changed(r, s, pv->gen, &lo, &hi);
        if (lo >= hi)
            continue;
        patch[np] = (struct cm_file_patch){.off = (off_t)(s->slot_off + lo), .iov = iov + ni};
        patch[np].n = range_iov(r, iov + ni, s->text, rep_file_len(r, i), lo, hi);
        ni += patch[np++].n;
        bytes += hi - lo;
    }
    rc = cm_file_patch_atomic(path, &pv->id, patch, np, id, err, errlen);
    if (rc == CM_OK)
        r->patch_bytes += bytes;
    free(patch);
    free(iov);
    return rc;
}

/* The whole file in the current layout. */
static int write_full(struct hc_report *r, const char *path, struct cm_file_id *id, char *err,
                      size_t errlen)
{
    size_t need = slot_parts(r->head_len, r->head_cap) + 1, n;
    struct iovec *iov;
    int rc;

    for (size_t i = 0; i < r->norder; i++)
        need += slot_parts(rep_file_len(r, i), r->order[i]->slot_cap);
    iov = calloc(need, sizeof(*iov));
    if (iov == NULL)
        return CM_ENOMEM;
    n = slot_iov(r, iov, r->head, r->head_len, r->head_cap);
    for (size_t i = 0; i < r->norder; i++)
        n += slot_iov(r, iov + n, r->order[i]->text, rep_file_len(r, i), r->order[i]->slot_cap);
    iov[n++] = (struct iovec){.iov_base = r->tail, .iov_len = r->tail_len};
    rc = cm_file_write_atomicv(path, iov, n, 0600, id, err, errlen);
    free(iov);
    return rc;
}

int hc_report_write(struct hc_report *r, const char *path, char *err, size_t errlen)
{
    struct cm_file_id id = {0};
    bool whole;
    int rc;

    if (!r->committed)
        return CM_OK;
    if (r->spaces == NULL) {
        r->spaces = malloc(REP_PAD_CHUNK);
        if (r->spaces == NULL)
            return CM_ENOMEM;
        memset(r->spaces, ' ', REP_PAD_CHUNK);
    }
    rc = write_patch(r, path, &id, err, errlen);
    whole = rc == CM_ENOTSUP;
    if (whole)
        rc = write_full(r, path, &id, err, errlen);
    if (rc != CM_OK)
        return rc;
    r->patches += !whole;
    r->wholes += whole;
    /* The old PATH is PATH.prev now. */
    r->file[1] = r->file[0];
    r->file[0] =
        (struct file_copy){.known = true, .layout = r->layout, .gen = r->generation, .id = id};
    /*
     * A whole file written with no copy of this layout at PATH.prev (the
     * first write, or new slots): the next write could only write the whole
     * file again. So that one is written now instead, at start (during the
     * sync) or with this relayout, and the next change patches.
     */
    if (whole && (!r->file[1].known || r->file[1].layout != r->layout) &&
        write_full(r, path, &id, err, errlen) == CM_OK) {
        r->wholes++;
        r->file[1] = r->file[0];
        r->file[0] =
            (struct file_copy){.known = true, .layout = r->layout, .gen = r->generation, .id = id};
    }
    return CM_OK;
}

void hc_report_write_counts(const struct hc_report *r, uint64_t *patches, uint64_t *wholes)
{
    *patches = r->patches;
    *wholes = r->wholes;
}

uint64_t hc_report_patch_bytes(const struct hc_report *r)
{
    return r->patch_bytes;
}
