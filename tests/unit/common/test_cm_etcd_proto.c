/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_etcd_proto.c -- etcd's JSON gateway as fedgslb reads and writes it.
 * The replies and watch lines below are what etcd 3.4.23 (Debian 12) sent to
 * curl on loopback (cluster and member ids shortened), plus the hostile
 * variants the parser must refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_base64.h"
#include "common/cm_err.h"
#include "common/cm_etcd_proto.h"

#define HDR                                                                                        \
    "\"header\":{\"cluster_id\":\"3249\",\"member_id\":\"3319\",\"revision\":\"%s\","              \
    "\"raft_term\":\"2\"}"

/* "/fedgslb/myfed/vantages/a" and {"x":1} in base64. */
#define KEY_A "L2ZlZGdzbGIvbXlmZWQvdmFudGFnZXMvYQ=="
#define VAL_A "eyJ4IjoxfQ=="
#define KEY_B "L2ZlZGdzbGIvbXlmZWQvdmFudGFnZXMvYg=="

static json_t *parse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    return j;
}

static void expect_b64(json_t *obj, const char *field, const char *want, size_t want_len)
{
    const char *s = json_string_value(json_object_get(obj, field));
    char *dec = NULL;
    size_t len = 0;

    assert_non_null(s);
    assert_int_equal(cm_base64_decode(s, strlen(s), &dec, &len), CM_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(dec, want, want_len);
    free(dec);
}

/* ---- bodies ---- */

static void test_prefix_end(void **state)
{
    size_t n = 0;
    char *e;

    (void)state;
    e = cm_etcd_prefix_end("/fedgslb/", 9, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(e, "/fedgslb0", 9);
    free(e);
    e = cm_etcd_prefix_end("a\xff\xff", 3, &n); /* 0xff bytes cannot grow: dropped */
    assert_int_equal(n, 1);
    assert_memory_equal(e, "b", 1);
    free(e);
    e = cm_etcd_prefix_end("\xff", 1, &n); /* nothing greater: "\0" = to the end */
    assert_int_equal(n, 1);
    assert_int_equal(e[0], '\0');
    free(e);
}

static void test_bodies(void **state)
{
    char *t;
    json_t *j, *c;

    (void)state;
    t = cm_etcd_body_range("/fedgslb/", 9, true, false);
    j = parse(t);
    expect_b64(j, "key", "/fedgslb/", 9);
    expect_b64(j, "range_end", "/fedgslb0", 9);
    assert_null(json_object_get(j, "count_only"));
    json_decref(j);
    free(t);

    t = cm_etcd_body_range("k", 1, false, true);
    j = parse(t);
    assert_null(json_object_get(j, "range_end"));
    assert_true(json_is_true(json_object_get(j, "count_only")));
    json_decref(j);
    free(t);

    t = cm_etcd_body_put("k", 1, "{\"v\":2}", 7, 2324035862000605703LL);
    j = parse(t);
    expect_b64(j, "value", "{\"v\":2}", 7);
    assert_string_equal(json_string_value(json_object_get(j, "lease")), "2324035862000605703");
    json_decref(j);
    free(t);

    t = cm_etcd_body_put("k", 1, "", 0, 0); /* no lease: no field */
    j = parse(t);
    assert_null(json_object_get(j, "lease"));
    assert_string_equal(json_string_value(json_object_get(j, "value")), "");
    json_decref(j);
    free(t);

    t = cm_etcd_body_watch("/p/", 3, 43);
    j = parse(t);
    c = json_object_get(j, "create_request");
    expect_b64(c, "key", "/p/", 3);
    expect_b64(c, "range_end", "/p0", 3);
    assert_string_equal(json_string_value(json_object_get(c, "start_revision")), "43");
    json_decref(j);
    free(t);

    t = cm_etcd_body_watch("/p/", 3, 0); /* from now */
    j = parse(t);
    assert_null(json_object_get(json_object_get(j, "create_request"), "start_revision"));
    json_decref(j);
    free(t);

    t = cm_etcd_body_lease_grant(30);
    assert_string_equal(t, "{\"TTL\":\"30\"}");
    free(t);
    t = cm_etcd_body_keepalive(77);
    assert_string_equal(t, "{\"ID\":\"77\"}");
    free(t);
    t = cm_etcd_body_auth("fed", "pw\"x");
    j = parse(t);
    assert_string_equal(json_string_value(json_object_get(j, "password")), "pw\"x");
    json_decref(j);
    free(t);
    t = cm_etcd_body_delete("k", 1, false);
    assert_non_null(strstr(t, "\"key\":\"aw==\""));
    free(t);
}

/* ---- unary replies ---- */

static void test_range(void **state)
{
    static const char ok[] =
        "{" HDR ",\"kvs\":[{\"key\":\"" KEY_A "\",\"create_revision\":\"2\",\"mod_revision\":"
        "\"5\",\"version\":\"3\",\"value\":\"" VAL_A "\",\"lease\":\"77\"}],\"count\":\"1\"}";
    struct cm_etcd_range r;
    char body[512], err[CM_ETCD_ERR_MAX];

    (void)state;
    snprintf(body, sizeof(body), ok, "9");
    assert_int_equal(cm_etcd_parse_range(body, strlen(body), &r, err, sizeof(err)), CM_OK);
    assert_int_equal(r.revision, 9);
    assert_int_equal(r.count, 1);
    assert_int_equal(r.total, 1);
    assert_false(r.more);
    assert_string_equal(r.kvs[0].key, "/fedgslb/myfed/vantages/a");
    assert_int_equal(r.kvs[0].key_len, strlen("/fedgslb/myfed/vantages/a"));
    assert_string_equal(r.kvs[0].value, "{\"x\":1}");
    assert_int_equal(r.kvs[0].mod_revision, 5);
    assert_int_equal(r.kvs[0].create_revision, 2);
    assert_int_equal(r.kvs[0].version, 3);
    assert_int_equal(r.kvs[0].lease, 77);
    cm_etcd_range_fini(&r);

    /* An empty range: etcd leaves "kvs" and "count" out. */
    snprintf(body, sizeof(body), "{" HDR "}", "12");
    assert_int_equal(cm_etcd_parse_range(body, strlen(body), &r, err, sizeof(err)), CM_OK);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.revision, 12);
    cm_etcd_range_fini(&r);

    /* Numbers instead of strings are accepted too. */
    snprintf(body, sizeof(body),
             "{\"header\":{\"revision\":14},\"kvs\":[{\"key\":\"" KEY_B
             "\",\"mod_revision\":13}]}");
    assert_int_equal(cm_etcd_parse_range(body, strlen(body), &r, err, sizeof(err)), CM_OK);
    assert_int_equal(r.kvs[0].mod_revision, 13);
    assert_string_equal(r.kvs[0].value, ""); /* no value: empty */
    cm_etcd_range_fini(&r);
}

static void test_range_refused(void **state)
{
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"", "not JSON"},
        {"[]", "not a JSON object"},
        {"{\"header\":{\"revision\":\"x9\"}}", "header.revision"},
        {"{\"header\":{\"revision\":\"-3\"}}", "negative"},
        {"{\"header\":{\"revision\":\"99999999999999999999\"}}", "64-bit"},
        {"{\"header\":{\"revision\":true}}", "not a number"},
        {"{\"header\":[]}", "header: not an object"},
        {"{\"kvs\":{}}", "kvs: not an array"},
        {"{\"kvs\":[7]}", "kvs[0]: kv: not an object"},
        {"{\"kvs\":[{}]}", "kvs[0]: kv: no key"},
        {"{\"kvs\":[{\"key\":\"!!!!\"}]}", "kvs[0]: key: invalid base64"},
        {"{\"kvs\":[{\"key\":\"\"}]}", "kvs[0]: kv: key of 0 bytes"},
        {"{\"kvs\":[{\"key\":\"" KEY_A "\",\"value\":5}]}", "kvs[0]: value: not a base64"},
        {"{\"kvs\":[{\"key\":\"" KEY_A "\",\"mod_revision\":\"1 \"}]}", "mod_revision"},
        {"{\"kvs\":[{\"key\":\"" KEY_A "\"},{\"key\":\"" KEY_A "\",\"version\":\"-1\"}]}",
         "kvs[1]: version: negative"},
        {"{\"count\":\"1\",\"count\":\"2\"}", "not JSON"}, /* duplicate keys */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cm_etcd_range r;
        char err[CM_ETCD_ERR_MAX] = "";

        print_message("%zu: %s\n", i, bad[i].body);
        assert_int_equal(
            cm_etcd_parse_range(bad[i].body, strlen(bad[i].body), &r, err, sizeof(err)), CM_EPARSE);
        assert_non_null(strstr(err, bad[i].why));
        assert_int_equal(r.count, 0);
        assert_null(r.kvs);
    }
}

