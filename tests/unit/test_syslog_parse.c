/* Syslog lines → event fields (src/domain/syslog_parse.c, D57), and the relay's line reader on
 * top of it (mutt_relay_line_to_event, src/cli/cli_relay.c: JSON lines pass through). Pure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mutt/cli_relay.h"
#include "mutt/syslog_parse.h"

/* ------------------------------------------------------------------ the relay's line reader */


static json_t *event_of(const char *line)
{
    char *s = mutt_relay_line_to_event(line, strlen(line), "relay-host", 1767225600000LL); /* 2026-01-01 */
    assert_non_null(s);
    assert_null(strchr(s, '\n'));
    json_t *o = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_object(o));
    return o;
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "(missing)";
}

/* D35: `_` fields of a client's JSON line are MUTT's own; nested ones are data. */
static void test_relay_strips_reserved_top_level_fields_of_a_json_line(void **state)
{
    json_t *o = event_of("{\"hostname\":\"h\",\"message\":\"m\",\"_retry_count\":99,\"_origin\":\"x\","
                         "\"n\":{\"_k\":1}}");
    assert_null(json_object_get(o, "_retry_count"));
    assert_null(json_object_get(o, "_origin"));
    assert_string_equal("h", str(o, "hostname"));
    assert_non_null(json_object_get(json_object_get(o, "n"), "_k"));
    json_decref(o);
}

static void test_relay_reads_an_rfc5424_line(void **state)
{
    json_t *o = event_of("<11>1 2026-03-04T05:06:07.123Z web01 nginx 42 ID7 [ex@1 a=\"x\\]y\"] upstream timed out");
    assert_string_equal("web01", str(o, "hostname"));
    assert_string_equal("nginx", str(o, "program"));
    assert_string_equal("2026-03-04T05:06:07.123Z", str(o, "timestamp"));
    assert_string_equal("upstream timed out", str(o, "message"));
    assert_int_equal(3, json_integer_value(json_object_get(o, "syslog_severity")));
    assert_int_equal(1, json_integer_value(json_object_get(o, "facility")));
    json_decref(o);
}

static void test_relay_reads_an_rfc3164_line_stamping_arrival_time(void **state)
{
    json_t *o = event_of("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8");
    assert_string_equal("mymachine", str(o, "hostname"));
    assert_string_equal("su", str(o, "program"));
    assert_string_equal("su[230]: 'su root' failed for lonvick on /dev/pts/8", str(o, "message"));
    assert_string_equal("Oct 11 22:14:15", str(o, "syslog_timestamp"));
    assert_string_equal("2026-01-01T00:00:00.000Z", str(o, "timestamp"));
    assert_int_equal(2, json_integer_value(json_object_get(o, "syslog_severity")));
    json_decref(o);
}

static void test_relay_passes_a_json_object_line_through(void **state)
{
    json_t *o = event_of("  {\"hostname\":\"sw1\",\"message\":\"link down\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"x\":[1,2]}");
    assert_string_equal("sw1", str(o, "hostname"));
    assert_string_equal("link down", str(o, "message"));
    assert_int_equal(2, json_array_size(json_object_get(o, "x")));
    assert_null(json_object_get(o, "program"));
    json_decref(o);
}

static void test_relay_wraps_a_plain_line_with_the_default_host(void **state)
{
    json_t *o = event_of("disk almost full\r");
    assert_string_equal("relay-host", str(o, "hostname"));
    assert_string_equal("disk almost full", str(o, "message"));
    assert_string_equal("2026-01-01T00:00:00.000Z", str(o, "timestamp"));
    assert_null(json_object_get(o, "syslog_severity"));
    json_decref(o);
    o = event_of("{not json");
    assert_string_equal("{not json", str(o, "message"));
    json_decref(o);
}

static void test_relay_keeps_a_line_with_invalid_utf8(void **state)
{
    json_t *o = event_of("bad \xff\xfe bytes");
    assert_string_equal("bad ?? bytes", str(o, "message"));
    json_decref(o);
}

/* A NUL byte would be written as \u0000, which ingest refuses, and with it the whole NDJSON batch
 * the line travels in: it is replaced like an invalid byte. (Found by tests/fuzz/fuzz_relay_line.) */
