/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_base64.h -- standard base64 (RFC 4648 section 4, with padding), as Go's
 * encoding/json writes []byte: kubeconfig certificate data and the keys and
 * values of etcd's JSON gateway.
 */
#ifndef COMMON_CM_BASE64_H
#define COMMON_CM_BASE64_H

#include <stddef.h>

/** Characters cm_base64_encode() writes for @len bytes, without the NUL. */
size_t cm_base64_encoded_len(size_t len);

/**
 * Encodes @len bytes at @in into @out, which has room for
 * cm_base64_encoded_len(@len) + 1 bytes; NUL-terminates. Returns the length.
 */
size_t cm_base64_encode(const void *in, size_t len, char *out);

/**
 * Decodes the @len characters at @in. ASCII whitespace (folded YAML, the line
 * breaks Go's decoder also skips) is ignored; anything else that is not
 * base64, a wrong length or padding anywhere but at the end is CM_EPARSE.
 * An empty input decodes to zero bytes. On success *out is a new
 * NUL-terminated buffer (free() it) of *outlen bytes. The scratch memory is
 * wiped (the data may be a private key). CM_EPARSE or CM_ENOMEM.
 */
int cm_base64_decode(const char *in, size_t len, char **out, size_t *outlen);

#endif /* COMMON_CM_BASE64_H */
