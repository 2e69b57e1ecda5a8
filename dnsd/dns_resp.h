/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_resp.h -- reading our own responses back for people: /v1/explain and
 * the query log decode what the query path wrote (with ldns, off the query
 * path), and name rcodes the same way in both and in /metrics.
 */
#ifndef DNSD_DNS_RESP_H
#define DNSD_DNS_RESP_H

#include <stdbool.h>

#include <ldns/ldns.h>

#include "dnsd/dns_wire.h"

/** "NOERROR", "NXDOMAIN", ..., "BADVERS", "BADCOOKIE"; "unknown" otherwise. Static. */
const char *dns_rcode_name(unsigned rcode);

/**
 * The EDNS Client Subnet option of @pkt's OPT RR into @out (family, source
 * and scope prefix lengths, the address bytes sent, zero-padded); false when
 * there is none or it is malformed.
 */
bool dns_resp_ecs(const ldns_pkt *pkt, struct dns_ecs *out);

#endif /* DNSD_DNS_RESP_H */
