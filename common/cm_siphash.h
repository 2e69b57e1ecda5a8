/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_siphash.h -- SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit
 * hash for tables whose keys an attacker chooses (rate-limit buckets), so
 * that without the key nobody can aim collisions at one slot.
 */
#ifndef COMMON_CM_SIPHASH_H
#define COMMON_CM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define CM_SIPHASH_KEY_LEN 16

/** SipHash-2-4 of @len bytes at @data under the 16-byte @key. Pure, any thread. */
uint64_t cm_siphash(const uint8_t key[CM_SIPHASH_KEY_LEN], const void *data, size_t len);

#endif /* COMMON_CM_SIPHASH_H */
