/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_lpm.c -- the compiled forms of the longest-prefix table (IPv4
 * direct table with 16- or 32-bit entries and few or no blocks, stride
 * tables, a fold) against the trie walk, on tables and lookups drawn from
 * arbitrary bytes: every cm_lpm_lookup() gives the trie's answer and scope,
 * its value folded.
 *
 * Input: a flags byte (bits 0, 6 and 7: direct table, bit 1: 16-bit entries
 * allowed, bit 2: fold, bits 3..5: blocks allowed), a prefix count, that many 6-byte
 * prefixes (family and value, length, 4 address bytes), then 6-byte lookups
 * (family, source length, 4 address bytes); every prefix is also looked up.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cm_lpm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t fold_mod5(const void *ctx, uint32_t value)
{
    (void)ctx;
    return value % 5;
}

/* A clustered address from 4 bytes, so that nesting and shared /24s are common. */
static int addr_from(const uint8_t *in, uint8_t kind, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if ((kind & 1) == 0) {
        addr[0] = (uint8_t)(10 + (in[0] & 3));
        addr[1] = (uint8_t)(in[0] >> 2 & 3);
        addr[2] = in[1];
        addr[3] = in[2];
        return AF_INET;
    }
    addr[0] = 0x20;
    addr[1] = 0x01;
    addr[2] = in[0] & 3;
    memcpy(addr + 3, in + 1, 2);
    addr[5 + (in[2] & 7)] = in[2];
    return AF_INET6;
}

static void check(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned bits,
                  bool fold)
{
    struct cm_lpm_result c, t;
    bool fc = cm_lpm_lookup(lpm, family, addr, bits, &c);
    bool ft = cm_lpm_lookup_trie(lpm, family, addr, bits, &t);

    if (fc != ft || c.found != t.found || c.scope_len != t.scope_len ||
        (t.found && (c.matched_len != t.matched_len ||
                     c.value != (fold ? fold_mod5(NULL, t.value) : t.value))))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cm_lpm *lpm;
    uint8_t flags, addr[16];
    size_t count, i;
    bool fold;

    if (size < 2)
        return 0;
    flags = data[0];
    count = data[1];
    fold = (flags & 4) != 0;
    data += 2;
    size -= 2;
    if (count > size / 6)
        count = size / 6;
    lpm = cm_lpm_new();
    if (lpm == NULL)
        return 0;
    for (i = 0; i < count; i++) {
        const uint8_t *p = data + 6 * i;
        int family = addr_from(p + 3, p[0], addr);
        unsigned max = family == AF_INET ? 32 : 128;

        (void)cm_lpm_insert(lpm, family, addr, p[1] % (max + 1), p[0] >> 1);
    }
    if (fold)
        cm_lpm_set_fold(lpm, fold_mod5, NULL);
    /* a direct table is 2^24 entries to fill (slow under ASan): one input in 8 */
    if ((flags & 0xc1) == 0xc1)
        cm_lpm_compact_with(lpm, 0, (flags >> 3) & 7, (flags & 2) != 0);
    else
        cm_lpm_compact(lpm);
    for (i = 0; i < size / 6; i++) {
        const uint8_t *p = data + 6 * i;
        int family = addr_from(p + 3, p[0], addr);
        unsigned max = family == AF_INET ? 32 : 128;

        addr[family == AF_INET ? 3 : 15] ^= p[2]; /* host bits */
        check(lpm, family, addr, p[1] % (max + 2), fold);
        if (family == AF_INET)
            check(lpm, family, addr, 24 + p[2] % 9, fold);
    }
    cm_lpm_free(lpm);
    return 0;
}
