/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_tcp_src.c -- TCP connections by source: a fixed open-addressing table
 * of per-source lists (see dns_tcp_src.h).
 *
 * Invariant: a slot is empty exactly when its family is 0; every used slot
 * has count >= 1 and head/tail at its first and last node; at most half the
 * slots are used, so every probe ends at an empty slot.
 */
#include "dnsd/dns_tcp_src.h"

#include <assert.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cm_err.h"
#include "common/cm_rand.h"

#define FAMILY_OTHER 255 /* not IPv4 or IPv6: one source for all */

struct slot {
    uint64_t key;
    struct dns_src_node *head; /* borrowed: oldest */
    struct dns_src_node *tail; /* borrowed: newest */
    uint32_t count;
    uint8_t family; /* 0 = empty */
};

struct dns_src_table {
    struct slot *slots; /* owned, mask + 1 of them */
    size_t mask;
    size_t nodes;     /* nodes in the table */
    size_t max_nodes; /* nodes allowed at once */
    size_t used;      /* used slots (sources) */
    uint64_t seed;
};

struct dns_src_table *dns_src_table_new(size_t max_nodes)
{
    struct dns_src_table *t = calloc(1, sizeof(*t));
    size_t cap = 16;

    if (t == NULL)
        return NULL;
    if (max_nodes == 0)
        max_nodes = 1;
    while (cap < 2 * max_nodes)
        cap *= 2;
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        free(t);
        return NULL;
    }
    t->mask = cap - 1;
    t->max_nodes = max_nodes;
    cm_rand_seed(&t->seed, t);
    return t;
}

void dns_src_table_free(struct dns_src_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The source of @sa: IPv4 /32, IPv6 /64, IPv4-mapped IPv6 as IPv4. */
static void key_of(const struct sockaddr *sa, uint64_t *key, uint8_t *family)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

        *key = ntohl(in->sin_addr.s_addr);
        *family = 4;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;

        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            *key =
                ((uint64_t)a[12] << 24) | ((uint64_t)a[13] << 16) | ((uint64_t)a[14] << 8) | a[15];
            *family = 4;
        } else {
            *key = load_be64(a);
            *family = 6;
        }
    } else {
        *key = 0;
        *family = FAMILY_OTHER;
    }
}

/* A seeded 64-bit mix (the splitmix64 finaliser). */
static size_t home_of(const struct dns_src_table *t, uint64_t key, uint8_t family)
{
    uint64_t h = key ^ t->seed ^ ((uint64_t)family << 56);

    h = (h ^ (h >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    h = (h ^ (h >> 27)) * UINT64_C(0x94d049bb133111eb);
    h ^= h >> 31;
    return (size_t)h & t->mask;
}

/* The slot of (key, family), or the empty slot where it would go. */
static size_t find(const struct dns_src_table *t, uint64_t key, uint8_t family)
{
    size_t i = home_of(t, key, family);

    while (t->slots[i].family != 0 && (t->slots[i].family != family || t->slots[i].key != key))
        i = (i + 1) & t->mask;
    return i;
}

struct dns_src_node *dns_src_lookup(const struct dns_src_table *t, const struct sockaddr *sa,
                                    size_t *count)
{
    uint64_t key;
    uint8_t family;
    const struct slot *s;

    key_of(sa, &key, &family);
    s = &t->slots[find(t, key, family)];
    *count = s->count;
    return s->head;
}

int dns_src_add(struct dns_src_table *t, struct dns_src_node *n, const struct sockaddr *sa)
{
    struct slot *s;

    assert(n->family == 0);
    if (t->nodes >= t->max_nodes)
        return CM_ENOSPC;
    key_of(sa, &n->key, &n->family);
    s = &t->slots[find(t, n->key, n->family)];
    if (s->family == 0) {
        s->family = n->family;
        s->key = n->key;
        t->used++;
    }
    n->prev = s->tail;
    n->next = NULL;
    if (s->tail != NULL)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
    s->count++;
    t->nodes++;
    return CM_OK;
}

/* Empties slot @i and shifts later members of its probe chain back into the hole. */
static void slot_delete(struct dns_src_table *t, size_t i)
{
    size_t j = i;

    for (;;) {
        size_t home;

        j = (j + 1) & t->mask;
        if (t->slots[j].family == 0)
            break;
        home = home_of(t, t->slots[j].key, t->slots[j].family);
        /* Move j into the hole when the hole lies on j's probe path (home..j). */
        if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    memset(&t->slots[i], 0, sizeof(t->slots[i]));
    t->used--;
}

/* Unlinks @n from its slot's list; the slot stays (count untouched). */
static void unlink_node(struct slot *s, struct dns_src_node *n)
{
    if (n->prev != NULL)
        n->prev->next = n->next;
    else
        s->head = n->next;
    if (n->next != NULL)
        n->next->prev = n->prev;
    else
        s->tail = n->prev;
    n->prev = NULL;
    n->next = NULL;
}

void dns_src_remove(struct dns_src_table *t, struct dns_src_node *n)
{
    size_t i;
    struct slot *s;

    if (n->family == 0)
        return;
    i = find(t, n->key, n->family);
    s = &t->slots[i];
    assert(s->family != 0 && s->count > 0);
    unlink_node(s, n);
    n->family = 0;
    n->key = 0;
    t->nodes--;
    if (--s->count == 0)
        slot_delete(t, i);
}

void dns_src_touch(struct dns_src_table *t, struct dns_src_node *n)
{
    struct slot *s;

    if (n->family == 0)
        return;
    s = &t->slots[find(t, n->key, n->family)];
    assert(s->family != 0);
    if (s->tail == n)
        return;
    unlink_node(s, n);
    n->prev = s->tail;
    s->tail->next = n;
    s->tail = n;
}

size_t dns_src_table_sources(const struct dns_src_table *t)
{
    return t->used;
}
