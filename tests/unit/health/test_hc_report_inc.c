/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_report_inc.c -- the document kept incrementally (health/hc_report.h)
 * is the document a fresh report builds from scratch: random sequences of
 * changes in the members' Kubernetes API (Services, EndpointSlices and Nodes
 * added, modified, deleted; silent changes picked up by a relist after a
 * watch ERROR 410; a member's API down and up; the clock moving an outage's
 * words; probes flipping; a member added and one removed by a new
 * configuration), and after each step one long-lived report is updated and
 * compared, byte for byte apart from the generation, with a fresh report
 * seeded with the long-lived one's previous document. Also checked each
 * time: the text is jansson's own serialization of it (compact, sorted
 * keys) and a valid state document, the generation moved exactly when the
 * content did, and the probe set holds exactly the probes the document lists.
 *
 * The API servers are one evhttp server on 127.0.0.1 and 127.0.0.2 (member
 * M's kubeconfig server is http://127.0.0.1:PORT/M) holding a model of every
 * member's objects: lists are generated from it and changes are pushed to
 * the held watch streams as events, as kube-apiserver does; the loop runs
 * until the cluster applied each one (its watch counters), never for a length
 * of time. The configured service is probed at /probe on the same server,
 * the status chosen per address (Host header).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_rand.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "health/hc_cluster.h"
#include "health/hc_fedsvc.h"
#include "health/hc_http.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_probe.h"
#include "health/hc_report.h"
#include "tests/unit/health/unit_http.h"

#define STEPS    240
#define NNAMES   4 /* members any configuration has: a, b, p (proxy mode), c */
#define NSVC     7
#define NSLICE   10
#define NNODE    4
#define HELD_MAX 512
#define GUARD_S  10

static const char *const names[NNAMES] = {"a", "b", "p", "c"};
/*
 * Configurations: 0 has a, b, p; 1 has a, p, c; 2 has b, a, p (0 in another
 * order); 3 has a, p; 4, 5 and 6 extend 3 with registry members
 * (cm_conf_with_members, as members_from adds them) b, c, and both: between
 * those, members join and leave without anything else changing; 7 is 4 with
 * b moved to another region (its registry labels changed).
 */
#define NCONF 8
static const bool in_conf[NCONF][NNAMES] = {{true, true, true, false}, {true, false, true, true},
                                            {true, true, true, false}, {true, false, true, false},
                                            {true, true, true, false}, {true, false, true, true},
                                            {true, true, true, true},  {true, true, true, false}};
static const char *const kind_path[HC_K8S_KIND_COUNT] = {
    "/api/v1/services?", "/apis/discovery.k8s.io/v1/endpointslices?", "/api/v1/nodes?"};
static const char *const kind_list[HC_K8S_KIND_COUNT] = {"ServiceList", "EndpointSliceList",
                                                         "NodeList"};

/* The Service pool: default/web is configured; default/Bad_Name can never be reported. */
static const char *const svc_ns[NSVC] = {"default", "default", "default", "other",
                                         "other",   "default", "default"};
static const char *const svc_name[NSVC] = {"web", "s1", "s2", "s1", "s3", "Bad_Name", "s4"};
#define NLB 6
static const char *const lb_json[NLB] = {
    "",
    "{\"ip\":\"127.0.0.1\"}",
    "{\"ip\":\"127.0.0.1\"},{\"ip\":\"127.0.0.2\"}",
    "{\"ip\":\"169.254.1.1\"},{\"ip\":\"127.0.0.3\"}",
    "{\"hostname\":\"localhost\"}",
    "{\"ip\":\"192.0.2.10\"},{\"hostname\":\"lb2.example.com\"}",
};
#define NPORTS 2
static const char *const ports_json[NPORTS] = {
    "{\"port\":80,\"protocol\":\"TCP\",\"nodePort\":30080}",
    "{\"port\":8080,\"protocol\":\"TCP\",\"nodePort\":31000},{\"port\":80,\"protocol\":\"TCP\"}",
};

struct m_svc {
    bool present;
    bool federate;
    int lb, ports, ann; /* ann: 0 none, 1 health-path and -port, 2 health-path,
                         * 3 weight and priority (traffic policy), 4 weight 0 */
};

struct m_slice {
    bool present;
    int svc; /* pool index of its kubernetes.io/service-name, -1: none */
    bool v6;
    int ready, not_ready;
};

struct m_node {
    bool present;
    bool ready;
    int ip;
};

/* What one member's API holds. */
struct model {
    struct m_svc svc[NSVC];
    struct m_slice slice[NSLICE];
    struct m_node node[NNODE];
    int readyz;
};

struct held {
    struct evhttp_request *req;
    int member, kind;
    bool alive;
};

struct fx {
    struct event_base *base;
    struct evhttp *http;
    int port;
    uint64_t rng;
    uint64_t rv; /* resourceVersion of the last change */
    struct model model[NNAMES];
    int probe_status[2]; /* /probe at 127.0.0.1 and 127.0.0.2 */
    struct held held[HELD_MAX];
    size_t held_count;
    struct hc_http *client;
    struct cm_conf *conf[NCONF];
    int cur; /* the configuration in force */
    struct hc_cluster *cl[NNAMES];
    struct hc_probes *probes;
    time_t offset; /* the reports' clock: time(NULL) + offset */
    char dir[64], state_file[128], state_prev[160];
    uint64_t patched; /* state file writes that were patches */
    bool unwritten;   /* the kept report has a document the state file does not hold */
    json_t *written;  /* the document of the last state file write, or NULL */
    uint64_t steps_compared, docs_changed;
    struct hc_fedsvcs *fed, *fed_old; /* the host cluster's services; the set given before */
    bool fed_new;                     /* fed not given to the kept report yet */
};

static int pick(struct fx *f, int n)
{
    return (int)cm_rand_below(&f->rng, (uint32_t)n);
}

static int name_index(const char *s, size_t len)
{
    for (int i = 0; i < NNAMES; i++) {
        if (strlen(names[i]) == len && strncmp(names[i], s, len) == 0)
            return i;
    }
    return -1;
}

/* ---- the model as Kubernetes JSON ---------------------------------------- */

static void svc_json(struct fx *f, struct evbuffer *b, int i, const struct m_svc *s)
{
    evbuffer_add_printf(b,
                        "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\","
                        "\"resourceVersion\":\"%llu\",\"annotations\":{",
                        svc_name[i], svc_ns[i], (unsigned long long)f->rv);
    if (s->federate)
        evbuffer_add_printf(b, "\"fedgslb.io/federate\":\"true\"%s", s->ann != 0 ? "," : "");
    if (s->ann == 1)
        evbuffer_add_printf(
            b, "\"fedgslb.io/health-path\":\"/probe\",\"fedgslb.io/health-port\":\"%d\"", f->port);
    else if (s->ann == 2)
        evbuffer_add_printf(b, "\"fedgslb.io/health-path\":\"/probe\"");
    else if (s->ann == 3)
        evbuffer_add_printf(b, "\"fedgslb.io/weight\":\"5\",\"fedgslb.io/priority\":\"2\"");
    else if (s->ann == 4)
        evbuffer_add_printf(b, "\"fedgslb.io/weight\":\"0\"");
    evbuffer_add_printf(b,
                        "}},\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[%s]},"
                        "\"status\":{\"loadBalancer\":{\"ingress\":[%s]}}}",
                        ports_json[s->ports], lb_json[s->lb]);
}

static void slice_json(struct fx *f, struct evbuffer *b, int i, const struct m_slice *s)
{
    evbuffer_add_printf(b,
                        "{\"addressType\":\"%s\",\"metadata\":{\"name\":\"sl%d\","
                        "\"namespace\":\"%s\",\"resourceVersion\":\"%llu\"",
                        s->v6 ? "IPv6" : "IPv4", i, s->svc >= 0 ? svc_ns[s->svc] : "default",
                        (unsigned long long)f->rv);
    if (s->svc >= 0)
        evbuffer_add_printf(b, ",\"labels\":{\"kubernetes.io/service-name\":\"%s\"}",
                            svc_name[s->svc]);
    evbuffer_add_printf(b, "},\"endpoints\":[");
    for (int k = 0; k < s->ready + s->not_ready; k++)
        evbuffer_add_printf(b, "%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":%s}}",
                            k > 0 ? "," : "", s->v6 ? "fd00::1" : "10.0.0.1",
                            k < s->ready ? "true" : "false");
    evbuffer_add_printf(b, "]}");
}

