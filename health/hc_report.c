/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.c -- cluster caches + configuration -> state document v1.
 *
 * Change detection compares the compact, key-sorted serialization of the
 * document without generation and generated_at, so a rebuild that finds
 * nothing new does not bump the generation or rewrite the state file.
 */
#include "health/hc_report.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "health/hc_cluster.h"
#include "health/hc_endpoint.h"
#include "health/hc_fedsvc.h"
#include "health/hc_probe.h"

/* Refused addresses are logged at most this often (every rebuild sees them again). */
#define REFUSED_LOG_BURST    5
#define REFUSED_LOG_PERIOD_S 60

struct hc_report {
    struct cm_log_ratelimit refused_rl; /* addresses dropped by the address rule */
    uint64_t generation;
    json_t *previous;                 /* owned reference: the state file's document, or NULL */
    json_t *doc;                      /* owned reference; NULL before the first update */
    const struct hc_fedsvcs *fedsvcs; /* borrowed: the registry's services, or NULL */
    char *text; /* owned: hc_report_doc() serialized, made on first use; or NULL */
    size_t text_len;
};

struct hc_report *hc_report_new(uint64_t generation, json_t *previous)
{
    struct hc_report *r = calloc(1, sizeof(*r));

    if (r != NULL) {
        r->refused_rl =
            (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(REFUSED_LOG_BURST, REFUSED_LOG_PERIOD_S);
        r->generation = generation;
        r->previous = json_incref(previous);
    }
    return r;
}

void hc_report_free(struct hc_report *r)
{
    if (r == NULL)
        return;
    json_decref(r->previous);
    json_decref(r->doc);
    free(r->text);
    free(r);
}

void hc_report_set_services(struct hc_report *r, const struct hc_fedsvcs *s)
{
    r->fedsvcs = s;
}

json_t *hc_report_doc(const struct hc_report *r)
{
    return r->doc != NULL ? r->doc : r->previous;
}

uint64_t hc_report_generation(const struct hc_report *r)
{
    return r->generation;
}

const char *hc_report_text(struct hc_report *r, size_t *len)
{
    json_t *doc = hc_report_doc(r);

    if (r->text == NULL && doc != NULL) {
        r->text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        r->text_len = r->text != NULL ? strlen(r->text) : 0;
    }
    *len = r->text_len;
    return r->text;
}

/*
 * The fresh build says what @published (with its generation and
 * generated_at) says. json_equal() walks both trees once; serializing both
 * with sorted keys to compare strings cost several times more at 40,000
 * entries.
 */
static bool same_content(json_t *fresh, json_t *published)
{
    const char *key;
    json_t *v;

    if (published == NULL || json_object_size(published) != json_object_size(fresh) + 2)
        return false;
    json_object_foreach(fresh, key, v)
    {
        if (!json_equal(v, json_object_get(published, key)))
            return false;
    }
    return true;
}

void hc_report_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        cm_strlcpy(buf, "1970-01-01T00:00:00Z", cap);
}

/* Steals @v; on failure @obj is left as it was. */
static int set_new(json_t *obj, const char *key, json_t *v)
{
    if (v == NULL)
        return CM_ENOMEM;
    return json_object_set_new(obj, key, v) == 0 ? CM_OK : CM_ENOMEM;
}

static json_t *members_json(const struct cm_conf *conf, struct hc_cluster *const *clusters)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];
        const struct cm_conf_region *rg = &conf->regions[m->region];
        const struct hc_cluster *c = clusters[i];
        json_t *e = json_object();
        char ts[32];
        int rc;

        rc = set_new(e, "region", json_string(rg->name));
        if (rc == CM_OK)
            rc = set_new(e, "zone", m->zone >= 0 ? json_string(rg->zones[m->zone]) : json_null());
        if (rc == CM_OK)
            rc = set_new(e, "api",
                         json_string(c != NULL ? hc_api_state_name(hc_cluster_api(c)) : "unknown"));
        /* Only a member that is not ok says when it was last seen: a time
         * that moved while everything is fine would change every document. */
        if (rc == CM_OK && c != NULL && hc_cluster_api(c) != HC_API_OK) {
            hc_report_time(hc_cluster_last_seen(c), ts, sizeof(ts));
            rc = set_new(e, "last_seen",
                         hc_cluster_last_seen(c) != 0 ? json_string(ts) : json_null());
        }
        if (rc != CM_OK || set_new(out, m->name, e) != CM_OK) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* Everything one rebuild reads; all borrowed. */
struct build_ctx {
    const struct cm_conf *conf;
    struct hc_cluster *const *clusters;
    struct hc_probes *probes; /* NULL: Kubernetes data only */
    const json_t *previous;   /* the last document published, or NULL */
    time_t now;
    struct cm_log_ratelimit *refused_rl;
    const struct hc_fedsvcs *fedsvcs; /* the registry's services and rules, or NULL */
};