static void test_errors(void **state)
{
    static const char denied[] = "{\"error\":\"etcdserver: permission denied\",\"message\":"
                                 "\"etcdserver: permission denied\",\"code\":7}";
    static const char token[] = "{\"error\":\"etcdserver: invalid auth token\",\"message\":"
                                "\"etcdserver: invalid auth token\",\"code\":16}";
    char msg[64];
    int code = -1;

    (void)state;
    assert_true(cm_etcd_reply_error(denied, strlen(denied), &code, msg, sizeof(msg)));
    assert_int_equal(code, CM_ETCD_CODE_PERMISSION_DENIED);
    assert_string_equal(msg, "etcdserver: permission denied");
    assert_true(cm_etcd_reply_error(token, strlen(token), &code, msg, sizeof(msg)));
    assert_int_equal(code, CM_ETCD_CODE_UNAUTHENTICATED);
    /* a message with control bytes stays one line, cut to the buffer */
    assert_true(cm_etcd_reply_error("{\"error\":\"a\\nb\\u0001c\"}", 23, &code, msg, 4));
    assert_int_equal(code, 0);
    assert_string_equal(msg, "a?b");
    /* not errors */
    assert_false(cm_etcd_reply_error("{\"header\":{}}", 13, &code, msg, sizeof(msg)));
    assert_false(cm_etcd_reply_error("Not Found\n", 10, &code, msg, sizeof(msg)));
    assert_false(cm_etcd_reply_error("{\"error\":{\"x\":1}}", 17, &code, msg, sizeof(msg)));
}

