/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_conf.h -- the federation configuration (DESIGN.md, "Configuration").
 *
 * One JSON file is read by every program through this one loader. Loading
 * validates the whole file, not only the caller's section, so each program's
 * --check-config checks everything. Every error names the file, the JSON path
 * and the reason:
 *
 *     conf/federation.json: members.jpn.region: unknown region "ap-east-9"
 *
 * Unknown keys are rejected the same way ("dnsd.lsiten: unknown key"), and a
 * JSON syntax error names the line and column instead of a path
 * ("conf/federation.json: line 3, column 7: ..."). Cross references (member -> region,
 * member zone -> region's zones, client network -> region, proxy listener ->
 * member and service) are resolved to indexes at load time, so consumers never
 * look names up on a hot path.
 *
 * Schema rules beyond DESIGN.md's example: a JSON null means "the default";
 * an absent dnsd/health/proxy/etcd section (or control block) leaves its
 * struct zeroed with present/enabled false; map keys and index order follow
 * the file. The tables live in cm_conf_schema.c (STYLE.md section 8).
 *
 * A loaded struct cm_conf is immutable and reference counted: a reload builds a
 * new one, and readers that still hold the old one keep it alive.
 *
 * One file can describe a whole deployment ("deployment": every name server,
 * vantage and proxy with its addresses). A daemon then loads it for its
 * instance (cm_conf_load_instance: --instance NAME or FEDGSLB_INSTANCE), and
 * the instance's own values take the place of its section's (dnsd.listen,
 * dnsd.region, dnsd.control.listen, ...); keys an instance supplies may be
 * left out of the section. health.publish_to defaults to every name server
 * and proxy of the deployment. Without "deployment" the file is one
 * instance of each daemon, as before.
 *
 *   cm_conf
 *    +- regions[]        name, zones[]
 *    +- members[]        name, region (index), zone (index or -1), lb
 *    +- members_from     the host cluster's member registry (KubeFed, Karmada)
 *    +- services[]       "ns/name", port, check, policy, aliases[]
 *    +- client_networks[] prefix -> region (index)
 *    +- latency_ms       region x region matrix (symmetric, fallback only)
 *    +- allow_addresses  special ranges state documents may carry (loopback...)
 *    +- dnsd, health, proxy, etcd sections
 *    +- deployment       name_servers, vantages, proxies: the instances
 *    +- warnings         what --check-config reports without failing
 */
#ifndef COMMON_CM_CONF_H
#define COMMON_CM_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_net.h"

#define CM_CONF_ERR_MAX    512
#define CM_LATENCY_UNKNOWN UINT32_MAX
#define CM_CONF_ALLOW_MAX  64 /* allow_addresses entries */

struct cm_conf_region {
    char *name;   /* owned, e.g. "us-east-1" */
    char **zones; /* owned array of owned strings, e.g. "us-east-1a" */
    size_t zone_count;
    bool has_location; /* regions.*.location given */
    double lat, lon;   /* degrees: [-90, 90], [-180, 180] */
    uint32_t bias_km;  /* subtracted from this region's distance (nearest placement) */
};

/* dnsd.geo_map: one GeoIP code -> region. */
enum cm_geo_kind {
    CM_GEO_SUBDIVISION = 0, /* "JP-13": ISO 3166-2, country + subdivision */
    CM_GEO_COUNTRY = 1,     /* "JP": ISO 3166-1 alpha-2 */
    CM_GEO_CONTINENT = 2,   /* "EU": MaxMind continent code */
};

struct cm_conf_geo_map {
    char code[8]; /* upper case, without the "country:"/"continent:" prefix */
    enum cm_geo_kind kind;
    size_t region; /* index into cm_conf.regions */
};

/* dnsd.geoip: a MaxMind DB (.mmdb) file compiled into the client lookup. */
struct cm_conf_geoip {
    bool present;  /* the section exists */
    char *path;    /* owned path, required */
    bool required; /* default true: a database that does not open stops start */
};

