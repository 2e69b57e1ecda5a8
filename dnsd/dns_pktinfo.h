/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_pktinfo.h -- answering from the address the query was sent to.
 *
 * A UDP socket bound to a wildcard address (0.0.0.0, ::) replies, by
 * default, from the route's preferred source address, and resolvers drop a
 * reply that does not come from the address they queried. The kernel says
 * where each datagram went (IP_PKTINFO / IPV6_RECVPKTINFO control message on
 * receive), and the same message on send sets the source (ipi_spec_dst /
 * ipi6_addr). Buffers are the caller's (one per recvmmsg/sendmmsg slot):
 * nothing allocates.
 */
#ifndef DNSD_DNS_PKTINFO_H
#define DNSD_DNS_PKTINFO_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/cm_net.h"

/* Room for one IP_PKTINFO or IPV6_PKTINFO control message, aligned for cmsghdr. */
union dns_pktinfo_ctl {
    struct cmsghdr align;
    uint8_t buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
};

/** True for 0.0.0.0 and :: (any port). */
bool dns_pktinfo_wildcard(const struct cm_addr *a);

/** Asks the kernel for each datagram's destination on UDP socket @fd of @family. CM_* code. */
int dns_pktinfo_enable(int fd, int family);

/**
 * Writes into @ctl the control message that makes a reply leave from the
 * destination recorded in @rh (a received message's header; its control
 * data and msg_flags are read). Returns the msg_controllen to send with, or
 * 0 when @rh carries no destination (or MSG_CTRUNC): the caller must not
 * reply from an unknown address. Pure: no system call.
 */
size_t dns_pktinfo_reply(struct msghdr *rh, union dns_pktinfo_ctl *ctl);

#endif /* DNSD_DNS_PKTINFO_H */
