/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_intent.c -- operator intents: parsing, sets, digest and the compiled
 * view (see cm_intent.h).
 *
 * A set is an array of intent pointers sorted by id; every intent in it holds
 * one reference per set. Changes copy the array (sets are small: at most
 * CM_INTENTS_MAX) and share the intents.
 */
#include "common/cm_intent.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "common/cm_sorted.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

struct cm_intents {
    struct cm_intent **v; /* sorted by id; one reference each */
    size_t count;
};

struct cm_intent_override {
    const char *service;      /* borrowed from the intent */
    uint32_t member;          /* conf index */
    enum cm_intent_kind kind; /* WEIGHT or PRIORITY */
    const struct cm_intent *by;
};

static const char *const kind_names[CM_INTENT_KIND_COUNT] = {
    "drain", "force-up", "force-down", "evacuate", "weight", "priority",
};

const char *cm_intent_kind_name(enum cm_intent_kind kind)
{
    return (unsigned)kind < CM_INTENT_KIND_COUNT ? kind_names[kind] : "?";
}

bool cm_intent_kind_parse(const char *name, enum cm_intent_kind *out)
{
    for (int k = 0; name != NULL && k < CM_INTENT_KIND_COUNT; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (enum cm_intent_kind)k;
            return true;
        }
    }
    return false;
}

void cm_intent_make_id(char *buf, size_t cap, enum cm_intent_kind kind, const char *target,
                       int64_t now, uint64_t rnd)
{
    char t[33];
    size_t n = 0;

    /* The target as id characters: whatever it is, the id is well formed. */
    for (; target[n] != '\0' && n < sizeof(t) - 1; n++) {
        char c = target[n];

        t[n] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a')
               : (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ? c
                                                                                          : '-';
    }
    t[n] = '\0';
    snprintf(buf, cap, "%s-%s-%" PRId64 "-%04x", cm_intent_kind_name(kind), t, now,
             (unsigned)(rnd & 0xffff));
}

/* ---- one intent ---- */

static void intent_free(struct cm_intent *i)
{
    free(i->id);
    free(i->member);
    free(i->region);
    free(i->service);
    free(i->author);
    free(i->reason);
    free(i->removed_by);
    free(i->canon);
    free(i);
}

void cm_intent_unref(struct cm_intent *i)
{
    if (i != NULL && --i->refs == 0)
        intent_free(i);
}

static struct cm_intent *intent_ref(struct cm_intent *i)
{
    i->refs++;
    return i;
}

bool cm_intent_is_active(const struct cm_intent *i, int64_t now)
{
    return i->removed_at == 0 && (i->expires_at == 0 || now < i->expires_at);
}

const char *cm_intent_status(const struct cm_intent *i, int64_t now)
{
    if (i->removed_at != 0)
        return "removed";
    return cm_intent_is_active(i, now) ? "active" : "expired";
}

static int bad(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return CM_EINVAL;
}

static bool id_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CM_INTENT_ID_MAX)
        return false;
    for (size_t k = 0; k < n; k++) {
        char c = s[k];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (!alnum && (k == 0 || (c != '-' && c != '.' && c != '_')))
            return false;
    }
    return true;
}

/* Text an operator wrote: no control characters, at most @max bytes. */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];

        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool service_key_ok(const char *key)
{
    const char *slash = strchr(key, '/');

    return slash != NULL && cm_str_is_dns_label(key, (size_t)(slash - key)) &&
           cm_str_is_dns_label(slash + 1, strlen(slash + 1));
}

/* A string field: absent is fine unless @required; *out an owned copy. */
static int get_str(json_t *v, const char *key, bool required, char **out, char *err, size_t errlen)
{
    json_t *f = json_object_get(v, key);

    *out = NULL;
    if (f == NULL || json_is_null(f))
        return required ? bad(err, errlen, "%s: missing", key) : CM_OK;
    if (!json_is_string(f))
        return bad(err, errlen, "%s: must be a string", key);
    *out = strdup(json_string_value(f));
    return *out != NULL ? CM_OK : CM_ENOMEM;
}