enum cm_lb_mode {
    CM_LB_NATIVE = 0, /* the member's Service has its own load balancer */
    CM_LB_PROXY = 1,  /* fedgslb-proxy stands in at lb.address */
};

struct cm_conf_member {
    char *name;       /* owned, e.g. "usa" */
    size_t region;    /* index into cm_conf.regions */
    int zone;         /* index into that region's zones, -1 when not given */
    char *kubeconfig; /* owned path, NULL when not given */
    char *context;    /* owned, NULL when not given */
    bool in_cluster;  /* the API server of the cluster fedgslb-health runs in */
    enum cm_lb_mode lb_mode;
    char *lb_address; /* owned textual IP, NULL unless lb.mode is "proxy" */
};

/* members_from.source: the registry the host cluster keeps of its members. */
enum cm_registry_source {
    CM_REGISTRY_KUBEFED = 0, /* core.kubefed.io/v1beta1 KubeFedCluster + Secret */
    CM_REGISTRY_KARMADA = 1, /* cluster.karmada.io/v1alpha1 Cluster + Secret */
};

/*
 * members_from: members read from a host cluster's registry at run time
 * (fedgslb-health watches it); they join the configured members. Only
 * fedgslb-health reads the host cluster; dnsd and the proxy learn these
 * members from the state documents (cm_state_check_conf accepts them when
 * this section is present).
 */
struct cm_conf_members_from {
    bool present;                   /* the section exists */
    enum cm_registry_source source; /* required */
    char *kubeconfig; /* owned path of the host cluster's kubeconfig, NULL = default */
    char *context;    /* owned, NULL = current-context */
    bool in_cluster;  /* the host cluster is the one fedgslb-health runs in */
    char *namespace_; /* owned; KubeFed: its namespace (default
                         "kube-federation-system"); NULL for Karmada */
    bool services;    /* KubeFed: FederatedService, Domain and ServiceDNSRecord
                         objects add services (default true; false for Karmada) */
    /* Where members the registry does not place go, by member name (only
     * name, region and zone are used). Owned. */
    struct cm_conf_member *locations;
    size_t location_count;
};

enum cm_check_type {
    CM_CHECK_HTTP = 0,
    CM_CHECK_HTTPS = 1,
    CM_CHECK_TCP = 2,
    CM_CHECK_NONE = 3, /* no data-plane probe: Kubernetes readiness only */
};

struct cm_conf_check {
    enum cm_check_type type; /* default http */
    char *path;              /* owned, default "/healthz" */
    char *host;              /* owned Host header / SNI, NULL = address */
    char *expect_body;       /* owned substring, NULL = any */
    uint16_t status_min;     /* expected statuses, default 200-399 */
    uint16_t status_max;
    uint16_t port;        /* 0 = the service port */
    bool tls_verify;      /* default true */
    uint32_t interval_ms; /* default 10000, 100..3600000 */
    uint32_t timeout_ms;  /* default 3000, 10..60000, < interval */
    uint32_t rise;        /* default 2, 1..100 */
    uint32_t fall;        /* default 3, 1..100 */
};

enum cm_all_down {
    CM_ALL_DOWN_FAIL_OPEN = 0,   /* answer every member, ranked, at min_ttl_s */
    CM_ALL_DOWN_FAIL_CLOSED = 1, /* NODATA with a short negative TTL */
    CM_ALL_DOWN_SORRY = 2,       /* CNAME to policy.sorry_target */
};

#define CM_POLICY_UNSET     UINT32_MAX /* policy.weights / priority: member not listed */
#define CM_POLICY_VALUE_MAX 1000u      /* largest weight and priority */

