/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_etcd.c -- the report of ctl_etcd.h: the members' status and the
 * registered consumers from etcd (one private loop, every request at once),
 * then each consumer's GET /v1/state.
 */
#include "ctl/ctl_etcd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/cm_conf.h"
#include "common/cm_curl.h"
#include "common/cm_err.h"
#include "common/cm_etcd.h"
#include "common/cm_etcd_feed.h"
#include "common/cm_etcd_proto.h"
#include "common/cm_intent.h"
#include "common/cm_net.h"
#include "common/cm_str.h"
#include "ctl/ctl_http.h"
#include "ctl/ctl_table.h"

/* The etcd part, filled by the callbacks. */
struct ask {
    struct event_base *base;
    size_t pending;
    json_t *members;   /* owned: one object per endpoint, in order */
    json_t *consumers; /* owned: the registrations found */
    const char *root;  /* borrowed */
    char list_error[CM_ETCD_ERR_MAX + 64];
};

struct member_ask {
    struct ask *a;
    size_t i;
};

static void one_done(struct ask *a)
{
    if (--a->pending == 0)
        event_base_loopbreak(a->base);
}

static void on_status(void *arg, const struct cm_etcd_result *res)
{
    struct member_ask *m = arg;
    json_t *row = json_array_get(m->a->members, m->i);
    struct cm_etcd_status st;
    char err[CM_ETCD_ERR_MAX];

    if (res->kind != CM_ETCD_OK) {
        json_object_set_new(row, "error", json_string(res->reason));
    } else if (cm_etcd_parse_status(res->body, res->len, &st, err, sizeof(err)) != CM_OK) {
        json_object_set_new(row, "error", json_string(err));
    } else {
        json_object_set_new(row, "ok", json_true());
        json_object_set_new(row, "leader",
                            json_boolean(st.leader != 0 && st.leader == st.member_id));
        json_object_set_new(row, "version", json_string(st.version));
        json_object_set_new(row, "revision", json_integer((json_int_t)st.revision));
        json_object_set_new(row, "raft_index", json_integer((json_int_t)st.raft_index));
        json_object_set_new(row, "raft_term", json_integer((json_int_t)st.raft_term));
        if (st.errors[0] != '\0')
            json_object_set_new(row, "error", json_string(st.errors));
    }
    one_done(m->a);
}

static void on_consumers(void *arg, const struct cm_etcd_result *res)
{
    struct ask *a = arg;
    struct cm_etcd_range r;
    char err[CM_ETCD_ERR_MAX];

    if (res->kind != CM_ETCD_OK) {
        snprintf(a->list_error, sizeof(a->list_error), "%s (at %s)", res->reason, res->endpoint);
    } else if (cm_etcd_parse_range(res->body, res->len, &r, err, sizeof(err)) != CM_OK) {
        snprintf(a->list_error, sizeof(a->list_error), "%s", err);
    } else {
        for (size_t i = 0; i < r.count; i++) {
            const char *name;
            size_t nlen;
            json_t *v;

            if (cm_etcd_key_parse(a->root, r.kvs[i].key, r.kvs[i].key_len, &name, &nlen) !=
                CM_ETCD_KEY_CONSUMER)
                continue;
            v = json_loadb(r.kvs[i].value, r.kvs[i].value_len, 0, NULL);
            if (!json_is_object(v)) {
                json_decref(v);
                v = json_object();
            }
            json_object_set_new(v, "name", json_stringn(name, nlen));
            json_array_append_new(a->consumers, v);
        }
        cm_etcd_range_fini(&r);
    }
    one_done(a);
}

/* The etcd half: every member's status and the consumers/ keys, at once. */
static int ask_etcd(const struct cm_conf *conf, const char *root, uint32_t timeout_ms,
                    struct ask *a, char *err, size_t errlen)
{
    struct cm_conf_etcd ec = conf->etcd;
    struct member_ask *ms = NULL;
    struct cm_curl *curl = NULL;
    struct cm_etcd *e = NULL;
    size_t n = conf->etcd.endpoint_count;
    int rc = CM_ENOMEM;

