/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf_schema.c -- the configuration schema as data (one table per JSON
 * object of DESIGN.md "Configuration") and the callbacks for what a table
 * cannot say: cross references, CIDRs, status ranges, the all_down policy,
 * the static latency matrix and reading control tokens.
 *
 * Callbacks only store owned copies; whatever they allocate outside the
 * tables' items is freed by the owning schema's release callback.
 */
#include "common/cm_conf_schema.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_secret.h"
#include "common/cm_str.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A control token file larger than this is refused. */
#define LATENCY_MAX_MS 100000

/* Enum fields are written through int *. */
_Static_assert(sizeof(enum cm_lb_mode) == sizeof(int), "enum cm_lb_mode is int-sized");
_Static_assert(sizeof(enum cm_check_type) == sizeof(int), "enum cm_check_type is int-sized");

/* ---- names and keys -------------------------------------------------------- */

int cm_conf_key_label(struct cm_conf_parse *p, void *base, void *field)
{
    const char *s = *(char **)field;
    char q[CM_CONF_QUOTE_MAX];

    (void)base;
    if (cm_str_is_dns_label(s, strlen(s)))
        return CM_OK;
    return cm_conf_fail(p, "not a DNS label %s (lowercase letters, digits and hyphens, at most 63)",
                        cm_conf_quote(s, q, sizeof(q)));
}

/* "ns/name": both DNS labels; fills the service's ns and name. */
static int key_service(struct cm_conf_parse *p, void *base, void *field)
{
    struct cm_conf_service *svc = base;
    const char *key = *(char **)field;
    const char *slash = strchr(key, '/');
    char q[CM_CONF_QUOTE_MAX];

    if (slash == NULL || !cm_str_is_dns_label(key, (size_t)(slash - key)) ||
        !cm_str_is_dns_label(slash + 1, strlen(slash + 1)))
        return cm_conf_fail(p, "not a service key %s (\"namespace/name\", both DNS labels)",
                            cm_conf_quote(key, q, sizeof(q)));
    svc->ns = strndup(key, (size_t)(slash - key));
    svc->name = strdup(slash + 1);
    if (svc->ns == NULL || svc->name == NULL)
        return cm_conf_oom(p);
    return CM_OK;
}

static void service_release(void *base)
{
    struct cm_conf_service *svc = base;

    free(svc->ns);
    free(svc->name);
    svc->ns = NULL;
    svc->name = NULL;
}

static int starts_with_slash(struct cm_conf_parse *p, void *base, void *field)
{
    (void)base;
    if ((*(char **)field)[0] != '/')
        return cm_conf_fail(p, "must start with \"/\"");
    return CM_OK;
}

static int http_url(struct cm_conf_parse *p, void *base, void *field)
{
    const char *s = *(char **)field, *rest = NULL;
    char q[CM_CONF_QUOTE_MAX];

    (void)base;
    if ((cm_str_skip_prefix(s, "http://", &rest) || cm_str_skip_prefix(s, "https://", &rest)) &&
        rest[0] != '\0' && rest[0] != '/')
        return CM_OK;
    return cm_conf_fail(p, "not an http(s) URL %s", cm_conf_quote(s, q, sizeof(q)));
}

int cm_conf_ip_literal(struct cm_conf_parse *p, void *base, void *field)
{
    const char *s = *(char **)field;
    char q[CM_CONF_QUOTE_MAX];
    struct cm_addr a;

    (void)base;
    if (cm_ip_parse(s, &a) == CM_OK)
        return CM_OK;
    return cm_conf_fail(p, "not an IPv4 or IPv6 address %s", cm_conf_quote(s, q, sizeof(q)));
}

/* ---- regions and members --------------------------------------------------- */

static int region_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_region *r = base;
    char q[CM_CONF_QUOTE_MAX], key[32];

    for (size_t i = 1; i < r->zone_count; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(r->zones[i], r->zones[j]) != 0)
                continue;
            snprintf(key, sizeof(key), "zones[%zu]", i);
            return cm_conf_fail_at(p, key, "duplicate zone %s",
                                   cm_conf_quote(r->zones[i], q, sizeof(q)));
        }
    }
    return CM_OK;
}

/* regions.*.location: [latitude, longitude] in degrees. */
static int region_location(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf_region *r = base;
    json_t *a, *b;
    double lat, lon;

    (void)field;
    r->has_location = false;
    if (v == NULL)
        return CM_OK;
    a = json_array_get(v, 0);
    b = json_array_get(v, 1);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(a) || !json_is_number(b))
        return cm_conf_fail(p, "must be [latitude, longitude] in degrees, e.g. [35.68, 139.69]");
    lat = json_number_value(a);
    lon = json_number_value(b);
    if (!(lat >= -90.0 && lat <= 90.0))
        return cm_conf_fail(p, "latitude %g is outside [-90, 90]", lat);
    if (!(lon >= -180.0 && lon <= 180.0))
        return cm_conf_fail(p, "longitude %g is outside [-180, 180]", lon);
    r->lat = lat;
    r->lon = lon;
    r->has_location = true;
    return CM_OK;
}

int cm_conf_member_zone(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf_member *m = base;
    const struct cm_conf_region *r = &p->conf->regions[m->region];
    char q[CM_CONF_QUOTE_MAX];

    (void)field;
    m->zone = -1;
    if (v == NULL)
        return CM_OK;
    if (!json_is_string(v))
        return cm_conf_fail(p, "must be a string");
    for (size_t i = 0; i < r->zone_count; i++) {
        if (strcmp(r->zones[i], json_string_value(v)) == 0) {
            m->zone = (int)i;
            return CM_OK;
        }
    }
    return cm_conf_fail(p, "zone %s is not a zone of region \"%s\"",
                        cm_conf_quote(json_string_value(v), q, sizeof(q)), r->name);
}

static int lb_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_member *m = base;

    /* The path already ends in ".lb": this schema fills the member itself. */
    if (m->lb_mode == CM_LB_PROXY && m->lb_address == NULL)
        return cm_conf_fail_at(p, "address", "required when mode is \"proxy\"");
    if (m->lb_mode != CM_LB_PROXY && m->lb_address != NULL)
        return cm_conf_fail_at(p, "address", "only allowed when mode is \"proxy\"");
    return CM_OK;
}

/* ---- services ---------------------------------------------------------------- */

static bool parse_status_text(const char *s, uint64_t *lo, uint64_t *hi)
{
    const char *dash = strchr(s, '-');

    if (dash == NULL) {
        if (!cm_parse_u64(s, 999, lo))
            return false;
        *hi = *lo;
        return true;
    }
    return cm_parse_u64_n(s, (size_t)(dash - s), 999, lo) && cm_parse_u64(dash + 1, 999, hi);
}

/* "200-399", "204" or [200, 399]. */
static int check_status(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf_check *c = base;
    uint64_t lo = 200, hi = 399;
    bool ok = true;

    (void)field;
    if (v != NULL && json_is_string(v)) {
        ok = parse_status_text(json_string_value(v), &lo, &hi);
    } else if (v != NULL) {
        json_t *a = json_array_get(v, 0), *b = json_array_get(v, 1);
        ok = json_is_array(v) && json_array_size(v) == 2 && json_is_integer(a) &&
             json_is_integer(b) && json_integer_value(a) >= 0 && json_integer_value(b) >= 0;
        if (ok) {
            lo = (uint64_t)json_integer_value(a);
            hi = (uint64_t)json_integer_value(b);
        }
    }
    if (!ok)
        return cm_conf_fail(p,
                            "must be a status range \"min-max\" or [min, max], e.g. \"200-399\"");
    if (lo < 100 || hi > 599 || lo > hi)
        return cm_conf_fail(p, "must be a range of status codes within 100-599, min <= max");
    c->status_min = (uint16_t)lo;
    c->status_max = (uint16_t)hi;
    return CM_OK;
}

static int check_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_check *c = base;

    if (c->timeout_ms >= c->interval_ms)
        return cm_conf_fail_at(p, "timeout_ms", "must be less than interval_ms (%" PRIu32 ")",
                               c->interval_ms);
    return CM_OK;
}

