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

#include <stdlib.h>
#include <string.h>

#include "common/cm_array.h"
#include "common/cm_err.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define PRE_SCRATCH   8192 /* largest message a part is compiled in */
#define PRE_TTLS      64   /* NODATA parts shared by TTL, at most this many TTLs */
#define PRE_STANDIN   0xFF /* the stand-in label's only byte */
#define PRE_MAX_ABOVE 2    /* names of a part under the apex (SOA MNAME, RNAME) */

struct pre_reloc {
    uint16_t at;   /* offset of the pointer in the part */
    int16_t delta; /* it points at (part start + delta) */
};

struct dns_pre {
    uint8_t *bytes; /* owned: every part, back to back */
    size_t bytes_len, bytes_cap;
    struct pre_reloc *relocs; /* owned */
    size_t reloc_len, reloc_cap;
    struct dns_pre_part *parts; /* owned */
    size_t part_count, part_cap;
    uint32_t *variant_part; /* owned: 2 per variant (A, AAAA), a part index or DNS_PRE_NONE */
    size_t variant_count;
    uint32_t *answer_nodata; /* owned: per answer, a part index or DNS_PRE_NONE */
    size_t answer_count;
    uint8_t *name_ok; /* owned: per name, 1 when the NODATA parts are exact for it */
    size_t name_count;
    uint32_t ent_part;
};

