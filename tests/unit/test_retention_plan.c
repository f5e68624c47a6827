/* Unit tests of the pure retention decisions (src/domain/retention_plan.c): cutoffs, partition
 * names -> months, which partitions may be dropped whole, the DLQ item verdict and the schedule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/error.h"
#include "mutt/retention_plan.h"
#include "mutt/timefmt.h"

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    assert_int_equal(mutt_time_parse_iso8601(iso, &ms), 0);
    return ms;
}

static void test_retention_cutoff_is_now_minus_whole_days(void **state)
{
    (void)state;
    assert_int_equal(mutt_retention_cutoff_ms(at("2026-03-31T12:00:00Z"), 90), at("2025-12-31T12:00:00Z"));
    assert_int_equal(mutt_retention_cutoff_ms(at("2026-03-01T00:00:00Z"), 1), at("2026-02-28T00:00:00Z"));
    assert_int_equal(mutt_retention_cutoff_ms(1000, -5), 1000);
}

static void test_retention_partition_names_parse_to_year_and_month(void **state)
{
    (void)state;
    int y = 0, m = 0;
    assert_int_equal(mutt_retention_partition_month("event_audit_log_2025_07", &y, &m), 0);
    assert_int_equal(y, 2025);
    assert_int_equal(m, 7);
    assert_int_equal(mutt_retention_partition_month("event_audit_log_1999_12", &y, &m), 0);
    assert_int_equal(y, 1999);
    assert_int_equal(m, 12);
}

static void test_retention_other_names_are_not_monthly_partitions(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "event_audit_log_default", "event_audit_log", "event_audit_log_2025_13", "event_audit_log_2025_00",
        "event_audit_log_2025_7", "event_audit_log_2025_07x", "event_audit_log_25_07", "config_audit_log_2025_07",
        "event_audit_log_2025-07", "event_audit_log_1969_12", "", "event_audit_log_2a25_07",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int y = -1, m = -1;
        assert_int_equal(mutt_retention_partition_month(bad[i], &y, &m), MUTT_EINVAL);
        assert_int_equal(y, -1);
    }
    assert_int_equal(mutt_retention_partition_month(NULL, &(int){0}, &(int){0}), MUTT_EINVAL);
}

static void test_retention_month_start_is_utc_midnight_of_the_first(void **state)
{
    (void)state;
    assert_int_equal(mutt_retention_month_start_ms(1970, 1), 0);
    assert_int_equal(mutt_retention_month_start_ms(2024, 3), at("2024-03-01T00:00:00Z"));
    assert_int_equal(mutt_retention_month_start_ms(2026, 12), at("2026-12-01T00:00:00Z"));
}

static void test_retention_partition_dropped_only_when_wholly_before_cutoff(void **state)
{
    (void)state;
    int64_t cutoff = at("2026-03-15T10:00:00Z");
    assert_true(mutt_retention_partition_droppable("event_audit_log_2026_01", cutoff));
    assert_true(mutt_retention_partition_droppable("event_audit_log_2026_02", cutoff));
    /* March straddles the cutoff: its old rows are batch-deleted instead */
    assert_false(mutt_retention_partition_droppable("event_audit_log_2026_03", cutoff));
    assert_false(mutt_retention_partition_droppable("event_audit_log_2026_04", cutoff));
    /* a cutoff exactly on the month boundary drops the month before it */
    assert_true(mutt_retention_partition_droppable("event_audit_log_2026_02", at("2026-03-01T00:00:00Z")));
    assert_false(mutt_retention_partition_droppable("event_audit_log_2026_02", at("2026-02-28T23:59:59.999Z")));
    /* December rolls into the next year */
    assert_true(mutt_retention_partition_droppable("event_audit_log_2025_12", at("2026-01-01T00:00:00Z")));
    assert_false(mutt_retention_partition_droppable("event_audit_log_2025_12", at("2025-12-31T23:00:00Z")));
}

static void test_retention_default_partition_is_never_dropped(void **state)
{
    (void)state;
    assert_false(mutt_retention_partition_droppable("event_audit_log_default", at("2099-01-01T00:00:00Z")));
}

static enum mutt_retention_dlq_verdict decide(const char *item, int64_t cutoff)
{
    return mutt_retention_dlq_decide(item, strlen(item), cutoff);
}

static void test_retention_dlq_item_older_than_cutoff_expires(void **state)
{
    (void)state;
    int64_t cutoff = at("2026-01-31T00:00:00Z");
    assert_int_equal(decide("{\"hostname\":\"h\",\"_failed_at\":\"2026-01-01T00:00:00.000Z\"}", cutoff),
                     MUTT_RETENTION_DLQ_EXPIRED);
    assert_int_equal(decide("{\"_raw\":\"x\",\"_failed_at\":\"2026-01-30T23:59:59+00:00\"}", cutoff),
                     MUTT_RETENTION_DLQ_EXPIRED);
}

