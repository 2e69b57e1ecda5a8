/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dnsd_fed_view.h -- the view of tests/dnsd_fed_fixture.h for tests and fuzz
 * targets (fuzz_dns_pre, fuzz_dns_pcache, test_dns_pcache): its zone,
 * configuration (with DNS cookies and an NSID) and state document, built
 * once; aborts on failure. The view holds the zone and the configuration
 * (view->zone, view->conf), which a test may change through it.
 * fed_info_same() compares two query infos.
 */
#ifndef TESTS_DNSD_FED_VIEW_H
#define TESTS_DNSD_FED_VIEW_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_zone.h"
#include "tests/dnsd_fed_fixture.h"

/* @tmpl: a mkstemp template for the zone file, e.g. "/tmp/fuzz_x.XXXXXX";
 * @conf_text: FED_FIXTURE_CONF or a variant of it. */
static inline struct dns_view *fed_fixture_view_conf(char *tmpl, const char *conf_text)
{
    char err[512], doc[8192];
    struct dns_zone *zone = NULL;
    struct cm_conf *conf = NULL;
    struct cm_state *st = NULL;
    struct cm_merged *merged = NULL;
    struct dns_view *view = NULL;

    int fd = mkstemp(tmpl);
    if (fd == -1 || write(fd, FED_FIXTURE_ZONE, sizeof(FED_FIXTURE_ZONE) - 1) !=
                        (ssize_t)(sizeof(FED_FIXTURE_ZONE) - 1))
        abort();
    close(fd);
    fed_fixture_state(doc, sizeof(doc));
    if (dns_zone_load(tmpl, FED_FIXTURE_ORIGIN, &zone, err, sizeof(err)) != CM_OK ||
        cm_conf_load_string("fuzz.json", conf_text, &conf, err, sizeof(err)) != CM_OK ||
        cm_state_parse(doc, strlen(doc), NULL, &st, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(tmpl);
    conf->dnsd.cookies.enabled = true;
    memset(conf->dnsd.cookies.secret, 0x5a, 16);
    memcpy(conf->dnsd.nsid_data, "ns-a", 4);
    conf->dnsd.nsid_len = 4;
    const struct cm_state *docs[] = {st};
    if (cm_merged_build(docs, 1, conf, &merged) != CM_OK ||
        dns_view_new(conf, zone, merged, NULL, 1, &view, err, sizeof(err)) != CM_OK ||
        view->pre == NULL) {
        fprintf(stderr, "view: %s\n", err);
        abort();
    }
    /* the view holds what it needs */
    cm_merged_free(merged);
    cm_state_free(st);
    dns_zone_unref(zone);
    cm_conf_unref(conf);
    return view;
}

static inline struct dns_view *fed_fixture_view(char *tmpl)
{
    return fed_fixture_view_conf(tmpl, FED_FIXTURE_CONF);
}

/* Field by field; rrl_name is the same pointer: into the request both
 * answered (a hit's is rebased on it), or into the view. */
static inline bool fed_info_same(const struct dns_query_info *a, const struct dns_query_info *b)
{
    return a->qtype == b->qtype && a->rcode == b->rcode && a->tc == b->tc && a->ecs == b->ecs &&
           a->cookie_valid == b->cookie_valid && a->federated == b->federated &&
           a->fail_open == b->fail_open && a->fail_closed == b->fail_closed &&
           a->service == b->service && a->member == b->member && a->region == b->region &&
           a->rrl_class == b->rrl_class && a->rrl_name == b->rrl_name &&
           a->rrl_name_len == b->rrl_name_len && a->rrl_name_hash == b->rrl_name_hash &&
           a->placement == b->placement && a->precompiled == b->precompiled &&
           a->uncacheable == b->uncacheable;
}

#endif /* TESTS_DNSD_FED_VIEW_H */
