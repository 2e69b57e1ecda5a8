/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf_schema.h -- private to common/cm_conf*.c: the configuration schema
 * as data, and the helpers its validate callbacks use.
 *
 * Every JSON object of the configuration is described by one struct
 * cm_conf_schema: a table of items (key, type, min/max, default, offsetof into
 * the C struct, optional validate callback). One generic walker in cm_conf.c
 * applies a table to a JSON object, rejects keys the table does not name,
 * fills defaults, recurses into nested objects, arrays and name -> entry maps,
 * and keeps the JSON path for error messages. The same tables drive freeing.
 * The tables themselves live in cm_conf_schema.c.
 *
 *   root schema --regions--> region entry schema --zones--> [label]
 *               --members--> member entry schema --lb--> lb schema
 *               --services-> service entry schema --check/policy--> ...
 *               --dnsd/health/proxy--> section schemas --control--> control
 *               --deployment--> name_servers / vantages / proxies (cm_conf_deploy.c)
 *
 * Items of one table are processed in table order, so a cross reference
 * (member -> region) only needs its target's table to come first.
 */
#ifndef COMMON_CM_CONF_SCHEMA_H
#define COMMON_CM_CONF_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cm_conf;
struct cm_conf_schema;

/* Longest text cm_conf_quote() writes, NUL included. */
#define CM_CONF_QUOTE_MAX 96
/* Longest JSON path kept for messages (longer ones are cut). */
#define CM_CONF_PATH_MAX 256

enum cm_conf_type {
    CM_CONF_STR = 0,     /* char *, owned copy of a non-empty string */
    CM_CONF_LABEL = 1,   /* char *, one lowercase DNS label */
    CM_CONF_DOMAIN = 2,  /* char *, domain name, lowercased, trailing dot removed */
    CM_CONF_IP = 3,      /* char *, numeric IPv4/IPv6 address as written */
    CM_CONF_UINT = 4,    /* uint32_t in [min, max] */
    CM_CONF_U16 = 5,     /* uint16_t in [min, max] */
    CM_CONF_BOOL = 6,    /* bool */
    CM_CONF_ENUM = 7,    /* int-sized enum: the index of the string in names[] */
    CM_CONF_ADDR = 8,    /* struct cm_addr from "ip:port" / "[ip6]:port" */
    CM_CONF_REF = 9,     /* size_t index of the named region/member/service */
    CM_CONF_OBJECT = 10, /* struct at offset (offset 0: same struct), described by sub */
    CM_CONF_ARRAY = 11,  /* owned array of elem_type at offset, size_t count at count_offset */
    CM_CONF_MAP = 12,    /* JSON object name -> entry: owned array of sub entries + count */
    CM_CONF_CUSTOM = 13, /* parse() does it all; called with a NULL value when absent */
};

enum cm_conf_ref_kind {
    CM_CONF_REF_REGION = 0,  /* cm_conf.regions */
    CM_CONF_REF_MEMBER = 1,  /* cm_conf.members */
    CM_CONF_REF_SERVICE = 2, /* cm_conf.services, by "ns/name" */
};

/* Parse state shared by the walker and the callbacks. */
struct cm_conf_parse {
    struct cm_conf *conf; /* borrowed: the conf being built (partially filled) */
    const char *name;     /* borrowed: the file name used in messages */
    char *err;            /* borrowed: message buffer, may be NULL */
    size_t errlen;
    char path[CM_CONF_PATH_MAX]; /* JSON path of the value being parsed */
    size_t path_len;
    const char *instance; /* borrowed: the instance to select after the walk, NULL = none */
    int kind;             /* its enum cm_instance_kind */
};

/* Called after a scalar (or each array element) is converted and stored at
 * @field inside @base. Returns CM_OK or the code of cm_conf_fail(). */
typedef int cm_conf_validate_fn(struct cm_conf_parse *p, void *base, void *field);
/* CM_CONF_CUSTOM: converts @v (borrowed; NULL when the key is absent). */
typedef int cm_conf_custom_fn(struct cm_conf_parse *p, json_t *v, void *base, void *field);
/* Called once an object's items are all parsed, for cross-field checks. */
typedef int cm_conf_post_fn(struct cm_conf_parse *p, void *base);
/* Frees what a schema's callbacks allocated outside its items. */
typedef void cm_conf_release_fn(void *base);

