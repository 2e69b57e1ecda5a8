/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf_deploy.c -- one file for the whole deployment: the "deployment"
 * schema (every name server, vantage and proxy), the checks that span the
 * file (names and addresses that collide, client networks mapped to two
 * regions or overlapping), the default of health.publish_to, and selecting
 * one instance: its values replace its section's after the walk.
 *
 *   "deployment": {
 *     "name_servers": {"ns1": {"listen": [...], "control": "ip:port",
 *                              "region": "us-east-1", "state_file": ...}},
 *     "vantages":     {"us-east-1": {"control": ..., "probe_source": ...}},
 *     "proxies":      {"px1": {"control": ..., "listen": [bind per proxy.listen]}}
 *   }
 *
 * Keys an instance supplies (dnsd.region, health.vantage, the control
 * blocks' listen) may be absent from the sections (cm_conf_item.by_instance).
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cm_conf.h"
#include "common/cm_conf_schema.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_str.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Client network overlaps warned one by one; the rest are counted. */
#define OVERLAP_WARN_MAX 20

static const char *const kind_names[CM_INSTANCE_KIND_COUNT] = {"name server", "vantage", "proxy"};
static const char *const kind_keys[CM_INSTANCE_KIND_COUNT] = {"name_servers", "vantages",
                                                              "proxies"};
/* The section each kind of instance fills. */
static const char *const kind_sections[CM_INSTANCE_KIND_COUNT] = {"dnsd", "health", "proxy"};

const char *cm_instance_kind_name(enum cm_instance_kind kind)
{
    return (unsigned)kind < CM_INSTANCE_KIND_COUNT ? kind_names[kind] : "?";
}

const char *cm_instance_kind_key(enum cm_instance_kind kind)
{
    return (unsigned)kind < CM_INSTANCE_KIND_COUNT ? kind_keys[kind] : "?";
}

const struct cm_conf_instance *cm_conf_instances(const struct cm_conf *conf,
                                                 enum cm_instance_kind kind, size_t *count)
{
    const struct cm_conf_deployment *d = &conf->deployment;

    switch (kind) {
    case CM_INSTANCE_NAME_SERVER:
        *count = d->name_server_count;
        return d->name_servers;
    case CM_INSTANCE_VANTAGE:
        *count = d->vantage_count;
        return d->vantages;
    case CM_INSTANCE_PROXY:
        *count = d->proxy_count;
        return d->proxies;
    }
    *count = 0;
    return NULL;
}

/* ---- warnings ---- */

int cm_conf_warn(struct cm_conf_parse *p, const char *fmt, ...)
{
    struct cm_conf *conf = p->conf;
    char text[CM_CONF_ERR_MAX];
    struct cm_buf line;
    char **grown;
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    cm_buf_init(&line, 4 * CM_CONF_ERR_MAX);
    if (p->path_len > 0)
        rc = cm_buf_printf(&line, "%s: %s: %s", p->name, p->path, text);
    else
        rc = cm_buf_printf(&line, "%s: %s", p->name, text);
    grown =
        rc == CM_OK ? realloc(conf->warnings, (conf->warning_count + 1) * sizeof(*grown)) : NULL;
    if (grown != NULL) {
        conf->warnings = grown;
        conf->warnings[conf->warning_count] = strdup(cm_buf_cstr(&line));
        rc = conf->warnings[conf->warning_count] != NULL ? CM_OK : CM_ENOMEM;
        conf->warning_count += rc == CM_OK;
    }
    cm_buf_fini(&line);
    return grown != NULL && rc == CM_OK ? CM_OK : cm_conf_oom(p);
}

/* ---- the schema ---- */

/* A vantage is named by its region. */
static int key_vantage(struct cm_conf_parse *p, void *base, void *field)
{
    struct cm_conf_instance *inst = base;
    const char *s = *(char **)field;
    char q[CM_CONF_QUOTE_MAX];
    int r = cm_conf_region_index(p->conf, s);

    if (r < 0)
        return cm_conf_fail(p, "unknown vantage %s: vantages are named by their region",
                            cm_conf_quote(s, q, sizeof(q)));
    inst->region = (size_t)r;
    return CM_OK;
}

static const struct cm_conf_item name_server_items[] = {
    {.key = "listen",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_instance, listen),
     .count_offset = offsetof(struct cm_conf_instance, listen_count),
     .min = 1,
     .max = 64},
    {.key = "control",
     .type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_instance, control),
     .required = true},
    {.key = "region",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_REGION,
     .offset = offsetof(struct cm_conf_instance, region),
     .required = true},
    {.key = "state_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_instance, state_file)},
};
static const struct cm_conf_schema name_server_schema = {
    .items = name_server_items,
    .count = COUNT(name_server_items),
    .size = sizeof(struct cm_conf_instance),
    .name_offset = offsetof(struct cm_conf_instance, name),
    .key_check = cm_conf_key_label,
};

