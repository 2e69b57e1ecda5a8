/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_jscan.c -- the JSON pull reader (cm_jscan.h): a cursor over the text, a
 * depth count and one flag for the separator due; strings, numbers and
 * UTF-8 checked as jansson checks them (load.c, utf8.c).
 */
#include "common/cm_jscan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"

#define NUM_STACK 128 /* a real's text is copied here for strtod() when it fits */

static bool fail_at(struct cm_jscan *s, const char *at, const char *why)
{
    if (s->err == CM_OK) {
        s->err = CM_EPARSE;
        s->why = why;
        s->err_off = (size_t)(at - s->start);
    }
    s->p = s->end;
    return false;
}

bool cm_jscan_fail(struct cm_jscan *s, const char *why)
{
    return fail_at(s, s->p, why);
}

void cm_jscan_init(struct cm_jscan *s, const char *text, size_t len)
{
    *s = (struct cm_jscan){.start = text, .p = text, .end = text + len};
}

static void ws(struct cm_jscan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

enum cm_jtype cm_jscan_peek(struct cm_jscan *s)
{
    if (s->err != CM_OK)
        return CM_JNONE;
    ws(s);
    if (s->p >= s->end)
        return CM_JNONE;
    switch (*s->p) {
    case '{':
        return CM_JOBJECT;
    case '[':
        return CM_JARRAY;
    case '"':
        return CM_JSTRING;
    case 't':
        return CM_JTRUE;
    case 'f':
        return CM_JFALSE;
    case 'n':
        return CM_JNULL;
    default:
        return *s->p == '-' || (*s->p >= '0' && *s->p <= '9') ? CM_JNUMBER : CM_JNONE;
    }
}

/*
 * The next value may start here: at the top level only one, and that one an
 * object or an array (jansson without JSON_DECODE_ANY). @t is its type.
 */
static bool value_start(struct cm_jscan *s, enum cm_jtype t)
{
    if (s->err != CM_OK)
        return false;
    s->opened = false;
    if (s->depth > 0)
        return true;
    if (s->begun)
        return fail_at(s, s->p, "end of input expected");
    s->begun = true;
    return t == CM_JOBJECT || t == CM_JARRAY || fail_at(s, s->p, "'[' or '{' expected");
}

bool cm_jscan_enter(struct cm_jscan *s, enum cm_jtype t)
{
    enum cm_jtype got = cm_jscan_peek(s);

    if (!value_start(s, got))
        return false;
    if (got != t || (t != CM_JOBJECT && t != CM_JARRAY))
        return fail_at(s, s->p, t == CM_JOBJECT ? "an object expected" : "an array expected");
    if (s->depth + 1 > CM_JSCAN_DEPTH_MAX)
        return fail_at(s, s->p, "maximum parsing depth reached");
    s->p++;
    s->depth++;
    s->opened = true;
    return true;
}

/* ---- strings ---- */

static int hex4(const char *p)
{
    int v = 0;

    for (int i = 0; i < 4; i++) {
        char c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* One \u escape at @q (pointing at the 'u'), a surrogate pair included:
 * the code point, or -1 with s failed. *next: after it. */
static long unicode_escape(struct cm_jscan *s, const char *q, const char **next)
{
    long v, lo;

    if (s->end - q < 5 || (v = hex4(q + 1)) < 0)
        return fail_at(s, q, "invalid \\u escape"), -1;
    q += 5;
    if (v >= 0xDC00 && v <= 0xDFFF)
        return fail_at(s, q, "invalid Unicode: a lone low surrogate"), -1;
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (s->end - q < 6 || q[0] != '\\' || q[1] != 'u' || (lo = hex4(q + 2)) < 0 ||
            lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(s, q, "invalid Unicode: a high surrogate without its low one"), -1;
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        q += 6;
    }
    if (v == 0)
        return fail_at(s, q, "\\u0000 is not allowed"), -1;
    *next = q;
    return v;
}

/* The length of the well-formed UTF-8 sequence at @q (first byte >= 0x80), or 0. */
static size_t utf8_len(const unsigned char *q, const unsigned char *end)
{
    unsigned c = q[0];
    size_t n;
    uint32_t v;

    if (c >= 0xC2 && c <= 0xDF)
        n = 2, v = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, v = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, v = c & 0x07;
    else
        return 0; /* a continuation byte, an overlong C0/C1, or past U+10FFFF */
    if ((size_t)(end - q) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((q[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (q[i] & 0x3F);
    }
    if ((n == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) ||
        (n == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    return n;
}

/* SWAR: the bytes of @w that scan_string() has to look at (control
 * characters, '"', '\\', not ASCII) flagged by their high bit. The usual
 * has-zero-byte tests: the lowest flag is exact (a borrow only rises from a
 * byte flagged rightly), flags above it may be false. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static inline uint64_t special_bytes(uint64_t w)
{
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');

    return (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w) & HIGHS;
}

/* Past the plain bytes at @q (printable ASCII but '"' and '\\'), eight at a time. */
static const char *skip_plain(const char *q, const char *end)
{
    while (end - q >= 8) {
        uint64_t w, hit;

        memcpy(&w, q, sizeof(w));
        hit = special_bytes(w);
        if (hit != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            q += __builtin_ctzll(hit) / 8; /* the first flag is exact */
#endif
            return q;
        }
        q += 8;
    }
    return q;
}

static bool scan_string(struct cm_jscan *s, struct cm_jstr *out)
{
    const char *q = s->p + 1;
    bool escaped = false;

    while (q < s->end) {
        unsigned char c;

        q = skip_plain(q, s->end);
        if (q >= s->end)
            break;
        c = (unsigned char)*q;

        if (c == '"') {
            *out =
                (struct cm_jstr){.p = s->p + 1, .len = (size_t)(q - s->p - 1), .escaped = escaped};
            s->p = q + 1;
            return true;
        }
        if (c == '\\') {
            escaped = true;
            if (q + 1 >= s->end)
                break;
            if (q[1] == 'u') {
                if (unicode_escape(s, q + 1, &q) < 0)
                    return false;
                continue;
            }
            if (strchr("\"\\/bfnrt", q[1]) == NULL || q[1] == '\0')
                return fail_at(s, q, "invalid escape");
            q += 2;
        } else if (c < 0x20) {
            return fail_at(s, q, "control character in a string");
        } else if (c < 0x80) {
            q++;
        } else {
            size_t n = utf8_len((const unsigned char *)q, (const unsigned char *)s->end);

            if (n == 0)
                return fail_at(s, q, "invalid UTF-8 in a string");
            q += n;
        }
    }
    return fail_at(s, q, "premature end of input in a string");
}

bool cm_jscan_string(struct cm_jscan *s, struct cm_jstr *out)
{
    enum cm_jtype t = cm_jscan_peek(s);

    if (!value_start(s, t))
        return false;
    if (t != CM_JSTRING)
        return fail_at(s, s->p, "a string expected");
    return scan_string(s, out);
}

/* The common start of cm_jscan_key() and cm_jscan_item(): false at @close
 * (consumed: the object or array ends) or on an error, else past the ','
 * before the next member or item. */
static bool next_in(struct cm_jscan *s, char close, const char *not_in, const char *want)
{
    if (s->err != CM_OK)
        return false;
    ws(s);
    if (s->depth == 0)
        return fail_at(s, s->p, not_in);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        s->opened = false;
        return false;
    }
    if (!s->opened) {
        if (s->p >= s->end || *s->p != ',')
            return fail_at(s, s->p, want);
        s->p++;
    }
    s->opened = false;
    return true;
}

bool cm_jscan_key(struct cm_jscan *s, struct cm_jstr *key)
{
    if (!next_in(s, '}', "not in an object", "',' or '}' expected"))
        return false;
    ws(s);
    if (s->p >= s->end || *s->p != '"')
        return fail_at(s, s->p, "an object key expected");
    if (!scan_string(s, key))
        return false;
    ws(s);
    if (s->p >= s->end || *s->p != ':')
        return fail_at(s, s->p, "':' expected");
    s->p++;
    return true;
}

bool cm_jscan_item(struct cm_jscan *s)
{
    return next_in(s, ']', "not in an array", "',' or ']' expected");
}

/* ---- numbers and literals ---- */

/* A real's text: an error only when it overflows a double (jansson's rule). */
static bool check_real(struct cm_jscan *s, const char *b, size_t len)
{
    char stack[NUM_STACK], *buf = len < sizeof(stack) ? stack : malloc(len + 1);
    double v;
    bool ok;

    if (buf == NULL) {
        fail_at(s, b, "out of memory");
        s->err = CM_ENOMEM;
        return false;
    }
    memcpy(buf, b, len);
    buf[len] = '\0';
    errno = 0;
    v = strtod(buf, NULL);
    ok = !((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE);
    if (buf != stack)
        free(buf);
    return ok || fail_at(s, b, "real number overflow");
}

bool cm_jscan_number(struct cm_jscan *s, int64_t *out, bool *is_int)
{
    enum cm_jtype t = cm_jscan_peek(s);
    const char *b = s->p, *q = s->p;
    bool neg = false, real = false;
    uint64_t mag = 0, limit;

    if (!value_start(s, t))
        return false;
    if (t != CM_JNUMBER)
        return fail_at(s, s->p, "a number expected");
    if (*q == '-') {
        neg = true;
        q++;
    }
    if (q >= s->end || *q < '0' || *q > '9')
        return fail_at(s, q, "invalid number");
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (*q == '0') {
        q++;
    } else {
        for (; q < s->end && *q >= '0' && *q <= '9'; q++) {
            unsigned d = (unsigned)(*q - '0');

            if (mag > (limit - d) / 10)
                mag = UINT64_MAX; /* too big for an integer; fine for a real */
            else if (mag != UINT64_MAX)
                mag = mag * 10 + d;
        }
    }
    if (q < s->end && *q == '.') {
        real = true;
        if (++q >= s->end || *q < '0' || *q > '9')
            return fail_at(s, q, "invalid number");
        while (q < s->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < s->end && (*q == 'e' || *q == 'E')) {
        real = true;
        q++;
        if (q < s->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= s->end || *q < '0' || *q > '9')
            return fail_at(s, q, "invalid number");
        while (q < s->end && *q >= '0' && *q <= '9')
            q++;
    }
    s->p = q;
    *is_int = !real;
    *out = 0;
    if (real)
        return check_real(s, b, (size_t)(q - b));
    if (mag == UINT64_MAX)
        return fail_at(s, b, "too big integer");
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return true;
}

static bool literal(struct cm_jscan *s, const char *word)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail_at(s, s->p, "invalid token");
    s->p += n;
    return true;
}

bool cm_jscan_bool(struct cm_jscan *s, bool *out)
{
    enum cm_jtype t = cm_jscan_peek(s);

    if (!value_start(s, t))
        return false;
    *out = t == CM_JTRUE;
    if (t == CM_JTRUE)
        return literal(s, "true");
    if (t == CM_JFALSE)
        return literal(s, "false");
    return fail_at(s, s->p, "true or false expected");
}

bool cm_jscan_skip(struct cm_jscan *s)
{
    enum cm_jtype t = cm_jscan_peek(s);
    struct cm_jstr str;
    int64_t i;
    bool b;

    switch (t) {
    case CM_JOBJECT:
        if (!cm_jscan_enter(s, t))
            return false;
        while (cm_jscan_key(s, &str)) {
            if (!cm_jscan_skip(s))
                return false;
        }
        return s->err == CM_OK;
    case CM_JARRAY:
        if (!cm_jscan_enter(s, t))
            return false;
        while (cm_jscan_item(s)) {
            if (!cm_jscan_skip(s))
                return false;
        }
        return s->err == CM_OK;
    case CM_JSTRING:
        return cm_jscan_string(s, &str);
    case CM_JNUMBER:
        return cm_jscan_number(s, &i, &b);
    case CM_JTRUE:
    case CM_JFALSE:
        return cm_jscan_bool(s, &b);
    case CM_JNULL:
        return value_start(s, t) && literal(s, "null");
    default:
        return s->err == CM_OK &&
               fail_at(s, s->p, s->p < s->end ? "invalid token" : "premature end of input");
    }
}

bool cm_jscan_end(struct cm_jscan *s)
{
    if (s->err != CM_OK)
        return false;
    ws(s);
    if (!s->begun || s->depth > 0)
        return fail_at(s, s->p, s->p < s->end ? "'[' or '{' expected" : "premature end of input");
    if (s->p < s->end)
        return fail_at(s, s->p, "end of input expected");
    return true;
}

/* ---- decoded strings ---- */

/* Calls @put for each decoded byte of @j until it returns false. */
static bool decode(const struct cm_jstr *j, bool (*put)(void *arg, char c), void *arg)
{
    const char *q = j->p, *end = j->p + j->len;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

    while (q < end) {
        long v;
        char u[4];
        int n;

        if (*q != '\\') {
            if (!put(arg, *q++))
                return false;
            continue;
        }
        if (q[1] != 'u') {
            if (!put(arg, to[strchr(from, q[1]) - from]))
                return false;
            q += 2;
            continue;
        }
        v = hex4(q + 2);
        q += 6;
        if (v >= 0xD800 && v <= 0xDBFF) {
            v = 0x10000 + ((v - 0xD800) << 10) + (hex4(q + 2) - 0xDC00);
            q += 6;
        }
        if (v < 0x80) {
            u[0] = (char)v;
            n = 1;
        } else if (v < 0x800) {
            u[0] = (char)(0xC0 | (v >> 6));
            u[1] = (char)(0x80 | (v & 0x3F));
            n = 2;
        } else if (v < 0x10000) {
            u[0] = (char)(0xE0 | (v >> 12));
            u[1] = (char)(0x80 | ((v >> 6) & 0x3F));
            u[2] = (char)(0x80 | (v & 0x3F));
            n = 3;
        } else {
            u[0] = (char)(0xF0 | (v >> 18));
            u[1] = (char)(0x80 | ((v >> 12) & 0x3F));
            u[2] = (char)(0x80 | ((v >> 6) & 0x3F));
            u[3] = (char)(0x80 | (v & 0x3F));
            n = 4;
        }
        for (int i = 0; i < n; i++) {
            if (!put(arg, u[i]))
                return false;
        }
    }
    return true;
}

struct cmp_arg {
    const char *lit;
    size_t i;
};

static bool put_cmp(void *arg, char c)
{
    struct cmp_arg *a = arg;

    if (a->lit[a->i] != c)
        return false;
    a->i++;
    return true;
}

bool cm_jstr_is_escaped(const struct cm_jstr *j, const char *lit)
{
    struct cmp_arg a = {lit, 0};

    return decode(j, put_cmp, &a) && lit[a.i] == '\0';
}

struct copy_arg {
    char *buf;
    size_t len;
};

static bool put_copy(void *arg, char c)
{
    struct copy_arg *a = arg;

    a->buf[a->len++] = c;
    return true;
}

size_t cm_jstr_copy(const struct cm_jstr *j, char *buf)
{
    struct copy_arg a = {buf, j->len};

    if (j->escaped) {
        a.len = 0;
        decode(j, put_copy, &a);
    } else {
        memcpy(buf, j->p, j->len);
    }
    buf[a.len] = '\0';
    return a.len;
}

char *cm_jstr_dup(const struct cm_jstr *j)
{
    /* Decoding never lengthens: "\uXXXX" (6) gives at most 3 bytes, a pair (12) 4. */
    char *buf = malloc(j->len + 1);

    if (buf != NULL)
        cm_jstr_copy(j, buf);
    return buf;
}
