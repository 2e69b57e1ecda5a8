/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_proto.c -- the JSON of cm_etcd_proto.h, with jansson.
 *
 * int64 fields arrive as decimal strings (proto3's JSON mapping) or, from
 * other gateways, as numbers: both are accepted, nothing else. A field the
 * server leaves out has its zero value (proto3 omits defaults).
 */
#include "common/cm_etcd_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/cm_base64.h"
#include "common/cm_err.h"
#include "common/cm_str.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CM_EPARSE;
}

/* ---- request bodies ---- */

/* A new base64 JSON string of @len bytes at @p (NULL on ENOMEM). */
static json_t *b64_string(const void *p, size_t len)
{
    char *text = malloc(cm_base64_encoded_len(len) + 1);
    json_t *s;

    if (text == NULL)
        return NULL;
    cm_base64_encode(p, len, text);
    s = json_string(text);
    free(text);
    return s;
}

static json_t *int64_string(int64_t v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return json_string(buf);
}

/* The body text of @obj (taken). NULL on ENOMEM (also when @obj is NULL). */
static char *dump(json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    return text;
}

char *cm_etcd_prefix_end(const char *prefix, size_t len, size_t *out_len)
{
    char *end = malloc(len + 1);
    size_t n = len;

    if (end == NULL)
        return NULL;
    memcpy(end, prefix, len);
    while (n > 0 && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (n == 0) { /* no key is greater: the range end "\0" means "to the end" */
        end[0] = '\0';
        *out_len = 1;
        return end;
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    end[n] = '\0';
    *out_len = n;
    return end;
}

/* {"key": b64(key)} plus "range_end" for a prefix. NULL on ENOMEM. */
static json_t *key_object(const char *key, size_t key_len, bool prefix)
{
    json_t *o = json_pack("{s:o*}", "key", b64_string(key, key_len));
    size_t end_len = 0;
    char *end;

    if (o == NULL || !prefix)
        return o;
    end = cm_etcd_prefix_end(key, key_len, &end_len);
    if (end == NULL || json_object_set_new(o, "range_end", b64_string(end, end_len)) != 0) {
        free(end);
        json_decref(o);
        return NULL;
    }
    free(end);
    return o;
}

char *cm_etcd_body_range(const char *key, size_t key_len, bool prefix, bool count_only)
{
    json_t *o = key_object(key, key_len, prefix);

    if (o != NULL && count_only && json_object_set_new(o, "count_only", json_true()) != 0) {
        json_decref(o);
        o = NULL;
    }
    return dump(o);
}

char *cm_etcd_body_put(const char *key, size_t key_len, const char *value, size_t value_len,
                       int64_t lease)
{
    json_t *o = json_pack("{s:o*,s:o*}", "key", b64_string(key, key_len), "value",
                          b64_string(value, value_len));

    if (o != NULL && lease != 0 && json_object_set_new(o, "lease", int64_string(lease)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return dump(o);
}

char *cm_etcd_body_delete(const char *key, size_t key_len, bool prefix)
{
    return dump(key_object(key, key_len, prefix));
}

char *cm_etcd_body_lease_grant(int64_t ttl_s)
{
    return dump(json_pack("{s:o*}", "TTL", int64_string(ttl_s)));
}

char *cm_etcd_body_keepalive(int64_t id)
{
    return dump(json_pack("{s:o*}", "ID", int64_string(id)));
}

char *cm_etcd_body_watch(const char *prefix, size_t prefix_len, int64_t start_revision)
{
    json_t *req = key_object(prefix, prefix_len, true);

    if (req != NULL && start_revision > 0 &&
        json_object_set_new(req, "start_revision", int64_string(start_revision)) != 0) {
        json_decref(req);
        req = NULL;
    }
    return dump(req != NULL ? json_pack("{s:o}", "create_request", req) : NULL);
}

char *cm_etcd_body_auth(const char *name, const char *password)
{
    json_t *o = json_pack("{s:s,s:s}", "name", name, "password", password);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_t *pw = json_object_get(o, "password");

    /* jansson's copy of the password goes away with the object: wipe it first. */
    if (json_is_string(pw))
        OPENSSL_cleanse((char *)(uintptr_t)json_string_value(pw), json_string_length(pw));
    json_decref(o);
    return text;
}

/* ---- reading ---- */

/* @body as a JSON object (new reference) or CM_EPARSE with the reason. */
static int load_object(const char *body, size_t len, json_t **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc;

    *out = NULL;
    if (len > CM_ETCD_BODY_MAX)
        return fail(err, errlen, "reply of %zu bytes exceeds the %u byte limit", len,
                    CM_ETCD_BODY_MAX);
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return fail(err, errlen, "not JSON: %s (line %d column %d)", jerr.text, jerr.line,
                    jerr.column);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fail(err, errlen, "not a JSON object");
    }
    *out = doc;
    return CM_OK;
}

/* An int64 field of @obj: a decimal string or an integer; absent = 0. */
static int get_i64(json_t *obj, const char *name, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, name);
    const char *s, *p;
    char *end = NULL;
    long long n;

    *out = 0;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return CM_OK;
    }
    if (!json_is_string(v))
        return fail(err, errlen, "%s: not a number", name);
    s = json_string_value(v);
    p = s[0] == '-' ? s + 1 : s;
    if (p[0] < '0' || p[0] > '9' || strlen(s) != json_string_length(v))
        return fail(err, errlen, "%s: not a decimal number", name);
    errno = 0;
    n = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0')
        return fail(err, errlen, "%s: not a 64-bit decimal number", name);
    *out = (int64_t)n;
    return CM_OK;
}

/* A non-negative int64 field (revisions, counts, TTLs). */
static int get_u63(json_t *obj, const char *name, int64_t *out, char *err, size_t errlen)
{
    int rc = get_i64(obj, name, out, err, errlen);

    if (rc == CM_OK && *out < 0)
        return fail(err, errlen, "%s: negative", name);
    return rc;
}

/* A base64 bytes field; absent = empty. *out is a new NUL-terminated buffer. */
static int get_bytes(json_t *obj, const char *name, char **out, size_t *out_len, char *err,
                     size_t errlen)
{
    json_t *v = json_object_get(obj, name);
    int rc;

    *out = NULL;
    *out_len = 0;
    if (v == NULL || json_is_null(v)) {
        *out = calloc(1, 1);
        return *out != NULL ? CM_OK : CM_ENOMEM;
    }
    if (!json_is_string(v))
        return fail(err, errlen, "%s: not a base64 string", name);
    rc = cm_base64_decode(json_string_value(v), json_string_length(v), out, out_len);
    if (rc == CM_EPARSE)
        return fail(err, errlen, "%s: invalid base64", name);
    return rc;
}

/* Copies @s into @out as one printable line. */
static void sanitize_copy(char *out, size_t cap, const char *s)
{
    size_t n = 0;

    if (cap == 0)
        return;
    for (; s != NULL && *s != '\0' && n + 1 < cap; s++)
        out[n++] = ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) ? '?' : *s;
    out[n] = '\0';
}

