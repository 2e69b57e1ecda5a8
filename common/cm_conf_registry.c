/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf_registry.c -- the members_from section: the host cluster whose
 * member registry (KubeFed's KubeFedClusters or Karmada's Clusters)
 * fedgslb-health watches for members, and where members the registry does
 * not place go. Its tables join cm_conf_schema.c's root table.
 */
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_conf_schema.h"
#include "common/cm_err.h"
#include "common/cm_str.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define KUBEFED_NAMESPACE "kube-federation-system"

_Static_assert(sizeof(enum cm_registry_source) == sizeof(int),
               "enum cm_registry_source is int-sized");

static const char *const registry_sources[] = {"kubefed", "karmada", NULL};

/* Karmada's Clusters are cluster-scoped and name their Secret's namespace. */
static int kubefed_only(struct cm_conf_parse *p, void *base, void *field)
{
    const struct cm_conf_members_from *mf = base;

    (void)field;
    if (mf->source != CM_REGISTRY_KUBEFED)
        return cm_conf_fail(p, "only with source \"kubefed\" (Karmada's Clusters are "
                               "cluster-scoped and spec.secretRef names the Secret's namespace)");
    return CM_OK;
}

/* "services": absent means true for KubeFed, false for Karmada. */
static int registry_services(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf_members_from *mf = base;

    (void)field;
    if (v == NULL) {
        mf->services = mf->source == CM_REGISTRY_KUBEFED;
        return CM_OK;
    }
    if (!json_is_boolean(v))
        return cm_conf_fail(p, "must be true or false");
    mf->services = json_is_true(v);
    if (mf->services && mf->source != CM_REGISTRY_KUBEFED)
        return cm_conf_fail(p, "only with source \"kubefed\" (FederatedService, Domain and "
                               "ServiceDNSRecord are KubeFed's)");
    return CM_OK;
}

static int members_from_post(struct cm_conf_parse *p, void *base)
{
    struct cm_conf_members_from *mf = base;

    if (mf->in_cluster && (mf->kubeconfig != NULL || mf->context != NULL))
        return cm_conf_fail_at(p, "in_cluster", "excludes kubeconfig and context");
    if (mf->source == CM_REGISTRY_KUBEFED && mf->namespace_ == NULL) {
        mf->namespace_ = strdup(KUBEFED_NAMESPACE);
        if (mf->namespace_ == NULL)
            return cm_conf_oom(p);
    }
    /* A member comes from the configuration or from the registry: a
     * location for a configured member would say where it is twice. */
    for (size_t i = 0; i < mf->location_count; i++) {
        const char *name = mf->locations[i].name;
        size_t old;
        int rc;

        if (cm_conf_member_index(p->conf, name) < 0)
            continue;
        old = cm_conf_path_push(p, "locations");
        rc = cm_conf_fail_at(p, name,
                             "\"%s\" is a configured member (members.%s): a member comes from "
                             "members or from the registry, not both",
                             name, name);
        cm_conf_path_pop(p, old);
        return rc;
    }
    return CM_OK;
}

static const struct cm_conf_item location_items[] = {
    {.key = "region",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_REGION,
     .offset = offsetof(struct cm_conf_member, region),
     .required = true},
    {.key = "zone",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_member, zone),
     .parse = cm_conf_member_zone},
};
static const struct cm_conf_schema location_schema = {
    .items = location_items,
    .count = COUNT(location_items),
    .size = sizeof(struct cm_conf_member),
    .name_offset = offsetof(struct cm_conf_member, name),
    .key_check = cm_conf_key_label,
};

static const struct cm_conf_item members_from_items[] = {
    {.key = "source",
     .type = CM_CONF_ENUM,
     .offset = offsetof(struct cm_conf_members_from, source),
     .names = registry_sources,
     .required = true},
    {.key = "kubeconfig",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_members_from, kubeconfig)},
    {.key = "context",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_members_from, context)},
    {.key = "in_cluster",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_members_from, in_cluster),
     .def_bool = false},
    {.key = "namespace",
     .type = CM_CONF_LABEL,
     .offset = offsetof(struct cm_conf_members_from, namespace_),
     .validate = kubefed_only},
    {.key = "services",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_members_from, services),
     .parse = registry_services},
    {.key = "locations",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf_members_from, locations),
     .count_offset = offsetof(struct cm_conf_members_from, location_count),
     .max = 1024,
     .sub = &location_schema},
};
const struct cm_conf_schema cm_conf_members_from_schema = {
    .items = members_from_items,
    .count = COUNT(members_from_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_members_from, present),
    .post = members_from_post,
};
