/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_watch.c -- the list+watch loop (health/hc_watch.h) against a
 * scripted Kubernetes API: an evhttp server on 127.0.0.1 that answers the
 * N-th request with script[N] and checks its URL. Each table row is one
 * script: list, paging, watch from the list's resourceVersion, events and
 * bookmarks moving it, 410 (HTTP and ERROR event) relisting at once,
 * continue-token expiry, errors backing off into a relist, a dropped stream
 * resuming the watch from the last resourceVersion.
 *
 * The last step of every script holds its request open; the loop runs until
 * that request has arrived, so nothing depends on elapsed time (backoff is
 * set to 1-2 ms only to keep the suite fast).
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "common/cm_err.h"
#include "health/hc_http.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_watch.h"

#define STEPS_MAX 8
#define LOG_MAX   512

/* What the server does with one request. */
enum act {
    REPLY = 0, /* status + body, done */
    STREAM,    /* 200, the body's lines as chunks, then the end of the stream */
    DROP,      /* 200, the body's lines as chunks, then the connection closed mid-stream */
    HOLD,      /* 200, headers only, kept open: the script ends here */
};

struct step {
    const char *want;   /* space-separated fragments the request URI must contain */
    const char *refuse; /* a fragment it must not contain, or NULL */
    enum act act;
    int status;       /* REPLY */
    const char *body; /* REPLY: the body; STREAM/DROP: lines, each ending in \n */
};

struct script_case {
    const char *what;
    uint32_t page_limit;
    struct step steps[STEPS_MAX];
    const char *want_log; /* callbacks: "sync N", "ADDED name", "ok", "err STATUS", by '|' */
    uint64_t lists, relists, events, bookmarks;
};

/* What a script's watcher watches: the kind, narrowed by hc_watch_scope(). */
struct scope {
    enum hc_k8s_kind kind;
    const char *ns;             /* NULL: every namespace */
    const char *field_selector; /* NULL: none */
};

struct fx {
    struct event_base *base;
    struct evhttp *http;
    int port;
    const struct script_case *sc;
    size_t served;
    struct evhttp_request *held;
    struct evhttp_connection *dropping; /* DROP: closed once its output is sent */
    struct event *drop_ev;
    struct hc_http *client;
    struct hc_kube_target *target;
    struct hc_watch *w;
    char log[LOG_MAX];
    char fail[256]; /* first URL mismatch, reported from the test */
};

/* ---- the scripted API server -------------------------------------------- */

static void check_uri(struct fx *f, const struct step *st, const char *uri)
{
    char frag[128];

    for (const char *p = st->want; p != NULL && *p != '\0';) {
        size_t len = strcspn(p, " ");
        snprintf(frag, sizeof(frag), "%.*s", (int)len, p);
        if (strstr(uri, frag) == NULL && f->fail[0] == '\0')
            snprintf(f->fail, sizeof(f->fail), "request %zu '%s' lacks '%s'", f->served, uri, frag);
        p += len + (p[len] == ' ');
    }
    if (st->refuse != NULL && strstr(uri, st->refuse) != NULL && f->fail[0] == '\0')
        snprintf(f->fail, sizeof(f->fail), "request %zu '%s' has '%s'", f->served, uri, st->refuse);
}

static void send_lines(struct evhttp_request *req, const char *body)
{
    for (const char *p = body; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
        struct evbuffer *b = evbuffer_new();

        assert_non_null(b);
        evbuffer_add(b, p, len);
        evhttp_send_reply_chunk(req, b);
        evbuffer_free(b);
        p += len;
    }
}

/* Closes the connection of a DROP step once its chunks have left. */
static void on_drop(evutil_socket_t fd, short what, void *arg)
{
    struct fx *f = arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(f->dropping);

    (void)fd;
    (void)what;
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        event_add(f->drop_ev, &(struct timeval){0, 1000});
        return;
    }
    evhttp_connection_free(f->dropping);
    f->dropping = NULL;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const struct step *st;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    if (f->served >= STEPS_MAX || f->sc->steps[f->served].want == NULL) {
        snprintf(f->fail, sizeof(f->fail), "request %zu after the script: %s", f->served,
                 evhttp_request_get_uri(req));
        evhttp_send_error(req, 500, NULL);
        return;
    }
    st = &f->sc->steps[f->served];
    check_uri(f, st, evhttp_request_get_uri(req));
    f->served++;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    switch (st->act) {
    case REPLY:
        evbuffer_add(out, st->body, strlen(st->body));
        evhttp_send_reply(req, st->status, NULL, NULL);
        break;
    case STREAM:
        evhttp_send_reply_start(req, 200, NULL);
        send_lines(req, st->body);
        evhttp_send_reply_end(req);
        break;
    case DROP:
        evhttp_send_reply_start(req, 200, NULL);
        send_lines(req, st->body);
        f->dropping = evhttp_request_get_connection(req);
        assert_non_null(f->drop_ev);
        event_add(f->drop_ev, &(struct timeval){0, 1000});
        break;
    case HOLD:
        evhttp_send_reply_start(req, 200, NULL);
        f->held = req;
        break;
    }
}

