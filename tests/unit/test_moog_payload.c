/* Unit tests of the Moog webhook payload (src/domain/moog_payload.c): every field mapped, no
 * api_key ever forwarded, fallbacks for Python-era items, the severity numbers. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "mutt/moog_payload.h"

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

static void test_moog_payload_severity_numbers_follow_the_original(void **state)
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moog_payload_maps_every_field),
        cmocka_unit_test(test_moog_payload_never_carries_an_api_key),
        cmocka_unit_test(test_moog_payload_falls_back_for_python_era_items),
        cmocka_unit_test(test_moog_payload_uses_unknown_when_nothing_identifies_the_alert),
        cmocka_unit_test(test_moog_payload_refuses_a_non_object),
        cmocka_unit_test(test_moog_payload_severity_numbers_follow_the_original),
    };
    return cmocka_run_group_tests_name("moog_payload", tests, NULL, NULL);
}
