/* SPDX-License-Identifier: Apache-2.0 */
/* dns_pktinfo.c -- the reply's source address on wildcard UDP listeners (see dns_pktinfo.h). */
#include "dnsd/dns_pktinfo.h"

#include <errno.h>
#include <string.h>

#include "common/cm_err.h"

int dns_pktinfo_enable(int fd, int family)
{
    int one = 1, rc;

    if (family == AF_INET)
        rc = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    else
        rc = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    return rc == -1 ? cm_err_from_errno(errno) : CM_OK;
}

bool dns_pktinfo_wildcard(const struct cm_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return a->ss.ss_family == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/*
 * Copies the query's destination (from @rh's control data) into @ctl as the
 * reply's source control message; returns its msg_controllen, or 0 when the
 * query carried none (the reply would leave from the wrong address: the
 * caller drops it).
 */
size_t dns_pktinfo_reply(struct msghdr *rh, union dns_pktinfo_ctl *ctl)
{
    struct cmsghdr *in, *out = (struct cmsghdr *)ctl->buf;

    if ((rh->msg_flags & MSG_CTRUNC) != 0)
        return 0;
    for (in = CMSG_FIRSTHDR(rh); in != NULL; in = CMSG_NXTHDR(rh, in)) {
        memset(ctl, 0, sizeof(*ctl));
        if (in->cmsg_level == IPPROTO_IP && in->cmsg_type == IP_PKTINFO &&
            in->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo src, dst;

            memcpy(&src, CMSG_DATA(in), sizeof(src));
            memset(&dst, 0, sizeof(dst));
            /* ipi_spec_dst is the local address the query arrived on: the
             * destination itself for unicast, the interface's address for a
             * broadcast one (which cannot be a source). As Unbound does. */
            dst.ipi_spec_dst = src.ipi_spec_dst;
            out->cmsg_level = IPPROTO_IP;
            out->cmsg_type = IP_PKTINFO;
            out->cmsg_len = CMSG_LEN(sizeof(dst));
            memcpy(CMSG_DATA(out), &dst, sizeof(dst));
            return CMSG_SPACE(sizeof(dst));
        }
        if (in->cmsg_level == IPPROTO_IPV6 && in->cmsg_type == IPV6_PKTINFO &&
            in->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo pi;

            memcpy(&pi, CMSG_DATA(in), sizeof(pi)); /* address and interface (link-local) */
            out->cmsg_level = IPPROTO_IPV6;
            out->cmsg_type = IPV6_PKTINFO;
            out->cmsg_len = CMSG_LEN(sizeof(pi));
            memcpy(CMSG_DATA(out), &pi, sizeof(pi));
            return CMSG_SPACE(sizeof(pi));
        }
    }
    return 0;
}