static const struct cm_conf_item vantage_items[] = {
    {.key = "control",
     .type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_instance, control),
     .required = true},
    {.key = "probe_source",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_instance, probe_source),
     .validate = cm_conf_ip_literal},
    {.key = "state_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_instance, state_file)},
};
static const struct cm_conf_schema vantage_schema = {
    .items = vantage_items,
    .count = COUNT(vantage_items),
    .size = sizeof(struct cm_conf_instance),
    .name_offset = offsetof(struct cm_conf_instance, name),
    .key_check = key_vantage,
};

static const struct cm_conf_item proxy_items[] = {
    {.key = "listen",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_instance, listen),
     .count_offset = offsetof(struct cm_conf_instance, listen_count),
     .min = 1,
     .max = 1024},
    {.key = "control",
     .type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_instance, control),
     .required = true},
    {.key = "state_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_instance, state_file)},
};
static const struct cm_conf_schema proxy_schema = {
    .items = proxy_items,
    .count = COUNT(proxy_items),
    .size = sizeof(struct cm_conf_instance),
    .name_offset = offsetof(struct cm_conf_instance, name),
    .key_check = cm_conf_key_label,
};

/* One name for one instance, across kinds: fedgslbctl and logs name them so. */
static int names_unique(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_deployment *d = base;
    const struct cm_conf_instance *lists[CM_INSTANCE_KIND_COUNT] = {d->name_servers, d->vantages,
                                                                    d->proxies};
    const size_t counts[CM_INSTANCE_KIND_COUNT] = {d->name_server_count, d->vantage_count,
                                                   d->proxy_count};
    char key[CM_CONF_PATH_MAX];

    for (int k = 0; k < CM_INSTANCE_KIND_COUNT; k++) {
        for (size_t i = 0; i < counts[k]; i++) {
            for (int j = 0; j < k; j++) {
                for (size_t n = 0; n < counts[j]; n++) {
                    if (strcmp(lists[k][i].name, lists[j][n].name) != 0)
                        continue;
                    snprintf(key, sizeof(key), "%s.%s", kind_keys[k], lists[k][i].name);
                    return cm_conf_fail_at(p, key,
                                           "the name \"%s\" is already a %s "
                                           "(deployment.%s.%s): every instance needs a name "
                                           "of its own",
                                           lists[k][i].name, kind_names[j], kind_keys[j],
                                           lists[j][n].name);
                }
            }
        }
    }
    return CM_OK;
}

static const struct cm_conf_item deployment_items[] = {
    {.key = "name_servers",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf_deployment, name_servers),
     .count_offset = offsetof(struct cm_conf_deployment, name_server_count),
     .max = 256,
     .sub = &name_server_schema},
    {.key = "vantages",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf_deployment, vantages),
     .count_offset = offsetof(struct cm_conf_deployment, vantage_count),
     .max = 256,
     .sub = &vantage_schema},
    {.key = "proxies",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf_deployment, proxies),
     .count_offset = offsetof(struct cm_conf_deployment, proxy_count),
     .max = 256,
     .sub = &proxy_schema},
};
const struct cm_conf_schema cm_conf_deployment_schema = {
    .items = deployment_items,
    .count = COUNT(deployment_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_deployment, present),
    .post = names_unique,
};

/* ---- keys instances supply ---- */

/* The kind whose section the current path is in, or -1. */
static int kind_of_path(const char *path)
{
    for (int k = 0; k < CM_INSTANCE_KIND_COUNT; k++) {
        size_t n = strlen(kind_sections[k]);

        if (strncmp(path, kind_sections[k], n) == 0 && path[n] == '.')
            return k;
    }
    return -1;
}

