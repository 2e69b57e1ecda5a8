/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_pre.c -- precompiled response parts (see dns_pre.h).
 *
 * A part is made by the query path's writer itself, in a scratch message
 * whose question is a stand-in name: one label no real name has (a single
 * 0xFF byte) above the apex. Pointers the writer puts in the part then say
 * what they point at: 12 is the query name (kept as 0xC00C), 14 and beyond,
 * within the question, a suffix of the apex (the same number of bytes
 * before the end of any real query name under the apex), past the question
 * a name inside the part. The last two become relocations.
 *
 * The writer would compress differently for a real query name only where
 * that name and a name written in the part share a suffix longer than the
 * apex: both then have the same label just above the apex. A name whose
 * label there is also one of the part's is left to the writer
 * (dns_pre_nodata_ok); A and AAAA parts hold no name but the owner.
 */
#include "dnsd/dns_pre.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_array.h"
#include "common/cm_err.h"
#include "dnsd/dns_chunks.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define PRE_SCRATCH   8192 /* largest message a part is compiled in */
#define PRE_TTLS      64   /* NODATA parts shared by TTL, at most this many TTLs */
#define PRE_STANDIN   0xFF /* the stand-in label's only byte */
#define PRE_MAX_ABOVE 2    /* names of a part under the apex (SOA MNAME, RNAME) */

struct dns_pre_reloc {
    uint16_t at;   /* offset of the pointer in the part */
    int16_t delta; /* it points at (part start + delta) */
};

/* The parts of one service (or the ENT part): immutable once built and
 * shared by consecutive dns_pre while the service's answers stay. */
struct pre_blk {
    _Atomic int refs;
    uint8_t *bytes; /* owned: every part, back to back */
    size_t bytes_len, bytes_cap;
    struct dns_pre_reloc *relocs; /* owned */
    size_t reloc_len, reloc_cap;
    struct dns_pre_part *parts; /* owned; build only, like bytes and relocs */
    size_t part_count, part_cap;
    /* owned (64-byte aligned), once sealed: each part's header followed by
     * its bytes and relocations, within one cache line when they take a line
     * or less (sealed_place); part_ptr[i] is part i in it */
    uint8_t *sealed;
    size_t sealed_len;
    const struct dns_pre_part **part_ptr; /* owned, part_count */
    uint32_t *variant_part; /* owned: 2 per variant (A, AAAA), a part index or DNS_PRE_NONE */
    size_t variant_count;
    uint32_t *answer_nodata; /* owned: per answer, a part index or DNS_PRE_NONE */
    size_t answer_count;
    /* owned (64-byte aligned): per slot of the service, the index of its first
     * dns_pre_hot (HOT_UNIFORM: one for every region, else one per region;
     * HOT_UNUSED: none), padded to HOT_HEAD(slots) entries, then the records */
    uint32_t *hot;
    size_t hot_slots; /* slots (entries before the padding) */
    size_t hot_len;   /* records */
};

#define HOT_UNUSED  UINT32_MAX
#define HOT_UNIFORM 0x80000000u
/* Entries before the records: a multiple of 8, so that 32-byte records never
 * straddle a cache line. */
#define HOT_HEAD(slots) (((slots) + 7) / 8 * 8)

/* What decides whether the NODATA parts are exact for a name: the apex and
 * the labels just above it of the names the SOA part writes (MNAME, RNAME). */
struct pre_exact {
    const uint8_t *apex; /* borrowed from the zone */
    size_t apex_len;
    unsigned apex_labels;
    uint8_t above[PRE_MAX_ABOVE][DNS_LABEL_MAX + 1];
    unsigned above_count;
};

/* Per name, 1 when the NODATA parts are exact for it: shared while the names are. */
struct pre_ok {
    _Atomic int refs;
    size_t count;
    uint8_t ok[];
};

struct dns_pre {
    /* What the query path reads of every federated answer first, together */
    const uint32_t **hot; /* owned array, per service: its block's hot (NULL: none) */
    size_t service_count;
    size_t slot_count; /* the table's slots per service, regions, default region */
    size_t region_count;
    unsigned default_region;
    struct pre_ok *ok;
    const struct dns_fed *fed;   /* identity only: compiled from */
    const struct dns_zone *zone; /* identity only */
    struct pre_blk **blk;        /* owned array, per service of fed; NULL: none. The
                                    blocks are owned through `own` */
    struct dns_chunks own;
    uint8_t *src;        /* build only: per service, enum dns_chunk_src */
    struct pre_blk *ent; /* the ENT part */
    uint32_t ent_part;
    struct pre_exact ex;  /* for names outside the table (dns_pre_nxdomain) */
    size_t built, shared; /* service parts compiled and taken from the previous */
};