static void test_relay_replaces_nul_bytes_so_ingest_accepts_the_line(void **state)
{
    static const char line[] = "<13>1 - host\0x app - - - a\0b";
    char *s = mutt_relay_line_to_event(line, sizeof line - 1, "relay-host", 1767225600000LL);
    assert_non_null(s);
    json_t *o = json_loads(s, 0, NULL);
    assert_true(json_is_object(o));
    assert_string_equal("host?x", str(o, "hostname"));
    assert_string_equal("a?b", str(o, "message"));
    json_decref(o);
    free(s);
}

static void test_relay_skips_blank_lines(void **state)
{
    assert_null(mutt_relay_line_to_event("   \r", 4, "h", 0));
    assert_null(mutt_relay_line_to_event("", 0, "h", 0));
}

/* ------------------------------------------------------------------------ mutt_syslog_parse */

static json_t *parse_from(const char *line, const char *source_ip)
{
    const struct mutt_syslog_origin origin = {
        .default_host = "listener-host", .source_ip = source_ip, .now_ms = 1767225600000LL, /* 2026-01-01 */
    };
    json_t *o = mutt_syslog_parse(line, strlen(line), &origin);
    assert_true(json_is_object(o));
    return o;
}

static json_int_t num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_syslog_parse_rfc5424_gives_every_d57_field(void **state)
{
    json_t *o = parse_from("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 8710 ID47 "
                           "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\"][examplePriority@32473 class=\"high\"] "
                           "\xEF\xBB\xBF" "An application event log entry",
                           "192.0.2.7");
    assert_string_equal("2003-10-11T22:14:15.003Z", str(o, "timestamp"));
    assert_string_equal("mymachine.example.com", str(o, "hostname"));
    assert_string_equal("192.0.2.7", str(o, "source_ip"));
    assert_string_equal("evntslog", str(o, "program"));
    assert_string_equal("8710", str(o, "procid"));
    assert_string_equal("ID47", str(o, "msgid"));
    assert_int_equal(20, num(o, "facility"));
    assert_string_equal("local4", str(o, "facility_text"));
    assert_int_equal(5, num(o, "syslog_severity"));
    assert_string_equal("An application event log entry", str(o, "message"));
    assert_string_equal("syslog", str(o, "source"));
    json_t *sd = json_object_get(o, "structured_data");
    assert_true(json_is_object(sd));
    assert_int_equal(2, json_object_size(sd));
    assert_string_equal("3", str(json_object_get(sd, "exampleSDID@32473"), "iut"));
    assert_string_equal("Application", str(json_object_get(sd, "exampleSDID@32473"), "eventSource"));
    assert_string_equal("high", str(json_object_get(sd, "examplePriority@32473"), "class"));
    json_decref(o);
}

static void test_syslog_parse_rfc5424_nil_fields_are_left_out(void **state)
{
    json_t *o = parse_from("<34>1 - - - - - - msg only", NULL);
    assert_string_equal("listener-host", str(o, "hostname"));
    assert_string_equal("2026-01-01T00:00:00.000Z", str(o, "timestamp"));
    assert_string_equal("msg only", str(o, "message"));
    assert_null(json_object_get(o, "program"));
    assert_null(json_object_get(o, "procid"));
    assert_null(json_object_get(o, "msgid"));
    assert_null(json_object_get(o, "structured_data"));
    assert_null(json_object_get(o, "source_ip"));
    json_decref(o);
}

static void test_syslog_parse_structured_data_unescapes_param_values(void **state)
{
    json_t *o = parse_from("<11>1 2026-03-04T05:06:07Z h a - - [x@1 q=\"a\\\"b\" b=\"c\\]d\" s=\"e\\\\f\" o=\"g\\nh\"] m", NULL);
    json_t *x = json_object_get(json_object_get(o, "structured_data"), "x@1");
    assert_string_equal("a\"b", str(x, "q"));
    assert_string_equal("c]d", str(x, "b"));
    assert_string_equal("e\\f", str(x, "s"));
    assert_string_equal("g\\nh", str(x, "o")); /* other backslashes are kept (RFC 5424 6.3.3) */
    assert_string_equal("m", str(o, "message"));
    json_decref(o);
}