bool cm_conf_instance_supplies(const struct cm_conf_parse *p)
{
    int k = kind_of_path(p->path);
    size_t n = 0;

    if (k >= 0)
        (void)cm_conf_instances(p->conf, (enum cm_instance_kind)k, &n);
    return n > 0;
}

/* ---- client networks: one region per network, overlaps said ---- */

static int net_cmp(const void *a, const void *b, void *arg)
{
    const struct cm_conf *conf = arg;
    const struct cm_conf_client_net *x = &conf->client_networks[*(const size_t *)a];
    const struct cm_conf_client_net *y = &conf->client_networks[*(const size_t *)b];
    int c;

    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    c = memcmp(x->addr, y->addr, x->family == AF_INET ? 4 : 16);
    if (c != 0)
        return c;
    if (x->prefix_len != y->prefix_len)
        return x->prefix_len < y->prefix_len ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Whether network @outer holds every address of @inner. */
static bool net_contains(const struct cm_conf_client_net *outer,
                         const struct cm_conf_client_net *inner)
{
    unsigned bits = outer->prefix_len;

    if (outer->family != inner->family || outer->prefix_len > inner->prefix_len)
        return false;
    if (memcmp(outer->addr, inner->addr, bits / 8) != 0)
        return false;
    return bits % 8 == 0 ||
           ((outer->addr[bits / 8] ^ inner->addr[bits / 8]) & (0xff00u >> (bits % 8)) & 0xff) == 0;
}

/* @inner lies in @outer: the same network twice, or a longer prefix inside. */
static int net_pair(struct cm_conf_parse *p, const struct cm_conf *conf, size_t oi, size_t ii,
                    size_t *warned)
{
    const struct cm_conf_client_net *o = &conf->client_networks[oi];
    const struct cm_conf_client_net *in = &conf->client_networks[ii];
    const char *orr = conf->regions[o->region].name, *irr = conf->regions[in->region].name;
    char key[64];
    int rc = CM_OK;

    snprintf(key, sizeof(key), "client_networks[%zu].cidr", ii);
    if (o->prefix_len == in->prefix_len && o->region != in->region)
        return cm_conf_fail_at(p, key,
                               "%s is mapped to %s here and to %s by client_networks[%zu]: a "
                               "network has one region; remove one of them",
                               in->cidr, irr, orr, oi);
    if (o->region == in->region && o->prefix_len != in->prefix_len)
        return CM_OK; /* a subnet of the same region: redundant, harmless */
    if ((*warned)++ >= OVERLAP_WARN_MAX)
        return CM_OK;
    size_t old = cm_conf_path_push(p, key);
    if (o->prefix_len == in->prefix_len)
        rc = cm_conf_warn(p, "%s is listed twice (also client_networks[%zu])", in->cidr, oi);
    else
        rc = cm_conf_warn(p,
                          "%s (%s) lies inside client_networks[%zu] %s (%s): its addresses go to "
                          "%s, the longer prefix; fine if that is meant",
                          in->cidr, irr, oi, o->cidr, orr, irr);
    cm_conf_path_pop(p, old);
    return rc;
}

/*
 * Sorted by (family, address, prefix length), a network's containers come
 * before it: a stack of the open containers finds every nesting in one pass.
 */
static int networks_check(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    size_t n = conf->client_network_count, depth = 0, warned = 0;
    size_t *order = calloc(n + 1, sizeof(*order)), *stack = calloc(n + 1, sizeof(*stack));
    int rc = CM_OK;

    if (order == NULL || stack == NULL) {
        free(order);
        free(stack);
        return cm_conf_oom(p);
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof(*order), net_cmp, (void *)(uintptr_t)conf);
    for (size_t i = 0; i < n && rc == CM_OK; i++) {
        const struct cm_conf_client_net *cur = &conf->client_networks[order[i]];

        while (depth > 0 && !net_contains(&conf->client_networks[stack[depth - 1]], cur))
            depth--;
        if (depth > 0)
            rc = net_pair(p, conf, stack[depth - 1], order[i], &warned);
        stack[depth++] = order[i];
    }
    if (rc == CM_OK && warned > OVERLAP_WARN_MAX)
        rc = cm_conf_warn(p, "client_networks: %zu more overlapping networks not listed",
                          warned - OVERLAP_WARN_MAX);
    free(order);
    free(stack);
    return rc;
}

/* ---- the deployment's addresses ---- */

struct named_addr {
    const struct cm_addr *addr;
    char path[CM_CONF_PATH_MAX];
};

static bool addr_equal(const struct cm_addr *a, const struct cm_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Adds @a under @path; a second instance on the same address is an error. */
static int addr_claim(struct cm_conf_parse *p, struct named_addr *seen, size_t *n,
                      const struct cm_addr *a, const char *path)
{
    char text[CM_ADDR_STRLEN];

    for (size_t i = 0; i < *n; i++) {
        if (!addr_equal(seen[i].addr, a))
            continue;
        cm_addr_format((const struct sockaddr *)&a->ss, text, sizeof(text));
        return cm_conf_fail_at(p, path,
                               "%s is already deployment.%s: two instances cannot listen on one "
                               "address",
                               text, seen[i].path);
    }
    seen[*n].addr = a;
    snprintf(seen[*n].path, sizeof(seen[*n].path), "%s", path);
    (*n)++;
    return CM_OK;
}

static int addresses_check(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    size_t cap = 0, n = 0;
    struct named_addr *seen;
    int rc = CM_OK;

    for (int k = 0; k < CM_INSTANCE_KIND_COUNT; k++) {
        size_t count;
        const struct cm_conf_instance *in =
            cm_conf_instances(conf, (enum cm_instance_kind)k, &count);
        for (size_t i = 0; i < count; i++)
            cap += 1 + in[i].listen_count;
    }
    seen = calloc(cap + 1, sizeof(*seen));
    if (seen == NULL)
        return cm_conf_oom(p);
    for (int k = 0; k < CM_INSTANCE_KIND_COUNT && rc == CM_OK; k++) {
        size_t count;
        const struct cm_conf_instance *in =
            cm_conf_instances(conf, (enum cm_instance_kind)k, &count);
        for (size_t i = 0; i < count && rc == CM_OK; i++) {
            char path[CM_CONF_PATH_MAX];

            snprintf(path, sizeof(path), "%s.%s.control", kind_keys[k], in[i].name);
            rc = addr_claim(p, seen, &n, &in[i].control, path);
            for (size_t j = 0; j < in[i].listen_count && rc == CM_OK; j++) {
                snprintf(path, sizeof(path), "%s.%s.listen[%zu]", kind_keys[k], in[i].name, j);
                rc = addr_claim(p, seen, &n, &in[i].listen[j], path);
            }
        }
    }
    free(seen);
    return rc;
}

/* The section's value of a kind's state file (what an instance without its own uses). */
static const char *section_state_file(const struct cm_conf *conf, int kind)
{
    switch (kind) {
    case CM_INSTANCE_NAME_SERVER:
        return conf->dnsd.state_file;
    case CM_INSTANCE_VANTAGE:
        return conf->health.state_file;
    default:
        return conf->proxy.state_file;
    }
}

/* Two instances writing one state file: fine on two hosts, lost writes on one. */
static int state_files_check(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    int rc = CM_OK;

    for (int k = 0; k < CM_INSTANCE_KIND_COUNT && rc == CM_OK; k++) {
        size_t count;
        const struct cm_conf_instance *in =
            cm_conf_instances(conf, (enum cm_instance_kind)k, &count);
        for (size_t i = 1; i < count && rc == CM_OK; i++) {
            const char *a =
                in[i].state_file != NULL ? in[i].state_file : section_state_file(conf, k);
            for (size_t j = 0; j < i && a != NULL; j++) {
                const char *b =
                    in[j].state_file != NULL ? in[j].state_file : section_state_file(conf, k);
                char key[CM_CONF_PATH_MAX];

                if (b == NULL || strcmp(a, b) != 0)
                    continue;
                snprintf(key, sizeof(key), "deployment.%s.%s", kind_keys[k], in[i].name);
                size_t old = cm_conf_path_push(p, key);
                rc = cm_conf_warn(p,
                                  "writes the state file %s as %s does: give each its own "
                                  "state_file if they run on one host",
                                  a, in[j].name);
                cm_conf_path_pop(p, old);
                break;
            }
        }
    }
    return rc;
}

static int proxies_check(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    for (size_t i = 0; i < conf->deployment.proxy_count; i++) {
        const struct cm_conf_instance *px = &conf->deployment.proxies[i];
        char key[CM_CONF_PATH_MAX];

        if (px->listen_count == 0 || px->listen_count == conf->proxy.listen_count)
            continue;
        snprintf(key, sizeof(key), "proxies.%s.listen", px->name);
        return cm_conf_fail_at(p, key,
                               "%zu addresses for %zu proxy.listen entries: one bind address "
                               "per entry, in order",
                               px->listen_count, conf->proxy.listen_count);
    }
    return CM_OK;
}

/* Wildcard control addresses: fedgslbctl and the vantages use the loopback. */
static int wildcard_warnings(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    int rc = CM_OK;

    for (int k = 0; k < CM_INSTANCE_KIND_COUNT && rc == CM_OK; k++) {
        size_t count;
        const struct cm_conf_instance *in =
            cm_conf_instances(conf, (enum cm_instance_kind)k, &count);
        for (size_t i = 0; i < count && rc == CM_OK; i++) {
            char key[CM_CONF_PATH_MAX];

            if (!cm_addr_is_wildcard((const struct sockaddr *)&in[i].control.ss))
                continue;
            snprintf(key, sizeof(key), "deployment.%s.%s.control", kind_keys[k], in[i].name);
            size_t old = cm_conf_path_push(p, key);
            rc = cm_conf_warn(p, "a wildcard address: fedgslbctl and the vantages will use the "
                                 "loopback; give the address they reach it at");
            cm_conf_path_pop(p, old);
        }
    }
    return rc;
}

/*
 * health.publish_to, when not given: every name server and proxy of the
 * deployment; none in the distributed mode (the vantages write to etcd and
 * the consumers refuse pushes).
 */
static int publish_default(struct cm_conf_parse *p, struct cm_conf *conf)
{
    struct cm_conf_health *h = &conf->health;
    const struct cm_conf_deployment *d = &conf->deployment;
    size_t n = d->name_server_count + d->proxy_count;

    if (!h->present || h->publish_to_count > 0 || n == 0 || conf->etcd.present)
        return CM_OK;
    h->publish_to = calloc(n, sizeof(*h->publish_to));
    if (h->publish_to == NULL)
        return cm_conf_oom(p);
    for (size_t i = 0; i < n; i++) {
        bool ns = i < d->name_server_count;
        const struct cm_conf_instance *in =
            ns ? &d->name_servers[i] : &d->proxies[i - d->name_server_count];
        bool tls = ns ? conf->dnsd.control.tls.enabled : conf->proxy.control.tls.enabled;
        char url[CM_URL_STRLEN];

        cm_addr_url((const struct sockaddr *)&in->control.ss, tls, url, sizeof(url));
        h->publish_to[i] = strdup(url);
        if (h->publish_to[i] == NULL)
            return cm_conf_oom(p);
        h->publish_to_count = i + 1;
    }
    return CM_OK;
}

int cm_conf_deployment_post(struct cm_conf_parse *p, struct cm_conf *conf)
{
    int rc = networks_check(p, conf);

    if (rc == CM_OK && conf->deployment.present) {
        size_t old = cm_conf_path_push(p, "deployment");

        rc = addresses_check(p, conf);
        if (rc == CM_OK)
            rc = proxies_check(p, conf);
        cm_conf_path_pop(p, old);
    }
    if (rc == CM_OK && conf->deployment.present)
        rc = state_files_check(p, conf);
    if (rc == CM_OK && conf->deployment.present)
        rc = wildcard_warnings(p, conf);
    if (rc == CM_OK)
        rc = publish_default(p, conf);
    return rc;
}

/* ---- one instance ---- */

static int copy_str(struct cm_conf_parse *p, char **dst, const char *src)
{
    char *c;

    if (src == NULL)
        return CM_OK;
    c = strdup(src);
    if (c == NULL)
        return cm_conf_oom(p);
    free(*dst);
    *dst = c;
    return CM_OK;
}

/* The control API of the instance, where its section's settings apply. */
static int control_take(struct cm_conf_parse *p, struct cm_conf_control *c,
                        const struct cm_conf_instance *in, const char *key)
{
    char addr[CM_ADDR_STRLEN];

    c->enabled = true;
    c->listen = in->control;
    if (c->token != NULL || c->vantage_token_count > 0 ||
        cm_addr_is_loopback((const struct sockaddr *)&c->listen.ss))
        return CM_OK;
    cm_addr_format((const struct sockaddr *)&c->listen.ss, addr, sizeof(addr));
    return cm_conf_fail_at(p, key,
                           "%s is not a loopback address and %s.control sets no token: set "
                           "token_file there, or listen on 127.0.0.1",
                           addr, kind_sections[p->kind]);
}

static int take_name_server(struct cm_conf_parse *p, struct cm_conf *conf,
                            const struct cm_conf_instance *in)
{
    struct cm_conf_dnsd *d = &conf->dnsd;

    if (in->listen_count > 0) {
        struct cm_addr *l = calloc(in->listen_count, sizeof(*l));

        if (l == NULL)
            return cm_conf_oom(p);
        memcpy(l, in->listen, in->listen_count * sizeof(*l));
        free(d->listen);
        d->listen = l;
        d->listen_count = in->listen_count;
    }
    d->region = in->region;
    return copy_str(p, &d->state_file, in->state_file);
}

static int take_vantage(struct cm_conf_parse *p, struct cm_conf *conf,
                        const struct cm_conf_instance *in)
{
    struct cm_conf_health *h = &conf->health;
    int rc;

    h->vantage = in->region;
    rc = copy_str(p, &h->probe_source, in->probe_source);
    return rc == CM_OK ? copy_str(p, &h->state_file, in->state_file) : rc;
}

static int take_proxy(struct cm_conf_parse *p, struct cm_conf *conf,
                      const struct cm_conf_instance *in)
{
    struct cm_conf_proxy *px = &conf->proxy;

    for (size_t i = 0; i < in->listen_count && i < px->listen_count; i++)
        px->listen[i].address = in->listen[i];
    return copy_str(p, &px->state_file, in->state_file);
}

/* "ns1, ns2" into @buf. */
static void names_text(const struct cm_conf_instance *in, size_t n, char *buf, size_t cap)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i > 0 ? ", " : "", in[i].name);
        len += w > 0 ? (size_t)w : 0;
    }
}

