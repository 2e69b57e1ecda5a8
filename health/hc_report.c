/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.c -- cluster caches + configuration -> state document v1, kept
 * incrementally (hc_report.h has the rules, hc_entry builds the entries).
 *
 *   hc_report
 *    +- svc ...  one record per service key ("ns/name") in the document or
 *    |           marked: per member its entry serialized ("\"member\":{...}",
 *    |           compact, sorted keys) with its verdict and probe targets,
 *    |           and the members marked for a rebuild
 *    +- order    the included records sorted by key (re-sorted when the set changes)
 *    +- members  the members section, serialized
 *    +- text     the document: header, members, every entry in order
 *
 * An update gathers marks -- the services each cluster and the probe set
 * noted as changed (hc_cluster_take_changes, hc_probes_take_changed), all of
 * a member's entries when its cluster went or said "everything" or its
 * outage words moved, everything for a new configuration, probe set or
 * report -- and rebuilds the marked entries only. Each rebuilt service is
 * validated as a small document (cm_state_from_json) before anything is
 * committed, so a failure leaves the document and the marks as they were.
 * The text is then assembled from the stored fragments, byte for byte what
 * jansson writes for the whole tree with JSON_COMPACT | JSON_SORT_KEYS
 * (test_hc_report_inc compares it with a fresh report after random changes).
 * Service keys are DNS labels joined by '/' (checked when a key is marked;
 * configured ones by the configuration), so they need no JSON escaping.
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
#include "health/hc_cluster.h"
#include "health/hc_endpoint.h"
#include "health/hc_entry.h"
#include "health/hc_probe.h"

/* Refused addresses are logged at most this often (every rebuild sees them again). */
#define REFUSED_LOG_BURST    5
#define REFUSED_LOG_PERIOD_S 60

#define LABEL_MAX   63 /* a DNS label */
#define OUTAGE_MAX  24
#define VALIDATE_TS "1970-01-01T00:00:00Z"

/* One (service, member) entry as published. */
struct ent {
    bool healthy;   /* its verdict: seeds a probe with no result at the next rebuild */
    size_t len;     /* of text */
    char **targets; /* owned: the addresses its probes connect to */
    size_t target_count;
    char text[]; /* "\"member\":{...}" */
};

/* One service key of the document, or marked to be looked at. */
struct svc {
    struct svc *hnext; /* hash chain */
    struct svc *dnext; /* the dirty list */
    uint64_t hash;
    const struct cm_conf_service *csvc; /* borrowed from r->conf; NULL: annotated */
    struct ent **ents;                  /* owned, r->member_count slots; NULL: not reported */
    uint8_t *dbits;                     /* owned: members marked, one bit each; NULL: none */
    bool dall;                          /* every member marked */
    bool marked;                        /* on the dirty list */
    bool included;                      /* in the document */
    uint16_t port;                      /* "port"; 0: none */
    size_t ns_len;                      /* key[ns_len] is the '/' */
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
    char outage[OUTAGE_MAX];       /* outage words of the last rebuild; "" while ok */
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
    bool text_stale;      /* committed records not yet assembled (ENOMEM, too large) */
    struct cm_conf *conf; /* reference: the configuration of the records; NULL before */
    struct mem *mem;      /* owned, member_count */
    size_t member_count;
    size_t *by_name;        /* owned: member indices sorted by name */
    struct conf_key *ckeys; /* owned: conf->services sorted by (ns, name) */
    char *qvantage;         /* owned: the vantage as a JSON string */
    struct svc **buckets;   /* owned chains, nbuckets a power of two */
    size_t nbuckets, nsvc;
    struct svc *dirty;  /* marked records */
    struct svc **order; /* owned array of the included records, sorted by key */
    size_t norder;
    bool order_stale;
    char *members_text; /* owned: the members section, serialized */
    char *text;         /* owned: the document (text_len bytes + NUL), NULL before */
    size_t text_len, text_cap;
    char *prev_text; /* owned: hc_report_text() of previous, made on first use */
    size_t prev_len;
    json_t *doc;   /* owned: text parsed for hc_report_doc(), made on first use */
    char *scratch; /* owned: an entry serialized */
    size_t scratch_cap;
};

/* ---- records ---- */

static void ent_free(struct ent *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->target_count; i++)
        free(e->targets[i]);
    free(e->targets);
    free(e);
}

static uint64_t key_hash(const char *key, size_t len)
{
    return cm_fnv1a64(CM_FNV1A64_INIT, key, len);
}

