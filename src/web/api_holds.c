/* Legal holds and the config-audit report (issue 17, CONTRACT D40 D44): GET/POST /legal-holds,
 * GET/DELETE /legal-holds/{id}, GET /audit/report. Every hold write is one statement that changes
 * the row and inserts its config_audit_log row (table legal_holds, D46). Writes need the admin
 * key (the dispatcher refuses the read-only key). Retention reads the table (retention_run.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mutt/audit_report.h"
#include "mutt/error.h"
#include "mutt/timefmt.h"
#include "web_internal.h"

#define HOLD_OBJ(p)                                                                                              \
    "json_build_object('id'," p ".id,'table'," p ".table_name,'from'," WEB_ISO(p ".from_ts") ",'to',"            \
    WEB_ISO(p ".to_ts") ",'hostname'," p ".hostname,'changed_by'," p ".changed_by,'reason'," p ".reason,"        \
    "'created_by'," p ".created_by,'created_at'," WEB_ISO(p ".created_at") ")"

static const char SQL_HOLDS[] =
    "SELECT COALESCE(json_agg(" HOLD_OBJ("h") " ORDER BY h.id), '[]')::text FROM legal_holds h";
static const char SQL_HOLD[] = "SELECT " HOLD_OBJ("h") "::text FROM legal_holds h WHERE h.id = $1::bigint";
static const char SQL_HOLD_ADD[] =
    "WITH h AS (INSERT INTO legal_holds (table_name, from_ts, to_ts, hostname, changed_by, reason, created_by) "
    "VALUES ($1, $2::timestamptz, $3::timestamptz, $4, $5, $6, $7) RETURNING *), "
    "o AS (SELECT h.id, " HOLD_OBJ("h") " AS obj FROM h), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, record_key, old_values, "
    "new_values, reason, correlation_id) SELECT $7, 'CREATE', 'legal_holds', o.id::int, o.id::text, NULL, "
    "o.obj::jsonb, $6, $8 FROM o RETURNING id) "
    "SELECT o.obj::text FROM o, aud";
static const char SQL_HOLD_DEL[] =
    "WITH h AS (DELETE FROM legal_holds WHERE id = $1::bigint RETURNING *), "
    "o AS (SELECT h.id, " HOLD_OBJ("h") " AS obj FROM h), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, record_key, old_values, "
    "new_values, reason, correlation_id) SELECT $2, 'DELETE', 'legal_holds', o.id::int, o.id::text, o.obj::jsonb, "
    "NULL, $3, $4 FROM o RETURNING id) "
    "SELECT o.id FROM o, aud";

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Optional text of at most max bytes without control characters; false (400 sent) otherwise. */
static bool opt_text(struct web_call *c, const json_t *body, const char *name, size_t max, const char **out)
{
    const json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    bool ok = s && n > 0 && n <= max;
    for (size_t i = 0; ok && i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            ok = false;
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be a non-empty string of at most %zu bytes", name, max);
        web_reply_error(c, 400, msg, name);
        return false;
    }
    *out = s;
    return true;
}

/* A bound: ISO 8601; a date-only "to" covers its whole day. Canonical text into iso. */
static bool bound(struct web_call *c, const json_t *body, const char *name, bool end, char *iso, int64_t *ms)
{
    const char *s = json_string_value(json_object_get(body, name));
    char day[32];
    if (s && strlen(s) == 10) {
        snprintf(day, sizeof day, "%sT%s", s, end ? "23:59:59.999Z" : "00:00:00Z");
        s = day;
    }
    if (!s || strlen(s) > 64 || mutt_time_parse_iso8601(s, ms) != 0 ||
        mutt_time_format_iso8601_ms(*ms, iso, MUTT_TIME_ISO8601_MS_LEN) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s is required: an ISO 8601 timestamp or date", name);
        web_reply_error(c, 400, msg, name);
        return false;
    }
    return true;
}

