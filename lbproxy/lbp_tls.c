/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_tls.c -- TLS termination: one SSL_CTX per certificate, the SNI
 * callback that picks one, and the reference count that keeps a set alive
 * while connections made from it still run.
 *
 * Invariant: a set is never changed after lbp_tls_new() returns, so worker
 * threads share it without locks; only the reference count moves.
 */
#include "lbproxy/lbp_tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_ticket.h"

#define TLS_NAME_MAX 253 /* longest DNS name, without the trailing dot */

/* TLS 1.2 suites (Mozilla "intermediate" without DHE, which would need our own
 * parameters); TLS 1.3 keeps OpenSSL's default suites. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

/* Same value in every context of every set, so a session made under one
 * certificate is recognised as ours when the client comes back. */
static const unsigned char session_id_ctx[] = "fedgslb-proxy";
/* ALPN in wire format: length-prefixed protocol names. */
static const unsigned char alpn_protos[] = "\x08http/1.1";

struct tls_cert {
    SSL_CTX *ctx;    /* owned */
    char *display;   /* owned: first name of the certificate, for logs */
    char *cert_file; /* owned copy, for messages */
};

struct tls_name {
    char *name;       /* owned, lower case; for a wildcard the suffix ".x.y" */
    bool is_wildcard; /* "*.x.y": matches exactly one more label */
    size_t cert;      /* index into lbp_tls.certs */
};

struct lbp_tls {
    atomic_int refs;
    struct tls_cert *certs; /* owned, count entries; [0] is the default */
    size_t count;
    struct tls_name *names; /* owned, name_count entries, in certificate order */
    size_t name_count;
    size_t name_cap;
    struct lbp_tickets *tickets; /* reference or NULL (OpenSSL's own per-context key) */
};

/*
 * OpenSSL ex_data indices are process-wide and cannot be reclaimed, so the one
 * index that links an SSL to its set is allocated once for the process (a new
 * index per set would grow every SSL's ex_data array on each reload). It is
 * written once under pthread_once and read-only afterwards.
 */
static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;

static void ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    lbp_tls_unref(ptr); /* NULL for SSLs that lbp_tls_new_ssl did not make */
}

static void ex_init(void)
{
    ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ex_free);
}

static int get_ex_index(void)
{
    pthread_once(&ex_once, ex_init);
    return ex_index;
}

/* Copies @len bytes of a DNS name into @out in lower case, dropping one
 * trailing dot; false if it is empty, too long or holds a NUL. */
static bool name_lower(const char *s, size_t len, char *out, size_t cap)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > TLS_NAME_MAX || len >= cap || memchr(s, '\0', len) != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    return true;
}

static int add_name(struct lbp_tls *t, size_t cert, const char *s, size_t len)
{
    char buf[TLS_NAME_MAX + 1];
    struct tls_name *n;
    const char *stored = buf;
    bool wild = false;

    if (!name_lower(s, len, buf, sizeof(buf))) {
        cm_log_warn("tls cert=%s: ignoring an unusable name", t->certs[cert].cert_file);
        return CM_OK;
    }
    if (strchr(buf, '*') != NULL) {
        /* Only a whole leftmost label may be a wildcard ("*.x.y", RFC 6125 6.4.3),
         * and it needs at least two labels after it. */
        const char *rest = buf + 1;
        if (buf[0] != '*' || buf[1] != '.' || strchr(rest, '*') != NULL ||
            strchr(rest + 1, '.') == NULL) {
            cm_log_warn("tls cert=%s name=%s: unsupported wildcard, ignored",
                        t->certs[cert].cert_file, buf);
            return CM_OK;
        }
        stored = rest; /* ".x.y" */
        wild = true;
    }
    if (t->name_count == t->name_cap) {
        size_t cap = t->name_cap == 0 ? 8 : 2 * t->name_cap;
        struct tls_name *grown = realloc(t->names, cap * sizeof(*grown));
        if (grown == NULL)
            return CM_ENOMEM;
        t->names = grown;
        t->name_cap = cap;
    }
    n = &t->names[t->name_count];
    n->name = strdup(stored);
    if (n->name == NULL)
        return CM_ENOMEM;
    n->is_wildcard = wild;
    n->cert = cert;
    t->name_count++;
    if (t->certs[cert].display == NULL) {
        t->certs[cert].display = strdup(buf);
        if (t->certs[cert].display == NULL)
            return CM_ENOMEM;
    }
    return CM_OK;
}

