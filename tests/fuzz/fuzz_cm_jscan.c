/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_jscan.c -- the JSON pull reader against jansson on arbitrary
 * bytes: skipping the whole text succeeds exactly when json_loadb() parses
 * it (but for a NUL byte jansson lets through after a number); and for text jansson parses without
 * duplicate keys, walking it with the reader gives the same tree (every key, string, integer,
 * boolean and null; reals by type).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_jscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether the next value of @s is @v (consumed). */
static bool same(struct cm_jscan *s, json_t *v)
{
    struct cm_jstr str;
    int64_t i;
    bool b, is_int;

    switch (cm_jscan_peek(s)) {
    case CM_JOBJECT: {
        size_t n = 0;

        if (!json_is_object(v) || !cm_jscan_enter(s, CM_JOBJECT))
            return false;
        while (cm_jscan_key(s, &str)) {
            char *k = cm_jstr_dup(&str);
            json_t *m = k != NULL ? json_object_get(v, k) : NULL;

            free(k);
            n++;
            if (m == NULL || !same(s, m))
                return false;
        }
        return s->err == 0 && n == json_object_size(v);
    }
    case CM_JARRAY: {
        size_t n = 0;

        if (!json_is_array(v) || !cm_jscan_enter(s, CM_JARRAY))
            return false;
        while (cm_jscan_item(s)) {
            if (!same(s, json_array_get(v, n++)))
                return false;
        }
        return s->err == 0 && n == json_array_size(v);
    }
    case CM_JSTRING: {
        char *d;
        bool ok;

        if (!json_is_string(v) || !cm_jscan_string(s, &str))
            return false;
        d = cm_jstr_dup(&str);
        ok = d != NULL && strlen(d) == json_string_length(v) &&
             strcmp(d, json_string_value(v)) == 0 && cm_jstr_is(&str, json_string_value(v));
        free(d);
        return ok;
    }
    case CM_JNUMBER:
        if (!cm_jscan_number(s, &i, &is_int))
            return false;
        return is_int ? json_is_integer(v) && json_integer_value(v) == i : json_is_real(v);
    case CM_JTRUE:
    case CM_JFALSE:
        return cm_jscan_bool(s, &b) && json_is_boolean(v) && json_is_true(v) == b;
    case CM_JNULL:
        return json_is_null(v) && cm_jscan_skip(s);
    default:
        return false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cm_jscan s;
    json_t *doc = json_loadb((const char *)data, size, 0, NULL), *strict;
    bool skipped;

    cm_jscan_init(&s, (const char *)data, size);
    skipped = cm_jscan_skip(&s) && cm_jscan_end(&s);
    /* jansson drops a NUL byte that follows a number or a literal (it is read
     * back as "buffer empty"); the reader refuses it: stricter, not laxer. */
    if (skipped ? doc == NULL : doc != NULL && memchr(data, '\0', size) == NULL)
        abort();
    strict = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (strict != NULL && skipped) {
        cm_jscan_init(&s, (const char *)data, size);
        if (!same(&s, strict) || !cm_jscan_end(&s))
            abort();
    }
    json_decref(strict);
    json_decref(doc);
    return 0;
}
