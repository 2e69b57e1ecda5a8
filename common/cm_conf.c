/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf.c -- loading the federation configuration: reading the file,
 * jansson parsing, and the one generic walker that applies the schema tables
 * of cm_conf_schema.c to the JSON tree (and frees what they describe).
 *
 * Ownership: the walker stores owned copies of every string; nothing in a
 * struct cm_conf points into the jansson tree, which is released before
 * cm_conf_load*() returns. Arrays are allocated zeroed and their counts set
 * before their elements are parsed, so a half-built conf frees cleanly.
 */
#include "common/cm_conf.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/cm_conf_schema.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"

/* A configuration file larger than this is refused before parsing. */
#define CONF_FILE_MAX (16u * 1024 * 1024)

static int walk_object(struct cm_conf_parse *p, const struct cm_conf_schema *s, json_t *obj,
                       void *base);
static void release_object(const struct cm_conf_schema *s, void *base);

/* ---- messages and paths ---------------------------------------------- */

static int fail_v(struct cm_conf_parse *p, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static int fail_v(struct cm_conf_parse *p, const char *fmt, va_list ap)
{
    char reason[CM_CONF_ERR_MAX];

    if (p->err == NULL || p->errlen == 0)
        return CM_ECONFIG;
    vsnprintf(reason, sizeof(reason), fmt, ap);
    if (p->path_len > 0)
        snprintf(p->err, p->errlen, "%s: %s: %s", p->name, p->path, reason);
    else
        snprintf(p->err, p->errlen, "%s: %s", p->name, reason);
    return CM_ECONFIG;
}

int cm_conf_fail(struct cm_conf_parse *p, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = fail_v(p, fmt, ap);
    va_end(ap);
    return rc;
}

int cm_conf_fail_at(struct cm_conf_parse *p, const char *key, const char *fmt, ...)
{
    size_t old = cm_conf_path_push(p, key);
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = fail_v(p, fmt, ap);
    va_end(ap);
    cm_conf_path_pop(p, old);
    return rc;
}

int cm_conf_oom(struct cm_conf_parse *p)
{
    return cm_err_oom(p->err, p->errlen, p->name);
}

/* Appends @s to the path, replacing bytes a terminal would misread. */
static void path_append(struct cm_conf_parse *p, const char *s)
{
    for (; *s != '\0' && p->path_len + 1 < sizeof(p->path); s++) {
        unsigned char c = (unsigned char)*s;
        p->path[p->path_len++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    p->path[p->path_len] = '\0';
}

size_t cm_conf_path_push(struct cm_conf_parse *p, const char *key)
{
    size_t old = p->path_len;

    if (old > 0)
        path_append(p, ".");
    path_append(p, key);
    return old;
}

size_t cm_conf_path_push_index(struct cm_conf_parse *p, size_t i)
{
    size_t old = p->path_len;
    char idx[32];

    snprintf(idx, sizeof(idx), "[%zu]", i);
    path_append(p, idx);
    return old;
}

void cm_conf_path_pop(struct cm_conf_parse *p, size_t old_len)
{
    p->path_len = old_len;
    p->path[old_len] = '\0';
}

const char *cm_conf_quote(const char *s, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap < 8) {
        if (cap > 0)
            buf[0] = '\0';
        return buf;
    }
    buf[n++] = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        /* Invariant: n + 5 <= cap, room for "...", the quote and the NUL. */
        if (n + 4 + 5 > cap) {
            memcpy(buf + n, "...", 3);
            n += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}

/* ---- names ------------------------------------------------------------ */

bool cm_conf_domain_normalize(char *s)
{
    size_t len = strlen(s), start = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
    }
    if (len > 0 && s[len - 1] == '.')
        s[--len] = '\0';
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (!cm_str_is_dns_label(s + start, i - start))
                return false;
            start = i + 1;
        }
    }
    return true;
}

/* ---- scalars ------------------------------------------------------------ */

int cm_conf_get_uint(struct cm_conf_parse *p, json_t *v, uint32_t min, uint32_t max, uint32_t *out)
{
    json_int_t x;

    if (!json_is_integer(v))
        return cm_conf_fail(p, "must be an integer");
    x = json_integer_value(v);
    if (x < (json_int_t)min || x > (json_int_t)max)
        return cm_conf_fail(p, "must be between %" PRIu32 " and %" PRIu32, min, max);
    *out = (uint32_t)x;
    return CM_OK;
}

