/* Development hosts and device teams (CONTRACT §7, reference §8.3 plus W32: audited and announced):
 * GET/POST /dev-hosts, DELETE /dev-hosts/{hostname}, GET/POST /teams, PUT/DELETE /teams/{hostname}.
 * Each write is one statement that changes the row and inserts its audit row (record_key =
 * hostname), then PUBLISH mutt:rules:updates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "web_internal.h"

static const char SQL_HOSTS[] =
    "SELECT COALESCE(json_agg(json_build_object('hostname', hostname) ORDER BY hostname), '[]')::text "
    "FROM development_hosts";
static const char SQL_HOST_ADD[] =
    "WITH ins AS (INSERT INTO development_hosts (hostname) VALUES ($1) RETURNING hostname), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, old_values, new_values, "
    "reason, correlation_id) SELECT $2, 'CREATE', 'development_hosts', ins.hostname, NULL, "
    "jsonb_build_object('hostname', ins.hostname), $3, $4 FROM ins RETURNING id) "
    "SELECT ins.hostname FROM ins, aud";
static const char SQL_HOST_DEL[] =
    "WITH del AS (DELETE FROM development_hosts WHERE hostname = $1 RETURNING hostname), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, old_values, new_values, "
    "reason, correlation_id) SELECT $2, 'DELETE', 'development_hosts', del.hostname, "
    "jsonb_build_object('hostname', del.hostname), NULL, $3, $4 FROM del RETURNING id) "
    "SELECT del.hostname FROM del, aud";
static const char SQL_TEAMS[] =
    "SELECT COALESCE(json_agg(json_build_object('hostname', hostname, 'team_assignment', team_assignment) "
    "ORDER BY hostname), '[]')::text FROM device_teams";
static const char SQL_TEAM_ADD[] =
    "WITH ins AS (INSERT INTO device_teams (hostname, team_assignment) VALUES ($1, $2) RETURNING *), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, old_values, new_values, "
    "reason, correlation_id) SELECT $3, 'CREATE', 'device_teams', ins.hostname, NULL, "
    "jsonb_build_object('hostname', ins.hostname, 'team_assignment', ins.team_assignment), $4, $5 FROM ins "
    "RETURNING id) SELECT ins.hostname FROM ins, aud";
static const char SQL_TEAM_SET[] =
    "WITH old AS (SELECT * FROM device_teams WHERE hostname = $1), "
    "upd AS (UPDATE device_teams t SET team_assignment = $2 FROM old WHERE t.hostname = old.hostname "
    "RETURNING t.*), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, old_values, new_values, "
    "reason, correlation_id) SELECT $3, 'UPDATE', 'device_teams', upd.hostname, "
    "jsonb_build_object('hostname', old.hostname, 'team_assignment', old.team_assignment), "
    "jsonb_build_object('hostname', upd.hostname, 'team_assignment', upd.team_assignment), $4, $5 "
    "FROM old JOIN upd ON old.hostname = upd.hostname RETURNING id) "
    "SELECT upd.hostname FROM upd, aud";
static const char SQL_TEAM_DEL[] =
    "WITH del AS (DELETE FROM device_teams WHERE hostname = $1 RETURNING *), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, old_values, new_values, "
    "reason, correlation_id) SELECT $2, 'DELETE', 'device_teams', del.hostname, "
    "jsonb_build_object('hostname', del.hostname, 'team_assignment', del.team_assignment), NULL, $3, $4 "
    "FROM del RETURNING id) SELECT del.hostname FROM del, aud";

/* A hostname or team: non-empty string of at most `max` bytes without control characters. */
static bool text_field(const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

static bool path_text_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

static void reply_list(struct web_call *c, PGresult *res, const char *name)
{
    const char *rows = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "[]";
    size_t n = strlen(rows) + strlen(name) + 16;
    char *body = malloc(n);
    if (!body) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    int len = snprintf(body, n, "{\"%s\":%s}", name, rows);
    web_reply_text(c, 200, body, (size_t)len);
    free(body);
}

/* Ends a write: 404 when the statement touched no row, else publish and reply. */
static void reply_write(struct web_call *c, PGresult *res, int status, const char *message)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Hostname not found", NULL);
        return;
    }
    web_publish_rules(c, c->ep->id == MUTT_API_EP_DEV_HOSTS || c->ep->id == MUTT_API_EP_DEV_HOST
                             ? "development_hosts"
                             : "device_teams");
    json_t *o = json_object();
    json_object_set_new(o, "message", json_string(message));
    json_object_set_new(o, "hostname", json_string(PQgetvalue(res, 0, 0)));
    web_reply_obj(c, status, o);
}

