/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ring.h -- a bounded single-producer single-consumer ring of fixed-size
 * records, lock-free: one thread fills slots, another drains them, and
 * neither ever waits for the other. A producer that finds the ring full
 * drops its record and counts it; it never blocks and never allocates.
 *
 *   producer (a worker)                    consumer (the main loop)
 *   slot = cm_ring_reserve(r)  -- NULL: full, dropped++
 *   fill *slot
 *   cm_ring_commit(r)  --- head (release) --->  cm_ring_drain(r, max, fn)
 *                      <--- tail (release) ---  fn(record) for each, oldest first
 *
 *   slots: [ tail ... head )   head - tail <= count; both only grow (64 bits)
 *
 * head is written by the producer only and tail by the consumer only, each on
 * its own cache line; the release store of one and the acquire load by the
 * other order the record's bytes with the index that publishes them. The
 * producer keeps its last view of tail and reads the consumer's line only
 * when that view says full.
 */
#ifndef COMMON_CM_RING_H
#define COMMON_CM_RING_H

#include <stddef.h>
#include <stdint.h>

struct cm_ring;

/**
 * A ring of @count records of @rec_size bytes each (both > 0); every slot is
 * aligned for any type. NULL when out of memory or when the size overflows.
 * Free with cm_ring_free().
 */
struct cm_ring *cm_ring_new(size_t count, size_t rec_size);

/** Accepts NULL. No thread may use the ring any more. */
void cm_ring_free(struct cm_ring *r);

/**
 * Producer: the next free slot to fill (rec_size bytes, contents undefined),
 * or NULL when the ring is full; the record is then dropped and counted
 * (cm_ring_dropped). Calling it again before cm_ring_commit() gives the same
 * slot. Producer thread only.
 */
void *cm_ring_reserve(struct cm_ring *r);

/** Producer: publishes the slot cm_ring_reserve() gave (non-NULL) to the consumer. */
void cm_ring_commit(struct cm_ring *r);

/** Consumer: called with each record (borrowed for the call). */
typedef void cm_ring_record_fn(const void *rec, void *arg);

/**
 * Consumer: hands at most @max committed records to @fn, oldest first, then
 * gives their slots back to the producer. Returns how many. Consumer thread
 * only.
 */
size_t cm_ring_drain(struct cm_ring *r, size_t max, cm_ring_record_fn *fn, void *arg);

/** Records dropped because the ring was full. Any thread. */
uint64_t cm_ring_dropped(const struct cm_ring *r);

/** Committed records not drained yet (a snapshot). Any thread. */
size_t cm_ring_used(const struct cm_ring *r);

/** The capacity given to cm_ring_new(). */
size_t cm_ring_count(const struct cm_ring *r);

#endif /* COMMON_CM_RING_H */
