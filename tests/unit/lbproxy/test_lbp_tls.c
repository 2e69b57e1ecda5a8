/* SPDX-License-Identifier: Apache-2.0 */
/* test_lbp_tls.c -- the proxy's certificate set: loading and its errors, real
 * handshakes over a socketpair choosing the certificate by SNI, TLS 1.1
 * refused, and a set that outlives its last owner while an SSL still uses it
 * (run under ASan to prove the reference count). */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "lbproxy/lbp_tls.h"

struct fixture {
    char dir[64]; /* temporary directory with the generated files */
};

static char *path_of(const struct fixture *fx, const char *name)
{
    static char path[8][512];
    static int i;

    i = (i + 1) % 8;
    snprintf(path[i], sizeof(path[i]), "%s/%s", fx->dir, name);
    return path[i];
}

/* A self-signed P-256 certificate made by the openssl CLI. */
static int make_cert(const struct fixture *fx, const char *base, const char *cn, const char *san)
{
    char cmd[2048];
    char ext[256] = "";

    if (san != NULL)
        snprintf(ext, sizeof(ext), "-addext 'subjectAltName=%s'", san);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout '%s/%s.key' -out '%s/%s.crt' -days 30 -subj '/CN=%s' %s 2>/dev/null",
             fx->dir, base, fx->dir, base, cn, ext);
    return system(cmd) == 0 ? 0 : -1;
}

/* A certificate that expired an hour ago (the CLI of OpenSSL 3.0 cannot make
 * one), written with its key to base.crt / base.key. */
static int make_expired(const struct fixture *fx, const char *base)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    char file[64];
    FILE *f;
    int rc = -1;

    if (key == NULL || x == NULL)
        goto out;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -7200);
    X509_gmtime_adj(X509_getm_notAfter(x), -3600);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"old.example.test",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, key, EVP_sha256()) == 0)
        goto out;
    snprintf(file, sizeof(file), "%s.crt", base);
    f = fopen(path_of(fx, file), "w");
    if (f == NULL)
        goto out;
    PEM_write_X509(f, x);
    fclose(f);
    snprintf(file, sizeof(file), "%s.key", base);
    f = fopen(path_of(fx, file), "w");
    if (f == NULL)
        goto out;
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

static int put(const struct fixture *fx, const char *name, const char *text)
{
    FILE *f = fopen(path_of(fx, name), "w");

    if (f == NULL)
        return -1;
    fputs(text, f);
    fclose(f);
    return 0;
}

static int group_setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_lbp_tls.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    *state = fx;
    if (make_cert(fx, "a", "a.example.test", "DNS:a.example.test") != 0 ||
        make_cert(fx, "b", "ignored-cn.example.test", "DNS:*.b.example.test,IP:127.0.0.1") != 0 ||
        make_cert(fx, "c", "C.Example.Test", NULL) != 0 || make_expired(fx, "expired") != 0 ||
        put(fx, "garbage.pem", "this is not PEM\n") != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[256];

    if (fx == NULL)
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return 0;
}

/* The set used by the handshake tests: a (default), *.b, c (CN only). */
static struct lbp_tls *load_abc(const struct fixture *fx)
{
    struct lbp_tls_cert certs[] = {
        {path_of(fx, "a.crt"), path_of(fx, "a.key")},
        {path_of(fx, "b.crt"), path_of(fx, "b.key")},
        {path_of(fx, "c.crt"), path_of(fx, "c.key")},
    };
    struct lbp_tls *t = NULL;
    char err[512];

    assert_int_equal(lbp_tls_new(certs, 3, &t, err, sizeof(err)), CM_OK);
    assert_string_equal(err, "");
    assert_non_null(t);
    return t;
}

static void expect_error(const struct lbp_tls_cert *certs, size_t n, int rc_want, const char *want)
{
    struct lbp_tls *t = NULL;
    char err[512];

    assert_int_equal(lbp_tls_new(certs, n, &t, err, sizeof(err)), rc_want);
    assert_null(t);
    assert_string_equal(err, want);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left on OpenSSL's queue */
}