struct cm_conf_policy {
    enum cm_all_down all_down; /* "fail-open" (default), "fail-closed", "sorry:<name>" */
    char *sorry_target;        /* owned absolute domain name, NULL unless SORRY */
    uint32_t max_answers;      /* default 8, 1..64 */
    uint32_t latency_slack_ms; /* default 5, 0..10000 */
    bool prefer_own_region;    /* default true: of equally near members, the client's region's */
    /* Traffic policy by conf member index (owned, member_count entries with
     * CM_POLICY_UNSET for members not listed; NULL when the key is absent):
     * weights 0..1000 (0 = standby), priority groups 0..1000 (lower first). */
    uint32_t *weights;
    uint32_t *priority;
};

struct cm_conf_service {
    char *key;     /* owned "ns/name", e.g. "default/web" */
    char *ns;      /* owned, "default" */
    char *name;    /* owned, "web" */
    uint16_t port; /* 1..65535, required */
    struct cm_conf_check check;
    struct cm_conf_policy policy;
    char **aliases; /* owned absolute names (no trailing dot), lowercased */
    size_t alias_count;
};

struct cm_conf_client_net {
    char *cidr;         /* owned, as written */
    int family;         /* AF_INET or AF_INET6 */
    uint8_t addr[16];   /* network address, host bits zero */
    uint8_t prefix_len; /* 0..32 or 0..128 */
    size_t region;      /* index into cm_conf.regions */
};

/* A vantage's own credential: it may PUT only that vantage's document. */
struct cm_conf_vantage_token {
    char *vantage;    /* owned map key: a region name */
    char *token_file; /* owned path */
    char *token;      /* owned secret read from token_file; never logged */
};

struct cm_conf_control_tls {
    bool enabled;      /* the "tls" object exists: the listener speaks only TLS */
    char *certificate; /* owned path: PEM chain, leaf first */
    char *key;         /* owned path: PEM private key */
    char *client_ca;   /* owned path, NULL = no client certificate asked */
    char *ca_file;     /* owned path: the CA clients (fedgslbctl) verify us with, NULL = system */
};

struct cm_conf_control {
    bool enabled; /* false when the section is absent */
    struct cm_addr listen;
    char *token_file; /* owned path of the operator token; NULL = no auth (loopback only) */
    char *token;      /* owned secret read from token_file; never logged */
    struct cm_conf_vantage_token *vantage_tokens; /* owned, by vantage (region) name */
    size_t vantage_token_count;
    bool public_read;            /* reads need no token even off loopback (default false) */
    uint32_t max_connections;    /* default 64, 1..4096 */
    uint32_t request_timeout_ms; /* a request head must arrive within this; default 10000 */
    struct cm_conf_control_tls tls;
};

/* DNS cookies (RFC 7873, RFC 9018 server cookies): dnsd.cookies. */
#define CM_COOKIE_SECRET_LEN 16
struct cm_conf_cookies {
    bool enabled;               /* the section exists */
    char *secret_file;          /* owned path: 32 hex digits, mode 0600; required */
    char *previous_secret_file; /* owned path, NULL = none: still accepted while rotating */
    bool require;               /* UDP queries with a client cookie but no valid server
                                   cookie get BADCOOKIE (default false) */
    uint8_t secret[CM_COOKIE_SECRET_LEN];   /* read from secret_file; never logged */
    uint8_t previous[CM_COOKIE_SECRET_LEN]; /* read from previous_secret_file */
    bool has_previous;
};

/* dnsd.nsid: the NSID payload (RFC 5001) as bytes, at most CM_NSID_MAX. */
#define CM_NSID_MAX 128

/* What fedgslb-health presents to https:// publish_to targets. */
struct cm_conf_publish_tls {
    bool enabled;
    char *ca_file;     /* owned path: the CA the targets' certificates chain to; NULL = system */
    char *certificate; /* owned path: client certificate for mutual TLS, NULL = none */
    char *key;         /* owned path: its key (required with certificate) */
};

