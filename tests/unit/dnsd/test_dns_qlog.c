/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_qlog.c -- the sampled query log without sockets: responses made
 * with ldns go through the worker's hook, the drain formats them. The
 * sampling counter (exactly every Nth), the full ring (dropped, counted, the
 * held records intact), the line's keys, a client-chosen name that tries to
 * add keys, a response too long to keep, and rate limiting's marks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "common/cm_conf.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_qlog.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"

#define MAX_LINES 64

struct lines {
    char text[MAX_LINES][DNS_QLOG_LINE_MAX + 1];
    size_t count;
};

struct fixture {
    char us[16], eu[16];
    struct cm_conf conf;
    struct cm_conf_region regions[2];
    struct dns_view view;
    struct sockaddr_in client;
    struct dns_query_info info;
    uint8_t resp[65535];
    size_t resp_len;
    struct lines lines;
};

static void collect(const char *line, void *arg)
{
    struct lines *l = arg;

    assert_true(l->count < MAX_LINES);
    assert_true(strlen(line) <= DNS_QLOG_LINE_MAX);
    snprintf(l->text[l->count++], sizeof(l->text[0]), "%s", line);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->us, sizeof(f->us), "us-east-1");
    snprintf(f->eu, sizeof(f->eu), "eu-west-1");
    f->regions[0].name = f->us;
    f->regions[1].name = f->eu;
    f->conf.regions = f->regions;
    f->conf.region_count = 2;
    f->view.conf = &f->conf;
    f->client.sin_family = AF_INET;
    f->client.sin_port = htons(5353);
    inet_pton(AF_INET, "192.0.2.200", &f->client.sin_addr);
    f->info.region = 1;
    f->info.placement = DNS_PLACE_CLIENT_NETWORKS;
    f->info.rcode = DNS_RCODE_NOERROR;
    f->info.service = -1;
    f->info.member = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* A response to @qname (presentation form, may carry \DDD escapes) with the
 * answer records @answers (NULL-terminated, zone file lines) and an ECS
 * option @ecs (FAMILY SOURCE SCOPE ADDRESS..., NULL: no OPT) into f->resp. */
static void make_resp(struct fixture *f, const char *qname, ldns_rr_type qtype,
                      const char *const *answers, ldns_pkt_rcode rcode, const uint8_t *ecs,
                      size_t ecs_len)
{
    ldns_rdf *name = ldns_dname_new_frm_str(qname);
    ldns_pkt *p;
    uint8_t *wire = NULL;
    size_t len = 0;

    assert_non_null(name);
    p = ldns_pkt_query_new(name, qtype, LDNS_RR_CLASS_IN, 0);
    assert_non_null(p);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_aa(p, true);
    ldns_pkt_set_rcode(p, (uint8_t)rcode);
    for (size_t i = 0; answers != NULL && answers[i] != NULL; i++) {
        ldns_rr *rr = NULL;

        assert_int_equal(ldns_rr_new_frm_str(&rr, answers[i], 30, NULL, NULL), LDNS_STATUS_OK);
        assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
    }
    if (ecs != NULL) {
        uint8_t opt[4 + 20];

        assert_true(ecs_len <= 20);
        opt[0] = 0;
        opt[1] = DNS_EDNS_OPT_ECS;
        opt[2] = 0;
        opt[3] = (uint8_t)ecs_len;
        memcpy(opt + 4, ecs, ecs_len);
        ldns_pkt_set_edns_udp_size(p, 1232);
        ldns_pkt_set_edns_data(p, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, 4 + ecs_len, opt));
    }
    assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
    assert_true(len <= sizeof(f->resp));
    memcpy(f->resp, wire, len);
    f->resp_len = len;
    free(wire);
    ldns_pkt_free(p);
}

static void hook(struct fixture *f, struct dns_qlog *ql, bool tcp, size_t sent)
{
    dns_qlog_query(ql, 0, &f->view, (const struct sockaddr *)&f->client, tcp, &f->info, f->resp,
                   f->resp_len, sent);
}

static void drain(struct fixture *f, struct dns_qlog *ql)
{
    f->lines.count = 0;
    dns_qlog_drain(ql, collect, &f->lines);
}

/* @line has " key=value" (as a whole pair: followed by a space or the end). */
static bool has_pair(const char *line, const char *pair)
{
    size_t n = strlen(pair);

    for (const char *p = strstr(line, pair); p != NULL; p = strstr(p + 1, pair)) {
        if (p > line && p[-1] == ' ' && (p[n] == ' ' || p[n] == '\0'))
            return true;
    }
    return false;
}

#define assert_pair(line, pair)                                                                    \
    do {                                                                                           \
        if (!has_pair((line), (pair)))                                                             \
            fail_msg("no \"%s\" in: %s", (pair), (line));                                          \
    } while (0)

