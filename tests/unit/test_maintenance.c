/* Unit tests of maintenance windows (src/domain/maintenance.c, issue 16 §3): the active interval,
 * glob and team matching, body validation (each refusal names its field) and the summary alert
 * built from a window's count hash. No I/O; the clock is an argument. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/maintenance.h"
#include "mutt/timefmt.h"

#define T0 1767304800000LL /* 2026-01-01T22:00:00Z */
#define HOUR 3600000LL

static void test_maintenance_active_from_start_inclusive_to_end_exclusive(void **state)
{
    (void)state;
    struct mutt_maint_window w = {.id = 1, .hostname_pattern = "*", .starts_ms = T0, .ends_ms = T0 + HOUR};
    assert_int_equal(MUTT_MAINT_SCHEDULED, mutt_maint_state(&w, T0 - 1));
    assert_int_equal(MUTT_MAINT_ACTIVE, mutt_maint_state(&w, T0));
    assert_int_equal(MUTT_MAINT_ACTIVE, mutt_maint_state(&w, T0 + HOUR - 1));
    assert_int_equal(MUTT_MAINT_ENDED, mutt_maint_state(&w, T0 + HOUR));
    assert_null(mutt_maint_match(&w, 1, "db1", NULL, T0 - 1));
    assert_non_null(mutt_maint_match(&w, 1, "db1", NULL, T0));
    assert_null(mutt_maint_match(&w, 1, "db1", NULL, T0 + HOUR));
}

static void test_maintenance_glob_matches_hostnames_case_insensitively(void **state)
{
    (void)state;
    struct mutt_maint_window w = {.id = 2, .hostname_pattern = "db-[0-9]*.example.com", .starts_ms = T0,
                                  .ends_ms = T0 + HOUR};
    assert_non_null(mutt_maint_match(&w, 1, "db-12.example.com", NULL, T0));
    assert_non_null(mutt_maint_match(&w, 1, "DB-3.Example.COM", NULL, T0));
    assert_null(mutt_maint_match(&w, 1, "db-x.example.com", NULL, T0));
    assert_null(mutt_maint_match(&w, 1, "web-1.example.com", NULL, T0));
    assert_null(mutt_maint_match(&w, 1, NULL, NULL, T0));
}

static void test_maintenance_team_window_holds_only_that_teams_events(void **state)
{
    (void)state;
    struct mutt_maint_window w = {.id = 3, .hostname_pattern = "*", .team = "NETO", .starts_ms = T0,
                                  .ends_ms = T0 + HOUR};
    assert_non_null(mutt_maint_match(&w, 1, "r1", "neto", T0));
    assert_null(mutt_maint_match(&w, 1, "r1", "DBA", T0));
    assert_null(mutt_maint_match(&w, 1, "r1", NULL, T0));
}

static void test_maintenance_first_active_matching_window_wins(void **state)
{
    (void)state;
    struct mutt_maint_window ws[] = {
        {.id = 10, .hostname_pattern = "web*", .starts_ms = T0, .ends_ms = T0 + HOUR},
        {.id = 11, .hostname_pattern = "db*", .starts_ms = T0 + HOUR, .ends_ms = T0 + 2 * HOUR},
        {.id = 12, .hostname_pattern = "db*", .starts_ms = T0, .ends_ms = T0 + HOUR},
        {.id = 13, .hostname_pattern = "*", .starts_ms = T0, .ends_ms = T0 + HOUR},
    };
    const struct mutt_maint_window *m = mutt_maint_match(ws, 4, "db7", NULL, T0 + 5);
    assert_non_null(m);
    assert_int_equal(12, m->id);
    m = mutt_maint_match(ws, 4, "db7", NULL, T0 + HOUR + 5);
    assert_non_null(m);
    assert_int_equal(11, m->id);
}

/* Validates `text` at now = T0; returns the rc and copies the field name at fault. The spec
 * borrows from the body, kept until the next call (and freed by the last test's teardown). */
static json_t *kept_body;

static int validate(const char *text, struct mutt_maint_spec *spec, char *field, size_t flen, char *msg)
{
    json_error_t err;
    json_decref(kept_body);
    json_t *body = kept_body = json_loads(text, 0, &err);
    assert_non_null(body);
    const char *f = NULL;
    int rc = mutt_maint_validate(body, T0, spec, &f, msg, 200);
    snprintf(field, flen, "%s", f ? f : "");
    return rc;
}

static void test_maintenance_valid_body_defaults_summary_true_and_start_now(void **state)
{
    (void)state;
    struct mutt_maint_spec s;
    char field[32], msg[200];
    assert_int_equal(0, validate("{\"hostname_pattern\":\"db*\",\"ends_at\":\"2026-01-01T23:00:00Z\"}", &s, field,
                                 sizeof field, msg));
    assert_true(s.summary);
    assert_int_equal(T0, s.starts_ms);
    assert_int_equal(T0 + HOUR, s.ends_ms);
    assert_null(s.team);
    assert_int_equal(0, validate("{\"hostname_pattern\":\"db*\",\"team\":\"NETO\",\"reason\":\"patching\","
                                 "\"starts_at\":\"2026-01-01T22:30:00Z\",\"ends_at\":\"2026-01-02T00:00:00+01:00\","
                                 "\"summary\":false}",
                                 &s, field, sizeof field, msg));
    assert_false(s.summary);
    assert_int_equal(T0 + HOUR / 2, s.starts_ms);
    assert_int_equal(T0 + HOUR, s.ends_ms);
    assert_string_equal("NETO", s.team);
    assert_string_equal("patching", s.reason);
}

