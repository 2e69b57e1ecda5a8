/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_report.c -- the state document built from the members' Kubernetes
 * data and probe verdicts (health/hc_report.h): healthy = ready endpoints > 0
 * (or the API away and the probe up) and a load-balancer address known
 * (proxy mode: lb.address and a ready node with a nodePort) and the probe
 * up; the reason strings; addresses (only the probed-up ones when any is),
 * hostname, backends; annotated services; an API outage in words; pending
 * and the previous document's verdict for probes with no result yet; the
 * generation moving only with the content and continuing a previous one.
 * Probes are real hc_probes GETs to the same fake server (127.0.0.1 and
 * 127.0.0.2, told apart by the Host header).
 *
 * The members' API servers are one evhttp server on 127.0.0.1: member M's
 * kubeconfig server is http://127.0.0.1:PORT/M, lists come from the row's
 * JSON, watches are held open. Real hc_cluster objects list and watch it;
 * the loop runs until every member's API is ok (or the wanted state), never
 * for a length of time. The report's clock is passed in.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "health/hc_cluster.h"
#include "health/hc_endpoint.h"
#include "health/hc_http.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_probe.h"
#include "health/hc_report.h"
#include "tests/unit/health/unit_http.h"

/* usa: a direct load balancer; jpn: proxy mode at 198.51.100.7. */
static const char conf_text[] =
    "{'federation': 'myfed', 'zone': 'fed.example.test', 'allow_addresses': ['127.0.0.0/8'],"
    " 'regions': {'us-east-1': {'zones': ['us-east-1a']},"
    "             'ap-northeast-1': {'zones': ['ap-northeast-1a']}},"
    " 'members': {'usa': {'region': 'us-east-1', 'zone': 'us-east-1a'},"
    "             'jpn': {'region': 'ap-northeast-1',"
    "                     'lb': {'mode': 'proxy', 'address': '198.51.100.7'}}},"
    " 'services': {'default/web': {'port': 80,"
    "                 'check': {'interval_ms': 100, 'timeout_ms': 90, 'rise': 1, 'fall': 1}}},"
    " 'health': {'vantage': 'us-east-1'}}";

#define NMEMBERS 2
#define HELD_MAX 256

/* What one member's API serves. */
struct api {
    const char *services; /* list items, JSON text without the brackets */
    const char *slices;
    const char *nodes;
    int readyz; /* HTTP status of /readyz */
};

struct fx {
    struct event_base *base;
    struct evhttp *http;
    int port;
    struct api api[NMEMBERS];
    int probe_status[2]; /* what GET /probe/... answers at 127.0.0.1 and 127.0.0.2 */
    char svc_json[1024]; /* a Service built at run time */
    struct hc_probes *probes;
    struct evhttp_request *held[HELD_MAX]; /* watch streams we owe an end */
    size_t held_count;
    struct hc_http *client;
    struct cm_conf *conf;
    struct hc_cluster *clusters[NMEMBERS];
};

static const char *const member_names[NMEMBERS] = {"usa", "jpn"};

