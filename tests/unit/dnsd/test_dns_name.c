/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_name.c -- wire-format names (dnsd/dns_name.h), one table per
 * function: the root, the 255-byte and 63-byte limits, case. Compression
 * pointers are dns_wire's (test_dns_wire.c): here they are only refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dnsd/dns_name.h"

#define W(s) ((const uint8_t *)(s)), (sizeof(s) - 1)

/* ---- dns_name_from_text() ---- */

struct text_case {
    const char *text;
    bool lower;
    size_t len; /* 0: rejected */
    const char *wire;
};

static void test_from_text(void **state)
{
    static char l63[64], l64[65], long_name[260];
    static const struct text_case fixed[] = {
        {"a.b", false, 5, "\1a\1b"}, {"a.b.", false, 5, "\1a\1b"}, {"A.b", true, 5, "\1a\1b"},
        {"A.b", false, 5, "\1A\1b"}, {".", false, 1, ""},          {"", false, 0, NULL},
        {"a..b", false, 0, NULL},    {".a", false, 0, NULL},       {"..", false, 0, NULL},
    };
    uint8_t out[DNS_NAME_MAX];
    (void)state;

    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        size_t len = dns_name_from_text(fixed[i].text, fixed[i].lower, out);
        if (len != fixed[i].len)
            fail_msg("row %zu '%s': len %zu, want %zu", i, fixed[i].text, len, fixed[i].len);
        if (len > 0) {
            assert_memory_equal(out, fixed[i].wire, len - 1);
            assert_int_equal(out[len - 1], 0);
        }
    }
    /* Label length 63 is the maximum. */
    memset(l63, 'x', 63);
    memset(l64, 'x', 64);
    assert_int_equal(dns_name_from_text(l63, false, out), 65);
    assert_int_equal(dns_name_from_text(l64, false, out), 0);
    /* 255 bytes in wire form is the maximum: 127 one-letter labels make 255. */
    for (size_t i = 0; i < 127; i++) {
        long_name[2 * i] = 'a';
        long_name[2 * i + 1] = '.';
    }
    long_name[253] = '\0';
    assert_int_equal(dns_name_from_text(long_name, false, out), 255);
    assert_int_equal(dns_name_check(out, sizeof(out)), 255);
    assert_int_equal(dns_name_label_count(out), 127);
    long_name[253] = '.';
    long_name[254] = 'b';
    long_name[255] = '\0';
    assert_int_equal(dns_name_from_text(long_name, false, out), 0);
}

/* ---- dns_name_text_normalize() ---- */

static void test_text_normalize(void **state)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"Web.Fed.Example.Test.", "web.fed.example.test"},
        {"web.fed.example.test", "web.fed.example.test"},
        {".", "."},
        {"", ""},
        {"A..", "a."}, /* one dot only */
        {"X-1_@[`{", "x-1_@[`{"},
    };
    char buf[64];
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(buf, sizeof(buf), "%s", rows[i].in);
        assert_int_equal(dns_name_text_normalize(buf), strlen(rows[i].out));
        assert_string_equal(buf, rows[i].out);
    }
}

/* ---- dns_name_check() ---- */

struct check_case {
    const uint8_t *wire;
    size_t avail;
    size_t want; /* 0: invalid */
};