static void node_json(struct fx *f, struct evbuffer *b, int i, const struct m_node *n)
{
    static const char *const ips[3] = {"10.1.1.1", "10.1.1.2", "fd00:1::3"};

    evbuffer_add_printf(b,
                        "{\"metadata\":{\"name\":\"n%d\",\"resourceVersion\":\"%llu\"},"
                        "\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"%s\"}],"
                        "\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"%s\"}]}}",
                        i, (unsigned long long)f->rv, n->ready ? "True" : "False", ips[n->ip]);
}

/* Object @i of @kind in member @m as it is in the model (also when not present: its last state). */
static void object_json(struct fx *f, struct evbuffer *b, int m, int kind, int i)
{
    const struct model *md = &f->model[m];

    if (kind == HC_K8S_SERVICE)
        svc_json(f, b, i, &md->svc[i]);
    else if (kind == HC_K8S_SLICE)
        slice_json(f, b, i, &md->slice[i]);
    else
        node_json(f, b, i, &md->node[i]);
}

static bool present(const struct fx *f, int m, int kind, int i)
{
    const struct model *md = &f->model[m];

    return kind == HC_K8S_SERVICE ? md->svc[i].present
           : kind == HC_K8S_SLICE ? md->slice[i].present
                                  : md->node[i].present;
}

