/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_hc_exec.c -- libFuzzer target: arbitrary bytes as an exec credential
 * plugin's stdout (hc_exec_parse). Every input either yields a credential
 * that is safe to put into an HTTP header or a TLS blob, or fails with a
 * message that never quotes the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "health/hc_exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    char *tok = NULL, *cert = NULL, *key = NULL;
    int64_t exp = 0;
    int rc = hc_exec_parse((const char *)data, size, "client.authentication.k8s.io/v1", &tok, &cert,
                           &key, &exp, err, sizeof(err));

    if (rc != CM_OK) {
        if (tok != NULL || cert != NULL || key != NULL || err[0] == '\0')
            abort();
        return 0;
    }
    if (tok == NULL && cert == NULL)
        abort();
    if ((cert == NULL) != (key == NULL) || exp < 0)
        abort();
    for (const char *p = tok; p != NULL && *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            abort(); /* header injection */
    }
    free(tok);
    free(cert);
    free(key);
    return 0;
}