/* dnsd.rrl: response rate limiting (dnsd/dns_rrl.h). Absent = disabled. */
struct cm_conf_dnsd_rrl {
    bool present;                  /* the "rrl" object exists */
    bool enabled;                  /* default false */
    uint32_t responses_per_second; /* default 20, 1..1000000 */
    uint32_t slip;                 /* default 2, 0..100 */
    uint32_t window_s;             /* default 15, 1..3600 */
    uint32_t ipv4_prefix;          /* default 24, 8..32 */
    uint32_t ipv6_prefix;          /* default 56, 16..128 */
    uint32_t table_size;           /* default 65536 buckets per worker, 1024..16777216 */
    char **exempt;                 /* owned CIDR strings as written, default none */
    size_t exempt_count;
    struct cm_conf_client_net *exempt_nets; /* owned, exempt[] parsed (region unused) */
};

/* dnsd.query_log: the sampled debug query log (dnsd/dns_qlog.h). */
struct cm_conf_dnsd_query_log {
    uint32_t sample;    /* log every Nth query of each worker; 0 = off (default) */
    uint32_t ring_size; /* records per worker between two drains: default 1024, 1..1048576 */
};

/* dnsd.packet_cache: each worker's UDP packet cache (dnsd/dns_pcache.h). */
struct cm_conf_dnsd_packet_cache {
    uint32_t entries; /* per worker, default 8192, 0 = off, at most 262144 */
};

struct cm_conf_dnsd {
    bool present;           /* the "dnsd" section exists */
    struct cm_addr *listen; /* owned array */
    size_t listen_count;
    size_t region;                  /* index; default region for unknown clients */
    char *zone_file;                /* owned path, required when present */
    uint32_t ttl_s;                 /* default 30, 1..86400 */
    uint32_t min_ttl_s;             /* default 5, 0..86400, <= ttl_s */
    uint32_t workers;               /* default 2, 1..64 */
    bool ecs;                       /* default true */
    char *state_file;               /* owned path, NULL = none */
    uint32_t tcp_idle_timeout_ms;   /* default 10000 (RFC 7766 suggests ~10 s), 100..3600000 */
    uint32_t tcp_max_conns;         /* default 1024 per worker, 1..65536 */
    uint32_t max_udp_size;          /* default 1232 (DNS flag day 2020), 512..4096 */
    char *nsid;                     /* owned: dnsd.nsid as written ("text" or "hex:..."),
                                       NULL = none */
    uint8_t nsid_data[CM_NSID_MAX]; /* the NSID payload decoded from nsid */
    size_t nsid_len;                /* 0 = no NSID */
    struct cm_conf_cookies cookies;
    char *user;  /* owned: user to run as after binding, NULL = stay */
    char *group; /* owned: group, NULL = the user's primary group */
    struct cm_conf_dnsd_rrl rrl;
    struct cm_conf_control control;
    uint32_t tcp_max_conns_per_source; /* default 16 per worker and /32 or /64, 0 = off */
    struct cm_conf_geoip geoip;
    struct cm_conf_geo_map *geo_map; /* owned array */
    size_t geo_map_count;
    struct cm_conf_dnsd_query_log query_log;
    struct cm_conf_dnsd_packet_cache packet_cache;
};

/* health.api: how fedgslb-health watches and checks each member's API server. */
struct cm_conf_health_api {
    uint32_t readyz_interval_ms; /* default 10000, 50..3600000 */
    uint32_t readyz_timeout_ms;  /* default 3000, 50..600000 */
    uint32_t rise;               /* successes to recover: default 1, 1..100 */
    uint32_t fall;               /* failures to mark unreachable: default 3, 1..100 */
    uint32_t watch_timeout_s;    /* watch timeoutSeconds (+-10 s jitter): default 300, 1..3600 */
    uint32_t list_timeout_ms;    /* one list page: default 30000, 100..600000 */
    uint32_t list_limit;         /* objects per list page: default 500, 1..100000 */
    uint32_t backoff_min_ms;     /* first retry delay: default 500, 10..600000 */
    uint32_t backoff_max_ms;     /* longest: default 30000, backoff_min_ms..3600000 */
};

