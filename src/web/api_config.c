/* Dynamic configuration API (CONTRACT §2/§7, D19, D20, W41): GET /config, GET/PUT /config/{key},
 * POST /config/rollback. Values are checked against the dynconfig schema before anything is
 * written. A change cannot share a transaction with Redis, so the audit row is inserted first and
 * deleted again when the Redis write then fails: no change goes unaudited, and a failed change
 * leaves no audit row behind (short of a crash between the two). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/config.h"
#include "mutt/config_drift.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "web_internal.h"

static const char SQL_AUDIT[] =
    "INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, old_values, new_values, reason, "
    "correlation_id) VALUES ($1, $2, 'dynamic_config', $3, $4::jsonb, $5::jsonb, $6, $7) RETURNING id::text";
static const char SQL_AUDIT_UNDO[] = "DELETE FROM config_audit_log WHERE id = $1::bigint";
static const char SQL_AUDIT_ROW[] =
    "SELECT table_name, record_key, operation, old_values::text FROM config_audit_log WHERE id = $1::bigint";

struct cfg_op {
    char key[128];
    enum mutt_dyn_key id; /* the row of key */
    char value[MUTT_DYNCONFIG_MAX_VALUE + 1]; /* new value (canonical), unused when del */
    bool del;                                 /* the change deletes the Redis value */
    char old_value[MUTT_DYNCONFIG_MAX_VALUE + 1];
    bool old_in_redis;
    char audit_id[24];
    long long rolled_back;                    /* rollback: the audit id undone; 0 otherwise */
    char *reason;
};

static void free_cfg_op(void *p)
{
    struct cfg_op *op = p;
    free(op->reason);
    free(op);
}

static json_t *key_json(const struct mutt_dynconfig *d, const struct mutt_dynconfig_def *def)
{
    json_t *o = json_object();
    json_object_set_new(o, "value", json_string(mutt_dynconfig_str(d, def->id)));
    json_object_set_new(o, "source", json_string(mutt_dynconfig_source_name(mutt_dynconfig_source(d, def->id))));
    json_object_set_new(o, "type", json_string(mutt_dynconfig_type_name(def->type)));
    json_object_set_new(o, "default", json_string(def->default_value ? def->default_value : ""));
    bool ranged = (def->type == MUTT_DYN_INT || def->type == MUTT_DYN_DOUBLE) && def->min <= def->max;
    json_object_set_new(o, "min", ranged ? json_real(def->min) : json_null());
    json_object_set_new(o, "max", ranged ? json_real(def->max) : json_null());
    if (ranged && def->type == MUTT_DYN_INT) {
        json_object_set_new(o, "min", json_integer((json_int_t)def->min));
        json_object_set_new(o, "max", json_integer((json_int_t)def->max));
    }
    if (def->allowed) {
        json_t *a = json_array();
        for (const char *const *v = def->allowed; *v; v++)
            json_array_append_new(a, json_string(*v));
        json_object_set_new(o, "allowed", a);
    }
    json_object_set_new(o, "unit", json_string(def->unit ? def->unit : ""));
    json_object_set_new(o, "description", json_string(def->description ? def->description : ""));
    return o;
}

/* ---- GET /config ---- */
void web_config(struct web_call *c)
{
    struct mutt_dynconfig *d = c->ctx->dyn;
    if (!d) {
        web_reply_error(c, 503, "Dynamic configuration not available", NULL);
        return;
    }
    json_t *config = json_object(), *keys = json_object();
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        json_object_set_new(config, def->name, json_string(mutt_dynconfig_str(d, def->id)));
        json_object_set_new(keys, def->name, key_json(d, def));
    }
    json_t *o = json_object();
    json_object_set_new(o, "config", config);
    json_object_set_new(o, "keys", keys);
    web_reply_obj(c, 200, o);
}

/* ---- the write path shared by PUT and rollback ---- */
static void undo_audit_done(void *privdata, PGresult *res, int status)
{
    (void)res;
    if (status != 0)
        mutt_log_error("web", "could not remove audit row %s of a failed config change: %s", (char *)privdata,
                       mutt_strerror(status));
    free(privdata);
}

