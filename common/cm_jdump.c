/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_jdump.c -- compact, key-sorted JSON text as jansson 2.14 writes it
 * (dump.c, strconv.c): "," and ":" without spaces, object keys in
 * memcmp-then-length order, strings with \" \\ \b \f \n \r \t and \u00XX
 * (upper-case hex) for the other control characters, integers in decimal,
 * reals as "%.17g" with ".0" added when neither '.' nor 'e' is there and the
 * exponent's '+' and leading zeros removed.
 */
#include "common/cm_jdump.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"

#define MAX_DEPTH  64 /* deeper: left to jansson */
#define KEYS_STACK 32 /* an object's keys sorted on the stack up to this many */

struct key {
    const char *p;
    size_t len;
    const json_t *v;
};

static int put(struct cm_buf *b, const char *p, size_t n)
{
    return cm_buf_append(b, p, n);
}

static int put_string(struct cm_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;
    int rc = put(b, "\"", 1);

    for (size_t i = 0; rc == CM_OK && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        size_t elen = 2;

        if (c >= 0x80)
            return CM_ENOTSUP; /* UTF-8: jansson checks and writes it */
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            elen = 6;
        }
        rc = put(b, s + run, i - run);
        if (rc == CM_OK)
            rc = put(b, esc, elen);
        run = i + 1;
    }
    if (rc == CM_OK)
        rc = put(b, s + run, len - run);
    return rc == CM_OK ? put(b, "\"", 1) : rc;
}

/* jsonp_dtostr() with precision 17. */
static int put_real(struct cm_buf *b, double v)
{
    char buf[100], *e;
    int n = snprintf(buf, sizeof(buf), "%.17g", v);
    size_t len;

    if (n < 0 || (size_t)n >= sizeof(buf) - 3)
        return CM_ENOTSUP;
    len = (size_t)n;
    if (strspn(buf, "0123456789-+.e") != len)
        return CM_ENOTSUP; /* a locale's decimal comma, "inf", "nan" */
    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    e = strchr(buf, 'e');
    if (e != NULL) {
        char *start = e + 1, *end = e + 2;

        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf));
            len -= (size_t)(end - start);
        }
    }
    return put(b, buf, len);
}

static int put_int(struct cm_buf *b, json_int_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    unsigned long long m = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + m % 10);
        m /= 10;
    } while (m != 0);
    if (v < 0)
        *--p = '-';
    return put(b, p, (size_t)(buf + sizeof(buf) - p));
}

static int key_cmp(const struct key *a, const struct key *b)
{
    /* jansson's compare_keys() */
    int r = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len);

    if (r != 0)
        return r;
    return a->len < b->len ? -1 : a->len > b->len;
}

static int key_qcmp(const void *a, const void *b)
{
    return key_cmp(a, b);
}

static int dump(const json_t *v, struct cm_buf *b, int depth);

static int dump_object(const json_t *v, struct cm_buf *b, int depth)
{
    struct key stack[KEYS_STACK], *keys = stack;
    size_t n = json_object_size(v), i = 0;
    void *it;
    int rc;

    if (n > KEYS_STACK) {
        keys = malloc(n * sizeof(*keys));
        if (keys == NULL)
            return CM_ENOMEM;
    }
    json_t *o = (json_t *)(uintptr_t)v; /* jansson's iterators take no const */

    for (it = json_object_iter(o); it != NULL && i < n; it = json_object_iter_next(o, it)) {
        struct key k = {json_object_iter_key(it), json_object_iter_key_len(it),
                        json_object_iter_value(it)};
        size_t j = i++;

        /* insertion sort on the stack: entries have a dozen keys */
        while (keys == stack && j > 0 && key_cmp(&keys[j - 1], &k) > 0) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = k;
    }
    if (keys != stack)
        qsort(keys, i, sizeof(*keys), key_qcmp);
    rc = put(b, "{", 1);
    for (size_t j = 0; rc == CM_OK && j < i; j++) {
        if (j > 0)
            rc = put(b, ",", 1);
        if (rc == CM_OK)
            rc = put_string(b, keys[j].p, keys[j].len);
        if (rc == CM_OK)
            rc = put(b, ":", 1);
        if (rc == CM_OK)
            rc = dump(keys[j].v, b, depth + 1);
    }
    if (keys != stack)
        free(keys);
    return rc == CM_OK ? put(b, "}", 1) : rc;
}

static int dump(const json_t *v, struct cm_buf *b, int depth)
{
    int rc;

    if (v == NULL || depth > MAX_DEPTH)
        return CM_ENOTSUP;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return dump_object(v, b, depth);
    case JSON_ARRAY:
        rc = put(b, "[", 1);
        for (size_t i = 0; rc == CM_OK && i < json_array_size(v); i++) {
            if (i > 0)
                rc = put(b, ",", 1);
            if (rc == CM_OK)
                rc = dump(json_array_get(v, i), b, depth + 1);
        }
        return rc == CM_OK ? put(b, "]", 1) : rc;
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return put_int(b, json_integer_value(v));
    case JSON_REAL:
        return put_real(b, json_real_value(v));
    case JSON_TRUE:
        return put(b, "true", 4);
    case JSON_FALSE:
        return put(b, "false", 5);
    case JSON_NULL:
        return put(b, "null", 4);
    }
    return CM_ENOTSUP;
}

int cm_jdump(const json_t *v, struct cm_buf *b)
{
    if (!json_is_object(v) && !json_is_array(v))
        return CM_ENOTSUP; /* json_dumps() without JSON_ENCODE_ANY refuses it */
    return dump(v, b, 0);
}
