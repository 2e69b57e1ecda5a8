/* SPDX-License-Identifier: Apache-2.0 */
/* cm_base64.c -- the codec of cm_base64.h. */
#include "common/cm_base64.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "common/cm_err.h"

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t cm_base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

size_t cm_base64_encode(const void *in, size_t len, char *out)
{
    const unsigned char *p = in;
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        size_t left = len - i;
        uint32_t acc = (uint32_t)p[i] << 16;

        if (left > 1)
            acc |= (uint32_t)p[i + 1] << 8;
        if (left > 2)
            acc |= p[i + 2];
        out[o++] = ALPHABET[acc >> 18 & 63];
        out[o++] = ALPHABET[acc >> 12 & 63];
        out[o++] = left > 1 ? ALPHABET[acc >> 6 & 63] : '=';
        out[o++] = left > 2 ? ALPHABET[acc & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Writes the bytes of one quad (@q: 4 characters, padding only at the end). */
static int quad(const char *q, bool last, char *out, size_t *o)
{
    size_t pad = 0;
    uint32_t acc = 0;

    if (last)
        pad = (q[3] == '=') + (q[2] == '=' && q[3] == '=');
    for (size_t k = 0; k < 4; k++) {
        int v = k < 4 - pad ? value_of((unsigned char)q[k]) : 0;

        if (v < 0)
            return CM_EPARSE; /* includes '=' anywhere but the padding */
        acc = acc << 6 | (uint32_t)v;
    }
    out[(*o)++] = (char)(acc >> 16);
    if (pad < 2)
        out[(*o)++] = (char)(acc >> 8 & 0xff);
    if (pad < 1)
        out[(*o)++] = (char)(acc & 0xff);
    return CM_OK;
}

int cm_base64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    size_t cap = len / 4 * 3 + 4, o = 0, clean = 0, seen = 0;
    char *buf = malloc(cap);
    char q[4];
    int rc = CM_OK;

    if (buf == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        if (!is_space(in[i]))
            clean++;
    }
    if (clean % 4 != 0)
        rc = CM_EPARSE;
    for (size_t i = 0; rc == CM_OK && i < len; i++) {
        if (is_space(in[i]))
            continue;
        q[seen++ % 4] = in[i];
        if (seen % 4 == 0)
            rc = quad(q, seen == clean, buf, &o);
    }
    OPENSSL_cleanse(q, sizeof(q));
    if (rc != CM_OK) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
        return rc;
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return CM_OK;
}