/* A time field (RFC 3339 UTC): 0 when absent and not @required. */
static int get_time(json_t *v, const char *key, bool required, int64_t *out, char *err,
                    size_t errlen)
{
    json_t *f = json_object_get(v, key);

    *out = 0;
    if (f == NULL || json_is_null(f))
        return required ? bad(err, errlen, "%s: missing", key) : CM_OK;
    if (!json_is_string(f) || !cm_time_parse_rfc3339(json_string_value(f), out) || *out <= 0)
        return bad(err, errlen,
                   "%s: not an RFC 3339 UTC time after 1970 (\"2026-11-21T07:00:00Z\")", key);
    return CM_OK;
}

static int check_keys(json_t *v, char *err, size_t errlen)
{
    static const char *const known[] = {
        "id",     "kind",   "member",     "region",     "service",    "weight",     "priority",
        "author", "reason", "created_at", "expires_at", "removed_at", "removed_by",
    };
    const char *key;
    json_t *f;

    json_object_foreach(v, key, f)
    {
        size_t k = 0;

        (void)f;
        while (k < sizeof(known) / sizeof(known[0]) && strcmp(known[k], key) != 0)
            k++;
        if (k == sizeof(known) / sizeof(known[0]))
            return bad(err, errlen, "%s: unknown field", key);
    }
    return CM_OK;
}

static int parse_kind(json_t *v, enum cm_intent_kind *out, char *err, size_t errlen)
{
    if (cm_intent_kind_parse(json_string_value(json_object_get(v, "kind")), out))
        return CM_OK;
    return bad(err, errlen,
               "kind: must be one of \"drain\", \"force-up\", \"force-down\", \"evacuate\", "
               "\"weight\", \"priority\"");
}

/* What each kind names: member, region, service, and which value field. */
static int parse_target(json_t *v, const struct cm_conf *conf, struct cm_intent *in, char *err,
                        size_t errlen)
{
    bool want_member = in->kind != CM_INTENT_EVACUATE;
    bool want_region = in->kind == CM_INTENT_EVACUATE;
    bool want_service = in->kind == CM_INTENT_WEIGHT || in->kind == CM_INTENT_PRIORITY;
    const char *vkey = in->kind == CM_INTENT_WEIGHT     ? "weight"
                       : in->kind == CM_INTENT_PRIORITY ? "priority"
                                                        : NULL;
    const char *kind = kind_names[in->kind];
    int rc;

    rc = get_str(v, "member", want_member, &in->member, err, errlen);
    if (rc == CM_OK)
        rc = get_str(v, "region", want_region, &in->region, err, errlen);
    if (rc == CM_OK)
        rc = get_str(v, "service", want_service, &in->service, err, errlen);
    if (rc != CM_OK)
        return rc;
    if (!want_member && in->member != NULL)
        return bad(err, errlen, "member: not a field of a %s intent", kind);
    if (!want_region && in->region != NULL)
        return bad(err, errlen, "region: not a field of a %s intent (evacuate names a region)",
                   kind);
    if (!want_service && in->service != NULL)
        return bad(err, errlen, "service: not a field of a %s intent", kind);
    if (in->member != NULL && conf != NULL && cm_conf_member_index(conf, in->member) < 0)
        return bad(err, errlen, "member: unknown member \"%.64s\"", in->member);
    if (in->member != NULL && !cm_str_is_dns_label(in->member, strlen(in->member)))
        return bad(err, errlen, "member: not a member name");
    if (in->region != NULL && conf != NULL && cm_conf_region_index(conf, in->region) < 0)
        return bad(err, errlen, "region: unknown region \"%.64s\"", in->region);
    if (in->region != NULL && !cm_str_is_dns_label(in->region, strlen(in->region)))
        return bad(err, errlen, "region: not a region name");
    if (in->service != NULL && !service_key_ok(in->service))
        return bad(err, errlen, "service: not a service key (\"namespace/name\")");
    for (int k = CM_INTENT_WEIGHT; k <= CM_INTENT_PRIORITY; k++) {
        json_t *f = json_object_get(v, kind_names[k]);

        if (f != NULL && (vkey == NULL || strcmp(vkey, kind_names[k]) != 0))
            return bad(err, errlen, "%s: not a field of a %s intent", kind_names[k], kind);
    }
    if (vkey != NULL) {
        json_t *f = json_object_get(v, vkey);

        if (!json_is_integer(f) || json_integer_value(f) < 0 ||
            json_integer_value(f) > CM_INTENT_VALUE_MAX)
            return bad(err, errlen, "%s: must be an integer 0..%d", vkey, CM_INTENT_VALUE_MAX);
        in->value = (uint32_t)json_integer_value(f);
    }
    return CM_OK;
}

