/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_ticket.h -- the keys that protect TLS session tickets (RFC 5077,
 * RFC 8446 4.6.1): made at random in this process, never written anywhere
 * or shared with another, and rotated by the owner on a timer.
 *
 *   rotation:   ... | key A encrypts | key B encrypts | key C encrypts | ...
 *   decrypts:         A              | A, B           | B, C
 *
 * The current key encrypts new tickets; the previous one still decrypts (the
 * client then gets a new ticket under the current key); older ones are
 * gone. A ticket therefore resumes for at least one rotation period and at
 * most two. Keys are AES-256-CBC + HMAC-SHA256 (OpenSSL's own ticket
 * format) with random 16-byte names.
 *
 * Single-threaded: rotation and the ticket callback run on the proxy's
 * event loop. Reference counted: every TLS set built with the ring holds one.
 */
#ifndef LBPROXY_LBP_TICKET_H
#define LBPROXY_LBP_TICKET_H

#include <stdint.h>

#include <openssl/evp.h>

struct lbp_tickets;

/** A ring with one fresh key (refs 1). NULL on ENOMEM or when the RNG fails. */
struct lbp_tickets *lbp_tickets_new(void);
void lbp_tickets_ref(struct lbp_tickets *k);
/** Drops a reference; the last one wipes the keys and frees. Accepts NULL. */
void lbp_tickets_unref(struct lbp_tickets *k);

/**
 * A new current key; the current one becomes the previous one and the
 * previous one is wiped. CM_EIO when the RNG fails (the keys stay as they
 * were).
 */
int lbp_tickets_rotate(struct lbp_tickets *k);
/** Keys made so far (the first one counts). */
uint64_t lbp_tickets_made(const struct lbp_tickets *k);

/**
 * The body of an SSL_CTX_set_tlsext_ticket_key_evp_cb() callback (same
 * parameters and return values): @enc 1 fills @name and @iv and sets up
 * @ectx / @hctx with the current key (1, or -1 on an internal error);
 * @enc 0 looks @name up: 0 unknown (full handshake), 1 current key, 2
 * previous key (the ticket is renewed), -1 internal error.
 */
int lbp_tickets_crypt(struct lbp_tickets *k, unsigned char name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc);

#endif /* LBPROXY_LBP_TICKET_H */
