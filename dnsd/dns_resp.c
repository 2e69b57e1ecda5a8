/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_resp.c -- rcode names and the ECS option of a response (dns_resp.h).
 */
#include "dnsd/dns_resp.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

const char *dns_rcode_name(unsigned rcode)
{
    const ldns_lookup_table *lt;

    if (rcode == DNS_RCODE_BADVERS)
        return "BADVERS";
    if (rcode == DNS_RCODE_BADCOOKIE)
        return "BADCOOKIE";
    lt = ldns_lookup_by_id(ldns_rcodes, (int)rcode);
    return lt != NULL ? lt->name : "unknown";
}

/* One ECS option's data (RFC 7871 §6): FAMILY, SOURCE, SCOPE, ADDRESS. */
static bool ecs_parse(const uint8_t *p, size_t len, struct dns_ecs *out)
{
    unsigned family, max_bits;
    size_t addr_len;

    if (len < 4)
        return false;
    family = ((unsigned)p[0] << 8) | p[1];
    if (family != 1 && family != 2)
        return false;
    max_bits = family == 1 ? 32 : 128;
    if (p[2] > max_bits || p[3] > max_bits)
        return false;
    addr_len = len - 4;
    if (addr_len > max_bits / 8)
        return false;
    memset(out, 0, sizeof(*out));
    out->present = true;
    out->family = (uint16_t)family;
    out->source_len = p[2];
    out->scope_len = p[3];
    memcpy(out->addr, p + 4, addr_len);
    return true;
}

bool dns_resp_ecs(const ldns_pkt *pkt, struct dns_ecs *out)
{
    const ldns_rdf *data = ldns_pkt_edns_data(pkt);
    const uint8_t *p;
    size_t len, pos = 0;

    if (data == NULL)
        return false;
    p = ldns_rdf_data(data);
    len = ldns_rdf_size(data);
    while (len - pos >= 4) {
        unsigned code = ((unsigned)p[pos] << 8) | p[pos + 1];
        size_t olen = ((size_t)p[pos + 2] << 8) | p[pos + 3];

        if (len - pos - 4 < olen)
            return false;
        if (code == DNS_EDNS_OPT_ECS)
            return ecs_parse(p + pos + 4, olen, out);
        pos += 4 + olen;
    }
    return false;
}
