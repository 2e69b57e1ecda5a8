/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_jscan.h -- a pull reader over JSON text (RFC 8259) that allocates
 * nothing: the caller walks objects and arrays, reads the values it wants
 * and skips the rest, every byte checked either way. For hot paths where
 * building a jansson tree per message costs more than the work done on it
 * (fedgslb-health reads every Kubernetes watch event; a tree of one
 * EndpointSlice costs ~20 us, walking it here a few).
 *
 * It accepts exactly what jansson's json_loadb() accepts (top level an
 * object or an array; strict UTF-8; no control characters or \u0000 in
 * strings; paired surrogates; integers within int64_t and reals within
 * double; nesting at most CM_JSCAN_DEPTH_MAX), tests/fuzz/fuzz_cm_jscan
 * checking it against jansson. Duplicate keys are not looked for: a caller
 * that reads an object rejects the keys it reads twice.
 *
 *   cm_jscan_init(&s, text, len);
 *   if (cm_jscan_enter(&s, CM_JOBJECT))
 *       while (cm_jscan_key(&s, &key))
 *           if (cm_jstr_is(&key, "name")) cm_jscan_string(&s, &name);
 *           else cm_jscan_skip(&s);
 *   if (!cm_jscan_end(&s)) ... s.why, s.err_off
 *
 * After the first error every call fails (returns false / CM_JNONE), so a
 * walk may check once at the end. Single-threaded per scanner; the text is
 * borrowed and must outlive the scanner and every cm_jstr taken from it.
 */
#ifndef COMMON_CM_JSCAN_H
#define COMMON_CM_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CM_JSCAN_DEPTH_MAX 2048 /* jansson's JSON_PARSER_MAX_DEPTH */

enum cm_jtype {
    CM_JNONE = 0, /* end of text, or after an error */
    CM_JOBJECT = 1,
    CM_JARRAY = 2,
    CM_JSTRING = 3,
    CM_JNUMBER = 4, /* an integer or a real */
    CM_JTRUE = 5,
    CM_JFALSE = 6,
    CM_JNULL = 7,
};

struct cm_jscan {
    const char *start, *p, *end; /* borrowed text; p is the cursor */
    unsigned depth;              /* containers entered and not left */
    bool opened;                 /* the last token read was '{' or '[': no ',' due */
    bool begun;                  /* the top-level value was started */
    int err;                     /* CM_OK, or the first failure (CM_EPARSE, CM_ENOMEM) */
    const char *why;             /* a static reason for err, or NULL */
    size_t err_off;              /* byte offset of the failure */
};

/* A string or key as it stands in the text, without the quotes; checked
 * already, escapes not decoded (cm_jstr_copy/dup do that). */
struct cm_jstr {
    const char *p;
    size_t len;
    bool escaped; /* has a backslash escape */
};

void cm_jscan_init(struct cm_jscan *s, const char *text, size_t len);

/** The type of the next value (whitespace skipped), nothing consumed. */
enum cm_jtype cm_jscan_peek(struct cm_jscan *s);

/** Consumes '{' (@t CM_JOBJECT) or '[' (CM_JARRAY); false (an error) when the
 * next value is something else. */
bool cm_jscan_enter(struct cm_jscan *s, enum cm_jtype t);
/** In an object: the next member's key (and its ':'), the value to be read or
 * skipped next; false at the closing '}' (consumed) or on an error. */
bool cm_jscan_key(struct cm_jscan *s, struct cm_jstr *key);
/** In an array: true before each element, false at the closing ']' (consumed)
 * or on an error. */
bool cm_jscan_item(struct cm_jscan *s);

/** Consumes any value, checked. */
bool cm_jscan_skip(struct cm_jscan *s);
/** Consumes a string value (an error if the next value is not one). */
bool cm_jscan_string(struct cm_jscan *s, struct cm_jstr *out);
/**
 * Consumes a number; *out and *is_int set for an integer (no fraction or
 * exponent), *is_int false for a real (*out 0). An error if the next value
 * is not a number.
 */
bool cm_jscan_number(struct cm_jscan *s, int64_t *out, bool *is_int);
/** Consumes true or false (an error for anything else). */
bool cm_jscan_bool(struct cm_jscan *s, bool *out);

/** True when the text held one value and nothing but whitespace after it. */
bool cm_jscan_end(struct cm_jscan *s);

/** Makes @s fail with @why at the cursor (a value of the wrong kind for the caller). */
bool cm_jscan_fail(struct cm_jscan *s, const char *why);

/** cm_jstr_is() for a string with escapes. */
bool cm_jstr_is_escaped(const struct cm_jstr *j, const char *lit);

/** Whether @j, decoded, is the NUL-free string @lit (inline: with a literal
 * @lit the length is a constant and the compare a few instructions). */
static inline bool cm_jstr_is(const struct cm_jstr *j, const char *lit)
{
    if (j->escaped)
        return cm_jstr_is_escaped(j, lit);
    return strlen(lit) == j->len && memcmp(j->p, lit, j->len) == 0;
}
/** @j decoded (UTF-8) into a new NUL-terminated string; NULL on ENOMEM. */
char *cm_jstr_dup(const struct cm_jstr *j);
/** @j decoded into @buf, which holds j->len + 1 bytes (decoding never
 * lengthens), NUL-terminated; returns the decoded length. */
size_t cm_jstr_copy(const struct cm_jstr *j, char *buf);

#endif /* COMMON_CM_JSCAN_H */
