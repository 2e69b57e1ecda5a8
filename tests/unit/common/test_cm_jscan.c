/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_jscan.c -- the JSON pull reader (common/cm_jscan.h): a walk over
 * an object reading some members and skipping others; a table of texts it
 * must accept and refuse as jansson does (numbers, escapes, UTF-8,
 * surrogates, depth, separators, the top level); decoded strings; and
 * thousands of seeded mutations of a few documents, each accepted exactly
 * when json_loadb() accepts it (tests/fuzz/fuzz_cm_jscan does the same
 * without a bound).
 */
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
#include "common/cm_jscan.h"
#include "common/cm_rand.h"

static bool skips(const char *text, size_t len)
{
    struct cm_jscan s;

    cm_jscan_init(&s, text, len);
    return cm_jscan_skip(&s) && cm_jscan_end(&s);
}

static bool jansson_takes(const char *text, size_t len)
{
    json_t *doc = json_loadb(text, len, 0, NULL);

    json_decref(doc);
    return doc != NULL;
}

static void test_walk(void **state)
{
    static const char text[] =
        " {\"type\" : \"ADDED\", \"skip\": {\"a\": [1, 2.5e3, {\"b\": null}], \"c\": \"\\u00e9\"},"
        "  \"n\": -42, \"big\": 9223372036854775807, \"t\": true, \"name\": \"w\\\"eb\\u00e9\"} ";
    struct cm_jscan s;
    struct cm_jstr k, v;
    int64_t n = 0, big = 0;
    bool is_int = false, t = false;
    char *name = NULL;
    int keys = 0;

    (void)state;
    cm_jscan_init(&s, text, strlen(text));
    assert_int_equal(cm_jscan_peek(&s), CM_JOBJECT);
    assert_true(cm_jscan_enter(&s, CM_JOBJECT));
    while (cm_jscan_key(&s, &k)) {
        keys++;
        if (cm_jstr_is(&k, "type")) {
            char buf[8];

            assert_true(cm_jscan_string(&s, &v));
            assert_false(v.escaped);
            assert_int_equal(cm_jstr_copy(&v, buf), 5); /* as it stands: copied */
            assert_string_equal(buf, "ADDED");
            assert_true(cm_jstr_is(&v, "ADDED"));
            assert_false(cm_jstr_is(&v, "ADDE"));
            assert_false(cm_jstr_is(&v, "ADDEDX"));
        } else if (cm_jstr_is(&k, "n")) {
            assert_true(cm_jscan_number(&s, &n, &is_int));
            assert_true(is_int);
        } else if (cm_jstr_is(&k, "big")) {
            assert_true(cm_jscan_number(&s, &big, &is_int));
        } else if (cm_jstr_is(&k, "t")) {
            assert_true(cm_jscan_bool(&s, &t));
        } else if (cm_jstr_is(&k, "name")) {
            assert_true(cm_jscan_string(&s, &v));
            assert_true(v.escaped);
            assert_true(cm_jstr_is(&v, "w\"eb\xc3\xa9"));
            name = cm_jstr_dup(&v);
            {
                char buf[32];

                assert_true(v.len + 1 <= sizeof(buf));
                assert_int_equal(cm_jstr_copy(&v, buf), 6); /* decoded: shorter */
                assert_string_equal(buf, "w\"eb\xc3\xa9");
            }
        } else {
            assert_true(cm_jscan_skip(&s));
        }
    }
    assert_true(cm_jscan_end(&s));
    assert_int_equal(keys, 6);
    assert_int_equal(n, -42);
    assert_int_equal(big, INT64_MAX);
    assert_true(t);
    assert_string_equal(name, "w\"eb\xc3\xa9");
    free(name);
    /* A value of the wrong kind fails the scanner, and every call after. */
    cm_jscan_init(&s, "{\"a\": 1}", 8);
    assert_true(cm_jscan_enter(&s, CM_JOBJECT));
    assert_true(cm_jscan_key(&s, &k));
    assert_false(cm_jscan_string(&s, &v));
    assert_int_equal(s.err, CM_EPARSE);
    assert_non_null(s.why);
    assert_int_equal(s.err_off, 6);
    assert_false(cm_jscan_key(&s, &k));
    assert_false(cm_jscan_end(&s));
}

