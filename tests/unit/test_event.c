/* Unit tests of the ingest domain logic (src/domain/event.c): body splitting, limits,
 * normalisation of the demo data, severities, trap messages, ids (timestamps: test_timefmt.c,
 * UUIDs: test_uuid.c).
 * No I/O except reading the demo data files of tests/data/ (a missing one fails). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/event.h"

#define MAX_EVENTS 1000
#define MAX_EVENT_BYTES 65536

/* ---- helpers ------------------------------------------------------------------------------ */

static int parse(const char *body, struct mutt_event_batch *b)
{
    return mutt_event_parse_body(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, b);
}

/* Parses one object and normalises it with the default rules. */
static int normalize_text(const char *json, json_t **out, char *err, size_t errlen,
                          const char **field)
{
    struct mutt_event_rules rules;
    json_error_t jerr;
    json_t *ev = json_loads(json, 0, &jerr);

    assert_non_null(ev);
    mutt_event_rules_init_default(&rules);
    int rc = mutt_event_normalize(ev, &rules, err, errlen, field);
    if (out)
        *out = ev;
    else
        json_decref(ev);
    return rc;
}

/* A valid event with one field spliced in, e.g. with_field("\"syslog_severity\":\"Major\""). */
static char *with_field(const char *extra)
{
    static char buf[4096];
    snprintf(buf, sizeof buf,
             "{\"hostname\":\"h1\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"%s%s}",
             extra[0] ? "," : "", extra);
    return buf;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

/* The repository's own fixtures (tests/data/, read from the repo root where the harness runs
 * every test). A missing file fails the test: the data ships with the code, so it is never absent. */
static char *read_shared_data(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "tests/data/%s", name);
    char *buf = read_file(path, len);
    if (!buf)
        fail_msg("fixture %s cannot be read (run from the repository root)", path);
    return buf;
}

/* Parses a shared data file and normalises every record; returns the number accepted. */
static void assert_every_record_accepted(const char *name, size_t expected)
{
    struct mutt_event_batch b;
    struct mutt_event_rules rules;
    size_t len, accepted = 0;
    char err[256];
    const char *field;
    char *body = read_shared_data(name, &len);

    mutt_event_rules_init_default(&rules);
    assert_int_equal(mutt_event_parse_body(body, len, MAX_EVENTS, MAX_EVENT_BYTES, &b), 0);
    assert_int_equal(b.count, expected);
    assert_int_equal(b.rejected, 0);
    for (size_t i = 0; i < b.count; i++) {
        int rc = mutt_event_normalize(b.items[i].event, &rules, err, sizeof err, &field);
        if (rc != 0)
            fail_msg("%s record %zu rejected: %s", name, i, err);
        accepted++;
    }
    assert_int_equal(accepted, expected);
    mutt_event_batch_dispose(&b);
    free(body);
}

static const char *get_str(const json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

/* ---- shared demo data ------------------------------------------------------------------------ */

static void test_event_every_demo_syslog_record_is_accepted(void **state)
{
    (void)state;
    assert_every_record_accepted("demo_syslog_events.json", 330);
}

static void test_event_every_demo_snmp_trap_is_accepted(void **state)
{
    (void)state;
    assert_every_record_accepted("demo_snmp_traps.json", 100);
}

static void test_event_demo_trap_gets_hostname_message_and_severity(void **state)
{
    struct mutt_event_batch b;
    struct mutt_event_rules rules;
    size_t len;
    char *body = read_shared_data("demo_snmp_traps.json", &len);
    (void)state;

    mutt_event_rules_init_default(&rules);
    assert_int_equal(mutt_event_parse_body(body, len, MAX_EVENTS, MAX_EVENT_BYTES, &b), 0);
    json_t *ev = b.items[0].event;
    assert_int_equal(mutt_event_normalize(ev, &rules, NULL, 0, NULL), 0);
    assert_string_equal(get_str(ev, "hostname"), "192.168.1.188");
    assert_string_equal(get_str(ev, "message"),
                        "SNMP trap 1.3.6.1.6.3.1.1.5.1 1.3.6.1.2.1.1.3.0=12345, "
                        "1.3.6.1.2.1.1.5.0=core-router-01.dc1.example.com");
    assert_int_equal(mutt_event_severity(ev), 1); /* "Alert" */
    assert_string_equal(get_str(ev, "syslog_severity_text"), "Alert");
    assert_null(json_object_get(ev, "severity"));
    mutt_event_batch_dispose(&b);
    free(body);
}

/* ---- body splitting ---------------------------------------------------------------------------- */

static void test_event_parse_single_object_is_one_item(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"a\":1}", &b), 0);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.rejected, 0);
    assert_int_equal(json_integer_value(json_object_get(b.items[0].event, "a")), 1);
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_array_elements_are_items(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse(" [ {\"a\":1}, {\"a\":2} ,{\"a\":3}] \n", &b), 0);
    assert_int_equal(b.count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(json_integer_value(json_object_get(b.items[i].event, "a")), i + 1);
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_ndjson_lines_are_items(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"a\":1}\n{\"a\":2}\r\n{\"a\":3}\n", &b), 0);
    assert_int_equal(b.count, 3);
    assert_int_equal(b.rejected, 0);
    assert_int_equal(json_integer_value(json_object_get(b.items[2].event, "a")), 3);
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_pretty_printed_sequence_is_split(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\n  \"a\": 1,\n  \"b\": {\"c\": [1, 2]}\n}\n{\n  \"a\": 2\n}", &b), 0);
    assert_int_equal(b.count, 2);
    assert_int_equal(json_integer_value(json_object_get(b.items[1].event, "a")), 2);
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_non_object_items_are_rejected_with_their_index(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("[{\"a\":1}, null, 5, [{\"a\":2}], \"x\", true, {\"a\":3}]", &b), 0);
    assert_int_equal(b.count, 7);
    assert_int_equal(b.rejected, 5);
    assert_non_null(b.items[0].event);
    assert_null(b.items[0].error);
    assert_null(b.items[1].event);
    assert_string_equal(b.items[1].error, "event must be a JSON object, got null");
    assert_string_equal(b.items[2].error, "event must be a JSON object, got number");
    assert_string_equal(b.items[3].error, "event must be a JSON object, got array");
    assert_string_equal(b.items[4].error, "event must be a JSON object, got string");
    assert_string_equal(b.items[5].error, "event must be a JSON object, got boolean");
    assert_non_null(b.items[6].event);
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_array_inside_a_sequence_is_a_rejected_item(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"a\":1}\n[{\"a\":2}]\n", &b), 0);
    assert_int_equal(b.count, 2);
    assert_non_null(b.items[0].event);
    assert_string_equal(b.items[1].error, "event must be a JSON object, got array");
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_empty_body_is_refused(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(mutt_event_parse_body("", 0, MAX_EVENTS, MAX_EVENT_BYTES, &b), MUTT_EINVAL);
    assert_string_equal(b.error, "empty body");
    assert_int_equal(b.count, 0);
    mutt_event_batch_dispose(&b);
    assert_int_equal(parse(" \r\n\t ", &b), MUTT_EINVAL);
    assert_string_equal(b.error, "empty body");
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_null_body_is_one_rejected_item(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("null", &b), 0);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.rejected, 1);
    assert_string_equal(b.items[0].error, "event must be a JSON object, got null");
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_scalar_sequence_items_are_all_rejected(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("42 \"text\" 1.5", &b), 0);
    assert_int_equal(b.count, 3);
    assert_int_equal(b.rejected, 3);
    assert_string_equal(b.items[1].error, "event must be a JSON object, got string");
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_invalid_json_reports_line_and_column(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"a\":1}\n{\"a\":}\n", &b), MUTT_EINVAL);
    assert_int_equal(b.count, 0);
    assert_non_null(strstr(b.error, "invalid JSON at line 2 column"));
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_comma_separated_objects_are_invalid(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"a\":1},{\"a\":2}", &b), MUTT_EINVAL);
    assert_non_null(strstr(b.error, "invalid JSON at line 1 column 8"));
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_trailing_garbage_is_invalid(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("[{\"a\":1}] garbage", &b), MUTT_EINVAL);
    assert_non_null(strstr(b.error, "invalid JSON"));
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_empty_array_is_refused(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("[ ]", &b), MUTT_EINVAL);
    assert_string_equal(b.error, "empty JSON array: no events");
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_leading_utf8_bom_is_ignored(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("\xEF\xBB\xBF{\"a\":1}", &b), 0);
    assert_int_equal(b.count, 1);
    assert_int_equal(b.rejected, 0);
    mutt_event_batch_dispose(&b);
}