static void test_check(void **state)
{
    static uint8_t l63[1 + 63 + 1], l64[1 + 64 + 1], n255[255], n256[257];
    const struct check_case rows[] = {
        {W("\0"), 1},
        {W("\3www\7example\4test\0"), 18},
        {W("\3www\7example\4test\0trailing"), 18},
        {W("\3www\7example\4test"), 0}, /* no root label */
        {W("\3ww"), 0},                 /* label runs past the end */
        {W(""), 0},
        {W("\300\014"), 0},     /* compression pointer: dns_wire's business */
        {W("\1a\300\014"), 0},  /* pointer after a label */
        {W("\100abc\0"), 0},    /* 01 label type */
        {W("\200abc\0"), 0},    /* 10 label type */
        {l63, sizeof(l63), 65}, /* 63-byte label */
        {l64, sizeof(l64), 0},  /* 64: the length byte is 0x40, an extended type */
        {n255, sizeof(n255), 255},
        {n256, sizeof(n256), 0}, /* 256 bytes with the root label */
    };
    (void)state;

    l63[0] = 63;
    memset(l63 + 1, 'x', 63);
    l64[0] = 64;
    memset(l64 + 1, 'x', 64);
    /* 127 labels "\1a" + root = 255; one byte more in the last label = 256. */
    for (size_t i = 0; i < 127; i++) {
        n255[2 * i] = 1;
        n255[2 * i + 1] = 'a';
        n256[2 * i] = 1;
        n256[2 * i + 1] = 'a';
    }
    n256[252] = 2;
    n256[254] = 'b';
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t got = dns_name_check(rows[i].wire, rows[i].avail);
        if (got != rows[i].want)
            fail_msg("row %zu: %zu, want %zu", i, got, rows[i].want);
        /* the question's one call: the same check, then the fold and hash */
        uint8_t lc[DNS_NAME_MAX], want_lc[DNS_NAME_MAX];
        uint32_t h = 7;
        got = dns_name_check_lower_hash(lc, rows[i].wire, rows[i].avail, &h);
        if (got != rows[i].want)
            fail_msg("row %zu: check_lower_hash %zu, want %zu", i, got, rows[i].want);
        if (got == 0 && h != 7)
            fail_msg("row %zu: check_lower_hash set a hash for an invalid name", i);
        if (got > 0 &&
            (h != dns_name_lower_hash(want_lc, rows[i].wire, got) || memcmp(lc, want_lc, got) != 0))
            fail_msg("row %zu: check_lower_hash folded or hashed differently", i);
    }
}

/* ---- case: dns_name_lower(), dns_name_equal_nocase() ---- */

struct case_case {
    const char *a, *b; /* wire, NUL-free apart from the root */
    size_t alen, blen;
    bool equal;
};