struct cm_conf_health {
    bool present;
    size_t vantage;    /* region index */
    char **publish_to; /* owned URLs */
    size_t publish_to_count;
    uint32_t publish_interval_ms;       /* default 10000, 100..3600000 */
    struct cm_conf_check default_check; /* for services found by annotation only */
    char *probe_source;                 /* owned IP literal the probes connect from, NULL = any */
    char *state_file;
    char *publish_token_file; /* owned path: this vantage's token for publishing, NULL = the
                                 control token */
    char *publish_token;      /* owned secret read from it; never logged */
    struct cm_conf_publish_tls publish_tls;
    struct cm_conf_control control;
    struct cm_conf_health_api api;
    uint32_t exec_timeout_ms;    /* one exec credential plugin run: default 10000, 100..600000 */
    uint32_t max_probes;         /* data-plane probes in flight: default 512, 1..100000 */
    uint32_t startup_grace_ms;   /* wait for every member's first list: default 30000,
                                    0..3600000 */
    uint32_t publish_timeout_ms; /* one state push: default 5000, 50..600000 */
};

struct cm_conf_proxy_cert {
    char *cert; /* owned path: PEM chain, leaf first */
    char *key;  /* owned path: PEM private key */
};

struct cm_conf_proxy_tls {
    bool enabled; /* the "tls" object exists */
    struct cm_conf_proxy_cert
        *certificates; /* owned, >= 1 when enabled; the first is the default */
    size_t certificate_count;
};

struct cm_conf_proxy_tls_sessions {
    bool tickets;                   /* default true: session tickets (else session IDs only) */
    uint32_t ticket_key_rotation_s; /* default 3600, 1..302400: a ticket resumes for 1-2 periods */
    uint32_t cache_size;            /* default 20480, 0..10000000: server session cache (0 off) */
};

struct cm_conf_proxy_listen {
    struct cm_addr address;
    size_t member;   /* index into cm_conf.members */
    size_t service;  /* index into cm_conf.services */
    char **backends; /* owned "ip:port" strings: static backends used until a state
                        document provides some; NULL when not given */
    size_t backend_count;
    struct cm_conf_proxy_tls tls;
};

struct cm_conf_proxy_limits {
    uint32_t request_line_bytes;        /* default 8192, 256..1048576 */
    uint32_t header_bytes;              /* default 32768, 1024..1048576 */
    uint32_t header_count;              /* default 100, 8..1000 */
    uint32_t body_bytes;                /* default 1073741824 (1 GiB), 0..4294967295 */
    uint32_t upstream_idle_connections; /* kept per backend, default 1024, 0..100000 */
};

struct cm_conf_proxy_timeouts {
    uint32_t header_ms;        /* default 10000: whole request head (slowloris) */
    uint32_t idle_ms;          /* default 60000: idle keep-alive / stalled stream */
    uint32_t connect_ms;       /* default 3000: upstream connect */
    uint32_t response_ms;      /* default 30000: request sent -> response head */
    uint32_t drain_ms;         /* default 10000: SIGTERM grace for in-flight requests */
    uint32_t upstream_idle_ms; /* default 15000: an idle upstream connection is closed */
};

enum cm_access_log_format {
    CM_ACCESS_LOG_OFF = 0,      /* default */
    CM_ACCESS_LOG_JSON = 1,     /* one JSON object per line */
    CM_ACCESS_LOG_COMBINED = 2, /* Apache/nginx "combined" */
};

struct cm_conf_proxy_access_log {
    enum cm_access_log_format format;
    char *path; /* owned; "-" (default) is stdout */
};

struct cm_conf_proxy {
    bool present;
    struct cm_conf_proxy_listen *listen;
    size_t listen_count;
    char *state_file;
    struct cm_conf_control control;
    uint32_t max_connections; /* default 10000, 1..1000000 */
    struct cm_conf_proxy_limits limits;
    struct cm_conf_proxy_timeouts timeouts_ms;
    char **trusted_proxies; /* owned CIDR strings (validated: "10.0.0.0/8", "::1/128") */
    size_t trusted_proxy_count;
    struct cm_conf_proxy_access_log access_log;
    struct cm_conf_proxy_tls_sessions tls_sessions;
};