static int parse_meta(json_t *v, struct cm_intent *in, char *err, size_t errlen)
{
    int rc = get_str(v, "author", true, &in->author, err, errlen);

    if (rc == CM_OK)
        rc = get_str(v, "reason", true, &in->reason, err, errlen);
    if (rc == CM_OK)
        rc = get_str(v, "removed_by", false, &in->removed_by, err, errlen);
    if (rc == CM_OK)
        rc = get_time(v, "created_at", true, &in->created_at, err, errlen);
    if (rc == CM_OK)
        rc = get_time(v, "expires_at", false, &in->expires_at, err, errlen);
    if (rc == CM_OK)
        rc = get_time(v, "removed_at", false, &in->removed_at, err, errlen);
    if (rc != CM_OK)
        return rc;
    if (!text_ok(in->author, CM_INTENT_AUTHOR_MAX))
        return bad(err, errlen, "author: 1 to %d characters, no control characters",
                   CM_INTENT_AUTHOR_MAX);
    if (!text_ok(in->reason, CM_INTENT_REASON_MAX))
        return bad(err, errlen, "reason: 1 to %d characters, no control characters",
                   CM_INTENT_REASON_MAX);
    if (in->expires_at != 0 && in->expires_at <= in->created_at)
        return bad(err, errlen, "expires_at: must be later than created_at");
    if (in->kind == CM_INTENT_EVACUATE &&
        (in->expires_at == 0 || in->expires_at - in->created_at > CM_INTENT_EVACUATE_MAX_S))
        return bad(err, errlen,
                   "expires_at: an evacuation needs an expiry at most %d days after created_at",
                   CM_INTENT_EVACUATE_MAX_S / 86400);
    if ((in->removed_at != 0) != (in->removed_by != NULL))
        return bad(err, errlen, "removed_at and removed_by go together");
    if (in->removed_by != NULL && !text_ok(in->removed_by, CM_INTENT_AUTHOR_MAX))
        return bad(err, errlen, "removed_by: 1 to %d characters, no control characters",
                   CM_INTENT_AUTHOR_MAX);
    return CM_OK;
}

/* Adds "key": "time" to @o when @t is set. */
static int set_time(json_t *o, const char *key, int64_t t)
{
    char buf[32];

    if (t == 0)
        return 0;
    cm_time_format_rfc3339(t, buf, sizeof(buf));
    return json_object_set_new(o, key, json_string(buf));
}

static int set_str(json_t *o, const char *key, const char *s)
{
    return s != NULL ? json_object_set_new(o, key, json_string(s)) : 0;
}

