/* SPDX-License-Identifier: Apache-2.0 */
/* cm_siphash.c -- SipHash-2-4, after the reference implementation (CC0). */
#include "common/cm_siphash.h"

#include <endian.h>
#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

struct sip {
    uint64_t v0, v1, v2, v3;
};

static uint64_t le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v)); /* unaligned-safe; one load on x86 and arm64 */
    return le64toh(v);
}

static void round2(struct sip *s, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        s->v0 += s->v1;
        s->v1 = ROTL(s->v1, 13);
        s->v1 ^= s->v0;
        s->v0 = ROTL(s->v0, 32);
        s->v2 += s->v3;
        s->v3 = ROTL(s->v3, 16);
        s->v3 ^= s->v2;
        s->v0 += s->v3;
        s->v3 = ROTL(s->v3, 21);
        s->v3 ^= s->v0;
        s->v2 += s->v1;
        s->v1 = ROTL(s->v1, 17);
        s->v1 ^= s->v2;
        s->v2 = ROTL(s->v2, 32);
    }
}

uint64_t cm_siphash(const uint8_t key[CM_SIPHASH_KEY_LEN], const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t k0 = le64(key), k1 = le64(key + 8), m, b = (uint64_t)len << 56;
    struct sip s = {
        .v0 = k0 ^ 0x736f6d6570736575ULL,
        .v1 = k1 ^ 0x646f72616e646f6dULL,
        .v2 = k0 ^ 0x6c7967656e657261ULL,
        .v3 = k1 ^ 0x7465646279746573ULL,
    };
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        m = le64(p + i);
        s.v3 ^= m;
        round2(&s, 2);
        s.v0 ^= m;
    }
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)p[i + j] << (8 * j);
    s.v3 ^= b;
    round2(&s, 2);
    s.v0 ^= b;
    s.v2 ^= 0xff;
    round2(&s, 4);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