    if (timeout_ms < ec.request_timeout_ms)
        ec.request_timeout_ms = timeout_ms;
    a->base = event_base_new();
    curl = a->base != NULL ? cm_curl_new(a->base) : NULL;
    e = curl != NULL ? cm_etcd_new(curl, &ec) : NULL;
    ms = calloc(n > 0 ? n : 1, sizeof(*ms));
    if (e == NULL || ms == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        ms[i] = (struct member_ask){.a = a, .i = i};
        json_array_append_new(
            a->members, json_pack("{s:s,s:b}", "endpoint", cm_etcd_endpoint_at(e, i), "ok", 0));
        if (cm_etcd_call_member(e, i, CM_ETCD_PATH_STATUS, strdup("{}"), 0, on_status, &ms[i],
                                NULL) == CM_OK)
            a->pending++;
    }
    {
        size_t dn = strlen(root) + sizeof(CM_ETCD_DIR_CONSUMERS);
        char *prefix = malloc(dn);

        if (prefix != NULL) {
            snprintf(prefix, dn, "%s" CM_ETCD_DIR_CONSUMERS, root);
            if (cm_etcd_call(e, CM_ETCD_PATH_RANGE,
                             cm_etcd_body_range(prefix, strlen(prefix), true, false), 0, NULL,
                             on_consumers, a, NULL) == CM_OK)
                a->pending++;
            free(prefix);
        }
    }
    if (a->pending > 0)
        event_base_dispatch(a->base);
    rc = CM_OK;
out:
    if (rc != CM_OK)
        cm_err_oom(err, errlen, "etcd");
    cm_etcd_free(e);
    cm_curl_free(curl);
    free(ms);
    if (a->base != NULL)
        event_base_free(a->base);
    a->base = NULL;
    return rc;
}

/* One consumer's GET /v1/state: its "etcd" object into @row. */
static void ask_consumer(const struct cm_conf *conf, const char *token, uint32_t timeout_ms,
                         json_t *row)
{
    const char *kind = json_string_value(json_object_get(row, "kind"));
    const char *listen = json_string_value(json_object_get(row, "control"));
    bool tls = json_is_true(json_object_get(row, "tls"));
    const struct cm_conf_control *c =
        kind != NULL && strcmp(kind, "proxy") == 0 ? &conf->proxy.control : &conf->dnsd.control;
    struct ctl_endpoint ep = {.daemon = kind != NULL ? kind : "consumer",
                              .timeout_ms = timeout_ms,
                              .ca_file = c->tls.ca_file};
    struct ctl_reply r = {0};
    char err[256] = "", url[CM_URL_STRLEN];
    struct cm_addr at;
    json_t *doc = NULL, *et;

    if (listen == NULL) {
        json_object_set_new(row, "error", json_string("no control API"));
        return;
    }
    if (cm_addr_parse(listen, 0, &at) != CM_OK) {
        json_object_set_new(row, "error", json_string("its control address is not host:port"));
        return;
    }
    cm_addr_url((const struct sockaddr *)&at.ss, tls, url, sizeof(url));
    ep.base_url = strdup(url);
    if (token != NULL || c->token != NULL)
        ep.token = strdup(token != NULL ? token : c->token);
    json_object_set_new(row, "url", json_string(ep.base_url != NULL ? ep.base_url : ""));
    if (ep.base_url == NULL ||
        ctl_http_request(&ep, "GET", "/v1/state", NULL, &r, err, sizeof(err)) != CM_OK) {
        json_object_set_new(row, "error", json_string(err[0] != '\0' ? err : "out of memory"));
    } else if (r.status != 200) {
        snprintf(err, sizeof(err), "HTTP %ld", r.status);
        json_object_set_new(row, "error", json_string(err));
    } else {
        doc = json_loads(cm_buf_cstr(&r.body), 0, NULL);
        et = json_object_get(doc, "etcd");
        if (!json_is_object(et)) {
            json_object_set_new(row, "error", json_string("no etcd object in its state"));
        } else {
            static const char *const keys[] = {"up",   "revision",   "etcd_revision", "digest",
                                               "keys", "last_error", "endpoint"};

            json_object_set_new(row, "ok", json_true());
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                json_object_set(row, keys[k], json_object_get(et, keys[k]));
        }
    }
    json_decref(doc);
    ctl_reply_fini(&r);
    ctl_endpoint_fini(&ep);
}

