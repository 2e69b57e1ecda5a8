/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report_build.c -- the marked records rebuilt (hc_entry per entry,
 * validated as a small document, the record's fragment text composed from
 * the new entries and the unchanged ones), committed, and the document made
 * of the fragments (hc_report_int.h has the layout).
 *
 * The document is what jansson writes for the whole tree with JSON_COMPACT |
 * JSON_SORT_KEYS: keys in byte order at every level (generated_at,
 * generation, members, services, vantage, version; in a service members,
 * port; members and services by name), entries serialized by jansson itself.
 */
#include "health/hc_report_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_jdump.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "health/hc_cluster.h"
#include "health/hc_endpoint.h"
#include "health/hc_fedsvc.h"
#include "health/hc_probe.h"
#include "health/hc_report.h"

#define VALIDATE_TS     "1970-01-01T00:00:00Z"
#define CHECK_BATCH     64 /* services validated together */
#define MEMBERS_KEY     "\"members\":"
#define JSON_DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)
#define ENTRY_TEXT_MAX  (64u << 20) /* an entry's text: far beyond any real one */

void rep_ent_clear(struct ent *e)
{
    for (size_t i = 0; i < e->target_count; i++)
        free(e->targets[i]);
    free(e->targets);
    *e = (struct ent){0};
}

