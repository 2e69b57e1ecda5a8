/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns_query.c -- dns_query_process on arbitrary bytes, over UDP and TCP,
 * against a small static zone (written to /tmp once at start) and a
 * client_networks table with two prefixes, DNS cookies (require on for the
 * first UDP pass) and an NSID; no federated table. Every
 * response must respect its size limit, echo the ID, and be a DNS message
 * that ldns can decode.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_zone.h"

#define FUZZ_NOW 1559731985u /* a fixed clock: runs are reproducible */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ZONE[] = "$TTL 300\n"
                           "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
                           "@ IN NS ns1\n"
                           "@ IN NS ns2.other.test.\n"
                           "@ IN MX 10 mail\n"
                           "@ IN TXT \"v=spf1 -all\"\n"
                           "ns1 IN A 192.0.2.1\n"
                           "ns1 IN AAAA 2001:db8::1\n"
                           "mail IN A 192.0.2.25\n"
                           "www IN A 192.0.2.80\n"
                           "www IN A 192.0.2.81\n"
                           "alias IN CNAME www\n"
                           "loop1 IN CNAME loop2\n"
                           "loop2 IN CNAME loop1\n"
                           "out IN CNAME www.example.org.\n"
                           "a.b.c IN TXT \"deep\"\n"
                           "sub IN NS ns.sub\n"
                           "ns.sub IN A 192.0.2.53\n"
                           "*.wild IN A 192.0.2.99\n";

/* Built once by LLVMFuzzerInitialize; read-only afterwards. */
static struct {
    struct cm_conf conf;
    struct dns_view view;
    uint8_t resp[65535]; /* scratch, rewritten by every run */
    bool ready;
} fz;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/fuzz_dns_query.XXXXXX";
    char err[512];
    static const uint8_t net4[4] = {10, 1, 0, 0};
    static const uint8_t net6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};

    (void)argc;
    (void)argv;
    int fd = mkstemp(path);
    if (fd == -1)
        abort();
    if (write(fd, ZONE, sizeof(ZONE) - 1) != (ssize_t)(sizeof(ZONE) - 1))
        abort();
    close(fd);
    if (dns_zone_load(path, "fed.example.test", &fz.view.zone, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(path);
    fz.conf.region_count = 3;
    fz.conf.dnsd.ecs = true;
    fz.conf.dnsd.max_udp_size = 1232;
    /* cookies (RFC 9018 appendix A secret) and the longest NSID: every option
     * path and the largest OPT the writer makes */
    fz.conf.dnsd.cookies.enabled = true;
    memcpy(fz.conf.dnsd.cookies.secret,
           "\xe5\xe9\x73\xe5\xa6\xb2\xa4\x3f\x48\xe7\xdc\x84\x9e\x37\xbf\xcf", 16);
    memset(fz.conf.dnsd.cookies.previous, 0x42, 16);
    fz.conf.dnsd.cookies.has_previous = true;
    memset(fz.conf.dnsd.nsid_data, 'n', sizeof(fz.conf.dnsd.nsid_data));
    fz.conf.dnsd.nsid_len = sizeof(fz.conf.dnsd.nsid_data);
    fz.view.conf = &fz.conf;
    dns_view_read_conf(&fz.view);
    fz.view.lpm = cm_lpm_new();
    if (fz.view.lpm == NULL || cm_lpm_insert(fz.view.lpm, AF_INET, net4, 16, 1) != CM_OK ||
        cm_lpm_insert(fz.view.lpm, AF_INET6, net6, 48, 2) != CM_OK)
        abort();
    fz.ready = true;
    return 0;
}

static void check(const uint8_t *req, size_t req_len, const uint8_t *resp, size_t len, size_t limit)
{
    ldns_pkt *pkt = NULL;

    if (len == 0)
        return;
    if (len < 12 || len > limit || resp[0] != req[0] || resp[1] != req[1] ||
        (resp[2] & 0x80) == 0 || (resp[3] & 0x80) != 0 /* RA */)
        abort();
    (void)req_len;
    if (ldns_wire2pkt(&pkt, resp, len) != LDNS_STATUS_OK)
        abort();
    ldns_pkt_free(pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *resp = fz.resp;
    struct sockaddr_in client;
    struct dns_query_info info;

    if (!fz.ready)
        return 0;
    memset(&client, 0, sizeof(client));
    client.sin_family = AF_INET;
    client.sin_addr.s_addr = htonl(0x0a010203);
    fz.conf.dnsd.cookies.require = true; /* BADCOOKIE path once, answers after */
    size_t n = dns_query_process(&fz.view, data, size, resp, 512, (struct sockaddr *)&client, false,
                                 &info, FUZZ_NOW);
    check(data, size, resp, n, 512);
    fz.conf.dnsd.cookies.require = false;
    n = dns_query_process(&fz.view, data, size, resp, 4096, (struct sockaddr *)&client, false,
                          &info, FUZZ_NOW);
    check(data, size, resp, n, 1232);
    n = dns_query_process(&fz.view, data, size, resp, sizeof(fz.resp), NULL, true, &info, FUZZ_NOW);
    check(data, size, resp, n, sizeof(fz.resp));
    return 0;
}
