/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_k8s.c -- Kubernetes JSON parsers and the watch line splitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "health/hc_k8s.h"
#include "tests/unit/unit_text.h"

#define SVC_JSON                                                                                   \
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"resourceVersion\":\"17\","        \
    "\"annotations\":{\"fedgslb.io/federate\":\"true\",\"fedgslb.io/health-path\":\"/hz\","        \
    "\"fedgslb.io/health-port\":\"8080\",\"fedgslb.io/weight\":\"0\","                             \
    "\"fedgslb.io/priority\":\"1001\"}},"                                                          \
    "\"spec\":{\"type\":\"LoadBalancer\",\"ports\":[{\"name\":\"http\",\"port\":80,"               \
    "\"protocol\":\"TCP\",\"nodePort\":30080},{\"port\":53,\"protocol\":\"UDP\"}]},"               \
    "\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"192.0.2.10\"},{\"ip\":\"bogus\"},"       \
    "{\"hostname\":\"lb.example\"},{\"ip\":\"2001:db8::1\"}]}}}"

static void test_service(void **state)
{
    const char *line = "{\"type\":\"ADDED\",\"object\":" SVC_JSON "}";
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];
    const struct hc_k8s_svc *s;

    (void)state;
    assert_int_equal(hc_k8s_event_parse(line, strlen(line), HC_K8S_SERVICE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(ev.type, HC_K8S_ADDED);
    assert_string_equal(ev.resource_version, "17");
    assert_string_equal(ev.obj->ns, "default");
    assert_string_equal(ev.obj->name, "web");
    s = &ev.obj->u.svc;
    assert_string_equal(s->type, "LoadBalancer");
    assert_int_equal(s->port_count, 2);
    assert_int_equal(s->ports[0].port, 80);
    assert_int_equal(s->ports[0].node_port, 30080);
    assert_true(s->ports[0].is_tcp);
    assert_false(s->ports[1].is_tcp);
    assert_int_equal(s->lb_ip_count, 2); /* "bogus" dropped */
    assert_string_equal(s->lb_ips[0], "192.0.2.10");
    assert_string_equal(s->lb_ips[1], "2001:db8::1");
    assert_int_equal(s->lb_hostname_count, 1);
    assert_string_equal(s->lb_hostnames[0], "lb.example");
    assert_true(s->federate);
    assert_string_equal(s->health_path, "/hz");
    assert_int_equal(s->health_port, 8080);
    /* Traffic policy: weight 0 (standby) is a value; priority 1001 is out of range: none. */
    assert_true(s->has_weight);
    assert_int_equal(s->weight, 0);
    assert_false(s->has_priority);
    hc_k8s_event_fini(&ev);
}

static void test_service_minimal_and_bad(void **state)
{
    const char *ok = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
                     "\"namespace\":\"n\",\"annotations\":{\"fedgslb.io/federate\":\"yes\"}}}}";
    const char *bad_port = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
                           "\"namespace\":\"n\"},\"spec\":{\"ports\":[{\"port\":70000}]}}}";
    const char *no_ns = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}";
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    assert_int_equal(hc_k8s_event_parse(ok, strlen(ok), HC_K8S_SERVICE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(ev.type, HC_K8S_MODIFIED);
    assert_false(ev.obj->u.svc.federate);
    assert_false(ev.obj->u.svc.has_weight);
    assert_false(ev.obj->u.svc.has_priority);
    assert_null(ev.resource_version);
    assert_int_equal(ev.obj->u.svc.port_count, 0);
    hc_k8s_event_fini(&ev);
    assert_int_equal(
        hc_k8s_event_parse(bad_port, strlen(bad_port), HC_K8S_SERVICE, &ev, err, sizeof(err)),
        CM_EPARSE);
    assert_non_null(strstr(err, "spec.ports[0]"));
    assert_int_equal(
        hc_k8s_event_parse(no_ns, strlen(no_ns), HC_K8S_SERVICE, &ev, err, sizeof(err)), CM_EPARSE);
    assert_non_null(strstr(err, "namespace"));
}

static void test_slice(void **state)
{
    const char *line =
        "{\"type\":\"ADDED\",\"object\":{\"addressType\":\"IPv6\",\"metadata\":{\"name\":\"web-x\","
        "\"namespace\":\"default\",\"labels\":{\"kubernetes.io/service-name\":\"web\"}},"
        "\"endpoints\":[{\"addresses\":[\"fd00::1\"],\"conditions\":{\"ready\":true}},"
        "{\"addresses\":[\"fd00::2\"],\"conditions\":{\"ready\":false}},"
        "{\"addresses\":[\"fd00::3\"],\"conditions\":{}},"
        "{\"addresses\":[\"fd00::4\"]}]}}";
    const char *empty = "{\"type\":\"ADDED\",\"object\":{\"addressType\":\"IPv4\",\"metadata\":"
                        "{\"name\":\"e\",\"namespace\":\"d\"},\"endpoints\":null}}";
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    assert_int_equal(hc_k8s_event_parse(line, strlen(line), HC_K8S_SLICE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_string_equal(ev.obj->u.slice.service, "web");
    assert_int_equal(ev.obj->u.slice.family, HC_K8S_IPV6);
    assert_int_equal(ev.obj->u.slice.ready, 3); /* absent ready = ready */
    assert_int_equal(ev.obj->u.slice.not_ready, 1);
    hc_k8s_event_fini(&ev);
    assert_int_equal(hc_k8s_event_parse(empty, strlen(empty), HC_K8S_SLICE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_null(ev.obj->u.slice.service);
    assert_int_equal(ev.obj->u.slice.family, HC_K8S_IPV4);
    assert_int_equal(ev.obj->u.slice.ready, 0);
    hc_k8s_event_fini(&ev);
}

static void test_node(void **state)
{
    const char *line =
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"n1\",\"resourceVersion\":"
        "\"9\"},"
        "\"status\":{\"conditions\":[{\"type\":\"MemoryPressure\",\"status\":\"False\"},"
        "{\"type\":\"Ready\",\"status\":\"True\"}],\"addresses\":[{\"type\":\"Hostname\","
        "\"address\":\"n1\"},{\"type\":\"InternalIP\",\"address\":\"10.0.0.5\"},"
        "{\"type\":\"ExternalIP\",\"address\":\"198.51.100.5\"}]}}}";
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    assert_int_equal(hc_k8s_event_parse(line, strlen(line), HC_K8S_NODE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_null(ev.obj->ns);
    assert_true(ev.obj->u.node.ready);
    assert_string_equal(ev.obj->u.node.internal_ip, "10.0.0.5");
    assert_string_equal(ev.obj->u.node.external_ip, "198.51.100.5");
    hc_k8s_event_fini(&ev);
}

static void test_bookmark_error_garbage(void **state)
{
    const char *bm = "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Service\",\"metadata\":"
                     "{\"resourceVersion\":\"12345\"}}}";
    const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
                       "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}";
    const char *bad[] = {
        "{\"type\":\"ADDED\"",                   /* truncated */
        "{\"type\":\"NOPE\",\"object\":{}}",     /* unknown type */
        "{\"object\":{}}",                       /* no type */
        "[1,2,3]",                               /* not an object */
        "{\"type\":\"ADDED\",\"object\":5}",     /* object not an object */
        "{\"type\":\"BOOKMARK\",\"object\":{}}", /* bookmark without RV */
        "\x01\x02garbage",
    };
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    assert_int_equal(hc_k8s_event_parse(bm, strlen(bm), HC_K8S_SERVICE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(ev.type, HC_K8S_BOOKMARK);
    assert_null(ev.obj);
    assert_string_equal(ev.resource_version, "12345");
    hc_k8s_event_fini(&ev);
    assert_int_equal(hc_k8s_event_parse(gone, strlen(gone), HC_K8S_SERVICE, &ev, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(ev.type, HC_K8S_ERROR);
    assert_int_equal(ev.code, 410);
    assert_string_equal(ev.message, "too old resource version");
    hc_k8s_event_fini(&ev);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            hc_k8s_event_parse(bad[i], strlen(bad[i]), HC_K8S_SERVICE, &ev, err, sizeof(err)),
            CM_EPARSE);
        assert_true(err[0] != '\0');
        assert_null(ev.obj);
    }
}

/* Bug found by fuzz_hc_k8s: a BOOKMARK whose resourceVersion is not a string
 * failed with CM_EPARSE but no reason, so the watcher logged "garbage in
 * watch stream: " with nothing after it. */
static void test_bug_bookmark_rv_not_string_has_reason(void **state)
{
    const char *bad[] = {
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":12345}}}",
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":{}}}}",
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":true}}}",
    };
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(
            hc_k8s_event_parse(bad[i], strlen(bad[i]), HC_K8S_SLICE, &ev, err, sizeof(err)),
            CM_EPARSE);
        assert_non_null(strstr(err, "resourceVersion"));
        assert_null(ev.obj);
        assert_null(ev.resource_version);
    }
}

/* The reader (cm_jscan): "object" may come before "type"; keys are compared
 * decoded; what is skipped is still checked; a key read twice is refused. */
static void test_reader(void **state)
{
    static const char *const bad[] = {
        /* a name twice: which one counts would be up to the parser */
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"name\":\"b\","
        "\"namespace\":\"default\"}}}",
        "{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{}}",
        /* bug: the second namespace dropped the first one without freeing it (ASan) */
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\","
        "\"namespace\":null}}}",
        /* invalid UTF-8 in a field nobody reads */
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\","
        "\"uid\":\"\xc0\x80\"}}}",
        /* trailing garbage */
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"namespace\":\"d\"}}} x",
    };
    const char *later = "{\"object\":{\"metadata\":{\"n\\u0061me\":\"w\",\"namespace\":"
                        "\"default\",\"resourceVersion\":\"9\",\"managedFields\":[{\"f\":{\"g\":"
                        "[1,2.5,null,true]}}]},\"spec\":{\"ports\":[{\"port\":80}]}},"
                        "\"type\":\"MODIFIED\"}";
    struct hc_k8s_event ev;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    assert_int_equal(
        hc_k8s_event_parse(later, strlen(later), HC_K8S_SERVICE, &ev, err, sizeof(err)), CM_OK);
    assert_int_equal(ev.type, HC_K8S_MODIFIED);
    assert_string_equal(ev.obj->name, "w");
    assert_string_equal(ev.resource_version, "9");
    assert_int_equal(ev.obj->u.svc.port_count, 1);
    hc_k8s_event_fini(&ev);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (hc_k8s_event_parse(bad[i], strlen(bad[i]), HC_K8S_SERVICE, &ev, err, sizeof(err)) !=
            CM_EPARSE)
            fail_msg("bad[%zu] accepted", i);
        assert_true(err[0] != '\0');
        assert_null(ev.obj);
    }
}

/* @squoted (JSON with ' for ") parsed as a list page (@list) or a watch event
 * of @kind, freed again; the parser's code, its message in @err. */
static int parse_sq(enum hc_k8s_kind kind, bool list, const char *squoted, char *err, size_t errlen)
{
    char *text = unit_dq(squoted);
    int rc;

    err[0] = '\0';
    if (list) {
        struct hc_k8s_list l;

        rc = hc_k8s_list_parse(text, strlen(text), kind, &l, err, errlen);
        if (rc == CM_OK)
            hc_k8s_list_fini(&l);
    } else {
        struct hc_k8s_event ev;

        rc = hc_k8s_event_parse(text, strlen(text), kind, &ev, err, errlen);
        if (rc == CM_OK)
            hc_k8s_event_fini(&ev);
    }
    free(text);
    return rc;
}

/* A key the reader looks for, twice in its object, is refused wherever it is
 * read: loadBalancer and ingress in a Service's status, conditions and ready
 * in a slice's endpoint, conditions and addresses in a Node's status, a
 * BOOKMARK's resourceVersion, a list's resourceVersion and continue. */
static void test_reader_key_twice(void **state)
{
    static const struct {
        enum hc_k8s_kind kind;
        bool list;
        const char *text;
    } bad[] = {
        {HC_K8S_SERVICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d'},"
         "'status':{'loadBalancer':{},'loadBalancer':{}}}}"},
        {HC_K8S_SERVICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d'},"
         "'status':{'loadBalancer':{'ingress':[],'ingress':null}}}}"},
        {HC_K8S_SLICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d',"
         "'labels':{'kubernetes.io/service-name':'s'}},'addressType':'IPv4',"
         "'endpoints':[{'addresses':['10.0.0.1'],'conditions':{},'conditions':{}}]}}"},
        {HC_K8S_SLICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d',"
         "'labels':{'kubernetes.io/service-name':'s'}},'addressType':'IPv4',"
         "'endpoints':[{'addresses':['10.0.0.1'],'conditions':{'ready':true,'ready':false}}]}}"},
        {HC_K8S_SLICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d',"
         "'labels':{'kubernetes.io/service-name':'s','kubernetes.io/service-name':'t'}},"
         "'addressType':'IPv4','endpoints':[]}}"},
        {HC_K8S_NODE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'n'},"
         "'status':{'conditions':[],'conditions':[]}}}"},
        {HC_K8S_NODE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'n'},"
         "'status':{'addresses':[],'conditions':[],'addresses':[]}}}"},
        {HC_K8S_SERVICE, false,
         "{'type':'BOOKMARK','object':{'metadata':{'resourceVersion':'1','resourceVersion':'2'}}}"},
        {HC_K8S_SERVICE, false,
         "{'type':'BOOKMARK','object':{'metadata':{'resourceVersion':'1'},'metadata':{}}}"},
        {HC_K8S_SERVICE, true,
         "{'metadata':{'resourceVersion':'1','resourceVersion':'2'},'items':[]}"},
        {HC_K8S_SERVICE, true, "{'metadata':{'continue':'a','continue':''},'items':[]}"},
    };
    char err[HC_K8S_ERR_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_sq(bad[i].kind, bad[i].list, bad[i].text, err, sizeof(err));

        /* "twice": refused for the duplicate, not for something else */
        if (rc != CM_EPARSE || strstr(err, "twice") == NULL)
            fail_msg("bad[%zu]: %s (%s)", i, cm_strerror(rc), err);
    }
}

/* A list the reader walks (spec.ports, status.loadBalancer.ingress, a slice's
 * endpoints, a list's items) may be null (nothing in it); anything else but
 * an array is refused, naming the path. */
static void test_reader_not_an_array(void **state)
{
    static const struct {
        enum hc_k8s_kind kind;
        bool list;
        const char *pre, *post, *path; /* the text around the value */
    } cases[] = {
        {HC_K8S_SERVICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d'},"
         "'spec':{'ports':",
         "}}}", "spec.ports"},
        {HC_K8S_SERVICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d'},"
         "'status':{'loadBalancer':{'ingress':",
         "}}}}", "status.loadBalancer.ingress"},
        {HC_K8S_SLICE, false,
         "{'type':'ADDED','object':{'metadata':{'name':'a','namespace':'d',"
         "'labels':{'kubernetes.io/service-name':'s'}},'addressType':'IPv4','endpoints':",
         "}}", "endpoints"},
        {HC_K8S_SERVICE, true, "{'metadata':{'resourceVersion':'1'},'items':", "}", "items"},
    };
    static const char *const values[] = {"null", "{}", "'x'", "1"};
    char err[HC_K8S_ERR_MAX], line[512];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
            int rc;

            snprintf(line, sizeof(line), "%s%s%s", cases[i].pre, values[v], cases[i].post);
            rc = parse_sq(cases[i].kind, cases[i].list, line, err, sizeof(err));
            if (v == 0 ? rc != CM_OK
                       : rc != CM_EPARSE || strstr(err, cases[i].path) == NULL ||
                             strstr(err, "not an array") == NULL)
                fail_msg("%s = %s: %s (%s)", cases[i].path, values[v], cm_strerror(rc), err);
        }
    }
}

static void test_list(void **state)
{
    const char *body = "{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"100\","
                       "\"continue\":\"tok/+=\"},\"items\":[" SVC_JSON ","
                       "{\"metadata\":{\"name\":\"b\",\"namespace\":\"x\"}}]}";
    const char *last =
        "{\"metadata\":{\"resourceVersion\":\"101\",\"continue\":\"\"},\"items\":[]}";
    const char *bad = "{\"metadata\":{},\"items\":[{\"metadata\":{\"namespace\":\"x\"}}]}";
    struct hc_k8s_list l;
    char err[HC_K8S_ERR_MAX];

    (void)state;
    assert_int_equal(hc_k8s_list_parse(body, strlen(body), HC_K8S_SERVICE, &l, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.resource_version, "100");
    assert_string_equal(l.continue_token, "tok/+=");
    assert_string_equal(l.items[1]->name, "b");
    hc_k8s_list_fini(&l);
    assert_int_equal(hc_k8s_list_parse(last, strlen(last), HC_K8S_SERVICE, &l, err, sizeof(err)),
                     CM_OK);
    assert_null(l.continue_token);
    assert_int_equal(l.count, 0);
    hc_k8s_list_fini(&l);
    assert_int_equal(hc_k8s_list_parse(bad, strlen(bad), HC_K8S_SERVICE, &l, err, sizeof(err)),
                     CM_EPARSE);
    assert_non_null(strstr(err, "items[0]"));
    assert_int_equal(hc_k8s_list_parse("{{{", 3, HC_K8S_SERVICE, &l, err, sizeof(err)), CM_EPARSE);
}

static void test_status(void **state)
{
    const char *b = "{\"kind\":\"Status\",\"code\":401,\"message\":\"Unauthorized\"}";
    char msg[8];

    (void)state;
    assert_int_equal(hc_k8s_status_parse(b, strlen(b), msg, sizeof(msg)), 401);
    assert_string_equal(msg, "Unautho");
    assert_int_equal(hc_k8s_status_parse("x", 1, msg, sizeof(msg)), 0);
    assert_string_equal(msg, "");
}

/* ---- splitter ---- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service),
        cmocka_unit_test(test_service_minimal_and_bad),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_node),
        cmocka_unit_test(test_bookmark_error_garbage),
        cmocka_unit_test(test_bug_bookmark_rv_not_string_has_reason),
        cmocka_unit_test(test_reader),
        cmocka_unit_test(test_reader_key_twice),
        cmocka_unit_test(test_reader_not_an_array),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_status),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
