/* SPDX-License-Identifier: Apache-2.0 */
/* cm_net.c -- socket address helpers. */
#include "common/cm_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cm_err.h"
#include "common/cm_str.h"

int cm_ip_parse(const char *s, struct cm_addr *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        out->len = sizeof(*sin);
        return CM_OK;
    }
    if (inet_pton(AF_INET6, s, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        out->len = sizeof(*sin6);
        return CM_OK;
    }
    return CM_EPARSE;
}

static void addr_set_port(struct cm_addr *a, uint16_t port)
{
    if (a->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
}

int cm_addr_parse(const char *s, uint16_t default_port, struct cm_addr *out)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *port_s = NULL;
    uint64_t port = default_port;
    size_t hlen;

    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL)
            return CM_EPARSE;
        hlen = (size_t)(end - s - 1);
        if (hlen >= sizeof(host))
            return CM_EPARSE;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (end[1] == ':')
            port_s = end + 2;
        else if (end[1] != '\0')
            return CM_EPARSE;
    } else {
        const char *colon = strrchr(s, ':');
        /* Exactly one colon: IPv4 with a port. More: a bare IPv6 address. */
        if (colon != NULL && strchr(s, ':') == colon) {
            hlen = (size_t)(colon - s);
            port_s = colon + 1;
        } else {
            hlen = strlen(s);
        }
        if (hlen >= sizeof(host))
            return CM_EPARSE;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
    }
    if (port_s != NULL) {
        if (!cm_parse_u64(port_s, 65535, &port) || port == 0)
            return CM_EPARSE;
    } else if (default_port == 0) {
        return CM_EPARSE;
    }
    if (cm_ip_parse(host, out) != CM_OK)
        return CM_EPARSE;
    addr_set_port(out, (uint16_t)port);
    return CM_OK;
}

void cm_ip_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    const void *src;

    if (sa->sa_family == AF_INET)
        src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa->sa_family == AF_INET6)
        src = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    else {
        cm_strlcpy(buf, "?", cap);
        return;
    }
    if (inet_ntop(sa->sa_family, src, buf, (socklen_t)cap) == NULL)
        cm_strlcpy(buf, "?", cap);
}

int cm_addr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return -1;
}

bool cm_addr_is_loopback(const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *a6;

    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) ==
               127;
    if (sa->sa_family != AF_INET6)
        return false;
    a6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (memcmp(a6, mapped, sizeof(mapped)) == 0)
        return a6[12] == 127;
    return IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)(const void *)a6);
}

void cm_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int port = cm_addr_port(sa);

    cm_ip_format(sa, ip, sizeof(ip));
    if (port < 0)
        port = 0; /* neither AF_INET nor AF_INET6: "?:0" */
    if (sa->sa_family == AF_INET6)
        snprintf(buf, cap, "[%s]:%d", ip, port);
    else
        snprintf(buf, cap, "%s:%d", ip, port);
}

bool cm_addr_is_wildcard(const struct sockaddr *sa)
{
    static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (sa->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, &any6,
                      sizeof(any6)) == 0;
    return false;
}

void cm_addr_url(const struct sockaddr *sa, bool tls, char *buf, size_t cap)
{
    const char *scheme = tls ? "https" : "http";
    char addr[CM_ADDR_STRLEN];

    if (cm_addr_is_wildcard(sa))
        snprintf(addr, sizeof(addr), sa->sa_family == AF_INET6 ? "[::1]:%d" : "127.0.0.1:%d",
                 cm_addr_port(sa));
    else
        cm_addr_format(sa, addr, sizeof(addr));
    snprintf(buf, cap, "%s://%s", scheme, addr);
}

int cm_net_listen(const struct cm_addr *addr, int socktype, bool reuseport, int backlog)
{
    int fd, rc, one = 1;

    fd = socket(addr->ss.ss_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return cm_err_from_errno(errno);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1)
        goto fail;
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
        goto fail;
    if (addr->ss.ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&addr->ss, addr->len) == -1)
        goto fail;
    if (socktype == SOCK_STREAM && listen(fd, backlog) == -1)
        goto fail;
    return fd;
fail:
    rc = cm_err_from_errno(errno);
    close(fd);
    return rc;
}

/* ---- prefixes and special addresses ---- */

/* Zeroes the host bits of @addr beyond @plen; true if any were set. */
static bool clear_host_bits(uint8_t *addr, size_t bytes, unsigned plen)
{
    bool had = false;

    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = plen >= 8 * (i + 1) ? 8 : (plen > 8 * i ? plen - 8 * (unsigned)i : 0);
        uint8_t mask = (uint8_t)(keep == 0 ? 0 : 0xffu << (8 - keep));

        had = had || (addr[i] & (uint8_t)~mask) != 0;
        addr[i] &= mask;
    }
    return had;
}

int cm_ip_prefix_parse(const char *s, struct cm_ip_prefix *out)
{
    const char *slash = strchr(s, '/');
    char host[INET6_ADDRSTRLEN];
    size_t hlen, bytes = 16;
    uint64_t plen = 0;

    memset(out, 0, sizeof(*out));
    if (slash == NULL || (hlen = (size_t)(slash - s)) >= sizeof(host))
        return CM_EPARSE;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    out->family = AF_INET6;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        bytes = 4;
    } else if (inet_pton(AF_INET6, host, out->addr) != 1) {
        return CM_EPARSE;
    }
    if (!cm_parse_u64(slash + 1, bytes * 8, &plen))
        return slash[1] >= '0' && slash[1] <= '9' ? CM_ERANGE : CM_EPARSE;
    out->len = (uint8_t)plen;
    return clear_host_bits(out->addr, bytes, (unsigned)plen) ? CM_EINVAL : CM_OK;
}

