/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_lpm.c -- longest-prefix match: one binary trie per address family.
 *
 * Nodes live in one growable array and refer to each other by index, so the
 * table is a single allocation to free and to walk. Index 0 is the IPv4 root
 * and index 1 the IPv6 root; since a root is never anybody's child, a child
 * index of 0 means "no child". The node at depth d stands for the first d bits
 * of an address. Nodes are only ever created on the path to an inserted prefix
 * and never removed, so every node without children carries a value.
 *
 * A binary trie walks at most 128 nodes per lookup; client_networks tables are
 * small (tens to thousands of prefixes), so path compression would buy little
 * and cost clarity. Lookups read the array only: no allocation, no writes, and
 * any number of concurrent readers once the table is built.
 */
#include "common/cm_lpm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "common/cm_err.h"

#define LPM_ROOT_V4   0u
#define LPM_ROOT_V6   1u
#define LPM_NONE      0u         /* child index meaning "no child" */
#define LPM_MAX_NODES (1u << 30) /* hard cap: 16 GiB of nodes is never sane */

struct lpm_node {
    uint32_t child[2]; /* indexes into cm_lpm.nodes, LPM_NONE when absent */
    uint32_t value;    /* valid when has_value */
    bool has_value;    /* a prefix ends exactly here */
    uint8_t max_len;   /* longest prefix inserted at or below this node */
};

struct cm_lpm {
    struct lpm_node *nodes; /* owned array; [0] IPv4 root, [1] IPv6 root */
    uint32_t count;         /* nodes in use */
    uint32_t cap;           /* nodes allocated */
};

struct cm_lpm *cm_lpm_new(void)
{
    struct cm_lpm *lpm = calloc(1, sizeof(*lpm));

    if (lpm == NULL)
        return NULL;
    lpm->cap = 16;
    lpm->nodes = calloc(lpm->cap, sizeof(*lpm->nodes));
    if (lpm->nodes == NULL) {
        free(lpm);
        return NULL;
    }
    lpm->count = 2; /* the two roots, zeroed: no children, no value */
    return lpm;
}

void cm_lpm_free(struct cm_lpm *lpm)
{
    if (lpm == NULL)
        return;
    free(lpm->nodes);
    free(lpm);
}

/* Family -> (root index, address bits); false for anything else. */
static bool family_info(int family, uint32_t *root, unsigned *bits)
{
    if (family == AF_INET) {
        *root = LPM_ROOT_V4;
        *bits = 32;
        return true;
    }
    if (family == AF_INET6) {
        *root = LPM_ROOT_V6;
        *bits = 128;
        return true;
    }
    return false;
}

static unsigned addr_bit(const uint8_t *addr, unsigned i)
{
    return (addr[i / 8] >> (7 - i % 8)) & 1u;
}

/* Appends a zeroed node; CM_ENOMEM / CM_ETOOBIG. */
static int node_add(struct cm_lpm *lpm, uint32_t *out)
{
    if (lpm->count == lpm->cap) {
        struct lpm_node *n;
        uint32_t ncap;

        if (lpm->cap >= LPM_MAX_NODES)
            return CM_ETOOBIG;
        ncap = lpm->cap * 2;
        n = realloc(lpm->nodes, (size_t)ncap * sizeof(*n));
        if (n == NULL)
            return CM_ENOMEM;
        lpm->nodes = n;
        lpm->cap = ncap;
    }
    memset(&lpm->nodes[lpm->count], 0, sizeof(lpm->nodes[0]));
    *out = lpm->count++;
    return CM_OK;
}

int cm_lpm_insert(struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned prefix_len,
                  uint32_t value)
{
    uint32_t node, next;
    unsigned bits;

    if (lpm == NULL || addr == NULL || !family_info(family, &node, &bits) || prefix_len > bits)
        return CM_EINVAL;
    for (unsigned d = 0; d < prefix_len; d++) {
        unsigned b = addr_bit(addr, d);

        if (lpm->nodes[node].max_len < prefix_len)
            lpm->nodes[node].max_len = (uint8_t)prefix_len;
        next = lpm->nodes[node].child[b];
        if (next == LPM_NONE) {
            int rc = node_add(lpm, &next);
            /* A failed add leaves a chain of valueless nodes behind; they
             * only make later scope_len values more conservative. */
            if (rc != CM_OK)
                return rc;
            lpm->nodes[node].child[b] = next; /* after node_add: it may move nodes */
        }
        node = next;
    }
    lpm->nodes[node].value = value;
    lpm->nodes[node].has_value = true;
    if (lpm->nodes[node].max_len < prefix_len)
        lpm->nodes[node].max_len = (uint8_t)prefix_len;
    return CM_OK;
}