static char *nested(const char *open, const char *close, size_t depth, const char *inner)
{
    size_t ol = strlen(open), cl = strlen(close), il = strlen(inner);
    char *s = malloc(depth * (ol + cl) + il + 1), *p = s;

    for (size_t i = 0; i < depth; i++, p += ol)
        memcpy(p, open, ol);
    memcpy(p, inner, il);
    p += il;
    for (size_t i = 0; i < depth; i++, p += cl)
        memcpy(p, close, cl);
    *p = '\0';
    return s;
}

static void test_event_parse_depth_1000_body_is_refused_cleanly(void **state)
{
    struct mutt_event_batch b;
    char *body = nested("{\"a\":", "}", 1000, "1");
    (void)state;

    assert_int_equal(parse(body, &b), MUTT_EINVAL);
    assert_string_equal(b.error, "JSON nested deeper than 32 levels");
    mutt_event_batch_dispose(&b);
    free(body);
    body = nested("[", "]", 3000, ""); /* beyond jansson's own limit too */
    assert_int_equal(parse(body, &b), MUTT_EINVAL);
    assert_string_equal(b.error, "JSON nested deeper than 32 levels");
    mutt_event_batch_dispose(&b);
    free(body);
}

static void test_event_parse_event_deeper_than_32_is_rejected_alone(void **state)
{
    struct mutt_event_batch b;
    char *deep = nested("{\"a\":", "}", 33, "1");
    char *ok = nested("{\"a\":", "}", 32, "1");
    char body[4096];
    (void)state;

    snprintf(body, sizeof body, "%s\n%s\n{\"b\":2}", ok, deep);
    assert_int_equal(parse(body, &b), 0);
    assert_int_equal(b.count, 3);
    assert_int_equal(b.rejected, 1);
    assert_non_null(b.items[0].event);
    assert_string_equal(b.items[1].error, "event nested deeper than 32 levels");
    assert_non_null(b.items[2].event);
    mutt_event_batch_dispose(&b);

    snprintf(body, sizeof body, "[%s,%s]", ok, deep); /* the wrapping array does not count */
    assert_int_equal(parse(body, &b), 0);
    assert_int_equal(b.rejected, 1);
    assert_non_null(b.items[0].event);
    assert_null(b.items[1].event);
    mutt_event_batch_dispose(&b);
    free(deep);
    free(ok);
}

static void test_event_parse_invalid_utf8_is_refused(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"a\":1}\n{\"message\":\"caf\xC3\x28\"}", &b), MUTT_EINVAL);
    assert_non_null(strstr(b.error, "invalid UTF-8 at line 2"));
    mutt_event_batch_dispose(&b);
}

static void test_event_parse_integer_overflow_is_refused(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("{\"n\":9223372036854775807}", &b), 0); /* INT64_MAX fits */
    mutt_event_batch_dispose(&b);
    assert_int_equal(parse("{\"n\":9223372036854775808}", &b), MUTT_EINVAL);
    assert_non_null(strstr(b.error, "integer out of range"));
    assert_non_null(strstr(b.error, "64 bits"));
    mutt_event_batch_dispose(&b);
}

static char *make_array(size_t n, const char *elem)
{
    size_t el = strlen(elem);
    char *s = malloc(n * (el + 1) + 3), *p = s;

    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, elem, el);
        p += el;
    }
    *p++ = ']';
    *p = '\0';
    return s;
}

