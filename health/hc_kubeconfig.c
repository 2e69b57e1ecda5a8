/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_kubeconfig.c -- kubeconfig loading (libyaml document API) and the merge
 * and resolution rules of kubectl, down to one struct hc_kube_target.
 *
 * Every file of the list is parsed into a libyaml document and checked for
 * shape (types of the fields we read) before anything is resolved, as
 * client-go fails a file that does not decode. Lookups then walk the
 * documents in list order: the first file defining a name wins, and inside
 * one file the last entry of a name wins (client-go turns the list into a
 * map). Secrets met on the way (file buffers, YAML scalars, token files)
 * are wiped before their memory is released.
 */
#include "health/hc_kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "common/cm_base64.h"
#include "common/cm_err.h"
#include "common/cm_str.h"
#include "health/hc_exec.h"

#define KC_FILE_MAX  (16u * 1024 * 1024) /* one kubeconfig file */
#define KC_REF_MAX   (1u * 1024 * 1024)  /* a CA, certificate, key or token file */
#define KC_FILES_MAX 64                  /* files in one list */

struct kc_file {
    char *path;          /* owned; as given, names the file in messages */
    char *dir;           /* owned; absolute directory for relative references */
    yaml_document_t doc; /* valid when loaded */
    bool loaded;
    yaml_node_t *clusters; /* borrowed from doc; sequence or NULL */
    yaml_node_t *users;
    yaml_node_t *contexts;
    const char *current_context; /* borrowed from doc; NULL when unset */
};

struct kc_set {
    struct kc_file files[KC_FILES_MAX];
    size_t count;
    unsigned flags;
    const char *label; /* borrowed; names the whole list in messages */
    char *err;
    size_t errlen;
};

/* One entry found by name: the file that defines it and its inner mapping. */
struct kc_entry {
    struct kc_file *file;
    yaml_node_t *body; /* mapping, or NULL when the entry has none */
};

__attribute__((format(printf, 2, 3))) static void seterr(struct kc_set *set, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(set->err, set->errlen, fmt, ap);
    va_end(ap);
}

/* ---- YAML node helpers ---------------------------------------------------- */

static bool node_is_null(const yaml_node_t *n)
{
    const char *v;

    if (n == NULL)
        return true;
    if (n->type != YAML_SCALAR_NODE)
        return false;
    if (n->tag != NULL && strcmp((const char *)n->tag, YAML_NULL_TAG) == 0)
        return true; /* explicit !!null */
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false; /* quoted: a string */
    v = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* The scalar's text, or NULL for a non-scalar or a value with a NUL byte. */
static const char *node_str(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
        return NULL;
    return (const char *)n->data.scalar.value;
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on",   "On",   "ON",   "y",   "Y"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off",   "Off",   "OFF",   "n",  "N"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* The value for @key in mapping @map (the last one if repeated), or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    yaml_node_t *found = NULL;

    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = node_str(yaml_document_get_node(doc, p->key));

        if (k != NULL && strcmp(k, key) == 0)
            found = yaml_document_get_node(doc, p->value);
    }
    return found;
}