/* Collects the SAN DNS names of @x, or its CN when it has no SAN DNS name. */
static int add_cert_names(struct lbp_tls *t, size_t cert, X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t before = t->name_count;
    int rc = CM_OK;

    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && rc == CM_OK; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_DNS)
            continue;
        rc = add_name(t, cert, (const char *)ASN1_STRING_get0_data(gn->d.dNSName),
                      (size_t)ASN1_STRING_length(gn->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error(); /* a malformed extension leaves an error behind */
    if (rc != CM_OK || t->name_count > before)
        return rc;

    const X509_NAME *subj = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx >= 0) {
        const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        rc = add_name(t, cert, (const char *)ASN1_STRING_get0_data(cn),
                      (size_t)ASN1_STRING_length(cn));
    }
    if (rc == CM_OK && t->name_count == before)
        cm_log_warn("tls cert=%s: no DNS name; used only as the default", t->certs[cert].cert_file);
    return rc;
}

/* Index of the certificate for @name (already lower case), or -1. Exact names
 * win over wildcards; among equals, the earlier certificate wins. */
static long find_cert(const struct lbp_tls *t, const char *name)
{
    const char *dot = strchr(name, '.');

    for (size_t i = 0; i < t->name_count; i++) {
        if (!t->names[i].is_wildcard && strcmp(t->names[i].name, name) == 0)
            return (long)t->names[i].cert;
    }
    if (dot == NULL || dot == name)
        return -1;
    for (size_t i = 0; i < t->name_count; i++) {
        if (t->names[i].is_wildcard && strcmp(t->names[i].name, dot) == 0)
            return (long)t->names[i].cert;
    }
    return -1;
}

static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    const struct lbp_tls *t = arg;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char buf[TLS_NAME_MAX + 1];
    long cert;

    (void)alert;
    if (sni == NULL || !name_lower(sni, strlen(sni), buf, sizeof(buf)))
        return SSL_TLSEXT_ERR_OK; /* no SNI: the default certificate */
    cert = find_cert(t, buf);
    if (cert <= 0)
        return SSL_TLSEXT_ERR_OK; /* unknown name or the default already */
    if (SSL_set_SSL_CTX(ssl, t->certs[cert].ctx) == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, alpn_protos, sizeof(alpn_protos) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no http/1.1 offered: no ALPN at all */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Session tickets with the proxy's rotating keys (lbp_ticket.h). OpenSSL asks
 * the context a connection started with, which holds the callback. */
static int ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct lbp_tls *t = SSL_get_ex_data(ssl, get_ex_index());
    int rc;

    if (t == NULL || t->tickets == NULL)
        return enc ? -1 : 0;
    rc = lbp_tickets_crypt(t->tickets, name, iv, ectx, hctx, enc);
    /* TLS 1.3 clients use a ticket once (RFC 8446 C.4; OpenSSL's client
     * keeps no other): a resumption must hand out a new one, which OpenSSL
     * does only when asked to renew. Otherwise every other connection of
     * such a client would make a full handshake. */
    if (!enc && rc == 1 && SSL_version(ssl) == TLS1_3_VERSION)
        rc = 2;
    return rc;
}

/* The last OpenSSL error as text, for messages; clears the queue. */
static const char *ssl_errstr(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        cm_strlcpy(buf, "unknown error", cap);
    else
        ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

static SSL_CTX *ctx_new(char *err, size_t errlen)
{
    char groups[] = TLS_GROUPS; /* the macro below casts away const */
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", ssl_errstr(ebuf, sizeof(ebuf)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A client that closes TCP without close_notify ends its stream (HTTP
     * frames its own messages); renegotiation is refused with an alert. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    /* lbp_io: partial writes of one record repeated from a moving buffer;
     * buffers released while a connection is idle; read-ahead, so one recv
     * takes in every record that has arrived. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, groups) != 1 ||
        SSL_CTX_set_session_id_context(ctx, session_id_ctx, sizeof(session_id_ctx) - 1) != 1) {
        snprintf(err, errlen, "TLS settings: %s", ssl_errstr(ebuf, sizeof(ebuf)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    return ctx;
}

static BIO *open_pem(const char *path, int *rc, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    BIO *bio;

    if (fp == NULL) {
        int e = errno;
        *rc = cm_err_from_errno(e);
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        return NULL;
    }
    bio = BIO_new_fp(fp, BIO_CLOSE);
    if (bio == NULL) {
        fclose(fp);
        *rc = cm_err_oom(err, errlen, path);
    }
    return bio;
}

static void warn_validity(const char *path, X509 *x)
{
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
        cm_log_warn("tls cert=%s: certificate has expired", path);
    else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
        cm_log_warn("tls cert=%s: certificate is not valid yet", path);
}

/* Reads the leaf and its chain from @path into @ctx. */
static int load_chain(SSL_CTX *ctx, const char *path, X509 **leaf_out, char *err, size_t errlen)
{
    int rc = CM_OK;
    X509 *leaf = NULL;
    X509 *ca;
    BIO *bio = open_pem(path, &rc, err, errlen);

    if (bio == NULL)
        return rc;
    leaf = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL);
    if (leaf == NULL) {
        ERR_clear_error();
        rc = CM_EPARSE;
        snprintf(err, errlen, "%s: no certificate", path);
        goto out;
    }
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        char ebuf[256];
        rc = CM_ECONFIG;
        snprintf(err, errlen, "%s: certificate rejected: %s", path, ssl_errstr(ebuf, sizeof(ebuf)));
        goto out;
    }
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
            X509_free(ca);
            rc = CM_ENOMEM;
            snprintf(err, errlen, "%s: cannot add chain certificate", path);
            goto out;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line" */
    warn_validity(path, leaf);
    *leaf_out = leaf;
    leaf = NULL;