static void test_event_parse_2000_events_over_max_1000_is_too_many(void **state)
{
    struct mutt_event_batch b;
    char *body = make_array(2000, "{\"hostname\":\"h\",\"message\":\"m\"}");
    (void)state;

    assert_int_equal(parse(body, &b), MUTT_ERANGE);
    assert_non_null(strstr(b.error, "more than 1000 events"));
    assert_int_equal(b.count, 0);
    mutt_event_batch_dispose(&b);
    free(body);
}

static void test_event_parse_exactly_max_events_is_accepted(void **state)
{
    struct mutt_event_batch b;
    char *body = make_array(1000, "{\"hostname\":\"h\",\"message\":\"m\"}");
    (void)state;

    assert_int_equal(parse(body, &b), 0);
    assert_int_equal(b.count, 1000);
    assert_int_equal(b.rejected, 0);
    mutt_event_batch_dispose(&b);
    free(body);
}

static void test_event_parse_ndjson_over_max_events_is_too_many(void **state)
{
    struct mutt_event_batch b;
    const char *line = "{\"a\":1}\n";
    char *body = malloc(1001 * strlen(line) + 1);
    (void)state;

    body[0] = '\0';
    for (int i = 0; i < 1001; i++)
        strcat(body, line);
    assert_int_equal(parse(body, &b), MUTT_ERANGE);
    assert_int_equal(b.count, 0);
    mutt_event_batch_dispose(&b);
    free(body);
}

/* {"message":"xxxx..."} with a message of n bytes. */
static char *event_of_size(size_t n)
{
    char *s = malloc(n + 32);
    int k = sprintf(s, "{\"message\":\"");
    memset(s + k, 'x', n);
    strcpy(s + k + n, "\"}");
    return s;
}

static void test_event_parse_oversized_event_in_array_is_rejected_alone(void **state)
{
    struct mutt_event_batch b;
    char *big = event_of_size(70000);
    /* strings holding the scanner's delimiters must not shift the element spans */
    const char *tricky = "{\"m\":\"a,b]c}\\\"[{,\"}";
    size_t n = strlen(big) + 3 * strlen(tricky) + 16;
    char *body = malloc(n);
    (void)state;

    snprintf(body, n, "[%s,%s,%s,%s]", tricky, big, tricky, tricky);
    assert_int_equal(parse(body, &b), 0);
    assert_int_equal(b.count, 4);
    assert_int_equal(b.rejected, 1);
    assert_non_null(b.items[0].event);
    assert_null(b.items[1].event);
    assert_non_null(strstr(b.items[1].error, "over MAX_EVENT_BYTES (65536)"));
    assert_non_null(b.items[2].event);
    assert_non_null(b.items[3].event);
    mutt_event_batch_dispose(&b);
    free(body);
    free(big);
}

static void test_event_parse_oversized_event_in_ndjson_is_rejected_alone(void **state)
{
    struct mutt_event_batch b;
    char *big = event_of_size(70000);
    size_t n = strlen(big) + 64;
    char *body = malloc(n);
    (void)state;

    snprintf(body, n, "{\"a\":1}\n%s\n{\"a\":2}\n", big);
    assert_int_equal(parse(body, &b), 0);
    assert_int_equal(b.count, 3);
    assert_int_equal(b.rejected, 1);
    assert_non_null(strstr(b.items[1].error, "MAX_EVENT_BYTES"));
    mutt_event_batch_dispose(&b);
    free(body);
    free(big);
}

static void test_event_parse_size_limit_counts_compact_bytes_not_whitespace(void **state)
{
    struct mutt_event_batch b;
    /* 200 bytes of indentation around a 16-byte compact event, limit 100 */
    char body[512];
    (void)state;

    snprintf(body, sizeof body, "[{%200s\"a\" : \"bc\"}, {\"a\":\"%150s\"}]", "", "");
    assert_int_equal(mutt_event_parse_body(body, strlen(body), MAX_EVENTS, 100, &b), 0);
    assert_int_equal(b.count, 2);
    assert_non_null(b.items[0].event);
    assert_null(b.items[1].event);
    mutt_event_batch_dispose(&b);
}

static void test_event_batch_reject_drops_event_and_keeps_message(void **state)
{
    struct mutt_event_batch b;
    (void)state;

    assert_int_equal(parse("[{\"a\":1},{\"a\":2}]", &b), 0);
    mutt_event_batch_reject(&b, 1, "missing required field: hostname");
    mutt_event_batch_reject(&b, 1, "second message is ignored");
    mutt_event_batch_reject(&b, 7, "out of range is ignored");
    assert_int_equal(b.rejected, 1);
    assert_null(b.items[1].event);
    assert_string_equal(b.items[1].error, "missing required field: hostname");
    mutt_event_batch_dispose(&b);
    mutt_event_batch_dispose(&b); /* twice is safe */
}

/* ---- severity ---------------------------------------------------------------------------------- */

static void test_event_severity_names_map_to_numbers_and_keep_text(void **state)
{
    static const struct {
        const char *name;
        int level;
    } cases[] = {
        {"emerg", 0},   {"EMERGENCY", 0}, {"alert", 1},  {"Alert", 1},   {"crit", 2},
        {"Critical", 2}, {"err", 3},      {"ERROR", 3},  {"warning", 4}, {"Warn", 4},
        {"notice", 5},  {"info", 6},      {"Informational", 6},          {"debug", 7},
        {"Major", 3},   {"minor", 4},     {"0", 0},      {"7", 7},       {" 5 ", 5},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char extra[128];
        json_t *ev;
        snprintf(extra, sizeof extra, "\"syslog_severity\":\"%s\"", cases[i].name);
        assert_int_equal(normalize_text(with_field(extra), &ev, NULL, 0, NULL), 0);
        if (mutt_event_severity(ev) != cases[i].level)
            fail_msg("%s -> %d, want %d", cases[i].name, mutt_event_severity(ev), cases[i].level);
        assert_string_equal(get_str(ev, "syslog_severity_text"), cases[i].name);
        json_decref(ev);
    }
}

