/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_lpm.h -- longest-prefix match over IPv4 and IPv6 prefixes
 * (client_networks: CIDR -> region).
 *
 * Built once, then read-only: lookups never allocate and may run from any
 * number of threads at once. The lookup also says how many leading bits of the
 * address decide the result (scope_len), which is what an EDNS Client Subnet
 * answer must echo as its SCOPE PREFIX-LENGTH (RFC 7871 §7.2.1). Either
 * scope_len <= the bits given, and every address sharing scope_len bits gets
 * the same result; or scope_len > the bits given (an ECS source prefix shorter
 * than prefixes inside it): the result is then the covering match of the
 * whole source prefix, valid only for clients that give no more bits, and
 * scope_len is the length of the longest prefix inside the source prefix.
 */
#ifndef COMMON_CM_LPM_H
#define COMMON_CM_LPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_lpm;

struct cm_lpm_result {
    bool found;          /* some prefix matched */
    uint32_t value;      /* the matched prefix's value (valid when found) */
    uint8_t matched_len; /* the matched prefix's length (valid when found) */
    uint8_t scope_len;   /* leading bits of the address that decide the result; may
                            exceed the bits given (see above) */
};

/** A new empty table; NULL on allocation failure. */
struct cm_lpm *cm_lpm_new(void);
/** Accepts NULL. */
void cm_lpm_free(struct cm_lpm *lpm);

/**
 * Adds @addr/@prefix_len (@family AF_INET: 4 bytes, <= 32; AF_INET6: 16 bytes,
 * <= 128) with @value. Host bits beyond the prefix are ignored. Re-adding the
 * same prefix replaces its value. CM_EINVAL, CM_ENOMEM.
 */
int cm_lpm_insert(struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned prefix_len,
                  uint32_t value);

/**
 * Finds the longest prefix containing the first @addr_bits bits of @addr
 * (32 or 128 for a full address; an ECS SOURCE PREFIX-LENGTH otherwise).
 * Prefixes longer than @addr_bits never match (the result is the covering
 * match of the source prefix); they make scope_len longer than @addr_bits.
 * Fills @res and returns res->found.
 */
bool cm_lpm_lookup(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned addr_bits,
                   struct cm_lpm_result *res);

/** Bytes held by the table (nodes allocated). */
size_t cm_lpm_memory(const struct cm_lpm *lpm);

/** Gives back the unused tail of the node array once all inserts are done. */
void cm_lpm_compact(struct cm_lpm *lpm);

#endif /* COMMON_CM_LPM_H */
