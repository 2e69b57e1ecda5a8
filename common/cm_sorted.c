/* SPDX-License-Identifier: Apache-2.0 */
/* cm_sorted.c -- binary search in a sorted array (cm_sorted.h). */
#include "common/cm_sorted.h"

size_t cm_lower_bound(const void *base, size_t n, size_t size, const void *key,
                      cm_sorted_cmp_fn *cmp, bool *found)
{
    const char *b = base;
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (cmp(b + mid * size, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (found != NULL)
        *found = lo < n && cmp(b + lo * size, key) == 0;
    return lo;
}