static void test_event_severity_numbers_0_to_7_are_kept_as_integers(void **state)
{
    (void)state;
    for (int n = 0; n <= 7; n++) {
        char extra[64];
        json_t *ev;
        snprintf(extra, sizeof extra, "\"syslog_severity\":%d", n);
        assert_int_equal(normalize_text(with_field(extra), &ev, NULL, 0, NULL), 0);
        assert_true(json_is_integer(json_object_get(ev, "syslog_severity")));
        assert_int_equal(mutt_event_severity(ev), n);
        assert_null(json_object_get(ev, "syslog_severity_text"));
        json_decref(ev);
    }
}

static void test_event_severity_major_and_minor_are_trap_levels(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text(with_field("\"severity\":\"Major\""), &ev, NULL, 0, NULL), 0);
    assert_int_equal(mutt_event_severity(ev), 3);
    json_decref(ev);
    assert_int_equal(normalize_text(with_field("\"severity\":\"Minor\""), &ev, NULL, 0, NULL), 0);
    assert_int_equal(mutt_event_severity(ev), 4);
    json_decref(ev);
}

static void test_event_severity_unknown_name_is_kept_as_text_only(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(
        normalize_text(with_field("\"syslog_severity\":\"Bogus\""), &ev, NULL, 0, NULL), 0);
    assert_null(json_object_get(ev, "syslog_severity"));
    assert_int_equal(mutt_event_severity(ev), -1);
    assert_string_equal(get_str(ev, "syslog_severity_text"), "Bogus");
    json_decref(ev);
}

static void test_event_severity_out_of_range_number_is_rejected(void **state)
{
    const char *bad[] = {"\"syslog_severity\":8", "\"syslog_severity\":-1", "\"syslog_severity\":\"9\"",
                         "\"severity\":12", "\"syslog_severity\":3.5", "\"syslog_severity\":true",
                         "\"syslog_severity\":\"-3\""};
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[256];
        const char *field = NULL;
        if (normalize_text(with_field(bad[i]), NULL, err, sizeof err, &field) != MUTT_EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_string_equal(field, "syslog_severity");
        assert_non_null(strstr(err, "syslog_severity"));
    }
}

static void test_event_severity_alias_is_consumed(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text(with_field("\"severity\":\"warning\""), &ev, NULL, 0, NULL), 0);
    assert_null(json_object_get(ev, "severity"));
    assert_int_equal(mutt_event_severity(ev), 4);
    json_decref(ev);
    /* syslog_severity wins; severity then is just another field */
    assert_int_equal(normalize_text(with_field("\"syslog_severity\":2,\"severity\":\"Minor\""), &ev,
                                    NULL, 0, NULL),
                     0);
    assert_int_equal(mutt_event_severity(ev), 2);
    assert_string_equal(get_str(ev, "severity"), "Minor");
    json_decref(ev);
}

static void test_event_alert_severity_names_follow_the_contract(void **state)
{
    static const char *want[] = {"Critical", "Critical", "Critical", "Major",
                                 "Warning",  "Minor",    "Info",     "Info"};
    (void)state;

    for (int s = 0; s <= 7; s++)
        assert_string_equal(mutt_severity_alert_name(s), want[s]);
    assert_string_equal(mutt_severity_alert_name(-1), "Warning");
    assert_string_equal(mutt_severity_alert_name(42), "Warning");
}

/* ---- trap messages, hostname, required fields ------------------------------------------------ */

static void test_event_trap_message_from_powershell_variable_strings(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(
        normalize_text("{\"source_ip\":\"10.0.0.1\",\"timestamp\":\"2025-11-11T16:34:39.7Z\","
                       "\"trap_oid\":\"1.3.6.1.4.1.9.9.41.2.0.1\",\"variables\":["
                       "\"@{oid=1.3.6.1.4.1.2011.5.25.19.2.2.1.2; value=Port 1}\","
                       "\"@{oid=1.3.6.1.4.1.2011.5.25.19.2.2.1.3; value=Link down}\"]}",
                       &ev, NULL, 0, NULL),
        0);
    assert_string_equal(get_str(ev, "message"),
                        "SNMP trap 1.3.6.1.4.1.9.9.41.2.0.1 1.3.6.1.4.1.2011.5.25.19.2.2.1.2=Port 1, "
                        "1.3.6.1.4.1.2011.5.25.19.2.2.1.3=Link down");
    json_decref(ev);
}

static void test_event_trap_message_from_oid_value_objects(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text("{\"hostname\":\"h\",\"timestamp\":\"2025-01-15T10:30:00Z\","
                                    "\"trap_oid\":\"1.2.3\",\"variables\":["
                                    "{\"oid\":\"1.2.3.1\",\"value\":\"up\"},"
                                    "{\"oid\":\"1.2.3.2\",\"value\":42}]}",
                                    &ev, NULL, 0, NULL),
                     0);
    assert_string_equal(get_str(ev, "message"), "SNMP trap 1.2.3 1.2.3.1=up, 1.2.3.2=42");
    json_decref(ev);
}

static void test_event_trap_message_from_variables_object(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text("{\"hostname\":\"h\",\"timestamp\":\"2025-01-15T10:30:00Z\","
                                    "\"trap_oid\":\"1.2.3\",\"variables\":"
                                    "{\"1.2.3.1\":\"up\",\"1.2.3.2\":7}}",
                                    &ev, NULL, 0, NULL),
                     0);
    assert_string_equal(get_str(ev, "message"), "SNMP trap 1.2.3 1.2.3.1=up, 1.2.3.2=7");
    json_decref(ev);
}

static void test_event_trap_message_without_variables_is_oid_only(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text("{\"hostname\":\"h\",\"timestamp\":\"2025-01-15T10:30:00Z\","
                                    "\"trap_oid\":\"1.3.6.1.6.3.1.1.5.3\"}",
                                    &ev, NULL, 0, NULL),
                     0);
    assert_string_equal(get_str(ev, "message"), "SNMP trap 1.3.6.1.6.3.1.1.5.3");
    json_decref(ev);
}

