/* Unit tests of alert decisions and alert-queue items (src/domain/alert_item.c, CONTRACT §4,
 * D15, D33): forwarding decisions, environment names, every field of a handled alert and of an
 * unhandled meta-alert, and that no api_key travels. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/alert_item.h"

static struct mutt_rule sample_rule(void)
{
    return (struct mutt_rule){
        .id = 3,
        .match_string = "LINK-DOWN",
        .syslog_severity = -1,
        .match_type = MUTT_MATCH_CONTAINS,
        .priority = 5,
        .prod_handling = "Page_and_ticket",
        .dev_handling = "Ticket_only",
        .team_assignment = "NetOps",
        .is_active = true,
    };
}

static json_t *sample_event(void)
{
    json_t *ev = json_loads("{\"hostname\":\"edge-rtr-01\",\"timestamp\":\"2025-11-11T16:34:50Z\","
                            "\"message\":\"%LINK-DOWN on Gi0/1\",\"syslog_severity\":3,"
                            "\"api_key\":\"sekrit\",\"_correlation_id\":\"cid-1\","
                            "\"_event_id\":\"0b7e8a52-2f7c-4c4e-9a55-6f1b9c1d2e3f\"}",
                            0, NULL);
    assert_non_null(ev);
    return ev;
}

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s)
        fail_msg("field %s missing or not a string", key);
    return s;
}

static void test_alert_item_forwarding_decisions_are_case_insensitive(void **state)
{
    assert_true(mutt_handling_forwards("Page_and_ticket"));
    assert_true(mutt_handling_forwards("PAGE_ONLY"));
    assert_true(mutt_handling_forwards("ticket_only"));
    assert_false(mutt_handling_forwards("Ignore"));
    assert_false(mutt_handling_forwards("Log_only"));
    assert_false(mutt_handling_forwards("Page_and_ticket "));
    assert_false(mutt_handling_forwards(""));
    assert_false(mutt_handling_forwards(NULL));
}

static void test_alert_item_decision_follows_environment(void **state)
{
    struct mutt_rule r = sample_rule();

    assert_string_equal(mutt_handling_decision(&r, MUTT_ENV_PROD), "Page_and_ticket");
    assert_string_equal(mutt_handling_decision(&r, MUTT_ENV_DEV), "Ticket_only");
    r.dev_handling = NULL;
    assert_string_equal(mutt_handling_decision(&r, MUTT_ENV_DEV), "");
    assert_string_equal(mutt_env_name(MUTT_ENV_PROD), "production");
    assert_string_equal(mutt_env_name(MUTT_ENV_DEV), "development");
}

static void test_alert_item_handled_alert_carries_every_field(void **state)
{
    struct mutt_rule r = sample_rule();
    json_t *ev = sample_event();
    json_t *a = mutt_alert_build(ev, &r, MUTT_ENV_DEV, "Ticket_only");
    static const char *const keys[] = {"hostname",     "team_assignment", "severity",
                                       "message_body", "raw_json",        "handling_decision",
                                       "rule_id",      "environment",     "_correlation_id",
                                       "_event_id",    "signature",       "source_hostname"};

    assert_non_null(a);
    assert_int_equal(json_object_size(a), sizeof keys / sizeof keys[0]);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_non_null(json_object_get(a, keys[i]));
    assert_string_equal(str(a, "hostname"), "edge-rtr-01");
    assert_string_equal(str(a, "team_assignment"), "NetOps");
    assert_string_equal(str(a, "severity"), "Major");
    assert_string_equal(str(a, "message_body"), "%LINK-DOWN on Gi0/1");
    assert_string_equal(str(a, "handling_decision"), "Ticket_only");
    assert_int_equal(json_integer_value(json_object_get(a, "rule_id")), 3);
    assert_string_equal(str(a, "environment"), "development");
    assert_string_equal(str(a, "_correlation_id"), "cid-1");
    assert_string_equal(str(a, "_event_id"), "0b7e8a52-2f7c-4c4e-9a55-6f1b9c1d2e3f");
    assert_string_equal(str(a, "signature"), "edge-rtr-01");
    assert_string_equal(str(a, "source_hostname"), "edge-rtr-01");
    json_decref(a);
    json_decref(ev);
}

static void test_alert_item_raw_json_is_a_copy_without_api_key(void **state)
{
    struct mutt_rule r = sample_rule();
    json_t *ev = sample_event();
    json_t *a = mutt_alert_build(ev, &r, MUTT_ENV_PROD, "Page_and_ticket");
    json_t *raw = json_object_get(a, "raw_json");
    char *dump = json_dumps(a, 0);

    assert_non_null(raw);
    assert_null(json_object_get(raw, "api_key"));
    assert_null(strstr(dump, "sekrit"));
    assert_string_equal(str(raw, "message"), "%LINK-DOWN on Gi0/1");
    assert_string_equal(str(raw, "_correlation_id"), "cid-1");
    /* the caller's event is untouched and independent of the alert */
    assert_string_equal(str(ev, "api_key"), "sekrit");
    json_object_set_new(ev, "message", json_string("changed"));
    assert_string_equal(str(raw, "message"), "%LINK-DOWN on Gi0/1");
    assert_string_equal(str(a, "environment"), "production");
    free(dump);
    json_decref(a);
    json_decref(ev);
}