static void test_case(void **state)
{
    static const struct case_case rows[] = {
        {"\0", "\0", 1, 1, true},
        {"\3WwW\4TeSt\0", "\3www\4test\0", 10, 10, true},
        {"\3www\4test\0", "\3www\4tesu\0", 10, 10, false},
        {"\3www\0", "\3www\4test\0", 5, 10, false},
        /* Only ASCII letters fold: '@' (0x40) and '`' (0x60) stay apart. */
        {"\1@\0", "\1`\0", 3, 3, false},
        {"\1[\0", "\1{\0", 3, 3, false},
        {"\1\xc4\0", "\1\xe4\0", 3, 3, false},
    };
    uint8_t lc[DNS_NAME_MAX];
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const uint8_t *a = (const uint8_t *)rows[i].a, *b = (const uint8_t *)rows[i].b;
        if (dns_name_equal_nocase(a, rows[i].alen, b, rows[i].blen) != rows[i].equal)
            fail_msg("row %zu: equal_nocase != %d", i, rows[i].equal);
        if (dns_name_equal_nocase(b, rows[i].blen, a, rows[i].alen) != rows[i].equal)
            fail_msg("row %zu: not symmetric", i);
    }
    dns_name_lower(lc, W("\3WwW\7EXAMPLE\4Test\0"));
    assert_memory_equal(lc, "\3www\7example\4test", 18);
    /* The eight-bytes-at-a-time fold agrees with the byte one for every byte
     * value at every position of a word, next to every other byte value. */
    for (unsigned len = 0; len <= 19; len++) {
        for (unsigned v = 0; v < 256; v++) {
            uint8_t src[19], got[19], want[19];
            for (unsigned i = 0; i < len; i++) {
                src[i] = (uint8_t)(i % 2 == 0 ? v : (v * 7u + i) & 0xFF);
                want[i] = dns_name_lower_char(src[i]);
            }
            dns_name_lower(got, src, len);
            if (len > 0 && memcmp(got, want, len) != 0)
                fail_msg("len %u byte 0x%02x: folded differently", len, v);
            /* folding and hashing in one pass: the same bytes, the hash of them */
            memset(got, 0xAA, sizeof(got));
            uint32_t h = dns_name_lower_hash(got, src, len);
            if ((len > 0 && memcmp(got, want, len) != 0) || h != dns_name_hash(want, len))
                fail_msg("len %u byte 0x%02x: lower_hash differs", len, v);
            if (len < sizeof(got) && got[len] != 0xAA)
                fail_msg("len %u: lower_hash wrote past the name", len);
        }
    }
    /* The question's one pass (check, fold, hash) against the two passes,
     * the root and one label of every length to 63 (name lengths 3 to 65:
     * all tail lengths of the word loop), byte v in every label position. */
    for (unsigned len = 1; len <= 65; len += len == 1 ? 2 : 1) {
        for (unsigned v = 0; v < 256; v += 3) {
            uint8_t src[65], got[66], want[65];
            uint32_t h = 0;
            src[0] = (uint8_t)(len - 1 > 0 ? len - 2 : 0);
            for (unsigned i = 1; i + 1 < len; i++)
                src[i] = (uint8_t)((i + v) % 3 == 0 ? v : 'A' + (i + v) % 26);
            src[len - 1] = 0;
            dns_name_lower(want, src, len);
            memset(got, 0xAA, sizeof(got));
            if (dns_name_check_lower_hash(got, src, len, &h) != len)
                fail_msg("len %u byte 0x%02x: not a name", len, v);
            if (memcmp(got, want, len) != 0 || h != dns_name_hash(want, len))
                fail_msg("len %u byte 0x%02x: check_lower_hash differs", len, v);
            if (got[len] != 0xAA)
                fail_msg("len %u: check_lower_hash wrote past the name", len);
        }
    }
    /* the hash reads every byte, the length included */
    assert_int_not_equal(dns_name_hash(W("\3www\4test\0")), dns_name_hash(W("\3wwx\4test\0")));
    assert_int_not_equal(dns_name_hash((const uint8_t *)"\0\0\0\0\0\0\0\0\0", 8),
                         dns_name_hash((const uint8_t *)"\0\0\0\0\0\0\0\0\0", 9));
    assert_int_equal(dns_name_lower_char('Z'), 'z');
    assert_int_equal(dns_name_lower_char('@'), '@');
    assert_int_equal(dns_name_lower_char('['), '[');
    assert_int_equal(dns_name_lower_char(0xC4), 0xC4);
}

/* ---- the fold and the hash against byte-by-byte references ---- */

/* @n bytes at @p as a little-endian number, a byte at a time. */
static uint64_t ref_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = v << 8 | p[n];
    return v;
}