/* ---- the members' API server -------------------------------------------- */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Runs the loop until @cond(@f); a 10 s guard turns a hang into a failure. */
static void run_until(struct fx *f, bool (*cond)(const struct fx *f), const char *what)
{
    time_t guard = time(NULL) + 10;

    while (!cond(f)) {
        if (time(NULL) > guard)
            fail_msg("never happened: %s", what);
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) == 0);
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    const struct api *a = NULL;
    const char *rest = NULL, *items = NULL, *kind = NULL;

    for (size_t m = 0; m < NMEMBERS; m++) {
        size_t len = strlen(member_names[m]);
        if (uri[0] == '/' && strncmp(uri + 1, member_names[m], len) == 0 && uri[1 + len] == '/') {
            a = &f->api[m];
            rest = uri + 1 + len;
        }
    }
    if (starts(uri, "/probe/")) {
        const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
        int st = f->probe_status[host != NULL && starts(host, "127.0.0.2")];
        evbuffer_add_printf(out, "%d", st);
        evhttp_send_reply(req, st, NULL, NULL);
        return;
    }
    if (a == NULL) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    if (starts(rest, "/readyz")) {
        evbuffer_add_printf(out, "%s", a->readyz == 200 ? "ok" : "not ready");
        evhttp_send_reply(req, a->readyz, NULL, NULL);
        return;
    }
    if (starts(rest, "/api/v1/services?")) {
        items = a->services;
        kind = "ServiceList";
    } else if (starts(rest, "/apis/discovery.k8s.io/v1/endpointslices?")) {
        items = a->slices;
        kind = "EndpointSliceList";
    } else if (starts(rest, "/api/v1/nodes?")) {
        items = a->nodes;
        kind = "NodeList";
    } else {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (strstr(rest, "watch=1") != NULL) {
        /* Nothing changes: the stream stays open. When the client goes,
         * evhttp detaches the request and leaves it to us (teardown). */
        assert_true(f->held_count < HELD_MAX);
        evhttp_send_reply_start(req, 200, NULL);
        f->held[f->held_count++] = req;
        return;
    }
    evbuffer_add_printf(out,
                        "{\"kind\":\"%s\",\"metadata\":{\"resourceVersion\":\"10\"},"
                        "\"items\":[%s]}",
                        kind, items != NULL ? items : "");
    evhttp_send_reply(req, 200, NULL, NULL);
}

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[CM_CONF_ERR_MAX];
    char *text = strdup(conf_text);

    assert_non_null(f);
    assert_non_null(text);
    for (char *c = text; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    if (cm_conf_load_string("t.json", text, &f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    free(text);
    assert_int_equal(f->conf->member_count, NMEMBERS);
    assert_int_equal(cm_conf_member_index(f->conf, "usa"), 0);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->http = unit_http_server(f->base, on_request, f, &f->port);
    f->client = hc_http_new(f->base);
    assert_non_null(f->client);
    *state = f;
    return 0;
}

static void stop_clusters(struct fx *f)
{
    for (size_t m = 0; m < NMEMBERS; m++) {
        hc_cluster_free(f->clusters[m]);
        f->clusters[m] = NULL;
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;

    stop_clusters(f);
    hc_probes_free(f->probes);
    hc_http_free(f->client);
    event_base_loop(f->base, EVLOOP_NONBLOCK); /* the server sees the clients go */
    for (size_t i = 0; i < f->held_count; i++)
        evhttp_send_reply_end(f->held[i]); /* frees a detached request */
    evhttp_free(f->http);                  /* also the held requests */
    event_base_free(f->base);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

static bool all_ok(const struct fx *f)
{
    for (size_t m = 0; m < NMEMBERS; m++) {
        if (f->clusters[m] != NULL && hc_cluster_api(f->clusters[m]) != HC_API_OK)
            return false;
    }
    return true;
}

static bool usa_unreachable(const struct fx *f)
{
    return hc_cluster_api(f->clusters[0]) == HC_API_UNREACHABLE;
}

/* Starts a cluster per member with f->api[m] set, and runs until every API is ok. */
static void start_clusters(struct fx *f)
{
    struct hc_cluster_params p;

    stop_clusters(f);
    hc_cluster_params_default(&p);
    p.fall = 1;
    p.readyz_interval_ms = 20;
    p.watch.backoff_min_ms = 1;
    p.watch.backoff_max_ms = 2;
    for (size_t m = 0; m < NMEMBERS; m++) {
        struct hc_kube_target *t;

        if (f->api[m].readyz == 0)
            continue; /* this member has no cluster object */
        t = unit_kube_target(f->port, member_names[m]);
        f->clusters[m] = hc_cluster_new(f->base, f->client, member_names[m], t,
                                        f->conf->members[m].lb_mode == CM_LB_PROXY, &p, NULL, NULL);
        assert_non_null(f->clusters[m]);
        assert_int_equal(hc_cluster_start(f->clusters[m]), CM_OK);
    }
    run_until(f, all_ok, "every API ok");
}

/* ---- Kubernetes objects as JSON text ------------------------------------ */

/* A Service "default/<name>"; @ingress: status.loadBalancer.ingress items. */
#define SVC(name, ann, ports, ingress)                                                             \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\",\"annotations\":{" ann "}},"   \
    "\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[" ports "]},"                                  \
    "\"status\":{\"loadBalancer\":{\"ingress\":[" ingress "]}}}"
#define PORT80       "{\"port\":80,\"protocol\":\"TCP\",\"nodePort\":30080}"
#define PORT80_NO_NP "{\"port\":80,\"protocol\":\"TCP\"}"
#define IP(a)        "{\"ip\":\"" a "\"}"
#define HOST(h)      "{\"hostname\":\"" h "\"}"
#define FEDERATE     "\"fedgslb.io/federate\":\"true\""
#define WEB(ingress) SVC("web", "", PORT80, ingress)
/* An EndpointSlice of default/<svc> with @ready and @not_ready endpoints. */
#define SLICE(name, svc, family, eps)                                                              \
    "{\"addressType\":\"" family "\",\"metadata\":{\"name\":\"" name "\","                         \
    "\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"" svc "\"}},"          \
    "\"endpoints\":[" eps "]}"
#define READY(a)     "{\"addresses\":[\"" a "\"],\"conditions\":{\"ready\":true}}"
#define NOT_READY(a) "{\"addresses\":[\"" a "\"],\"conditions\":{\"ready\":false}}"
#define NODE(name, ready, ip)                                                                      \
    "{\"metadata\":{\"name\":\"" name "\"},\"status\":{\"conditions\":[{\"type\":\"Ready\","       \
    "\"status\":\"" ready "\"}],\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"" ip         \
    "\"}]}}"

/* ---- the endpoint table ------------------------------------------------- */

struct ep_case {
    const char *what;
    size_t member;   /* 0 usa (direct), 1 jpn (proxy mode) */
    struct api api;  /* that member's objects */
    const char *svc; /* the entry's service */
    bool healthy;
    const char *reason;
    const char *addresses; /* comma separated */
    const char *hostname;  /* NULL: JSON null */
    const char *backends;  /* comma separated */
    int ready, ready_v4, ready_v6;
};

static const struct ep_case ep_cases[] = {
    {"ready endpoints and an LB IP: healthy",
     0,
     {WEB(IP("192.0.2.10")), SLICE("w1", "web", "IPv4", READY("10.0.0.1") "," READY("10.0.0.2")),
      NULL, 200},
     "default/web",
     true,
     "2 ready endpoints; load balancer 192.0.2.10",
     "192.0.2.10",
     NULL,
     "",
     2,
     2,
     0},
    {"one ready endpoint: singular",
     0,
     {WEB(IP("192.0.2.10")),
      SLICE("w1", "web", "IPv4", READY("10.0.0.1") "," NOT_READY("10.0.0.2")), NULL, 200},
     "default/web",
     true,
     "1 ready endpoint; load balancer 192.0.2.10",
     "192.0.2.10",
     NULL,
     "",
     1,
     1,
     0},
    {"nothing ready: unhealthy, whatever the LB",
     0,
     {WEB(IP("192.0.2.10")), SLICE("w1", "web", "IPv4", NOT_READY("10.0.0.1")), NULL, 200},
     "default/web",
     false,
     "0 ready endpoints",
     "192.0.2.10",
     NULL,
     "",
     0,
     0,
     0},
    {"no EndpointSlice at all: 0 ready",
     0,
     {WEB(IP("192.0.2.10")), NULL, NULL, 200},
     "default/web",
     false,
     "0 ready endpoints",
     "192.0.2.10",
     NULL,
     "",
     0,
     0,
     0},
    {"ready but no LB address yet",
     0,
     {WEB(""), SLICE("w1", "web", "IPv4", READY("10.0.0.1")), NULL, 200},
     "default/web",
     false,
     "1 ready endpoint; no load balancer address",
     "",
     NULL,
     "",
     1,
     1,
     0},
    {"IPv4 and IPv6 slices add up; both LB families listed",
     0,
     {WEB(IP("192.0.2.10") "," IP("2001:db8::10")),
      SLICE("w4", "web", "IPv4", READY("10.0.0.1")) "," SLICE(
          "w6", "web", "IPv6", READY("fd00::1") "," READY("fd00::2")),
      NULL, 200},
     "default/web",
     true,
     "3 ready endpoints; load balancer 192.0.2.10",
     "192.0.2.10,2001:db8::10",
     NULL,
     "",
     3,
     1,
     2},
    {"slices of another Service do not count",
     0,
     {WEB(IP("192.0.2.10")), SLICE("o1", "other", "IPv4", READY("10.0.0.1")), NULL, 200},
     "default/web",
     false,
     "0 ready endpoints",
     "192.0.2.10",
     NULL,
     "",
     0,
     0,
     0},
    {"a hostname-only LB: healthy, no addresses (answered as a CNAME)",
     0,
     {WEB(HOST("lb-1.elb.example.com")), SLICE("w1", "web", "IPv4", READY("10.0.0.1")), NULL, 200},
     "default/web",
     true,
     "1 ready endpoint; load balancer lb-1.elb.example.com",
     "",
     "lb-1.elb.example.com",
     "",
     1,
     1,
     0},
    {"an IP and a hostname: the IP is the address, the hostname is reported too",
     0,
     {WEB(HOST("lb-1.elb.example.com") "," IP("192.0.2.10")),
      SLICE("w1", "web", "IPv4", READY("10.0.0.1")), NULL, 200},
     "default/web",
     true,
     "1 ready endpoint; load balancer 192.0.2.10",
     "192.0.2.10",
     "lb-1.elb.example.com",
     "",
     1,
     1,
     0},
    {"proxy mode: lb.address, backends from ready nodes at the nodePort",
     1,
     {WEB(""), SLICE("w1", "web", "IPv4", READY("10.1.0.1")),
      NODE("n1", "True", "10.1.1.1") "," NODE("n2", "False", "10.1.1.2") "," NODE("n3", "True",
                                                                                  "fd00:1::3"),
      200},
     "default/web",
     true,
     "1 ready endpoint; via proxy 198.51.100.7",
     "198.51.100.7",
     NULL,
     "10.1.1.1:30080,[fd00:1::3]:30080",
     1,
     1,
     0},
    {"proxy mode, several ports: the configured port's nodePort, not the first port's",
     1,
     {SVC("web", "", "{\"port\":8080,\"protocol\":\"TCP\",\"nodePort\":31000}," PORT80, ""),
      SLICE("w1", "web", "IPv4", READY("10.1.0.1")), NODE("n1", "True", "10.1.1.1"), 200},
     "default/web",
     true,
     "1 ready endpoint; via proxy 198.51.100.7",
     "198.51.100.7",
     NULL,
     "10.1.1.1:30080",
     1,
     1,
     0},
    {"proxy mode without a ready node: unhealthy",
     1,
     {WEB(""), SLICE("w1", "web", "IPv4", READY("10.1.0.1")), NODE("n2", "False", "10.1.1.2"), 200},
     "default/web",
     false,
     "1 ready endpoint; no ready node with a nodePort",
     "198.51.100.7",
     NULL,
     "",
     1,
     1,
     0},
    {"proxy mode without a nodePort: unhealthy",
     1,
     {SVC("web", "", PORT80_NO_NP, ""), SLICE("w1", "web", "IPv4", READY("10.1.0.1")),
      NODE("n1", "True", "10.1.1.1"), 200},
     "default/web",
     false,
     "1 ready endpoint; no ready node with a nodePort",
     "198.51.100.7",
     NULL,
     "",
     1,
     1,
     0},
    {"an annotated Service is reported with the default check",
     0,
     {SVC("shop", FEDERATE, PORT80, IP("192.0.2.20")),
      SLICE("s1", "shop", "IPv4", READY("10.0.0.1")), NULL, 200},
     "default/shop",
     true,
     "1 ready endpoint; load balancer 192.0.2.20",
     "192.0.2.20",
     NULL,
     "",
     1,
     1,
     0},
};

static json_t *endpoint(json_t *doc, const char *svc, const char *member)
{
    return json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "services"), svc), "members"), member);
}

