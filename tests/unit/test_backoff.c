/* Unit tests of the full-jitter backoff (src/domain/backoff.c): the cap doubles up to the
 * maximum, the delay stays within it, Retry-After wins when larger. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>

#include "mutt/backoff.h"

static void test_backoff_cap_doubles_from_base_up_to_max(void **state)
{
    assert_int_equal(mutt_backoff_cap_ms(0, 1000, 60000), 1000);
    assert_int_equal(mutt_backoff_cap_ms(1, 1000, 60000), 2000);
    assert_int_equal(mutt_backoff_cap_ms(5, 1000, 60000), 32000);
    assert_int_equal(mutt_backoff_cap_ms(6, 1000, 60000), 60000);
    assert_int_equal(mutt_backoff_cap_ms(7, 1000, 60000), 60000);
}

static void test_backoff_never_exceeds_cap_and_covers_zero_to_cap(void **state)
{
    /* rnd mod (cap+1): the extremes are reachable */
    assert_int_equal(mutt_backoff_delay_ms(2, 1000, 60000, 0, -1), 0);
    assert_int_equal(mutt_backoff_delay_ms(2, 1000, 60000, 4000, -1), 4000);
    assert_int_equal(mutt_backoff_delay_ms(2, 1000, 60000, 4001, -1), 0);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned n = (unsigned)(i % 12);
        uint64_t d = mutt_backoff_delay_ms(n, 1000, 60000, x, -1);
        assert_true(d <= mutt_backoff_cap_ms(n, 1000, 60000));
    }
}

static void test_backoff_huge_retry_count_does_not_overflow(void **state)
{
    const unsigned ns[] = {40, 63, 64, 65, 1000, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
        assert_int_equal(mutt_backoff_cap_ms(ns[i], 1000, 60000), 60000);
        assert_true(mutt_backoff_delay_ms(ns[i], 1000, 60000, UINT64_MAX, -1) <= 60000);
    }
    /* a base that would overflow on its own first doubling */
    assert_int_equal(mutt_backoff_cap_ms(1, UINT64_MAX / 2 + 1, UINT64_MAX), UINT64_MAX);
}

static void test_backoff_retry_after_wins_when_larger(void **state)
{
    assert_int_equal(mutt_backoff_delay_ms(0, 1000, 60000, 500, 7), 7000);      /* larger: wins */
    assert_int_equal(mutt_backoff_delay_ms(5, 1000, 60000, 30000, 2), 30000);   /* smaller: jitter */
    assert_int_equal(mutt_backoff_delay_ms(0, 1000, 60000, 500, 120), 120000);  /* not capped by max */
    assert_int_equal(mutt_backoff_delay_ms(0, 1000, 60000, 500, 0), 500);
    assert_int_equal(mutt_backoff_delay_ms(0, 1000, 60000, 500, -1), 500);      /* absent */
    assert_true(mutt_backoff_delay_ms(0, 1000, 60000, 0, INT64_MAX) <= UINT64_MAX / 2);
}

static void test_backoff_zero_base_means_no_delay(void **state)
{
    assert_int_equal(mutt_backoff_delay_ms(3, 0, 60000, 12345, -1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_cap_doubles_from_base_up_to_max),
        cmocka_unit_test(test_backoff_never_exceeds_cap_and_covers_zero_to_cap),
        cmocka_unit_test(test_backoff_huge_retry_count_does_not_overflow),
        cmocka_unit_test(test_backoff_retry_after_wins_when_larger),
        cmocka_unit_test(test_backoff_zero_base_means_no_delay),
    };
    return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
