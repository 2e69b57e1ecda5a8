/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_vantage.c -- the rebuild / debounce / offer cycle of a vantage
 * (health/hc_vantage.h): changes within HC_VANTAGE_DEBOUNCE_MS give one
 * rebuild; nothing is built until every member listed once or the startup
 * grace ran out; the state file's document is offered at start and its
 * generation continued; a reload offers the current document again.
 *
 * The vantage's monotonic clock is the fixture's f->now_ms, moved by the
 * tests; the debounce and the grace are driven with hc_vantage_poll() and
 * hc_vantage_tick(). The member's API server is an evhttp server on
 * 127.0.0.1 (readyz ok; lists empty or failing; watches held open), the
 * publish target a path of the same server.
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
#include <sys/stat.h>
#include <time.h>
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
#include "health/hc_http.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_report.h"
#include "health/hc_vantage.h"
#include "tests/unit/health/unit_http.h"

#define HELD_MAX 64

struct fx {
    struct event_base *base;
    struct evhttp *http;
    int port;
    bool lists_ok; /* lists answer 200 (empty), else 500 */
    unsigned puts; /* state documents received at /pub */
    struct evhttp_request *held[HELD_MAX];
    size_t held_count;
    struct hc_http *client;
    struct cm_conf *conf;
    struct hc_vantage *v;
    uint64_t now_ms;
    uint64_t cpu_us, cpu_step; /* the CPU clock: each reading adds cpu_step */
    char dir[64];
    char state_file[128];
    int k1_zone; /* new_document() moves registry member k1 between zone 0 and none */
};

static uint64_t fx_cpu_clock(void *arg)
{
    struct fx *f = arg;

    f->cpu_us += f->cpu_step;
    return f->cpu_us;
}

static uint64_t fx_clock(void *arg)
{
    return ((const struct fx *)arg)->now_ms;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct fx *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    if (starts(uri, "/pub/")) {
        f->puts++;
        evhttp_send_reply(req, 200, NULL, NULL);
    } else if (starts(uri, "/readyz")) {
        evbuffer_add_printf(out, "ok");
        evhttp_send_reply(req, 200, NULL, NULL);
    } else if (strstr(uri, "watch=1") != NULL) {
        assert_true(f->held_count < HELD_MAX);
        evhttp_send_reply_start(req, 200, NULL);
        f->held[f->held_count++] = req;
    } else if (starts(uri, "/api/v1/services?") && f->lists_ok) {
        evbuffer_add_printf(out, "{\"kind\":\"ServiceList\",\"metadata\":"
                                 "{\"resourceVersion\":\"10\"},\"items\":[]}");
        evhttp_send_reply(req, 200, NULL, NULL);
    } else if (starts(uri, "/apis/discovery.k8s.io/v1/endpointslices?") && f->lists_ok) {
        evbuffer_add_printf(out, "{\"kind\":\"EndpointSliceList\",\"metadata\":"
                                 "{\"resourceVersion\":\"10\"},\"items\":[]}");
        evhttp_send_reply(req, 200, NULL, NULL);
    } else {
        evhttp_send_error(req, 500, NULL);
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_hc_vantage.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state_file, sizeof(f->state_file), "%s/state.json", f->dir);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->http = unit_http_server(f->base, on_request, f, &f->port);
    evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT);
    f->client = hc_http_new(f->base);
    assert_non_null(f->client);
    f->now_ms = 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    hc_vantage_free(f->v);
    hc_http_free(f->client);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < f->held_count; i++)
        evhttp_send_reply_end(f->held[i]);
    evhttp_free(f->http);
    event_base_free(f->base);
    cm_conf_unref(f->conf);
    unlink(f->state_file);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* One member "usa" at our server; health.startup_grace_ms = @grace_ms. */