json_t *cm_intent_json(const struct cm_intent *i)
{
    json_t *o = json_object();
    int bad_set = 0;

    if (o == NULL)
        return NULL;
    bad_set |= set_str(o, "id", i->id);
    bad_set |= set_str(o, "kind", kind_names[i->kind]);
    bad_set |= set_str(o, "member", i->member);
    bad_set |= set_str(o, "region", i->region);
    bad_set |= set_str(o, "service", i->service);
    if (i->kind == CM_INTENT_WEIGHT || i->kind == CM_INTENT_PRIORITY)
        bad_set |= json_object_set_new(o, kind_names[i->kind], json_integer(i->value));
    bad_set |= set_str(o, "author", i->author);
    bad_set |= set_str(o, "reason", i->reason);
    bad_set |= set_time(o, "created_at", i->created_at);
    bad_set |= set_time(o, "expires_at", i->expires_at);
    bad_set |= set_time(o, "removed_at", i->removed_at);
    bad_set |= set_str(o, "removed_by", i->removed_by);
    if (bad_set != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The canonical text: what two holders compare and the digest hashes. */
static int make_canon(struct cm_intent *in)
{
    json_t *o = cm_intent_json(in);

    in->canon = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(o);
    return in->canon != NULL ? CM_OK : CM_ENOMEM;
}

int cm_intent_parse(json_t *v, const struct cm_conf *conf, struct cm_intent **out, char *err,
                    size_t errlen)
{
    struct cm_intent *in;
    int rc;

    *out = NULL;
    if (!json_is_object(v))
        return bad(err, errlen, "an intent is a JSON object");
    rc = check_keys(v, err, errlen);
    if (rc != CM_OK)
        return rc;
    in = calloc(1, sizeof(*in));
    if (in == NULL)
        return CM_ENOMEM;
    in->refs = 1;
    rc = get_str(v, "id", true, &in->id, err, errlen);
    if (rc == CM_OK && !id_ok(in->id))
        rc = bad(err, errlen, "id: 1 to %d of a-z 0-9 . _ - (starting with a letter or digit)",
                 CM_INTENT_ID_MAX);
    if (rc == CM_OK)
        rc = parse_kind(v, &in->kind, err, errlen);
    if (rc == CM_OK)
        rc = parse_target(v, conf, in, err, errlen);
    if (rc == CM_OK)
        rc = parse_meta(v, in, err, errlen);
    if (rc == CM_OK)
        rc = make_canon(in);
    if (rc == CM_ENOMEM)
        cm_errf(err, errlen, "out of memory");
    if (rc != CM_OK) {
        intent_free(in);
        return rc;
    }
    *out = in;
    return CM_OK;
}

int cm_intent_parse_text(const char *text, size_t len, const struct cm_conf *conf,
                         struct cm_intent **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *v;
    int rc;

    *out = NULL;
    if (len > CM_INTENT_TEXT_MAX)
        return bad(err, errlen, "an intent is at most %d bytes", CM_INTENT_TEXT_MAX);
    v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v == NULL)
        return bad(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                   jerr.text);
    rc = cm_intent_parse(v, conf, out, err, errlen);
    json_decref(v);
    return rc;
}

/* ---- sets ---- */

struct cm_intents *cm_intents_new(void)
{
    return calloc(1, sizeof(struct cm_intents));
}

void cm_intents_free(struct cm_intents *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++)
        cm_intent_unref(s->v[i]);
    free(s->v);
    free(s);
}

size_t cm_intents_count(const struct cm_intents *s)
{
    return s->count;
}

const struct cm_intent *cm_intents_get(const struct cm_intents *s, size_t i)
{
    return i < s->count ? s->v[i] : NULL;
}

/* An intent (an element of cm_intents.v) against an id. */
static int id_cmp(const void *elem, const void *id)
{
    return strcmp((*(const struct cm_intent *const *)elem)->id, id);
}

/* Position of @id, or where it would go (*found false). */
static size_t find_pos(const struct cm_intents *s, const char *id, bool *found)
{
    return cm_lower_bound(s->v, s->count, sizeof(*s->v), id, id_cmp, found);
}

const struct cm_intent *cm_intents_find(const struct cm_intents *s, const char *id)
{
    bool found;
    size_t pos = find_pos(s, id, &found);

    return found ? s->v[pos] : NULL;
}

enum set_op {
    SET_INSERT = 0,  /* @in goes in at @pos */
    SET_REPLACE = 1, /* @in takes the place of position @pos */
};

