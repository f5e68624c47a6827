/* Unit tests of the rule dry-run (src/domain/dryrun.c): every count of the answer for a new rule
 * and for an edit, priority ties, inactive rules, dev-host decisions, the examples cap, and the
 * candidate's validation (the API's own). Pure: rows, dev hosts and sample items are literals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/dryrun.h"
#include "mutt/error.h"

/* Rows as MUTT_DRYRUN_ROWS_SQL returns them. Rule 3 is inactive; rule 6 is invalid as stored
 * (oid_prefix without trap_oid), so the alert stage's cache and the dry-run both leave it out. */
static const char ROWS[] =
    "[{\"id\":1,\"match_string\":\"disk\",\"trap_oid\":null,\"syslog_severity\":null,\"match_type\":\"contains\","
    "\"priority\":10,\"prod_handling\":\"Page_and_ticket\",\"dev_handling\":\"Ignore\",\"team_assignment\":\"NETO\","
    "\"is_active\":true},"
    "{\"id\":2,\"match_string\":\"link down\",\"trap_oid\":null,\"syslog_severity\":null,\"match_type\":\"contains\","
    "\"priority\":20,\"prod_handling\":\"Ticket_only\",\"dev_handling\":\"Ignore\",\"team_assignment\":\"NET\","
    "\"is_active\":true},"
    "{\"id\":3,\"match_string\":\"fan\",\"trap_oid\":null,\"syslog_severity\":null,\"match_type\":\"contains\","
    "\"priority\":1,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Ignore\",\"team_assignment\":\"HW\","
    "\"is_active\":false},"
    "{\"id\":4,\"match_string\":\"^CPU\",\"trap_oid\":null,\"syslog_severity\":null,\"match_type\":\"regex\","
    "\"priority\":50,\"prod_handling\":\"Ticket_only\",\"dev_handling\":\"Ignore\",\"team_assignment\":\"SYS\","
    "\"is_active\":true},"
    "{\"id\":6,\"match_string\":\"down\",\"trap_oid\":null,\"syslog_severity\":null,\"match_type\":\"oid_prefix\","
    "\"priority\":1,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Ignore\",\"team_assignment\":\"X\","
    "\"is_active\":true}]";

static const char *const SAMPLE[] = {
    "{\"hostname\":\"web1\",\"message\":\"disk full on /var\"}",       /* rule 1 */
    "{\"hostname\":\"web2\",\"message\":\"link down eth0\"}",          /* rule 2 */
    "{\"hostname\":\"dev1\",\"message\":\"fan failure\"}",             /* none (3 inactive) */
    "{\"hostname\":\"web1\",\"message\":\"CPU high\"}",                /* rule 4 */
    "{\"hostname\":\"web1\",\"message\":\"all fine\"}",                /* none */
    "not json",                                                       /* skipped */
    "[1,2]",                                                          /* skipped */
    "{\"hostname\":\"dev1\",\"message\":\"disk link down\"}",          /* rule 1 (before 2) */
    "{\"hostname\":\"dev1\",\"message\":\"system down\",\"_event_id\":\"e9\"}", /* none */
};
#define NSAMPLE (sizeof SAMPLE / sizeof SAMPLE[0])

struct fixture {
    json_t *rows;
    json_t *dev;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->rows = json_loads(ROWS, 0, NULL);
    f->dev = json_loads("[\"dev1\"]", 0, NULL);
    assert_non_null(f->rows);
    assert_non_null(f->dev);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    json_decref(f->rows);
    json_decref(f->dev);
    free(f);
    return 0;
}

/* Validates `body` like the web stage does, runs it over SAMPLE; NULL when validation failed
 * (rc in *rc_out). */
static struct mutt_dryrun *run(struct fixture *f, const char *body_text, int *rc_out)
{
    json_t *body = json_loads(body_text, 0, NULL);
    assert_non_null(body);
    char err[300] = "";
    const char *field = NULL;
    int64_t edit_id = -1;
    int rc = mutt_dryrun_parse_rule_id(body, &edit_id, err, sizeof err);
    json_t *cand = NULL;
    if (rc == 0)
        rc = mutt_dryrun_candidate(body, f->rows, edit_id, &cand, err, sizeof err, &field);
    json_decref(body);
    if (rc_out)
        *rc_out = rc;
    if (rc != 0)
        return NULL;
    struct mutt_dryrun *d = mutt_dryrun_create(f->rows, f->dev, cand, edit_id, err, sizeof err);
    json_decref(cand);
    if (!d)
        fail_msg("create: %s", err);
    for (size_t i = 0; i < NSAMPLE; i++)
        assert_int_equal(mutt_dryrun_add_event(d, SAMPLE[i], strlen(SAMPLE[i])), 0);
    return d;
}