static int policy_all_down(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf_policy *pol = base;
    char q[CM_CONF_QUOTE_MAX];
    const char *s, *rest;

    (void)field;
    pol->all_down = CM_ALL_DOWN_FAIL_OPEN;
    if (v == NULL)
        return CM_OK;
    s = json_is_string(v) ? json_string_value(v) : "";
    if (strcmp(s, "fail-open") == 0)
        return CM_OK;
    if (strcmp(s, "fail-closed") == 0) {
        pol->all_down = CM_ALL_DOWN_FAIL_CLOSED;
        return CM_OK;
    }
    if (!cm_str_skip_prefix(s, "sorry:", &rest))
        return cm_conf_fail(p, "must be \"fail-open\", \"fail-closed\" or \"sorry:<domain>\"%s%s",
                            json_is_string(v) ? ", not " : "",
                            json_is_string(v) ? cm_conf_quote(s, q, sizeof(q)) : "");
    pol->sorry_target = strdup(rest);
    if (pol->sorry_target == NULL)
        return cm_conf_oom(p);
    if (!cm_conf_domain_normalize(pol->sorry_target))
        return cm_conf_fail(p, "not a domain name %s after \"sorry:\"",
                            cm_conf_quote(rest, q, sizeof(q)));
    pol->all_down = CM_ALL_DOWN_SORRY;
    return CM_OK;
}

static void policy_release(void *base)
{
    struct cm_conf_policy *pol = base;

    free(pol->sorry_target);
    free(pol->weights);
    free(pol->priority);
    pol->sorry_target = NULL;
    pol->weights = NULL;
    pol->priority = NULL;
}

/* policy.weights, policy.priority: {"member": 0..1000}, by conf member index. */
static int policy_member_values(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    const struct cm_conf *conf = p->conf;
    uint32_t **out = field;
    char q[CM_CONF_QUOTE_MAX];
    const char *name;
    json_t *val;

    (void)base;
    if (v == NULL)
        return CM_OK;
    if (!json_is_object(v))
        return cm_conf_fail(p, "must be an object: member -> 0..%u", CM_POLICY_VALUE_MAX);
    *out = malloc((conf->member_count > 0 ? conf->member_count : 1) * sizeof(**out));
    if (*out == NULL)
        return cm_conf_oom(p);
    for (size_t i = 0; i < conf->member_count; i++)
        (*out)[i] = CM_POLICY_UNSET;
    json_object_foreach(v, name, val)
    {
        int m = cm_conf_member_index(conf, name);
        size_t old = cm_conf_path_push(p, name);
        int rc = m < 0 ? cm_conf_fail(p, "unknown member %s", cm_conf_quote(name, q, sizeof(q)))
                       : cm_conf_get_uint(p, val, 0, CM_POLICY_VALUE_MAX, &(*out)[m]);

        cm_conf_path_pop(p, old);
        if (rc != CM_OK)
            return rc;
    }
    return CM_OK;
}

static int alias_in_zone(struct cm_conf_parse *p, void *base, void *field)
{
    const char *alias = *(char **)field, *zone = p->conf->zone;
    size_t alen = strlen(alias), zlen = strlen(zone);
    char q[CM_CONF_QUOTE_MAX];

    (void)base;
    if (strcmp(alias, zone) == 0 || (alen > zlen + 1 && alias[alen - zlen - 1] == '.' &&
                                     strcmp(alias + alen - zlen, zone) == 0))
        return CM_OK;
    return cm_conf_fail(p, "alias %s is outside zone \"%s\"", cm_conf_quote(alias, q, sizeof(q)),
                        zone);
}

/* ---- client networks ------------------------------------------------------------ */

static int cidr_parse(struct cm_conf_parse *p, void *base, void *field)
{
    struct cm_conf_client_net *cn = base;
    const char *s = *(char **)field;
    char q[CM_CONF_QUOTE_MAX], net[INET6_ADDRSTRLEN];
    struct cm_ip_prefix pfx;
    int rc = cm_ip_prefix_parse(s, &pfx);

    cn->family = pfx.family;
    memcpy(cn->addr, pfx.addr, sizeof(cn->addr));
    cn->prefix_len = pfx.len;
    if (rc == CM_EPARSE)
        return cm_conf_fail(p, "not a CIDR %s", cm_conf_quote(s, q, sizeof(q)));
    if (rc == CM_ERANGE)
        return cm_conf_fail(p, "not a CIDR %s (prefix length 0..%d)",
                            cm_conf_quote(s, q, sizeof(q)), pfx.family == AF_INET ? 32 : 128);
    if (rc == CM_EINVAL) {
        inet_ntop(pfx.family, pfx.addr, net, sizeof(net));
        return cm_conf_fail(p, "host bits set in %s (the network is %s/%u)",
                            cm_conf_quote(s, q, sizeof(q)), net, (unsigned)pfx.len);
    }
    return CM_OK;
}

/* ---- allow_addresses ------------------------------------------------------------ */

/* One entry: a prefix wholly inside a range the allow list may open. */
static int allow_entry(struct cm_conf_parse *p, json_t *v, struct cm_ip_prefix *out)
{
    struct cm_conf_client_net cn;
    char *s;
    enum cm_ip_kind kind;
    int rc;

    if (!json_is_string(v))
        return cm_conf_fail(p, "must be a CIDR string such as \"127.0.0.0/8\"");
    memset(&cn, 0, sizeof(cn));
    s = (char *)(uintptr_t)json_string_value(v);
    rc = cidr_parse(p, &cn, &s);
    if (rc != CM_OK)
        return rc;
    out->family = cn.family;
    memcpy(out->addr, cn.addr, sizeof(out->addr));
    out->len = cn.prefix_len;
    kind = cm_ip_prefix_kind(out);
    if (kind == CM_IP_ORDINARY)
        return cm_conf_fail(p,
                            "%s is not inside a loopback (127.0.0.0/8, ::1/128) or link-local "
                            "(169.254.0.0/16, fe80::/10) range; only those can be allowed",
                            json_string_value(v));
    if (!cm_ip_kind_allowable(kind))
        return cm_conf_fail(p, "%s is %s: such addresses are never allowed", json_string_value(v),
                            cm_ip_kind_name(kind));
    return CM_OK;
}

/* allow_addresses: [CIDR...], the special ranges state documents may carry. */
static int allow_parse(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf *conf = base;
    size_t i, n;
    json_t *e;
    int rc = CM_OK;

    (void)field;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    if (!json_is_array(v))
        return cm_conf_fail(p, "must be an array of CIDR strings");
    n = json_array_size(v);
    if (n > CM_CONF_ALLOW_MAX)
        return cm_conf_fail(p, "too many entries (%zu, max %d)", n, CM_CONF_ALLOW_MAX);
    conf->allow_addresses = calloc(n + 1, sizeof(*conf->allow_addresses));
    if (conf->allow_addresses == NULL)
        return cm_conf_oom(p);
    json_array_foreach(v, i, e)
    {
        size_t old = cm_conf_path_push_index(p, i);

        rc = allow_entry(p, e, &conf->allow_addresses[i]);
        cm_conf_path_pop(p, old);
        if (rc != CM_OK)
            return rc;
        conf->allow_address_count++;
    }
    return CM_OK;
}

/* ---- latency matrix ------------------------------------------------------------- */

/* latency_ms.<a>.<b> = v, mirrored to <b>.<a>. */
static int latency_cell(struct cm_conf_parse *p, size_t a, const char *bname, json_t *v)
{
    struct cm_conf *conf = p->conf;
    size_t n = conf->region_count;
    char q[CM_CONF_QUOTE_MAX];
    int b = cm_conf_region_index(conf, bname);
    uint32_t ms, cur;
    int rc;

    if (b < 0)
        return cm_conf_fail(p, "unknown region %s", cm_conf_quote(bname, q, sizeof(q)));
    rc = cm_conf_get_uint(p, v, 0, LATENCY_MAX_MS, &ms);
    if (rc != CM_OK)
        return rc;
    if ((size_t)b == a)
        return ms == 0 ? CM_OK : cm_conf_fail(p, "must be 0 (a region to itself)");
    cur = conf->latency_ms[a * n + (size_t)b];
    if (cur != CM_LATENCY_UNKNOWN && cur != ms)
        return cm_conf_fail(p, "%" PRIu32 " contradicts latency_ms.%s.%s = %" PRIu32, ms, bname,
                            conf->regions[a].name, cur);
    conf->latency_ms[a * n + (size_t)b] = ms;
    conf->latency_ms[(size_t)b * n + a] = ms;
    return CM_OK;
}