static void load_conf(struct fx *f, uint32_t grace_ms)
{
    char text[2048], err[CM_CONF_ERR_MAX];

    snprintf(text, sizeof(text),
             "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
             " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]}},"
             " \"members\": {\"usa\": {\"region\": \"us-east-1\"}},"
             " \"services\": {\"default/web\": {\"port\": 80, \"check\": {\"type\": \"none\"}}},"
             " \"health\": {\"vantage\": \"us-east-1\", \"state_file\": \"%s\","
             "   \"publish_to\": [\"http://127.0.0.1:%d/pub\"],"
             "   \"startup_grace_ms\": %u,"
             "   \"api\": {\"readyz_interval_ms\": 50, \"backoff_min_ms\": 10,"
             "             \"backoff_max_ms\": 20}}}",
             f->state_file, f->port, (unsigned)grace_ms);
    if (cm_conf_load_string("t.json", text, &f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
}

static struct hc_kube_target **targets(const struct fx *f)
{
    struct hc_kube_target **ts = calloc(2, sizeof(*ts));
    char kc[512], err[256];

    assert_non_null(ts);
    snprintf(kc, sizeof(kc),
             "apiVersion: v1\nkind: Config\ncurrent-context: m\n"
             "clusters:\n- name: m\n  cluster: {server: 'http://127.0.0.1:%d'}\n"
             "users:\n- name: m\n  user: {token: t}\n"
             "contexts:\n- name: m\n  context: {cluster: m, user: m}\n",
             f->port);
    if (hc_kubeconfig_load_mem("kc", kc, strlen(kc), NULL, HC_KUBECONFIG_NO_FILES, &ts[0], err,
                               sizeof(err)) != CM_OK)
        fail_msg("kubeconfig: %s", err);
    return ts;
}

/* A vantage over @report (taken), started. */
static void start(struct fx *f, struct hc_report *report)
{
    struct hc_vantage_params p = {.clock = fx_clock, .cpu_clock = fx_cpu_clock, .clock_arg = f};

    f->v = hc_vantage_new(f->base, f->client, f->conf, report, &p);
    assert_non_null(f->v);
    assert_int_equal(hc_vantage_start(f->v, targets(f)), CM_OK);
}

static struct hc_vantage_stats stats(const struct fx *f)
{
    struct hc_vantage_stats st;

    hc_vantage_get_stats(f->v, &st);
    return st;
}

/* Changes within one debounce window give one rebuild, at its end. */
static void test_debounce_one_rebuild_per_window(void **state)
{
    struct fx *f = *state;

    load_conf(f, 0); /* no grace: the first rebuild publishes */
    start(f, hc_report_new(0, NULL));
    assert_true(stats(f).synced);
    assert_int_equal(stats(f).rebuilds, 1);
    assert_int_equal(stats(f).documents, 1);
    assert_int_equal(stats(f).generation, 1);

    hc_vantage_changed(f->v);
    assert_true(stats(f).armed);
    assert_int_equal(stats(f).due_ms, 1000 + HC_VANTAGE_DEBOUNCE_MS);
    f->now_ms += 60;
    hc_vantage_changed(f->v); /* joins the armed rebuild */
    hc_vantage_changed(f->v);
    assert_int_equal(stats(f).due_ms, 1000 + HC_VANTAGE_DEBOUNCE_MS);
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 1);
    f->now_ms += 39;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 1);
    f->now_ms += 1;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 2);
    assert_false(stats(f).armed);
    hc_vantage_poll(f->v); /* nothing armed: nothing to do */
    assert_int_equal(stats(f).rebuilds, 2);
    /* Nothing new in it: same generation, no state file write, no offer. */
    assert_int_equal(stats(f).documents, 1);
    assert_int_equal(stats(f).generation, 1);
    assert_int_equal(stats(f).writes, 1);
    assert_int_equal(stats(f).offers, 2); /* the first document, and start's offer */

    /* A change right after a rebuild waits for a whole window again. */
    hc_vantage_changed(f->v);
    assert_int_equal(stats(f).due_ms, f->now_ms + HC_VANTAGE_DEBOUNCE_MS);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS - 1;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 2);
    f->now_ms += 1;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 3);
}