static void test_every_nth(void **state)
{
    static const char *const a[] = {"web.example. IN A 192.0.2.1", NULL};
    struct fixture *f = *state;
    struct dns_qlog *ql = dns_qlog_new(1, 64, 3);

    assert_non_null(ql);
    make_resp(f, "web.example.", LDNS_RR_TYPE_A, a, LDNS_RCODE_NOERROR, NULL, 0);
    for (int i = 0; i < 10; i++) {
        f->client.sin_port = htons((uint16_t)(1000 + i));
        hook(f, ql, false, f->resp_len);
    }
    drain(f, ql);
    /* The 3rd, 6th and 9th: a counter, not a draw. */
    assert_int_equal(f->lines.count, 3);
    assert_pair(f->lines.text[0], "port=1002");
    assert_pair(f->lines.text[1], "port=1005");
    assert_pair(f->lines.text[2], "port=1008");
    assert_int_equal(dns_qlog_logged(ql), 3);
    /* Nothing to send: not a query to log, and not counted. */
    f->resp_len = 0;
    for (int i = 0; i < 5; i++)
        hook(f, ql, false, 0);
    drain(f, ql);
    assert_int_equal(f->lines.count, 0);
    /* Paused, then every one. */
    make_resp(f, "web.example.", LDNS_RR_TYPE_A, a, LDNS_RCODE_NOERROR, NULL, 0);
    dns_qlog_set_sample(ql, 0);
    hook(f, ql, false, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 0);
    dns_qlog_set_sample(ql, 1);
    hook(f, ql, false, f->resp_len);
    hook(f, ql, false, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 2);
    assert_int_equal(dns_qlog_dropped(ql), 0);
    dns_qlog_free(ql);
}

static void test_ring_full(void **state)
{
    static const char *const a[] = {"web.example. IN A 192.0.2.1", NULL};
    struct fixture *f = *state;
    struct dns_qlog *ql = dns_qlog_new(2, 2, 1);

    assert_non_null(ql);
    make_resp(f, "web.example.", LDNS_RR_TYPE_A, a, LDNS_RCODE_NOERROR, NULL, 0);
    for (int i = 0; i < 5; i++) {
        f->client.sin_port = htons((uint16_t)(2000 + i));
        hook(f, ql, false, f->resp_len);
    }
    /* Worker 1 has its own ring. */
    dns_qlog_query(ql, 1, &f->view, (const struct sockaddr *)&f->client, false, &f->info, f->resp,
                   f->resp_len, f->resp_len);
    assert_int_equal(dns_qlog_dropped(ql), 3);
    drain(f, ql);
    assert_int_equal(f->lines.count, 3);
    assert_pair(f->lines.text[0], "port=2000"); /* the first two kept whole */
    assert_pair(f->lines.text[1], "port=2001");
    assert_pair(f->lines.text[2], "port=2004");
    /* Room again. */
    hook(f, ql, false, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 1);
    assert_int_equal(dns_qlog_dropped(ql), 3);
    assert_int_equal(dns_qlog_logged(ql), 4);
    dns_qlog_free(ql);
}

static void test_line_keys(void **state)
{
    static const char *const a[] = {"web.example. IN CNAME eu.web.example.",
                                    "eu.web.example. IN A 192.0.2.20",
                                    "eu.web.example. IN A 192.0.2.21", NULL};
    static const uint8_t ecs[] = {0, 1, 24, 16, 10, 2, 3}; /* 10.2.3.0/24, scope 16 */
    struct fixture *f = *state;
    struct dns_qlog *ql = dns_qlog_new(1, 8, 1);
    const char *l;

    make_resp(f, "web.example.", LDNS_RR_TYPE_A, a, LDNS_RCODE_NOERROR, ecs, sizeof(ecs));
    hook(f, ql, true, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 1);
    l = f->lines.text[0];
    assert_true(strncmp(l, "query: ", 7) == 0);
    assert_pair(l, "client=192.0.2.200");
    assert_pair(l, "port=5353");
    assert_pair(l, "transport=tcp");
    assert_pair(l, "name=web.example.");
    assert_pair(l, "qtype=A");
    assert_pair(l, "rcode=NOERROR");
    assert_pair(l, "region=eu-west-1");
    assert_pair(l, "placed_by=client_networks");
    assert_pair(l, "ecs=10.2.3.0/24");
    assert_pair(l, "ecs_scope=16");
    assert_pair(l, "answer=eu.web.example.,192.0.2.20,192.0.2.21");
    assert_null(strstr(l, "rrl="));
    assert_null(strstr(l, " tc="));

    /* IPv6 client and ECS; NXDOMAIN keeps its region, REFUSED has none. */
    static const uint8_t ecs6[] = {0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 2, 5};
    struct sockaddr_in6 c6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};

    inet_pton(AF_INET6, "2001:db8::7", &c6.sin6_addr);
    f->info.rcode = DNS_RCODE_NXDOMAIN;
    make_resp(f, "nx.example.", LDNS_RR_TYPE_AAAA, NULL, LDNS_RCODE_NXDOMAIN, ecs6, sizeof(ecs6));
    dns_qlog_query(ql, 0, &f->view, (const struct sockaddr *)&c6, false, &f->info, f->resp,
                   f->resp_len, f->resp_len);
    f->info.rcode = DNS_RCODE_REFUSED;
    make_resp(f, "example.org.", LDNS_RR_TYPE_A, NULL, LDNS_RCODE_REFUSED, NULL, 0);
    hook(f, ql, false, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 2);
    l = f->lines.text[0];
    assert_pair(l, "client=2001:db8::7");
    assert_pair(l, "transport=udp");
    assert_pair(l, "rcode=NXDOMAIN");
    assert_pair(l, "qtype=AAAA");
    assert_pair(l, "region=eu-west-1");
    assert_pair(l, "ecs=2001:db8:2:500::/56");
    assert_pair(l, "ecs_scope=0");
    assert_null(strstr(l, "answer="));
    l = f->lines.text[1];
    assert_pair(l, "rcode=REFUSED");
    assert_null(strstr(l, "region="));
    assert_null(strstr(l, "placed_by="));
    assert_null(strstr(l, "ecs="));
    dns_qlog_free(ql);
}