static int latency_row(struct cm_conf_parse *p, const char *aname, json_t *row)
{
    char q[CM_CONF_QUOTE_MAX];
    int a = cm_conf_region_index(p->conf, aname);
    int rc = CM_OK;

    if (a < 0)
        return cm_conf_fail(p, "unknown region %s", cm_conf_quote(aname, q, sizeof(q)));
    if (!json_is_object(row))
        return cm_conf_fail(p, "must be an object");
    for (void *it = json_object_iter(row); it != NULL && rc == CM_OK;
         it = json_object_iter_next(row, it)) {
        size_t old = cm_conf_path_push(p, json_object_iter_key(it));
        rc = latency_cell(p, (size_t)a, json_object_iter_key(it), json_object_iter_value(it));
        cm_conf_path_pop(p, old);
    }
    return rc;
}

static int latency_parse(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf *conf = base;
    size_t n = conf->region_count;
    int rc = CM_OK;

    (void)field;
    conf->latency_ms = malloc(n * n * sizeof(uint32_t) + 1);
    if (conf->latency_ms == NULL)
        return cm_conf_oom(p);
    for (size_t i = 0; i < n * n; i++)
        conf->latency_ms[i] = i / n == i % n ? 0 : CM_LATENCY_UNKNOWN;
    if (v == NULL)
        return CM_OK;
    if (!json_is_object(v))
        return cm_conf_fail(p, "must be an object");
    for (void *it = json_object_iter(v); it != NULL && rc == CM_OK;
         it = json_object_iter_next(v, it)) {
        size_t old = cm_conf_path_push(p, json_object_iter_key(it));
        rc = latency_row(p, json_object_iter_key(it), json_object_iter_value(it));
        cm_conf_path_pop(p, old);
    }
    return rc;
}

/* ---- daemon sections --------------------------------------------------------------- */

/* Reads a secret file into *dst. Messages name the file, never the content. */
static int load_secret(struct cm_conf_parse *p, const char *path, char **dst)
{
    char why[CM_CONF_ERR_MAX];
    int rc = cm_secret_read(path, dst, why, sizeof(why));

    if (rc == CM_ENOMEM)
        return cm_conf_oom(p);
    if (rc != CM_OK)
        return cm_conf_fail(p, "%s", why);
    return CM_OK;
}

static void wipe_secret(char **s)
{
    if (*s != NULL)
        explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

static int read_token(struct cm_conf_parse *p, void *base, void *field)
{
    return load_secret(p, *(char **)field, &((struct cm_conf_control *)base)->token);
}

static int read_vantage_token(struct cm_conf_parse *p, void *base, void *field)
{
    return load_secret(p, *(char **)field, &((struct cm_conf_vantage_token *)base)->token);
}

static int read_publish_token(struct cm_conf_parse *p, void *base, void *field)
{
    return load_secret(p, *(char **)field, &((struct cm_conf_health *)base)->publish_token);
}

static void control_release(void *base)
{
    wipe_secret(&((struct cm_conf_control *)base)->token);
}

static void vantage_token_release(void *base)
{
    wipe_secret(&((struct cm_conf_vantage_token *)base)->token);
}

static void health_release(void *base)
{
    wipe_secret(&((struct cm_conf_health *)base)->publish_token);
}

/* A vantage token is named by the vantage (a region) it belongs to. */
static int key_vantage(struct cm_conf_parse *p, void *base, void *field)
{
    const char *name = *(char **)field;
    char q[CM_CONF_QUOTE_MAX];

    (void)base;
    if (cm_conf_region_index(p->conf, name) >= 0)
        return CM_OK;
    return cm_conf_fail(p, "unknown vantage %s: vantages are named by their region",
                        cm_conf_quote(name, q, sizeof(q)));
}

/*
 * Off loopback a control API must authenticate: a listener reachable from
 * other hosts with no token would let anyone drain members or push state.
 */
static int control_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_control *c = base;
    char addr[CM_ADDR_STRLEN];

    /* No listen: the deployment's instances supply it (checked when one is selected). */
    if (c->token != NULL || c->vantage_token_count > 0 || c->listen.ss.ss_family == 0 ||
        cm_addr_is_loopback((const struct sockaddr *)&c->listen.ss))
        return CM_OK;
    cm_addr_format((const struct sockaddr *)&c->listen.ss, addr, sizeof(addr));
    return cm_conf_fail_at(p, "listen",
                           "%s is not a loopback address and no token is set: set token_file "
                           "(and vantage_tokens), or listen on 127.0.0.1",
                           addr);
}

static int publish_tls_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_publish_tls *t = base;

    if ((t->certificate == NULL) != (t->key == NULL))
        return cm_conf_fail(p, "certificate and key go together");
    return CM_OK;
}

/* Decodes @len hex digits of @s into @out (@len / 2 bytes); false if not hex. */
static bool hex_decode(const char *s, size_t len, uint8_t *out)
{
    if (len % 2 != 0)
        return false;
    for (size_t i = 0; i < len; i += 2) {
        int hi = cm_hex_digit((unsigned char)s[i]), lo = cm_hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* A cookie secret file: 16 bytes as 32 hex digits, a file only its owner may
 * read (cm_secret_read). The message names the file, never the content. */
static int read_cookie_secret(struct cm_conf_parse *p, const char *path, uint8_t *out)
{
    char *text = NULL;
    int rc = load_secret(p, path, &text);

    if (rc != CM_OK)
        return rc;
    size_t len = strlen(text);
    bool ok = len == 2 * CM_COOKIE_SECRET_LEN && hex_decode(text, len, out);
    wipe_secret(&text);
    if (!ok)
        return cm_conf_fail(p,
                            "%s: not a cookie secret (32 hex digits: 16 bytes, e.g. from "
                            "\"openssl rand -hex 16\")",
                            path);
    return CM_OK;
}

static int cookie_secret(struct cm_conf_parse *p, void *base, void *field)
{
    return read_cookie_secret(p, *(char **)field, ((struct cm_conf_cookies *)base)->secret);
}

static int cookie_previous(struct cm_conf_parse *p, void *base, void *field)
{
    struct cm_conf_cookies *c = base;
    int rc = read_cookie_secret(p, *(char **)field, c->previous);

    c->has_previous = rc == CM_OK;
    return rc;
}

static void cookies_release(void *base)
{
    struct cm_conf_cookies *c = base;

    explicit_bzero(c->secret, sizeof(c->secret));
    explicit_bzero(c->previous, sizeof(c->previous));
}

/* dnsd.nsid: text as is, or "hex:" and an even number of hex digits. */
static int nsid_parse(struct cm_conf_parse *p, void *base, void *field)
{
    struct cm_conf_dnsd *d = base;
    const char *s = *(char **)field;
    size_t len = strlen(s);
    char q[CM_CONF_QUOTE_MAX];

    if (strncmp(s, "hex:", 4) == 0) {
        if (len - 4 == 0 || len - 4 > 2 * CM_NSID_MAX || !hex_decode(s + 4, len - 4, d->nsid_data))
            return cm_conf_fail(p,
                                "%s: \"hex:\" must be followed by 2 to %d hex digits, an even "
                                "number",
                                cm_conf_quote(s, q, sizeof(q)), 2 * CM_NSID_MAX);
        d->nsid_len = (len - 4) / 2;
        return CM_OK;
    }
    if (len > CM_NSID_MAX)
        return cm_conf_fail(p, "longer than %d bytes", CM_NSID_MAX);
    memcpy(d->nsid_data, s, len);
    d->nsid_len = len;
    return CM_OK;
}

static int dnsd_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_dnsd *d = base;

    if (d->min_ttl_s > d->ttl_s)
        return cm_conf_fail_at(p, "min_ttl_s", "must not exceed ttl_s (%" PRIu32 ")", d->ttl_s);
    return CM_OK;
}

static int proxy_member(struct cm_conf_parse *p, void *base, void *field)
{
    const struct cm_conf_member *m = &p->conf->members[*(size_t *)field];

    (void)base;
    if (m->lb_mode != CM_LB_PROXY)
        return cm_conf_fail(p, "member \"%s\" does not have lb.mode \"proxy\"", m->name);
    return CM_OK;
}

/* proxy.listen[].backends[]: a numeric "ip:port" with a port. */
static int proxy_backend(struct cm_conf_parse *p, void *base, void *field)
{
    const char *s = *(char **)field;
    char q[CM_CONF_QUOTE_MAX];
    struct cm_addr a;

    (void)base;
    if (cm_addr_parse(s, 0, &a) != CM_OK || cm_addr_port((const struct sockaddr *)&a.ss) == 0)
        return cm_conf_fail(p, "not a numeric \"ip:port\" backend address: %s",
                            cm_conf_quote(s, q, sizeof(q)));
    return CM_OK;
}

/* proxy.trusted_proxies[]: a CIDR with no host bits set. */
static int proxy_cidr(struct cm_conf_parse *p, void *base, void *field)
{
    struct cm_conf_client_net tmp;

    (void)base;
    memset(&tmp, 0, sizeof(tmp));
    return cidr_parse(p, &tmp, field);
}

/* Two listeners cannot share an address. */
static int proxy_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_proxy *px = base;
    char key[64], a[CM_ADDR_STRLEN];

    for (size_t i = 1; i < px->listen_count; i++) {
        for (size_t j = 0; j < i; j++) {
            const struct cm_addr *x = &px->listen[i].address, *y = &px->listen[j].address;

            if (x->len != y->len || memcmp(&x->ss, &y->ss, x->len) != 0)
                continue;
            cm_addr_format((const struct sockaddr *)&x->ss, a, sizeof(a));
            snprintf(key, sizeof(key), "listen[%zu].address", i);
            return cm_conf_fail_at(p, key, "%s is already used by listen[%zu]", a, j);
        }
    }
    return CM_OK;
}