/* A burst (many changes within the debounce) gathers longer; a lone change does not. */
static void test_burst_gathers_longer(void **state)
{
    struct fx *f = *state;
    uint64_t first;

    load_conf(f, 0);
    start(f, hc_report_new(0, NULL));
    first = f->now_ms;
    for (int i = 0; i < HC_VANTAGE_BURST_CHANGES; i++)
        hc_vantage_changed(f->v);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 1); /* only start's */
    assert_true(stats(f).armed);
    assert_int_equal(stats(f).due_ms, first + HC_VANTAGE_BURST_GATHER_MS);
    hc_vantage_changed(f->v); /* joins */
    f->now_ms = first + HC_VANTAGE_BURST_GATHER_MS - 1;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 1);
    f->now_ms++;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 2);
    assert_int_equal(stats(f).bursts, 1);
    /* Then one change alone: the debounce only. */
    hc_vantage_changed(f->v);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 3);
    assert_int_equal(stats(f).bursts, 1);
    /* One change short of a burst is not one. */
    for (int i = 0; i < HC_VANTAGE_BURST_CHANGES - 1; i++)
        hc_vantage_changed(f->v);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 4);
}

/*
 * Rebuilds spend at most HC_VANTAGE_REBUILD_CPU_US_PER_S: once the budget is
 * overdrawn, the next change waits for it to refill (the debt is capped so
 * that it never waits longer than HC_VANTAGE_THROTTLE_MAX_MS), and cheap
 * rebuilds are never held back. The CPU clock is the fixture's.
 */
static void test_cpu_budget(void **state)
{
    struct fx *f = *state;
    const int64_t floor =
        -(int64_t)HC_VANTAGE_REBUILD_CPU_US_PER_S * HC_VANTAGE_THROTTLE_MAX_MS / 1000;

    load_conf(f, 0);
    f->cpu_step = HC_VANTAGE_REBUILD_BURST_US / 2; /* each rebuild costs half the burst */
    start(f, hc_report_new(0, NULL));
    assert_int_equal(stats(f).budget_us, HC_VANTAGE_REBUILD_BURST_US / 2);
    assert_int_equal(stats(f).rebuild_cpu_us, HC_VANTAGE_REBUILD_BURST_US / 2);
    /* Half a burst left: the next change waits only the debounce. */
    hc_vantage_changed(f->v);
    assert_int_equal(stats(f).due_ms, f->now_ms + HC_VANTAGE_DEBOUNCE_MS);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 2);
    /* Spent (and a little refilled): one more in the debounce, overdrawing it. */
    assert_true(stats(f).budget_us >= 0);
    hc_vantage_changed(f->v);
    assert_int_equal(stats(f).due_ms, f->now_ms + HC_VANTAGE_DEBOUNCE_MS);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 3);
    assert_int_equal(stats(f).budget_us, floor); /* the debt is capped */
    /* Overdrawn: the next change waits until the budget is back at 0. */
    hc_vantage_changed(f->v);
    assert_int_equal(stats(f).postponed, 1);
    assert_int_equal(stats(f).due_ms, f->now_ms + HC_VANTAGE_THROTTLE_MAX_MS);
    f->now_ms += HC_VANTAGE_THROTTLE_MAX_MS - 1;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 3);
    f->now_ms += 1;
    f->cpu_step = 0; /* free rebuilds from now on */
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).rebuilds, 4);
    /* Refilled by the wait: the debounce only again. */
    hc_vantage_changed(f->v);
    assert_int_equal(stats(f).due_ms, f->now_ms + HC_VANTAGE_DEBOUNCE_MS);
    assert_int_equal(stats(f).postponed, 1);
}