#define NEW_DOWN                                                                                                 \
    "{\"match_string\":\"down\",\"priority\":15,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Ignore\"," \
    "\"team_assignment\":\"OPS\"}"

static void test_dryrun_new_rule_counts_every_bucket(void **state)
{
    struct mutt_dryrun *d = run(*state, NEW_DOWN, NULL);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.examined, 7);
    assert_int_equal(c.skipped, 2);
    /* "link down eth0" leaves rule 2 (priority 20 > 15); "system down" was unhandled;
     * "disk link down" stays with rule 1 (priority 10 < 15) */
    assert_int_equal(c.would_match, 2);
    assert_int_equal(c.newly_matched, 2);
    assert_int_equal(c.unhandled_now_handled, 1);
    assert_int_equal(mutt_dryrun_taken_from(d, 2), 1);
    assert_int_equal(mutt_dryrun_taken_from(d, 1), 0);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_result_has_the_d41_shape_and_decisions(void **state)
{
    struct mutt_dryrun *d = run(*state, NEW_DOWN, NULL);
    json_t *r = mutt_dryrun_result(d);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "examined")), 7);
    assert_int_equal(json_integer_value(json_object_get(r, "would_match")), 2);
    assert_int_equal(json_integer_value(json_object_get(r, "newly_matched")), 2);
    assert_int_equal(json_integer_value(json_object_get(r, "unhandled_now_handled")), 1);
    json_t *tf = json_object_get(r, "taken_from");
    assert_int_equal(json_object_size(tf), 1);
    assert_int_equal(json_integer_value(json_object_get(tf, "2")), 1);
    json_t *ex = json_object_get(r, "examples");
    assert_int_equal(json_array_size(ex), 2);
    /* sample order; a production host gets prod_handling, which forwards */
    json_t *e0 = json_array_get(ex, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e0, "event"), "message")), "link down eth0");
    json_t *dec = json_object_get(e0, "decision");
    assert_true(json_is_null(json_object_get(dec, "rule_id"))); /* a new rule has no id yet */
    assert_string_equal(json_string_value(json_object_get(dec, "handling_decision")), "Page_only");
    assert_string_equal(json_string_value(json_object_get(dec, "environment")), "production");
    assert_true(json_is_true(json_object_get(dec, "forwarded")));
    assert_string_equal(json_string_value(json_object_get(dec, "team_assignment")), "OPS");
    json_t *cur = json_object_get(e0, "current");
    assert_int_equal(json_integer_value(json_object_get(cur, "rule_id")), 2);
    assert_string_equal(json_string_value(json_object_get(cur, "handling_decision")), "Ticket_only");
    /* a development host gets dev_handling, which does not forward; unhandled today */
    json_t *e1 = json_array_get(ex, 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e1, "event"), "_event_id")), "e9");
    dec = json_object_get(e1, "decision");
    assert_string_equal(json_string_value(json_object_get(dec, "handling_decision")), "Ignore");
    assert_string_equal(json_string_value(json_object_get(dec, "environment")), "development");
    assert_true(json_is_false(json_object_get(dec, "forwarded")));
    assert_true(json_is_null(json_object_get(json_object_get(e1, "current"), "rule_id")));
    json_decref(r);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_edit_does_not_count_what_the_rule_already_catches(void **state)
{
    /* rule 2 edited to "down" at priority 5: keeps "link down eth0" (not new), takes
     * "disk link down" from rule 1, and catches "system down" (unhandled today) */
    struct mutt_dryrun *d = run(*state, "{\"rule_id\":2,\"match_string\":\"down\",\"priority\":5}", NULL);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.examined, 7);
    assert_int_equal(c.would_match, 3);
    assert_int_equal(c.newly_matched, 2);
    assert_int_equal(c.unhandled_now_handled, 1);
    assert_int_equal(mutt_dryrun_taken_from(d, 1), 1);
    assert_int_equal(mutt_dryrun_taken_from(d, 2), 0);
    json_t *r = mutt_dryrun_result(d);
    json_t *dec = json_object_get(json_array_get(json_object_get(r, "examples"), 0), "decision");
    assert_int_equal(json_integer_value(json_object_get(dec, "rule_id")), 2);
    /* the edit keeps the stored fields it does not name */
    assert_string_equal(json_string_value(json_object_get(dec, "team_assignment")), "NET");
    json_decref(r);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_edit_without_fields_tests_the_stored_rule(void **state)
{
    struct mutt_dryrun *d = run(*state, "{\"rule_id\":1}", NULL);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.would_match, 2); /* "disk full", "disk link down" */
    assert_int_equal(c.newly_matched, 0);
    assert_int_equal(c.unhandled_now_handled, 0);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_priority_tie_goes_to_the_older_rule(void **state)
{
    /* same priority as rule 1: the new rule's id (max + 1) sorts after it, as in the alert stage */
    struct mutt_dryrun *d = run(*state,
                                "{\"match_string\":\"disk\",\"priority\":10,\"prod_handling\":\"Page_only\","
                                "\"dev_handling\":\"Ignore\",\"team_assignment\":\"OPS\"}",
                                NULL);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.would_match, 0);
    assert_int_equal(c.newly_matched, 0);
    mutt_dryrun_destroy(d);
    d = run(*state,
            "{\"match_string\":\"disk\",\"priority\":9,\"prod_handling\":\"Page_only\","
            "\"dev_handling\":\"Ignore\",\"team_assignment\":\"OPS\"}",
            NULL);
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.would_match, 2);
    assert_int_equal(c.newly_matched, 2);
    assert_int_equal(mutt_dryrun_taken_from(d, 1), 2);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_inactive_rows_and_candidates_match_nothing(void **state)
{
    /* rule 3 ("fan", inactive) is not current: activating it takes "fan failure" from unhandled */
    struct mutt_dryrun *d = run(*state, "{\"rule_id\":3,\"is_active\":true}", NULL);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.would_match, 1);
    assert_int_equal(c.unhandled_now_handled, 1);
    mutt_dryrun_destroy(d);
    d = run(*state,
            "{\"match_string\":\"down\",\"priority\":1,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Ignore\","
            "\"team_assignment\":\"OPS\",\"is_active\":false}",
            NULL);
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.examined, 7);
    assert_int_equal(c.would_match, 0);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_examples_stop_at_twenty(void **state)
{
    struct fixture *f = *state;
    json_t *cand = json_loads("{\"match_string\":\"x\",\"trap_oid\":null,\"syslog_severity\":null,"
                              "\"match_type\":\"contains\",\"priority\":1,\"prod_handling\":\"Page_only\","
                              "\"dev_handling\":\"Ignore\",\"team_assignment\":\"OPS\",\"is_active\":true}",
                              0, NULL);
    char err[256];
    struct mutt_dryrun *d = mutt_dryrun_create(f->rows, f->dev, cand, 0, err, sizeof err);
    assert_non_null(d);
    for (int i = 0; i < 25; i++) {
        char ev[64];
        int n = snprintf(ev, sizeof ev, "{\"hostname\":\"h%d\",\"message\":\"x%d\"}", i, i);
        assert_int_equal(mutt_dryrun_add_event(d, ev, (size_t)n), 0);
    }
    json_t *r = mutt_dryrun_result(d);
    assert_int_equal(json_integer_value(json_object_get(r, "would_match")), 25);
    assert_int_equal(json_array_size(json_object_get(r, "examples")), MUTT_DRYRUN_MAX_EXAMPLES);
    json_decref(r);
    json_decref(cand);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_candidate_is_validated_as_the_api_does(void **state)
{
    int rc = 0;
    /* POST /rules' own checks: a regex that does not compile names match_string */
    assert_null(run(*state,
                    "{\"match_string\":\"(\",\"match_type\":\"regex\",\"prod_handling\":\"Page_only\","
                    "\"dev_handling\":\"Ignore\",\"team_assignment\":\"OPS\"}",
                    &rc));
    assert_int_equal(rc, MUTT_EINVAL);
    assert_null(run(*state, "{\"prod_handling\":\"Page_only\",\"dev_handling\":\"Ignore\",\"team_assignment\":\"O\"}",
                    &rc));
    assert_int_equal(rc, MUTT_EINVAL); /* neither match_string nor trap_oid */
    assert_null(run(*state, "{\"rule_id\":\"2\",\"match_string\":\"x\"}", &rc));
    assert_int_equal(rc, MUTT_EINVAL);
    assert_null(run(*state, "{\"rule_id\":0,\"match_string\":\"x\"}", &rc));
    assert_int_equal(rc, MUTT_EINVAL);
    assert_null(run(*state, "{\"rule_id\":99,\"match_string\":\"x\"}", &rc));
    assert_int_equal(rc, MUTT_ENOTFOUND);
}

/* Windows as MUTT_DRYRUN_ROWS_SQL's third column gives them. Window 7 holds web* for every team;
 * window 8 holds dev1 but only for team NETO; window 9 holds web1 but ended before NOW. */
#define NOW 1767225600000LL /* 2026-01-01T00:00:00Z */
static const char WINDOWS[] =
    "[{\"id\":7,\"hostname_pattern\":\"WEB*\",\"team\":null,\"starts_ms\":1767222000000,\"ends_ms\":1767229200000},"
    "{\"id\":8,\"hostname_pattern\":\"dev1\",\"team\":\"NETO\",\"starts_ms\":1767222000000,\"ends_ms\":1767229200000},"
    "{\"id\":9,\"hostname_pattern\":\"web1\",\"team\":\"\",\"starts_ms\":1767218400000,\"ends_ms\":1767222000000},"
    "{\"hostname_pattern\":\"*\"}]";

static struct mutt_dryrun *run_with_windows(struct fixture *f, const char *body_text, const char *windows,
                                            int64_t now_ms)
{
    json_t *body = json_loads(body_text, 0, NULL);
    json_t *ws = json_loads(windows, 0, NULL);
    assert_non_null(body);
    assert_non_null(ws);
    char err[300] = "";
    const char *field = NULL;
    int64_t edit_id = -1;
    json_t *cand = NULL;
    assert_int_equal(mutt_dryrun_parse_rule_id(body, &edit_id, err, sizeof err), 0);
    assert_int_equal(mutt_dryrun_candidate(body, f->rows, edit_id, &cand, err, sizeof err, &field), 0);
    struct mutt_dryrun *d = mutt_dryrun_create(f->rows, f->dev, cand, edit_id, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(mutt_dryrun_set_windows(d, ws, now_ms), 0);
    for (size_t i = 0; i < NSAMPLE; i++)
        assert_int_equal(mutt_dryrun_add_event(d, SAMPLE[i], strlen(SAMPLE[i])), 0);
    json_decref(cand);
    json_decref(body);
    json_decref(ws);
    return d;
}

static json_t *example_of(json_t *r, const char *message)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r, "examples"), i, e) {
        if (strcmp(json_string_value(json_object_get(json_object_get(e, "event"), "message")), message) == 0)
            return e;
    }
    fail_msg("no example for %s", message);
    return NULL;
}

