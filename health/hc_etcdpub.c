/* SPDX-License-Identifier: Apache-2.0 */
/* hc_etcdpub.c -- a cm_etcd client and one cm_etcd_lease: see hc_etcdpub.h. */
#include "health/hc_etcdpub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_etcd.h"
#include "common/cm_etcd_feed.h"
#include "common/cm_etcd_lease.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "health/hc_http.h"

struct hc_etcdpub {
    struct cm_etcd *e;           /* owned */
    struct cm_etcd_lease *lease; /* owned */
    uint64_t generation;         /* of the newest document offered, 0 = none */
};

int64_t hc_etcdpub_ttl_s(const struct cm_conf *conf)
{
    uint64_t ms =
        3 *
        (uint64_t)(conf->health.publish_interval_ms > 0 ? conf->health.publish_interval_ms : 10000);
    int64_t s = (int64_t)((ms + 999) / 1000);

    return s < 2 ? 2 : s;
}

struct hc_etcdpub *hc_etcdpub_new(struct event_base *base, struct hc_http *http,
                                  const struct cm_conf *conf)
{
    struct hc_etcdpub *p = calloc(1, sizeof(*p));
    struct cm_etcd_lease_params lp;
    char *root = NULL, *key = NULL;

    if (p == NULL)
        return NULL;
    cm_etcd_lease_params_default(&lp);
    lp.ttl_s = hc_etcdpub_ttl_s(conf);
    lp.backoff_min_ms = conf->etcd.backoff_min_ms;
    lp.backoff_max_ms = conf->etcd.backoff_max_ms;
    p->e = cm_etcd_new(hc_http_curl(http), &conf->etcd);
    root = cm_etcd_root(conf->etcd.prefix, conf->federation);
    if (root != NULL) {
        size_t n = strlen(root) + sizeof(CM_ETCD_DIR_VANTAGES) +
                   strlen(conf->regions[conf->health.vantage].name);

        key = malloc(n);
        if (key != NULL)
            snprintf(key, n, "%s" CM_ETCD_DIR_VANTAGES "%s", root,
                     conf->regions[conf->health.vantage].name);
    }
    p->lease = p->e != NULL && key != NULL ? cm_etcd_lease_new(base, p->e, key, &lp) : NULL;
    free(root);
    free(key);
    if (p->lease == NULL) {
        hc_etcdpub_free(p);
        return NULL;
    }
    cm_log_info("etcd: distributed mode: publishing to %s at %s (%zu endpoints), lease ttl=%" PRId64
                " s",
                cm_etcd_lease_key(p->lease), cm_etcd_endpoint(p->e), cm_etcd_endpoint_count(p->e),
                lp.ttl_s);
    return p;
}

void hc_etcdpub_free(struct hc_etcdpub *p)
{
    if (p == NULL)
        return;
    cm_etcd_lease_free(p->lease);
    cm_etcd_free(p->e);
    free(p);
}

int hc_etcdpub_offer(struct hc_etcdpub *p, uint64_t generation, const char *text, size_t len)
{
    int rc;

    if (p->generation != 0 && generation <= p->generation)
        return CM_OK;
    rc = cm_etcd_lease_set(p->lease, text, len);
    if (rc == CM_OK)
        p->generation = generation;
    return rc;
}

const char *hc_etcdpub_key(const struct hc_etcdpub *p)
{
    return cm_etcd_lease_key(p->lease);
}

void hc_etcdpub_metrics(const struct hc_etcdpub *p, struct cm_buf *out)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"fedgslb_health_etcd_up", "gauge",
         "1 while the newest state document is in etcd under a live lease"},
        {"fedgslb_health_etcd_generation", "gauge", "Generation of the newest document offered"},
        {"fedgslb_health_etcd_revision", "gauge", "etcd revision of the last put"},
        {"fedgslb_health_etcd_puts_total", "counter", "Documents written to etcd"},
        {"fedgslb_health_etcd_keepalives_total", "counter", "Lease keepalives answered"},
        {"fedgslb_health_etcd_grants_total", "counter",
         "Leases granted (the first, and after one was lost)"},
        {"fedgslb_health_etcd_failures_total", "counter",
         "etcd requests that failed (grant, put, keepalive)"},
    };
    struct cm_etcd_lease_stats st;
    double vals[sizeof(fam) / sizeof(fam[0])];

    cm_etcd_lease_get_stats(p->lease, &st);
    vals[0] = st.ok ? 1.0 : 0.0;
    vals[1] = (double)p->generation;
    vals[2] = (double)st.revision;
    vals[3] = (double)st.puts;
    vals[4] = (double)st.keepalives;
    vals[5] = (double)st.grants;
    vals[6] = (double)st.failures;
    for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        cm_metrics_family(out, fam[i].name, fam[i].type, fam[i].help);
        cm_metrics_sample(out, fam[i].name, NULL, vals[i]);
    }
}