/* "a,b" from a JSON array of strings. */
static void list_text(json_t *arr, char *out, size_t cap)
{
    size_t i, o = 0;
    json_t *v;

    out[0] = '\0';
    json_array_foreach(arr, i, v) o +=
        (size_t)snprintf(out + o, cap - o, "%s%s", i > 0 ? "," : "", json_string_value(v));
}

static void test_endpoint_table(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(ep_cases) / sizeof(ep_cases[0]); i++) {
        const struct ep_case *c = &ep_cases[i];
        struct hc_report *r = hc_report_new(0, NULL);
        char addrs[256], backends[256];
        bool changed;
        json_t *e;

        memset(f->api, 0, sizeof(f->api));
        f->api[c->member] = c->api;
        start_clusters(f);
        assert_non_null(r);
        assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 1000, &changed), CM_OK);
        assert_true(changed);
        e = endpoint(hc_report_doc(r), c->svc, member_names[c->member]);
        if (e == NULL)
            fail_msg("row %zu (%s): no entry", i, c->what);
        list_text(json_object_get(e, "addresses"), addrs, sizeof(addrs));
        list_text(json_object_get(e, "backends"), backends, sizeof(backends));
        if (json_is_true(json_object_get(e, "healthy")) != c->healthy ||
            strcmp(json_string_value(json_object_get(e, "reason")), c->reason) != 0 ||
            strcmp(addrs, c->addresses) != 0 || strcmp(backends, c->backends) != 0 ||
            json_integer_value(json_object_get(e, "ready_endpoints")) != c->ready ||
            json_integer_value(json_object_get(e, "ready_endpoints_ipv4")) != c->ready_v4 ||
            json_integer_value(json_object_get(e, "ready_endpoints_ipv6")) != c->ready_v6)
            fail_msg("row %zu (%s): healthy %d reason '%s' addresses '%s' backends '%s' ready "
                     "%lld",
                     i, c->what, json_is_true(json_object_get(e, "healthy")),
                     json_string_value(json_object_get(e, "reason")), addrs, backends,
                     (long long)json_integer_value(json_object_get(e, "ready_endpoints")));
        if (c->hostname == NULL)
            assert_true(json_is_null(json_object_get(e, "hostname")));
        else
            assert_string_equal(json_string_value(json_object_get(e, "hostname")), c->hostname);
        assert_false(json_is_true(json_object_get(e, "pending"))); /* no probes */
        assert_true(json_is_true(json_object_get(e, "via_proxy")) == (c->member == 1));
        hc_report_free(r);
    }
}

