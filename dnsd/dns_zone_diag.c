/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_zone_diag.c -- explaining zone file syntax errors (see dns_zone_diag.h).
 *
 * The record's text is split into tokens the way the master file format
 * does (RFC 1035 §5.1: blanks separate, ";" starts a comment, parentheses
 * group lines, quotes make one token), then each RDATA token is checked
 * against the field ldns expects at its position (ldns_rr_descriptor).
 */
#include "dnsd/dns_zone_diag.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <ldns/ldns.h>

#define TOK_MAX  64  /* tokens looked at per record */
#define TOK_TEXT 256 /* characters kept per token */

struct tok {
    char text[TOK_TEXT]; /* quotes removed */
    int line;
    bool quoted;
};

int dns_zone_diag_parens(const char *text, size_t len, char *msg, size_t cap)
{
    int line = 1, open_line = 0;
    bool quoted = false, comment = false;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (c == '\n') {
            line++;
            comment = false;
            continue;
        }
        if (comment)
            continue;
        if (quoted) {
            if (c == '\\' && i + 1 < len && text[i + 1] != '\n')
                i++;
            else if (c == '"')
                quoted = false;
            continue;
        }
        if (c == '\\' && i + 1 < len && text[i + 1] != '\n') {
            i++;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ';') {
            comment = true;
        } else if (c == '(') {
            if (open_line != 0) {
                snprintf(msg, cap,
                         "unbalanced parentheses: \"(\" inside the \"(\" opened on line %d",
                         open_line);
                return line;
            }
            open_line = line;
        } else if (c == ')') {
            if (open_line == 0) {
                snprintf(msg, cap, "unbalanced parentheses: \")\" without a \"(\" before it");
                return line;
            }
            open_line = 0;
        }
    }
    if (open_line != 0) {
        snprintf(msg, cap, "unbalanced parentheses: \"(\" opened here is never closed");
        return open_line;
    }
    return 0;
}

/* Offset of the start of 1-based line @n in @text, or @len. */
static size_t line_start(const char *text, size_t len, int n)
{
    size_t i = 0;

    for (int l = 1; l < n && i < len; i++) {
        if (text[i] == '\n')
            l++;
    }
    return i;
}

/* Splits lines [@first, @last] into tokens; returns their count. *@blank_start: the
 * record's first line (the first with a token) starts with a blank (no owner). */
static size_t tokenize(const char *text, size_t len, int first, int last, struct tok *toks,
                       bool *blank_start)
{
    size_t i = line_start(text, len, first), n = 0, k = 0;
    int line = first;
    bool in_tok = false, quoted = false, comment = false, line_blank = false;

    *blank_start = false;
    for (; i < len && line <= last && n < TOK_MAX; i++) {
        char c = text[i];
        bool sep = !quoted && (c == ' ' || c == '\t' || c == '(' || c == ')' || c == '\r');

        if (c == '\n' || (!quoted && c == ';') || sep) {
            if (in_tok) {
                toks[n].text[k] = '\0';
                n++;
                in_tok = false;
            }
            if (c == '\n') {
                line++;
                comment = false;
                line_blank = false;
            } else if (c == ';') {
                comment = true;
            } else {
                line_blank = true;
            }
            continue;
        }
        if (comment)
            continue;
        if (!in_tok) {
            if (n == 0)
                *blank_start = line_blank; /* no owner: the previous record's */
            in_tok = true;
            k = 0;
            toks[n].line = line;
            toks[n].quoted = false;
        }
        if (c == '"') {
            quoted = !quoted;
            toks[n].quoted = true;
            continue;
        }
        if (k + 1 < TOK_TEXT)
            toks[n].text[k++] = c;
    }
    if (in_tok && n < TOK_MAX) {
        toks[n].text[k] = '\0';
        n++;
    }
    return n;
}

static bool is_class(const char *s)
{
    return strcasecmp(s, "IN") == 0 || strcasecmp(s, "CH") == 0 || strcasecmp(s, "HS") == 0 ||
           strcasecmp(s, "CS") == 0;
}

static bool is_ttl(const char *s)
{
    return isdigit((unsigned char)s[0]) && strspn(s, "0123456789sSmMhHdDwW") == strlen(s);
}

static const char *field_kind(ldns_rdf_type t)
{
    switch (t) {
    case LDNS_RDF_TYPE_A:
        return "an IPv4 address";
    case LDNS_RDF_TYPE_AAAA:
        return "an IPv6 address";
    case LDNS_RDF_TYPE_DNAME:
        return "a domain name";
    case LDNS_RDF_TYPE_INT8:
        return "a number from 0 to 255";
    case LDNS_RDF_TYPE_INT16:
        return "a number from 0 to 65535";
    case LDNS_RDF_TYPE_INT32:
        return "a number from 0 to 4294967295";
    case LDNS_RDF_TYPE_PERIOD:
        return "a time in seconds (or like 1h30m)";
    case LDNS_RDF_TYPE_STR:
        return "a character string of at most 255 bytes";
    default:
        return "a valid field";
    }
}