/* ---- the watcher's callbacks: a log ------------------------------------- */

static void log_add(struct fx *f, const char *item)
{
    size_t o = strlen(f->log);

    snprintf(f->log + o, sizeof(f->log) - o, "%s%s", o > 0 ? "|" : "", item);
}

static void on_sync(void *arg, enum hc_k8s_kind kind, struct hc_k8s_obj **objs, size_t count)
{
    char item[64];

    (void)kind;
    snprintf(item, sizeof(item), "sync %zu", count);
    log_add(arg, item);
    for (size_t i = 0; i < count; i++)
        hc_k8s_obj_free(objs[i]);
}

static void on_event(void *arg, enum hc_k8s_kind kind, enum hc_k8s_event_type type,
                     struct hc_k8s_obj *obj)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED"};
    char item[128];

    (void)kind;
    assert_true((size_t)type < 3);
    snprintf(item, sizeof(item), "%s %s", names[type], obj->name);
    log_add(arg, item);
    hc_k8s_obj_free(obj);
}

static void on_status(void *arg, enum hc_k8s_kind kind, bool ok, long http_status)
{
    char item[64];

    (void)kind;
    if (ok)
        snprintf(item, sizeof(item), "ok");
    else
        snprintf(item, sizeof(item), "err %ld", http_status);
    log_add(arg, item);
}

/* ---- running a script --------------------------------------------------- */

static void run_script(const struct script_case *sc, const struct scope *scope)
{
    struct fx f = {0};
    struct hc_watch_params p;
    struct hc_watch_cbs cbs = {on_sync, on_event, on_status, &f};
    struct hc_watch_stats st;
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char kc[512], err[256];
    size_t steps = 0;

    while (steps < STEPS_MAX && sc->steps[steps].want != NULL)
        steps++;
    assert_int_equal(sc->steps[steps - 1].act, HOLD);
    f.sc = sc;
    f.base = event_base_new();
    assert_non_null(f.base);
    f.http = evhttp_new(f.base);
    assert_non_null(f.http);
    evhttp_set_gencb(f.http, on_request, &f);
    f.drop_ev = evtimer_new(f.base, on_drop, &f);
    bs = evhttp_bind_socket_with_handle(f.http, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen),
                     0);
    f.port = ntohs(sin.sin_port);
    snprintf(kc, sizeof(kc),
             "apiVersion: v1\nkind: Config\ncurrent-context: m\n"
             "clusters:\n- name: m\n  cluster: {server: 'http://127.0.0.1:%d'}\n"
             "users:\n- name: m\n  user: {token: t}\n"
             "contexts:\n- name: m\n  context: {cluster: m, user: m}\n",
             f.port);
    if (hc_kubeconfig_load_mem("kc", kc, strlen(kc), NULL, HC_KUBECONFIG_NO_FILES, &f.target, err,
                               sizeof(err)) != CM_OK)
        fail_msg("kubeconfig: %s", err);
    f.client = hc_http_new(f.base);
    assert_non_null(f.client);
    hc_watch_params_default(&p);
    p.backoff_min_ms = 1;
    p.backoff_max_ms = 2;
    if (sc->page_limit != 0)
        p.page_limit = sc->page_limit;
    f.w = hc_watch_new(f.base, f.client, f.target, "usa", scope->kind, &p, &cbs);
    assert_non_null(f.w);
    if (scope->ns != NULL || scope->field_selector != NULL)
        assert_int_equal(hc_watch_scope(f.w, scope->ns, scope->field_selector), CM_OK);
    assert_int_equal(hc_watch_start(f.w), CM_OK);
    while (f.served < steps && f.fail[0] == '\0')
        assert_true(event_base_loop(f.base, EVLOOP_ONCE) == 0);
    if (f.fail[0] != '\0')
        fail_msg("%s: %s", sc->what, f.fail);
    /* Let the client take in the held stream's headers. */
    event_base_loop(f.base, EVLOOP_NONBLOCK);
    hc_watch_get_stats(f.w, &st);
    if (strcmp(f.log, sc->want_log) != 0)
        fail_msg("%s: callbacks '%s', want '%s'", sc->what, f.log, sc->want_log);
    if (st.lists != sc->lists || st.relists != sc->relists || st.events != sc->events ||
        st.bookmarks != sc->bookmarks)
        fail_msg("%s: lists %llu relists %llu events %llu bookmarks %llu", sc->what,
                 (unsigned long long)st.lists, (unsigned long long)st.relists,
                 (unsigned long long)st.events, (unsigned long long)st.bookmarks);
    assert_true(st.synced);
    hc_watch_free(f.w);
    hc_http_free(f.client);
    hc_kube_target_free(f.target);
    evhttp_free(f.http);
    event_free(f.drop_ev);
    event_base_free(f.base);
}