static void svc_free(struct svc *s, size_t member_count)
{
    for (size_t m = 0; s->ents != NULL && m < member_count; m++)
        ent_free(s->ents[m]);
    free(s->ents);
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
    for (size_t b = 0; b < r->nbuckets; b++) {
        struct svc *s = r->buckets[b], *next;

        for (; s != NULL; s = next) {
            next = s->hnext;
            s->hnext = nb[s->hash & (n - 1)];
            nb[s->hash & (n - 1)] = s;
        }
    }
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

static void svc_remove(struct hc_report *r, struct svc *s)
{
    struct svc **pp = &r->buckets[s->hash & (r->nbuckets - 1)];

    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    r->nsvc--;
    svc_free(s, r->member_count);
}

/* ---- marks ---- */

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

static bool marked(const struct svc *s, size_t m)
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
            if (r->full || s->ents[m] != NULL)
                mark(r, s, m, r->full);
        }
    }
    for (size_t i = 0; c != NULL && rc == CM_OK && i < hc_cluster_count(c, HC_K8S_SERVICE); i++) {
        const struct hc_k8s_obj *so = hc_cluster_obj(c, HC_K8S_SERVICE, i);
        char key[2 * LABEL_MAX + 2];
        int n = snprintf(key, sizeof(key), "%s/%s", so->ns, so->name);

        if (n > 0 && (size_t)n < sizeof(key))
            rc = mark_key(r, key, (size_t)n, m);
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
        char words[OUTAGE_MAX] = "";

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
    /* Configured services are in the document even when no member has them. */
    for (size_t i = 0; r->full && i < r->conf->service_count; i++) {
        const struct cm_conf_service *cs = &r->conf->services[i];
        char key[2 * LABEL_MAX + 2];
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
static void clear_marks(struct hc_report *r)
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

/* ---- rebuilding marked records ---- */

/* The new state of one marked record, until the update commits. */
struct stage {
    struct svc *s;
    struct ent **ents; /* owned array (member_count): new entries, or the committed ones */
    bool included;
    uint16_t port;
};

/* One update's work; r and clusters borrowed. */
struct build {
    struct hc_report *r;
    struct hc_cluster *const *clusters;
    struct hc_probes *probes;
    struct hc_entry_ctx ectx;
    struct cm_state_opts opts;
    const struct hc_k8s_obj **sos; /* owned scratch: the Service in each member */
    struct stage *stages;          /* owned */
    size_t nstages;
};

/* The verdict the entry had: the committed one, else the state file's. */
static int previous_healthy(const struct hc_report *r, const struct svc *s, size_t m)
{
    const json_t *v;

    if (s->ents[m] != NULL)
        return s->ents[m]->healthy;
    if (r->committed || r->previous == NULL)
        return -1;
    v = json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(r->previous, "services"), s->key),
                            "members"),
            r->conf->members[m].name),
        "healthy");
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

/* @e serialized behind member @m's key, taking its probe targets. */
static int ent_make(struct hc_report *r, size_t m, struct hc_entry *e, struct ent **out)
{
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS;
    const struct mem *me = &r->mem[m];
    size_t need = json_dumpb(e->json, r->scratch, r->scratch_cap, flags);
    struct ent *n;

    if (need > r->scratch_cap) {
        char *nb = realloc(r->scratch, need * 2);

        if (nb == NULL)
            return CM_ENOMEM;
        r->scratch = nb;
        r->scratch_cap = need * 2;
        need = json_dumpb(e->json, r->scratch, r->scratch_cap, flags);
    }
    if (need == 0)
        return CM_ENOMEM;
    n = malloc(sizeof(*n) + me->qname_len + need + 1);
    if (n == NULL)
        return CM_ENOMEM;
    memcpy(n->text, me->qname, me->qname_len);
    memcpy(n->text + me->qname_len, r->scratch, need);
    n->len = me->qname_len + need;
    n->text[n->len] = '\0';
    n->healthy = e->healthy;
    n->targets = e->targets;
    n->target_count = e->target_count;
    e->targets = NULL;
    e->target_count = 0;
    *out = n;
    return CM_OK;
}

/* A document holding what is new in one service (or only the members
 * section) checked by the consumers' parser; CM_ESTATE logged. */
