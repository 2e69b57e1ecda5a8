/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_hc_registry.c -- libFuzzer target for the member registry's parsers
 * and rules: hc_k8s_fed (KubeFedCluster, Karmada Cluster, Secret,
 * FederatedService, Domain, ServiceDNSRecord through hc_k8s_event_parse and
 * hc_k8s_list_parse) and hc_placement (a member from a cluster object and
 * its Secret, the services from FederatedServices and ServiceDNSRecords, the
 * apiEndpoint URL).
 *
 * The first byte selects the kind ((byte0 % 6) + HC_K8S_KUBEFEDCLUSTER) and
 * the entry point ((byte0 / 6) % 3: event line, list body, apiEndpoint text);
 * the rest is the input. Every object parsed must be consistent (a problem
 * is NULL or says something; counts match their arrays), and every member or
 * service made from it must be well formed; ASan/UBSan catch the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "health/hc_fedsvc.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_placement.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char conf_text[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]}, \"eu-west-1\": {}},"
    " \"members\": {\"usa\": {\"region\": \"us-east-1\"}},"
    " \"members_from\": {\"source\": \"kubefed\", \"locations\": {\"loc\": {\"region\":"
    " \"eu-west-1\"}}}}";

/* A Secret with a token and a CA, as kubefedctl and karmadactl write them. */
static const char secret_line[] =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"s\",\"namespace\":\"k\"},"
    "\"data\":{\"token\":\"dG9r\",\"ca.crt\":\"Q0E=\"}}}";

static struct hc_k8s_obj *parse_one(const char *line, enum hc_k8s_kind kind)
{
    char err[HC_K8S_ERR_MAX];
    struct hc_k8s_event ev;
    struct hc_k8s_obj *o;

    if (hc_k8s_event_parse(line, strlen(line), kind, &ev, err, sizeof(err)) != CM_OK)
        abort();
    o = ev.obj;
    ev.obj = NULL;
    hc_k8s_event_fini(&ev);
    return o;
}

static void check_strv(char *const *v, size_t n)
{
    if (v == NULL && n != 0)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL || strlen(v[i]) > HC_K8S_FED_STR_MAX)
            abort();
    }
}

static void check_obj(const struct hc_k8s_obj *o)
{
    const char *why = hc_k8s_fed_problem(o);

    if (why != NULL && why[0] == '\0')
        abort(); /* a problem says what it is */
    switch (o->kind) {
    case HC_K8S_KUBEFEDCLUSTER:
    case HC_K8S_KARMADACLUSTER:
        check_strv(o->u.cluster.zones, o->u.cluster.zone_count);
        if (o->u.cluster.ca_pem_len > HC_K8S_FED_CA_MAX ||
            (o->u.cluster.labels == NULL && o->u.cluster.label_count != 0) ||
            o->u.cluster.label_count > HC_K8S_FED_LABELS_MAX)
            abort();
        if (why == NULL && (o->u.cluster.api_endpoint == NULL || o->u.cluster.secret_name == NULL))
            abort();
        break;
    case HC_K8S_SECRET:
        if (why == NULL && (o->u.secret.token == NULL || o->u.secret.token_len == 0 ||
                            memchr(o->u.secret.token, '\n', o->u.secret.token_len) != NULL))
            abort();
        if (o->u.secret.token_len > HC_K8S_FED_TOKEN_MAX)
            abort();
        break;
    case HC_K8S_FEDSERVICE:
        check_strv(o->u.fedsvc.clusters, o->u.fedsvc.cluster_count);
        for (size_t i = 0; i < o->u.fedsvc.selector.expr_count; i++)
            check_strv(o->u.fedsvc.selector.exprs[i].values,
                       o->u.fedsvc.selector.exprs[i].value_count);
        break;
    case HC_K8S_SVCDNS:
        if (why == NULL && o->u.svcdns.domain_ref == NULL)
            abort();
        break;
    case HC_K8S_DOMAIN:
        if (why == NULL && o->u.domain.domain == NULL)
            abort();
        break;
    default:
        abort();
    }
}

/* A member made of @o (with and without a Secret) must be well formed. */
static void check_member(const struct cm_conf *conf, const struct hc_k8s_obj *o,
                         const struct hc_k8s_obj *secret)
{
    struct cm_conf_member m;
    struct hc_kube_target *t = NULL;
    const char *by = NULL;
    char why[HC_PLACEMENT_WHY_MAX];
    int rc = hc_placement_member(conf, o, secret, &m, &t, &by, why, sizeof(why));

    if (rc == CM_OK) {
        if (t == NULL || by == NULL || m.region >= conf->region_count ||
            (m.zone >= 0 && (size_t)m.zone >= conf->regions[m.region].zone_count) ||
            (strncmp(t->server, "https://", 8) != 0 && strncmp(t->server, "http://", 7) != 0) ||
            t->token == NULL || cm_conf_member_index(conf, m.name) >= 0)
            abort();
    } else if (rc == CM_ENOENT) {
        if (t != NULL || why[0] == '\0')
            abort();
    } else if (rc != CM_ENOMEM) {
        abort();
    }
    hc_kube_target_free(t);
}