/* ---- whole-file checks ------------------------------------------------------------- */

struct alias_ref {
    const char *name;
    size_t service;
    size_t index;
};

static int alias_cmp(const void *a, const void *b)
{
    const struct alias_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0)
        return c;
    if (x->service != y->service)
        return x->service < y->service ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* An alias names one service only. Sorted, so large files stay fast. */
static int aliases_unique(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    struct alias_ref *refs;
    size_t n = 0, k = 0;
    char key[CM_CONF_PATH_MAX], q[CM_CONF_QUOTE_MAX];
    int rc = CM_OK;

    for (size_t i = 0; i < conf->service_count; i++)
        n += conf->services[i].alias_count;
    refs = calloc(n + 1, sizeof(*refs));
    if (refs == NULL)
        return cm_conf_oom(p);
    for (size_t i = 0; i < conf->service_count; i++) {
        for (size_t j = 0; j < conf->services[i].alias_count; j++)
            refs[k++] = (struct alias_ref){conf->services[i].aliases[j], i, j};
    }
    qsort(refs, n, sizeof(*refs), alias_cmp);
    for (size_t i = 1; i < n && rc == CM_OK; i++) {
        if (strcmp(refs[i].name, refs[i - 1].name) != 0)
            continue;
        snprintf(key, sizeof(key), "services.%s.aliases[%zu]", conf->services[refs[i].service].key,
                 refs[i].index);
        rc = cm_conf_fail_at(p, key, "alias %s is already used by service \"%s\"",
                             cm_conf_quote(refs[i].name, q, sizeof(q)),
                             conf->services[refs[i - 1].service].key);
    }
    free(refs);
    return rc;
}

/* members.*.lb.address is answered to clients: the address rule of state
 * documents (cm_ip_refused under allow_addresses) applies to it too. */
static int lb_addresses_allowed(struct cm_conf_parse *p, const struct cm_conf *conf)
{
    char key[CM_CONF_PATH_MAX], msg[CM_CONF_QUOTE_MAX + 96];

    for (size_t i = 0; i < conf->member_count; i++) {
        const char *ip = conf->members[i].lb_address;
        enum cm_ip_kind kind;
        struct cm_addr a;

        if (ip == NULL || cm_ip_parse(ip, &a) != CM_OK)
            continue;
        kind = cm_ip_refused((const struct sockaddr *)&a.ss, conf->allow_addresses,
                             conf->allow_address_count);
        if (kind == CM_IP_ORDINARY)
            continue;
        snprintf(key, sizeof(key), "members.%s.lb.address", conf->members[i].name);
        cm_ip_refusal_format(ip, kind, msg, sizeof(msg));
        return cm_conf_fail_at(p, key, "%s", msg);
    }
    return CM_OK;
}

static int root_post(struct cm_conf_parse *p, void *base)
{
    struct cm_conf *conf = base;
    int rc = aliases_unique(p, conf);

    if (rc == CM_OK)
        rc = lb_addresses_allowed(p, conf);
    return rc == CM_OK ? cm_conf_deployment_post(p, conf) : rc;
}

static void root_release(void *base)
{
    struct cm_conf *conf = base;

    for (size_t i = 0; i < conf->warning_count; i++)
        free(conf->warnings[i]);
    free(conf->warnings);
    free(conf->instance);
    conf->warnings = NULL;
    conf->warning_count = 0;
    conf->instance = NULL;
    free(conf->path);
    free(conf->latency_ms);
    free(conf->allow_addresses);
    conf->path = NULL;
    conf->latency_ms = NULL;
    conf->allow_addresses = NULL;
}

/* ---- the tables ------------------------------------------------------------------- */

static const char *const lb_modes[] = {"native", "proxy", NULL};
static const char *const check_types[] = {"http", "https", "tcp", "none", NULL};

static const struct cm_conf_item vantage_token_items[] = {
    {.key = "token_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_vantage_token, token_file),
     .required = true,
     .validate = read_vantage_token},
};
static const struct cm_conf_schema vantage_token_schema = {
    .items = vantage_token_items,
    .count = COUNT(vantage_token_items),
    .size = sizeof(struct cm_conf_vantage_token),
    .name_offset = offsetof(struct cm_conf_vantage_token, vantage),
    .key_check = key_vantage,
    .release = vantage_token_release,
};

static const struct cm_conf_item control_tls_items[] = {
    {.key = "certificate",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_control_tls, certificate),
     .required = true},
    {.key = "key",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_control_tls, key),
     .required = true},
    {.key = "client_ca",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_control_tls, client_ca)},
    {.key = "ca_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_control_tls, ca_file)},
};
static const struct cm_conf_schema control_tls_schema = {
    .items = control_tls_items,
    .count = COUNT(control_tls_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_control_tls, enabled),
};

static const struct cm_conf_item control_items[] = {
    {.key = "listen",
     .type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_control, listen),
     .required = true,
     .by_instance = true},
    {.key = "token_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_control, token_file),
     .validate = read_token},
    {.key = "vantage_tokens",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf_control, vantage_tokens),
     .count_offset = offsetof(struct cm_conf_control, vantage_token_count),
     .max = 256,
     .sub = &vantage_token_schema},
    {.key = "public_read",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_control, public_read),
     .def_bool = false},
    {.key = "max_connections",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_control, max_connections),
     .min = 1,
     .max = 4096,
     .def_uint = 64},
    {.key = "request_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_control, request_timeout_ms),
     .min = 100,
     .max = 600000,
     .def_uint = 10000},
    {.key = "tls",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_control, tls),
     .sub = &control_tls_schema},
};
static const struct cm_conf_schema control_schema = {
    .items = control_items,
    .count = COUNT(control_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_control, enabled),
    .post = control_post,
    .release = control_release,
};