/* Checks the string forms (label, domain, IP) of an owned copy. */
static int check_string_form(struct cm_conf_parse *p, enum cm_conf_type type, char *copy)
{
    char q[CM_CONF_QUOTE_MAX];
    struct cm_addr addr;

    switch (type) {
    case CM_CONF_LABEL:
        if (!cm_str_is_dns_label(copy, strlen(copy)))
            return cm_conf_fail(p,
                                "not a DNS label %s (lowercase letters, digits and hyphens, "
                                "at most 63)",
                                cm_conf_quote(copy, q, sizeof(q)));
        return CM_OK;
    case CM_CONF_DOMAIN:
        cm_conf_quote(copy, q, sizeof(q));
        if (!cm_conf_domain_normalize(copy))
            return cm_conf_fail(p, "not a domain name %s", q);
        return CM_OK;
    case CM_CONF_IP:
        if (cm_ip_parse(copy, &addr) != CM_OK)
            return cm_conf_fail(p, "not an IP address %s", cm_conf_quote(copy, q, sizeof(q)));
        return CM_OK;
    default:
        return CM_OK;
    }
}

static int conv_string(struct cm_conf_parse *p, enum cm_conf_type type, json_t *v, char **out)
{
    char *copy;
    int rc;

    if (!json_is_string(v))
        return cm_conf_fail(p, "must be a string");
    if (json_string_length(v) == 0)
        return cm_conf_fail(p, "must not be empty");
    copy = strdup(json_string_value(v));
    if (copy == NULL)
        return cm_conf_oom(p);
    rc = check_string_form(p, type, copy);
    if (rc != CM_OK) {
        free(copy);
        return rc;
    }
    *out = copy;
    return CM_OK;
}

static int conv_enum(struct cm_conf_parse *p, const struct cm_conf_item *it, json_t *v, int *out)
{
    char q[CM_CONF_QUOTE_MAX], list[CM_CONF_ERR_MAX / 2] = "";
    size_t len = 0;

    if (json_is_string(v)) {
        for (int i = 0; it->names[i] != NULL; i++) {
            if (strcmp(json_string_value(v), it->names[i]) == 0) {
                *out = i;
                return CM_OK;
            }
        }
    }
    for (int i = 0; it->names[i] != NULL && len < sizeof(list); i++) {
        int n =
            snprintf(list + len, sizeof(list) - len, "%s\"%s\"", i > 0 ? ", " : "", it->names[i]);
        len += n > 0 ? (size_t)n : 0;
    }
    if (!json_is_string(v))
        return cm_conf_fail(p, "must be a string, one of %s", list);
    return cm_conf_fail(p, "must be one of %s, not %s", list,
                        cm_conf_quote(json_string_value(v), q, sizeof(q)));
}

static int conv_ref(struct cm_conf_parse *p, enum cm_conf_ref_kind kind, json_t *v, size_t *out)
{
    static const char *const kinds[] = {"region", "member", "service"};
    char q[CM_CONF_QUOTE_MAX];
    const char *s;
    int idx;

    if (!json_is_string(v))
        return cm_conf_fail(p, "must be a string");
    s = json_string_value(v);
    if (kind == CM_CONF_REF_REGION)
        idx = cm_conf_region_index(p->conf, s);
    else if (kind == CM_CONF_REF_MEMBER)
        idx = cm_conf_member_index(p->conf, s);
    else
        idx = cm_conf_service_index(p->conf, s);
    if (idx < 0)
        return cm_conf_fail(p, "unknown %s %s", kinds[kind], cm_conf_quote(s, q, sizeof(q)));
    *out = (size_t)idx;
    return CM_OK;
}

static int conv_addr(struct cm_conf_parse *p, json_t *v, struct cm_addr *out)
{
    char q[CM_CONF_QUOTE_MAX];

    if (!json_is_string(v))
        return cm_conf_fail(p, "must be a string");
    if (cm_addr_parse(json_string_value(v), 0, out) != CM_OK)
        return cm_conf_fail(p, "not an address %s",
                            cm_conf_quote(json_string_value(v), q, sizeof(q)));
    return CM_OK;
}

/* Converts one scalar JSON value of @type into @field. */
static int conv_scalar(struct cm_conf_parse *p, const struct cm_conf_item *it,
                       enum cm_conf_type type, json_t *v, void *field)
{
    uint32_t u = 0;
    int rc;

