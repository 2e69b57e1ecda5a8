/* SPDX-License-Identifier: Apache-2.0 */
/* test_ctl_args.c -- fedgslbctl's command line: commands, global options in
 * any position, defaults, and every usage error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "ctl/ctl_args.h"

#define ARGV(...) ((const char *const[]){"fedgslbctl", __VA_ARGS__})
#define ARGC(...)                                                                                  \
    ((int)(sizeof((const char *const[]){"fedgslbctl", __VA_ARGS__}) / sizeof(const char *)))
#define PARSE(o, env, err, ...)                                                                    \
    ctl_args_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), env, o, err, sizeof(err))

static void test_status_defaults(void **state)
{
    struct ctl_opts o;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&o, NULL, err, "status"), CM_OK);
    assert_int_equal(o.cmd, CTL_CMD_STATUS);
    assert_string_equal(o.config, CTL_DEFAULT_CONFIG);
    assert_false(o.config_given);
    assert_false(o.json);
    assert_int_equal(o.timeout_ms, CTL_DEFAULT_TIMEOUT_MS);
    assert_null(o.url[CTL_DAEMON_DNSD]);
    assert_null(o.token_file);
}

static void test_env_config_and_override(void **state)
{
    struct ctl_opts o;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&o, "/etc/fed.json", err, "status"), CM_OK);
    assert_string_equal(o.config, "/etc/fed.json");
    assert_true(o.config_given);
    assert_int_equal(PARSE(&o, "/etc/fed.json", err, "--config=x.json", "status"), CM_OK);
    assert_string_equal(o.config, "x.json");
    assert_int_equal(PARSE(&o, "", err, "status"), CM_OK);
    assert_false(o.config_given);
}

static void test_options_anywhere(void **state)
{
    struct ctl_opts o;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&o, NULL, err, "--json", "drain", "--dnsd", "http://h:1/", "eur",
                           "--token-file=t", "--timeout-ms", "250", "--health", "http://x:2",
                           "--proxy=http://y:3"),
                     CM_OK);
    assert_int_equal(o.cmd, CTL_CMD_DRAIN);
    assert_string_equal(o.arg, "eur");
    assert_true(o.json);
    assert_string_equal(o.url[CTL_DAEMON_DNSD], "http://h:1/");
    assert_string_equal(o.url[CTL_DAEMON_HEALTH], "http://x:2");
    assert_string_equal(o.url[CTL_DAEMON_PROXY], "http://y:3");
    assert_string_equal(o.token_file, "t");
    assert_int_equal(o.timeout_ms, 250);
}

static void test_explain(void **state)
{
    struct ctl_opts o;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&o, NULL, err, "explain", "web.x.", "--client", "10.2.0.1"), CM_OK);
    assert_int_equal(o.cmd, CTL_CMD_EXPLAIN);
    assert_string_equal(o.arg, "web.x.");
    assert_string_equal(o.client, "10.2.0.1");
    assert_null(o.ecs);
    assert_int_equal(PARSE(&o, NULL, err, "explain", "w", "--client=10.2.3.0/24"), CM_OK);
    assert_string_equal(o.ecs, "24");
    assert_int_equal(PARSE(&o, NULL, err, "explain", "w", "--region", "eu-west-1"), CM_OK);
    assert_string_equal(o.region, "eu-west-1");
    assert_null(o.client);
}

static void test_state_daemon(void **state)
{
    struct ctl_opts o;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&o, NULL, err, "state"), CM_OK);
    assert_int_equal(o.daemon, CTL_DAEMON_DNSD);
    assert_int_equal(PARSE(&o, NULL, err, "state", "health"), CM_OK);
    assert_int_equal(o.daemon, CTL_DAEMON_HEALTH);
    assert_int_equal(PARSE(&o, NULL, err, "state", "proxy"), CM_OK);
    assert_int_equal(o.daemon, CTL_DAEMON_PROXY);
    assert_int_equal(PARSE(&o, NULL, err, "state", "etcd"), CM_EINVAL);
    assert_non_null(strstr(err, "unknown daemon \"etcd\""));
}

static void test_help(void **state)
{
    struct ctl_opts o;
    char err[256] = "";

    (void)state;
    assert_int_equal(PARSE(&o, NULL, err, "--help"), CM_OK);
    assert_int_equal(o.cmd, CTL_CMD_HELP);
    assert_non_null(strstr(ctl_args_usage(), "check-config"));
}

struct bad_case {
    const char *expect; /* substring of the error */
    int argc;
    const char *const *argv;
};

#define BAD(expect, ...)                                                                           \
    {                                                                                              \
        expect, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__)                                               \
    }