/* Fills "healthy", "leader" and "agree". */
static void verdict(json_t *rep)
{
    json_t *members = json_object_get(rep, "members");
    json_t *consumers = json_object_get(rep, "consumers");
    const char *digest = NULL;
    bool agree = json_array_size(consumers) > 0;
    size_t i, healthy = 0;
    json_t *m;

    json_object_set_new(rep, "leader", json_null());
    json_array_foreach(members, i, m)
    {
        if (!json_is_true(json_object_get(m, "ok")))
            continue;
        healthy++;
        if (json_is_true(json_object_get(m, "leader")))
            json_object_set(rep, "leader", json_object_get(m, "endpoint"));
    }
    json_array_foreach(consumers, i, m)
    {
        const char *d = json_string_value(json_object_get(m, "digest"));

        if (!json_is_true(json_object_get(m, "ok")) || d == NULL) {
            agree = false;
            continue;
        }
        if (digest == NULL)
            digest = d;
        else if (strcmp(digest, d) != 0)
            agree = false;
    }
    json_object_set_new(rep, "healthy", json_integer((json_int_t)healthy));
    json_object_set_new(rep, "agree", json_boolean(agree));
}

int ctl_etcd_report(const struct cm_conf *conf, const char *token, uint32_t timeout_ms,
                    json_t **out, char *err, size_t errlen)
{
    struct ask a = {0};
    char *root;
    json_t *rep;
    size_t i;
    json_t *row;
    int rc;

    *out = NULL;
    if (!conf->etcd.present) {
        cm_errf(err, errlen, "%s: no etcd section (not the distributed mode)", conf->path);
        return CM_EINVAL;
    }
    root = cm_etcd_root(conf->etcd.prefix, conf->federation);
    a.members = json_array();
    a.consumers = json_array();
    a.root = root;
    if (root == NULL || a.members == NULL || a.consumers == NULL) {
        rc = cm_err_oom(err, errlen, "etcd");
        goto out;
    }
    rc = ask_etcd(conf, root, timeout_ms, &a, err, errlen);
    if (rc != CM_OK)
        goto out;
    json_array_foreach(a.consumers, i, row) ask_consumer(conf, token, timeout_ms, row);
    rep = json_pack("{s:s,s:O,s:O,s:s?}", "root", root, "members", a.members, "consumers",
                    a.consumers, "consumers_error", a.list_error[0] != '\0' ? a.list_error : NULL);
    if (rep == NULL) {
        rc = cm_err_oom(err, errlen, "etcd");
        goto out;
    }
    verdict(rep);
    *out = rep;
out:
    json_decref(a.members);
    json_decref(a.consumers);
    free(root);
    return rc;
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL && s[0] != '\0' ? s : dflt;
}

static const char *int_cell(json_t *o, const char *key, char *buf, size_t cap)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        return "-";
    snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return buf;
}

#define COLS 6

/* The cells of one row of a table (pointers into @m or @buf). */
typedef void row_fn(json_t *m, const char **cells, char buf[][200]);

