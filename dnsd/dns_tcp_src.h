/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_tcp_src.h -- one worker's TCP connections grouped by source (IPv4 /32,
 * IPv6 /64; an IPv4-mapped IPv6 peer is its IPv4 address), for the
 * per-source cap dnsd.tcp_max_conns_per_source.
 *
 *   table (open addressing, linear probing, >= 2 slots per connection)
 *   +--------------------------------------+
 *   | key 192.0.2.1/32  count 3  head tail |--> node <-> node <-> node
 *   | key 2001:db8::/64 count 1  head tail |--> node      (oldest first)
 *   +--------------------------------------+
 *
 * The nodes are embedded in the caller's connections (no allocation after
 * dns_src_table_new); each source's nodes form a list, oldest first, that
 * dns_src_touch reorders. Slots may move when a source leaves (backward-shift
 * deletion), which is why nodes find their slot by key and never point at it.
 * The hash is seeded per table, so a peer cannot aim its addresses at one
 * probe chain without knowing the seed. Single-threaded: one table per worker.
 */
#ifndef DNSD_DNS_TCP_SRC_H
#define DNSD_DNS_TCP_SRC_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct dns_src_table;

/* Embedded in a connection; all zero = not in a table. */
struct dns_src_node {
    struct dns_src_node *prev; /* borrowed: the source's previous (older) node, NULL if first */
    struct dns_src_node *next; /* borrowed: the next (newer) node, NULL if last */
    uint64_t key;              /* the /32 or /64 */
    uint8_t family;            /* 4, 6, or 0 when not in a table */
};

/**
 * A table for at most @max_nodes nodes at once (>= 1). NULL only on
 * allocation failure. Free with dns_src_table_free().
 */
struct dns_src_table *dns_src_table_new(size_t max_nodes);

/** Releases the table (not the nodes). Accepts NULL. */
void dns_src_table_free(struct dns_src_table *t);

/**
 * The oldest node of @sa's source (NULL if none) and its node count in
 * @count. Walk the rest with node->next. An address family other than
 * AF_INET/AF_INET6 is one source of its own.
 */
struct dns_src_node *dns_src_lookup(const struct dns_src_table *t, const struct sockaddr *sa,
                                    size_t *count);

/**
 * Adds @n (not in a table) as the newest node of @sa's source. CM_ENOSPC when
 * the table already holds max_nodes nodes (then @n is left out).
 */
int dns_src_add(struct dns_src_table *t, struct dns_src_node *n, const struct sockaddr *sa);

/** Takes @n out of its source (the source goes when it was its last). No-op if not in. */
void dns_src_remove(struct dns_src_table *t, struct dns_src_node *n);

/** Makes @n the newest node of its source. No-op if not in. */
void dns_src_touch(struct dns_src_table *t, struct dns_src_node *n);

/** Number of sources with at least one node (for tests). */
size_t dns_src_table_sources(const struct dns_src_table *t);

#endif /* DNSD_DNS_TCP_SRC_H */