static int validate(struct build *b, const char *key, json_t *svc, json_t *members)
{
    const struct cm_conf *conf = b->r->conf;
    char err[CM_STATE_ERR_MAX] = "";
    struct cm_state *st = NULL;
    json_t *doc = json_pack("{s:i, s:s, s:i, s:s}", "version", CM_STATE_VERSION, "vantage",
                            conf->regions[conf->health.vantage].name, "generation", 1,
                            "generated_at", VALIDATE_TS);
    int rc = doc != NULL ? CM_OK : CM_ENOMEM;

    if (rc == CM_OK && svc != NULL &&
        json_object_set_new(doc, "services", json_pack("{s:O}", key, svc)) != 0)
        rc = CM_ENOMEM;
    if (rc == CM_OK && members != NULL && json_object_set(doc, "members", members) != 0)
        rc = CM_ENOMEM;
    if (rc == CM_OK) {
        rc = cm_state_from_json(doc, &b->opts, &st, err, sizeof(err));
        if (rc != CM_OK && rc != CM_ENOMEM)
            cm_log_error("state document failed validation, keeping the previous one: %s", err);
    }
    cm_state_free(st);
    json_decref(doc);
    return rc;
}

/* The Service of @s in every member, and whether and at which port @s is in the document. */
static void look_up(struct build *b, const struct svc *s, bool *included, uint16_t *port)
{
    char ns[LABEL_MAX + 1], name[LABEL_MAX + 1];

    memcpy(ns, s->key, s->ns_len);
    ns[s->ns_len] = '\0';
    cm_strlcpy(name, s->key + s->ns_len + 1, sizeof(name));
    *included = s->csvc != NULL;
    *port = s->csvc != NULL ? s->csvc->port : 0;
    for (size_t m = 0; m < b->r->member_count; m++) {
        const struct hc_cluster *c = b->clusters[m];
        const struct hc_k8s_obj *so = c != NULL ? hc_cluster_service(c, ns, name) : NULL;

        b->sos[m] = so;
        if (so == NULL)
            continue;
        if (so->u.svc.federate)
            *included = true;
        if (*port == 0) {
            const struct hc_k8s_port *p = hc_endpoint_pick_port(&so->u.svc, 0);

            *port = p != NULL ? p->port : 0;
        }
    }
}

/* Builds the marked entries of @s into @st (st->ents set on return, also on failure). */
static int build_svc(struct build *b, struct svc *s, struct stage *st)
{
    struct hc_report *r = b->r;
    json_t *built = NULL; /* the entries built, for validation */
    int rc = CM_OK;

    st->s = s;
    look_up(b, s, &st->included, &st->port);
    if (!st->included)
        st->port = 0;
    st->ents = calloc(r->member_count + 1, sizeof(*st->ents));
    if (st->ents == NULL)
        return CM_ENOMEM;
    for (size_t m = 0; rc == CM_OK && st->included && m < r->member_count; m++) {
        struct hc_entry e;

        if (s->included && !marked(s, m)) {
            st->ents[m] = s->ents[m];
            continue;
        }
        if (b->sos[m] == NULL)
            continue;
        rc = hc_entry_build(&b->ectx, s->key, m, b->clusters[m], b->sos[m], s->csvc,
                            previous_healthy(r, s, m), &e);
        if (rc != CM_OK)
            break;
        rc = ent_make(r, m, &e, &st->ents[m]);
        if (rc == CM_OK && built == NULL)
            built = json_object();
        if (rc == CM_OK &&
            (built == NULL || json_object_set(built, r->conf->members[m].name, e.json) != 0))
            rc = CM_ENOMEM;
        hc_entry_fini(&e);
    }
    if (rc == CM_OK && st->included && (built != NULL || !s->included || st->port != s->port)) {
        json_t *svc =
            json_pack("{s:o}", "members", built != NULL ? json_incref(built) : json_object());

        if (svc == NULL ||
            (st->port != 0 && json_object_set_new(svc, "port", json_integer(st->port)) != 0))
            rc = CM_ENOMEM;
        else
            rc = validate(b, s->key, svc, NULL);
        json_decref(svc);
    }
    json_decref(built);
    return rc;
}

/* Releases what @st built (the update did not commit). */
static void stage_discard(const struct hc_report *r, struct stage *st)
{
    for (size_t m = 0; st->ents != NULL && m < r->member_count; m++) {
        if (st->ents[m] != st->s->ents[m])
            ent_free(st->ents[m]);
    }
    free(st->ents);
    st->ents = NULL;
}

static bool has_target(const struct ent *e, const char *t)
{
    for (size_t i = 0; e != NULL && i < e->target_count; i++) {
        if (strcmp(e->targets[i], t) == 0)
            return true;
    }
    return false;
}

