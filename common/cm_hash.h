/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_hash.h -- FNV-1a (32 and 64 bits), the hash of our in-memory tables
 * (probe keys, the watch cache, zone names), and murmur3's finalizer. Fast and simple; not
 * for keys a peer chooses to collide (cm_siphash.h is for those).
 *
 * The functions continue a running hash, so several fields hash as one:
 *
 *   h = cm_fnv1a32_str(CM_FNV1A32_INIT, ns);
 *   h = cm_fnv1a32_byte(h, 0xff);    (a separator: ("ab","c") != ("a","bc"))
 *   h = cm_fnv1a32_str(h, name);
 */
#ifndef COMMON_CM_HASH_H
#define COMMON_CM_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Offset bases and primes of FNV-1a (Fowler, Noll, Vo). */
#define CM_FNV1A32_INIT  2166136261u
#define CM_FNV1A32_PRIME 16777619u
#define CM_FNV1A64_INIT  14695981039346656037ull
#define CM_FNV1A64_PRIME 1099511628211ull

/** @h continued by the byte @b. */
static inline uint32_t cm_fnv1a32_byte(uint32_t h, uint8_t b)
{
    return (h ^ b) * CM_FNV1A32_PRIME;
}

/** @h continued by the @len bytes at @p (borrowed). */
static inline uint32_t cm_fnv1a32(uint32_t h, const void *p, size_t len)
{
    const uint8_t *s = p;

    for (size_t i = 0; i < len; i++)
        h = cm_fnv1a32_byte(h, s[i]);
    return h;
}

/** @h continued by the bytes of the C string @s, without its NUL. */
static inline uint32_t cm_fnv1a32_str(uint32_t h, const char *s)
{
    for (; *s != '\0'; s++)
        h = cm_fnv1a32_byte(h, (uint8_t)*s);
    return h;
}

/** The same three in 64 bits. */
static inline uint64_t cm_fnv1a64_byte(uint64_t h, uint8_t b)
{
    return (h ^ b) * CM_FNV1A64_PRIME;
}

static inline uint64_t cm_fnv1a64(uint64_t h, const void *p, size_t len)
{
    const uint8_t *s = p;

    for (size_t i = 0; i < len; i++)
        h = cm_fnv1a64_byte(h, s[i]);
    return h;
}

static inline uint64_t cm_fnv1a64_str(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++)
        h = cm_fnv1a64_byte(h, (uint8_t)*s);
    return h;
}

/** murmur3's 64-bit finalizer: every input bit reaches every output bit. */
static inline uint64_t cm_fmix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/**
 * The high and low halves of the 128-bit product of @a and @b, folded
 * (wyhash's "mum"): a keyed mix when one operand holds a secret.
 */
static inline uint64_t cm_mum64(uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)a * b;

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/*
 * Moves every entry of a chained hash table into new buckets: from @old
 * (@nold buckets) into @nb (@n buckets, a power of two, zeroed); entries are
 * of @type, linked by their member @next and placed by their member @hash. A
 * macro, since the tables' entry types differ.
 */
#define CM_CHAIN_REHASH(type, old, nold, nb, n, next, hash)                                        \
    do {                                                                                           \
        for (size_t cm_b_ = 0; cm_b_ < (nold); cm_b_++) {                                          \
            type *cm_e_ = (old)[cm_b_], *cm_x_;                                                    \
                                                                                                   \
            for (; cm_e_ != NULL; cm_e_ = cm_x_) {                                                 \
                cm_x_ = cm_e_->next;                                                               \
                cm_e_->next = (nb)[cm_e_->hash & ((n)-1)];                                         \
                (nb)[cm_e_->hash & ((n)-1)] = cm_e_;                                               \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#endif /* COMMON_CM_HASH_H */
