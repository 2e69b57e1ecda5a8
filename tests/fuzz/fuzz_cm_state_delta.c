/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_state_delta.c -- a state delta (cm_store_put with "base_generation")
 * of arbitrary bytes against a held document. A refused one leaves the held
 * document as it was; an accepted one passes the configuration and is the
 * document its own serialization parses to (what a whole push would give).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "tests/fuzz/fuzz_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_text[] =
    "{\"version\": 1, \"vantage\": \"us-east-1\", \"generation\": 5,"
    " \"generated_at\": \"2026-11-21T07:00:00Z\","
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"rtt_ms\": 3}},"
    " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.10\"], \"healthy\": true, \"ready_endpoints\": 2},"
    "   \"eur\": {\"addresses\": [\"192.0.2.20\"], \"healthy\": false}}},"
    "  \"default/api\": {\"port\": 443, \"placement\": [\"usa\"], \"members\": {"
    "   \"usa\": {\"hostname\": \"lb.example.test\", \"healthy\": true}}}}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cm_store *s = cm_store_new();
    struct cm_store_cand *c = NULL;
    struct cm_state *whole = NULL;
    char err[CM_STATE_ERR_MAX];
    char *before, *after, *again;
    int rc;

    if (s == NULL)
        abort();
    if (cm_store_put(s, base_text, strlen(base_text), NULL, fuzz_conf(), 1, &c, err, sizeof(err)) !=
            CM_OK ||
        c == NULL)
        abort();
    cm_store_commit(s, c);
    c = NULL;
    before = cm_state_dump(cm_store_get(s, 0, NULL));
    rc = cm_store_put(s, (const char *)data, size, NULL, fuzz_conf(), 2, &c, err, sizeof(err));
    after = cm_state_dump(cm_store_get(s, 0, NULL));
    if (before == NULL || after == NULL || strcmp(before, after) != 0)
        abort(); /* nothing changes before a commit, refused or not */
    if (rc != CM_OK && err[0] == '\0')
        abort(); /* every refusal says why */
    if (rc == CM_OK && c != NULL) {
        const struct cm_state *next = cm_store_cand_new_doc(c);
        char *text = cm_state_dump(next);

        if (text == NULL || cm_state_check_conf(next, fuzz_conf(), err, sizeof(err)) != CM_OK ||
            cm_state_parse(text, strlen(text), NULL, &whole, err, sizeof(err)) != CM_OK)
            abort();
        again = cm_state_dump(whole);
        if (again == NULL || strcmp(again, text) != 0)
            abort();
        free(again);
        free(text);
        cm_store_commit(s, c);
        c = NULL;
    }
    cm_state_free(whole);
    cm_store_cand_free(c);
    free(before);
    free(after);
    cm_store_free(s);
    return 0;
}
