/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_conf.h -- the small configuration the state and intent fuzz targets
 * check what they accept against: regions us-east-1 and eu-west-1, members
 * usa and eur, service default/web. Loaded once per process.
 */
#ifndef TESTS_FUZZ_FUZZ_CONF_H
#define TESTS_FUZZ_FUZZ_CONF_H

#include <stdlib.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"

static inline struct cm_conf *fuzz_conf(void)
{
    static const char text[] = "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
                               " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
                               "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
                               " \"members\": {\"usa\": {\"region\": \"us-east-1\"},"
                               "             \"eur\": {\"region\": \"eu-west-1\"}},"
                               " \"services\": {\"default/web\": {\"port\": 80}}}";
    static struct cm_conf *conf;
    char err[CM_CONF_ERR_MAX];

    if (conf == NULL && cm_conf_load_string("fuzz.json", text, &conf, err, sizeof(err)) != CM_OK)
        abort();
    return conf;
}

#endif /* TESTS_FUZZ_FUZZ_CONF_H */