static const struct cm_conf_item publish_tls_items[] = {
    {.key = "ca_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_publish_tls, ca_file)},
    {.key = "certificate",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_publish_tls, certificate)},
    {.key = "key", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_publish_tls, key)},
};
static const struct cm_conf_schema publish_tls_schema = {
    .items = publish_tls_items,
    .count = COUNT(publish_tls_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_publish_tls, enabled),
    .post = publish_tls_post,
    .doc_name = "client_tls", /* health.publish_tls, etcd.tls */
};

static const struct cm_conf_item cookies_items[] = {
    {.key = "secret_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_cookies, secret_file),
     .required = true,
     .validate = cookie_secret},
    {.key = "previous_secret_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_cookies, previous_secret_file),
     .validate = cookie_previous},
    {.key = "require",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_cookies, require),
     .def_bool = false},
};
static const struct cm_conf_schema cookies_schema = {
    .items = cookies_items,
    .count = COUNT(cookies_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_cookies, enabled),
    .release = cookies_release,
};

/* dnsd.rrl.exempt[]: parse each CIDR once more into exempt_nets (already validated). */
static int rrl_post(struct cm_conf_parse *p, void *base)
{
    struct cm_conf_dnsd_rrl *r = base;

    if (r->exempt_count == 0)
        return CM_OK;
    r->exempt_nets = calloc(r->exempt_count, sizeof(*r->exempt_nets));
    if (r->exempt_nets == NULL)
        return cm_conf_oom(p);
    for (size_t i = 0; i < r->exempt_count; i++) {
        int rc = cidr_parse(p, &r->exempt_nets[i], &r->exempt[i]);

        if (rc != CM_OK)
            return rc;
    }
    return CM_OK;
}

static void rrl_release(void *base)
{
    struct cm_conf_dnsd_rrl *r = base;

    free(r->exempt_nets);
    r->exempt_nets = NULL;
}

static const struct cm_conf_item rrl_items[] = {
    {.key = "enabled",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_dnsd_rrl, enabled),
     .def_bool = false},
    {.key = "responses_per_second",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_rrl, responses_per_second),
     .min = 1,
     .max = 1000000,
     .def_uint = 20},
    {.key = "slip",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_rrl, slip),
     .min = 0,
     .max = 100,
     .def_uint = 2},
    {.key = "window_s",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_rrl, window_s),
     .min = 1,
     .max = 3600,
     .def_uint = 15},
    {.key = "ipv4_prefix",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_rrl, ipv4_prefix),
     .min = 8,
     .max = 32,
     .def_uint = 24},
    {.key = "ipv6_prefix",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_rrl, ipv6_prefix),
     .min = 16,
     .max = 128,
     .def_uint = 56},
    {.key = "table_size",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_rrl, table_size),
     .min = 1024,
     .max = 16777216,
     .def_uint = 65536},
    {.key = "exempt",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_dnsd_rrl, exempt),
     .count_offset = offsetof(struct cm_conf_dnsd_rrl, exempt_count),
     .max = 1024,
     .validate = proxy_cidr},
};
static const struct cm_conf_schema rrl_schema = {
    .items = rrl_items,
    .count = COUNT(rrl_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_dnsd_rrl, present),
    .post = rrl_post,
    .release = rrl_release,
};

static const struct cm_conf_item query_log_items[] = {
    {.key = "sample",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_query_log, sample),
     .min = 0,
     .max = 1000000000,
     .def_uint = 0},
    {.key = "ring_size",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_query_log, ring_size),
     .min = 1,
     .max = 1048576,
     .def_uint = 1024},
};
static const struct cm_conf_schema query_log_schema = {
    .items = query_log_items,
    .count = COUNT(query_log_items),
};

static const struct cm_conf_item packet_cache_items[] = {
    {.key = "entries",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd_packet_cache, entries),
     .min = 0,
     .max = 262144,
     .def_uint = 0},
};
static const struct cm_conf_schema packet_cache_schema = {
    .items = packet_cache_items,
    .count = COUNT(packet_cache_items),
};

/* ---- dnsd.geo_map ---------------------------------------------------------- */

static bool all_upper_alnum(const char *s, size_t len, bool digits)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (digits && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

/* Continent codes as MaxMind writes them (continent.code). */
static bool is_continent(const char *s)
{
    static const char *const codes[] = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};

    for (size_t i = 0; i < COUNT(codes); i++)
        if (strcmp(s, codes[i]) == 0)
            return true;
    return false;
}

/* Bare two-letter codes that are a continent and a country at once:
 * Africa/Afghanistan, Asia/American Samoa, North America/Namibia,
 * South America/Saudi Arabia. They need a "country:" or "continent:" prefix. */
static bool is_ambiguous(const char *s)
{
    return strcmp(s, "AF") == 0 || strcmp(s, "AS") == 0 || strcmp(s, "NA") == 0 ||
           strcmp(s, "SA") == 0;
}

/* "JP", "JP-13", "EU", "country:NA", "continent:NA" -> code and kind. */
static int geo_code_parse(struct cm_conf_parse *p, const char *key, struct cm_conf_geo_map *g)
{
    const char *s = key;
    char q[CM_CONF_QUOTE_MAX];
    size_t len;
    int forced = -1;

    if (strncmp(s, "country:", 8) == 0) {
        forced = CM_GEO_COUNTRY;
        s += 8;
    } else if (strncmp(s, "continent:", 10) == 0) {
        forced = CM_GEO_CONTINENT;
        s += 10;
    }
    len = strlen(s);
    if (len == 2 && all_upper_alnum(s, 2, false)) {
        if (forced == CM_GEO_CONTINENT && !is_continent(s))
            return cm_conf_fail_at(p, key, "not a continent code (AF AN AS EU NA OC SA)");
        if (forced < 0 && is_ambiguous(s))
            return cm_conf_fail_at(p, key, "ambiguous: write \"country:%s\" or \"continent:%s\"", s,
                                   s);
        if (forced >= 0)
            g->kind = (enum cm_geo_kind)forced;
        else
            g->kind = strcmp(s, "EU") == 0 || strcmp(s, "OC") == 0 || strcmp(s, "AN") == 0
                          ? CM_GEO_CONTINENT
                          : CM_GEO_COUNTRY;
    } else if (forced < 0 && len >= 4 && len <= 6 && s[2] == '-' && all_upper_alnum(s, 2, false) &&
               all_upper_alnum(s + 3, len - 3, true)) {
        g->kind = CM_GEO_SUBDIVISION;
    } else {
        return cm_conf_fail_at(p, key,
                               "not a GeoIP code %s (country \"JP\", subdivision \"JP-13\", "
                               "continent \"EU\", or \"country:XX\" / \"continent:XX\")",
                               cm_conf_quote(key, q, sizeof(q)));
    }
    memcpy(g->code, s, len + 1);
    return CM_OK;
}

/* dnsd.geo_map: {"JP": "ap-northeast-1", "EU": "eu-west-1", "US-CA": "us-west-1"}. */
static int geo_map_parse(struct cm_conf_parse *p, json_t *v, void *base, void *field)
{
    struct cm_conf_dnsd *d = base;
    const char *key;
    json_t *val;
    char q[CM_CONF_QUOTE_MAX];
    size_t n = 0;

    (void)field;
    if (v == NULL)
        return CM_OK;
    if (!json_is_object(v))
        return cm_conf_fail(p, "must be an object: GeoIP code -> region");
    if (json_object_size(v) > 10000)
        return cm_conf_fail(p, "more than 10000 entries");
    d->geo_map = calloc(json_object_size(v) + 1, sizeof(*d->geo_map));
    if (d->geo_map == NULL)
        return cm_conf_oom(p);
    json_object_foreach(v, key, val)
    {
        struct cm_conf_geo_map *g = &d->geo_map[n];
        int r, rc = geo_code_parse(p, key, g);

        if (rc != CM_OK)
            return rc;
        if (!json_is_string(val))
            return cm_conf_fail_at(p, key, "must be a region name");
        r = cm_conf_region_index(p->conf, json_string_value(val));
        if (r < 0)
            return cm_conf_fail_at(p, key, "unknown region %s",
                                   cm_conf_quote(json_string_value(val), q, sizeof(q)));
        g->region = (size_t)r;
        for (size_t i = 0; i < n; i++)
            if (d->geo_map[i].kind == g->kind && strcmp(d->geo_map[i].code, g->code) == 0)
                return cm_conf_fail_at(p, key, "duplicate code %s", g->code);
        n++;
        d->geo_map_count = n;
    }
    return CM_OK;
}

