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

static uint64_t hash_init(size_t len)
{
    return 0x9e3779b97f4a7c15ULL ^ ((uint64_t)len * 0xff51afd7ed558ccdULL);
}

static uint64_t le64_at(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return le64toh(v);
}

static uint64_t le32_at(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return le32toh(v);
}

/*
 * One round per 16 bytes, the block's two little-endian words @a and @b:
 * their 64x64->128-bit product folded (wyhash's round: one multiply where
 * murmur-style rounds take four), the state in one operand.
 */
static uint64_t hash_block(uint64_t h, uint64_t a, uint64_t b)
{
    return cm_mum64(a ^ HASH_K1, b ^ h);
}

/* The state through murmur3's 64-bit finalizer. */
static uint32_t hash_final(uint64_t h)
{
    return (uint32_t)cm_fmix64(h);
}

/*
 * A name of at most 16 bytes as one block, every byte read (the length is
 * in the seed): 8..16 bytes as the first and the last 8 (overlapping), 4..7
 * as the first and the last 4, 1..3 as the first, middle and last byte.
 */
static void short_block(const uint8_t *p, size_t len, uint64_t *a, uint64_t *b)
{
    *b = 0;
    if (len >= 8) {
        *a = le64_at(p);
        *b = le64_at(p + len - 8);
    } else if (len >= 4) {
        *a = le32_at(p) | le32_at(p + len - 4) << 32;
    } else if (len > 0) {
        *a = (uint64_t)p[0] << 16 | (uint64_t)p[len / 2] << 8 | p[len - 1];
    } else {
        *a = 0;
    }
}

uint32_t dns_name_hash(const uint8_t *p, size_t len)
{
    uint64_t h = hash_init(len), a, b;

    if (len <= 16) {
        short_block(p, len, &a, &b);
        return hash_final(hash_block(h, a, b));
    }
    /* 16-byte blocks, the last one the last 16 bytes (overlapping) */
    for (size_t i = 0; len - i > 16; i += 16)
        h = hash_block(h, le64_at(p + i), le64_at(p + i + 8));
    return hash_final(hash_block(h, le64_at(p + len - 16), le64_at(p + len - 8)));
}

/*
 * Sixteen bytes at a time with GCC's vector extension (SSE2 on x86-64, NEON
 * on arm64, no intrinsics): a byte is an upper-case letter when b - 'A',
 * wrapping, is below 26. The comparison gives 0xFF there, 0 elsewhere.
 */
typedef uint8_t v16u8 __attribute__((vector_size(16)));

static inline void lower16(uint8_t *dst, const uint8_t *src)
{
    v16u8 v;

    memcpy(&v, src, 16);
    v |= (v16u8)(v - 'A' < 26) & 0x20;
    memcpy(dst, &v, 16);
}

/*
 * dns_name_lower() and dns_name_hash() of the result in one pass, block by
 * block as dns_name_hash() reads them: 16 bytes folded per step, the last
 * 16 folded again instead of a byte loop (folding twice gives the same
 * bytes). Names of up to 16 bytes take the 8-byte fold or a byte loop (not
 * a call: without one the function saves no registers).
 */
static inline uint32_t lower_hash(uint8_t *dst, const uint8_t *src, size_t len)
{
    uint64_t h = hash_init(len), a, b, v;

    if (len > 16) {
        for (size_t i = 0; len - i > 16; i += 16) {
            lower16(dst + i, src + i);
            h = hash_block(h, le64_at(dst + i), le64_at(dst + i + 8));
        }
        lower16(dst + len - 16, src + len - 16);
        return hash_final(hash_block(h, le64_at(dst + len - 16), le64_at(dst + len - 8)));
    }
    if (len >= 8) {
        memcpy(&v, src, 8);
        v = lower8(v);
        memcpy(dst, &v, 8);
        memcpy(&v, src + len - 8, 8);
        v = lower8(v);
        memcpy(dst + len - 8, &v, 8);
    } else {
        for (size_t k = 0; k < len; k++)
            dst[k] = dns_name_lower_char(src[k]);
    }
    short_block(dst, len, &a, &b);
    return hash_final(hash_block(h, a, b));
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