/* Installs @st; true when the document's content changed. */
static bool stage_commit(struct hc_report *r, struct stage *st, struct hc_probes *probes)
{
    struct svc *s = st->s;
    bool changed = st->included != s->included || st->port != s->port;

    for (size_t m = 0; m < r->member_count; m++) {
        struct ent *old = s->ents[m], *nw = st->ents[m];

        if (old == nw)
            continue;
        if (old == NULL || nw == NULL || old->len != nw->len ||
            memcmp(old->text, nw->text, old->len) != 0)
            changed = true;
        /* Probes the entry no longer wants stop now (a full rebuild sweeps as well). */
        for (size_t i = 0; probes != NULL && old != NULL && i < old->target_count; i++) {
            if (!has_target(nw, old->targets[i])) {
                hc_probes_remove(probes, s->key, r->conf->members[m].name, old->targets[i]);
                r->mem[m].rtt_stale = true;
            }
        }
        ent_free(old);
        s->ents[m] = nw;
    }
    if (st->included != s->included)
        r->order_stale = true;
    s->included = st->included;
    s->port = st->port;
    free(st->ents);
    st->ents = NULL;
    return changed;
}

/* ---- the members section and the document ---- */

/* Rebuilds the members section; *changed when its text moved. */
static int update_members(struct build *b, bool *changed)
{
    struct hc_report *r = b->r;
    double *rtt = calloc(r->member_count + 1, sizeof(*rtt));
    json_t *members = NULL;
    char *text = NULL;
    int rc = rtt != NULL ? CM_OK : CM_ENOMEM;

    for (size_t m = 0; rc == CM_OK && m < r->member_count; m++) {
        if (b->probes == NULL)
            r->mem[m].rtt_ms = -1;
        else if (r->mem[m].rtt_stale)
            r->mem[m].rtt_ms = hc_probes_member_rtt(b->probes, r->conf->members[m].name);
        r->mem[m].rtt_stale = false;
        rtt[m] = r->mem[m].rtt_ms;
    }
    if (rc == CM_OK)
        members = hc_entry_members_json(r->conf, b->clusters, b->probes != NULL ? rtt : NULL);
    if (members != NULL)
        text = json_dumps(members, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        rc = CM_ENOMEM;
    if (rc == CM_OK && (r->members_text == NULL || strcmp(text, r->members_text) != 0)) {
        rc = validate(b, NULL, NULL, members);
        if (rc == CM_OK) {
            free(r->members_text);
            r->members_text = text;
            text = NULL;
            *changed = true;
        }
    }
    free(text);
    json_decref(members);
    free(rtt);
    return rc;
}

static int cmp_svc(const void *a, const void *b)
{
    return strcmp((*(struct svc *const *)a)->key, (*(struct svc *const *)b)->key);
}

static int sort_services(struct hc_report *r)
{
    struct svc **o = malloc((r->nsvc + 1) * sizeof(*o));
    size_t n = 0;

    if (o == NULL)
        return CM_ENOMEM;
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext) {
            if (s->included)
                o[n++] = s;
        }
    }
    qsort(o, n, sizeof(*o), cmp_svc);
    free(r->order);
    r->order = o;
    r->norder = n;
    r->order_stale = false;
    return CM_OK;
}

/* Writes into buf, or only counts when buf is NULL. */
struct writer {
    char *buf;
    size_t len;
};

