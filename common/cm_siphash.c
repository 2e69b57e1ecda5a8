/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_siphash.c -- SipHash-2-4, written from the paper's description: four
 * 64-bit words of state, two SipRounds per 8-byte block, the length in the
 * top byte of the last block, four SipRounds to finish.
 */
#include "common/cm_siphash.h"

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void sipround(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void compress(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sipround(s);
    sipround(s);
    s->v0 ^= m;
}

uint64_t cm_siphash24(const uint8_t key[CM_SIPHASH_KEY_LEN], const uint8_t *msg, size_t len)
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    struct sip s = {
        .v0 = k0 ^ 0x736f6d6570736575ull, /* "somepseudorandomlygeneratedbytes" */
        .v1 = k1 ^ 0x646f72616e646f6dull,
        .v2 = k0 ^ 0x6c7967656e657261ull,
        .v3 = k1 ^ 0x7465646279746573ull,
    };
    size_t full = len - len % 8;
    uint64_t last = (uint64_t)(len & 0xFF) << 56;

    for (size_t i = 0; i < full; i += 8)
        compress(&s, le64(msg + i));
    for (size_t i = 0; i < len % 8; i++)
        last |= (uint64_t)msg[full + i] << (8 * i);
    compress(&s, last);
    s.v2 ^= 0xFF;
    for (int i = 0; i < 4; i++)
        sipround(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
