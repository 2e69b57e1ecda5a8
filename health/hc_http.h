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

struct cm_curl;
struct hc_http;
struct hc_http_req;
struct hc_kube_target;

/**
 * Response bytes (borrowed for the call). @status is the HTTP status of the
 * response they belong to. Return 0 to go on, non-zero to abort the transfer
 * (the done callback then gets aborted=true). Must not free or cancel any
 * request.
 */
typedef int hc_http_data_fn(void *arg, long status, const char *data, size_t len);

/**
 * Completion. @rc is CM_OK when a complete HTTP response arrived (whatever
 * its status), else a CM_* code (CM_ETIMEDOUT, CM_ECONNREFUSED, CM_EIO ...)
 * with @reason (borrowed: curl's error text, never secrets). @aborted: the
 * data callback stopped it. The request is already freed; starting new
 * requests or cancelling others from here is fine.
 */
typedef void hc_http_done_fn(void *arg, int rc, long status, bool aborted, const char *reason);

/**
 * Called once when a transfer ends (before the done callback, while the easy
 * handle still exists) so the caller can read CURLINFO_* timings. @easy is
 * borrowed; only curl_easy_getinfo() on it.
 */
typedef void hc_http_info_fn(void *arg, CURL *easy);

struct hc_http_opts {
    long timeout_ms;         /* whole transfer; 0 = none (watch streams use a bound) */
    long connect_timeout_ms; /* 0 = 10 s */
    hc_http_data_fn *on_data;
    hc_http_done_fn *on_done;
    hc_http_info_fn *on_info; /* optional */
    void *arg;
};

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
                const struct hc_http_opts *o, struct hc_http_req **out);

/**
 * Starts a transfer on an easy handle the caller configured (URL, method,
 * request body, TLS, CURLOPT_CONNECT_TO ...). hc_http sets CURLOPT_PRIVATE,
 * ERRORBUFFER, WRITEFUNCTION/WRITEDATA, NOSIGNAL, the timeouts from @o, and
 * CURLOPT_HTTPHEADER to @headers and CURLOPT_CONNECT_TO to @connect_to (NULL =
 * none). Takes ownership of @easy and both lists, also on failure; header strings are wiped when
 * freed, since they may hold credentials. *out as for hc_http_get().
 */
int hc_http_start(struct hc_http *h, CURL *easy, struct curl_slist *headers,
                  struct curl_slist *connect_to, const struct hc_http_opts *o,
                  struct hc_http_req **out);

/** Stops a request without calling its done callback. Not from a data callback. */
void hc_http_req_cancel(struct hc_http_req *r);

/** Requests in flight. */
size_t hc_http_active(const struct hc_http *h);

/** The multi handle underneath (borrowed): the etcd client shares it. */
struct cm_curl *hc_http_curl(struct hc_http *h);

#endif /* HEALTH_HC_HTTP_H */
