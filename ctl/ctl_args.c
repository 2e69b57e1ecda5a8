/* SPDX-License-Identifier: Apache-2.0 */
/* ctl_args.c -- fedgslbctl's command line parser. */
#include "ctl/ctl_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_str.h"

struct cmd_def {
    const char *name;
    enum ctl_cmd cmd;
    int min_args; /* positional arguments after the command */
    int max_args;
};

static const struct cmd_def cmds[] = {
    {"status", CTL_CMD_STATUS, 0, 0},
    {"explain", CTL_CMD_EXPLAIN, 1, 1},
    {"drain", CTL_CMD_DRAIN, 1, 1},
    {"undrain", CTL_CMD_UNDRAIN, 1, 1},
    {"check-config", CTL_CMD_CHECK_CONFIG, 0, 0},
    {"state", CTL_CMD_STATE, 0, 1},
    {"config-reference", CTL_CMD_CONFIG_REF, 0, 0},
    {"intent", CTL_CMD_INTENT, 1, 4},
    {"help", CTL_CMD_HELP, 0, 1},
};

/* Options that take a value; the index is used by set_value(). */
enum opt_id {
    OPT_CONFIG = 0,
    OPT_DNSD = 1,
    OPT_HEALTH = 2,
    OPT_PROXY = 3,
    OPT_TOKEN_FILE = 4,
    OPT_TIMEOUT = 5,
    OPT_CLIENT = 6,
    OPT_REGION = 7,
    OPT_ECS = 8,
    OPT_CACERT = 9,
    OPT_CERT = 10,
    OPT_KEY = 11,
    OPT_REASON = 12,
    OPT_AUTHOR = 13,
    OPT_SERVICE = 14,
    OPT_FOR = 15,
    OPT_UNTIL = 16,
};

static const char *const value_opts[] = {
    "--config", "--dnsd",   "--health",  "--proxy",  "--token-file", "--timeout-ms",
    "--client", "--region", "--ecs",     "--cacert", "--cert",       "--key",
    "--reason", "--author", "--service", "--for",    "--until",
};

static const char usage[] =
    "usage: fedgslbctl [options] COMMAND [args]\n"
    "\n"
    "commands:\n"
    "  status                       services x members (merged health, RTT per vantage,\n"
    "                               ready endpoints, flags) and the member each region gets\n"
    "  explain NAME --client IP[/BITS] | --region R\n"
    "                               the ranking behind one answer\n"
    "  drain MEMBER | undrain MEMBER [--for D | --until T] [--reason TEXT]\n"
    "                               take a member out of (or back into) every answer: a\n"
    "                               drain intent, on every name server and proxy\n"
    "  intent list                  the operator's intents, and which instances hold each\n"
    "  intent add KIND TARGET [N] --reason TEXT [--for D | --until T] [--service S]\n"
    "                               KIND: drain, force-up, force-down MEMBER; evacuate\n"
    "                               REGION (--for/--until needed); weight, priority\n"
    "                               MEMBER N --service NS/NAME. Written to every name\n"
    "                               server and proxy, each one's result reported\n"
    "  intent remove ID             remove an intent everywhere\n"
    "  intent sync                  re-deliver intents to instances that missed them\n"
    "                               (every intent command does it first)\n"
    "  check-config                 validate the configuration file\n"
    "  state [dnsd|health|proxy]    a daemon's GET /v1/state, as JSON\n"
    "  config-reference             every configuration key (markdown, docs/configuration.md)\n"
    "\n"
    "options:\n"
    "  --config FILE      configuration (default $FEDGSLB_CONFIG, then " CTL_DEFAULT_CONFIG ")\n"
    "  --dnsd URL         dnsd control API (default: dnsd.control.listen)\n"
    "  --health URL       health control API (default: health.control.listen)\n"
    "  --proxy URL        proxy control API (default: proxy.control.listen)\n"
    "  --token-file FILE  bearer token (default: the called section's control.token_file)\n"
    "  --cacert FILE      CA for https control APIs (default: <section>.control.tls.ca_file)\n"
    "  --cert FILE        client certificate, where control.tls.client_ca asks for one\n"
    "  --key FILE         its private key\n"
    "  --json             machine-readable output\n"
    "  --timeout-ms N     per request (default 5000)\n"
    "  --reason TEXT      intents: why (default for drain/undrain: the command)\n"
    "  --author NAME      intents: who (default $USER)\n"
    "  --for D, --until T intents: an expiry, in 90s/30m/2h/7d or RFC 3339 UTC\n"
    "  --service NS/NAME  weight and priority intents: the service\n"
    "\n"
    "With a deployment in the configuration, status, drain, undrain and intent reach\n"
    "every name server (and proxy): status says whether they agree.\n"
    "\n"
    "exit status: 0 ok, 1 usage or configuration error, 2 daemon unreachable (with\n"
    "several instances: one of them), 3 request rejected by the daemon, 4 status:\n"
    "the name servers disagree\n";

const char *ctl_args_usage(void)
{
    return usage;
}

