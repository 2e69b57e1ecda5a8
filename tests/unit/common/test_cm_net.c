/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_net.c -- ports and formatting, special-address classification, prefixes and the
 * allow list (tables). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "common/cm_net.h"

struct kind_case {
    const char *ip;
    enum cm_ip_kind kind;
};

static const struct kind_case kind_cases[] = {
    /* ordinary */
    {"192.0.2.10", CM_IP_ORDINARY},
    {"10.1.2.3", CM_IP_ORDINARY},
    {"1.0.0.0", CM_IP_ORDINARY},
    {"126.255.255.255", CM_IP_ORDINARY},
    {"128.0.0.0", CM_IP_ORDINARY},
    {"169.253.255.255", CM_IP_ORDINARY},
    {"169.255.0.0", CM_IP_ORDINARY},
    {"223.255.255.255", CM_IP_ORDINARY},
    {"240.0.0.1", CM_IP_ORDINARY},
    {"255.255.255.254", CM_IP_ORDINARY},
    {"2001:db8::1", CM_IP_ORDINARY},
    {"::2", CM_IP_ORDINARY},
    {"fe7f:ffff::1", CM_IP_ORDINARY},
    {"fec0::1", CM_IP_ORDINARY},
    {"feff::1", CM_IP_ORDINARY},
    {"::ffff:192.0.2.1", CM_IP_ORDINARY},
    /* unspecified */
    {"0.0.0.0", CM_IP_UNSPECIFIED},
    {"0.1.2.3", CM_IP_UNSPECIFIED},
    {"::", CM_IP_UNSPECIFIED},
    {"::ffff:0.0.0.0", CM_IP_UNSPECIFIED},
    /* loopback */
    {"127.0.0.1", CM_IP_LOOPBACK},
    {"127.255.255.255", CM_IP_LOOPBACK},
    {"::1", CM_IP_LOOPBACK},
    {"::ffff:127.0.0.1", CM_IP_LOOPBACK},
    /* link-local */
    {"169.254.0.0", CM_IP_LINK_LOCAL},
    {"169.254.169.254", CM_IP_LINK_LOCAL},
    {"fe80::1", CM_IP_LINK_LOCAL},
    {"febf:ffff::1", CM_IP_LINK_LOCAL},
    {"::ffff:169.254.1.1", CM_IP_LINK_LOCAL},
    /* multicast */
    {"224.0.0.1", CM_IP_MULTICAST},
    {"239.255.255.255", CM_IP_MULTICAST},
    {"ff02::1", CM_IP_MULTICAST},
    {"ff00::", CM_IP_MULTICAST},
    {"::ffff:224.0.0.251", CM_IP_MULTICAST},
    /* broadcast */
    {"255.255.255.255", CM_IP_BROADCAST},
    {"::ffff:255.255.255.255", CM_IP_BROADCAST},
};

static void test_classify(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(kind_cases) / sizeof(kind_cases[0]); i++) {
        struct cm_addr a;

        print_message("case %s\n", kind_cases[i].ip);
        assert_int_equal(cm_ip_parse(kind_cases[i].ip, &a), CM_OK);
        assert_int_equal(cm_ip_classify((const struct sockaddr *)&a.ss), kind_cases[i].kind);
    }
}

struct prefix_case {
    const char *text;
    int rc;
    enum cm_ip_kind kind; /* cm_ip_prefix_kind when rc is CM_OK */
};