/* Build state: the stand-in question and what the SOA writes under the apex. */
struct pre_build {
    struct pre_blk *pre; /* the block being compiled */
    const struct dns_zone *zone;
    uint8_t *scratch; /* PRE_SCRATCH bytes */
    uint8_t qname[DNS_NAME_MAX];
    size_t qname_len;
    const uint8_t *apex;
    size_t apex_len;
    struct pre_exact *ex;   /* the dns_pre's, filled by soa_labels() */
    uint32_t ttl[PRE_TTLS]; /* NODATA parts made so far, by TTL */
    uint32_t ttl_part[PRE_TTLS];
    unsigned ttl_count;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* ---- relocations ---- */

/* One pointer of the scratch message at @at: a relocation, or kept (0xC00C). */
static bool relocate(struct pre_build *b, size_t part_start, size_t at, struct dns_pre_reloc *out,
                     bool *keep)
{
    size_t target = rd16(b->scratch + at) & 0x3FFFu;
    size_t qend = DNS_HEADER_LEN + b->qname_len; /* end of the stand-in name */

    *keep = false;
    if (target == DNS_HEADER_LEN) {
        *keep = true; /* the query name */
        return true;
    }
    if (target >= DNS_HEADER_LEN + 2 && target < qend) {
        /* a suffix of the apex: (qend - target) bytes before the name's end */
        out->delta = (int16_t)(-(long)(4 + (qend - target)));
    } else if (target >= part_start && target < at) {
        out->delta = (int16_t)(target - part_start);
    } else {
        return false; /* the header, the type/class of the question: not a name */
    }
    out->at = (uint16_t)(at - part_start);
    return true;
}

/* Walks a possibly compressed name at @off (within @end), recording its pointer. */
static bool walk_name(struct pre_build *b, size_t part_start, size_t *off, size_t end,
                      struct dns_pre_reloc *rel, size_t *nrel, size_t cap)
{
    size_t o = *off;