struct cm_conf_item {
    const char *key;
    enum cm_conf_type type;
    size_t offset;                    /* offsetof the field in the schema's struct */
    size_t count_offset;              /* ARRAY, MAP: offsetof the size_t count */
    enum cm_conf_type elem_type;      /* ARRAY: type of the elements */
    bool required;                    /* absent -> "missing required key" */
    uint32_t min;                     /* UINT, U16: value; ARRAY, MAP: entry count */
    uint32_t max;                     /* as min; 0 = no limit for ARRAY and MAP */
    uint32_t def_uint;                /* UINT, U16, ENUM default */
    bool def_bool;                    /* BOOL default */
    const char *def_str;              /* STR.., ADDR default; ARRAY: one-element default */
    const char *const *names;         /* ENUM: NULL-terminated */
    enum cm_conf_ref_kind ref;        /* REF */
    const struct cm_conf_schema *sub; /* OBJECT, MAP, ARRAY of OBJECT */
    cm_conf_validate_fn *validate;    /* optional */
    cm_conf_custom_fn *parse;         /* CUSTOM */
    bool by_instance;                 /* required, unless the deployment's instances of the
                                         section's daemon supply it (cm_conf_deploy.c) */
};

struct cm_conf_schema {
    const struct cm_conf_item *items;
    size_t count;
    size_t size;                    /* sizeof the struct (MAP and ARRAY entries) */
    size_t name_offset;             /* MAP entries: char * that receives the key */
    cm_conf_validate_fn *key_check; /* MAP entries: checks the stored key (field = name) */
    bool section;                   /* OBJECT: absent -> left all zero, no defaults */
    size_t present_offset;          /* section: bool set when present */
    cm_conf_post_fn *post;          /* optional */
    cm_conf_release_fn *release;    /* optional */
    const char *doc_name;           /* an object used in several places: its section's name in
                                       the reference (default: the key of its first use) */
};

/* The whole file; defined in cm_conf_schema.c. */
extern const struct cm_conf_schema cm_conf_root_schema;
/* "deployment"; defined in cm_conf_deploy.c. */
extern const struct cm_conf_schema cm_conf_deployment_schema;

/**
 * Records a warning "file: path: text" in p->conf->warnings (at the current
 * path; --check-config prints them, daemons log them). CM_OK or CM_ENOMEM.
 */
int cm_conf_warn(struct cm_conf_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** For a by_instance item missing at the current path: whether instances supply it. */
bool cm_conf_instance_supplies(const struct cm_conf_parse *p);

/**
 * The whole-file checks of cm_conf_deploy.c, run by the root's post: client
 * networks (one region per CIDR; overlaps of different regions warned), the
 * deployment's names and addresses, proxy bind lists, and the default of
 * health.publish_to (every name server and proxy).
 */
int cm_conf_deployment_post(struct cm_conf_parse *p, struct cm_conf *conf);

/** After the walk: applies p->instance's values to its section (p->kind). */
int cm_conf_instance_select(struct cm_conf_parse *p, struct cm_conf *conf);
/* members_from; defined in cm_conf_registry.c. */
extern const struct cm_conf_schema cm_conf_members_from_schema;
/** CUSTOM parse of a struct cm_conf_member's zone (its region parsed first). */
int cm_conf_member_zone(struct cm_conf_parse *p, json_t *v, void *base, void *field);

/**
 * Writes "file: path: reason" (or "file: reason" at the top) into p->err and
 * returns CM_ECONFIG. cm_conf_fail_at() names the child @key of the current
 * path. Never pass secrets.
 */
int cm_conf_fail(struct cm_conf_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cm_conf_fail_at(struct cm_conf_parse *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Writes "file: out of memory" and returns CM_ENOMEM. */
int cm_conf_oom(struct cm_conf_parse *p);

/** Path segments: push returns the old length for cm_conf_path_pop(). */
size_t cm_conf_path_push(struct cm_conf_parse *p, const char *key);
void cm_conf_path_pop(struct cm_conf_parse *p, size_t old_len);
/** Appends "[@i]" (an array index) to the path; returns the old length. */
size_t cm_conf_path_push_index(struct cm_conf_parse *p, size_t i);

/** @s in double quotes, escaped and cut to fit @buf (CM_CONF_QUOTE_MAX). */
const char *cm_conf_quote(const char *s, char *buf, size_t cap);

/** A map key that must be a DNS label (key_check of regions, members, instances). */
int cm_conf_key_label(struct cm_conf_parse *p, void *base, void *field);
/** A string that must be a numeric IPv4 or IPv6 address (a validate callback). */
int cm_conf_ip_literal(struct cm_conf_parse *p, void *base, void *field);

/** Reads a JSON integer in [min, max] into *out, or fails at the current path. */
int cm_conf_get_uint(struct cm_conf_parse *p, json_t *v, uint32_t min, uint32_t max, uint32_t *out);

/** Lowercases @s in place and drops one trailing dot; false unless the result
 *  is a domain name (labels as cm_str_is_dns_label(), case aside; at most 253
 *  characters). */
bool cm_conf_domain_normalize(char *s);

#endif /* COMMON_CM_CONF_SCHEMA_H */
