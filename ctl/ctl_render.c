/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_render.c -- fedgslbctl's status model and its text, and explain's text. */
#include "ctl/ctl_render.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "ctl/ctl_table.h"

#define CELL_MAX 512

/* ---- small JSON readers (absent or mistyped values read as defaults) ---- */

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static bool jbool(json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static json_int_t jint(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* A copy of o[key], JSON null when absent. */
static json_t *jcopy(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return v != NULL ? json_deep_copy(v) : json_null();
}

/* ---- status model ---- */

static bool array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;

    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Client regions in the order dnsd lists them (the configuration's order). */
static json_t *collect_regions(json_t *services)
{
    json_t *regions = json_array();
    const char *key, *r;
    json_t *svc, *ans;

    json_object_foreach(services, key, svc)
    {
        json_object_foreach(json_object_get(svc, "regions"), r, ans)
        {
            if (regions != NULL && !array_has(regions, r))
                json_array_append_new(regions, json_string(r));
        }
    }
    return regions;
}

/* Vantages: the client regions' order first, then any others by name. */
static json_t *collect_vantages(json_t *vantages, json_t *regions)
{
    json_t *out = json_array();
    const char *v;
    json_t *doc, *r;
    size_t i;

    json_array_foreach(regions, i, r)
    {
        if (out != NULL && json_object_get(vantages, json_string_value(r)) != NULL)
            json_array_append(out, r);
    }
    json_object_foreach(vantages, v, doc)
    {
        if (out != NULL && !array_has(out, v))
            json_array_append_new(out, json_string(v));
    }
    return out;
}

/* What vantage @doc measured to @member for @service: the service's rtt_ms,
 * else the member's (cm_merged_rtt's rule); JSON null when neither. */
static json_t *vantage_rtt(json_t *doc, const char *service, const char *member)
{
    json_t *svc = json_object_get(json_object_get(doc, "services"), service);
    json_t *ep = json_object_get(json_object_get(svc, "members"), member);
    json_t *rtt = json_object_get(ep, "rtt_ms");

    if (!json_is_number(rtt))
        rtt = json_object_get(json_object_get(json_object_get(doc, "members"), member), "rtt_ms");
    return json_is_number(rtt) ? json_real(json_number_value(rtt)) : json_null();
}

const char *ctl_answer_cell(json_t *answer, char *buf, size_t cap)
{
    json_t *chosen = json_object_get(answer, "chosen");
    const char *member = jstr(answer, "member");
    const char *cname = jstr(answer, "cname");
    size_t i, len = 0;
    json_t *v;

    if (jbool(answer, "fail_open"))
        return "fail-open";
    if (member != NULL)
        return member;
    if (json_array_size(chosen) == 0) {
        if (cname != NULL) {
            snprintf(buf, cap, "sorry:%s", cname);
            return buf;
        }
        return "fail-closed";
    }
    buf[0] = '\0';
    json_array_foreach(chosen, i, v)
    {
        const char *name = json_string_value(v);

        if (name == NULL)
            continue;
        len = cm_strlcpy(buf + len, i > 0 ? "|" : "", cap - len) + len;
        if (len >= cap)
            break;
        len = cm_strlcpy(buf + len, name, cap - len) + len;
        if (len >= cap)
            break;
    }
    return buf;
}

static json_t *member_model(json_t *info, const char *service, const char *member, json_t *vantages,
                            json_t *vantage_docs)
{
    json_t *rtt = json_object();
    json_t *v;
    size_t i;

    json_array_foreach(vantages, i, v)
    {
        const char *name = json_string_value(v);

        json_object_set_new(rtt, name,
                            vantage_rtt(json_object_get(vantage_docs, name), service, member));
    }
    return json_pack("{s:s,s:b,s:b,s:I,s:I,s:o,s:I,s:b,s:b,s:o,s:b,s:o,s:o*}", "member", member,
                     "present", jbool(info, "present"), "healthy", jbool(info, "healthy"),
                     "votes_up", jint(info, "votes_up"), "votes_down", jint(info, "votes_down"),
                     "reason", jcopy(info, "reason"), "ready_endpoints",
                     jint(info, "ready_endpoints"), "pending", jbool(info, "pending"), "draining",
                     jbool(info, "drained"), "admin", jcopy(info, "admin"), "eligible",
                     jbool(info, "eligible"), "excluded", jcopy(info, "excluded"), "rtt_ms", rtt);
}

static json_t *service_model(const char *key, json_t *svc, json_t *vantages, json_t *vantage_docs)
{
    json_t *members = json_array();
    json_t *answers = json_object();
    const char *name;
    json_t *info;
    char cell[CELL_MAX];

    json_object_foreach(json_object_get(svc, "members"), name, info)
    {
        if (members != NULL)
            json_array_append_new(members, member_model(info, key, name, vantages, vantage_docs));
    }
    json_object_foreach(json_object_get(svc, "regions"), name, info)
    {
        json_t *a = json_deep_copy(info);

        if (a != NULL && answers != NULL) {
            json_object_set_new(a, "text", json_string(ctl_answer_cell(info, cell, sizeof(cell))));
            json_object_set_new(answers, name, a);
        } else {
            json_decref(a);
        }
    }
    return json_pack("{s:s,s:b,s:o*,s:o*}", "service", key, "configured", jbool(svc, "configured"),
                     "members", members, "answers", answers);
}

json_t *ctl_status_model(json_t *state, json_t *answers, const char *dnsd_url, char *err,
                         size_t errlen)
{
    json_t *services = json_object_get(answers, "services");
    json_t *vantage_docs = json_object_get(state, "vantages");
    json_t *regions = NULL, *vantages = NULL, *list = NULL, *model = NULL, *serial;
    const char *key;
    json_t *svc;

    if (!json_is_object(services)) {
        cm_errf(err, errlen, "GET /v1/answers: no \"services\" object in the reply");
        return NULL;
    }
    if (!json_is_object(vantage_docs)) {
        cm_errf(err, errlen, "GET /v1/state: no \"vantages\" object in the reply");
        return NULL;
    }
    regions = collect_regions(services);
    vantages = collect_vantages(vantage_docs, regions);
    list = json_array();
    if (regions == NULL || vantages == NULL || list == NULL)
        goto out;
    json_object_foreach(services, key, svc)
    {
        if (json_array_append_new(list, service_model(key, svc, vantages, vantage_docs)) != 0)
            goto out;
    }
    serial = jcopy(answers, "view_serial");
    model = json_pack("{s:s,s:o*,s:O,s:O,s:O}", "dnsd", dnsd_url, "view_serial", serial, "vantages",
                      vantages, "regions", regions, "services", list);
out:
    if (model == NULL)
        cm_err_oom(err, errlen, NULL);
    json_decref(regions);
    json_decref(vantages);
    json_decref(list);
    return model;
}

/* ---- status text ---- */

static const char *healthy_cell(json_t *m)
{
    if (!jbool(m, "present"))
        return "absent";
    return jbool(m, "healthy") ? "yes" : "no";
}

static void flags_cell(json_t *m, char *buf, size_t cap)
{
    bool pending = jbool(m, "pending"), draining = jbool(m, "draining");
    const char *admin = jstr(m, "admin");
    const char *forced = admin != NULL && strcmp(admin, "forced up") == 0          ? "forced-up"
                         : admin != NULL && strcmp(admin, "forced down") == 0      ? "forced-down"
                         : admin != NULL && strcmp(admin, "region evacuated") == 0 ? "evacuated"
                                                                                   : NULL;

    snprintf(buf, cap, "%s%s%s%s%s", pending ? "pending" : "", pending && draining ? "," : "",
             draining && forced == NULL ? "draining" : "",
             (pending || draining) && forced != NULL ? "," : "", forced != NULL ? forced : "");
    if (buf[0] == '\0')
        cm_strlcpy(buf, "-", cap);
}

static int members_table(json_t *model, struct cm_buf *out)
{
    json_t *vantages = json_object_get(model, "vantages");
    size_t nv = json_array_size(vantages), ncols = 7 + nv, i, j, k;
    struct ctl_table *t = ctl_table_new(ncols);
    const char **row = calloc(ncols, sizeof(*row));
    char(*cells)[64] = calloc(ncols, sizeof(*cells));
    json_t *svc, *m, *v;
    int rc = CM_ENOMEM;

    if (t == NULL || row == NULL || cells == NULL)
        goto out;
    row[0] = "SERVICE";
    row[1] = "MEMBER";
    row[2] = "HEALTHY";
    row[3] = "VOTES";
    json_array_foreach(vantages, k, v)
    {
        snprintf(cells[4 + k], sizeof(cells[0]), "RTT:%s", json_string_value(v));
        row[4 + k] = cells[4 + k];
    }
    row[4 + nv] = "READY";
    row[5 + nv] = "FLAGS";
    row[6 + nv] = "REASON";
    rc = ctl_table_add_row(t, row);
    json_array_foreach(json_object_get(model, "services"), i, svc)
    {
        json_array_foreach(json_object_get(svc, "members"), j, m)
        {
            json_t *rtt = json_object_get(m, "rtt_ms");

            row[0] = jstr(svc, "service");
            row[1] = jstr(m, "member");
            row[2] = healthy_cell(m);
            snprintf(cells[3], sizeof(cells[0]), "%lld/%lld", (long long)jint(m, "votes_up"),
                     (long long)jint(m, "votes_down"));
            row[3] = cells[3];
            json_array_foreach(vantages, k, v)
            {
                json_t *ms = json_object_get(rtt, json_string_value(v));

                if (json_is_number(ms))
                    snprintf(cells[4 + k], sizeof(cells[0]), "%.1f", json_number_value(ms));
                else
                    cm_strlcpy(cells[4 + k], "-", sizeof(cells[0]));
                row[4 + k] = cells[4 + k];
            }
            snprintf(cells[4 + nv], sizeof(cells[0]), "%lld",
                     (long long)jint(m, "ready_endpoints"));
            row[4 + nv] = cells[4 + nv];
            flags_cell(m, cells[5 + nv], sizeof(cells[0]));
            row[5 + nv] = cells[5 + nv];
            row[6 + nv] = jstr(m, "reason");
            if (rc == CM_OK)
                rc = ctl_table_add_row(t, row);
        }
    }
    if (rc == CM_OK)
        rc = ctl_table_render(t, out);
out:
    free(cells);
    free(row);
    ctl_table_free(t);
    return rc;
}

static int answers_table(json_t *model, struct cm_buf *out)
{
    json_t *regions = json_object_get(model, "regions");
    size_t nr = json_array_size(regions), ncols = 1 + nr, i, k;
    struct ctl_table *t = ctl_table_new(ncols);
    const char **row = calloc(ncols, sizeof(*row));
    json_t *svc, *r;
    int rc = CM_ENOMEM;

    if (t == NULL || row == NULL)
        goto out;
    row[0] = "SERVICE";
    json_array_foreach(regions, k, r) row[1 + k] = json_string_value(r);
    rc = ctl_table_add_row(t, row);
    json_array_foreach(json_object_get(model, "services"), i, svc)
    {
        json_t *answers = json_object_get(svc, "answers");

        row[0] = jstr(svc, "service");
        json_array_foreach(regions, k, r) row[1 + k] =
            jstr(json_object_get(answers, json_string_value(r)), "text");
        if (rc == CM_OK)
            rc = ctl_table_add_row(t, row);
    }
    if (rc == CM_OK)
        rc = ctl_table_render(t, out);
out:
    free(row);
    ctl_table_free(t);
    return rc;
}

int ctl_status_text(json_t *model, struct cm_buf *out)
{
    json_t *vantages = json_object_get(model, "vantages");
    json_t *serial = json_object_get(model, "view_serial");
    json_t *v;
    size_t i;
    int rc;

    rc = cm_buf_printf(out, "dnsd %s", jstr(model, "dnsd") != NULL ? jstr(model, "dnsd") : "?");
    if (rc == CM_OK && json_is_integer(serial))
        rc = cm_buf_printf(out, ", view %lld", (long long)json_integer_value(serial));
    if (rc == CM_OK)
        rc = cm_buf_append_str(out, ", vantages:");
    json_array_foreach(vantages, i, v)
    {
        if (rc == CM_OK)
            rc = cm_buf_printf(out, " %s", json_string_value(v));
    }
    if (rc == CM_OK && json_array_size(vantages) == 0)
        rc = cm_buf_append_str(out, " none (no state document accepted yet)");
    if (rc == CM_OK)
        rc = cm_buf_append_str(out, "\n\n");
    if (rc == CM_OK)
        rc = members_table(model, out);
    if (rc == CM_OK)
        rc = cm_buf_append_str(out, "\nanswers of each service's global name, by client region:\n");
    if (rc == CM_OK)
        rc = answers_table(model, out);
    return rc;
}

/* ---- explain text ---- */

/* Candidates sorted by rank (unranked last, in member order). */
static int by_rank(const void *a, const void *b)
{
    json_t *ra = json_object_get(*(json_t *const *)a, "rank");
    json_t *rb = json_object_get(*(json_t *const *)b, "rank");
    json_int_t ia = json_is_integer(ra) ? json_integer_value(ra) : INT64_MAX;
    json_int_t ib = json_is_integer(rb) ? json_integer_value(rb) : INT64_MAX;

    return ia < ib ? -1 : ia > ib ? 1 : 0;
}

static const char *candidate_status(json_t *c, json_t *dec, char *buf, size_t cap)
{
    const char *name = jstr(c, "member");
    const char *selected = jstr(dec, "selected");
    json_t *chosen = json_object_get(dec, "chosen");

    if (name != NULL && selected != NULL && strcmp(name, selected) == 0)
        return json_array_size(chosen) > 1 ? "chosen (this client's share)" : "chosen";
    if (name != NULL && array_has(chosen, name))
        return selected != NULL ? "shares the answer" : "answered";
    if (!jbool(c, "candidate")) {
        snprintf(buf, cap, "excluded: %s",
                 jstr(c, "excluded") != NULL ? jstr(c, "excluded") : "not a candidate");
        return buf;
    }
    if (!jbool(c, "in_scope"))
        return "candidate, outside the name's region/zone";
    return "candidate";
}

static int candidates_table(json_t *decision, struct cm_buf *out)
{
    static const char *const head[] = {"RANK",    "MEMBER", "REGION", "RTT_MS", "RTT_SOURCE",
                                       "HEALTHY", "VOTES",  "READY",  "STATUS"};
    json_t *cands = json_object_get(decision, "candidates");
    json_t *dec = json_object_get(decision, "decision");
    size_t n = json_array_size(cands);
    json_t **sorted = calloc(n > 0 ? n : 1, sizeof(*sorted));
    struct ctl_table *t = ctl_table_new(9);
    int rc = CM_ENOMEM;

    if (sorted == NULL || t == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        sorted[i] = json_array_get(cands, i);
    qsort(sorted, n, sizeof(*sorted), by_rank);
    rc = ctl_table_add_row(t, head);
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        json_t *c = sorted[i];
        json_t *rank = json_object_get(c, "rank");
        char rk[32], rtt[32], votes[48], ready[32], st[CELL_MAX];
        const char *row[9];

        snprintf(rk, sizeof(rk), "%lld", (long long)json_integer_value(rank));
        snprintf(rtt, sizeof(rtt), "%.1f", json_number_value(json_object_get(c, "rtt_ms")));
        snprintf(votes, sizeof(votes), "%lld/%lld", (long long)jint(c, "votes_up"),
                 (long long)jint(c, "votes_down"));
        snprintf(ready, sizeof(ready), "%lld", (long long)jint(c, "ready_endpoints"));
        row[0] = json_is_integer(rank) ? rk : "-";
        row[1] = jstr(c, "member");
        row[2] = jstr(c, "region");
        row[3] = rtt;
        row[4] = jstr(c, "rtt_source");
        row[5] = !jbool(c, "present") ? "absent" : jbool(c, "healthy") ? "yes" : "no";
        row[6] = votes;
        row[7] = ready;
        row[8] = candidate_status(c, dec, st, sizeof(st));
        rc = ctl_table_add_row(t, row);
    }
    if (rc == CM_OK)
        rc = ctl_table_render(t, out);
out:
    free(sorted);
    ctl_table_free(t);
    return rc;
}

/* "answer  eur (best latency); ttl 30 s (ttl_s)" */
static int decision_line(json_t *dec, struct cm_buf *out)
{
    json_t *chosen = json_object_get(dec, "chosen");
    const char *selected = jstr(dec, "selected");
    const char *cname = jstr(dec, "cname");
    json_t *v;
    size_t i;
    int rc = cm_buf_append_str(out, "answer  ");

    if (rc == CM_OK && cname != NULL)
        rc = cm_buf_printf(out, "CNAME %s", cname);
    else if (rc == CM_OK && selected != NULL)
        rc = cm_buf_append_str(out, selected);
    else if (rc == CM_OK && json_array_size(chosen) == 0)
        rc = cm_buf_append_str(out, "no records");
    json_array_foreach(chosen, i, v)
    {
        if (rc == CM_OK && selected == NULL && cname == NULL)
            rc = cm_buf_printf(out, "%s%s", i > 0 ? ", " : "", json_string_value(v));
    }
    if (rc == CM_OK && selected != NULL && json_array_size(chosen) > 1) {
        rc = cm_buf_append_str(out, " (shared by");
        json_array_foreach(chosen, i, v)
        {
            if (rc == CM_OK)
                rc = cm_buf_printf(out, " %s", json_string_value(v));
        }
        if (rc == CM_OK)
            rc = cm_buf_append_str(out, ")");
    }
    if (rc == CM_OK)
        rc = cm_buf_printf(out, "  [%s; ttl %lld s: %s]\n",
                           jstr(dec, "rule") != NULL ? jstr(dec, "rule") : "?",
                           (long long)jint(dec, "ttl"),
                           jstr(dec, "ttl_reason") != NULL ? jstr(dec, "ttl_reason") : "?");
    return rc;
}

static int response_lines(json_t *response, struct cm_buf *out)
{
    static const char *const types[] = {"A", "AAAA"};
    int rc = CM_OK;

    if (!json_is_object(response))
        return cm_buf_append_str(out, "\n(explained for a region, not an address: no DNS "
                                      "response shown)\n");
    rc = cm_buf_append_str(out, "\nresponses to this client:\n");
    for (size_t t = 0; rc == CM_OK && t < 2; t++) {
        json_t *r = json_object_get(response, types[t]);
        json_t *ans = json_object_get(r, "answer");
        json_t *v;
        size_t i;

        if (jstr(r, "error") != NULL) {
            rc = cm_buf_printf(out, "  %-4s  error: %s\n", types[t], jstr(r, "error"));
            continue;
        }
        rc = cm_buf_printf(out, "  %-4s  %s%s%s\n", types[t],
                           jstr(r, "rcode") != NULL ? jstr(r, "rcode") : "?",
                           jbool(r, "fail_open") ? ", fail-open" : "",
                           json_array_size(ans) == 0 ? ", no records" : "");
        json_array_foreach(ans, i, v)
        {
            char line[CELL_MAX];

            cm_strlcpy(line, json_string_value(v) != NULL ? json_string_value(v) : "",
                       sizeof(line));
            for (char *p = line; *p != '\0'; p++)
                *p = *p == '\t' ? ' ' : *p;
            if (rc == CM_OK)
                rc = cm_buf_printf(out, "        %s\n", line);
        }
    }
    return rc;
}

/*
 * "intent  drain eur (drain-eur-...) by alice until ...: maintenance" for every
 * intent that applied, "policy  eur weight 0 (intent w-1)" for every weight or
 * priority not the default, and how the policy narrowed the candidates.
 */
static int policy_lines(json_t *decision, struct cm_buf *out)
{
    json_t *dec = json_object_get(decision, "decision");
    json_t *v;
    size_t i;
    int rc = CM_OK;

    json_array_foreach(json_object_get(decision, "intents"), i, v)
    {
        const char *target = jstr(v, "member") != NULL ? jstr(v, "member") : jstr(v, "region");
        json_t *val = json_object_get(v, "weight") != NULL ? json_object_get(v, "weight")
                                                           : json_object_get(v, "priority");
        char num[32] = "";

        if (val != NULL)
            snprintf(num, sizeof(num), " %lld", (long long)json_integer_value(val));
        if (rc == CM_OK)
            rc = cm_buf_printf(out, "intent  %s %s%s (%s) by %s%s%s: %s\n", jstr(v, "kind"),
                               target != NULL ? target : "?", num, jstr(v, "id"), jstr(v, "author"),
                               jstr(v, "expires_at") != NULL ? " until " : "",
                               jstr(v, "expires_at") != NULL ? jstr(v, "expires_at") : "",
                               jstr(v, "reason"));
    }
    json_array_foreach(json_object_get(decision, "policy"), i, v)
    {
        if (rc == CM_OK)
            rc = cm_buf_printf(out, "policy  %s\n", json_string_value(v));
    }
    if (rc == CM_OK && jbool(dec, "standby"))
        rc = cm_buf_append_str(out, "policy  only standby members (weight 0) are healthy\n");
    if (rc == CM_OK && json_is_integer(json_object_get(dec, "priority_group")) &&
        jint(dec, "priority_group") != 0)
        rc = cm_buf_printf(out,
                           "policy  priority group %lld answers (the groups before it have "
                           "no healthy member)\n",
                           (long long)jint(dec, "priority_group"));
    if (rc == CM_OK && jbool(dec, "own_region_only"))
        rc = cm_buf_append_str(out, "policy  members of the client's own region win over others "
                                    "as near (prefer_own_region)\n");
    return rc;
}

int ctl_explain_text(json_t *doc, struct cm_buf *out)
{
    json_t *client = json_object_get(doc, "client");
    json_t *decision = json_object_get(doc, "decision");
    const char *addr = jstr(client, "address");
    json_t *ecs = json_object_get(client, "ecs_prefix");
    int rc;

    rc = cm_buf_printf(out, "name    %s", jstr(doc, "name") != NULL ? jstr(doc, "name") : "?");
    if (rc == CM_OK && json_is_object(decision))
        rc = cm_buf_printf(out, " (%s name of service %s%s)", jstr(decision, "level"),
                           jstr(decision, "service"),
                           jbool(decision, "configured") ? "" : ", discovered, not configured");
    if (rc == CM_OK)
        rc = cm_buf_printf(out, "\nclient  %s", addr != NULL ? addr : "(any address)");
    if (rc == CM_OK && json_is_integer(ecs))
        rc = cm_buf_printf(out, "/%lld (ECS%s)", (long long)json_integer_value(ecs),
                           jbool(client, "ecs_used") ? "" : ", ignored: dnsd.ecs is off");
    if (rc == CM_OK)
        rc = cm_buf_printf(out, " -> region %s (%s)\n", jstr(client, "region"),
                           jstr(client, "how") != NULL ? jstr(client, "how") : "?");
    if (rc == CM_OK && jstr(client, "placement") != NULL)
        rc = cm_buf_printf(out, "placed  %s\n", jstr(client, "placement"));
    if (rc != CM_OK)
        return rc;
    if (!json_is_object(decision)) {
        rc = cm_buf_append_str(out, "answer  not a federated name: the static zone answers\n");
    } else {
        rc = decision_line(json_object_get(decision, "decision"), out);
        if (rc == CM_OK)
            rc = policy_lines(decision, out);
        if (rc == CM_OK)
            rc = cm_buf_printf(out, "\nranking from %s:\n", jstr(decision, "client_region"));
        if (rc == CM_OK)
            rc = candidates_table(decision, out);
    }
    if (rc == CM_OK)
        rc = response_lines(json_object_get(doc, "response"), out);
    return rc;
}
