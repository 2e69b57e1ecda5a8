/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_zone.c -- loading a zone file with ldns and compiling it for lookups.
 *
 * Load: every RR is read with ldns_rr_new_frm_fp_l (so each one has a line
 * number for errors), converted to wire form (owner lowercased, RDATA with
 * its original case, names uncompressed) and kept in a temporary array. The
 * array is sorted by owner, type and RDATA, duplicates dropped, and compiled
 * into a few flat arrays that the zone owns:
 *
 *   nodes[]  (sorted by name) --> rrsets[] (per node, by type) --> rdata[]
 *   names[]  every node's lowercased wire name, including empty non-terminals
 *   slots[]  open-addressing hash table: node index + 1, 0 = empty
 *
 * After load nothing changes until the last unref, so lookups need no locks.
 */
#include "dnsd/dns_zone.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone_diag.h"

#define ZONE_DEFAULT_TTL 3600
#define TYPE_RRSIG       46
#define TYPE_NSEC        47

struct dns_zone {
    _Atomic int refs;
    struct dns_node *nodes; /* sorted by name */
    size_t node_count;
    size_t owner_count; /* nodes with data */
    struct dns_rrset *rrsets;
    uint8_t *names;
    uint8_t *rdata;
    uint32_t *hashes; /* per node */
    uint32_t *slots;  /* node index + 1 */
    size_t slot_mask;
    const struct dns_node *apex;
    unsigned apex_labels;
    const struct dns_rrset *soa;
    uint32_t negative_ttl;
    bool has_cuts;
    bool has_wildcards;
};

#define ZONE_TEXT_MAX (256 << 20) /* a larger zone file is refused */

/* One RR while loading. */
struct zrec {
    uint8_t owner[DNS_NAME_MAX];
    uint8_t owner_len;
    uint16_t type;
    uint32_t ttl;
    uint16_t rdlen;
    uint8_t *rdata; /* owned */
    int line;
};

struct zname {
    const uint8_t *name; /* borrowed from a zrec */
    uint8_t len;
};

struct zload {
    const char *path;
    const char *text; /* borrowed: the whole file, for error messages */
    size_t text_len;
    char *err;
    size_t errlen;
    uint8_t origin[DNS_NAME_MAX];
    size_t origin_len;
    struct zrec *recs;
    size_t rec_count;
    size_t rec_cap;
};

static int name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static void name_to_text(const uint8_t *name, char *buf, size_t cap)
{
    ldns_rdf *rdf = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, dns_name_check(name, 255), name);
    char *s = rdf != NULL ? ldns_rdf2str(rdf) : NULL;

    snprintf(buf, cap, "%s", s != NULL ? s : "?");
    free(s);
    ldns_rdf_deep_free(rdf);
}