/*
 * A member that never lists holds every document back until the grace runs
 * out; meanwhile the state file's document is what was offered, and the
 * first document built continues its generation.
 */
static void test_grace_holds_documents_back(void **state)
{
    struct fx *f = *state;
    json_t *previous = json_pack("{s:i, s:s}", "generation", 41, "vantage", "us-east-1");
    uint64_t gen = 0;
    json_t *doc = NULL;
    char err[256];

    load_conf(f, 5000);
    assert_non_null(previous);
    start(f, hc_report_new(41, previous));
    json_decref(previous);
    assert_false(stats(f).synced);
    assert_int_equal(stats(f).rebuilds, 0);
    assert_int_equal(stats(f).offers, 1); /* the state file's document, at once */
    assert_int_equal(stats(f).generation, 41);

    hc_vantage_changed(f->v);
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v); /* due, but the member has not listed */
    f->now_ms = 1000 + 4999;
    hc_vantage_tick(f->v);
    assert_int_equal(stats(f).rebuilds, 0);
    assert_int_equal(stats(f).offers, 1);
    assert_int_equal(stats(f).writes, 0);

    f->now_ms = 1000 + 5000;
    hc_vantage_tick(f->v);
    assert_true(stats(f).synced);
    assert_int_equal(stats(f).rebuilds, 1);
    assert_int_equal(stats(f).generation, 42);
    assert_int_equal(stats(f).writes, 1);
    assert_int_equal(stats(f).offers, 2);

    /* What a restart would continue from. */
    assert_int_equal(hc_report_load(f->state_file, false, &gen, &doc, err, sizeof(err)), CM_OK);
    assert_int_equal(gen, 42);
    json_decref(doc);
}

/* With the member listed once, documents flow before the grace ends. */
static void test_publishes_once_every_member_listed(void **state)
{
    struct fx *f = *state;
    time_t guard = time(NULL) + 10;

    f->lists_ok = true;
    load_conf(f, 3600000);
    start(f, hc_report_new(7, NULL));
    assert_int_equal(stats(f).rebuilds, 0);
    assert_int_equal(stats(f).offers, 0); /* no state file document to offer */
    while (!stats(f).synced) {
        if (time(NULL) > guard)
            fail_msg("the member never listed");
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) == 0);
        hc_vantage_tick(f->v);
    }
    assert_int_equal(stats(f).rebuilds, 1);
    assert_int_equal(stats(f).generation, 8);
    assert_int_equal(stats(f).offers, 1);
    while (f->puts == 0) { /* and the publisher delivers it */
        if (time(NULL) > guard)
            fail_msg("the document never reached the publish target");
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) == 0);
    }
}

/* A reload with the same members: same generation, and the new publisher
 * is offered the current document at once. */
static void test_reload_reoffers_current_document(void **state)
{
    struct fx *f = *state;
    struct cm_conf *old;

    load_conf(f, 0);
    start(f, hc_report_new(3, NULL));
    assert_int_equal(stats(f).generation, 4);
    assert_int_equal(stats(f).offers, 2);
    old = f->conf;
    load_conf(f, 0);
    assert_int_equal(hc_vantage_reload(f->v, f->conf, targets(f)), CM_OK);
    cm_conf_unref(old);
    assert_int_equal(stats(f).rebuilds, 2);
    assert_int_equal(stats(f).generation, 4);
    assert_int_equal(stats(f).offers, 3);
}

/* ---- registry members ---- */

/* The document's member @name, or NULL. */
static json_t *doc_member(const struct fx *f, const char *name)
{
    json_t *doc = hc_vantage_state(f->v);
    json_t *m = json_object_get(json_object_get(doc, "members"), name);

    json_decref(doc); /* the vantage still holds it */
    return m;
}

/* Runs the armed rebuild at once. */
static void rebuild(struct fx *f)
{
    f->now_ms += HC_VANTAGE_DEBOUNCE_MS;
    hc_vantage_poll(f->v);
}

