/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_base64.c -- RFC 4648's test vectors both ways, every length
 * round-tripping, whitespace skipped, and what must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_base64.h"
#include "common/cm_err.h"

static void test_rfc4648_vectors(void **state)
{
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char enc[32], *dec = NULL;
        size_t n = strlen(vec[i][0]), declen = 99;

        assert_int_equal(cm_base64_encoded_len(n), strlen(vec[i][1]));
        assert_int_equal(cm_base64_encode(vec[i][0], n, enc), strlen(vec[i][1]));
        assert_string_equal(enc, vec[i][1]);
        assert_int_equal(cm_base64_decode(vec[i][1], strlen(vec[i][1]), &dec, &declen), CM_OK);
        assert_int_equal(declen, n);
        assert_memory_equal(dec, vec[i][0], n);
        assert_int_equal(dec[n], '\0');
        free(dec);
    }
}

static void test_every_byte_and_length(void **state)
{
    unsigned char in[300];
    char enc[512];

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(in); n++) {
        char *dec = NULL;
        size_t declen = 0, elen = cm_base64_encode(in, n, enc);

        assert_int_equal(elen, cm_base64_encoded_len(n));
        assert_int_equal(cm_base64_decode(enc, elen, &dec, &declen), CM_OK);
        assert_int_equal(declen, n);
        assert_memory_equal(dec, in, n);
        free(dec);
    }
}

static void test_whitespace_skipped(void **state)
{
    const char *folded = " Zm9v\n  YmFy\r\n\t";
    char *dec = NULL;
    size_t declen = 0;

    (void)state;
    assert_int_equal(cm_base64_decode(folded, strlen(folded), &dec, &declen), CM_OK);
    assert_int_equal(declen, 6);
    assert_string_equal(dec, "foobar");
    free(dec);
}

static void test_refused(void **state)
{
    static const char *const bad[] = {
        "Zm9", "Zm9vY", "Zm=v", "=m9v", "Zm9v====", "Zg==Zg==", "Zm9v!", "Zm9v-_==", "Zm\0v",
    };
    static const size_t lens[] = {3, 5, 4, 4, 8, 8, 5, 8, 4};

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char untouched[] = "untouched";
        char *dec = untouched;
        size_t declen = 0;

        print_message("%zu\n", i);
        assert_int_equal(cm_base64_decode(bad[i], lens[i], &dec, &declen), CM_EPARSE);
        assert_string_equal(dec, "untouched");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),
        cmocka_unit_test(test_every_byte_and_length),
        cmocka_unit_test(test_whitespace_skipped),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
