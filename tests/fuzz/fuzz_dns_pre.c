/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns_pre.c -- the precompiled path against the writer's, on arbitrary
 * bytes: a view with the federated table of tests/dnsd_fed_fixture.h is
 * asked every input twice, with its precompiled parts and without, over UDP
 * (two sizes, several client addresses) and TCP; the two responses and their
 * query info must be the same, byte for byte.
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
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_zone.h"
#include "tests/dnsd_fed_view.h"

#define FUZZ_NOW 1559731985u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    struct dns_view *view;
    uint8_t fast[65535], slow[65535];
    bool ready;
} fz;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char path[] = "/tmp/fuzz_dns_pre.XXXXXX";

    (void)argc;
    (void)argv;
    fz.view = fed_fixture_view(path);
    fz.ready = true;
    return 0;
}

static void same(const struct dns_query_info *a, const struct dns_query_info *b)
{
    if (a->rcode != b->rcode || a->tc != b->tc || a->ecs != b->ecs ||
        a->federated != b->federated || a->service != b->service || a->member != b->member ||
        a->region != b->region || a->fail_open != b->fail_open || a->rrl_class != b->rrl_class ||
        a->rrl_name_hash != b->rrl_name_hash || a->cookie_valid != b->cookie_valid)
        abort();
}

static void both(const uint8_t *data, size_t size, size_t cap, const struct sockaddr *client,
                 bool tcp)
{
    struct dns_query_info fi, si;
    struct dns_pre *pre = fz.view->pre;

    size_t fl = dns_query_process(fz.view, data, size, fz.fast, cap, client, tcp, &fi, FUZZ_NOW);
    fz.view->pre = NULL;
    size_t sl = dns_query_process(fz.view, data, size, fz.slow, cap, client, tcp, &si, FUZZ_NOW);
    fz.view->pre = pre;
    if (fl != sl || memcmp(fz.fast, fz.slow, fl) != 0)
        abort();
    same(&fi, &si);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_in client;

    if (!fz.ready)
        return 0;
    memset(&client, 0, sizeof(client));
    client.sin_family = AF_INET;
    for (unsigned c = 0; c < 3; c++) {
        client.sin_addr.s_addr = htonl(0x0a010203u + (c << 16)); /* 10.1/10.2/10.3 */
        both(data, size, 512, (const struct sockaddr *)&client, false);
        both(data, size, 4096, (const struct sockaddr *)&client, false);
    }
    both(data, size, sizeof(fz.fast), NULL, true);
    return 0;
}