    while (o < end) {
        uint8_t l = b->scratch[o];
        if (l == 0) {
            *off = o + 1;
            return true;
        }
        if ((l & 0xC0) == 0xC0) {
            bool keep;
            if (o + 2 > end || *nrel == cap)
                return false;
            if (!relocate(b, part_start, o, &rel[*nrel], &keep))
                return false;
            if (!keep)
                (*nrel)++;
            *off = o + 2;
            return true;
        }
        o += 1u + l;
    }
    return false;
}

/* Finds every compression pointer in the records at [@start, @end) of the scratch message. */
static bool collect_relocs(struct pre_build *b, size_t start, size_t end, struct dns_pre_reloc *rel,
                           size_t *nrel, size_t cap)
{
    size_t o = start;

    *nrel = 0;
    while (o < end) {
        if (!walk_name(b, start, &o, end, rel, nrel, cap) || end - o < 10)
            return false;
        uint16_t type = rd16(b->scratch + o);
        size_t rdlen = rd16(b->scratch + o + 8);
        size_t rd = o + 10;
        if (end - rd < rdlen)
            return false;
        switch (type) {
        case DNS_TYPE_NS:
        case DNS_TYPE_CNAME:
        case DNS_TYPE_PTR:
            if (!walk_name(b, start, &rd, o + 10 + rdlen, rel, nrel, cap))
                return false;
            break;
        case DNS_TYPE_MX:
            rd += 2;
            if (!walk_name(b, start, &rd, o + 10 + rdlen, rel, nrel, cap))
                return false;
            break;
        case DNS_TYPE_SOA:
            if (!walk_name(b, start, &rd, o + 10 + rdlen, rel, nrel, cap) ||
                !walk_name(b, start, &rd, o + 10 + rdlen, rel, nrel, cap))
                return false;
            break;
        default:
            break;
        }
        o += 10 + rdlen;
    }
    return o == end;
}

/* ---- parts ---- */

/* One RRset of a part: its section, whether the owner is the query name or the apex. */
struct pre_rrset {
    enum dns_section sec;
    bool owner_is_qname;
    const struct dns_rrset *rs;
    uint32_t ttl;
};

/* Writes @n RRsets as the query path would and stores them as a part; *out
 * is its index, or DNS_PRE_NONE when it cannot be precompiled. */
static int part_add(struct pre_build *b, const struct pre_rrset *sets, size_t n, uint32_t *out)
{
    struct pre_blk *pre = b->pre;
    struct dns_pre_reloc rel[64];
    struct dns_writer w;
    size_t start, len, nrel;
    int rc;

    *out = DNS_PRE_NONE;
    dns_writer_init(&w, b->scratch, PRE_SCRATCH);
    if (dns_writer_header(&w, 0, 0, true) != CM_OK ||
        dns_writer_question(&w, b->qname, b->qname_len, DNS_TYPE_A, DNS_CLASS_IN) != CM_OK)
        return CM_OK;
    start = w.len;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *owner = sets[i].owner_is_qname ? b->qname : b->apex;
        size_t olen = sets[i].owner_is_qname ? b->qname_len : b->apex_len;
        if (dns_writer_rrset(&w, sets[i].sec, owner, olen, sets[i].rs, sets[i].ttl) != CM_OK)
            return CM_OK; /* too big: the writer's path truncates it */
    }
    len = w.len - start;
    if (len > INT16_MAX || !collect_relocs(b, start, w.len, rel, &nrel, 64))
        return CM_OK;
    rc = cm_array_grow(&pre->bytes, &pre->bytes_cap, pre->bytes_len + len, 1);
    if (rc == CM_OK)
        rc = cm_array_grow(&pre->relocs, &pre->reloc_cap, pre->reloc_len + nrel,
                           sizeof(*pre->relocs));
    if (rc == CM_OK)
        rc = cm_array_grow(&pre->parts, &pre->part_cap, pre->part_count + 1, sizeof(*pre->parts));
    if (rc != CM_OK)
        return rc;
    if (pre->bytes_len > UINT32_MAX - len || pre->reloc_len > UINT32_MAX - nrel ||
        pre->part_count >= UINT32_MAX - 1)
        return CM_ENOMEM;
    memcpy(pre->bytes + pre->bytes_len, b->scratch + start, len);
    if (nrel > 0)
        memcpy(pre->relocs + pre->reloc_len, rel, nrel * sizeof(rel[0]));
    pre->parts[pre->part_count] = (struct dns_pre_part){
        .off = (uint32_t)pre->bytes_len,
        .reloc = (uint32_t)pre->reloc_len,
        .len = (uint16_t)len,
        .reloc_count = (uint16_t)nrel,
        .an = w.counts[DNS_SEC_ANSWER],
        .ns = w.counts[DNS_SEC_AUTHORITY],
    };
    pre->bytes_len += len;
    pre->reloc_len += nrel;
    *out = (uint32_t)pre->part_count++;
    return CM_OK;
}

/* The NODATA part with SOA TTL @ttl, shared by TTL. */
static int nodata_part(struct pre_build *b, uint32_t ttl, uint32_t *out)
{
    struct pre_rrset soa = {DNS_SEC_AUTHORITY, false, dns_zone_soa(b->zone), ttl};
    int rc;

    for (unsigned i = 0; i < b->ttl_count; i++) {
        if (b->ttl[i] == ttl) {
            *out = b->ttl_part[i];
            return CM_OK;
        }
    }
    rc = part_add(b, &soa, 1, out);
    if (rc == CM_OK && b->ttl_count < PRE_TTLS) {
        b->ttl[b->ttl_count] = ttl;
        b->ttl_part[b->ttl_count++] = *out;
    }
    return rc;
}

/* ---- exactness ---- */

/* The label just above the apex of @name (lowercased into @label, length
 * byte first); false when @name is not strictly below the apex. */
static bool label_above(const struct pre_exact *ex, const uint8_t *name, size_t len,
                        uint8_t label[DNS_LABEL_MAX + 1])
{
    size_t pos = dns_name_under_offset(name, len, ex->apex, ex->apex_len);
    size_t o = 0;

    if (pos == 0 || pos == SIZE_MAX)
        return false;
    while (o + 1u + name[o] < pos)
        o += 1u + name[o];
    dns_name_lower(label, name + o, 1u + name[o]);
    return true;
}

