/* SPDX-License-Identifier: Apache-2.0 */
/* squote.h -- unit tests write JSON with ' for " to stay readable; this swaps them back. */
#ifndef TESTS_UNIT_SQUOTE_H
#define TESTS_UNIT_SQUOTE_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/** An owned copy of @s with every ' turned into "; NULL on allocation failure. */
static inline char *test_squote(const char *s)
{
    char *out = strdup(s);

    for (char *c = out; c != NULL && *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    return out;
}

/** @s (' for ") parsed as JSON: a new reference, NULL when it does not parse. */
static inline json_t *test_squote_json(const char *s)
{
    char *text = test_squote(s);
    json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

    free(text);
    return v;
}

#endif /* TESTS_UNIT_SQUOTE_H */
