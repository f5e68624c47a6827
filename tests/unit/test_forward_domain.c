/* Unit tests of the forward stage's pure pieces: outcome classification (forward_classify.c),
 * full-jitter backoff (backoff.c), the Moog payload (moog_payload.c), the circuit breaker state
 * machine (breaker.c) and the retry member format (retryset.c). No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mutt/backoff.h"
#include "mutt/breaker.h"
#include "mutt/error.h"
#include "mutt/forward_classify.h"
#include "mutt/moog_payload.h"
#include "mutt/retryset.h"

/* ---- classification ----------------------------------------------------------------------- */

static void test_classify_any_2xx_is_delivered(void **state)
{
    const long codes[] = {200, 201, 202, 204, 299};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(mutt_forward_classify(codes[i], 0), MUTT_DELIVERED);
}

static void test_classify_408_429_and_5xx_are_retried(void **state)
{
    const long codes[] = {408, 429, 500, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(mutt_forward_classify(codes[i], 0), MUTT_RETRY);
}

static void test_classify_other_4xx_and_1xx_3xx_finals_are_dead(void **state)
{
    const long codes[] = {100, 101, 199, 300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 413, 422, 499};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(mutt_forward_classify(codes[i], 0), MUTT_DEAD);
}

static void test_classify_transport_errors_are_retried_whatever_the_status(void **state)
{
    assert_int_equal(mutt_forward_classify(0, 7), MUTT_RETRY);   /* couldn't connect */
    assert_int_equal(mutt_forward_classify(0, 28), MUTT_RETRY);  /* timeout */
    assert_int_equal(mutt_forward_classify(0, 6), MUTT_RETRY);   /* DNS */
    assert_int_equal(mutt_forward_classify(0, 35), MUTT_RETRY);  /* TLS */
    assert_int_equal(mutt_forward_classify(200, 28), MUTT_RETRY); /* body timed out after 200 */
    assert_int_equal(mutt_forward_classify(400, 56), MUTT_RETRY);
    assert_int_equal(mutt_forward_classify(0, 0), MUTT_RETRY); /* no answer at all */
}

static void test_classify_reason_names_status_or_curl_error(void **state)
{
    char buf[96];
    assert_string_equal(mutt_forward_reason(400, 0, buf, sizeof(buf)), "http_400");
    assert_string_equal(mutt_forward_reason(0, 7, buf, sizeof(buf)), "curl_7: Couldn't connect to server");
    assert_string_equal(mutt_forward_reason(0, 28, buf, sizeof(buf)), "curl_28: Timeout was reached");
    assert_string_equal(mutt_forward_reason(0, 9999, buf, sizeof(buf)), "curl_9999: transport error");
    assert_string_equal(mutt_forward_reason(0, 0, buf, sizeof(buf)), "no_http_status");
    char small[5];
    assert_string_equal(mutt_forward_reason(404, 0, small, sizeof(small)), "http");
}

static void test_classify_metric_reason_labels(void **state)
{
    assert_string_equal(mutt_forward_metric_reason(429, 0), "rate_limit");
    assert_string_equal(mutt_forward_metric_reason(503, 0), "http");
    assert_string_equal(mutt_forward_metric_reason(0, 28), "timeout");
    assert_string_equal(mutt_forward_metric_reason(0, 7), "connect");
}

/* ---- backoff ------------------------------------------------------------------------------ */

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

/* ---- Moog payload ------------------------------------------------------------------------- */

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    assert_non_null(j);
    return j;
}

static const char *FULL_ALERT =
    "{\"hostname\":\"router-1\",\"source_hostname\":\"router-1.dc\",\"signature\":\"sig-7\","
    "\"team_assignment\":\"NETO\",\"severity\":\"Major\",\"message_body\":\"link down\","
    "\"raw_json\":{\"hostname\":\"router-1\",\"message\":\"link down\",\"api_key\":\"s3cret\"},"
    "\"handling_decision\":\"Page_and_ticket\",\"rule_id\":42,\"environment\":\"prod\","
    "\"_correlation_id\":\"corr-1\",\"_event_id\":\"ev-1\",\"api_key\":\"s3cret\","
    "\"_moog_retry_count\":2}";

