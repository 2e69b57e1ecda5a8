/* SPDX-License-Identifier: Apache-2.0 */
/* test_ctl_render.c -- the status model and tables built from dnsd's replies,
 * the answer cells, explain's text, and the URL helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "ctl/ctl_http.h"
#include "ctl/ctl_render.h"
#include "tests/unit/unit_text.h"

/* JSON written with ' for " to stay readable. */
static json_t *j(const char *squoted)
{
    return unit_json(squoted);
}

/* dnsd's GET /v1/state: eu reports usa with a service RTT, us only a member RTT. */
static const char state_text[] =
    "{'version': 1, 'vantages': {"
    " 'eu-west-1': {'vantage': 'eu-west-1', 'members': {'usa': {'rtt_ms': 70.0}},"
    "   'services': {'default/web': {'members': {'usa': {'rtt_ms': 71.25, 'healthy': true},"
    "                                            'eur': {'rtt_ms': 1.0, 'healthy': false}}}}},"
    " 'us-east-1': {'vantage': 'us-east-1', 'members': {'usa': {'rtt_ms': 1.5}},"
    "   'services': {'default/web': {'members': {'usa': {'healthy': true}}}}}},"
    " 'merged': {}, 'drained': ['usa'], 'view_serial': 9}";

static const char answers_text[] =
    "{'view_serial': 9, 'services': {'default/web': {'configured': true,"
    " 'members': {"
    "  'usa': {'present': true, 'healthy': true, 'votes_up': 2, 'votes_down': 0,"
    "          'pending': false, 'drained': true, 'ready_endpoints': 3, 'reason': 'probe ok',"
    "          'eligible': false, 'excluded': 'drained'},"
    "  'eur': {'present': true, 'healthy': false, 'votes_up': 0, 'votes_down': 1,"
    "          'pending': true, 'drained': false, 'ready_endpoints': 0,"
    "          'reason': 'probe 3/3 failed', 'eligible': false, 'excluded': 'unhealthy'}},"
    " 'regions': {"
    "  'us-east-1': {'rule': 'all down: fail-open', 'chosen': ['usa', 'eur'], 'member': null,"
    "                'cname': null, 'fail_open': true, 'ttl': 5},"
    "  'eu-west-1': {'rule': 'best latency', 'chosen': ['usa'], 'member': 'usa',"
    "                'cname': null, 'fail_open': false, 'ttl': 30}}}}}";

static json_t *model_fixture(void)
{
    json_t *state = j(state_text), *answers = j(answers_text), *model;
    char err[256] = "";

    model = ctl_status_model(state, answers, "http://127.0.0.1:9153", err, sizeof(err));
    if (model == NULL)
        fail_msg("model: %s", err);
    json_decref(state);
    json_decref(answers);
    return model;
}

static void test_status_model(void **state)
{
    json_t *model = model_fixture();
    json_t *svc = json_array_get(json_object_get(model, "services"), 0);
    json_t *usa = json_array_get(json_object_get(svc, "members"), 0);
    json_t *eur = json_array_get(json_object_get(svc, "members"), 1);
    json_t *rtt = json_object_get(usa, "rtt_ms");
    json_t *ans = json_object_get(svc, "answers");

    (void)state;
    /* vantages in region order: us-east-1 first although eu-west-1 came first */
    assert_string_equal(json_string_value(json_array_get(json_object_get(model, "vantages"), 0)),
                        "us-east-1");
    assert_int_equal(json_integer_value(json_object_get(model, "view_serial")), 9);
    assert_string_equal(json_string_value(json_object_get(svc, "service")), "default/web");
    assert_string_equal(json_string_value(json_object_get(usa, "member")), "usa");
    assert_true(json_is_true(json_object_get(usa, "draining")));
    /* the service RTT wins over the member RTT; the member RTT is the fallback */
    assert_true(json_number_value(json_object_get(rtt, "eu-west-1")) == 71.25);
    assert_true(json_number_value(json_object_get(rtt, "us-east-1")) == 1.5);
    /* eur: no RTT at all from us-east-1 */
    assert_true(json_is_null(json_object_get(json_object_get(eur, "rtt_ms"), "us-east-1")));
    assert_true(json_is_true(json_object_get(eur, "pending")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ans, "us-east-1"), "text")), "fail-open");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(ans, "eu-west-1"), "text")), "usa");
    json_decref(model);
}

