/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_zone.c -- zone loading, compilation and lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define ORIGIN "fed.example.test"

static const char GOOD_ZONE[] = "$TTL 300\n"
                                "@ IN SOA ns1 Hostmaster.Example.test. 1 7200 900 1209600 60\n"
                                "  IN NS ns1\n"
                                "  IN NS ns2.elsewhere.test.\n"
                                "  IN MX 10 Mail\n"
                                "ns1 IN A 192.0.2.1\n"
                                "Mail 120 IN A 192.0.2.25\n"
                                "mail 60 IN A 192.0.2.26\n"
                                "www IN CNAME Mail\n"
                                "a.b.c IN TXT \"deep\"\n"
                                "sub IN NS ns.sub\n"
                                "ns.sub IN A 192.0.2.53\n"
                                "*.wild IN A 192.0.2.99\n"
                                "dup IN A 192.0.2.7\n"
                                "dup IN A 192.0.2.7\n";

struct tmpzone {
    char dir[64];
    char path[128];
};

static const char *write_zone(struct tmpzone *t, const char *text)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/test_dns_zone.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/zone", t->dir);
    FILE *fp = fopen(t->path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return t->path;
}

static void remove_zone(struct tmpzone *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

static struct dns_zone *load_text(const char *text)
{
    struct tmpzone t;
    struct dns_zone *z = NULL;
    char err[512];
    int rc = dns_zone_load(write_zone(&t, text), ORIGIN, &z, err, sizeof(err));
    if (rc != CM_OK)
        fprintf(stderr, "load: %s\n", err);
    assert_int_equal(rc, CM_OK);
    remove_zone(&t);
    return z;
}

/* Loads @text expecting failure; checks that the error has @line and @needle. */
static void expect_error(const char *text, int line, const char *needle)
{
    struct tmpzone t;
    struct dns_zone *z = NULL;
    char err[512], want[256];
    const char *path = write_zone(&t, text);

    assert_int_not_equal(dns_zone_load(path, ORIGIN, &z, err, sizeof(err)), CM_OK);
    assert_null(z);
    if (line > 0)
        snprintf(want, sizeof(want), "%s:%d: ", path, line);
    else
        snprintf(want, sizeof(want), "%s: ", path);
    if (strncmp(err, want, strlen(want)) != 0 || strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, want, needle);
    remove_zone(&t);
}

static size_t wire(const char *dotted, uint8_t *out)
{
    size_t n = 0;
    const char *s = dotted;

    while (*s != '\0') {
        const char *dot = strchr(s, '.');
        size_t l = dot != NULL ? (size_t)(dot - s) : strlen(s);
        out[n++] = (uint8_t)l;
        memcpy(out + n, s, l);
        n += l;
        s += l;
        if (*s == '.')
            s++;
    }
    out[n++] = 0;
    return n;
}

static enum dns_zone_match find(const struct dns_zone *z, const char *name,
                                const struct dns_node **node)
{
    uint8_t w[256];
    size_t n = wire(name, w);

    *node = NULL;
    return dns_zone_find(z, w, n, node);
}

static void test_load_and_find(void **state)
{
    struct dns_zone *z = load_text(GOOD_ZONE);
    const struct dns_node *node;
    uint8_t w[256];

    (void)state;
    const struct dns_node *apex = dns_zone_apex(z);
    assert_int_equal(apex->name_len, wire(ORIGIN, w));
    assert_memory_equal(apex->name, w, apex->name_len);
    assert_false(apex->is_delegation);
    assert_non_null(dns_zone_soa(z));
    assert_int_equal(dns_zone_soa(z)->ttl, 300);
    assert_int_equal(dns_zone_negative_ttl(z), 60); /* min(SOA TTL 300, MINIMUM 60) */
    assert_non_null(dns_node_rrset(apex, DNS_TYPE_NS));
    assert_int_equal(dns_node_rrset(apex, DNS_TYPE_NS)->count, 2);
    /* apex, ns1, mail, www, a.b.c, sub, ns.sub, *.wild, dup */
    assert_int_equal(dns_zone_name_count(z), 9);

    assert_int_equal(find(z, ORIGIN, &node), DNS_ZONE_FOUND);
    assert_ptr_equal(node, apex);
    assert_int_equal(find(z, "ns1." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_non_null(dns_node_rrset(node, DNS_TYPE_A));
    assert_null(dns_node_rrset(node, DNS_TYPE_AAAA));

    /* owner lowercased and merged; the RRset gets the smallest TTL */
    assert_int_equal(find(z, "mail." ORIGIN, &node), DNS_ZONE_FOUND);
    const struct dns_rrset *a = dns_node_rrset(node, DNS_TYPE_A);
    assert_int_equal(a->count, 2);
    assert_int_equal(a->ttl, 60);
    assert_int_equal(a->rdata_len, 12);

    /* RDATA keeps its case; names are absolute and uncompressed */
    assert_int_equal(find(z, "www." ORIGIN, &node), DNS_ZONE_FOUND);
    const struct dns_rrset *cname = dns_node_rrset(node, DNS_TYPE_CNAME);
    assert_non_null(cname);
    size_t n = wire("Mail.fed.example.test", w);
    assert_int_equal(cname->rdata_len, 2 + n);
    assert_memory_equal(cname->rdata + 2, w, n);

    /* duplicates dropped */
    assert_int_equal(find(z, "dup." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(dns_node_rrset(node, DNS_TYPE_A)->count, 1);

    /* empty non-terminals exist, with no RRsets */
    assert_int_equal(find(z, "b.c." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(node->rrset_count, 0);
    assert_int_equal(find(z, "c." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(find(z, "a.b.c." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(node->rrset_count, 1);
    assert_int_equal(find(z, "x.b.c." ORIGIN, &node), DNS_ZONE_NXDOMAIN);
    assert_int_equal(find(z, "nope." ORIGIN, &node), DNS_ZONE_NXDOMAIN);
    assert_int_equal(find(z, "x.nope." ORIGIN, &node), DNS_ZONE_NXDOMAIN);

    /* outside */
    assert_int_equal(find(z, "example.test", &node), DNS_ZONE_OUTSIDE);
    assert_int_equal(find(z, "xfed.example.test", &node), DNS_ZONE_OUTSIDE);
    assert_int_equal(find(z, "www.other.test", &node), DNS_ZONE_OUTSIDE);

    dns_zone_unref(z);
}

static void test_delegation_and_wildcard(void **state)
{
    struct dns_zone *z = load_text(GOOD_ZONE);
    const struct dns_node *node;
    uint8_t w[256];

    (void)state;
    assert_int_equal(find(z, "sub." ORIGIN, &node), DNS_ZONE_DELEGATED);
    assert_true(node->is_delegation);
    assert_int_equal(node->name_len, wire("sub." ORIGIN, w));
    assert_int_equal(find(z, "ns.sub." ORIGIN, &node), DNS_ZONE_DELEGATED);
    assert_memory_equal(node->name, w, node->name_len);
    assert_int_equal(find(z, "deep.below.sub." ORIGIN, &node), DNS_ZONE_DELEGATED);
    assert_memory_equal(node->name, w, node->name_len);
    /* glue is reachable by exact lookup only */
    size_t n = wire("ns.sub." ORIGIN, w);
    node = dns_zone_lookup_exact(z, w, n);
    assert_non_null(node);
    assert_non_null(dns_node_rrset(node, DNS_TYPE_A));
    n = wire("missing." ORIGIN, w);
    assert_null(dns_zone_lookup_exact(z, w, n));

    /* wildcard synthesis below the closest encloser (RFC 4592) */
    assert_int_equal(find(z, "anything.wild." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_non_null(dns_node_rrset(node, DNS_TYPE_A));
    assert_int_equal(find(z, "x.y.wild." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(find(z, "wild." ORIGIN, &node), DNS_ZONE_FOUND); /* an ENT */
    assert_int_equal(node->rrset_count, 0);
    assert_int_equal(find(z, "x.tame." ORIGIN, &node), DNS_ZONE_NXDOMAIN);
    dns_zone_unref(z);
}

static void test_refcount(void **state)
{
    struct dns_zone *z = load_text(GOOD_ZONE);

    (void)state;
    assert_ptr_equal(dns_zone_ref(z), z);
    dns_zone_unref(z);
    assert_non_null(dns_zone_apex(z)); /* still alive */
    dns_zone_unref(z);
    dns_zone_unref(NULL);
}

static void test_bad_zones(void **state)
{
    (void)state;
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n"
                 "www.other.test. IN A 192.0.2.1\n",
                 3,
                 "www.other.test. is outside the zone origin fed.example.test. (the "
                 "configuration's zone)");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n"
                 "www IN CNAME ns1\n"
                 "www IN A 192.0.2.1\n",
                 4, "CNAME and other data");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n"
                 "www IN CNAME ns1\n"
                 "www IN CNAME ns2\n",
                 4, "more than one CNAME");
    expect_error("@ IN NS ns1\n"
                 "ns1 IN A 192.0.2.1\n",
                 0, "no SOA record at the apex fed.example.test.");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "ns1 IN A 192.0.2.1\n",
                 0, "no NS records at the apex");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN SOA ns1 h 2 2 3 4 5\n"
                 "@ IN NS ns1\n",
                 2, "more than one SOA");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "sub IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n",
                 2, "SOA record outside the apex");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n"
                 "\n"
                 "; a comment\n"
                 "bad IN A 1.2.3\n",
                 5, "");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n"
                 "$INCLUDE /etc/passwd\n",
                 3, "$INCLUDE");
    expect_error("@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n"
                 "x CH TXT \"chaos\"\n",
                 3, "class other than IN");
    expect_error("", 0, "no SOA");

    struct dns_zone *z = NULL;
    char err[256];
    assert_int_equal(dns_zone_load("/nonexistent/zone", ORIGIN, &z, err, sizeof(err)), CM_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/zone: cannot open"));
}

#define HEAD "$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n"

/* Syntax errors say where the problem starts, what the text is and what was expected. */
static void test_actionable_errors(void **state)
{
    (void)state;
    expect_error(HEAD "; comment\n"
                      "\n"
                      "ns1 IN A 192.0.2.1\n"
                      "mail IN A 192.0.2.2\n"
                      "host IN A 192.0.2.3\n"
                      "www IN A 127.0.0.256\n",
                 9, "\"127.0.0.256\" is not an IPv4 address (A record of www.fed.example.test.)");
    expect_error("$TTL 300\n"
                 "\n"
                 "@ IN SOA ns1 hostmaster (\n"
                 "    1 7200 900\n"
                 "    1209600 60\n"
                 "@ IN NS ns1\n"
                 "www IN A 192.0.2.1\n",
                 3, "unbalanced parentheses: \"(\" opened here is never closed");
    expect_error(HEAD "www IN A 192.0.2.1 ) ; stray\n", 4,
                 "unbalanced parentheses: \")\" without a \"(\" before it");
    expect_error("$ORIGIN example.org.\n"
                 "@ IN SOA ns1 h 1 2 3 4 5\n"
                 "@ IN NS ns1\n",
                 2,
                 "the zone's apex is example.org. but the configuration's zone is "
                 "fed.example.test.");
    expect_error(HEAD "@ IN MX 70000 mail\n", 4,
                 "\"70000\" is not a number from 0 to 65535 (MX record of fed.example.test.)");
    expect_error(HEAD "host IN A 192.0.2.1\n"
                      "     IN AAAA 2001:db8::zz\n",
                 5,
                 "\"2001:db8::zz\" is not an IPv6 address (AAAA record of "
                 "host.fed.example.test.)");
    expect_error(HEAD "www 60 IN MX 10\n", 4,
                 "MX record of www.fed.example.test.: missing a domain name (field 2 of 2)");
    expect_error(HEAD "www IN BOGUS 1\n", 4, "\"BOGUS\" is not a record type");
    expect_error(HEAD "abs.fed.example.test. IN A 192.0.2.1 192.0.2.2\n", 4,
                 "\"192.0.2.2\": unexpected extra data (A record of abs.fed.example.test.");
    /* multi-line record: the line of the bad field, not of the record's start */
    expect_error("$TTL 300\n"
                 "@ IN SOA ns1 h (\n"
                 "    1 7200\n"
                 "    9x9 1209600 60 )\n"
                 "@ IN NS ns1\n",
                 4,
                 "\"9x9\" is not a time in seconds (or like 1h30m) (SOA record of "
                 "fed.example.test.)");
    /* a quoted ")" or ";" is text, not syntax */
    struct dns_zone *z = load_text(HEAD "t IN TXT \"a ) b ; c\"\n");
    dns_zone_unref(z);
}

static void test_relative_origin_and_case(void **state)
{
    struct dns_zone *z;
    const struct dns_node *node;

    (void)state;
    /* $ORIGIN changes, absolute names in upper case, multi-line SOA */
    z = load_text("$ORIGIN FED.Example.Test.\n"
                  "@ 600 IN SOA ns1 h (\n"
                  "   1 2 3 4\n"
                  "   900 )\n"
                  "@ IN NS ns1\n"
                  "$ORIGIN Svc.fed.example.test.\n"
                  "Web IN A 192.0.2.80\n");
    assert_int_equal(dns_zone_negative_ttl(z), 600);
    assert_int_equal(find(z, "web.svc." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(find(z, "svc." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_int_equal(node->rrset_count, 0);
    dns_zone_unref(z);
}

static void test_repo_zone(void **state)
{
    const char *path = FEDGSLB_SOURCE_DIR "/conf/fed.example.test.zone";
    struct dns_zone *z = NULL;
    char err[512];

    (void)state;
    if (access(path, R_OK) != 0)
        skip();
    int rc = dns_zone_load(path, ORIGIN, &z, err, sizeof(err));
    if (rc != CM_OK)
        fail_msg("%s", err);
    const struct dns_node *node;
    assert_non_null(dns_zone_soa(z));
    assert_non_null(dns_node_rrset(dns_zone_apex(z), DNS_TYPE_NS));
    assert_true(dns_zone_name_count(z) >= 1);
    assert_int_equal(find(z, "ns1." ORIGIN, &node), DNS_ZONE_FOUND);
    assert_non_null(dns_node_rrset(node, DNS_TYPE_A));
    /* a cut, if the example has one, answers with a referral below it */
    if (find(z, "lab." ORIGIN, &node) == DNS_ZONE_DELEGATED)
        assert_int_equal(find(z, "host.lab." ORIGIN, &node), DNS_ZONE_DELEGATED);
    dns_zone_unref(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_find),     cmocka_unit_test(test_delegation_and_wildcard),
        cmocka_unit_test(test_refcount),          cmocka_unit_test(test_bad_zones),
        cmocka_unit_test(test_actionable_errors), cmocka_unit_test(test_relative_origin_and_case),
        cmocka_unit_test(test_repo_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