static void dnsd_release(void *base)
{
    struct cm_conf_dnsd *d = base;

    free(d->geo_map);
    d->geo_map = NULL;
    d->geo_map_count = 0;
}

static const struct cm_conf_item geoip_items[] = {
    {.key = "path",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_geoip, path),
     .required = true},
    {.key = "required",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_geoip, required),
     .def_bool = true},
};
static const struct cm_conf_schema geoip_schema = {
    .items = geoip_items,
    .count = COUNT(geoip_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_geoip, present),
};

static const struct cm_conf_item dnsd_items[] = {
    {.key = "listen",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_dnsd, listen),
     .count_offset = offsetof(struct cm_conf_dnsd, listen_count),
     .min = 1,
     .max = 64,
     .def_str = "127.0.0.1:5300"},
    {.key = "region",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_REGION,
     .offset = offsetof(struct cm_conf_dnsd, region),
     .required = true,
     .by_instance = true},
    {.key = "zone_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_dnsd, zone_file),
     .required = true},
    {.key = "ttl_s",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, ttl_s),
     .min = 1,
     .max = 86400,
     .def_uint = 30},
    {.key = "min_ttl_s",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, min_ttl_s),
     .min = 0,
     .max = 86400,
     .def_uint = 5},
    {.key = "workers",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, workers),
     .min = 1,
     .max = 64,
     .def_uint = 2},
    {.key = "ecs",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_dnsd, ecs),
     .def_bool = true},
    {.key = "state_file", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_dnsd, state_file)},
    {.key = "tcp_idle_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, tcp_idle_timeout_ms),
     .min = 100,
     .max = 3600000,
     .def_uint = 10000},
    {.key = "tcp_max_conns",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, tcp_max_conns),
     .min = 1,
     .max = 65536,
     .def_uint = 1024},
    {.key = "tcp_max_conns_per_source",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, tcp_max_conns_per_source),
     .min = 0,
     .max = 65536,
     .def_uint = 16},
    {.key = "max_udp_size",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_dnsd, max_udp_size),
     .min = 512,
     .max = 4096,
     .def_uint = 1232},
    {.key = "nsid",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_dnsd, nsid),
     .validate = nsid_parse},
    {.key = "cookies",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_dnsd, cookies),
     .sub = &cookies_schema},
    {.key = "user", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_dnsd, user)},
    {.key = "group", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_dnsd, group)},
    {.key = "rrl",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_dnsd, rrl),
     .sub = &rrl_schema},
    {.key = "control",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_dnsd, control),
     .sub = &control_schema},
    {.key = "geoip",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_dnsd, geoip),
     .sub = &geoip_schema},
    {.key = "geo_map",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_dnsd, geo_map),
     .parse = geo_map_parse},
    {.key = "query_log",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_dnsd, query_log),
     .sub = &query_log_schema},
    {.key = "packet_cache",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_dnsd, packet_cache),
     .sub = &packet_cache_schema},
};
static const struct cm_conf_schema dnsd_schema = {
    .items = dnsd_items,
    .count = COUNT(dnsd_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_dnsd, present),
    .post = dnsd_post,
    .release = dnsd_release,
};

static const struct cm_conf_schema check_schema; /* defined with the services */

static int health_api_post(struct cm_conf_parse *p, void *base)
{
    const struct cm_conf_health_api *a = base;

    if (a->backoff_max_ms < a->backoff_min_ms)
        return cm_conf_fail_at(p, "backoff_max_ms", "must be >= backoff_min_ms (%" PRIu32 ")",
                               a->backoff_min_ms);
    return CM_OK;
}

static const struct cm_conf_item health_api_items[] = {
    {.key = "readyz_interval_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, readyz_interval_ms),
     .min = 50,
     .max = 3600000,
     .def_uint = 10000},
    {.key = "readyz_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, readyz_timeout_ms),
     .min = 50,
     .max = 600000,
     .def_uint = 3000},
    {.key = "rise",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, rise),
     .min = 1,
     .max = 100,
     .def_uint = 1},
    {.key = "fall",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, fall),
     .min = 1,
     .max = 100,
     .def_uint = 3},
    {.key = "watch_timeout_s",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, watch_timeout_s),
     .min = 1,
     .max = 3600,
     .def_uint = 300},
    {.key = "list_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, list_timeout_ms),
     .min = 100,
     .max = 600000,
     .def_uint = 30000},
    {.key = "list_limit",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, list_limit),
     .min = 1,
     .max = 100000,
     .def_uint = 500},
    {.key = "backoff_min_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, backoff_min_ms),
     .min = 10,
     .max = 600000,
     .def_uint = 500},
    {.key = "backoff_max_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health_api, backoff_max_ms),
     .min = 10,
     .max = 3600000,
     .def_uint = 30000},
};
static const struct cm_conf_schema health_api_schema = {
    .items = health_api_items,
    .count = COUNT(health_api_items),
    .post = health_api_post,
};

static const struct cm_conf_item health_items[] = {
    {.key = "vantage",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_REGION,
     .offset = offsetof(struct cm_conf_health, vantage),
     .required = true,
     .by_instance = true},
    {.key = "publish_to",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_health, publish_to),
     .count_offset = offsetof(struct cm_conf_health, publish_to_count),
     .max = 64,
     .validate = http_url},
    {.key = "probe_source",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_health, probe_source),
     .validate = cm_conf_ip_literal},
    {.key = "default_check",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_health, default_check),
     .sub = &check_schema},
    {.key = "publish_interval_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health, publish_interval_ms),
     .min = 100,
     .max = 3600000,
     .def_uint = 10000},
    {.key = "state_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_health, state_file)},
    {.key = "publish_token_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_health, publish_token_file),
     .validate = read_publish_token},
    {.key = "publish_tls",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_health, publish_tls),
     .sub = &publish_tls_schema},
    {.key = "control",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_health, control),
     .sub = &control_schema},
    {.key = "api",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_health, api),
     .sub = &health_api_schema},
    {.key = "exec_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health, exec_timeout_ms),
     .min = 100,
     .max = 600000,
     .def_uint = 10000},
    {.key = "max_probes",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health, max_probes),
     .min = 1,
     .max = 100000,
     .def_uint = 512},
    {.key = "startup_grace_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health, startup_grace_ms),
     .min = 0,
     .max = 3600000,
     .def_uint = 30000},
    {.key = "publish_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_health, publish_timeout_ms),
     .min = 50,
     .max = 600000,
     .def_uint = 5000},
};
static const struct cm_conf_schema health_schema = {
    .items = health_items,
    .count = COUNT(health_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_health, present),
    .release = health_release,
};

static const char *const access_log_formats[] = {"off", "json", "combined", NULL};

static const struct cm_conf_item proxy_cert_items[] = {
    {.key = "cert",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_proxy_cert, cert),
     .required = true},
    {.key = "key",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_proxy_cert, key),
     .required = true},
};
static const struct cm_conf_schema proxy_cert_schema = {
    .items = proxy_cert_items,
    .count = COUNT(proxy_cert_items),
    .size = sizeof(struct cm_conf_proxy_cert),
};

static const struct cm_conf_item proxy_tls_items[] = {
    {.key = "certificates",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy_tls, certificates),
     .count_offset = offsetof(struct cm_conf_proxy_tls, certificate_count),
     .required = true,
     .min = 1,
     .max = 256,
     .sub = &proxy_cert_schema},
};
static const struct cm_conf_schema proxy_tls_schema = {
    .items = proxy_tls_items,
    .count = COUNT(proxy_tls_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_proxy_tls, enabled),
};

