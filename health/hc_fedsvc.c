/* SPDX-License-Identifier: Apache-2.0 */
/* hc_fedsvc.c -- a set of registry services and their rules (hc_fedsvc.h). */
#include "health/hc_fedsvc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hc_fedsvcs_free(struct hc_fedsvcs *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->count; i++) {
        struct hc_fedsvc *f = &s->v[i];

        free(f->key);
        free(f->ns);
        free(f->name);
        for (size_t k = 0; k < f->placement_count; k++)
            free(f->placement[k]);
        free(f->placement);
    }
    free(s->v);
    free(s);
}

static int cmp_key(const void *k, const void *e)
{
    return strcmp(k, ((const struct hc_fedsvc *)e)->key);
}

const struct hc_fedsvc *hc_fedsvcs_find(const struct hc_fedsvcs *s, const char *ns,
                                        const char *name)
{
    char key[512];
    int n;

    if (s == NULL || s->count == 0)
        return NULL;
    n = snprintf(key, sizeof(key), "%s/%s", ns, name);
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    return bsearch(key, s->v, s->count, sizeof(*s->v), cmp_key);
}

static bool same_svc(const struct hc_fedsvc *a, const struct hc_fedsvc *b)
{
    if (strcmp(a->key, b->key) != 0 || a->has_placement != b->has_placement ||
        a->placement_count != b->placement_count || a->ttl_s != b->ttl_s ||
        a->allow_no_endpoints != b->allow_no_endpoints)
        return false;
    for (size_t i = 0; i < a->placement_count; i++) {
        if (strcmp(a->placement[i], b->placement[i]) != 0)
            return false;
    }
    return true;
}

bool hc_fedsvcs_equal(const struct hc_fedsvcs *a, const struct hc_fedsvcs *b)
{
    size_t na = a != NULL ? a->count : 0, nb = b != NULL ? b->count : 0;

    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (!same_svc(&a->v[i], &b->v[i]))
            return false;
    }
    return true;
}
