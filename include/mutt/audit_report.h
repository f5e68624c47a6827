/* The config-audit report (issue 17, CONTRACT D44): the time range from query text, the one SQL
 * statement that aggregates config_audit_log over it (PostgreSQL does the counting, so the API and
 * `mutt audit report` give the same numbers), and the CLI's table/csv/json rendering of the
 * report object {"from","to","total","by_operation":{},"by_user":{},"by_table":{},"by_day":{},
 * "top_records":[{"table_name","record","changes","last_changed_at"}]}. Pure: time comes in as a
 * parameter, output goes to the caller's stream. */
#ifndef MUTT_AUDIT_REPORT_H
#define MUTT_AUDIT_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mutt/timefmt.h"

#define MUTT_AUDIT_REPORT_DEFAULT_DAYS 30
#define MUTT_AUDIT_REPORT_TOP 10

/* $1 from, $2 to (timestamptz text, both inclusive). One row, one column: the report as JSON. */
extern const char mutt_audit_report_sql[];

/* from/to: ISO 8601 or NULL. A date-only from starts at that day's first ms, a date-only to
 * ends at its last (the day is included). Defaults: to = now_ms, from = to - 30 days. Writes
 * canonical ISO 8601 UTC with ms. Returns 0 or MUTT_EINVAL with a message and *bad_field
 * ("from", "to"), also when from is after to. */
int mutt_audit_report_range(const char *from, const char *to, int64_t now_ms, char from_iso[MUTT_TIME_ISO8601_MS_LEN],
                            char to_iso[MUTT_TIME_ISO8601_MS_LEN], char *err, size_t err_len, const char **bad_field);

enum mutt_audit_report_format { MUTT_AUDIT_REPORT_TABLE, MUTT_AUDIT_REPORT_CSV, MUTT_AUDIT_REPORT_JSON };
/* "table" | "csv" | "json" -> 0 and *out, else MUTT_EINVAL. */
int mutt_audit_report_format_parse(const char *s, enum mutt_audit_report_format *out);

/* Renders a report (JSON text as mutt_audit_report_sql returns it) to out. json: the object
 * pretty-printed. csv: "section,key,count" rows (sections total, operation, user, table, day,
 * record; record keys "<table>:<record>"), fields quoted when they hold a comma, quote or
 * newline. table: aligned sections for a terminal. Returns 0 or MUTT_EINVAL (not a report). */
int mutt_audit_report_write(const char *json, size_t len, enum mutt_audit_report_format fmt, FILE *out);

#endif
