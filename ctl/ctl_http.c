/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_http.c -- blocking control API requests on libcurl easy. */
#include "ctl/ctl_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/cm_err.h"

#define HTTP_CONNECT_MAX_MS 5000L

void ctl_endpoint_fini(struct ctl_endpoint *ep)
{
    if (ep->token != NULL) {
        volatile char *p = ep->token;

        while (*p != '\0')
            *p++ = '\0';
    }
    free(ep->token);
    free(ep->base_url);
    ep->token = NULL;
    ep->base_url = NULL;
}

void ctl_reply_fini(struct ctl_reply *r)
{
    cm_buf_fini(&r->body);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct cm_buf *b = arg;
    size_t n = size * nmemb;

    if (cm_buf_append(b, ptr, n) != CM_OK)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    return n;
}

/* "Connection refused" -> "connection refused". */
static void lower_first(char *s)
{
    if (s[0] >= 'A' && s[0] <= 'Z')
        s[0] = (char)(s[0] - 'A' + 'a');
}

static int transport_error(CURL *h, CURLcode cc, uint32_t timeout_ms, const char *curl_msg,
                           char *err, size_t errlen)
{
    long os_errno = 0;

    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(err, errlen, "no reply within %u ms", timeout_ms);
        return CM_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        if (os_errno != 0) {
            snprintf(err, errlen, "%s", strerror((int)os_errno));
            lower_first(err);
        } else {
            snprintf(err, errlen, "cannot connect");
        }
        return os_errno == ECONNREFUSED ? CM_ECONNREFUSED : CM_EIO;
    case CURLE_WRITE_ERROR:
        snprintf(err, errlen, "reply larger than %u bytes", CTL_HTTP_BODY_MAX);
        return CM_ETOOBIG;
    default:
        snprintf(err, errlen, "%s", curl_msg[0] != '\0' ? curl_msg : curl_easy_strerror(cc));
        lower_first(err);
        return CM_EIO;
    }
}

int ctl_http_request(const struct ctl_endpoint *ep, const char *method, const char *path,
                     const char *body, struct ctl_reply *out, char *err, size_t errlen)
{
    char curl_msg[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    struct cm_buf url, auth;
    CURL *h = NULL;
    CURLcode cc;
    int rc = CM_ENOMEM;

    cm_buf_init(&out->body, CTL_HTTP_BODY_MAX);
    out->status = 0;
    cm_buf_init(&url, 8192);
    cm_buf_init(&auth, 8192);
    if (cm_buf_printf(&url, "%s%s", ep->base_url, path) != CM_OK)
        goto out;
    h = curl_easy_init();
    if (h == NULL)
        goto out;
    if (ep->token != NULL) {
        struct curl_slist *n;

        if (cm_buf_printf(&auth, "Authorization: Bearer %s", ep->token) != CM_OK)
            goto out;
        n = curl_slist_append(hdrs, cm_buf_cstr(&auth));
        if (n == NULL)
            goto out;
        hdrs = n;
    }
    if (body != NULL) {
        struct curl_slist *n = curl_slist_append(hdrs, "Content-Type: application/json");

        if (n == NULL)
            goto out;
        hdrs = n;
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_URL, cm_buf_cstr(&url));
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ep->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, ep->ca_file);
    if (ep->cert != NULL) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, ep->cert);
        curl_easy_setopt(h, CURLOPT_SSLKEY, ep->key);
    }
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ep->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)ep->timeout_ms < HTTP_CONNECT_MAX_MS ? (long)ep->timeout_ms
                                                                : HTTP_CONNECT_MAX_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* control APIs are local: ignore http_proxy */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = transport_error(h, cc, ep->timeout_ms, curl_msg, err, errlen);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    rc = CM_OK;
out:
    if (rc == CM_ENOMEM)
        cm_err_oom(err, errlen, NULL);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    /* The header text held the token: wipe it before it goes back to the heap. */
    if (auth.data != NULL)
        memset(auth.data, 0, auth.cap);
    cm_buf_fini(&auth);
    cm_buf_fini(&url);
    return rc;
}

char *ctl_http_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out;

    if (e == NULL)
        return NULL;
    out = strdup(e);
    curl_free(e);
    return out;
}