/* Services: configured ones always (even with no member), annotated ones
 * only when annotated and only with names the document can carry. */
static void test_services(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);
    bool changed;
    json_t *services;

    memset(f->api, 0, sizeof(f->api));
    f->api[0] = (struct api){SVC("plain", "", PORT80, IP("192.0.2.1")) "," SVC(
                                 "shop", FEDERATE, PORT80,
                                 IP("192.0.2.2")) "," SVC("no", "\"fedgslb.io/federate\":\"false\"",
                                                          PORT80, IP("192.0.2.3")),
                             NULL, NULL, 200};
    f->api[1] = (struct api){NULL, NULL, NULL, 200};
    start_clusters(f);
    assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 1000, &changed), CM_OK);
    services = json_object_get(hc_report_doc(r), "services");
    /* default/web is configured: present, with no member reporting it. */
    assert_non_null(json_object_get(services, "default/web"));
    assert_int_equal(
        json_object_size(json_object_get(json_object_get(services, "default/web"), "members")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(services, "default/web"), "port")), 80);
    assert_non_null(json_object_get(services, "default/shop"));
    assert_null(json_object_get(services, "default/plain"));
    assert_null(json_object_get(services, "default/no"));
    assert_int_equal(json_object_size(services), 2);
    hc_report_free(r);
}

/* The Service's traffic policy annotations are carried in its entry, for the name servers. */
static void test_policy_annotations(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);
    bool changed;
    json_t *usa;

    memset(f->api, 0, sizeof(f->api));
    f->api[0] = (struct api){SVC("web", "\"fedgslb.io/weight\":\"3\",\"fedgslb.io/priority\":\"1\"",
                                 PORT80, IP("192.0.2.10")),
                             SLICE("w1", "web", "IPv4", READY("10.0.0.1")), NULL, 200};
    f->api[1] = (struct api){NULL, NULL, NULL, 200};
    start_clusters(f);
    assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 1000, &changed), CM_OK);
    usa = json_object_get(
        json_object_get(
            json_object_get(json_object_get(hc_report_doc(r), "services"), "default/web"),
            "members"),
        "usa");
    assert_int_equal(json_integer_value(json_object_get(usa, "weight")), 3);
    assert_int_equal(json_integer_value(json_object_get(usa, "priority")), 1);
    hc_report_free(r);
}

/*
 * Writes @r's first state file into the new directory @dir (a mkdtemp
 * template): PATH (into @path) and PATH.prev (into @prev), both whole.
 */
static void first_write(struct hc_report *r, char *dir, char *path, size_t path_cap, char *prev,
                        size_t prev_cap)
{
    char err[256];
    uint64_t patches, wholes;

    assert_non_null(mkdtemp(dir));
    snprintf(path, path_cap, "%s/health-state.json", dir);
    snprintf(prev, prev_cap, "%s.prev", path);
    assert_int_equal(hc_report_write(r, path, err, sizeof(err)), CM_OK);
    hc_report_write_counts(r, &patches, &wholes);
    assert_true(patches == 0 && wholes == 2);
}

/* A patch of the state file writes the bytes of a slot that changed, not the slot. */
static void test_patch_bytes(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);
    bool changed;
    char dir[] = "/tmp/hc-report-XXXXXX", path[64], prev[80], err[256];
    uint64_t patches, wholes;

    memset(f->api, 0, sizeof(f->api));
    f->api[0] = (struct api){WEB(IP("192.0.2.10")),
                             SLICE("w1", "web", "IPv4", READY("10.0.0.1") "," READY("10.0.0.2")),
                             NULL, 200};
    f->api[1] = (struct api){NULL, NULL, NULL, 200};
    start_clusters(f);
    assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 1000, &changed), CM_OK);
    first_write(r, dir, path, sizeof(path), prev, sizeof(prev));
    /* Ready counts changed by one digit (2 <-> 3) patch the bytes from the
     * first to the last changed in the service's slot, not the slot; also
     * when PATH.prev (two writes ago) misses two changes. */
    for (int i = 0; i < 3; i++) {
        uint64_t bytes = hc_report_patch_bytes(r);
        const char *text, *d1, *d2;
        json_t *on_disk;
        size_t len;

        f->api[0].slices = SLICE("w1", "web", "IPv4", READY("10.0.0.1") "," READY("10.0.0.2"));
        if (i % 2 == 0)
            f->api[0].slices = SLICE("w1", "web", "IPv4",
                                     READY("10.0.0.1") "," READY("10.0.0.2") "," READY("10.0.0.3"));
        start_clusters(f);
        assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 2000 + i, &changed),
                         CM_OK);
        assert_true(changed);
        assert_int_equal(hc_report_write(r, path, err, sizeof(err)), CM_OK);
        hc_report_write_counts(r, &patches, &wholes);
        assert_true(patches == 1 + (uint64_t)i && wholes == 2);
        /* From the count's digit to the reason's ("3 ready endpoints; ..."). */
        text = hc_report_text(r, &len);
        d1 = strstr(text, "\"ready_endpoints\":");
        d2 = strstr(text, "\"reason\":\"");
        assert_true(d1 != NULL && d2 != NULL && d2 > d1);
        assert_int_equal(hc_report_patch_bytes(r) - bytes, (size_t)(d2 - d1) +
                                                               strlen("\"reason\":\"") -
                                                               strlen("\"ready_endpoints\":") + 1);
        on_disk = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
        assert_true(json_equal(on_disk, hc_report_doc(r)));
        json_decref(on_disk);
    }
    unlink(path);
    unlink(prev);
    rmdir(dir);
    hc_report_free(r);
}