static void test_load_ok(void **state)
{
    struct lbp_tls *t = load_abc(*state);
    struct lbp_tls *t2 = t;

    lbp_tls_ref(t2);
    lbp_tls_unref(t);
    lbp_tls_unref(t2);
    lbp_tls_unref(NULL);
}

static void test_load_errors(void **state)
{
    const struct fixture *fx = *state;
    char want[1024];
    char *missing = path_of(fx, "missing.crt");
    char *a_crt = path_of(fx, "a.crt"), *a_key = path_of(fx, "a.key");
    char *b_key = path_of(fx, "b.key"), *garbage = path_of(fx, "garbage.pem");
    struct lbp_tls_cert c[2];

    c[0] = (struct lbp_tls_cert){missing, a_key};
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", missing);
    expect_error(c, 1, CM_ENOENT, want);

    c[0] = (struct lbp_tls_cert){a_crt, missing};
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", missing);
    expect_error(c, 1, CM_ENOENT, want);

    c[0] = (struct lbp_tls_cert){garbage, a_key};
    snprintf(want, sizeof(want), "%s: no certificate", garbage);
    expect_error(c, 1, CM_EPARSE, want);

    c[0] = (struct lbp_tls_cert){a_key, a_key}; /* a key where the certificate belongs */
    snprintf(want, sizeof(want), "%s: no certificate", a_key);
    expect_error(c, 1, CM_EPARSE, want);

    c[0] = (struct lbp_tls_cert){a_crt, garbage};
    snprintf(want, sizeof(want), "%s: no private key", garbage);
    expect_error(c, 1, CM_EPARSE, want);

    /* The second entry is wrong: the message names it, nothing leaks. */
    c[0] = (struct lbp_tls_cert){a_crt, a_key};
    c[1] = (struct lbp_tls_cert){a_crt, b_key};
    snprintf(want, sizeof(want), "%s: key does not match certificate %s", b_key, a_crt);
    expect_error(c, 2, CM_ECONFIG, want);

    expect_error(c, 0, CM_EINVAL, "no certificate configured");
}

static void expect_fault(const struct lbp_tls_cert *certs, size_t n, size_t index,
                         enum lbp_tls_part part)
{
    struct lbp_tls_fault f = {99, LBP_TLS_PART_NONE};
    struct lbp_tls *t = NULL;
    char err[1024];

    assert_int_not_equal(lbp_tls_new_at(certs, n, &t, &f, err, sizeof(err)), CM_OK);
    assert_null(t);
    assert_int_equal(f.index, index);
    assert_int_equal(f.part, part);
}

/* lbp_tls_new_at() blames the entry and the file that is wrong. */
static void test_fault_location(void **state)
{
    const struct fixture *fx = *state;
    char *missing = path_of(fx, "missing.crt");
    char *a_crt = path_of(fx, "a.crt"), *a_key = path_of(fx, "a.key");
    char *b_crt = path_of(fx, "b.crt"), *b_key = path_of(fx, "b.key");
    char *garbage = path_of(fx, "garbage.pem");
    struct lbp_tls_cert c[3] = {{a_crt, a_key}, {b_crt, b_key}, {a_crt, a_key}};
    struct lbp_tls_fault f = {99, LBP_TLS_PART_KEY};
    struct lbp_tls *t = NULL;
    char err[1024];

    c[1].cert_file = missing;
    expect_fault(c, 3, 1, LBP_TLS_PART_CERT);
    c[1].cert_file = garbage;
    expect_fault(c, 3, 1, LBP_TLS_PART_CERT);
    c[1] = (struct lbp_tls_cert){b_crt, missing};
    expect_fault(c, 3, 1, LBP_TLS_PART_KEY);
    c[2] = (struct lbp_tls_cert){a_crt, b_key}; /* mismatch: the key is blamed */
    c[1] = (struct lbp_tls_cert){b_crt, b_key};
    expect_fault(c, 3, 2, LBP_TLS_PART_KEY);
    expect_fault(c, 0, 0, LBP_TLS_PART_NONE);

    /* Success leaves @fault alone. */
    c[2] = (struct lbp_tls_cert){a_crt, a_key};
    assert_int_equal(lbp_tls_new_at(c, 3, &t, &f, err, sizeof(err)), CM_OK);
    assert_int_equal(f.index, 99);
    assert_int_equal(lbp_tls_count(t), 3);
    lbp_tls_unref(t);
}

