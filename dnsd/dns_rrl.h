/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_rrl.h -- response rate limiting (RRL), as NSD's rrl.c and Knot's rrl
 * module do it: pure logic, time passed in, no I/O.
 *
 * A response is counted in a bucket keyed by (source prefix, response class,
 * name for the class): the client's /ipv4_prefix or /ipv6_prefix network,
 * and, per class:
 *
 *   POSITIVE  answer with data          the query name
 *   NODATA    name exists, no such type the query name
 *   NXDOMAIN  name does not exist       the zone apex (random subdomains
 *                                       share one bucket)
 *   REFERRAL  delegation below a cut    the cut's name
 *   WILDCARD  synthesised from *.x      the wildcard's name
 *   ERROR     REFUSED, FORMERR, ...     none (one bucket per prefix)
 *
 * Each bucket holds a balance, BIND/NSD style: it earns `rate` per second up
 * to `rate` (a short burst), and each response costs one; it may sink to
 * -rate x window, so a flood stays limited until its average over the window
 * falls below the rate. While the balance is negative, responses are limited:
 * every `slip`th one is sent truncated (TC=1, no records) so a real client
 * behind a spoofed neighbour retries over TCP, the others are dropped
 * (slip 0: drop all; slip 1: truncate all).
 *
 * The table is one fixed array per worker (`table_size` entries rounded up
 * to a power of two, allocated at start): no allocation and no lock on the
 * query path. A bucket (32 bytes, never across two cache lines) holds its
 * whole key, which a lookup compares, so keys never share a bucket. A key
 * hashes to a slot by a cheap mix keyed with a random per-table seed, so
 * attackers cannot aim at slots; the DNS_RRL_PROBE slots of its aligned
 * group are searched, and a new key takes the first free one, else replaces
 * the one seen longest ago. A query whose key is at its first slot reads
 * one cache line of the table.
 *
 * Exempt: sources in the exempt table, answers to queries with a valid server
 * cookie (the caller's flag), and TCP (the caller does not ask).
 */
#ifndef DNSD_DNS_RRL_H
#define DNSD_DNS_RRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cm_siphash.h"

struct cm_lpm;
struct dns_rrl;

#define DNS_RRL_PROBE 4 /* slots searched per key */

enum dns_rrl_class {
    DNS_RRL_POSITIVE = 0, /* NOERROR with answer records */
    DNS_RRL_NODATA = 1,   /* NOERROR, no answer, authoritative */
    DNS_RRL_NXDOMAIN = 2, /* NXDOMAIN */
    DNS_RRL_REFERRAL = 3, /* NOERROR, no answer, NS in authority, not authoritative */
    DNS_RRL_WILDCARD = 4, /* answer synthesised from a wildcard */
    DNS_RRL_ERROR = 5,    /* any other rcode */
    DNS_RRL_CLASS_COUNT = 6,
};

enum dns_rrl_action {
    DNS_RRL_PASS = 0,   /* under the rate: send the response */
    DNS_RRL_SLIP = 1,   /* limited: send it truncated (TC=1, empty) */
    DNS_RRL_DROP = 2,   /* limited: send nothing */
    DNS_RRL_EXEMPT = 3, /* not counted (exempt network or valid cookie): send */
    DNS_RRL_ACTION_COUNT = 4,
};

struct dns_rrl_params {
    uint32_t rate;               /* responses per second per bucket, >= 1 */
    uint32_t slip;               /* every slip-th limited response is truncated; 0 = none */
    uint32_t window_s;           /* seconds a flood's debt lasts, >= 1 */
    uint8_t ipv4_prefix;         /* 1..32 */
    uint8_t ipv6_prefix;         /* 1..128 */
    size_t table_size;           /* buckets, >= DNS_RRL_PROBE; rounded up to a power of 2 */
    const struct cm_lpm *exempt; /* borrowed, may be NULL; must outlive the table */
};

/** Name of a class ("positive", "nxdomain", ...) or an action ("slipped", ...), static. */
const char *dns_rrl_class_name(enum dns_rrl_class c);
const char *dns_rrl_action_name(enum dns_rrl_action a);

/**
 * A table for one worker, its slots keyed by @key (CM_SIPHASH_KEY_LEN random
 * bytes, the seed). NULL on allocation failure only. Free with dns_rrl_free().
 */
struct dns_rrl *dns_rrl_new(const struct dns_rrl_params *params,
                            const uint8_t key[CM_SIPHASH_KEY_LEN]);
/** Accepts NULL. */
void dns_rrl_free(struct dns_rrl *rrl);

/**
 * Counts one response of class @cls for @name (wire format, any case, @len
 * bytes; NULL/0 for ERROR) to @client (AF_INET or AF_INET6; anything else is
 * EXEMPT) at @now_s (monotonic seconds), and says what to do with it.
 * @cookie_valid: the query carried a valid server cookie (EXEMPT).
 * Never allocates; one table is used by one thread at a time.
 */
enum dns_rrl_action dns_rrl_check(struct dns_rrl *rrl, const struct sockaddr *client,
                                  enum dns_rrl_class cls, const uint8_t *name, size_t len,
                                  bool cookie_valid, uint32_t now_s);

/**
 * The same, the name given by @name_hash: dns_name_hash() of the lowercased
 * name (the parser's dns_request.qname_hash for the query name), 0 for
 * none. Both calls put a name in the same bucket.
 */
enum dns_rrl_action dns_rrl_check_hashed(struct dns_rrl *rrl, const struct sockaddr *client,
                                         enum dns_rrl_class cls, uint32_t name_hash,
                                         bool cookie_valid, uint32_t now_s);

/**
 * Rewrites the response @resp (@len bytes, header + question first) into its
 * slipped form: header and question only, TC=1, zero answer, authority and
 * additional counts. Returns the new length (@len unchanged if malformed).
 */
size_t dns_rrl_slip(uint8_t *resp, size_t len);

#endif /* DNSD_DNS_RRL_H */
