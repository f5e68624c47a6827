/* Unit tests of the one timestamp parser and formatter (src/domain/timefmt.c, W36, W43): the
 * edges of the accepted range (issue 11: "9999-12-31T23:59:59-23:59" was accepted at ingest and
 * then could not be formatted by the alert stage) and the round-trip property parse -> format ->
 * parse over generated strings of the accepted grammar. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/timefmt.h"

static void test_timefmt_rejects_instants_the_formatter_cannot_write(void **state)
{
    static const char *bad[] = {
        "9999-12-31T23:59:59-23:59", /* the reported one: year 10000 in UTC */
        "9999-12-31T23:59:59-00:01",
        "9999-12-31T23:59:60Z",      /* a leap second rolling into year 10000 */
        "0000-01-01T00:00:00+00:01", /* year -1 in UTC */
        "0000-01-01T00:00+23:59",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int64_t ms = 42;
        if (mutt_time_parse_iso8601(bad[i], &ms) != MUTT_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(ms, 42);
    }
}

static void test_timefmt_accepts_and_formats_both_edges(void **state)
{
    char buf[MUTT_TIME_ISO8601_MS_LEN];
    int64_t ms = 0;
    (void)state;
    assert_int_equal(mutt_time_parse_iso8601("9999-12-31T23:59:59.999Z", &ms), 0);
    assert_int_equal(ms, MUTT_TIME_MAX_MS);
    assert_int_equal(mutt_time_parse_iso8601("9999-12-31T23:59:59.999+23:59", &ms), 0);
    assert_int_equal(mutt_time_format_iso8601_ms(ms, buf, sizeof buf), 0);
    assert_string_equal(buf, "9999-12-31T00:00:59.999Z");
    assert_int_equal(mutt_time_parse_iso8601("0000-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(ms, MUTT_TIME_MIN_MS);
    assert_int_equal(mutt_time_format_iso8601_ms(ms, buf, sizeof buf), 0);
    assert_string_equal(buf, "0000-01-01T00:00:00.000Z");
    assert_int_equal(mutt_time_parse_iso8601("0000-01-01T00:00-00:01", &ms), 0);
    assert_int_equal(mutt_time_format_iso8601_ms(MUTT_TIME_MAX_MS + 1, buf, sizeof buf), MUTT_EINVAL);
    assert_int_equal(mutt_time_format_iso8601_ms(MUTT_TIME_MIN_MS - 1, buf, sizeof buf), MUTT_EINVAL);
}

/* Property: every string the parser accepts is formatted without error, the formatted text is
 * accepted in turn, and it denotes the same millisecond. Strings come from the grammar with
 * field values slightly past their valid ranges, so rejected ones are generated too. */
static uint64_t rng = 0xD1B54A32D192ED03ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void gen(char *out, size_t cap)
{
    int n;
    unsigned year = rnd(4) == 0 ? (rnd(2) ? 9999 - rnd(2) : rnd(2)) : rnd(10000);
    n = snprintf(out, cap, "%04u-%02u-%02u%c%02u:%02u", year, 1 + rnd(13), 1 + rnd(32), "Tt "[rnd(3)], rnd(25),
                 rnd(61));
    if (rnd(4)) {
        n += snprintf(out + n, cap - (size_t)n, ":%02u", rnd(62));
        if (rnd(2)) {
            unsigned digits = 1 + rnd(9);
            out[n++] = ".,"[rnd(2)];
            for (unsigned i = 0; i < digits; i++)
                out[n++] = (char)('0' + rnd(10));
            out[n] = '\0';
        }
    }
    switch (rnd(4)) {
    case 0: break;
    case 1: snprintf(out + n, cap - (size_t)n, "%c", "Zz"[rnd(2)]); break;
    case 2: snprintf(out + n, cap - (size_t)n, "%c%02u:%02u", "+-"[rnd(2)], rnd(25), rnd(61)); break;
    default: snprintf(out + n, cap - (size_t)n, "%c%02u%02u", "+-"[rnd(2)], rnd(25), rnd(61)); break;
    }
}

static void test_timefmt_parse_format_parse_round_trips_over_accepted_space(void **state)
{
    size_t accepted = 0, edge = 0;
    (void)state;
    for (int i = 0; i < 400000; i++) {
        char text[64], buf[MUTT_TIME_ISO8601_MS_LEN];
        int64_t ms, back;
        gen(text, sizeof text);
        if (mutt_time_parse_iso8601(text, &ms) != 0)
            continue;
        accepted++;
        if (ms > MUTT_TIME_MAX_MS - 86400000LL * 2 || ms < MUTT_TIME_MIN_MS + 86400000LL * 2)
            edge++;
        if (mutt_time_format_iso8601_ms(ms, buf, sizeof buf) != 0)
            fail_msg("parsed \"%s\" (%lld) but cannot format it", text, (long long)ms);
        if (mutt_time_parse_iso8601(buf, &back) != 0 || back != ms)
            fail_msg("\"%s\" -> %lld -> \"%s\" -> %lld", text, (long long)ms, buf, (long long)back);
    }
    assert_true(accepted > 10000); /* the generator reaches the accepted space ... */
    assert_true(edge > 100);       /* ... including its edges */
}

/* ---- the accepted forms and the formatter (moved from test_event.c) ---- */

static void test_timefmt_parse_accepts_rfc3339_variants(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"2025-01-15T10:30:00Z", 1736937000000},
        {"2025-01-15t10:30:00z", 1736937000000},
        {"2025-01-15T10:30:00.123Z", 1736937000123},
        {"2025-11-11T16:34:50.6449285Z", 1762878890644},
        {"2025-01-15T12:30:00+02:00", 1736937000000},
        {"2025-01-15T05:00:00-05:30", 1736937000000},
        {"2025-01-15T12:30:00+0200", 1736937000000},
        {"2025-01-15 10:30:00Z", 1736937000000},
        {"2025-01-15T10:30:00", 1736937000000}, /* no offset = UTC (D9) */
        {"2025-01-15T10:30", 1736937000000},
        {"2024-02-29T00:00:00Z", 1709164800000},
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59.999Z", -1},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 42;
        if (mutt_time_parse_iso8601(cases[i].text, &ms) != 0)
            fail_msg("rejected %s", cases[i].text);
        if (ms != cases[i].ms)
            fail_msg("%s -> %lld, want %lld", cases[i].text, (long long)ms, (long long)cases[i].ms);
    }
}

