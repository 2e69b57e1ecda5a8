/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_pmtu.c -- UDP sockets of both families end up ignoring path MTU updates. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "dnsd/dns_pmtu.h"

/* The value the kernel reports for @fd's @level/@name, or -1. */
static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);

    if (getsockopt(fd, level, name, &v, &len) == -1)
        return -1;
    return v;
}

static void test_ipv4(void **state)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    (void)state;
    assert_true(fd >= 0);
    /* the default follows the path MTU (net.ipv4.ip_no_pmtu_disc 0) */
    assert_int_not_equal(sockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_OMIT);
    assert_int_equal(dns_pmtu_omit(fd, AF_INET), CM_OK);
    assert_int_equal(sockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER), IP_PMTUDISC_OMIT);
    close(fd);
}

static void test_ipv6(void **state)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);

    (void)state;
    if (fd == -1 && errno == EAFNOSUPPORT)
        skip();
    assert_true(fd >= 0);
    assert_int_not_equal(sockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER), IPV6_PMTUDISC_OMIT);
    assert_int_equal(dns_pmtu_omit(fd, AF_INET6), CM_OK);
    assert_int_equal(sockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER), IPV6_PMTUDISC_OMIT);
    close(fd);
}

/* Not a socket: the kernel's refusal comes back as its CM_* code. */
static void test_refused(void **state)
{
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(dns_pmtu_omit(p[0], AF_INET), cm_err_from_errno(ENOTSOCK));
    assert_int_equal(dns_pmtu_omit(p[0], AF_INET6), cm_err_from_errno(ENOTSOCK));
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