const char *ctl_daemon_name(enum ctl_daemon d)
{
    switch (d) {
    case CTL_DAEMON_DNSD:
        return "dnsd";
    case CTL_DAEMON_HEALTH:
        return "health";
    case CTL_DAEMON_PROXY:
        return "proxy";
    }
    return "?";
}

static int usage_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return CM_EINVAL;
}

static int set_value(struct ctl_opts *o, enum opt_id id, const char *v, char *err, size_t errlen)
{
    uint64_t n;

    if (v[0] == '\0')
        return usage_err(err, errlen, "%s: empty value", value_opts[id]);
    switch (id) {
    case OPT_CONFIG:
        o->config = v;
        o->config_given = true;
        break;
    case OPT_DNSD:
    case OPT_HEALTH:
    case OPT_PROXY:
        o->url[id - OPT_DNSD] = v;
        break;
    case OPT_TOKEN_FILE:
        o->token_file = v;
        break;
    case OPT_CACERT:
        o->cacert = v;
        break;
    case OPT_CERT:
        o->cert = v;
        break;
    case OPT_KEY:
        o->key = v;
        break;
    case OPT_TIMEOUT:
        if (!cm_parse_u64(v, CTL_MAX_TIMEOUT_MS, &n) || n == 0)
            return usage_err(err, errlen, "--timeout-ms: not a number 1..%u", CTL_MAX_TIMEOUT_MS);
        o->timeout_ms = (uint32_t)n;
        break;
    case OPT_CLIENT:
        o->client = v;
        break;
    case OPT_REGION:
        o->region = v;
        break;
    case OPT_ECS:
        o->ecs = v;
        break;
    case OPT_REASON:
        o->reason = v;
        break;
    case OPT_AUTHOR:
        o->author = v;
        break;
    case OPT_SERVICE:
        o->service = v;
        break;
    case OPT_UNTIL:
        o->until = v;
        break;
    case OPT_FOR:
        if (!ctl_parse_duration(v, CTL_MAX_FOR_S, &o->for_s))
            return usage_err(err, errlen,
                             "--for: not a duration (90s, 30m, 2h, 7d; at most 365 days)");
        break;
    }
    return CM_OK;
}

bool ctl_parse_duration(const char *s, uint64_t max, uint64_t *out)
{
    static const struct {
        char unit;
        uint64_t s;
    } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
    size_t len = strlen(s);
    uint64_t mult = 1, n;

    for (size_t i = 0; len > 1 && i < sizeof(units) / sizeof(units[0]); i++) {
        if (s[len - 1] == units[i].unit) {
            mult = units[i].s;
            len--;
            break;
        }
    }
    if (!cm_parse_u64_n(s, len, max, &n) || n == 0 || n > max / mult)
        return false;
    *out = n * mult;
    return true;
}

/* intent SUB ...: the subcommand and its arguments. */
static int finish_intent(struct ctl_opts *o, char *err, size_t errlen)
{
    static const char *const subs[] = {"list", "add", "remove", "sync"};
    const char *sub = o->args[0];
    int k = 0;

    while (k < 4 && strcmp(sub, subs[k]) != 0)
        k++;
    if (k == 4)
        return usage_err(err, errlen, "intent: unknown subcommand \"%s\" (list, add, remove, sync)",
                         sub);
    o->intent = (enum ctl_intent_sub)k;
    if ((o->intent == CTL_INTENT_LIST || o->intent == CTL_INTENT_SYNC) && o->nargs != 1)
        return usage_err(err, errlen, "intent %s: expects no arguments", sub);
    if (o->intent == CTL_INTENT_REMOVE && o->nargs != 2)
        return usage_err(err, errlen, "intent remove: expects one intent id");
    if (o->intent == CTL_INTENT_ADD && (o->nargs < 3 || o->nargs > 4))
        return usage_err(err, errlen, "intent add: expects KIND TARGET [VALUE]");
    if (o->intent == CTL_INTENT_ADD && o->reason == NULL)
        return usage_err(err, errlen, "intent add: --reason TEXT is required (why)");
    return CM_OK;
}

/* Options that belong to some commands only. */
static int finish_intent_options(struct ctl_opts *o, char *err, size_t errlen)
{
    bool adds =
        o->cmd == CTL_CMD_DRAIN || (o->cmd == CTL_CMD_INTENT && o->intent == CTL_INTENT_ADD);
    bool writes = adds || o->cmd == CTL_CMD_UNDRAIN ||
                  (o->cmd == CTL_CMD_INTENT && o->intent != CTL_INTENT_LIST);

    if ((o->for_s != 0 || o->until != NULL) && !adds)
        return usage_err(err, errlen, "--for and --until go with drain and intent add");
    if (o->for_s != 0 && o->until != NULL)
        return usage_err(err, errlen, "--for and --until together: give one");
    if (o->service != NULL && !(o->cmd == CTL_CMD_INTENT && o->intent == CTL_INTENT_ADD))
        return usage_err(err, errlen, "--service goes with intent add (weight, priority)");
    if ((o->reason != NULL || o->author != NULL) && !writes)
        return usage_err(err, errlen, "--reason and --author go with commands that change intents");
    return CM_OK;
}

