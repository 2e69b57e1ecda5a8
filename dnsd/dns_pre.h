/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_pre.h -- precompiled responses: the answer and authority sections of
 * every federated answer, written once per view with the query path's own
 * writer and copied by the query path instead of being written again.
 *
 * A response is  header | question | sections | OPT . The header and the
 * question come from the query (its ID, RD and CD, the question with the
 * client's letter case), the OPT from the query's EDNS (ECS echoed with its
 * scope, cookie, NSID): those are patched per query. The sections depend
 * only on what the table answers, and are compiled here as "parts":
 *
 *   part: bytes | counts (answer, authority) | relocations
 *
 * Names inside a part are compressed as the writer compresses them: an
 * owner that is the query name is the pointer 0xC00C, and every other
 * pointer is kept relative to where the part starts in the message, which
 * is 16 + the query name's length (the apex, a suffix of every federated
 * name, sits 4 + its length before it). Copying a part is a memcpy and one
 * 16-bit write per relocation.
 *
 *   A part per variant and type:   A / AAAA records of a member (or of a
 *                                  fail-open set), owner 0xC00C
 *   A NODATA part per TTL:         the apex SOA in authority (RFC 2308);
 *                                  the zone's negative TTL's also answers
 *                                  NXDOMAIN for names outside the table
 *
 * A part is exact: the bytes the writer would produce for any name that may
 * use it (dns_pre_nodata_ok tells, per name, whether the SOA part compresses
 * as the writer would for that name). CNAME variants (chased within the
 * zone), answers that do not fit the client's size (TC), and names outside
 * the federated table other than NXDOMAIN take the writer's path: dns_pre
 * only makes the common answers cheaper, never different (the unit tests
 * compare the two paths byte for byte).
 *
 * Built with the view (dns_view_new), immutable, read by every worker
 * without locks. The parts are kept per service of the table: a view built
 * after a change (dns_pre_update) shares the parts of every service whose
 * answers it shares with the view before (dns_fed_update), and compiles
 * the others. They embed the zone's SOA (NODATA), so another zone (a zone
 * file reload, a new serial) compiles everything again.
 */
#ifndef DNSD_DNS_PRE_H
#define DNSD_DNS_PRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dns_fed;
struct dns_pre;
struct dns_zone;

struct dns_pre_reloc;

/* One precompiled part. Borrowed from the dns_pre that returned it. */
struct dns_pre_part {
    const uint8_t *bytes;               /* its bytes */
    const struct dns_pre_reloc *relocs; /* its relocations */
    uint32_t off;                       /* build only: bytes, relocs as offsets */
    uint32_t reloc;
    uint16_t len;         /* bytes */
    uint16_t reloc_count; /* relocations */
    uint16_t an, ns;      /* records in the answer and authority sections */
};

#define DNS_PRE_NONE UINT32_MAX

/*
 * What the precompiled path needs of a federated name's answer for clients
 * of one region, kept per service, slot (dns_fed_place) and region in one
 * 32-byte record, so that a query reads one line for it instead of the
 * table's chain (block, slot, region map, answer, variant) and the part's
 * index. Built from dns_fed_slot_answer with the parts: the same decision.
 */
struct dns_pre_hot {
    const struct dns_pre_part *part[3]; /* A, AAAA, any other type: the variant's
                                           records (DNS_PRE_HOT_REC) or the answer's
                                           NODATA part; NULL: the writer's path */
    int32_t member;                     /* dns_fed_answer.member */
    uint8_t flags;                      /* DNS_PRE_HOT_* */
};

#define DNS_PRE_HOT_REC(k)      (1u << (k)) /* part[k] holds records, not NODATA */
#define DNS_PRE_HOT_FAIL_OPEN   0x08u
#define DNS_PRE_HOT_FAIL_CLOSED 0x10u
#define DNS_PRE_HOT_REGION_DEP  0x20u /* dns_fed_answer.region_dependent */
#define DNS_PRE_HOT_FULL        0x40u /* a CNAME or tied members: look the answer up */

/**
 * Compiles the parts of every answer in @fed, with the SOA of @zone for
 * negative answers. @fed and @zone must outlive the result (the view holds
 * them). CM_OK, CM_ENOMEM; *out = NULL when there is nothing to compile
 * (@fed or @zone NULL).
 */
int dns_pre_build(const struct dns_fed *fed, const struct dns_zone *zone, struct dns_pre **out);
/**
 * As dns_pre_build, taking from @prev (NULL: nothing), compiled from
 * @prev_fed for the same @zone, the parts of every service of @fed whose
 * answers @fed shares with @prev_fed (dns_fed_reused_from). @prev and
 * @prev_fed are only read.
 */
int dns_pre_update(const struct dns_pre *prev, const struct dns_fed *prev_fed,
                   const struct dns_fed *fed, const struct dns_zone *zone, struct dns_pre **out);

/** Services whose parts the build compiled, and those it took from the previous. */
void dns_pre_counts(const struct dns_pre *pre, size_t *built, size_t *shared);

/** Accepts NULL. */
void dns_pre_free(struct dns_pre *pre);

/**
 * The part answering @variant_id of @service (dns_fed_answer.variant_id and
 * .service) for A (@aaaa false) or AAAA, or NULL when the variant has no
 * such records.
 */
const struct dns_pre_part *dns_pre_variant(const struct dns_pre *pre, size_t service,
                                           uint32_t variant_id, bool aaaa);

/**
 * The record of the name at @slot of @service (dns_fed_find_hashed) for
 * clients of @region (another than the table's: its default region); NULL
 * when there is none (the caller looks the answer up).
 */
const struct dns_pre_hot *dns_pre_hot(const struct dns_pre *pre, int service, uint32_t slot,
                                      unsigned region);

/** The NODATA part of @answer_id of @service; NULL when it could not be compiled. */
const struct dns_pre_part *dns_pre_nodata(const struct dns_pre *pre, size_t service,
                                          uint32_t answer_id);

/** The NODATA part of an empty non-terminal (the zone's negative TTL). */
const struct dns_pre_part *dns_pre_ent(const struct dns_pre *pre);

/**
 * The authority section of an NXDOMAIN for @name (lowercased wire, @len
 * bytes), a name below the apex that the table does not hold and the zone
 * has nothing at: the apex SOA with the zone's negative TTL, as the ENT
 * part. NULL when that part would not compress as the writer does for
 * @name (the rule of dns_pre_nodata_ok, applied at query time).
 */
const struct dns_pre_part *dns_pre_nxdomain(const struct dns_pre *pre, const uint8_t *name,
                                            size_t len);

/** Whether the NODATA parts are exact for the federated name @name_id. */
bool dns_pre_nodata_ok(const struct dns_pre *pre, uint32_t name_id);

/**
 * Copies @part to @out for a message whose sections start at @base (16 +
 * the query name's length) and returns its length. The caller checks the
 * room (part->len bytes).
 */
size_t dns_pre_copy(const struct dns_pre_part *part, uint8_t *out, size_t base);

/** Bytes held (parts, relocations, indexes), for logs and benchmarks. */
size_t dns_pre_memory(const struct dns_pre *pre);

#endif /* DNSD_DNS_PRE_H */
