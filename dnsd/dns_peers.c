/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_peers.c -- GET /v1/intents of the other name servers, on dnsd's main
 * loop, for GET /v1/peers (dns_peers.h).
 */
#include "dnsd/dns_peers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/cm_agree.h"
#include "common/cm_conf.h"
#include "common/cm_curl.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_str.h"

#define AUTH_PREFIX "Authorization: Bearer "

struct round;

/* One peer in one round. */
struct peer {
    struct round *round;     /* owner */
    char *name;              /* owned */
    char url[CM_URL_STRLEN]; /* its control API */
    struct cm_curl_req *req; /* in flight, else NULL */
    struct cm_buf body;      /* the answer so far */
    json_t *digest;          /* owned, NULL when it did not answer (yet) */
    char error[160];         /* why not */
};

/* One round: every other name server asked once. */
struct round {
    struct dns_peers *owner;
    struct peer *peers; /* owned */
    size_t count;
    size_t pending; /* requests in flight */
    uint64_t started_ms;
};

struct dns_peers {
    struct event_base *base; /* borrowed */
    struct cm_curl *curl;    /* owned, made with the first round */
    struct round *done;      /* the last finished round, NULL before */
    struct round *running;   /* the round in flight, NULL when none */
};

static void round_free(struct round *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->count; i++) {
        cm_curl_req_cancel(r->peers[i].req);
        cm_buf_fini(&r->peers[i].body);
        json_decref(r->peers[i].digest);
        free(r->peers[i].name);
    }
    free(r->peers);
    free(r);
}

struct dns_peers *dns_peers_new(struct event_base *base)
{
    struct dns_peers *p = calloc(1, sizeof(*p));

    if (p != NULL)
        p->base = base;
    return p;
}

void dns_peers_free(struct dns_peers *p)
{
    if (p == NULL)
        return;
    round_free(p->running);
    round_free(p->done);
    cm_curl_free(p->curl);
    free(p);
}

static void round_settle(struct round *r)
{
    struct dns_peers *p = r->owner;

    if (r->pending > 0 || p->running != r)
        return;
    round_free(p->done);
    p->done = r;
    p->running = NULL;
}

static int on_data(void *arg, long status, const char *data, size_t len)
{
    struct peer *pe = arg;

    (void)status;
    return cm_buf_append(&pe->body, data, len) == CM_OK ? 0 : 1;
}

static void on_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct peer *pe = arg;
    json_t *doc = NULL, *digest;

    pe->req = NULL;
    if (aborted)
        snprintf(pe->error, sizeof(pe->error), "answer longer than %d bytes", DNS_PEERS_BODY_MAX);
    else if (rc != CM_OK)
        snprintf(pe->error, sizeof(pe->error), "%s", reason != NULL ? reason : cm_strerror(rc));
    else if (status != 200)
        snprintf(pe->error, sizeof(pe->error), "GET /v1/intents: HTTP %ld", status);
    else if ((doc = json_loadb(pe->body.data != NULL ? pe->body.data : "", pe->body.len, 0,
                               NULL)) == NULL)
        snprintf(pe->error, sizeof(pe->error), "GET /v1/intents: not JSON");
    else if (!json_is_object(digest = json_object_get(doc, "digest")) ||
             !json_is_string(json_object_get(digest, "state")))
        snprintf(pe->error, sizeof(pe->error), "GET /v1/intents: no digest");
    else
        pe->digest = json_incref(digest);
    json_decref(doc);
    cm_buf_fini(&pe->body);
    pe->round->pending--;
    round_settle(pe->round);
}

/* Starts @pe's request; on failure says why in pe->error. */
static void peer_start(struct dns_peers *p, struct peer *pe, const char *token, const char *ca)
{
    struct cm_curl_opts o = {.timeout_ms = DNS_PEERS_TIMEOUT_MS,
                             .connect_timeout_ms = DNS_PEERS_CONNECT_MS,
                             .on_data = on_data,
                             .on_done = on_done,
                             .arg = pe};
    struct curl_slist *headers = NULL;
    char url[CM_URL_STRLEN + 16];
    CURL *e = curl_easy_init();
    bool ok = e != NULL;

    snprintf(url, sizeof(url), "%s/v1/intents", pe->url);
    ok = ok && curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOPROXY, "*") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_USERAGENT, "fedgslb-dnsd") == CURLE_OK &&
         (ca == NULL || curl_easy_setopt(e, CURLOPT_CAINFO, ca) == CURLE_OK);
    if (ok && token != NULL) {
        size_t n = strlen(AUTH_PREFIX) + strlen(token) + 1;
        char *auth = malloc(n);

        if (auth != NULL) {
            snprintf(auth, n, "%s%s", AUTH_PREFIX, token);
            headers = curl_slist_append(NULL, auth);
            explicit_bzero(auth, n);
            free(auth);
        }
        ok = headers != NULL;
    }
    if (!ok) {
        curl_easy_cleanup(e);
        cm_curl_headers_free(headers);
        snprintf(pe->error, sizeof(pe->error), "cannot prepare the request");
        return;
    }
    cm_buf_init(&pe->body, DNS_PEERS_BODY_MAX);
    if (cm_curl_start(p->curl, e, headers, NULL, &o, &pe->req) != CM_OK) {
        snprintf(pe->error, sizeof(pe->error), "cannot start the request");
        return;
    }
    pe->round->pending++;
}

