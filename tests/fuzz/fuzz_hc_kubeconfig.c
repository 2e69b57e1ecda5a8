/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_hc_kubeconfig.c -- libFuzzer target: arbitrary bytes as a kubeconfig.
 * The first line of the input names the context to resolve ("" = the
 * current-context); the rest is the document. Referenced files are refused
 * (HC_KUBECONFIG_NO_FILES) so that input never opens arbitrary paths. Every
 * input must either resolve (and free cleanly) or fail with a message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "health/hc_kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[HC_KUBECONFIG_ERR_MAX];
    struct hc_kube_target *t = NULL;
    const uint8_t *nl = memchr(data, '\n', size < 64 ? size : 64);
    char context[65] = "";
    size_t skip = 0;
    int rc;

    if (nl != NULL) {
        memcpy(context, data, (size_t)(nl - data));
        context[nl - data] = '\0';
        skip = (size_t)(nl - data) + 1;
    }
    err[0] = '\0';
    rc = hc_kubeconfig_load_mem("fuzz/kubeconfig.yaml", (const char *)data + skip, size - skip,
                                context, HC_KUBECONFIG_NO_FILES, &t, err, sizeof(err));
    if (rc == CM_OK) {
        if (t == NULL || t->server == NULL || t->context == NULL || t->cluster == NULL)
            abort();
        if (strncmp(t->server, "http://", 7) != 0 && strncmp(t->server, "https://", 8) != 0)
            abort();
        if ((t->ca_pem == NULL) != (t->ca_pem_len == 0))
            abort();
        hc_kube_target_free(t);
    } else if (err[0] == '\0' || t != NULL) {
        abort(); /* every failure explains itself and hands nothing back */
    }
    return 0;
}