/* The configuration entry's set: the JSON path and the reason in one line. */
static void test_from_listen(void **state)
{
    const struct fixture *fx = *state;
    char *a_crt = path_of(fx, "a.crt"), *a_key = path_of(fx, "a.key");
    char *b_crt = path_of(fx, "b.crt"), *b_key = path_of(fx, "b.key");
    char *missing = path_of(fx, "missing.key");
    struct cm_conf_proxy_cert certs[2] = {{a_crt, a_key}, {b_crt, a_key}};
    struct cm_conf_proxy_listen l;
    struct lbp_tls *t = (struct lbp_tls *)&l; /* must be overwritten */
    char err[2048], want[2048];

    memset(&l, 0, sizeof(l));
    assert_int_equal(lbp_tls_from_listen(&l, 0, NULL, NULL, &t, err, sizeof(err)), CM_OK);
    assert_null(t); /* no "tls": no set */

    l.tls.enabled = true;
    l.tls.certificates = certs;
    l.tls.certificate_count = 2;
    assert_int_equal(lbp_tls_from_listen(&l, 3, NULL, NULL, &t, err, sizeof(err)), CM_ECONFIG);
    assert_null(t);
    snprintf(want, sizeof(want),
             "proxy.listen[3].tls.certificates[1].key: %s: key does not match certificate %s",
             a_key, b_crt);
    assert_string_equal(err, want);

    certs[1] = (struct cm_conf_proxy_cert){missing, b_key};
    assert_int_equal(lbp_tls_from_listen(&l, 0, NULL, NULL, &t, err, sizeof(err)), CM_ENOENT);
    snprintf(want, sizeof(want),
             "proxy.listen[0].tls.certificates[1].cert: %s: cannot read: No such file or directory",
             missing);
    assert_string_equal(err, want);

    l.tls.certificate_count = 0;
    assert_int_equal(lbp_tls_from_listen(&l, 0, NULL, NULL, &t, err, sizeof(err)), CM_EINVAL);
    assert_string_equal(err, "proxy.listen[0].tls.certificates: no certificate configured");

    certs[1] = (struct cm_conf_proxy_cert){b_crt, b_key};
    l.tls.certificate_count = 2;
    assert_int_equal(lbp_tls_from_listen(&l, 0, NULL, NULL, &t, err, sizeof(err)), CM_OK);
    assert_non_null(t);
    assert_string_equal(err, "");
    assert_int_equal(lbp_tls_count(t), 2);
    lbp_tls_unref(t);
}

/* An expired certificate loads (with a warning): better a browser warning
 * than no service at all. */
static void test_expired_is_warning(void **state)
{
    const struct fixture *fx = *state;
    struct lbp_tls_cert c = {path_of(fx, "expired.crt"), path_of(fx, "expired.key")};
    struct lbp_tls *t = NULL;
    char err[256];

    assert_int_equal(lbp_tls_new(&c, 1, &t, err, sizeof(err)), CM_OK);
    assert_non_null(t);
    lbp_tls_unref(t);
}