static void test_lease_auth_status(void **state)
{
    static const char grant[] = "{\"header\":{\"revision\":\"2\"},\"ID\":\"2324035862000605703\","
                                "\"TTL\":\"5\"}";
    static const char alive[] = "{\"result\":{\"header\":{\"revision\":\"4\"},\"ID\":\"77\","
                                "\"TTL\":\"5\"}}";
    static const char gone[] = "{\"result\":{\"header\":{\"revision\":\"4\"},\"ID\":\"123\"}}";
    static const char status[] =
        "{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"17237436991929493444\","
        "\"revision\":\"40\"},\"version\":\"3.4.23\",\"dbSize\":\"20480\","
        "\"leader\":\"17237436991929493444\",\"raftIndex\":\"77\","
        "\"raftTerm\":\"3\",\"raftAppliedIndex\":\"77\",\"dbSizeInUse\":\"20480\"}";
    struct cm_etcd_status st;
    char err[CM_ETCD_ERR_MAX], *tok = NULL;
    int64_t id, ttl, rev;

    (void)state;
    assert_int_equal(cm_etcd_parse_lease(grant, strlen(grant), &id, &ttl, err, sizeof(err)), CM_OK);
    assert_true(id == 2324035862000605703LL);
    assert_int_equal(ttl, 5);
    assert_int_equal(cm_etcd_parse_lease(alive, strlen(alive), &id, &ttl, err, sizeof(err)), CM_OK);
    assert_int_equal(id, 77);
    assert_int_equal(ttl, 5);
    /* a lease that no longer exists: TTL left out (0) */
    assert_int_equal(cm_etcd_parse_lease(gone, strlen(gone), &id, &ttl, err, sizeof(err)), CM_OK);
    assert_int_equal(id, 123);
    assert_int_equal(ttl, 0);
    assert_int_equal(cm_etcd_parse_lease("{\"TTL\":\"5\"}", 11, &id, &ttl, err, sizeof(err)),
                     CM_EPARSE);
    assert_non_null(strstr(err, "no lease ID"));
    assert_int_equal(cm_etcd_parse_lease("{\"result\":3}", 12, &id, &ttl, err, sizeof(err)),
                     CM_EPARSE);

    assert_int_equal(cm_etcd_parse_auth("{\"header\":{},\"token\":\"kuoAtMmaoOyGJJgP.24\"}", 43,
                                        &tok, err, sizeof(err)),
                     CM_OK);
    assert_string_equal(tok, "kuoAtMmaoOyGJJgP.24");
    free(tok);
    assert_int_equal(
        cm_etcd_parse_auth("{\"token\":\"a\\r\\nX-Evil: 1\"}", 26, &tok, err, sizeof(err)),
        CM_EPARSE); /* header injection */
    assert_null(tok);
    assert_int_equal(cm_etcd_parse_auth("{\"token\":\"\"}", 12, &tok, err, sizeof(err)), CM_EPARSE);
    /* a space would split the header value; DEL is no header byte either */
    assert_int_equal(cm_etcd_parse_auth("{\"token\":\"a b\"}", 15, &tok, err, sizeof(err)),
                     CM_EPARSE);
    assert_int_equal(cm_etcd_parse_auth("{\"token\":\"a\\u007f\"}", 20, &tok, err, sizeof(err)),
                     CM_EPARSE);

    assert_int_equal(cm_etcd_parse_status(status, strlen(status), &st, err, sizeof(err)), CM_OK);
    assert_string_equal(st.version, "3.4.23");
    /* member IDs use all 64 bits (etcd 3.4.23 gave this one) */
    assert_true(st.member_id == 17237436991929493444ull && st.leader == st.member_id);
    assert_int_equal(st.revision, 40);
    assert_int_equal(st.raft_index, 77);
    assert_int_equal(st.raft_term, 3);
    assert_int_equal(st.db_size, 20480);
    assert_string_equal(st.errors, "");

    assert_int_equal(
        cm_etcd_parse_revision("{\"header\":{\"revision\":\"8\"}}", 27, &rev, err, sizeof(err)),
        CM_OK);
    assert_int_equal(rev, 8);
}