static void put(struct writer *w, const char *s, size_t n)
{
    if (w->buf != NULL)
        memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void put_str(struct writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* The document, keys in jansson's sorted order: generated_at, generation,
 * members, services (each {members, port}), vantage, version. */
static void write_doc(const struct hc_report *r, struct writer *w, const char *ts, uint64_t gen)
{
    char num[48];

    put_str(w, "{\"generated_at\":\"");
    put_str(w, ts);
    snprintf(num, sizeof(num), "\",\"generation\":%" PRIu64 ",\"members\":", gen);
    put_str(w, num);
    put_str(w, r->members_text);
    put_str(w, ",\"services\":{");
    for (size_t i = 0; i < r->norder; i++) {
        const struct svc *s = r->order[i];
        bool first = true;

        if (i > 0)
            put(w, ",", 1);
        put(w, "\"", 1);
        put(w, s->key, s->key_len);
        put_str(w, "\":{\"members\":{");
        for (size_t k = 0; k < r->member_count; k++) {
            const struct ent *e = s->ents[r->by_name[k]];

            if (e == NULL)
                continue;
            if (!first)
                put(w, ",", 1);
            put(w, e->text, e->len);
            first = false;
        }
        put(w, "}", 1);
        if (s->port != 0) {
            snprintf(num, sizeof(num), ",\"port\":%u", (unsigned)s->port);
            put_str(w, num);
        }
        put(w, "}", 1);
    }
    put_str(w, "},\"vantage\":");
    put_str(w, r->qvantage);
    snprintf(num, sizeof(num), ",\"version\":%d}", CM_STATE_VERSION);
    put_str(w, num);
}

/* The next generation's text from the committed records. The previous text
 * stays intact on failure. */
static int assemble(struct hc_report *r, time_t now)
{
    struct writer w = {0};
    char ts[32];

    if (r->order_stale && sort_services(r) != CM_OK)
        return CM_ENOMEM;
    if (r->norder > CM_STATE_MAX_SERVICES) {
        cm_log_error("state document: %zu services, more than consumers accept (%u); keeping the "
                     "previous one",
                     r->norder, CM_STATE_MAX_SERVICES);
        return CM_ETOOBIG;
    }
    hc_report_time(now, ts, sizeof(ts));
    write_doc(r, &w, ts, r->generation + 1);
    if (w.len > CM_STATE_MAX_BYTES) {
        cm_log_error("state document: %zu bytes, more than consumers accept (%u); keeping the "
                     "previous one",
                     w.len, CM_STATE_MAX_BYTES);
        return CM_ETOOBIG;
    }
    if (w.len + 1 > r->text_cap) {
        /* Not realloc: the old text would be copied for nothing. */
        size_t cap = w.len + w.len / 8 + 1;
        char *nb = malloc(cap);

        if (nb == NULL)
            return CM_ENOMEM;
        free(r->text);
        r->text = nb;
        r->text_cap = cap;
    }
    w.buf = r->text;
    w.len = 0;
    write_doc(r, &w, ts, r->generation + 1);
    r->text[w.len] = '\0';
    r->text_len = w.len;
    r->generation++;
    json_decref(r->doc);
    r->doc = NULL;
    return CM_OK;
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
    char *qvantage;
    struct ent ***ents; /* one new array per record, in bucket order */
    long *remap;        /* old member index -> new, -1: gone */
};

static void adopt_fini(struct adopt *a, size_t member_count, size_t nsvc)
{
    free_mem(a->mem, member_count);
    free(a->by_name);
    free(a->ckeys);
    free(a->qvantage);
    for (size_t i = 0; a->ents != NULL && i < nsvc; i++)
        free(a->ents[i]);
    free(a->ents);
    free(a->remap);
}

static int adopt_prepare(const struct hc_report *r, const struct cm_conf *conf, struct adopt *a)
{
    size_t n = conf->member_count, qlen;
    struct name_idx *ni = calloc(n + 1, sizeof(*ni));
    int rc = CM_OK;

    a->mem = calloc(n + 1, sizeof(*a->mem));
    a->by_name = calloc(n + 1, sizeof(*a->by_name));
    a->ckeys = calloc(conf->service_count + 1, sizeof(*a->ckeys));
    a->qvantage = quote(conf->regions[conf->health.vantage].name, "", &qlen);
    a->ents = calloc(r->nsvc + 1, sizeof(*a->ents));
    a->remap = calloc(r->member_count + 1, sizeof(*a->remap));
    if (ni == NULL || a->mem == NULL || a->by_name == NULL || a->ckeys == NULL ||
        a->qvantage == NULL || a->ents == NULL || a->remap == NULL)
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

/*
 * Switches the records to @conf: entries follow their member by name (a
 * member added or removed only adds or drops its own), the marks are
 * dropped and everything is marked at the next collect. CM_ENOMEM leaves
 * everything as it was.
 */
static int adopt_conf(struct hc_report *r, struct cm_conf *conf)
{
    struct adopt a = {0};
    size_t i = 0;
    int rc = adopt_prepare(r, conf, &a);

    if (rc != CM_OK) {
        adopt_fini(&a, conf->member_count, r->nsvc);
        return rc;
    }
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext, i++) {
            for (size_t m = 0; m < r->member_count; m++) {
                if (a.remap[m] >= 0)
                    a.ents[i][a.remap[m]] = s->ents[m];
                else
                    ent_free(s->ents[m]);
            }
            free(s->ents);
            s->ents = a.ents[i];
            a.ents[i] = NULL;
            free(s->dbits);
            s->dbits = NULL;
            s->dall = s->marked = false;
            s->dnext = NULL;
        }
    }
    r->dirty = NULL;
    free_mem(r->mem, r->member_count);
    free(r->by_name);
    free(r->ckeys);
    free(r->qvantage);
    r->mem = a.mem;
    r->by_name = a.by_name;
    r->ckeys = a.ckeys;
    r->qvantage = a.qvantage;
    a.mem = NULL;
    a.by_name = NULL;
    a.ckeys = NULL;
    a.qvantage = NULL;
    adopt_fini(&a, 0, r->nsvc);
    r->member_count = conf->member_count;
    cm_conf_unref(r->conf);
    r->conf = cm_conf_ref(conf);
    for (size_t b = 0; b < r->nbuckets; b++) {
        for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext)
            s->csvc = conf_lookup(r, s->key, s->ns_len, s->key + s->ns_len + 1);
    }
    r->full = true;
    r->order_stale = true;
    return CM_OK;
}

