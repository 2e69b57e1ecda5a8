/* SPDX-License-Identifier: Apache-2.0 */
/* dns_name.c -- wire-format domain names (see dns_name.h). */
#include "dnsd/dns_name.h"

#include <endian.h>
#include <string.h>

#include "common/cm_hash.h"

static inline size_t name_check(const uint8_t *p, size_t avail)
{
    /* One bound for both limits: the bytes there are, and the 255 the name
     * may take (a label that ends at 255 leaves no room for the root). */
    size_t end = avail < DNS_NAME_MAX ? avail : DNS_NAME_MAX;
    size_t off = 0;

    while (off < end) {
        size_t l = p[off];
        /* One test per label for both ends (0 wraps to SIZE_MAX): the root
         * label, or 11 = pointer, 01 and 10 = extended/obsolete label types,
         * all invalid here. */
        if (l - 1 >= DNS_LABEL_MAX)
            return l == 0 ? off + 1 : 0;
        off += 1 + l;
    }
    return 0;
}

size_t dns_name_check(const uint8_t *p, size_t avail)
{
    return name_check(p, avail);
}

/*
 * Eight bytes at a time (SWAR): a byte b of @v is an upper-case letter when
 * b < 0x80, b + 0x3F reaches 0x80 (b >= 'A') and b + 0x25 does not (b <= 'Z');
 * no sum carries into the next byte since only the low 7 bits are added. Its
 * bit 5 is then set. Length bytes (1..63) are never letters, so a whole wire
 * name is folded in one sweep.
 */
static uint64_t lower8(uint64_t v)
{
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7full, high = 0x8080808080808080ull;
    uint64_t h = v & low7;
    uint64_t upper = (h + 0x3f3f3f3f3f3f3f3full) & ~(h + 0x2525252525252525ull) & ~v & high;

    return v | (upper >> 2);
}

void dns_name_lower(uint8_t *dst, const uint8_t *src, size_t len)
{
    size_t i = 0;

    for (; len - i >= 8; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v = lower8(v);
        memcpy(dst + i, &v, 8);
    }
    if (i < len) {
        uint64_t t = 0;
        memcpy(&t, src + i, len - i);
        t = lower8(t);
        memcpy(dst + i, &t, len - i);
    }
}

#define HASH_K1 0x87c37b91114253d5ULL
#define HASH_K2 0x4cf5ad432745937fULL

static uint64_t hash_init(size_t len)
{
    return 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
}

static uint64_t hash_word(uint64_t h, uint64_t v)
{
    h ^= v * HASH_K1;
    return ((h << 31) | (h >> 33)) * HASH_K2;
}

/* The last, zero-padded partial word, and murmur3's 64-bit finalizer. */
static uint32_t hash_final(uint64_t h, uint64_t tail)
{
    return (uint32_t)cm_fmix64(h ^ tail * HASH_K1);
}

/*
 * The last len % 8 bytes of @p (len bytes) as a little-endian word, zero
 * above them. With 8 bytes or more, one load of the last 8 bytes and a
 * shift, instead of a copy of variable length.
 */
static uint64_t tail_word(const uint8_t *p, size_t len)
{
    size_t rem = len % 8;
    uint64_t t = 0;

    if (rem == 0)
        return 0;
    if (len >= 8) {
        memcpy(&t, p + len - 8, 8);
        return le64toh(t) >> (8 * (8 - rem));
    }
    for (size_t i = rem; i-- > 0;)
        t = t << 8 | p[i];
    return t;
}

uint32_t dns_name_hash(const uint8_t *p, size_t len)
{
    uint64_t h = hash_init(len), v;
    size_t i = 0;

    for (; len - i >= 8; i += 8) {
        memcpy(&v, p + i, 8);
        h = hash_word(h, le64toh(v));
    }
    return hash_final(h, tail_word(p, len));
}

/*
 * Sixteen bytes at a time with GCC's vector extension (SSE2 on x86-64, NEON
 * on arm64, no intrinsics): a byte is an upper-case letter when b - 'A',
 * wrapping, is below 26. The comparison gives 0xFF there, 0 elsewhere.
 */
typedef uint8_t v16u8 __attribute__((vector_size(16)));

static inline v16u8 lower16(const uint8_t *src)
{
    v16u8 v;

    memcpy(&v, src, 16);
    return v | ((v16u8)(v - 'A' < 26) & 0x20);
}

/* The two little-endian words of the 16 lowered bytes at @p (written there
 * just before), through hash_word(). */
static inline uint64_t hash_words16(uint64_t h, const uint8_t *p)
{
    uint64_t a, b;

    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    return hash_word(hash_word(h, le64toh(a)), le64toh(b));
}

