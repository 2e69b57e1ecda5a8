/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf_doc.c -- the configuration reference (docs/configuration.md),
 * generated from the schema tables of cm_conf_schema.c: every key with its
 * type, default, range and meaning.
 *
 * Types, defaults and ranges come from the tables themselves, so they cannot
 * drift from what the loader does. Meanings are kept here, by JSON path, away
 * from the tables: a key without a meaning, or a meaning for a key the tables
 * do not have, makes cm_conf_reference() fail (and the check that compares
 * docs/configuration.md with fedgslbctl's output fails with it).
 */
#include "common/cm_conf.h"

#include <stdio.h>
#include <string.h>

#include "common/cm_conf_schema.h"
#include "common/cm_err.h"
#include "common/cm_str.h"

struct key_doc {
    const char *path; /* "dnsd.control.listen"; map entries are "*", array elements "[]" */
    const char *text;
};

#include "common/cm_conf_doc.inc"

#define DOC_COUNT (sizeof(key_docs) / sizeof(key_docs[0]))

#define SHARED_MAX 48 /* object sub-schemas, of which some are used in several places */

/* A sub-schema and where it is used; one used twice or more is documented once. */
struct shared {
    const struct cm_conf_schema *schema;
    const char *name; /* the schema's doc_name, else the key of its first use ("control") */
    char uses[512];   /* "dnsd.control, health.control, ..." */
    size_t count;
};

struct walk {
    struct cm_buf *out;
    struct cm_buf *missing; /* paths without a meaning, one per line */
    bool used[DOC_COUNT];   /* meanings found in the tables */
    struct shared shared[SHARED_MAX];
    size_t shared_count;
};

static const char *meaning(struct walk *w, const char *path)
{
    for (size_t i = 0; i < DOC_COUNT; i++) {
        if (strcmp(key_docs[i].path, path) == 0) {
            w->used[i] = true;
            return key_docs[i].text;
        }
    }
    cm_buf_printf(w->missing, "no meaning for key: %s\n", path);
    return "";
}

static const char *type_name(const struct cm_conf_item *it, enum cm_conf_type t)
{
    static const char *const refs[] = {"region name", "member name", "service key"};

    switch (t) {
    case CM_CONF_STR:
        return "string";
    case CM_CONF_LABEL:
        return "DNS label";
    case CM_CONF_DOMAIN:
        return "domain name";
    case CM_CONF_IP:
        return "IP address";
    case CM_CONF_UINT:
    case CM_CONF_U16:
        return "integer";
    case CM_CONF_BOOL:
        return "boolean";
    case CM_CONF_ENUM:
        return "string";
    case CM_CONF_ADDR:
        return "\"ip:port\"";
    case CM_CONF_REF:
        return refs[it->ref];
    case CM_CONF_OBJECT:
        return "object";
    case CM_CONF_ARRAY:
        return "array";
    case CM_CONF_MAP:
        return "object of name -> object";
    case CM_CONF_CUSTOM:
        return "see meaning";
    }
    return "?";
}

/* What the loader does when the key is absent: a default, required, or nothing. */
static void default_text(const struct cm_conf_item *it, struct cm_buf *b)
{
    if (it->required) {
        cm_buf_append_str(b, it->by_instance ? "required (or from the instance)" : "required");
        return;
    }
    switch (it->type) {
    case CM_CONF_UINT:
    case CM_CONF_U16:
        cm_buf_printf(b, "%u", it->def_uint);
        break;
    case CM_CONF_BOOL:
        cm_buf_append_str(b, it->def_bool ? "true" : "false");
        break;
    case CM_CONF_ENUM:
        cm_buf_printf(b, "\"%s\"", it->names[it->def_uint]);
        break;
    case CM_CONF_ARRAY:
        if (it->def_str != NULL)
            cm_buf_printf(b, "[\"%s\"]", it->def_str);
        else
            cm_buf_append_str(b, "[]");
        break;
    default:
        if (it->def_str != NULL)
            cm_buf_printf(b, "\"%s\"", it->def_str);
        else
            cm_buf_append_str(b, "-");
    }
}

/* Allowed values beyond the type: a range, a list of names, element counts. */
static void range_text(const struct cm_conf_item *it, struct cm_buf *b)
{
    switch (it->type) {
    case CM_CONF_UINT:
    case CM_CONF_U16:
        cm_buf_printf(b, "%u..%u", it->min, it->max);
        break;
    case CM_CONF_ENUM:
        for (size_t i = 0; it->names[i] != NULL; i++)
            cm_buf_printf(b, "%s`%s`", i > 0 ? ", " : "", it->names[i]);
        break;
    case CM_CONF_ARRAY:
    case CM_CONF_MAP:
        if (it->max > 0)
            cm_buf_printf(b, "%u..%u entries", it->min, it->max);
        else if (it->min > 0)
            cm_buf_printf(b, "at least %u", it->min);
        break;
    default:
        break;
    }
}

static void walk_schema(struct walk *w, const struct cm_conf_schema *s, const char *prefix);

static void row(struct walk *w, const struct cm_conf_item *it, const char *path)
{
    struct cm_buf def, range;
    const char *type = type_name(it, it->type);
    char typebuf[64];

    cm_buf_init(&def, 256);
    cm_buf_init(&range, 512);
    default_text(it, &def);
    range_text(it, &range);
    if (it->type == CM_CONF_ARRAY && it->elem_type != CM_CONF_OBJECT) {
        snprintf(typebuf, sizeof(typebuf), "array of %s", type_name(it, it->elem_type));
        type = typebuf;
    } else if (it->type == CM_CONF_ARRAY) {
        type = "array of objects";
    }
    cm_buf_printf(w->out, "| `%s` | %s | %s | %s | %s |\n", path, type, cm_buf_cstr(&def),
                  cm_buf_cstr(&range), meaning(w, path));
    cm_buf_fini(&range);
    cm_buf_fini(&def);
}

static struct shared *shared_find(struct walk *w, const struct cm_conf_schema *s)
{
    for (size_t i = 0; i < w->shared_count; i++) {
        if (w->shared[i].schema == s)
            return &w->shared[i];
    }
    return NULL;
}

/* Counts where each object sub-schema is used (map and array entries are not shared). */
static void count_uses(struct walk *w, const struct cm_conf_schema *s, const char *prefix)
{
    for (size_t i = 0; i < s->count; i++) {
        const struct cm_conf_item *it = &s->items[i];
        char path[CM_CONF_PATH_MAX];
        struct shared *sh;
        bool seen;
        size_t n;

        if (it->sub == NULL)
            continue;
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", it->key);
        sh = it->type == CM_CONF_OBJECT ? shared_find(w, it->sub) : NULL;
        seen = sh != NULL;
        if (sh == NULL && it->type == CM_CONF_OBJECT && w->shared_count < SHARED_MAX) {
            sh = &w->shared[w->shared_count++];
            sh->schema = it->sub;
            sh->name = it->sub->doc_name != NULL ? it->sub->doc_name : it->key;
        }
        if (sh != NULL) {
            n = strlen(sh->uses);
            snprintf(sh->uses + n, sizeof(sh->uses) - n, "%s`%s`", n > 0 ? ", " : "", path);
            sh->count++;
        }
        if (!seen) /* what is inside a shared object counts once */
            count_uses(w, it->sub, path);
    }
}

static bool is_shared(struct walk *w, const struct cm_conf_item *it)
{
    const struct shared *sh = it->type == CM_CONF_OBJECT ? shared_find(w, it->sub) : NULL;

    return sh != NULL && sh->count > 1;
}

static void walk_schema(struct walk *w, const struct cm_conf_schema *s, const char *prefix)
{
    for (size_t i = 0; i < s->count; i++) {
        const struct cm_conf_item *it = &s->items[i];
        char path[CM_CONF_PATH_MAX], sub[CM_CONF_PATH_MAX + 3];

        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", it->key);
        if (is_shared(w, it)) {
            const struct shared *sh = shared_find(w, it->sub);

            cm_buf_printf(w->out, "| `%s` | `%s` object (below) | - | | %s |\n", path, sh->name,
                          meaning(w, path));
            continue;
        }
        row(w, it, path);
        if (it->sub == NULL)
            continue;
        if (it->type == CM_CONF_MAP)
            snprintf(sub, sizeof(sub), "%s.*", path);
        else if (it->type == CM_CONF_ARRAY)
            snprintf(sub, sizeof(sub), "%s[]", path);
        else
            snprintf(sub, sizeof(sub), "%s", path);
        walk_schema(w, it->sub, sub);
    }
}

static const char table_head[] = "| key | type | default | allowed | meaning |\n"
                                 "| --- | --- | --- | --- | --- |\n";

int cm_conf_reference(struct cm_buf *out, struct cm_buf *problems)
{
    struct walk w = {.out = out, .missing = problems};

    count_uses(&w, &cm_conf_root_schema, "");
    cm_buf_append_str(out, "# Configuration reference\n\n"
                           "<!-- Generated by `fedgslbctl config-reference` from the schema tables "
                           "(common/cm_conf_schema.c) and the meanings in "
                           "common/cm_conf_doc.inc; the suite fails when this file differs. -->\n\n"
                           "One JSON file describes the federation and is read by every "
                           "program; each takes its own section. `*` stands for a name "
                           "(a map key), `[]` for an array element. A JSON `null` means the "
                           "default. Unknown keys are errors, named with their JSON path.\n\n");
    cm_buf_append_str(out, table_head);
    walk_schema(&w, &cm_conf_root_schema, "");
    for (size_t i = 0; i < w.shared_count; i++) {
        const struct shared *sh = &w.shared[i];

        if (sh->count < 2)
            continue;
        cm_buf_printf(out, "\n## `%s` objects\n\nUsed as %s.\n\n", sh->name, sh->uses);
        cm_buf_append_str(out, table_head);
        walk_schema(&w, sh->schema, sh->name);
    }
    for (size_t i = 0; i < DOC_COUNT; i++) {
        if (!w.used[i])
            cm_buf_printf(problems, "meaning for a key the schema does not have: %s\n",
                          key_docs[i].path);
    }
    return problems->len == 0 ? CM_OK : CM_ECONFIG;
}
