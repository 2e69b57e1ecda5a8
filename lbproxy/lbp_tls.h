/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_tls.h -- TLS termination for the proxy: a set of certificates, one
 * chosen per connection by SNI.
 *
 *   lbp_tls (immutable once built; reference counted)
 *    +- one SSL_CTX per certificate (TLS 1.2 minimum, ALPN http/1.1,
 *       server cipher preference, session tickets)
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
 * "conf/tls/a.key: does not match conf/tls/a.crt") in @err.
 */
int lbp_tls_new(const struct lbp_tls_cert *certs, size_t n, struct lbp_tls **out, char *err,
                size_t errlen);
void lbp_tls_ref(struct lbp_tls *t);
/** Drops a reference. Accepts NULL. */
void lbp_tls_unref(struct lbp_tls *t);

/**
 * A new server-side SSL for one accepted connection (for
 * bufferevent_openssl_socket_new(..., BUFFEREVENT_SSL_ACCEPTING, ...)); the
 * SNI callback switches it to the matching certificate. The SSL holds a
 * reference to @t until SSL_free. NULL on ENOMEM.
 */
SSL *lbp_tls_new_ssl(struct lbp_tls *t);

/** The name of the certificate @ssl ended up with (for logs), or "". */
const char *lbp_tls_chosen_name(const SSL *ssl);

#endif /* LBPROXY_LBP_TLS_H */