/* The generation moves only with the content, and continues the last one. */
static void test_generation(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(41, NULL);
    bool changed;
    char ts[32], dir[] = "/tmp/hc-report-XXXXXX", path[64], prev[80], err[256];
    struct stat sb, sb2;
    uint64_t patches, wholes;

    memset(f->api, 0, sizeof(f->api));
    f->api[0] = (struct api){WEB(IP("192.0.2.10")), SLICE("w1", "web", "IPv4", READY("10.0.0.1")),
                             NULL, 200};
    f->api[1] = (struct api){NULL, NULL, NULL, 200};
    start_clusters(f);
    assert_null(hc_report_doc(r));
    assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 1000, &changed), CM_OK);
    assert_true(changed);
    assert_int_equal(hc_report_generation(r), 42);
    assert_int_equal(json_integer_value(json_object_get(hc_report_doc(r), "generation")), 42);
    /* An ok member says so without a time (a moving time would change every document). */
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(hc_report_doc(r), "members"), "usa"), "api")),
        "ok");
    assert_null(json_object_get(
        json_object_get(json_object_get(hc_report_doc(r), "members"), "usa"), "last_seen"));
    hc_report_time(1000, ts, sizeof(ts));
    assert_string_equal(ts, "1970-01-01T00:16:40Z");
    assert_string_equal(json_string_value(json_object_get(hc_report_doc(r), "generated_at")), ts);
    /* Same content later: neither generation nor generated_at moves. */
    assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 2000, &changed), CM_OK);
    assert_false(changed);
    assert_int_equal(hc_report_generation(r), 42);
    assert_string_equal(json_string_value(json_object_get(hc_report_doc(r), "generated_at")), ts);
    /* The first state file is written whole, twice (PATH.prev in the same
     * layout): the next document patches PATH.prev in place and swaps the two. */
    first_write(r, dir, path, sizeof(path), prev, sizeof(prev));
    assert_int_equal(stat(prev, &sb), 0);
    /* New content: the next generation, the new time. */
    f->api[0].slices = SLICE("w1", "web", "IPv4", READY("10.0.0.1") "," READY("10.0.0.2"));
    start_clusters(f);
    assert_int_equal(hc_report_update(r, f->conf, f->clusters, NULL, 3000, &changed), CM_OK);
    assert_true(changed);
    assert_int_equal(hc_report_generation(r), 43);
    assert_int_equal(hc_report_write(r, path, err, sizeof(err)), CM_OK);
    assert_int_equal(stat(path, &sb2), 0);
    assert_true(sb2.st_ino == sb.st_ino && sb2.st_size == sb.st_size); /* PATH.prev's */
    hc_report_write_counts(r, &patches, &wholes);
    assert_true(patches == 1 && wholes == 2);
    {
        json_t *on_disk = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);

        assert_true(json_equal(on_disk, hc_report_doc(r)));
        json_decref(on_disk);
    }
    unlink(path);
    unlink(prev);
    rmdir(dir);
    hc_report_time(3000, ts, sizeof(ts));
    assert_string_equal(json_string_value(json_object_get(hc_report_doc(r), "generated_at")), ts);
    /* A restart seeded with 43 and that document goes on from 43. */
    {
        struct hc_report *r2 = hc_report_new(43, hc_report_doc(r));
        size_t len = 0;

        assert_ptr_equal(hc_report_doc(r2), hc_report_doc(r));
        assert_non_null(hc_report_text(r2, &len));
        assert_true(len > 0);
        assert_int_equal(hc_report_update(r2, f->conf, f->clusters, NULL, 4000, &changed), CM_OK);
        assert_true(changed);
        assert_int_equal(hc_report_generation(r2), 44);
        hc_report_free(r2);
    }
    /* A restart resumed past the file's generation offers that document
     * under the generation it resumed at, and says so in its text. */
    {
        struct hc_report *r2 = hc_report_new(43 + 64, hc_report_doc(r));
        const char *text;
        json_t *sent;
        size_t len = 0;

        assert_non_null(r2);
        assert_int_equal(json_integer_value(json_object_get(hc_report_doc(r2), "generation")),
                         43 + 64);
        text = hc_report_text(r2, &len);
        assert_non_null(text);
        sent = json_loadb(text, len, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(sent, "generation")), 43 + 64);
        json_decref(sent);
        /* the file's document itself is left alone */
        assert_int_equal(json_integer_value(json_object_get(hc_report_doc(r), "generation")), 43);
        hc_report_free(r2);
    }
    hc_report_free(r);
}

/* An unreachable API: last-known data, api and last_seen in members, the
 * outage in coarse words. */
struct outage_case {
    long secs;
    const char *words;
};

static void test_api_outage(void **state)
{
    static const struct outage_case cases[] = {
        {0, "0 s"},     {14, "0 s"},      {15, "15 s"},  {59, "45 s"},  {60, "1 min"},
        {119, "1 min"}, {3599, "59 min"}, {3600, "1 h"}, {7300, "2 h"},
    };
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);
    bool changed;
    time_t since;
    json_t *usa;

    memset(f->api, 0, sizeof(f->api));
    f->api[0] = (struct api){WEB(IP("192.0.2.10")), SLICE("w1", "web", "IPv4", READY("10.0.0.1")),
                             NULL, 200};
    start_clusters(f);
    f->api[0].readyz = 500;
    run_until(f, usa_unreachable, "usa unreachable");
    since = hc_cluster_bad_since(f->clusters[0]);
    assert_true(since != 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[256];
        json_t *e;

        assert_int_equal(
            hc_report_update(r, f->conf, f->clusters, NULL, since + cases[i].secs, &changed),
            CM_OK);
        e = endpoint(hc_report_doc(r), "default/web", "usa");
        snprintf(want, sizeof(want),
                 "1 ready endpoint; load balancer 192.0.2.10; API unreachable for %s; last known "
                 "data",
                 cases[i].words);
        assert_true(json_is_true(json_object_get(e, "healthy")));
        if (strcmp(json_string_value(json_object_get(e, "reason")), want) != 0)
            fail_msg("outage row %zu: '%s', want '%s'", i,
                     json_string_value(json_object_get(e, "reason")), want);
    }
    usa = json_object_get(json_object_get(hc_report_doc(r), "members"), "usa");
    assert_string_equal(json_string_value(json_object_get(usa, "api")), "unreachable");
    assert_true(json_is_string(json_object_get(usa, "last_seen")));
    assert_string_equal(json_string_value(json_object_get(usa, "region")), "us-east-1");
    assert_string_equal(json_string_value(json_object_get(usa, "zone")), "us-east-1a");
    /* A member without a cluster object: api "unknown"; an ok member has no last_seen. */
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(hc_report_doc(r), "members"), "jpn"), "api")),
        "unknown");
    hc_report_free(r);
}

