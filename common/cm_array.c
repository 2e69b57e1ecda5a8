/* SPDX-License-Identifier: Apache-2.0 */
/* cm_array.c -- growable arrays (see cm_array.h). */
#include "common/cm_array.h"

#include <stdint.h>
#include <stdlib.h>

#include "common/cm_err.h"

int cm_array_grow(void *pp, size_t *cap, size_t need, size_t elsize)
{
    void **p = pp;
    size_t ncap = *cap > 0 ? *cap : 16;
    void *np;

    if (need <= *cap)
        return CM_OK;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elsize)
            return CM_ENOMEM;
        ncap *= 2;
    }
    np = realloc(*p, ncap * elsize);
    if (np == NULL)
        return CM_ENOMEM;
    *p = np;
    *cap = ncap;
    return CM_OK;
}
