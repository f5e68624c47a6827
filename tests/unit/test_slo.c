/* Unit tests of the SLO definitions (src/domain/slo.c): burn-rate evaluation and the per-minute
 * counter key. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mutt/error.h"
#include "mutt/slo.h"

static void test_slo_evaluate_burn_rate_thresholds(void **state)
{
    (void)state;
    const struct mutt_slo_def *d = &mutt_slo_defs[0]; /* ingestor_availability, 0.999 */
    struct mutt_slo_result r;
    mutt_slo_evaluate(d, 990, 1000, 5, 10, &r);
    assert_string_equal(r.status, "critical"); /* 1 % errors / 0.1 % budget = 10 */
    mutt_slo_evaluate(d, 9940, 10000, 5, 10, &r); /* burn 6 */
    assert_string_equal(r.status, "warning");
    mutt_slo_evaluate(d, 9980, 10000, 5, 10, &r); /* burn 2: below target, below warning */
    assert_string_equal(r.status, "breaching");
    mutt_slo_evaluate(d, 99995, 100000, 5, 10, &r); /* burn 0.5 */
    assert_string_equal(r.status, "ok");
    mutt_slo_evaluate(d, 0, 0, 5, 10, &r);
    assert_string_equal(r.status, "no_data");
}

static void test_slo_key_is_per_utc_minute(void **state)
{
    (void)state;
    char k[MUTT_SLO_KEY_MAX];
    assert_int_equal(mutt_slo_key("ingestor_availability", 1767323045678LL, k, sizeof k), 0);
    assert_string_equal(k, "mutt:slo:ingestor_availability:2026-01-02T03:04");
    assert_int_equal(mutt_slo_key("ingestor_availability", 0, k, 10), MUTT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slo_evaluate_burn_rate_thresholds),
        cmocka_unit_test(test_slo_key_is_per_utc_minute),
    };
    return cmocka_run_group_tests_name("slo", tests, NULL, NULL);
}