static void test_event_existing_message_is_not_replaced_by_trap_text(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text(with_field("\"trap_oid\":\"1.2.3\""), &ev, NULL, 0, NULL), 0);
    assert_string_equal(get_str(ev, "message"), "m");
    json_decref(ev);
}

static void test_event_hostname_falls_back_to_source_ip(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text("{\"source_ip\":\"192.0.2.7\",\"message\":\"m\","
                                    "\"timestamp\":\"2025-01-15T10:30:00Z\"}",
                                    &ev, NULL, 0, NULL),
                     0);
    assert_string_equal(get_str(ev, "hostname"), "192.0.2.7");
    assert_string_equal(get_str(ev, "source_ip"), "192.0.2.7");
    json_decref(ev);
    assert_int_equal(normalize_text(with_field("\"source_ip\":\"192.0.2.7\""), &ev, NULL, 0, NULL),
                     0);
    assert_string_equal(get_str(ev, "hostname"), "h1");
    json_decref(ev);
}

static void test_event_missing_required_field_is_named(void **state)
{
    static const struct {
        const char *json, *field, *msg;
    } cases[] = {
        {"{\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", "hostname",
         "missing required field: hostname"},
        {"{\"hostname\":\"h\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", "message",
         "missing required field: message"},
        {"{\"hostname\":\"h\",\"message\":\"m\"}", "timestamp", "missing required field: timestamp"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256];
        const char *field = NULL;
        assert_int_equal(normalize_text(cases[i].json, NULL, err, sizeof err, &field), MUTT_EINVAL);
        assert_string_equal(field, cases[i].field);
        assert_string_equal(err, cases[i].msg);
    }
}

static void test_event_empty_or_non_string_required_field_is_named(void **state)
{
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"hostname\":\"h\",\"message\":\"\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", "message"},
        {"{\"hostname\":\"h\",\"message\":\"  \",\"timestamp\":\"2025-01-15T10:30:00Z\"}", "message"},
        {"{\"hostname\":\"h\",\"message\":null,\"timestamp\":\"2025-01-15T10:30:00Z\"}", "message"},
        {"{\"hostname\":5,\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", "hostname"},
        {"{\"hostname\":\"h\",\"message\":{},\"timestamp\":\"2025-01-15T10:30:00Z\"}", "message"},
        {"{\"hostname\":\"h\",\"message\":\"m\",\"timestamp\":\"\"}", "timestamp"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256], want[128];
        const char *field = NULL;
        assert_int_equal(normalize_text(cases[i].json, NULL, err, sizeof err, &field), MUTT_EINVAL);
        assert_string_equal(field, cases[i].field);
        snprintf(want, sizeof want, "field %s must be a non-empty string", cases[i].field);
        assert_string_equal(err, want);
    }
}

static void test_event_required_fields_come_from_the_rules(void **state)
{
    struct mutt_event_rules rules;
    char err[256];
    const char *field = NULL;
    json_t *ev = json_loads("{\"hostname\":\"h\",\"message\":\"m\"}", 0, NULL);
    (void)state;

    assert_int_equal(mutt_event_rules_set_required(&rules, " hostname , ,source_type,"), 0);
    assert_int_equal(rules.n_required, 2);
    assert_int_equal(mutt_event_normalize(ev, &rules, err, sizeof err, &field), MUTT_EINVAL);
    assert_string_equal(field, "source_type");
    assert_int_equal(mutt_event_rules_set_required(&rules, ""), 0);
    assert_int_equal(mutt_event_normalize(ev, &rules, err, sizeof err, &field), 0);
    json_decref(ev);
}

static void test_event_hostname_longer_than_255_bytes_is_rejected(void **state)
{
    char extra[600], host[300];
    char err[256];
    const char *field = NULL;
    (void)state;

    memset(host, 'a', 255);
    host[255] = '\0';
    snprintf(extra, sizeof extra,
             "{\"hostname\":\"%s\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", host);
    assert_int_equal(normalize_text(extra, NULL, err, sizeof err, &field), 0);
    host[255] = 'a';
    host[256] = '\0';
    snprintf(extra, sizeof extra,
             "{\"hostname\":\"%s\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", host);
    assert_int_equal(normalize_text(extra, NULL, err, sizeof err, &field), MUTT_EINVAL);
    assert_string_equal(field, "hostname");
    assert_non_null(strstr(err, "longer than 255"));
}

static void test_event_invalid_timestamp_is_rejected_by_name(void **state)
{
    char err[256];
    const char *field = NULL;
    (void)state;

    assert_int_equal(normalize_text("{\"hostname\":\"h\",\"message\":\"m\",\"timestamp\":\"yesterday\"}",
                                    NULL, err, sizeof err, &field),
                     MUTT_EINVAL);
    assert_string_equal(field, "timestamp");
    assert_non_null(strstr(err, "RFC 3339"));
}

static void test_event_api_key_is_dropped(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text(with_field("\"api_key\":\"s3cret\""), &ev, NULL, 0, NULL), 0);
    assert_null(json_object_get(ev, "api_key"));
    json_decref(ev);
}

static void test_event_unknown_fields_pass_through(void **state)
{
    json_t *ev;
    (void)state;

    assert_int_equal(normalize_text(with_field("\"source_type\":\"cisco-ios\",\"x\":{\"y\":[1,2]}"),
                                    &ev, NULL, 0, NULL),
                     0);
    assert_string_equal(get_str(ev, "source_type"), "cisco-ios");
    assert_int_equal(json_array_size(json_object_get(json_object_get(ev, "x"), "y")), 2);
    json_decref(ev);
}