static struct hc_kube_target *target(const struct fx *f)
{
    struct hc_kube_target **ts = targets(f), *t = ts[0];

    free(ts);
    return t;
}

/* The generation of the state file on disk (0: none). */
static uint64_t file_generation(const struct fx *f)
{
    uint64_t gen = 0;
    json_t *doc = NULL;
    char err[256];

    assert_int_equal(hc_report_load(f->state_file, false, &gen, &doc, err, sizeof(err)), CM_OK);
    json_decref(doc);
    return gen;
}

/* A new document now, without moving the clock: registry member k1 joins or
 * moves to the other zone (0 or none), and the vantage rebuilds at once. */
static void new_document(struct fx *f)
{
    char k1[] = "k1";
    struct cm_conf_member m = {.name = k1, .region = 0, .zone = f->k1_zone};
    uint64_t gen = stats(f).generation;

    f->k1_zone = f->k1_zone == 0 ? -1 : 0;
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_OK);
    hc_vantage_rebuild(f->v);
    assert_int_equal(stats(f).generation, gen + 1);
}

/*
 * The state file is written at once when its last write is at least
 * HC_VANTAGE_STATE_WRITE_MS old, else that long after the last write (the
 * latest document then), and at once when a document would be offered
 * HC_VANTAGE_STATE_LAG_MAX generations past the file's; documents are
 * offered at once either way. hc_vantage_flush() writes what is pending; a
 * restart resumes HC_VANTAGE_STATE_LAG_MAX past the file's generation.
 */
static void test_state_file_written_at_most_once_an_interval(void **state)
{
    struct fx *f = *state;
    uint64_t offers, last, gen;

    load_conf(f, 0);
    start(f, hc_report_new(0, NULL));
    assert_int_equal(stats(f).writes, 1); /* the first document: at once */
    assert_int_equal(file_generation(f), 1);
    offers = stats(f).offers;

    /* Within the interval: offered at once, written at its end. */
    f->now_ms += 10;
    new_document(f);
    new_document(f);
    assert_int_equal(stats(f).offers, offers + 2);
    assert_int_equal(stats(f).writes, 1);
    assert_int_equal(file_generation(f), 1);
    assert_true(stats(f).write_pending);
    assert_int_equal(stats(f).write_due_ms, 1000 + HC_VANTAGE_STATE_WRITE_MS);
    f->now_ms = 1000 + HC_VANTAGE_STATE_WRITE_MS - 1;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).writes, 1);
    f->now_ms++;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).writes, 2);
    assert_false(stats(f).write_pending);
    assert_int_equal(file_generation(f), 3); /* the latest, not the one that armed it */
    assert_int_equal(stats(f).written_generation, 3);
    hc_vantage_poll(f->v); /* nothing pending: nothing written */
    assert_int_equal(stats(f).writes, 2);

    /* A document a whole interval after the last write: at once. */
    f->now_ms += HC_VANTAGE_STATE_WRITE_MS - 1;
    new_document(f);
    assert_int_equal(stats(f).writes, 2);
    f->now_ms++;
    hc_vantage_poll(f->v);
    assert_int_equal(stats(f).writes, 3);
    f->now_ms += HC_VANTAGE_STATE_WRITE_MS;
    new_document(f);
    assert_int_equal(stats(f).writes, 4);
    assert_false(stats(f).write_pending);
    assert_int_equal(file_generation(f), 5);

    /* The clock standing still: the file falls at most LAG_MAX - 1 behind. */
    last = stats(f).generation;
    for (int i = 1; i < HC_VANTAGE_STATE_LAG_MAX; i++)
        new_document(f);
    assert_int_equal(stats(f).writes, 4);
    assert_int_equal(stats(f).generation, last + HC_VANTAGE_STATE_LAG_MAX - 1);
    new_document(f);
    assert_int_equal(stats(f).writes, 5);
    assert_int_equal(file_generation(f), last + HC_VANTAGE_STATE_LAG_MAX);

    /* Shutdown: the latest, whatever the interval. */
    new_document(f);
    gen = stats(f).generation;
    assert_true(stats(f).write_pending);
    hc_vantage_flush(f->v);
    assert_int_equal(stats(f).writes, 6);
    assert_false(stats(f).write_pending);
    assert_int_equal(file_generation(f), gen);
    hc_vantage_flush(f->v); /* nothing behind: nothing written */
    assert_int_equal(stats(f).writes, 6);

    /* A write that failed leaves nothing pending; the flush still catches up. */
    {
        char moved[160], inside[192];
        FILE *fp;

        snprintf(moved, sizeof(moved), "%s.away", f->state_file);
        snprintf(inside, sizeof(inside), "%s/x", f->state_file);
        assert_int_equal(rename(f->state_file, moved), 0);
        assert_int_equal(mkdir(f->state_file, 0700), 0); /* PATH cannot be replaced */
        fp = fopen(inside, "w");
        assert_non_null(fp);
        fclose(fp);
        f->now_ms += HC_VANTAGE_STATE_WRITE_MS;
        new_document(f);
        assert_int_equal(stats(f).write_errors, 1);
        assert_false(stats(f).write_pending);
        assert_int_equal(unlink(inside), 0);
        assert_int_equal(rmdir(f->state_file), 0);
        assert_int_equal(rename(moved, f->state_file), 0);
        gen = stats(f).generation;
        hc_vantage_flush(f->v);
        assert_int_equal(stats(f).writes, 7);
        assert_int_equal(file_generation(f), gen);
    }

    /* A restart continues past anything offered before the file was written. */
    assert_int_equal(hc_vantage_resume_generation(0), 0);
    assert_int_equal(hc_vantage_resume_generation(gen), gen + HC_VANTAGE_STATE_LAG_MAX);
    assert_int_equal(hc_vantage_resume_generation((uint64_t)INT64_MAX - 1), INT64_MAX);
}

