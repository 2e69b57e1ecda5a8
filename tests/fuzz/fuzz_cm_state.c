/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_state.c -- cm_state_parse on arbitrary bytes, with and without an
 * allow list. Whatever is accepted must serialize, and the serialization must
 * parse again to the same header and the same shape, and serialize to the
 * same bytes; no accepted address may be one the address rule refuses; and
 * what is accepted without the allow list is accepted with it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_net.h"
#include "common/cm_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every address and backend of @st passes the rule under @o. */
static void check_rule(const struct cm_state *st, const struct cm_state_opts *o)
{
    for (size_t i = 0; i < st->service_count; i++) {
        for (size_t j = 0; j < st->services[i].member_count; j++) {
            const struct cm_state_endpoint *ep = &st->services[i].members[j];
            struct cm_addr a;

            for (size_t k = 0; k < ep->address_count; k++)
                if (cm_ip_refused((const struct sockaddr *)&ep->addresses[k].ss, o->allow,
                                  o->allow_count) != CM_IP_ORDINARY)
                    abort();
            for (size_t k = 0; k < ep->backend_count; k++)
                if (cm_addr_parse(ep->backends[k], 0, &a) != 0 ||
                    cm_ip_refused((const struct sockaddr *)&a.ss, o->allow, o->allow_count) !=
                        CM_IP_ORDINARY)
                    abort();
        }
    }
}

static void round_trip(const uint8_t *data, size_t size, const struct cm_state_opts *o);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const list[] = {"127.0.0.0/8", "::1/128", "169.254.0.0/16", "fe80::/10"};
    struct cm_ip_prefix allow[4];
    struct cm_state_opts none = {0}, open = {.allow = allow, .allow_count = 4};
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st = NULL;
    bool strict_ok;

    for (size_t i = 0; i < 4; i++)
        if (cm_ip_prefix_parse(list[i], &allow[i]) != 0)
            abort();
    strict_ok = cm_state_parse((const char *)data, size, &none, &st, err, sizeof(err)) == 0;
    cm_state_free(st);
    st = NULL;
    if (cm_state_parse((const char *)data, size, &open, &st, err, sizeof(err)) != 0) {
        if (strict_ok)
            abort(); /* an allow list only ever accepts more */
        return 0;
    }
    cm_state_free(st);
    round_trip(data, size, &none);
    round_trip(data, size, &open);
    return 0;
}

static void round_trip(const uint8_t *data, size_t size, const struct cm_state_opts *o)
{
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st = NULL, *st2 = NULL;
    char *dump, *dump2;

    if (cm_state_parse((const char *)data, size, o, &st, err, sizeof(err)) != 0)
        return;
    check_rule(st, o);
    dump = cm_state_dump(st);
    if (dump == NULL)
        abort();
    if (cm_state_parse(dump, strlen(dump), o, &st2, err, sizeof(err)) != 0)
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
}