/* The verdict the entry had: the committed one, else the state file's. */
static int previous_healthy(const struct hc_report *r, const struct svc *s, size_t m)
{
    const json_t *v;

    if (s->ents[m].present)
        return s->ents[m].healthy;
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

/* @e serialized behind member @m's key into a new string *out (*len bytes). */
static int entry_text(struct hc_report *r, size_t m, const struct hc_entry *e, char **out,
                      size_t *len)
{
    const struct mem *me = &r->mem[m];
    /* cm_jdump() writes what json_dumpb() would, a few times faster; the
     * scratch is its buffer. What it leaves to jansson goes to jansson. */
    struct cm_buf jb = {.data = r->scratch, .cap = r->scratch_cap, .max = ENTRY_TEXT_MAX};
    int rc = cm_jdump(e->json, &jb);
    size_t need;

    r->scratch = jb.data;
    r->scratch_cap = jb.cap;
    if (rc != CM_OK && rc != CM_ENOTSUP)
        return CM_ENOMEM;
    need = rc == CM_OK ? jb.len : json_dumpb(e->json, r->scratch, r->scratch_cap, JSON_DUMP_FLAGS);
    if (rc != CM_OK && need > r->scratch_cap) {
        char *nb = realloc(r->scratch, need * 2);

        if (nb == NULL)
            return CM_ENOMEM;
        r->scratch = nb;
        r->scratch_cap = need * 2;
        need = json_dumpb(e->json, r->scratch, r->scratch_cap, JSON_DUMP_FLAGS);
    }
    if (need == 0)
        return CM_ENOMEM;
    *out = malloc(me->qname_len + need + 1);
    if (*out == NULL)
        return CM_ENOMEM;
    memcpy(*out, me->qname, me->qname_len);
    memcpy(*out + me->qname_len, r->scratch, need);
    *len = me->qname_len + need;
    (*out)[*len] = '\0';
    return CM_OK;
}

/* A document holding what is new in the services, or only the members
 * section, checked by the consumers' parser; CM_ESTATE logged. */
static int validate(struct build *b, json_t *services, json_t *members)
{
    const struct cm_conf *conf = b->r->conf;
    char err[CM_STATE_ERR_MAX] = "";
    struct cm_state *st = NULL;
    json_t *doc = json_pack("{s:i, s:s, s:i, s:s}", "version", CM_STATE_VERSION, "vantage",
                            conf->regions[conf->health.vantage].name, "generation", 1,
                            "generated_at", VALIDATE_TS);
    int rc = doc != NULL ? CM_OK : CM_ENOMEM;

    if (rc == CM_OK && services != NULL && json_object_set(doc, "services", services) != 0)
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

/* A Service's first port, 0: none. */
static uint16_t svc_port(const struct hc_k8s_obj *so)
{
    const struct hc_k8s_port *p = so != NULL ? hc_endpoint_pick_port(&so->u.svc, 0) : NULL;

    return p != NULL ? p->port : 0;
}

/*
 * Whether and at which port @s is in the document, and the Service of each
 * member to rebuild (b->sos). A member not marked has the Service it had
 * (else a change would have marked it): its entry remembers what counts
 * here, so only the marked members are looked up -- every one while @s is
 * out of the document.
 */
static void look_up(struct build *b, const struct svc *s, bool *included, uint16_t *port)
{
    char ns[REP_LABEL_MAX + 1], name[REP_LABEL_MAX + 1];

    memcpy(ns, s->key, s->ns_len);
    ns[s->ns_len] = '\0';
    cm_strlcpy(name, s->key + s->ns_len + 1, sizeof(name));
    *included = s->csvc != NULL || s->fed;
    *port = s->csvc != NULL ? s->csvc->port : 0;
    for (size_t m = 0; m < b->r->member_count; m++) {
        const struct hc_cluster *c = b->clusters[m];
        const struct ent *e = &s->ents[m];
        bool federates;
        uint16_t p;

        b->sos[m] = NULL;
        if (!s->included || rep_marked(s, m)) {
            b->sos[m] = c != NULL ? hc_cluster_service(c, ns, name) : NULL;
            federates = b->sos[m] != NULL && b->sos[m]->u.svc.federate;
            p = svc_port(b->sos[m]);
        } else {
            federates = e->present && e->federates;
            p = e->present ? e->svc_port : 0;
        }
        *included = *included || federates;
        if (*port == 0)
            *port = p;
    }
    if (!*included)
        *port = 0;
}

/* Rebuilds entry @m of @s into st->sents[m] and b->etext[m]; @built collects
 * its JSON for validation. */
static int build_entry(struct build *b, struct svc *s, struct stage *st, size_t m,
                       const struct hc_fedsvc *fs, json_t **built)
{
    struct sent *se = &st->sents[m];
    struct hc_entry e;
    int rc;

    se->built = true;
    if (b->sos[m] == NULL)
        return CM_OK;
    rc = hc_entry_build(&b->ectx, s->key, m, b->clusters[m], b->sos[m], s->csvc,
                        fs != NULL && fs->allow_no_endpoints, previous_healthy(b->r, s, m), &e);
    if (rc != CM_OK)
        return rc;
    rc = entry_text(b->r, m, &e, &b->etext[m], &b->elen[m]);
    if (rc == CM_OK && *built == NULL)
        *built = json_object();
    if (rc == CM_OK &&
        (*built == NULL || json_object_set(*built, b->r->conf->members[m].name, e.json) != 0))
        rc = CM_ENOMEM;
    if (rc == CM_OK) {
        se->present = true;
        se->healthy = e.healthy;
        se->federates = b->sos[m]->u.svc.federate;
        se->svc_port = svc_port(b->sos[m]);
        se->targets = e.targets;
        se->target_count = e.target_count;
        e.targets = NULL;
        e.target_count = 0;
    }
    hc_entry_fini(&e);
    return rc;
}

/* The entry text of member @m in the new fragment: rebuilt, or the committed one. */
static const char *piece(const struct build *b, const struct stage *st, size_t m, size_t *len)
{
    const struct svc *s = st->s;

    if (st->sents[m].built) {
        *len = b->elen[m];
        return b->etext[m];
    }
    *len = s->ents[m].len;
    return s->text + s->ents[m].off;
}

/* st->text from the entries, in member name order, with the trailing comma. */
json_t *rep_rules(const struct hc_fedsvc *fs)
{
    json_t *o = json_object();
    int rc = o != NULL ? CM_OK : CM_ENOMEM;

    if (fs == NULL || rc != CM_OK)
        return o;
    if (fs->has_placement) {
        json_t *a = json_array();

        for (size_t i = 0; a != NULL && i < fs->placement_count; i++) {
            if (json_array_append_new(a, json_string(fs->placement[i])) != 0) {
                json_decref(a);
                a = NULL;
            }
        }
        if (a == NULL || json_object_set_new(o, "placement", a) != 0)
            rc = CM_ENOMEM;
    }
    if (rc == CM_OK && fs->ttl_s > 0 &&
        json_object_set_new(o, "ttl_s", json_integer(fs->ttl_s)) != 0)
        rc = CM_ENOMEM;
    if (rc == CM_OK && fs->allow_no_endpoints &&
        json_object_set_new(o, "allow_without_endpoints", json_true()) != 0)
        rc = CM_ENOMEM;
    if (rc != CM_OK) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * The service's own fields (its port, the host cluster's rules) serialized in
 * two runs: the keys that sort before "members" into *head, the others into
 * *tail, each without braces (""; freed by the caller). A field added to
 * services goes into @fields here and nowhere else.
 */
static int service_fields(const struct stage *st, const struct hc_fedsvc *fs, char **head,
                          char **tail)
{
    json_t *fields = rep_rules(fs), *part[2] = {json_object(), json_object()};
    char *text[2] = {NULL, NULL};
    const char *k;
    json_t *v;
    int rc = fields != NULL && part[0] != NULL && part[1] != NULL ? CM_OK : CM_ENOMEM;

    if (rc == CM_OK && st->port != 0 &&
        json_object_set_new(fields, "port", json_integer(st->port)) != 0)
        rc = CM_ENOMEM;
    json_object_foreach(fields, k, v)
    {
        if (rc == CM_OK && json_object_set(part[strcmp(k, "members") > 0], k, v) != 0)
            rc = CM_ENOMEM;
    }
    for (int i = 0; rc == CM_OK && i < 2; i++) {
        text[i] = json_dumps(part[i], JSON_DUMP_FLAGS);
        if (text[i] == NULL) {
            rc = CM_ENOMEM;
        } else { /* "{...}" -> "..." */
            size_t n = strlen(text[i]);

            memmove(text[i], text[i] + 1, n - 2);
            text[i][n - 2] = '\0';
        }
    }
    json_decref(fields);
    json_decref(part[0]);
    json_decref(part[1]);
    if (rc != CM_OK) {
        free(text[0]);
        free(text[1]);
        return rc;
    }
    *head = text[0];
    *tail = text[1];
    return CM_OK;
}

/* st->text from the entries, in member name order, with the trailing comma:
 * "\"key\":{HEAD,\"members\":{...},TAIL}," (HEAD and TAIL: service_fields). */
static int compose(struct build *b, struct stage *st, const struct hc_fedsvc *fs)
{
    const struct hc_report *r = b->r;
    const struct svc *s = st->s;
    size_t len, o = 0, plen, hl, tl;
    char *t, *head = NULL, *tail = NULL;
    int rc = service_fields(st, fs, &head, &tail);

    if (rc != CM_OK)
        return rc;
    hl = strlen(head);
    tl = strlen(tail);
    /* '"' key '":{' head ',' '"members":{' entries '}' ',' tail '}' ',' NUL, and a
     * comma after each entry (one more than the commas between them) */
    len = 1 + s->key_len + 3 + hl + 1 + strlen(MEMBERS_KEY) + 1 + 1 + 1 + tl + 1 + 1 + 1;
    for (size_t m = 0; m < r->member_count; m++) {
        if (st->sents[m].built ? st->sents[m].present : s->ents[m].present) {
            piece(b, st, m, &plen);
            len += plen + 1;
        }
    }
    t = malloc(len);
    if (t == NULL) {
        free(head);
        free(tail);
        return CM_ENOMEM;
    }
    t[o++] = '"';
    memcpy(t + o, s->key, s->key_len);
    o += s->key_len;
    memcpy(t + o, "\":{", 3);
    o += 3;
    memcpy(t + o, head, hl);
    o += hl;
    if (hl > 0)
        t[o++] = ',';
    memcpy(t + o, MEMBERS_KEY, strlen(MEMBERS_KEY));
    o += strlen(MEMBERS_KEY);
    t[o++] = '{';
    for (size_t k = 0, first = 1; k < r->member_count; k++) {
        size_t m = r->by_name[k];
        struct sent *se = &st->sents[m];
        const char *p;

        if (!(se->built ? se->present : s->ents[m].present))
            continue;
        p = piece(b, st, m, &plen);
        if (!first)
            t[o++] = ',';
        first = 0;
        se->present = true;
        se->off = o;
        se->len = plen;
        memcpy(t + o, p, plen);
        o += plen;
    }
    t[o++] = '}';
    if (tl > 0)
        t[o++] = ',';
    memcpy(t + o, tail, tl);
    o += tl;
    t[o++] = '}';
    t[o++] = ',';
    t[o] = '\0';
    st->text = t;
    st->text_len = o;
    free(head);
    free(tail);
    return CM_OK;
}

/* Builds the marked entries of @s into @st and its new fragment. */
static int build_svc(struct build *b, struct svc *s, struct stage *st)
{
    struct hc_report *r = b->r;
    const struct hc_fedsvc *fs = NULL;
    json_t *built = NULL; /* the entries built, for validation */
    int rc = CM_OK;

    st->s = s;
    if (s->fed) {
        char ns[REP_LABEL_MAX + 1], name[REP_LABEL_MAX + 1];

        memcpy(ns, s->key, s->ns_len);
        ns[s->ns_len] = '\0';
        cm_strlcpy(name, s->key + s->ns_len + 1, sizeof(name));
        fs = hc_fedsvcs_find(r->fedsvcs, ns, name);
    }
    look_up(b, s, &st->included, &st->port);
    st->sents = calloc(r->member_count + 1, sizeof(*st->sents));
    if (st->sents == NULL)
        return CM_ENOMEM;
    for (size_t m = 0; m < r->member_count; m++) {
        b->etext[m] = NULL;
        b->elen[m] = 0;
    }
    for (size_t m = 0; m < r->member_count; m++) {
        if (!st->included || !s->included || rep_marked(s, m))
            st->sents[m].built = true; /* out of the document: every entry goes */
        if (st->included && st->sents[m].built)
            rc = build_entry(b, s, st, m, fs, &built);
        if (rc != CM_OK)
            break;
    }
    /* What is new joins the update's one validation (rep_build_marked). */
    if (rc == CM_OK && st->included &&
        (built != NULL || !s->included || st->port != s->port || fs != NULL)) {
        json_t *svc = rep_rules(fs);

        if (svc == NULL ||
            json_object_set_new(svc, "members",
                                built != NULL ? json_incref(built) : json_object()) != 0 ||
            (st->port != 0 && json_object_set_new(svc, "port", json_integer(st->port)) != 0) ||
            json_object_set(b->check, s->key, svc) != 0)
            rc = CM_ENOMEM;
        json_decref(svc);
    }
    if (rc == CM_OK && st->included)
        rc = compose(b, st, fs);
    st->changed = st->included != s->included || st->text_len != s->text_len ||
                  (st->text != NULL && memcmp(st->text, s->text, st->text_len) != 0);
    for (size_t m = 0; m < r->member_count; m++) {
        free(b->etext[m]);
        b->etext[m] = NULL;
    }
    json_decref(built);
    return rc;
}

int rep_build_marked(struct build *b)
{
    size_t n = 0, mc = b->r->member_count + 1;
    int rc = CM_OK;

    for (const struct svc *s = b->r->dirty; s != NULL; s = s->dnext)
        n++;
    b->stages = calloc(n + 1, sizeof(*b->stages));
    b->sos = calloc(mc, sizeof(*b->sos));
    b->etext = calloc(mc, sizeof(*b->etext));
    b->elen = calloc(mc, sizeof(*b->elen));
    b->check = json_object();
    if (b->stages == NULL || b->sos == NULL || b->etext == NULL || b->elen == NULL ||
        b->check == NULL)
        return CM_ENOMEM;
    for (struct svc *s = b->r->dirty; s != NULL && rc == CM_OK; s = s->dnext) {
        rc = build_svc(b, s, &b->stages[b->nstages++]);
        /* In batches: a whole document's trees at once would be all the memory there is. */
        if (rc == CM_OK && (json_object_size(b->check) >= CHECK_BATCH || s->dnext == NULL) &&
            json_object_size(b->check) > 0) {
            rc = validate(b, b->check, NULL);
            json_object_clear(b->check);
        }
    }
    return rc;
}

/* Releases what @st built (the update did not commit). */
static void stage_discard(const struct hc_report *r, struct stage *st)
{
    for (size_t m = 0; st->sents != NULL && m < r->member_count; m++) {
        for (size_t i = 0; i < st->sents[m].target_count; i++)
            free(st->sents[m].targets[i]);
        free(st->sents[m].targets);
    }
    free(st->sents);
    free(st->text);
    st->sents = NULL;
    st->text = NULL;
}

void rep_build_fini(struct build *b)
{
    for (size_t i = 0; i < b->nstages; i++)
        stage_discard(b->r, &b->stages[i]);
    free(b->stages);
    free(b->sos);
    free(b->etext);
    free(b->elen);
    json_decref(b->check);
    b->check = NULL;
    b->stages = NULL;
    b->nstages = 0;
}

static bool has_target(const struct sent *se, const char *t)
{
    for (size_t i = 0; i < se->target_count; i++) {
        if (strcmp(se->targets[i], t) == 0)
            return true;
    }
    return false;
}

void rep_drop_probes(struct build *b)
{
    struct hc_report *r = b->r;

    for (size_t i = 0; b->probes != NULL && i < b->nstages; i++) {
        const struct stage *st = &b->stages[i];
        const struct svc *s = st->s;

        for (size_t m = 0; m < r->member_count; m++) {
            const struct ent *e = &s->ents[m];

            for (size_t k = 0; st->sents[m].built && k < e->target_count; k++) {
                if (has_target(&st->sents[m], e->targets[k]))
                    continue;
                hc_probes_remove(b->probes, s->key, r->conf->members[m].name, e->targets[k]);
                r->mem[m].rtt_stale = true;
            }
        }
    }
}

/* Installs @st. */
static void stage_commit(struct hc_report *r, struct stage *st)
{
    struct svc *s = st->s;

    for (size_t m = 0; m < r->member_count; m++) {
        struct sent *se = &st->sents[m];
        struct ent *e = &s->ents[m];

        if (!se->built) {
            e->off = se->off; /* the same entry, moved in the new text */
            continue;
        }
        rep_ent_clear(e);
        *e = (struct ent){.present = se->present,
                          .healthy = se->healthy,
                          .federates = se->federates,
                          .svc_port = se->svc_port,
                          .off = se->off,
                          .len = se->len,
                          .targets = se->targets,
                          .target_count = se->target_count};
        se->targets = NULL;
        se->target_count = 0;
    }
    if (s->included)
        r->frag_total -= s->text_len;
    if (st->included)
        r->frag_total += st->text_len;
    if (st->included != s->included)
        r->order_stale = true;
    s->included = st->included;
    s->port = st->port;
    /* The same text stays: the document's parts point into it. */
    if (st->changed) {
        s->text_gen = r->generation + 1; /* a change makes the next generation */
        rep_note_change(r, s, s->text, s->text_len, st->text, st->text_len);
        free(s->text);
        s->text = st->text;
        s->text_len = st->text_len;
        st->text = NULL;
    }
    free(st->text);
    st->text = NULL;
    free(st->sents);
    st->sents = NULL;
}

int rep_members_text(struct build *b, char **out)
{
    struct hc_report *r = b->r;
    double *rtt = calloc(r->member_count + 1, sizeof(*rtt));
    json_t *members = NULL;
    char *text = NULL;
    int rc = rtt != NULL ? CM_OK : CM_ENOMEM;

    bool moved = r->members_text == NULL || r->members_moved;

    *out = NULL;
    for (size_t m = 0; rc == CM_OK && m < r->member_count; m++) {
        struct mem *me = &r->mem[m];
        const struct hc_cluster *c = b->clusters[m];
        int api = c != NULL ? (int)hc_cluster_api(c) : -1;
        time_t seen = c != NULL && api != HC_API_OK ? hc_cluster_last_seen(c) : 0;

        if (b->probes == NULL)
            me->rtt_ms = -1;
        else if (me->rtt_stale)
            me->rtt_ms = hc_probes_member_rtt(b->probes, r->conf->members[m].name);
        me->rtt_stale = false;
        rtt[m] = me->rtt_ms;
        /* All the section shows of the member besides the configuration. */
        moved = moved || me->shown_api != api || me->shown_seen != seen || me->shown_rtt != rtt[m];
    }
    /* Nothing moved (and the configuration, which would rebuild it all, did not change). */
    if (rc == CM_OK && !moved && !b->full) {
        free(rtt);
        return CM_OK;
    }
    if (rc == CM_OK)
        members = hc_entry_members_json(r->conf, b->clusters, b->probes != NULL ? rtt : NULL);
    if (members != NULL)
        text = json_dumps(members, JSON_DUMP_FLAGS);
    if (text == NULL)
        rc = CM_ENOMEM;
    if (rc == CM_OK && (r->members_text == NULL || strcmp(text, r->members_text) != 0)) {
        rc = validate(b, NULL, members);
        if (rc == CM_OK) {
            *out = text;
            text = NULL;
        }
    }
    for (size_t m = 0; rc == CM_OK && m < r->member_count; m++) {
        const struct hc_cluster *c = b->clusters[m];
        struct mem *me = &r->mem[m];

        me->shown_api = c != NULL ? (int)hc_cluster_api(c) : -1;
        me->shown_seen = c != NULL && me->shown_api != HC_API_OK ? hc_cluster_last_seen(c) : 0;
        me->shown_rtt = me->rtt_ms;
    }
    if (rc != CM_OK) {
        for (size_t m = 0; m < r->member_count; m++)
            r->mem[m].rtt_stale = true;
    }
    free(text);
    json_decref(members);
    free(rtt);
    return rc;
}

/* ---- the document ---- */

/* "{\"generated_at\":\"TS\",\"generation\":N,\"members\":{...},\"services\":{" */
static char *make_head(const char *members_text, time_t now, uint64_t gen, size_t *len)
{
    char ts[32];
    struct cm_buf b;

    hc_report_time(now, ts, sizeof(ts));
    cm_buf_init(&b, CM_STATE_MAX_BYTES);
    if (cm_buf_printf(&b, "{\"generated_at\":\"%s\",\"generation\":%" PRIu64 ",\"members\":", ts,
                      gen) != CM_OK ||
        cm_buf_append_str(&b, members_text) != CM_OK ||
        cm_buf_append_str(&b, ",\"services\":{") != CM_OK) {
        cm_buf_fini(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

bool rep_changed(const struct build *b)
{
    for (size_t i = 0; i < b->nstages; i++) {
        if (b->stages[i].changed)
            return true;
    }
    return false;
}

int rep_tail(const struct hc_report *r, struct doc_prep *p)
{
    const struct cm_conf *conf = r->conf;
    json_t *v = json_string(conf->regions[conf->health.vantage].name);
    char *q = v != NULL ? json_dumps(v, JSON_ENCODE_ANY) : NULL;
    struct cm_buf b;
    int rc = q != NULL ? CM_OK : CM_ENOMEM;

    cm_buf_init(&b, CM_STATE_MAX_BYTES);
    if (rc == CM_OK)
        rc = cm_buf_printf(&b, "},\"vantage\":%s,\"version\":%d}", q, CM_STATE_VERSION);
    json_decref(v);
    free(q);
    if (rc != CM_OK) {
        cm_buf_fini(&b);
        return rc;
    }
    p->tail = b.data;
    p->tail_len = b.len;
    return CM_OK;
}

/*
 * What the next document needs, checked and allocated before anything is
 * committed: within the consumers' limits, its head, room for its parts and
 * its order. @members_text: the new members section, or NULL (unchanged);
 * p->tail made by rep_tail().
 */
int rep_prepare(struct build *b, const char *members_text, time_t now, struct doc_prep *p)
{
    struct hc_report *r = b->r;
    size_t count = r->norder, frags = r->frag_total, len;

    for (size_t i = 0; i < b->nstages; i++) {
        const struct stage *st = &b->stages[i];

        if (st->included) {
            count++;
            frags += st->text_len;
        }
        if (st->s->included) {
            count--;
            frags -= st->s->text_len;
        }
    }
    if (count > CM_STATE_MAX_SERVICES) {
        cm_log_error("state document: %zu services, more than consumers accept (%u); keeping the "
                     "previous one",
                     count, CM_STATE_MAX_SERVICES);
        return CM_ETOOBIG;
    }
    p->head = make_head(members_text != NULL ? members_text : r->members_text, now,
                        r->generation + 1, &p->head_len);
    if (p->head == NULL)
        return CM_ENOMEM;
    len = p->head_len + frags - (count > 0) + p->tail_len;
    if (len > CM_STATE_MAX_BYTES) {
        cm_log_error("state document: %zu bytes, more than consumers accept (%u); keeping the "
                     "previous one",
                     len, CM_STATE_MAX_BYTES);
        return CM_ETOOBIG;
    }
    p->doc_len = len;
    p->order = malloc((count + 1) * sizeof(*p->order));
    if (p->order == NULL)
        return CM_ENOMEM;
    if (count + 2 > r->parts_cap) {
        size_t cap = count + 2 + (count + 2) / 8;
        struct iovec *np = realloc(r->parts, cap * sizeof(*np));

        if (np == NULL)
            return CM_ENOMEM;
        r->parts = np;
        r->parts_cap = cap;
    }
    p->ready = true;
    return CM_OK;
}

void rep_prep_fini(struct doc_prep *p)
{
    free(p->head);
    free(p->tail);
    free(p->order);
    *p = (struct doc_prep){0};
}

static int cmp_svc(const void *a, const void *b)
{
    return strcmp((*(struct svc *const *)a)->key, (*(struct svc *const *)b)->key);
}

/* A slot for @len bytes: room to grow by an eighth and a little. */
static size_t slot_for(size_t len)
{
    return (len + len / 8 + 32 + 15) & ~(size_t)15;
}

size_t rep_file_len(const struct hc_report *r, size_t i)
{
    return r->order[i]->text_len - (i + 1 == r->norder);
}

/* Keeps the state file's layout when every part still fits its slot, else
 * lays out new slots (@moved: the services or their order changed). */
static void lay_out(struct hc_report *r, bool moved)
{
    size_t off;
    bool fits = !moved && r->layout != 0 && r->head_len <= r->head_cap;

    for (size_t i = 0; fits && i < r->norder; i++)
        fits = rep_file_len(r, i) <= r->order[i]->slot_cap;
    if (fits)
        return;
    r->layout++;
    r->head_cap = slot_for(r->head_len) + 1024; /* members' API states and RTTs move */
    off = r->head_cap;
    for (size_t i = 0; i < r->norder; i++) {
        struct svc *s = r->order[i];

        s->slot_off = off;
        s->slot_cap = slot_for(rep_file_len(r, i));
        off += s->slot_cap;
    }
}

/* The parts of the next generation from the committed records and @p (taken). */
static void make_parts(struct hc_report *r, struct doc_prep *p)
{
    size_t n = 0;
    bool moved = r->order_stale;

    if (r->order_stale) {
        for (size_t b = 0; b < r->nbuckets; b++) {
            for (struct svc *s = r->buckets[b]; s != NULL; s = s->hnext) {
                if (s->included)
                    p->order[n++] = s;
            }
        }
        qsort(p->order, n, sizeof(*p->order), cmp_svc);
        free(r->order);
        r->order = p->order;
        r->norder = n;
        p->order = NULL;
        r->order_stale = false;
    }
    free(r->head);
    r->head = p->head;
    r->head_len = p->head_len;
    p->head = NULL;
    free(r->tail);
    r->tail = p->tail;
    r->tail_len = p->tail_len;
    p->tail = NULL;
    r->parts[0] = (struct iovec){.iov_base = r->head, .iov_len = r->head_len};
    for (size_t i = 0; i < r->norder; i++) {
        const struct svc *s = r->order[i];

        /* The last fragment without its comma. */
        r->parts[i + 1] =
            (struct iovec){.iov_base = s->text, .iov_len = s->text_len - (i + 1 == r->norder)};
    }
    r->parts[r->norder + 1] = (struct iovec){.iov_base = r->tail, .iov_len = r->tail_len};
    r->nparts = r->norder + 2;
    r->doc_len = p->doc_len;
    lay_out(r, moved);
    r->generation++;
    json_decref(r->doc);
    r->doc = NULL;
}

void rep_commit(struct build *b, char *members_text, struct doc_prep *p)
{
    struct hc_report *r = b->r;

    for (size_t i = 0; i < b->nstages; i++)
        stage_commit(r, &b->stages[i]);
    rep_clear_marks(r);
    /* Records out of the document (their entries are gone) go. */
    for (size_t i = 0; i < b->nstages; i++) {
        if (!b->stages[i].s->included)
            rep_svc_remove(r, b->stages[i].s);
    }
    b->nstages = 0;
    r->members_moved = false;
    if (members_text != NULL) {
        free(r->members_text);
        r->members_text = members_text;
    }
    if (p->ready)
        make_parts(r, p);
    rep_prep_fini(p);
}

int rep_join(struct hc_report *r)
{
    size_t o = 0;

    if (r->text != NULL && r->text_gen == r->generation)
        return CM_OK;
    if (r->doc_len + 1 > r->text_cap) {
        /* Not realloc: the old text would be copied for nothing. */
        size_t cap = r->doc_len + r->doc_len / 8 + 1;
        char *nb = malloc(cap);

        if (nb == NULL)
            return CM_ENOMEM;
        free(r->text);
        r->text = nb;
        r->text_cap = cap;
    }
    for (size_t i = 0; i < r->nparts; i++) {
        memcpy(r->text + o, r->parts[i].iov_base, r->parts[i].iov_len);
        o += r->parts[i].iov_len;
    }
    r->text[o] = '\0';
    r->text_len = o;
    r->text_gen = r->generation;
    return CM_OK;
}