static uint64_t ref_round(uint64_t h, uint64_t a, uint64_t b)
{
    unsigned __int128 r = (unsigned __int128)(a ^ 0x87c37b91114253d5ULL) * (b ^ h);

    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* The hash's definition, written apart: the length in the seed; 16-byte
 * blocks (the last one the last 16 bytes), a folded 128-bit product each;
 * up to 16 bytes one block of the first and last 8 (or 4, or the first,
 * middle and last byte); murmur3's finalizer. The name tables are built
 * with it. */
static uint32_t ref_hash(const uint8_t *p, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL), a = 0, b = 0;

    if (len > 16) {
        for (size_t i = 0; i + 16 < len; i += 16)
            h = ref_round(h, ref_le(p + i, 8), ref_le(p + i + 8, 8));
        a = ref_le(p + len - 16, 8);
        b = ref_le(p + len - 8, 8);
    } else if (len >= 8) {
        a = ref_le(p, 8);
        b = ref_le(p + len - 8, 8);
    } else if (len >= 4) {
        a = ref_le(p, 4) | ref_le(p + len - 4, 4) << 32;
    } else if (len > 0) {
        a = (uint64_t)p[0] << 16 | (uint64_t)p[len / 2] << 8 | p[len - 1];
    }
    h = ref_round(h, a, b);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

static uint8_t ref_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A byte from the letters' edges ('@', 'A', 'Z', '[', '`', 'a', 'z', '{'),
 * letters, the high half, or anything. */
static uint8_t rng_byte(uint32_t *s)
{
    static const uint8_t edges[] = {'@', 'A',  'Z',  '[',  '`',  'a', 'z',
                                    '{', 0x80, 0xC1, 0xDA, 0xFF, 0};
    uint32_t r = rng_next(s);

    switch (r % 4) {
    case 0:
        return edges[(r >> 8) % sizeof(edges)];
    case 1:
        return (uint8_t)('A' + (r >> 8) % 26);
    case 2:
        return (uint8_t)(0x80 | r >> 8);
    default:
        return (uint8_t)(r >> 8);
    }
}

/* Every length 1..255, random bytes: dns_name_lower(), dns_name_hash(),
 * dns_name_lower_hash() and (on the same bytes shaped as labels)
 * dns_name_check_lower_hash() against the references; nothing written past
 * the name. The buffers end where the name ends, so ASan sees a read past. */
static void test_fold_hash_reference(void **state)
{
    uint32_t seed = 0x2545F491u;
    (void)state;

    for (unsigned round = 0; round < 8; round++) {
        for (size_t len = 1; len <= DNS_NAME_MAX; len++) {
            uint8_t src[DNS_NAME_MAX], want[DNS_NAME_MAX], got[DNS_NAME_MAX + 1];
            uint8_t *exact = src + DNS_NAME_MAX - len; /* ends at the end of src */
            uint32_t h = 0;

            for (size_t i = 0; i < len; i++)
                exact[i] = rng_byte(&seed);
            if (round % 2 == 1) {
                /* a valid name: labels of random length 1..63, the root last */
                size_t o = 0;
                while (o + 1 < len) {
                    size_t l = 1 + rng_next(&seed) % 63;
                    if (l > len - o - 2)
                        l = len - o - 2;
                    if (l == 0)
                        break;
                    exact[o] = (uint8_t)l;
                    o += 1 + l;
                }
                if (o + 1 != len)
                    continue; /* one byte left over: no label fits */
                exact[len - 1] = 0;
            }
            for (size_t i = 0; i < len; i++)
                want[i] = ref_lower(exact[i]);
            memset(got, 0xAA, sizeof(got));
            dns_name_lower(got, exact, len);
            if (memcmp(got, want, len) != 0 || got[len] != 0xAA)
                fail_msg("len %zu: dns_name_lower differs", len);
            if (dns_name_hash(want, len) != ref_hash(want, len))
                fail_msg("len %zu: dns_name_hash differs", len);
            memset(got, 0xAA, sizeof(got));
            if (dns_name_lower_hash(got, exact, len) != ref_hash(want, len) ||
                memcmp(got, want, len) != 0 || got[len] != 0xAA)
                fail_msg("len %zu: dns_name_lower_hash differs", len);
            if (round % 2 == 0)
                continue;
            memset(got, 0xAA, sizeof(got));
            if (dns_name_check_lower_hash(got, exact, len, &h) != len)
                fail_msg("len %zu: not a name", len);
            if (h != ref_hash(want, len) || memcmp(got, want, len) != 0 || got[len] != 0xAA)
                fail_msg("len %zu: dns_name_check_lower_hash differs", len);
        }
    }
    /* the hash reads every byte: one bit flipped anywhere changes it */
    for (size_t len = 1; len <= 48; len++) {
        uint8_t name[48];
        for (size_t i = 0; i < len; i++)
            name[i] = (uint8_t)('a' + i % 26);
        uint32_t base = dns_name_hash(name, len);
        for (size_t i = 0; i < len; i++) {
            name[i] ^= 0x01;
            if (dns_name_hash(name, len) == base)
                fail_msg("len %zu: byte %zu not hashed", len, i);
            name[i] ^= 0x01;
        }
    }
}

