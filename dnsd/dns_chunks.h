/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_chunks.h -- who owns the per-service parts of an answer table (the
 * blocks of dns_fed, the parts of dns_pre), so that a table built after a
 * change that left most services alone costs little more than the change.
 *
 * The parts are reference counted and immutable. A table reads them through
 * a flat array (one pointer per service: the query path's one load), and
 * owns them through chunks of DNS_CHUNK services: a chunk holds one
 * reference to each of its parts and is itself reference counted. A table
 * built after another takes the previous table's chunk (one reference) when
 * every service in it kept its part at the same index, and makes a new
 * chunk otherwise, so a change to one service touches one chunk, and a
 * change to nothing touches count / DNS_CHUNK chunks rather than count parts.
 *
 * Chunks are shared between tables only; everything here runs on the
 * thread that builds tables, and the last table to go frees a chunk (the
 * counts are atomic because that may be a worker dropping an old view).
 */
#ifndef DNSD_DNS_CHUNKS_H
#define DNSD_DNS_CHUNKS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_CHUNK 64

/* How a part is referenced: the module's own functions. */
struct dns_chunk_ops {
    void (*ref)(void *part);
    void (*unref)(void *part);
};

struct dns_chunk {
    _Atomic int refs;
    void *part[DNS_CHUNK]; /* one reference each; NULL: none */
};

/* Where part i came from, while a table is assembled. */
enum dns_chunk_src {
    DNS_CHUNK_NONE = 0, /* no part */
    DNS_CHUNK_LENT = 1, /* the previous table's part (borrowed), at any index */
    DNS_CHUNK_NEW = 2,  /* built now: its one reference is the table's */
};

struct dns_chunks {
    const struct dns_chunk_ops *ops;
    size_t count;             /* parts */
    struct dns_chunk **chunk; /* owned references, (count + DNS_CHUNK - 1) / DNS_CHUNK */
    size_t shared;            /* chunks taken from the previous table (statistics) */
};

/**
 * Makes @v own the parts @part[0..count) (sources in @src) in chunks,
 * taking each chunk of @prev (may be NULL: the previous table's) that holds
 * the very same parts (LENT ones at the same index, NONE where it has none). CM_OK, or CM_ENOMEM
 * after which @v owns what it could and the caller frees it with dns_chunks_fini and releases NEW
 * parts not yet owned with dns_chunks_drop_new.
 */
int dns_chunks_assemble(struct dns_chunks *v, const struct dns_chunks *prev,
                        const struct dns_chunk_ops *ops, void *const *part, const uint8_t *src,
                        size_t count);

/** Releases the NEW parts of @part that @v does not own (a failed build). */
void dns_chunks_drop_new(const struct dns_chunks *v, const struct dns_chunk_ops *ops,
                         void *const *part, const uint8_t *src, size_t count);

/** Releases @v's chunks (and the parts of those that go). Accepts a zeroed @v. */
void dns_chunks_fini(struct dns_chunks *v);

#endif /* DNSD_DNS_CHUNKS_H */