/* Notes the labels above the apex of the SOA's MNAME and RNAME. */
static void soa_labels(struct pre_build *b)
{
    const struct dns_rrset *soa = dns_zone_soa(b->zone);
    uint8_t lc[DNS_NAME_MAX];
    size_t off = 2; /* past RDLENGTH */

    if (soa == NULL || soa->count < 1 || soa->rdata_len < 2)
        return;
    for (unsigned i = 0; i < 2 && off < soa->rdata_len; i++) {
        size_t n = dns_name_check(soa->rdata + off, soa->rdata_len - off);
        if (n == 0)
            return;
        dns_name_lower(lc, soa->rdata + off, n);
        if (label_above(b->ex, lc, n, b->ex->above[b->ex->above_count]))
            b->ex->above_count++;
        off += n;
    }
}

/* The NODATA parts are exact for @name (lowercased wire) when it is at or
 * below the apex and its label above the apex is none of the SOA's. One
 * walk: the query path asks this for every NXDOMAIN. */
static bool nodata_exact(const struct pre_exact *ex, const uint8_t *name, size_t len)
{
    size_t o = 0, above = 0;
    unsigned labels = ex->apex_labels;

    while (len - o > ex->apex_len && name[o] != 0) {
        above = o;
        o += 1u + name[o];
        labels++;
    }
    if (len - o != ex->apex_len || memcmp(name + o, ex->apex, ex->apex_len) != 0)
        return false; /* not at or below the apex */
    if (labels > DNS_COMP_MAX / 4)
        return false; /* the writer's compression table could run out */
    if (o == 0)
        return true; /* the apex */
    for (unsigned i = 0; i < ex->above_count; i++) {
        if (memcmp(name + above, ex->above[i], 1u + name[above]) == 0)
            return false;
    }
    return true;
}

/* ---- build ---- */

static struct pre_blk *blk_new(void)
{
    struct pre_blk *blk = calloc(1, sizeof(*blk));

    if (blk != NULL)
        atomic_init(&blk->refs, 1);
    return blk;
}