/* A string field, NULL when absent, null or empty (shape checked earlier). */
static const char *map_str(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    yaml_node_t *n = map_get(doc, map, key);
    const char *v;

    if (node_is_null(n))
        return NULL;
    v = node_str(n);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool map_bool(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    yaml_node_t *n = map_get(doc, map, key);
    bool b = false;

    if (!node_is_null(n) && node_str(n) != NULL)
        (void)parse_bool(node_str(n), &b);
    return b;
}

/* ---- shape checks ---------------------------------------------------------- */

enum kc_type {
    KC_STR = 1,  /* scalar without NUL bytes, or null */
    KC_BOOL = 2, /* YAML 1.1 boolean, or null */
    KC_MAP = 3,  /* mapping, or null */
};

struct kc_field {
    const char *key;
    enum kc_type type;
};

static const struct kc_field cluster_fields[] = {
    {"server", KC_STR},
    {"certificate-authority", KC_STR},
    {"certificate-authority-data", KC_STR},
    {"insecure-skip-tls-verify", KC_BOOL},
    {"tls-server-name", KC_STR},
    {"proxy-url", KC_STR},
    {NULL, 0},
};
static const struct kc_field user_fields[] = {
    {"token", KC_STR},
    {"tokenFile", KC_STR},
    {"client-certificate", KC_STR},
    {"client-certificate-data", KC_STR},
    {"client-key", KC_STR},
    {"client-key-data", KC_STR},
    {"username", KC_STR},
    {"password", KC_STR},
    {"exec", KC_MAP},
    {"auth-provider", KC_MAP},
    {NULL, 0},
};
static const struct kc_field context_fields[] = {
    {"cluster", KC_STR},
    {"user", KC_STR},
    {"namespace", KC_STR},
    {NULL, 0},
};

static int shape_error(struct kc_set *set, const struct kc_file *f, const yaml_node_t *n,
                       const char *what, const char *expected)
{
    seterr(set, "%s:%zu:%zu: %s: expected %s", f->path, n->start_mark.line + 1,
           n->start_mark.column + 1, what, expected);
    return CM_EPARSE;
}

static int check_type(struct kc_set *set, const struct kc_file *f, const yaml_node_t *n,
                      enum kc_type type, const char *what)
{
    bool b;

    if (node_is_null(n))
        return CM_OK;
    switch (type) {
    case KC_STR:
        if (node_str(n) == NULL)
            return shape_error(set, f, n, what, "a string");
        return CM_OK;
    case KC_BOOL:
        if (node_str(n) == NULL || !parse_bool(node_str(n), &b))
            return shape_error(set, f, n, what, "a boolean");
        return CM_OK;
    case KC_MAP:
        if (n->type != YAML_MAPPING_NODE)
            return shape_error(set, f, n, what, "a mapping");
        return CM_OK;
    }
    return CM_EINVAL;
}

/* Checks one clusters[]/users[]/contexts[] item: name plus an inner mapping. */
static int check_item(struct kc_set *set, struct kc_file *f, yaml_node_t *item, const char *list,
                      size_t idx, const char *inner, const struct kc_field *fields)
{
    char what[96];
    yaml_node_t *name, *body;
    int rc;

    snprintf(what, sizeof(what), "%s[%zu]", list, idx);
    if (item->type != YAML_MAPPING_NODE)
        return shape_error(set, f, item, what, "a mapping");
    name = map_get(&f->doc, item, "name");
    if (node_is_null(name) || node_str(name) == NULL || node_str(name)[0] == '\0') {
        seterr(set, "%s:%zu:%zu: %s: name is missing", f->path, item->start_mark.line + 1,
               item->start_mark.column + 1, what);
        return CM_EPARSE;
    }
    snprintf(what, sizeof(what), "%s[%zu].%s", list, idx, inner);
    body = map_get(&f->doc, item, inner);
    rc = check_type(set, f, body, KC_MAP, what);
    if (rc != CM_OK || node_is_null(body))
        return rc;
    for (const struct kc_field *fd = fields; fd->key != NULL; fd++) {
        yaml_node_t *v = map_get(&f->doc, body, fd->key);

        snprintf(what, sizeof(what), "%s[%zu].%s.%s", list, idx, inner, fd->key);
        if (v != NULL) {
            rc = check_type(set, f, v, fd->type, what);
            if (rc != CM_OK)
                return rc;
        }
    }
    return CM_OK;
}

static int check_list(struct kc_set *set, struct kc_file *f, yaml_node_t *seq, const char *list,
                      const char *inner, const struct kc_field *fields)
{
    size_t idx = 0;

    if (node_is_null(seq))
        return CM_OK;
    if (seq->type != YAML_SEQUENCE_NODE)
        return shape_error(set, f, seq, list, "a sequence");
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, idx++) {
        int rc = check_item(set, f, yaml_document_get_node(&f->doc, *it), list, idx, inner, fields);

        if (rc != CM_OK)
            return rc;
    }
    return CM_OK;
}

/* Checks the top level of a parsed file and records where its lists are. */
static int check_file(struct kc_set *set, struct kc_file *f)
{
    yaml_node_t *root = yaml_document_get_root_node(&f->doc);
    yaml_node_t *n;
    int rc;

    if (node_is_null(root))
        return CM_OK; /* an empty file is an empty config, as for kubectl */
    if (root->type != YAML_MAPPING_NODE)
        return shape_error(set, f, root, "top level", "a mapping");
    n = map_get(&f->doc, root, "kind");
    if ((rc = check_type(set, f, n, KC_STR, "kind")) != CM_OK)
        return rc;
    if (!node_is_null(n) && node_str(n)[0] != '\0' && strcmp(node_str(n), "Config") != 0) {
        seterr(set, "%s: kind \"%s\" is not Config", f->path, node_str(n));
        return CM_ECONFIG;
    }
    n = map_get(&f->doc, root, "current-context");
    if ((rc = check_type(set, f, n, KC_STR, "current-context")) != CM_OK)
        return rc;
    f->current_context = map_str(&f->doc, root, "current-context");
    f->clusters = map_get(&f->doc, root, "clusters");
    f->users = map_get(&f->doc, root, "users");
    f->contexts = map_get(&f->doc, root, "contexts");
    rc = check_list(set, f, f->clusters, "clusters", "cluster", cluster_fields);
    if (rc == CM_OK)
        rc = check_list(set, f, f->users, "users", "user", user_fields);
    if (rc == CM_OK)
        rc = check_list(set, f, f->contexts, "contexts", "context", context_fields);
    return rc;
}

/* ---- files ----------------------------------------------------------------- */

/*
 * Reads a whole regular file of at most @max bytes into a NUL-terminated
 * buffer. Opens non-blocking so a FIFO never blocks us. Returns CM_OK or a
 * CM_* code; *why is set to a static reason when the code is not an errno.
 */
