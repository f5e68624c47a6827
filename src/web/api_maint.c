/* Maintenance windows (issue 16 §3, D40 D42 D46): GET/POST /maintenance-windows,
 * GET/DELETE /maintenance-windows/{id}. Each write is one statement that changes the row and
 * inserts its config_audit_log row (table maintenance_windows), then PUBLISH
 * mutt:maintenance:updates so every alert pod re-reads its windows within 1 s. Deleting an active
 * window ends it now (ends_at = now(), the row stays and its summary is still sent, D40); deleting
 * a scheduled or ended one removes the row. Validation is pure (domain/maintenance.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mutt/error.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/maintenance.h"
#include "mutt/redis.h"
#include "mutt/timefmt.h"
#include "web_internal.h"

#define MW_STATE(a)                                                                                               \
    "CASE WHEN now() < " a ".starts_at THEN 'scheduled' WHEN now() < " a ".ends_at THEN 'active' ELSE 'ended' END"
#define MW_JSON(a)                                                                                                \
    "json_build_object('id'," a ".id,'hostname_pattern'," a ".hostname_pattern,'team'," a ".team,"               \
    "'starts_at'," WEB_ISO(a ".starts_at") ",'ends_at'," WEB_ISO(a ".ends_at") ",'reason'," a ".reason,"         \
    "'summary'," a ".summary,'created_by'," a ".created_by,'created_at'," WEB_ISO(a ".created_at") ","           \
    "'state'," MW_STATE(a) ")"
/* What audit rows keep of a window: the fields a client sets, and its id. */
#define MW_AUDIT(a)                                                                                               \
    "jsonb_build_object('id'," a ".id,'hostname_pattern'," a ".hostname_pattern,'team'," a ".team,"              \
    "'starts_at'," WEB_ISO(a ".starts_at") ",'ends_at'," WEB_ISO(a ".ends_at") ",'reason'," a ".reason,"         \
    "'summary'," a ".summary)"
/* Active at this statement's now(): a delete ends it instead of removing it. */
#define MW_ACTIVE(a) "(" a ".starts_at <= now() AND " a ".ends_at > now())"

static const char SQL_LIST[] =
    "SELECT COALESCE(json_agg(" MW_JSON("m") " ORDER BY m.starts_at DESC, m.id DESC), '[]')::text "
    "FROM (SELECT * FROM maintenance_windows ORDER BY starts_at DESC, id DESC LIMIT 200) m";
static const char SQL_GET[] = "SELECT " MW_JSON("m") "::text FROM maintenance_windows m WHERE m.id = $1::int";
static const char SQL_CREATE[] =
    "WITH ins AS (INSERT INTO maintenance_windows (hostname_pattern, team, starts_at, ends_at, reason, summary, "
    "created_by) VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5, $6::boolean, $7) RETURNING *), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason, correlation_id) SELECT $7, 'CREATE', 'maintenance_windows', ins.id, NULL, " MW_AUDIT("ins") ", $5, $8 "
    "FROM ins RETURNING id) "
    "SELECT ins.id::text, " MW_JSON("ins") "::text FROM ins, aud";
static const char SQL_DELETE[] =
    "WITH old AS (SELECT * FROM maintenance_windows WHERE id = $1::int), "
    "ended AS (UPDATE maintenance_windows m SET ends_at = now() FROM old WHERE m.id = old.id AND " MW_ACTIVE("old")
    " RETURNING m.*), "
    "del AS (DELETE FROM maintenance_windows m USING old WHERE m.id = old.id AND NOT " MW_ACTIVE("old")
    " RETURNING m.id), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason, correlation_id) SELECT $2, 'DELETE', 'maintenance_windows', old.id, " MW_AUDIT("old") ", "
    "(SELECT " MW_AUDIT("e") " FROM ended e), $3, $4 FROM old RETURNING id) "
    "SELECT old.id::text, CASE WHEN " MW_ACTIVE("old") " THEN 'ended' ELSE 'deleted' END FROM old, aud";

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Fire and forget: when Redis is down the alert pods still re-read their windows on their timer. */
static void publish(struct web_call *c, const char *id)
{
    const char *argv[] = {"PUBLISH", MUTT_KEY_MAINT_CHANNEL, id};
    size_t lens[] = {7, strlen(MUTT_KEY_MAINT_CHANNEL), strlen(id)};
    if (mutt_redis_command(mutt_redis_cmd(c->ctx->redis), NULL, NULL, 3, argv, lens) != 0)
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "PUBLISH %s failed; alert pods re-read on their timer",
                    MUTT_KEY_MAINT_CHANNEL);
}