static void blk_unref(struct pre_blk *blk)
{
    if (blk == NULL || atomic_fetch_sub_explicit(&blk->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(blk->bytes);
    free(blk->relocs);
    free(blk->parts);
    free(blk->sealed);
    free(blk->part_ptr);
    free(blk->variant_part);
    free(blk->answer_nodata);
    free(blk->hot);
    free(blk);
}

/* Bytes part @p takes once sealed: header, bytes, relocations (4-byte
 * aligned), rounded to 8. */
static size_t sealed_size(const struct dns_pre_part *p)
{
    size_t n = sizeof(*p) + ((size_t)p->len + 3) / 4 * 4 +
               (size_t)p->reloc_count * sizeof(struct dns_pre_reloc);

    return (n + 7) / 8 * 8;
}

/* Where a part of @size bytes goes at or after offset @o: packed behind the
 * one before when it fits in the rest of the line, else from the next
 * line's start (a part of a line or less then takes one line, a longer one
 * as few as it can). */
static size_t sealed_place(size_t o, size_t size)
{
    if (o % 64 != 0 && o % 64 + size > 64)
        return (o + 63) / 64 * 64;
    return o;
}

/* The block stops growing: its parts move, each with its bytes and
 * relocations, to the sealed memory the query path reads. */
static int blk_seal(struct pre_blk *blk)
{
    size_t total = 0, o = 0;
    void *mem;

    for (size_t i = 0; i < blk->part_count; i++)
        total = sealed_place(total, sealed_size(&blk->parts[i])) + sealed_size(&blk->parts[i]);
    blk->part_ptr = calloc(blk->part_count + 1, sizeof(*blk->part_ptr));
    if (blk->part_ptr == NULL || posix_memalign(&mem, 64, total + 64) != 0)
        return CM_ENOMEM;
    blk->sealed = mem;
    blk->sealed_len = total;
    for (size_t i = 0; i < blk->part_count; i++) {
        o = sealed_place(o, sealed_size(&blk->parts[i]));
        struct dns_pre_part *h = (struct dns_pre_part *)(void *)(blk->sealed + o);
        uint8_t *bytes = (uint8_t *)(h + 1);
        struct dns_pre_reloc *rel =
            (struct dns_pre_reloc *)(void *)(bytes + ((size_t)blk->parts[i].len + 3) / 4 * 4);

        *h = blk->parts[i];
        memcpy(bytes, blk->bytes + h->off, h->len);
        if (h->reloc_count > 0)
            memcpy(rel, blk->relocs + h->reloc, h->reloc_count * sizeof(*rel));
        h->bytes = bytes;
        h->relocs = rel;
        blk->part_ptr[i] = h;
        o += sealed_size(h);
    }
    /* what was built is now in the sealed memory */
    free(blk->bytes);
    free(blk->relocs);
    free(blk->parts);
    blk->bytes = NULL;
    blk->relocs = NULL;
    blk->parts = NULL;
    blk->bytes_cap = blk->reloc_cap = blk->part_cap = 0;
    return CM_OK;
}

static void blk_ref_part(void *p)
{
    struct pre_blk *blk = p;

    atomic_fetch_add_explicit(&blk->refs, 1, memory_order_relaxed);
}

static void blk_unref_part(void *p)
{
    blk_unref(p);
}

static const struct dns_chunk_ops blk_ops = {blk_ref_part, blk_unref_part};

static const struct dns_pre_part *part_at(const struct pre_blk *blk, uint32_t i)
{
    return i < blk->part_count ? blk->part_ptr[i] : NULL;
}

static const struct dns_pre_part *blk_variant(const struct pre_blk *blk, uint32_t variant_id,
                                              bool aaaa)
{
    if (variant_id >= blk->variant_count)
        return NULL;
    return part_at(blk, blk->variant_part[2 * (size_t)variant_id + (aaaa ? 1 : 0)]);
}

static const struct dns_pre_part *blk_nodata(const struct pre_blk *blk, uint32_t answer_id)
{
    if (answer_id >= blk->answer_count)
        return NULL;
    return part_at(blk, blk->answer_nodata[answer_id]);
}

/* The hot record of @slot of service @s for clients of @region: what
 * dns_query's precompiled path would take from dns_fed_lookup and the parts. */
static void hot_record(const struct pre_blk *blk, const struct dns_fed *fed, size_t s, size_t slot,
                       unsigned region, struct dns_pre_hot *h)
{
    static const uint16_t types[3] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_MX};

    memset(h, 0, sizeof(*h));
    for (unsigned k = 0; k < 3; k++) {
        struct dns_fed_answer fa;
        dns_fed_slot_answer(fed, s, slot, region, types[k], &fa);
        if (fa.cname != NULL || fa.subnet_dependent) {
            memset(h, 0, sizeof(*h));
            h->flags = DNS_PRE_HOT_FULL;
            return;
        }
        h->member = fa.member;
        h->flags |= (fa.fail_open ? DNS_PRE_HOT_FAIL_OPEN : 0) |
                    (fa.fail_closed ? DNS_PRE_HOT_FAIL_CLOSED : 0) |
                    (fa.region_dependent ? DNS_PRE_HOT_REGION_DEP : 0);
        if (fa.rrset != NULL) {
            h->part[k] = blk_variant(blk, fa.variant_id, k == 1);
            h->flags |= DNS_PRE_HOT_REC(k);
        } else {
            h->part[k] = blk_nodata(blk, fa.answer_id);
        }
    }
}

/* The hot records of service @s, once its parts are sealed. */
static int build_hot(struct pre_blk *blk, const struct dns_fed *fed, size_t s)
{
    size_t slots = dns_fed_slot_total(fed, s);
    size_t n = 0, k = 0;
    struct dns_pre_hot *rec;
    void *mem;

    for (size_t i = 0; i < slots; i++)
        n += (size_t)dns_fed_slot_regions(fed, s, i);
    if (slots == 0 || n >= HOT_UNIFORM)
        return CM_OK; /* none: the query path looks the answers up */
    if (posix_memalign(&mem, 64, HOT_HEAD(slots) * sizeof(uint32_t) + n * sizeof(*rec)) != 0)
        return CM_ENOMEM;
    blk->hot = mem;
    blk->hot_slots = slots;
    blk->hot_len = n;
    rec = (struct dns_pre_hot *)(void *)(blk->hot + HOT_HEAD(slots));
    for (size_t i = 0; i < slots; i++) {
        int r = dns_fed_slot_regions(fed, s, i);
        blk->hot[i] = r == 0 ? HOT_UNUSED : (uint32_t)k | (r == 1 ? HOT_UNIFORM : 0);
        for (int reg = 0; reg < r; reg++)
            hot_record(blk, fed, s, i, (unsigned)reg, &rec[k++]);
    }
    return CM_OK;
}

static int build_variants(struct pre_build *b, const struct dns_fed *fed, size_t s)
{
    struct pre_blk *pre = b->pre;
    int rc = CM_OK;

    for (size_t v = 0; v < pre->variant_count && rc == CM_OK; v++) {
        struct dns_fed_variant_rrsets rr;
        dns_fed_variant_rrsets(fed, s, v, &rr);
        pre->variant_part[2 * v] = DNS_PRE_NONE;
        pre->variant_part[2 * v + 1] = DNS_PRE_NONE;
        if (rr.cname != NULL)
            continue; /* chased within the zone: the writer's path */
        if (rr.a != NULL) {
            struct pre_rrset set = {DNS_SEC_ANSWER, true, rr.a, rr.a->ttl};
            rc = part_add(b, &set, 1, &pre->variant_part[2 * v]);
        }
        if (rc == CM_OK && rr.aaaa != NULL) {
            struct pre_rrset set = {DNS_SEC_ANSWER, true, rr.aaaa, rr.aaaa->ttl};
            rc = part_add(b, &set, 1, &pre->variant_part[2 * v + 1]);
        }
    }
    return rc;
}

/* The parts of service @s of @fed, into b->pre. */
static int build_service(struct pre_build *b, const struct dns_fed *fed, size_t s)
{
    struct pre_blk *pre = b->pre;
    int rc;

    b->ttl_count = 0; /* NODATA parts are shared within a block */
    pre->variant_count = dns_fed_variant_total(fed, s);
    pre->answer_count = dns_fed_answer_total(fed, s);
    pre->variant_part = malloc((2 * pre->variant_count + 1) * sizeof(*pre->variant_part));
    pre->answer_nodata = malloc((pre->answer_count + 1) * sizeof(*pre->answer_nodata));
    if (pre->variant_part == NULL || pre->answer_nodata == NULL)
        return CM_ENOMEM;
    rc = build_variants(b, fed, s);
    for (size_t a = 0; a < pre->answer_count && rc == CM_OK; a++)
        rc = nodata_part(b, dns_fed_answer_negative_ttl(fed, s, a), &pre->answer_nodata[a]);
    if (rc == CM_OK)
        rc = blk_seal(pre);
    if (rc == CM_OK)
        rc = build_hot(pre, fed, s);
    return rc;
}

static int build_ok(struct pre_build *b, const struct dns_fed *fed, struct pre_ok **out)
{
    size_t n = dns_fed_name_total(fed);
    struct pre_ok *ok = malloc(sizeof(*ok) + n + 1);

    if (ok == NULL)
        return CM_ENOMEM;
    atomic_init(&ok->refs, 1);
    ok->count = n;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *name = dns_fed_name_wire(fed, i, &len);
        ok->ok[i] = nodata_exact(b->ex, name, len);
    }
    *out = ok;
    return CM_OK;
}