/* A name with a space, a quote and "=" cannot add a key or end the line; nor can a
 * region name with a space. */
static void test_hostile_name(void **state)
{
    struct fixture *f = *state;
    struct dns_qlog *ql = dns_qlog_new(1, 8, 1);
    const char *l;

    f->eu[2] = ' ';
    make_resp(f, "x\\032rcode=NOERROR\\032\\\"\\010.example.", LDNS_RR_TYPE_A, NULL,
              LDNS_RCODE_NXDOMAIN, NULL, 0);
    f->info.rcode = DNS_RCODE_NXDOMAIN;
    hook(f, ql, false, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 1);
    l = f->lines.text[0];
    assert_null(strchr(l, '\n'));
    assert_pair(l, "rcode=NXDOMAIN");
    assert_pair(l, "region=eu\\032west-1"); /* escaped by us: ldns is not involved */
    assert_false(has_pair(l, "rcode=NOERROR"));
    /* One token from "name=" to the next space. */
    const char *n = strstr(l, " name=");
    assert_non_null(n);
    assert_true(strncmp(strchr(n + 1, ' '), " qtype=A", 8) == 0);
    dns_qlog_free(ql);
}

/* Longer than a record keeps: the question stays, the answer is omitted. */
static void test_long_response(void **state)
{
    struct fixture *f = *state;
    struct dns_qlog *ql = dns_qlog_new(1, 8, 1);
    static char rr[100][64];
    const char *a[101];
    const char *l;

    for (int i = 0; i < 100; i++) {
        snprintf(rr[i], sizeof(rr[i]), "many.example. IN A 198.51.100.%d", i);
        a[i] = rr[i];
    }
    a[100] = NULL;
    make_resp(f, "many.example.", LDNS_RR_TYPE_A, a, LDNS_RCODE_NOERROR, NULL, 0);
    assert_true(f->resp_len > DNS_QLOG_RESP_MAX);
    hook(f, ql, true, f->resp_len);
    /* At the limit: kept whole. */
    make_resp(f, "many.example.", LDNS_RR_TYPE_A, a + 100 - 74, LDNS_RCODE_NOERROR, NULL, 0);
    assert_true(f->resp_len <= DNS_QLOG_RESP_MAX);
    hook(f, ql, true, f->resp_len);
    drain(f, ql);
    assert_int_equal(f->lines.count, 2);
    l = f->lines.text[0];
    assert_pair(l, "name=many.example.");
    assert_pair(l, "answer_omitted=1");
    assert_null(strstr(l, "answer="));
    l = f->lines.text[1];
    assert_null(strstr(l, "answer_omitted"));
    assert_non_null(strstr(l, " answer=198.51.100.26,198.51.100.27,"));
    assert_true(strlen(l) <= DNS_QLOG_LINE_MAX);
    dns_qlog_free(ql);
}

/* Rate limiting: dropped (nothing sent) and slipped (the truncated form sent). */
static void test_rrl_marks(void **state)
{
    static const char *const a[] = {"web.example. IN A 192.0.2.1", NULL};
    struct fixture *f = *state;
    struct dns_qlog *ql = dns_qlog_new(1, 8, 1);
    size_t slipped;

    make_resp(f, "web.example.", LDNS_RR_TYPE_A, a, LDNS_RCODE_NOERROR, NULL, 0);
    hook(f, ql, false, 0);
    slipped = DNS_HEADER_LEN + 13 + 4;
    f->resp[2] |= 0x02;
    memset(f->resp + 6, 0, 6);
    hook(f, ql, false, slipped);
    drain(f, ql);
    assert_int_equal(f->lines.count, 2);
    assert_pair(f->lines.text[0], "rrl=drop");
    assert_pair(f->lines.text[0], "answer=192.0.2.1");
    assert_pair(f->lines.text[1], "rrl=slip");
    assert_pair(f->lines.text[1], "tc=1");
    assert_null(strstr(f->lines.text[1], "answer="));
    dns_qlog_free(ql);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    assert_null(dns_qlog_new(0, 8, 1));
    assert_null(dns_qlog_new(1, 0, 1));
    dns_qlog_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_nth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rrl_marks, setup, teardown),
        cmocka_unit_test(test_bad_sizes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
