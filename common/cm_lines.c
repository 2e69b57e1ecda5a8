/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_lines.c -- the line splitter of cm_lines.h. A line that arrives whole in
 * one chunk is handed over without a copy; only a line split across chunks
 * is assembled in the buffer.
 */
#include "common/cm_lines.h"

#include <string.h>

#include "common/cm_err.h"

void cm_lines_init(struct cm_lines *ls, size_t max)
{
    ls->max = max;
    cm_buf_init(&ls->buf, max);
}

void cm_lines_fini(struct cm_lines *ls)
{
    cm_buf_fini(&ls->buf);
}

void cm_lines_reset(struct cm_lines *ls)
{
    cm_buf_reset(&ls->buf);
}

size_t cm_lines_pending(const struct cm_lines *ls)
{
    return ls->buf.len;
}

static int emit(const char *line, size_t len, cm_line_fn *fn, void *arg)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 0)
        return CM_OK;
    return fn(arg, line, len);
}

int cm_lines_feed(struct cm_lines *ls, const char *data, size_t len, cm_line_fn *fn, void *arg)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;
        int rc;

        if (ls->buf.len + n > ls->max)
            return CM_ETOOBIG;
        if (nl == NULL)
            return cm_buf_append(&ls->buf, data, n);
        if (ls->buf.len == 0) {
            rc = emit(data, n, fn, arg); /* whole line in this chunk: no copy */
        } else {
            rc = cm_buf_append(&ls->buf, data, n);
            if (rc != CM_OK)
                return rc;
            rc = emit(ls->buf.data, ls->buf.len, fn, arg);
            cm_buf_reset(&ls->buf);
        }
        if (rc != CM_OK)
            return rc;
        data += n + 1;
        len -= n + 1;
    }
    return CM_OK;
}