static const int pool_size[HC_K8S_KIND_COUNT] = {NSVC, NSLICE, NNODE};

/* ---- the API server ------------------------------------------------------ */

static void on_close(struct evhttp_connection *conn, void *arg)
{
    struct fx *f = arg;

    for (size_t i = 0; i < f->held_count; i++) {
        if (f->held[i].alive && evhttp_request_get_connection(f->held[i].req) == conn)
            f->held[i].alive = false;
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const char *slash = uri[0] == '/' ? strchr(uri + 1, '/') : NULL;
    int m = slash != NULL ? name_index(uri + 1, (size_t)(slash - uri - 1)) : -1;
    int kind = -1;

    if (strncmp(uri, "/probe", 6) == 0) {
        const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
        int st = f->probe_status[host != NULL && strncmp(host, "127.0.0.2", 9) == 0];

        evbuffer_add_printf(out, "%d", st);
        evhttp_send_reply(req, st, NULL, NULL);
        return;
    }
    if (m < 0) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    if (strncmp(slash, "/readyz", 7) == 0) {
        evbuffer_add_printf(out, "%s", f->model[m].readyz == 200 ? "ok" : "no");
        evhttp_send_reply(req, f->model[m].readyz, NULL, NULL);
        return;
    }
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        if (strncmp(slash, kind_path[k], strlen(kind_path[k])) == 0)
            kind = k;
    }
    if (kind < 0) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    if (strstr(slash, "watch=1") != NULL) {
        assert_true(f->held_count < HELD_MAX);
        evhttp_send_reply_start(req, 200, NULL);
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_close, f);
        f->held[f->held_count++] = (struct held){req, m, kind, true};
        return;
    }
    evbuffer_add_printf(out,
                        "{\"kind\":\"%s\",\"metadata\":{\"resourceVersion\":\"%llu\"},"
                        "\"items\":[",
                        kind_list[kind], (unsigned long long)f->rv);
    for (int i = 0, first = 1; i < pool_size[kind]; i++) {
        if (!present(f, m, kind, i))
            continue;
        if (!first)
            evbuffer_add(out, ",", 1);
        first = 0;
        object_json(f, out, m, kind, i);
    }
    evbuffer_add_printf(out, "]}");
    evhttp_send_reply(req, 200, NULL, NULL);
}

static struct held *watch_of(struct fx *f, int m, int kind)
{
    for (size_t i = f->held_count; i-- > 0;) {
        if (f->held[i].alive && f->held[i].member == m && f->held[i].kind == kind)
            return &f->held[i];
    }
    return NULL;
}

/* Pushes one watch event line to member @m's @kind watch. */
static void push(struct fx *f, int m, int kind, const char *type, int i)
{
    struct held *h = watch_of(f, m, kind);
    struct evbuffer *b = evbuffer_new();

    assert_non_null(h);
    assert_non_null(b);
    if (strcmp(type, "ERROR") == 0) {
        evbuffer_add_printf(b, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
                               "\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":"
                               "\"too old resource version\",\"reason\":\"Expired\","
                               "\"code\":410}}\n");
    } else {
        evbuffer_add_printf(b, "{\"type\":\"%s\",\"object\":", type);
        object_json(f, b, m, kind, i);
        evbuffer_add_printf(b, "}\n");
    }
    evhttp_send_reply_chunk(h->req, b);
    evbuffer_free(b);
}

/* ---- running the loop ---------------------------------------------------- */

static struct hc_watch_stats watch_stats(struct fx *f, int m, int kind)
{
    struct hc_cluster_stats st;

    hc_cluster_get_stats(f->cl[m], &st);
    return st.watch[kind];
}

typedef bool cond_fn(struct fx *f, int m, int kind, uint64_t n);

static void run_until(struct fx *f, cond_fn *cond, int m, int kind, uint64_t n, const char *what)
{
    time_t guard = time(NULL) + GUARD_S;

    while (!cond(f, m, kind, n)) {
        if (time(NULL) > guard)
            fail_msg("never happened: %s (member %s, kind %d: lists %llu events %llu, %s)", what,
                     names[m], kind, (unsigned long long)watch_stats(f, m, kind).lists,
                     (unsigned long long)watch_stats(f, m, kind).events,
                     watch_of(f, m, kind) != NULL ? "watch held" : "no watch held");
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) == 0);
    }
}