static const struct cm_conf_item proxy_listen_items[] = {
    {.key = "address",
     .type = CM_CONF_ADDR,
     .offset = offsetof(struct cm_conf_proxy_listen, address),
     .required = true},
    {.key = "member",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_MEMBER,
     .offset = offsetof(struct cm_conf_proxy_listen, member),
     .required = true,
     .validate = proxy_member},
    {.key = "service",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_SERVICE,
     .offset = offsetof(struct cm_conf_proxy_listen, service),
     .required = true},
    {.key = "backends",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_proxy_listen, backends),
     .count_offset = offsetof(struct cm_conf_proxy_listen, backend_count),
     .max = 4096,
     .validate = proxy_backend},
    {.key = "tls",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy_listen, tls),
     .sub = &proxy_tls_schema},
};
static const struct cm_conf_schema proxy_listen_schema = {
    .items = proxy_listen_items,
    .count = COUNT(proxy_listen_items),
    .size = sizeof(struct cm_conf_proxy_listen),
};

static const struct cm_conf_item proxy_limits_items[] = {
    {.key = "request_line_bytes",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_limits, request_line_bytes),
     .min = 256,
     .max = 1048576,
     .def_uint = 8192},
    {.key = "header_bytes",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_limits, header_bytes),
     .min = 1024,
     .max = 1048576,
     .def_uint = 32768},
    {.key = "header_count",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_limits, header_count),
     .min = 8,
     .max = 1000,
     .def_uint = 100},
    {.key = "body_bytes",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_limits, body_bytes),
     .min = 0,
     .max = UINT32_MAX,
     .def_uint = 1073741824u},
    {.key = "upstream_idle_connections",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_limits, upstream_idle_connections),
     .min = 0,
     .max = 100000,
     .def_uint = 1024},
};
static const struct cm_conf_schema proxy_limits_schema = {
    .items = proxy_limits_items,
    .count = COUNT(proxy_limits_items),
};

static const struct cm_conf_item proxy_timeouts_items[] = {
    {.key = "header",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_timeouts, header_ms),
     .min = 10,
     .max = 3600000,
     .def_uint = 10000},
    {.key = "idle",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_timeouts, idle_ms),
     .min = 10,
     .max = 3600000,
     .def_uint = 60000},
    {.key = "connect",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_timeouts, connect_ms),
     .min = 10,
     .max = 600000,
     .def_uint = 3000},
    {.key = "response",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_timeouts, response_ms),
     .min = 10,
     .max = 3600000,
     .def_uint = 30000},
    {.key = "drain",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_timeouts, drain_ms),
     .min = 0,
     .max = 3600000,
     .def_uint = 10000},
    {.key = "upstream_idle",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_timeouts, upstream_idle_ms),
     .min = 10,
     .max = 3600000,
     .def_uint = 15000},
};
static const struct cm_conf_schema proxy_timeouts_schema = {
    .items = proxy_timeouts_items,
    .count = COUNT(proxy_timeouts_items),
};

static const struct cm_conf_item proxy_access_log_items[] = {
    {.key = "format",
     .type = CM_CONF_ENUM,
     .offset = offsetof(struct cm_conf_proxy_access_log, format),
     .names = access_log_formats,
     .def_uint = CM_ACCESS_LOG_OFF},
    {.key = "path",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_proxy_access_log, path),
     .def_str = "-"},
};
static const struct cm_conf_schema proxy_access_log_schema = {
    .items = proxy_access_log_items,
    .count = COUNT(proxy_access_log_items),
};

static const struct cm_conf_item proxy_tls_sessions_items[] = {
    {.key = "tickets",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_proxy_tls_sessions, tickets),
     .def_bool = true},
    {.key = "ticket_key_rotation_s",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_tls_sessions, ticket_key_rotation_s),
     .min = 1,
     .max = 302400,
     .def_uint = 3600},
    {.key = "cache_size",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy_tls_sessions, cache_size),
     .min = 0,
     .max = 10000000,
     .def_uint = 20480},
};
static const struct cm_conf_schema proxy_tls_sessions_schema = {
    .items = proxy_tls_sessions_items,
    .count = COUNT(proxy_tls_sessions_items),
};

static const struct cm_conf_item proxy_items[] = {
    {.key = "listen",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy, listen),
     .count_offset = offsetof(struct cm_conf_proxy, listen_count),
     .max = 1024,
     .sub = &proxy_listen_schema},
    {.key = "state_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_proxy, state_file)},
    {.key = "control",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy, control),
     .sub = &control_schema},
    {.key = "max_connections",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_proxy, max_connections),
     .min = 1,
     .max = 1000000,
     .def_uint = 10000},
    {.key = "limits",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy, limits),
     .sub = &proxy_limits_schema},
    {.key = "timeouts_ms",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy, timeouts_ms),
     .sub = &proxy_timeouts_schema},
    {.key = "trusted_proxies",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_proxy, trusted_proxies),
     .count_offset = offsetof(struct cm_conf_proxy, trusted_proxy_count),
     .max = 1024,
     .validate = proxy_cidr},
    {.key = "access_log",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy, access_log),
     .sub = &proxy_access_log_schema},
    {.key = "tls_sessions",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_proxy, tls_sessions),
     .sub = &proxy_tls_sessions_schema},
};
static const struct cm_conf_schema proxy_schema = {
    .items = proxy_items,
    .count = COUNT(proxy_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_proxy, present),
    .post = proxy_post,
};

static int read_etcd_password(struct cm_conf_parse *p, void *base, void *field)
{
    return load_secret(p, *(char **)field, &((struct cm_conf_etcd *)base)->password);
}

static void etcd_release(void *base)
{
    wipe_secret(&((struct cm_conf_etcd *)base)->password);
}

/* The prefix ends with "/", so that "<prefix><federation>/..." reads as a path. */
static int etcd_post(struct cm_conf_parse *p, void *base)
{
    struct cm_conf_etcd *e = base;
    size_t n = strlen(e->prefix);
    char *with;

    if ((e->username == NULL) != (e->password_file == NULL))
        return cm_conf_fail(p, "username and password_file go together");
    if (e->backoff_max_ms < e->backoff_min_ms)
        return cm_conf_fail_at(p, "backoff_max_ms", "less than backoff_min_ms (%u)",
                               e->backoff_min_ms);
    if (n > 256)
        return cm_conf_fail_at(p, "prefix", "longer than 256 bytes");
    if (e->prefix[n - 1] == '/')
        return CM_OK;
    with = cm_str_join(e->prefix, '/', "");
    if (with == NULL)
        return cm_conf_oom(p);
    free(e->prefix);
    e->prefix = with;
    return CM_OK;
}

static const struct cm_conf_item etcd_items[] = {
    {.key = "endpoints",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_etcd, endpoints),
     .count_offset = offsetof(struct cm_conf_etcd, endpoint_count),
     .required = true,
     .min = 1,
     .max = 64,
     .validate = http_url},
    {.key = "prefix",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_etcd, prefix),
     .def_str = "/fedgslb/",
     .validate = starts_with_slash},
    {.key = "tls",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_etcd, tls),
     .sub = &publish_tls_schema},
    {.key = "username", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_etcd, username)},
    {.key = "password_file",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_etcd, password_file),
     .validate = read_etcd_password},
    {.key = "request_timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_etcd, request_timeout_ms),
     .min = 100,
     .max = 600000,
     .def_uint = 5000},
    {.key = "check_interval_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_etcd, check_interval_ms),
     .min = 100,
     .max = 3600000,
     .def_uint = 5000},
    {.key = "backoff_min_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_etcd, backoff_min_ms),
     .min = 10,
     .max = 600000,
     .def_uint = 250},
    {.key = "backoff_max_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_etcd, backoff_max_ms),
     .min = 10,
     .max = 3600000,
     .def_uint = 5000},
};
static const struct cm_conf_schema etcd_schema = {
    .items = etcd_items,
    .count = COUNT(etcd_items),
    .section = true,
    .present_offset = offsetof(struct cm_conf_etcd, present),
    .post = etcd_post,
    .release = etcd_release,
};

