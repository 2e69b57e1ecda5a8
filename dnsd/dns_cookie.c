/* SPDX-License-Identifier: Apache-2.0 */
/* dns_cookie.c -- RFC 9018 server cookies (see dns_cookie.h). */
#include "dnsd/dns_cookie.h"

#include <stdbool.h>
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

static uint32_t cookie_ts(const uint8_t *server)
{
    return (uint32_t)server[4] << 24 | (uint32_t)server[5] << 16 | (uint32_t)server[6] << 8 |
           server[7];
}

/* Within an hour in the past or five minutes ahead (serial arithmetic). */
static bool cookie_fresh(const uint8_t *server, uint32_t now_s)
{
    uint32_t ts = cookie_ts(server);

    return now_s - ts <= DNS_COOKIE_MAX_AGE_S || (uint32_t)(ts - now_s) <= DNS_COOKIE_MAX_SKEW_S;
}

bool dns_cookie_young(const uint8_t server[DNS_COOKIE_OURS_LEN], uint32_t now_s)
{
    uint32_t ts = cookie_ts(server);

    return now_s - ts <= DNS_COOKIE_REUSE_S || (uint32_t)(ts - now_s) <= DNS_COOKIE_MAX_SKEW_S;
}

bool dns_cookie_check(const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                      const uint8_t *server, size_t server_len, const uint8_t *ip, size_t ip_len,
                      uint32_t now_s)
{
    uint8_t want[8];
    uint8_t diff = 0;

    if (server_len != DNS_COOKIE_OURS_LEN || server[0] != DNS_COOKIE_VERSION)
        return false;
    if (!cookie_fresh(server, now_s))
        return false;
    /* the reserved bytes are hashed as received (RFC 9018 §4.2) */
    cookie_hash(secret, client, server, ip, ip_len, want);
    for (unsigned i = 0; i < 8; i++)
        diff |= (uint8_t)(want[i] ^ server[8 + i]); /* no early exit: constant time */
    return diff == 0;
}

/* ---- the memo ---- */

void dns_cookie_memo_bind(struct dns_cookie_memo *memo, const uint8_t secret[DNS_COOKIE_SECRET_LEN])
{
    memset(memo, 0, sizeof(*memo));
    memcpy(memo->secret, secret, DNS_COOKIE_SECRET_LEN);
}

static void slot_set(struct dns_cookie_memo_slot *s, const uint8_t *client, const uint64_t a[2],
                     size_t ip_len, const uint8_t *server)
{
    memcpy(&s->client, client, 8);
    s->ip[0] = a[0];
    s->ip[1] = a[1];
    s->ip_len = (uint32_t)ip_len;
    s->ts = cookie_ts(server);
    memcpy(s->server, server, DNS_COOKIE_OURS_LEN);
}

/* A cookie not in the memo: made, and put in slot @s. Out of line, so that
 * the common path (a hit) keeps to few registers. */
__attribute__((noinline)) static void make_new(struct dns_cookie_memo_slot *s,
                                               const uint8_t *secret, const uint8_t *client,
                                               const uint8_t *ip, size_t ip_len,
                                               const uint64_t a[2], uint32_t now_s, uint8_t *out)
{
    dns_cookie_make(secret, client, ip, ip_len, now_s, out);
    slot_set(s, client, a, ip_len, out);
}

void dns_cookie_make_memo(struct dns_cookie_memo *memo, const uint8_t secret[DNS_COOKIE_SECRET_LEN],
                          const uint8_t *client, const uint8_t *ip, size_t ip_len, uint32_t now_s,
                          uint8_t out[DNS_COOKIE_OURS_LEN])
{
    struct dns_cookie_memo_slot *s;
    uint64_t a[2];
    bool hit;

    if (memo == NULL || (ip_len != 4 && ip_len != 16)) {
        dns_cookie_make(secret, client, ip, ip_len, now_s, out);
        return;
    }
    dns_cookie_memo_addr(ip, ip_len, a);
    s = dns_cookie_memo_find(memo, secret, client, a, ip_len, &hit);
    /* dns_cookie_young() on the slot's timestamp */
    if (hit && (now_s - s->ts <= DNS_COOKIE_REUSE_S || s->ts - now_s <= DNS_COOKIE_MAX_SKEW_S)) {
        memcpy(out, s->server, DNS_COOKIE_OURS_LEN);
        return;
    }
    make_new(s, secret, client, ip, ip_len, a, now_s, out);
}

bool dns_cookie_check_memo(struct dns_cookie_memo *memo,
                           const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                           const uint8_t *server, size_t server_len, const uint8_t *ip,
                           size_t ip_len, uint32_t now_s)
{
    struct dns_cookie_memo_slot *s;
    uint64_t a[2];
    bool hit;

    if (memo == NULL || (ip_len != 4 && ip_len != 16))
        return dns_cookie_check(secret, client, server, server_len, ip, ip_len, now_s);
    if (server_len != DNS_COOKIE_OURS_LEN || server[0] != DNS_COOKIE_VERSION ||
        !cookie_fresh(server, now_s))
        return false;
    dns_cookie_memo_addr(ip, ip_len, a);
    s = dns_cookie_memo_find(memo, secret, client, a, ip_len, &hit);
    if (hit && dns_cookie_same16(s->server, server))
        return true;
    if (!dns_cookie_check(secret, client, server, server_len, ip, ip_len, now_s))
        return false;
    slot_set(s, client, a, ip_len, server);
    return true;
}

bool dns_cookie_reply_steps(struct dns_cookie_memo *memo,
                            const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *previous,
                            const uint8_t *opt, size_t len, const uint8_t *ip, size_t ip_len,
                            uint32_t now_s, uint8_t out[8 + DNS_COOKIE_OURS_LEN])
{
    const uint8_t *server = opt + 8;
    size_t server_len = len - 8;
    bool current = server_len > 0 &&
                   dns_cookie_check_memo(memo, secret, opt, server, server_len, ip, ip_len, now_s);
    bool valid =
        current || (previous != NULL && server_len > 0 &&
                    dns_cookie_check(previous, opt, server, server_len, ip, ip_len, now_s));

    memcpy(out, opt, 8);
    if (current && dns_cookie_young(server, now_s))
        memcpy(out + 8, server, DNS_COOKIE_OURS_LEN);
    else
        dns_cookie_make_memo(memo, secret, opt, ip, ip_len, now_s, out + 8);
    return valid;
}
