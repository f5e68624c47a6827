/* Rules CRUD (CONTRACT §7, reference §8.2 minus W31/W32/W35/W36): GET/POST /rules,
 * GET/PUT/DELETE /rules/{id}. Each write is one SQL statement whose CTEs change the row and insert
 * its config_audit_log row, so both commit or neither; then PUBLISH mutt:rules:updates. Updates are
 * optimistic: the row must still carry the updated_at that was validated, else 409. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "web_internal.h"

#define RULE_JSON(a)                                                                                              \
    "json_build_object('id'," a ".id,'match_string'," a ".match_string,'trap_oid'," a ".trap_oid,"               \
    "'syslog_severity'," a ".syslog_severity,'match_type'," a ".match_type,'priority'," a ".priority,"           \
    "'prod_handling'," a ".prod_handling,'dev_handling'," a ".dev_handling,'team_assignment'," a                 \
    ".team_assignment,'is_active'," a ".is_active,'created_at'," WEB_ISO(a ".created_at") ",'updated_at',"      \
    WEB_ISO(a ".updated_at") ")"
/* What audit rows keep of a rule: its id and the nine writable fields. */
#define RULE_AUDIT(a)                                                                                             \
    "jsonb_build_object('id'," a ".id,'match_string'," a ".match_string,'trap_oid'," a ".trap_oid,"              \
    "'syslog_severity'," a ".syslog_severity,'match_type'," a ".match_type,'priority'," a ".priority,"           \
    "'prod_handling'," a ".prod_handling,'dev_handling'," a ".dev_handling,'team_assignment'," a                 \
    ".team_assignment,'is_active'," a ".is_active)"

static const char SQL_LIST[] =
    "SELECT COALESCE(json_agg(" RULE_JSON("r") " ORDER BY r.priority, r.id), '[]')::text FROM alert_rules r";
static const char SQL_GET[] = "SELECT " RULE_JSON("r") "::text, r.updated_at::text FROM alert_rules r WHERE r.id = $1::int";
static const char SQL_CREATE[] =
    "WITH ins AS (INSERT INTO alert_rules (match_string, trap_oid, syslog_severity, match_type, priority, "
    "prod_handling, dev_handling, team_assignment, is_active) "
    "VALUES ($1, $2, $3::int, $4, $5::int, $6, $7, $8, $9::boolean) RETURNING *), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason, correlation_id) SELECT $10, 'CREATE', 'alert_rules', ins.id, NULL, " RULE_AUDIT("ins") ", $11, $12 "
    "FROM ins RETURNING id) "
    "SELECT ins.id::text, " RULE_JSON("ins") "::text FROM ins, aud";
static const char SQL_UPDATE[] =
    "WITH old AS (SELECT * FROM alert_rules WHERE id = $1::int AND updated_at = $2::timestamptz), "
    "upd AS (UPDATE alert_rules r SET match_string = $3, trap_oid = $4, syslog_severity = $5::int, "
    "match_type = $6, priority = $7::int, prod_handling = $8, dev_handling = $9, team_assignment = $10, "
    "is_active = $11::boolean FROM old WHERE r.id = old.id AND r.updated_at = $2::timestamptz RETURNING r.*), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason, correlation_id) SELECT $12, 'UPDATE', 'alert_rules', upd.id, " RULE_AUDIT("old") ", "
    RULE_AUDIT("upd") ", $13, $14 FROM old JOIN upd ON old.id = upd.id RETURNING id) "
    "SELECT " RULE_JSON("upd") "::text FROM upd, aud";
static const char SQL_DELETE[] =
    "WITH del AS (DELETE FROM alert_rules WHERE id = $1::int RETURNING *), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason, correlation_id) SELECT $2, 'DELETE', 'alert_rules', del.id, " RULE_AUDIT("del") ", NULL, $3, $4 "
    "FROM del RETURNING id) "
    "SELECT del.id::text FROM del, aud";

/* Per-request state of PUT. */
struct rule_op {
    json_t *body;
    char id[16];
    char *reason; /* copied out of body */
};

static void free_rule_op(void *p)
{
    struct rule_op *op = p;
    json_decref(op->body);
    free(op->reason);
    free(op);
}

/* Path id as a positive int32; 404 (no such rule can exist) otherwise. */
static bool path_id(struct web_call *c, char *out, size_t outlen)
{
    const char *s = web_path_param(c, "id");
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 10) {
        web_reply_error(c, 404, "Rule not found", NULL);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') {
            web_reply_error(c, 400, "id must be a positive integer", "id");
            return false;
        }
    long long v = strtoll(s, NULL, 10);
    if (v < 1 || v > 2147483647LL) {
        web_reply_error(c, 404, "Rule not found", NULL);
        return false;
    }
    snprintf(out, outlen, "%lld", v);
    return true;
}

