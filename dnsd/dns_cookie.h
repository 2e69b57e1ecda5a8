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
#include <string.h>

#define DNS_COOKIE_SECRET_LEN 16
#define DNS_COOKIE_OURS_LEN   16 /* an RFC 9018 server cookie */
#define DNS_COOKIE_VERSION    1
#define DNS_COOKIE_MAX_AGE_S  3600 /* RFC 9018 §4.3 */
#define DNS_COOKIE_MAX_SKEW_S 300
#define DNS_COOKIE_REUSE_S    1800 /* RFC 9018 §4.3: renew at least past half an hour */

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

/**
 * True when the server cookie @server (16 bytes, one of ours) is young
 * enough to be sent back as it is: at most DNS_COOKIE_REUSE_S old (RFC 9018
 * §4.3: "SHOULD generate a new Server Cookie at least if the received
 * Server Cookie from the client is more than half an hour old"; NSD does
 * the same).
 */
bool dns_cookie_young(const uint8_t server[DNS_COOKIE_OURS_LEN], uint32_t now_s);

/*
 * A worker's memory of the server cookies it made or verified lately, by
 * client cookie and client address, so that a resolver's stream of queries
 * does not cost a SipHash each: a cookie is made once and handed out again
 * while young (dns_cookie_young), and a cookie checked once is recognised
 * by comparison. Bound to one secret: a memo used with another secret
 * forgets everything first. A fixed array, one thread, no allocation; a
 * zeroed memo is empty.
 */
#define DNS_COOKIE_MEMO_SLOTS 64

struct dns_cookie_memo_slot {
    uint64_t client; /* the client cookie's 8 bytes */
    uint64_t ip[2];  /* the address, zero beyond ip_len bytes */
    uint32_t ip_len; /* 4 or 16; 0: empty */
    uint32_t ts;     /* the server cookie's timestamp */
    uint8_t server[DNS_COOKIE_OURS_LEN];
};

struct dns_cookie_memo {
    uint64_t secret[2]; /* the secret of the slots */
    struct dns_cookie_memo_slot slot[DNS_COOKIE_MEMO_SLOTS];
};

/**
 * dns_cookie_make() through @memo (NULL: plain make): the cookie remembered
 * for @client from @ip when it is young, else a new one, remembered.
 */
void dns_cookie_make_memo(struct dns_cookie_memo *memo, const uint8_t secret[DNS_COOKIE_SECRET_LEN],
                          const uint8_t *client, const uint8_t *ip, size_t ip_len, uint32_t now_s,
                          uint8_t out[DNS_COOKIE_OURS_LEN]);

/**
 * dns_cookie_check() through @memo (NULL: plain check): a cookie remembered
 * for @client from @ip is recognised without hashing; one that checks is
 * remembered. The age limits apply either way.
 */
bool dns_cookie_check_memo(struct dns_cookie_memo *memo,
                           const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *client,
                           const uint8_t *server, size_t server_len, const uint8_t *ip,
                           size_t ip_len, uint32_t now_s);

/*
 * dns_cookie_reply(): a server's whole answer to a COOKIE option @opt (@len
 * bytes: the client cookie, then possibly a server cookie; as parsed, 8 or
 * 16..40 bytes) from @ip at @now_s, through @memo (NULL: none): writes the
 * option to send back into @out (the client cookie, then the server cookie:
 * the received one when it is ours under @secret and young, else the one
 * dns_cookie_make_memo() gives), and returns whether the received server
 * cookie is valid under @secret or under @previous (NULL: no previous
 * secret). The same as dns_cookie_check_memo(), dns_cookie_check() and
 * dns_cookie_make_memo() called in turn (dns_cookie_reply_steps()); inline
 * for its common case, a client the memo knows with a young cookie, which
 * needs one lookup and no hash.
 */
