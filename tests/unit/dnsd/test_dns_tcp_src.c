/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_tcp_src.c -- TCP connections by source: keys, per-source lists, deletion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/cm_err.h"
#include "dnsd/dns_tcp_src.h"

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    }
    return ss;
}

static size_t count_of(struct dns_src_table *t, const char *ip)
{
    struct sockaddr_storage ss = addr(ip, 53);
    size_t n;

    dns_src_lookup(t, (const struct sockaddr *)&ss, &n);
    return n;
}

static struct dns_src_node *first_of(struct dns_src_table *t, const char *ip)
{
    struct sockaddr_storage ss = addr(ip, 53);
    size_t n;

    return dns_src_lookup(t, (const struct sockaddr *)&ss, &n);
}

static void add(struct dns_src_table *t, struct dns_src_node *n, const char *ip, uint16_t port)
{
    struct sockaddr_storage ss = addr(ip, port);

    assert_int_equal(dns_src_add(t, n, (const struct sockaddr *)&ss), CM_OK);
}

static void test_keys(void **state)
{
    struct dns_src_table *t = dns_src_table_new(16);
    struct dns_src_node n[8];

    (void)state;
    memset(n, 0, sizeof(n));
    assert_non_null(t);
    add(t, &n[0], "192.0.2.1", 1000);
    add(t, &n[1], "192.0.2.1", 1001);        /* same /32, other port */
    add(t, &n[2], "192.0.2.2", 1000);        /* another /32 */
    add(t, &n[3], "::ffff:192.0.2.1", 1002); /* IPv4-mapped: the same source */
    add(t, &n[4], "2001:db8:1:2::1", 1000);  /* one /64 ... */
    add(t, &n[5], "2001:db8:1:2:ffff::9", 1000);
    add(t, &n[6], "2001:db8:1:3::1", 1000); /* ... and the next one */
    add(t, &n[7], "::c000:201", 1000);      /* not mapped: an IPv6 source */
    assert_int_equal(count_of(t, "192.0.2.1"), 3);
    assert_int_equal(count_of(t, "::ffff:192.0.2.1"), 3);
    assert_int_equal(count_of(t, "192.0.2.2"), 1);
    assert_int_equal(count_of(t, "192.0.2.3"), 0);
    assert_int_equal(count_of(t, "2001:db8:1:2:abcd::"), 2);
    assert_int_equal(count_of(t, "2001:db8:1:3::77"), 1);
    assert_int_equal(count_of(t, "::c000:201"), 1);
    assert_int_equal(dns_src_table_sources(t), 5);
    assert_null(first_of(t, "192.0.2.3"));
    dns_src_table_free(t);
}

static void test_order_and_touch(void **state)
{
    struct dns_src_table *t = dns_src_table_new(8);
    struct dns_src_node n[4];

    (void)state;
    memset(n, 0, sizeof(n));
    for (int i = 0; i < 4; i++)
        add(t, &n[i], "198.51.100.7", (uint16_t)(2000 + i));
    /* oldest first */
    assert_ptr_equal(first_of(t, "198.51.100.7"), &n[0]);
    assert_ptr_equal(n[0].next, &n[1]);
    assert_ptr_equal(n[3].next, NULL);
    /* touching the oldest makes it the newest; the tail is a no-op */
    dns_src_touch(t, &n[0]);
    dns_src_touch(t, &n[0]);
    assert_ptr_equal(first_of(t, "198.51.100.7"), &n[1]);
    assert_ptr_equal(n[3].next, &n[0]);
    assert_ptr_equal(n[0].prev, &n[3]);
    assert_null(n[0].next);
    /* a middle node */
    dns_src_touch(t, &n[2]);
    assert_ptr_equal(n[1].next, &n[3]);
    assert_ptr_equal(n[0].next, &n[2]);
    /* removing the head, a middle and the tail */
    dns_src_remove(t, &n[1]);
    assert_ptr_equal(first_of(t, "198.51.100.7"), &n[3]);
    dns_src_remove(t, &n[0]);
    assert_ptr_equal(n[3].next, &n[2]);
    dns_src_remove(t, &n[2]);
    assert_int_equal(count_of(t, "198.51.100.7"), 1);
    assert_null(n[3].next);
    dns_src_remove(t, &n[3]);
    dns_src_remove(t, &n[3]); /* not in: no-op */
    assert_int_equal(count_of(t, "198.51.100.7"), 0);
    assert_int_equal(dns_src_table_sources(t), 0);
    dns_src_touch(t, &n[3]); /* not in: no-op */
    dns_src_table_free(t);
}

static void test_bounded(void **state)
{
    struct dns_src_table *t = dns_src_table_new(2);
    struct dns_src_node n[3];
    struct sockaddr_storage ss = addr("203.0.113.1", 1);

    (void)state;
    memset(n, 0, sizeof(n));
    add(t, &n[0], "203.0.113.1", 1);
    add(t, &n[1], "203.0.113.2", 1);
    assert_int_equal(dns_src_add(t, &n[2], (const struct sockaddr *)&ss), CM_ENOSPC);
    assert_int_equal(n[2].family, 0);
    dns_src_remove(t, &n[2]); /* never added: no-op */
    assert_int_equal(count_of(t, "203.0.113.1"), 1);
    dns_src_table_free(t);
    dns_src_table_free(NULL);
}

/*
 * Many sources coming and going against a plain model: the backward-shift
 * deletion must keep every remaining source reachable with its count.
 */
#define MODEL_SOURCES 300
#define MODEL_NODES   600

static void test_churn_against_model(void **state)
{
    static struct dns_src_node n[MODEL_NODES];
    static int src_of[MODEL_NODES]; /* -1 = not in the table */
    size_t model[MODEL_SOURCES];
    struct dns_src_table *t = dns_src_table_new(MODEL_NODES);
    uint64_t x = 88172645463325252u;

    (void)state;
    memset(n, 0, sizeof(n));
    memset(model, 0, sizeof(model));
    for (int i = 0; i < MODEL_NODES; i++)
        src_of[i] = -1;
    for (int round = 0; round < 20000; round++) {
        int i;
        char ip[64];

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i = (int)(x % MODEL_NODES);
        if (src_of[i] >= 0) {
            model[src_of[i]]--;
            dns_src_remove(t, &n[i]);
            src_of[i] = -1;
        } else {
            int s = (int)((x >> 20) % MODEL_SOURCES);

            if (s % 2 == 0)
                snprintf(ip, sizeof(ip), "10.0.%d.%d", s / 256, s % 256);
            else
                snprintf(ip, sizeof(ip), "2001:db8:%x::%x", s, (unsigned)(x >> 40) & 0xffff);
            add(t, &n[i], ip, 1);
            model[s]++;
            src_of[i] = s;
        }
    }
    for (int s = 0; s < MODEL_SOURCES; s++) {
        char ip[64];
        size_t walked = 0;
        struct dns_src_node *p;

        if (s % 2 == 0)
            snprintf(ip, sizeof(ip), "10.0.%d.%d", s / 256, s % 256);
        else
            snprintf(ip, sizeof(ip), "2001:db8:%x::1", s);
        assert_int_equal(count_of(t, ip), model[s]);
        for (p = first_of(t, ip); p != NULL; p = p->next)
            walked++;
        assert_int_equal(walked, model[s]);
    }
    for (int i = 0; i < MODEL_NODES; i++)
        dns_src_remove(t, &n[i]);
    assert_int_equal(dns_src_table_sources(t), 0);
    dns_src_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_order_and_touch),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_churn_against_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
