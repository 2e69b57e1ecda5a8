/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_net.h -- socket addresses: parsing "host:port", formatting, listeners;
 * prefixes ("10.0.0.0/8") and the classification of special addresses.
 *
 * Special addresses are the ones no state document may hand to a client or
 * a proxy: unspecified (0.0.0.0/8, ::), loopback (127/8, ::1), link-local
 * (169.254/16, fe80::/10), multicast (224/4, ff00::/8) and broadcast
 * (255.255.255.255). An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is
 * classified, and matched against prefixes, as the IPv4 address it carries.
 * Loopback and link-local can be opened by an allow list (the configuration's
 * allow_addresses: test beds on one machine); the other kinds never can.
 */
#ifndef COMMON_CM_NET_H
#define COMMON_CM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cm_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Longest text cm_addr_format() writes, NUL included: "[v6%scope]:65535". */
#define CM_ADDR_STRLEN 64

/**
 * Parses a numeric "1.2.3.4:53", "[::1]:53", or, when @default_port is not 0,
 * "1.2.3.4" and "::1" / "[::1]". No name resolution. CM_EPARSE on bad input.
 */
int cm_addr_parse(const char *s, uint16_t default_port, struct cm_addr *out);
/** Parses a bare numeric IPv4 or IPv6 address (no port). */
int cm_ip_parse(const char *s, struct cm_addr *out);
/** "1.2.3.4:53" or "[::1]:53" into @buf (CM_ADDR_STRLEN bytes is enough). */
void cm_addr_format(const struct sockaddr *sa, char *buf, size_t cap);
/** The address alone, without the port. */
void cm_ip_format(const struct sockaddr *sa, char *buf, size_t cap);
/** The port of an AF_INET/AF_INET6 address (host order), -1 for other families. */
int cm_addr_port(const struct sockaddr *sa);
/** True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool cm_addr_is_loopback(const struct sockaddr *sa);
/** True for 0.0.0.0 and :: (a listener on every address). */
bool cm_addr_is_wildcard(const struct sockaddr *sa);

/* Longest text cm_addr_url() writes, NUL included. */
#define CM_URL_STRLEN (CM_ADDR_STRLEN + 8)
/**
 * The URL of a control API listening at @sa: "http://1.2.3.4:9153" (https
 * with @tls); a wildcard address (0.0.0.0, [::]) gives the loopback of its
 * family, where a client on the same host reaches it.
 */
void cm_addr_url(const struct sockaddr *sa, bool tls, char *buf, size_t cap);

/**
 * Opens a non-blocking, close-on-exec socket bound to @addr: SO_REUSEADDR,
 * SO_REUSEPORT when @reuseport, IPV6_V6ONLY for IPv6; listen() for
 * SOCK_STREAM. Returns the fd, or a CM_* code (errno converted).
 */
int cm_net_listen(const struct cm_addr *addr, int socktype, bool reuseport, int backlog);

/* ---- prefixes and special addresses ---- */

struct cm_ip_prefix {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network address (4 or 16 bytes used), host bits zero */
    uint8_t len;      /* 0..32 or 0..128 */
};

/**
 * Parses "ip/len" (IPv4 or IPv6, the length required). CM_EPARSE when it is
 * not a prefix, CM_ERANGE when the length is too long for the family,
 * CM_EINVAL when host bits are set (@out then holds the network with them
 * cleared, for the message).
 */
int cm_ip_prefix_parse(const char *s, struct cm_ip_prefix *out);

/** True if @sa (AF_INET or AF_INET6; v4-mapped matched as IPv4) is inside @p. */
bool cm_ip_prefix_contains(const struct cm_ip_prefix *p, const struct sockaddr *sa);

enum cm_ip_kind {
    CM_IP_ORDINARY = 0,    /* none of the kinds below */
    CM_IP_UNSPECIFIED = 1, /* 0.0.0.0/8 ("this network"), :: */
    CM_IP_LOOPBACK = 2,    /* 127.0.0.0/8, ::1 */
    CM_IP_LINK_LOCAL = 3,  /* 169.254.0.0/16, fe80::/10 */
    CM_IP_MULTICAST = 4,   /* 224.0.0.0/4, ff00::/8 */
    CM_IP_BROADCAST = 5,   /* 255.255.255.255 */
};

/** The kind of @sa; CM_IP_ORDINARY for anything not AF_INET / AF_INET6 too. */
enum cm_ip_kind cm_ip_classify(const struct sockaddr *sa);
/** "loopback", "link-local", ...; static storage. */
const char *cm_ip_kind_name(enum cm_ip_kind kind);
/** True for the kinds an allow list may open (loopback, link-local). */
bool cm_ip_kind_allowable(enum cm_ip_kind kind);
/**
 * The kind of @prefix when the whole prefix lies inside one special range
 * (127.0.0.0/24 -> loopback), else CM_IP_ORDINARY (10.0.0.0/8, or 0.0.0.0/0
 * which spans several kinds).
 */
enum cm_ip_kind cm_ip_prefix_kind(const struct cm_ip_prefix *prefix);

/**
 * The address rule of state documents: CM_IP_ORDINARY when @sa may be used,
 * else the kind that refuses it. Loopback and link-local addresses are
 * accepted when one of the @count prefixes of @allow (borrowed) contains
 * them; the other special kinds never are.
 */
enum cm_ip_kind cm_ip_refused(const struct sockaddr *sa, const struct cm_ip_prefix *allow,
                              size_t count);

/**
 * "127.0.0.1 is a loopback address; list it in allow_addresses to permit it"
 * (or "...; it is never allowed") into @buf, for @what (the address as
 * written, quoted by the caller if it comes from a peer).
 */
void cm_ip_refusal_format(const char *what, enum cm_ip_kind kind, char *buf, size_t cap);

#endif /* COMMON_CM_NET_H */