/* A copy of @s changed by @op at @pos; @in's reference is taken. */
static int set_with(const struct cm_intents *s, size_t pos, struct cm_intent *in, enum set_op op,
                    struct cm_intents **out)
{
    struct cm_intents *n = calloc(1, sizeof(*n));
    size_t k = 0;

    if (n != NULL)
        n->v = calloc(s->count + 1, sizeof(*n->v));
    if (n == NULL || n->v == NULL) {
        free(n);
        cm_intent_unref(in);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i <= s->count; i++) {
        if (i == pos)
            n->v[k++] = in;
        if (i == s->count)
            break;
        if (i != pos || op == SET_INSERT)
            n->v[k++] = intent_ref(s->v[i]);
    }
    n->count = k;
    *out = n;
    return CM_OK;
}

int cm_intents_put(const struct cm_intents *s, struct cm_intent *in, int64_t now,
                   struct cm_intents **out, char *err, size_t errlen)
{
    bool found;
    size_t pos = find_pos(s, in->id, &found);
    const struct cm_intent *held = found ? s->v[pos] : NULL;
    char when[32];

    *out = NULL;
    if (in->removed_at == 0 && in->expires_at != 0 && in->expires_at <= now) {
        cm_intent_unref(in);
        return bad(err, errlen, "expires_at: already past");
    }
    if (held != NULL && strcmp(held->canon, in->canon) == 0) {
        cm_intent_unref(in); /* the same again: nothing changes */
        return CM_OK;
    }
    if (held != NULL && held->removed_at != 0) {
        bool tombstone = in->removed_at != 0;

        cm_intent_unref(in);
        if (tombstone) /* removed already: a second removal changes nothing */
            return CM_OK;
        cm_time_format_rfc3339(held->removed_at, when, sizeof(when));
        cm_errf(err, errlen, "intent %s was removed at %s by %s (ids are not reused)", held->id,
                when, held->removed_by);
        return CM_EEXIST;
    }
    if (held != NULL && in->removed_at == 0) {
        cm_errf(err, errlen, "intent %s exists with other content (ids are not reused)", in->id);
        cm_intent_unref(in);
        return CM_EEXIST;
    }
    if (held == NULL && s->count >= CM_INTENTS_MAX) {
        cm_intent_unref(in);
        cm_errf(err, errlen, "too many intents (%d held, removed ones included)", CM_INTENTS_MAX);
        return CM_ETOOBIG;
    }
    /* New, or a tombstone replacing the live intent of its id. */
    return set_with(s, pos, in, held != NULL ? SET_REPLACE : SET_INSERT, out);
}

int cm_intents_remove(const struct cm_intents *s, const char *id, const char *by, int64_t now,
                      struct cm_intents **out, char *err, size_t errlen)
{
    bool found;
    size_t pos = find_pos(s, id, &found);
    const struct cm_intent *held = found ? s->v[pos] : NULL;
    struct cm_intent *t;
    int rc;

    *out = NULL;
    if (held == NULL) {
        cm_errf(err, errlen, "no intent %.64s", id);
        return CM_ENOENT;
    }
    if (held->removed_at != 0)
        return CM_OK;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return CM_ENOMEM;
    *t = *held;
    t->refs = 1;
    t->removed_at = now > held->created_at ? now : held->created_at + 1;
    t->id = strdup(held->id);
    t->member = held->member != NULL ? strdup(held->member) : NULL;
    t->region = held->region != NULL ? strdup(held->region) : NULL;
    t->service = held->service != NULL ? strdup(held->service) : NULL;
    t->author = strdup(held->author);
    t->reason = strdup(held->reason);
    t->removed_by = strdup(by != NULL && text_ok(by, CM_INTENT_AUTHOR_MAX) ? by : "unknown");
    t->canon = NULL;
    rc = t->id != NULL && t->author != NULL && t->reason != NULL && t->removed_by != NULL &&
                 (held->member == NULL || t->member != NULL) &&
                 (held->region == NULL || t->region != NULL) &&
                 (held->service == NULL || t->service != NULL)
             ? make_canon(t)
             : CM_ENOMEM;
    if (rc != CM_OK) {
        intent_free(t);
        return rc;
    }
    return set_with(s, pos, t, SET_REPLACE, out);
}

