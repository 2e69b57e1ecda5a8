/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_hc_k8s.c -- libFuzzer target for every parser of health/hc_k8s.h.
 *
 * The first byte selects the entry point and the kind; the rest is the input:
 *   byte0 % 4 == 0  hc_k8s_event_parse (one watch event line)
 *   byte0 % 4 == 1  hc_k8s_list_parse (a list response body)
 *   byte0 % 4 == 2  hc_k8s_status_parse (an error reply)
 *   byte0 % 4 == 3  cm_lines_feed (a watch stream, split in chunks whose sizes
 *                   come from the input), every line through hc_k8s_event_parse
 *   (byte0 / 4) % 3 is the kind (service, endpointslice, node).
 * Every parse must either succeed with consistent values (checked below and
 * freed cleanly) or fail with a reason; ASan/UBSan catch the rest. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_lines.h"
#include "health/hc_k8s.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LINE_MAX 4096u /* small cap, so the overflow path is reached */

static void check_obj(const struct hc_k8s_obj *o, enum hc_k8s_kind kind)
{
    if (o == NULL || o->kind != kind || o->name == NULL)
        abort();
    if (kind != HC_K8S_NODE && o->ns == NULL)
        abort();
    if (kind == HC_K8S_SERVICE) {
        const struct hc_k8s_svc *s = &o->u.svc;

        if ((s->ports == NULL && s->port_count != 0) ||
            (s->lb_ips == NULL && s->lb_ip_count != 0) ||
            (s->lb_hostnames == NULL && s->lb_hostname_count != 0))
            abort();
        for (size_t i = 0; i < s->port_count; i++) {
            if (s->ports[i].port == 0)
                abort();
        }
        for (size_t i = 0; i < s->lb_ip_count; i++) {
            if (s->lb_ips[i] == NULL || strlen(s->lb_ips[i]) == 0)
                abort();
        }
        for (size_t i = 0; i < s->lb_hostname_count; i++) {
            if (s->lb_hostnames[i] == NULL || s->lb_hostnames[i][0] == '\0')
                abort();
        }
        if (s->health_path != NULL && s->health_path[0] != '/')
            abort();
    } else if (kind == HC_K8S_SLICE) {
        if ((unsigned)o->u.slice.family > HC_K8S_FQDN)
            abort();
    }
}

static void check_event(const struct hc_k8s_event *ev, enum hc_k8s_kind kind)
{
    switch (ev->type) {
    case HC_K8S_ADDED:
    case HC_K8S_MODIFIED:
    case HC_K8S_DELETED:
        check_obj(ev->obj, kind);
        if (ev->resource_version != NULL)
            (void)strlen(ev->resource_version); /* a string we own (ASan checks) */
        break;
    case HC_K8S_BOOKMARK:
        if (ev->obj != NULL || ev->resource_version == NULL)
            abort();
        break;
    case HC_K8S_ERROR:
        if (ev->obj != NULL)
            abort();
        break;
    default:
        abort();
    }
}

static void fuzz_event(const char *p, size_t n, enum hc_k8s_kind kind)
{
    char err[HC_K8S_ERR_MAX];
    struct hc_k8s_event ev;
    int rc;

    err[0] = '\0';
    rc = hc_k8s_event_parse(p, n, kind, &ev, err, sizeof(err));
    if (rc == CM_OK) {
        check_event(&ev, kind);
        hc_k8s_event_fini(&ev);
    } else if (rc == CM_EPARSE && err[0] == '\0') {
        abort(); /* every parse failure explains itself */
    }
    if (ev.obj != NULL || ev.resource_version != NULL || ev.message != NULL)
        abort(); /* fini (or the failure path) leaves the event empty */
}

static void fuzz_list(const char *p, size_t n, enum hc_k8s_kind kind)
{
    char err[HC_K8S_ERR_MAX];
    struct hc_k8s_list l;
    int rc;

    err[0] = '\0';
    rc = hc_k8s_list_parse(p, n, kind, &l, err, sizeof(err));
    if (rc == CM_OK) {
        if (l.items == NULL && l.count != 0)
            abort();
        for (size_t i = 0; i < l.count; i++)
            check_obj(l.items[i], kind);
        if (l.continue_token != NULL && l.continue_token[0] == '\0')
            abort();
        hc_k8s_list_fini(&l);
    } else if (rc == CM_EPARSE && err[0] == '\0') {
        abort();
    }
    if (l.items != NULL || l.count != 0 || l.resource_version != NULL || l.continue_token != NULL)
        abort();
}

static void fuzz_status(const char *p, size_t n)
{
    char msg[64];

    memset(msg, 'x', sizeof(msg));
    (void)hc_k8s_status_parse(p, n, msg, sizeof(msg));
    if (memchr(msg, '\0', sizeof(msg)) == NULL)
        abort();
}

struct stream_ctx {
    enum hc_k8s_kind kind;
    size_t lines;
};

static int on_line(void *arg, const char *line, size_t len)
{
    struct stream_ctx *ctx = arg;

    /* One trailing '\r' is stripped (CRLF); "\r\r" leaves one, which is fine. */
    if (len == 0 || len > FUZZ_LINE_MAX || memchr(line, '\n', len) != NULL)
        abort();
    ctx->lines++;
    fuzz_event(line, len, ctx->kind);
    return CM_OK;
}

/* The input is cut into chunks; chunk sizes come from the input's own bytes
 * (1..64), so the same stream is fed with many different boundaries. */
static void fuzz_stream(const char *p, size_t n, enum hc_k8s_kind kind)
{
    struct stream_ctx ctx = {.kind = kind, .lines = 0};
    struct cm_lines ls;
    size_t off = 0, step = 0;

    cm_lines_init(&ls, FUZZ_LINE_MAX);
    while (off < n) {
        size_t chunk = (size_t)((unsigned char)p[step % n] % 64) + 1;
        int rc;

        step++;
        if (chunk > n - off)
            chunk = n - off;
        rc = cm_lines_feed(&ls, p + off, chunk, on_line, &ctx);
        if (rc == CM_ETOOBIG) {
            cm_lines_reset(&ls); /* as the watcher does after an overflow */
        } else if (rc != CM_OK) {
            abort();
        }
        if (cm_lines_pending(&ls) > FUZZ_LINE_MAX)
            abort();
        off += chunk;
    }
    cm_lines_fini(&ls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p;
    size_t n;
    enum hc_k8s_kind kind;

    if (size < 1)
        return 0;
    kind = (enum hc_k8s_kind)((data[0] / 4) % HC_K8S_KIND_COUNT);
    p = (const char *)data + 1;
    n = size - 1;
    switch (data[0] % 4) {
    case 0:
        fuzz_event(p, n, kind);
        break;
    case 1:
        fuzz_list(p, n, kind);
        break;
    case 2:
        fuzz_status(p, n);
        break;
    default:
        fuzz_stream(p, n, kind);
        break;
    }
    return 0;
}