static int read_whole(const char *path, size_t max, char **out, size_t *len, const char **why)
{
    struct stat st;
    char *buf = NULL, extra;
    size_t used = 0, cap = 0;
    int fd, rc = CM_OK;

    *why = NULL;
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd == -1)
        return cm_err_from_errno(errno);
    if (fstat(fd, &st) == -1) {
        rc = cm_err_from_errno(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        *why = S_ISDIR(st.st_mode) ? "Is a directory" : "not a regular file";
        rc = CM_EINVAL;
        goto out;
    }
    if ((uintmax_t)st.st_size > max) {
        *why = "file too large";
        rc = CM_ETOOBIG;
        goto out;
    }
    cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (buf == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    /* Read st_size bytes, then one more to see whether the file grew. */
    while (rc == CM_OK) {
        bool probe = used == cap - 1;
        ssize_t r = probe ? read(fd, &extra, 1) : read(fd, buf + used, cap - 1 - used);

        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            rc = cm_err_from_errno(errno);
        else if (r == 0)
            break;
        else if (probe) {
            *why = "file changed while being read";
            rc = CM_EIO;
        } else
            used += (size_t)r;
    }
    if (rc != CM_OK)
        goto out;
    buf[used] = '\0';
    *out = buf;
    *len = used;
    buf = NULL;
out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
    }
    close(fd);
    return rc;
}

/* Absolute directory of @path (cwd-based when @path is relative). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char cwd[PATH_MAX];
    struct cm_buf b;

    cm_buf_init(&b, PATH_MAX * 2);
    if (path[0] != '/') {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            cm_strlcpy(cwd, ".", sizeof(cwd));
        if (cm_buf_append_str(&b, cwd) != CM_OK)
            goto fail;
        if (slash != NULL && (cm_buf_append_str(&b, "/") != CM_OK ||
                              cm_buf_append(&b, path, (size_t)(slash - path)) != CM_OK))
            goto fail;
    } else if (cm_buf_append(&b, path, slash == path ? 1 : (size_t)(slash - path)) != CM_OK) {
        goto fail;
    }
    if (b.data == NULL && cm_buf_append_str(&b, "") != CM_OK)
        goto fail;
    return b.data;
fail:
    cm_buf_fini(&b);
    return NULL;
}

/* @ref made absolute against @dir; owned by the caller, NULL on ENOMEM. */
static char *join_path(const char *dir, const char *ref)
{
    size_t dl = strlen(dir), rl = strlen(ref);
    char *p;

    if (ref[0] == '/')
        return strdup(ref);
    p = malloc(dl + rl + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, dl);
    if (dl == 0 || dir[dl - 1] != '/')
        p[dl++] = '/';
    memcpy(p + dl, ref, rl + 1);
    return p;
}

/* Overwrites every scalar of a document before libyaml frees it. */
static void wipe_doc(yaml_document_t *doc)
{
    for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++) {
        if (n->type == YAML_SCALAR_NODE)
            OPENSSL_cleanse(n->data.scalar.value, n->data.scalar.length);
    }
}

static void file_fini(struct kc_file *f)
{
    if (f->loaded) {
        wipe_doc(&f->doc);
        yaml_document_delete(&f->doc);
    }
    free(f->path);
    free(f->dir);
    memset(f, 0, sizeof(*f));
}

/* Parses @len bytes at @data into f->doc. */
static int parse_doc(struct kc_set *set, struct kc_file *f, const char *data, size_t len)
{
    yaml_parser_t parser;
    int rc = CM_OK;

    if (!yaml_parser_initialize(&parser))
        return CM_ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &f->doc)) {
        if (parser.error == YAML_MEMORY_ERROR) {
            rc = CM_ENOMEM;
            seterr(set, "%s: out of memory", f->path);
        } else {
            rc = CM_EPARSE;
            seterr(set, "%s:%zu:%zu: YAML syntax error: %s%s%s", f->path,
                   parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                   parser.context != NULL ? parser.context : "", parser.context != NULL ? ": " : "",
                   parser.problem != NULL ? parser.problem : "invalid document");
        }
    } else {
        f->loaded = true;
    }
    yaml_parser_delete(&parser);
    return rc;
}

static int add_file(struct kc_set *set, const char *path, size_t plen, struct kc_file **out)
{
    struct kc_file *f;

    if (set->count == KC_FILES_MAX) {
        seterr(set, "%s: more than %d kubeconfig files", set->label, KC_FILES_MAX);
        return CM_ETOOBIG;
    }
    f = &set->files[set->count];
    memset(f, 0, sizeof(*f));
    f->path = strndup(path, plen);
    f->dir = f->path != NULL ? dir_of(f->path) : NULL;
    if (f->path == NULL || f->dir == NULL) {
        file_fini(f);
        return CM_ENOMEM;
    }
    set->count++;
    *out = f;
    return CM_OK;
}

static int load_mem_into(struct kc_set *set, struct kc_file *f, const char *data, size_t len)
{
    int rc = parse_doc(set, f, data, len);

    if (rc == CM_OK)
        rc = check_file(set, f);
    return rc;
}

/* Loads one element of the list; *skipped when it does not exist. */
static int load_one(struct kc_set *set, const char *path, size_t plen, bool *skipped)
{
    struct kc_file *f = NULL;
    const char *why;
    char *data = NULL;
    size_t len = 0;
    int rc;

    *skipped = false;
    for (size_t i = 0; i < set->count; i++) {
        if (strlen(set->files[i].path) == plen && memcmp(set->files[i].path, path, plen) == 0)
            return CM_OK; /* listed twice: kubectl reads it once */
    }
    rc = add_file(set, path, plen, &f);
    if (rc != CM_OK)
        return rc;
    rc = read_whole(f->path, KC_FILE_MAX, &data, &len, &why);
    if (rc == CM_ENOENT) {
        *skipped = true;
        file_fini(f);
        set->count--;
        return CM_OK;
    }
    if (rc != CM_OK) {
        seterr(set, "%s: cannot read: %s", f->path, why != NULL ? why : cm_strerror(rc));
        return rc;
    }
    rc = load_mem_into(set, f, data, len);
    OPENSSL_cleanse(data, len);
    free(data);
    return rc;
}