static int load_fail(struct zload *zl, int line, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int load_fail(struct zload *zl, int line, int rc, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(zl->err, zl->errlen, "%s:%d: %s", zl->path, line, msg);
    else
        snprintf(zl->err, zl->errlen, "%s: %s", zl->path, msg);
    return rc;
}

static int rr_to_rec(struct zload *zl, const ldns_rr *rr, int line)
{
    const ldns_rdf *owner = ldns_rr_owner(rr);
    ldns_buffer *buf = NULL;
    struct zrec *r;
    char text[DNS_NAME_MAX * 4 + 8];
    int rc = CM_OK;

    if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN)
        return load_fail(zl, line, CM_ECONFIG, "class other than IN");
    if (zl->rec_count == zl->rec_cap) {
        size_t cap = zl->rec_cap == 0 ? 64 : zl->rec_cap * 2;
        struct zrec *n = realloc(zl->recs, cap * sizeof(*n));
        if (n == NULL)
            return CM_ENOMEM;
        zl->recs = n;
        zl->rec_cap = cap;
    }
    r = &zl->recs[zl->rec_count];
    memset(r, 0, sizeof(*r));
    if (ldns_rdf_size(owner) > DNS_NAME_MAX ||
        dns_name_check(ldns_rdf_data(owner), ldns_rdf_size(owner)) != ldns_rdf_size(owner))
        return load_fail(zl, line, CM_ECONFIG, "invalid owner name");
    r->owner_len = (uint8_t)ldns_rdf_size(owner);
    dns_name_lower(r->owner, ldns_rdf_data(owner), r->owner_len);
    if (!dns_name_is_under(r->owner, r->owner_len, zl->origin, zl->origin_len)) {
        char origin[DNS_NAME_MAX * 4 + 8];

        name_to_text(r->owner, text, sizeof(text));
        name_to_text(zl->origin, origin, sizeof(origin));
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA)
            return load_fail(zl, line, CM_ECONFIG,
                             "the zone's apex is %s but the configuration's zone is %s", text,
                             origin);
        return load_fail(zl, line, CM_ECONFIG,
                         "%s is outside the zone origin %s (the configuration's zone)", text,
                         origin);
    }
    r->type = (uint16_t)ldns_rr_get_type(rr);
    r->ttl = ldns_rr_ttl(rr);
    r->line = line;
    buf = ldns_buffer_new(512);
    if (buf == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
        if (ldns_rdf2buffer_wire(buf, ldns_rr_rdf(rr, i)) != LDNS_STATUS_OK) {
            rc = load_fail(zl, line, CM_ECONFIG, "cannot convert RDATA");
            goto out;
        }
    }
    if (ldns_buffer_position(buf) > 0xFFFF) {
        rc = load_fail(zl, line, CM_ECONFIG, "RDATA too long");
        goto out;
    }
    r->rdlen = (uint16_t)ldns_buffer_position(buf);
    r->rdata = malloc(r->rdlen > 0 ? r->rdlen : 1);
    if (r->rdata == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    memcpy(r->rdata, ldns_buffer_begin(buf), r->rdlen);
    zl->rec_count++;
out:
    ldns_buffer_free(buf);
    return rc;
}

/* ldns refused the record on lines [@first, @last] (@s), or accepted it (@s OK)
 * and check_ints() asks: says which field is wrong and why. */
static int explain_rr(struct zload *zl, int first, int last, const ldns_rdf *prev, ldns_status s)
{
    char msg[512], prev_text[DNS_NAME_MAX * 4 + 8], origin[DNS_NAME_MAX * 4 + 8];
    int line;

    name_to_text(zl->origin, origin, sizeof(origin));
    if (prev != NULL && ldns_rdf_size(prev) <= DNS_NAME_MAX)
        name_to_text(ldns_rdf_data(prev), prev_text, sizeof(prev_text));
    else
        snprintf(prev_text, sizeof(prev_text), "%s", origin);
    line =
        dns_zone_diag_rr(zl->text, zl->text_len, first, last, prev_text, origin, msg, sizeof(msg));
    if (line > 0)
        return load_fail(zl, line, CM_EPARSE, "%s", msg);
    if (s == LDNS_STATUS_OK) /* check_ints(): nothing wrong */
        return CM_OK;
    return load_fail(zl, last, CM_EPARSE, "%s", ldns_get_errorstr_by_id(s));
}

/*
 * ldns stores an out-of-range number silently wrapped ("MX 70000" becomes
 * 4464): for the types whose fields map one to one onto their text and
 * carry numbers (MX, SRV, SOA), check the text too.
 */
static int check_ints(struct zload *zl, const ldns_rr *rr, int first, int last,
                      const ldns_rdf *prev)
{
    ldns_rr_type t = ldns_rr_get_type(rr);

    if (t != LDNS_RR_TYPE_MX && t != LDNS_RR_TYPE_SRV && t != LDNS_RR_TYPE_SOA)
        return CM_OK;
    return explain_rr(zl, first, last, prev, LDNS_STATUS_OK);
}