static void ok_unref(struct pre_ok *ok)
{
    if (ok != NULL && atomic_fetch_sub_explicit(&ok->refs, 1, memory_order_acq_rel) == 1)
        free(ok);
}

/* What @prev (compiled from @prev_fed for the same zone) lends @pre. */
static bool take_shared(struct dns_pre *pre, const struct dns_pre *prev,
                        const struct dns_fed *prev_fed, const struct dns_fed *fed)
{
    if (prev == NULL || prev->fed != prev_fed || prev->zone != pre->zone || prev->ent == NULL)
        return false;
    atomic_fetch_add_explicit(&prev->ent->refs, 1, memory_order_relaxed);
    pre->ent = prev->ent;
    pre->ent_part = prev->ent_part;
    if (dns_fed_same_names(prev_fed, fed)) {
        atomic_fetch_add_explicit(&prev->ok->refs, 1, memory_order_relaxed);
        pre->ok = prev->ok;
    }
    for (size_t s = 0; s < pre->service_count; s++) {
        long o = dns_fed_reused_from(fed, s);
        if (o < 0 || (size_t)o >= prev->service_count || prev->blk[o] == NULL)
            continue;
        pre->blk[s] = prev->blk[o];
        pre->hot[s] = prev->hot[o];
        pre->src[s] = DNS_CHUNK_LENT;
        pre->shared++;
    }
    return true;
}