/* ---- lookup ------------------------------------------------------------------ */

enum kc_list {
    KC_CLUSTERS = 1,
    KC_USERS = 2,
    KC_CONTEXTS = 3,
};

static bool find_entry(struct kc_set *set, enum kc_list list, const char *name,
                       struct kc_entry *out)
{
    const char *inner = list == KC_CLUSTERS ? "cluster" : list == KC_USERS ? "user" : "context";

    for (size_t i = 0; i < set->count; i++) {
        struct kc_file *f = &set->files[i];
        yaml_node_t *seq = list == KC_CLUSTERS ? f->clusters
                           : list == KC_USERS  ? f->users
                                               : f->contexts;
        bool found = false;

        if (node_is_null(seq))
            continue;
        for (yaml_node_item_t *it = seq->data.sequence.items.start;
             it < seq->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(&f->doc, *it);
            const char *n = node_str(map_get(&f->doc, item, "name"));

            if (n != NULL && strcmp(n, name) == 0) {
                yaml_node_t *body = map_get(&f->doc, item, inner);

                out->file = f;
                out->body = node_is_null(body) ? NULL : body;
                found = true; /* keep going: the last one in a file wins */
            }
        }
        if (found)
            return true;
    }
    return false;
}

/* ---- PEM ---------------------------------------------------------------------- */

static bool looks_pem(const char *p, size_t len)
{
    return memmem(p, len, "-----BEGIN ", 11) != NULL;
}

/* ---- resolution ------------------------------------------------------------- */

/* What a PEM-or-data pair loads into, and how to name it in messages. */
struct kc_blob {
    const char *prefix; /* "<file>: cluster \"x\"" or "<file>: context \"c\": user \"u\"" */
    const char *file_key;
    const char *data_key;
};

/* Reads a referenced file (unless the set forbids it); names it in errors. */
static int read_ref(struct kc_set *set, const char *prefix, const char *key, const char *path,
                    char **out, size_t *outlen)
{
    const char *why = NULL;
    int rc;

    if (set->flags & HC_KUBECONFIG_NO_FILES) {
        why = "file access disabled";
        rc = CM_EACCES;
    } else {
        rc = read_whole(path, KC_REF_MAX, out, outlen, &why);
    }
    if (rc != CM_OK)
        seterr(set, "%s: %s %s: cannot read: %s", prefix, key, path,
               why != NULL ? why : cm_strerror(rc));
    return rc;
}

/* Loads @data_key (base64) or @file_key (path) of @e; NULL result when neither. */
static int load_blob(struct kc_set *set, const struct kc_entry *e, const struct kc_blob *bl,
                     char **out, size_t *outlen)
{
    yaml_document_t *doc = &e->file->doc;
    const char *data = map_str(doc, e->body, bl->data_key);
    const char *ref = map_str(doc, e->body, bl->file_key);
    char *path = NULL;
    int rc;

    if (data != NULL && ref != NULL) {
        seterr(set, "%s: %s and %s are both set", bl->prefix, bl->file_key, bl->data_key);
        return CM_ECONFIG;
    }
    if (data == NULL && ref == NULL)
        return CM_OK;
    if (data != NULL) {
        rc = cm_base64_decode(data, strlen(data), out, outlen);
        if (rc == CM_OK && *outlen == 0) { /* nothing in it: as invalid as garbage */
            free(*out);
            *out = NULL;
            rc = CM_EPARSE;
        }
        if (rc == CM_EPARSE)
            seterr(set, "%s: %s: invalid base64", bl->prefix, bl->data_key);
    } else {
        path = join_path(e->file->dir, ref);
        if (path == NULL)
            return CM_ENOMEM;
        rc = read_ref(set, bl->prefix, bl->file_key, path, out, outlen);
    }
    if (rc == CM_OK && !looks_pem(*out, *outlen)) {
        if (path != NULL)
            seterr(set, "%s: %s %s: not PEM data", bl->prefix, bl->file_key, path);
        else
            seterr(set, "%s: %s: not PEM data", bl->prefix, bl->data_key);
        OPENSSL_cleanse(*out, *outlen);
        free(*out);
        *out = NULL;
        *outlen = 0;
        rc = CM_EPARSE;
    }
    free(path);
    return rc;
}

