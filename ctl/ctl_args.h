/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_args.h -- fedgslbctl's command line: global options (anywhere on the
 * line), one command and its arguments. Pure: no I/O, so it is unit tested.
 *
 *   fedgslbctl [--config FILE] [--dnsd URL] [--health URL] [--proxy URL]
 *              [--token-file FILE] [--json] [--timeout-ms N] COMMAND ...
 *
 * Intent options: --reason TEXT, --author NAME, --service NS/NAME,
 * --for DURATION (90s, 30m, 2h, 7d) or --until TIME (RFC 3339).
 *
 * Every string in struct ctl_opts is borrowed from argv (or the environment
 * value passed in) and lives as long as they do.
 */
#ifndef CTL_CTL_ARGS_H
#define CTL_CTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_DEFAULT_CONFIG     "conf/federation.json"
#define CTL_DEFAULT_TIMEOUT_MS 5000u
#define CTL_MAX_TIMEOUT_MS     600000u

enum ctl_cmd {
    CTL_CMD_NONE = 0,         /* no command given: usage error */
    CTL_CMD_HELP = 1,         /* --help / help */
    CTL_CMD_STATUS = 2,       /* services x members, and who each region gets */
    CTL_CMD_EXPLAIN = 3,      /* explain NAME --client IP | --region R */
    CTL_CMD_DRAIN = 4,        /* drain MEMBER */
    CTL_CMD_UNDRAIN = 5,      /* undrain MEMBER */
    CTL_CMD_CHECK_CONFIG = 6, /* check-config */
    CTL_CMD_STATE = 7,        /* state [dnsd|health|proxy]: raw GET /v1/state */
    CTL_CMD_CONFIG_REF = 8,   /* config-reference: docs/configuration.md from the schema */
    CTL_CMD_INTENT = 9,       /* intent list|add|remove|sync */
};

/* intent's subcommands. */
enum ctl_intent_sub {
    CTL_INTENT_LIST = 0,   /* every instance's intents, and which hold each */
    CTL_INTENT_ADD = 1,    /* add KIND TARGET [VALUE] */
    CTL_INTENT_REMOVE = 2, /* remove ID */
    CTL_INTENT_SYNC = 3,   /* re-deliver what some instances miss */
};

#define CTL_MAX_ARGS  4             /* positional arguments after the command */
#define CTL_MAX_FOR_S (365 * 86400) /* --for */

/* Which daemon's control API a command talks to. */
enum ctl_daemon {
    CTL_DAEMON_DNSD = 0,
    CTL_DAEMON_HEALTH = 1,
    CTL_DAEMON_PROXY = 2,
};

struct ctl_opts {
    const char *config; /* never NULL after a successful parse */
    bool config_given;  /* --config or $FEDGSLB_CONFIG, not the default */
    const char *url[3]; /* --dnsd / --health / --proxy, by enum ctl_daemon; NULL = config */
    const char *token_file;
    const char *cacert; /* CA file for https, NULL = the section's control.tls.ca_file */
    const char *cert;   /* client certificate for mutual TLS, NULL = none */
    const char *key;    /* its key */
    bool json;
    uint32_t timeout_ms;
    enum ctl_cmd cmd;
    enum ctl_daemon daemon;         /* state: the daemon asked */
    const char *arg;                /* explain: the name; drain/undrain: the member */
    const char *client;             /* explain --client, address part */
    const char *ecs;                /* explain --client IP/BITS or --ecs BITS: prefix length text */
    const char *region;             /* explain --region */
    const char *args[CTL_MAX_ARGS]; /* the positional arguments after the command */
    int nargs;
    enum ctl_intent_sub intent; /* intent: the subcommand */
    const char *reason;         /* --reason: why (intents) */
    const char *author;         /* --author: who (default $USER) */
    const char *service;        /* --service: weight and priority intents */
    const char *until;          /* --until: an RFC 3339 expiry */
    uint64_t for_s;             /* --for: an expiry this many seconds from now (0: none) */
};

/**
 * Parses @argc/@argv (argv[0] is the program). @env_config is
 * $FEDGSLB_CONFIG or NULL. CM_OK, or CM_EINVAL with a one-line reason in
 * @err (a usage error). "--opt=value" and "--opt value" are both accepted.
 */
int ctl_args_parse(int argc, const char *const *argv, const char *env_config, struct ctl_opts *o,
                   char *err, size_t errlen);

/** The usage text (static). */
const char *ctl_args_usage(void);

/** "dnsd", "health" or "proxy". */
const char *ctl_daemon_name(enum ctl_daemon d);

/** Parses a duration "90", "90s", "30m", "2h", "7d" into seconds (1..@max). */
bool ctl_parse_duration(const char *s, uint64_t max, uint64_t *out);

#endif /* CTL_CTL_ARGS_H */