/* Matches "--name" or "--name=value" against the value options; -1 if none. */
static int match_value_opt(const char *a, const char **inline_value)
{
    for (size_t i = 0; i < sizeof(value_opts) / sizeof(value_opts[0]); i++) {
        const char *rest;

        if (!cm_str_skip_prefix(a, value_opts[i], &rest))
            continue;
        if (rest[0] == '\0') {
            *inline_value = NULL;
            return (int)i;
        }
        if (rest[0] == '=') {
            *inline_value = rest + 1;
            return (int)i;
        }
    }
    return -1;
}

static const struct cmd_def *find_cmd(const char *name)
{
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    }
    return NULL;
}

/* Checks the command's arguments once everything is parsed. */
static int finish(struct ctl_opts *o, const struct cmd_def *def, const char *const *pos, int npos,
                  char *err, size_t errlen)
{
    if (def == NULL)
        return usage_err(err, errlen, "no command given (try --help)");
    if (npos < def->min_args || npos > def->max_args)
        return usage_err(err, errlen, "%s: expects %s", def->name,
                         def->max_args == 0   ? "no arguments"
                         : def->min_args == 0 ? "at most one argument"
                         : def->max_args == 1 ? "one argument"
                                              : "a subcommand (list, add, remove, sync)");
    o->cmd = def->cmd;
    o->arg = npos > 0 ? pos[0] : NULL;
    o->nargs = npos;
    for (int i = 0; i < npos && i < CTL_MAX_ARGS; i++)
        o->args[i] = pos[i];
    if (o->cmd == CTL_CMD_HELP)
        return CM_OK;
    if (o->cmd == CTL_CMD_INTENT && finish_intent(o, err, errlen) != CM_OK)
        return CM_EINVAL;
    if (finish_intent_options(o, err, errlen) != CM_OK)
        return CM_EINVAL;
    if (o->cmd != CTL_CMD_EXPLAIN && (o->client != NULL || o->region != NULL || o->ecs != NULL))
        return usage_err(err, errlen, "--client, --region and --ecs are options of explain");
    if (o->cmd == CTL_CMD_STATE && o->arg != NULL) {
        if (strcmp(o->arg, "dnsd") == 0)
            o->daemon = CTL_DAEMON_DNSD;
        else if (strcmp(o->arg, "health") == 0)
            o->daemon = CTL_DAEMON_HEALTH;
        else if (strcmp(o->arg, "proxy") == 0)
            o->daemon = CTL_DAEMON_PROXY;
        else
            return usage_err(err, errlen, "state: unknown daemon \"%s\" (dnsd, health, proxy)",
                             o->arg);
    }
    if (o->cmd != CTL_CMD_EXPLAIN)
        return CM_OK;
    if ((o->client == NULL) == (o->region == NULL))
        return usage_err(err, errlen, "explain: give --client IP or --region R");
    if (o->client != NULL && strchr(o->client, '/') != NULL) {
        if (o->ecs != NULL)
            return usage_err(err, errlen, "explain: --client IP/BITS and --ecs together");
        /* "IP/BITS": the address part stays in argv, split by the caller. */
        o->ecs = strchr(o->client, '/') + 1;
        if (o->ecs[0] == '\0')
            return usage_err(err, errlen, "--client: empty prefix length after '/'");
    }
    if (o->region != NULL && o->ecs != NULL)
        return usage_err(err, errlen, "explain: --ecs goes with --client, not --region");
    return CM_OK;
}

int ctl_args_parse(int argc, const char *const *argv, const char *env_config, struct ctl_opts *o,
                   char *err, size_t errlen)
{
    const struct cmd_def *def = NULL;
    const char *pos[CTL_MAX_ARGS];
    int npos = 0;
    bool opts_done = false;

    memset(o, 0, sizeof(*o));
    o->timeout_ms = CTL_DEFAULT_TIMEOUT_MS;
    o->config = CTL_DEFAULT_CONFIG;
    if (env_config != NULL && env_config[0] != '\0') {
        o->config = env_config;
        o->config_given = true;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        int id;

        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--json") == 0) {
                o->json = true;
                continue;
            }
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                def = find_cmd("help");
                continue;
            }
            id = match_value_opt(a, &v);
            if (id < 0)
                return usage_err(err, errlen, "unknown option %s (try --help)", a);
            if (v == NULL) {
                if (i + 1 >= argc)
                    return usage_err(err, errlen, "%s: missing value", a);
                v = argv[++i];
            }
            if (set_value(o, (enum opt_id)id, v, err, errlen) != CM_OK)
                return CM_EINVAL;
            continue;
        }
        if (def == NULL) {
            def = find_cmd(a);
            if (def == NULL)
                return usage_err(err, errlen, "unknown command \"%s\" (try --help)", a);
            continue;
        }
        if (npos >= (int)(sizeof(pos) / sizeof(pos[0])))
            return usage_err(err, errlen, "%s: too many arguments", def->name);
        pos[npos++] = a;
    }
    return finish(o, def, pos, npos, err, errlen);
}