static void test_maintenance_refusals_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *field, *words;
    } cases[] = {
        {"{\"ends_at\":\"2026-01-01T23:00:00Z\"}", "hostname_pattern", "required"},
        {"{\"hostname_pattern\":\"\",\"ends_at\":\"2026-01-01T23:00:00Z\"}", "hostname_pattern", "required"},
        {"{\"hostname_pattern\":\"db[0-9\",\"ends_at\":\"2026-01-01T23:00:00Z\"}", "hostname_pattern", "unclosed"},
        {"{\"hostname_pattern\":\"db\\\\\",\"ends_at\":\"2026-01-01T23:00:00Z\"}", "hostname_pattern", "backslash"},
        {"{\"hostname_pattern\":\"a\\nb\",\"ends_at\":\"2026-01-01T23:00:00Z\"}", "hostname_pattern", "glob"},
        {"{\"hostname_pattern\":\"db*\"}", "ends_at", "required"},
        {"{\"hostname_pattern\":\"db*\",\"ends_at\":\"tomorrow\"}", "ends_at", "ISO 8601"},
        {"{\"hostname_pattern\":\"db*\",\"starts_at\":5,\"ends_at\":\"2026-01-01T23:00:00Z\"}", "starts_at", "ISO 8601"},
        {"{\"hostname_pattern\":\"db*\",\"starts_at\":\"2026-01-02T00:00:00Z\",\"ends_at\":\"2026-01-01T23:00:00Z\"}",
         "ends_at", "after starts_at"},
        {"{\"hostname_pattern\":\"db*\",\"starts_at\":\"2026-01-01T23:00:00Z\",\"ends_at\":\"2026-01-01T23:00:00Z\"}",
         "ends_at", "after starts_at"},
        {"{\"hostname_pattern\":\"db*\",\"starts_at\":\"2026-01-01T22:00:00Z\",\"ends_at\":\"2026-01-31T22:00:00.001Z\"}",
         "ends_at", "30 days"},
        {"{\"hostname_pattern\":\"db*\",\"starts_at\":\"2025-12-25T00:00:00Z\",\"ends_at\":\"2026-01-01T21:00:00Z\"}",
         "ends_at", "past"},
        {"{\"hostname_pattern\":\"db*\",\"team\":7,\"ends_at\":\"2026-01-01T23:00:00Z\"}", "team", "string"},
        {"{\"hostname_pattern\":\"db*\",\"summary\":\"no\",\"ends_at\":\"2026-01-01T23:00:00Z\"}", "summary", "true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mutt_maint_spec s;
        char field[32], msg[200];
        int rc = validate(cases[i].body, &s, field, sizeof field, msg);
        if (rc != MUTT_EINVAL || strcmp(field, cases[i].field) != 0 || !strstr(msg, cases[i].words))
            fail_msg("case %zu (%s): rc %d field [%s] msg [%s]", i, cases[i].body, rc, field, msg);
    }
}

static void test_maintenance_exactly_30_days_is_allowed(void **state)
{
    (void)state;
    struct mutt_maint_spec s;
    char field[32], msg[200];
    assert_int_equal(0, validate("{\"hostname_pattern\":\"db*\",\"starts_at\":\"2026-01-01T22:00:00Z\","
                                 "\"ends_at\":\"2026-01-31T22:00:00Z\"}",
                                 &s, field, sizeof field, msg));
}

