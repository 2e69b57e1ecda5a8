/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dnsd_fed_fixture.h -- a federation for tests of the precompiled path
 * (tests/unit/dnsd/test_dns_pre.c, tests/fuzz/fuzz_dns_pre.c): a static zone,
 * a configuration and a state document with shared members, a hostname
 * member, fail-open, fail-closed and sorry services, an IPv6-only member, a
 * service with more addresses than 512 bytes hold, and a region named after
 * the SOA's MNAME. Test data only.
 */
#ifndef TESTS_DNSD_FED_FIXTURE_H
#define TESTS_DNSD_FED_FIXTURE_H

#include <stdio.h>
#include <string.h>

#define FED_FIXTURE_ORIGIN "fed.example.test"

/* SOA MNAME ns1, RNAME hostmaster: a region named "ns1" makes regional names
 * whose label above the apex is MNAME's, where the writer compresses MNAME
 * into the question (the NODATA part must not be used for them). */
static const char FED_FIXTURE_ZONE[] = "$TTL 300\n"
                                       "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
                                       "@ IN NS ns1\n"
                                       "@ IN MX 10 mail\n"
                                       "ns1 IN A 192.0.2.1\n"
                                       "mail IN A 192.0.2.25\n"
                                       "www IN A 192.0.2.80\n"
                                       "alias IN CNAME www\n"
                                       "sorry IN A 192.0.2.99\n"
                                       "sub IN NS ns.sub\n"
                                       "ns.sub IN A 192.0.2.53\n";

static const char FED_FIXTURE_CONF[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\", \"us-east-1b\"]},"
    "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]},"
    "              \"ns1\": {\"zones\": [\"ns1a\"]}},"
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"zone\": \"us-east-1a\"},"
    "               \"usb\": {\"region\": \"us-east-1\", \"zone\": \"us-east-1b\"},"
    "               \"eur\": {\"region\": \"eu-west-1\", \"zone\": \"eu-west-1a\"},"
    "               \"nsm\": {\"region\": \"ns1\", \"zone\": \"ns1a\"}},"
    " \"services\": {"
    "   \"default/web\": {\"port\": 80, \"policy\": {\"latency_slack_ms\": 5},"
    "                   \"aliases\": [\"web.fed.example.test\", "
    "\"web.hostmaster.fed.example.test\"]},"
    "   \"default/host\": {\"port\": 80},"
    "   \"default/open\": {\"port\": 80},"
    "   \"default/closed\": {\"port\": 80, \"policy\": {\"all_down\": \"fail-closed\"}},"
    "   \"default/sorry\": {\"port\": 80, \"policy\": {\"all_down\": "
    "\"sorry:sorry.fed.example.test\"}},"
    "   \"default/big\": {\"port\": 80, \"policy\": {\"max_answers\": 24}}},"
    " \"client_networks\": [{\"cidr\": \"10.1.0.0/16\", \"region\": \"us-east-1\"},"
    "                       {\"cidr\": \"10.2.0.0/16\", \"region\": \"eu-west-1\"},"
    "                       {\"cidr\": \"10.3.0.0/16\", \"region\": \"ns1\"},"
    "                       {\"cidr\": \"2001:db8:2::/48\", \"region\": \"eu-west-1\"}],"
    " \"latency_ms\": {\"us-east-1\": {\"eu-west-1\": 70, \"ns1\": 100},"
    "                  \"eu-west-1\": {\"ns1\": 120}},"
    " \"dnsd\": {\"listen\": [\"127.0.0.1:5300\"], \"region\": \"us-east-1\","
    "          \"zone_file\": \"unused.zone\"}}";

/* web: usa and usb tie in us-east-1 (slots), eur has IPv6 only, nsm a
 * hostname (a CNAME variant); host: only nsm; open: nothing healthy (fail
 * open); closed and sorry: nothing healthy; big: 30 IPv6 addresses (more
 * than 512 bytes: TC for small clients). */
static const char FED_FIXTURE_STATE[] =
    "{\"version\": 1, \"vantage\": \"us-east-1\", \"generation\": 1,"
    " \"generated_at\": \"2026-11-21T07:00:00Z\","
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"api\": \"ok\"},"
    "               \"usb\": {\"region\": \"us-east-1\", \"api\": \"ok\"},"
    "               \"eur\": {\"region\": \"eu-west-1\", \"api\": \"ok\"},"
    "               \"nsm\": {\"region\": \"ns1\", \"api\": \"ok\"}},"
    " \"services\": {"
    "  \"default/web\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.10\", \"2001:db8::10\"], \"ready_endpoints\": 3,"
    "             \"healthy\": true},"
    "   \"usb\": {\"addresses\": [\"192.0.2.11\"], \"ready_endpoints\": 1, \"healthy\": true},"
    "   \"eur\": {\"addresses\": [\"2001:db8::20\"], \"ready_endpoints\": 2, \"healthy\": true},"
    "   \"nsm\": {\"addresses\": [], \"hostname\": \"lb.example.org\", \"ready_endpoints\": 2,"
    "             \"healthy\": true}}},"
    "  \"default/host\": {\"port\": 80, \"members\": {"
    "   \"nsm\": {\"addresses\": [], \"hostname\": \"LB.ns1.fed.example.test\","
    "             \"ready_endpoints\": 2, \"healthy\": true}}},"
    "  \"default/open\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.30\"], \"ready_endpoints\": 0, \"healthy\": false},"
    "   \"eur\": {\"addresses\": [\"192.0.2.31\", \"2001:db8::31\"], \"ready_endpoints\": 0,"
    "             \"healthy\": false}}},"
    "  \"default/closed\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.40\"], \"ready_endpoints\": 0, \"healthy\": false}}},"
    "  \"default/sorry\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.50\"], \"ready_endpoints\": 0, \"healthy\": false}}},"
    "  \"default/big\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [%s], \"ready_endpoints\": 1, \"healthy\": true}}}}}";

/* The state document with the big service's 30 addresses written in. */
static inline void fed_fixture_state(char *out, size_t cap)
{
    char addrs[1024];
    size_t n = 0;

    for (unsigned i = 0; i < 30; i++)
        n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s\"2001:db8:99::%x\"",
                              i > 0 ? ", " : "", i + 1);
    snprintf(out, cap, FED_FIXTURE_STATE, addrs);
}

#endif /* TESTS_DNSD_FED_FIXTURE_H */