    switch (type) {
    case CM_CONF_STR:
    case CM_CONF_LABEL:
    case CM_CONF_DOMAIN:
    case CM_CONF_IP:
        return conv_string(p, type, v, (char **)field);
    case CM_CONF_UINT:
        return cm_conf_get_uint(p, v, it->min, it->max, (uint32_t *)field);
    case CM_CONF_U16:
        rc = cm_conf_get_uint(p, v, it->min, it->max > 65535 ? 65535 : it->max, &u);
        *(uint16_t *)field = (uint16_t)u;
        return rc;
    case CM_CONF_BOOL:
        if (!json_is_boolean(v))
            return cm_conf_fail(p, "must be true or false");
        *(bool *)field = json_is_true(v);
        return CM_OK;
    case CM_CONF_ENUM:
        return conv_enum(p, it, v, (int *)field);
    case CM_CONF_ADDR:
        return conv_addr(p, v, (struct cm_addr *)field);
    case CM_CONF_REF:
        return conv_ref(p, it->ref, v, (size_t *)field);
    default:
        return cm_conf_fail(p, "internal error: type %d is not a scalar", (int)type);
    }
}

/* One value (scalar or object) of @type, then the item's validate callback. */
static int conv_value(struct cm_conf_parse *p, const struct cm_conf_item *it,
                      enum cm_conf_type type, json_t *v, void *base, void *field)
{
    int rc;

    if (type == CM_CONF_OBJECT)
        return walk_object(p, it->sub, v, field);
    rc = conv_scalar(p, it, type, v, field);
    if (rc == CM_OK && it->validate != NULL)
        rc = it->validate(p, base, field);
    return rc;
}

/* ---- containers ---------------------------------------------------------- */

static size_t elem_size(const struct cm_conf_item *it)
{
    switch (it->elem_type) {
    case CM_CONF_OBJECT:
        return it->sub->size;
    case CM_CONF_ADDR:
        return sizeof(struct cm_addr);
    case CM_CONF_REF:
        return sizeof(size_t);
    case CM_CONF_UINT:
        return sizeof(uint32_t);
    default:
        return sizeof(char *);
    }
}

static int check_count(struct cm_conf_parse *p, const struct cm_conf_item *it, size_t n)
{
    if (n < it->min)
        return cm_conf_fail(p, "must have at least %" PRIu32 " %s", it->min,
                            it->min == 1 ? "entry" : "entries");
    if (it->max != 0 && n > it->max)
        return cm_conf_fail(p, "must have at most %" PRIu32 " entries", it->max);
    return CM_OK;
}

static int walk_array(struct cm_conf_parse *p, const struct cm_conf_item *it, json_t *v, void *base)
{
    void *field = (char *)base + it->offset;
    size_t n, size = elem_size(it);
    char *arr;
    int rc;

    if (!json_is_array(v))
        return cm_conf_fail(p, "must be an array");
    n = json_array_size(v);
    rc = check_count(p, it, n);
    if (rc != CM_OK || n == 0)
        return rc;
    arr = calloc(n, size);
    if (arr == NULL)
        return cm_conf_oom(p);
    *(char **)field = arr;
    *(size_t *)((char *)base + it->count_offset) = n;
    for (size_t i = 0; i < n && rc == CM_OK; i++) {
        size_t old = cm_conf_path_push_index(p, i);
        rc = conv_value(p, it, it->elem_type, json_array_get(v, i), base, arr + i * size);
        cm_conf_path_pop(p, old);
    }
    return rc;
}

/* One entry of a name -> object map: stores and checks the name, then the body. */
static int walk_map_entry(struct cm_conf_parse *p, const struct cm_conf_schema *s, const char *key,
                          json_t *v, void *entry)
{
    char **name = (char **)((char *)entry + s->name_offset);
    int rc;

    *name = strdup(key);
    if (*name == NULL)
        return cm_conf_oom(p);
    rc = s->key_check(p, entry, name);
    if (rc != CM_OK)
        return rc;
    return walk_object(p, s, v, entry);
}