static bool events_reach(struct fx *f, int m, int kind, uint64_t n)
{
    return watch_stats(f, m, kind).events >= n;
}

static bool lists_reach(struct fx *f, int m, int kind, uint64_t n)
{
    return watch_stats(f, m, kind).lists >= n && watch_of(f, m, kind) != NULL;
}

static bool api_is(struct fx *f, int m, int kind, uint64_t want)
{
    (void)kind;
    return hc_cluster_api(f->cl[m]) == (enum hc_api_state)want;
}

static int kinds_of(int m)
{
    return strcmp(names[m], "p") == 0 ? 3 : 2;
}

/* Every watch of member @m held by the server (so no event is pushed into the void). */
static bool watching(struct fx *f, int m, int kind, uint64_t n)
{
    (void)kind;
    (void)n;
    for (int k = 0; k < kinds_of(m); k++) {
        if (watch_of(f, m, k) == NULL)
            return false;
    }
    return hc_cluster_api(f->cl[m]) == HC_API_OK || f->model[m].readyz != 200;
}

/* ---- members and configurations ------------------------------------------ */

static void start_member(struct fx *f, int m)
{
    struct hc_cluster_params p;
    struct hc_kube_target *t;

    hc_cluster_params_default(&p);
    p.fall = 1;
    p.readyz_interval_ms = 20;
    p.watch.backoff_min_ms = 1;
    p.watch.backoff_max_ms = 2;
    t = unit_kube_target(f->port, names[m]);
    f->cl[m] = hc_cluster_new(f->base, f->client, names[m], t, kinds_of(m) == 3, &p, NULL, NULL);
    assert_non_null(f->cl[m]);
    assert_int_equal(hc_cluster_start(f->cl[m]), CM_OK);
    f->model[m].readyz = 200;
    run_until(f, watching, m, 0, 0, "every watch held");
}

