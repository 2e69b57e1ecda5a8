/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_pktinfo.c -- the reply's source control message from the query's destination. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cmocka.h>

#include "common/cm_net.h"
#include "dnsd/dns_pktinfo.h"

/* A received control area: an SO_TIMESTAMP first (ignored), then @level/@type with @data. */
union rctl {
    struct cmsghdr align;
    uint8_t buf[CMSG_SPACE(sizeof(struct timeval)) + CMSG_SPACE(sizeof(struct in6_pktinfo))];
};

static void received(struct msghdr *h, union rctl *c, int level, int type, const void *data,
                     size_t len)
{
    struct cmsghdr *cm;
    struct timeval tv = {1, 2};

    memset(h, 0, sizeof(*h));
    memset(c, 0, sizeof(*c));
    h->msg_control = c->buf;
    h->msg_controllen = CMSG_SPACE(sizeof(tv)) + (len > 0 ? CMSG_SPACE(len) : 0);
    cm = CMSG_FIRSTHDR(h);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SO_TIMESTAMP;
    cm->cmsg_len = CMSG_LEN(sizeof(tv));
    memcpy(CMSG_DATA(cm), &tv, sizeof(tv));
    if (len == 0)
        return;
    cm = CMSG_NXTHDR(h, cm);
    cm->cmsg_level = level;
    cm->cmsg_type = type;
    cm->cmsg_len = CMSG_LEN(len);
    memcpy(CMSG_DATA(cm), data, len);
}

/* Unicast: the local address is the destination; broadcast: the interface's address. */
static void test_ipv4(void **state)
{
    static const struct {
        const char *dst, *local;
    } cases[] = {{"127.0.0.2", "127.0.0.2"}, {"192.0.2.255", "192.0.2.1"}};
    struct in_pktinfo pi, out;
    union dns_pktinfo_ctl ctl;
    union rctl rc;
    struct msghdr h;
    const struct cmsghdr *cm = (const struct cmsghdr *)ctl.buf;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct in_addr want;

        memset(&pi, 0, sizeof(pi));
        pi.ipi_ifindex = 1;
        assert_int_equal(inet_pton(AF_INET, cases[i].dst, &pi.ipi_addr), 1);
        assert_int_equal(inet_pton(AF_INET, cases[i].local, &pi.ipi_spec_dst), 1);
        assert_int_equal(inet_pton(AF_INET, cases[i].local, &want), 1);
        received(&h, &rc, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
        assert_int_equal(dns_pktinfo_reply(&h, &ctl), CMSG_SPACE(sizeof(out)));
        assert_int_equal(cm->cmsg_level, IPPROTO_IP);
        assert_int_equal(cm->cmsg_type, IP_PKTINFO);
        memcpy(&out, CMSG_DATA(cm), sizeof(out));
        assert_memory_equal(&out.ipi_spec_dst, &want, sizeof(want));
        assert_int_equal(out.ipi_ifindex, 0); /* let routing pick the interface */
    }
    h.msg_flags = MSG_CTRUNC; /* control data cut: the destination is unknown */
    assert_int_equal(dns_pktinfo_reply(&h, &ctl), 0);
}

static void test_ipv6(void **state)
{
    struct in6_pktinfo pi, out;
    union dns_pktinfo_ctl ctl;
    union rctl rc;
    struct msghdr h;
    const struct cmsghdr *cm = (const struct cmsghdr *)ctl.buf;

    (void)state;
    memset(&pi, 0, sizeof(pi));
    pi.ipi6_ifindex = 7; /* kept: a link-local destination needs its interface */
    assert_int_equal(inet_pton(AF_INET6, "fe80::53", &pi.ipi6_addr), 1);
    received(&h, &rc, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
    assert_int_equal(dns_pktinfo_reply(&h, &ctl), CMSG_SPACE(sizeof(out)));
    assert_int_equal(cm->cmsg_level, IPPROTO_IPV6);
    assert_int_equal(cm->cmsg_type, IPV6_PKTINFO);
    memcpy(&out, CMSG_DATA(cm), sizeof(out));
    assert_memory_equal(&out, &pi, sizeof(out));
}

static void test_none(void **state)
{
    union dns_pktinfo_ctl ctl;
    union rctl rc;
    struct msghdr h;

    (void)state;
    received(&h, &rc, 0, 0, NULL, 0);
    assert_int_equal(dns_pktinfo_reply(&h, &ctl), 0);
    memset(&h, 0, sizeof(h)); /* no control data at all */
    assert_int_equal(dns_pktinfo_reply(&h, &ctl), 0);
}

static void test_wildcard(void **state)
{
    struct cm_addr a;

    (void)state;
    assert_int_equal(cm_addr_parse("0.0.0.0:53", 0, &a), 0);
    assert_true(dns_pktinfo_wildcard(&a));
    assert_int_equal(cm_addr_parse("[::]:53", 0, &a), 0);
    assert_true(dns_pktinfo_wildcard(&a));
    assert_int_equal(cm_addr_parse("127.0.0.1:53", 0, &a), 0);
    assert_false(dns_pktinfo_wildcard(&a));
    assert_int_equal(cm_addr_parse("[::1]:53", 0, &a), 0);
    assert_false(dns_pktinfo_wildcard(&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_wildcard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