static void test_status_text(void **state)
{
    json_t *model = model_fixture();
    struct cm_buf b;
    const char *t;

    (void)state;
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(ctl_status_text(model, &b), CM_OK);
    t = cm_buf_cstr(&b);
    assert_non_null(
        strstr(t, "dnsd http://127.0.0.1:9153, view 9, vantages: us-east-1 eu-west-1\n"));
    assert_non_null(strstr(t, "SERVICE      MEMBER  HEALTHY  VOTES  RTT:us-east-1  "
                              "RTT:eu-west-1  READY  FLAGS     REASON\n"));
    assert_non_null(strstr(t, "default/web  usa     yes      2/0    1.5            71.2"));
    assert_non_null(strstr(t, "draining  probe ok\n"));
    assert_non_null(strstr(t, "default/web  eur     no       0/1    -              1.0  "));
    assert_non_null(strstr(t, "pending   probe 3/3 failed\n"));
    assert_non_null(strstr(t, "SERVICE      us-east-1  eu-west-1\n"
                              "default/web  fail-open  usa\n"));
    cm_buf_fini(&b);
    json_decref(model);
}

static void test_status_model_rejects_garbage(void **state)
{
    json_t *state_doc = j("{'vantages': {}}"), *bad = j("{'error': 'x'}");
    char err[256] = "";

    (void)state;
    assert_null(ctl_status_model(state_doc, bad, "u", err, sizeof(err)));
    assert_non_null(strstr(err, "/v1/answers"));
    assert_null(ctl_status_model(bad, bad, "u", err, sizeof(err)));
    json_decref(state_doc);
    json_decref(bad);
}

static void test_answer_cells(void **state)
{
    static const struct {
        const char *json;
        const char *cell;
    } cases[] = {
        {"{'member': 'eur', 'chosen': ['eur'], 'fail_open': false}", "eur"},
        {"{'member': null, 'chosen': ['eur', 'usa'], 'fail_open': false}", "eur|usa"},
        {"{'member': null, 'chosen': ['eur', 'usa'], 'fail_open': true}", "fail-open"},
        {"{'member': null, 'chosen': [], 'fail_open': false}", "fail-closed"},
        {"{'member': null, 'chosen': [], 'cname': 'sorry.x', 'fail_open': false}", "sorry:sorry.x"},
    };
    char buf[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *a = j(cases[i].json);

        assert_string_equal(ctl_answer_cell(a, buf, sizeof(buf)), cases[i].cell);
        json_decref(a);
    }
}

static void test_explain_text(void **state)
{
    json_t *doc =
        j("{'name': 'web.default.f.svc.z', 'client': {'address': '10.2.0.0', 'ecs_prefix': 24,"
          " 'region': 'eu-west-1', 'how': 'ECS client_networks', 'ecs_used': true},"
          " 'decision': {'level': 'global', 'service': 'default/web', 'configured': true,"
          "  'client_region': 'eu-west-1', 'candidates': ["
          "   {'member': 'usa', 'region': 'us-east-1', 'present': true, 'healthy': true,"
          "    'votes_up': 2, 'votes_down': 0, 'ready_endpoints': 3, 'candidate': true,"
          "    'excluded': null, 'rtt_ms': 71.0, 'rtt_source': 'measured', 'in_scope': true,"
          "    'rank': 2},"
          "   {'member': 'jpn', 'region': 'ap', 'present': true, 'healthy': false, 'votes_up': 0,"
          "    'votes_down': 2, 'ready_endpoints': 1, 'candidate': false, 'excluded': 'unhealthy',"
          "    'rtt_ms': 220.0, 'rtt_source': 'static', 'in_scope': true, 'rank': null},"
          "   {'member': 'eur', 'region': 'eu-west-1', 'present': true, 'healthy': true,"
          "    'votes_up': 2, 'votes_down': 0, 'ready_endpoints': 3, 'candidate': true,"
          "    'excluded': null, 'rtt_ms': 1.0, 'rtt_source': 'measured', 'in_scope': true,"
          "    'rank': 1}],"
          "  'decision': {'rule': 'best latency', 'chosen': ['eur'], 'selected': 'eur',"
          "               'cname': null, 'ttl': 30, 'ttl_reason': 'ttl_s'}},"
          " 'response': {'A': {'rcode': 'NOERROR', 'answer': ['web.default.f.svc.z.\\t30\\tIN\\tA"
          "\\t192.0.2.20'], 'fail_open': false},"
          "              'AAAA': {'rcode': 'NOERROR', 'answer': [], 'fail_open': false}}}");
    struct cm_buf b;
    const char *t, *eur, *usa, *jpn;

    (void)state;
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(ctl_explain_text(doc, &b), CM_OK);
    t = cm_buf_cstr(&b);
    assert_non_null(strstr(t, "(global name of service default/web)"));
    assert_non_null(
        strstr(t, "client  10.2.0.0/24 (ECS) -> region eu-west-1 (ECS client_networks)"));
    assert_non_null(strstr(t, "answer  eur  [best latency; ttl 30 s: ttl_s]"));
    eur = strstr(t, "\n1     eur");
    usa = strstr(t, "\n2     usa");
    jpn = strstr(t, "\n-     jpn");
    assert_non_null(eur);
    assert_non_null(usa);
    assert_non_null(jpn);
    assert_true(eur < usa && usa < jpn); /* rank order, unranked last */
    assert_non_null(strstr(t, "excluded: unhealthy\n"));
    assert_non_null(strstr(t, "web.default.f.svc.z. 30 IN A 192.0.2.20\n"));
    assert_non_null(strstr(t, "AAAA  NOERROR, no records\n"));
    cm_buf_fini(&b);
    json_decref(doc);
}