/* What the query path needs beside the blocks' hot records (pre->hot, set
 * as the blocks are taken or built): the table's shape. */
static void hot_shape(struct dns_pre *pre, const struct dns_fed *fed)
{
    pre->slot_count = 0;
    for (size_t s = 0; s < pre->service_count && pre->slot_count == 0; s++)
        pre->slot_count = dns_fed_slot_total(fed, s);
    pre->region_count = dns_fed_region_total(fed);
    pre->default_region = dns_fed_default_region(fed);
}

static int build_all(struct pre_build *b, struct dns_pre *pre, const struct dns_pre *prev,
                     const struct dns_fed *prev_fed, const struct dns_fed *fed)
{
    int rc = CM_OK;

    pre->service_count = dns_fed_service_count(fed);
    pre->blk = calloc(pre->service_count + 1, sizeof(*pre->blk));
    pre->src = calloc(pre->service_count + 1, 1);
    pre->hot = calloc(pre->service_count + 1, sizeof(*pre->hot));
    if (pre->blk == NULL || pre->src == NULL || pre->hot == NULL)
        return CM_ENOMEM;
    if (!take_shared(pre, prev, prev_fed, fed)) {
        pre->ent = b->pre = blk_new();
        if (pre->ent == NULL)
            return CM_ENOMEM;
        b->ttl_count = 0;
        rc = nodata_part(b, dns_zone_negative_ttl(b->zone), &pre->ent_part);
        if (rc == CM_OK)
            rc = blk_seal(pre->ent);
    }
    if (rc == CM_OK && pre->ok == NULL)
        rc = build_ok(b, fed, &pre->ok);
    for (size_t s = 0; s < pre->service_count && rc == CM_OK; s++) {
        if (pre->blk[s] != NULL || dns_fed_answer_total(fed, s) == 0)
            continue;
        pre->blk[s] = b->pre = blk_new();
        if (pre->blk[s] == NULL)
            return CM_ENOMEM;
        pre->src[s] = DNS_CHUNK_NEW;
        rc = build_service(b, fed, s);
        pre->hot[s] = pre->blk[s]->hot;
        pre->built++;
    }
    if (rc == CM_OK)
        rc = dns_chunks_assemble(&pre->own, prev != NULL && pre->shared > 0 ? &prev->own : NULL,
                                 &blk_ops, (void *const *)pre->blk, pre->src, pre->service_count);
    hot_shape(pre, fed);
    if (rc == CM_OK) {
        free(pre->src);
        pre->src = NULL;
    }
    return rc;
}

