/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_jdump.h -- a JSON value written as json_dumps(v, JSON_COMPACT |
 * JSON_SORT_KEYS) writes it, byte for byte, without jansson's per-character
 * callbacks and key arrays: for the values written often (the health
 * report's entries). What it leaves to jansson (strings with bytes outside
 * ASCII, a locale's decimal comma) is refused with
 * CM_ENOTSUP, and the caller calls jansson.
 */
#ifndef COMMON_CM_JDUMP_H
#define COMMON_CM_JDUMP_H

#include <jansson.h>

#include "common/cm_str.h"

/**
 * Appends the text of @v (an object or an array) to @b. CM_OK; CM_ENOMEM or
 * CM_ETOOBIG (b->max); CM_ENOTSUP: @v is neither, holds what only jansson
 * writes (see above), or nests deeper than 64. On an error @b holds a
 * partial text: the caller truncates it back.
 */
int cm_jdump(const json_t *v, struct cm_buf *b);

#endif
