/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_alog.c -- access log: one line per request, JSON or "combined", to a
 * file or stdout through a stdio buffer (flushed by the daemon's tick and at
 * exit, so a request costs one formatted write into memory).
 */
#include "lbproxy/lbp_alog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/cm_err.h"

struct lbp_alog {
    enum cm_access_log_format format;
    FILE *fp;
    bool owned;
};

int lbp_alog_open(enum cm_access_log_format format, const char *path, struct lbp_alog **out,
                  char *err, size_t errlen)
{
    struct lbp_alog *a;

    *out = NULL;
    if (format == CM_ACCESS_LOG_OFF)
        return CM_OK;
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return cm_err_oom(err, errlen, NULL);
    }
    a->format = format;
    if (path == NULL || strcmp(path, "-") == 0) {
        a->fp = stdout;
    } else {
        a->fp = fopen(path, "ae");
        if (a->fp == NULL) {
            int rc = cm_err_from_errno(errno);

            snprintf(err, errlen, "proxy.access_log.path: %s: %s", path, cm_strerror(rc));
            free(a);
            return rc;
        }
        a->owned = true;
    }
    *out = a;
    return CM_OK;
}

/* Quotes for the combined format: '"' and control bytes become '_'. */
static void safe_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;

    for (; src[i] != '\0' && i + 1 < cap; i++)
        dst[i] = (src[i] == '"' || (unsigned char)src[i] < 0x20) ? '_' : src[i];
    dst[i] = '\0';
}

static void write_combined(struct lbp_alog *a, const struct lbp_alog_entry *e)
{
    char t[64], uri[600], ua[300], ref[300];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(t, sizeof(t), "%d/%b/%Y:%H:%M:%S +0000", &tm);
    safe_copy(uri, sizeof(uri), e->uri);
    safe_copy(ua, sizeof(ua), e->user_agent[0] != '\0' ? e->user_agent : "-");
    safe_copy(ref, sizeof(ref), e->referer[0] != '\0' ? e->referer : "-");
    fprintf(a->fp, "%s - - [%s] \"%s %s HTTP/1.%d\" %u %" PRIu64 " \"%s\" \"%s\"\n", e->client, t,
            e->method, uri, e->http_minor, e->status, e->bytes_out, ref, ua);
}

static void write_json(struct lbp_alog *a, const struct lbp_alog_entry *e)
{
    char t[32];
    time_t now = time(NULL);
    struct tm tm;
    json_t *o;
    char *text;

    gmtime_r(&now, &tm);
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", &tm);
    o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:f,s:s,s:i,s:b,s:s}", "time", t,
                  "client", e->client, "listener", e->listener, "member", e->member, "service",
                  e->service, "method", e->method, "uri", e->uri, "status", (int)e->status,
                  "bytes_in", (json_int_t)e->bytes_in, "bytes_out", (json_int_t)e->bytes_out,
                  "duration_ms", (double)e->duration_us / 1000.0, "backend", e->backend, "retries",
                  (int)e->retries, "tls", e->tls, "user_agent", e->user_agent);
    text = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    if (text != NULL)
        fprintf(a->fp, "%s\n", text);
    free(text);
    json_decref(o);
}

void lbp_alog_write(struct lbp_alog *a, const struct lbp_alog_entry *e)
{
    if (a == NULL)
        return;
    if (a->format == CM_ACCESS_LOG_JSON)
        write_json(a, e);
    else
        write_combined(a, e);
}

void lbp_alog_flush(struct lbp_alog *a)
{
    if (a != NULL)
        fflush(a->fp);
}

void lbp_alog_close(struct lbp_alog *a)
{
    if (a == NULL)
        return;
    fflush(a->fp);
    if (a->owned)
        fclose(a->fp);
    free(a);
}