static const struct prefix_case prefix_cases[] = {
    {"127.0.0.0/8", CM_OK, CM_IP_LOOPBACK},
    {"127.0.0.1/32", CM_OK, CM_IP_LOOPBACK},
    {"127.1.0.0/16", CM_OK, CM_IP_LOOPBACK},
    {"::1/128", CM_OK, CM_IP_LOOPBACK},
    {"::ffff:127.0.0.0/104", CM_OK, CM_IP_LOOPBACK},
    {"169.254.0.0/16", CM_OK, CM_IP_LINK_LOCAL},
    {"fe80::/10", CM_OK, CM_IP_LINK_LOCAL},
    {"fe80::/64", CM_OK, CM_IP_LINK_LOCAL},
    {"224.0.0.0/4", CM_OK, CM_IP_MULTICAST},
    {"ff00::/8", CM_OK, CM_IP_MULTICAST},
    {"255.255.255.255/32", CM_OK, CM_IP_BROADCAST},
    {"0.0.0.0/8", CM_OK, CM_IP_UNSPECIFIED},
    /* wider than one special range, or none at all */
    {"0.0.0.0/0", CM_OK, CM_IP_ORDINARY},
    {"::/0", CM_OK, CM_IP_ORDINARY},
    {"126.0.0.0/7", CM_OK, CM_IP_ORDINARY},
    {"fe80::/9", CM_OK, CM_IP_ORDINARY},
    {"10.0.0.0/8", CM_OK, CM_IP_ORDINARY},
    /* malformed */
    {"127.0.0.1", CM_EPARSE, CM_IP_ORDINARY},
    {"127.0.0.0/", CM_EPARSE, CM_IP_ORDINARY},
    {"127.0.0.0/x", CM_EPARSE, CM_IP_ORDINARY},
    {"127.0.0.0/-1", CM_EPARSE, CM_IP_ORDINARY},
    {"localhost/8", CM_EPARSE, CM_IP_ORDINARY},
    {"127.0.0.0/33", CM_ERANGE, CM_IP_ORDINARY},
    {"::1/129", CM_ERANGE, CM_IP_ORDINARY},
    {"127.0.0.1/8", CM_EINVAL, CM_IP_ORDINARY},
};

static void test_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(prefix_cases) / sizeof(prefix_cases[0]); i++) {
        const struct prefix_case *c = &prefix_cases[i];
        struct cm_ip_prefix p;

        print_message("case %s\n", c->text);
        assert_int_equal(cm_ip_prefix_parse(c->text, &p), c->rc);
        if (c->rc == CM_OK)
            assert_int_equal(cm_ip_prefix_kind(&p), c->kind);
    }
}

enum list { NONE = 0, NARROW = 1, WIDE = 2 };

struct refuse_case {
    const char *ip;
    enum list list;
    enum cm_ip_kind refused;
};

/* NARROW: 127.0.0.0/8, ::1/128, 169.254.0.0/16; WIDE adds 0.0.0.0/0 and ::/0
 * (the configuration refuses those; the rule must hold without it). */
static const struct refuse_case refuse_cases[] = {
    {"192.0.2.1", NONE, CM_IP_ORDINARY},
    {"127.0.0.1", NONE, CM_IP_LOOPBACK},
    {"127.0.0.1", NARROW, CM_IP_ORDINARY},
    {"::ffff:127.0.0.1", NONE, CM_IP_LOOPBACK},
    {"::ffff:127.0.0.1", NARROW, CM_IP_ORDINARY}, /* matched as the IPv4 it carries */
    {"::1", NONE, CM_IP_LOOPBACK},
    {"::1", NARROW, CM_IP_ORDINARY},
    {"169.254.169.254", NONE, CM_IP_LINK_LOCAL},
    {"169.254.169.254", NARROW, CM_IP_ORDINARY},
    {"fe80::1", NARROW, CM_IP_LINK_LOCAL}, /* not in the list */
    {"fe80::1", WIDE, CM_IP_ORDINARY},
    /* never allowed, whatever the list says */
    {"0.0.0.0", WIDE, CM_IP_UNSPECIFIED},
    {"::", WIDE, CM_IP_UNSPECIFIED},
    {"224.0.0.1", WIDE, CM_IP_MULTICAST},
    {"ff02::1", WIDE, CM_IP_MULTICAST},
    {"::ffff:239.1.1.1", WIDE, CM_IP_MULTICAST},
    {"255.255.255.255", WIDE, CM_IP_BROADCAST},
};