static void test_event_normalize_twice_changes_nothing(void **state)
{
    struct mutt_event_rules rules;
    json_t *ev;
    char *once, *twice;
    size_t n1, n2;
    (void)state;

    mutt_event_rules_init_default(&rules);
    assert_int_equal(normalize_text("{\"source_ip\":\"10.0.0.1\",\"timestamp\":\"2025-01-15T10:30:00Z\","
                                    "\"trap_oid\":\"1.2\",\"variables\":[\"@{oid=1.2.1; value=x}\"],"
                                    "\"severity\":\"Major\"}",
                                    &ev, NULL, 0, NULL),
                     0);
    assert_int_equal(mutt_event_dump_alloc(ev, &once, &n1), 0);
    assert_int_equal(mutt_event_normalize(ev, &rules, NULL, 0, NULL), 0);
    assert_int_equal(mutt_event_dump_alloc(ev, &twice, &n2), 0);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
    json_decref(ev);
}

/* A null or unknown syslog_severity leaves it absent (D9), and then `severity` is its alias:
 * {"syslog_severity":null,"severity":"Major"} is a Major event. It used to keep "severity"
 * untouched, so a second normalisation (a replay through ingest) changed the event. Found by
 * fuzz_event. */
static void test_event_normalize_null_or_unknown_syslog_severity_lets_the_alias_apply(void **state)
{
    static const char *const cases[] = {"\"syslog_severity\":null,\"severity\":\"Major\"",
                                        "\"syslog_severity\":\"bogus\",\"severity\":\"Major\""};
    struct mutt_event_rules rules;
    json_t *ev;
    char *once, *twice;
    size_t n1, n2;
    (void)state;

    mutt_event_rules_init_default(&rules);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(normalize_text(with_field(cases[i]), &ev, NULL, 0, NULL), 0);
        assert_int_equal(mutt_event_severity(ev), 3);
        assert_string_equal(get_str(ev, "syslog_severity_text"), "Major");
        assert_null(json_object_get(ev, "severity"));
        assert_int_equal(mutt_event_dump_alloc(ev, &once, &n1), 0);
        assert_int_equal(mutt_event_normalize(ev, &rules, NULL, 0, NULL), 0);
        assert_int_equal(mutt_event_dump_alloc(ev, &twice, &n2), 0);
        assert_string_equal(once, twice);
        free(once);
        free(twice);
        json_decref(ev);
    }
    /* null alone is still simply absent */
    assert_int_equal(normalize_text(with_field("\"syslog_severity\":null"), &ev, NULL, 0, NULL), 0);
    assert_int_equal(mutt_event_severity(ev), -1);
    assert_null(json_object_get(ev, "syslog_severity"));
    json_decref(ev);
}

/* ---- reserved fields (D35) and the stored size (issue 11 bug 6) ---------------------------------- */

static void test_event_strip_reserved_removes_every_top_level_underscore_field(void **state)
{
    (void)state;
    json_t *ev = json_loads("{\"_retry_count\":99,\"hostname\":\"h\",\"_replay_count\":1,\"_origin\":\"ingest\","
                            "\"_dlq_reason\":\"x\",\"_\":0,\"n\":{\"_k\":1},\"a_b\":2}",
                            0, NULL);
    assert_non_null(ev);
    assert_int_equal(mutt_event_strip_reserved(ev), 5);
    char *s = NULL;
    size_t n = 0;
    assert_int_equal(mutt_event_dump_alloc(ev, &s, &n), 0);
    assert_string_equal(s, "{\"hostname\":\"h\",\"n\":{\"_k\":1},\"a_b\":2}");
    free(s);
    assert_int_equal(mutt_event_strip_reserved(ev), 0);
    json_t *arr = json_array();
    assert_int_equal(mutt_event_strip_reserved(arr), 0);
    json_decref(arr);
    json_decref(ev);
}

static void test_event_normalize_strips_reserved_fields_so_clients_cannot_steer_the_pipeline(void **state)
{
    (void)state;
    json_t *ev = NULL;
    assert_int_equal(normalize_text("{\"hostname\":\"h\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\","
                                    "\"_retry_count\":99,\"_origin\":\"alert\"}",
                                    &ev, NULL, 0, NULL),
                     0);
    assert_null(json_object_get(ev, "_retry_count"));
    assert_null(json_object_get(ev, "_origin"));
    json_decref(ev);
}

/* Under MAX_EVENT_BYTES as sent, over it once the trap message is built from the variables. */
static void test_event_check_size_measures_the_normalised_event(void **state)
{
    (void)state;
    char big[2001], text[2300], err[160];
    memset(big, 'A', 2000);
    big[2000] = '\0';
    snprintf(text, sizeof text,
             "{\"hostname\":\"h\",\"timestamp\":\"2025-01-15T10:30:00Z\",\"trap_oid\":\"1.3.6\","
             "\"variables\":{\"1.3.6.1\":\"%s\"}}",
             big);
    size_t sent = strlen(text);
    json_t *ev = NULL;
    assert_int_equal(normalize_text(text, &ev, NULL, 0, NULL), 0);
    assert_int_equal(mutt_event_check_size(ev, sent + 1000, err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "after normalisation, over MAX_EVENT_BYTES"));
    size_t stored = 0;
    mutt_event_dump(ev, NULL, 0, &stored);
    assert_int_equal(mutt_event_check_size(ev, stored, err, sizeof err), 0);
    assert_int_equal(mutt_event_check_size(ev, stored - 1, err, sizeof err), MUTT_EINVAL);
    json_decref(ev);
}

static void test_event_missing_required_names_the_first_absent_or_blank_field(void **state)
{
    (void)state;
    struct mutt_event_rules rules;
    assert_int_equal(mutt_event_rules_set_required(&rules, "hostname,site"), 0);
    json_t *ev = json_loads("{\"hostname\":\"h\",\"site\":\" \"}", 0, NULL);
    assert_string_equal(mutt_event_missing_required(ev, &rules), "site");
    json_object_set_new(ev, "site", json_string("x"));
    assert_null(mutt_event_missing_required(ev, &rules));
    assert_int_equal(mutt_event_rules_set_required(&rules, ""), 0);
    json_object_clear(ev);
    assert_null(mutt_event_missing_required(ev, &rules));
    json_decref(ev);
}

