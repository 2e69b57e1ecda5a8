/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_fedsvc.h -- the services a host cluster adds to the state document
 * (members_from.services: KubeFed's FederatedServices and ServiceDNSRecords),
 * with the rules the document carries for each: placement, ttl_s,
 * allow_without_endpoints (docs/architecture.md, "Service rules").
 *
 * hc_registry computes a set from the host cluster's objects; hc_report
 * reads it (borrowed) when it builds a document. A set is a plain sorted
 * array: built once per change, never modified after.
 */
#ifndef HEALTH_HC_FEDSVC_H
#define HEALTH_HC_FEDSVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hc_fedsvc {
    char *key;  /* owned "ns/name" */
    char *ns;   /* owned */
    char *name; /* owned */
    /* The members the service may be answered with (a FederatedService's
     * placement); !has_placement: every member. */
    bool has_placement;
    char **placement; /* owned names, sorted, unique */
    size_t placement_count;
    uint32_t ttl_s;          /* a ServiceDNSRecord's recordTTL (1..86400), 0 = dnsd.ttl_s */
    bool allow_no_endpoints; /* its allowServiceWithoutEndpoints */
};

struct hc_fedsvcs {
    struct hc_fedsvc *v; /* owned, sorted by key, keys unique */
    size_t count;
};

/** Frees the services and the set. Accepts NULL. */
void hc_fedsvcs_free(struct hc_fedsvcs *s);
/** The service ns/name of @s (may be NULL), or NULL. */
const struct hc_fedsvc *hc_fedsvcs_find(const struct hc_fedsvcs *s, const char *ns,
                                        const char *name);
/** Same services with the same rules (either may be NULL = empty). */
bool hc_fedsvcs_equal(const struct hc_fedsvcs *a, const struct hc_fedsvcs *b);

#endif /* HEALTH_HC_FEDSVC_H */