struct case_ {
    const char *text;
    bool ok;
};

static void test_accepts_as_jansson(void **state)
{
    static const struct case_ cases[] = {
        {"{}", true},
        {"[]", true},
        {" [ 1 , -0 , 0.5 , 1e9 , 1E-9 , -1.25e+3 ] ", true},
        {"[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]", true},
        {"[\"\\ud83d\\ude00\", \"\\u00e9\", \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", true},
        {"{\"a\":{\"b\":[[[]]],\"c\":[true,false,null]}}", true},
        {"[9223372036854775807, -9223372036854775808]", true},
        {"", false},
        {"   ", false},
        {"1", false}, /* top level: object or array */
        {"\"x\"", false},
        {"null", false},
        {"{}{}", false},
        {"{} x", false},
        {"{", false},
        {"[1,]", false},
        {"[,1]", false},
        {"{\"a\":1,}", false},
        {"{,}", false},
        {"{\"a\" 1}", false},
        {"{\"a\":1]", false},
        {"[1}", false},
        {"{1:2}", false},
        {"[01]", false},
        {"[1.]", false},
        {"[.5]", false},
        {"[-]", false},
        {"[1e]", false},
        {"[1e+]", false},
        {"[+1]", false},
        {"[9223372036854775808]", false},  /* too big an integer */
        {"[-9223372036854775809]", false}, /* too big a negative one */
        {"[1e400]", false},                /* real overflow */
        {"[1e-400]", true},                /* underflow is fine */
        {"[tru]", false},
        {"[truex]", false},
        {"[nul]", false},
        {"[\"\\x\"]", false},
        {"[\"\\u12\"]", false},
        {"[\"\\u0000\"]", false},
        {"[\"\\udc00\"]", false},          /* a lone low surrogate */
        {"[\"\\ud800\"]", false},          /* a high one alone */
        {"[\"\\ud800\\u0041\"]", false},   /* followed by no low one */
        {"[\"a\tb\"]", false},             /* a raw control character */
        {"[\"\xc0\x80\"]", false},         /* overlong */
        {"[\"\xe0\x80\x80\"]", false},     /* overlong */
        {"[\"\xed\xa0\x80\"]", false},     /* an encoded surrogate */
        {"[\"\xf4\x90\x80\x80\"]", false}, /* past U+10FFFF */
        {"[\"\x80\"]", false},             /* a lone continuation byte */
        {"[\"\xc3\"]", false},             /* cut short */
        {"[\"abc", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;

        if (skips(t, strlen(t)) != cases[i].ok || jansson_takes(t, strlen(t)) != cases[i].ok)
            fail_msg("case %zu '%s': reader %d, jansson %d, want %d", i, t, skips(t, strlen(t)),
                     jansson_takes(t, strlen(t)), cases[i].ok);
    }
}

static void test_depth(void **state)
{
    size_t n = CM_JSCAN_DEPTH_MAX + 1;
    char *t = malloc(2 * n + 1);

    (void)state;
    assert_non_null(t);
    memset(t, '[', n - 1);
    memset(t + n - 1, ']', n - 1);
    assert_true(skips(t, 2 * (n - 1))); /* exactly the limit */
    memset(t, '[', n);
    memset(t + n, ']', n);
    assert_false(skips(t, 2 * n)); /* one more */
    assert_false(jansson_takes(t, 2 * n));
    free(t);
}

/* Seeded mutations of a few documents: accepted exactly when jansson accepts
 * (NUL bytes aside: jansson lets one through after a number; never made here). */
static void test_mutations_agree_with_jansson(void **state)
{
    static const char *const seeds[] = {
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"svc0001-75f80\",\"labels\":"
        "{\"kubernetes.io/service-name\":\"svc0001\"}},\"addressType\":\"IPv4\",\"endpoints\":"
        "[{\"addresses\":[\"10.244.1.1\"],\"conditions\":{\"ready\":true}}],\"ports\":[{\"port\""
        ":80}]}}",
        "[1,-2.5e-3,\"\\ud83d\\ude00\\n\",true,false,null,{},[],{\"a\":[{\"b\":0}]}]",
        "{\"s\":\"\xc3\xa9\xe2\x82\xac\",\"n\":12345678901234567}",
    };
    static const char alphabet[] =
        "{}[]\",:\\/-+.0123456789eEuabcdfnrtlsx \t\n\xc3\xa9\x80\xed\xf4";
    uint64_t rng = 0x1234567u;
    char buf[512];
    unsigned agreed = 0, accepted = 0;

    (void)state;
    for (int i = 0; i < 30000; i++) {
        const char *seed = seeds[cm_rand_below(&rng, 3)];
        size_t len = strlen(seed);
        unsigned edits = 1 + cm_rand_below(&rng, 3);

        memcpy(buf, seed, len);
        for (unsigned e = 0; e < edits && len > 2; e++) {
            size_t at = cm_rand_below(&rng, (uint32_t)len);
            char c = alphabet[cm_rand_below(&rng, sizeof(alphabet) - 1)];

            switch (cm_rand_below(&rng, 3)) {
            case 0: /* replace */
                buf[at] = c;
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* insert */
                if (len + 1 < sizeof(buf)) {
                    memmove(buf + at + 1, buf + at, len - at);
                    buf[at] = c;
                    len++;
                }
            }
        }
        if (skips(buf, len) != jansson_takes(buf, len))
            fail_msg("mutation %d '%.*s': reader %d, jansson %d", i, (int)len, buf, skips(buf, len),
                     jansson_takes(buf, len));
        agreed++;
        accepted += skips(buf, len);
    }
    /* Both outcomes were exercised. */
    assert_true(accepted > 1000);
    assert_true(agreed - accepted > 1000);
}

/* Strings read eight bytes at a time: one byte of each kind at every place
 * of a long string, at every alignment, accepted exactly as jansson does and
 * ending where the closing quote is. */
static void test_byte_at_every_place(void **state)
{
    static const char *const bytes[] = {
        "\x01", "\x1f",    " ",        "!",    "#",  "[",    "]",
        "~",    "\x7f",    "\x80",     "\xff", "\\", "\\n",  "\\q",
        "\"",   "\\u00e9", "\xc3\xa9", "\xc3", "\t", "\\\"", "\xe2\x82\xac",
    };
    char buf[64];

    (void)state;
    for (size_t b = 0; b < sizeof(bytes) / sizeof(bytes[0]); b++) {
        for (size_t align = 0; align < 8; align++) {
            for (size_t at = 0; at < 20; at++) {
                size_t blen = strlen(bytes[b]), len = 0, str = 0;
                struct cm_jscan s;
                struct cm_jstr v;
                bool ok;

                /* [ "aa..X zz..." ] (jansson takes no bare string) */
                memset(buf, ' ', align);
                len = align;
                buf[len++] = '[';
                str = len;
                buf[len++] = '"';
                memset(buf + len, 'a', at);
                len += at;
                memcpy(buf + len, bytes[b], blen);
                len += blen;
                memset(buf + len, 'z', 19);
                len += 19;
                buf[len++] = '"';
                buf[len++] = ']';
                if (skips(buf, len) != jansson_takes(buf, len))
                    fail_msg("byte %zu at %zu (align %zu): reader %d, jansson %d", b, at, align,
                             skips(buf, len), jansson_takes(buf, len));
                cm_jscan_init(&s, buf, len);
                ok = cm_jscan_enter(&s, CM_JARRAY) && cm_jscan_item(&s) &&
                     cm_jscan_string(&s, &v) && v.p == buf + str + 1;
                if (ok != (bytes[b][0] == '"' || jansson_takes(buf, len)))
                    fail_msg("byte %zu at %zu (align %zu): string read %d", b, at, align, ok);
                if (ok && strcmp(bytes[b], "\"") != 0)
                    assert_int_equal(v.len, at + blen + 19);
                if (ok && strcmp(bytes[b], "\"") == 0)
                    assert_int_equal(v.len, at); /* ends at the first quote */
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_accepts_as_jansson),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_mutations_agree_with_jansson),
        cmocka_unit_test(test_byte_at_every_place),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
