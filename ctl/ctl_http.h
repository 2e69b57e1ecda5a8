/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_http.h -- a blocking HTTP client for the control APIs (libcurl easy):
 * one request, the status and the body, or why the daemon could not be
 * reached. The bearer token is sent only in the Authorization header and is
 * never part of an error text.
 */
#ifndef CTL_CTL_HTTP_H
#define CTL_CTL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_str.h"

#define CTL_HTTP_BODY_MAX (64u << 20) /* largest reply accepted */

struct ctl_endpoint {
    const char *daemon;  /* borrowed: the name in messages, "dnsd" or an instance's "ns2" */
    const char *section; /* borrowed static section name for hints, "dnsd" */
    char *base_url;      /* owned, "http://127.0.0.1:9153" (no trailing slash) */
    char *token;         /* owned secret, NULL = none; never printed */
    const char *ca_file; /* borrowed path: CA for https, NULL = the system's */
    const char *cert;    /* borrowed path: client certificate, NULL = none */
    const char *key;     /* borrowed path: its key */
    uint32_t timeout_ms;
};

struct ctl_reply {
    long status;        /* HTTP status */
    struct cm_buf body; /* owned; call ctl_reply_fini() */
};

/** Releases @ep's strings (the token is wiped first). */
void ctl_endpoint_fini(struct ctl_endpoint *ep);
void ctl_reply_fini(struct ctl_reply *r);

/**
 * Sends @method (GET, PUT, DELETE) for @path (starting with '/', already
 * escaped) with an optional @body. On CM_OK *out holds any HTTP status (the
 * caller judges it). When no HTTP exchange happened: CM_ECONNREFUSED,
 * CM_ETIMEDOUT, CM_ETOOBIG (reply too large) or CM_EIO, with a short
 * lowercase reason in @err ("connection refused"). Call once
 * curl_global_init() first.
 */
int ctl_http_request(const struct ctl_endpoint *ep, const char *method, const char *path,
                     const char *body, struct ctl_reply *out, char *err, size_t errlen);

/** Percent-escapes @s for a URL path segment or query value. New string or NULL. */
char *ctl_http_escape(const char *s);

#endif /* CTL_CTL_HTTP_H */
