/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_ticket.c -- session ticket keys: two slots, the current key and the
 * previous one (see lbp_ticket.h). Invariant: keys[cur] is always valid;
 * the other slot is valid once a rotation has happened.
 */
#include "lbproxy/lbp_ticket.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/cm_err.h"

#define TICKET_NAME_LEN 16
#define TICKET_AES_LEN  32 /* AES-256 */
#define TICKET_HMAC_LEN 32 /* HMAC-SHA256 */
#define TICKET_IV_LEN   16 /* AES-CBC */

struct ticket_key {
    unsigned char name[TICKET_NAME_LEN];
    unsigned char aes[TICKET_AES_LEN];
    unsigned char hmac[TICKET_HMAC_LEN];
    bool valid;
};

struct lbp_tickets {
    int refs;
    struct ticket_key keys[2]; /* [cur] encrypts; [!cur] decrypts until the next rotation */
    unsigned cur;
    uint64_t made;
    EVP_CIPHER *cipher; /* owned: fetched once, not per ticket */
};

static bool key_make(struct ticket_key *key)
{
    if (RAND_bytes(key->name, sizeof(key->name)) != 1 ||
        RAND_bytes(key->aes, sizeof(key->aes)) != 1 ||
        RAND_bytes(key->hmac, sizeof(key->hmac)) != 1) {
        ERR_clear_error();
        OPENSSL_cleanse(key, sizeof(*key));
        return false;
    }
    key->valid = true;
    return true;
}

struct lbp_tickets *lbp_tickets_new(void)
{
    struct lbp_tickets *k = calloc(1, sizeof(*k));

    if (k == NULL)
        return NULL;
    k->refs = 1;
    k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    if (k->cipher == NULL || !key_make(&k->keys[0])) {
        ERR_clear_error();
        lbp_tickets_unref(k);
        return NULL;
    }
    k->made = 1;
    return k;
}

void lbp_tickets_ref(struct lbp_tickets *k)
{
    k->refs++;
}

void lbp_tickets_unref(struct lbp_tickets *k)
{
    if (k == NULL || --k->refs > 0)
        return;
    EVP_CIPHER_free(k->cipher);
    OPENSSL_cleanse(k->keys, sizeof(k->keys));
    free(k);
}

int lbp_tickets_rotate(struct lbp_tickets *k)
{
    struct ticket_key fresh;
    unsigned next = k->cur ^ 1u;

    if (!key_make(&fresh))
        return CM_EIO;
    k->keys[next] = fresh;
    OPENSSL_cleanse(&fresh, sizeof(fresh));
    k->cur = next;
    k->made++;
    return CM_OK;
}

uint64_t lbp_tickets_made(const struct lbp_tickets *k)
{
    return k->made;
}

/* HMAC-SHA256 keyed with @key's MAC key. */
static bool mac_init(EVP_MAC_CTX *hctx, struct ticket_key *key)
{
    char digest[] = "SHA256"; /* OSSL_PARAM wants a mutable pointer */
    OSSL_PARAM params[3];

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key->hmac, sizeof(key->hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

int lbp_tickets_crypt(struct lbp_tickets *k, unsigned char name[16], unsigned char *iv,
                      EVP_CIPHER_CTX *ectx, EVP_MAC_CTX *hctx, int enc)
{
    struct ticket_key *key;

    if (enc) {
        key = &k->keys[k->cur];
        memcpy(name, key->name, TICKET_NAME_LEN);
        if (RAND_bytes(iv, TICKET_IV_LEN) != 1 ||
            EVP_EncryptInit_ex(ectx, k->cipher, NULL, key->aes, iv) != 1 || !mac_init(hctx, key))
            return -1;
        return 1;
    }
    for (unsigned i = 0; i < 2; i++) {
        key = &k->keys[i];
        if (!key->valid || CRYPTO_memcmp(name, key->name, TICKET_NAME_LEN) != 0)
            continue;
        if (!mac_init(hctx, key) || EVP_DecryptInit_ex(ectx, k->cipher, NULL, key->aes, iv) != 1)
            return -1;
        return i == k->cur ? 1 : 2;
    }
    return 0; /* a key that is gone, or not ours: full handshake */
}
