/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_agree.c -- whether name servers answer from the same state, from the
 * digests they publish (GET /v1/state, /v1/intents): fedgslbctl status and
 * dnsd's GET /v1/peers share it.
 */
#include "common/cm_agree.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

/* The instance whose state most instances share (the first on a tie), -1 when none answered. */
static int reference(json_t *const *digests, size_t n)
{
    int best = -1;
    size_t best_votes = 0;

    for (size_t i = 0; i < n; i++) {
        size_t votes = 0;

        if (digests[i] == NULL)
            continue;
        for (size_t j = 0; j < n; j++)
            votes += digests[j] != NULL &&
                     strcmp(str_of(digests[i], "state"), str_of(digests[j], "state")) == 0;
        if (votes > best_votes) {
            best = (int)i;
            best_votes = votes;
        }
    }
    return best;
}

static bool in_list(json_t *list, const char *s)
{
    size_t i;
    json_t *x;

    json_array_foreach(list, i, x)
    {
        if (json_is_string(x) && strcmp(json_string_value(x), s) == 0)
            return true;
    }
    return false;
}

static void say(json_t *diffs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(json_t *diffs, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    json_array_append_new(diffs, json_string(line));
}

/* How instance @name (digest @d) differs from the reference @rname (@r). */
static void differences(json_t *diffs, const char *name, json_t *d, const char *rname, json_t *r)
{
    json_t *ri = json_object_get(r, "active_intents"), *di = json_object_get(d, "active_intents");
    json_t *rv = json_object_get(r, "vantages"), *dv = json_object_get(d, "vantages");
    const char *key;
    json_t *x;
    size_t i;

    json_array_foreach(ri, i, x)
    {
        if (json_is_string(x) && !in_list(di, json_string_value(x)))
            say(diffs, "%s misses intent %s (%s holds it)", name, json_string_value(x), rname);
    }
    json_array_foreach(di, i, x)
    {
        if (json_is_string(x) && !in_list(ri, json_string_value(x)))
            say(diffs, "%s holds intent %s, which %s does not", name, json_string_value(x), rname);
    }
    json_object_foreach(rv, key, x)
    {
        json_t *y = json_object_get(dv, key);

        if (y == NULL)
            say(diffs, "%s holds no document of vantage %s (%s: generation %lld)", name, key, rname,
                (long long)json_integer_value(x));
        else if (json_integer_value(y) != json_integer_value(x))
            say(diffs, "%s holds vantage %s generation %lld, %s generation %lld", name, key,
                (long long)json_integer_value(y), rname, (long long)json_integer_value(x));
    }
    json_object_foreach(dv, key, x)
    {
        if (json_object_get(rv, key) == NULL)
            say(diffs, "%s holds vantage %s generation %lld, %s none", name, key,
                (long long)json_integer_value(x), rname);
    }
}

json_t *cm_agreement(const char *const *names, json_t *const *digests, size_t n)
{
    int ref = reference(digests, n);
    json_t *insts = json_array(), *diffs = json_array();
    bool agree = ref >= 0, intents_agree = ref >= 0;

    for (size_t i = 0; i < n; i++) {
        json_t *d = digests[i];
        bool same =
            d != NULL && ref >= 0 && strcmp(str_of(d, "state"), str_of(digests[ref], "state")) == 0;

        json_array_append_new(insts, json_pack("{s:s,s:b,s:s,s:s,s:b}", "name", names[i],
                                               "reachable", d != NULL, "state", str_of(d, "state"),
                                               "intents", str_of(d, "intents"), "agrees", same));
        if (d == NULL) {
            agree = false;
            say(diffs, "%s did not answer: whether it agrees is unknown", names[i]);
            continue;
        }
        if (same)
            continue;
        agree = false;
        if (strcmp(str_of(d, "intents"), str_of(digests[ref], "intents")) != 0)
            intents_agree = false;
        differences(diffs, names[i], d, names[ref], digests[ref]);
    }
    return json_pack("{s:b,s:b,s:s?,s:o*,s:o*}", "agree", agree, "intents_agree", intents_agree,
                     "reference", ref >= 0 ? names[ref] : NULL, "instances", insts, "differences",
                     diffs);
}