static void load_conf(struct fx *f, int which)
{
    char text[2048], err[CM_CONF_ERR_MAX];
    int o = 0;
    static const int order[4][NNAMES] = {{0, 1, 2, 3}, {0, 1, 2, 3}, {1, 0, 2, 3}, {0, 1, 2, 3}};

    o += snprintf(text + o, sizeof(text) - (size_t)o,
                  "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
                  " \"allow_addresses\": [\"127.0.0.0/8\"],"
                  " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
                  "               \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
                  " \"members\": {");
    for (int k = 0, first = 1; k < NNAMES; k++) {
        int m = order[which][k];

        if (!in_conf[which][m])
            continue;
        o += snprintf(
            text + o, sizeof(text) - (size_t)o, "%s\"%s\": %s", first ? "" : ",", names[m],
            strcmp(names[m], "p") == 0 ? "{\"region\": \"us-east-1\", \"lb\": {\"mode\": \"proxy\","
                                         " \"address\": \"198.51.100.7\"}}"
            : m % 2 == 0               ? "{\"region\": \"us-east-1\", \"zone\": \"us-east-1a\"}"
                                       : "{\"region\": \"eu-west-1\"}");
        first = 0;
    }
    o += snprintf(text + o, sizeof(text) - (size_t)o,
                  "}, \"services\": {\"default/web\": {\"port\": 80, \"check\": {\"type\": "
                  "\"http\", \"path\": \"/probe\", \"port\": %d, \"interval_ms\": 100,"
                  " \"timeout_ms\": 90, \"rise\": 2, \"fall\": 2}}},"
                  " \"health\": {\"vantage\": \"us-east-1\", \"default_check\": {\"type\": "
                  "\"none\"}}}",
                  f->port);
    assert_true((size_t)o < sizeof(text));
    if (cm_conf_load_string("t.json", text, &f->conf[which], err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
}

/* Configuration @which (4..7): 3 with registry members b and/or c, in the
 * second region (7: b in the first). */
static void extend_conf(struct fx *f, int which)
{
    struct cm_conf_member extra[2];
    size_t n = 0;

    for (int m = 0; m < NNAMES; m++) {
        if (in_conf[which][m] && !in_conf[3][m])
            extra[n++] = (struct cm_conf_member){
                .name = (char *)(uintptr_t)names[m], .region = which == 7 ? 0 : 1, .zone = -1};
    }
    f->conf[which] = cm_conf_with_members(f->conf[3], extra, n);
    assert_non_null(f->conf[which]);
}

/* The clusters of the configuration in force, indexed like its members. */
static void clusters_of(struct fx *f, struct hc_cluster **out)
{
    const struct cm_conf *conf = f->conf[f->cur];

    for (size_t i = 0; i < conf->member_count; i++)
        out[i] = f->cl[name_index(conf->members[i].name, strlen(conf->members[i].name))];
}

/* ---- fixture --------------------------------------------------------------- */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct hc_probes_params pp;

    assert_non_null(f);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->http = unit_http_server(f->base, on_request, f, &f->port);
    assert_non_null(evhttp_bind_socket_with_handle(f->http, "127.0.0.2", (uint16_t)f->port));
    f->client = hc_http_new(f->base);
    assert_non_null(f->client);
    hc_probes_params_default(&pp);
    f->probes = hc_probes_new(f->base, f->client, &pp, NULL, NULL);
    assert_non_null(f->probes);
    f->probe_status[0] = f->probe_status[1] = 200;
    f->rv = 100;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_hc_report_inc.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state_file, sizeof(f->state_file), "%s/health-state.json", f->dir);
    snprintf(f->state_prev, sizeof(f->state_prev), "%s.prev", f->state_file);
    for (int i = 0; i < 4; i++)
        load_conf(f, i);
    for (int i = 4; i < NCONF; i++)
        extend_conf(f, i);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    for (int m = 0; m < NNAMES; m++)
        hc_cluster_free(f->cl[m]);
    hc_probes_free(f->probes);
    hc_http_free(f->client);
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* the server sees the clients go */
    for (size_t i = 0; i < f->held_count; i++)
        evhttp_send_reply_end(f->held[i].req); /* frees a detached request */
    evhttp_free(f->http);
    event_base_free(f->base);
    for (int i = 0; i < NCONF; i++)
        cm_conf_unref(f->conf[i]);
    hc_fedsvcs_free(f->fed);
    hc_fedsvcs_free(f->fed_old);
    json_decref(f->written);
    unlink(f->state_file);
    unlink(f->state_prev);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- the steps ------------------------------------------------------------- */

/* A member of the configuration in force. */
static int any_member(struct fx *f)
{
    for (;;) {
        int m = pick(f, NNAMES);

        if (in_conf[f->cur][m])
            return m;
    }
}

static void random_svc(struct fx *f, struct m_svc *s)
{
    s->federate = pick(f, 10) < 7;
    s->lb = pick(f, NLB);
    s->ports = pick(f, NPORTS);
    s->ann = pick(f, 5);
}

static void random_slice(struct fx *f, struct m_slice *s)
{
    s->svc = pick(f, NSVC + 1) - 1;
    s->v6 = pick(f, 4) == 0;
    s->ready = pick(f, 4);
    s->not_ready = pick(f, 3);
}

static void random_node(struct fx *f, struct m_node *n)
{
    n->ready = pick(f, 3) != 0;
    n->ip = pick(f, 3);
}

/* Changes object @i of @kind in member @m (add, modify or delete); returns the event type. */
static const char *change(struct fx *f, int m, int kind, int i)
{
    struct model *md = &f->model[m];
    bool was = present(f, m, kind, i), del = was && pick(f, 4) == 0;

    f->rv++;
    if (kind == HC_K8S_SERVICE) {
        md->svc[i].present = !del;
        if (!del)
            random_svc(f, &md->svc[i]);
    } else if (kind == HC_K8S_SLICE) {
        md->slice[i].present = !del;
        if (!del)
            random_slice(f, &md->slice[i]);
    } else {
        md->node[i].present = !del;
        if (!del)
            random_node(f, &md->node[i]);
    }
    return del ? "DELETED" : was ? "MODIFIED" : "ADDED";
}

static void step_event(struct fx *f)
{
    int m = any_member(f), kind = pick(f, kinds_of(m)), i = pick(f, pool_size[kind]);
    uint64_t n = watch_stats(f, m, kind).events;

    push(f, m, kind, change(f, m, kind, i), i);
    run_until(f, events_reach, m, kind, n + 1, "event applied");
}

/* Objects change while no event says so; an ERROR 410 makes the watch list them again. */
static void step_relist(struct fx *f)
{
    int m = any_member(f), kind = pick(f, kinds_of(m));
    uint64_t n = watch_stats(f, m, kind).lists;

    for (int k = 1 + pick(f, 4); k > 0; k--)
        change(f, m, kind, pick(f, pool_size[kind]));
    push(f, m, kind, "ERROR", 0);
    watch_of(f, m, kind)->alive = false; /* the client drops it; the next one replaces it */
    run_until(f, lists_reach, m, kind, n + 1, "relisted");
}

/* The member's API goes away (unreachable, or unauthorized: the reason says which without the
 * outage's words moving), changes how, or comes back. */
static void step_api(struct fx *f)
{
    static const int readyz[3] = {200, 500, 401};
    static const enum hc_api_state want[3] = {HC_API_OK, HC_API_UNREACHABLE, HC_API_UNAUTHORIZED};
    int m = any_member(f), k;

    do
        k = pick(f, 3);
    while (readyz[k] == f->model[m].readyz);
    f->model[m].readyz = readyz[k];
    run_until(f, api_is, m, 0, want[k], "API state");
}

static bool probes_ran(struct fx *f, int m, int kind, uint64_t n)
{
    struct hc_probes_stats st;

    (void)m;
    (void)kind;
    hc_probes_get_stats(f->probes, &st);
    return st.runs >= n;
}

/* Flips what /probe answers at one address and lets every probe run twice. */
static void step_probe(struct fx *f)
{
    struct hc_probes_stats st;
    int k = pick(f, 2);

    f->probe_status[k] = f->probe_status[k] == 200 ? 503 : 200;
    hc_probes_get_stats(f->probes, &st);
    if (st.probes > 0)
        run_until(f, probes_ran, 0, 0, st.runs + 2 * st.probes, "probes ran");
}

/*
 * The host cluster's services change (FederatedServices and their rules, as
 * the registry reads them): a random set, some with members, one no member
 * has; sometimes none at all.
 */
static void step_fed(struct fx *f)
{
    static const char *const keys[][2] = {{"default", "fedonly"},
                                          {"default", "s1"},
                                          {"default", "s2"},
                                          {"default", "web"},
                                          {"other", "s1"}};
    static const char *const sorted_names[NNAMES] = {"a", "b", "c", "p"};
    struct hc_fedsvcs *set = NULL;

    if (pick(f, 6) > 0) {
        set = calloc(1, sizeof(*set));
        assert_non_null(set);
        set->v = calloc(sizeof(keys) / sizeof(keys[0]), sizeof(*set->v));
        assert_non_null(set->v);
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            struct hc_fedsvc *fs = &set->v[set->count];
            char key[64];

            if (pick(f, 3) == 0)
                continue;
            snprintf(key, sizeof(key), "%s/%s", keys[k][0], keys[k][1]);
            fs->key = strdup(key);
            fs->ns = strdup(keys[k][0]);
            fs->name = strdup(keys[k][1]);
            assert_true(fs->key != NULL && fs->ns != NULL && fs->name != NULL);
            fs->has_placement = pick(f, 2) == 0;
            if (fs->has_placement) {
                fs->placement = calloc(NNAMES, sizeof(*fs->placement));
                assert_non_null(fs->placement);
                for (int m = 0; m < NNAMES; m++) {
                    if (pick(f, 2) == 0) {
                        fs->placement[fs->placement_count] = strdup(sorted_names[m]);
                        assert_non_null(fs->placement[fs->placement_count++]);
                    }
                }
            }
            fs->ttl_s = pick(f, 3) == 0 ? 30 : 0;
            fs->allow_no_endpoints = pick(f, 2) == 0;
            set->count++;
        }
    }
    if (f->fed_new)
        hc_fedsvcs_free(f->fed); /* never given to the kept report */
    else
        f->fed_old = f->fed; /* given to it until the next update */
    f->fed = set;
    f->fed_new = true;
}

