/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ring.c -- the single-producer single-consumer ring (see cm_ring.h).
 */
#include "common/cm_ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE 64

struct cm_ring {
    /* The producer's line: head and what only the producer touches. */
    alignas(CACHE_LINE) _Atomic uint64_t head; /* next slot to fill */
    uint64_t tail_seen;                        /* the producer's last view of tail */
    _Atomic uint64_t dropped;                  /* written by the producer only */
    /* The consumer's line. */
    alignas(CACHE_LINE) _Atomic uint64_t tail; /* oldest slot not drained */
    /* Read-only after cm_ring_new(). */
    alignas(CACHE_LINE) size_t count;
    size_t rec_size; /* rounded up to max_align_t */
    unsigned char *slots;
};

struct cm_ring *cm_ring_new(size_t count, size_t rec_size)
{
    const size_t align = alignof(max_align_t);
    struct cm_ring *r;
    size_t size;

    if (count == 0 || rec_size == 0 || rec_size > SIZE_MAX - align)
        return NULL;
    size = (rec_size + align - 1) / align * align;
    if (count > SIZE_MAX / size)
        return NULL;
    r = aligned_alloc(CACHE_LINE, (sizeof(*r) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->slots = malloc(count * size); /* malloc aligns for max_align_t */
    if (r->slots == NULL) {
        free(r);
        return NULL;
    }
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    r->count = count;
    r->rec_size = size;
    return r;
}

void cm_ring_free(struct cm_ring *r)
{
    if (r == NULL)
        return;
    free(r->slots);
    free(r);
}

static void *slot(const struct cm_ring *r, uint64_t i)
{
    return r->slots + (size_t)(i % r->count) * r->rec_size;
}

void *cm_ring_reserve(struct cm_ring *r)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

    if (h - r->tail_seen >= r->count) {
        /* Acquire: the consumer is done reading the slots it gave back. */
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (h - r->tail_seen >= r->count) {
            /* Single writer: a load and a store, no locked add. */
            atomic_store_explicit(&r->dropped,
                                  atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            return NULL;
        }
    }
    return slot(r, h);
}

void cm_ring_commit(struct cm_ring *r)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);

    /* Release: the record's bytes are visible before the index that publishes them. */
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
}

size_t cm_ring_drain(struct cm_ring *r, size_t max, cm_ring_record_fn *fn, void *arg)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t n = h - t;

    if (n > max)
        n = max;
    for (uint64_t i = 0; i < n; i++)
        fn(slot(r, t + i), arg);
    if (n > 0)
        atomic_store_explicit(&r->tail, t + n, memory_order_release);
    return (size_t)n;
}

uint64_t cm_ring_dropped(const struct cm_ring *r)
{
    return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

size_t cm_ring_used(const struct cm_ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);

    return h >= t ? (size_t)(h - t) : 0;
}

size_t cm_ring_count(const struct cm_ring *r)
{
    return r->count;
}