int cm_conf_instance_select(struct cm_conf_parse *p, struct cm_conf *conf)
{
    enum cm_instance_kind kind = (enum cm_instance_kind)p->kind;
    const struct cm_conf_instance *list, *in = NULL;
    char names[CM_CONF_ERR_MAX / 2], key[CM_CONF_PATH_MAX];
    size_t count;
    int rc;

    list = cm_conf_instances(conf, kind, &count);
    names_text(list, count, names, sizeof(names));
    if (count == 0 && p->instance == NULL)
        return CM_OK;
    if (count == 0)
        return cm_conf_fail(p,
                            "--instance %s: the file lists no %s instances "
                            "(deployment.%s); leave --instance and FEDGSLB_INSTANCE unset",
                            p->instance, kind_names[kind], kind_keys[kind]);
    if (p->instance == NULL)
        return cm_conf_fail(p,
                            "deployment.%s lists %s: start with --instance NAME (or "
                            "FEDGSLB_INSTANCE=NAME)",
                            kind_keys[kind], names);
    for (size_t i = 0; i < count && in == NULL; i++)
        in = strcmp(list[i].name, p->instance) == 0 ? &list[i] : NULL;
    if (in == NULL)
        return cm_conf_fail(p, "--instance %s: not in deployment.%s (%s)", p->instance,
                            kind_keys[kind], names);
    conf->instance = strdup(in->name);
    if (conf->instance == NULL)
        return cm_conf_oom(p);
    snprintf(key, sizeof(key), "deployment.%s.%s.control", kind_keys[kind], in->name);
    switch (kind) {
    case CM_INSTANCE_NAME_SERVER:
        rc = take_name_server(p, conf, in);
        return rc == CM_OK ? control_take(p, &conf->dnsd.control, in, key) : rc;
    case CM_INSTANCE_VANTAGE:
        rc = take_vantage(p, conf, in);
        return rc == CM_OK ? control_take(p, &conf->health.control, in, key) : rc;
    case CM_INSTANCE_PROXY:
        rc = take_proxy(p, conf, in);
        return rc == CM_OK ? control_take(p, &conf->proxy.control, in, key) : rc;
    }
    return CM_OK;
}