/* ---- with data-plane probes -------------------------------------------- */

static void no_op(void *arg)
{
    (void)arg;
}

static enum hc_probe_verdict probe_of(const struct fx *f, const char *address)
{
    const struct hc_probe_status *st = hc_probes_get(f->probes, "default/web", "usa", address);

    return st != NULL ? st->verdict : HC_PROBE_UNKNOWN;
}

static bool probe1_up(const struct fx *f)
{
    return probe_of(f, "127.0.0.1") == HC_PROBE_UP;
}

static bool probe1_down(const struct fx *f)
{
    return probe_of(f, "127.0.0.1") == HC_PROBE_DOWN;
}

static bool probes_known(const struct fx *f)
{
    return probe_of(f, "127.0.0.1") != HC_PROBE_UNKNOWN &&
           probe_of(f, "127.0.0.2") != HC_PROBE_UNKNOWN;
}

/* Builds, then checks usa's default/web entry. @reason: a prefix. */
static json_t *update_check(struct fx *f, struct hc_report *r, time_t now, bool healthy,
                            bool pending, const char *reason, const char *addresses)
{
    bool changed;
    char addrs[256];
    json_t *e;

    assert_int_equal(hc_report_update(r, f->conf, f->clusters, f->probes, now, &changed), CM_OK);
    e = endpoint(hc_report_doc(r), "default/web", "usa");
    assert_non_null(e);
    list_text(json_object_get(e, "addresses"), addrs, sizeof(addrs));
    if (json_is_true(json_object_get(e, "healthy")) != healthy ||
        json_is_true(json_object_get(e, "pending")) != pending ||
        strncmp(json_string_value(json_object_get(e, "reason")), reason, strlen(reason)) != 0 ||
        strcmp(addrs, addresses) != 0)
        fail_msg("healthy %d pending %d reason '%s' addresses '%s'; want %d %d '%s...' '%s'",
                 json_is_true(json_object_get(e, "healthy")),
                 json_is_true(json_object_get(e, "pending")),
                 json_string_value(json_object_get(e, "reason")), addrs, healthy, pending, reason,
                 addresses);
    return e;
}

/* usa's web Service with an LB at 127.0.0.1 (and @second), probed at the
 * fake server's port and /probe/usa through the annotations. */
static void probed_api(struct fx *f, const char *slices, bool second)
{
    struct hc_probes_params pp;

    snprintf(f->svc_json, sizeof(f->svc_json),
             "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"annotations\":"
             "{\"fedgslb.io/health-port\":\"%d\",\"fedgslb.io/health-path\":\"/probe/usa\"}},"
             "\"spec\":{\"ports\":[" PORT80 "]},"
             "\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"127.0.0.1\"}%s]}}}",
             f->port, second ? ",{\"ip\":\"127.0.0.2\"}" : "");
    memset(f->api, 0, sizeof(f->api));
    f->api[0] = (struct api){f->svc_json, slices, NULL, 200};
    start_clusters(f);
    hc_probes_free(f->probes);
    hc_probes_params_default(&pp);
    f->probes = hc_probes_new(f->base, f->client, &pp, no_op, NULL);
    assert_non_null(f->probes);
}

/* Healthy also needs the probe: awaiting, ok, failed; the API away lets the probe decide. */
static void test_probe_verdicts(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);
    json_t *e;

    f->probe_status[0] = 200;
    probed_api(f, SLICE("w1", "web", "IPv4", READY("10.0.0.1")), false);
    /* No result yet and no previous document: the benefit of the doubt, pending. */
    e = update_check(f, r, 1000, true, true, "1 ready endpoint; awaiting first probe", "127.0.0.1");
    assert_string_equal(json_string_value(json_object_get(e, "check_path")), "/probe/usa");
    run_until(f, probe1_up, "probe up");
    e = update_check(f, r, 1001, true, false, "1 ready endpoint; probe ok (", "127.0.0.1");
    assert_true(json_is_object(json_object_get(json_object_get(e, "probes"), "127.0.0.1")));
    f->probe_status[0] = 503;
    run_until(f, probe1_down, "probe down");
    update_check(f, r, 1002, false, false, "probe 1/1 failed: ", "127.0.0.1");
    hc_report_free(r);
}

/* A restart: a probe with no result yet keeps the previous document's verdict. */
static void test_probe_seeded(void **state)
{
    struct fx *f = *state;
    struct hc_report *first = hc_report_new(0, NULL);
    struct hc_report *r;

    f->probe_status[0] = 503;
    probed_api(f, SLICE("w1", "web", "IPv4", READY("10.0.0.1")), false);
    update_check(f, first, 1000, true, true, "1 ready endpoint; awaiting first probe", "127.0.0.1");
    run_until(f, probe1_down, "probe down");
    update_check(f, first, 1001, false, false, "probe 1/1 failed: ", "127.0.0.1");
    /* New probes (a restarted checker) seeded with that document: still down, pending. */
    f->probe_status[0] = 200;
    r = hc_report_new(hc_report_generation(first), hc_report_doc(first));
    probed_api(f, SLICE("w1", "web", "IPv4", READY("10.0.0.1")), false);
    update_check(f, r, 1002, false, true, "awaiting first probe", "127.0.0.1");
    assert_int_equal(hc_report_generation(r), hc_report_generation(first) + 1);
    hc_report_free(first);
    hc_report_free(r);
}

/* With the API unreachable, last-known readiness is not evidence: the probe decides. */
static void test_probe_decides_when_api_away(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);

    f->probe_status[0] = 200;
    probed_api(f, SLICE("w1", "web", "IPv4", NOT_READY("10.0.0.1")), false);
    /* The update wants the probe; nothing ready: down, whatever the probe says. */
    update_check(f, r, 1000, false, true, "0 ready endpoints", "127.0.0.1");
    run_until(f, probe1_up, "probe up");
    update_check(f, r, 1001, false, false, "0 ready endpoints", "127.0.0.1");
    f->api[0].readyz = 500;
    run_until(f, usa_unreachable, "usa unreachable");
    update_check(f, r, hc_cluster_bad_since(f->clusters[0]), true, false,
                 "0 ready endpoints; probe ok (", "127.0.0.1");
    hc_report_free(r);
}