/*
 * The distributed mode: vantages write their documents to etcd, dnsd and the
 * proxy watch them there (cm_etcd.h). Present = this mode is on.
 */
struct cm_conf_etcd {
    bool present;
    char **endpoints; /* owned http(s) URLs of the cluster's members */
    size_t endpoint_count;
    char *prefix;                   /* default "/fedgslb/"; always ends with "/" */
    struct cm_conf_publish_tls tls; /* https endpoints: CA, client certificate */
    char *username;                 /* owned, NULL = no etcd authentication */
    char *password_file;            /* owned path, with username */
    char *password;                 /* owned secret read from password_file; never logged */
    uint32_t request_timeout_ms;    /* one request: default 5000, 100..600000 */
    uint32_t check_interval_ms;     /* consumers check the member they watch: default 5000 */
    uint32_t backoff_min_ms;        /* first retry delay: default 250 */
    uint32_t backoff_max_ms;        /* longest: default 5000 */
};

/* The instances of a deployment: which daemon, and the key that lists them. */
enum cm_instance_kind {
    CM_INSTANCE_NAME_SERVER = 0, /* fedgslb-dnsd: deployment.name_servers */
    CM_INSTANCE_VANTAGE = 1,     /* fedgslb-health: deployment.vantages, named by region */
    CM_INSTANCE_PROXY = 2,       /* fedgslb-proxy: deployment.proxies */
};
#define CM_INSTANCE_KIND_COUNT 3

/* One instance of a daemon (deployment.name_servers.NAME, ...). */
struct cm_conf_instance {
    char *name;             /* owned map key (a vantage: its region) */
    struct cm_addr *listen; /* owned: a name server's DNS addresses; a proxy's bind address of
                               each proxy.listen entry, in order; NULL = the section's */
    size_t listen_count;
    struct cm_addr control; /* its control API: fedgslbctl and the vantages reach it there */
    size_t region;          /* a name server's dnsd.region; a vantage's region */
    char *state_file;       /* owned, NULL = the section's */
    char *probe_source;     /* a vantage's health.probe_source, NULL = the section's */
};

struct cm_conf_deployment {
    bool present; /* the "deployment" object exists */
    struct cm_conf_instance *name_servers;
    size_t name_server_count;
    struct cm_conf_instance *vantages;
    size_t vantage_count;
    struct cm_conf_instance *proxies;
    size_t proxy_count;
};

struct cm_conf {
    char *path;       /* owned, the file it was read from */
    char *federation; /* owned, a DNS label, e.g. "myfed" */
    char *zone;       /* owned, lowercased, no trailing dot */
    struct cm_conf_region *regions;
    size_t region_count;
    struct cm_conf_member *members;
    size_t member_count;
    struct cm_conf_members_from members_from;
    struct cm_conf_service *services;
    size_t service_count;
    struct cm_conf_client_net *client_networks;
    size_t client_network_count;
    uint32_t *latency_ms; /* region_count^2, [a * region_count + b]; diagonal 0;
                             CM_LATENCY_UNKNOWN where not configured */
    /* allow_addresses: the loopback / link-local ranges state documents may
     * carry (cm_ip_refused); owned, empty = none. */
    struct cm_ip_prefix *allow_addresses;
    size_t allow_address_count;
    struct cm_conf_dnsd dnsd;
    struct cm_conf_health health;
    struct cm_conf_proxy proxy;
    struct cm_conf_etcd etcd;
    struct cm_conf_deployment deployment;
    char *instance;  /* owned: the instance this conf was loaded for, NULL = none */
    char **warnings; /* owned: "file: path: text" lines --check-config shows */
    size_t warning_count;
    _Atomic int refs; /* private: use cm_conf_ref/unref */
    /* private: a configuration made by cm_conf_with_members() holds a
     * reference to the loaded one it extends, and shares everything with it
     * but the members array; NULL for a loaded configuration. */
    struct cm_conf *extends;
};