static int walk_map(struct cm_conf_parse *p, const struct cm_conf_item *it, json_t *v, void *base)
{
    const struct cm_conf_schema *s = it->sub;
    size_t n, i = 0;
    char *arr;
    int rc;

    if (!json_is_object(v))
        return cm_conf_fail(p, "must be an object");
    n = json_object_size(v);
    rc = check_count(p, it, n);
    if (rc != CM_OK || n == 0)
        return rc;
    arr = calloc(n, s->size);
    if (arr == NULL)
        return cm_conf_oom(p);
    *(char **)((char *)base + it->offset) = arr;
    *(size_t *)((char *)base + it->count_offset) = n;
    for (void *iter = json_object_iter(v); iter != NULL && i < n && rc == CM_OK;
         iter = json_object_iter_next(v, iter), i++) {
        const char *key = json_object_iter_key(iter);
        size_t old = cm_conf_path_push(p, key);
        rc = walk_map_entry(p, s, key, json_object_iter_value(iter), arr + i * s->size);
        cm_conf_path_pop(p, old);
    }
    return rc;
}

/* An array with one element def_str, as if the file had said [def_str]. */
static int default_array(struct cm_conf_parse *p, const struct cm_conf_item *it, void *base)
{
    json_t *a = json_pack("[s]", it->def_str);
    int rc;

    if (a == NULL)
        return cm_conf_oom(p);
    rc = walk_array(p, it, a, base);
    json_decref(a);
    return rc;
}

static int apply_default(struct cm_conf_parse *p, const struct cm_conf_item *it, void *base)
{
    void *field = (char *)base + it->offset;

    switch (it->type) {
    case CM_CONF_STR:
    case CM_CONF_LABEL:
    case CM_CONF_DOMAIN:
    case CM_CONF_IP:
        if (it->def_str == NULL)
            return CM_OK;
        *(char **)field = strdup(it->def_str);
        return *(char **)field != NULL ? CM_OK : cm_conf_oom(p);
    case CM_CONF_UINT:
        *(uint32_t *)field = it->def_uint;
        return CM_OK;
    case CM_CONF_U16:
        *(uint16_t *)field = (uint16_t)it->def_uint;
        return CM_OK;
    case CM_CONF_BOOL:
        *(bool *)field = it->def_bool;
        return CM_OK;
    case CM_CONF_ENUM:
        *(int *)field = (int)it->def_uint;
        return CM_OK;
    case CM_CONF_ADDR:
        if (it->def_str != NULL && cm_addr_parse(it->def_str, 0, field) != CM_OK)
            return cm_conf_fail(p, "internal error: bad default %s", it->def_str);
        return CM_OK;
    case CM_CONF_ARRAY:
        return it->def_str != NULL ? default_array(p, it, base) : CM_OK;
    case CM_CONF_OBJECT:
        return walk_object(p, it->sub, NULL, field);
    case CM_CONF_CUSTOM:
        return it->parse(p, NULL, base, field);
    default: /* MAP, REF: nothing */
        return CM_OK;
    }
}

static int walk_item(struct cm_conf_parse *p, const struct cm_conf_item *it, json_t *obj,
                     void *base)
{
    json_t *v = obj != NULL ? json_object_get(obj, it->key) : NULL;
    void *field = (char *)base + it->offset;
    size_t old = cm_conf_path_push(p, it->key);
    int rc;

    if (v != NULL && json_is_null(v))
        v = NULL; /* null means "use the default" */
    if (v == NULL && it->required && !(it->by_instance && cm_conf_instance_supplies(p)))
        rc = cm_conf_fail(p, "missing required key");
    else if (v == NULL)
        rc = apply_default(p, it, base);
    else if (it->type == CM_CONF_ARRAY)
        rc = walk_array(p, it, v, base);
    else if (it->type == CM_CONF_MAP)
        rc = walk_map(p, it, v, base);
    else if (it->type == CM_CONF_CUSTOM)
        rc = it->parse(p, v, base, field);
    else
        rc = conv_value(p, it, it->type, v, base, field);
    cm_conf_path_pop(p, old);
    return rc;
}

static int check_unknown_keys(struct cm_conf_parse *p, const struct cm_conf_schema *s, json_t *obj)
{
    for (void *iter = json_object_iter(obj); iter != NULL;
         iter = json_object_iter_next(obj, iter)) {
        const char *key = json_object_iter_key(iter);
        size_t i = 0;

        while (i < s->count && strcmp(s->items[i].key, key) != 0)
            i++;
        if (i == s->count)
            return cm_conf_fail_at(p, key, "unknown key");
    }
    return CM_OK;
}

