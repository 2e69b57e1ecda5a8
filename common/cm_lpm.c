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
 *
 * A GeoIP database makes the IPv4 trie millions of nodes deep in cold memory,
 * where each level below the cached top is a cache miss. cm_lpm_compact()
 * then compiles it into a direct table (DIR-24-8, as DPDK's rte_lpm):
 *
 *   tbl24[top 24 bits] --result r--> results[r] (found, value, matched_len, scope_len)
 *          |
 *          +--block b--> tbl8[b * 256 + last byte] (a /32 source) --r--> results[r]
 *          |             heads[b]                  (a /24 source) --r--> results[r]
 *          +--TRIE-----> the trie (more blocks than allowed)
 *
 * tbl24 has 2^24 entries of 16 bits (32 MiB) when every entry fits (result
 * indexes below 2^15, block numbers below 2^15 - 1: a country database, or
 * one whose values fold into a few classes, cm_lpm_set_fold), else of 32
 * bits (64 MiB; the build tries 16 bits first, then walks again): a lookup
 * reads one entry at random in it, so half the bytes is half the cache
 * lines a client population keeps warm. The results array is small and
 * shared by all entries (its lines stay cached).
 *
 * Every entry is precomputed from the trie walk itself, so for 24 to 32
 * address bits it holds exactly what the walk returns, scope included. A
 * /24 with no longer prefix inside gives the same answer for every source
 * of 24 bits or more (the walk stops at depth <= 24 either way); a /24 with
 * longer prefixes (a block) has one entry per /32 and one for the /24
 * source; /25../31 sources inside a block ask the trie.
 *
 * Every table that is not too large also gets, per family, a stride table
 * (a multibit trie of 8-bit strides, compiled from the walk the same way):
 * a node holds 256 entries, one per value of the next address byte, each a
 * result or the next node, and a head, the result for a source that ends at
 * the node. A source of a whole number of bytes (an ECS /24 or /56, a /32
 * or /128 address) is then answered in at most 4 (IPv4) or 16 (IPv6) reads
 * instead of a walk of as many nodes as bits; other lengths walk the trie.
 *
 *   stride: node[0] --byte 0--> result
 *                   \--------> node[k] --byte 1--> ... (head[k]: a /8 source)
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

/*
 * A compiled table (direct or stride) stores results by index into an array
 * of the distinct results it holds: 8 bytes each, and far fewer of them than
 * entries (one per value and prefix shape).
 */
struct lpm_result_packed {
    uint32_t value;
    uint8_t found;
    uint8_t matched_len;
    uint8_t scope_len;
};

/*
 * A direct-table entry is a result index, or with DIR_TAG (tbl24 only) a
 * block number or DIR_TRIE. The first level is 16 bits wide (tbl16) when
 * every entry fits (result indexes 0..0x7fff, block numbers 0..0x7ffe),
 * which halves the table a lookup touches at random (32 MiB), else 32 bits
 * wide (tbl32). A 16-bit entry with DIR16_TAG holds the block
 * number in its low 15 bits, all ones standing for DIR_TRIE.
 */
#define DIR_TAG    0x80000000u
#define DIR_TRIE   0x7fffffffu /* with DIR_TAG: ask the trie */
#define DIR16_TAG  0x8000u
#define DIR16_TRIE 0x7fffu
#define DIR_TBL24  (1u << 24)

struct lpm_direct {
    uint16_t *tbl16;                   /* owned, DIR_TBL24 entries; NULL when tbl32 is used */
    uint32_t *tbl32;                   /* owned, DIR_TBL24 entries; NULL when tbl16 is used */
    uint32_t *tbl8;                    /* owned, 256 result indexes per block */
    uint32_t *heads;                   /* owned, one per block: the answer for a /24 source */
    struct lpm_result_packed *results; /* owned, nresults */
    uint32_t blocks;                   /* blocks in tbl8 */
    uint32_t nresults;                 /* distinct results */
    size_t bytes;                      /* all of the above */
};

/*
 * A stride table for one family. An entry with STRIDE_NODE set is the index
 * of the next node; else it is a result, an index into results. A node k
 * has entries ent[k * 256 ..] and head[k].
 */
#define STRIDE_NODE 0x80000000u

struct lpm_stride {
    uint32_t *ent;  /* owned, nodes x 256 */
    uint32_t *head; /* owned, per node */
    uint32_t nodes, cap;
    struct lpm_result_packed *results; /* owned, nresults */
    uint32_t nresults;
};

struct cm_lpm {
    struct lpm_node *nodes;       /* owned array; [0] IPv4 root, [1] IPv6 root */
    uint32_t count;               /* nodes in use */
    uint32_t cap;                 /* nodes allocated */
    uint32_t v4_prefixes;         /* IPv4 prefixes inserted (distinct) */
    struct lpm_direct *direct;    /* owned, NULL for a trie alone */
    struct lpm_stride *stride[2]; /* owned: IPv4, IPv6; NULL when not compiled */
    cm_lpm_fold_fn *fold;         /* NULL: lookups give the values inserted */
    const void *fold_ctx;         /* borrowed */
};

static void direct_free(struct lpm_direct *d);
static void stride_free(struct lpm_stride *st);

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
    direct_free(lpm->direct);
    stride_free(lpm->stride[0]);
    stride_free(lpm->stride[1]);
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

/* A node's value as the compiled forms store it (folded). */
static uint32_t node_value(const struct cm_lpm *lpm, const struct lpm_node *n)
{
    return lpm->fold != NULL ? lpm->fold(lpm->fold_ctx, n->value) : n->value;
}

/* Drops the compiled forms (they would give stale answers). */
static void compiled_free(struct cm_lpm *lpm)
{
    direct_free(lpm->direct);
    lpm->direct = NULL;
    stride_free(lpm->stride[0]);
    stride_free(lpm->stride[1]);
    lpm->stride[0] = lpm->stride[1] = NULL;
}

void cm_lpm_set_fold(struct cm_lpm *lpm, cm_lpm_fold_fn *fold, const void *ctx)
{
    compiled_free(lpm);
    lpm->fold = fold;
    lpm->fold_ctx = ctx;
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
    compiled_free(lpm); /* they would miss this prefix */
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
    if (!lpm->nodes[node].has_value && family == AF_INET)
        lpm->v4_prefixes++;
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
bool cm_lpm_lookup_trie(const struct cm_lpm *lpm, int family, const uint8_t *addr,
                        unsigned addr_bits, struct cm_lpm_result *res)
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

/* ---- the IPv4 direct table ----------------------------------------------- */

static bool result_get(const struct lpm_result_packed *r, struct cm_lpm_result *res)
{
    res->found = r->found != 0;
    res->value = r->value;
    res->matched_len = r->matched_len;
    res->scope_len = r->scope_len;
    return res->found;
}

/* A lookup of a source of @addr_bits (a multiple of 8) in a stride table. */
static bool stride_lookup(const struct lpm_stride *st, const uint8_t *addr, unsigned addr_bits,
                          struct cm_lpm_result *res)
{
    uint32_t node = 0, e;

    for (unsigned byte = 0;; byte++) {
        if (addr_bits == 8 * byte) {
            e = st->head[node];
            break;
        }
        e = st->ent[(size_t)node << 8 | addr[byte]];
        if ((e & STRIDE_NODE) == 0)
            break;
        node = e & ~STRIDE_NODE;
    }
    return result_get(&st->results[e], res);
}

static uint32_t addr_24(const uint8_t *addr)
{
    return (uint32_t)addr[0] << 16 | (uint32_t)addr[1] << 8 | addr[2];
}

/* The trie's answer as cm_lpm_lookup() gives it: its value folded. Kept out
 * of line (the rare path), so that the direct table's path saves no registers. */
__attribute__((noinline)) static bool trie_folded(const struct cm_lpm *lpm, int family,
                                                  const uint8_t *addr, unsigned addr_bits,
                                                  struct cm_lpm_result *res)
{
    if (!cm_lpm_lookup_trie(lpm, family, addr, addr_bits, res))
        return false;
    if (lpm->fold != NULL)
        res->value = lpm->fold(lpm->fold_ctx, res->value);
    return true;
}

bool cm_lpm_lookup(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned addr_bits,
                   struct cm_lpm_result *res)
{
    const struct lpm_direct *d;
    uint32_t e;

    if (lpm == NULL || addr == NULL)
        return cm_lpm_lookup_trie(lpm, family, addr, addr_bits, res);
    if (lpm->direct == NULL || family != AF_INET || addr_bits < 24) {
        unsigned max = family == AF_INET ? 32 : 128;
        const struct lpm_stride *st = family == AF_INET    ? lpm->stride[0]
                                      : family == AF_INET6 ? lpm->stride[1]
                                                           : NULL;
        if (addr_bits > max)
            addr_bits = max;
        if (st != NULL && addr_bits % 8 == 0)
            return stride_lookup(st, addr, addr_bits, res);
        return trie_folded(lpm, family, addr, addr_bits, res);
    }
    d = lpm->direct;
    if (d->tbl16 != NULL) {
        e = d->tbl16[addr_24(addr)];
        if ((e & DIR16_TAG) != 0)
            e = DIR_TAG | ((e & DIR16_TRIE) == DIR16_TRIE ? DIR_TRIE : e & DIR16_TRIE);
    } else {
        e = d->tbl32[addr_24(addr)];
    }
    if ((e & DIR_TAG) != 0) {
        uint32_t blk = e & ~DIR_TAG;

        if (blk == DIR_TRIE || (addr_bits > 24 && addr_bits < 32))
            return trie_folded(lpm, family, addr, addr_bits, res);
        e = addr_bits == 24 ? d->heads[blk] : d->tbl8[blk << 8 | addr[3]];
    }
    return result_get(&d->results[e], res);
}

void cm_lpm_prefetch(const struct cm_lpm *lpm, int family, const uint8_t *addr, unsigned addr_bits)
{
    const struct lpm_direct *d;

    if (lpm == NULL || lpm->direct == NULL || family != AF_INET || addr_bits < 24 || addr == NULL)
        return;
    d = lpm->direct;
    if (d->tbl16 != NULL)
        __builtin_prefetch(&d->tbl16[addr_24(addr)]);
    else
        __builtin_prefetch(&d->tbl32[addr_24(addr)]);
}

static void direct_free(struct lpm_direct *d)
{
    if (d == NULL)
        return;
    free(d->tbl16);
    free(d->tbl32);
    free(d->tbl8);
    free(d->heads);
    free(d->results);
    free(d);
}

/* ---- distinct results ------------------------------------------------------ */

#define RESULTS_MAX (1u << 30) /* indexes stay clear of DIR_TAG and STRIDE_NODE */

/* The distinct results of a table being compiled, each stored once. */
struct result_set {
    struct lpm_result_packed *r; /* owned, n used of cap */
    uint32_t n, cap;
    uint32_t *keys; /* owned, open addressing over r: index + 1, 0 = empty; 2 * cap slots */
    int rc;         /* CM_OK until the set could not grow */
};

static uint32_t result_hash(const struct lpm_result_packed *r)
{
    uint32_t h = r->value * 0x9E3779B1u;

    h ^= ((uint32_t)r->found << 16 | (uint32_t)r->matched_len << 8 | r->scope_len) * 0x85EBCA6Bu;
    return h ^ (h >> 15);
}

static bool rs_grow(struct result_set *s)
{
    uint32_t cap = s->cap != 0 ? s->cap * 2 : 64, mask = 2 * cap - 1;
    struct lpm_result_packed *r;
    uint32_t *keys;

    if (cap > RESULTS_MAX) {
        s->rc = CM_ETOOBIG;
        return false;
    }
    r = realloc(s->r, (size_t)cap * sizeof(*r));
    if (r != NULL)
        s->r = r;
    keys = r != NULL ? calloc((size_t)mask + 1, sizeof(*keys)) : NULL;
    if (keys == NULL) {
        s->rc = CM_ENOMEM;
        return false;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        uint32_t h = result_hash(&r[i]) & mask;
        while (keys[h] != 0)
            h = (h + 1) & mask;
        keys[h] = i + 1;
    }
    free(s->keys);
    s->keys = keys;
    s->cap = cap;
    return true;
}

/* The index of a result (found, value, matched_len, scope_len), interned; 0
 * once s->rc says the set could not grow (the table is then dropped). */
static uint32_t rs_index(struct result_set *s, bool found, uint32_t value, unsigned matched_len,
                         unsigned scope_len)
{
    struct lpm_result_packed r = {found ? value : 0, found, (uint8_t)(found ? matched_len : 0),
                                  (uint8_t)scope_len};
    uint32_t mask, h;

    if (s->rc != CM_OK || (s->n == s->cap && !rs_grow(s)))
        return 0;
    mask = 2 * s->cap - 1;
    for (h = result_hash(&r) & mask; s->keys[h] != 0; h = (h + 1) & mask) {
        const struct lpm_result_packed *o = &s->r[s->keys[h] - 1];
        if (o->value == r.value && o->found == r.found && o->matched_len == r.matched_len &&
            o->scope_len == r.scope_len)
            return s->keys[h] - 1;
    }
    s->r[s->n] = r;
    s->keys[h] = s->n + 1;
    return s->n++;
}

/* The results array, trimmed to size, for the compiled table; the set is left empty. */
static struct lpm_result_packed *rs_take(struct result_set *s, uint32_t *count)
{
    struct lpm_result_packed *r = s->n != 0 ? realloc(s->r, s->n * sizeof(*r)) : NULL;

    if (r == NULL) /* the larger array stays valid */
        r = s->r;
    *count = s->n;
    free(s->keys);
    *s = (struct result_set){.rc = s->rc};
    return r;
}

static void rs_fini(struct result_set *s)
{
    free(s->r);
    free(s->keys);
}

/* ---- building the direct table ------------------------------------------- */

/* What the walk has found so far on its way down. */
struct dir_best {
    bool found;
    uint32_t value;
    unsigned len;
};

struct dir_build {
    const struct cm_lpm *lpm;
    struct lpm_direct *d;
    struct result_set rs;
    uint32_t max_blocks;
    bool wide; /* an entry did not fit in tbl16: walk again into tbl32 */
};

static uint32_t dir_leaf(struct dir_build *b, struct dir_best best, unsigned scope_len)
{
    return rs_index(&b->rs, best.found, best.value, best.len, scope_len);
}

static void dir_fill(uint32_t *tbl, uint32_t from, uint32_t count, uint32_t e)
{
    for (uint32_t i = 0; i < count; i++)
        tbl[from + i] = e;
}

/* Sets @count first-level entries from @from to @e (a result index, or
 * DIR_TAG with a block number or DIR_TRIE), in whichever table is being
 * filled; one that does not fit in 16 bits makes the build wide. */
static void top_fill(struct dir_build *b, uint32_t from, uint32_t count, uint32_t e)
{
    struct lpm_direct *d = b->d;
    uint32_t blk = e & ~DIR_TAG;
    uint16_t e16;

    if (d->tbl32 != NULL) {
        dir_fill(d->tbl32, from, count, e);
        return;
    }
    if ((e & DIR_TAG) == 0 ? e >= DIR16_TAG : blk != DIR_TRIE && blk >= DIR16_TRIE) {
        b->wide = true;
        return;
    }
    e16 = (uint16_t)((e & DIR_TAG) == 0 ? e : DIR16_TAG | (blk == DIR_TRIE ? DIR16_TRIE : blk));
    for (uint32_t i = 0; i < count; i++)
        d->tbl16[from + i] = e16;
}

/*
 * One node of the walk below the /24 at depth @depth (24..32), @pfx its bits
 * after the first 24: fills the block's entries for /32 sources with what
 * cm_lpm_lookup_trie() returns (same stopping rules, addr_bits = 32).
 */
static void dir_block(struct dir_build *b, uint32_t *blk, uint32_t node, unsigned depth,
                      uint32_t pfx, struct dir_best best)
{
    const struct lpm_node *n = &b->lpm->nodes[node];

    if (n->has_value)
        best = (struct dir_best){true, node_value(b->lpm, n), depth};
    if (depth == 32) {
        blk[pfx] = dir_leaf(b, best, 32);
        return;
    }
    for (unsigned bit = 0; bit < 2; bit++) {
        uint32_t sub = pfx << 1 | bit;
        unsigned shift = 32 - depth - 1;

        if (n->child[bit] != LPM_NONE)
            dir_block(b, blk, n->child[bit], depth + 1, sub, best);
        else
            dir_fill(blk, sub << shift, 1u << shift,
                     dir_leaf(b, best, n->child[bit ^ 1u] != LPM_NONE ? depth + 1 : depth));
    }
}

/* The same down to depth 24, @pfx the first @depth bits: fills tbl16 or tbl32. */
static void dir_top(struct dir_build *b, uint32_t node, unsigned depth, uint32_t pfx,
                    struct dir_best best)
{
    const struct lpm_node *n = &b->lpm->nodes[node];
    struct lpm_direct *d = b->d;

    if (b->wide && d->tbl32 == NULL)
        return; /* this 16-bit walk is lost: the 32-bit one follows */
    if (n->has_value)
        best = (struct dir_best){true, node_value(b->lpm, n), depth};
    if (depth == 24) {
        if (n->child[0] == LPM_NONE && n->child[1] == LPM_NONE) {
            top_fill(b, pfx, 1, dir_leaf(b, best, 24));
        } else if (d->blocks < b->max_blocks) {
            d->heads[d->blocks] = dir_leaf(b, best, n->max_len);
            dir_block(b, d->tbl8 + ((size_t)d->blocks << 8), node, 24, 0, best);
            top_fill(b, pfx, 1, DIR_TAG | d->blocks++);
        } else {
            top_fill(b, pfx, 1, DIR_TAG | DIR_TRIE);
        }
        return;
    }
    for (unsigned bit = 0; bit < 2; bit++) {
        uint32_t sub = pfx << 1 | bit;
        unsigned shift = 24 - depth - 1;

        if (n->child[bit] != LPM_NONE)
            dir_top(b, n->child[bit], depth + 1, sub, best);
        else
            top_fill(b, sub << shift, 1u << shift,
                     dir_leaf(b, best, n->child[bit ^ 1u] != LPM_NONE ? depth + 1 : depth));
    }
}

/* /24 nodes with longer prefixes below (blocks needed). */
static uint32_t dir_count_blocks(const struct cm_lpm *lpm, uint32_t node, unsigned depth)
{
    const struct lpm_node *n = &lpm->nodes[node];
    uint32_t count = 0;

    if (depth == 24)
        return n->child[0] != LPM_NONE || n->child[1] != LPM_NONE;
    for (unsigned bit = 0; bit < 2; bit++)
        if (n->child[bit] != LPM_NONE)
            count += dir_count_blocks(lpm, n->child[bit], depth + 1);
    return count;
}

/*
 * Large arrays go to memory aligned to 2 MiB and marked for transparent huge
 * pages: a lookup touches one random entry of 32 or 64 MiB, and with 4 KiB
 * pages that is a TLB miss as well as a cache miss. Small ones are plain malloc.
 */
#define LPM_HUGE (2u << 20)

static void *huge_alloc(size_t bytes)
{
    void *p = NULL;

    if (bytes < LPM_HUGE)
        return malloc(bytes != 0 ? bytes : 1);
    bytes = (bytes + LPM_HUGE - 1) / LPM_HUGE * LPM_HUGE;
    if (posix_memalign(&p, LPM_HUGE, bytes) != 0)
        return NULL;
    (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only */
    return p;
}

static int direct_build(struct cm_lpm *lpm, size_t max_blocks, bool narrow)
{
    struct dir_build b = {.lpm = lpm};
    uint32_t blocks = dir_count_blocks(lpm, LPM_ROOT_V4, 0);
    struct lpm_direct *d = calloc(1, sizeof(*d));
    int rc = CM_ENOMEM;

    b.max_blocks = max_blocks < DIR_TRIE ? (uint32_t)max_blocks : DIR_TRIE;
    if (blocks > b.max_blocks)
        blocks = b.max_blocks;
    if (d == NULL)
        goto out;
    b.d = d;
    /* 16-bit entries first when allowed: most tables fit, and then the
     * 64 MiB of 32-bit ones are never touched */
    d->tbl16 = narrow ? huge_alloc((size_t)DIR_TBL24 * sizeof(uint16_t)) : NULL;
    d->tbl8 = huge_alloc((size_t)blocks * 256 * sizeof(uint32_t));
    d->heads = malloc((blocks != 0 ? blocks : 1) * sizeof(uint32_t));
    if (d->tbl8 == NULL || d->heads == NULL)
        goto out;
    if (d->tbl16 != NULL)
        dir_top(&b, LPM_ROOT_V4, 0, 0, (struct dir_best){false, 0, 0});
    if (d->tbl16 == NULL || b.wide) { /* again, 32-bit (the results set stays) */
        free(d->tbl16);
        d->tbl16 = NULL;
        d->blocks = 0;
        d->tbl32 = huge_alloc((size_t)DIR_TBL24 * sizeof(uint32_t));
        if (d->tbl32 == NULL)
            goto out;
        dir_top(&b, LPM_ROOT_V4, 0, 0, (struct dir_best){false, 0, 0});
    }
    rc = b.rs.rc;
    if (rc != CM_OK)
        goto out;
    d->results = rs_take(&b.rs, &d->nresults);
    d->bytes = sizeof(*d) + (size_t)DIR_TBL24 * (d->tbl16 != NULL ? 2 : 4) +
               (size_t)blocks * 257 * sizeof(uint32_t) +
               (size_t)d->nresults * sizeof(d->results[0]);
    lpm->direct = d;
    d = NULL; /* the table's now */
out:
    rs_fini(&b.rs);
    direct_free(d);
    return rc;
}

/* ---- the stride tables --------------------------------------------------- */

static void stride_free(struct lpm_stride *st)
{
    if (st == NULL)
        return;
    free(st->ent);
    free(st->head);
    free(st->results);
    free(st);
}

struct stride_build {
    const struct cm_lpm *lpm;
    struct lpm_stride *st;
    uint32_t max_nodes;
    struct result_set rs;
    int rc;
};

static uint32_t stride_result(struct stride_build *b, bool found, uint32_t value,
                              unsigned matched_len, unsigned scope_len)
{
    return rs_index(&b->rs, found, value, matched_len, scope_len);
}

static uint32_t stride_node(struct stride_build *b, uint32_t node, unsigned depth,
                            struct dir_best best);

/*
 * The entry for one byte value @byte below trie node @node (at @depth, the
 * best match so far @best): the walk of its 8 bits, with the stopping rules
 * of cm_lpm_lookup_trie() for a source longer than depth + 8, or the next
 * stride node when the walk goes on past them.
 */
static uint32_t stride_entry(struct stride_build *b, uint32_t node, unsigned depth, unsigned byte,
                             struct dir_best best)
{
    const struct lpm_node *nodes = b->lpm->nodes;

    for (unsigned k = 0; k < 8; k++) {
        const struct lpm_node *n = &nodes[node];
        unsigned bit = (byte >> (7 - k)) & 1u;

        if (n->child[bit] == LPM_NONE) {
            unsigned d = depth + k;
            return stride_result(b, best.found, best.value, best.len,
                                 n->child[bit ^ 1u] != LPM_NONE ? d + 1 : d);
        }
        node = n->child[bit];
        if (nodes[node].has_value)
            best = (struct dir_best){true, node_value(b->lpm, &nodes[node]), depth + k + 1};
    }
    if (nodes[node].child[0] == LPM_NONE && nodes[node].child[1] == LPM_NONE)
        return stride_result(b, best.found, best.value, best.len, depth + 8);
    return STRIDE_NODE | stride_node(b, node, depth + 8, best);
}

/* Compiles the stride node for trie node @node at @depth; its index. */
static uint32_t stride_node(struct stride_build *b, uint32_t node, unsigned depth,
                            struct dir_best best)
{
    struct lpm_stride *st = b->st;
    const struct lpm_node *n = &b->lpm->nodes[node];
    bool below = n->child[0] != LPM_NONE || n->child[1] != LPM_NONE;
    uint32_t idx;

    if (st->nodes == b->max_nodes) {
        b->rc = CM_ETOOBIG;
        return 0;
    }
    idx = st->nodes++;
    /* best already counts this node's own value (the caller's walk took it) */
    st->head[idx] = stride_result(b, best.found, best.value, best.len, below ? n->max_len : depth);
    for (unsigned byte = 0; byte < 256 && b->rc == CM_OK; byte++)
        st->ent[(size_t)idx << 8 | byte] = stride_entry(b, node, depth, byte, best);
    return idx;
}

/* Trie nodes at byte depths with children: an upper bound of the stride nodes. */
static uint32_t stride_count(const struct cm_lpm *lpm, uint32_t node, unsigned depth,
                             uint32_t limit)
{
    const struct lpm_node *n = &lpm->nodes[node];
    uint32_t count = 0;

    if (n->child[0] == LPM_NONE && n->child[1] == LPM_NONE)
        return 0;
    if (depth % 8 == 0)
        count = 1;
    for (unsigned bit = 0; bit < 2 && count <= limit; bit++)
        if (n->child[bit] != LPM_NONE)
            count += stride_count(lpm, n->child[bit], depth + 1, limit - count);
    return count;
}

/* Builds the stride table of one family, unless it needs more than
 * @max_nodes nodes; NULL then (or without memory), and the trie answers. */
static struct lpm_stride *stride_build(const struct cm_lpm *lpm, uint32_t root, uint32_t max_nodes)
{
    struct stride_build b = {.lpm = lpm, .max_nodes = max_nodes, .rc = CM_OK};
    const struct lpm_node *r = &lpm->nodes[root];
    uint32_t nodes = stride_count(lpm, root, 0, max_nodes) + 1;
    struct lpm_stride *st;

    if (nodes > max_nodes)
        return NULL;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->ent = malloc((size_t)nodes * 256 * sizeof(*st->ent));
    st->head = malloc((size_t)nodes * sizeof(*st->head));
    b.st = st;
    b.max_nodes = nodes;
    if (st->ent == NULL || st->head == NULL) {
        b.rc = CM_ENOMEM;
    } else {
        struct dir_best best = {r->has_value, r->has_value ? node_value(lpm, r) : 0, 0};
        (void)stride_node(&b, root, 0, best);
    }
    if (b.rc == CM_OK)
        b.rc = b.rs.rc;
    st->results = rs_take(&b.rs, &st->nresults);
    rs_fini(&b.rs);
    if (b.rc != CM_OK) {
        stride_free(st);
        return NULL;
    }
    st->cap = st->nodes;
    uint32_t *ent = realloc(st->ent, (size_t)st->nodes * 256 * sizeof(*ent));
    if (ent != NULL)
        st->ent = ent;
    return st;
}

/* ---- size ------------------------------------------------------------------- */

size_t cm_lpm_memory(const struct cm_lpm *lpm)
{
    if (lpm == NULL)
        return 0;
    size_t n = sizeof(*lpm) + (size_t)lpm->cap * sizeof(lpm->nodes[0]) +
               (lpm->direct != NULL ? lpm->direct->bytes : 0);
    for (unsigned f = 0; f < 2; f++) {
        const struct lpm_stride *st = lpm->stride[f];
        if (st != NULL)
            n += sizeof(*st) + (size_t)st->cap * 257 * sizeof(uint32_t) +
                 (size_t)st->nresults * sizeof(st->results[0]);
    }
    return n;
}

bool cm_lpm_has_direct(const struct cm_lpm *lpm)
{
    return lpm != NULL && lpm->direct != NULL;
}

unsigned cm_lpm_direct_bits(const struct cm_lpm *lpm)
{
    if (lpm == NULL || lpm->direct == NULL)
        return 0;
    return lpm->direct->tbl16 != NULL ? 16 : 32;
}

bool cm_lpm_has_stride(const struct cm_lpm *lpm, int family)
{
    return lpm != NULL && (family == AF_INET    ? lpm->stride[0] != NULL
                           : family == AF_INET6 ? lpm->stride[1] != NULL
                                                : false);
}

/*
 * Once built, a large node array moves to huge pages too (see huge_alloc):
 * the trie still answers IPv6 and short sources, walking up to 128 dependent
 * nodes scattered over tens of MiB. Without huge pages (the kernel says no),
 * the array is simply trimmed to its size.
 */
static void nodes_trim(struct cm_lpm *lpm)
{
    struct lpm_node *n;
    size_t bytes = (size_t)lpm->count * sizeof(*n);

    if (bytes >= LPM_HUGE) {
        n = huge_alloc(bytes);
        if (n != NULL) {
            memcpy(n, lpm->nodes, bytes);
            free(lpm->nodes);
            lpm->nodes = n;
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

void cm_lpm_compact_with(struct cm_lpm *lpm, size_t direct_min, size_t max_blocks, bool narrow)
{
    if (lpm == NULL)
        return;
    nodes_trim(lpm);
    direct_free(lpm->direct);
    lpm->direct = NULL;
    if (lpm->v4_prefixes >= direct_min)
        (void)direct_build(lpm, max_blocks, narrow); /* without it, the trie answers */
    for (unsigned f = 0; f < 2; f++) {
        stride_free(lpm->stride[f]);
        lpm->stride[f] = NULL;
        /* with a direct table, the few IPv4 sources shorter than /24 walk the trie */
        if (f == 1 || lpm->direct == NULL)
            lpm->stride[f] =
                stride_build(lpm, f == 0 ? LPM_ROOT_V4 : LPM_ROOT_V6, CM_LPM_STRIDE_MAX);
    }
}

void cm_lpm_compact(struct cm_lpm *lpm)
{
    cm_lpm_compact_with(lpm, CM_LPM_DIRECT_MIN, CM_LPM_DIRECT_MAX_BLOCKS, true);
}
