/* SPDX-License-Identifier: Apache-2.0 */
/* unit_k8s.h -- one Kubernetes object parsed from single-quoted JSON, as a
 * watch event would bring it (the health unit tests). */
#ifndef TESTS_UNIT_HEALTH_UNIT_K8S_H
#define TESTS_UNIT_HEALTH_UNIT_K8S_H

#include <stdio.h>

#include "common/cm_err.h"
#include "health/hc_k8s.h"
#include "tests/unit/unit_text.h"

/* The object of an ADDED event of @kind around @squoted (owned; the test fails on a parse error).
 */
static inline struct hc_k8s_obj *unit_k8s_obj(enum hc_k8s_kind kind, const char *squoted)
{
    char *text = unit_dq(squoted), err[HC_K8S_ERR_MAX] = "";
    size_t n = strlen(text) + 64;
    char *line = malloc(n);
    struct hc_k8s_event ev;
    struct hc_k8s_obj *obj;

    assert_non_null(line);
    snprintf(line, n, "{\"type\":\"ADDED\",\"object\":%s}", text);
    if (hc_k8s_event_parse(line, strlen(line), kind, &ev, err, sizeof(err)) != CM_OK)
        fail_msg("parse: %s", err);
    obj = ev.obj;
    ev.obj = NULL;
    hc_k8s_event_fini(&ev);
    free(text);
    free(line);
    return obj;
}

#endif /* TESTS_UNIT_HEALTH_UNIT_K8S_H */