static void test_refused(void **state)
{
    static const char *const texts[] = {"127.0.0.0/8", "::1/128", "169.254.0.0/16", "0.0.0.0/0",
                                        "::/0"};
    static const size_t counts[] = {[NONE] = 0, [NARROW] = 3, [WIDE] = 5};
    struct cm_ip_prefix allow[5];

    (void)state;
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(cm_ip_prefix_parse(texts[i], &allow[i]), CM_OK);
    for (size_t i = 0; i < sizeof(refuse_cases) / sizeof(refuse_cases[0]); i++) {
        const struct refuse_case *c = &refuse_cases[i];
        struct cm_addr a;

        print_message("case %s list=%d\n", c->ip, (int)c->list);
        assert_int_equal(cm_ip_parse(c->ip, &a), CM_OK);
        assert_int_equal(cm_ip_refused((const struct sockaddr *)&a.ss, allow, counts[c->list]),
                         c->refused);
    }
}

static void test_refusal_words(void **state)
{
    char buf[256];

    (void)state;
    cm_ip_refusal_format("127.0.0.1", CM_IP_LOOPBACK, buf, sizeof(buf));
    assert_string_equal(buf,
                        "127.0.0.1 is a loopback address; list it in allow_addresses to permit it");
    cm_ip_refusal_format("224.0.0.1", CM_IP_MULTICAST, buf, sizeof(buf));
    assert_string_equal(buf, "224.0.0.1 is a multicast address; it is never allowed");
    cm_ip_refusal_format("::", CM_IP_UNSPECIFIED, buf, sizeof(buf));
    assert_string_equal(buf, ":: is an unspecified address; it is never allowed");
}

/* cm_addr_port() and cm_addr_format(), which prints the port it returns. */
static void test_port_and_format(void **state)
{
    static const struct {
        const char *in;
        int port;
        const char *text;
    } cases[] = {
        {"192.0.2.1:53", 53, "192.0.2.1:53"},
        {"0.0.0.0:65535", 65535, "0.0.0.0:65535"},
        {"[::1]:8080", 8080, "[::1]:8080"},
        {"[2001:db8::1]:1", 1, "[2001:db8::1]:1"},
        {"[::ffff:127.0.0.1]:443", 443, "[::ffff:127.0.0.1]:443"},
    };
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char buf[CM_ADDR_STRLEN];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_addr a;

        print_message("%s\n", cases[i].in);
        assert_int_equal(cm_addr_parse(cases[i].in, 0, &a), CM_OK);
        assert_int_equal(cm_addr_port((const struct sockaddr *)&a.ss), cases[i].port);
        cm_addr_format((const struct sockaddr *)&a.ss, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
    /* another family: no port, and the text says so */
    assert_int_equal(cm_addr_port((const struct sockaddr *)&un), -1);
    cm_addr_format((const struct sockaddr *)&un, buf, sizeof(buf));
    assert_string_equal(buf, "?:0");
}

/* The control API's URL: wildcards are reached on the loopback of their family. */
static void test_url(void **state)
{
    static const struct {
        const char *in;
        bool tls;
        bool wildcard;
        const char *url;
    } cases[] = {
        {"127.0.0.1:9153", false, false, "http://127.0.0.1:9153"},
        {"0.0.0.0:9153", false, true, "http://127.0.0.1:9153"},
        {"[::]:9153", true, true, "https://[::1]:9153"},
        {"[2001:db8::1]:443", true, false, "https://[2001:db8::1]:443"},
        {"192.0.2.7:80", false, false, "http://192.0.2.7:80"},
    };
    char buf[CM_URL_STRLEN];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_addr a;

        assert_int_equal(cm_addr_parse(cases[i].in, 0, &a), CM_OK);
        assert_int_equal(cm_addr_is_wildcard((const struct sockaddr *)&a.ss), cases[i].wildcard);
        cm_addr_url((const struct sockaddr *)&a.ss, cases[i].tls, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].url);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_and_format), cmocka_unit_test(test_url),
        cmocka_unit_test(test_classify),        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_refused),         cmocka_unit_test(test_refusal_words),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
