/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_base64.h -- standard base64 (RFC 4648 section 4, with padding), decoded
 * as Go's encoding/json decodes a []byte field: kubeconfig *-data fields,
 * a KubeFedCluster's caBundle, a Secret's data values. Line breaks and
 * blanks between the characters are skipped (folded YAML); nothing else is
 * forgiven.
 */
#ifndef COMMON_CM_BASE64_H
#define COMMON_CM_BASE64_H

#include <stddef.h>

/**
 * Decodes @len bytes at @in (borrowed, need not be NUL-terminated). On
 * success *out is a new NUL-terminated buffer of *outlen decoded bytes (the
 * caller frees it; it may hold a secret: wipe it first). Temporary copies are
 * wiped. CM_EPARSE for invalid or empty input, CM_ENOMEM.
 */
int cm_base64_decode(const char *in, size_t len, char **out, size_t *outlen);

#endif /* COMMON_CM_BASE64_H */