static void test_moog_payload_maps_every_field(void **state)
{
    json_t *alert = load(FULL_ALERT);
    json_t *p = mutt_moog_payload(alert, "1.2.3", 1700000000);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "signature")), "sig-7");
    assert_string_equal(json_string_value(json_object_get(p, "source_id")), "sig-7");
    assert_string_equal(json_string_value(json_object_get(p, "external_id")), "ev-1");
    assert_string_equal(json_string_value(json_object_get(p, "manager")), "MUTT");
    assert_string_equal(json_string_value(json_object_get(p, "source")), "router-1.dc");
    assert_string_equal(json_string_value(json_object_get(p, "class")), "NETO");
    assert_string_equal(json_string_value(json_object_get(p, "agent")), "MUTT 1.2.3");
    assert_string_equal(json_string_value(json_object_get(p, "agent_location")), "Alerter Service");
    assert_string_equal(json_string_value(json_object_get(p, "type")), "Alert");
    assert_int_equal(json_integer_value(json_object_get(p, "severity")), 4);
    assert_string_equal(json_string_value(json_object_get(p, "description")), "link down");
    assert_int_equal(json_integer_value(json_object_get(p, "agent_time")), 1700000000);
    json_t *ci = json_object_get(p, "custom_info");
    assert_true(json_is_object(ci));
    assert_int_equal(json_object_size(ci), 6);
    assert_int_equal(json_integer_value(json_object_get(ci, "rule_id")), 42);
    assert_string_equal(json_string_value(json_object_get(ci, "handling_decision")), "Page_and_ticket");
    assert_string_equal(json_string_value(json_object_get(ci, "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(ci, "correlation_id")), "corr-1");
    assert_string_equal(json_string_value(json_object_get(ci, "event_id")), "ev-1");
    json_t *raw = json_object_get(ci, "raw_event");
    assert_string_equal(json_string_value(json_object_get(raw, "message")), "link down");
    assert_int_equal(json_object_size(p), 13); /* nothing else leaks through */
    json_decref(p);
    json_decref(alert);
}

static void test_moog_payload_never_carries_an_api_key(void **state)
{
    json_t *alert = load(FULL_ALERT);
    json_t *p = mutt_moog_payload(alert, "1.2.3", 1);
    char *text = json_dumps(p, JSON_COMPACT);
    assert_null(strstr(text, "api_key"));
    assert_null(strstr(text, "s3cret"));
    assert_null(strstr(text, "_moog_retry_count"));
    /* the alert itself is left untouched (borrowed) */
    assert_string_equal(json_string_value(json_object_get(alert, "api_key")), "s3cret");
    assert_non_null(json_object_get(json_object_get(alert, "raw_json"), "api_key"));
    free(text);
    json_decref(p);
    json_decref(alert);
}

static void test_moog_payload_falls_back_for_python_era_items(void **state)
{
    /* reference §3.2: no signature, no _event_id, no source_hostname, severity always Warning */
    json_t *alert = load("{\"hostname\":\"h9\",\"severity\":\"Warning\",\"message_body\":\"m\","
                         "\"_correlation_id\":\"c9\",\"api_key\":\"k\"}");
    json_t *p = mutt_moog_payload(alert, "0.1.0", 5);
    assert_string_equal(json_string_value(json_object_get(p, "signature")), "h9");
    assert_string_equal(json_string_value(json_object_get(p, "source_id")), "h9");
    assert_string_equal(json_string_value(json_object_get(p, "external_id")), "c9");
    assert_string_equal(json_string_value(json_object_get(p, "source")), "h9");
    assert_string_equal(json_string_value(json_object_get(p, "class")), "Unknown");
    assert_int_equal(json_integer_value(json_object_get(p, "severity")), 3);
    json_t *ci = json_object_get(p, "custom_info");
    assert_true(json_is_null(json_object_get(ci, "raw_event")));
    assert_true(json_is_null(json_object_get(ci, "rule_id")));
    assert_true(json_is_null(json_object_get(ci, "event_id")));
    assert_string_equal(json_string_value(json_object_get(ci, "correlation_id")), "c9");
    json_decref(p);
    json_decref(alert);
}

static void test_moog_payload_uses_unknown_when_nothing_identifies_the_alert(void **state)
{
    json_t *alert = load("{\"hostname\":42,\"message_body\":null}");
    json_t *p = mutt_moog_payload(alert, "0.1.0", 5);
    assert_string_equal(json_string_value(json_object_get(p, "signature")), "unknown");
    assert_string_equal(json_string_value(json_object_get(p, "external_id")), "unknown");
    assert_string_equal(json_string_value(json_object_get(p, "source")), "unknown");
    assert_string_equal(json_string_value(json_object_get(p, "description")), "");
    json_decref(p);
    json_decref(alert);
}

static void test_moog_payload_refuses_a_non_object(void **state)
{
    json_t *arr = json_array();
    assert_null(mutt_moog_payload(arr, "0.1.0", 1));
    assert_null(mutt_moog_payload(NULL, "0.1.0", 1));
    json_decref(arr);
}

static void test_moog_severity_numbers_follow_the_original(void **state)
{
    assert_int_equal(mutt_moog_severity("Critical"), 5);
    assert_int_equal(mutt_moog_severity("Major"), 4);
    assert_int_equal(mutt_moog_severity("Warning"), 3);
    assert_int_equal(mutt_moog_severity("Minor"), 2);
    assert_int_equal(mutt_moog_severity("Info"), 1);
    assert_int_equal(mutt_moog_severity("Clear"), 0);
    assert_int_equal(mutt_moog_severity("critical"), 5);
    assert_int_equal(mutt_moog_severity("bogus"), 3);
    assert_int_equal(mutt_moog_severity(NULL), 3);
}

/* ---- breaker ------------------------------------------------------------------------------ */

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

/* ---- retry member ------------------------------------------------------------------------- */

static void test_retry_member_is_uuid_bar_json(void **state)
{
    size_t len = 0;
    char *m = mutt_retry_member("0b1c", "{\"a\":1}xyz", 7, &len);
    assert_string_equal(m, "0b1c|{\"a\":1}");
    assert_int_equal(len, 12);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_any_2xx_is_delivered),
        cmocka_unit_test(test_classify_408_429_and_5xx_are_retried),
        cmocka_unit_test(test_classify_other_4xx_and_1xx_3xx_finals_are_dead),
        cmocka_unit_test(test_classify_transport_errors_are_retried_whatever_the_status),
        cmocka_unit_test(test_classify_reason_names_status_or_curl_error),
        cmocka_unit_test(test_classify_metric_reason_labels),
        cmocka_unit_test(test_backoff_cap_doubles_from_base_up_to_max),
        cmocka_unit_test(test_backoff_never_exceeds_cap_and_covers_zero_to_cap),
        cmocka_unit_test(test_backoff_huge_retry_count_does_not_overflow),
        cmocka_unit_test(test_backoff_retry_after_wins_when_larger),
        cmocka_unit_test(test_backoff_zero_base_means_no_delay),
        cmocka_unit_test(test_moog_payload_maps_every_field),
        cmocka_unit_test(test_moog_payload_never_carries_an_api_key),
        cmocka_unit_test(test_moog_payload_falls_back_for_python_era_items),
        cmocka_unit_test(test_moog_payload_uses_unknown_when_nothing_identifies_the_alert),
        cmocka_unit_test(test_moog_payload_refuses_a_non_object),
        cmocka_unit_test(test_moog_severity_numbers_follow_the_original),
        cmocka_unit_test(test_breaker_closed_allows_and_opens_after_threshold_consecutive_failures),
        cmocka_unit_test(test_breaker_success_resets_the_consecutive_count),
        cmocka_unit_test(test_breaker_half_open_admits_one_probe),
        cmocka_unit_test(test_breaker_probe_lock_expires_when_the_prober_vanishes),
        cmocka_unit_test(test_breaker_probe_success_closes_and_resets),
        cmocka_unit_test(test_breaker_probe_failure_reopens_with_a_new_open_time),
        cmocka_unit_test(test_breaker_straggler_results_while_open_keep_it_open),
        cmocka_unit_test(test_breaker_outcome_of_delivery),
        cmocka_unit_test(test_breaker_mode_names_round_trip),
        cmocka_unit_test(test_retry_member_is_uuid_bar_json),
    };
    return cmocka_run_group_tests_name("forward_domain", tests, NULL, NULL);
}
