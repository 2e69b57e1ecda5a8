/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_sorted.h -- binary search in a sorted array: where a key is, or where
 * it would go (the intents by id, an intent view's overrides, etcd's keys).
 */
#ifndef COMMON_CM_SORTED_H
#define COMMON_CM_SORTED_H

#include <stdbool.h>
#include <stddef.h>

/* Orders element @elem against @key as strcmp() does (<0: the element is below). */
typedef int cm_sorted_cmp_fn(const void *elem, const void *key);

/**
 * The index of the first of the @n elements of @size bytes at @base (sorted
 * by @cmp) that is not below @key: @n when all are. *@found (when not NULL)
 * says whether that element equals @key.
 */
size_t cm_lower_bound(const void *base, size_t n, size_t size, const void *key,
                      cm_sorted_cmp_fn *cmp, bool *found);

#endif /* COMMON_CM_SORTED_H */
