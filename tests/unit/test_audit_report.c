/* Unit tests of the config-audit report's pure parts (src/domain/audit_report.c): the range from
 * query text and the table/csv/json rendering. The aggregation itself is SQL, proven by
 * tests/e2e/test_legal_holds.sh against seeded rows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/audit_report.h"
#include "mutt/error.h"

static int64_t at(const char *iso)
{
    int64_t ms = 0;
    assert_int_equal(mutt_time_parse_iso8601(iso, &ms), 0);
    return ms;
}

static void test_report_range_defaults_dates_and_errors(void **state)
{
    (void)state;
    char f[MUTT_TIME_ISO8601_MS_LEN], t[MUTT_TIME_ISO8601_MS_LEN], err[128];
    const char *field = NULL;
    int64_t now = at("2026-03-31T12:00:00Z");
    assert_int_equal(mutt_audit_report_range(NULL, NULL, now, f, t, err, sizeof err, &field), 0);
    assert_string_equal(f, "2026-03-01T12:00:00.000Z");
    assert_string_equal(t, "2026-03-31T12:00:00.000Z");
    assert_int_equal(mutt_audit_report_range("2026-01-10", "2026-01-31", now, f, t, err, sizeof err, &field), 0);
    assert_string_equal(f, "2026-01-10T00:00:00.000Z");
    assert_string_equal(t, "2026-01-31T23:59:59.999Z");
    assert_int_equal(mutt_audit_report_range(NULL, "2026-01-31T00:00:00Z", now, f, t, err, sizeof err, &field), 0);
    assert_string_equal(f, "2026-01-01T00:00:00.000Z");
    assert_int_equal(mutt_audit_report_range("bogus", NULL, now, f, t, err, sizeof err, &field), MUTT_EINVAL);
    assert_string_equal(field, "from");
    assert_int_equal(mutt_audit_report_range(NULL, "2026-13-01", now, f, t, err, sizeof err, &field), MUTT_EINVAL);
    assert_string_equal(field, "to");
    assert_int_equal(mutt_audit_report_range("2026-02-01", "2026-01-01", now, f, t, err, sizeof err, &field),
                     MUTT_EINVAL);
    assert_string_equal(field, "from");
}

static const char REPORT[] =
    "{\"from\":\"2026-01-10T00:00:00.000Z\",\"to\":\"2026-01-31T23:59:59.999Z\",\"total\":5,"
    "\"by_operation\":{\"CREATE\":2,\"UPDATE\":3},\"by_user\":{\"cli:alice\":3,\"web,\\\"x\\\"\":2},"
    "\"by_table\":{\"alert_rules\":5},\"by_day\":{\"2026-01-10\":5},"
    "\"top_records\":[{\"table_name\":\"alert_rules\",\"record\":\"1\",\"changes\":3,"
    "\"last_changed_at\":\"2026-01-11T09:00:00.000Z\"}]}";

static char *render(const char *json, enum mutt_audit_report_format fmt, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    *rc = mutt_audit_report_write(json, strlen(json), fmt, out);
    fclose(out);
    return buf;
}

static void test_report_csv_quotes_fields_and_lists_every_section(void **state)
{
    (void)state;
    int rc;
    char *s = render(REPORT, MUTT_AUDIT_REPORT_CSV, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "section,key,count\n"
                           "total,,5\n"
                           "operation,CREATE,2\n"
                           "operation,UPDATE,3\n"
                           "user,cli:alice,3\n"
                           "user,\"web,\"\"x\"\"\",2\n"
                           "table,alert_rules,5\n"
                           "day,2026-01-10,5\n"
                           "record,alert_rules:1,3\n");
    free(s);
}

static void test_report_table_and_json_and_refusing_other_shapes(void **state)
{
    (void)state;
    int rc;
    char *s = render(REPORT, MUTT_AUDIT_REPORT_TABLE, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(s, "Total: 5 changes"));
    assert_non_null(strstr(s, "By user\n  cli:alice"));
    assert_non_null(strstr(s, "alert_rules:1"));
    free(s);
    s = render(REPORT, MUTT_AUDIT_REPORT_JSON, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(s, "\"total\": 5"));
    free(s);
    s = render("{\"total\":\"x\"}", MUTT_AUDIT_REPORT_CSV, &rc);
    assert_int_equal(rc, MUTT_EINVAL);
    free(s);
    enum mutt_audit_report_format f;
    assert_int_equal(mutt_audit_report_format_parse("csv", &f), 0);
    assert_int_equal(f, MUTT_AUDIT_REPORT_CSV);
    assert_int_equal(mutt_audit_report_format_parse("xml", &f), MUTT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_range_defaults_dates_and_errors),
        cmocka_unit_test(test_report_csv_quotes_fields_and_lists_every_section),
        cmocka_unit_test(test_report_table_and_json_and_refusing_other_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
