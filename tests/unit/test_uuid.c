/* Unit tests of the UUIDv4 formatter (src/domain/uuid.c): version and variant bits, byte order. No
 * I/O: the random bytes come in as an argument. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

#include "mutt/uuid.h"

static void test_uuid_v4_sets_version_and_variant_bits(void **state)
{
    uint8_t zeros[16] = {0}, ones[16];
    char a[MUTT_UUID_STR_LEN], b[MUTT_UUID_STR_LEN];
    (void)state;

    memset(ones, 0xff, sizeof ones);
    mutt_uuid_v4_format(zeros, a);
    mutt_uuid_v4_format(ones, b);
    assert_string_equal(a, "00000000-0000-4000-8000-000000000000");
    assert_string_equal(b, "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

static void test_uuid_v4_keeps_the_random_bytes_in_order(void **state)
{
    const uint8_t rnd[16] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                             0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
    char out[MUTT_UUID_STR_LEN];
    (void)state;

    mutt_uuid_v4_format(rnd, out);
    assert_string_equal(out, "01234567-89ab-4def-8123-456789abcdef");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_v4_sets_version_and_variant_bits),
        cmocka_unit_test(test_uuid_v4_keeps_the_random_bytes_in_order),
    };
    return cmocka_run_group_tests_name("uuid", tests, NULL, NULL);
}
