/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_intent.c -- an operator intent (the body of PUT /v1/intents/ID) on
 * arbitrary bytes, and a state file's "intents" array. What parses must put
 * into a set and compile into a view; its canonical text must parse to the
 * same intent; removal and pruning must keep the set well formed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "tests/fuzz/fuzz_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 2026-11-21T07:00:00Z */
#define NOW INT64_C(1795244400)

static void one(const uint8_t *data, size_t size)
{
    char err[CM_INTENT_ERR_MAX];
    struct cm_intent *in = NULL, *again = NULL;
    struct cm_intents *s = cm_intents_new(), *n = NULL, *r = NULL, *p = NULL;
    struct cm_intent_view *v = NULL;
    char id[CM_INTENT_ID_MAX + 1];

    if (s == NULL)
        abort();
    if (cm_intent_parse_text((const char *)data, size, fuzz_conf(), &in, err, sizeof(err)) !=
        CM_OK) {
        cm_intents_free(s);
        return;
    }
    if (cm_intent_parse_text(in->canon, strlen(in->canon), fuzz_conf(), &again, err, sizeof(err)) !=
            CM_OK ||
        strcmp(again->canon, in->canon) != 0)
        abort();
    cm_intent_unref(again);
    memcpy(id, in->id, strlen(in->id) + 1);
    if (cm_intents_put(s, in, NOW, &n, err, sizeof(err)) == CM_OK && n != NULL) {
        if (cm_intents_count(n) != 1 || cm_intents_find(n, id) == NULL)
            abort();
        if (cm_intent_view_build(n, fuzz_conf(), NOW, &v) != CM_OK)
            abort();
        if (cm_intents_remove(n, id, "fuzz", NOW, &r, err, sizeof(err)) != CM_OK)
            abort();
        if (cm_intents_prune(r != NULL ? r : n, NOW + 30 * 86400, &p) != CM_OK)
            abort();
    }
    cm_intent_view_free(v);
    cm_intents_free(p);
    cm_intents_free(r);
    cm_intents_free(n);
    cm_intents_free(s);
}

/* The same bytes as a state file's "intents": whatever loads is a set. */
static void many(const uint8_t *data, size_t size)
{
    json_t *arr = json_loadb((const char *)data, size, 0, NULL);
    struct cm_intents *s = NULL;

    if (json_is_array(arr) && cm_intents_load(arr, fuzz_conf(), "fuzz", &s) == CM_OK) {
        for (size_t i = 1; i < cm_intents_count(s); i++)
            if (strcmp(cm_intents_get(s, i - 1)->id, cm_intents_get(s, i)->id) >= 0)
                abort();
        (void)cm_intents_digest(s, NOW);
    }
    cm_intents_free(s);
    json_decref(arr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    many(data, size);
    return 0;
}
