/* SPDX-License-Identifier: Apache-2.0 */
#include "common/cm_opts.h"

#include <getopt.h>
#include <stdlib.h>

int cm_opts_parse(int argc, char **argv, const char *prog, const char *version,
                  cm_opts_usage_fn *usage, struct cm_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"log-format", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'l'},
        {"foreground", no_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"instance", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    *o = (struct cm_opts){.format = CM_LOG_TEXT, .level = CM_LOG_INFO};
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            o->config = optarg;
            break;
        case 'k':
            o->check = true;
            break;
        case 'i':
            o->instance = optarg;
            break;
        case 'f':
            if (!cm_log_parse_format(optarg, &o->format)) {
                fprintf(stderr, "%s: --log-format: expected text or json\n", prog);
                return 2;
            }
            break;
        case 'l':
            if (!cm_log_parse_level(optarg, &o->level)) {
                fprintf(stderr, "%s: --log-level: expected error, warn, info or debug\n", prog);
                return 2;
            }
            break;
        case 'F':
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("%s %s\n", prog, version);
            return 0;
        default:
            fprintf(stderr, "%s: unknown or incomplete option \"%s\"\n", prog, argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o->instance == NULL)
        o->instance = getenv("FEDGSLB_INSTANCE");
    if (o->instance != NULL && o->instance[0] == '\0')
        o->instance = NULL;
    if (o->config == NULL) {
        fprintf(stderr, "%s: --config FILE is required\n", prog);
        usage(stderr);
        return 2;
    }
    return -1;
}
