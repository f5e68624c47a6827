/* Unit tests of the log line writer (src/core/log.c): JSON lines escaped and parseable, the text
 * line's shape, level filtering, level/format parsing, oversized lines shortened. stderr is
 * captured through a pipe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mutt/error.h"
#include "mutt/log.h"

#include "capture.h"


static void log_tricky_json(void)
{
    mutt_log_configure(MUTT_LOG_JSON, MUTT_LOG_INFO, "pod-\"1\"");
    const char *const extras[] = { "queue", "mutt:ingest_queue", "note", "tab\there\\", NULL };
    mutt_log_kv(MUTT_LOG_WARNING, "ingest", "cid-42", extras, "bad \"event\"\nline2 \x01 %d", 7);
}

static void test_log_json_line_is_escaped_and_parseable(void **state)
{
    (void)state;
    char *out = mutt_test_capture_stderr(log_tricky_json);
    assert_non_null(out);
    size_t len = strlen(out);
    assert_true(len > 0);
    assert_int_equal(out[len - 1], '\n');
    assert_true(strchr(out, '\n') == out + len - 1); /* exactly one line */

    json_error_t err;
    json_t *obj = json_loads(out, 0, &err);
    if (!obj)
        print_message("not JSON: %s (%s)\n", out, err.text);
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "level")), "WARNING");
    assert_string_equal(json_string_value(json_object_get(obj, "message")), "bad \"event\"\nline2 \x01 7");
    assert_string_equal(json_string_value(json_object_get(obj, "logger")), "ingest");
    assert_string_equal(json_string_value(json_object_get(obj, "pod_name")), "pod-\"1\"");
    assert_string_equal(json_string_value(json_object_get(obj, "correlation_id")), "cid-42");
    assert_string_equal(json_string_value(json_object_get(obj, "queue")), "mutt:ingest_queue");
    assert_string_equal(json_string_value(json_object_get(obj, "note")), "tab\there\\");
    const char *ts = json_string_value(json_object_get(obj, "timestamp"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24); /* 2026-11-25T12:00:00.123Z */
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[23], 'Z');
    json_decref(obj);
    free(out);
}

static void log_text_line(void)
{
    mutt_log_configure(MUTT_LOG_TEXT, MUTT_LOG_DEBUG, "pod-a");
    const char *const extras[] = { "k", "v", "reason", "two words", NULL };
    mutt_log_kv(MUTT_LOG_INFO, "redis", "c1", extras, "hello\nworld");
}

static void test_log_text_line_has_level_logger_pod_cid_and_extras(void **state)
{
    (void)state;
    char *out = mutt_test_capture_stderr(log_text_line);
    assert_non_null(out);
    assert_int_equal(out[24], ' ');
    assert_int_equal(out[23], 'Z');
    assert_string_equal(out + 25, "INFO [redis] pod=pod-a cid=c1 hello\\nworld k=v reason=\"two words\"\n");
    free(out);
}

static void log_filtered(void)
{
    mutt_log_configure(MUTT_LOG_TEXT, MUTT_LOG_WARNING, "p");
    mutt_log_debug("x", "debug line");
    mutt_log_info("x", "info line");
    mutt_log_warn("x", "warn line");
    mutt_log_error("x", "error line");
}

static void test_log_level_filter_drops_lines_below_the_minimum(void **state)
{
    (void)state;
    char *out = mutt_test_capture_stderr(log_filtered);
    assert_non_null(out);
    assert_null(strstr(out, "debug line"));
    assert_null(strstr(out, "info line"));
    assert_non_null(strstr(out, "WARNING [x] pod=p warn line\n"));
    assert_non_null(strstr(out, "ERROR [x] pod=p error line\n"));
    assert_int_equal(mutt_log_get_level(), MUTT_LOG_WARNING);
    free(out);
}

static void test_log_parse_level_and_format(void **state)
{
    (void)state;
    enum mutt_log_level lvl;
    enum mutt_log_format fmt;
    assert_int_equal(mutt_log_parse_level("debug", &lvl), 0);
    assert_int_equal(lvl, MUTT_LOG_DEBUG);
    assert_int_equal(mutt_log_parse_level("WARN", &lvl), 0);
    assert_int_equal(lvl, MUTT_LOG_WARNING);
    assert_int_equal(mutt_log_parse_level("Critical", &lvl), 0);
    assert_int_equal(lvl, MUTT_LOG_CRITICAL);
    assert_int_equal(mutt_log_parse_level("TRACE", &lvl), MUTT_EINVAL);
    assert_int_equal(mutt_log_parse_format("JSON", &fmt), 0);
    assert_int_equal(fmt, MUTT_LOG_JSON);
    assert_int_equal(mutt_log_parse_format("yaml", &fmt), MUTT_EINVAL);
}

static void log_huge(void)
{
    mutt_log_configure(MUTT_LOG_JSON, MUTT_LOG_INFO, "p");
    static char big[6000];
    memset(big, '"', sizeof big - 1); /* every byte doubles when escaped */
    mutt_log_kv(MUTT_LOG_ERROR, "x", NULL, NULL, "%s", big);
}

static void test_log_oversized_json_line_is_shortened_but_stays_valid(void **state)
{
    (void)state;
    char *out = mutt_test_capture_stderr(log_huge);
    assert_non_null(out);
    json_t *obj = json_loads(out, 0, NULL);
    assert_non_null(obj);
    assert_true(strlen(json_string_value(json_object_get(obj, "message"))) <= 512);
    json_decref(obj);
    free(out);
    mutt_log_configure(MUTT_LOG_TEXT, MUTT_LOG_INFO, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json_line_is_escaped_and_parseable),
        cmocka_unit_test(test_log_text_line_has_level_logger_pod_cid_and_extras),
        cmocka_unit_test(test_log_level_filter_drops_lines_below_the_minimum),
        cmocka_unit_test(test_log_parse_level_and_format),
        cmocka_unit_test(test_log_oversized_json_line_is_shortened_but_stays_valid),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