static void test_dryrun_active_window_holds_what_would_be_forwarded(void **state)
{
    /* "down" at priority 5 for team NETO (Page_only / Ignore): catches link down eth0 (web2),
     * disk link down (dev1) and system down (dev1) */
    struct mutt_dryrun *d = run_with_windows(
        *state,
        "{\"match_string\":\"down\",\"priority\":5,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Page_only\","
        "\"team_assignment\":\"NETO\"}",
        WINDOWS, NOW);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    /* the counts of D41 are about matching: a window changes none of them */
    assert_int_equal(c.examined, 7);
    assert_int_equal(c.would_match, 3);
    assert_int_equal(c.newly_matched, 3);
    /* web2 by window 7 (glob, case-insensitive, any team); both dev1 events by window 8 (team NETO) */
    assert_int_equal(c.held_by_maintenance, 3);
    json_t *r = mutt_dryrun_result(d);
    assert_int_equal(json_integer_value(json_object_get(r, "held_by_maintenance")), 3);
    json_t *dec = json_object_get(example_of(r, "link down eth0"), "decision");
    assert_string_equal(json_string_value(json_object_get(dec, "handling_decision")), "Maintenance");
    assert_true(json_is_false(json_object_get(dec, "forwarded")));
    assert_int_equal(json_integer_value(json_object_get(dec, "maintenance_window")), 7);
    assert_string_equal(json_string_value(json_object_get(dec, "environment")), "production");
    /* the current rule (2, Ticket_only, team NET) forwards too: window 7 holds it as well */
    json_t *cur = json_object_get(example_of(r, "link down eth0"), "current");
    assert_string_equal(json_string_value(json_object_get(cur, "handling_decision")), "Maintenance");
    /* dev1's current rule 1 is team NETO but Ignore on a dev host: not forwarded, so not held */
    cur = json_object_get(example_of(r, "disk link down"), "current");
    assert_string_equal(json_string_value(json_object_get(cur, "handling_decision")), "Ignore");
    dec = json_object_get(example_of(r, "system down"), "decision");
    assert_int_equal(json_integer_value(json_object_get(dec, "maintenance_window")), 8);
    json_decref(r);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_window_of_another_team_or_time_holds_nothing(void **state)
{
    /* team OPS: window 8 (NETO only) does not hold dev1; window 7 holds web2 */
    struct mutt_dryrun *d = run_with_windows(
        *state,
        "{\"match_string\":\"down\",\"priority\":5,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Page_only\","
        "\"team_assignment\":\"OPS\"}",
        WINDOWS, NOW);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.held_by_maintenance, 1);
    json_t *r = mutt_dryrun_result(d);
    json_t *dec = json_object_get(example_of(r, "system down"), "decision");
    assert_string_equal(json_string_value(json_object_get(dec, "handling_decision")), "Page_only");
    assert_true(json_is_true(json_object_get(dec, "forwarded")));
    assert_null(json_object_get(dec, "maintenance_window"));
    json_decref(r);
    mutt_dryrun_destroy(d);
    /* three hours later every window has ended: nothing is held */
    d = run_with_windows(*state,
                         "{\"match_string\":\"down\",\"priority\":5,\"prod_handling\":\"Page_only\","
                         "\"dev_handling\":\"Page_only\",\"team_assignment\":\"NETO\"}",
                         WINDOWS, NOW + 3 * 3600000LL);
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.would_match, 3);
    assert_int_equal(c.held_by_maintenance, 0);
    mutt_dryrun_destroy(d);
}

