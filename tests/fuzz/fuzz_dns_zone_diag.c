/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_dns_zone_diag.c -- the zone file error explainer on arbitrary text:
 * the parenthesis scan and the record explainer over every line range of a
 * small window. Lines reported must exist; messages must be terminated.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/dns_zone_diag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[256];
    int lines = 1, line;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    msg[0] = '\0';
    line = dns_zone_diag_parens((const char *)data, size, msg, sizeof(msg));
    if (line < 0 || line > lines || (line > 0 && memchr(msg, '\0', sizeof(msg)) == NULL))
        abort();
    for (int first = 1; first <= lines && first <= 4; first++) {
        for (int last = first; last <= lines && last <= first + 3; last++) {
            msg[0] = '\0';
            line = dns_zone_diag_rr((const char *)data, size, first, last, "prev.example.",
                                    "example.", msg, sizeof(msg));
            if (line < 0 || (line > 0 && (line < first || line > last)) ||
                memchr(msg, '\0', sizeof(msg)) == NULL)
                abort();
        }
    }
    return 0;
}
