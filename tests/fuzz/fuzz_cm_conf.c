/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_cm_conf.c -- libFuzzer target: arbitrary bytes through the configuration
 * loader. Every input must either load (and free cleanly) or fail with a
 * message; sanitizers catch the rest. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    err[0] = '\0';
    if (cm_conf_load_string("fuzz.json", text, &conf, err, sizeof(err)) == CM_OK) {
        if (cm_conf_ref(conf) != conf)
            abort();
        cm_conf_unref(conf);
        cm_conf_unref(conf);
    } else if (err[0] == '\0') {
        abort(); /* every failure explains itself */
    }
    free(text);
    return 0;
}
