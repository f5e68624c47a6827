/* Unit tests of the rate-limit lease bookkeeping (src/domain/ratelimit_lua.c,
 * include/mutt/ratelimit.h): lease size and deadline from the limit and window, spending stops at
 * the granted count and at the deadline (measured from the send time), what a settlement reports,
 * when unspent tokens must go back, and a property test that a pod never spends more than it was
 * granted nor after its deadline. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/ratelimit.h"

static void test_lease_size_is_a_tenth_of_the_limit_within_bounds(void **state)
{
    (void)state;
    assert_int_equal(mutt_ratelimit_lease_size(50), 5);
    assert_int_equal(mutt_ratelimit_lease_size(9), 1);
    assert_int_equal(mutt_ratelimit_lease_size(1), 1);
    assert_int_equal(mutt_ratelimit_lease_size(0), 0);
    assert_int_equal(mutt_ratelimit_lease_size(-3), 0);
    assert_int_equal(mutt_ratelimit_lease_size(10000), 1000);
    assert_int_equal(mutt_ratelimit_lease_size(1000000), MUTT_RATELIMIT_LEASE_MAX);
    /* never more than the limit itself */
    for (int64_t l = 1; l < 20000; l += 7)
        assert_true(mutt_ratelimit_lease_size(l) <= l);
}

static void test_lease_deadline_is_a_tenth_of_the_window_within_bounds(void **state)
{
    (void)state;
    assert_int_equal(mutt_ratelimit_lease_ms(1000), 100);
    assert_int_equal(mutt_ratelimit_lease_ms(60000), 1000);
    assert_int_equal(mutt_ratelimit_lease_ms(50), 10);
    assert_int_equal(mutt_ratelimit_lease_ms(0), 10);
}

static void test_take_stops_at_the_granted_count_and_at_the_deadline(void **state)
{
    (void)state;
    struct mutt_rate_lease l;
    memset(&l, 0, sizeof l);
    assert_false(mutt_rate_lease_take(&l, 0)); /* none */
    mutt_rate_lease_grant(&l, "pod:1#3", 3, 1000, 100, 0, 1002);
    assert_int_equal(l.deadline, 1100); /* from the send time */
    assert_true(mutt_rate_lease_take(&l, 1000));
    assert_true(mutt_rate_lease_take(&l, 1050));
    assert_true(mutt_rate_lease_has_unspent(&l));
    assert_true(mutt_rate_lease_take(&l, 1099));
    assert_false(mutt_rate_lease_take(&l, 1099)); /* all 3 spent */
    assert_false(mutt_rate_lease_has_unspent(&l));
    assert_int_equal(l.spent, 3);

    mutt_rate_lease_grant(&l, "pod:2#5", 5, 2000, 100, 0, 2000);
    assert_int_equal(l.spent, 0);
    assert_true(mutt_rate_lease_take(&l, 2000));
    assert_false(mutt_rate_lease_take(&l, 2100)); /* deadline reached with 4 left */
    assert_int_equal(l.spent, 1);
    assert_true(mutt_rate_lease_has_unspent(&l));
}

static void test_settlement_reports_member_and_spent_and_clear_forgets(void **state)
{
    (void)state;
    struct mutt_rate_lease l;
    const char *m = NULL;
    uint32_t spent = 99;
    int64_t last = 0;
    /* sent at 0 (pod clock), granted at Redis time 1700000000000, reply at 4 */
    mutt_rate_lease_grant(&l, "pod-a:7#10", 10, 0, 100, 1700000000000LL, 4);
    assert_true(mutt_rate_lease_settlement(&l, &m, &spent, &last));
    assert_int_equal(spent, 0);
    assert_int_equal(last, -1); /* nothing spent: no last spend */
    mutt_rate_lease_take(&l, 4);
    mutt_rate_lease_take(&l, 9);
    assert_true(mutt_rate_lease_settlement(&l, &m, &spent, &last));
    assert_string_equal(m, "pod-a:7#10");
    assert_int_equal(spent, 2);
    /* the last spend on the Redis clock: the grant plus the pod's time from the reply to it */
    assert_int_equal(last, 1700000000005LL);
    mutt_rate_lease_clear(&l);
    assert_false(mutt_rate_lease_settlement(&l, &m, &spent, &last));
    assert_false(mutt_rate_lease_has_unspent(&l));
    assert_false(mutt_rate_lease_take(&l, 3));

    /* a fail-open lease (no member) spends but has nothing to settle or give back */
    mutt_rate_lease_grant(&l, "", 4, 0, 100, 0, 0);
    assert_true(mutt_rate_lease_take(&l, 0));
    assert_false(mutt_rate_lease_settlement(&l, &m, &spent, &last));
    assert_false(mutt_rate_lease_has_unspent(&l));
    mutt_rate_lease_grant(&l, NULL, 1, 0, 100, 0, 0);
    assert_string_equal(l.member, "");
}

/* Property: whatever the order of takes and clock steps, a lease never spends more than it was
 * granted, never at or after its deadline, and the settlement reports exactly what was spent. */
static void test_property_never_more_than_granted_nor_after_the_deadline(void **state)
{
    (void)state;
    srand(13);
    for (int round = 0; round < 2000; round++) {
        struct mutt_rate_lease l;
        uint32_t granted = (uint32_t)(rand() % 20) + 1;
        uint64_t sent = (uint64_t)(rand() % 100000), len = (uint64_t)(rand() % 200) + 10;
        uint64_t received = sent + (uint64_t)(rand() % 5);
        int64_t granted_at = 1000000 + rand() % 1000;
        mutt_rate_lease_grant(&l, "p:1#x", granted, sent, len, granted_at, received);
        uint64_t now = received, last_ok = 0;
        uint32_t ok = 0;
        for (int i = 0; i < 40; i++) {
            now += (uint64_t)(rand() % 15);
            if (mutt_rate_lease_take(&l, now)) {
                ok++;
                last_ok = now;
                assert_true(now < sent + len);
            }
        }
        assert_true(ok <= granted);
        const char *m;
        uint32_t spent;
        int64_t last;
        assert_true(mutt_rate_lease_settlement(&l, &m, &spent, &last));
        assert_int_equal(spent, ok);
        if (ok) /* never before the grant, never later than the spend itself on the pod's clock */
            assert_true(last >= granted_at && last == granted_at + (int64_t)(last_ok - received));
        else
            assert_int_equal(last, -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_size_is_a_tenth_of_the_limit_within_bounds),
        cmocka_unit_test(test_lease_deadline_is_a_tenth_of_the_window_within_bounds),
        cmocka_unit_test(test_take_stops_at_the_granted_count_and_at_the_deadline),
        cmocka_unit_test(test_settlement_reports_member_and_spent_and_clear_forgets),
        cmocka_unit_test(test_property_never_more_than_granted_nor_after_the_deadline),
    };
    return cmocka_run_group_tests_name("ratelimit_lease", tests, NULL, NULL);
}