/* Every intent and policy that applied, in explain's text. */
static void test_explain_intents_and_policy(void **state)
{
    json_t *doc =
        j("{'name': 'web.default.f.svc.z', 'client': {'address': null, 'region': 'us-east-1',"
          " 'how': 'region parameter'},"
          " 'decision': {'level': 'global', 'service': 'default/web', 'configured': true,"
          "  'client_region': 'us-east-1', 'candidates': [],"
          "  'intents': [{'id': 'drain-eur-1-abcd', 'kind': 'drain', 'member': 'eur',"
          "    'author': 'alice', 'reason': 'kernel upgrade', 'created_at': '2026-11-21T06:00:00Z',"
          "    'expires_at': '2026-11-21T08:00:00Z'},"
          "   {'id': 'w-1', 'kind': 'weight', 'service': 'default/web', 'member': 'usb',"
          "    'weight': 0, 'author': 'bob', 'reason': 'standby', 'created_at': "
          "'2026-11-21T06:00:00Z'}],"
          "  'policy': ['usb weight 0 (intent w-1)', 'jpn priority 1 (config)'],"
          "  'decision': {'rule': 'best latency', 'chosen': ['usa'], 'selected': 'usa',"
          "   'cname': null, 'ttl': 30, 'ttl_reason': 'ttl_s', 'priority_group': 0,"
          "   'standby': false, 'own_region_only': true}},"
          " 'response': null}");
    struct cm_buf b;
    const char *t;

    (void)state;
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(ctl_explain_text(doc, &b), CM_OK);
    t = cm_buf_cstr(&b);
    assert_non_null(strstr(t, "intent  drain eur (drain-eur-1-abcd) by alice until "
                              "2026-11-21T08:00:00Z: kernel upgrade\n"));
    assert_non_null(strstr(t, "intent  weight usb 0 (w-1) by bob: standby\n"));
    assert_non_null(strstr(t, "policy  usb weight 0 (intent w-1)\n"));
    assert_non_null(strstr(t, "policy  jpn priority 1 (config)\n"));
    assert_non_null(strstr(t, "policy  members of the client's own region win"));
    assert_null(strstr(t, "priority group"));
    cm_buf_fini(&b);
    json_decref(doc);
}

static void test_explain_not_federated(void **state)
{
    json_t *doc = j("{'name': 'www.z', 'client': {'address': '::1', 'ecs_prefix': null,"
                    " 'region': 'r', 'how': 'default region'}, 'decision': null,"
                    " 'response': null}");
    struct cm_buf b;

    (void)state;
    cm_buf_init(&b, 1 << 20);
    assert_int_equal(ctl_explain_text(doc, &b), CM_OK);
    assert_non_null(strstr(cm_buf_cstr(&b), "not a federated name"));
    assert_non_null(strstr(cm_buf_cstr(&b), "no DNS response shown"));
    cm_buf_fini(&b);
    json_decref(doc);
}

static void test_url_helpers(void **state)
{
    char *u;

    (void)state;
    u = ctl_http_escape("a b/&=c");
    assert_string_equal(u, "a%20b%2F%26%3Dc");
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_model),
        cmocka_unit_test(test_status_text),
        cmocka_unit_test(test_status_model_rejects_garbage),
        cmocka_unit_test(test_answer_cells),
        cmocka_unit_test(test_explain_text),
        cmocka_unit_test(test_explain_not_federated),
        cmocka_unit_test(test_explain_intents_and_policy),
        cmocka_unit_test(test_url_helpers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
