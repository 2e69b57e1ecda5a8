/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_http.h -- HTTP requests to Kubernetes API servers (and the probes' and
 * publisher's own transfers) on common/cm_curl: one libcurl multi handle
 * driven by the caller's libevent loop. hc_http adds what a kubeconfig target
 * brings: TLS trust, client certificate, bearer token (a tokenFile re-read
 * for every request), tls-server-name, a proxy, and exec credential plugins
 * (a request waits for the plugin's first credential; a 401 tells it).
 *
 *   hc_http (one per process)
 *    +- cm_curl: multi handle, timer and socket events
 *    +- hc_http_req ... one per request: parked for an exec plugin, or a
 *                       cm_curl transfer with the target's TLS and credentials
 *
 * Response bytes are handed to the request's data callback as they arrive
 * (watch streams never end on their own); completion calls the done
 * callback once, after the request has been released.
 */
#ifndef HEALTH_HC_HTTP_H
#define HEALTH_HC_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "common/cm_curl.h"

struct hc_http;
struct hc_http_req;
struct hc_kube_target;

/* Callbacks and options are cm_curl's (common/cm_curl.h): the same transfer. */

/** One multi handle on @base (borrowed; outlives it). NULL on failure. */
struct hc_http *hc_http_new(struct event_base *base);
/** Cancels every request (their done callbacks are NOT called). Accepts NULL. */
void hc_http_free(struct hc_http *h);

/**
 * Starts GET @url (borrowed, copied) against @t (borrowed; must outlive the
 * request). TLS trust, client certificate and bearer token come from @t, or
 * from its exec plugin: while the plugin's run that would give the first
 * credential is in flight, the request waits for it (at most the plugin's
 * timeout) rather than go out unauthenticated.
 * On success *out is a handle for hc_http_req_cancel() (may be NULL if not
 * wanted); it stays valid until on_done runs.
 */
int hc_http_get(struct hc_http *h, const struct hc_kube_target *t, const char *url,
                const struct cm_curl_opts *o, struct hc_http_req **out);

/**
 * Starts a transfer on an easy handle the caller configured (URL, method,
 * request body, TLS, CURLOPT_CONNECT_TO ...). hc_http sets CURLOPT_PRIVATE,
 * ERRORBUFFER, WRITEFUNCTION/WRITEDATA, NOSIGNAL, the timeouts from @o, and
 * CURLOPT_HTTPHEADER to @headers and CURLOPT_CONNECT_TO to @connect_to (NULL =
 * none). Takes ownership of @easy and both lists, also on failure; header strings are wiped when
 * freed, since they may hold credentials. *out as for hc_http_get().
 */
int hc_http_start(struct hc_http *h, CURL *easy, struct curl_slist *headers,
                  struct curl_slist *connect_to, const struct cm_curl_opts *o,
                  struct hc_http_req **out);

/** Stops a request without calling its done callback. Not from a data callback. */
void hc_http_req_cancel(struct hc_http_req *r);

/** Requests in flight. */
size_t hc_http_active(const struct hc_http *h);

/** The multi handle underneath (borrowed): the etcd client shares it. */
struct cm_curl *hc_http_curl(struct hc_http *h);

#endif /* HEALTH_HC_HTTP_H */