struct hs_result {
    bool ok;                  /* both sides finished the handshake */
    char subject_cn[64];      /* CN of the certificate the client received */
    char chosen[64];          /* lbp_tls_chosen_name() on the server side */
    char alpn[16];            /* protocol the server selected, "" if none */
    int version;              /* negotiated protocol version */
    unsigned long server_err; /* first OpenSSL error of a failed server side */
    bool has_ticket;          /* the client got a session ticket */
};

/* Drives a client and @server (non-blocking, over a socketpair) until both
 * finish or one fails. */
static void handshake(SSL *server, const char *sni, int client_max_version, struct hs_result *r)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *client;
    int sv[2];
    bool cdone = false, sdone = false, failed = false;
    X509 *peer;

    memset(r, 0, sizeof(*r));
    assert_non_null(cctx);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
    if (client_max_version != 0) {
        /* Security level 0 so that the client really offers old versions. */
        SSL_CTX_set_security_level(cctx, 0);
        SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0");
        SSL_CTX_set_min_proto_version(cctx, 0);
        SSL_CTX_set_max_proto_version(cctx, client_max_version);
    }
    client = SSL_new(cctx);
    assert_non_null(client);
    assert_int_equal(SSL_set_alpn_protos(client, (const unsigned char *)"\x02h2\x08http/1.1", 12),
                     0);
    if (sni != NULL) {
        char name[256]; /* the macro casts away const */
        snprintf(name, sizeof(name), "%s", sni);
        assert_int_equal(SSL_set_tlsext_host_name(client, name), 1);
    }
    SSL_set_fd(client, sv[0]);
    SSL_set_fd(server, sv[1]);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);

    for (int i = 0; i < 1000 && !failed && !(cdone && sdone); i++) {
        if (!cdone) {
            int n = SSL_do_handshake(client);
            int e = SSL_get_error(client, n);
            if (n == 1)
                cdone = true;
            else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                failed = true;
        }
        if (!sdone && !failed) {
            int n = SSL_do_handshake(server);
            int e = SSL_get_error(server, n);
            if (n == 1) {
                sdone = true;
            } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
                r->server_err = ERR_peek_error();
                failed = true;
            }
        }
    }
    ERR_clear_error();
    r->ok = cdone && sdone && !failed;
    if (r->ok) {
        const unsigned char *p = NULL;
        unsigned int len = 0;
        char buf[8];

        peer = SSL_get1_peer_certificate(client);
        assert_non_null(peer);
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, r->subject_cn,
                                  sizeof(r->subject_cn));
        X509_free(peer);
        snprintf(r->chosen, sizeof(r->chosen), "%s", lbp_tls_chosen_name(server));
        SSL_get0_alpn_selected(client, &p, &len);
        snprintf(r->alpn, sizeof(r->alpn), "%.*s", (int)len, (const char *)p);
        r->version = SSL_version(client);
        /* TLS 1.3 tickets arrive after the handshake: one read collects them. */
        assert_true(SSL_read(client, buf, sizeof(buf)) <= 0);
        ERR_clear_error();
        r->has_ticket = SSL_SESSION_has_ticket(SSL_get0_session(client)) == 1;
    }
    SSL_free(client);
    SSL_CTX_free(cctx);
    close(sv[0]);
    close(sv[1]);
}

/* One handshake on a fresh set whose only reference is the SSL's: the
 * test's own reference is dropped before the handshake starts. */
static void handshake_fresh(const struct fixture *fx, const char *sni, int client_max,
                            struct hs_result *r)
{
    struct lbp_tls *t = load_abc(fx);
    SSL *s = lbp_tls_new_ssl(t);

    assert_non_null(s);
    lbp_tls_unref(t); /* as a reload does; the SSL keeps the set alive */
    handshake(s, sni, client_max, r);
    SSL_free(s); /* last reference: the set goes here (ASan checks both) */
}

