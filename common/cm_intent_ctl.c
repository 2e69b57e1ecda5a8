/* SPDX-License-Identifier: Apache-2.0 */
/* cm_intent_ctl.c -- the intent routes of the control API (see cm_intent_ctl.h). */
#include "common/cm_intent_ctl.h"

#include <stdint.h>
#include <string.h>

#include <event2/http.h>

#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

/* The body's failures are 4xx; ours (memory, a view that cannot be built) 5xx. */
static int put_status(int rc)
{
    switch (rc) {
    case CM_EINVAL:
        return 400;
    case CM_EEXIST:
    case CM_ENOTSUP: /* intents come from etcd */
        return 409;
    case CM_ETOOBIG:
        return 413;
    default:
        return 500;
    }
}

static void route_get(void *arg, struct cm_ctl_req *req, const char *rest)
{
    const struct cm_intent_routes *r = arg;
    json_t *doc;

    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        cm_ctl_reply_error(req, 404, "not found; GET /v1/intents lists them all");
        return;
    }
    doc = r->get(r->arg, cm_wall_s());
    if (doc == NULL)
        cm_ctl_reply_error(req, 500, "out of memory");
    else
        cm_ctl_reply_json(req, 200, doc);
}

/* The ID of /v1/intents/ID, or NULL (a reply was sent). */
static const char *path_id(struct cm_ctl_req *req, const char *rest)
{
    if (rest[0] == '\0' || strchr(rest, '/') != NULL || strlen(rest) > CM_INTENT_ID_MAX) {
        cm_ctl_reply_error(req, 404, "not found; use /v1/intents/ID");
        return NULL;
    }
    return rest;
}

static void route_put(const struct cm_intent_routes *r, struct cm_ctl_req *req, const char *id)
{
    char err[CM_INTENT_ERR_MAX] = "";
    struct cm_buf body;
    json_t *doc;
    bool changed = false;
    int rc;

    cm_buf_init(&body, CM_INTENT_TEXT_MAX);
    rc = cm_ctl_body(req, &body);
    if (rc != CM_OK) {
        cm_ctl_reply_error(req, rc == CM_ETOOBIG ? 413 : 500, "an intent is at most %d bytes",
                           CM_INTENT_TEXT_MAX);
        goto out;
    }
    doc = json_loadb(body.data, body.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_string(json_object_get(doc, "id")) ||
        strcmp(json_string_value(json_object_get(doc, "id")), id) != 0) {
        json_decref(doc);
        cm_ctl_reply_error(req, 400, "the body must be an intent whose \"id\" is \"%s\"", id);
        goto out;
    }
    json_decref(doc);
    rc = r->put(r->arg, body.data, body.len, cm_wall_s(), &changed, err, sizeof(err));
    if (rc == CM_OK)
        cm_ctl_reply_json(req, 200, json_pack("{s:s,s:b}", "id", id, "changed", changed));
    else
        cm_ctl_reply_error(req, put_status(rc), "%s", err[0] != '\0' ? err : cm_strerror(rc));
out:
    cm_buf_fini(&body);
}

static void route_delete(const struct cm_intent_routes *r, struct cm_ctl_req *req, const char *id)
{
    char err[CM_INTENT_ERR_MAX] = "";
    struct evkeyvalq q;
    const char *by;
    int rc;

    if (cm_ctl_query_parse(req, &q) != CM_OK) {
        cm_ctl_reply_error(req, 400, "malformed query string");
        evhttp_clear_headers(&q);
        return;
    }
    by = cm_ctl_query_param(&q, "by");
    rc = r->remove(r->arg, id, by != NULL && by[0] != '\0' ? by : "control API", cm_wall_s(), err,
                   sizeof(err));
    if (rc == CM_OK)
        cm_ctl_reply_json(req, 200, json_pack("{s:s,s:b}", "id", id, "removed", 1));
    else
        cm_ctl_reply_error(req,
                           rc == CM_ENOENT    ? 404
                           : rc == CM_ENOTSUP ? 409
                                              : 500,
                           "%s", err[0] != '\0' ? err : cm_strerror(rc));
    evhttp_clear_headers(&q);
}

static void route_change(void *arg, struct cm_ctl_req *req, const char *rest)
{
    const struct cm_intent_routes *r = arg;
    const char *id = path_id(req, rest);

    if (id == NULL)
        return;
    if (cm_ctl_req_method(req) == CM_HTTP_PUT)
        route_put(r, req, id);
    else
        route_delete(r, req, id);
}

void cm_intents_metrics(const struct cm_intents *s, json_t *digest, int64_t now_s,
                        struct cm_buf *out)
{
    size_t count[CM_INTENT_KIND_COUNT] = {0};
    struct cm_buf labels;

    for (size_t i = 0; i < cm_intents_count(s); i++) {
        const struct cm_intent *in = cm_intents_get(s, i);

        if (cm_intent_is_active(in, now_s))
            count[in->kind]++;
    }
    cm_buf_init(&labels, 256);
    cm_metrics_family(out, "fedgslb_intents", "gauge",
                      "Active operator intents, by kind (drain, force-up, force-down, evacuate, "
                      "weight, priority).");
    for (int k = 0; k < CM_INTENT_KIND_COUNT; k++) {
        cm_buf_reset(&labels);
        cm_metrics_label(&labels, "kind", cm_intent_kind_name((enum cm_intent_kind)k));
        cm_metrics_sample(out, "fedgslb_intents", cm_buf_cstr(&labels), (double)count[k]);
    }
    cm_metrics_family(out, "fedgslb_state_digest_info", "gauge",
                      "1, labelled with the digest of the state answered from (vantage "
                      "generations and active intents) and of the active intents alone: equal "
                      "on name servers and proxies that agree.");
    if (digest != NULL) {
        const char *state = json_string_value(json_object_get(digest, "state"));
        const char *intents = json_string_value(json_object_get(digest, "intents"));

        cm_buf_reset(&labels);
        cm_metrics_label(&labels, "state", state != NULL ? state : "");
        cm_metrics_label(&labels, "intents", intents != NULL ? intents : "");
        cm_metrics_sample(out, "fedgslb_state_digest_info", cm_buf_cstr(&labels), 1);
    }
    cm_buf_fini(&labels);
    json_decref(digest);
}

int cm_intent_routes_register(struct cm_ctl *ctl, const struct cm_intent_routes *r)
{
    /* The routes take @r as their argument; const only for the caller's sake. */
    void *arg = (void *)(uintptr_t)r;
    int rc = cm_ctl_route(ctl, CM_HTTP_GET, "/v1/intents", CM_CTL_READ, route_get, arg);

    if (rc == CM_OK)
        rc = cm_ctl_route(ctl, CM_HTTP_PUT | CM_HTTP_DELETE, "/v1/intents/", CM_CTL_OPERATOR,
                          route_change, arg);
    return rc;
}