static bool prunable(const struct cm_intent *i, int64_t now)
{
    if (i->removed_at != 0)
        return now - i->removed_at > CM_INTENT_TOMBSTONE_KEEP_S;
    return i->expires_at != 0 && now - i->expires_at > CM_INTENT_EXPIRED_KEEP_S;
}

int cm_intents_prune(const struct cm_intents *s, int64_t now, struct cm_intents **out)
{
    struct cm_intents *n;
    size_t drop = 0;

    *out = NULL;
    for (size_t i = 0; i < s->count; i++)
        drop += prunable(s->v[i], now);
    if (drop == 0)
        return CM_OK;
    n = calloc(1, sizeof(*n));
    if (n != NULL)
        n->v = calloc(s->count - drop + 1, sizeof(*n->v));
    if (n == NULL || n->v == NULL) {
        free(n);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < s->count; i++) {
        if (!prunable(s->v[i], now))
            n->v[n->count++] = intent_ref(s->v[i]);
    }
    *out = n;
    return CM_OK;
}

uint64_t cm_intents_digest(const struct cm_intents *s, int64_t now)
{
    uint64_t h = CM_FNV1A64_INIT;

    for (size_t i = 0; i < s->count; i++) {
        if (!cm_intent_is_active(s->v[i], now))
            continue;
        h = cm_fnv1a64_str(h, s->v[i]->canon);
        h = cm_fnv1a64_byte(h, '\n');
    }
    return h;
}

size_t cm_intents_active_count(const struct cm_intents *s, int64_t now)
{
    size_t n = 0;

    for (size_t i = 0; i < s->count; i++)
        n += cm_intent_is_active(s->v[i], now);
    return n;
}

