/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_state.c -- cm_state_parse on arbitrary bytes. Whatever is accepted
 * must serialize, and the serialization must parse again to the same header
 * and the same shape, and serialize to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st = NULL, *st2 = NULL;
    char *dump, *dump2;

    if (cm_state_parse((const char *)data, size, NULL, &st, err, sizeof(err)) != 0)
        return 0;
    dump = cm_state_dump(st);
    if (dump == NULL)
        abort();
    if (cm_state_parse(dump, strlen(dump), NULL, &st2, err, sizeof(err)) != 0)
        abort();
    if (st2->generation != st->generation || st2->generated_at_unix != st->generated_at_unix ||
        strcmp(st2->vantage, st->vantage) != 0 || st2->service_count != st->service_count ||
        st2->member_count != st->member_count)
        abort();
    for (size_t i = 0; i < st->service_count; i++) {
        if (strcmp(st->services[i].key, st2->services[i].key) != 0 ||
            st->services[i].member_count != st2->services[i].member_count)
            abort();
        for (size_t j = 0; j < st->services[i].member_count; j++) {
            const struct cm_state_endpoint *a = &st->services[i].members[j];
            const struct cm_state_endpoint *b =
                cm_state_endpoint_find(&st2->services[i], a->member);
            if (b == NULL || a->healthy != b->healthy || a->address_count != b->address_count ||
                a->backend_count != b->backend_count)
                abort();
        }
    }
    dump2 = cm_state_dump(st2);
    if (dump2 == NULL || strcmp(dump, dump2) != 0)
        abort();
    free(dump);
    free(dump2);
    cm_state_free(st);
    cm_state_free(st2);
    return 0;
}