/* Another configuration: mostly registry members joining, leaving or moving (3..7),
 * sometimes a whole new one (0, 1). */
static void step_conf(struct fx *f)
{
    static const int next[] = {0, 1, 3, 4, 5, 6, 7, 4, 5, 6, 7};
    int c;

    do
        c = next[pick(f, (int)(sizeof(next) / sizeof(next[0])))];
    while (c == f->cur);
    f->cur = c;
    for (int m = 0; m < NNAMES; m++) {
        if (!in_conf[f->cur][m]) {
            hc_cluster_free(f->cl[m]);
            f->cl[m] = NULL;
            for (size_t i = 0; i < f->held_count; i++) {
                if (f->held[i].member == m)
                    f->held[i].alive = false; /* closing with the cluster */
            }
        } else if (f->cl[m] == NULL) {
            start_member(f, m);
        }
    }
}

/* ---- the comparison -------------------------------------------------------- */

/* The document after its generated_at and generation. */
static const char *body(const char *text)
{
    const char *b = text != NULL ? strstr(text, ",\"members\":") : NULL;

    assert_non_null(b);
    return b;
}

/* The file at @path without the spaces between JSON tokens (owned). */
static char *read_squeezed(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *t = NULL;
    size_t n = 0, cap = 0;
    bool in_str = false, esc = false;
    int c;

    assert_non_null(fp);
    while ((c = getc(fp)) != EOF) {
        if (!in_str && (c == ' ' || c == '\n'))
            continue;
        if (in_str && esc)
            esc = false;
        else if (in_str && c == '\\')
            esc = true;
        else if (c == '"')
            in_str = !in_str;
        if (n + 2 > cap) {
            cap = cap * 2 + 4096;
            t = realloc(t, cap);
            assert_non_null(t);
        }
        t[n++] = (char)c;
    }
    fclose(fp);
    assert_non_null(t);
    t[n] = '\0';
    return t;
}