static void test_retention_dlq_item_at_or_after_cutoff_is_kept(void **state)
{
    (void)state;
    int64_t cutoff = at("2026-01-31T00:00:00Z");
    assert_int_equal(decide("{\"_failed_at\":\"2026-01-31T00:00:00Z\"}", cutoff), MUTT_RETENTION_DLQ_KEEP);
    assert_int_equal(decide("{\"_failed_at\":\"2026-02-10T08:00:00Z\"}", cutoff), MUTT_RETENTION_DLQ_KEEP);
}

static void test_retention_dlq_items_that_cannot_be_dated_are_kept(void **state)
{
    (void)state;
    int64_t cutoff = at("2030-01-01T00:00:00Z");
    static const char *const keep[] = {
        "not json at all",
        "[\"_failed_at\",\"2020-01-01T00:00:00Z\"]",
        "{\"hostname\":\"h\",\"timestamp\":\"2020-01-01T00:00:00Z\"}", /* no _failed_at: the event's own time does not count */
        "{\"_failed_at\":\"yesterday\"}",
        "{\"_failed_at\":1577836800}",
        "{\"_failed_at\":null}",
        "{\"_failed_at\":\"2020-02-30T00:00:00Z\"}",
        "",
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        assert_int_equal(decide(keep[i], cutoff), MUTT_RETENTION_DLQ_KEEP);
    assert_int_equal(mutt_retention_dlq_decide(NULL, 0, cutoff), MUTT_RETENTION_DLQ_KEEP);
}

static void test_retention_dlq_decision_reads_only_len_bytes(void **state)
{
    (void)state;
    const char *item = "{\"_failed_at\":\"2020-01-01T00:00:00Z\"}trailing";
    assert_int_equal(mutt_retention_dlq_decide(item, strlen(item) - strlen("trailing"), at("2021-01-01T00:00:00Z")),
                     MUTT_RETENTION_DLQ_EXPIRED);
}

static void test_retention_next_run_is_the_next_start_of_the_hour_utc(void **state)
{
    (void)state;
    assert_int_equal(mutt_retention_next_run_ms(at("2026-05-10T01:30:00Z"), 2), at("2026-05-10T02:00:00Z"));
    /* exactly at the hour: the next day's */
    assert_int_equal(mutt_retention_next_run_ms(at("2026-05-10T02:00:00Z"), 2), at("2026-05-11T02:00:00Z"));
    assert_int_equal(mutt_retention_next_run_ms(at("2026-05-10T23:59:59Z"), 2), at("2026-05-11T02:00:00Z"));
    assert_int_equal(mutt_retention_next_run_ms(at("2026-12-31T23:00:00Z"), 0), at("2027-01-01T00:00:00Z"));
}

static void test_retention_runs_at_start_when_the_last_run_is_a_day_old(void **state)
{
    (void)state;
    int64_t now = at("2026-05-10T12:00:00Z");
    assert_true(mutt_retention_due_at_start(now, 0));
    assert_true(mutt_retention_due_at_start(now, at("2026-05-09T12:00:00Z")));
    assert_true(mutt_retention_due_at_start(now, at("2026-05-01T00:00:00Z")));
    assert_false(mutt_retention_due_at_start(now, at("2026-05-09T12:00:00.001Z")));
    assert_false(mutt_retention_due_at_start(now, at("2026-05-10T02:00:00Z")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_cutoff_is_now_minus_whole_days),
        cmocka_unit_test(test_retention_partition_names_parse_to_year_and_month),
        cmocka_unit_test(test_retention_other_names_are_not_monthly_partitions),
        cmocka_unit_test(test_retention_month_start_is_utc_midnight_of_the_first),
        cmocka_unit_test(test_retention_partition_dropped_only_when_wholly_before_cutoff),
        cmocka_unit_test(test_retention_default_partition_is_never_dropped),
        cmocka_unit_test(test_retention_dlq_item_older_than_cutoff_expires),
        cmocka_unit_test(test_retention_dlq_item_at_or_after_cutoff_is_kept),
        cmocka_unit_test(test_retention_dlq_items_that_cannot_be_dated_are_kept),
        cmocka_unit_test(test_retention_dlq_decision_reads_only_len_bytes),
        cmocka_unit_test(test_retention_next_run_is_the_next_start_of_the_hour_utc),
        cmocka_unit_test(test_retention_runs_at_start_when_the_last_run_is_a_day_old),
    };
    return cmocka_run_group_tests_name("retention_plan", tests, NULL, NULL);
}