/* ---- dns_name_is_under(), dns_name_under_offset() ---- */

struct under_case {
    const char *name, *parent;
    size_t nlen, plen;
    size_t offset; /* SIZE_MAX: not under */
};

static void test_under(void **state)
{
    static const struct under_case rows[] = {
        {"\3www\7example\4test\0", "\7example\4test\0", 18, 14, 4},
        {"\7example\4test\0", "\7example\4test\0", 14, 14, 0}, /* itself */
        {"\3www\7example\4test\0", "\0", 18, 1, 17},           /* the root */
        {"\0", "\0", 1, 1, 0},
        {"\0", "\4test\0", 1, 6, SIZE_MAX},
        {"\7example\4test\0", "\3www\7example\4test\0", 14, 18, SIZE_MAX},
        /* Label boundaries count: "ample.test" is not a parent of "example.test". */
        {"\7example\4test\0", "\5ample\4test\0", 14, 12, SIZE_MAX},
        {"\3www\7example\4test\0", "\7example\4tesu\0", 18, 14, SIZE_MAX},
        /* Bytes are compared: lowercase both names first. */
        {"\3www\7EXAMPLE\4test\0", "\7example\4test\0", 18, 14, SIZE_MAX},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const uint8_t *n = (const uint8_t *)rows[i].name, *p = (const uint8_t *)rows[i].parent;
        size_t off = dns_name_under_offset(n, rows[i].nlen, p, rows[i].plen);
        if (off != rows[i].offset)
            fail_msg("row %zu: offset %zu, want %zu", i, off, rows[i].offset);
        if (dns_name_is_under(n, rows[i].nlen, p, rows[i].plen) != (rows[i].offset != SIZE_MAX))
            fail_msg("row %zu: is_under disagrees with under_offset", i);
    }
}

/* ---- labels: dns_name_label_count(), dns_name_label_ok(), dns_name_put_label() ---- */

static void test_labels(void **state)
{
    static const struct {
        const char *wire;
        unsigned count;
    } counts[] = {{"\0", 0}, {"\4test\0", 1}, {"\3www\7example\4test\0", 3}};
    static const struct {
        const char *text;
        bool ok;
    } oks[] = {{"a", true},    {"us-east-1", true}, {"", false},
               {"a.b", false}, {"x.", false},       {"0123456789", true}};
    char l63[64], l64[65];
    uint8_t out[DNS_NAME_MAX];
    size_t pos = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        assert_int_equal(dns_name_label_count((const uint8_t *)counts[i].wire), counts[i].count);
    for (size_t i = 0; i < sizeof(oks) / sizeof(oks[0]); i++) {
        if (dns_name_label_ok(oks[i].text, strlen(oks[i].text)) != oks[i].ok)
            fail_msg("label '%s': want ok=%d", oks[i].text, oks[i].ok);
    }
    memset(l63, 'x', 63);
    memset(l64, 'x', 64);
    assert_true(dns_name_label_ok(l63, 63));
    assert_false(dns_name_label_ok(l64, 64));
    pos = dns_name_put_label(out, pos, "Web", 3);
    pos = dns_name_put_label(out, pos, "DEFAULT", 7);
    out[pos++] = 0;
    assert_int_equal(pos, 13);
    assert_memory_equal(out, "\3web\7default", 13);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_text),
        cmocka_unit_test(test_text_normalize),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_case),
        cmocka_unit_test(test_under),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_fold_hash_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
