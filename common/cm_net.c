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
    unsigned port;

    cm_ip_format(sa, ip, sizeof(ip));
    if (sa->sa_family == AF_INET6) {
        port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
        snprintf(buf, cap, "[%s]:%u", ip, port);
    } else {
        port = sa->sa_family == AF_INET
                   ? ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port)
                   : 0;
        snprintf(buf, cap, "%s:%u", ip, port);
    }
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