static size_t listed_probes(json_t *doc)
{
    const char *k1, *k2;
    json_t *svc, *e;
    size_t n = 0;

    json_object_foreach(json_object_get(doc, "services"), k1, svc)
    {
        json_object_foreach(json_object_get(svc, "members"), k2, e) n +=
            json_object_size(json_object_get(e, "probes"));
    }
    return n;
}

static void fail_diff(const char *what, const char *a, const char *b)
{
    size_t i = 0;

    while (a[i] != '\0' && a[i] == b[i])
        i++;
    fail_msg("%s differ at byte %zu:\n  kept:  ...%.300s\n  fresh: ...%.300s", what, i,
             a + (i > 60 ? i - 60 : 0), b + (i > 60 ? i - 60 : 0));
}

/* Updates the kept report @a and compares it with one built from scratch. */
static void compare(struct fx *f, struct hc_report *a)
{
    struct hc_cluster *cls[NNAMES] = {0};
    struct cm_conf *conf = f->conf[f->cur];
    time_t now = time(NULL) + f->offset;
    struct hc_probes_stats pst;
    struct cm_state_opts opts;
    struct cm_state *st = NULL;
    struct hc_report *b;
    uint64_t gen = hc_report_generation(a);
    char *before = NULL, *canon, err[CM_STATE_ERR_MAX];
    json_t *prev = NULL, *doc;
    const char *ta, *tb;
    size_t la, lb;
    bool changed, changed_b;

    clusters_of(f, cls);
    ta = hc_report_doc(a) != NULL ? hc_report_text(a, &la) : NULL;
    if (ta != NULL) {
        before = strdup(body(ta));
        prev = json_loadb(ta, la, 0, NULL);
        assert_non_null(prev);
    }
    if (f->fed_new) {
        hc_report_set_services(a, f->fed);
        hc_fedsvcs_free(f->fed_old);
        f->fed_old = NULL;
        f->fed_new = false;
    }
    assert_int_equal(hc_report_update(a, conf, cls, f->probes, now, &changed), CM_OK);
    ta = hc_report_text(a, &la);
    assert_non_null(ta);
    assert_int_equal(strlen(ta), la);
    /* The generation moved exactly when the content did. */
    assert_true(changed == (before == NULL || strcmp(before, body(ta)) != 0));
    assert_int_equal(hc_report_generation(a), gen + changed);
    f->docs_changed += changed;
    /* jansson's own serialization of it, and a valid state document. */
    doc = json_loadb(ta, la, 0, NULL);
    assert_non_null(doc);
    canon = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (strcmp(canon, ta) != 0)
        fail_diff("text and jansson's serialization", ta, canon);
    free(canon);
    cm_state_opts_from_conf(&opts, conf);
    if (cm_state_parse(ta, la, &opts, &st, err, sizeof(err)) != CM_OK)
        fail_msg("not a valid state document: %s", err);
    cm_state_free(st);
    /* The state file, written as the vantage writes it (after changes, at
     * most once a second: some documents are never written), holds the
     * document byte for byte but for the spaces between its tokens, and
     * PATH.prev the one written before (or the same). */
    f->unwritten = f->unwritten || changed;
    if (f->unwritten && pick(f, 10) < 7) {
        json_t *prev_disk;
        struct stat sb;
        ino_t before_ino = stat(f->state_prev, &sb) == 0 ? sb.st_ino : 0;
        off_t before_size = stat(f->state_prev, &sb) == 0 ? sb.st_size : -1;
        char *on_disk;

        assert_int_equal(hc_report_write(a, f->state_file, err, sizeof(err)), CM_OK);
        on_disk = read_squeezed(f->state_file);
        if (strcmp(on_disk, ta) != 0)
            fail_diff("the state file and the document", on_disk, ta);
        free(on_disk);
        if (f->written != NULL) {
            /* The one before; or this one again after a whole file, which is
             * written twice so that the next change patches. */
            prev_disk = json_load_file(f->state_prev, 0, NULL);
            assert_true(json_equal(prev_disk, f->written) || json_equal(prev_disk, doc));
            json_decref(prev_disk);
        }
        json_decref(f->written);
        f->written = json_incref(doc);
        f->unwritten = false;
        /* Written in place of PATH.prev: as large as it was (same layout) means patched. */
        if (stat(f->state_file, &sb) == 0 && sb.st_ino == before_ino && sb.st_size == before_size)
            f->patched++;
    }
    /* The probes the document lists, no more (nothing left over from old entries). */
    hc_probes_get_stats(f->probes, &pst);
    assert_int_equal(pst.probes, listed_probes(doc));
    json_decref(doc);
    /* From scratch, seeded with the kept report's previous document. */
    b = hc_report_new(0, prev);
    assert_non_null(b);
    hc_report_set_services(b, f->fed);
    assert_int_equal(hc_report_update(b, conf, cls, f->probes, now, &changed_b), CM_OK);
    assert_true(changed_b);
    tb = hc_report_text(b, &lb);
    assert_non_null(tb);
    if (strcmp(body(ta), body(tb)) != 0)
        fail_diff("kept and fresh documents", body(ta), body(tb));
    hc_report_free(b);
    json_decref(prev);
    free(before);
    f->steps_compared++;
}

