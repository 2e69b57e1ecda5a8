/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_jdump.c -- common/cm_jdump.h against jansson itself: seeded
 * random values (nested objects and arrays; keys and strings with quotes,
 * backslashes, slashes, every control character, DEL, UTF-8 and NUL;
 * integers and reals at their edges) written by cm_jdump() and by
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) must be the same bytes whenever
 * cm_jdump() takes the value, and it refuses only what it leaves to jansson.
 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_err.h"
#include "common/cm_jdump.h"
#include "common/cm_rand.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)

static bool non_ascii; /* the value made holds a byte >= 0x80 */

static size_t rand_text(uint64_t *rng, char *out, size_t cap)
{
    static const char *const parts[] = {
        "a",
        "Z",
        "0",
        "9",
        " ",
        "\"",
        "\\",
        "/",
        "\b",
        "\f",
        "\n",
        "\r",
        "\t",
        "\x01",
        "\x1f",
        "\x7f",
        "{",
        "}",
        ":",
        ",",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "u",
        "e",
    };
    size_t n = cm_rand_below(rng, 12), len = 0;

    for (size_t i = 0; i < n; i++) {
        const char *p = parts[cm_rand_below(rng, sizeof(parts) / sizeof(parts[0]))];
        size_t pl = strlen(p);

        if (len + pl + 1 >= cap)
            break;
        if ((unsigned char)p[0] >= 0x80)
            non_ascii = true;
        memcpy(out + len, p, pl);
        len += pl;
    }
    if (cm_rand_below(rng, 40) == 0 && len + 1 < cap)
        out[len++] = '\0'; /* an embedded NUL */
    out[len] = '\0';
    return len;
}

static double rand_real(uint64_t *rng)
{
    static const double edges[] = {0.0,      -0.0,    0.1,   1.0,         -1.5,   12.3,
                                   1e21,     1e22,    1e-7,  123456789.0, 5e-324, DBL_MAX,
                                   -DBL_MAX, DBL_MIN, 1e100, 3.0e-5,      0.5};
    uint64_t bits;
    double d;

    if (cm_rand_below(rng, 2) == 0)
        return edges[cm_rand_below(rng, sizeof(edges) / sizeof(edges[0]))];
    if (cm_rand_below(rng, 2) == 0) /* rtt_ms as entries hold it: tenths */
        return (double)cm_rand_below(rng, 100000) / 10.0;
    bits = cm_rand_next(rng);
    memcpy(&d, &bits, sizeof(d));
    return isfinite(d) ? d : 2.5;
}

static json_int_t rand_int(uint64_t *rng)
{
    static const json_int_t edges[] = {0, 1, -1, 9, 10, -10, INT64_MAX, INT64_MIN, 65535, 443};

    if (cm_rand_below(rng, 2) == 0)
        return edges[cm_rand_below(rng, sizeof(edges) / sizeof(edges[0]))];
    return (json_int_t)cm_rand_next(rng);
}

static json_t *rand_value(uint64_t *rng, int depth)
{
    char text[64];
    size_t len;
    unsigned kind = cm_rand_below(rng, depth >= 4 ? 6 : 8);
    json_t *v = NULL;

    switch (kind) {
    case 0:
        len = rand_text(rng, text, sizeof(text));
        return json_stringn(text, len);
    case 1:
        return json_integer(rand_int(rng));
    case 2:
        return json_real(rand_real(rng));
    case 3:
        return json_true();
    case 4:
        return json_false();
    case 5:
        return json_null();
    case 6:
        v = json_array();
        for (unsigned i = cm_rand_below(rng, 5); i > 0; i--)
            json_array_append_new(v, rand_value(rng, depth + 1));
        return v;
    default:
        v = json_object();
        for (unsigned i = cm_rand_below(rng, 40 + (depth == 0 ? 10 : 0)); i > 0; i--) {
            len = rand_text(rng, text, sizeof(text));
            json_object_setn_new(v, text, len, rand_value(rng, depth + 1));
        }
        return v;
    }
}

static void test_same_bytes_as_jansson(void **state)
{
    uint64_t rng = 0x5eed1234u;
    unsigned taken = 0, refused = 0;
    struct cm_buf b;

    (void)state;
    cm_buf_init(&b, 1u << 20);
    for (int i = 0; i < 20000; i++) {
        json_t *v;
        char *want;
        int rc;

        non_ascii = false;
        v = cm_rand_below(&rng, 2) == 0 ? json_object() : json_array();
        if (json_is_object(v)) {
            for (unsigned k = cm_rand_below(&rng, 16); k > 0; k--) {
                char key[64];
                size_t kl = rand_text(&rng, key, sizeof(key));

                json_object_setn_new(v, key, kl, rand_value(&rng, 1));
            }
        } else {
            for (unsigned k = cm_rand_below(&rng, 6); k > 0; k--)
                json_array_append_new(v, rand_value(&rng, 1));
        }
        want = json_dumps(v, DUMP_FLAGS);
        cm_buf_reset(&b);
        rc = cm_jdump(v, &b);
        if (rc == CM_OK) {
            assert_non_null(want);
            if (strlen(want) != b.len || memcmp(want, b.data, b.len) != 0)
                fail_msg("value %d:\n jansson %s\n cm_jdump %.*s", i, want, (int)b.len, b.data);
            taken++;
        } else {
            assert_int_equal(rc, CM_ENOTSUP);
            assert_true(non_ascii || want == NULL); /* refused only what jansson has to write */
            refused++;
        }
        free(want);
        json_decref(v);
    }
    cm_buf_fini(&b);
    assert_true(taken > 5000);
    assert_true(refused > 1000);
}

static void test_refusals(void **state)
{
    struct cm_buf b;
    json_t *deep = json_array(), *s = json_string("x");

    (void)state;
    cm_buf_init(&b, 4096);
    assert_int_equal(cm_jdump(s, &b), CM_ENOTSUP); /* a bare scalar: json_dumps() refuses it */
    for (int i = 0; i < 100; i++) {
        json_t *outer = json_array();

        json_array_append_new(outer, deep);
        deep = outer;
    }
    cm_buf_reset(&b);
    assert_int_equal(cm_jdump(deep, &b), CM_ENOTSUP); /* deeper than 64 */
    json_decref(deep);
    cm_buf_fini(&b);
    cm_buf_init(&b, 64);
    deep = json_pack("{s:s}", "k",
                     "0123456789012345678901234567890123456789"
                     "0123456789012345678901234567890123456789");
    cm_buf_reset(&b);
    assert_int_equal(cm_jdump(deep, &b), CM_ETOOBIG); /* b->max */
    json_decref(deep);
    json_decref(s);
    cm_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_jansson),
        cmocka_unit_test(test_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