/* Accepts http(s)://host[:port][/path] and stores it without trailing '/'. */
static int set_server(struct kc_set *set, struct hc_kube_target *t, const char *prefix,
                      const char *server)
{
    const char *rest = NULL;
    size_t len;

    if (server == NULL) {
        seterr(set, "%s: server is not set", prefix);
        return CM_ECONFIG;
    }
    if (!cm_str_skip_prefix(server, "https://", &rest))
        (void)cm_str_skip_prefix(server, "http://", &rest);
    for (const char *p = server; rest != NULL && *p != '\0'; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
            rest = NULL;
    }
    if (rest == NULL || rest[0] == '\0' || rest[0] == '/' || rest[0] == ':') {
        seterr(set, "%s: server \"%s\" is not an http:// or https:// URL", prefix, server);
        return CM_ECONFIG;
    }
    len = strlen(server);
    while (len > (size_t)(rest - server) && server[len - 1] == '/')
        len--;
    t->server = strndup(server, len);
    return t->server != NULL ? CM_OK : CM_ENOMEM;
}

static int dup_opt(char **dst, const char *src)
{
    if (src == NULL)
        return CM_OK;
    *dst = strdup(src);
    return *dst != NULL ? CM_OK : CM_ENOMEM;
}

static int fill_cluster(struct kc_set *set, const struct kc_entry *e, struct hc_kube_target *t)
{
    yaml_document_t *doc = &e->file->doc;
    char prefix[HC_KUBECONFIG_ERR_MAX];
    struct kc_blob bl = {prefix, "certificate-authority", "certificate-authority-data"};
    int rc;

    snprintf(prefix, sizeof(prefix), "%s: cluster \"%s\"", e->file->path, t->cluster);
    rc = set_server(set, t, prefix, map_str(doc, e->body, "server"));
    if (rc != CM_OK)
        return rc;
    t->insecure_skip_tls_verify = map_bool(doc, e->body, "insecure-skip-tls-verify");
    rc = load_blob(set, e, &bl, &t->ca_pem, &t->ca_pem_len);
    if (rc != CM_OK)
        return rc;
    if (t->insecure_skip_tls_verify && t->ca_pem != NULL) {
        seterr(set, "%s: insecure-skip-tls-verify and a certificate authority are both set",
               prefix);
        return CM_ECONFIG;
    }
    rc = dup_opt(&t->tls_server_name, map_str(doc, e->body, "tls-server-name"));
    if (rc == CM_OK)
        rc = dup_opt(&t->proxy_url, map_str(doc, e->body, "proxy-url"));
    return rc;
}

