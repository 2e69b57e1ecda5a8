/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_publish.h -- pushes this vantage's state document to every consumer
 * listed in health.publish_to (dnsd, the proxy): PUT <url>/v1/state with
 * "Authorization: Bearer <token>" and Content-Type application/json, on the
 * shared hc_http multi handle.
 *
 *   hc_publish
 *    +- current document (newest generation offered; owned copy)
 *    +- target ... one per URL: at most one PUT in flight, the generation it
 *                  last acknowledged, backoff state
 *
 * Rules:
 * - hc_publish_offer() with a newer generation sends it to every idle target
 *   at once; a target busy with an older one gets the newest when that PUT
 *   ends. A target never receives an older generation after a newer one.
 * - Every params.full_interval_ms the current document is sent again to every
 *   target (same generation: consumers treat it as "the vantage is alive").
 * - Success: 2xx. Both consumers (cm_store) answer 200 to an identical
 *   re-push of the generation they hold. A 409 (an older generation than the
 *   target holds, or the same generation with different content) and other
 *   4xx are logged with the response body's reason and retried only at the
 *   full interval; they are not transient. Connection errors, timeouts and
 *   5xx are retried with exponential backoff (backoff_min_ms doubling up to
 *   backoff_max_ms, +-20 % jitter), with the newest document at that time.
 * - The token is never logged; errors name the URL (no credentials in it).
 */
#ifndef HEALTH_HC_PUBLISH_H
#define HEALTH_HC_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct hc_http;
struct hc_publish;
struct cm_buf;

struct hc_publish_params {
    uint32_t full_interval_ms; /* health.publish_interval_ms, default 10000 */
    uint32_t timeout_ms;       /* per PUT, default 5000 */
    uint32_t backoff_min_ms;   /* default 250 */
    uint32_t backoff_max_ms;   /* default 10000 */
    /* For https:// targets; borrowed paths that outlive the publisher (the
     * conf they come from does). NULL = the system's CAs / no client cert. */
    const char *ca_file;
    const char *cert;
    const char *key;
};

struct hc_publish_target_stats {
    const char *url; /* borrowed */
    bool in_flight;
    bool ok;                   /* the last attempt succeeded */
    uint64_t acked_generation; /* 0 = none yet */
    uint64_t sent, succeeded, failed;
    long last_status;     /* 0 = no HTTP response */
    char last_error[160]; /* "" after a success */
};

void hc_publish_params_default(struct hc_publish_params *p);

/**
 * @urls: base URLs ("http://127.0.0.1:9153"), copied; "/v1/state" is
 * appended. @token: copied, may be NULL (no Authorization header). @base and
 * @http borrowed. NULL on ENOMEM. Sends nothing until the first offer.
 */
struct hc_publish *hc_publish_new(struct event_base *base, struct hc_http *http,
                                  const char *const *urls, size_t url_count, const char *token,
                                  const struct hc_publish_params *p);
/**
 * Cancels PUTs in flight. Accepts NULL. The token copy is wiped. Call it
 * before hc_http_free() of the hc_http it was given.
 */
void hc_publish_free(struct hc_publish *pub);

/**
 * The newest document: @text (@len bytes, copied) with @generation. An
 * offer not newer than the current one is ignored (CM_OK). CM_ENOMEM.
 */
int hc_publish_offer(struct hc_publish *pub, uint64_t generation, const char *text, size_t len);

size_t hc_publish_target_count(const struct hc_publish *pub);
void hc_publish_target_stats(const struct hc_publish *pub, size_t i,
                             struct hc_publish_target_stats *out);

/** Prometheus lines (fedgslb_health_publish_*{target="..."}) appended to @out. */
void hc_publish_metrics(const struct hc_publish *pub, struct cm_buf *out);

#endif /* HEALTH_HC_PUBLISH_H */
