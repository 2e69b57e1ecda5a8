/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_array.h -- growable arrays for the table builds: the capacity doubles
 * (from 16) until it holds what is needed, with the size arithmetic checked.
 * Build-time only; never on a query path.
 */
#ifndef COMMON_CM_ARRAY_H
#define COMMON_CM_ARRAY_H

#include <stddef.h>

/**
 * Makes the array *@pp (a pointer to the array pointer, @elsize bytes per
 * element, *@cap elements allocated) hold at least @need elements, moving it
 * with realloc when it must grow. CM_OK, or CM_ENOMEM with the array as it
 * was.
 */
int cm_array_grow(void *pp, size_t *cap, size_t need, size_t elsize);

#endif /* COMMON_CM_ARRAY_H */
