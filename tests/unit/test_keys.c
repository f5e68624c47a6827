/* Unit tests of the shared Redis schema (src/domain/keys.c): the DLQ envelope gives the exact
 * bytes the alert and forward stages wrote before it moved here (fields appended in the order
 * _dlq_reason, _failed_at, _origin; a field already present keeps its place), the raw form for
 * items that are not JSON objects, and the dashboard counter keys ingest writes and the web reads.
 * No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/keys.h"
#include "mutt/replay.h"
#include "mutt/timefmt.h"

#define NOW_MS 1700000000123LL /* 2023-11-14T22:13:20.123Z */

static char *envelope_of(const char *item_json, const char *origin, const char *reason, int64_t now_ms)
{
    json_t *o = json_loads(item_json, 0, NULL);
    assert_non_null(o);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mutt_dlq_envelope(o, origin, reason, now_ms, &out, &len), 0);
    json_decref(o);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

static void test_dlq_envelope_of_an_alert_stage_event_appends_reason_time_origin(void **state)
{
    (void)state;
    char *s = envelope_of("{\"hostname\":\"db01\",\"message\":\"disk full\",\"_event_id\":\"e1\"}",
                          MUTT_REPLAY_ORIGIN_INGEST, "poison: rule error", NOW_MS);
    assert_string_equal(s, "{\"hostname\":\"db01\",\"message\":\"disk full\",\"_event_id\":\"e1\","
                           "\"_dlq_reason\":\"poison: rule error\",\"_failed_at\":\"2023-11-14T22:13:20.123Z\","
                           "\"_origin\":\"ingest\"}");
    free(s);
}

static void test_dlq_envelope_of_a_forward_stage_alert_says_origin_alert(void **state)
{
    (void)state;
    char *s = envelope_of("{\"signature\":\"db01\",\"severity\":\"Critical\"}", MUTT_REPLAY_ORIGIN_ALERT,
                          "HTTP 400", NOW_MS);
    assert_string_equal(s, "{\"signature\":\"db01\",\"severity\":\"Critical\",\"_dlq_reason\":\"HTTP 400\","
                           "\"_failed_at\":\"2023-11-14T22:13:20.123Z\",\"_origin\":\"alert\"}");
    free(s);
}

/* a replayed item that fails again: the old reason is replaced where it stood */
static void test_dlq_envelope_replaces_fields_of_an_earlier_failure_in_place(void **state)
{
    (void)state;
    char *s = envelope_of("{\"_origin\":\"alert\",\"a\":1,\"_dlq_reason\":\"old\",\"_replay_count\":2}",
                          MUTT_REPLAY_ORIGIN_ALERT, "new", NOW_MS);
    assert_string_equal(s, "{\"_origin\":\"alert\",\"a\":1,\"_dlq_reason\":\"new\",\"_replay_count\":2,"
                           "\"_failed_at\":\"2023-11-14T22:13:20.123Z\"}");
    free(s);
}

static void test_dlq_envelope_writes_an_empty_failed_at_for_a_time_it_cannot_format(void **state)
{
    (void)state;
    char *s = envelope_of("{}", MUTT_REPLAY_ORIGIN_INGEST, "shed", MUTT_TIME_MAX_MS + 1);
    assert_string_equal(s, "{\"_dlq_reason\":\"shed\",\"_failed_at\":\"\",\"_origin\":\"ingest\"}");
    free(s);
}

static void test_dlq_envelope_refuses_a_non_object(void **state)
{
    (void)state;
    json_t *a = json_array();
    char *out = (char *)"x";
    size_t len = 0;
    assert_int_equal(mutt_dlq_envelope(a, MUTT_REPLAY_ORIGIN_INGEST, "r", NOW_MS, &out, &len), MUTT_EINVAL);
    assert_null(out);
    json_decref(a);
}

static void test_dlq_envelope_raw_keeps_text_under_raw(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    const char data[] = "not json \"quoted\"";
    assert_int_equal(mutt_dlq_envelope_raw(data, strlen(data), MUTT_REPLAY_ORIGIN_ALERT, "unparseable", NOW_MS, &out,
                                           &len),
                     0);
    assert_string_equal(out, "{\"_raw\":\"not json \\\"quoted\\\"\",\"_dlq_reason\":\"unparseable\","
                             "\"_failed_at\":\"2023-11-14T22:13:20.123Z\",\"_origin\":\"alert\"}");
    assert_int_equal(len, strlen(out));
    free(out);
}

