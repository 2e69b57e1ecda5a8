/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_intent.c -- intents built, merged and compared for fedgslbctl (see ctl_intent.h). */
#include "ctl/ctl_intent.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "ctl/ctl_args.h"
#include "ctl/ctl_table.h"

/* ---- building one ---- */

static bool kind_has_value(enum cm_intent_kind kind)
{
    return kind == CM_INTENT_WEIGHT || kind == CM_INTENT_PRIORITY;
}

/* expires_at from --for or --until; 0 for none; -1 (and @err) when --until is bad. */
static int64_t expiry_of(const struct ctl_opts *o, int64_t now, char *err, size_t errlen)
{
    int64_t t;

    if (o->for_s != 0)
        return now + (int64_t)o->for_s;
    if (o->until == NULL)
        return 0;
    if (!cm_time_parse_rfc3339(o->until, &t)) {
        cm_errf(err, errlen, "--until: not an RFC 3339 UTC time (2026-11-21T07:00:00Z)");
        return -1;
    }
    if (t <= now) {
        cm_errf(err, errlen, "--until: %s is not in the future", o->until);
        return -1;
    }
    return t;
}

/* The fields that say what the intent is about. */
static int target_fields(json_t *j, const struct ctl_opts *o, enum cm_intent_kind kind,
                         const char *target, const char *value, char *err, size_t errlen)
{
    const char *kname = cm_intent_kind_name(kind);
    uint64_t v = 0;

    if (!kind_has_value(kind) && value != NULL) {
        cm_errf(err, errlen, "%s %s: takes no value", kname, target);
        return CM_EINVAL;
    }
    if (!kind_has_value(kind))
        return json_object_set_new(j, kind == CM_INTENT_EVACUATE ? "region" : "member",
                                   json_string(target)) == 0
                   ? CM_OK
                   : CM_ENOMEM;
    if (value == NULL || !cm_parse_u64(value, CM_INTENT_VALUE_MAX, &v)) {
        cm_errf(err, errlen, "%s %s N: N must be 0..%d", kname, target, CM_INTENT_VALUE_MAX);
        return CM_EINVAL;
    }
    if (o->service == NULL) {
        cm_errf(err, errlen, "%s: --service NS/NAME is required", kname);
        return CM_EINVAL;
    }
    if (json_object_set_new(j, "member", json_string(target)) != 0 ||
        json_object_set_new(j, "service", json_string(o->service)) != 0 ||
        json_object_set_new(j, kname, json_integer((json_int_t)v)) != 0)
        return CM_ENOMEM;
    return CM_OK;
}

json_t *ctl_intent_build(const struct ctl_opts *o, enum cm_intent_kind kind, const char *target,
                         const char *value, const char *user, const char *default_reason,
                         const struct cm_conf *conf, int64_t now, uint64_t rnd, char *err,
                         size_t errlen)
{
    char id[CM_INTENT_ID_MAX + 1], created[32], expires[32];
    const char *reason = o->reason != NULL ? o->reason : default_reason;
    const char *author = o->author != NULL ? o->author : user;
    struct cm_intent *check = NULL;
    int64_t exp = expiry_of(o, now, err, errlen);
    json_t *j;

    if (exp < 0)
        return NULL;
    if (reason == NULL) {
        cm_errf(err, errlen, "--reason TEXT is required");
        return NULL;
    }
    cm_intent_make_id(id, sizeof(id), kind, target, now, rnd);
    cm_time_format_rfc3339(now, created, sizeof(created));
    j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", id, "kind", cm_intent_kind_name(kind), "author",
                  author != NULL && author[0] != '\0' ? author : "fedgslbctl", "reason", reason,
                  "created_at", created);
    if (j == NULL || target_fields(j, o, kind, target, value, err, errlen) != CM_OK) {
        if (j == NULL)
            cm_errf(err, errlen, "out of memory");
        json_decref(j);
        return NULL;
    }
    if (exp > 0) {
        cm_time_format_rfc3339(exp, expires, sizeof(expires));
        json_object_set_new(j, "expires_at", json_string(expires));
    }
    /* What a name server would refuse is refused here, before anything is sent. */
    if (cm_intent_parse(j, conf, &check, err, errlen) != CM_OK) {
        json_decref(j);
        return NULL;
    }
    cm_intent_unref(check);
    return j;
}

/* ---- merging and re-delivery ---- */

static const char *id_of(json_t *in)
{
    return json_string_value(json_object_get(in, "id"));
}

static bool removed(json_t *in)
{
    return json_object_get(in, "removed_at") != NULL;
}

static bool expired(json_t *in)
{
    const char *st = json_string_value(json_object_get(in, "status"));

    return st != NULL && strcmp(st, "expired") == 0;
}

/* The entry of @id in @list, or NULL. */
static json_t *find_id(json_t *list, const char *id)
{
    size_t i;
    json_t *in;

    json_array_foreach(list, i, in)
    {
        const char *x = id_of(in);

        if (x != NULL && strcmp(x, id) == 0)
            return in;
    }
    return NULL;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(id_of(*(json_t *const *)a), id_of(*(json_t *const *)b));
}

json_t *ctl_intents_union(json_t *const *lists, size_t n)
{
    json_t *map = json_object(), *out = json_array();
    json_t **sorted = NULL;
    const char *key;
    json_t *in;
    size_t k = 0;

    for (size_t l = 0; map != NULL && l < n; l++) {
        size_t i;

        json_array_foreach(lists[l], i, in)
        {
            json_t *held;

            if (id_of(in) == NULL)
                continue;
            held = json_object_get(map, id_of(in));
            if (held == NULL || (!removed(held) && removed(in)))
                json_object_set(map, id_of(in), in);
        }
    }
    if (map != NULL)
        sorted = calloc(json_object_size(map) + 1, sizeof(*sorted));
    if (sorted == NULL || out == NULL) {
        free(sorted);
        json_decref(map);
        json_decref(out);
        return NULL;
    }
    json_object_foreach(map, key, in)
    {
        (void)key;
        sorted[k++] = in;
    }
    qsort(sorted, k, sizeof(*sorted), by_id);
    for (size_t i = 0; i < k; i++)
        json_array_append(out, sorted[i]);
    free(sorted);
    json_decref(map);
    return out;
}