/* Registry members join the documents and leave them again; a configured
 * name or a place the configuration lacks is refused. */
static void test_registry_members_join_and_leave(void **state)
{
    struct fx *f = *state;
    char k1[] = "k1", usa[] = "usa";
    struct cm_conf_member m = {.name = k1, .region = 0, .zone = 0};

    load_conf(f, 0);
    start(f, hc_report_new(0, NULL));
    assert_null(doc_member(f, "k1"));
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_OK);
    assert_int_equal(hc_vantage_registry_members(f->v), 1);
    assert_true(stats(f).armed);
    rebuild(f);
    assert_string_equal(json_string_value(json_object_get(doc_member(f, "k1"), "region")),
                        "us-east-1");
    assert_string_equal(json_string_value(json_object_get(doc_member(f, "k1"), "zone")),
                        "us-east-1a");
    assert_int_equal(stats(f).generation, 2);
    /* The same again: nothing new, nothing armed. */
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_OK);
    assert_false(stats(f).armed);
    /* Another place: a change. */
    m.zone = -1;
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_OK);
    rebuild(f);
    assert_true(json_is_null(json_object_get(doc_member(f, "k1"), "zone")));
    assert_int_equal(hc_vantage_registry_members(f->v), 1);
    /* A configured member's name, a region or zone that is not there. */
    m.name = usa;
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_EEXIST);
    m.name = k1;
    m.region = 7;
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_EINVAL);
    m.region = 0;
    m.zone = 3;
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_EINVAL);
    /* Unjoined: the next document leaves it out. */
    assert_int_equal(hc_vantage_remove_member(f->v, "k1"), CM_OK);
    assert_int_equal(hc_vantage_remove_member(f->v, "k1"), CM_ENOENT);
    assert_int_equal(hc_vantage_remove_member(f->v, "usa"), CM_ENOENT); /* configured */
    rebuild(f);
    assert_null(doc_member(f, "k1"));
    assert_non_null(doc_member(f, "usa"));
    assert_int_equal(hc_vantage_registry_members(f->v), 0);
}

