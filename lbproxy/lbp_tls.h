/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_tls.h -- TLS termination for the proxy: a set of certificates, one
 * chosen per connection by SNI.
 *
 *   lbp_tls (immutable once built; reference counted)
 *    +- one SSL_CTX per certificate (TLS 1.2 minimum, ALPN http/1.1,
 *       server cipher preference, session cache, session tickets under the
 *       proxy's rotating keys: lbp_ticket.h)
 *    +- name table: each certificate's subjectAltName DNS names (CN only
 *       when there is no SAN); "*.example.test" matches exactly one label
 *
 * The first certificate is the default for clients that send no SNI or an
 * unknown name. Reload builds a new set and swaps it in; connections made
 * from the old set keep it alive (each SSL holds a reference) until they
 * close.
 */
#ifndef LBPROXY_LBP_TLS_H
#define LBPROXY_LBP_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct lbp_tls;

struct lbp_tls_cert {
    const char *cert_file; /* PEM chain, leaf first */
    const char *key_file;  /* PEM private key */
};

/**
 * Loads @n (>= 1) certificates. On failure returns a CM_* code and a reason
 * naming the file and what is wrong ("conf/tls/a.crt: no certificate",
 * "conf/tls/a.key: key does not match certificate conf/tls/a.crt") in @err.
 */
int lbp_tls_new(const struct lbp_tls_cert *certs, size_t n, struct lbp_tls **out, char *err,
                size_t errlen);

/* The part of a certificate list that lbp_tls_new_at() blames for a failure. */
enum lbp_tls_part {
    LBP_TLS_PART_NONE = 0, /* the set as a whole (empty list, out of memory) */
    LBP_TLS_PART_CERT = 1, /* certs[index].cert_file: unreadable, no certificate */
    LBP_TLS_PART_KEY = 2,  /* certs[index].key_file: unreadable, no key, key mismatch */
};

struct lbp_tls_fault {
    size_t index; /* entry at fault (0 for LBP_TLS_PART_NONE) */
    enum lbp_tls_part part;
};

/**
 * lbp_tls_new() that also says which entry and which file failed (@fault may
 * be NULL; it is written only on failure).
 */
int lbp_tls_new_at(const struct lbp_tls_cert *certs, size_t n, struct lbp_tls **out,
                   struct lbp_tls_fault *fault, char *err, size_t errlen);

struct cm_conf_proxy_listen;
struct cm_conf_proxy_tls_sessions;
struct lbp_tickets;

/**
 * The set of configuration entry proxy.listen[@idx] (@l borrowed), the one
 * code path shared by the daemon (start, SIGHUP) and --check-config. CM_OK
 * with *@out = NULL when the entry has no "tls". On failure @err holds the
 * JSON path and the reason, e.g.
 * "proxy.listen[0].tls.certificates[1].key: /etc/b.key: key does not match
 * certificate /etc/b.crt". Reads files: call at startup/reload only.
 *
 * Session resumption follows @sess (proxy.tls_sessions; NULL: OpenSSL's
 * defaults): session timeout two rotation periods, the session cache size,
 * and tickets under the keys of @tickets (a reference is taken; NULL:
 * OpenSSL's own key per context, as for --check-config).
 */
int lbp_tls_from_listen(const struct cm_conf_proxy_listen *l, size_t idx,
                        const struct cm_conf_proxy_tls_sessions *sess, struct lbp_tickets *tickets,
                        struct lbp_tls **out, char *err, size_t errlen);

/** Number of certificates in @t. */
size_t lbp_tls_count(const struct lbp_tls *t);
void lbp_tls_ref(struct lbp_tls *t);
/** Drops a reference. Accepts NULL. */
void lbp_tls_unref(struct lbp_tls *t);

/**
 * A new server-side SSL for one accepted connection (for lbp_io_new_tls());
 * the SNI callback switches it to the matching certificate. The SSL holds a
 * reference to @t until SSL_free. NULL on ENOMEM.
 */
SSL *lbp_tls_new_ssl(struct lbp_tls *t);

/** The name of the certificate @ssl ended up with (for logs), or "". */
const char *lbp_tls_chosen_name(const SSL *ssl);

#endif /* LBPROXY_LBP_TLS_H */
