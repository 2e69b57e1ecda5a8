/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_store.c -- cm_store_file_parse (the state file of dnsd and the
 * proxy) on arbitrary bytes. What is accepted holds at most one document per
 * vantage, each passing the configuration; saved again it must parse to the
 * same documents and save to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "tests/fuzz/fuzz_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A committed store of what @text parses to, or NULL when refused. */
static struct cm_store *load(const char *text, size_t len)
{
    struct cm_store_cand *c = NULL;
    struct cm_store *s;
    char err[512];

    if (cm_store_file_parse("fuzz", text, len, fuzz_conf(), 1, &c, NULL, err, sizeof(err)) != CM_OK)
        return NULL;
    s = cm_store_new();
    if (s == NULL)
        abort();
    cm_store_commit(s, c);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cm_store *s = load((const char *)data, size), *back;
    char *t1, *t2;

    if (s == NULL)
        return 0;
    for (size_t i = 0; i < cm_store_count(s); i++) {
        const struct cm_state *d = cm_store_get(s, i, NULL);
        char err[CM_STATE_ERR_MAX];

        if (cm_state_check_conf(d, fuzz_conf(), err, sizeof(err)) != CM_OK)
            abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(cm_store_get(s, j, NULL)->vantage, d->vantage) == 0)
                abort();
    }
    t1 = cm_store_file_text(s, NULL);
    if (t1 == NULL)
        abort();
    back = load(t1, strlen(t1));
    if (back == NULL || cm_store_count(back) != cm_store_count(s))
        abort();
    t2 = cm_store_file_text(back, NULL);
    if (t2 == NULL || strcmp(t1, t2) != 0)
        abort();
    free(t1);
    free(t2);
    cm_store_free(back);
    cm_store_free(s);
    return 0;
}