/* The Redis write failed after its audit row was inserted: take the row back (best effort). */
static void undo_audit(struct web_call *c, struct cfg_op *op)
{
    char *id = strdup(op->audit_id);
    const char *vals[] = {id};
    if (!id || !c->ctx->pg || mutt_pg_query(c->ctx->pg, SQL_AUDIT_UNDO, 1, vals, undo_audit_done, id) != 0) {
        mutt_log_kv(MUTT_LOG_ERROR, "web", c->cid, NULL, "could not remove audit row %s of a failed config change",
                    op->audit_id);
        free(id);
    }
}

static void on_dyn_written(void *privdata, int status)
{
    struct web_call *c = privdata;
    struct cfg_op *op = c->data;
    if (status != 0) {
        undo_audit(c, op);
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "config %s: Redis %s", op->key, mutt_strerror(status));
        web_reply_error(c, 503, "Redis unavailable", NULL);
        return;
    }
    mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "config %s changed by %s (audit %s)", op->key, c->changed_by,
                op->audit_id);
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(op->key));
    json_object_set_new(o, "old_value", op->old_in_redis ? json_string(op->old_value) : json_null());
    json_object_set_new(o, "new_value", json_string(mutt_dynconfig_str(c->ctx->dyn, op->id)));
    json_object_set_new(o, "source",
                        json_string(mutt_dynconfig_source_name(mutt_dynconfig_source(c->ctx->dyn, op->id))));
    json_object_set_new(o, "audit_id", json_integer(strtoll(op->audit_id, NULL, 10)));
    if (op->rolled_back)
        json_object_set_new(o, "rolled_back_audit_id", json_integer(op->rolled_back));
    web_reply_obj(c, 200, o);
}

static void on_audit_inserted(struct web_call *c, PGresult *res)
{
    struct cfg_op *op = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    snprintf(op->audit_id, sizeof op->audit_id, "%s", PQgetvalue(res, 0, 0));
    int rc = op->del ? mutt_dynconfig_delete(c->ctx->dyn, op->key, true, on_dyn_written, c)
                     : mutt_dynconfig_set(c->ctx->dyn, op->key, op->value, true, on_dyn_written, c);
    if (rc != 0) {
        undo_audit(c, op);
        web_reply_error(c, rc == MUTT_EINVAL || rc == MUTT_ENOTFOUND ? 400 : 503,
                        rc == MUTT_EINVAL || rc == MUTT_ENOTFOUND ? "invalid value" : "Redis unavailable", NULL);
    }
}

/* Inserts the audit row, then writes Redis. op is owned by the call from here on. */
static void apply_change(struct web_call *c, struct cfg_op *op, const char *operation, json_t *old_values,
                         json_t *new_values)
{
    c->data = op;
    c->free_data = free_cfg_op;
    char *oldv = old_values ? json_dumps(old_values, JSON_COMPACT) : NULL;
    char *newv = new_values ? json_dumps(new_values, JSON_COMPACT) : NULL;
    json_decref(old_values);
    json_decref(new_values);
    const char *vals[] = {c->changed_by, operation, op->key, oldv, newv, op->reason, c->cid};
    web_query(c, SQL_AUDIT, 7, vals, on_audit_inserted);
    free(oldv);
    free(newv);
}

static json_t *state_json(const char *key, const char *value, const char *source)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(key));
    json_object_set_new(o, "value", value ? json_string(value) : json_null());
    json_object_set_new(o, "source", json_string(source));
    return o;
}

static struct cfg_op *new_op(struct web_call *c, const struct mutt_dynconfig_def *def, const char *reason)
{
    struct cfg_op *op = calloc(1, sizeof *op);
    if (!op) {
        web_reply_error(c, 500, "internal error", NULL);
        return NULL;
    }
    snprintf(op->key, sizeof op->key, "%s", def->name);
    op->id = def->id;
    op->reason = reason ? strdup(reason) : NULL;
    const struct mutt_dynconfig *d = c->ctx->dyn;
    snprintf(op->old_value, sizeof op->old_value, "%s", mutt_dynconfig_str(d, def->id));
    op->old_in_redis = mutt_dynconfig_source(d, def->id) == MUTT_DYN_SRC_REDIS;
    return op;
}

/* ---- GET/PUT /config/{key} ---- */
static bool value_text(const json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        return (size_t)snprintf(buf, len, "%s", json_string_value(v)) < len;
    if (json_is_integer(v))
        return (size_t)snprintf(buf, len, "%lld", (long long)json_integer_value(v)) < len;
    if (json_is_real(v))
        return (size_t)snprintf(buf, len, "%.17g", json_real_value(v)) < len;
    if (json_is_boolean(v))
        return (size_t)snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false") < len;
    return false;
}