static void test_alert_item_severity_names_follow_event_severity(void **state)
{
    struct mutt_rule r = sample_rule();
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"hostname\":\"h\",\"message\":\"m\",\"syslog_severity\":0}", "Critical"},
        {"{\"hostname\":\"h\",\"message\":\"m\",\"syslog_severity\":2}", "Critical"},
        {"{\"hostname\":\"h\",\"message\":\"m\",\"syslog_severity\":4}", "Warning"},
        {"{\"hostname\":\"h\",\"message\":\"m\",\"syslog_severity\":5}", "Minor"},
        {"{\"hostname\":\"h\",\"message\":\"m\",\"syslog_severity\":7}", "Info"},
        {"{\"hostname\":\"h\",\"message\":\"m\"}", "Warning"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *ev = json_loads(cases[i].json, 0, NULL);
        json_t *a = mutt_alert_build(ev, &r, MUTT_ENV_PROD, "Page_only");
        assert_string_equal(str(a, "severity"), cases[i].want);
        json_decref(a);
        json_decref(ev);
    }
}

static void test_alert_item_ids_are_omitted_when_event_has_none(void **state)
{
    struct mutt_rule r = sample_rule();
    json_t *ev = json_loads("{\"hostname\":\"h\",\"message\":\"m\"}", 0, NULL);
    json_t *a = mutt_alert_build(ev, &r, MUTT_ENV_PROD, "Page_only");

    assert_null(json_object_get(a, "_correlation_id"));
    assert_null(json_object_get(a, "_event_id"));
    json_decref(a);
    json_decref(ev);
}

static void test_alert_item_refuses_non_object_event_or_missing_rule(void **state)
{
    struct mutt_rule r = sample_rule();
    json_t *arr = json_array();
    json_t *ev = sample_event();

    assert_null(mutt_alert_build(arr, &r, MUTT_ENV_PROD, "Page_only"));
    assert_null(mutt_alert_build(NULL, &r, MUTT_ENV_PROD, "Page_only"));
    assert_null(mutt_alert_build(ev, NULL, MUTT_ENV_PROD, "Page_only"));
    assert_null(mutt_alert_build_meta(arr, "NETO", 100, 86400));
    json_decref(arr);
    json_decref(ev);
}

static void test_alert_item_meta_alert_fields(void **state)
{
    json_t *ev = sample_event();
    json_t *a = mutt_alert_build_meta(ev, "NETO", 100, 86400);

    assert_non_null(a);
    assert_string_equal(str(a, "hostname"), "MUTT_Alerter");
    assert_string_equal(str(a, "team_assignment"), "NETO");
    assert_string_equal(str(a, "severity"), "Warning");
    assert_string_equal(str(a, "message_body"),
                        "[MUTT] Detected >= 100 unhandled messages in 86400s from 'edge-rtr-01'. "
                        "Sample message: %LINK-DOWN on Gi0/1");
    assert_string_equal(str(a, "signature"), "mutt-unhandled:edge-rtr-01");
    assert_string_equal(str(a, "source_hostname"), "edge-rtr-01");
    assert_string_equal(str(a, "_correlation_id"), "cid-1");
    assert_string_equal(str(a, "_event_id"), "0b7e8a52-2f7c-4c4e-9a55-6f1b9c1d2e3f");
    assert_true(json_is_null(json_object_get(a, "rule_id")));
    assert_true(json_is_null(json_object_get(a, "handling_decision")));
    assert_true(json_is_null(json_object_get(a, "environment")));
    json_t *raw = json_object_get(a, "raw_json");
    assert_true(json_is_object(raw));
    assert_null(json_object_get(raw, "api_key"));
    assert_string_equal(str(raw, "hostname"), "edge-rtr-01");
    json_decref(a);
    json_decref(ev);
}

static void test_alert_item_meta_sample_is_200_characters(void **state)
{
    /* 250 two-byte characters: the sample keeps 200 characters (400 bytes), never half of one */
    char msg[501];
    for (int i = 0; i < 250; i++)
        memcpy(msg + 2 * i, "\xc3\xa9", 2);
    msg[500] = '\0';
    json_t *ev = json_pack("{s:s, s:s}", "hostname", "h", "message", msg);
    json_t *a = mutt_alert_build_meta(ev, NULL, 5, 60);
    const char *body = str(a, "message_body");
    const char *sample = strstr(body, "Sample message: ");

    assert_non_null(sample);
    sample += strlen("Sample message: ");
    assert_int_equal(strlen(sample), 400);
    assert_memory_equal(sample, msg, 400);
    assert_string_equal(str(a, "team_assignment"), "");
    json_decref(a);
    json_decref(ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_item_forwarding_decisions_are_case_insensitive),
        cmocka_unit_test(test_alert_item_decision_follows_environment),
        cmocka_unit_test(test_alert_item_handled_alert_carries_every_field),
        cmocka_unit_test(test_alert_item_raw_json_is_a_copy_without_api_key),
        cmocka_unit_test(test_alert_item_severity_names_follow_event_severity),
        cmocka_unit_test(test_alert_item_ids_are_omitted_when_event_has_none),
        cmocka_unit_test(test_alert_item_refuses_non_object_event_or_missing_rule),
        cmocka_unit_test(test_alert_item_meta_alert_fields),
        cmocka_unit_test(test_alert_item_meta_sample_is_200_characters),
    };
    return cmocka_run_group_tests_name("alert_item", tests, NULL, NULL);
}
