/* SPDX-License-Identifier: Apache-2.0 */
/* lbp_site.c -- listeners, sites and pool references: their lifetimes; see lbp_site.h. */
#include "lbproxy/lbp_site.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_backend.h"
#include "lbproxy/lbp_tls.h"

/* ---- pools ----------------------------------------------------------------------- */

void lbp_poolref_unref(struct lbp_poolref *pr)
{
    if (pr == NULL || --pr->refs > 0)
        return;
    lbp_pool_free(pr->pool);
    free(pr->key);
    free(pr);
}

/* ---- listeners ------------------------------------------------------------------- */

void lbp_listener_close(struct lbp_listener *l)
{
    cm_accept_guard_fini(&l->guard); /* no resume after this */
    if (l->evl != NULL)
        evconnlistener_free(l->evl);
    l->evl = NULL;
}

void lbp_listener_unref(struct lbp_listener *l)
{
    if (l == NULL || --l->refs > 0)
        return;
    lbp_listener_close(l);
    free(l);
}

/* ---- sites ----------------------------------------------------------------------- */

void lbp_site_ref(struct lbp_site *s)
{
    s->refs++;
}

void lbp_site_unref(struct lbp_site *s)
{
    if (s == NULL || --s->refs > 0)
        return;
    lbp_tls_unref(s->tls);
    cm_lpm_free(s->trusted);
    lbp_poolref_unref(s->pr);
    lbp_listener_unref(s->lst);
    free(s);
}

static int trusted_build(const struct cm_conf_proxy *pc, struct cm_lpm **out)
{
    struct cm_lpm *lpm;

    *out = NULL;
    if (pc->trusted_proxy_count == 0)
        return CM_OK;
    lpm = cm_lpm_new();
    if (lpm == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < pc->trusted_proxy_count; i++) {
        const char *s = pc->trusted_proxies[i], *slash = strchr(s, '/');
        char host[INET6_ADDRSTRLEN];
        uint8_t addr[16];
        uint64_t plen;
        int fam = AF_INET;
        size_t hlen = slash != NULL ? (size_t)(slash - s) : 0;

        if (slash == NULL || hlen >= sizeof(host))
            continue;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, addr) != 1) {
            fam = AF_INET6;
            if (inet_pton(AF_INET6, host, addr) != 1)
                continue;
        }
        if (!cm_parse_u64(slash + 1, fam == AF_INET ? 32 : 128, &plen))
            continue;
        if (cm_lpm_insert(lpm, fam, addr, (unsigned)plen, 1) != CM_OK) {
            cm_lpm_free(lpm);
            return CM_ENOMEM;
        }
    }
    *out = lpm;
    return CM_OK;
}

struct lbp_site *lbp_site_new(const struct cm_conf *conf, size_t idx, struct lbp_listener *lst,
                              struct lbp_poolref *pr, struct lbp_tickets *tickets, char *err,
                              size_t errlen)
{
    const struct cm_conf_proxy *pc = &conf->proxy;
    const struct cm_conf_proxy_listen *l = &pc->listen[idx];
    struct lbp_site *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL) {
        cm_err_oom(err, errlen, NULL);
        return NULL;
    }
    s->refs = 1;
    s->lst = lst;
    lst->refs++;
    s->pr = pr;
    pr->refs++;
    s->lim = (struct lbp_http_limits){
        .line_max = pc->limits.request_line_bytes,
        .header_bytes_max = pc->limits.header_bytes,
        .header_count_max = pc->limits.header_count,
        .body_max = pc->limits.body_bytes,
    };
    s->to = pc->timeouts_ms;
    cm_strlcpy(s->member, conf->members[l->member].name, sizeof(s->member));
    cm_strlcpy(s->service, conf->services[l->service].key, sizeof(s->service));
    rc = trusted_build(pc, &s->trusted);
    if (rc == CM_OK)
        rc = lbp_tls_from_listen(l, idx, &pc->tls_sessions, tickets, &s->tls, err, errlen);
    else
        cm_err_oom(err, errlen, NULL);
    if (rc != CM_OK) {
        lbp_site_unref(s);
        return NULL;
    }
    return s;
}