static void test_syslog_parse_malformed_structured_data_is_left_out_message_kept(void **state)
{
    json_t *o = parse_from("<11>1 2026-03-04T05:06:07Z h a - - [x@1 novalue] the message", NULL);
    assert_null(json_object_get(o, "structured_data"));
    assert_string_equal("the message", str(o, "message"));
    json_decref(o);
}

static void test_syslog_parse_rfc3164_tag_gives_program_and_procid(void **state)
{
    json_t *o = parse_from("<38>Oct 11 22:14:15 mymachine sshd[4242]: Accepted publickey", "10.0.0.9");
    assert_string_equal("mymachine", str(o, "hostname"));
    assert_string_equal("10.0.0.9", str(o, "source_ip"));
    assert_string_equal("sshd", str(o, "program"));
    assert_string_equal("4242", str(o, "procid"));
    assert_null(json_object_get(o, "msgid"));
    assert_null(json_object_get(o, "structured_data"));
    assert_int_equal(4, num(o, "facility"));
    assert_string_equal("auth", str(o, "facility_text"));
    assert_int_equal(6, num(o, "syslog_severity"));
    assert_string_equal("Oct 11 22:14:15", str(o, "syslog_timestamp"));
    assert_string_equal("2026-01-01T00:00:00.000Z", str(o, "timestamp"));
    assert_string_equal("sshd[4242]: Accepted publickey", str(o, "message"));
    assert_string_equal("syslog", str(o, "source"));
    json_decref(o);
}

static void test_syslog_parse_a_line_without_header_is_all_message(void **state)
{
    json_t *o = parse_from("<192>oops pri too big", NULL);
    assert_null(json_object_get(o, "facility"));
    assert_null(json_object_get(o, "facility_text"));
    assert_null(json_object_get(o, "syslog_severity"));
    assert_string_equal("<192>oops pri too big", str(o, "message"));
    assert_string_equal("listener-host", str(o, "hostname"));
    assert_string_equal("syslog", str(o, "source"));
    json_decref(o);
}

static void test_syslog_parse_blank_line_is_null(void **state)
{
    const struct mutt_syslog_origin origin = {.default_host = "h"};
    assert_null(mutt_syslog_parse(" \r\n", 3, &origin));
    assert_null(mutt_syslog_parse("", 0, &origin));
}

static void test_syslog_facility_names_follow_rsyslog(void **state)
{
    assert_string_equal("kern", mutt_syslog_facility_name(0));
    assert_string_equal("authpriv", mutt_syslog_facility_name(10));
    assert_string_equal("local0", mutt_syslog_facility_name(16));
    assert_string_equal("local7", mutt_syslog_facility_name(23));
    assert_null(mutt_syslog_facility_name(24));
    assert_null(mutt_syslog_facility_name(-1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_strips_reserved_top_level_fields_of_a_json_line),
        cmocka_unit_test(test_relay_reads_an_rfc5424_line),
        cmocka_unit_test(test_relay_reads_an_rfc3164_line_stamping_arrival_time),
        cmocka_unit_test(test_relay_passes_a_json_object_line_through),
        cmocka_unit_test(test_relay_wraps_a_plain_line_with_the_default_host),
        cmocka_unit_test(test_relay_keeps_a_line_with_invalid_utf8),
        cmocka_unit_test(test_relay_replaces_nul_bytes_so_ingest_accepts_the_line),
        cmocka_unit_test(test_relay_skips_blank_lines),
        cmocka_unit_test(test_syslog_parse_rfc5424_gives_every_d57_field),
        cmocka_unit_test(test_syslog_parse_rfc5424_nil_fields_are_left_out),
        cmocka_unit_test(test_syslog_parse_structured_data_unescapes_param_values),
        cmocka_unit_test(test_syslog_parse_malformed_structured_data_is_left_out_message_kept),
        cmocka_unit_test(test_syslog_parse_rfc3164_tag_gives_program_and_procid),
        cmocka_unit_test(test_syslog_parse_a_line_without_header_is_all_message),
        cmocka_unit_test(test_syslog_parse_blank_line_is_null),
        cmocka_unit_test(test_syslog_facility_names_follow_rsyslog),
    };
    return cmocka_run_group_tests_name("syslog_parse", tests, NULL, NULL);
}
