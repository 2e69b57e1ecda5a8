/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_lbp_http.c -- libFuzzer target: bytes as a client connection's input
 * through lbp_http: the head fed in pieces (as reads arrive), the forwarded
 * head written, then the body tracked to its end, message after message
 * (pipelining). Offsets must stay inside the head; sanitizers check the rest. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_offsets(const struct lbp_http_msg *m)
{
    if ((size_t)m->first_off + m->first_len > m->head_len)
        abort();
    if (m->absolute && ((size_t)m->target_off + m->target_len > m->head_len ||
                        (size_t)m->authority_off + m->authority_len > m->head_len))
        abort();
    for (uint32_t i = 0; i < m->hdr_count; i++) {
        const struct lbp_http_hdr *h = &m->hdrs[i];

        if ((size_t)h->name_off + h->name_len > m->head_len ||
            (size_t)h->val_off + h->val_len > m->head_len)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lbp_http_limits lim = {
        .line_max = 512, .header_bytes_max = 2048, .header_count_max = 16, .body_max = 4096};
    struct lbp_http_fwd fwd = {.client_ip = "192.0.2.1", .keep_xff = size & 1, .tls = false};
    struct lbp_http_msg m;
    struct cm_buf out;
    const char *p = (const char *)data;
    size_t left = size;
    int rc;

    if (lbp_http_msg_init(&m, HTTP_REQUEST, &lim) != CM_OK)
        return 0;
    cm_buf_init(&out, 1u << 20);
    for (int msgs = 0; msgs < 8 && left > 0; msgs++) {
        size_t avail = 0;

        lbp_http_msg_reset(&m);
        rc = LBP_HTTP_MORE;
        while (rc == LBP_HTTP_MORE && avail < left) {
            avail += 1 + (avail % 7); /* reads of odd sizes */
            if (avail > left)
                avail = left;
            rc = lbp_http_head_parse(&m, p, avail);
        }
        if (rc != LBP_HTTP_DONE)
            break;
        check_offsets(&m);
        lbp_http_write_request(&m, p, &fwd, &out);
        p += m.head_len;
        left -= m.head_len;
        while (left > 0) {
            size_t used = 0, piece = left < 13 ? left : 13;

            rc = lbp_http_body_feed(&m, p, piece, &used);
            if (used > piece || (rc == LBP_HTTP_ERROR && used != 0))
                abort(); /* nothing of a failing call may be forwarded */
            p += used;
            left -= used;
            if (rc != LBP_HTTP_MORE || used == 0)
                break;
        }
        if (!m.message_done)
            break;
    }
    cm_buf_fini(&out);
    lbp_http_msg_fini(&m);
    return 0;
}
