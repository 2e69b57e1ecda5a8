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
 *
 * A large table also gets, at cm_lpm_compact(), an IPv4 direct table
 * (DIR-24-8) answering lookups of 24 bits or more in two or three reads
 * whatever the table size, and a table of moderate size stride tables
 * (8 bits per read) answering sources of whole bytes; both give exactly the
 * trie's answers and scopes, which stay the reference (cm_lpm_lookup_trie()).
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

/**
 * A fold: what a lookup returns for a stored @value (@ctx given to
 * cm_lpm_set_fold()). Must be pure: the compiled forms store its results.
 */
typedef uint32_t cm_lpm_fold_fn(const void *ctx, uint32_t value);

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
 * From now on cm_lpm_lookup() gives @fold(@ctx, value) instead of the value
 * inserted (NULL @fold: the value itself); cm_lpm_lookup_trie() still gives
 * the value inserted. Prefixes whose values fold alike make one result in
 * the compiled forms: a caller that only needs a class of the value (a
 * region, not why) gets narrower entries and fewer cache lines per lookup.
 * Call before cm_lpm_compact() (this drops the compiled forms). @ctx is
 * borrowed: it must outlive the table.
 */
void cm_lpm_set_fold(struct cm_lpm *lpm, cm_lpm_fold_fn *fold, const void *ctx);

/**
 * Finds the longest prefix containing the first @addr_bits bits of @addr
 * (32 or 128 for a full address; an ECS SOURCE PREFIX-LENGTH otherwise).
 * Prefixes longer than @addr_bits never match (the result is the covering
 * match of the source prefix); they make scope_len longer than @addr_bits.
 * Fills @res and returns res->found.
 */
bool cm_lpm_lookup(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned addr_bits,
                   struct cm_lpm_result *res);

/**
 * Starts loading what cm_lpm_lookup() of the same arguments will read first
 * in a large table (the direct table's entry), so that the cache miss runs
 * while the caller does other work. Only a hint: reads nothing, never fails.
 */
void cm_lpm_prefetch(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned addr_bits);

/**
 * The same lookup by walking the trie only, whatever cm_lpm_compact() built,
 * and with the values inserted (never folded): the reference the compiled
 * forms are checked against (tests, benches), and the way back from a folded
 * value to the inserted one (a lookup of the matched prefix's own length).
 */
bool cm_lpm_lookup_trie(const struct cm_lpm *lpm, int family, const uint8_t *addr,
                        unsigned addr_bits, struct cm_lpm_result *res);

/** Bytes held by the table (nodes allocated, plus the direct table if any). */
size_t cm_lpm_memory(const struct cm_lpm *lpm);

/** IPv4 prefixes from which cm_lpm_compact() builds the direct table
 * (32 MiB; 64 MiB with 2^15 distinct results or blocks or more). */
#define CM_LPM_DIRECT_MIN 65536u
/** Second-level blocks (1 KiB each: /24s holding longer prefixes) at most;
 * the /24s beyond are answered by the trie. */
#define CM_LPM_DIRECT_MAX_BLOCKS 65536u

/**
 * Call once all inserts are done: gives back the unused tail of the node
 * array, and, with CM_LPM_DIRECT_MIN IPv4 prefixes or more, builds the IPv4
 * direct table. Without memory for it the table stays a trie: answers never
 * change, only their cost. A later insert drops the direct table.
 */
void cm_lpm_compact(struct cm_lpm *lpm);

/**
 * cm_lpm_compact() with its limits given: the direct table is built from
 * @direct_min IPv4 prefixes (0: always), with at most @max_blocks
 * second-level blocks, and with 16-bit entries where they fit if @narrow
 * (else always 32-bit). For tests and benches.
 */
void cm_lpm_compact_with(struct cm_lpm *lpm, size_t direct_min, size_t max_blocks, bool narrow);

/** Whether lookups use a direct table (built by the last compact). */
bool cm_lpm_has_direct(const struct cm_lpm *lpm);

/** Bits per entry of the direct table's first level: 16, 32, or 0 without one. */
unsigned cm_lpm_direct_bits(const struct cm_lpm *lpm);

/**
 * Stride tables (8 bits per step, 1 KiB per node) are built by
 * cm_lpm_compact() for each family whose table needs at most this many
 * nodes; a larger one is walked as a trie.
 */
#define CM_LPM_STRIDE_MAX 4096u

/** Whether lookups of @family use a stride table (built by the last compact). */
bool cm_lpm_has_stride(const struct cm_lpm *lpm, int family);

#endif /* COMMON_CM_LPM_H */