/* Reads every RR of @fp into zl->recs. */
static int read_records(struct zload *zl, FILE *fp, const char *origin)
{
    ldns_rdf *org = ldns_dname_new_frm_str(origin);
    ldns_rdf *prev = NULL;
    uint32_t ttl = ZONE_DEFAULT_TTL;
    int line = 1;
    int rc = CM_OK;

    if (org == NULL || ldns_rdf_size(org) > DNS_NAME_MAX) {
        rc = load_fail(zl, 0, CM_ECONFIG, "invalid origin \"%s\"", origin);
        goto out;
    }
    zl->origin_len = ldns_rdf_size(org);
    dns_name_lower(zl->origin, ldns_rdf_data(org), zl->origin_len);
    prev = ldns_rdf_clone(org);
    if (prev == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    while (rc == CM_OK && !feof(fp)) {
        ldns_rr *rr = NULL;
        int before = line;
        ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &org, &prev, &line);
        /* ldns has counted the RR's last newline: its (last) line is one before */
        int rr_line = line > before ? line - 1 : line;
        switch (s) {
        case LDNS_STATUS_OK:
            rc = check_ints(zl, rr, before, rr_line, prev);
            if (rc == CM_OK)
                rc = rr_to_rec(zl, rr, rr_line);
            ldns_rr_free(rr);
            break;
        case LDNS_STATUS_SYNTAX_EMPTY:
        case LDNS_STATUS_SYNTAX_TTL:
        case LDNS_STATUS_SYNTAX_ORIGIN:
            break;
        case LDNS_STATUS_SYNTAX_INCLUDE:
            rc = load_fail(zl, rr_line, CM_ECONFIG, "$INCLUDE is not supported");
            break;
        default:
            rc = explain_rr(zl, before, rr_line, prev, s);
            break;
        }
    }
out:
    ldns_rdf_deep_free(org);
    ldns_rdf_deep_free(prev);
    return rc;
}

static int rec_cmp(const void *a, const void *b)
{
    const struct zrec *x = a, *y = b;
    int c = name_cmp(x->owner, x->owner_len, y->owner, y->owner_len);

    if (c != 0)
        return c;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    c = name_cmp(x->rdata, x->rdlen, y->rdata, y->rdlen);
    if (c != 0)
        return c;
    return x->line < y->line ? -1 : (x->line > y->line ? 1 : 0);
}

static int zname_cmp(const void *a, const void *b)
{
    const struct zname *x = a, *y = b;

    return name_cmp(x->name, x->len, y->name, y->len);
}

static bool same_owner(const struct zrec *a, const struct zrec *b)
{
    return a->owner_len == b->owner_len && memcmp(a->owner, b->owner, a->owner_len) == 0;
}

static int later_line(const struct zrec *a, const struct zrec *b)
{
    return a->line > b->line ? a->line : b->line;
}

/* Drops duplicate RRs (RFC 2181 §5) and checks what must hold per owner name. */
static int check_records(struct zload *zl)
{
    size_t out = 0;

    if (zl->rec_count > 1)
        qsort(zl->recs, zl->rec_count, sizeof(*zl->recs), rec_cmp);
    for (size_t i = 0; i < zl->rec_count; i++) {
        struct zrec *r = &zl->recs[i];
        if (out > 0) {
            struct zrec *p = &zl->recs[out - 1];
            if (same_owner(p, r) && p->type == r->type && p->rdlen == r->rdlen &&
                memcmp(p->rdata, r->rdata, r->rdlen) == 0) {
                if (r->ttl < p->ttl)
                    p->ttl = r->ttl;
                free(r->rdata);
                continue;
            }
        }
        zl->recs[out++] = *r;
    }
    zl->rec_count = out;

    for (size_t i = 0; i < zl->rec_count; i++) {
        const struct zrec *r = &zl->recs[i];
        const struct zrec *prev = i > 0 ? &zl->recs[i - 1] : NULL;
        bool at_apex =
            r->owner_len == zl->origin_len && memcmp(r->owner, zl->origin, zl->origin_len) == 0;
        if (r->type == DNS_TYPE_SOA && !at_apex)
            return load_fail(zl, r->line, CM_ECONFIG, "SOA record outside the apex");
        if (r->type == DNS_TYPE_SOA && prev != NULL && prev->type == DNS_TYPE_SOA)
            return load_fail(zl, later_line(prev, r), CM_ECONFIG, "more than one SOA record");
        if (r->type != DNS_TYPE_CNAME)
            continue;
        if (prev != NULL && prev->type == DNS_TYPE_CNAME && same_owner(prev, r))
            return load_fail(zl, later_line(prev, r), CM_ECONFIG, "more than one CNAME at a name");
        /* records of one owner are contiguous: look at the neighbours */
        size_t first = i;
        while (first > 0 && same_owner(&zl->recs[first - 1], r))
            first--;
        for (size_t j = first; j < zl->rec_count && same_owner(&zl->recs[j], r); j++) {
            const struct zrec *o = &zl->recs[j];
            if (o->type == DNS_TYPE_CNAME || o->type == TYPE_RRSIG || o->type == TYPE_NSEC)
                continue;
            return load_fail(zl, later_line(o, r), CM_ECONFIG,
                             "CNAME and other data at the same name (RFC 1034 §3.6.2)");
        }
    }
    return CM_OK;
}