static const struct cm_conf_item region_items[] = {
    {.key = "zones",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_LABEL,
     .offset = offsetof(struct cm_conf_region, zones),
     .count_offset = offsetof(struct cm_conf_region, zone_count),
     .max = 64},
    {.key = "location",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_region, lat),
     .parse = region_location},
    {.key = "bias_km",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_region, bias_km),
     .min = 0,
     .max = 20000,
     .def_uint = 0},
};
static const struct cm_conf_schema region_schema = {
    .items = region_items,
    .count = COUNT(region_items),
    .size = sizeof(struct cm_conf_region),
    .name_offset = offsetof(struct cm_conf_region, name),
    .key_check = cm_conf_key_label,
    .post = region_post,
};

/* "lb" fills fields of the member struct itself (offset 0). */
static const struct cm_conf_item lb_items[] = {
    {.key = "mode",
     .type = CM_CONF_ENUM,
     .offset = offsetof(struct cm_conf_member, lb_mode),
     .names = lb_modes,
     .def_uint = CM_LB_NATIVE},
    {.key = "address", .type = CM_CONF_IP, .offset = offsetof(struct cm_conf_member, lb_address)},
};
static const struct cm_conf_schema lb_schema = {
    .items = lb_items,
    .count = COUNT(lb_items),
    .post = lb_post,
};

static const struct cm_conf_item member_items[] = {
    {.key = "region",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_REGION,
     .offset = offsetof(struct cm_conf_member, region),
     .required = true},
    {.key = "zone",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_member, zone),
     .parse = cm_conf_member_zone},
    {.key = "kubeconfig",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_member, kubeconfig)},
    {.key = "context", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_member, context)},
    {.key = "in_cluster",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_member, in_cluster),
     .def_bool = false},
    {.key = "lb", .type = CM_CONF_OBJECT, .offset = 0, .sub = &lb_schema},
};
static const struct cm_conf_schema member_schema = {
    .items = member_items,
    .count = COUNT(member_items),
    .size = sizeof(struct cm_conf_member),
    .name_offset = offsetof(struct cm_conf_member, name),
    .key_check = cm_conf_key_label,
};

static const struct cm_conf_item check_items[] = {
    {.key = "type",
     .type = CM_CONF_ENUM,
     .offset = offsetof(struct cm_conf_check, type),
     .names = check_types,
     .def_uint = CM_CHECK_HTTP},
    {.key = "path",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_check, path),
     .def_str = "/healthz",
     .validate = starts_with_slash},
    {.key = "host", .type = CM_CONF_STR, .offset = offsetof(struct cm_conf_check, host)},
    {.key = "expect_body",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_check, expect_body)},
    {.key = "status",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_check, status_min),
     .parse = check_status},
    {.key = "port",
     .type = CM_CONF_U16,
     .offset = offsetof(struct cm_conf_check, port),
     .min = 0,
     .max = 65535,
     .def_uint = 0},
    {.key = "tls_verify",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_check, tls_verify),
     .def_bool = true},
    {.key = "interval_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_check, interval_ms),
     .min = 100,
     .max = 3600000,
     .def_uint = 10000},
    {.key = "timeout_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_check, timeout_ms),
     .min = 10,
     .max = 60000,
     .def_uint = 3000},
    {.key = "rise",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_check, rise),
     .min = 1,
     .max = 100,
     .def_uint = 2},
    {.key = "fall",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_check, fall),
     .min = 1,
     .max = 100,
     .def_uint = 3},
};
static const struct cm_conf_schema check_schema = {
    .items = check_items,
    .count = COUNT(check_items),
    .post = check_post,
};

static const struct cm_conf_item policy_items[] = {
    {.key = "all_down",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_policy, all_down),
     .parse = policy_all_down},
    {.key = "max_answers",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_policy, max_answers),
     .min = 1,
     .max = 64,
     .def_uint = 8},
    {.key = "latency_slack_ms",
     .type = CM_CONF_UINT,
     .offset = offsetof(struct cm_conf_policy, latency_slack_ms),
     .min = 0,
     .max = 10000,
     .def_uint = 5},
    {.key = "prefer_own_region",
     .type = CM_CONF_BOOL,
     .offset = offsetof(struct cm_conf_policy, prefer_own_region),
     .def_bool = true},
    {.key = "weights",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_policy, weights),
     .parse = policy_member_values},
    {.key = "priority",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf_policy, priority),
     .parse = policy_member_values},
};
static const struct cm_conf_schema policy_schema = {
    .items = policy_items,
    .count = COUNT(policy_items),
    .release = policy_release,
};

static const struct cm_conf_item service_items[] = {
    {.key = "port",
     .type = CM_CONF_U16,
     .offset = offsetof(struct cm_conf_service, port),
     .required = true,
     .min = 1,
     .max = 65535},
    {.key = "check",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_service, check),
     .sub = &check_schema},
    {.key = "policy",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf_service, policy),
     .sub = &policy_schema},
    {.key = "aliases",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_DOMAIN,
     .offset = offsetof(struct cm_conf_service, aliases),
     .count_offset = offsetof(struct cm_conf_service, alias_count),
     .max = 256,
     .validate = alias_in_zone},
};
static const struct cm_conf_schema service_schema = {
    .items = service_items,
    .count = COUNT(service_items),
    .size = sizeof(struct cm_conf_service),
    .name_offset = offsetof(struct cm_conf_service, key),
    .key_check = key_service,
    .release = service_release,
};

static const struct cm_conf_item client_net_items[] = {
    {.key = "cidr",
     .type = CM_CONF_STR,
     .offset = offsetof(struct cm_conf_client_net, cidr),
     .required = true,
     .validate = cidr_parse},
    {.key = "region",
     .type = CM_CONF_REF,
     .ref = CM_CONF_REF_REGION,
     .offset = offsetof(struct cm_conf_client_net, region),
     .required = true},
};
static const struct cm_conf_schema client_net_schema = {
    .items = client_net_items,
    .count = COUNT(client_net_items),
    .size = sizeof(struct cm_conf_client_net),
};

/* Order matters: a table's references point only to tables above them. */
static const struct cm_conf_item root_items[] = {
    {.key = "federation",
     .type = CM_CONF_LABEL,
     .offset = offsetof(struct cm_conf, federation),
     .required = true},
    {.key = "zone",
     .type = CM_CONF_DOMAIN,
     .offset = offsetof(struct cm_conf, zone),
     .required = true},
    {.key = "regions",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf, regions),
     .count_offset = offsetof(struct cm_conf, region_count),
     .required = true,
     .min = 1,
     .max = 256,
     .sub = &region_schema},
    {.key = "members",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf, members),
     .count_offset = offsetof(struct cm_conf, member_count),
     .required = true,
     .max = 1024,
     .sub = &member_schema},
    {.key = "members_from",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, members_from),
     .sub = &cm_conf_members_from_schema},
    {.key = "services",
     .type = CM_CONF_MAP,
     .offset = offsetof(struct cm_conf, services),
     .count_offset = offsetof(struct cm_conf, service_count),
     .max = 100000, /* as many as a state document may carry */
     .sub = &service_schema},
    {.key = "client_networks",
     .type = CM_CONF_ARRAY,
     .elem_type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, client_networks),
     .count_offset = offsetof(struct cm_conf, client_network_count),
     .max = 1000000,
     .sub = &client_net_schema},
    {.key = "latency_ms",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf, latency_ms),
     .parse = latency_parse},
    {.key = "allow_addresses",
     .type = CM_CONF_CUSTOM,
     .offset = offsetof(struct cm_conf, allow_addresses),
     .parse = allow_parse},
    /* Before the daemon sections: its instances may supply their required keys. */
    {.key = "deployment",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, deployment),
     .sub = &cm_conf_deployment_schema},
    {.key = "dnsd",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, dnsd),
     .sub = &dnsd_schema},
    {.key = "health",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, health),
     .sub = &health_schema},
    {.key = "proxy",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, proxy),
     .sub = &proxy_schema},
    {.key = "etcd",
     .type = CM_CONF_OBJECT,
     .offset = offsetof(struct cm_conf, etcd),
     .sub = &etcd_schema},
};
const struct cm_conf_schema cm_conf_root_schema = {
    .items = root_items,
    .count = COUNT(root_items),
    .size = sizeof(struct cm_conf),
    .post = root_post,
    .release = root_release,
};