/* ---- the scripts -------------------------------------------------------- */

#define SVC(name, rv)                                                                              \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"default\",\"resourceVersion\":\"" rv     \
    "\"}}"
#define LIST(rv, cont, items)                                                                      \
    "{\"kind\":\"ServiceList\",\"metadata\":{\"resourceVersion\":\"" rv "\",\"continue\":\"" cont  \
    "\"},\"items\":[" items "]}"
#define EV(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}\n"
#define BOOKMARK(rv)                                                                               \
    "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"" rv "\"}}}\n"
#define ERROR_EV(code) "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":" #code "}}\n"
#define STATUS(code)   "{\"kind\":\"Status\",\"code\":" #code ",\"message\":\"m\"}"
#define LIST_URL       "/api/v1/services?limit="
#define WATCH_URL(rv)  "/api/v1/services?watch=1 allowWatchBookmarks=true resourceVersion=" rv
#define HOLD_WATCH(rv)                                                                             \
    {                                                                                              \
        WATCH_URL(rv), NULL, HOLD, 200, ""                                                         \
    }

static const struct script_case scripts[] = {
    {"list, then watch from its resourceVersion; events and bookmarks move it; a stream "
     "that ends after items is resumed at once from the last one",
     0,
     {{LIST_URL "500", "continue", REPLY, 200, LIST("100", "", SVC("a", "90") "," SVC("b", "95"))},
      {WATCH_URL("100"), NULL, STREAM, 200,
       EV("ADDED", SVC("c", "101")) EV("MODIFIED", SVC("a", "102")) BOOKMARK("150")},
      {WATCH_URL("150"), NULL, STREAM, 200, EV("DELETED", SVC("b", "151"))},
      HOLD_WATCH("151")},
     "sync 2|ok|ADDED c|MODIFIED a|DELETED b",
     1,
     0,
     3,
     1},
    {"pages: continue until the last page, one sync with every item, watch from the last "
     "page's resourceVersion",
     2,
     {{LIST_URL "2", "continue", REPLY, 200, LIST("", "tok/1", SVC("a", "1") "," SVC("b", "2"))},
      {LIST_URL "2 continue=tok%2F1", NULL, REPLY, 200, LIST("", "tok2", SVC("c", "3"))},
      {"continue=tok2", NULL, REPLY, 200, LIST("200", "", SVC("d", "4"))},
      HOLD_WATCH("200")},
     "sync 4|ok",
     1,
     0,
     0,
     0},
    {"a continue token that expired (410 on a later page) restarts the list from the first "
     "page, dropping what the first pages gave",
     2,
     {{LIST_URL "2", "continue", REPLY, 200, LIST("", "tok", SVC("a", "1") "," SVC("b", "2"))},
      {"continue=tok", NULL, REPLY, 410, STATUS(410)},
      {LIST_URL "2", "continue", REPLY, 200, LIST("300", "", SVC("z", "1"))},
      HOLD_WATCH("300")},
     "sync 1|ok",
     1,
     0,
     0,
     0},
    {"HTTP 410 on the watch: relist at once (no error reported), watch from the new list",
     0,
     {{LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      {WATCH_URL("100"), NULL, REPLY, 410, STATUS(410)},
      {LIST_URL, "resourceVersion", REPLY, 200, LIST("300", "", SVC("a", "1") "," SVC("b", "2"))},
      HOLD_WATCH("300")},
     "sync 1|ok|sync 2",
     2,
     1,
     0,
     0},
    {"an ERROR event with code 410 in the stream: relist at once, events before it applied",
     0,
     {{LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      {WATCH_URL("100"), NULL, STREAM, 200, EV("ADDED", SVC("b", "101")) ERROR_EV(410)},
      {LIST_URL, "resourceVersion", REPLY, 200, LIST("400", "", SVC("a", "1"))},
      HOLD_WATCH("400")},
     "sync 1|ok|ADDED b|sync 1",
     2,
     1,
     1,
     0},
    {"an ERROR event with another code: an error, then a relist (not a rewatch)",
     0,
     {{LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      {WATCH_URL("100"), NULL, STREAM, 200, ERROR_EV(500)},
      {LIST_URL, "watch", REPLY, 200, LIST("500", "", SVC("a", "1"))},
      HOLD_WATCH("500")},
     "sync 1|ok|err 0|sync 1|ok",
     2,
     1,
     0,
     0},
    {"a failed list reports its status, backs off and lists again",
     0,
     {{LIST_URL, NULL, REPLY, 500, STATUS(500)},
      {LIST_URL, NULL, REPLY, 403, STATUS(403)},
      {LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      HOLD_WATCH("100")},
     "err 500|err 403|sync 1|ok",
     1,
     0,
     0,
     0},
    {"a failed watch (HTTP 500) backs off into a relist",
     0,
     {{LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      {WATCH_URL("100"), NULL, REPLY, 500, STATUS(500)},
      {LIST_URL, "watch", REPLY, 200, LIST("101", "", SVC("a", "1"))},
      HOLD_WATCH("101")},
     "sync 1|ok|err 500|sync 1|ok",
     2,
     1,
     0,
     0},
    {"garbage in the stream: an error, then a relist",
     0,
     {{LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      {WATCH_URL("100"), NULL, STREAM, 200, EV("ADDED", SVC("b", "101")) "not json\n"},
      {LIST_URL, "watch", REPLY, 200, LIST("102", "", SVC("a", "1"))},
      HOLD_WATCH("102")},
     "sync 1|ok|ADDED b|err 0|sync 1|ok",
     2,
     1,
     1,
     0},
    {"a dropped stream (connection closed mid-stream) resumes the watch from the last "
     "resourceVersion, without a relist",
     0,
     {{LIST_URL, NULL, REPLY, 200, LIST("100", "", SVC("a", "1"))},
      {WATCH_URL("100"), NULL, DROP, 200, EV("ADDED", SVC("b", "101")) BOOKMARK("120")},
      HOLD_WATCH("120")},
     "sync 1|ok|ADDED b|err 0",
     1,
     0,
     1,
     1},
    {"a list that does not parse is an error, and the next list starts over",
     0,
     {{LIST_URL, NULL, REPLY, 200, "{\"items\": 5}"},
      {LIST_URL, "continue", REPLY, 200, LIST("100", "", SVC("a", "1"))},
      HOLD_WATCH("100")},
     "err 0|sync 1|ok",
     1,
     0,
     0,
     0},
};

/* A Secret of one namespace, by name, as the registry watches one. */
static const struct script_case scoped = {
    "narrowed to one Secret of one namespace: the path and the field selector in every "
    "request",
    1,
    {{"/api/v1/namespaces/kfs/secrets?limit=1 fieldSelector=metadata.name%3Ds1", NULL, REPLY, 200,
      LIST("100", "c1", SVC("s1", "99"))},
     {"/api/v1/namespaces/kfs/secrets?limit=1 fieldSelector=metadata.name%3Ds1 continue=c1", NULL,
      REPLY, 200, LIST("100", "", "")},
     {"/api/v1/namespaces/kfs/secrets?watch=1 fieldSelector=metadata.name%3Ds1 "
      "resourceVersion=100",
      NULL, STREAM, 200, EV("MODIFIED", SVC("s1", "101"))},
     {"/api/v1/namespaces/kfs/secrets?watch=1 fieldSelector=metadata.name%3Ds1 "
      "resourceVersion=101",
      NULL, HOLD, 200, ""}},
    "sync 1|ok|MODIFIED s1",
    1,
    0,
    1,
    0};

static void test_scoped(void **state)
{
    const struct scope secret = {HC_K8S_SECRET, "kfs", "metadata.name=s1"};

    (void)state;
    run_script(&scoped, &secret);
}

static void test_scope_errors(void **state)
{
    struct event_base *base = event_base_new();
    struct hc_http *client = hc_http_new(base);
    struct hc_watch_params p;
    struct hc_watch_cbs cbs = {0};
    struct hc_kube_target t = {.server = (char *)(uintptr_t) "http://127.0.0.1:1"};
    struct hc_watch *w;
    char ns[600];

    (void)state;
    hc_watch_params_default(&p);
    w = hc_watch_new(base, client, &t, "host", HC_K8S_KARMADACLUSTER, &p, &cbs);
    assert_int_equal(hc_watch_scope(w, "x", NULL), CM_EINVAL); /* cluster-scoped */
    assert_int_equal(hc_watch_scope(w, NULL, "metadata.name=a"), CM_OK);
    hc_watch_free(w);
    w = hc_watch_new(base, client, &t, "host", HC_K8S_SECRET, &p, &cbs);
    memset(ns, 'n', sizeof(ns) - 1);
    ns[sizeof(ns) - 1] = '\0';
    assert_int_equal(hc_watch_scope(w, ns, NULL), CM_ETOOBIG);
    hc_watch_free(w);
    hc_http_free(client);
    event_base_free(base);
}

static void test_scripts(void **state)
{
    (void)state;
    const struct scope services = {HC_K8S_SERVICE, NULL, NULL};

    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
        run_script(&scripts[i], &services);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
        cmocka_unit_test(test_scoped),
        cmocka_unit_test(test_scope_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