/* Path id as a positive int32; 404 (no such window can exist) otherwise. */
static bool path_id(struct web_call *c, char *out, size_t outlen)
{
    const char *s = web_path_param(c, "id");
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 10) {
        web_reply_error(c, 404, "Maintenance window not found", NULL);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') {
            web_reply_error(c, 400, "id must be a positive integer", "id");
            return false;
        }
    long long v = strtoll(s, NULL, 10);
    if (v < 1 || v > 2147483647LL) {
        web_reply_error(c, 404, "Maintenance window not found", NULL);
        return false;
    }
    snprintf(out, outlen, "%lld", v);
    return true;
}

static void on_list(struct web_call *c, PGresult *res)
{
    const char *rows = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "[]";
    size_t n = strlen(rows) + 32;
    char *body = malloc(n);
    if (!body) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    int len = snprintf(body, n, "{\"maintenance_windows\":%s}", rows);
    web_reply_text(c, 200, body, (size_t)len);
    free(body);
}

static void on_got(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Maintenance window not found", NULL);
        return;
    }
    const char *row = PQgetvalue(res, 0, 0);
    web_reply_text(c, 200, row, strlen(row));
}

/* D40: 201 with the created object, id included. */
static void on_created(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    publish(c, PQgetvalue(res, 0, 0));
    json_t *o = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    if (!o) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_obj(c, 201, o);
}

static void on_deleted(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Maintenance window not found", NULL);
        return;
    }
    publish(c, PQgetvalue(res, 0, 0));
    bool ended = strcmp(PQgetvalue(res, 0, 1), "ended") == 0;
    json_t *o = json_object();
    json_object_set_new(o, "message", json_string(ended ? "Maintenance window ended" : "Maintenance window deleted"));
    json_object_set_new(o, "id", json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
    json_object_set_new(o, "ended", json_boolean(ended));
    web_reply_obj(c, 200, o);
}

static void create_window(struct web_call *c)
{
    json_t *body = web_body_object(c, false);
    if (!body)
        return;
    struct mutt_maint_spec spec;
    const char *field = NULL;
    char msg[200];
    if (mutt_maint_validate(body, wall_ms(), &spec, &field, msg, sizeof msg) != 0) {
        web_reply_error(c, 400, msg, field);
        json_decref(body);
        return;
    }
    char starts[MUTT_TIME_ISO8601_MS_LEN], ends[MUTT_TIME_ISO8601_MS_LEN];
    if (mutt_time_format_iso8601_ms(spec.starts_ms, starts, sizeof starts) != 0 ||
        mutt_time_format_iso8601_ms(spec.ends_ms, ends, sizeof ends) != 0) {
        web_reply_error(c, 400, "starts_at and ends_at must be ISO 8601 times", "ends_at");
        json_decref(body);
        return;
    }
    const char *vals[] = {spec.hostname_pattern, spec.team, starts, ends, spec.reason,
                          spec.summary ? "true" : "false", c->changed_by, c->cid};
    web_query(c, SQL_CREATE, 8, vals, on_created);
    json_decref(body);
}

void web_maint_windows(struct web_call *c)
{
    if (strcmp(web_method(c), "GET") == 0)
        web_query(c, SQL_LIST, 0, NULL, on_list);
    else
        create_window(c);
}

void web_maint_window(struct web_call *c)
{
    char id[16];
    if (!path_id(c, id, sizeof id))
        return;
    if (strcmp(web_method(c), "GET") == 0) {
        const char *vals[] = {id};
        web_query(c, SQL_GET, 1, vals, on_got);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, true, &reason);
    if (!body)
        return;
    if (!reason)
        reason = web_query_param(c, "reason");
    const char *vals[] = {id, c->changed_by, reason, c->cid};
    web_query(c, SQL_DELETE, 4, vals, on_deleted);
    json_decref(body);
}
