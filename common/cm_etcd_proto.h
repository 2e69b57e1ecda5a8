/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_proto.h -- etcd v3 through its JSON gateway (grpc-gateway), as
 * bytes: the request bodies fedgslb sends and the replies and watch stream
 * messages it reads. Pure: no sockets, no clock (cm_etcd does the I/O).
 *
 * The gateway maps each gRPC call to POST /v3/<service>/<method> with the
 * request message as JSON (keys and values are base64, int64 fields are
 * decimal strings) and answers with the response message, or with
 * {"error": "...", "message": "...", "code": N} (N a gRPC status code) and
 * an HTTP error status. Debian 12's etcd 3.4 serves /v3/ (and the deprecated
 * /v3beta/, which 3.5 removed); fedgslb uses /v3/.
 *
 * The watch is a stream of newline-delimited JSON messages, each
 * {"result": WatchResponse} or, when the gateway's stream breaks,
 * {"error": {"grpc_code": N, "message": "..."}}:
 *
 *   {"result":{"header":{"revision":"7"},"created":true}}
 *   {"result":{"header":{"revision":"8"},"events":[{"kv":{...}},
 *                                         {"type":"DELETE","kv":{...}}]}}
 *   {"result":{"header":{...},"canceled":true,"compact_revision":"4"}}
 *   {"result":{"header":{...},"canceled":true,"cancel_reason":"rpc error: ..."}}
 *
 * A PUT event carries no "type" (the enum's zero value is left out).
 * Everything read here is hostile until checked: a wrong type, a bad base64
 * string or a revision that is not a number fails the message with a reason.
 */
#ifndef COMMON_CM_ETCD_PROTO_H
#define COMMON_CM_ETCD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CM_ETCD_PATH_RANGE     "/v3/kv/range"
#define CM_ETCD_PATH_PUT       "/v3/kv/put"
#define CM_ETCD_PATH_DELETE    "/v3/kv/deleterange"
#define CM_ETCD_PATH_GRANT     "/v3/lease/grant"
#define CM_ETCD_PATH_KEEPALIVE "/v3/lease/keepalive"
#define CM_ETCD_PATH_WATCH     "/v3/watch"
#define CM_ETCD_PATH_AUTH      "/v3/auth/authenticate"
#define CM_ETCD_PATH_STATUS    "/v3/maintenance/status"

#define CM_ETCD_BODY_MAX (64u << 20) /* largest reply or watch message accepted */
#define CM_ETCD_KEY_MAX  4096        /* longest key accepted in a reply */
#define CM_ETCD_ERR_MAX  256

/* The gRPC status codes etcd reports in "code" (google.golang.org/grpc/codes). */
enum cm_etcd_code {
    CM_ETCD_CODE_OK = 0,
    CM_ETCD_CODE_INVALID_ARGUMENT = 3,
    CM_ETCD_CODE_DEADLINE_EXCEEDED = 4,
    CM_ETCD_CODE_NOT_FOUND = 5, /* e.g. "requested lease not found" */
    CM_ETCD_CODE_PERMISSION_DENIED = 7,
    CM_ETCD_CODE_UNAVAILABLE = 14,     /* no leader, member stopping ... */
    CM_ETCD_CODE_UNAUTHENTICATED = 16, /* "invalid auth token": authenticate again */
};

/* One key-value pair. */
struct cm_etcd_kv {
    char *key; /* owned, decoded and NUL-terminated (may hold NULs: use key_len) */
    size_t key_len;
    char *value; /* owned, decoded and NUL-terminated; "" for a DELETE event */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease; /* 0 = none */
};

/* A range reply. */
struct cm_etcd_range {
    struct cm_etcd_kv *kvs; /* owned, count entries */
    size_t count;
    int64_t revision; /* the store's revision the range was read at */
    int64_t total;    /* "count": keys in the range (more than count with a limit) */
    bool more;
};

enum cm_etcd_event_type {
    CM_ETCD_EVENT_PUT = 0,
    CM_ETCD_EVENT_DELETE = 1,
};

struct cm_etcd_event {
    enum cm_etcd_event_type type;
    struct cm_etcd_kv kv;
};

enum cm_etcd_watch_kind {
    CM_ETCD_WATCH_CREATED = 0,  /* the watch is set up */
    CM_ETCD_WATCH_EVENTS = 1,   /* events, in revision order (none: a progress report) */
    CM_ETCD_WATCH_CANCELED = 2, /* the server ended it: see compact_revision, code, reason */
    CM_ETCD_WATCH_ERROR = 3,    /* the gateway's stream broke: code, reason */
};

struct cm_etcd_watch_msg {
    enum cm_etcd_watch_kind kind;
    int64_t revision;             /* the header's; 0 when absent */
    struct cm_etcd_event *events; /* owned, count entries (CM_ETCD_WATCH_EVENTS) */
    size_t count;
    int64_t compact_revision;     /* CANCELED: > 0 when history before it is compacted */
    int code;                     /* CANCELED / ERROR: the gRPC code, 0 when not given */
    char reason[CM_ETCD_ERR_MAX]; /* CANCELED / ERROR: the server's words */
};

/* A member's maintenance status (fedgslbctl status). */
struct cm_etcd_status {
    char version[32];
    uint64_t member_id;
    uint64_t leader;
    int64_t revision;
    int64_t raft_term;
    int64_t raft_index;
    int64_t db_size;
    char errors[CM_ETCD_ERR_MAX]; /* the member's own alarms / errors, "" when none */
};

/* ---- request bodies: new NUL-terminated JSON texts (free()), NULL on ENOMEM ---- */

/**
 * Range over @key (@key_len bytes): with @prefix every key starting with it,
 * else the one key. @count_only asks for the count and header only (a cheap
 * linearizable read: the consumers' liveness check).
 */
char *cm_etcd_body_range(const char *key, size_t key_len, bool prefix, bool count_only);
/** Put @value at @key, attached to @lease (0 = none). */
char *cm_etcd_body_put(const char *key, size_t key_len, const char *value, size_t value_len,
                       int64_t lease);
/** Delete @key (or every key under it with @prefix). */
char *cm_etcd_body_delete(const char *key, size_t key_len, bool prefix);
/** Grant a lease of @ttl_s seconds. */
char *cm_etcd_body_lease_grant(int64_t ttl_s);
/** Keep lease @id alive once (one request, one reply). */
char *cm_etcd_body_keepalive(int64_t id);
/** Watch every key under @prefix from @start_revision (0 = from now). */
char *cm_etcd_body_watch(const char *prefix, size_t prefix_len, int64_t start_revision);
/** Authenticate @name with @password. The text holds the password: wipe it before free(). */
char *cm_etcd_body_auth(const char *name, const char *password);

/**
 * The end of the range of keys starting with @prefix: @prefix with its last
 * byte below 0xff incremented and what follows dropped; "\0" (every key) when
 * there is none. New buffer of *out_len bytes (+ NUL), NULL on ENOMEM.
 */
char *cm_etcd_prefix_end(const char *prefix, size_t len, size_t *out_len);

/* ---- replies ---- */

/**
 * True when @body is the gateway's error reply ({"error"|"message", "code"}):
 * *code is the gRPC code (0 if absent), @msg the message (sanitized to one
 * printable line). False for anything else (a success, or not JSON).
 */
bool cm_etcd_reply_error(const char *body, size_t len, int *code, char *msg, size_t msglen);

/** A range reply. CM_EPARSE (reason in @err) or CM_ENOMEM. Free with cm_etcd_range_fini(). */
int cm_etcd_parse_range(const char *body, size_t len, struct cm_etcd_range *out, char *err,
                        size_t errlen);
void cm_etcd_range_fini(struct cm_etcd_range *r);

/** The header revision of any reply (put, delete). CM_EPARSE / CM_ENOMEM. */
int cm_etcd_parse_revision(const char *body, size_t len, int64_t *revision, char *err,
                           size_t errlen);

/**
 * A lease grant reply ({"ID","TTL"}) or keepalive reply ({"result":{"ID",
 * "TTL"}}). *ttl_s is 0 when the lease no longer exists. CM_EPARSE / CM_ENOMEM.
 */
int cm_etcd_parse_lease(const char *body, size_t len, int64_t *id, int64_t *ttl_s, char *err,
                        size_t errlen);

/** An authenticate reply: *token a new string (a secret: wipe and free). CM_EPARSE / CM_ENOMEM. */
int cm_etcd_parse_auth(const char *body, size_t len, char **token, char *err, size_t errlen);

/** A maintenance status reply. CM_EPARSE / CM_ENOMEM. */
int cm_etcd_parse_status(const char *body, size_t len, struct cm_etcd_status *out, char *err,
                         size_t errlen);

/**
 * One line of a watch stream. CM_EPARSE (reason in @err) or CM_ENOMEM; on
 * success release @out with cm_etcd_watch_msg_fini().
 */
int cm_etcd_parse_watch(const char *line, size_t len, struct cm_etcd_watch_msg *out, char *err,
                        size_t errlen);
void cm_etcd_watch_msg_fini(struct cm_etcd_watch_msg *m);

/** Releases a kv's strings. */
void cm_etcd_kv_fini(struct cm_etcd_kv *kv);

#endif /* COMMON_CM_ETCD_PROTO_H */