/* A reload keeps registry members, unless it configures their name. */
static void test_registry_members_through_reload(void **state)
{
    struct fx *f = *state;
    char k1[] = "k1";
    struct cm_conf_member m = {.name = k1, .region = 0, .zone = -1};
    struct cm_conf *old;
    char text[2048], err[CM_CONF_ERR_MAX];

    load_conf(f, 0);
    start(f, hc_report_new(0, NULL));
    assert_int_equal(hc_vantage_add_member(f->v, &m, target(f)), CM_OK);
    old = f->conf;
    load_conf(f, 0);
    assert_int_equal(hc_vantage_reload(f->v, f->conf, targets(f)), CM_OK);
    cm_conf_unref(old);
    assert_non_null(doc_member(f, "k1"));
    assert_int_equal(hc_vantage_registry_members(f->v), 1);
    /* Now the configuration has a k1 of its own. */
    old = f->conf;
    snprintf(text, sizeof(text),
             "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
             " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]}},"
             " \"members\": {\"k1\": {\"region\": \"us-east-1\", \"zone\": \"us-east-1a\"}},"
             " \"health\": {\"vantage\": \"us-east-1\"}}");
    if (cm_conf_load_string("t.json", text, &f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    assert_int_equal(hc_vantage_reload(f->v, f->conf, targets(f)), CM_OK);
    cm_conf_unref(old);
    assert_int_equal(hc_vantage_registry_members(f->v), 0);
    assert_string_equal(json_string_value(json_object_get(doc_member(f, "k1"), "zone")),
                        "us-east-1a"); /* the configured one */
}

/* A vantage held for the registry, its member listed. */
static void start_held(struct fx *f)
{
    time_t guard = time(NULL) + 10;

    f->lists_ok = true;
    load_conf(f, 5000);
    f->v = hc_vantage_new(f->base, f->client, f->conf, hc_report_new(0, NULL),
                          &(struct hc_vantage_params){.clock = fx_clock, .clock_arg = f});
    assert_non_null(f->v);
    hc_vantage_hold_for_registry(f->v, true);
    assert_int_equal(hc_vantage_start(f->v, targets(f)), CM_OK);
    while (f->held_count < 2) { /* usa listed both kinds: their watches are open */
        if (time(NULL) > guard)
            fail_msg("the member never listed");
        assert_true(event_base_loop(f->base, EVLOOP_ONCE) == 0);
    }
    hc_vantage_tick(f->v);
    assert_false(stats(f).synced); /* usa listed, but the registry has not */
    assert_int_equal(stats(f).rebuilds, 0);
}

/* Held for the registry: nothing is built until it lists... */
static void test_hold_until_the_registry_lists(void **state)
{
    struct fx *f = *state;

    start_held(f);
    hc_vantage_hold_for_registry(f->v, false);
    assert_true(stats(f).armed);
    rebuild(f);
    assert_true(stats(f).synced);
    assert_int_equal(stats(f).rebuilds, 1);
}

/* ... or until the startup grace ends. */
static void test_hold_until_the_grace_ends(void **state)
{
    struct fx *f = *state;

    start_held(f);
    f->now_ms = 1000 + 4999;
    hc_vantage_tick(f->v);
    assert_int_equal(stats(f).rebuilds, 0);
    f->now_ms = 1000 + 5000;
    hc_vantage_tick(f->v);
    assert_true(stats(f).synced);
    assert_int_equal(stats(f).rebuilds, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_debounce_one_rebuild_per_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_gathers_longer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpu_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_holds_documents_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publishes_once_every_member_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_reoffers_current_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_members_join_and_leave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_members_through_reload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_until_the_registry_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hold_until_the_grace_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_written_at_most_once_an_interval, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