bool dns_cookie_reply_steps(struct dns_cookie_memo *memo,
                            const uint8_t secret[DNS_COOKIE_SECRET_LEN], const uint8_t *previous,
                            const uint8_t *opt, size_t len, const uint8_t *ip, size_t ip_len,
                            uint32_t now_s, uint8_t out[8 + DNS_COOKIE_OURS_LEN]);

/** Empties @memo and binds it to @secret (out of line: rare). */
void dns_cookie_memo_bind(struct dns_cookie_memo *memo,
                          const uint8_t secret[DNS_COOKIE_SECRET_LEN]);

/* @ip (@ip_len: 4 or 16 bytes) zero-padded to 16 bytes. */
static inline void dns_cookie_memo_addr(const uint8_t *ip, size_t ip_len, uint64_t a[2])
{
    a[0] = 0;
    a[1] = 0;
    if (ip_len == 4)
        memcpy(a, ip, 4);
    else
        memcpy(a, ip, 16);
}

/* The slot of (@client, @a) in @memo, bound to @secret first when it was
 * not; *@hit when the slot holds them. */
static inline struct dns_cookie_memo_slot *
dns_cookie_memo_find(struct dns_cookie_memo *memo, const uint8_t *secret, const uint8_t *client,
                     const uint64_t a[2], size_t ip_len, bool *hit)
{
    struct dns_cookie_memo_slot *s;
    uint64_t n[2], c;

    memcpy(n, secret, sizeof(n));
    if (((memo->secret[0] ^ n[0]) | (memo->secret[1] ^ n[1])) != 0)
        dns_cookie_memo_bind(memo, secret);
    memcpy(&c, client, 8);
    s = &memo->slot[((c ^ a[0] ^ a[1]) * 0x9e3779b97f4a7c15ull) >> 58]; /* 64 slots */
    *hit = ((s->client ^ c) | (s->ip[0] ^ a[0]) | (s->ip[1] ^ a[1]) | (s->ip_len ^ ip_len)) == 0;
    return s;
}

/* 16 bytes equal, in constant time (no early exit). */
static inline bool dns_cookie_same16(const uint8_t *a, const uint8_t *b)
{
    uint64_t x[2], y[2];

    memcpy(x, a, 16);
    memcpy(y, b, 16);
    return ((x[0] ^ y[0]) | (x[1] ^ y[1])) == 0;
}

static inline bool dns_cookie_reply(struct dns_cookie_memo *memo,
                                    const uint8_t secret[DNS_COOKIE_SECRET_LEN],
                                    const uint8_t *previous, const uint8_t *opt, size_t len,
                                    const uint8_t *ip, size_t ip_len, uint32_t now_s,
                                    uint8_t out[8 + DNS_COOKIE_OURS_LEN])
{
    struct dns_cookie_memo_slot *s;
    uint64_t a[2];
    bool hit;

    if (memo == NULL || (ip_len != 4 && ip_len != 16) || (len != 8 && len != 8 + 16))
        return dns_cookie_reply_steps(memo, secret, previous, opt, len, ip, ip_len, now_s, out);
    dns_cookie_memo_addr(ip, ip_len, a);
    s = dns_cookie_memo_find(memo, secret, opt, a, ip_len, &hit);
    /* The slot holds a cookie of ours for this client: one the memo made,
     * or one it verified under the current secret. It goes back while young
     * (dns_cookie_young); the client's own is valid when it is that one
     * (young, so fresh). */
    if (!hit || (now_s - s->ts > DNS_COOKIE_REUSE_S && s->ts - now_s > DNS_COOKIE_MAX_SKEW_S) ||
        (len != 8 && !dns_cookie_same16(s->server, opt + 8)))
        return dns_cookie_reply_steps(memo, secret, previous, opt, len, ip, ip_len, now_s, out);
    memcpy(out, opt, 8);
    memcpy(out + 8, s->server, DNS_COOKIE_OURS_LEN);
    return len != 8;
}

#endif /* DNSD_DNS_COOKIE_H */
