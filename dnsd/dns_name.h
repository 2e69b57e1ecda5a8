/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_name.h -- uncompressed wire-format domain names (as NSD's dname.h):
 * checks, label walking, case folding, the is-under test, and presentation
 * text to wire for the names the table build makes.
 *
 *   "Web.Example.Test"  ->  | 3 W e b | 7 E x a m p l e | 4 T e s t | 0 |
 *                             ^label length (1..63)                 ^root label
 *
 * A name is at most DNS_NAME_MAX bytes, root label included. Compression
 * pointers are the packet's business: dns_wire reads and writes them; every
 * name here is plain labels. Case folding is ASCII only (RFC 4343).
 */
#ifndef DNSD_DNS_NAME_H
#define DNSD_DNS_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX  255 /* wire-format name, root label included */
#define DNS_LABEL_MAX 63

/** @c with ASCII A-Z folded to a-z. */
static inline uint8_t dns_name_lower_char(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/**
 * Checks an uncompressed wire name at @p (at most @avail bytes): labels <= 63,
 * total <= 255, ends with the root label. Returns its length, or 0 if invalid.
 */
size_t dns_name_check(const uint8_t *p, size_t avail);

/** Copies @len bytes of wire name from @src to @dst, lowercasing ASCII letters. */
void dns_name_lower(uint8_t *dst, const uint8_t *src, size_t len);

/**
 * A 32-bit hash of @len bytes (a 64x64->128-bit multiply per 16-byte block,
 * murmur3's finalizer): the hash of the federated table's names.
 * Not keyed: for tables whose keys the operator chose.
 */
uint32_t dns_name_hash(const uint8_t *p, size_t len);

/** dns_name_lower() and dns_name_hash() of the result, in one pass. */
uint32_t dns_name_lower_hash(uint8_t *dst, const uint8_t *src, size_t len);

/**
 * dns_name_check(@src, @avail), then for a valid name of n bytes
 * dns_name_lower_hash(@dst, @src, n) into *@hash: a query's question in one
 * call. Returns n, or 0 (*@hash and @dst untouched) if invalid.
 */
size_t dns_name_check_lower_hash(uint8_t *dst, const uint8_t *src, size_t avail, uint32_t *hash);

/** True if @a and @b (valid wire names) are the same name, ignoring ASCII case. */
bool dns_name_equal_nocase(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/**
 * True if @name (valid wire, @len bytes) is @parent or below it, comparing
 * bytes (lowercase both first).
 */
bool dns_name_is_under(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen);

/**
 * The number of bytes of @name before @parent when @name is @parent or below
 * it (0: the same name), else SIZE_MAX. Byte comparison, as dns_name_is_under.
 */
size_t dns_name_under_offset(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen);

/** Labels of @name (valid wire), the root label not counted: 0 for the root. */
unsigned dns_name_label_count(const uint8_t *name);

/** True if @s (@len bytes of text) can be one label: 1..63 bytes, no dot. */
bool dns_name_label_ok(const char *s, size_t len);

/**
 * Appends @s (@len bytes, dns_name_label_ok()) as one label at @out + @pos,
 * lowercased, and returns the new position. The caller checks the room.
 */
size_t dns_name_put_label(uint8_t *out, size_t pos, const char *s, size_t len);

/**
 * "Web.Example.Test." -> "web.example.test", in place: ASCII letters folded,
 * one trailing dot dropped (the root "." stays). Returns the new length.
 */
size_t dns_name_text_normalize(char *text);

/**
 * Converts a presentation name (trailing dot optional, no escapes) to wire
 * format. @lower folds letters to lower case. Returns the length, or 0 when
 * the name is empty, has an empty label, a label over 63 bytes or exceeds
 * 255. "." is the root (length 1).
 */
size_t dns_name_from_text(const char *text, bool lower, uint8_t out[DNS_NAME_MAX]);

#endif /* DNSD_DNS_NAME_H */