json_t *ctl_intents_missing(json_t *held, json_t *all)
{
    json_t *out = json_array();
    size_t i;
    json_t *in;

    json_array_foreach(all, i, in)
    {
        json_t *h = find_id(held, id_of(in));
        json_t *copy;

        if (expired(in) || (removed(in) && (h == NULL || removed(h))) ||
            (!removed(in) && h != NULL))
            continue;
        copy = json_deep_copy(in);
        if (copy == NULL) {
            json_decref(out);
            return NULL;
        }
        json_object_del(copy, "status"); /* the holder's view, not part of the intent */
        json_array_append_new(out, copy);
    }
    return out;
}

/* ---- agreement (the model: common/cm_agree.c) ---- */

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

int ctl_agreement_text(json_t *model, struct cm_buf *out)
{
    struct ctl_table *t = ctl_table_new(5);
    const char *head[] = {"INSTANCE", "STATE", "INTENTS", "ANSWERED", "AGREES"};
    json_t *x;
    size_t i;
    int rc;

    if (t == NULL)
        return CM_ENOMEM;
    rc = ctl_table_add_row(t, head);
    json_array_foreach(json_object_get(model, "instances"), i, x)
    {
        bool up = json_is_true(json_object_get(x, "reachable"));
        const char *row[] = {str_of(x, "name"), up ? str_of(x, "state") : NULL,
                             up ? str_of(x, "intents") : NULL, up ? "yes" : "no",
                             !up                                          ? "?"
                             : json_is_true(json_object_get(x, "agrees")) ? "yes"
                                                                          : "NO"};
        if (rc == CM_OK)
            rc = ctl_table_add_row(t, row);
    }
    if (rc == CM_OK)
        rc = ctl_table_render(t, out);
    ctl_table_free(t);
    if (rc == CM_OK && json_is_true(json_object_get(model, "agree")))
        rc = cm_buf_printf(out, "every instance answers from the same state (%s)\n",
                           str_of(model, "reference"));
    else if (rc == CM_OK)
        rc = cm_buf_printf(out, "the instances DISAGREE%s:\n",
                           json_is_true(json_object_get(model, "intents_agree"))
                               ? " (intents agree: vantage documents in flight?)"
                               : "");
    json_array_foreach(json_object_get(model, "differences"), i, x)
    {
        if (rc == CM_OK)
            rc = cm_buf_printf(out, "  %s\n", json_string_value(x));
    }
    return rc;
}

/* "ns1 ns2" of the instances holding @in as it is, "(missing: ...)" after. */
static void holders(json_t *in, const char *const *names, json_t *const *lists, size_t n, char *buf,
                    size_t cap)
{
    size_t len = 0, miss = 0;
    char missing[256] = "";

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        json_t *h = lists[i] != NULL ? find_id(lists[i], id_of(in)) : NULL;
        bool same = h != NULL && removed(h) == removed(in);

        if (same && len < cap)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len > 0 ? " " : "", names[i]);
        else if (strlen(missing) < sizeof(missing) - 1)
            miss += (size_t)snprintf(missing + miss, sizeof(missing) - miss, "%s%s%s",
                                     miss > 0 ? " " : "", names[i], lists[i] == NULL ? "?" : "");
    }
    if (missing[0] != '\0' && len < cap)
        snprintf(buf + len, cap - len, "%s(not: %s)", len > 0 ? " " : "", missing);
}

int ctl_intents_text(json_t *all, const char *const *names, json_t *const *lists, size_t n,
                     struct cm_buf *out)
{
    const char *head[] = {"ID",     "KIND",    "TARGET", "VALUE",  "AUTHOR",
                          "REASON", "EXPIRES", "STATUS", "HELD BY"};
    struct ctl_table *t = ctl_table_new(9);
    json_t *in;
    size_t i;
    int rc;

    if (t == NULL)
        return CM_ENOMEM;
    rc = ctl_table_add_row(t, head);
    json_array_foreach(all, i, in)
    {
        char target[160], value[24] = "", held[512];
        json_t *v = json_object_get(in, "weight");

        if (v == NULL)
            v = json_object_get(in, "priority");
        if (v != NULL)
            snprintf(value, sizeof(value), "%lld", (long long)json_integer_value(v));
        snprintf(target, sizeof(target), "%s%s%s",
                 json_object_get(in, "region") != NULL ? str_of(in, "region")
                                                       : str_of(in, "member"),
                 json_object_get(in, "service") != NULL ? " " : "", str_of(in, "service"));
        holders(in, names, lists, n, held, sizeof(held));
        const char *row[] = {str_of(in, "id"),
                             str_of(in, "kind"),
                             target,
                             value[0] != '\0' ? value : NULL,
                             str_of(in, "author"),
                             str_of(in, "reason"),
                             json_object_get(in, "expires_at") != NULL ? str_of(in, "expires_at")
                                                                       : NULL,
                             str_of(in, "status"),
                             held};
        if (rc == CM_OK)
            rc = ctl_table_add_row(t, row);
    }
    if (rc == CM_OK && ctl_table_rows(t) == 1)
        rc = cm_buf_printf(out, "no intents\n");
    else if (rc == CM_OK)
        rc = ctl_table_render(t, out);
    ctl_table_free(t);
    return rc;
}