/* A round over the name servers of @conf other than its own instance. */
static int round_start(struct dns_peers *p, const struct cm_conf *conf, uint64_t now_ms)
{
    const struct cm_conf_control *ctl = &conf->dnsd.control;
    size_t n = 0;
    const struct cm_conf_instance *ns = cm_conf_instances(conf, CM_INSTANCE_NAME_SERVER, &n);
    struct round *r = calloc(1, sizeof(*r));

    if (r == NULL || (n > 0 && (r->peers = calloc(n, sizeof(*r->peers))) == NULL)) {
        free(r);
        return CM_ENOMEM;
    }
    if (p->curl == NULL && n > 1 && (p->curl = cm_curl_new(p->base)) == NULL) {
        round_free(r);
        return CM_ENOMEM;
    }
    r->owner = p;
    r->started_ms = now_ms;
    p->running = r;
    for (size_t i = 0; i < n; i++) {
        struct peer *pe = &r->peers[r->count];

        if (conf->instance != NULL && strcmp(ns[i].name, conf->instance) == 0)
            continue;
        pe->round = r;
        if ((pe->name = strdup(ns[i].name)) == NULL)
            continue;
        r->count++;
        cm_addr_url((const struct sockaddr *)&ns[i].control.ss, ctl->tls.enabled, pe->url,
                    sizeof(pe->url));
        peer_start(p, pe, ctl->token, ctl->tls.enabled ? ctl->tls.ca_file : NULL);
    }
    round_settle(r); /* nobody to ask, or no request started */
    return CM_OK;
}

/* The peers of round @r with their agreement to @self (borrowed). */
static json_t *peers_json(const struct round *r, const char *self, json_t *self_digest,
                          uint64_t now_ms)
{
    const char **names = calloc(r->count + 1, sizeof(*names));
    json_t **digests = calloc(r->count + 1, sizeof(*digests));
    json_t *model = NULL, *peers = json_array(), *insts;

    if (names == NULL || digests == NULL || peers == NULL)
        goto out;
    names[0] = self;
    digests[0] = self_digest;
    for (size_t i = 0; i < r->count; i++) {
        names[i + 1] = r->peers[i].name;
        digests[i + 1] = r->peers[i].digest;
    }
    model = cm_agreement(names, digests, r->count + 1);
    insts = json_object_get(model, "instances");
    for (size_t i = 0; model != NULL && i < r->count; i++) {
        const struct peer *pe = &r->peers[i];
        json_t *inst = json_array_get(insts, i + 1);

        json_array_append_new(peers, json_pack("{s:s,s:s,s:b,s:O?,s:O,s:s?,s:I}", "name", pe->name,
                                               "address", pe->url, "reachable", pe->digest != NULL,
                                               "digest", pe->digest, "agrees",
                                               json_object_get(inst, "agrees"), "error",
                                               pe->digest == NULL ? pe->error : NULL, "age_ms",
                                               (json_int_t)(now_ms - r->started_ms)));
    }
    if (model != NULL) {
        json_object_del(model, "instances");
        json_object_set_new(model, "peers", peers);
        peers = NULL;
    }
out:
    json_decref(peers);
    free(names);
    free(digests);
    return model;
}

json_t *dns_peers_json(struct dns_peers *p, const struct cm_conf *conf, json_t *self_digest,
                       uint64_t now_ms)
{
    const char *self = conf->instance != NULL ? conf->instance : "self";
    json_t *doc = NULL;

    if (p->running == NULL &&
        (p->done == NULL || now_ms - p->done->started_ms >= DNS_PEERS_FRESH_MS))
        (void)round_start(p, conf, now_ms); /* ENOMEM: answered from the last round */
    if (p->done != NULL)
        doc = peers_json(p->done, self, self_digest, now_ms);
    else
        doc = json_pack("{s:b,s:[]}", "pending", true, "peers");
    if (doc != NULL)
        json_object_set_new(doc, "self",
                            json_pack("{s:s,s:O?}", "name", self, "digest", self_digest));
    json_decref(self_digest);
    return doc;
}
