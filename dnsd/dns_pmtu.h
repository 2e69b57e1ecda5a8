/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_pmtu.h -- UDP answers sized by the interface MTU, never by a path MTU
 * that anyone on the Internet can lower.
 *
 * By default Linux lowers a destination's path MTU when an ICMP
 * "fragmentation needed" (ICMPv6 Packet Too Big) arrives that quotes a
 * datagram our socket could have sent, and then fragments our larger
 * answers to that destination itself. The ICMP is trivially forged, and the
 * second fragment (no UDP header, no DNS ID) can be spoofed to poison a
 * resolver's cache (Herzberg & Shulman 2013, RFC 8900). *_PMTUDISC_OMIT
 * (Linux >= 3.16) makes the socket ignore path MTU updates and send at the
 * interface MTU without DF, as NSD and Knot DNS do
 * (draft-ietf-dnsop-avoid-fragmentation).
 */
#ifndef DNSD_DNS_PMTU_H
#define DNSD_DNS_PMTU_H

/**
 * Sets IP_MTU_DISCOVER = IP_PMTUDISC_OMIT on UDP socket @fd of @family
 * (IPV6_MTU_DISCOVER = IPV6_PMTUDISC_OMIT for AF_INET6; our IPv6 listeners
 * are IPV6_V6ONLY, so they carry no IPv4 traffic that would need the IPv4
 * option too). Returns CM_OK, or the CM_* code of the kernel's refusal
 * (CM_EINVAL: a kernel before 3.16), after which *_PMTUDISC_DONT is set if
 * the kernel takes it, as NSD does: DF clear, but the kernel still
 * fragments to a lowered path MTU.
 */
int dns_pmtu_omit(int fd, int family);

#endif /* DNSD_DNS_PMTU_H */