static void member_row(json_t *m, const char **row, char buf[][200])
{
    bool ok = json_is_true(json_object_get(m, "ok"));

    snprintf(buf[0], sizeof(buf[0]), "%s%s",
             ok ? "ok" : "unreachable: ", ok ? "" : str_or(m, "error", "no answer"));
    row[0] = str_or(m, "endpoint", "?");
    row[1] = buf[0];
    row[2] = ok ? (json_is_true(json_object_get(m, "leader")) ? "yes" : "no") : "-";
    row[3] = int_cell(m, "revision", buf[1], sizeof(buf[1]));
    row[4] = int_cell(m, "raft_index", buf[2], sizeof(buf[2]));
    row[5] = str_or(m, "version", "-");
}

static void consumer_row(json_t *m, const char **row, char buf[][200])
{
    bool ok = json_is_true(json_object_get(m, "ok"));

    row[0] = str_or(m, "name", "?");
    row[1] = !ok ? "?" : json_is_true(json_object_get(m, "up")) ? "up" : "DOWN";
    row[2] = int_cell(m, "revision", buf[0], sizeof(buf[0]));
    row[3] = int_cell(m, "keys", buf[1], sizeof(buf[1]));
    row[4] = str_or(m, "digest", "-");
    row[5] = !ok ? str_or(m, "error", "unreachable") : str_or(m, "last_error", "");
}

/* A table of the objects of @rows, one row each by @fn, under @head. */
static int table(json_t *rows, const char *const head[COLS], row_fn *fn, struct cm_buf *out)
{
    struct ctl_table *t = ctl_table_new(COLS);
    size_t i;
    json_t *m;
    int rc;

    if (t == NULL)
        return CM_ENOMEM;
    rc = ctl_table_add_row(t, head);
    json_array_foreach(rows, i, m)
    {
        char buf[3][200];
        const char *row[COLS];

        fn(m, row, buf);
        if (rc == CM_OK)
            rc = ctl_table_add_row(t, row);
    }
    if (rc == CM_OK)
        rc = ctl_table_render(t, out);
    ctl_table_free(t);
    return rc;
}

static const char *const members_head[COLS] = {"ETCD MEMBER", "HEALTH",     "LEADER",
                                               "REVISION",    "RAFT INDEX", "VERSION"};
static const char *const consumers_head[COLS] = {
    "CONSUMER (registered in etcd)", "WATCH", "REVISION", "KEYS", "DIGEST", "PROBLEM"};

int ctl_etcd_text(json_t *rep, struct cm_buf *out)
{
    size_t members = json_array_size(json_object_get(rep, "members"));
    size_t consumers = json_array_size(json_object_get(rep, "consumers"));
    json_int_t healthy = json_integer_value(json_object_get(rep, "healthy"));
    int rc;

    rc = cm_buf_printf(out, "\netcd (%s): %" JSON_INTEGER_FORMAT " of %zu members answer%s%s\n",
                       str_or(rep, "root", "?"), healthy, members,
                       json_is_null(json_object_get(rep, "leader")) ? ", no leader seen" : "",
                       (size_t)healthy * 2 <= members ? " (NO QUORUM: consumers serve the last "
                                                        "state)"
                                                      : "");
    if (rc == CM_OK)
        rc = table(json_object_get(rep, "members"), members_head, member_row, out);
    if (rc == CM_OK)
        rc = cm_buf_append_str(out, "\n");
    if (rc == CM_OK && json_is_string(json_object_get(rep, "consumers_error")))
        rc = cm_buf_printf(out, "consumers: cannot list them: %s\n",
                           str_or(rep, "consumers_error", "?"));
    else if (rc == CM_OK && consumers > 0)
        rc = table(json_object_get(rep, "consumers"), consumers_head, consumer_row, out);
    if (rc == CM_OK)
        rc = cm_buf_printf(
            out, "%s\n",
            consumers == 0 ? "no consumer registered"
            : json_is_true(json_object_get(rep, "agree"))
                ? "agreement: every consumer holds the same keys at the same revisions"
                : "agreement: NO (a consumer differs or did not answer)");
    return rc;
}