static int read_token_file(struct kc_set *set, const char *prefix, struct hc_kube_target *t)
{
    char *buf = NULL;
    size_t len = 0, start = 0;
    int rc = read_ref(set, prefix, "tokenFile", t->token_file, &buf, &len);

    if (rc != CM_OK)
        return rc;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
        len--;
    while (start < len && (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\n'))
        start++;
    if (start == len || memchr(buf + start, '\0', len - start) != NULL) {
        seterr(set, "%s: tokenFile %s: %s", prefix, t->token_file,
               start == len ? "file is empty" : "contains a NUL byte");
        rc = CM_ECONFIG;
    } else {
        t->token = strndup(buf + start, len - start);
        rc = t->token != NULL ? CM_OK : CM_ENOMEM;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

static int fill_credentials(struct kc_set *set, const struct kc_entry *e, const char *prefix,
                            struct hc_kube_target *t)
{
    yaml_document_t *doc = &e->file->doc;
    struct kc_blob cert = {prefix, "client-certificate", "client-certificate-data"};
    struct kc_blob key = {prefix, "client-key", "client-key-data"};
    const char *tok = map_str(doc, e->body, "token");
    const char *tokfile = map_str(doc, e->body, "tokenFile");
    int rc;

    rc = load_blob(set, e, &cert, &t->client_cert_pem, &t->client_cert_pem_len);
    if (rc == CM_OK)
        rc = load_blob(set, e, &key, &t->client_key_pem, &t->client_key_pem_len);
    if (rc != CM_OK)
        return rc;
    if ((t->client_cert_pem == NULL) != (t->client_key_pem == NULL)) {
        seterr(set, "%s: %s is set without %s", prefix,
               t->client_cert_pem != NULL ? "client-certificate" : "client-key",
               t->client_cert_pem != NULL ? "client-key" : "client-certificate");
        return CM_ECONFIG;
    }
    if ((rc = dup_opt(&t->username, map_str(doc, e->body, "username"))) != CM_OK ||
        (rc = dup_opt(&t->password, map_str(doc, e->body, "password"))) != CM_OK)
        return rc;
    if ((tok != NULL || tokfile != NULL) && (t->username != NULL || t->password != NULL)) {
        seterr(set, "%s: more than one authentication method (token and username/password)",
               prefix);
        return CM_ECONFIG;
    }
    if (tok != NULL)
        return dup_opt(&t->token, tok); /* client-go: an inline token beats tokenFile */
    if (tokfile == NULL)
        return CM_OK;
    t->token_file = join_path(e->file->dir, tokfile);
    if (t->token_file == NULL)
        return CM_ENOMEM;
    return read_token_file(set, prefix, t);
}

#define KC_EXEC_ITEMS_MAX 256 /* args, and env pairs */

struct kc_exec_parts {
    const char *args[KC_EXEC_ITEMS_MAX];
    const char *env[2 * KC_EXEC_ITEMS_MAX];
    struct hc_exec_conf c;
    char *command; /* owned, resolved */
};

/* args (strings) and env ({name, value} mappings) of an exec section. */
static int exec_lists(struct kc_set *set, yaml_document_t *doc, yaml_node_t *ex, const char *prefix,
                      struct kc_exec_parts *p)
{
    yaml_node_t *args = map_get(doc, ex, "args"), *env = map_get(doc, ex, "env");

    if (!node_is_null(args)) {
        if (args->type != YAML_SEQUENCE_NODE)
            goto bad_args;
        for (yaml_node_item_t *it = args->data.sequence.items.start;
             it < args->data.sequence.items.top; it++) {
            const char *a = node_str(yaml_document_get_node(doc, *it));

            if (a == NULL || p->c.argc == KC_EXEC_ITEMS_MAX)
                goto bad_args;
            p->args[p->c.argc++] = a;
        }
    }
    if (node_is_null(env))
        return CM_OK;
    if (env->type != YAML_SEQUENCE_NODE)
        goto bad_env;
    for (yaml_node_item_t *it = env->data.sequence.items.start; it < env->data.sequence.items.top;
         it++) {
        yaml_node_t *e = yaml_document_get_node(doc, *it);
        const char *n = map_str(doc, e, "name"), *v = node_str(map_get(doc, e, "value"));

        if (e == NULL || e->type != YAML_MAPPING_NODE || n == NULL || strchr(n, '=') != NULL ||
            p->c.envc == KC_EXEC_ITEMS_MAX)
            goto bad_env;
        p->env[2 * p->c.envc] = n;
        p->env[2 * p->c.envc + 1] = v != NULL && !node_is_null(map_get(doc, e, "value")) ? v : "";
        p->c.envc++;
    }
    return CM_OK;
bad_args:
    seterr(set, "%s: exec: args must be a list of at most %d strings", prefix, KC_EXEC_ITEMS_MAX);
    return CM_ECONFIG;
bad_env:
    seterr(set,
           "%s: exec: env must be a list of at most %d {name, value} entries (name without '=')",
           prefix, KC_EXEC_ITEMS_MAX);
    return CM_ECONFIG;
}

static int exec_mode(struct kc_set *set, yaml_document_t *doc, yaml_node_t *ex, const char *prefix,
                     struct hc_exec_conf *c)
{
    const char *mode = map_str(doc, ex, "interactiveMode");

    if (mode == NULL && strcmp(c->api_version, "client.authentication.k8s.io/v1") == 0) {
        seterr(set,
               "%s: exec: interactiveMode must be specified for %s to use exec "
               "authentication plugin",
               prefix, c->command);
        return CM_ECONFIG;
    }
    if (mode == NULL || strcmp(mode, "IfAvailable") == 0) {
        c->interactive = HC_EXEC_IF_AVAILABLE;
    } else if (strcmp(mode, "Never") == 0) {
        c->interactive = HC_EXEC_NEVER;
    } else if (strcmp(mode, "Always") == 0) {
        seterr(set,
               "%s: exec: interactiveMode Always needs a terminal for %s, and fedgslb-health "
               "runs without one (use Never or IfAvailable)",
               prefix, c->command);
        return CM_ENOTSUP;
    } else {
        seterr(set, "%s: exec: invalid interactiveMode \"%.32s\" (Never, IfAvailable or Always)",
               prefix, mode);
        return CM_ECONFIG;
    }
    return CM_OK;
}

/* The exec section, as client-go's exec authenticator reads it. */
static int fill_exec(struct kc_set *set, const struct kc_entry *e, yaml_node_t *ex,
                     const char *prefix, struct hc_kube_target *t)
{
    yaml_document_t *doc = &e->file->doc;
    struct kc_exec_parts *p = calloc(1, sizeof(*p));
    const char *cmd = map_str(doc, ex, "command");
    int rc;

    if (p == NULL)
        return CM_ENOMEM;
    p->c.api_version = map_str(doc, ex, "apiVersion");
    if (cmd == NULL || p->c.api_version == NULL) {
        seterr(set, "%s: exec: %s is required", prefix, cmd == NULL ? "command" : "apiVersion");
        rc = CM_ECONFIG;
        goto out;
    }
    if (strcmp(p->c.api_version, "client.authentication.k8s.io/v1") != 0 &&
        strcmp(p->c.api_version, "client.authentication.k8s.io/v1beta1") != 0) {
        seterr(set, "%s: exec plugin: invalid apiVersion \"%.80s\"", prefix, p->c.api_version);
        rc = CM_ECONFIG;
        goto out;
    }
    /* client-go: a relative command with a path separator is relative to the file. */
    p->command = strchr(cmd, '/') != NULL ? join_path(e->file->dir, cmd) : strdup(cmd);
    if (p->command == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    p->c.command = p->command;
    p->c.context = t->context;
    p->c.install_hint = map_str(doc, ex, "installHint");
    p->c.provide_cluster_info = map_bool(doc, ex, "provideClusterInfo");
    p->c.args = p->args;
    p->c.env = p->env;
    rc = exec_lists(set, doc, ex, prefix, p);
    if (rc == CM_OK)
        rc = exec_mode(set, doc, ex, prefix, &p->c);
    if (rc == CM_OK) {
        t->exec = hc_exec_new(&p->c, 0);
        rc = t->exec != NULL ? CM_OK : CM_ENOMEM;
    }
out:
    free(p->command);
    free(p);
    return rc;
}

static int fill_user(struct kc_set *set, const struct kc_entry *e, struct hc_kube_target *t)
{
    yaml_document_t *doc = &e->file->doc;
    char prefix[HC_KUBECONFIG_ERR_MAX];
    yaml_node_t *ex = map_get(doc, e->body, "exec");
    int rc;

    snprintf(prefix, sizeof(prefix), "%s: context \"%s\": user \"%s\"", e->file->path, t->context,
             t->user);
    if (!node_is_null(map_get(doc, e->body, "auth-provider"))) {
        seterr(set,
               "%s: not supported: context %s uses an auth-provider plugin (removed from "
               "kubectl; use an exec credential plugin such as kubelogin or "
               "gke-gcloud-auth-plugin)",
               prefix, t->context);
        return CM_ENOTSUP;
    }
    rc = fill_credentials(set, e, prefix, t);
    if (rc != CM_OK || node_is_null(ex))
        return rc;
    if (t->token != NULL || t->username != NULL) {
        seterr(set, "%s: more than one authentication method (exec and %s)", prefix,
               t->token != NULL ? "token" : "username/password");
        return CM_ECONFIG;
    }
    return fill_exec(set, e, ex, prefix, t);
}

static const char *pick_context(struct kc_set *set, const char *context)
{
    if (context != NULL && context[0] != '\0')
        return context;
    for (size_t i = 0; i < set->count; i++) {
        if (set->files[i].current_context != NULL)
            return set->files[i].current_context;
    }
    return NULL;
}

/* Finds the context, its cluster and user, and copies the names into @t. */
static int resolve_names(struct kc_set *set, const char *name, struct hc_kube_target *t,
                         struct kc_entry *cl, struct kc_entry *us)
{
    struct kc_entry ctx;
    const char *cname, *uname;

    if (!find_entry(set, KC_CONTEXTS, name, &ctx)) {
        seterr(set, "%s: context \"%s\" not found", set->label, name);
        return CM_ECONFIG;
    }
    cname = map_str(&ctx.file->doc, ctx.body, "cluster");
    uname = map_str(&ctx.file->doc, ctx.body, "user");
    if (cname == NULL) {
        seterr(set, "%s: context \"%s\": no cluster set", ctx.file->path, name);
        return CM_ECONFIG;
    }
    if (!find_entry(set, KC_CLUSTERS, cname, cl)) {
        seterr(set, "%s: context \"%s\": cluster \"%s\" not found", ctx.file->path, name, cname);
        return CM_ECONFIG;
    }
    us->file = NULL;
    us->body = NULL;
    if (uname != NULL && !find_entry(set, KC_USERS, uname, us)) {
        seterr(set, "%s: context \"%s\": user \"%s\" not found", ctx.file->path, name, uname);
        return CM_ECONFIG;
    }
    t->context = strdup(name);
    t->cluster = strdup(cname);
    t->user = uname != NULL ? strdup(uname) : NULL;
    if (t->context == NULL || t->cluster == NULL || (uname != NULL && t->user == NULL))
        return CM_ENOMEM;
    return dup_opt(&t->namespace_, map_str(&ctx.file->doc, ctx.body, "namespace"));
}

static int resolve(struct kc_set *set, const char *context, struct hc_kube_target **out)
{
    struct hc_kube_target *t = calloc(1, sizeof(*t));
    struct kc_entry cl, us;
    const char *name = pick_context(set, context);
    int rc;

    if (t == NULL)
        return CM_ENOMEM;
    if (name == NULL) {
        seterr(set, "%s: no context given and current-context is not set", set->label);
        rc = CM_ECONFIG;
        goto out;
    }
    rc = resolve_names(set, name, t, &cl, &us);
    if (rc == CM_OK)
        rc = fill_cluster(set, &cl, t);
    if (rc == CM_OK && us.file != NULL)
        rc = fill_user(set, &us, t);
    if (rc == CM_OK) {
        *out = t;
        t = NULL;
    }
out:
    hc_kube_target_free(t);
    return rc;
}

/* ---- public ------------------------------------------------------------------ */

static void set_init(struct kc_set *set, const char *label, unsigned flags, char *err,
                     size_t errlen)
{
    memset(set, 0, sizeof(*set));
    set->label = label;
    set->flags = flags;
    set->err = err;
    set->errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
}

static void set_free(struct kc_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++)
        file_fini(&set->files[i]);
    free(set);
}

static void fill_nomem(struct kc_set *set, int rc)
{
    if (rc == CM_ENOMEM && set->err != NULL && set->errlen > 0 && set->err[0] == '\0')
        seterr(set, "%s: out of memory", set->label);
}

int hc_kubeconfig_load(const char *paths, const char *context, struct hc_kube_target **out,
                       char *err, size_t errlen)
{
    struct kc_set *set = malloc(sizeof(*set));
    const char *p = paths;
    size_t found = 0;
    int rc = CM_OK;

    *out = NULL;
    if (set == NULL)
        return CM_ENOMEM;
    set_init(set, paths != NULL ? paths : "", 0, err, errlen);
    while (p != NULL && *p != '\0' && rc == CM_OK) {
        const char *end = strchr(p, ':');
        size_t plen = end != NULL ? (size_t)(end - p) : strlen(p);
        bool skipped = false;

        if (plen > 0) {
            rc = load_one(set, p, plen, &skipped);
            found += rc == CM_OK && !skipped;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    if (rc == CM_OK && found == 0) {
        seterr(set, "%s: no kubeconfig file found", set->label);
        rc = CM_ENOENT;
    }
    if (rc == CM_OK)
        rc = resolve(set, context, out);
    fill_nomem(set, rc);
    set_free(set);
    return rc;
}

int hc_kubeconfig_load_mem(const char *name, const char *data, size_t len, const char *context,
                           unsigned flags, struct hc_kube_target **out, char *err, size_t errlen)
{
    struct kc_set *set = malloc(sizeof(*set));
    struct kc_file *f = NULL;
    int rc;

    *out = NULL;
    if (set == NULL)
        return CM_ENOMEM;
    set_init(set, name, flags, err, errlen);
    rc = add_file(set, name, strlen(name), &f);
    if (rc == CM_OK)
        rc = load_mem_into(set, f, data, len);
    if (rc == CM_OK)
        rc = resolve(set, context, out);
    fill_nomem(set, rc);
    set_free(set);
    return rc;
}

static void wipe_free(char *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

void hc_kube_target_free(struct hc_kube_target *t)
{
    if (t == NULL)
        return;
    wipe_free(t->token, t->token != NULL ? strlen(t->token) : 0);
    wipe_free(t->password, t->password != NULL ? strlen(t->password) : 0);
    wipe_free(t->client_key_pem, t->client_key_pem_len);
    wipe_free(t->client_cert_pem, t->client_cert_pem_len);
    wipe_free(t->username, t->username != NULL ? strlen(t->username) : 0);
    free(t->context);
    free(t->cluster);
    free(t->user);
    free(t->server);
    free(t->namespace_);
    free(t->ca_pem);
    free(t->tls_server_name);
    free(t->proxy_url);
    free(t->token_file);
    hc_exec_free(t->exec);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    if (a == NULL || b == NULL)
        return a == b;
    return alen == blen && memcmp(a, b, alen) == 0;
}

static bool same_str(const char *a, const char *b)
{
    return same_bytes(a, a != NULL ? strlen(a) : 0, b, b != NULL ? strlen(b) : 0);
}

bool hc_kube_target_same(const struct hc_kube_target *a, const struct hc_kube_target *b)
{
    return same_str(a->server, b->server) &&
           same_bytes(a->ca_pem, a->ca_pem_len, b->ca_pem, b->ca_pem_len) &&
           a->insecure_skip_tls_verify == b->insecure_skip_tls_verify &&
           same_str(a->tls_server_name, b->tls_server_name) &&
           same_str(a->proxy_url, b->proxy_url) && same_str(a->token, b->token) &&
           same_bytes(a->client_cert_pem, a->client_cert_pem_len, b->client_cert_pem,
                      b->client_cert_pem_len) &&
           same_bytes(a->client_key_pem, a->client_key_pem_len, b->client_key_pem,
                      b->client_key_pem_len) &&
           same_str(a->username, b->username) && same_str(a->password, b->password) &&
           same_str(a->token_file, b->token_file) && hc_exec_same(a->exec, b->exec);
}

/* @len bytes and a NUL; NULL stays NULL. False on ENOMEM. */
static bool copy_bytes(const char *src, size_t len, char **dst)
{
    *dst = NULL;
    if (src == NULL)
        return true;
    *dst = malloc(len + 1);
    if (*dst == NULL)
        return false;
    memcpy(*dst, src, len);
    (*dst)[len] = '\0';
    return true;
}

static bool copy_str(const char *src, char **dst)
{
    return copy_bytes(src, src != NULL ? strlen(src) : 0, dst);
}

struct hc_kube_target *hc_kube_target_copy(const struct hc_kube_target *t)
{
    struct hc_kube_target *c;
    bool ok;

    if (t->exec != NULL)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->ca_pem_len = t->ca_pem_len;
    c->client_cert_pem_len = t->client_cert_pem_len;
    c->client_key_pem_len = t->client_key_pem_len;
    c->insecure_skip_tls_verify = t->insecure_skip_tls_verify;
    ok = copy_str(t->context, &c->context) && copy_str(t->cluster, &c->cluster) &&
         copy_str(t->user, &c->user) && copy_str(t->server, &c->server) &&
         copy_str(t->namespace_, &c->namespace_) &&
         copy_bytes(t->ca_pem, t->ca_pem_len, &c->ca_pem) &&
         copy_str(t->tls_server_name, &c->tls_server_name) &&
         copy_str(t->proxy_url, &c->proxy_url) && copy_str(t->token, &c->token) &&
         copy_str(t->token_file, &c->token_file) &&
         copy_bytes(t->client_cert_pem, t->client_cert_pem_len, &c->client_cert_pem) &&
         copy_bytes(t->client_key_pem, t->client_key_pem_len, &c->client_key_pem) &&
         copy_str(t->username, &c->username) && copy_str(t->password, &c->password);
    if (!ok) {
        hc_kube_target_free(c);
        return NULL;
    }
    return c;
}