static void test_sni_exact(void **state)
{
    struct hs_result r;

    handshake_fresh(*state, "a.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.subject_cn, "a.example.test");
    assert_string_equal(r.chosen, "a.example.test");
    assert_string_equal(r.alpn, "http/1.1");
    assert_int_equal(r.version, TLS1_3_VERSION);
    assert_true(r.has_ticket);

    handshake_fresh(*state, "A.Example.TEST", 0, &r); /* names are case-insensitive */
    assert_true(r.ok);
    assert_string_equal(r.subject_cn, "a.example.test");
}

static void test_sni_wildcard(void **state)
{
    struct hs_result r;

    handshake_fresh(*state, "x.b.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.subject_cn, "ignored-cn.example.test");
    assert_string_equal(r.chosen, "*.b.example.test");

    handshake_fresh(*state, "X-1.B.Example.Test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.chosen, "*.b.example.test");

    /* "*" is exactly one label: neither the bare parent nor two labels. */
    handshake_fresh(*state, "b.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.chosen, "a.example.test");
    handshake_fresh(*state, "y.x.b.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.chosen, "a.example.test");

    /* The CN counts only when there is no SAN. */
    handshake_fresh(*state, "ignored-cn.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.chosen, "a.example.test");
}

static void test_sni_cn_only(void **state)
{
    struct hs_result r;

    handshake_fresh(*state, "c.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.subject_cn, "C.Example.Test");
    assert_string_equal(r.chosen, "c.example.test");
}

static void test_sni_none_and_unknown(void **state)
{
    struct hs_result r;

    handshake_fresh(*state, NULL, 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.subject_cn, "a.example.test");
    assert_string_equal(r.chosen, "a.example.test");

    handshake_fresh(*state, "unknown", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.subject_cn, "a.example.test");

    handshake_fresh(*state, "unknown.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.chosen, "a.example.test");
}

static void test_tls12_ok_tls11_refused(void **state)
{
    struct hs_result r;

    handshake_fresh(*state, "x.b.example.test", TLS1_2_VERSION, &r);
    assert_true(r.ok);
    assert_int_equal(r.version, TLS1_2_VERSION);
    assert_string_equal(r.chosen, "*.b.example.test");
    assert_string_equal(r.alpn, "http/1.1");
    assert_true(r.has_ticket);

    handshake_fresh(*state, "a.example.test", TLS1_1_VERSION, &r);
    assert_false(r.ok);
    assert_int_equal(ERR_GET_REASON(r.server_err), SSL_R_UNSUPPORTED_PROTOCOL);
}

/* Many SSLs from one set, the set's owner leaving in the middle: the set
 * lives exactly as long as the last SSL (ASan reports a leak or a
 * use-after-free otherwise). */
static void test_refcount_outlives_owner(void **state)
{
    struct lbp_tls *t = load_abc(*state);
    SSL *ssl[4];
    struct hs_result r;

    for (size_t i = 0; i < 4; i++) {
        ssl[i] = lbp_tls_new_ssl(t);
        assert_non_null(ssl[i]);
    }
    lbp_tls_unref(t);
    SSL_free(ssl[0]);
    SSL_free(ssl[1]);
    handshake(ssl[2], "x.b.example.test", 0, &r);
    assert_true(r.ok);
    assert_string_equal(r.chosen, "*.b.example.test");
    SSL_free(ssl[2]);
    assert_string_equal(lbp_tls_chosen_name(ssl[3]), "a.example.test");
    SSL_free(ssl[3]);
    assert_string_equal(lbp_tls_chosen_name(NULL), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_fault_location),
        cmocka_unit_test(test_from_listen),
        cmocka_unit_test(test_expired_is_warning),
        cmocka_unit_test(test_sni_exact),
        cmocka_unit_test(test_sni_wildcard),
        cmocka_unit_test(test_sni_cn_only),
        cmocka_unit_test(test_sni_none_and_unknown),
        cmocka_unit_test(test_tls12_ok_tls11_refused),
        cmocka_unit_test(test_refcount_outlives_owner),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