/* ---- the watch stream ---- */

static void test_watch_messages(void **state)
{
    static const char created[] = "{\"result\":{\"header\":{\"revision\":\"2\"},\"created\":true}}";
    static const char events[] =
        "{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":["
        "{\"kv\":{\"key\":\"" KEY_B "\",\"create_revision\":\"3\",\"mod_revision\":\"3\","
        "\"version\":\"1\",\"value\":\"" VAL_A "\"}},"
        "{\"type\":\"DELETE\",\"kv\":{\"key\":\"" KEY_B "\",\"mod_revision\":\"4\"}}]}}";
    static const char progress[] = "{\"result\":{\"header\":{\"revision\":\"9\"}}}";
    static const char compacted[] = "{\"result\":{\"header\":{\"raft_term\":\"2\"},"
                                    "\"canceled\":true,\"compact_revision\":\"4\"}}";
    static const char unauth[] =
        "{\"result\":{\"header\":{\"revision\":\"6\"},\"watch_id\":\"-1\",\"created\":true,"
        "\"canceled\":true,\"cancel_reason\":\"rpc error: code = Unauthenticated desc = "
        "etcdserver: invalid auth token\"}}";
    static const char broken[] =
        "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\","
        "\"http_status\":\"Service Unavailable\"}}";
    struct cm_etcd_watch_msg m;
    char err[CM_ETCD_ERR_MAX];

    (void)state;
    assert_int_equal(cm_etcd_parse_watch(created, strlen(created), &m, err, sizeof(err)), CM_OK);
    assert_int_equal(m.kind, CM_ETCD_WATCH_CREATED);
    assert_int_equal(m.revision, 2);
    cm_etcd_watch_msg_fini(&m);

    assert_int_equal(cm_etcd_parse_watch(events, strlen(events), &m, err, sizeof(err)), CM_OK);
    assert_int_equal(m.kind, CM_ETCD_WATCH_EVENTS);
    assert_int_equal(m.revision, 4);
    assert_int_equal(m.count, 2);
    assert_int_equal(m.events[0].type, CM_ETCD_EVENT_PUT); /* no "type": PUT */
    assert_string_equal(m.events[0].kv.key, "/fedgslb/myfed/vantages/b");
    assert_string_equal(m.events[0].kv.value, "{\"x\":1}");
    assert_int_equal(m.events[0].kv.mod_revision, 3);
    assert_int_equal(m.events[1].type, CM_ETCD_EVENT_DELETE);
    assert_int_equal(m.events[1].kv.mod_revision, 4);
    assert_string_equal(m.events[1].kv.value, "");
    cm_etcd_watch_msg_fini(&m);

    assert_int_equal(cm_etcd_parse_watch(progress, strlen(progress), &m, err, sizeof(err)), CM_OK);
    assert_int_equal(m.kind, CM_ETCD_WATCH_EVENTS);
    assert_int_equal(m.count, 0);
    assert_int_equal(m.revision, 9);
    cm_etcd_watch_msg_fini(&m);

    assert_int_equal(cm_etcd_parse_watch(compacted, strlen(compacted), &m, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(m.kind, CM_ETCD_WATCH_CANCELED);
    assert_int_equal(m.compact_revision, 4);
    assert_int_equal(m.revision, 0);
    cm_etcd_watch_msg_fini(&m);

    /* created and canceled at once: the cancel wins, with the code named in the reason */
    assert_int_equal(cm_etcd_parse_watch(unauth, strlen(unauth), &m, err, sizeof(err)), CM_OK);
    assert_int_equal(m.kind, CM_ETCD_WATCH_CANCELED);
    assert_int_equal(m.code, CM_ETCD_CODE_UNAUTHENTICATED);
    assert_int_equal(m.compact_revision, 0);
    assert_non_null(strstr(m.reason, "invalid auth token"));
    cm_etcd_watch_msg_fini(&m);

    assert_int_equal(cm_etcd_parse_watch(broken, strlen(broken), &m, err, sizeof(err)), CM_OK);
    assert_int_equal(m.kind, CM_ETCD_WATCH_ERROR);
    assert_int_equal(m.code, CM_ETCD_CODE_UNAVAILABLE);
    assert_string_equal(m.reason, "transport is closing");
    cm_etcd_watch_msg_fini(&m);
}

static void test_watch_refused(void **state)
{
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"{", "not JSON"},
        {"{\"results\":{}}", "no \"result\" object"},
        {"{\"result\":[]}", "no \"result\" object"},
        {"{\"result\":{\"events\":{}}}", "events: not an array"},
        {"{\"result\":{\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":\"" KEY_A "\"}}]}}",
         "events[0]: type: not PUT or DELETE"},
        {"{\"result\":{\"events\":[{\"kv\":{\"key\":\"" KEY_A "\"}},{\"type\":\"DELETE\"}]}}",
         "events[1]: kv: not an object"},
        {"{\"result\":{\"events\":[\"x\"]}}", "events[0]: not an object"},
        {"{\"result\":{\"canceled\":true,\"compact_revision\":\"four\"}}", "compact_revision"},
        {"{\"error\":7}", "error: not an object"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cm_etcd_watch_msg m;
        char err[CM_ETCD_ERR_MAX] = "";

        print_message("%zu: %s\n", i, bad[i].line);
        assert_int_equal(
            cm_etcd_parse_watch(bad[i].line, strlen(bad[i].line), &m, err, sizeof(err)), CM_EPARSE);
        assert_non_null(strstr(err, bad[i].why));
        assert_int_equal(m.count, 0);
        assert_null(m.events);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_end),     cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_range),          cmocka_unit_test(test_range_refused),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_lease_auth_status),
        cmocka_unit_test(test_watch_messages), cmocka_unit_test(test_watch_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