/* Applies schema @s to @obj (NULL: absent, defaults only) filling @base. */
static int walk_object(struct cm_conf_parse *p, const struct cm_conf_schema *s, json_t *obj,
                       void *base)
{
    int rc;

    if (obj == NULL && s->section)
        return CM_OK;
    if (obj != NULL) {
        if (!json_is_object(obj))
            return cm_conf_fail(p, "must be an object");
        rc = check_unknown_keys(p, s, obj);
        if (rc != CM_OK)
            return rc;
        if (s->section)
            *(bool *)((char *)base + s->present_offset) = true;
    }
    for (size_t i = 0; i < s->count; i++) {
        rc = walk_item(p, &s->items[i], obj, base);
        if (rc != CM_OK)
            return rc;
    }
    return s->post != NULL ? s->post(p, base) : CM_OK;
}

/* ---- freeing, driven by the same tables ---------------------------------- */

static void release_value(const struct cm_conf_item *it, enum cm_conf_type type, void *field)
{
    switch (type) {
    case CM_CONF_STR:
    case CM_CONF_LABEL:
    case CM_CONF_DOMAIN:
    case CM_CONF_IP:
        free(*(char **)field);
        *(char **)field = NULL;
        break;
    case CM_CONF_OBJECT:
        release_object(it->sub, field);
        break;
    default:
        break;
    }
}

static void release_item(const struct cm_conf_item *it, void *base)
{
    void *field = (char *)base + it->offset;
    size_t n, size;
    char *arr;

    if (it->type != CM_CONF_ARRAY && it->type != CM_CONF_MAP) {
        release_value(it, it->type, field);
        return;
    }
    arr = *(char **)field;
    n = *(size_t *)((char *)base + it->count_offset);
    size = it->type == CM_CONF_MAP ? it->sub->size : elem_size(it);
    for (size_t i = 0; arr != NULL && i < n; i++) {
        if (it->type == CM_CONF_MAP) {
            free(*(char **)(arr + i * size + it->sub->name_offset));
            release_object(it->sub, arr + i * size);
        } else {
            release_value(it, it->elem_type, arr + i * size);
        }
    }
    free(arr);
    *(char **)field = NULL;
    *(size_t *)((char *)base + it->count_offset) = 0;
}

static void release_object(const struct cm_conf_schema *s, void *base)
{
    for (size_t i = 0; i < s->count; i++)
        release_item(&s->items[i], base);
    if (s->release != NULL)
        s->release(base);
}

static void conf_free(struct cm_conf *conf)
{
    if (conf == NULL)
        return;
    if (conf->extends != NULL) {
        /* Only the members after the loaded configuration's are ours. */
        for (size_t i = conf->extends->member_count; i < conf->member_count; i++)
            free(conf->members[i].name);
        free(conf->members);
        cm_conf_unref(conf->extends);
        free(conf);
        return;
    }
    release_object(&cm_conf_root_schema, conf);
    free(conf);
}

/* ---- loading -------------------------------------------------------------- */

static int load_buffer(const char *name, const char *buf, size_t len, const char *instance,
                       int kind, struct cm_conf **out, char *err, size_t errlen)
{
    struct cm_conf_parse p = {
        .name = name, .err = err, .errlen = errlen, .instance = instance, .kind = kind};
    struct cm_conf *conf = NULL;
    json_error_t jerr;
    json_t *root;
    int rc;

    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: line %d, column %d: %s", name, jerr.line, jerr.column,
                     jerr.text);
        return CM_EPARSE;
    }
    conf = calloc(1, sizeof(*conf));
    if (conf != NULL)
        conf->path = strdup(name);
    if (conf == NULL || conf->path == NULL) {
        rc = cm_conf_oom(&p);
        goto out;
    }
    p.conf = conf;
    rc = walk_object(&p, &cm_conf_root_schema, root, conf);
    if (rc == CM_OK && kind >= 0)
        rc = cm_conf_instance_select(&p, conf);
    if (rc != CM_OK)
        goto out;
    atomic_init(&conf->refs, 1);
    *out = conf;
    conf = NULL; /* ownership moved to the caller */
out:
    conf_free(conf);
    json_decref(root);
    return rc;
}

int cm_conf_load_string(const char *name, const char *text, struct cm_conf **out, char *err,
                        size_t errlen)
{
    return load_buffer(name, text, strlen(text), NULL, -1, out, err, errlen);
}

int cm_conf_load_string_instance(const char *name, const char *text, enum cm_instance_kind kind,
                                 const char *instance, struct cm_conf **out, char *err,
                                 size_t errlen)
{
    return load_buffer(name, text, strlen(text), instance, (int)kind, out, err, errlen);
}

