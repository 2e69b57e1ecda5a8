/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_peers.h -- whether the other name servers of the deployment answer
 * from the same state as this one: GET /v1/peers, the status page's
 * agreement indicator.
 *
 *   GET /v1/peers --> cached round fresh? --> answer from it
 *                 \-> stale and none in flight: a new round starts on the
 *                     main loop (cm_curl): GET /v1/intents of every other
 *                     name server of deployment.name_servers, bounded
 *                     timeouts, the control token; its "digest" kept
 *   answer = own digest + the last finished round --> cm_agreement
 *
 * A round is asked for only by readers of /v1/peers: nobody looking, no
 * traffic between the name servers.
 */
#ifndef DNSD_DNS_PEERS_H
#define DNSD_DNS_PEERS_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct cm_conf;
struct cm_ctl_req;
struct dns_peers;

#define DNS_PEERS_FRESH_MS   3000      /* a round this recent is answered from */
#define DNS_PEERS_TIMEOUT_MS 2000      /* one peer's whole request */
#define DNS_PEERS_CONNECT_MS 1000      /* and its connection */
#define DNS_PEERS_BODY_MAX   (1 << 20) /* a peer's /v1/intents at most */

/** On @base (borrowed; outlives it). NULL on allocation failure. */
struct dns_peers *dns_peers_new(struct event_base *base);
/** Cancels rounds in flight. Accepts NULL. */
void dns_peers_free(struct dns_peers *p);

/**
 * The /v1/peers document for @conf (its instance and the other name servers)
 * and this name server's @self_digest (taken): {"self": {"name", "digest"},
 * "pending": true until a first round finished, "agree", "intents_agree",
 * "reference", "differences", "peers": [{"name", "address", "reachable",
 * "digest", "agrees", "error", "age_ms"}]}. Starts a round when the last is
 * older than DNS_PEERS_FRESH_MS. New reference; NULL on ENOMEM.
 */
json_t *dns_peers_json(struct dns_peers *p, const struct cm_conf *conf, json_t *self_digest,
                       uint64_t now_ms);

#endif /* DNSD_DNS_PEERS_H */