static void test_dryrun_window_never_holds_what_would_not_be_forwarded(void **state)
{
    /* dev_handling Ignore: dev1's events are not forwarded, so window 8 has nothing to hold */
    struct mutt_dryrun *d = run_with_windows(
        *state,
        "{\"match_string\":\"down\",\"priority\":5,\"prod_handling\":\"Page_only\",\"dev_handling\":\"Ignore\","
        "\"team_assignment\":\"NETO\"}",
        WINDOWS, NOW);
    struct mutt_dryrun_counts c;
    mutt_dryrun_counts(d, &c);
    assert_int_equal(c.held_by_maintenance, 1); /* web2 only */
    json_t *r = mutt_dryrun_result(d);
    json_t *dec = json_object_get(example_of(r, "system down"), "decision");
    assert_string_equal(json_string_value(json_object_get(dec, "handling_decision")), "Ignore");
    json_decref(r);
    mutt_dryrun_destroy(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dryrun_new_rule_counts_every_bucket),
        cmocka_unit_test(test_dryrun_result_has_the_d41_shape_and_decisions),
        cmocka_unit_test(test_dryrun_edit_does_not_count_what_the_rule_already_catches),
        cmocka_unit_test(test_dryrun_edit_without_fields_tests_the_stored_rule),
        cmocka_unit_test(test_dryrun_priority_tie_goes_to_the_older_rule),
        cmocka_unit_test(test_dryrun_inactive_rows_and_candidates_match_nothing),
        cmocka_unit_test(test_dryrun_examples_stop_at_twenty),
        cmocka_unit_test(test_dryrun_candidate_is_validated_as_the_api_does),
        cmocka_unit_test(test_dryrun_active_window_holds_what_would_be_forwarded),
        cmocka_unit_test(test_dryrun_window_of_another_team_or_time_holds_nothing),
        cmocka_unit_test(test_dryrun_window_never_holds_what_would_not_be_forwarded),
    };
    return cmocka_run_group_tests_name("dryrun", tests, setup, teardown);
}