/* ---- dev hosts ---- */
static void on_hosts(struct web_call *c, PGresult *res) { reply_list(c, res, "hosts"); }
static void on_host_added(struct web_call *c, PGresult *res) { reply_write(c, res, 201, "Dev host added successfully"); }
static void on_host_deleted(struct web_call *c, PGresult *res) { reply_write(c, res, 200, "Dev host deleted successfully"); }

void web_dev_hosts(struct web_call *c)
{
    if (strcmp(web_method(c), "GET") == 0) {
        web_query(c, SQL_HOSTS, 0, NULL, on_hosts);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    json_t *h = json_object_get(body, "hostname");
    if (!text_field(h, 255)) {
        json_decref(body);
        web_reply_error(c, 400, "hostname is required: a non-empty string of at most 255 bytes", "hostname");
        return;
    }
    c->conflict = "Hostname already exists";
    const char *vals[] = {json_string_value(h), c->changed_by, reason, c->cid};
    web_query(c, SQL_HOST_ADD, 4, vals, on_host_added);
    json_decref(body);
}

static bool delete_params(struct web_call *c, const char **host, const char **reason, json_t **body)
{
    *host = web_path_param(c, "hostname");
    if (!path_text_ok(*host, 255)) {
        web_reply_error(c, 404, "Hostname not found", NULL);
        return false;
    }
    *body = web_body_with_reason(c, true, reason);
    if (!*body)
        return false;
    if (!*reason)
        *reason = web_query_param(c, "reason");
    return true;
}

void web_dev_host(struct web_call *c)
{
    const char *host, *reason;
    json_t *body;
    if (!delete_params(c, &host, &reason, &body))
        return;
    const char *vals[] = {host, c->changed_by, reason, c->cid};
    web_query(c, SQL_HOST_DEL, 4, vals, on_host_deleted);
    json_decref(body);
}

/* ---- teams ---- */
static void on_teams(struct web_call *c, PGresult *res) { reply_list(c, res, "teams"); }
static void on_team_added(struct web_call *c, PGresult *res) { reply_write(c, res, 201, "Team mapping added successfully"); }
static void on_team_set(struct web_call *c, PGresult *res) { reply_write(c, res, 200, "Team mapping updated successfully"); }
static void on_team_deleted(struct web_call *c, PGresult *res) { reply_write(c, res, 200, "Team mapping deleted successfully"); }

void web_teams(struct web_call *c)
{
    if (strcmp(web_method(c), "GET") == 0) {
        web_query(c, SQL_TEAMS, 0, NULL, on_teams);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    json_t *h = json_object_get(body, "hostname"), *t = json_object_get(body, "team_assignment");
    if (!text_field(h, 255) || !text_field(t, 100)) {
        bool host_bad = !text_field(h, 255);
        json_decref(body);
        web_reply_error(c, 400,
                        host_bad ? "hostname is required: a non-empty string of at most 255 bytes"
                                 : "team_assignment is required: a non-empty string of at most 100 bytes",
                        host_bad ? "hostname" : "team_assignment");
        return;
    }
    c->conflict = "Hostname already has a team assignment";
    const char *vals[] = {json_string_value(h), json_string_value(t), c->changed_by, reason, c->cid};
    web_query(c, SQL_TEAM_ADD, 5, vals, on_team_added);
    json_decref(body);
}

void web_team(struct web_call *c)
{
    if (strcmp(web_method(c), "DELETE") == 0) {
        const char *host, *reason;
        json_t *body;
        if (!delete_params(c, &host, &reason, &body))
            return;
        const char *vals[] = {host, c->changed_by, reason, c->cid};
        web_query(c, SQL_TEAM_DEL, 4, vals, on_team_deleted);
        json_decref(body);
        return;
    }
    const char *host = web_path_param(c, "hostname");
    if (!path_text_ok(host, 255)) {
        web_reply_error(c, 404, "Hostname not found", NULL);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    json_t *t = json_object_get(body, "team_assignment");
    if (!text_field(t, 100)) {
        json_decref(body);
        web_reply_error(c, 400, "team_assignment is required: a non-empty string of at most 100 bytes",
                        "team_assignment");
        return;
    }
    const char *vals[] = {host, json_string_value(t), c->changed_by, reason, c->cid};
    web_query(c, SQL_TEAM_SET, 5, vals, on_team_set);
    json_decref(body);
}
