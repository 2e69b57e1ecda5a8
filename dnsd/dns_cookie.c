/* SPDX-License-Identifier: Apache-2.0 */
/* dns_cookie.c -- RFC 9018 server cookies (see dns_cookie.h). */
#include "dnsd/dns_cookie.h"

#include <string.h>

#include "common/cm_siphash.h"
#include "dnsd/dns_wire.h"

/* SipHash over client cookie | version | reserved | timestamp | client IP,
 * with the 8 header bytes taken from @head (version, reserved, timestamp). */
static void cookie_hash(const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                        const uint8_t *head, const uint8_t *ip, size_t ip_len, uint8_t out[8])
{
    uint8_t msg[DNS_COOKIE_CLIENT_LEN + 8 + 16];
    size_t n = 0;

    if (ip_len > 16)
        ip_len = 0;
    memcpy(msg, client, DNS_COOKIE_CLIENT_LEN);
    n += DNS_COOKIE_CLIENT_LEN;
    memcpy(msg + n, head, 8);
    n += 8;
    if (ip_len > 0)
        memcpy(msg + n, ip, ip_len);
    n += ip_len;
    uint64_t h = cm_siphash24(secret, msg, n);
    for (unsigned i = 0; i < 8; i++)
        out[i] = (uint8_t)(h >> (8 * i)); /* the reference byte order */
}

void dns_cookie_make(const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                     const uint8_t *ip, size_t ip_len, uint32_t now_s,
                     uint8_t out[DNS_COOKIE_OURS_LEN])
{
    out[0] = DNS_COOKIE_VERSION;
    out[1] = 0;
    out[2] = 0;
    out[3] = 0;
    out[4] = (uint8_t)(now_s >> 24);
    out[5] = (uint8_t)(now_s >> 16);
    out[6] = (uint8_t)(now_s >> 8);
    out[7] = (uint8_t)now_s;
    cookie_hash(secret, client, out, ip, ip_len, out + 8);
}

bool dns_cookie_check(const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                      const uint8_t *server, size_t server_len, const uint8_t *ip, size_t ip_len,
                      uint32_t now_s)
{
    uint8_t want[8];
    uint8_t diff = 0;

    if (server_len != DNS_COOKIE_OURS_LEN || server[0] != DNS_COOKIE_VERSION)
        return false;
    uint32_t ts = (uint32_t)server[4] << 24 | (uint32_t)server[5] << 16 | (uint32_t)server[6] << 8 |
                  server[7];
    /* serial arithmetic: the age as a signed 32-bit difference */
    uint32_t age = now_s - ts;
    if (age > DNS_COOKIE_MAX_AGE_S && (uint32_t)(ts - now_s) > DNS_COOKIE_MAX_SKEW_S)
        return false;
    /* the reserved bytes are hashed as received (RFC 9018 §4.2) */
    cookie_hash(secret, client, server, ip, ip_len, want);
    for (unsigned i = 0; i < 8; i++)
        diff |= (uint8_t)(want[i] ^ server[8 + i]); /* no early exit: constant time */
    return diff == 0;
}
