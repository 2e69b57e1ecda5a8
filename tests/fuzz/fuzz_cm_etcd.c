/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_cm_etcd.c -- libFuzzer target for the etcd gateway parsers of
 * common/cm_etcd_proto.h.
 *
 * The first byte selects the entry point; the rest is the input:
 *   byte0 % 6 == 0  cm_lines_feed (a watch stream, split in chunks whose sizes
 *                   come from the input), every line through cm_etcd_parse_watch
 *   byte0 % 6 == 1  cm_etcd_parse_watch (one line)
 *   byte0 % 6 == 2  cm_etcd_parse_range (a range reply)
 *   byte0 % 6 == 3  cm_etcd_parse_lease and cm_etcd_parse_revision
 *   byte0 % 6 == 4  cm_etcd_parse_auth and cm_etcd_reply_error
 *   byte0 % 6 == 5  cm_etcd_parse_status
 * Every parse must either succeed with consistent values (checked below and
 * freed cleanly) or fail with a reason; ASan/UBSan catch the rest. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_etcd_proto.h"
#include "common/cm_lines.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_LINE_MAX 4096u /* small cap, so the overflow path is reached */

static void check_kv(const struct cm_etcd_kv *kv)
{
    if (kv->key == NULL || kv->value == NULL || kv->key_len == 0 || kv->key_len > CM_ETCD_KEY_MAX ||
        kv->key[kv->key_len] != '\0' || kv->value[kv->value_len] != '\0' || kv->mod_revision < 0 ||
        kv->create_revision < 0 || kv->version < 0)
        abort();
}

static void check_reason(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);

    if (n == cap)
        abort(); /* not terminated */
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            abort(); /* must stay one printable line */
    }
}

static void one_watch(const char *line, size_t len)
{
    struct cm_etcd_watch_msg m;
    char err[CM_ETCD_ERR_MAX];

    if (cm_etcd_parse_watch(line, len, &m, err, sizeof(err)) != CM_OK) {
        if (m.events != NULL || m.count != 0)
            abort();
        return;
    }
    if (m.kind > CM_ETCD_WATCH_ERROR || m.revision < 0 || m.compact_revision < 0 ||
        (m.count > 0 && m.events == NULL) || (m.kind != CM_ETCD_WATCH_EVENTS && m.count != 0))
        abort();
    for (size_t i = 0; i < m.count; i++) {
        if (m.events[i].type > CM_ETCD_EVENT_DELETE)
            abort();
        check_kv(&m.events[i].kv);
    }
    check_reason(m.reason, sizeof(m.reason));
    cm_etcd_watch_msg_fini(&m);
}

static int on_line(void *arg, const char *line, size_t len)
{
    (void)arg;
    if (len > FUZZ_LINE_MAX || memchr(line, '\n', len) != NULL)
        abort();
    one_watch(line, len);
    return 0;
}

static void stream(const uint8_t *p, size_t n)
{
    struct cm_lines ls;
    size_t off = 0;

    cm_lines_init(&ls, FUZZ_LINE_MAX);
    while (off < n) {
        size_t chunk = (size_t)p[off] % 64 + 1;

        off++;
        if (chunk > n - off)
            chunk = n - off;
        if (cm_lines_feed(&ls, (const char *)p + off, chunk, on_line, NULL) != CM_OK)
            cm_lines_reset(&ls); /* as the watcher does after an overflow */
        if (cm_lines_pending(&ls) > FUZZ_LINE_MAX)
            abort();
        off += chunk;
    }
    cm_lines_fini(&ls);
}

static void range(const char *p, size_t n)
{
    struct cm_etcd_range r;
    char err[CM_ETCD_ERR_MAX];

    if (cm_etcd_parse_range(p, n, &r, err, sizeof(err)) != CM_OK) {
        if (r.kvs != NULL || r.count != 0)
            abort();
        return;
    }
    if (r.revision < 0 || r.total < 0 || (r.count > 0 && r.kvs == NULL))
        abort();
    for (size_t i = 0; i < r.count; i++)
        check_kv(&r.kvs[i]);
    cm_etcd_range_fini(&r);
}

static void small_replies(int which, const char *p, size_t n)
{
    char err[CM_ETCD_ERR_MAX], msg[CM_ETCD_ERR_MAX], *token = NULL;
    struct cm_etcd_status st;
    int64_t id, ttl, rev;
    int code;

    if (which == 3) {
        if (cm_etcd_parse_lease(p, n, &id, &ttl, err, sizeof(err)) == CM_OK && (id == 0 || ttl < 0))
            abort();
        if (cm_etcd_parse_revision(p, n, &rev, err, sizeof(err)) == CM_OK && rev < 0)
            abort();
    } else if (which == 4) {
        if (cm_etcd_parse_auth(p, n, &token, err, sizeof(err)) == CM_OK) {
            if (token == NULL || token[0] == '\0' || strpbrk(token, " \r\n") != NULL)
                abort();
            free(token);
        } else if (token != NULL) {
            abort();
        }
        if (cm_etcd_reply_error(p, n, &code, msg, sizeof(msg)))
            check_reason(msg, sizeof(msg));
    } else if (cm_etcd_parse_status(p, n, &st, err, sizeof(err)) == CM_OK) {
        check_reason(st.version, sizeof(st.version));
        check_reason(st.errors, sizeof(st.errors));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data + 1;
    size_t n;

    if (size == 0)
        return 0;
    n = size - 1;
    switch (data[0] % 6) {
    case 0:
        stream(data + 1, n);
        break;
    case 1:
        one_watch(p, n);
        break;
    case 2:
        range(p, n);
        break;
    default:
        small_replies(data[0] % 6, p, n);
        break;
    }
    return 0;
}