/* Does @s parse as a field of type @t? INT fields are range-checked here (ldns wraps). */
static bool field_ok(ldns_rdf_type t, const char *s)
{
    unsigned long long max = t == LDNS_RDF_TYPE_INT8    ? 0xFF
                             : t == LDNS_RDF_TYPE_INT16 ? 0xFFFF
                             : t == LDNS_RDF_TYPE_INT32 ? 0xFFFFFFFFULL
                                                        : 0;
    ldns_rdf *rdf;

    if (max != 0) {
        char *end = NULL;
        unsigned long long v;

        if (!isdigit((unsigned char)s[0]))
            return false;
        v = strtoull(s, &end, 10);
        return *end == '\0' && v <= max;
    }
    if (t != LDNS_RDF_TYPE_A && t != LDNS_RDF_TYPE_AAAA && t != LDNS_RDF_TYPE_DNAME &&
        t != LDNS_RDF_TYPE_PERIOD && t != LDNS_RDF_TYPE_STR)
        return true; /* not judged here: ldns's own message stands (and some of its parsers
                        leak on bad input, e.g. CERT's algorithm) */
    rdf = ldns_rdf_new_frm_str(t, s);
    if (rdf == NULL)
        return false;
    ldns_rdf_deep_free(rdf);
    return true;
}

static void owner_text(const char *tok, const char *origin, char *buf, size_t cap)
{
    size_t n = strlen(tok);

    if (strcmp(tok, "@") == 0)
        snprintf(buf, cap, "%s", origin);
    else if (n > 0 && tok[n - 1] == '.')
        snprintf(buf, cap, "%s", tok);
    else
        snprintf(buf, cap, "%s.%s", tok, strcmp(origin, ".") == 0 ? "" : origin);
}

int dns_zone_diag_rr(const char *text, size_t len, int first, int last, const char *prev_owner,
                     const char *origin, char *msg, size_t cap)
{
    struct tok toks[TOK_MAX]; /* 17 KB: load time, main thread */
    const ldns_rr_descriptor *d;
    char owner[TOK_TEXT + 256];
    ldns_rr_type type;
    size_t n, i = 0, fmin, fmax;
    bool blank;
    const char *tname;

    n = tokenize(text, len, first, last, toks, &blank);
    if (n == 0 || toks[0].text[0] == '$')
        return 0;
    if (blank) {
        snprintf(owner, sizeof(owner), "%s", prev_owner);
    } else {
        owner_text(toks[0].text, origin, owner, sizeof(owner));
        i = 1;
    }
    while (i < n && (is_class(toks[i].text) || is_ttl(toks[i].text)))
        i++;
    if (i == n) {
        snprintf(msg, cap, "record of %s has no type", owner);
        return toks[n - 1].line;
    }
    tname = toks[i].text;
    type = ldns_get_rr_type_by_name(tname);
    if (type == 0) {
        snprintf(msg, cap, "\"%s\" is not a record type (record of %s)", tname, owner);
        return toks[i].line;
    }
    d = ldns_rr_descript(type);
    if (d == NULL)
        return 0;
    if (i + 1 < n && strcmp(toks[i + 1].text, "\\#") == 0)
        return 0; /* RFC 3597 generic RDATA: ldns's own message is the best we have */
    fmin = ldns_rr_descriptor_minimum(d);
    fmax = ldns_rr_descriptor_maximum(d);
    i++;
    for (size_t f = 0; i + f < n; f++) {
        const struct tok *t = &toks[i + f];
        ldns_rdf_type ft;

        if (f >= fmax) {
            snprintf(msg, cap, "\"%s\": unexpected extra data (%s record of %s takes %zu fields)",
                     t->text, tname, owner, fmax);
            return t->line;
        }
        ft = ldns_rr_descriptor_field_type(d, f);
        if (!field_ok(ft, t->text)) {
            snprintf(msg, cap, "\"%s\" is not %s (%s record of %s)", t->text, field_kind(ft), tname,
                     owner);
            return t->line;
        }
    }
    if (n - i < fmin) {
        snprintf(msg, cap, "%s record of %s: missing %s (field %zu of %zu)", tname, owner,
                 field_kind(ldns_rr_descriptor_field_type(d, n - i)), n - i + 1, fmin);
        return toks[n - 1].line;
    }
    return 0;
}