/*
 * The walk follows the address bit by bit and remembers the deepest node with
 * a value. It stops at depth d for one of two reasons:
 *
 *  - the child for bit d is missing (d < addr_bits). If the node has no
 *    children at all, nothing deeper can match any address sharing these d
 *    bits: scope_len = d. If the other child exists, bit d decided that we do
 *    not go there: scope_len = d + 1 (<= addr_bits).
 *  - d == addr_bits: the address has no more bits. Without children below,
 *    scope_len = addr_bits: every address sharing them gets this result.
 *    With children below, the source prefix covers more-specific prefixes
 *    that this address might or might not fall in: the result is the
 *    covering match (the longest prefix containing the whole source
 *    prefix), which is right only for the part no deeper prefix claims, and
 *    scope_len is the length of the longest prefix below (node max_len),
 *    > addr_bits: the number of bits a lookup needs to decide inside this
 *    source prefix (RFC 7871 §7.2.1: "not specific enough, ask with more").
 *
 * When scope_len <= addr_bits, every address that shares the first scope_len
 * bits walks the same path to the same stop, hence gets the same result
 * (found or not).
 */
bool cm_lpm_lookup(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned addr_bits,
                   struct cm_lpm_result *res)
{
    uint32_t node;
    unsigned bits, d;

    memset(res, 0, sizeof(*res));
    if (lpm == NULL || addr == NULL || !family_info(family, &node, &bits))
        return false;
    if (addr_bits > bits)
        addr_bits = bits;
    for (d = 0;; d++) {
        const struct lpm_node *n = &lpm->nodes[node];
        unsigned b;

        if (n->has_value) {
            res->found = true;
            res->value = n->value;
            res->matched_len = (uint8_t)d;
        }
        if (d == addr_bits) {
            bool below = n->child[0] != LPM_NONE || n->child[1] != LPM_NONE;
            res->scope_len = (uint8_t)(below ? n->max_len : addr_bits);
            break;
        }
        b = addr_bit(addr, d);
        if (n->child[b] == LPM_NONE) {
            res->scope_len = (uint8_t)(n->child[b ^ 1u] != LPM_NONE ? d + 1 : d);
            break;
        }
        node = n->child[b];
    }
    return res->found;
}

size_t cm_lpm_memory(const struct cm_lpm *lpm)
{
    return lpm != NULL ? sizeof(*lpm) + (size_t)lpm->cap * sizeof(lpm->nodes[0]) : 0;
}

/*
 * Once built, a large table moves into memory aligned to 2 MiB and marked for
 * transparent huge pages: a lookup walks up to 128 dependent nodes scattered
 * over tens of MiB, and with 4 KiB pages nearly every step below the cached
 * top levels is a TLB miss as well as a cache miss. Without huge pages (the
 * kernel says no), the table is simply trimmed to its size.
 */
#define LPM_HUGE (2u << 20)

void cm_lpm_compact(struct cm_lpm *lpm)
{
    struct lpm_node *n;
    size_t bytes;

    if (lpm == NULL)
        return;
    bytes = (size_t)lpm->count * sizeof(*n);
    if (bytes >= LPM_HUGE) {
        void *p = NULL;
        size_t alloc = (bytes + LPM_HUGE - 1) / LPM_HUGE * LPM_HUGE;

        if (posix_memalign(&p, LPM_HUGE, alloc) == 0) {
            (void)madvise(p, alloc, MADV_HUGEPAGE); /* advice only */
            memcpy(p, lpm->nodes, bytes);
            free(lpm->nodes);
            lpm->nodes = p;
            lpm->cap = lpm->count;
            return;
        }
    }
    if (lpm->count == lpm->cap)
        return;
    n = realloc(lpm->nodes, bytes);
    if (n == NULL)
        return; /* the larger array stays valid */
    lpm->nodes = n;
    lpm->cap = lpm->count;
}