/* The address bytes of @sa, an IPv4-mapped IPv6 address unwrapped to IPv4.
 * Returns the family, or AF_UNSPEC. */
static int ip_bytes(const struct sockaddr *sa, uint8_t out[16])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *a;

    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family != AF_INET6)
        return AF_UNSPEC;
    a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, mapped, sizeof(mapped)) == 0) {
        memcpy(out, a + 12, 4);
        return AF_INET;
    }
    memcpy(out, a, 16);
    return AF_INET6;
}

/* The first @len bits of @a and @b are equal. */
static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned len)
{
    unsigned full = len / 8, rest = len % 8;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));

    if (memcmp(a, b, full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ b[full]) & mask) == 0;
}

/* A prefix of IPv4-mapped addresses (::ffff:0:0/96 and longer) as IPv4. */
static struct cm_ip_prefix prefix_unmapped(const struct cm_ip_prefix *p)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct cm_ip_prefix v4 = *p;

    if (p->family == AF_INET6 && p->len >= 96 && memcmp(p->addr, mapped, sizeof(mapped)) == 0) {
        memset(&v4, 0, sizeof(v4));
        v4.family = AF_INET;
        memcpy(v4.addr, p->addr + 12, 4);
        v4.len = (uint8_t)(p->len - 96);
    }
    return v4;
}

bool cm_ip_prefix_contains(const struct cm_ip_prefix *p, const struct sockaddr *sa)
{
    struct cm_ip_prefix u = prefix_unmapped(p);
    uint8_t a[16];

    return ip_bytes(sa, a) == u.family && bits_equal(a, u.addr, u.len);
}

/* The special ranges. Disjoint, so the order does not matter. */
static const struct special_range {
    int family;
    uint8_t addr[16];
    uint8_t len;
    enum cm_ip_kind kind;
} special_ranges[] = {
    {AF_INET, {0}, 8, CM_IP_UNSPECIFIED},
    {AF_INET, {127}, 8, CM_IP_LOOPBACK},
    {AF_INET, {169, 254}, 16, CM_IP_LINK_LOCAL},
    {AF_INET, {224}, 4, CM_IP_MULTICAST},
    {AF_INET, {255, 255, 255, 255}, 32, CM_IP_BROADCAST},
    {AF_INET6, {0}, 128, CM_IP_UNSPECIFIED},
    {AF_INET6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, CM_IP_LOOPBACK},
    {AF_INET6, {0xfe, 0x80}, 10, CM_IP_LINK_LOCAL},
    {AF_INET6, {0xff}, 8, CM_IP_MULTICAST},
};

static enum cm_ip_kind classify_bytes(int family, const uint8_t *a, unsigned min_len)
{
    for (size_t i = 0; i < sizeof(special_ranges) / sizeof(special_ranges[0]); i++) {
        const struct special_range *r = &special_ranges[i];

        if (r->family == family && min_len >= r->len && bits_equal(a, r->addr, r->len))
            return r->kind;
    }
    return CM_IP_ORDINARY;
}

enum cm_ip_kind cm_ip_classify(const struct sockaddr *sa)
{
    uint8_t a[16];
    int family = ip_bytes(sa, a);

    if (family == AF_UNSPEC)
        return CM_IP_ORDINARY;
    return classify_bytes(family, a, family == AF_INET ? 32 : 128);
}

enum cm_ip_kind cm_ip_prefix_kind(const struct cm_ip_prefix *prefix)
{
    struct cm_ip_prefix u = prefix_unmapped(prefix);

    return classify_bytes(u.family, u.addr, u.len);
}

const char *cm_ip_kind_name(enum cm_ip_kind kind)
{
    switch (kind) {
    case CM_IP_ORDINARY:
        return "ordinary";
    case CM_IP_UNSPECIFIED:
        return "unspecified";
    case CM_IP_LOOPBACK:
        return "loopback";
    case CM_IP_LINK_LOCAL:
        return "link-local";
    case CM_IP_MULTICAST:
        return "multicast";
    case CM_IP_BROADCAST:
        return "broadcast";
    }
    return "special";
}

bool cm_ip_kind_allowable(enum cm_ip_kind kind)
{
    return kind == CM_IP_LOOPBACK || kind == CM_IP_LINK_LOCAL;
}

enum cm_ip_kind cm_ip_refused(const struct sockaddr *sa, const struct cm_ip_prefix *allow,
                              size_t count)
{
    enum cm_ip_kind kind = cm_ip_classify(sa);

    if (kind == CM_IP_ORDINARY || !cm_ip_kind_allowable(kind))
        return kind;
    for (size_t i = 0; i < count; i++) {
        if (cm_ip_prefix_contains(&allow[i], sa))
            return CM_IP_ORDINARY;
    }
    return kind;
}

void cm_ip_refusal_format(const char *what, enum cm_ip_kind kind, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s is a%s %s address; %s", what, kind == CM_IP_UNSPECIFIED ? "n" : "",
             cm_ip_kind_name(kind),
             cm_ip_kind_allowable(kind) ? "list it in allow_addresses to permit it"
                                        : "it is never allowed");
}
