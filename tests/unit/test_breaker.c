/* Unit tests of the circuit breaker state machine (src/domain/breaker.c), the specification
 * its Lua twin is checked against (tests/integration/test_breaker_lua.c). No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/breaker.h"
#include "mutt/error.h"
#include "mutt/forward_classify.h"

static const struct mutt_breaker_cfg CFG = {.threshold = 3, .open_timeout_ms = 1000, .probe_ttl_ms = 500};

static void fail_n(struct mutt_breaker_state *s, int n, int64_t now)
{
    for (int i = 0; i < n; i++)
        mutt_breaker_on_result(s, &CFG, MUTT_BREAKER_FAILURE, now);
}

static void test_breaker_closed_allows_and_opens_after_threshold_consecutive_failures(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 10), MUTT_BREAKER_ALLOW);
    fail_n(&s, 2, 10);
    assert_int_equal(s.mode, MUTT_BREAKER_CLOSED);
    assert_int_equal(s.failures, 2);
    fail_n(&s, 1, 20);
    assert_int_equal(s.mode, MUTT_BREAKER_OPEN);
    assert_int_equal(s.open_since_ms, 20);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 21), MUTT_BREAKER_DENY);
}

static void test_breaker_success_resets_the_consecutive_count(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    fail_n(&s, 2, 10);
    mutt_breaker_on_result(&s, &CFG, MUTT_BREAKER_SUCCESS, 11);
    assert_int_equal(s.failures, 0);
    fail_n(&s, 2, 12);
    assert_int_equal(s.mode, MUTT_BREAKER_CLOSED);
}

static void test_breaker_half_open_admits_one_probe(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    fail_n(&s, 3, 1000);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1999), MUTT_BREAKER_DENY);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 2000), MUTT_BREAKER_PROBE);
    assert_int_equal(s.mode, MUTT_BREAKER_HALF_OPEN);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 2001), MUTT_BREAKER_DENY);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 2499), MUTT_BREAKER_DENY);
}

static void test_breaker_probe_lock_expires_when_the_prober_vanishes(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    fail_n(&s, 3, 0);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1000), MUTT_BREAKER_PROBE);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1500), MUTT_BREAKER_PROBE); /* ttl 500 passed */
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1501), MUTT_BREAKER_DENY);
}

static void test_breaker_probe_success_closes_and_resets(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    fail_n(&s, 3, 0);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1000), MUTT_BREAKER_PROBE);
    mutt_breaker_on_result(&s, &CFG, MUTT_BREAKER_SUCCESS, 1100);
    assert_int_equal(s.mode, MUTT_BREAKER_CLOSED);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.open_since_ms, 0);
    assert_int_equal(s.probe_until_ms, 0);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1101), MUTT_BREAKER_ALLOW);
}

static void test_breaker_probe_failure_reopens_with_a_new_open_time(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    fail_n(&s, 3, 0);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 1000), MUTT_BREAKER_PROBE);
    mutt_breaker_on_result(&s, &CFG, MUTT_BREAKER_FAILURE, 1200);
    assert_int_equal(s.mode, MUTT_BREAKER_OPEN);
    assert_int_equal(s.open_since_ms, 1200);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 2199), MUTT_BREAKER_DENY);
    assert_int_equal(mutt_breaker_decide(&s, &CFG, 2200), MUTT_BREAKER_PROBE);
}

static void test_breaker_straggler_results_while_open_keep_it_open(void **state)
{
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    fail_n(&s, 3, 0);
    mutt_breaker_on_result(&s, &CFG, MUTT_BREAKER_SUCCESS, 10);
    assert_int_equal(s.mode, MUTT_BREAKER_OPEN);
    fail_n(&s, 1, 500);
    assert_int_equal(s.open_since_ms, 0); /* the timeout is not extended */
}

static void test_breaker_outcome_of_delivery(void **state)
{
    assert_int_equal(mutt_breaker_outcome_of(MUTT_DELIVERED), MUTT_BREAKER_SUCCESS);
    assert_int_equal(mutt_breaker_outcome_of(MUTT_DEAD), MUTT_BREAKER_SUCCESS);
    assert_int_equal(mutt_breaker_outcome_of(MUTT_RETRY), MUTT_BREAKER_FAILURE);
}

static void test_breaker_mode_names_round_trip(void **state)
{
    enum mutt_breaker_mode m;
    for (int i = MUTT_BREAKER_CLOSED; i <= MUTT_BREAKER_HALF_OPEN; i++) {
        assert_int_equal(mutt_breaker_mode_parse(mutt_breaker_mode_name(i), &m), 0);
        assert_int_equal(m, i);
    }
    assert_int_equal(mutt_breaker_mode_parse(NULL, &m), 0);
    assert_int_equal(m, MUTT_BREAKER_CLOSED);
    assert_int_equal(mutt_breaker_mode_parse("open", &m), MUTT_EINVAL);
    assert_int_equal(mutt_breaker_mode_gauge(MUTT_BREAKER_OPEN), 2);
    assert_int_equal(mutt_breaker_mode_gauge(MUTT_BREAKER_HALF_OPEN), 1);
    assert_int_equal(mutt_breaker_mode_gauge(MUTT_BREAKER_CLOSED), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_closed_allows_and_opens_after_threshold_consecutive_failures),
        cmocka_unit_test(test_breaker_success_resets_the_consecutive_count),
        cmocka_unit_test(test_breaker_half_open_admits_one_probe),
        cmocka_unit_test(test_breaker_probe_lock_expires_when_the_prober_vanishes),
        cmocka_unit_test(test_breaker_probe_success_closes_and_resets),
        cmocka_unit_test(test_breaker_probe_failure_reopens_with_a_new_open_time),
        cmocka_unit_test(test_breaker_straggler_results_while_open_keep_it_open),
        cmocka_unit_test(test_breaker_outcome_of_delivery),
        cmocka_unit_test(test_breaker_mode_names_round_trip),
    };
    return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
