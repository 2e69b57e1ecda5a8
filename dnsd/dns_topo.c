/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_topo.c -- GET /v1/topology: the configuration's shape for the status
 * page (regions and their zones, members, the static latency matrix, each
 * service's all-down policy), so the page needs no copy of the config.
 * Nothing secret: no addresses, kubeconfigs or tokens.
 */
#include "dnsd/dns_ctl.h"

#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "dnsd/dns_state.h"

static const char *all_down_text(const struct cm_conf_policy *p)
{
    switch (p->all_down) {
    case CM_ALL_DOWN_FAIL_CLOSED:
        return "fail-closed";
    case CM_ALL_DOWN_SORRY:
        return "sorry";
    default:
        return "fail-open";
    }
}

static json_t *regions_json(const struct cm_conf *conf)
{
    json_t *out = json_object();

    for (size_t r = 0; out != NULL && r < conf->region_count; r++) {
        const struct cm_conf_region *reg = &conf->regions[r];
        json_t *zones = json_array();
        json_t *lat = json_object();

        for (size_t z = 0; zones != NULL && z < reg->zone_count; z++)
            json_array_append_new(zones, json_string(reg->zones[z]));
        for (size_t b = 0; lat != NULL && b < conf->region_count; b++) {
            uint32_t ms = cm_conf_latency(conf, r, b);

            if (ms != CM_LATENCY_UNKNOWN)
                json_object_set_new(lat, conf->regions[b].name, json_integer(ms));
        }
        json_t *entry = json_pack("{s:o*,s:o*}", "zones", zones, "latency_ms", lat);

        /* regions.*.location, as the status page reads it */
        if (entry != NULL && reg->has_location)
            json_object_set_new(entry, "location",
                                json_pack("{s:f,s:f,s:I}", "latitude", reg->lat, "longitude",
                                          reg->lon, "bias_km", (json_int_t)reg->bias_km));
        json_object_set_new(out, reg->name, entry);
    }
    return out;
}

json_t *dns_ctl_topology(const struct dns_ctl_env *env)
{
    const struct cm_conf *conf = dns_state_conf(env->state);
    json_t *members = json_object();
    json_t *services = json_object();

    for (size_t i = 0; members != NULL && i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];

        json_object_set_new(members, m->name,
                            json_pack("{s:s,s:s?,s:s}", "region", conf->regions[m->region].name,
                                      "zone",
                                      m->zone >= 0 ? conf->regions[m->region].zones[m->zone] : NULL,
                                      "lb", m->lb_mode == CM_LB_PROXY ? "proxy" : "native"));
    }
    for (size_t i = 0; services != NULL && i < conf->service_count; i++) {
        const struct cm_conf_service *s = &conf->services[i];

        json_object_set_new(
            services, s->key,
            json_pack("{s:s,s:i}", "all_down", all_down_text(&s->policy), "port", (int)s->port));
    }
    return json_pack("{s:s,s:s,s:s?,s:o*,s:o*,s:o*}", "federation", conf->federation, "zone",
                     conf->zone, "region", conf->regions[conf->dnsd.region].name, "regions",
                     regions_json(conf), "members", members, "services", services);
}

void dns_ctl_route_topology(void *arg, struct cm_ctl_req *req, const char *rest)
{
    const struct dns_ctl_env *env = arg;
    json_t *doc;

    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    doc = dns_ctl_topology(env);
    if (doc == NULL)
        cm_ctl_reply_error(req, 500, "out of memory");
    else
        cm_ctl_reply_json(req, 200, doc);
}