/* All owner names plus every empty non-terminal up to the apex, sorted, unique. */
static int collect_names(struct zload *zl, struct zname **out, size_t *count)
{
    size_t cap = 0, n = 0;
    struct zname *names;

    for (size_t i = 0; i < zl->rec_count; i++)
        cap += dns_name_label_count(zl->recs[i].owner) + 1;
    names = malloc((cap > 0 ? cap : 1) * sizeof(*names));
    if (names == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < zl->rec_count; i++) {
        const struct zrec *r = &zl->recs[i];
        if (i > 0 && same_owner(&zl->recs[i - 1], r))
            continue;
        for (size_t o = 0; r->owner_len - o >= zl->origin_len; o += 1u + r->owner[o]) {
            names[n].name = r->owner + o;
            names[n].len = (uint8_t)(r->owner_len - o);
            n++;
            if (r->owner_len - o == zl->origin_len)
                break;
        }
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), zname_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (u > 0 && zname_cmp(&names[u - 1], &names[i]) == 0)
            continue;
        names[u++] = names[i];
    }
    *out = names;
    *count = u;
    return CM_OK;
}

static void hash_insert(struct dns_zone *z, size_t idx)
{
    size_t s = z->hashes[idx] & z->slot_mask;

    while (z->slots[s] != 0)
        s = (s + 1) & z->slot_mask;
    z->slots[s] = (uint32_t)(idx + 1);
}

static int alloc_zone(struct dns_zone *z, size_t names_bytes, size_t rrset_count,
                      size_t rdata_bytes)
{
    size_t slots = 16;

    while (slots < z->node_count * 2)
        slots *= 2;
    z->slot_mask = slots - 1;
    z->nodes = calloc(z->node_count > 0 ? z->node_count : 1, sizeof(*z->nodes));
    z->hashes = calloc(z->node_count > 0 ? z->node_count : 1, sizeof(*z->hashes));
    z->names = malloc(names_bytes > 0 ? names_bytes : 1);
    z->rrsets = calloc(rrset_count > 0 ? rrset_count : 1, sizeof(*z->rrsets));
    z->rdata = malloc(rdata_bytes > 0 ? rdata_bytes : 1);
    z->slots = calloc(slots, sizeof(*z->slots));
    if (z->nodes == NULL || z->hashes == NULL || z->names == NULL || z->rrsets == NULL ||
        z->rdata == NULL || z->slots == NULL)
        return CM_ENOMEM;
    return CM_OK;
}