static void put_key(struct web_call *c, const struct mutt_dynconfig_def *def, const char *legacy)
{
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    char note[1200];
    if (legacy) {
        /* issue 17: the legacy name writes the canonical key; the log and the audit say so */
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "deprecated config key %s written by %s; stored as %s",
                    legacy, c->changed_by, def->name);
        snprintf(note, sizeof note, "deprecated key name %s (alias of %s)%s%s", legacy, def->name,
                 reason ? "; " : "", reason ? reason : "");
        reason = note;
    }
    json_t *v = json_object_get(body, "value");
    char text[MUTT_DYNCONFIG_MAX_VALUE + 1], norm[MUTT_DYNCONFIG_MAX_VALUE + 1], err[300];
    if (!v || !value_text(v, text, sizeof text)) {
        json_decref(body);
        web_reply_error(c, 400, "Missing 'value' in request body (a string, number or boolean)", "value");
        return;
    }
    if (mutt_dynconfig_normalize(def, text, norm, sizeof norm, err, sizeof err) != 0) {
        json_decref(body);
        web_reply_error(c, 400, err, "value");
        return;
    }
    if (!mutt_redis_connected(c->ctx->redis)) {
        json_decref(body);
        web_reply_error(c, 503, "Redis unavailable", NULL);
        return;
    }
    struct cfg_op *op = new_op(c, def, reason);
    json_decref(body);
    if (!op)
        return;
    snprintf(op->value, sizeof op->value, "%s", norm);
    const char *src = mutt_dynconfig_source_name(mutt_dynconfig_source(c->ctx->dyn, def->id));
    apply_change(c, op, op->old_in_redis ? "UPDATE" : "CREATE",
                 op->old_in_redis ? state_json(op->key, op->old_value, src) : NULL,
                 state_json(op->key, norm, "redis"));
}

void web_config_key(struct web_call *c)
{
    const char *key = web_path_param(c, "key");
    bool legacy = false;
    const struct mutt_dynconfig_def *def = key ? mutt_dynconfig_def_resolve(key, &legacy) : NULL;
    if (!c->ctx->dyn) {
        web_reply_error(c, 503, "Dynamic configuration not available", NULL);
        return;
    }
    if (strcmp(web_method(c), "PUT") == 0) {
        if (!def) {
            web_reply_error(c, 400, "unknown config key", "key"); /* W41 */
            return;
        }
        put_key(c, def, legacy ? key : NULL);
        return;
    }
    if (!def) {
        web_reply_error(c, 404, "unknown config key", "key");
        return;
    }
    json_t *o = key_json(c->ctx->dyn, def);
    json_object_set_new(o, "key", json_string(def->name));
    if (legacy)
        json_object_set_new(o, "deprecated_alias", json_string(key));
    web_reply_obj(c, 200, o);
}

/* ---- POST /config/rollback ---- */
struct rollback_req {
    char id[24];
    char *reason;
};

static void free_rollback(void *p)
{
    struct rollback_req *r = p;
    free(r->reason);
    free(r);
}

