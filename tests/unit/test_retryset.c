/* Unit tests of the retry set's member format (src/domain/retryset.c). No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mutt/retryset.h"

static void test_retryset_member_is_uuid_bar_json(void **state)
{
    size_t len = 0;
    char *m = mutt_retry_member("0b1c", "{\"a\":1}xyz", 7, &len);
    assert_string_equal(m, "0b1c|{\"a\":1}");
    assert_int_equal(len, 12);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryset_member_is_uuid_bar_json),
    };
    return cmocka_run_group_tests_name("retryset", tests, NULL, NULL);
}