static void test_timefmt_parse_rejects_garbage_and_impossible_dates(void **state)
{
    static const char *bad[] = {
        "",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2025-04-31T00:00:00Z",
        "2025-00-10T00:00:00Z",
        "2025-01-15T24:00:00Z",
        "2025-01-15T10:60:00Z",
        "2025-01-15T10:30:61Z",
        "2025-01-15",
        "2025-01-15T10:30:00ZZ",
        "2025-01-15T10:30:00 ",
        " 2025-01-15T10:30:00Z",
        "2025-01-15T10:30:00.Z",
        "2025-01-15T10:30:00+25:00",
        "2025/01/15T10:30:00Z",
        "25-01-15T10:30:00Z",
        "1736937000",
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (mutt_time_parse_iso8601(bad[i], &ms) != MUTT_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_int_equal(ms, 42);
    }
}

static void test_timefmt_format_round_trips_with_milliseconds(void **state)
{
    static const int64_t values[] = {0, 1, 999, 1736937000123, 1709164800000, -1, -86400001,
                                     253402300799999 /* 9999-12-31T23:59:59.999Z */};
    (void)state;

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[MUTT_TIME_ISO8601_MS_LEN];
        int64_t back = 0;
        assert_int_equal(mutt_time_format_iso8601_ms(values[i], buf, sizeof buf), 0);
        assert_int_equal(strlen(buf), 24);
        assert_int_equal(mutt_time_parse_iso8601(buf, &back), 0);
        assert_int_equal(back, values[i]);
    }
}

static void test_timefmt_format_writes_utc_with_z(void **state)
{
    char buf[MUTT_TIME_ISO8601_MS_LEN];
    (void)state;

    assert_int_equal(mutt_time_format_iso8601_ms(1736937000123, buf, sizeof buf), 0);
    assert_string_equal(buf, "2025-01-15T10:30:00.123Z");
    assert_int_equal(mutt_time_format_iso8601_ms(-1, buf, sizeof buf), 0);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_int_equal(mutt_time_format_iso8601_ms(0, buf, 10), MUTT_EINVAL);
}

/* Epochs outside years 0000..9999 are refused without arithmetic overflow on the way (UBSan
 * caught INT64_MIN; found by fuzz_timefmt). */
static void test_timefmt_format_refuses_epochs_outside_the_years_it_can_write(void **state)
{
    static const int64_t values[] = {INT64_MIN, INT64_MIN + 1, -62167219200001 /* -0001-12-31T23:59:59.999Z */,
                                     253402300800000 /* 10000-01-01 */, INT64_MAX};
    char buf[MUTT_TIME_ISO8601_MS_LEN];
    (void)state;

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        strcpy(buf, "x");
        assert_int_equal(mutt_time_format_iso8601_ms(values[i], buf, sizeof buf), MUTT_EINVAL);
        assert_string_equal(buf, "");
    }
    assert_int_equal(mutt_time_format_iso8601_ms(-62167219200000, buf, sizeof buf), 0);
    assert_string_equal(buf, "0000-01-01T00:00:00.000Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timefmt_format_refuses_epochs_outside_the_years_it_can_write),
        cmocka_unit_test(test_timefmt_rejects_instants_the_formatter_cannot_write),
        cmocka_unit_test(test_timefmt_accepts_and_formats_both_edges),
        cmocka_unit_test(test_timefmt_parse_format_parse_round_trips_over_accepted_space),
        cmocka_unit_test(test_timefmt_parse_accepts_rfc3339_variants),
        cmocka_unit_test(test_timefmt_parse_rejects_garbage_and_impossible_dates),
        cmocka_unit_test(test_timefmt_format_round_trips_with_milliseconds),
        cmocka_unit_test(test_timefmt_format_writes_utc_with_z),
    };
    return cmocka_run_group_tests_name("timefmt", tests, NULL, NULL);
}
