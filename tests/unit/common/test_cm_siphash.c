/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_siphash.c -- SipHash-2-4 against the reference test vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/cm_siphash.h"

/* Key 00..0f, messages 00..(len-1): vectors[len] of the reference code's vectors.h;
 * the 15-byte one is the paper's worked example (appendix A). */
static void test_reference_vectors(void **state)
{
    static const uint64_t want[] = {
        0x726fdb47dd0e0e31ULL, /* len 0 */
        0x74f839c593dc67fdULL, /* len 1 */
    };
    uint8_t key[CM_SIPHASH_KEY_LEN], msg[16];

    (void)state;
    for (int i = 0; i < 16; i++) {
        key[i] = (uint8_t)i;
        msg[i] = (uint8_t)i;
    }
    for (size_t len = 0; len < sizeof(want) / sizeof(want[0]); len++)
        assert_int_equal(cm_siphash(key, msg, len), want[len]);
    assert_int_equal(cm_siphash(key, msg, 8), 0x93f5f5799a932462ULL);
    assert_int_equal(cm_siphash(key, msg, 15), 0xa129ca6149be45e5ULL);
}

/* Another key gives another hash: the key is what makes collisions unaimable. */
static void test_key_matters(void **state)
{
    uint8_t k1[CM_SIPHASH_KEY_LEN] = {0}, k2[CM_SIPHASH_KEY_LEN] = {1};
    const char msg[] = "\x03www\x03"
                       "fed\x07"
                       "example\x04test";

    (void)state;
    assert_int_not_equal(cm_siphash(k1, msg, sizeof(msg)), cm_siphash(k2, msg, sizeof(msg)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_key_matters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
