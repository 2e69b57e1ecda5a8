/* SPDX-License-Identifier: Apache-2.0 */
/* cm_net.h -- socket addresses: parsing "host:port", formatting, listeners. */
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

/**
 * Opens a non-blocking, close-on-exec socket bound to @addr: SO_REUSEADDR,
 * SO_REUSEPORT when @reuseport, IPV6_V6ONLY for IPv6; listen() for
 * SOCK_STREAM. Returns the fd, or a CM_* code (errno converted).
 */
int cm_net_listen(const struct cm_addr *addr, int socktype, bool reuseport, int backlog);

#endif /* COMMON_CM_NET_H */