static void on_audit_row(struct web_call *c, PGresult *res)
{
    struct rollback_req *rb = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "audit entry not found", "audit_id");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "dynamic_config") != 0 || PQgetisnull(res, 0, 1)) {
        web_reply_error(c, 400, "only dynamic_config changes can be rolled back", "audit_id");
        return;
    }
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(PQgetvalue(res, 0, 1));
    if (!def) {
        web_reply_error(c, 400, "the key of that change is no longer known", "audit_id");
        return;
    }
    /* D19: the value before that change. It was a Redis value only when old_values says so; a
     * CREATE (no old values) or a change from a fallback is undone by deleting the key. */
    json_t *old = PQgetisnull(res, 0, 3) ? NULL : json_loads(PQgetvalue(res, 0, 3), 0, NULL);
    const char *old_src = json_string_value(json_object_get(old, "source"));
    const char *old_val = json_string_value(json_object_get(old, "value"));
    bool restore = old_src && old_val && strcmp(old_src, "redis") == 0;
    char norm[MUTT_DYNCONFIG_MAX_VALUE + 1], err[300];
    if (restore && mutt_dynconfig_normalize(def, old_val, norm, sizeof norm, err, sizeof err) != 0) {
        json_decref(old);
        web_reply_error(c, 400, "the old value no longer passes the schema", "audit_id");
        return;
    }
    json_decref(old);
    if (!mutt_redis_connected(c->ctx->redis)) {
        web_reply_error(c, 503, "Redis unavailable", NULL);
        return;
    }
    long long undone = strtoll(rb->id, NULL, 10);
    /* the call's data becomes the change op; the rollback request is freed here */
    struct cfg_op *op = new_op(c, def, rb->reason);
    if (!op)
        return;
    free_rollback(rb);
    c->data = NULL;
    op->rolled_back = undone;
    op->del = !restore;
    json_t *newv;
    if (restore) {
        snprintf(op->value, sizeof op->value, "%s", norm);
        newv = state_json(op->key, norm, "redis");
    } else {
        char fb[MUTT_DYNCONFIG_MAX_VALUE + 1];
        enum mutt_dyn_source src = MUTT_DYN_SRC_DEFAULT;
        mutt_dynconfig_fallback(def, c->ctx->cfg, fb, sizeof fb, &src, NULL, 0);
        newv = state_json(op->key, fb, mutt_dynconfig_source_name(src));
    }
    json_object_set_new(newv, "rolled_back_audit_id", json_integer(undone));
    const char *cur_src = mutt_dynconfig_source_name(mutt_dynconfig_source(c->ctx->dyn, def->id));
    apply_change(c, op, "ROLLBACK", state_json(op->key, op->old_value, cur_src), newv);
}

void web_config_rollback(struct web_call *c)
{
    if (!c->ctx->dyn) {
        web_reply_error(c, 503, "Dynamic configuration not available", NULL);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, false, &reason);
    if (!body)
        return;
    json_t *id = json_object_get(body, "audit_id");
    if (!json_is_integer(id) || json_integer_value(id) < 1) {
        json_decref(body);
        web_reply_error(c, 400, "audit_id must be a positive integer", "audit_id");
        return;
    }
    struct rollback_req *rb = calloc(1, sizeof *rb);
    if (!rb) {
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    snprintf(rb->id, sizeof rb->id, "%lld", (long long)json_integer_value(id));
    rb->reason = reason ? strdup(reason) : NULL;
    json_decref(body);
    c->data = rb;
    c->free_data = free_rollback;
    const char *vals[] = {rb->id};
    web_query(c, SQL_AUDIT_ROW, 1, vals, on_audit_row);
}

/* ---- GET /config/drift (issue 7): effective values against the approved baseline ---- */
static json_t *hash_reply_object(const redisReply *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new(o, r->element[i]->str,
                                json_stringn(r->element[i + 1]->str, r->element[i + 1]->len));
    return o;
}

static void on_baseline(struct web_call *c, redisReply *reply)
{
    /* one EVAL returns {baseline hash, meta hash} so both sides are read at one instant */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    json_t *baseline = hash_reply_object(reply->element[0]);
    json_t *meta = hash_reply_object(reply->element[1]);
    if (!baseline || !meta || json_object_size(meta) == 0) {
        json_decref(baseline);
        json_decref(meta);
        web_reply_error(c, 404, "no approved baseline saved; run `mutt config baseline save`", NULL);
        return;
    }
    json_t *current = json_object();
    for (size_t i = 0; current && i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        json_object_set_new(current, def->name, json_string(mutt_dynconfig_str(c->ctx->dyn, def->id)));
    }
    json_t *o = current ? mutt_config_drift(current, baseline) : NULL;
    json_decref(current);
    json_decref(baseline);
    if (!o) {
        json_decref(meta);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    json_object_set_new(o, "baseline", meta);
    web_reply_obj(c, 200, o);
}

void web_config_drift(struct web_call *c)
{
    if (!c->ctx->dyn) {
        web_reply_error(c, 503, "Dynamic configuration not available", NULL);
        return;
    }
    static const char script[] = "return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}";
    const char *argv[] = {"EVAL", script, "2", MUTT_DRIFT_BASELINE_KEY, MUTT_DRIFT_BASELINE_META_KEY};
    size_t lens[] = {4, sizeof(script) - 1, 1, strlen(MUTT_DRIFT_BASELINE_KEY), strlen(MUTT_DRIFT_BASELINE_META_KEY)};
    web_redis(c, 5, argv, lens, on_baseline);
}