static void check_services(const struct cm_conf *conf, struct hc_k8s_obj *const *objs, size_t n,
                           enum hc_k8s_kind kind)
{
    static const char dom[] = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"myfed\","
                              "\"namespace\":\"kube-federation-system\"},\"domain\":"
                              "\"FED.example.test.\"}}";
    struct hc_k8s_obj *domain = parse_one(dom, HC_K8S_DOMAIN);
    struct hc_placement_objs in = {.conf = conf,
                                   .clusters = (const struct hc_k8s_obj *const *)objs,
                                   .domains = (const struct hc_k8s_obj *const *)&domain,
                                   .domain_count = 1};
    json_t *notes = json_array();
    struct hc_fedsvcs *set;

    if (kind == HC_K8S_FEDSERVICE) {
        in.fedsvcs = (const struct hc_k8s_obj *const *)objs;
        in.fedsvc_count = n;
    } else if (kind == HC_K8S_SVCDNS) {
        in.records = (const struct hc_k8s_obj *const *)objs;
        in.record_count = n;
    } else {
        in.cluster_count = kind == HC_K8S_KUBEFEDCLUSTER || kind == HC_K8S_KARMADACLUSTER ? n : 0;
    }
    set = hc_placement_services(&in, notes);
    for (size_t i = 0; set != NULL && i < set->count; i++) {
        const struct hc_fedsvc *f = &set->v[i];

        if (f->ttl_s > 86400 || (i > 0 && strcmp(set->v[i - 1].key, f->key) >= 0) ||
            hc_fedsvcs_find(set, f->ns, f->name) != f)
            abort();
        check_strv(f->placement, f->placement_count);
        for (size_t k = 1; k < f->placement_count; k++) {
            if (strcmp(f->placement[k - 1], f->placement[k]) >= 0)
                abort();
        }
    }
    if (set != NULL && !hc_fedsvcs_equal(set, set))
        abort();
    hc_fedsvcs_free(set);
    json_decref(notes);
    hc_k8s_obj_free(domain);
}

static void fuzz_objects(const struct cm_conf *conf, const char *p, size_t n, enum hc_k8s_kind kind,
                         bool list)
{
    struct hc_k8s_obj *secret = parse_one(secret_line, HC_K8S_SECRET);
    char err[HC_K8S_ERR_MAX];
    struct hc_k8s_event ev;
    struct hc_k8s_list l = {0};
    struct hc_k8s_obj **objs = NULL;
    size_t count = 0;

    if (list && hc_k8s_list_parse(p, n, kind, &l, err, sizeof(err)) == CM_OK) {
        objs = l.items;
        count = l.count;
    } else if (!list && hc_k8s_event_parse(p, n, kind, &ev, err, sizeof(err)) == CM_OK) {
        if (ev.obj != NULL) {
            l.items = calloc(1, sizeof(*l.items));
            if (l.items == NULL)
                abort();
            l.items[0] = ev.obj;
            l.count = 1;
            ev.obj = NULL;
            objs = l.items;
            count = 1;
        }
        hc_k8s_event_fini(&ev);
    }
    for (size_t i = 0; i < count; i++) {
        check_obj(objs[i]);
        if (kind == HC_K8S_KUBEFEDCLUSTER || kind == HC_K8S_KARMADACLUSTER) {
            check_member(conf, objs[i], NULL);
            check_member(conf, objs[i], secret);
        }
    }
    if (count > 0)
        check_services(conf, objs, count, kind);
    hc_k8s_list_fini(&l);
    hc_k8s_obj_free(secret);
}

static void fuzz_url(const char *p, size_t n)
{
    char *s = malloc(n + 1), out[4096], why[HC_PLACEMENT_WHY_MAX];

    if (s == NULL)
        return;
    memcpy(s, p, n);
    s[n] = '\0';
    why[0] = '\0';
    if (hc_placement_server_url(s, out, sizeof(out), why, sizeof(why)) == CM_OK) {
        size_t len = strlen(out);

        if ((strncmp(out, "https://", 8) != 0 && strncmp(out, "http://", 7) != 0) ||
            out[len - 1] == '/' || strpbrk(out, " \t\r\n@?#") != NULL)
            abort();
    } else if (why[0] == '\0') {
        abort();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cm_conf *conf; /* loaded once: the harness's, not the code under test's */
    enum hc_k8s_kind kind;
    char err[CM_CONF_ERR_MAX];

    if (conf == NULL && cm_conf_load_string("fuzz.json", conf_text, &conf, err, sizeof(err)) != 0)
        abort();
    if (size < 1)
        return 0;
    kind = (enum hc_k8s_kind)(HC_K8S_KUBEFEDCLUSTER + data[0] % 6);
    switch ((data[0] / 6) % 3) {
    case 0:
        fuzz_objects(conf, (const char *)data + 1, size - 1, kind, false);
        break;
    case 1:
        fuzz_objects(conf, (const char *)data + 1, size - 1, kind, true);
        break;
    default:
        fuzz_url((const char *)data + 1, size - 1);
        break;
    }
    return 0;
}