json_t *cm_intents_file_json(const struct cm_intents *s)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < s->count; i++) {
        if (json_array_append_new(arr, cm_intent_json(s->v[i])) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *cm_intents_json(const struct cm_intents *s, int64_t now)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < s->count; i++) {
        json_t *o = cm_intent_json(s->v[i]);

        if (o == NULL ||
            json_object_set_new(o, "status", json_string(cm_intent_status(s->v[i], now))) != 0 ||
            json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static int intent_cmp(const void *a, const void *b)
{
    const struct cm_intent *x = *(const struct cm_intent *const *)a;
    const struct cm_intent *y = *(const struct cm_intent *const *)b;
    int c = strcmp(x->id, y->id);

    if (c != 0)
        return c;
    /* One id twice: the tombstone first (it is kept). */
    return (y->removed_at != 0) - (x->removed_at != 0);
}

int cm_intents_load(json_t *arr, const struct cm_conf *conf, const char *path,
                    struct cm_intents **out)
{
    struct cm_intents *n = calloc(1, sizeof(*n));
    size_t cap = json_array_size(arr);

    *out = NULL;
    if (n == NULL)
        return CM_ENOMEM;
    n->v = calloc(cap + 1, sizeof(*n->v));
    if (n->v == NULL) {
        free(n);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++) {
        char why[CM_INTENT_ERR_MAX];
        struct cm_intent *in = NULL;
        int rc = cm_intent_parse(json_array_get(arr, i), conf, &in, why, sizeof(why));

        if (rc == CM_ENOMEM) {
            cm_intents_free(n);
            return rc;
        }
        if (rc == CM_OK && n->count >= CM_INTENTS_MAX) {
            cm_intent_unref(in);
            rc = CM_ETOOBIG;
            cm_errf(why, sizeof(why), "more than %d intents", CM_INTENTS_MAX);
        }
        if (rc != CM_OK) {
            cm_log_warn("state file %s: intents[%zu] skipped: %s", path, i, why);
            continue;
        }
        n->v[n->count++] = in;
    }
    qsort(n->v, n->count, sizeof(*n->v), intent_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n->count; i++) {
        if (k > 0 && strcmp(n->v[i]->id, n->v[k - 1]->id) == 0) {
            cm_log_warn("state file %s: intent %s listed twice; keeping one", path, n->v[i]->id);
            cm_intent_unref(n->v[i]);
            continue;
        }
        n->v[k++] = n->v[i];
    }
    n->count = k;
    *out = n;
    return CM_OK;
}

json_t *cm_intents_digest_json(const struct cm_store *store, const struct cm_intents *s,
                               int64_t now)
{
    uint64_t idig = cm_intents_digest(s, now);
    json_t *vantages = json_object(), *ids = json_array();
    char state_hex[24], intents_hex[24];

    for (size_t i = 0; vantages != NULL && i < cm_store_count(store); i++) {
        const struct cm_state *d = cm_store_get(store, i, NULL);

        json_object_set_new(vantages, d->vantage, json_integer((json_int_t)d->generation));
    }
    for (size_t i = 0; ids != NULL && i < s->count; i++) {
        if (cm_intent_is_active(s->v[i], now))
            json_array_append_new(ids, json_string(s->v[i]->id));
    }
    snprintf(state_hex, sizeof(state_hex), "%016" PRIx64, cm_store_digest(store, idig));
    snprintf(intents_hex, sizeof(intents_hex), "%016" PRIx64, idig);
    return json_pack("{s:s,s:s,s:o*,s:o*}", "state", state_hex, "intents", intents_hex, "vantages",
                     vantages, "active_intents", ids);
}

/* ---- the view ---- */

/* Overrides by (service, member, kind) alone: the lookup's order. */
static int override_key_cmp(const void *a, const void *b)
{
    const struct cm_intent_override *x = a, *y = b;
    int c = strcmp(x->service, y->service);

    if (c != 0)
        return c;
    if (x->member != y->member)
        return x->member < y->member ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return 0;
}

static int override_cmp(const void *a, const void *b)
{
    const struct cm_intent_override *x = a, *y = b;
    int c = override_key_cmp(a, b);

    if (c != 0)
        return c;
    /* The newest first: it is the one that counts. */
    if (x->by->created_at != y->by->created_at)
        return x->by->created_at > y->by->created_at ? -1 : 1;
    return strcmp(y->by->id, x->by->id);
}

static enum cm_intent_admin admin_of(enum cm_intent_kind kind)
{
    switch (kind) {
    case CM_INTENT_DRAIN:
        return CM_ADMIN_DRAINED;
    case CM_INTENT_EVACUATE:
        return CM_ADMIN_EVACUATED;
    case CM_INTENT_FORCE_DOWN:
        return CM_ADMIN_FORCE_DOWN;
    case CM_INTENT_FORCE_UP:
        return CM_ADMIN_FORCE_UP;
    case CM_INTENT_WEIGHT:
    case CM_INTENT_PRIORITY:
        break;
    }
    return CM_ADMIN_NONE;
}

/* Raises member @m's admin state to what @i says, when that is higher. */
static void admin_raise(struct cm_intent_view *v, size_t m, const struct cm_intent *i)
{
    enum cm_intent_admin a = admin_of(i->kind);

    if (a > v->admin[m] ||
        (a == v->admin[m] && a != CM_ADMIN_NONE && i->created_at > v->admin_by[m]->created_at)) {
        v->admin[m] = a;
        v->admin_by[m] = i;
    }
}

/* Applies one active intent to the view; false when @conf does not know its target. */
static bool view_apply(struct cm_intent_view *v, const struct cm_conf *conf,
                       const struct cm_intent *i)
{
    int m = i->member != NULL ? cm_conf_member_index(conf, i->member) : -1;
    int r = i->region != NULL ? cm_conf_region_index(conf, i->region) : -1;

    switch (i->kind) {
    case CM_INTENT_DRAIN:
    case CM_INTENT_FORCE_UP:
    case CM_INTENT_FORCE_DOWN:
        if (m < 0)
            return false;
        admin_raise(v, (size_t)m, i);
        return true;
    case CM_INTENT_EVACUATE:
        if (r < 0)
            return false;
        for (size_t k = 0; k < conf->member_count; k++) {
            if (conf->members[k].region == (size_t)r)
                admin_raise(v, k, i);
        }
        return true;
    case CM_INTENT_WEIGHT:
    case CM_INTENT_PRIORITY:
        if (m < 0)
            return false;
        v->overrides[v->override_count++] = (struct cm_intent_override){
            .service = i->service, .member = (uint32_t)m, .kind = i->kind, .by = i};
        return true;
    }
    return false;
}

int cm_intent_view_build(const struct cm_intents *s, const struct cm_conf *conf, int64_t now,
                         struct cm_intent_view **out)
{
    struct cm_intent_view *v = calloc(1, sizeof(*v));
    size_t nm = conf->member_count > 0 ? conf->member_count : 1;
    size_t ni = s != NULL ? s->count : 0;

    *out = NULL;
    if (v == NULL)
        return CM_ENOMEM;
    v->member_count = conf->member_count;
    v->admin = calloc(nm, sizeof(*v->admin));
    v->admin_by = calloc(nm, sizeof(*v->admin_by));
    v->active = calloc(ni + 1, sizeof(*v->active));
    v->overrides = calloc(ni + 1, sizeof(*v->overrides));
    if (v->admin == NULL || v->admin_by == NULL || v->active == NULL || v->overrides == NULL) {
        cm_intent_view_free(v);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < ni; i++) {
        struct cm_intent *in = s->v[i];

        if (cm_intent_is_active(in, now) && view_apply(v, conf, in))
            v->active[v->active_count++] = intent_ref(in);
    }
    qsort(v->overrides, v->override_count, sizeof(*v->overrides), override_cmp);
    v->digest = s != NULL ? cm_intents_digest(s, now) : CM_FNV1A64_INIT;
    *out = v;
    return CM_OK;
}

void cm_intent_view_free(struct cm_intent_view *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->active_count; i++)
        cm_intent_unref(v->active[i]);
    free(v->active);
    free(v->admin);
    free(v->admin_by);
    free(v->overrides);
    free(v);
}

enum cm_intent_admin cm_intent_view_admin(const struct cm_intent_view *v, size_t m,
                                          const struct cm_intent **by)
{
    if (by != NULL)
        *by = NULL;
    if (v == NULL || m >= v->member_count)
        return CM_ADMIN_NONE;
    if (by != NULL)
        *by = v->admin_by[m];
    return v->admin[m];
}

bool cm_intent_view_value(const struct cm_intent_view *v, const char *service, size_t m,
                          enum cm_intent_kind kind, uint32_t *value, const struct cm_intent **by)
{
    const struct cm_intent_override key = {.service = service, .member = (uint32_t)m, .kind = kind};
    bool found;
    size_t i;

    if (v == NULL || service == NULL || v->override_count == 0)
        return false;
    /* The first entry of (service, m, kind): the newest intent. */
    i = cm_lower_bound(v->overrides, v->override_count, sizeof(*v->overrides), &key,
                       override_key_cmp, &found);
    if (!found)
        return false;
    *value = v->overrides[i].by->value;
    if (by != NULL)
        *by = v->overrides[i].by;
    return true;
}

bool cm_intent_applies(const struct cm_intent *i, const struct cm_conf *conf, const char *service,
                       size_t m)
{
    if (m >= conf->member_count)
        return false;
    switch (i->kind) {
    case CM_INTENT_DRAIN:
    case CM_INTENT_FORCE_UP:
    case CM_INTENT_FORCE_DOWN:
        return strcmp(i->member, conf->members[m].name) == 0;
    case CM_INTENT_EVACUATE:
        return strcmp(i->region, conf->regions[conf->members[m].region].name) == 0;
    case CM_INTENT_WEIGHT:
    case CM_INTENT_PRIORITY:
        return strcmp(i->member, conf->members[m].name) == 0 &&
               (service == NULL || strcmp(i->service, service) == 0);
    }
    return false;
}
