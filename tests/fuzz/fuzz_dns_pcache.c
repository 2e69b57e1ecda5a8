/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns_pcache.c -- the packet cache against the query path, on
 * arbitrary bytes: a view with the federated table of
 * tests/dnsd_fed_fixture.h answers every input without the cache, then
 * through it twice (a miss, then a hit under another ID), from clients of
 * both families and two listeners, in a small table and in a one-set table
 * where every key has the same tag (inputs collide with the previous ones).
 * The responses (but the ID) and the query info must be the same.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "dnsd/dns_pcache.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_zone.h"
#include "tests/dnsd_fed_view.h"

#define FUZZ_NOW 1559731985u
#define REQ_MAX  4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    struct dns_view *view;
    struct dns_pcache *pc, *tiny;
    uint8_t req[REQ_MAX], want[4096], got[4096];
    bool ready;
} fz;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/fuzz_dns_pcache.XXXXXX";

    (void)argc;
    (void)argv;
    fz.view = fed_fixture_view(path);
    static const uint8_t seed[DNS_PCACHE_SEED_LEN] = {7, 7, 7};
    fz.pc = dns_pcache_new(64, seed);
    fz.tiny = dns_pcache_new(DNS_PCACHE_WAYS, seed);
    if (fz.pc == NULL || fz.tiny == NULL)
        abort();
    dns_pcache_collide(fz.tiny); /* every lookup down to the full key comparison */
    fz.ready = true;
    return 0;
}

static void same(const struct dns_query_info *a, const struct dns_query_info *b)
{
    if (!fed_info_same(a, b))
        abort();
}

static void check(struct dns_pcache *pc, size_t size, const struct sockaddr *client,
                  unsigned listener)
{
    struct dns_query_info want, got;

    for (int round = 0; round < 2; round++) {
        if (round == 1 && size >= 2) { /* another ID */
            fz.req[0] ^= 0xa5;
            fz.req[1] ^= 0x3c;
        }
        size_t wl = dns_query_process(fz.view, fz.req, size, fz.want, sizeof(fz.want), client,
                                      false, &want, FUZZ_NOW);
        size_t gl = dns_pcache_process(pc, fz.view, NULL, listener, fz.req, size, fz.got,
                                       sizeof(fz.got), client, &got, FUZZ_NOW);
        if (gl != wl || memcmp(fz.got, fz.want, wl) != 0)
            abort();
        same(&got, &want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in c4;
    struct sockaddr_in6 c6;

    if (!fz.ready || size > REQ_MAX)
        return 0;
    memcpy(fz.req, data, size);
    memset(&c4, 0, sizeof(c4));
    memset(&c6, 0, sizeof(c6));
    c4.sin_family = AF_INET;
    c6.sin6_family = AF_INET6;
    c6.sin6_addr.s6_addr[0] = 0x20;
    c6.sin6_addr.s6_addr[1] = 0x01;
    c6.sin6_addr.s6_addr[2] = 0x0d;
    c6.sin6_addr.s6_addr[3] = 0xb8;
    c6.sin6_addr.s6_addr[5] = 2;
    for (unsigned c = 0; c < 3; c++) {
        c4.sin_addr.s_addr = htonl(0x0a010203u + (c << 16) + (c << 8)); /* 10.1/10.2/10.3 */
        check(fz.pc, size, (const struct sockaddr *)&c4, c % 2);
        check(fz.tiny, size, (const struct sockaddr *)&c4, c % 2);
    }
    c6.sin6_addr.s6_addr[15] = size > 2 ? data[2] : 0;
    check(fz.pc, size, (const struct sockaddr *)&c6, 0);
    check(fz.tiny, size, (const struct sockaddr *)&c6, 1);
    return 0;
}