/* Appends the RRset recs[*i..] (same owner and type) to the zone arrays. */
static int add_rrset(struct zload *zl, struct dns_zone *z, size_t *i, size_t *rs_idx,
                     size_t *rd_off)
{
    const struct zrec *first = &zl->recs[*i];
    struct dns_rrset *rs = &z->rrsets[(*rs_idx)++];
    size_t start = *rd_off;
    uint32_t ttl = first->ttl;
    bool ttl_differs = false;
    size_t j = *i;

    for (; j < zl->rec_count && same_owner(&zl->recs[j], first) && zl->recs[j].type == first->type;
         j++) {
        const struct zrec *r = &zl->recs[j];
        if (r->ttl != ttl)
            ttl_differs = true;
        if (r->ttl < ttl)
            ttl = r->ttl;
        if (*rd_off - start + 2 + r->rdlen > 0xFFFF || j - *i >= 0xFFFF)
            return load_fail(zl, r->line, CM_ECONFIG, "RRset too large");
        z->rdata[(*rd_off)++] = (uint8_t)(r->rdlen >> 8);
        z->rdata[(*rd_off)++] = (uint8_t)r->rdlen;
        memcpy(z->rdata + *rd_off, r->rdata, r->rdlen);
        *rd_off += r->rdlen;
    }
    if (ttl_differs)
        cm_log_warn("zone %s:%d: TTLs differ within an RRset, using the smallest (%u)", zl->path,
                    first->line, ttl);
    rs->type = first->type;
    rs->rclass = DNS_CLASS_IN;
    rs->ttl = ttl;
    rs->count = (uint16_t)(j - *i);
    rs->rdata_len = (uint16_t)(*rd_off - start);
    rs->rdata = z->rdata + start;
    *i = j;
    return CM_OK;
}

static int build_nodes(struct zload *zl, struct dns_zone *z, const struct zname *names)
{
    size_t rec = 0, rs_idx = 0, rd_off = 0, name_off = 0;
    int rc;

    for (size_t n = 0; n < z->node_count; n++) {
        struct dns_node *node = &z->nodes[n];
        memcpy(z->names + name_off, names[n].name, names[n].len);
        node->name = z->names + name_off;
        node->name_len = names[n].len;
        name_off += names[n].len;
        node->rrsets = &z->rrsets[rs_idx];
        while (rec < zl->rec_count && zl->recs[rec].owner_len == node->name_len &&
               memcmp(zl->recs[rec].owner, node->name, node->name_len) == 0) {
            rc = add_rrset(zl, z, &rec, &rs_idx, &rd_off);
            if (rc != CM_OK)
                return rc;
            node->rrset_count++;
        }
        if (node->rrset_count > 0)
            z->owner_count++;
        bool is_apex = node->name_len == zl->origin_len;
        if (is_apex)
            z->apex = node;
        if (!is_apex && dns_node_rrset(node, DNS_TYPE_NS) != NULL) {
            node->is_delegation = true;
            z->has_cuts = true;
        }
        if (node->name[0] == 1 && node->name[1] == '*')
            z->has_wildcards = true;
        z->hashes[n] = cm_fnv1a32(CM_FNV1A32_INIT, node->name, node->name_len);
        hash_insert(z, n);
    }
    return CM_OK;
}

static int compile(struct zload *zl, struct dns_zone *z)
{
    struct zname *names = NULL;
    size_t names_bytes = 0, rrset_count = 0, rdata_bytes = 0;
    int rc;

    rc = collect_names(zl, &names, &z->node_count);
    if (rc != CM_OK)
        goto out;
    for (size_t i = 0; i < z->node_count; i++)
        names_bytes += names[i].len;
    for (size_t i = 0; i < zl->rec_count; i++) {
        if (i == 0 || !same_owner(&zl->recs[i - 1], &zl->recs[i]) ||
            zl->recs[i - 1].type != zl->recs[i].type)
            rrset_count++;
        rdata_bytes += 2u + zl->recs[i].rdlen;
    }
    rc = alloc_zone(z, names_bytes, rrset_count, rdata_bytes);
    if (rc == CM_OK)
        rc = build_nodes(zl, z, names);
out:
    free(names);
    return rc;
}

