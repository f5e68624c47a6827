/* Unit tests of the one capped exponential backoff (src/base/backoff.c) with each caller's own
 * schedule: Redis reconnects (io/redis.c), PostgreSQL reconnects (io/pg_connect.c), Vault retries
 * (core/secrets.c) and the forward retry set (D4). Each schedule is also compared with the
 * formula its caller used before it shared this function, so the move changed no delay. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mutt/backoff.h"

/* Random values that cover the edges: 0, small, around the caps, and huge. */
static const uint64_t RNDS[] = {0, 1, 2, 3, 24, 25, 26, 99, 1000, 1250, 1251, 4999, 5000, 5001,
                                123456789, 0x9E3779B97F4A7C15ull, UINT64_MAX - 1, UINT64_MAX};
#define NRNDS (sizeof(RNDS) / sizeof(RNDS[0]))

/* ---- the previous formulas, copied verbatim from their callers ---------------------------- */

/* io/redis.c: the manager clamps max_ms >= min_ms at create, so callers pass min <= max */
static uint64_t old_redis(uint64_t min_ms, uint64_t max_ms, unsigned failures, uint64_t rnd)
{
    uint64_t d = min_ms;
    for (unsigned i = 0; i < failures && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    uint64_t quarter = d / 4;
    if (quarter)
        d -= rnd % (quarter + 1);
    return d ? d : 1;
}

/* io/pg_connect.c (PG_RECONNECT_BASE_MS 200, PG_RECONNECT_MAX_MS 5000) */
static uint64_t old_pg(unsigned failed_attempts)
{
    if (failed_attempts == 0)
        return 0;
    uint64_t d = 200;
    for (unsigned i = 1; i < failed_attempts && d < 5000; i++)
        d *= 2;
    return d > 5000 ? 5000 : d;
}

/* core/secrets.c (RETRY_MIN_MS 500, RETRY_MAX_MS 30000); failures >= 1 when it runs */
static uint64_t old_vault(unsigned failures)
{
    unsigned shift = failures > 7 ? 6 : failures - 1;
    uint64_t delay = 500ull << shift;
    if (delay > 30000)
        delay = 30000;
    return delay;
}

/* ---- the callers' schedules, as they now call the shared function ------------------------- */

static uint64_t new_redis(uint64_t min_ms, uint64_t max_ms, unsigned failures, uint64_t rnd)
{
    const struct mutt_backoff b = {.base_ms = min_ms, .max_ms = max_ms, .jitter = MUTT_BACKOFF_JITTER_QUARTER};
    uint64_t d = mutt_backoff_ms(&b, failures, rnd);
    return d ? d : 1;
}

static uint64_t new_pg(unsigned failed_attempts)
{
    const struct mutt_backoff b = {.base_ms = 200, .max_ms = 5000, .jitter = MUTT_BACKOFF_JITTER_NONE};
    return failed_attempts == 0 ? 0 : mutt_backoff_ms(&b, failed_attempts - 1, 0);
}

static uint64_t new_vault(unsigned failures)
{
    const struct mutt_backoff b = {.base_ms = 500, .max_ms = 30000, .jitter = MUTT_BACKOFF_JITTER_NONE};
    return mutt_backoff_ms(&b, failures - 1, 0);
}

/* ---- the shared function ------------------------------------------------------------------ */

static void test_backoff_none_is_the_cap_and_ignores_rnd(void **state)
{
    const struct mutt_backoff b = {.base_ms = 200, .max_ms = 5000, .jitter = MUTT_BACKOFF_JITTER_NONE};
    const uint64_t want[] = {200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (unsigned n = 0; n < sizeof(want) / sizeof(want[0]); n++)
        for (size_t i = 0; i < NRNDS; i++)
            assert_int_equal(mutt_backoff_ms(&b, n, RNDS[i]), want[n]);
    assert_int_equal(mutt_backoff_ms(&b, 1000, 7), 5000);
}

static void test_backoff_full_jitter_covers_zero_to_cap(void **state)
{
    const struct mutt_backoff b = {.base_ms = 1000, .max_ms = 60000, .jitter = MUTT_BACKOFF_JITTER_FULL};
    assert_int_equal(mutt_backoff_ms(&b, 2, 0), 0);
    assert_int_equal(mutt_backoff_ms(&b, 2, 4000), 4000);
    assert_int_equal(mutt_backoff_ms(&b, 2, 4001), 0);
    for (unsigned n = 0; n < 70; n++)
        for (size_t i = 0; i < NRNDS; i++)
            assert_true(mutt_backoff_ms(&b, n, RNDS[i]) <= mutt_backoff_cap_ms(n, 1000, 60000));
    /* a cap of UINT64_MAX has no cap + 1: the random value itself is in range */
    const struct mutt_backoff huge = {.base_ms = 1, .max_ms = UINT64_MAX, .jitter = MUTT_BACKOFF_JITTER_FULL};
    assert_int_equal(mutt_backoff_ms(&huge, 64, UINT64_MAX - 3), UINT64_MAX - 3);
}

static void test_backoff_quarter_jitter_takes_at_most_a_quarter_off(void **state)
{
    const struct mutt_backoff b = {.base_ms = 100, .max_ms = 5000, .jitter = MUTT_BACKOFF_JITTER_QUARTER};
    assert_int_equal(mutt_backoff_ms(&b, 0, 0), 100);
    assert_int_equal(mutt_backoff_ms(&b, 0, 25), 75);  /* 25 % 26: the whole quarter */
    assert_int_equal(mutt_backoff_ms(&b, 0, 26), 100); /* 26 % 26 */
    assert_int_equal(mutt_backoff_ms(&b, 9, 1250), 3750);
    for (unsigned n = 0; n < 70; n++) {
        uint64_t cap = mutt_backoff_cap_ms(n, 100, 5000);
        for (size_t i = 0; i < NRNDS; i++) {
            uint64_t d = mutt_backoff_ms(&b, n, RNDS[i]);
            assert_true(d <= cap);
            assert_true(d >= cap - cap / 4);
        }
    }
    /* a cap under 4 has no quarter to take */
    const struct mutt_backoff tiny = {.base_ms = 3, .max_ms = 3, .jitter = MUTT_BACKOFF_JITTER_QUARTER};
    assert_int_equal(mutt_backoff_ms(&tiny, 0, UINT64_MAX), 3);
}

static void test_backoff_zero_base_stays_zero(void **state)
{
    const struct mutt_backoff b = {.base_ms = 0, .max_ms = 5000, .jitter = MUTT_BACKOFF_JITTER_QUARTER};
    assert_int_equal(mutt_backoff_ms(&b, 0, 12345), 0);
    assert_int_equal(mutt_backoff_ms(&b, 40, 12345), 0);
}

/* ---- each caller's schedule, and that it is what the caller did before -------------------- */

static void test_backoff_redis_reconnect_schedule_is_unchanged(void **state)
{
    /* the app's options: 100 ms doubling to REDIS_RECONNECT_MAX_MS (5000 by default), the
     * manager's defaults (100/5000), and a few other caps and floors */
    const uint64_t caps[][2] = {{100, 5000}, {100, 1000}, {100, 100}, {1, 7}, {0, 5000}, {100, 60000}};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
        for (unsigned n = 0; n < 80; n++)
            for (size_t i = 0; i < NRNDS; i++)
                assert_int_equal(new_redis(caps[c][0], caps[c][1], n, RNDS[i]),
                                 old_redis(caps[c][0], caps[c][1], n, RNDS[i]));
    /* spelled out for the defaults: 100, 200, ... up to 5000, less up to a quarter */
    assert_int_equal(new_redis(100, 5000, 0, 0), 100);
    assert_int_equal(new_redis(100, 5000, 3, 0), 800);
    assert_int_equal(new_redis(100, 5000, 3, 200), 600);
    assert_int_equal(new_redis(100, 5000, 6, 0), 5000);
    assert_int_equal(new_redis(100, 5000, 6, 1250), 3750);
    assert_int_equal(new_redis(0, 5000, 2, 99), 1); /* never 0 */
}

static void test_backoff_pg_reconnect_schedule_is_unchanged(void **state)
{
    const uint64_t want[] = {0, 200, 400, 800, 1600, 3200, 5000, 5000};
    for (unsigned a = 0; a < sizeof(want) / sizeof(want[0]); a++)
        assert_int_equal(new_pg(a), want[a]);
    for (unsigned a = 0; a < 200; a++)
        assert_int_equal(new_pg(a), old_pg(a));
}

static void test_backoff_vault_retry_schedule_is_unchanged(void **state)
{
    const uint64_t want[] = {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000};
    for (unsigned f = 1; f <= sizeof(want) / sizeof(want[0]); f++)
        assert_int_equal(new_vault(f), want[f - 1]);
    for (unsigned f = 1; f < 200; f++)
        assert_int_equal(new_vault(f), old_vault(f));
}

static void test_backoff_forward_retry_schedule_is_unchanged(void **state)
{
    /* MOOG_RETRY_BASE_DELAY 1 s, MOOG_RETRY_MAX_DELAY 60 s; the previous formula was
     * rnd mod (cap + 1) (rnd when cap is UINT64_MAX), then Retry-After when larger */
    for (unsigned n = 0; n < 80; n++)
        for (size_t i = 0; i < NRNDS; i++) {
            uint64_t cap = mutt_backoff_cap_ms(n, 1000, 60000);
            assert_int_equal(mutt_backoff_delay_ms(n, 1000, 60000, RNDS[i], -1), RNDS[i] % (cap + 1));
        }
    assert_int_equal(mutt_backoff_delay_ms(3, 1000, 60000, 5, 120), 120000);
    assert_int_equal(mutt_backoff_delay_ms(3, 1000, 60000, 7999, 2), 7999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_none_is_the_cap_and_ignores_rnd),
        cmocka_unit_test(test_backoff_full_jitter_covers_zero_to_cap),
        cmocka_unit_test(test_backoff_quarter_jitter_takes_at_most_a_quarter_off),
        cmocka_unit_test(test_backoff_zero_base_stays_zero),
        cmocka_unit_test(test_backoff_redis_reconnect_schedule_is_unchanged),
        cmocka_unit_test(test_backoff_pg_reconnect_schedule_is_unchanged),
        cmocka_unit_test(test_backoff_vault_retry_schedule_is_unchanged),
        cmocka_unit_test(test_backoff_forward_retry_schedule_is_unchanged),
    };
    return cmocka_run_group_tests_name("backoff_schedules", tests, NULL, NULL);
}
