/* SPDX-License-Identifier: Apache-2.0 */
/* dns_view.c -- building and releasing query snapshots. */
#include "dnsd/dns_view.h"

#include <stdlib.h>
#include <sys/socket.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_zone.h"

static int lpm_build(const struct cm_conf *conf, struct cm_lpm **out)
{
    struct cm_lpm *lpm = cm_lpm_new();
    int rc = CM_OK;

    if (lpm == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < conf->client_network_count && rc == CM_OK; i++) {
        const struct cm_conf_client_net *n = &conf->client_networks[i];
        rc = cm_lpm_insert(lpm, n->family, n->addr, n->prefix_len, (uint32_t)n->region);
    }
    if (rc != CM_OK) {
        cm_lpm_free(lpm);
        return rc;
    }
    *out = lpm;
    return CM_OK;
}

int dns_view_new(struct cm_conf *conf, struct dns_zone *zone, const struct cm_merged *merged,
                 const struct dns_drains *drains, uint64_t serial, struct dns_view **out, char *err,
                 size_t errlen)
{
    struct dns_view *view;
    int rc;

    view = calloc(1, sizeof(*view));
    if (view == NULL)
        return CM_ENOMEM;
    atomic_init(&view->refs, 1);
    view->conf = cm_conf_ref(conf);
    view->zone = dns_zone_ref(zone);
    view->default_region = (unsigned)conf->dnsd.region;
    view->serial = serial;
    rc = lpm_build(conf, &view->lpm);
    if (rc != CM_OK)
        goto out;
    rc = dns_fed_build(conf, merged, drains, &view->fed, err, errlen);
    if (rc != CM_OK)
        goto out;
    *out = view;
    view = NULL;
out:
    dns_view_unref(view);
    return rc;
}

struct dns_view *dns_view_ref(struct dns_view *view)
{
    atomic_fetch_add_explicit(&view->refs, 1, memory_order_relaxed);
    return view;
}

void dns_view_unref(struct dns_view *view)
{
    if (view == NULL)
        return;
    if (atomic_fetch_sub_explicit(&view->refs, 1, memory_order_acq_rel) != 1)
        return;
    dns_fed_free(view->fed);
    cm_lpm_free(view->lpm);
    dns_zone_unref(view->zone);
    cm_conf_unref(view->conf);
    free(view);
}