static int check_apex(struct zload *zl, struct dns_zone *z)
{
    char text[DNS_NAME_MAX * 4 + 8];

    name_to_text(zl->origin, text, sizeof(text));
    z->soa = z->apex != NULL ? dns_node_rrset(z->apex, DNS_TYPE_SOA) : NULL;
    if (z->soa == NULL)
        return load_fail(zl, 0, CM_ECONFIG, "no SOA record at the apex %s", text);
    if (dns_node_rrset(z->apex, DNS_TYPE_NS) == NULL)
        return load_fail(zl, 0, CM_ECONFIG, "no NS records at the apex %s", text);
    if (z->soa->rdata_len < 2 + 20)
        return load_fail(zl, 0, CM_ECONFIG, "invalid SOA record");
    const uint8_t *min = z->soa->rdata + z->soa->rdata_len - 4;
    uint32_t minimum =
        (uint32_t)min[0] << 24 | (uint32_t)min[1] << 16 | (uint32_t)min[2] << 8 | min[3];
    z->negative_ttl = minimum < z->soa->ttl ? minimum : z->soa->ttl;
    z->apex_labels = dns_name_label_count(z->apex->name);
    return CM_OK;
}

static void zone_free(struct dns_zone *z)
{
    if (z == NULL)
        return;
    free(z->nodes);
    free(z->hashes);
    free(z->names);
    free(z->rrsets);
    free(z->rdata);
    free(z->slots);
    free(z);
}

/* The whole file into *@out (owned, NUL-terminated) and zl->text; @fp rewound for ldns. */
static int read_text(struct zload *zl, FILE *fp, char **out)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap), *n;

    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len - 1, fp);
        if (ferror(fp)) {
            free(buf);
            return load_fail(zl, 0, CM_EIO, "cannot read");
        }
        if (feof(fp))
            break;
        if (cap >= ZONE_TEXT_MAX) {
            free(buf);
            return load_fail(zl, 0, CM_ETOOBIG, "larger than %d MB", ZONE_TEXT_MAX >> 20);
        }
        cap *= 2;
        n = realloc(buf, cap);
        if (n == NULL)
            free(buf);
        buf = n;
    }
    if (buf == NULL)
        return CM_ENOMEM;
    buf[len] = '\0';
    rewind(fp);
    *out = buf;
    zl->text = buf;
    zl->text_len = len;
    return CM_OK;
}