static void test_usage_errors(void **state)
{
    const struct bad_case cases[] = {
        BAD("no command", "--json"),
        BAD("unknown command \"stats\"", "stats"),
        BAD("unknown option --jsn", "status", "--jsn"),
        BAD("--config: missing value", "status", "--config"),
        BAD("--config: empty value", "status", "--config="),
        BAD("--timeout-ms: not a number", "status", "--timeout-ms", "0"),
        BAD("--timeout-ms: not a number", "status", "--timeout-ms", "12x"),
        BAD("--timeout-ms: not a number", "status", "--timeout-ms", "9999999"),
        BAD("status: expects no arguments", "status", "extra"),
        BAD("drain: expects one argument", "drain"),
        BAD("undrain: expects one argument", "undrain", "a", "b"),
        BAD("give --client IP or --region R", "explain", "web"),
        BAD("give --client IP or --region R", "explain", "web", "--client", "1.2.3.4", "--region",
            "r"),
        BAD("--ecs goes with --client", "explain", "web", "--region", "r", "--ecs", "24"),
        BAD("together", "explain", "web", "--client", "10.0.0.0/8", "--ecs", "8"),
        BAD("empty prefix", "explain", "web", "--client", "10.0.0.0/"),
        BAD("options of explain", "status", "--client", "1.2.3.4"),
        BAD("too many arguments", "explain", "a", "b", "c", "d", "e"),
        BAD("intent: expects a subcommand", "intent"),
        BAD("intent: unknown subcommand \"nap\"", "intent", "nap"),
        BAD("intent list: expects no arguments", "intent", "list", "x"),
        BAD("intent remove: expects one intent id", "intent", "remove"),
        BAD("intent add: expects KIND TARGET [VALUE]", "intent", "add", "drain", "--reason", "r"),
        BAD("intent add: --reason TEXT is required", "intent", "add", "drain", "eur"),
        BAD("--for: not a duration", "drain", "eur", "--for", "2w"),
        BAD("--for: not a duration", "drain", "eur", "--for", "0s"),
        BAD("--for: not a duration", "drain", "eur", "--for", "366d"),
        BAD("--for and --until together", "drain", "eur", "--for", "1h", "--until",
            "2026-11-21T07:00:00Z"),
        BAD("--for and --until go with drain and intent add", "undrain", "eur", "--for", "1h"),
        BAD("--service goes with intent add", "drain", "eur", "--service", "default/web"),
        BAD("--reason and --author go with commands that change intents", "status", "--reason",
            "x"),
        BAD("--reason and --author go with commands that change intents", "intent", "list",
            "--author", "x"),
    };
    struct ctl_opts o;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";

        assert_int_equal(ctl_args_parse(cases[i].argc, cases[i].argv, NULL, &o, err, sizeof(err)),
                         CM_EINVAL);
        if (strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: \"%s\" does not contain \"%s\"", i, err, cases[i].expect);
    }
}

static void test_intent(void **state)
{
    struct ctl_opts o;
    char err[256] = "";
    uint64_t d = 0;

    (void)state;
    assert_int_equal(PARSE(&o, NULL, err, "intent", "add", "weight", "usa", "0", "--service",
                           "default/web", "--reason", "standby", "--for", "2h", "--author", "bob"),
                     CM_OK);
    assert_int_equal(o.cmd, CTL_CMD_INTENT);
    assert_int_equal(o.intent, CTL_INTENT_ADD);
    assert_int_equal(o.nargs, 4);
    assert_string_equal(o.args[1], "weight");
    assert_string_equal(o.args[3], "0");
    assert_string_equal(o.service, "default/web");
    assert_string_equal(o.reason, "standby");
    assert_string_equal(o.author, "bob");
    assert_int_equal(o.for_s, 7200);
    assert_int_equal(PARSE(&o, NULL, err, "intent", "sync"), CM_OK);
    assert_int_equal(o.intent, CTL_INTENT_SYNC);
    assert_int_equal(PARSE(&o, NULL, err, "intent", "remove", "drain-eur-1-abcd"), CM_OK);
    assert_int_equal(o.intent, CTL_INTENT_REMOVE);
    /* The drain shorthand keeps working, and takes the intent options. */
    assert_int_equal(PARSE(&o, NULL, err, "drain", "eur", "--until=2026-11-22T00:00:00Z"), CM_OK);
    assert_int_equal(o.cmd, CTL_CMD_DRAIN);
    assert_string_equal(o.arg, "eur");
    assert_string_equal(o.until, "2026-11-22T00:00:00Z");
    assert_true(ctl_parse_duration("90", 1000, &d) && d == 90);
    assert_true(ctl_parse_duration("90s", 1000, &d) && d == 90);
    assert_true(ctl_parse_duration("30m", 10000, &d) && d == 1800);
    assert_true(ctl_parse_duration("7d", 7 * 86400, &d) && d == 7 * 86400);
    assert_false(ctl_parse_duration("7d", 7 * 86400 - 1, &d));
    assert_false(ctl_parse_duration("m", 100, &d));
    assert_false(ctl_parse_duration("", 100, &d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_defaults),  cmocka_unit_test(test_env_config_and_override),
        cmocka_unit_test(test_options_anywhere), cmocka_unit_test(test_explain),
        cmocka_unit_test(test_state_daemon),     cmocka_unit_test(test_help),
        cmocka_unit_test(test_usage_errors),     cmocka_unit_test(test_intent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
