/* Unit tests of the pure archive names and manifest lines (src/domain/archive_format.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mutt/archive_format.h"
#include "mutt/error.h"
#include "mutt/timefmt.h"

static void test_archive_file_name_has_table_day_run_and_sequence(void **state)
{
    (void)state;
    int64_t run = 0;
    assert_int_equal(mutt_time_parse_iso8601("2026-12-05T01:02:03.456Z", &run), 0);
    char buf[MUTT_ARCHIVE_NAME_MAX];
    assert_int_equal(mutt_archive_file_name(buf, sizeof(buf), "config_audit_log", "2025-01-31", run, 7), 0);
    assert_string_equal(buf, "config_audit_log_2025-01-31_20261205T010203Z_000007.ndjson.gz");
    assert_int_equal(mutt_archive_file_name(buf, sizeof(buf), "alert_rules", "2025-01-31", run, 7), MUTT_EINVAL);
    assert_int_equal(mutt_archive_file_name(buf, sizeof(buf), "event_audit_log", "2025-1-31", run, 7), MUTT_EINVAL);
    assert_int_equal(mutt_archive_file_name(buf, sizeof(buf), "event_audit_log", "../../etc", run, 7), MUTT_EINVAL);
    assert_int_equal(mutt_archive_file_name(buf, 20, "event_audit_log", "2025-01-31", run, 7), MUTT_ERANGE);
}

static void test_archive_table_of_reads_back_what_file_name_made(void **state)
{
    (void)state;
    char name[MUTT_ARCHIVE_NAME_MAX], table[32];
    assert_int_equal(mutt_archive_file_name(name, sizeof(name), "event_audit_log", "2020-03-02", 1000, 1), 0);
    assert_int_equal(mutt_archive_table_of(name, table, sizeof(table)), 0);
    assert_string_equal(table, "event_audit_log");
    assert_int_equal(mutt_archive_table_of("config_audit_log_2020-03-02_x.ndjson.gz", table, sizeof(table)), 0);
    assert_string_equal(table, "config_audit_log");
    assert_int_equal(mutt_archive_table_of("alert_rules_2020-03-02_x.ndjson.gz", table, sizeof(table)), MUTT_EINVAL);
    assert_int_equal(mutt_archive_table_of("config_audit_log_2020-03-02_x.json", table, sizeof(table)), MUTT_EINVAL);
    assert_int_equal(mutt_archive_table_of("dir/config_audit_log_2020-03-02_x.ndjson.gz", table, sizeof(table)),
                     MUTT_EINVAL);
    assert_int_equal(mutt_archive_table_of("config_audit_log_2020-3-02_x.ndjson.gz", table, sizeof(table)),
                     MUTT_EINVAL);
}

static void test_archive_manifest_line_round_trips_in_sha256sum_format(void **state)
{
    (void)state;
    uint8_t sha[32];
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)(i * 9 + 1);
    char line[256], hex[65], name[128], want_hex[65];
    mutt_archive_hex(sha, want_hex);
    assert_int_equal(strlen(want_hex), 64);
    assert_memory_equal(want_hex, "010a131c", 8);
    assert_int_equal(mutt_archive_manifest_line(line, sizeof(line), sha, "a.ndjson.gz"), 0);
    assert_int_equal(strlen(line), 64 + 2 + strlen("a.ndjson.gz") + 1);
    assert_memory_equal(line + 64, "  a.ndjson.gz\n", 14);
    assert_int_equal(mutt_archive_manifest_parse(line, strlen(line), hex, name, sizeof(name)), 0);
    assert_string_equal(hex, want_hex);
    assert_string_equal(name, "a.ndjson.gz");
    /* without the newline, upper-case hex and sha256sum's binary marker */
    char up[256];
    snprintf(up, sizeof(up), "%s  *b.gz", want_hex);
    for (int i = 0; i < 64; i++)
        if (up[i] >= 'a' && up[i] <= 'f')
            up[i] = (char)(up[i] - 'a' + 'A');
    assert_int_equal(mutt_archive_manifest_parse(up, strlen(up), hex, name, sizeof(name)), 0);
    assert_string_equal(hex, want_hex);
    assert_string_equal(name, "b.gz");
}

static void test_archive_manifest_refuses_names_leaving_the_directory_and_bad_lines(void **state)
{
    (void)state;
    uint8_t sha[32] = {0};
    char line[256], hex[65], name[128], zeros[65];
    mutt_archive_hex(sha, zeros);
    assert_int_equal(mutt_archive_manifest_line(line, sizeof(line), sha, "../x"), MUTT_EINVAL);
    assert_int_equal(mutt_archive_manifest_line(line, sizeof(line), sha, ".."), MUTT_EINVAL);
    assert_int_equal(mutt_archive_manifest_line(line, 40, sha, "x"), MUTT_ERANGE);
    const char *bad[] = {"", "abc  x", "zz", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(mutt_archive_manifest_parse(bad[i], strlen(bad[i]), hex, name, sizeof(name)), MUTT_EINVAL);
    snprintf(line, sizeof(line), "%s  ../../etc/passwd\n", zeros);
    assert_int_equal(mutt_archive_manifest_parse(line, strlen(line), hex, name, sizeof(name)), MUTT_EINVAL);
    snprintf(line, sizeof(line), "%s x\n", zeros); /* one space */
    assert_int_equal(mutt_archive_manifest_parse(line, strlen(line), hex, name, sizeof(name)), MUTT_EINVAL);
    snprintf(line, sizeof(line), "%s  ..\n", zeros);
    assert_int_equal(mutt_archive_manifest_parse(line, strlen(line), hex, name, sizeof(name)), MUTT_EINVAL);
    snprintf(line, sizeof(line), "%s  %s\n", zeros, "a-name-longer-than-the-buffer");
    assert_int_equal(mutt_archive_manifest_parse(line, strlen(line), hex, name, 8), MUTT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archive_file_name_has_table_day_run_and_sequence),
        cmocka_unit_test(test_archive_table_of_reads_back_what_file_name_made),
        cmocka_unit_test(test_archive_manifest_line_round_trips_in_sha256sum_format),
        cmocka_unit_test(test_archive_manifest_refuses_names_leaving_the_directory_and_bad_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
