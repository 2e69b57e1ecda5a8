/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_rrset.h -- a compiled RRset: what the query path copies into answers.
 *
 * Both sources of data (the static zone, dns_zone; the federated answer table,
 * dns_fed) compile their records into this one form at build time, so the
 * query path has a single writer and never parses or allocates:
 *
 *   rdata: count x [ RDLENGTH (2 bytes, network order) | RDATA ]
 *
 * Domain names inside RDATA are stored uncompressed, in wire form, with their
 * original letter case. The writer (dns_wire) may compress the names in the
 * RDATA of the types RFC 3597 §4 allows (NS, CNAME, PTR, MX, SOA) and never
 * those of any other type. The owner name is not stored here: it is the name
 * being answered, written as a pointer into the question where possible.
 */
#ifndef DNSD_DNS_RRSET_H
#define DNSD_DNS_RRSET_H

#include <stdint.h>

/* RR types and classes the server treats specially. */
enum {
    DNS_TYPE_A = 1,
    DNS_TYPE_NS = 2,
    DNS_TYPE_CNAME = 5,
    DNS_TYPE_SOA = 6,
    DNS_TYPE_PTR = 12,
    DNS_TYPE_MX = 15,
    DNS_TYPE_TXT = 16,
    DNS_TYPE_AAAA = 28,
    DNS_TYPE_SRV = 33,
    DNS_TYPE_DNAME = 39,
    DNS_TYPE_OPT = 41,
    DNS_TYPE_HINFO = 13,
    DNS_TYPE_IXFR = 251,
    DNS_TYPE_AXFR = 252,
    DNS_TYPE_ANY = 255,
    DNS_CLASS_IN = 1,
    DNS_CLASS_CH = 3,
    DNS_CLASS_ANY = 255,
};

struct dns_rrset {
    uint16_t type;
    uint16_t rclass;
    uint32_t ttl;
    uint16_t count;       /* number of records, >= 1 */
    uint16_t rdata_len;   /* bytes at rdata */
    const uint8_t *rdata; /* borrowed from the owning table; see the layout above */
};

#endif /* DNSD_DNS_RRSET_H */
