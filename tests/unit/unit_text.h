/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unit_text.h -- the unit tests write JSON with ' for " (it reads better in
 * C string literals); unit_dq() turns it back into JSON, unit_json() parses it.
 */
#ifndef TESTS_UNIT_UNIT_TEXT_H
#define TESTS_UNIT_UNIT_TEXT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

/* An owned copy of @s with every ' made a ". */
static inline char *unit_dq(const char *s)
{
    char *out = strdup(s);

    assert_non_null(out);
    for (char *c = out; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    return out;
}

/* @squoted (' for ") parsed as JSON: a new reference; the test fails when it does not parse. */
static inline json_t *unit_json(const char *squoted)
{
    char *text = unit_dq(squoted);
    json_t *v = json_loads(text, 0, NULL);

    free(text);
    if (v == NULL)
        fail_msg("bad test JSON: %s", squoted);
    return v;
}

#endif /* TESTS_UNIT_UNIT_TEXT_H */
