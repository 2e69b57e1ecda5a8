/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ui.c -- serves the embedded status page files under /ui/ (see cm_ui.h).
 * The files change only with the binary: browsers may keep them a minute.
 * The data the page shows comes from the JSON routes, which are never cached.
 */
#include "common/cm_ui.h"

#include <stdint.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_http.h"

#define UI_CACHE_CONTROL "private, max-age=60"

const struct cm_ui_asset *cm_ui_asset_find(const char *name)
{
    for (size_t i = 0; i < cm_ui_asset_count; i++) {
        if (strcmp(cm_ui_assets[i].name, name) == 0)
            return &cm_ui_assets[i];
    }
    return NULL;
}

static void route_ui(void *arg, struct cm_ctl_req *req, const char *rest)
{
    const char *index = arg;
    const struct cm_ui_asset *a;

    if (rest[0] == '\0') {
        cm_ctl_reply_header(req, "Location", "/ui/");
        cm_ctl_reply_bytes(req, 302, "text/plain; charset=utf-8", "see /ui/\n", 9);
        return;
    }
    if (rest[0] != '/') { /* "/uix": not ours */
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    /* Only flat names: a slash or a dot-dot never names an embedded file. */
    a = cm_ui_asset_find(rest[1] == '\0' ? index : rest + 1);
    if (a == NULL || strchr(rest + 1, '/') != NULL) {
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    cm_ctl_reply_header(req, "Cache-Control", UI_CACHE_CONTROL);
    cm_ctl_reply_header(req, "X-Content-Type-Options", "nosniff");
    cm_ctl_reply_header(req, "Content-Security-Policy",
                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
    cm_ctl_reply_bytes(req, 200, a->content_type, a->bytes, a->len);
}

int cm_ui_register(struct cm_ctl *ctl, const char *index)
{
    if (cm_ui_asset_find(index) == NULL)
        return CM_EINVAL;
    /* The route function only reads @index: the cast drops a const it keeps. */
    return cm_ctl_route(ctl, CM_HTTP_GET, "/ui", CM_CTL_PUBLIC, route_ui, (void *)(uintptr_t)index);
}