/* ---- the update ---- */

static void build_fini(struct build *b)
{
    for (size_t i = 0; i < b->nstages; i++)
        stage_discard(b->r, &b->stages[i]);
    free(b->stages);
    free(b->sos);
}

/* Builds every marked record into b->stages. */
static int build_marked(struct build *b)
{
    size_t n = 0;
    int rc = CM_OK;

    for (const struct svc *s = b->r->dirty; s != NULL; s = s->dnext)
        n++;
    b->stages = calloc(n + 1, sizeof(*b->stages));
    b->sos = calloc(b->r->member_count + 1, sizeof(*b->sos));
    if (b->stages == NULL || b->sos == NULL)
        return CM_ENOMEM;
    for (struct svc *s = b->r->dirty; s != NULL && rc == CM_OK; s = s->dnext)
        rc = build_svc(b, s, &b->stages[b->nstages++]);
    return rc;
}

/* Installs every stage; true when the content changed. */
static bool commit(struct build *b)
{
    struct hc_report *r = b->r;
    bool changed = false;

    for (size_t i = 0; i < b->nstages; i++)
        changed |= stage_commit(r, &b->stages[i], b->probes);
    clear_marks(r);
    /* Records out of the document (their entries are gone) go. */
    for (size_t i = 0; i < b->nstages; i++) {
        if (!b->stages[i].s->included)
            svc_remove(r, b->stages[i].s);
    }
    b->nstages = 0;
    return changed;
}

int hc_report_update(struct hc_report *r, struct cm_conf *conf, struct hc_cluster *const *clusters,
                     struct hc_probes *probes, time_t now, bool *changed)
{
    struct build b = {
        .r = r,
        .clusters = clusters,
        .probes = probes,
        .ectx = {.conf = conf, .probes = probes, .now = now, .refused_rl = &r->refused_rl}};
    bool full, content = false;
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
    full = r->full;
    if (full && probes != NULL)
        hc_probes_mark(probes);
    cm_state_opts_from_conf(&b.opts, conf);
    rc = build_marked(&b);
    if (rc != CM_OK) {
        build_fini(&b); /* the marks stay for the next update */
        return rc;
    }
    content = commit(&b);
    build_fini(&b);
    if (full && probes != NULL)
        hc_probes_sweep(probes);
    rc = update_members(&b, &content);
    if (rc == CM_OK && (content || !r->committed || r->text_stale))
        rc = assemble(r, now);
    if (rc != CM_OK) {
        r->text_stale = r->text_stale || content;
        return rc;
    }
    if (content || !r->committed || r->text_stale) {
        r->text_stale = false;
        r->committed = true;
        json_decref(r->previous); /* the records carry the verdicts from now on */
        r->previous = NULL;
        *changed = true;
    }
    return CM_OK;
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
    free(r->qvantage);
    free(r->members_text);
    free(r->text);
    free(r->prev_text);
    free(r->scratch);
    json_decref(r->doc);
    json_decref(r->previous);
    cm_conf_unref(r->conf);
    free(r);
}

json_t *hc_report_doc(struct hc_report *r)
{
    if (!r->committed)
        return r->previous;
    if (r->doc == NULL)
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
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        cm_strlcpy(buf, "1970-01-01T00:00:00Z", cap);
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

int hc_report_write(struct hc_report *r, const char *path, char *err, size_t errlen)
{
    const char *text;
    size_t len;

    if (!r->committed)
        return CM_OK;
    text = hc_report_text(r, &len);
    if (text == NULL)
        return CM_ENOMEM;
    return cm_file_write_atomic(path, text, len, 0600, err, errlen);
}
