/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_curl.h -- HTTP transfers on one libcurl multi handle driven by the
 * caller's libevent loop (curl's multi-event.c pattern:
 * CURLMOPT_SOCKETFUNCTION + CURLMOPT_TIMERFUNCTION, one event per socket,
 * curl_multi_socket_action). No threads; HTTP/2 when the server offers it.
 *
 *   cm_curl (one per process)
 *    +- curl multi, timer event, socket events
 *    +- cm_curl_req ... one easy handle each, configured by the caller
 *
 * Used by fedgslb-health (Kubernetes API servers, probes, pushes; its
 * hc_http adds kubeconfig credentials on top) and by every etcd client
 * (cm_etcd). Response bytes are handed to the request's data callback as
 * they arrive (watch streams never end on their own); completion calls the
 * done callback once, after the request has been released.
 */
#ifndef COMMON_CM_CURL_H
#define COMMON_CM_CURL_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

struct cm_curl;
struct cm_curl_req;

/**
 * Response bytes (borrowed for the call). @status is the HTTP status of the
 * response they belong to. Return 0 to go on, non-zero to abort the transfer
 * (the done callback then gets aborted=true). Must not free or cancel any
 * request.
 */
typedef int cm_curl_data_fn(void *arg, long status, const char *data, size_t len);

/**
 * Completion. @rc is CM_OK when a complete HTTP response arrived (whatever
 * its status), else a CM_* code (CM_ETIMEDOUT, CM_ECONNREFUSED, CM_EIO ...)
 * with @reason (borrowed: curl's error text, never secrets). @aborted: the
 * data callback stopped it. The request is already freed; starting new
 * requests or cancelling others from here is fine.
 */
typedef void cm_curl_done_fn(void *arg, int rc, long status, bool aborted, const char *reason);

/**
 * Called once when a transfer ends (before the done callback, while the easy
 * handle still exists) so the caller can read CURLINFO_* timings. @easy is
 * borrowed; only curl_easy_getinfo() on it.
 */
typedef void cm_curl_info_fn(void *arg, CURL *easy);

struct cm_curl_opts {
    long timeout_ms;         /* whole transfer; 0 = none (watch streams use a bound) */
    long connect_timeout_ms; /* 0 = 10 s */
    cm_curl_data_fn *on_data;
    cm_curl_done_fn *on_done;
    cm_curl_info_fn *on_info; /* optional */
    void *arg;
};

/** One multi handle on @base (borrowed; outlives it). NULL on failure. */
struct cm_curl *cm_curl_new(struct event_base *base);
/** Cancels every request (their done callbacks are NOT called). Accepts NULL. */
void cm_curl_free(struct cm_curl *c);

/**
 * Starts a transfer on an easy handle the caller configured (URL, method,
 * request body, TLS ...). cm_curl sets CURLOPT_PRIVATE, ERRORBUFFER,
 * WRITEFUNCTION/WRITEDATA, NOSIGNAL, the timeouts from @o, and
 * CURLOPT_HTTPHEADER to @headers and CURLOPT_CONNECT_TO to @connect_to (NULL
 * = none). Takes ownership of @easy and both lists, also on failure; header
 * strings are wiped when freed, since they may hold credentials. On success
 * *out (if not NULL) is a handle for cm_curl_req_cancel(), valid until
 * on_done runs. CM_ENOMEM.
 */
int cm_curl_start(struct cm_curl *c, CURL *easy, struct curl_slist *headers,
                  struct curl_slist *connect_to, const struct cm_curl_opts *o,
                  struct cm_curl_req **out);

/** Stops a request without calling its done callback. Accepts NULL. Not from a data callback. */
void cm_curl_req_cancel(struct cm_curl_req *r);

/** Requests in flight. */
size_t cm_curl_active(const struct cm_curl *c);

/** Frees a header list after wiping every string (they may hold a token). Accepts NULL. */
void cm_curl_headers_free(struct curl_slist *headers);

#endif /* COMMON_CM_CURL_H */
