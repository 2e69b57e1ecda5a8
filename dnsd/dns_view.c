/* SPDX-License-Identifier: Apache-2.0 */
/* dns_view.c -- building and releasing query snapshots. */
#include "dnsd/dns_view.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_pre.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define DNS_VIEW_DEFAULT_MAX_UDP 1232 /* dnsd.max_udp_size 0: unset */

int dns_view_next(const struct dns_view *prev, struct cm_conf *conf, struct dns_zone *zone,
                  struct dns_geo *geo, const struct cm_merged *merged,
                  const struct cm_intent_view *intents, uint64_t serial, struct dns_view **out,
                  char *err, size_t errlen)
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
    dns_view_read_conf(view);
    view->serial = serial;
    if (geo != NULL) {
        view->geo = dns_geo_ref(geo);
    } else {
        rc = dns_geo_build(conf, NULL, &view->geo, err, errlen);
        if (rc != CM_OK)
            goto out;
    }
    view->lpm = view->geo->lpm;
    view->lpm_direct = cm_lpm_has_direct(view->lpm);
    rc = dns_fed_update(prev != NULL ? prev->fed : NULL, conf, merged, intents, &view->fed, err,
                        errlen);
    if (rc != CM_OK)
        goto out;
    rc = dns_pre_update(prev != NULL ? prev->pre : NULL, prev != NULL ? prev->fed : NULL, view->fed,
                        zone, &view->pre);
    if (rc != CM_OK) {
        snprintf(err, errlen, "precompiled responses: %s", cm_strerror(rc));
        goto out;
    }
    *out = view;
    view = NULL;
out:
    dns_view_unref(view);
    return rc;
}

int dns_view_new_geo(struct cm_conf *conf, struct dns_zone *zone, struct dns_geo *geo,
                     const struct cm_merged *merged, const struct cm_intent_view *intents,
                     uint64_t serial, struct dns_view **out, char *err, size_t errlen)
{
    return dns_view_next(NULL, conf, zone, geo, merged, intents, serial, out, err, errlen);
}

int dns_view_new(struct cm_conf *conf, struct dns_zone *zone, const struct cm_merged *merged,
                 const struct cm_intent_view *intents, uint64_t serial, struct dns_view **out,
                 char *err, size_t errlen)
{
    return dns_view_new_geo(conf, zone, NULL, merged, intents, serial, out, err, errlen);
}

void dns_view_read_conf(struct dns_view *view)
{
    uint32_t m = view->conf != NULL ? view->conf->dnsd.max_udp_size : 0;

    if (m == 0)
        m = DNS_VIEW_DEFAULT_MAX_UDP;
    if (m < DNS_UDP_MIN)
        m = DNS_UDP_MIN;
    view->max_udp = m > UINT16_MAX ? UINT16_MAX : (uint16_t)m;
    view->ecs = view->conf == NULL || view->conf->dnsd.ecs;
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
    dns_pre_free(view->pre);
    dns_fed_free(view->fed);
    dns_geo_unref(view->geo);
    dns_zone_unref(view->zone);
    cm_conf_unref(view->conf);
    free(view);
}