/* Addresses: those whose probe is up when one is; all of them when none is. */
static void test_probe_addresses(void **state)
{
    struct fx *f = *state;
    struct hc_report *r = hc_report_new(0, NULL);

    f->probe_status[0] = 200;
    f->probe_status[1] = 503;
    probed_api(f, SLICE("w1", "web", "IPv4", READY("10.0.0.1")), true);
    update_check(f, r, 1000, true, true, "1 ready endpoint; awaiting first probe",
                 "127.0.0.1,127.0.0.2");
    run_until(f, probes_known, "both probes");
    update_check(f, r, 1001, true, false, "1 ready endpoint; probe 1/1 failed", "127.0.0.1");
    hc_report_free(r);
}

/* ---- the reconcile step alone (hc_endpoint), table-driven --------------- */

enum st_kind {
    ST_NONE = 0,         /* no probe status (no result yet) */
    ST_UP = 1,           /* up, rtt_ms from the case */
    ST_DOWN = 2,         /* down after 3/3 failures: "connection refused" */
    ST_DOWN_PENDING = 3, /* up, one failure of 3: pending */
};

struct rec_case {
    const char *what;
    size_t member;         /* 0 usa (direct), 1 jpn (proxy at 198.51.100.7) */
    const char *lb_ips[3]; /* NULL-terminated */
    const char *hostname;  /* LB hostname, or NULL */
    uint32_t v4, v6;       /* ready endpoints */
    const char *node_ip;   /* one node (proxy mode), NULL: none */
    bool node_ready;
    enum hc_api_state api;
    time_t down_for_s;  /* API not ok since now - this */
    bool probes;        /* a probe set exists */
    enum st_kind st[3]; /* per candidate address */
    double rtt[3];
    int previous; /* previous verdict: 1, 0, -1 */
    /* expected */
    bool healthy, pending;
    const char *reason;
    const char *answered; /* comma separated */
    const char *backends; /* comma separated */
    size_t refused;
    double rtt_ms;
};

static const struct rec_case rec_cases[] = {
    {"ready endpoints and an LB address, no probes",
     0,
     {"192.0.2.10"},
     NULL,
     2,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     false,
     {ST_NONE},
     {0},
     -1,
     true,
     false,
     "2 ready endpoints; load balancer 192.0.2.10",
     "192.0.2.10",
     "",
     0,
     -1},
    {"no ready endpoint",
     0,
     {"192.0.2.10"},
     NULL,
     0,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     true,
     {ST_UP},
     {5},
     -1,
     false,
     false,
     "0 ready endpoints",
     "192.0.2.10",
     "",
     0,
     5},
    {"the only LB address refused",
     0,
     {"0.0.0.0"},
     NULL,
     1,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     false,
     {ST_NONE},
     {0},
     -1,
     false,
     false,
     "1 ready endpoint; load-balancer address 0.0.0.0 refused: unspecified",
     "",
     "",
     1,
     -1},
    {"one address down, one up: only the up one answered",
     0,
     {"192.0.2.10", "192.0.2.11"},
     NULL,
     1,
     1,
     NULL,
     false,
     HC_API_OK,
     0,
     true,
     {ST_DOWN, ST_UP},
     {0, 12.34},
     -1,
     true,
     false,
     "2 ready endpoints; probe 3/3 failed: connection refused",
     "192.0.2.11",
     "",
     0,
     12.34},
    {"every address down: all answered (fail-open material)",
     0,
     {"192.0.2.10", "192.0.2.11"},
     NULL,
     2,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     true,
     {ST_DOWN, ST_DOWN},
     {0},
     -1,
     false,
     false,
     "probe 3/3 failed: connection refused",
     "192.0.2.10,192.0.2.11",
     "",
     0,
     -1},
    {"up with a failure in progress: pending",
     0,
     {"192.0.2.10"},
     NULL,
     2,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     true,
     {ST_DOWN_PENDING},
     {7},
     -1,
     true,
     true,
     "2 ready endpoints; probe 1/3 failed: timeout; still up",
     "192.0.2.10",
     "",
     0,
     7},
    {"no result yet, previous verdict down",
     0,
     {"192.0.2.10"},
     NULL,
     2,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     true,
     {ST_NONE},
     {0},
     0,
     false,
     true,
     "awaiting first probe",
     "192.0.2.10",
     "",
     0,
     -1},
    {"no result yet, no previous verdict: benefit of the doubt",
     0,
     {"192.0.2.10"},
     NULL,
     2,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     true,
     {ST_NONE},
     {0},
     -1,
     true,
     true,
     "2 ready endpoints; awaiting first probe",
     "192.0.2.10",
     "",
     0,
     -1},
    {"API unreachable, nothing ready as last known, probe up",
     0,
     {"192.0.2.10"},
     NULL,
     0,
     0,
     NULL,
     false,
     HC_API_UNREACHABLE,
     150,
     true,
     {ST_UP},
     {5},
     -1,
     true,
     false,
     "0 ready endpoints; probe ok (5.0 ms); API unreachable for 2 min; last known data",
     "192.0.2.10",
     "",
     0,
     5},
    {"API stale, no probes",
     0,
     {"192.0.2.10"},
     NULL,
     1,
     0,
     NULL,
     false,
     HC_API_STALE,
     40,
     false,
     {ST_NONE},
     {0},
     -1,
     true,
     false,
     "1 ready endpoint; load balancer 192.0.2.10; API data stale for 30 s; last known data",
     "192.0.2.10",
     "",
     0,
     -1},
    {"hostname-only LB: a CNAME, no addresses",
     0,
     {NULL},
     "lb.example.com",
     2,
     0,
     NULL,
     false,
     HC_API_OK,
     0,
     false,
     {ST_NONE},
     {0},
     -1,
     true,
     false,
     "2 ready endpoints; load balancer lb.example.com",
     "",
     "",
     0,
     -1},
    {"proxy mode with a ready node",
     1,
     {"192.0.2.99"},
     NULL,
     2,
     0,
     "10.0.0.5",
     true,
     HC_API_OK,
     0,
     false,
     {ST_NONE},
     {0},
     -1,
     true,
     false,
     "2 ready endpoints; via proxy 198.51.100.7",
     "198.51.100.7",
     "10.0.0.5:30080",
     0,
     -1},
    {"proxy mode, the node not ready",
     1,
     {NULL},
     NULL,
     2,
     0,
     "10.0.0.5",
     false,
     HC_API_OK,
     0,
     false,
     {ST_NONE},
     {0},
     -1,
     false,
     false,
     "2 ready endpoints; no ready node with a nodePort",
     "198.51.100.7",
     "",
     0,
     -1},
    {"proxy mode, the node's address refused",
     1,
     {NULL},
     NULL,
     2,
     0,
     "0.0.0.0",
     true,
     HC_API_OK,
     0,
     false,
     {ST_NONE},
     {0},
     -1,
     false,
     false,
     "2 ready endpoints; no ready node with a nodePort",
     "198.51.100.7",
     "",
     1,
     -1},
};