static void test_event_stamp_overwrites_client_ids(void **state)
{
    uint8_t rnd[16];
    json_t *ev = json_loads("{\"_event_id\":\"client\",\"_correlation_id\":\"client\"}", 0, NULL);
    (void)state;

    memset(rnd, 0x11, sizeof rnd);
    assert_int_equal(mutt_event_stamp(ev, "req-1", rnd), 0);
    assert_string_equal(get_str(ev, "_correlation_id"), "req-1");
    assert_string_equal(get_str(ev, "_event_id"), "11111111-1111-4111-9111-111111111111");
    json_decref(ev);
}

static void test_event_stamp_shared_gives_each_event_its_own_id(void **state)
{
    uint8_t r1[16], r2[16];
    json_t *cid = json_string("batch-7");
    json_t *e1 = json_object(), *e2 = json_object();
    (void)state;

    memset(r1, 0x00, sizeof r1);
    memset(r2, 0xaa, sizeof r2);
    assert_int_equal(mutt_event_stamp_shared(e1, cid, r1), 0);
    assert_int_equal(mutt_event_stamp_shared(e2, cid, r2), 0);
    json_decref(cid); /* the events keep their own references */
    assert_string_equal(get_str(e1, "_correlation_id"), "batch-7");
    assert_string_equal(get_str(e2, "_correlation_id"), "batch-7");
    assert_string_not_equal(get_str(e1, "_event_id"), get_str(e2, "_event_id"));
    json_decref(e1);
    json_decref(e2);
}

static void test_event_ensure_event_id_adds_only_when_missing(void **state)
{
    uint8_t rnd[16] = {0};
    json_t *old = json_loads("{\"hostname\":\"h\"}", 0, NULL);
    json_t *cur = json_loads("{\"_event_id\":\"keep-me\"}", 0, NULL);
    (void)state;

    assert_int_equal(mutt_event_ensure_event_id(old, rnd), 1);
    assert_string_equal(get_str(old, "_event_id"), "00000000-0000-4000-8000-000000000000");
    assert_int_equal(mutt_event_ensure_event_id(cur, rnd), 0);
    assert_string_equal(get_str(cur, "_event_id"), "keep-me");
    json_decref(old);
    json_decref(cur);
}

static void test_correlation_id_validation_table(void **state)
{
    static const struct {
        const char *id;
        bool ok;
    } cases[] = {
        {"a", true},
        {"0f8e2c1a-6b3d-4e59-9a7c-2d1b0e4f6a88", true},
        {"req.42_a:b-C", true},
        {"", false},
        {"has space", false},
        {"semi;colon", false},
        {"quote\"", false},
        {"new\nline", false},
        {"caf\xC3\xA9", false},
        {"slash/", false},
        {"1234567890123456789012345678901234567890123456789012345678901234", true},   /* 64 */
        {"12345678901234567890123456789012345678901234567890123456789012345", false}, /* 65 */
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (mutt_correlation_id_valid(cases[i].id, strlen(cases[i].id)) != cases[i].ok)
            fail_msg("\"%s\" should be %s", cases[i].id, cases[i].ok ? "valid" : "invalid");
    }
    assert_false(mutt_correlation_id_valid(NULL, 0));
}

/* ---- serialisation ----------------------------------------------------------------------------- */

static void test_event_dump_is_compact_and_keeps_key_order(void **state)
{
    json_t *ev = json_loads("{ \"z\" : 1 , \"a\" : [ 1 , 2 ], \"m\": \"x\" }", 0, NULL);
    char buf[64];
    size_t len = 0;
    (void)state;

    assert_int_equal(mutt_event_dump(ev, buf, sizeof buf, &len), 0);
    assert_int_equal(len, strlen("{\"z\":1,\"a\":[1,2],\"m\":\"x\"}"));
    assert_memory_equal(buf, "{\"z\":1,\"a\":[1,2],\"m\":\"x\"}", len);
    json_decref(ev);
}

static void test_event_dump_reports_needed_size_when_buffer_is_small(void **state)
{
    json_t *ev = json_loads("{\"message\":\"0123456789\"}", 0, NULL);
    char buf[8];
    size_t len = 0;
    (void)state;

    assert_int_equal(mutt_event_dump(ev, buf, sizeof buf, &len), MUTT_EFULL);
    assert_int_equal(len, strlen("{\"message\":\"0123456789\"}"));
    json_decref(ev);
}

static void test_event_dump_alloc_handles_large_events(void **state)
{
    char *big = event_of_size(5000), *out = NULL;
    json_t *ev = json_loads(big, 0, NULL);
    size_t len = 0;
    (void)state;

    assert_int_equal(mutt_event_dump_alloc(ev, &out, &len), 0);
    assert_int_equal(len, strlen(big));
    assert_string_equal(out, big);
    free(out);
    free(big);
    json_decref(ev);
}

static void assert_dump_matches_jansson(const json_t *ev)
{
    char *ours = NULL, *theirs = json_dumps(ev, JSON_COMPACT);
    size_t len = 0;

    assert_int_equal(mutt_event_dump_alloc(ev, &ours, &len), 0);
    assert_string_equal(ours, theirs);
    assert_int_equal(len, strlen(theirs));
    free(ours);
    free(theirs);
}

static void test_event_dump_matches_jansson_on_escapes_and_numbers(void **state)
{
    json_t *ev = json_loads("{\"s\":\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f / caf\u00e9 \\u2028\","
                            "\"i\":-9223372036854775808,\"r\":[1.5,1e300,0.1,-0.0,3.0],"
                            "\"e\":{},\"a\":[],\"l\":[true,false,null],\"k\\\"ey\":1}",
                            0, NULL);
    (void)state;

    assert_non_null(ev);
    assert_dump_matches_jansson(ev);
    json_decref(ev);
}

