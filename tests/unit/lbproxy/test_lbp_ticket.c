/* SPDX-License-Identifier: Apache-2.0 */
/* test_lbp_ticket.c -- session ticket keys: what the encrypt side sets up
 * decrypts and authenticates under the key it names, a ticket under the
 * previous key still opens (and asks for renewal), one two rotations old or
 * under a name never made does not, and every key is new. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "common/cm_err.h"
#include "lbproxy/lbp_ticket.h"

struct sealed {
    unsigned char name[16];
    unsigned char iv[EVP_MAX_IV_LENGTH];
    unsigned char ct[64];
    int ct_len;
    unsigned char tag[EVP_MAX_MD_SIZE];
    size_t tag_len;
};

static EVP_MAC_CTX *hmac_new(void)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h;

    assert_non_null(mac);
    h = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    assert_non_null(h);
    return h;
}

/* What OpenSSL does with a new ticket: the callback sets the keys, then the
 * state is encrypted and MACed. */
static void seal(struct lbp_tickets *k, const char *msg, struct sealed *s)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_MAC_CTX *h = hmac_new();
    int n = 0, fin = 0;

    assert_non_null(c);
    assert_int_equal(lbp_tickets_crypt(k, s->name, s->iv, c, h, 1), 1);
    assert_int_equal(EVP_EncryptUpdate(c, s->ct, &n, (const unsigned char *)msg, (int)strlen(msg)),
                     1);
    assert_int_equal(EVP_EncryptFinal_ex(c, s->ct + n, &fin), 1);
    s->ct_len = n + fin;
    assert_int_equal(EVP_MAC_init(h, NULL, 0, NULL), 1);
    assert_int_equal(EVP_MAC_update(h, s->ct, (size_t)s->ct_len), 1);
    assert_int_equal(EVP_MAC_final(h, s->tag, &s->tag_len, sizeof(s->tag)), 1);
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(h);
}

/* The callback's verdict on @s; when it opens, the MAC and plaintext are checked. */
static int open_ticket(struct lbp_tickets *k, struct sealed *s, const char *msg)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    EVP_MAC_CTX *h = hmac_new();
    unsigned char pt[64], tag[EVP_MAX_MD_SIZE];
    size_t tag_len = 0;
    int rc, n = 0, fin = 0;

    assert_non_null(c);
    rc = lbp_tickets_crypt(k, s->name, s->iv, c, h, 0);
    if (rc > 0) {
        assert_int_equal(EVP_MAC_init(h, NULL, 0, NULL), 1);
        assert_int_equal(EVP_MAC_update(h, s->ct, (size_t)s->ct_len), 1);
        assert_int_equal(EVP_MAC_final(h, tag, &tag_len, sizeof(tag)), 1);
        assert_int_equal(tag_len, s->tag_len);
        assert_memory_equal(tag, s->tag, tag_len);
        assert_int_equal(EVP_DecryptUpdate(c, pt, &n, s->ct, s->ct_len), 1);
        assert_int_equal(EVP_DecryptFinal_ex(c, pt + n, &fin), 1);
        assert_int_equal(n + fin, (int)strlen(msg));
        assert_memory_equal(pt, msg, strlen(msg));
    }
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(h);
    return rc;
}

static void test_rotation_window(void **state)
{
    struct lbp_tickets *k = lbp_tickets_new();
    struct sealed a, b, c;

    (void)state;
    assert_non_null(k);
    assert_int_equal(lbp_tickets_made(k), 1);
    seal(k, "session A", &a);
    assert_int_equal(open_ticket(k, &a, "session A"), 1); /* current key */

    assert_int_equal(lbp_tickets_rotate(k), CM_OK);
    assert_int_equal(lbp_tickets_made(k), 2);
    seal(k, "session B", &b);
    assert_memory_not_equal(a.name, b.name, sizeof(a.name)); /* a new key, a new name */
    assert_int_equal(open_ticket(k, &a, "session A"), 2);    /* previous key: renew */
    assert_int_equal(open_ticket(k, &b, "session B"), 1);

    assert_int_equal(lbp_tickets_rotate(k), CM_OK);
    seal(k, "session C", &c);
    assert_int_equal(open_ticket(k, &a, "session A"), 0); /* gone */
    assert_int_equal(open_ticket(k, &b, "session B"), 2);
    assert_int_equal(open_ticket(k, &c, "session C"), 1);
    lbp_tickets_unref(k);
}

static void test_not_ours(void **state)
{
    struct lbp_tickets *k = lbp_tickets_new(), *other = lbp_tickets_new();
    struct sealed s;

    (void)state;
    assert_non_null(k);
    assert_non_null(other);
    seal(other, "elsewhere", &s); /* another process's keys */
    assert_int_equal(open_ticket(k, &s, "elsewhere"), 0);
    memset(s.name, 0, sizeof(s.name));
    assert_int_equal(open_ticket(other, &s, "elsewhere"), 0);
    lbp_tickets_ref(k); /* the reference count: two unrefs free it (ASan) */
    lbp_tickets_unref(k);
    lbp_tickets_unref(k);
    lbp_tickets_unref(other);
    lbp_tickets_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation_window),
        cmocka_unit_test(test_not_ours),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