/**
 * Reads and validates @path. On success *out is a new conf with one reference.
 * On failure returns CM_ECONFIG (or CM_ENOENT / CM_EPARSE / CM_ENOMEM) and
 * writes "file: path: reason" into @err (@errlen bytes, CM_CONF_ERR_MAX is
 * enough). Relative paths inside the file are kept as written (they resolve
 * against the working directory, as DESIGN.md's example assumes).
 */
int cm_conf_load(const char *path, struct cm_conf **out, char *err, size_t errlen);

/** The same from a JSON text; @name stands for the file name in errors. */
int cm_conf_load_string(const char *name, const char *text, struct cm_conf **out, char *err,
                        size_t errlen);

/**
 * Loads @path for a daemon of @kind. When the file's deployment lists
 * instances of @kind, @instance must name one of them, whose values then
 * stand in for the section's (conf->instance is set); otherwise @instance
 * must be NULL. Errors as cm_conf_load, and "--instance ..." ones.
 */
int cm_conf_load_instance(const char *path, enum cm_instance_kind kind, const char *instance,
                          struct cm_conf **out, char *err, size_t errlen);
/** cm_conf_load_instance from a JSON text (tests). */
int cm_conf_load_string_instance(const char *name, const char *text, enum cm_instance_kind kind,
                                 const char *instance, struct cm_conf **out, char *err,
                                 size_t errlen);

/** Logs each of conf->warnings (cm_log_warn): at start, reload and --check-config. */
void cm_conf_log_warnings(const struct cm_conf *conf);

/** The instances of @kind (borrowed; *count entries, 0 without a deployment). */
const struct cm_conf_instance *cm_conf_instances(const struct cm_conf *conf,
                                                 enum cm_instance_kind kind, size_t *count);
/** "name server", "vantage", "proxy". */
const char *cm_instance_kind_name(enum cm_instance_kind kind);
/** "name_servers", "vantages", "proxies": the key under "deployment". */
const char *cm_instance_kind_key(enum cm_instance_kind kind);

/** Takes a reference; returns @conf. Not thread-safe against unref of the last one. */
struct cm_conf *cm_conf_ref(struct cm_conf *conf);
/** Drops a reference; frees on the last. Accepts NULL. Atomic. */
void cm_conf_unref(struct cm_conf *conf);

/**
 * A configuration equal to @base (a reference is taken) with @count members
 * appended after its own: copies of @extra's name, region and zone (lb mode
 * native, no kubeconfig). Everything else is shared with @base, so this is
 * cheap; the members come from a registry at run time (members_from) and
 * their names must not be configured ones (the caller checks). @base may
 * itself be one of these: the members then extend its loaded configuration.
 * NULL on ENOMEM.
 */
struct cm_conf *cm_conf_with_members(struct cm_conf *base, const struct cm_conf_member *extra,
                                     size_t count);
/** The loaded configuration @conf extends (cm_conf_with_members), else @conf. */
struct cm_conf *cm_conf_loaded(struct cm_conf *conf);

/** Index of the named region / member / service ("ns/name"), or -1. */
int cm_conf_region_index(const struct cm_conf *conf, const char *name);
int cm_conf_member_index(const struct cm_conf *conf, const char *name);
int cm_conf_service_index(const struct cm_conf *conf, const char *key);

struct cm_buf;

/**
 * Writes the configuration reference (markdown: every key, its type,
 * default, allowed values and meaning) into @out. CM_ECONFIG when a key has
 * no meaning or a meaning names no key; each such problem is a line in
 * @problems.
 */
int cm_conf_reference(struct cm_buf *out, struct cm_buf *problems);

/** Static latency between two regions, CM_LATENCY_UNKNOWN if not configured. */
uint32_t cm_conf_latency(const struct cm_conf *conf, size_t region_a, size_t region_b);

#endif /* COMMON_CM_CONF_H */
