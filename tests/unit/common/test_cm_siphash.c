/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_siphash.c -- SipHash-2-4 against the reference test vectors, and
 * against a plain byte-at-a-time version
 * (SipHash paper, appendix A, and the reference implementation's vectors.h:
 * key 00 01 .. 0f, message 00 01 .. (n-1), output bytes little-endian).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/cm_siphash.h"

struct vector {
    size_t len;
    uint8_t out[8];
};

/* Every block-boundary case: empty, short tails, exactly one block, one block
 * and a 7-byte tail (the paper's worked example), two blocks. */
static const struct vector vectors[] = {
    {0, {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}},
    {1, {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74}},
    {2, {0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d}},
    {3, {0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85}},
    {4, {0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf}},
    {5, {0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18}},
    {6, {0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb}},
    {7, {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab}},
    {8, {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}},
    {9, {0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e}},
    {10, {0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a}},
    {11, {0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4}},
    {15, {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1}},
};

static void test_reference_vectors(void **state)
{
    uint8_t key[16], msg[64];

    (void)state;
    for (unsigned i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (unsigned i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        uint64_t h = cm_siphash24(key, msg, vectors[i].len);
        uint8_t out[8];

        for (unsigned b = 0; b < 8; b++)
            out[b] = (uint8_t)(h >> (8 * b));
        print_message("length %zu\n", vectors[i].len);
        assert_memory_equal(out, vectors[i].out, 8);
    }
    /* the paper's example as a 64-bit value */
    assert_true(cm_siphash24(key, msg, 15) == 0xa129ca6149be45e5ull);
}

/* ---- the optimized function against a plain one, written from the paper ---- */

static uint64_t ref_rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static void ref_round(uint64_t v[4])
{
    v[0] += v[1], v[1] = ref_rotl(v[1], 13), v[1] ^= v[0], v[0] = ref_rotl(v[0], 32);
    v[2] += v[3], v[3] = ref_rotl(v[3], 16), v[3] ^= v[2];
    v[0] += v[3], v[3] = ref_rotl(v[3], 21), v[3] ^= v[0];
    v[2] += v[1], v[1] = ref_rotl(v[1], 17), v[1] ^= v[2], v[2] = ref_rotl(v[2], 32);
}

/* SipHash-c-d, one byte at a time: message bytes assembled little-endian
 * into 8-byte words, the last word padded and topped with the length. */
static uint64_t ref_siphash(const uint8_t *key, const uint8_t *msg, size_t len, unsigned c,
                            unsigned d)
{
    uint64_t k0 = 0, k1 = 0, v[4];

    for (unsigned i = 0; i < 8; i++) {
        k0 |= (uint64_t)key[i] << (8 * i);
        k1 |= (uint64_t)key[8 + i] << (8 * i);
    }
    v[0] = k0 ^ 0x736f6d6570736575ull, v[1] = k1 ^ 0x646f72616e646f6dull;
    v[2] = k0 ^ 0x6c7967656e657261ull, v[3] = k1 ^ 0x7465646279746573ull;
    for (size_t blk = 0; blk <= len / 8; blk++) {
        uint64_t m = 0;
        for (size_t i = 0; i < 8 && 8 * blk + i < len; i++)
            m |= (uint64_t)msg[8 * blk + i] << (8 * i);
        if (blk == len / 8)
            m |= (uint64_t)(len & 0xFF) << 56;
        v[3] ^= m;
        for (unsigned r = 0; r < c; r++)
            ref_round(v);
        v[0] ^= m;
    }
    v[2] ^= 0xFF;
    for (unsigned r = 0; r < d; r++)
        ref_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void test_against_plain(void **state)
{
    uint8_t key[16], msg[80];
    uint64_t x = 0x9e3779b97f4a7c15ull;

    (void)state;
    for (unsigned k = 0; k < 8; k++) {
        for (unsigned i = 0; i < sizeof(key); i++, x = x * 6364136223846793005ull + 1)
            key[i] = (uint8_t)(x >> 56);
        for (unsigned i = 0; i < sizeof(msg); i++, x = x * 6364136223846793005ull + 1)
            msg[i] = (uint8_t)(x >> 56);
        for (size_t len = 0; len <= sizeof(msg); len++) {
            /* unaligned starts too */
            for (size_t at = 0; at < 3 && at + len <= sizeof(msg); at++) {
                if (cm_siphash24(key, msg + at, len) != ref_siphash(key, msg + at, len, 2, 4))
                    fail_msg("2-4: key %u length %zu offset %zu", k, len, at);
            }
        }
    }
    /* the plain one is the paper's: it gives the reference vectors */
    for (unsigned i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)i;
    for (unsigned i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    assert_true(ref_siphash(key, msg, 15, 2, 4) == 0xa129ca6149be45e5ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_against_plain),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
