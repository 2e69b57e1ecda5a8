/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_siphash.c -- SipHash-c-d, written from the paper's description: four
 * 64-bit words of state, c SipRounds per 8-byte block, the length in the
 * top byte of the last block, d SipRounds to finish; dnsd's cookies use
 * 2-4. The state stays in registers.
 */
#include "common/cm_siphash.h"

#include <endian.h>
#include <string.h>

static inline uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return le64toh(v);
}

/* One SipRound on the state v[0..3]. */
static inline void sipround(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = rotl(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl(v[0], 32);
    v[2] += v[3];
    v[3] = rotl(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl(v[2], 32);
}

static inline uint64_t siphash(const uint8_t key[CM_SIPHASH_KEY_LEN], const uint8_t *msg,
                               size_t len, unsigned c, unsigned d)
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v[4] = {
        k0 ^ 0x736f6d6570736575ull, /* "somepseudorandomlygeneratedbytes" */
        k1 ^ 0x646f72616e646f6dull,
        k0 ^ 0x6c7967656e657261ull,
        k1 ^ 0x7465646279746573ull,
    };
    size_t full = len - len % 8;
    uint64_t last = (uint64_t)(len & 0xFF) << 56;

    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = le64(msg + i);
        v[3] ^= m;
        for (unsigned r = 0; r < c; r++)
            sipround(v);
        v[0] ^= m;
    }
    if (len % 8 != 0 && len >= 8) {
        /* the tail as the top bytes of the last 8: one load and a shift */
        last |= le64(msg + len - 8) >> (8 * (8 - len % 8));
    } else {
        for (size_t i = 0; i < len % 8; i++)
            last |= (uint64_t)msg[full + i] << (8 * i);
    }
    v[3] ^= last;
    for (unsigned r = 0; r < c; r++)
        sipround(v);
    v[0] ^= last;
    v[2] ^= 0xFF;
    for (unsigned r = 0; r < d; r++)
        sipround(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

uint64_t cm_siphash24(const uint8_t key[CM_SIPHASH_KEY_LEN], const uint8_t *msg, size_t len)
{
    return siphash(key, msg, len, 2, 4);
}