int dns_pre_update(const struct dns_pre *prev, const struct dns_fed *prev_fed,
                   const struct dns_fed *fed, const struct dns_zone *zone, struct dns_pre **out)
{
    struct pre_build b = {.zone = zone};
    struct dns_pre *pre = NULL;
    const struct dns_node *apex;
    int rc = CM_OK;

    *out = NULL;
    if (fed == NULL || zone == NULL)
        return CM_OK;
    apex = dns_zone_apex(zone);
    if (apex->name_len + 2 > DNS_NAME_MAX)
        return CM_OK; /* no room for the stand-in label: the writer's path only */
    pre = calloc(1, sizeof(*pre));
    b.scratch = malloc(PRE_SCRATCH);
    if (pre == NULL || b.scratch == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    pre->fed = fed;
    pre->zone = zone;
    pre->ent_part = DNS_PRE_NONE;
    b.apex = apex->name;
    b.apex_len = apex->name_len;
    b.ex = &pre->ex;
    pre->ex.apex = apex->name;
    pre->ex.apex_len = apex->name_len;
    pre->ex.apex_labels = dns_name_label_count(apex->name);
    b.qname[0] = 1;
    b.qname[1] = PRE_STANDIN;
    memcpy(b.qname + 2, b.apex, b.apex_len);
    b.qname_len = 2 + b.apex_len;
    soa_labels(&b);
    rc = build_all(&b, pre, prev, prev_fed, fed);
    if (rc == CM_OK) {
        *out = pre;
        pre = NULL;
    }
out:
    free(b.scratch);
    dns_pre_free(pre);
    return rc;
}

int dns_pre_build(const struct dns_fed *fed, const struct dns_zone *zone, struct dns_pre **out)
{
    return dns_pre_update(NULL, NULL, fed, zone, out);
}

void dns_pre_free(struct dns_pre *pre)
{
    if (pre == NULL)
        return;
    if (pre->src != NULL) /* a failed build: the parts no chunk owns */
        dns_chunks_drop_new(&pre->own, &blk_ops, (void *const *)pre->blk, pre->src,
                            pre->service_count);
    dns_chunks_fini(&pre->own);
    free(pre->src);
    free(pre->blk);
    free(pre->hot);
    blk_unref(pre->ent);
    ok_unref(pre->ok);
    free(pre);
}

void dns_pre_counts(const struct dns_pre *pre, size_t *built, size_t *shared)
{
    *built = pre != NULL ? pre->built : 0;
    *shared = pre != NULL ? pre->shared : 0;
}

/* ---- query path ---- */

const struct dns_pre_part *dns_pre_variant(const struct dns_pre *pre, size_t service,
                                           uint32_t variant_id, bool aaaa)
{
    const struct pre_blk *blk = service < pre->service_count ? pre->blk[service] : NULL;

    return blk != NULL ? blk_variant(blk, variant_id, aaaa) : NULL;
}

const struct dns_pre_part *dns_pre_nodata(const struct dns_pre *pre, size_t service,
                                          uint32_t answer_id)
{
    const struct pre_blk *blk = service < pre->service_count ? pre->blk[service] : NULL;

    return blk != NULL ? blk_nodata(blk, answer_id) : NULL;
}

const struct dns_pre_hot *dns_pre_hot(const struct dns_pre *pre, int service, uint32_t slot,
                                      unsigned region)
{
    const uint32_t *first;
    uint32_t f;

    if (service < 0 || (size_t)service >= pre->service_count || slot >= pre->slot_count)
        return NULL;
    first = pre->hot[service];
    if (first == NULL || (f = first[slot]) == HOT_UNUSED)
        return NULL;
    if ((f & HOT_UNIFORM) != 0)
        f &= ~HOT_UNIFORM;
    else
        f += region < pre->region_count ? region : pre->default_region;
    return (const struct dns_pre_hot *)(const void *)(first + HOT_HEAD(pre->slot_count)) + f;
}

const struct dns_pre_part *dns_pre_ent(const struct dns_pre *pre)
{
    return part_at(pre->ent, pre->ent_part);
}

const struct dns_pre_part *dns_pre_nxdomain(const struct dns_pre *pre, const uint8_t *name,
                                            size_t len)
{
    return nodata_exact(&pre->ex, name, len) ? dns_pre_ent(pre) : NULL;
}

bool dns_pre_nodata_ok(const struct dns_pre *pre, uint32_t name_id)
{
    return name_id < pre->ok->count && pre->ok->ok[name_id] != 0;
}

size_t dns_pre_copy(const struct dns_pre_part *part, uint8_t *out, size_t base)
{
    const struct dns_pre_reloc *r = part->relocs;

    memcpy(out, part->bytes, part->len);
    for (unsigned i = 0; i < part->reloc_count; i++) {
        size_t target = (size_t)((long)base + r[i].delta);
        out[r[i].at] = (uint8_t)(0xC0u | (target >> 8));
        out[r[i].at + 1] = (uint8_t)target;
    }
    return part->len;
}

static size_t blk_memory(const struct pre_blk *blk)
{
    if (blk == NULL)
        return 0;
    return sizeof(*blk) + blk->sealed_len + blk->part_count * sizeof(*blk->part_ptr) +
           2 * blk->variant_count * sizeof(uint32_t) + blk->answer_count * sizeof(uint32_t) +
           (blk->hot != NULL ? HOT_HEAD(blk->hot_slots) * sizeof(uint32_t) +
                                   blk->hot_len * sizeof(struct dns_pre_hot)
                             : 0);
}

size_t dns_pre_memory(const struct dns_pre *pre)
{
    size_t n;

    if (pre == NULL)
        return 0;
    n = sizeof(*pre) + pre->service_count * (sizeof(*pre->blk) + sizeof(*pre->hot)) +
        blk_memory(pre->ent) + sizeof(*pre->ok) + pre->ok->count;
    for (size_t s = 0; s < pre->service_count; s++)
        n += blk_memory(pre->blk[s]);
    return n;
}