static void test_dlq_envelope_raw_turns_bytes_that_are_not_utf8_into_question_marks(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    const char data[] = {'a', (char)0xff, '\0', 'b', (char)0xc3};
    assert_int_equal(mutt_dlq_envelope_raw(data, sizeof data, MUTT_REPLAY_ORIGIN_INGEST, "bad bytes", NOW_MS, &out,
                                           &len),
                     0);
    assert_string_equal(out, "{\"_raw\":\"a??b?\",\"_dlq_reason\":\"bad bytes\","
                             "\"_failed_at\":\"2023-11-14T22:13:20.123Z\",\"_origin\":\"ingest\"}");
    free(out);
}

static void test_key_metrics_names_the_utc_minute_hour_and_day(void **state)
{
    (void)state;
    char k[128];
    assert_int_equal(mutt_key_metrics("mutt:metrics", MUTT_KEY_METRICS_1M, NOW_MS, k, sizeof k),
                     (int)strlen("mutt:metrics:1m:2023-11-14T22:13"));
    assert_string_equal(k, "mutt:metrics:1m:2023-11-14T22:13");
    assert_true(mutt_key_metrics("mutt:metrics", MUTT_KEY_METRICS_1H, NOW_MS, k, sizeof k) > 0);
    assert_string_equal(k, "mutt:metrics:1h:2023-11-14T22");
    assert_true(mutt_key_metrics("mutt:metrics", MUTT_KEY_METRICS_24H, NOW_MS, k, sizeof k) > 0);
    assert_string_equal(k, "mutt:metrics:24h:2023-11-14");
}

static void test_key_metrics_refuses_a_key_that_does_not_fit(void **state)
{
    (void)state;
    char k[20];
    assert_int_equal(mutt_key_metrics("mutt:metrics", MUTT_KEY_METRICS_1M, NOW_MS, k, sizeof k), MUTT_EINVAL);
    assert_string_equal(k, "");
    assert_int_equal(mutt_key_metrics("p", MUTT_KEY_METRICS_1M, -1, k, sizeof k), MUTT_EINVAL);
}

static void test_keys_fixed_names_keep_their_wire_spelling(void **state)
{
    (void)state;
    /* dashboards, the Python original's tooling and other pods read these exact names */
    assert_string_equal(MUTT_KEY_RULES_CHANNEL, "mutt:rules:updates");
    assert_string_equal(MUTT_KEY_BREAKER_PREFIX, "mutt:circuit_breaker:moogsoft");
    assert_string_equal(MUTT_KEY_BREAKER_STATE, "mutt:circuit_breaker:moogsoft:state");
    assert_string_equal(MUTT_KEY_REMEDIATE_PROCESSING_PREFIX, "mutt:processing:remediate");
    assert_string_equal(MUTT_KEY_WEB_REPLAY_PROCESSING_PREFIX, "mutt:processing:web");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dlq_envelope_of_an_alert_stage_event_appends_reason_time_origin),
        cmocka_unit_test(test_dlq_envelope_of_a_forward_stage_alert_says_origin_alert),
        cmocka_unit_test(test_dlq_envelope_replaces_fields_of_an_earlier_failure_in_place),
        cmocka_unit_test(test_dlq_envelope_writes_an_empty_failed_at_for_a_time_it_cannot_format),
        cmocka_unit_test(test_dlq_envelope_refuses_a_non_object),
        cmocka_unit_test(test_dlq_envelope_raw_keeps_text_under_raw),
        cmocka_unit_test(test_dlq_envelope_raw_turns_bytes_that_are_not_utf8_into_question_marks),
        cmocka_unit_test(test_key_metrics_names_the_utc_minute_hour_and_day),
        cmocka_unit_test(test_key_metrics_refuses_a_key_that_does_not_fit),
        cmocka_unit_test(test_keys_fixed_names_keep_their_wire_spelling),
    };
    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