static void run_steps(struct fx *f, uint64_t seed, int steps)
{
    struct hc_report *a = hc_report_new(0, NULL);

    assert_non_null(a);
    f->rng = seed;
    for (int m = 0; m < NNAMES; m++) {
        if (in_conf[f->cur][m])
            start_member(f, m);
    }
    compare(f, a);
    for (int i = 0; i < steps; i++) {
        int op = pick(f, 100);

        if (op < 55)
            step_event(f);
        else if (op < 65)
            step_relist(f);
        else if (op < 73)
            step_api(f);
        else if (op < 80)
            f->offset += pick(f, 2000);
        else if (op < 86)
            step_probe(f);
        else if (op < 90)
            step_conf(f);
        else if (op < 94)
            step_fed(f);
        /* else nothing happens: the update must find nothing new */
        /* Sometimes changes pile up over several steps before an update. */
        if (pick(f, 10) < 7)
            compare(f, a);
    }
    compare(f, a);
    compare(f, a); /* twice: nothing new */
    hc_report_free(a);
}

static void test_random_steps(void **state)
{
    struct fx *f = *state;

    const char *env = getenv("HC_REPORT_INC_SEED"); /* another sequence, to explore */
    uint64_t seed = 0x5eed0001u;

    if (env != NULL && !cm_parse_u64(env, UINT64_MAX, &seed))
        fail_msg("HC_REPORT_INC_SEED: not a number");
    print_message("seed %llu\n", (unsigned long long)seed);
    run_steps(f, seed != 0 ? seed : 1, STEPS);
    /* The comparison had something to compare, and the state file was patched. */
    assert_true(f->steps_compared > STEPS / 2);
    assert_true(f->docs_changed > STEPS / 4);
    assert_true(f->patched > f->docs_changed / 4);
}

/* The healthy of member @name's default/web entry in @r's document. */
static bool web_healthy(struct hc_report *r, const char *name)
{
    json_t *e = json_object_get(
        json_object_get(
            json_object_get(json_object_get(hc_report_doc(r), "services"), "default/web"),
            "members"),
        name);

    assert_non_null(e);
    return json_is_true(json_object_get(e, "healthy"));
}

/*
 * A new configuration lists the members in another order while every probe
 * starts over (a new probe set): each entry keeps its own member's verdict
 * (entries follow their member by name, not by position), as a fresh report
 * seeded with the document does.
 */
static void test_new_order_keeps_verdicts(void **state)
{
    struct fx *f = *state;
    struct hc_report *a = hc_report_new(0, NULL);
    struct hc_probes_params pp;
    struct hc_probes_stats st;

    assert_non_null(a);
    for (int m = 0; m < 3; m++)
        start_member(f, m);
    /* a's load balancer refuses connections (down), b's answers /probe (up). */
    f->model[0].svc[0] = (struct m_svc){.present = true, .lb = 3};
    f->model[1].svc[0] = (struct m_svc){.present = true, .lb = 1};
    for (int m = 0; m < 2; m++) {
        uint64_t n = watch_stats(f, m, HC_K8S_SLICE).events;

        f->model[m].slice[0] = (struct m_slice){.present = true, .svc = 0, .ready = 1};
        push(f, m, HC_K8S_SERVICE, "ADDED", 0);
        push(f, m, HC_K8S_SLICE, "ADDED", 0);
        run_until(f, events_reach, m, HC_K8S_SLICE, n + 1, "objects applied");
    }
    compare(f, a);
    hc_probes_get_stats(f->probes, &st);
    run_until(f, probes_ran, 0, 0, st.runs + 2 * st.probes, "probes ran");
    compare(f, a);
    assert_false(web_healthy(a, "a"));
    assert_true(web_healthy(a, "b"));
    /* New order, new probes: nothing known yet, each verdict carried by name. */
    hc_probes_free(f->probes);
    hc_probes_params_default(&pp);
    f->probes = hc_probes_new(f->base, f->client, &pp, NULL, NULL);
    assert_non_null(f->probes);
    f->cur = 2;
    compare(f, a);
    assert_false(web_healthy(a, "a"));
    assert_true(web_healthy(a, "b"));
    hc_report_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_order_keeps_verdicts, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