int dns_zone_load(const char *path, const char *origin, struct dns_zone **out, char *err,
                  size_t errlen)
{
    struct zload zl = {.path = path, .err = err, .errlen = errlen};
    struct dns_zone *z = NULL;
    char *text = NULL, msg[256];
    FILE *fp;
    int rc, line;

    if (errlen > 0)
        err[0] = '\0';
    fp = fopen(path, "r");
    if (fp == NULL) {
        rc = cm_err_from_errno(errno);
        load_fail(&zl, 0, rc, "cannot open: %s", cm_strerror(rc));
        goto out;
    }
    rc = read_text(&zl, fp, &text);
    if (rc != CM_OK)
        goto out;
    line = dns_zone_diag_parens(zl.text, zl.text_len, msg, sizeof(msg));
    if (line > 0) {
        rc = load_fail(&zl, line, CM_EPARSE, "%s", msg);
        goto out;
    }
    rc = read_records(&zl, fp, origin);
    if (rc == CM_OK)
        rc = check_records(&zl);
    if (rc != CM_OK)
        goto out;
    z = calloc(1, sizeof(*z));
    if (z == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    atomic_init(&z->refs, 1);
    rc = compile(&zl, z);
    if (rc == CM_OK)
        rc = check_apex(&zl, z);
    if (rc != CM_OK)
        goto out;
    *out = z;
    z = NULL;
out:
    if (rc == CM_ENOMEM && errlen > 0 && err[0] == '\0')
        load_fail(&zl, 0, rc, "out of memory");
    zone_free(z);
    for (size_t i = 0; i < zl.rec_count; i++)
        free(zl.recs[i].rdata);
    free(zl.recs);
    free(text);
    if (fp != NULL)
        fclose(fp);
    return rc;
}

struct dns_zone *dns_zone_ref(struct dns_zone *zone)
{
    atomic_fetch_add_explicit(&zone->refs, 1, memory_order_relaxed);
    return zone;
}

void dns_zone_unref(struct dns_zone *zone)
{
    if (zone == NULL)
        return;
    if (atomic_fetch_sub_explicit(&zone->refs, 1, memory_order_acq_rel) != 1)
        return;
    zone_free(zone);
}

const struct dns_node *dns_zone_apex(const struct dns_zone *zone)
{
    return zone->apex;
}

const struct dns_rrset *dns_zone_soa(const struct dns_zone *zone)
{
    return zone->soa;
}

uint32_t dns_zone_negative_ttl(const struct dns_zone *zone)
{
    return zone->negative_ttl;
}

size_t dns_zone_name_count(const struct dns_zone *zone)
{
    return zone->owner_count;
}

const struct dns_rrset *dns_node_rrset(const struct dns_node *node, uint16_t type)
{
    for (uint16_t i = 0; i < node->rrset_count; i++) {
        if (node->rrsets[i].type == type)
            return &node->rrsets[i];
    }
    return NULL;
}

const struct dns_node *dns_zone_lookup_exact(const struct dns_zone *zone, const uint8_t *name,
                                             size_t len)
{
    uint32_t h = cm_fnv1a32(CM_FNV1A32_INIT, name, len);

    for (size_t s = h & zone->slot_mask;; s = (s + 1) & zone->slot_mask) {
        uint32_t v = zone->slots[s];
        if (v == 0)
            return NULL;
        const struct dns_node *n = &zone->nodes[v - 1];
        if (zone->hashes[v - 1] == h && n->name_len == len && memcmp(n->name, name, len) == 0)
            return n;
    }
}

/* "*." + @encloser, looked up: the source of synthesis (RFC 4592 §3.3.1). */
static const struct dns_node *wildcard_at(const struct dns_zone *zone,
                                          const struct dns_node *encloser)
{
    uint8_t wc[DNS_NAME_MAX];

    if ((size_t)encloser->name_len + 2 > DNS_NAME_MAX)
        return NULL;
    wc[0] = 1;
    wc[1] = '*';
    memcpy(wc + 2, encloser->name, encloser->name_len);
    return dns_zone_lookup_exact(zone, wc, (size_t)encloser->name_len + 2);
}

enum dns_zone_match dns_zone_find(const struct dns_zone *zone, const uint8_t *qname,
                                  size_t qname_len, const struct dns_node **node)
{
    uint8_t offs[DNS_NAME_MAX / 2 + 1];
    unsigned n = 0;
    size_t o = 0;

    if (qname_len == 0 || qname_len > DNS_NAME_MAX)
        return DNS_ZONE_OUTSIDE;
    while (o < qname_len && qname[o] != 0 && n < sizeof(offs)) {
        offs[n++] = (uint8_t)o;
        o += 1u + qname[o];
    }
    if (o + 1 != qname_len || n < zone->apex_labels)
        return DNS_ZONE_OUTSIDE;
    unsigned below = n - zone->apex_labels; /* labels below the apex */
    size_t apex_off = below < n ? offs[below] : o;
    if (qname_len - apex_off != zone->apex->name_len ||
        memcmp(qname + apex_off, zone->apex->name, zone->apex->name_len) != 0)
        return DNS_ZONE_OUTSIDE;

    if (!zone->has_cuts && !zone->has_wildcards) {
        *node = dns_zone_lookup_exact(zone, qname, qname_len);
        return *node != NULL ? DNS_ZONE_FOUND : DNS_ZONE_NXDOMAIN;
    }
    /* Walk down from the apex: the highest cut wins, and since every empty
     * non-terminal is a node, the first missing name means NXDOMAIN. */
    const struct dns_node *encloser = zone->apex;
    for (unsigned i = below; i-- > 0;) {
        const struct dns_node *nd =
            dns_zone_lookup_exact(zone, qname + offs[i], qname_len - offs[i]);
        if (nd == NULL) {
            const struct dns_node *wc = zone->has_wildcards ? wildcard_at(zone, encloser) : NULL;
            if (wc == NULL)
                return DNS_ZONE_NXDOMAIN;
            *node = wc;
            return DNS_ZONE_FOUND;
        }
        if (nd->is_delegation) {
            *node = nd;
            return DNS_ZONE_DELEGATED;
        }
        encloser = nd;
    }
    *node = encloser;
    return DNS_ZONE_FOUND;
}
