/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_siphash.h -- SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit
 * pseudorandom function for short inputs, as DNS server cookies use it
 * (RFC 9018 §4.4). Pure code: no allocation, no state, any thread.
 */
#ifndef COMMON_CM_SIPHASH_H
#define COMMON_CM_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define CM_SIPHASH_KEY_LEN 16

/**
 * SipHash-2-4 of @len bytes at @msg under the 16-byte @key. The result is the
 * 64-bit value; its little-endian bytes are the reference implementation's
 * output (and what RFC 9018 puts in a cookie).
 */
uint64_t cm_siphash24(const uint8_t key[CM_SIPHASH_KEY_LEN], const uint8_t *msg, size_t len);

#endif /* COMMON_CM_SIPHASH_H */