/* Reads all of @path (at most CONF_FILE_MAX bytes) into an owned buffer. */
static int read_file(const char *path, char **out, size_t *out_len, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd, rc = CM_OK;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1 || fstat(fd, &st) == -1) {
        rc = cm_err_from_errno(errno);
        goto out;
    }
    if (st.st_size > (off_t)CONF_FILE_MAX) {
        rc = CM_ETOOBIG;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1) {
            rc = cm_err_from_errno(errno);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
out:
    if (rc != CM_OK && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: cannot read: %s", path, cm_strerror(rc));
    free(buf);
    if (fd != -1)
        close(fd);
    return rc;
}

/* Reads @path and loads it; @kind < 0: no instance is selected. */
static int load_file(const char *path, const char *instance, int kind, struct cm_conf **out,
                     char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    rc = read_file(path, &buf, &len, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = load_buffer(path, buf, len, instance, kind, out, err, errlen);
    free(buf);
    return rc;
}

int cm_conf_load(const char *path, struct cm_conf **out, char *err, size_t errlen)
{
    return load_file(path, NULL, -1, out, err, errlen);
}

int cm_conf_load_instance(const char *path, enum cm_instance_kind kind, const char *instance,
                          struct cm_conf **out, char *err, size_t errlen)
{
    return load_file(path, instance, (int)kind, out, err, errlen);
}

void cm_conf_log_warnings(const struct cm_conf *conf)
{
    for (size_t i = 0; i < conf->warning_count; i++)
        cm_log_warn("%s", conf->warnings[i]);
}

/* ---- references and lookups ------------------------------------------------ */

struct cm_conf *cm_conf_ref(struct cm_conf *conf)
{
    atomic_fetch_add_explicit(&conf->refs, 1, memory_order_relaxed);
    return conf;
}

void cm_conf_unref(struct cm_conf *conf)
{
    if (conf == NULL)
        return;
    if (atomic_fetch_sub_explicit(&conf->refs, 1, memory_order_acq_rel) == 1)
        conf_free(conf);
}

struct cm_conf *cm_conf_loaded(struct cm_conf *conf)
{
    return conf->extends != NULL ? conf->extends : conf;
}

struct cm_conf *cm_conf_with_members(struct cm_conf *base, const struct cm_conf_member *extra,
                                     size_t count)
{
    struct cm_conf *loaded = cm_conf_loaded(base);
    struct cm_conf *c = malloc(sizeof(*c));
    size_t n = loaded->member_count;

    if (c == NULL)
        return NULL;
    *c = *loaded; /* shares every owned pointer; conf_free knows */
    c->members = calloc(n + count + 1, sizeof(*c->members));
    if (c->members == NULL) {
        free(c);
        return NULL;
    }
    if (n > 0)
        memcpy(c->members, loaded->members, n * sizeof(*c->members));
    c->member_count = n;
    c->extends = cm_conf_ref(loaded);
    atomic_init(&c->refs, 1);
    for (size_t i = 0; i < count; i++) {
        struct cm_conf_member *m = &c->members[n + i];

        m->name = strdup(extra[i].name);
        if (m->name == NULL) {
            conf_free(c);
            return NULL;
        }
        m->region = extra[i].region;
        m->zone = extra[i].zone;
        m->lb_mode = CM_LB_NATIVE;
        c->member_count++;
    }
    return c;
}

int cm_conf_region_index(const struct cm_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->region_count; i++) {
        if (conf->regions[i].name != NULL && strcmp(conf->regions[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

int cm_conf_member_index(const struct cm_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->member_count; i++) {
        if (conf->members[i].name != NULL && strcmp(conf->members[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

int cm_conf_service_index(const struct cm_conf *conf, const char *key)
{
    for (size_t i = 0; i < conf->service_count; i++) {
        if (conf->services[i].key != NULL && strcmp(conf->services[i].key, key) == 0)
            return (int)i;
    }
    return -1;
}

uint32_t cm_conf_latency(const struct cm_conf *conf, size_t region_a, size_t region_b)
{
    if (conf->latency_ms == NULL || region_a >= conf->region_count ||
        region_b >= conf->region_count)
        return CM_LATENCY_UNKNOWN;
    return conf->latency_ms[region_a * conf->region_count + region_b];
}