/* Build state: the stand-in question and what the SOA writes under the apex. */
struct pre_build {
    struct dns_pre *pre;
    const struct dns_zone *zone;
    uint8_t *scratch; /* PRE_SCRATCH bytes */
    uint8_t qname[DNS_NAME_MAX];
    size_t qname_len;
    const uint8_t *apex;
    size_t apex_len;
    /* labels just above the apex of the names the SOA part writes */
    uint8_t above[PRE_MAX_ABOVE][DNS_LABEL_MAX + 1];
    unsigned above_count;
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
static bool relocate(struct pre_build *b, size_t part_start, size_t at, struct pre_reloc *out,
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
                      struct pre_reloc *rel, size_t *nrel, size_t cap)
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
static bool collect_relocs(struct pre_build *b, size_t start, size_t end, struct pre_reloc *rel,
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
    struct dns_pre *pre = b->pre;
    struct pre_reloc rel[64];
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
static bool label_above(const struct pre_build *b, const uint8_t *name, size_t len,
                        uint8_t label[DNS_LABEL_MAX + 1])
{
    size_t pos = dns_name_under_offset(name, len, b->apex, b->apex_len);
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
        if (label_above(b, lc, n, b->above[b->above_count]))
            b->above_count++;
        off += n;
    }
}

/* The NODATA parts are exact for @name (lowercased wire) when it is at or
 * below the apex and its label above the apex is none of the SOA's. */
static bool nodata_exact(const struct pre_build *b, const uint8_t *name, size_t len)
{
    uint8_t label[DNS_LABEL_MAX + 1];

    if (dns_name_label_count(name) > DNS_COMP_MAX / 4)
        return false; /* the writer's compression table could run out */
    if (len == b->apex_len && memcmp(name, b->apex, len) == 0)
        return true;
    if (!label_above(b, name, len, label))
        return false;
    for (unsigned i = 0; i < b->above_count; i++) {
        if (memcmp(label, b->above[i], 1u + label[0]) == 0)
            return false;
    }
    return true;
}

/* ---- build ---- */

static int build_variants(struct pre_build *b, const struct dns_fed *fed)
{
    struct dns_pre *pre = b->pre;
    int rc = CM_OK;

    for (size_t v = 0; v < pre->variant_count && rc == CM_OK; v++) {
        struct dns_fed_variant_rrsets rr;
        dns_fed_variant_rrsets(fed, v, &rr);
        pre->variant_part[2 * v] = DNS_PRE_NONE;
        pre->variant_part[2 * v + 1] = DNS_PRE_NONE;
        if (rr.cname != NULL)
            continue; /* chased within the zone: the writer's path */
        if (rr.a != NULL) {
            struct pre_rrset s = {DNS_SEC_ANSWER, true, rr.a, rr.a->ttl};
            rc = part_add(b, &s, 1, &pre->variant_part[2 * v]);
        }
        if (rc == CM_OK && rr.aaaa != NULL) {
            struct pre_rrset s = {DNS_SEC_ANSWER, true, rr.aaaa, rr.aaaa->ttl};
            rc = part_add(b, &s, 1, &pre->variant_part[2 * v + 1]);
        }
    }
    return rc;
}

static int build_all(struct pre_build *b, const struct dns_fed *fed)
{
    struct dns_pre *pre = b->pre;
    int rc;

    pre->variant_count = dns_fed_variant_total(fed);
    pre->answer_count = dns_fed_answer_total(fed);
    pre->name_count = dns_fed_name_total(fed);
    pre->variant_part = malloc((2 * pre->variant_count + 1) * sizeof(*pre->variant_part));
    pre->answer_nodata = malloc((pre->answer_count + 1) * sizeof(*pre->answer_nodata));
    pre->name_ok = malloc(pre->name_count + 1);
    if (pre->variant_part == NULL || pre->answer_nodata == NULL || pre->name_ok == NULL)
        return CM_ENOMEM;
    rc = build_variants(b, fed);
    for (size_t a = 0; a < pre->answer_count && rc == CM_OK; a++)
        rc = nodata_part(b, dns_fed_answer_negative_ttl(fed, a), &pre->answer_nodata[a]);
    if (rc == CM_OK)
        rc = nodata_part(b, dns_zone_negative_ttl(b->zone), &pre->ent_part);
    for (size_t i = 0; i < pre->name_count; i++) {
        size_t len;
        const uint8_t *name = dns_fed_name_wire(fed, i, &len);
        pre->name_ok[i] = nodata_exact(b, name, len);
    }
    return rc;
}

int dns_pre_build(const struct dns_fed *fed, const struct dns_zone *zone, struct dns_pre **out)
{
    struct pre_build b = {.zone = zone};
    const struct dns_node *apex;
    int rc = CM_OK;

    *out = NULL;
    if (fed == NULL || zone == NULL)
        return CM_OK;
    apex = dns_zone_apex(zone);
    if (apex->name_len + 2 > DNS_NAME_MAX)
        return CM_OK; /* no room for the stand-in label: the writer's path only */
    b.pre = calloc(1, sizeof(*b.pre));
    b.scratch = malloc(PRE_SCRATCH);
    if (b.pre == NULL || b.scratch == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    b.pre->ent_part = DNS_PRE_NONE;
    b.apex = apex->name;
    b.apex_len = apex->name_len;
    b.qname[0] = 1;
    b.qname[1] = PRE_STANDIN;
    memcpy(b.qname + 2, b.apex, b.apex_len);
    b.qname_len = 2 + b.apex_len;
    soa_labels(&b);
    rc = build_all(&b, fed);
    if (rc == CM_OK) {
        *out = b.pre;
        b.pre = NULL;
    }
out:
    free(b.scratch);
    dns_pre_free(b.pre);
    return rc;
}

void dns_pre_free(struct dns_pre *pre)
{
    if (pre == NULL)
        return;
    free(pre->bytes);
    free(pre->relocs);
    free(pre->parts);
    free(pre->variant_part);
    free(pre->answer_nodata);
    free(pre->name_ok);
    free(pre);
}

/* ---- query path ---- */

static const struct dns_pre_part *part_at(const struct dns_pre *pre, uint32_t i)
{
    return i < pre->part_count ? &pre->parts[i] : NULL;
}

const struct dns_pre_part *dns_pre_variant(const struct dns_pre *pre, uint32_t variant_id,
                                           bool aaaa)
{
    if (variant_id >= pre->variant_count)
        return NULL;
    return part_at(pre, pre->variant_part[2 * (size_t)variant_id + (aaaa ? 1 : 0)]);
}

const struct dns_pre_part *dns_pre_nodata(const struct dns_pre *pre, uint32_t answer_id)
{
    return answer_id < pre->answer_count ? part_at(pre, pre->answer_nodata[answer_id]) : NULL;
}

const struct dns_pre_part *dns_pre_ent(const struct dns_pre *pre)
{
    return part_at(pre, pre->ent_part);
}

bool dns_pre_nodata_ok(const struct dns_pre *pre, uint32_t name_id)
{
    return name_id < pre->name_count && pre->name_ok[name_id] != 0;
}

size_t dns_pre_copy(const struct dns_pre *pre, const struct dns_pre_part *part, uint8_t *out,
                    size_t base)
{
    const struct pre_reloc *r = pre->relocs + part->reloc;

    memcpy(out, pre->bytes + part->off, part->len);
    for (unsigned i = 0; i < part->reloc_count; i++) {
        size_t target = (size_t)((long)base + r[i].delta);
        out[r[i].at] = (uint8_t)(0xC0u | (target >> 8));
        out[r[i].at + 1] = (uint8_t)target;
    }
    return part->len;
}

size_t dns_pre_memory(const struct dns_pre *pre)
{
    if (pre == NULL)
        return 0;
    return sizeof(*pre) + pre->bytes_cap + pre->reloc_cap * sizeof(*pre->relocs) +
           pre->part_cap * sizeof(*pre->parts) + 2 * pre->variant_count * sizeof(uint32_t) +
           pre->answer_count * sizeof(uint32_t) + pre->name_count;
}