static void test_maintenance_summary_alert_carries_counts_by_rule_and_host(void **state)
{
    (void)state;
    struct mutt_maint_window w = {.id = 42, .hostname_pattern = "db*", .team = "DBA", .starts_ms = T0,
                                  .ends_ms = T0 + HOUR, .summary = true};
    const char *f[] = {"n", "r:7", "r:9", "h:db1", "h:db2", "first", "last", "junk"};
    const char *v[] = {"5", "3", "2", "4", "1", "1767304860000", "1767304920500", "x"};
    json_t *a = mutt_maint_summary_alert(&w, "patching", "OPS", f, v, 8, "0b7c1b7e-4c1e-4f7a-9d1e-3a8f6b2c1d00");
    assert_non_null(a);
    assert_string_equal("MUTT_Alerter", json_string_value(json_object_get(a, "hostname")));
    assert_string_equal("DBA", json_string_value(json_object_get(a, "team_assignment")));
    assert_string_equal("Maintenance", json_string_value(json_object_get(a, "handling_decision")));
    assert_string_equal("mutt-maintenance:42", json_string_value(json_object_get(a, "signature")));
    assert_string_equal("maintenance-window-42", json_string_value(json_object_get(a, "_correlation_id")));
    assert_non_null(strstr(json_string_value(json_object_get(a, "message_body")), "5 events suppressed from 2 hosts by 2 rules"));
    json_t *r = json_object_get(a, "raw_json");
    assert_int_equal(5, json_integer_value(json_object_get(r, "suppressed")));
    assert_int_equal(3, json_integer_value(json_object_get(json_object_get(r, "by_rule"), "7")));
    assert_int_equal(2, json_integer_value(json_object_get(json_object_get(r, "by_rule"), "9")));
    assert_int_equal(4, json_integer_value(json_object_get(json_object_get(r, "by_host"), "db1")));
    assert_int_equal(1, json_integer_value(json_object_get(json_object_get(r, "by_host"), "db2")));
    assert_string_equal("2026-01-01T22:01:00.000Z", json_string_value(json_object_get(r, "first_seen")));
    assert_string_equal("2026-01-01T22:02:00.500Z", json_string_value(json_object_get(r, "last_seen")));
    assert_string_equal("patching", json_string_value(json_object_get(r, "reason")));
    assert_string_equal("2026-01-01T23:00:00.000Z", json_string_value(json_object_get(r, "ends_at")));
    json_decref(a);
}

static void test_maintenance_summary_of_a_quiet_window_says_zero_and_uses_default_team(void **state)
{
    (void)state;
    struct mutt_maint_window w = {.id = 1, .hostname_pattern = "x*", .starts_ms = T0, .ends_ms = T0 + HOUR};
    json_t *a = mutt_maint_summary_alert(&w, NULL, "OPS", NULL, NULL, 0, "id");
    assert_non_null(a);
    assert_string_equal("OPS", json_string_value(json_object_get(a, "team_assignment")));
    json_t *r = json_object_get(a, "raw_json");
    assert_int_equal(0, json_integer_value(json_object_get(r, "suppressed")));
    assert_true(json_is_null(json_object_get(r, "first_seen")));
    assert_int_equal(0, (int)json_object_size(json_object_get(r, "by_host")));
    json_decref(a);
}

static void test_maintenance_summary_lists_held_meta_alerts_by_host_apart_from_suppressed(void **state)
{
    (void)state;
    /* only unhandled meta-alerts were held: "suppressed" (matched events) stays 0, the times show */
    struct mutt_maint_window w = {.id = 3, .hostname_pattern = "app*", .starts_ms = T0, .ends_ms = T0 + HOUR};
    const char *f[] = {"u:app1", "u:app2", "uo", "first", "last"};
    const char *v[] = {"2", "1", "4", "1767304860000", "1767304920500"};
    json_t *a = mutt_maint_summary_alert(&w, NULL, "OPS", f, v, 5, "id");
    assert_non_null(a);
    json_t *r = json_object_get(a, "raw_json");
    assert_int_equal(0, json_integer_value(json_object_get(r, "suppressed")));
    assert_int_equal(0, (int)json_object_size(json_object_get(r, "by_host")));
    json_t *u = json_object_get(r, "unhandled");
    assert_int_equal(2, (int)json_object_size(u));
    assert_int_equal(2, json_integer_value(json_object_get(u, "app1")));
    assert_int_equal(1, json_integer_value(json_object_get(u, "app2")));
    assert_int_equal(4, json_integer_value(json_object_get(r, "unhandled_other_hosts")));
    assert_string_equal("2026-01-01T22:01:00.000Z", json_string_value(json_object_get(r, "first_seen")));
    assert_non_null(strstr(json_string_value(json_object_get(a, "message_body")), "; 7 unhandled-event meta-alerts held"));
    json_decref(a);
    /* a window without held meta-alerts says nothing about them in its message */
    a = mutt_maint_summary_alert(&w, NULL, "OPS", NULL, NULL, 0, "id");
    assert_null(strstr(json_string_value(json_object_get(a, "message_body")), "meta-alert"));
    assert_int_equal(0, (int)json_object_size(json_object_get(json_object_get(a, "raw_json"), "unhandled")));
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maintenance_active_from_start_inclusive_to_end_exclusive),
        cmocka_unit_test(test_maintenance_glob_matches_hostnames_case_insensitively),
        cmocka_unit_test(test_maintenance_team_window_holds_only_that_teams_events),
        cmocka_unit_test(test_maintenance_first_active_matching_window_wins),
        cmocka_unit_test(test_maintenance_valid_body_defaults_summary_true_and_start_now),
        cmocka_unit_test(test_maintenance_refusals_name_the_field),
        cmocka_unit_test(test_maintenance_exactly_30_days_is_allowed),
        cmocka_unit_test(test_maintenance_summary_alert_carries_counts_by_rule_and_host),
        cmocka_unit_test(test_maintenance_summary_of_a_quiet_window_says_zero_and_uses_default_team),
        cmocka_unit_test(test_maintenance_summary_lists_held_meta_alerts_by_host_apart_from_suppressed),
    };
    int failed = cmocka_run_group_tests_name("maintenance", tests, NULL, NULL);
    json_decref(kept_body);
    return failed;
}