/* ---- intents in etcd ---- */

/* One request on a private loop, its outcome copied out of the callback. */
struct one_call {
    struct event_base *base;
    enum cm_etcd_result_kind kind;
    struct cm_buf *reply;
    char reason[200];
    char endpoint[200];
    bool done;
};

static void on_one(void *arg, const struct cm_etcd_result *res)
{
    struct one_call *c = arg;

    c->kind = res->kind;
    c->done = true;
    cm_strlcpy(c->reason, res->reason != NULL ? res->reason : "", sizeof(c->reason));
    cm_strlcpy(c->endpoint, res->endpoint != NULL ? res->endpoint : "", sizeof(c->endpoint));
    if (res->kind == CM_ETCD_OK && cm_buf_append(c->reply, res->body, res->len) != CM_OK)
        cm_strlcpy(c->reason, "out of memory", sizeof(c->reason));
    event_base_loopbreak(c->base);
}

/*
 * POSTs @body (built for each try by @make, taken) to @path, trying each
 * member in turn until one answers: the reply into @reply.
 */
static int etcd_once(const struct cm_conf *conf, uint32_t timeout_ms, const char *path,
                     char *(*make)(const void *arg), const void *arg, struct cm_buf *reply,
                     char *endpoint, size_t cap, char *err, size_t errlen)
{
    struct cm_conf_etcd ec = conf->etcd;
    struct one_call c = {.reply = reply};
    struct cm_curl *curl = NULL;
    struct cm_etcd *e = NULL;
    int rc = CM_ENOMEM;

    if (!conf->etcd.present) {
        cm_errf(err, errlen, "the configuration has no etcd section");
        return CM_EINVAL;
    }
    if (timeout_ms < ec.request_timeout_ms)
        ec.request_timeout_ms = timeout_ms;
    c.base = event_base_new();
    curl = c.base != NULL ? cm_curl_new(c.base) : NULL;
    e = curl != NULL ? cm_etcd_new(curl, &ec) : NULL;
    if (e == NULL) {
        cm_err_oom(err, errlen, "etcd");
        goto out;
    }
    rc = CM_EIO;
    for (size_t i = 0; i < conf->etcd.endpoint_count && rc == CM_EIO; i++) {
        char *body = make(arg);

        c.done = false;
        cm_buf_reset(reply);
        if (body == NULL || cm_etcd_call(e, path, body, 0, NULL, on_one, &c, NULL) != CM_OK) {
            rc = CM_ENOMEM;
            cm_err_oom(err, errlen, "etcd");
            break;
        }
        while (!c.done && event_base_dispatch(c.base) == 0)
            ;
        if (c.kind == CM_ETCD_OK) {
            rc = CM_OK;
        } else {
            cm_errf(err, errlen, "etcd %s: %s", c.endpoint, c.reason);
            if (c.kind == CM_ETCD_REFUSED || c.kind == CM_ETCD_AUTH)
                break; /* another member says the same */
        }
    }
    if (endpoint != NULL)
        cm_strlcpy(endpoint, c.endpoint, cap);
out:
    cm_etcd_free(e);
    cm_curl_free(curl);
    if (c.base != NULL)
        event_base_free(c.base);
    return rc;
}

/* "<root>intents/" of @conf (new string). */
static char *intents_dir(const struct cm_conf *conf)
{
    char *root = cm_etcd_root(conf->etcd.prefix, conf->federation);
    size_t n = root != NULL ? strlen(root) + sizeof(CM_ETCD_DIR_INTENTS) : 0;
    char *dir = n > 0 ? malloc(n) : NULL;

    if (dir != NULL)
        snprintf(dir, n, "%s" CM_ETCD_DIR_INTENTS, root);
    free(root);
    return dir;
}

static char *make_range(const void *arg)
{
    const char *dir = arg;

    return cm_etcd_body_range(dir, strlen(dir), true, false);
}

