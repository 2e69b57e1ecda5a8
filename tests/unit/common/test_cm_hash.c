/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_hash.c -- FNV-1a 32/64 against the reference values (FNV test
 * suite: "", "a", "foobar"), byte by byte, as strings and continued;
 * CM_CHAIN_REHASH moving a chained table into more buckets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_hash.h"

struct vector {
    const char *in;
    size_t len;
    uint32_t h32;
    uint64_t h64;
};

static const struct vector vectors[] = {
    {"", 0, 0x811c9dc5u, 0xcbf29ce484222325ull},
    {"a", 1, 0xe40c292cu, 0xaf63dc4c8601ec8cull},
    {"foobar", 6, 0xbf9cf968u, 0x85944171f73967e8ull},
    {"\xff\x00", 2, 0x6e1e20cau, 0x0a99a607b6f60beaull}, /* a NUL inside */
};

static void test_reference_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const struct vector *v = &vectors[i];

        print_message("vector %zu\n", i);
        assert_true(cm_fnv1a32(CM_FNV1A32_INIT, v->in, v->len) == v->h32);
        assert_true(cm_fnv1a64(CM_FNV1A64_INIT, v->in, v->len) == v->h64);
        if (strlen(v->in) == v->len) {
            assert_true(cm_fnv1a32_str(CM_FNV1A32_INIT, v->in) == v->h32);
            assert_true(cm_fnv1a64_str(CM_FNV1A64_INIT, v->in) == v->h64);
        }
    }
}

/* Hashing in pieces is hashing the whole: what multi-field keys rely on. */
static void test_continued(void **state)
{
    uint32_t h32 = cm_fnv1a32_str(CM_FNV1A32_INIT, "foo");
    uint64_t h64 = cm_fnv1a64_byte(cm_fnv1a64_str(CM_FNV1A64_INIT, "fo"), 'o');

    (void)state;
    h32 = cm_fnv1a32(h32, "bar", 3);
    h64 = cm_fnv1a64_str(h64, "bar");
    assert_true(h32 == 0xbf9cf968u);
    assert_true(h64 == 0x85944171f73967e8ull);
    /* a separator byte keeps ("ab","c") and ("a","bc") apart */
    assert_true(cm_fnv1a32_str(cm_fnv1a32_byte(cm_fnv1a32_str(CM_FNV1A32_INIT, "ab"), 0xff), "c") !=
                cm_fnv1a32_str(cm_fnv1a32_byte(cm_fnv1a32_str(CM_FNV1A32_INIT, "a"), 0xff), "bc"));
}

struct chained {
    struct chained *link;
    uint64_t h;
};

/* Every entry of 8 buckets, chains of several, ends up once in the bucket
 * its hash names among 64. */
static void test_chain_rehash(void **state)
{
    struct chained ents[100], *old[8] = {NULL}, *nb[64] = {NULL};
    unsigned found[100] = {0};

    (void)state;
    for (size_t i = 0; i < 100; i++) {
        ents[i].h = cm_fmix64(i + 1);
        ents[i].link = old[ents[i].h & 7];
        old[ents[i].h & 7] = &ents[i];
    }
    CM_CHAIN_REHASH(struct chained, old, 8, nb, 64, link, h);
    for (size_t b = 0; b < 64; b++) {
        for (const struct chained *e = nb[b]; e != NULL; e = e->link) {
            assert_int_equal(e->h & 63, b);
            found[e - ents]++;
        }
    }
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(found[i], 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_continued),
        cmocka_unit_test(test_chain_rehash),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