static void reply_json(struct web_call *c, int status, const char *prefix, const char *json, const char *suffix)
{
    size_t n = strlen(prefix) + strlen(json) + strlen(suffix) + 1;
    char *body = malloc(n);
    if (!body) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    int len = snprintf(body, n, "%s%s%s", prefix, json, suffix);
    web_reply_text(c, status, body, (size_t)len);
    free(body);
}

static void on_holds(struct web_call *c, PGresult *res)
{
    reply_json(c, 200, "{\"legal_holds\":", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "[]", "}");
}

static void on_hold(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Legal hold not found", NULL);
        return;
    }
    reply_json(c, 200, "", PQgetvalue(res, 0, 0), "");
}

static void on_hold_added(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    reply_json(c, 201, "", PQgetvalue(res, 0, 0), "");
}

static void on_hold_deleted(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Legal hold not found", NULL);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "message", json_string("Legal hold deleted successfully"));
    web_reply_obj(c, 200, o);
}

void web_legal_holds(struct web_call *c)
{
    if (strcmp(web_method(c), "GET") == 0) {
        web_query(c, SQL_HOLDS, 0, NULL, on_holds);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    const char *table = json_string_value(json_object_get(body, "table"));
    const char *hostname, *changed_by;
    char from[MUTT_TIME_ISO8601_MS_LEN], to[MUTT_TIME_ISO8601_MS_LEN];
    int64_t from_ms, to_ms;
    if (!table || (strcmp(table, "config_audit_log") != 0 && strcmp(table, "event_audit_log") != 0)) {
        web_reply_error(c, 400, "table must be config_audit_log or event_audit_log", "table");
    } else if (!reason || !reason[0]) {
        web_reply_error(c, 400, "reason is required: why the rows must be kept", "reason");
    } else if (bound(c, body, "from", false, from, &from_ms) && bound(c, body, "to", true, to, &to_ms) &&
               opt_text(c, body, "hostname", 255, &hostname) && opt_text(c, body, "changed_by", 255, &changed_by)) {
        if (from_ms > to_ms) {
            web_reply_error(c, 400, "from must not be after to", "from");
        } else {
            const char *vals[] = {table, from, to, hostname, changed_by, reason, c->changed_by, c->cid};
            web_query(c, SQL_HOLD_ADD, 8, vals, on_hold_added);
        }
    }
    json_decref(body);
}

void web_legal_hold(struct web_call *c)
{
    const char *id = web_path_param(c, "id");
    size_t n = id ? strlen(id) : 0;
    bool ok = n > 0 && n <= 18;
    for (size_t i = 0; ok && i < n; i++)
        ok = id[i] >= '0' && id[i] <= '9';
    if (!ok) {
        web_reply_error(c, 404, "Legal hold not found", NULL);
        return;
    }
    if (strcmp(web_method(c), "GET") == 0) {
        const char *vals[] = {id};
        web_query(c, SQL_HOLD, 1, vals, on_hold);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, true, &reason);
    if (!body)
        return;
    if (!reason)
        reason = web_query_param(c, "reason");
    const char *vals[] = {id, c->changed_by, reason, c->cid};
    web_query(c, SQL_HOLD_DEL, 4, vals, on_hold_deleted);
    json_decref(body);
}

/* ---- GET /audit/report ---- */
static void on_report(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    reply_json(c, 200, "", PQgetvalue(res, 0, 0), "");
}

void web_audit_report(struct web_call *c)
{
    char from[MUTT_TIME_ISO8601_MS_LEN], to[MUTT_TIME_ISO8601_MS_LEN], err[128];
    const char *field = NULL;
    if (mutt_audit_report_range(web_query_param(c, "from"), web_query_param(c, "to"), wall_ms(), from, to, err,
                                sizeof err, &field) != 0) {
        web_reply_error(c, 400, err, field);
        return;
    }
    const char *vals[] = {from, to};
    web_query(c, mutt_audit_report_sql, 2, vals, on_report);
}
