/* SPDX-License-Identifier: Apache-2.0 */
/* dns_chunks.c -- shared ownership of per-service parts (see dns_chunks.h). */
#include "dnsd/dns_chunks.h"

#include <stdlib.h>

#include "common/cm_err.h"

static size_t chunk_count(size_t parts)
{
    return (parts + DNS_CHUNK - 1) / DNS_CHUNK;
}

/* Whether chunk @c of @prev holds exactly the parts of @src / @part there. */
static bool chunk_kept(const struct dns_chunks *prev, size_t c, void *const *part,
                       const uint8_t *src, size_t count)
{
    size_t lo = c * DNS_CHUNK, hi = lo + DNS_CHUNK < count ? lo + DNS_CHUNK : count;

    if (prev == NULL || c >= chunk_count(prev->count) || prev->chunk[c] == NULL)
        return false;
    if (hi - lo != (prev->count - lo < DNS_CHUNK ? prev->count - lo : DNS_CHUNK))
        return false; /* the chunk has another number of services */
    for (size_t i = lo; i < hi; i++) {
        if (src[i] == DNS_CHUNK_NEW || prev->chunk[c]->part[i - lo] != part[i])
            return false; /* part[i] is NULL for NONE */
    }
    return true;
}

int dns_chunks_assemble(struct dns_chunks *v, const struct dns_chunks *prev,
                        const struct dns_chunk_ops *ops, void *const *part, const uint8_t *src,
                        size_t count)
{
    size_t n = chunk_count(count);

    v->ops = ops;
    v->count = count;
    v->shared = 0;
    v->chunk = calloc(n > 0 ? n : 1, sizeof(*v->chunk));
    if (v->chunk == NULL)
        return CM_ENOMEM;
    for (size_t c = 0; c < n; c++) {
        size_t lo = c * DNS_CHUNK;
        struct dns_chunk *ch;
        if (chunk_kept(prev, c, part, src, count)) {
            atomic_fetch_add_explicit(&prev->chunk[c]->refs, 1, memory_order_relaxed);
            v->chunk[c] = prev->chunk[c];
            v->shared++;
            continue;
        }
        ch = calloc(1, sizeof(*ch));
        if (ch == NULL)
            return CM_ENOMEM;
        atomic_init(&ch->refs, 1);
        for (size_t i = lo; i < count && i < lo + DNS_CHUNK; i++) {
            if (src[i] == DNS_CHUNK_LENT)
                ops->ref(part[i]);
            ch->part[i - lo] = src[i] != DNS_CHUNK_NONE ? part[i] : NULL;
        }
        v->chunk[c] = ch;
    }
    return CM_OK;
}

void dns_chunks_drop_new(const struct dns_chunks *v, const struct dns_chunk_ops *ops,
                         void *const *part, const uint8_t *src, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        size_t c = i / DNS_CHUNK;
        bool owned =
            v != NULL && v->chunk != NULL && c < chunk_count(v->count) && v->chunk[c] != NULL;
        if (src[i] == DNS_CHUNK_NEW && !owned)
            ops->unref(part[i]);
    }
}

void dns_chunks_fini(struct dns_chunks *v)
{
    for (size_t c = 0; v->chunk != NULL && c < chunk_count(v->count); c++) {
        struct dns_chunk *ch = v->chunk[c];
        if (ch == NULL || atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
            continue;
        for (size_t i = 0; i < DNS_CHUNK; i++) {
            if (ch->part[i] != NULL)
                v->ops->unref(ch->part[i]);
        }
        free(ch);
    }
    free(v->chunk);
    v->chunk = NULL;
    v->count = 0;
}