static void set_status(struct hc_probe_status *st, enum st_kind k, double rtt)
{
    *st = (struct hc_probe_status){.rise = 2, .fall = 3, .rtt_ms = -1};
    switch (k) {
    case ST_UP:
        st->verdict = HC_PROBE_UP;
        st->last_ok = true;
        st->streak = 5;
        st->rtt_ms = rtt;
        break;
    case ST_DOWN:
        st->verdict = HC_PROBE_DOWN;
        st->streak = 3;
        snprintf(st->last_error, sizeof(st->last_error), "connection refused");
        break;
    case ST_DOWN_PENDING:
        st->verdict = HC_PROBE_UP;
        st->pending = true;
        st->streak = 1;
        st->rtt_ms = rtt;
        snprintf(st->last_error, sizeof(st->last_error), "timeout");
        break;
    case ST_NONE:
        break;
    }
}

/* "a,b" of the answered addresses (@ep), else of @v. */
static void join(char *buf, size_t cap, const struct hc_endpoint *ep, char **v, size_t n)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; ep != NULL && i < ep->addr_count; i++) {
        if (ep->addrs[i].answered)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", used > 0 ? "," : "",
                                     ep->addrs[i].address);
    }
    for (size_t i = 0; ep == NULL && i < n; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%s", used > 0 ? "," : "", v[i]);
}

static void test_reconcile_table(void **state)
{
    struct fx *f = *state;

    for (size_t c = 0; c < sizeof(rec_cases) / sizeof(rec_cases[0]); c++) {
        const struct rec_case *k = &rec_cases[c];
        char ipbuf[3][64], hostbuf[64], nodebuf[64], got[256];
        char *ips[3], *hosts[1] = {hostbuf};
        struct hc_k8s_port port = {.port = 80, .node_port = 30080, .is_tcp = true};
        struct hc_k8s_svc svc = {
            .ports = &port, .port_count = 1, .lb_ips = ips, .lb_hostnames = hosts};
        struct hc_k8s_obj node = {.kind = HC_K8S_NODE};
        const struct hc_k8s_obj *nodes[1] = {&node};
        struct hc_probe_status st[3];
        struct hc_endpoint ep;
        struct hc_endpoint_in in = {.conf = f->conf,
                                    .member = k->member,
                                    .csvc = &f->conf->services[0],
                                    .svc = &svc,
                                    .ready_v4 = k->v4,
                                    .ready_v6 = k->v6,
                                    .nodes = nodes,
                                    .node_count = k->node_ip != NULL ? 1 : 0,
                                    .api = k->api,
                                    .now = 100000,
                                    .bad_since = k->api != HC_API_OK ? 100000 - k->down_for_s : 0,
                                    .previous_healthy = k->previous,
                                    .probes = k->probes};

        for (size_t i = 0; i < 3 && k->lb_ips[i] != NULL; i++) {
            snprintf(ipbuf[i], sizeof(ipbuf[i]), "%s", k->lb_ips[i]);
            ips[i] = ipbuf[i];
            svc.lb_ip_count++;
        }
        if (k->hostname != NULL) {
            snprintf(hostbuf, sizeof(hostbuf), "%s", k->hostname);
            svc.lb_hostname_count = 1;
        }
        if (k->node_ip != NULL) {
            snprintf(nodebuf, sizeof(nodebuf), "%s", k->node_ip);
            node.u.node = (struct hc_k8s_node){.ready = k->node_ready, .internal_ip = nodebuf};
        }
        assert_int_equal(hc_endpoint_prepare(&in, &ep), CM_OK);
        for (size_t i = 0; i < ep.addr_count && i < 3; i++) {
            set_status(&st[i], k->st[i], k->rtt[i]);
            ep.addrs[i].st = k->probes && k->st[i] != ST_NONE ? &st[i] : NULL;
        }
        hc_endpoint_judge(&in, &ep);
        if (ep.healthy != k->healthy || ep.pending != k->pending || strcmp(ep.reason, k->reason))
            fail_msg("%s: healthy %d pending %d reason \"%s\"; want %d %d \"%s\"", k->what,
                     ep.healthy, ep.pending, ep.reason, k->healthy, k->pending, k->reason);
        join(got, sizeof(got), &ep, NULL, 0);
        if (strcmp(got, k->answered) != 0)
            fail_msg("%s: addresses \"%s\", want \"%s\"", k->what, got, k->answered);
        join(got, sizeof(got), NULL, ep.backends, ep.backend_count);
        if (strcmp(got, k->backends) != 0)
            fail_msg("%s: backends \"%s\", want \"%s\"", k->what, got, k->backends);
        if (ep.refused_count != k->refused)
            fail_msg("%s: %zu refused, want %zu", k->what, ep.refused_count, k->refused);
        if ((k->rtt_ms < 0) != (ep.rtt_ms < 0) || (k->rtt_ms >= 0 && ep.rtt_ms != k->rtt_ms))
            fail_msg("%s: rtt %.2f, want %.2f", k->what, ep.rtt_ms, k->rtt_ms);
        hc_endpoint_fini(&ep);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_endpoint_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_services, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_annotations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_verdicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_seeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_decides_when_api_away, setup, teardown),
        cmocka_unit_test_setup_teardown(test_probe_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconcile_table, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