/* The nine fields of a validated rule as text parameters (NULL for SQL NULL) into vals[0..9). */
static void rule_params(const json_t *rule, const char **vals, char bufs[9][32])
{
    for (int i = 0; i < 9; i++) {
        json_t *v = json_object_get(rule, mutt_api_rule_fields[i]);
        if (!v || json_is_null(v))
            vals[i] = NULL;
        else if (json_is_string(v))
            vals[i] = json_string_value(v);
        else if (json_is_integer(v)) {
            snprintf(bufs[i], 32, "%lld", (long long)json_integer_value(v));
            vals[i] = bufs[i];
        } else if (json_is_boolean(v))
            vals[i] = json_is_true(v) ? "true" : "false";
        else
            vals[i] = NULL;
    }
}

/* ---- GET /rules ---- */
static void on_list(struct web_call *c, PGresult *res)
{
    const char *rows = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "[]";
    size_t n = strlen(rows);
    char *body = malloc(n + 16);
    if (!body) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    int len = snprintf(body, n + 16, "{\"rules\":%s}", rows);
    web_reply_text(c, 200, body, (size_t)len);
    free(body);
}

/* ---- POST /rules ---- */
static void on_created(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_publish_rules(c, "alert_rules");
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(strtoll(PQgetvalue(res, 0, 0), NULL, 10)));
    json_object_set_new(o, "message", json_string("Rule created successfully"));
    json_object_set_new(o, "rule", json_loads(PQgetvalue(res, 0, 1), 0, NULL));
    web_reply_obj(c, 201, o);
}

static void create_rule(struct web_call *c)
{
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    json_t *rule = NULL;
    char err[300];
    const char *field = NULL;
    if (mutt_api_rule_validate(body, NULL, &rule, NULL, err, sizeof err, &field) != 0) {
        web_reply_error(c, 400, err, field);
        json_decref(body);
        return;
    }
    const char *vals[12];
    char bufs[9][32];
    rule_params(rule, vals, bufs);
    vals[9] = c->changed_by;
    vals[10] = reason;
    vals[11] = c->cid;
    /* the query copies its values: body and rule can go now */
    web_query(c, SQL_CREATE, 12, vals, on_created);
    json_decref(rule);
    json_decref(body);
}

void web_rules(struct web_call *c)
{
    if (strcmp(web_method(c), "POST") == 0)
        create_rule(c);
    else
        web_query(c, SQL_LIST, 0, NULL, on_list);
}

/* ---- GET /rules/{id} ---- */
static void on_got(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Rule not found", NULL);
        return;
    }
    const char *row = PQgetvalue(res, 0, 0);
    web_reply_text(c, 200, row, strlen(row));
}

/* ---- PUT /rules/{id} ---- */
static void on_updated(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        /* the row changed (or vanished) between our read and the write */
        web_reply_error(c, 409, "rule was changed or deleted concurrently; read it again", NULL);
        return;
    }
    web_publish_rules(c, "alert_rules");
    json_t *o = json_object();
    json_object_set_new(o, "message", json_string("Rule updated successfully"));
    json_object_set_new(o, "rule", json_loads(PQgetvalue(res, 0, 0), 0, NULL));
    web_reply_obj(c, 200, o);
}

static void on_read_for_update(struct web_call *c, PGresult *res)
{
    struct rule_op *op = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Rule not found", NULL);
        return;
    }
    json_t *base = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    json_t *rule = NULL;
    char err[300];
    const char *field = NULL;
    int rc = base ? mutt_api_rule_validate(op->body, base, &rule, NULL, err, sizeof err, &field) : MUTT_ENOMEM;
    json_decref(base);
    if (rc != 0) {
        web_reply_error(c, rc == MUTT_EINVAL ? 400 : 500, rc == MUTT_EINVAL ? err : "internal error", field);
        return;
    }
    const char *vals[14];
    char bufs[9][32];
    vals[0] = op->id;
    vals[1] = PQgetvalue(res, 0, 1);
    rule_params(rule, vals + 2, bufs);
    vals[11] = c->changed_by;
    vals[12] = op->reason;
    vals[13] = c->cid;
    web_query(c, SQL_UPDATE, 14, vals, on_updated);
    json_decref(rule);
}

static void update_rule(struct web_call *c, const char *id)
{
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    struct rule_op *op = calloc(1, sizeof *op);
    if (!op) {
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    op->body = body;
    op->reason = reason ? strdup(reason) : NULL;
    snprintf(op->id, sizeof op->id, "%s", id);
    c->data = op;
    c->free_data = free_rule_op;
    const char *vals[] = {op->id};
    web_query(c, SQL_GET, 1, vals, on_read_for_update);
}

/* ---- DELETE /rules/{id} ---- */
static void on_deleted(struct web_call *c, PGresult *res)
{
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "Rule not found", NULL);
        return;
    }
    web_publish_rules(c, "alert_rules");
    static const char ok[] = "{\"message\":\"Rule deleted successfully\"}";
    web_reply_text(c, 200, ok, sizeof ok - 1);
}

static void delete_rule(struct web_call *c, const char *id)
{
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

void web_rule(struct web_call *c)
{
    char id[16];
    if (!path_id(c, id, sizeof id))
        return;
    const char *m = web_method(c);
    if (strcmp(m, "PUT") == 0) {
        update_rule(c, id);
    } else if (strcmp(m, "DELETE") == 0) {
        delete_rule(c, id);
    } else {
        const char *vals[] = {id};
        web_query(c, SQL_GET, 1, vals, on_got);
    }
}