int ctl_etcd_intents_read(const struct cm_conf *conf, uint32_t timeout_ms, int64_t now_s,
                          json_t **out, int64_t *revision, char *err, size_t errlen)
{
    char *dir = conf->etcd.present ? intents_dir(conf) : NULL;
    struct cm_etcd_range r = {0};
    struct cm_buf reply;
    json_t *list = json_array();
    int rc;

    *out = NULL;
    *revision = 0;
    cm_buf_init(&reply, 64u << 20);
    if (conf->etcd.present && (dir == NULL || list == NULL)) {
        rc = CM_ENOMEM;
        cm_err_oom(err, errlen, "etcd");
        goto out;
    }
    rc = etcd_once(conf, timeout_ms, CM_ETCD_PATH_RANGE, make_range, dir, &reply, NULL, 0, err,
                   errlen);
    if (rc == CM_OK && cm_etcd_parse_range(reply.data, reply.len, &r, err, errlen) != CM_OK)
        rc = CM_EIO;
    for (size_t i = 0; rc == CM_OK && i < r.count; i++) {
        char why[CM_INTENT_ERR_MAX] = "";
        struct cm_intent *in = NULL;
        json_t *j;

        if (cm_intent_parse_text(r.kvs[i].value, r.kvs[i].value_len, NULL, &in, why, sizeof(why)) !=
            CM_OK) {
            fprintf(stderr, "fedgslbctl: warning: etcd key %s: %s (left out)\n", r.kvs[i].key, why);
            continue;
        }
        j = cm_intent_json(in);
        if (j == NULL ||
            json_object_set_new(j, "status", json_string(cm_intent_status(in, now_s))) != 0 ||
            json_array_append_new(list, j) != 0)
            rc = CM_ENOMEM;
        cm_intent_unref(in);
    }
    if (rc == CM_OK) {
        *revision = r.revision;
        *out = list;
        list = NULL;
    }
out:
    cm_etcd_range_fini(&r);
    cm_buf_fini(&reply);
    json_decref(list);
    free(dir);
    return rc;
}

struct put_arg {
    const char *key;
    const char *value;
};

static char *make_put(const void *arg)
{
    const struct put_arg *p = arg;

    return cm_etcd_body_put(p->key, strlen(p->key), p->value, strlen(p->value), 0);
}

int ctl_etcd_intent_write(const struct cm_conf *conf, uint32_t timeout_ms, json_t *in,
                          int64_t *revision, char *endpoint, size_t cap, char *err, size_t errlen)
{
    struct cm_intent *parsed = NULL;
    char *dir = NULL, *value = NULL, *key = NULL;
    struct cm_buf reply;
    int rc;

    *revision = 0;
    endpoint[0] = '\0';
    cm_buf_init(&reply, 1u << 20);
    rc = cm_intent_parse(in, NULL, &parsed, err, errlen);
    if (rc != CM_OK)
        goto out;
    dir = conf->etcd.present ? intents_dir(conf) : NULL;
    value = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
    if (dir != NULL) {
        size_t n = strlen(dir) + strlen(parsed->id) + 1;

        key = malloc(n);
        if (key != NULL)
            snprintf(key, n, "%s%s", dir, parsed->id);
    }
    if (conf->etcd.present && (key == NULL || value == NULL)) {
        rc = CM_ENOMEM;
        cm_err_oom(err, errlen, "etcd");
        goto out;
    }
    {
        const struct put_arg p = {key, value};

        rc = etcd_once(conf, timeout_ms, CM_ETCD_PATH_PUT, make_put, &p, &reply, endpoint, cap, err,
                       errlen);
    }
    if (rc == CM_OK &&
        cm_etcd_parse_revision(reply.data, reply.len, revision, err, errlen) != CM_OK)
        rc = CM_EIO;
out:
    cm_intent_unref(parsed);
    cm_buf_fini(&reply);
    free(dir);
    free(key);
    free(value);
    return rc;
}