/* The configured service ns/name, or NULL (annotated services). */
static const struct cm_conf_service *conf_service(const struct cm_conf *conf, const char *ns,
                                                  const char *name)
{
    for (size_t i = 0; i < conf->service_count; i++) {
        if (strcmp(conf->services[i].ns, ns) == 0 && strcmp(conf->services[i].name, name) == 0)
            return &conf->services[i];
    }
    return NULL;
}

/* The previous document's verdict for (service, member), or -1. */
static int previous_healthy(const json_t *previous, const char *key, const char *member)
{
    const json_t *v = json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(previous, "services"), key), "members"),
            member),
        "healthy");

    return json_is_boolean(v) ? json_is_true(v) : -1;
}

static json_t *rtt_json(double ms)
{
    return ms >= 0 ? json_real((double)(long long)(ms * 10.0 + 0.5) / 10.0) : json_null();
}

/* ---- serializing ---- */

static json_t *strv_json(char *const *v, size_t count)
{
    json_t *out = json_array();

    for (size_t i = 0; out != NULL && i < count; i++) {
        if (json_array_append_new(out, json_string(v[i])) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *addresses_json(const struct hc_endpoint *ep)
{
    json_t *out = json_array();

    for (size_t i = 0; out != NULL && i < ep->addr_count; i++) {
        if (ep->addrs[i].answered &&
            json_array_append_new(out, json_string(ep->addrs[i].address)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *probes_json(const struct hc_endpoint *ep)
{
    json_t *out = json_object();

    for (size_t i = 0; ep->probing && out != NULL && i < ep->addr_count; i++) {
        const struct hc_probe_status *st = ep->addrs[i].st;
        const char *state = st == NULL || st->verdict == HC_PROBE_UNKNOWN ? "unknown"
                            : st->verdict == HC_PROBE_UP                  ? "up"
                                                                          : "down";
        json_t *e = json_object();

        if (e == NULL || set_new(e, "state", json_string(state)) != CM_OK ||
            set_new(e, "rtt_ms", rtt_json(st != NULL ? st->rtt_ms : -1)) != CM_OK ||
            set_new(e, "error", json_string(st != NULL ? st->last_error : "")) != CM_OK ||
            set_new(out, ep->addrs[i].address, e) != CM_OK) {
            json_decref(e);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* One reconciled entry as its JSON object, or NULL on ENOMEM. */
static json_t *endpoint_to_json(const struct hc_endpoint *ep, const struct hc_k8s_svc *s)
{
    json_t *e = json_object();
    int rc = e != NULL ? CM_OK : CM_ENOMEM;

    if (rc == CM_OK)
        rc = set_new(e, "addresses", addresses_json(ep));
    if (rc == CM_OK)
        rc = set_new(e, "backends", strv_json(ep->backends, ep->backend_count));
    if (rc == CM_OK)
        rc = set_new(e, "probes", probes_json(ep));
    if (rc == CM_OK)
        rc = set_new(e, "hostname", ep->hostname != NULL ? json_string(ep->hostname) : json_null());
    if (rc == CM_OK)
        rc = set_new(e, "port", ep->port != NULL ? json_integer(ep->port->port) : json_null());
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints", json_integer((json_int_t)ep->ready_v4 + ep->ready_v6));
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints_ipv4", json_integer(ep->ready_v4));
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints_ipv6", json_integer(ep->ready_v6));
    if (rc == CM_OK)
        rc = set_new(e, "healthy", json_boolean(ep->healthy));
    if (rc == CM_OK)
        rc = set_new(e, "pending", json_boolean(ep->pending));
    if (rc == CM_OK && ep->rtt_ms >= 0)
        rc = set_new(e, "rtt_ms", rtt_json(ep->rtt_ms));
    if (rc == CM_OK)
        rc = set_new(e, "via_proxy", json_boolean(ep->via_proxy));
    if (rc == CM_OK)
        rc = set_new(e, "reason", json_string(ep->reason));
    if (rc == CM_OK && s->health_path != NULL)
        rc = set_new(e, "check_path", json_string(s->health_path));
    if (rc == CM_OK && s->health_port != 0)
        rc = set_new(e, "check_port", json_integer(s->health_port));
    /* Only when something was dropped: an unchanged document stays the same. */
    if (rc == CM_OK && ep->refused_count > 0)
        rc = set_new(e, "refused", strv_json(ep->refused, ep->refused_count));
    if (rc != CM_OK) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* ---- one entry: reconcile (hc_endpoint), keep the probe set, serialize ---- */

static json_t *endpoint_json(const struct build_ctx *bc, size_t mi, const struct hc_cluster *c,
                             const struct hc_k8s_obj *so, const struct cm_conf_service *csvc)
{
    const struct cm_conf_member *m = &bc->conf->members[mi];
    size_t nn = m->lb_mode == CM_LB_PROXY ? hc_cluster_count(c, HC_K8S_NODE) : 0;
    const struct hc_k8s_obj **nodes = nn > 0 ? calloc(nn, sizeof(*nodes)) : NULL;
    struct hc_endpoint_in in = {.conf = bc->conf,
                                .member = mi,
                                .csvc = csvc,
                                .svc = &so->u.svc,
                                .nodes = nodes,
                                .node_count = nodes != NULL ? nn : 0,
                                .api = hc_cluster_api(c),
                                .bad_since = hc_cluster_bad_since(c),
                                .now = bc->now,
                                .probes = bc->probes != NULL,
                                .refused_rl = bc->refused_rl};
    const struct hc_fedsvc *fs = hc_fedsvcs_find(bc->fedsvcs, so->ns, so->name);
    struct hc_endpoint ep = {.rtt_ms = -1}; /* fini-safe before prepare */
    json_t *e = NULL;
    char key[512];
    int rc;

    snprintf(key, sizeof(key), "%s/%s", so->ns, so->name);
    in.allow_no_endpoints = fs != NULL && fs->allow_no_endpoints;
    for (size_t i = 0; i < in.node_count; i++)
        nodes[i] = hc_cluster_obj(c, HC_K8S_NODE, i);
    hc_cluster_ready(c, so->ns, so->name, &in.ready_v4, &in.ready_v6);
    in.previous_healthy = previous_healthy(bc->previous, key, m->name);
    rc = nn > 0 && nodes == NULL ? CM_ENOMEM : hc_endpoint_prepare(&in, &ep);
    /* Probes: wanted (reconciled with the probe set) and read. */
    for (size_t i = 0; rc == CM_OK && ep.probing && i < ep.addr_count; i++) {
        struct hc_endpoint_addr *a = &ep.addrs[i];

        rc = hc_probes_ensure(bc->probes, key, m->name, a->target, a->port, ep.check,
                              so->u.svc.health_path);
        a->st = hc_probes_get(bc->probes, key, m->name, a->target);
    }
    if (rc == CM_OK) {
        hc_endpoint_judge(&in, &ep);
        e = endpoint_to_json(&ep, &so->u.svc);
    }
    hc_endpoint_fini(&ep);
    free(nodes);
    return e;
}

/* The rules a registry service carries in the document (hc_fedsvc.h). */
static int add_rules(json_t *svc, const struct hc_fedsvc *fs)
{
    int rc = CM_OK;

    if (fs->has_placement)
        rc = set_new(svc, "placement", strv_json(fs->placement, fs->placement_count));
    if (rc == CM_OK && fs->ttl_s > 0)
        rc = set_new(svc, "ttl_s", json_integer(fs->ttl_s));
    if (rc == CM_OK && fs->allow_no_endpoints)
        rc = set_new(svc, "allow_without_endpoints", json_true());
    return rc;
}

/* Adds (or fills) services[key] from every member that has the Service. */
static int add_service(json_t *services, const struct build_ctx *bc, const char *ns,
                       const char *name)
{
    const struct cm_conf *conf = bc->conf;
    const struct cm_conf_service *csvc = conf_service(conf, ns, name);
    char key[512];
    json_t *svc, *members;
    uint16_t port = csvc != NULL ? csvc->port : 0;

    snprintf(key, sizeof(key), "%s/%s", ns, name);
    if (json_object_get(services, key) != NULL)
        return CM_OK;
    svc = json_object();
    members = json_object();
    if (svc == NULL || members == NULL || json_object_set_new(svc, "members", members) != 0) {
        json_decref(svc);
        json_decref(members);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < conf->member_count; i++) {
        const struct hc_k8s_obj *so;
        json_t *e;

        if (bc->clusters[i] == NULL)
            continue;
        so = hc_cluster_service(bc->clusters[i], ns, name);
        if (so == NULL)
            continue;
        e = endpoint_json(bc, i, bc->clusters[i], so, csvc);
        if (e == NULL || json_object_set_new(members, conf->members[i].name, e) != 0) {
            json_decref(svc);
            return CM_ENOMEM;
        }
        if (port == 0) {
            const struct hc_k8s_port *p = hc_endpoint_pick_port(&so->u.svc, 0);

            port = p != NULL ? p->port : 0;
        }
    }
    if ((port != 0 && json_object_set_new(svc, "port", json_integer(port)) != 0) ||
        (hc_fedsvcs_find(bc->fedsvcs, ns, name) != NULL &&
         add_rules(svc, hc_fedsvcs_find(bc->fedsvcs, ns, name)) != CM_OK)) {
        json_decref(svc);
        return CM_ENOMEM;
    }
    return json_object_set_new(services, key, svc) == 0 ? CM_OK : CM_ENOMEM;
}

static json_t *services_json(const struct build_ctx *bc)
{
    const struct cm_conf *conf = bc->conf;
    json_t *out = json_object();
    int rc = out != NULL ? CM_OK : CM_ENOMEM;

    for (size_t i = 0; rc == CM_OK && i < conf->service_count; i++) {
        const struct cm_conf_service *s = &conf->services[i];

        rc = add_service(out, bc, s->ns, s->name);
    }
    for (size_t i = 0; rc == CM_OK && bc->fedsvcs != NULL && i < bc->fedsvcs->count; i++)
        rc = add_service(out, bc, bc->fedsvcs->v[i].ns, bc->fedsvcs->v[i].name);
    for (size_t m = 0; rc == CM_OK && m < conf->member_count; m++) {
        const struct hc_cluster *c = bc->clusters[m];

        for (size_t i = 0; c != NULL && rc == CM_OK && i < hc_cluster_count(c, HC_K8S_SERVICE);
             i++) {
            const struct hc_k8s_obj *so = hc_cluster_obj(c, HC_K8S_SERVICE, i);

            /* Names the state document cannot carry are skipped, not fatal. */
            if (!so->u.svc.federate || !cm_str_is_dns_label(so->ns, strlen(so->ns)) ||
                !cm_str_is_dns_label(so->name, strlen(so->name)))
                continue;
            rc = add_service(out, bc, so->ns, so->name);
        }
    }
    if (rc != CM_OK) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *build(const struct build_ctx *bc)
{
    const struct cm_conf *conf = bc->conf;
    json_t *doc = json_object(), *members;
    int rc;

    if (doc == NULL)
        return NULL;
    rc = set_new(doc, "version", json_integer(CM_STATE_VERSION));
    if (rc == CM_OK)
        rc = set_new(doc, "vantage", json_string(conf->regions[conf->health.vantage].name));
    /* Services first: they reconcile the probes the member RTTs come from. */
    if (rc == CM_OK)
        rc = set_new(doc, "services", services_json(bc));
    if (rc == CM_OK) {
        members = members_json(conf, bc->clusters);
        for (size_t i = 0; members != NULL && bc->probes != NULL && i < conf->member_count; i++) {
            double rtt = hc_probes_member_rtt(bc->probes, conf->members[i].name);
            json_t *me = json_object_get(members, conf->members[i].name);

            if (rtt >= 0 && set_new(me, "rtt_ms", rtt_json(rtt)) != CM_OK) {
                json_decref(members);
                members = NULL;
            }
        }
        rc = set_new(doc, "members", members);
    }
    if (rc != CM_OK) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int hc_report_update(struct hc_report *r, const struct cm_conf *conf,
                     struct hc_cluster *const *clusters, struct hc_probes *probes, time_t now,
                     bool *changed)
{
    struct build_ctx bc = {.conf = conf,
                           .clusters = clusters,
                           .probes = probes,
                           .previous = r->doc != NULL ? r->doc : r->previous,
                           .now = now,
                           .refused_rl = &r->refused_rl,
                           .fedsvcs = r->fedsvcs};
    char err[CM_STATE_ERR_MAX] = "";
    struct cm_state_opts opts;
    struct cm_state *st = NULL;
    json_t *doc;
    char ts[32];
    int rc;

    *changed = false;
    if (probes != NULL)
        hc_probes_mark(probes);
    doc = build(&bc);
    if (doc == NULL)
        return CM_ENOMEM; /* no sweep: a partial build must not stop probes */
    if (probes != NULL)
        hc_probes_sweep(probes);
    if (same_content(doc, r->doc)) {
        json_decref(doc);
        return CM_OK;
    }
    hc_report_time(now, ts, sizeof(ts));
    rc = set_new(doc, "generation", json_integer((json_int_t)(r->generation + 1)));
    if (rc == CM_OK)
        rc = set_new(doc, "generated_at", json_string(ts));
    if (rc == CM_OK) {
        cm_state_opts_from_conf(&opts, conf);
        rc = cm_state_from_json(doc, &opts, &st, err, sizeof(err));
        if (rc != CM_OK && rc != CM_ENOMEM)
            cm_log_error("state document failed validation, keeping the previous one: %s", err);
    }
    cm_state_free(st);
    if (rc != CM_OK) {
        json_decref(doc);
        return rc;
    }
    r->generation++;
    json_decref(r->doc);
    r->doc = doc;
    free(r->text);
    r->text = NULL;
    *changed = true;
    return CM_OK;
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

    if (r->doc == NULL)
        return CM_OK;
    text = hc_report_text(r, &len);
    if (text == NULL)
        return CM_ENOMEM;
    return cm_file_write_text_atomic(path, text, 0600, err, errlen);
}
