/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cm_http.c -- cm_http_head_parse on arbitrary bytes. Whatever is
 * accepted must point inside the input, end in CRLFCRLF, and parse the same
 * when fed again cut to its head (the parser may not look past head_len), and
 * every proper prefix of an accepted head must be "incomplete", never an
 * error or a shorter head.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data, *why = NULL;
    struct cm_http_head h, h2;
    size_t head_len = 0, len2 = 0;
    int rc = cm_http_head_parse(buf, size, &h, &head_len, &why);

    if (rc == CM_EPARSE && why == NULL)
        abort();
    if (rc != CM_OK)
        return 0;
    if (head_len < 4 || head_len > size || memcmp(buf + head_len - 4, "\r\n\r\n", 4) != 0)
        abort();
    if (h.target < buf || h.target + h.target_len > buf + head_len || h.target[0] != '/')
        abort();
    if (h.auth != NULL && (h.auth < buf || h.auth + h.auth_len > buf + head_len))
        abort();
    if (cm_http_head_parse(buf, head_len, &h2, &len2, &why) != CM_OK || len2 != head_len ||
        h2.method != h.method || h2.length != h.length || h2.close != h.close)
        abort();
    for (size_t cut = head_len / 2; cut < head_len; cut += 1 + head_len / 16) {
        if (cm_http_head_parse(buf, cut, &h2, &len2, &why) != CM_EAGAIN)
            abort();
    }
    return 0;
}
