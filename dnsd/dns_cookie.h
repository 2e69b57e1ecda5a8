/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_cookie.h -- DNS server cookies (RFC 7873) in the interoperable form of
 * RFC 9018, so that every name server of a deployment sharing the secret
 * accepts the cookies the others hand out:
 *
 *   server cookie (16 bytes) = version 1 | reserved (3) | timestamp (4, s)
 *                              | SipHash-2-4(secret, client cookie | version
 *                                | reserved | timestamp | client IP) (8)
 *
 * A cookie is accepted when its hash matches under the current or the
 * previous secret (rotation with overlap) and its timestamp is at most one
 * hour old and at most five minutes ahead (RFC 9018 §4.3; serial arithmetic,
 * so the window holds across the 2106 wrap). Pure code: no allocation, no
 * clock (the caller passes the time), any thread.
 */
#ifndef DNSD_DNS_COOKIE_H
#define DNSD_DNS_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_COOKIE_SECRET_LEN 16
#define DNS_COOKIE_OURS_LEN   16 /* an RFC 9018 server cookie */
#define DNS_COOKIE_VERSION    1
#define DNS_COOKIE_MAX_AGE_S  3600 /* RFC 9018 §4.3 */
#define DNS_COOKIE_MAX_SKEW_S 300

/**
 * Writes the server cookie for @client (8 bytes) seen from @ip (@ip_len: 4 or
 * 16 bytes; 0 when unknown) at @now_s into @out.
 */
void dns_cookie_make(const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                     const uint8_t *ip, size_t ip_len, uint32_t now_s,
                     uint8_t out[DNS_COOKIE_OURS_LEN]);

/**
 * True when @server (@server_len bytes, following @client in the option) is a
 * cookie of ours for @client from @ip, made with @secret, and fresh at @now_s.
 * Any other length or version is simply not ours (not malformed).
 */
bool dns_cookie_check(const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                      const uint8_t *server, size_t server_len, const uint8_t *ip, size_t ip_len,
                      uint32_t now_s);

#endif /* DNSD_DNS_COOKIE_H */