static int header_revision(json_t *obj, int64_t *rev, char *err, size_t errlen)
{
    json_t *h = json_object_get(obj, "header");
    char why[CM_ETCD_ERR_MAX];
    int rc;

    *rev = 0;
    if (h == NULL)
        return CM_OK;
    if (!json_is_object(h))
        return fail(err, errlen, "header: not an object");
    rc = get_u63(h, "revision", rev, why, sizeof(why));
    if (rc == CM_EPARSE)
        fail(err, errlen, "header.%s", why);
    return rc;
}

void cm_etcd_kv_fini(struct cm_etcd_kv *kv)
{
    if (kv == NULL)
        return;
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

static int parse_kv(json_t *o, struct cm_etcd_kv *kv, char *err, size_t errlen)
{
    int rc;

    memset(kv, 0, sizeof(*kv));
    if (!json_is_object(o))
        return fail(err, errlen, "kv: not an object");
    if (json_object_get(o, "key") == NULL)
        return fail(err, errlen, "kv: no key");
    rc = get_bytes(o, "key", &kv->key, &kv->key_len, err, errlen);
    if (rc == CM_OK && (kv->key_len == 0 || kv->key_len > CM_ETCD_KEY_MAX))
        rc = fail(err, errlen, "kv: key of %zu bytes (1..%d)", kv->key_len, CM_ETCD_KEY_MAX);
    if (rc == CM_OK)
        rc = get_bytes(o, "value", &kv->value, &kv->value_len, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(o, "create_revision", &kv->create_revision, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(o, "mod_revision", &kv->mod_revision, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(o, "version", &kv->version, err, errlen);
    if (rc == CM_OK)
        rc = get_i64(o, "lease", &kv->lease, err, errlen);
    if (rc != CM_OK)
        cm_etcd_kv_fini(kv);
    return rc;
}

bool cm_etcd_reply_error(const char *body, size_t len, int *code, char *msg, size_t msglen)
{
    json_t *doc = NULL;
    json_t *m, *c;
    bool is_error = false;

    *code = 0;
    if (msglen > 0)
        msg[0] = '\0';
    if (load_object(body, len, &doc, NULL, 0) != CM_OK)
        return false;
    m = json_object_get(doc, "message");
    if (!json_is_string(m))
        m = json_object_get(doc, "error");
    c = json_object_get(doc, "code");
    if (json_is_string(m) && (c == NULL || json_is_integer(c))) {
        is_error = true;
        sanitize_copy(msg, msglen, json_string_value(m));
        if (json_is_integer(c))
            *code = (int)json_integer_value(c);
    }
    json_decref(doc);
    return is_error;
}

int cm_etcd_parse_range(const char *body, size_t len, struct cm_etcd_range *out, char *err,
                        size_t errlen)
{
    json_t *doc = NULL, *kvs;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = load_object(body, len, &doc, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = header_revision(doc, &out->revision, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(doc, "count", &out->total, err, errlen);
    out->more = json_is_true(json_object_get(doc, "more"));
    kvs = json_object_get(doc, "kvs");
    if (rc == CM_OK && kvs != NULL && !json_is_array(kvs))
        rc = fail(err, errlen, "kvs: not an array");
    if (rc == CM_OK && json_array_size(kvs) > 0) {
        out->kvs = calloc(json_array_size(kvs), sizeof(*out->kvs));
        if (out->kvs == NULL)
            rc = CM_ENOMEM;
    }
    for (size_t i = 0; rc == CM_OK && i < json_array_size(kvs); i++) {
        char why[CM_ETCD_ERR_MAX];

        rc = parse_kv(json_array_get(kvs, i), &out->kvs[i], why, sizeof(why));
        if (rc == CM_EPARSE)
            fail(err, errlen, "kvs[%zu]: %s", i, why);
        if (rc == CM_OK)
            out->count++;
    }
    json_decref(doc);
    if (rc != CM_OK)
        cm_etcd_range_fini(out);
    return rc;
}

void cm_etcd_range_fini(struct cm_etcd_range *r)
{
    for (size_t i = 0; i < r->count; i++)
        cm_etcd_kv_fini(&r->kvs[i]);
    free(r->kvs);
    memset(r, 0, sizeof(*r));
}

int cm_etcd_parse_revision(const char *body, size_t len, int64_t *revision, char *err,
                           size_t errlen)
{
    json_t *doc = NULL;
    int rc = load_object(body, len, &doc, err, errlen);

    *revision = 0;
    if (rc == CM_OK)
        rc = header_revision(doc, revision, err, errlen);
    json_decref(doc);
    return rc;
}

int cm_etcd_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl_s, char *err,
                        size_t errlen)
{
    json_t *doc = NULL, *o;
    int rc = load_object(body, len, &doc, err, errlen);

    *id = *ttl_s = 0;
    if (rc != CM_OK)
        return rc;
    o = json_object_get(doc, "result"); /* keepalive: a stream message */
    if (o == NULL)
        o = doc;
    if (!json_is_object(o))
        rc = fail(err, errlen, "result: not an object");
    if (rc == CM_OK)
        rc = get_i64(o, "ID", id, err, errlen);
    if (rc == CM_OK)
        rc = get_i64(o, "TTL", ttl_s, err, errlen);
    if (rc == CM_OK && *id == 0)
        rc = fail(err, errlen, "no lease ID");
    if (rc == CM_OK && *ttl_s < 0)
        *ttl_s = 0; /* -1: expired */
    json_decref(doc);
    return rc;
}

int cm_etcd_parse_auth(const char *body, size_t len, char **token, char *err, size_t errlen)
{
    json_t *doc = NULL, *t;
    int rc = load_object(body, len, &doc, err, errlen);

    *token = NULL;
    if (rc != CM_OK)
        return rc;
    t = json_object_get(doc, "token");
    if (!json_is_string(t) || json_string_length(t) == 0 || json_string_length(t) > 4096 ||
        strlen(json_string_value(t)) != json_string_length(t))
        rc = fail(err, errlen, "no token in the reply");
    for (size_t i = 0; rc == CM_OK && i < json_string_length(t); i++) {
        unsigned char ch = (unsigned char)json_string_value(t)[i];

        if (ch <= 0x20 || ch >= 0x7f) /* goes into a header line as is */
            rc = fail(err, errlen, "the token has a byte a header cannot carry");
    }
    if (rc == CM_OK) {
        *token = strdup(json_string_value(t));
        if (*token == NULL)
            rc = CM_ENOMEM;
    }
    if (json_is_string(t))
        OPENSSL_cleanse((char *)(uintptr_t)json_string_value(t), json_string_length(t));
    json_decref(doc);
    return rc;
}

/* An unsigned 64-bit field (member IDs use the whole range); absent = 0. */
static int get_u64(json_t *obj, const char *name, uint64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, name);

    *out = 0;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return CM_OK;
    }
    if (json_is_string(v) &&
        cm_parse_u64_n(json_string_value(v), json_string_length(v), UINT64_MAX, out))
        return CM_OK;
    return fail(err, errlen, "%s: not an unsigned 64-bit number", name);
}

int cm_etcd_parse_status(const char *body, size_t len, struct cm_etcd_status *out, char *err,
                         size_t errlen)
{
    json_t *doc = NULL, *h, *errs;
    int rc = load_object(body, len, &doc, err, errlen);

    memset(out, 0, sizeof(*out));
    if (rc != CM_OK)
        return rc;
    h = json_object_get(doc, "header");
    sanitize_copy(out->version, sizeof(out->version),
                  json_string_value(json_object_get(doc, "version")));
    rc = header_revision(doc, &out->revision, err, errlen);
    if (rc == CM_OK && json_is_object(h))
        rc = get_u64(h, "member_id", &out->member_id, err, errlen);
    if (rc == CM_OK)
        rc = get_u64(doc, "leader", &out->leader, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(doc, "raftTerm", &out->raft_term, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(doc, "raftIndex", &out->raft_index, err, errlen);
    if (rc == CM_OK)
        rc = get_u63(doc, "dbSize", &out->db_size, err, errlen);
    errs = json_object_get(doc, "errors");
    if (rc == CM_OK && json_is_array(errs) && json_is_string(json_array_get(errs, 0)))
        sanitize_copy(out->errors, sizeof(out->errors), json_string_value(json_array_get(errs, 0)));
    json_decref(doc);
    return rc;
}

/* ---- the watch stream ---- */

void cm_etcd_watch_msg_fini(struct cm_etcd_watch_msg *m)
{
    for (size_t i = 0; i < m->count; i++)
        cm_etcd_kv_fini(&m->events[i].kv);
    free(m->events);
    memset(m, 0, sizeof(*m));
}

static int parse_event(json_t *e, struct cm_etcd_event *ev, char *err, size_t errlen)
{
    json_t *type;

    if (!json_is_object(e))
        return fail(err, errlen, "not an object");
    type = json_object_get(e, "type");
    if (type == NULL || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0) ||
        (json_is_integer(type) && json_integer_value(type) == 0))
        ev->type = CM_ETCD_EVENT_PUT;
    else if ((json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0) ||
             (json_is_integer(type) && json_integer_value(type) == 1))
        ev->type = CM_ETCD_EVENT_DELETE;
    else
        return fail(err, errlen, "type: not PUT or DELETE");
    return parse_kv(json_object_get(e, "kv"), &ev->kv, err, errlen);
}

static int parse_events(json_t *events, struct cm_etcd_watch_msg *m, char *err, size_t errlen)
{
    int rc = CM_OK;

    if (events == NULL)
        return CM_OK;
    if (!json_is_array(events))
        return fail(err, errlen, "events: not an array");
    if (json_array_size(events) == 0)
        return CM_OK;
    m->events = calloc(json_array_size(events), sizeof(*m->events));
    if (m->events == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; rc == CM_OK && i < json_array_size(events); i++) {
        char why[CM_ETCD_ERR_MAX];

        rc = parse_event(json_array_get(events, i), &m->events[i], why, sizeof(why));
        if (rc == CM_EPARSE)
            fail(err, errlen, "events[%zu]: %s", i, why);
        if (rc == CM_OK)
            m->count++;
    }
    return rc;
}

/* The gRPC code named in a cancel reason ("rpc error: code = Unauthenticated desc = ..."). */
static int code_of_reason(const char *reason)
{
    static const struct {
        const char *name;
        int code;
    } names[] = {
        {"code = Unauthenticated", CM_ETCD_CODE_UNAUTHENTICATED},
        {"code = PermissionDenied", CM_ETCD_CODE_PERMISSION_DENIED},
        {"code = InvalidArgument", CM_ETCD_CODE_INVALID_ARGUMENT},
        {"code = Unavailable", CM_ETCD_CODE_UNAVAILABLE},
        {"code = NotFound", CM_ETCD_CODE_NOT_FOUND},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strstr(reason, names[i].name) != NULL)
            return names[i].code;
    }
    return 0;
}

/* {"error": {"grpc_code": N, "message": "..."}}: the gateway's broken stream. */
static int parse_stream_error(json_t *e, struct cm_etcd_watch_msg *m, char *err, size_t errlen)
{
    json_t *code, *msg;

    m->kind = CM_ETCD_WATCH_ERROR;
    if (json_is_string(e)) { /* the unary form, should a gateway send it */
        sanitize_copy(m->reason, sizeof(m->reason), json_string_value(e));
        return CM_OK;
    }
    if (!json_is_object(e))
        return fail(err, errlen, "error: not an object");
    code = json_object_get(e, "grpc_code");
    msg = json_object_get(e, "message");
    if (json_is_integer(code))
        m->code = (int)json_integer_value(code);
    sanitize_copy(m->reason, sizeof(m->reason),
                  json_is_string(msg) ? json_string_value(msg) : "stream error");
    return CM_OK;
}

int cm_etcd_parse_watch(const char *line, size_t len, struct cm_etcd_watch_msg *out, char *err,
                        size_t errlen)
{
    json_t *doc = NULL, *res;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = load_object(line, len, &doc, err, errlen);
    if (rc != CM_OK)
        return rc;
    res = json_object_get(doc, "result");
    if (res == NULL && json_object_get(doc, "error") != NULL) {
        rc = parse_stream_error(json_object_get(doc, "error"), out, err, errlen);
        goto out;
    }
    if (!json_is_object(res)) {
        rc = fail(err, errlen, "no \"result\" object");
        goto out;
    }
    rc = header_revision(res, &out->revision, err, errlen);
    if (rc == CM_OK && json_is_true(json_object_get(res, "canceled"))) {
        const char *reason = json_string_value(json_object_get(res, "cancel_reason"));

        out->kind = CM_ETCD_WATCH_CANCELED;
        sanitize_copy(out->reason, sizeof(out->reason), reason != NULL ? reason : "");
        out->code = reason != NULL ? code_of_reason(reason) : 0;
        rc = get_u63(res, "compact_revision", &out->compact_revision, err, errlen);
    } else if (rc == CM_OK && json_is_true(json_object_get(res, "created"))) {
        out->kind = CM_ETCD_WATCH_CREATED;
    } else if (rc == CM_OK) {
        out->kind = CM_ETCD_WATCH_EVENTS;
        rc = parse_events(json_object_get(res, "events"), out, err, errlen);
    }
out:
    json_decref(doc);
    if (rc != CM_OK)
        cm_etcd_watch_msg_fini(out);
    return rc;
}