static void test_event_dump_matches_jansson_on_demo_data(void **state)
{
    const char *files[] = {"demo_syslog_events.json", "demo_snmp_traps.json"};
    struct mutt_event_rules rules;
    uint8_t rnd[16] = {0};
    (void)state;

    mutt_event_rules_init_default(&rules);
    for (size_t f = 0; f < 2; f++) {
        struct mutt_event_batch b;
        size_t len;
        char *body = read_shared_data(files[f], &len);
        assert_int_equal(mutt_event_parse_body(body, len, MAX_EVENTS, MAX_EVENT_BYTES, &b), 0);
        for (size_t i = 0; i < b.count; i++) {
            assert_int_equal(mutt_event_normalize(b.items[i].event, &rules, NULL, 0, NULL), 0);
            assert_int_equal(mutt_event_stamp(b.items[i].event, "cid", rnd), 0);
            assert_dump_matches_jansson(b.items[i].event);
        }
        mutt_event_batch_dispose(&b);
        free(body);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_every_demo_syslog_record_is_accepted),
        cmocka_unit_test(test_event_every_demo_snmp_trap_is_accepted),
        cmocka_unit_test(test_event_demo_trap_gets_hostname_message_and_severity),
        cmocka_unit_test(test_event_parse_single_object_is_one_item),
        cmocka_unit_test(test_event_parse_array_elements_are_items),
        cmocka_unit_test(test_event_parse_ndjson_lines_are_items),
        cmocka_unit_test(test_event_parse_pretty_printed_sequence_is_split),
        cmocka_unit_test(test_event_parse_non_object_items_are_rejected_with_their_index),
        cmocka_unit_test(test_event_parse_array_inside_a_sequence_is_a_rejected_item),
        cmocka_unit_test(test_event_parse_empty_body_is_refused),
        cmocka_unit_test(test_event_parse_null_body_is_one_rejected_item),
        cmocka_unit_test(test_event_parse_scalar_sequence_items_are_all_rejected),
        cmocka_unit_test(test_event_parse_invalid_json_reports_line_and_column),
        cmocka_unit_test(test_event_parse_comma_separated_objects_are_invalid),
        cmocka_unit_test(test_event_parse_trailing_garbage_is_invalid),
        cmocka_unit_test(test_event_parse_empty_array_is_refused),
        cmocka_unit_test(test_event_parse_leading_utf8_bom_is_ignored),
        cmocka_unit_test(test_event_parse_depth_1000_body_is_refused_cleanly),
        cmocka_unit_test(test_event_parse_event_deeper_than_32_is_rejected_alone),
        cmocka_unit_test(test_event_parse_invalid_utf8_is_refused),
        cmocka_unit_test(test_event_parse_integer_overflow_is_refused),
        cmocka_unit_test(test_event_parse_2000_events_over_max_1000_is_too_many),
        cmocka_unit_test(test_event_parse_exactly_max_events_is_accepted),
        cmocka_unit_test(test_event_parse_ndjson_over_max_events_is_too_many),
        cmocka_unit_test(test_event_parse_oversized_event_in_array_is_rejected_alone),
        cmocka_unit_test(test_event_parse_oversized_event_in_ndjson_is_rejected_alone),
        cmocka_unit_test(test_event_parse_size_limit_counts_compact_bytes_not_whitespace),
        cmocka_unit_test(test_event_batch_reject_drops_event_and_keeps_message),
        cmocka_unit_test(test_event_severity_names_map_to_numbers_and_keep_text),
        cmocka_unit_test(test_event_severity_numbers_0_to_7_are_kept_as_integers),
        cmocka_unit_test(test_event_severity_major_and_minor_are_trap_levels),
        cmocka_unit_test(test_event_severity_unknown_name_is_kept_as_text_only),
        cmocka_unit_test(test_event_severity_out_of_range_number_is_rejected),
        cmocka_unit_test(test_event_severity_alias_is_consumed),
        cmocka_unit_test(test_event_alert_severity_names_follow_the_contract),
        cmocka_unit_test(test_event_trap_message_from_powershell_variable_strings),
        cmocka_unit_test(test_event_trap_message_from_oid_value_objects),
        cmocka_unit_test(test_event_trap_message_from_variables_object),
        cmocka_unit_test(test_event_trap_message_without_variables_is_oid_only),
        cmocka_unit_test(test_event_existing_message_is_not_replaced_by_trap_text),
        cmocka_unit_test(test_event_hostname_falls_back_to_source_ip),
        cmocka_unit_test(test_event_missing_required_field_is_named),
        cmocka_unit_test(test_event_empty_or_non_string_required_field_is_named),
        cmocka_unit_test(test_event_required_fields_come_from_the_rules),
        cmocka_unit_test(test_event_hostname_longer_than_255_bytes_is_rejected),
        cmocka_unit_test(test_event_invalid_timestamp_is_rejected_by_name),
        cmocka_unit_test(test_event_api_key_is_dropped),
        cmocka_unit_test(test_event_unknown_fields_pass_through),
        cmocka_unit_test(test_event_normalize_twice_changes_nothing),
        cmocka_unit_test(test_event_strip_reserved_removes_every_top_level_underscore_field),
        cmocka_unit_test(test_event_normalize_strips_reserved_fields_so_clients_cannot_steer_the_pipeline),
        cmocka_unit_test(test_event_check_size_measures_the_normalised_event),
        cmocka_unit_test(test_event_missing_required_names_the_first_absent_or_blank_field),
        cmocka_unit_test(test_event_normalize_null_or_unknown_syslog_severity_lets_the_alias_apply),
        cmocka_unit_test(test_event_stamp_overwrites_client_ids),
        cmocka_unit_test(test_event_stamp_shared_gives_each_event_its_own_id),
        cmocka_unit_test(test_event_ensure_event_id_adds_only_when_missing),
        cmocka_unit_test(test_correlation_id_validation_table),
        cmocka_unit_test(test_event_dump_is_compact_and_keeps_key_order),
        cmocka_unit_test(test_event_dump_reports_needed_size_when_buffer_is_small),
        cmocka_unit_test(test_event_dump_alloc_handles_large_events),
        cmocka_unit_test(test_event_dump_matches_jansson_on_escapes_and_numbers),
        cmocka_unit_test(test_event_dump_matches_jansson_on_demo_data),
    };
    return cmocka_run_group_tests_name("event", tests, NULL, NULL);
}
