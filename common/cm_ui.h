/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ui.h -- the status page (/ui/) every daemon serves on its control API:
 * static files compiled into the binary (common/ui/, turned into C arrays by
 * common/ui/embed.cmake at build time). The page reads the daemon's JSON
 * routes from the browser; nothing is fetched from anywhere else.
 *
 *   GET /ui          302 to /ui/
 *   GET /ui/         the daemon's index page (dnsd.html, state.html)
 *   GET /ui/NAME     one embedded file, Content-Type by its extension
 */
#ifndef COMMON_CM_UI_H
#define COMMON_CM_UI_H

#include <stddef.h>

#include "common/cm_ctl.h"

struct cm_ui_asset {
    const char *name;           /* file name in common/ui/, e.g. "ui.js" */
    const char *content_type;   /* by extension */
    const unsigned char *bytes; /* len bytes (and a NUL after them) */
    size_t len;
};

/* The generated table (cm_ui_assets.c in the build directory). */
extern const struct cm_ui_asset cm_ui_assets[];
extern const size_t cm_ui_asset_count;

/** The embedded file called @name, or NULL. */
const struct cm_ui_asset *cm_ui_asset_find(const char *name);

/**
 * Registers GET /ui on @ctl with @index (an embedded file name, borrowed: a
 * string literal) served at /ui/. The page's files are public: they hold no
 * data (the page fetches the JSON routes, which keep their access rules, with
 * the token typed into its token field), and a browser could not add a
 * bearer token to the page's own address anyway. CM_EINVAL when @index is not
 * embedded; otherwise what cm_ctl_route() returns.
 */
int cm_ui_register(struct cm_ctl *ctl, const char *index);

#endif /* COMMON_CM_UI_H */