/*
 * dns_name_lower() and dns_name_hash() in one pass: 16 bytes folded per
 * step, and the last 16 bytes folded again instead of a byte loop (folding
 * twice gives the same bytes). Names under 16 bytes (the root, short ones)
 * take the 8-byte fold.
 */
static inline uint32_t lower_hash(uint8_t *dst, const uint8_t *src, size_t len)
{
    uint64_t h = hash_init(len), v;
    size_t i = 0;

    if (len >= 16) {
        for (; len - i >= 16; i += 16) {
            v16u8 l = lower16(src + i);
            memcpy(dst + i, &l, 16);
            h = hash_words16(h, dst + i);
        }
        if (i == len)
            return hash_final(h, 0);
        v16u8 l = lower16(src + len - 16);
        memcpy(dst + len - 16, &l, 16);
        if (len - i >= 8) {
            memcpy(&v, dst + i, 8);
            h = hash_word(h, le64toh(v));
        }
        return hash_final(h, tail_word(dst, len));
    }
    if (len >= 8) {
        memcpy(&v, src, 8);
        v = lower8(v);
        memcpy(dst, &v, 8);
        h = hash_word(h, le64toh(v));
        if (len == 8)
            return hash_final(h, 0);
        /* the last 8 bytes folded again: the overlap gets the same bytes */
        memcpy(&v, src + len - 8, 8);
        v = lower8(v);
        memcpy(dst + len - 8, &v, 8);
        return hash_final(h, le64toh(v) >> (8 * (8 - len % 8)));
    }
    /* a byte loop, not a call: without one the function saves no registers */
    for (size_t k = 0; k < len; k++)
        dst[k] = dns_name_lower_char(src[k]);
    return hash_final(h, tail_word(dst, len));
}

/* Two passes: lower_hash() has one caller, dns_name_check_lower_hash() (a
 * query's question), which then takes it inline. */
uint32_t dns_name_lower_hash(uint8_t *dst, const uint8_t *src, size_t len)
{
    dns_name_lower(dst, src, len);
    return dns_name_hash(dst, len);
}

size_t dns_name_check_lower_hash(uint8_t *dst, const uint8_t *src, size_t avail, uint32_t *hash)
{
    size_t n = name_check(src, avail);

    if (n != 0)
        *hash = lower_hash(dst, src, n);
    return n;
}

bool dns_name_equal_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (dns_name_lower_char(a[i]) != dns_name_lower_char(b[i]))
            return false;
    }
    return true;
}

size_t dns_name_under_offset(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen)
{
    size_t o = 0;

    while (len - o > plen && name[o] != 0)
        o += 1u + name[o];
    if (len - o == plen && memcmp(name + o, parent, plen) == 0)
        return o;
    return SIZE_MAX;
}

bool dns_name_is_under(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen)
{
    return dns_name_under_offset(name, len, parent, plen) != SIZE_MAX;
}

unsigned dns_name_label_count(const uint8_t *name)
{
    unsigned n = 0;

    for (size_t o = 0; name[o] != 0; o += 1u + name[o])
        n++;
    return n;
}

bool dns_name_label_ok(const char *s, size_t len)
{
    return len > 0 && len <= DNS_LABEL_MAX && memchr(s, '.', len) == NULL;
}

size_t dns_name_put_label(uint8_t *out, size_t pos, const char *s, size_t len)
{
    out[pos++] = (uint8_t)len;
    for (size_t i = 0; i < len; i++)
        out[pos++] = dns_name_lower_char((uint8_t)s[i]);
    return pos;
}

size_t dns_name_text_normalize(char *text)
{
    size_t n = strlen(text);

    for (size_t i = 0; i < n; i++)
        text[i] = (char)dns_name_lower_char((uint8_t)text[i]);
    if (n > 1 && text[n - 1] == '.')
        text[--n] = '\0';
    return n;
}

size_t dns_name_from_text(const char *text, bool lower, uint8_t out[DNS_NAME_MAX])
{
    size_t len = strlen(text);
    size_t pos = 0;
    size_t i = 0;

    if (len > 0 && text[len - 1] == '.')
        len--;
    if (len == 0) {
        if (text[0] != '.')
            return 0;
        out[0] = 0;
        return 1;
    }
    while (i <= len) {
        size_t start = i;
        while (i < len && text[i] != '.')
            i++;
        size_t llen = i - start;
        if (llen == 0 || llen > DNS_LABEL_MAX || pos + 1 + llen + 1 > DNS_NAME_MAX)
            return 0;
        out[pos++] = (uint8_t)llen;
        for (size_t k = 0; k < llen; k++) {
            uint8_t c = (uint8_t)text[start + k];
            out[pos++] = lower ? dns_name_lower_char(c) : c;
        }
        i++; /* past the dot, or past the end */
    }
    out[pos++] = 0;
    return pos;
}