out:
    X509_free(leaf);
    BIO_free(bio);
    return rc;
}

static int load_key(SSL_CTX *ctx, const struct lbp_tls_cert *c, char *err, size_t errlen)
{
    int rc = CM_OK;
    EVP_PKEY *key = NULL;
    BIO *bio = open_pem(c->key_file, &rc, err, errlen);

    if (bio == NULL)
        return rc;
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (key == NULL) {
        ERR_clear_error();
        rc = CM_EPARSE;
        snprintf(err, errlen, "%s: no private key", c->key_file);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        rc = CM_ECONFIG;
        snprintf(err, errlen, "%s: key does not match certificate %s", c->key_file, c->cert_file);
        goto out;
    }
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

/* Loads entry @i; on failure *@part tells which of its files is to blame. */
static int load_one(struct lbp_tls *t, size_t i, const struct lbp_tls_cert *c,
                    enum lbp_tls_part *part, char *err, size_t errlen)
{
    struct tls_cert *tc = &t->certs[i];
    X509 *leaf = NULL;
    int rc;

    *part = LBP_TLS_PART_NONE;
    if (c->cert_file == NULL || c->key_file == NULL) {
        *part = c->cert_file == NULL ? LBP_TLS_PART_CERT : LBP_TLS_PART_KEY;
        snprintf(err, errlen, "certificate %zu: cert_file and key_file are required", i);
        return CM_EINVAL;
    }
    tc->cert_file = strdup(c->cert_file);
    if (tc->cert_file == NULL)
        return CM_ENOMEM;
    tc->ctx = ctx_new(err, errlen);
    if (tc->ctx == NULL)
        return CM_ENOMEM;
    *part = LBP_TLS_PART_CERT;
    rc = load_chain(tc->ctx, c->cert_file, &leaf, err, errlen);
    if (rc == CM_OK) {
        *part = LBP_TLS_PART_KEY;
        rc = load_key(tc->ctx, c, err, errlen);
    }
    if (rc == CM_OK) {
        *part = LBP_TLS_PART_CERT;
        rc = add_cert_names(t, i, leaf);
    }
    if (rc == CM_ENOMEM)
        cm_err_oom(err, errlen, c->cert_file);
    X509_free(leaf);
    return rc;
}

static void tls_free(struct lbp_tls *t)
{
    for (size_t i = 0; i < t->count; i++) {
        SSL_CTX_free(t->certs[i].ctx);
        free(t->certs[i].display);
        free(t->certs[i].cert_file);
    }
    for (size_t i = 0; i < t->name_count; i++)
        free(t->names[i].name);
    free(t->certs);
    free(t->names);
    lbp_tickets_unref(t->tickets);
    free(t);
}

int lbp_tls_new(const struct lbp_tls_cert *certs, size_t n, struct lbp_tls **out, char *err,
                size_t errlen)
{
    return lbp_tls_new_at(certs, n, out, NULL, err, errlen);
}

int lbp_tls_new_at(const struct lbp_tls_cert *certs, size_t n, struct lbp_tls **out,
                   struct lbp_tls_fault *fault, char *err, size_t errlen)
{
    struct lbp_tls_fault where = {0, LBP_TLS_PART_NONE};
    struct lbp_tls *t = NULL;
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if (n == 0) {
        snprintf(err, errlen, "no certificate configured");
        rc = CM_EINVAL;
        goto out;
    }
    if (get_ex_index() < 0) {
        snprintf(err, errlen, "SSL_get_ex_new_index failed");
        rc = CM_ENOMEM;
        goto out;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->certs = calloc(n, sizeof(*t->certs))) == NULL) {
        rc = cm_err_oom(err, errlen, NULL);
        goto out;
    }
    atomic_init(&t->refs, 1);
    t->count = n;
    for (size_t i = 0; i < n; i++) {
        where.index = i;
        rc = load_one(t, i, &certs[i], &where.part, err, errlen);
        if (rc != CM_OK)
            goto out;
    }
    /* SNI is only ever looked at on the context an SSL starts with. */
    SSL_CTX_set_tlsext_servername_callback(t->certs[0].ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(t->certs[0].ctx, t);
    *out = t;
    t = NULL;
    rc = CM_OK;
out:
    if (t != NULL)
        tls_free(t);
    if (rc != CM_OK && fault != NULL)
        *fault = where;
    return rc;
}

/* Session resumption settings on every context of @t (before any SSL is made). */
static void sessions_apply(struct lbp_tls *t, const struct cm_conf_proxy_tls_sessions *sess,
                           struct lbp_tickets *tickets)
{
    /* A ticket lives until its key is gone (two rotation periods): the
     * session timeout must not end it earlier, and it is the lifetime hint. */
    long lifetime_s = 2L * (long)sess->ticket_key_rotation_s;

    if (tickets != NULL && sess->tickets) {
        lbp_tickets_ref(tickets);
        t->tickets = tickets;
    }
    for (size_t i = 0; i < t->count; i++) {
        SSL_CTX *ctx = t->certs[i].ctx;

        SSL_CTX_set_timeout(ctx, lifetime_s);
        if (!sess->tickets)
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        else if (t->tickets != NULL)
            SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        if (sess->cache_size == 0) {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        } else {
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
            SSL_CTX_sess_set_cache_size(ctx, (long)sess->cache_size);
        }
    }
}

int lbp_tls_from_listen(const struct cm_conf_proxy_listen *l, size_t idx,
                        const struct cm_conf_proxy_tls_sessions *sess, struct lbp_tickets *tickets,
                        struct lbp_tls **out, char *err, size_t errlen)
{
    static const char *const part_key[] = {"", ".cert", ".key"};
    const struct cm_conf_proxy_tls *tc = &l->tls;
    struct lbp_tls_cert *certs = NULL;
    struct lbp_tls_fault fault = {0, LBP_TLS_PART_NONE};
    char reason[1024];
    int rc;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (!tc->enabled)
        return CM_OK;
    if (tc->certificate_count > 0) {
        certs = calloc(tc->certificate_count, sizeof(*certs));
        if (certs == NULL) {
            snprintf(err, errlen, "proxy.listen[%zu].tls: out of memory", idx);
            return CM_ENOMEM;
        }
    }
    for (size_t i = 0; i < tc->certificate_count; i++) {
        certs[i].cert_file = tc->certificates[i].cert;
        certs[i].key_file = tc->certificates[i].key;
    }
    rc = lbp_tls_new_at(certs, tc->certificate_count, out, &fault, reason, sizeof(reason));
    if (rc != CM_OK && fault.part == LBP_TLS_PART_NONE && tc->certificate_count == 0)
        snprintf(err, errlen, "proxy.listen[%zu].tls.certificates: %s", idx, reason);
    else if (rc != CM_OK)
        snprintf(err, errlen, "proxy.listen[%zu].tls.certificates[%zu]%s: %s", idx, fault.index,
                 part_key[fault.part], reason);
    if (rc == CM_OK && sess != NULL)
        sessions_apply(*out, sess, tickets);
    free(certs);
    return rc;
}

size_t lbp_tls_count(const struct lbp_tls *t)
{
    return t->count;
}

void lbp_tls_ref(struct lbp_tls *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void lbp_tls_unref(struct lbp_tls *t)
{
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        tls_free(t);
}

SSL *lbp_tls_new_ssl(struct lbp_tls *t)
{
    SSL *ssl = SSL_new(t->certs[0].ctx);

    if (ssl == NULL)
        return NULL;
    lbp_tls_ref(t);
    if (SSL_set_ex_data(ssl, get_ex_index(), t) != 1) {
        lbp_tls_unref(t);
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

const char *lbp_tls_chosen_name(const SSL *ssl)
{
    const struct lbp_tls *t;
    const SSL_CTX *ctx;

    if (ssl == NULL)
        return "";
    t = SSL_get_ex_data(ssl, get_ex_index());
    ctx = SSL_get_SSL_CTX(ssl);
    if (t == NULL)
        return "";
    for (size_t i = 0; i < t->count; i++) {
        if (t->certs[i].ctx == ctx)
            return t->certs[i].display != NULL ? t->certs[i].display : "";
    }
    return "";
}
