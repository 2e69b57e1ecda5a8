/* SPDX-License-Identifier: Apache-2.0 */
/* cm_base64.c -- strict standard base64 decoding (cm_base64.h). */
#include "common/cm_base64.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"

static int b64_value(unsigned char c)
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

int cm_base64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    size_t clean = 0, o = 0, cap = len / 4 * 3 + 4;
    char *txt = malloc(len + 1), *buf = malloc(cap);
    int rc = CM_EPARSE;

    if (txt == NULL || buf == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        if (in[i] != ' ' && in[i] != '\n' && in[i] != '\r' && in[i] != '\t')
            txt[clean++] = in[i];
    }
    if (clean == 0 || clean % 4 != 0)
        goto out;
    for (size_t q = 0; q < clean; q += 4) {
        bool last = q + 4 == clean;
        size_t pad = last ? (txt[q + 3] == '=') + (txt[q + 2] == '=' && txt[q + 3] == '=') : 0;
        uint32_t acc = 0;

        for (size_t k = 0; k < 4; k++) {
            int v = k < 4 - pad ? b64_value((unsigned char)txt[q + k]) : 0;

            if (v < 0)
                goto out; /* includes '=' anywhere but the padding, and NUL bytes */
            acc = acc << 6 | (uint32_t)v;
        }
        buf[o++] = (char)(acc >> 16);
        if (pad < 2)
            buf[o++] = (char)(acc >> 8 & 0xff);
        if (pad < 1)
            buf[o++] = (char)(acc & 0xff);
    }
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    buf = NULL;
    rc = CM_OK;
out:
    if (txt != NULL)
        explicit_bzero(txt, len + 1);
    if (buf != NULL)
        explicit_bzero(buf, cap);
    free(txt);
    free(buf);
    return rc;
}
