/* Unit tests of per-source storm control (src/domain/source_rate.c). No I/O: time is an argument. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mutt/source_rate.h"

static int passed(struct mutt_source_rate *t, const char *addr, int n, int64_t now_ms)
{
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok += mutt_source_rate_take(t, addr, now_ms, NULL, NULL);
    return ok;
}

static void test_source_rate_new_refuses_bad_arguments(void **state)
{
    (void)state;
    assert_null(mutt_source_rate_new(0, 10, 60000));
    assert_null(mutt_source_rate_new(10, 0, 60000));
    assert_null(mutt_source_rate_new(10, 10, 0));
}

static void test_source_rate_burst_is_one_second_then_rate_per_second(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(8, 10, 60000);
    assert_non_null(t);
    assert_int_equal(passed(t, "10.0.0.1", 25, 1000), 10);
    /* 100 ms later: one more token */
    assert_int_equal(passed(t, "10.0.0.1", 5, 1100), 1);
    /* 250 ms later: 2.5 tokens → 2 now, the half stays */
    assert_int_equal(passed(t, "10.0.0.1", 5, 1350), 2);
    assert_int_equal(passed(t, "10.0.0.1", 5, 1400), 1);
    /* a long pause refills to the burst, never above */
    assert_int_equal(passed(t, "10.0.0.1", 50, 100000), 10);
    mutt_source_rate_free(t);
}

static void test_source_rate_sources_are_independent(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(8, 3, 60000);
    assert_int_equal(passed(t, "a", 10, 0), 3);
    assert_int_equal(passed(t, "b", 10, 0), 3);
    assert_int_equal(passed(t, "a", 1, 0), 0);
    assert_int_equal(mutt_source_rate_size(t), 2);
    mutt_source_rate_free(t);
}

static void test_source_rate_time_going_backwards_adds_nothing(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(8, 2, 60000);
    assert_int_equal(passed(t, "a", 5, 5000), 2);
    assert_int_equal(passed(t, "a", 5, 1000), 0);
    mutt_source_rate_free(t);
}

static void test_source_rate_summary_once_per_window_per_source(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(8, 1, 60000);
    struct mutt_source_summary s[4];
    passed(t, "a", 4, 10000); /* 3 refused, window from 10000 */
    passed(t, "b", 2, 20000); /* 1 refused, window from 20000 */
    passed(t, "c", 1, 20000); /* none refused: never summarised */
    assert_int_equal(mutt_source_rate_due(t, 69999, false, s, 4), 0);
    assert_int_equal(mutt_source_rate_due(t, 70000, false, s, 4), 1);
    assert_string_equal(s[0].addr, "a");
    assert_int_equal(s[0].suppressed, 3);
    assert_int_equal(s[0].first_ms, 10000);
    /* handed out once: the window starts again at a's next refusal */
    assert_int_equal(mutt_source_rate_due(t, 75000, false, s, 4), 0);
    passed(t, "a", 3, 75000); /* 1 token refilled: 2 refused */
    assert_int_equal(mutt_source_rate_due(t, 80000, false, s, 4), 1);
    assert_string_equal(s[0].addr, "b");
    assert_int_equal(s[0].suppressed, 1);
    assert_int_equal(mutt_source_rate_due(t, 134999, false, s, 4), 0);
    assert_int_equal(mutt_source_rate_due(t, 135000, false, s, 4), 1);
    assert_int_equal(s[0].suppressed, 2);
    mutt_source_rate_free(t);
}

static void test_source_rate_due_all_flushes_open_windows_in_pieces(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(8, 1, 60000);
    struct mutt_source_summary s[2];
    passed(t, "a", 2, 0);
    passed(t, "b", 3, 0);
    passed(t, "c", 4, 0);
    uint64_t total = 0;
    size_t got, rounds = 0;
    do {
        got = mutt_source_rate_due(t, 1, true, s, 2);
        for (size_t i = 0; i < got; i++)
            total += s[i].suppressed;
        rounds++;
    } while (got == 2);
    assert_int_equal(total, 1 + 2 + 3);
    assert_int_equal(rounds, 2);
    assert_int_equal(mutt_source_rate_due(t, 1, true, s, 2), 0);
    mutt_source_rate_free(t);
}

static void test_source_rate_full_table_forgets_least_recently_seen_and_hands_its_count_out(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(2, 1, 60000);
    struct mutt_source_summary ev;
    bool has;
    passed(t, "old", 3, 0);   /* 2 refused */
    passed(t, "fresh", 1, 1); /* none refused */
    passed(t, "old", 1, 2);   /* old is now the most recent: 1 more refused */
    assert_true(mutt_source_rate_take(t, "new1", 3, &ev, &has));
    assert_false(has); /* fresh was the least recently seen, with nothing to hand out */
    assert_true(mutt_source_rate_take(t, "new2", 4, &ev, &has));
    assert_true(has);
    assert_string_equal(ev.addr, "old");
    assert_int_equal(ev.suppressed, 3);
    assert_int_equal(ev.first_ms, 0);
    assert_int_equal(mutt_source_rate_size(t), 2);
    /* a forgotten source comes back with a full bucket */
    assert_true(mutt_source_rate_take(t, "old", 5, &ev, &has));
    assert_false(has);
    mutt_source_rate_free(t);
}

static void test_source_rate_many_sources_stay_bounded_and_findable(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(100, 1, 60000);
    char a[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(a, sizeof a, "10.%d.%d.1", i / 256, i % 256);
        assert_true(mutt_source_rate_take(t, a, i, NULL, NULL));
        assert_false(mutt_source_rate_take(t, a, i, NULL, NULL)); /* found again at once */
    }
    assert_int_equal(mutt_source_rate_size(t), 100);
    mutt_source_rate_free(t);
}

static void test_source_rate_long_address_is_cut_not_overrun(void **state)
{
    (void)state;
    struct mutt_source_rate *t = mutt_source_rate_new(4, 1, 1);
    char longa[200];
    memset(longa, 'x', sizeof longa - 1);
    longa[sizeof longa - 1] = '\0';
    assert_true(mutt_source_rate_take(t, longa, 0, NULL, NULL));
    assert_false(mutt_source_rate_take(t, longa, 0, NULL, NULL));
    struct mutt_source_summary s;
    assert_int_equal(mutt_source_rate_due(t, 10, false, &s, 1), 1);
    assert_int_equal(strlen(s.addr), MUTT_SOURCE_ADDR_MAX - 1);
    mutt_source_rate_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_rate_new_refuses_bad_arguments),
        cmocka_unit_test(test_source_rate_burst_is_one_second_then_rate_per_second),
        cmocka_unit_test(test_source_rate_sources_are_independent),
        cmocka_unit_test(test_source_rate_time_going_backwards_adds_nothing),
        cmocka_unit_test(test_source_rate_summary_once_per_window_per_source),
        cmocka_unit_test(test_source_rate_due_all_flushes_open_windows_in_pieces),
        cmocka_unit_test(test_source_rate_full_table_forgets_least_recently_seen_and_hands_its_count_out),
        cmocka_unit_test(test_source_rate_many_sources_stay_bounded_and_findable),
        cmocka_unit_test(test_source_rate_long_address_is_cut_not_overrun),
    };
    return cmocka_run_group_tests_name("source_rate", tests, NULL, NULL);
}
