/* The config-audit report (include/mutt/audit_report.h). Pure. */
#include "mutt/audit_report.h"

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "mutt/error.h"

#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define BY(col, key)                                                                                              \
    "COALESCE((SELECT json_object_agg(k, n ORDER BY k) FROM (SELECT " col " AS k, count(*) AS n FROM r GROUP BY 1) " \
    "s WHERE k IS NOT NULL), '{}'::json)"

const char mutt_audit_report_sql[] =
    "WITH r AS (SELECT * FROM config_audit_log WHERE changed_at >= $1::timestamptz AND changed_at <= $2::timestamptz) "
    "SELECT json_build_object("
    "'from', " ISO("$1::timestamptz") ", 'to', " ISO("$2::timestamptz") ", "
    "'total', (SELECT count(*) FROM r), "
    "'by_operation', " BY("operation", "") ", "
    "'by_user', " BY("changed_by", "") ", "
    "'by_table', " BY("table_name", "") ", "
    "'by_day', " BY("to_char(changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')", "") ", "
    "'top_records', COALESCE((SELECT json_agg(json_build_object('table_name', table_name, 'record', rec, "
    "'changes', n, 'last_changed_at', " ISO("last") ") ORDER BY n DESC, table_name, rec) FROM "
    "(SELECT table_name, COALESCE(record_key, record_id::text) AS rec, count(*) AS n, max(changed_at) AS last "
    "FROM r WHERE COALESCE(record_key, record_id::text) IS NOT NULL GROUP BY 1, 2 "
    "ORDER BY 3 DESC, 1, 2 LIMIT 10) t), '[]'::json))::text";

static int bad(char *err, size_t len, const char **bad_field, const char *field, const char *msg)
{
    snprintf(err, len, "%s", msg);
    *bad_field = field;
    return MUTT_EINVAL;
}

static int parse_bound(const char *v, bool end, int64_t *ms)
{
    char day[32];
    if (strlen(v) == 10) {
        snprintf(day, sizeof day, "%sT%s", v, end ? "23:59:59.999Z" : "00:00:00Z");
        v = day;
    }
    return strlen(v) > 64 ? MUTT_EINVAL : mutt_time_parse_iso8601(v, ms);
}

int mutt_audit_report_range(const char *from, const char *to, int64_t now_ms, char from_iso[MUTT_TIME_ISO8601_MS_LEN],
                            char to_iso[MUTT_TIME_ISO8601_MS_LEN], char *err, size_t err_len, const char **bad_field)
{
    int64_t t = now_ms, f;
    if (to && parse_bound(to, true, &t) != 0)
        return bad(err, err_len, bad_field, "to", "to must be an ISO 8601 timestamp or date");
    f = t - (int64_t)MUTT_AUDIT_REPORT_DEFAULT_DAYS * 86400000LL;
    if (from && parse_bound(from, false, &f) != 0)
        return bad(err, err_len, bad_field, "from", "from must be an ISO 8601 timestamp or date");
    if (f > t)
        return bad(err, err_len, bad_field, "from", "from must not be after to");
    if (mutt_time_format_iso8601_ms(f, from_iso, MUTT_TIME_ISO8601_MS_LEN) != 0 ||
        mutt_time_format_iso8601_ms(t, to_iso, MUTT_TIME_ISO8601_MS_LEN) != 0)
        return bad(err, err_len, bad_field, from ? "from" : "to", "timestamp out of range");
    return 0;
}

int mutt_audit_report_format_parse(const char *s, enum mutt_audit_report_format *out)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum mutt_audit_report_format)i;
            return 0;
        }
    return MUTT_EINVAL;
}

static void csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_row(FILE *out, const char *section, const char *key, json_int_t n)
{
    csv_field(out, section);
    fputc(',', out);
    csv_field(out, key);
    fprintf(out, ",%lld\n", (long long)n);
}

static const struct {
    const char *field, *csv, *title;
} SECTIONS[] = {
    {"by_operation", "operation", "By operation"},
    {"by_user", "user", "By user"},
    {"by_table", "table", "By table"},
    {"by_day", "day", "By day"},
};

int mutt_audit_report_write(const char *json, size_t len, enum mutt_audit_report_format fmt, FILE *out)
{
    json_t *r = json_loadb(json, len, 0, NULL);
    if (!json_is_object(r) || !json_is_integer(json_object_get(r, "total")) ||
        !json_is_array(json_object_get(r, "top_records"))) {
        json_decref(r);
        return MUTT_EINVAL;
    }
    const char *from = json_string_value(json_object_get(r, "from"));
    const char *to = json_string_value(json_object_get(r, "to"));
    json_int_t total = json_integer_value(json_object_get(r, "total"));
    json_t *top = json_object_get(r, "top_records");
    if (fmt == MUTT_AUDIT_REPORT_JSON) {
        json_dumpf(r, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', out);
        json_decref(r);
        return 0;
    }
    if (fmt == MUTT_AUDIT_REPORT_CSV) {
        fputs("section,key,count\n", out);
        csv_row(out, "total", "", total);
    } else {
        fprintf(out, "Configuration audit report\nFrom:  %s\nTo:    %s\nTotal: %lld changes\n", from ? from : "",
                to ? to : "", (long long)total);
    }
    for (size_t s = 0; s < sizeof(SECTIONS) / sizeof(SECTIONS[0]); s++) {
        json_t *obj = json_object_get(r, SECTIONS[s].field);
        const char *k;
        json_t *v;
        if (fmt == MUTT_AUDIT_REPORT_TABLE)
            fprintf(out, "\n%s\n", SECTIONS[s].title);
        json_object_foreach(obj, k, v)
        {
            if (fmt == MUTT_AUDIT_REPORT_CSV)
                csv_row(out, SECTIONS[s].csv, k, json_integer_value(v));
            else
                fprintf(out, "  %-40s %8lld\n", k, (long long)json_integer_value(v));
        }
    }
    if (fmt == MUTT_AUDIT_REPORT_TABLE)
        fprintf(out, "\nMost changed records\n");
    size_t i;
    json_t *rec;
    json_array_foreach(top, i, rec)
    {
        const char *t = json_string_value(json_object_get(rec, "table_name"));
        const char *id = json_string_value(json_object_get(rec, "record"));
        json_int_t n = json_integer_value(json_object_get(rec, "changes"));
        char key[600];
        snprintf(key, sizeof key, "%s:%s", t ? t : "", id ? id : "");
        if (fmt == MUTT_AUDIT_REPORT_CSV)
            csv_row(out, "record", key, n);
        else
            fprintf(out, "  %-40s %8lld  last %s\n", key, (long long)n,
                    json_string_value(json_object_get(rec, "last_changed_at")) ?: "");
    }
    json_decref(r);
    return 0;
}
