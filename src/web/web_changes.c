/* Named operators, the two-person rule and API usage (issue 17; D43, D45, D46, D47, D62):
 *   users    WEBUI_USERS_FILE (read once at start) and the WEBUI_USERS secret (Vault or env,
 *            re-parsed when a refresh changes it) map a presented key to a name and a role.
 *   changes  a write covered by APPROVAL_REQUIRED files a config_change_requests row and answers
 *            202; POST /changes/{id}/approve by another approver/admin applies the stored request
 *            through the same handler the original write would have used (so validation, audit
 *            rows and PUBLISH are the ones of a direct write); /reject closes it; X-Emergency-Reason
 *            applies at once (audited EMERGENCY) and lists the change for a decision afterwards;
 *            a timer expires undecided requests after APPROVAL_TTL_HOURS (audited EXPIRE).
 *   usage    mutt_api_requests_total{version,endpoint,status} and, per version, route and user, a
 *            count and last-seen time in Redis (mutt:api:usage, mutt:api:usage:last) for
 *            GET /version/usage across pods.
 * The justification, impact and rollback plan of a request come from the headers
 * X-Change-Justification (else the body's "reason"), X-Change-Impact, X-Change-Rollback-Plan:
 * the body stays exactly the request to apply. Loop thread only. */
#define _GNU_SOURCE
#include "web_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "mutt/approval.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/http.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "mutt/users.h"

#define USAGE_KEY "mutt:api:usage"
#define USAGE_LAST_KEY "mutt:api:usage:last"

static struct {
    struct mutt_ctx *ctx;
    struct mutt_users file_users;   /* WEBUI_USERS_FILE */
    struct mutt_users secret_users; /* WEBUI_USERS, parsed from secret_seen */
    char *secret_seen;              /* the WEBUI_USERS value secret_users came from */
    struct mutt_approval_policy policy;
    double ttl_s;                   /* APPROVAL_TTL_HOURS in seconds */
    uv_timer_t timer;
    bool timer_init;
    bool expiry_inflight;
} g;

/* ------------------------------------------------------------------------------------------ */
/* users                                                                                       */

/* A Vault refresh may rotate WEBUI_USERS: parse again when the value changed; a bad new value
 * is logged and the last good table kept. */
static void refresh_secret_users(void)
{
    const char *v = mutt_config_str(g.ctx->cfg, MUTT_CFG_WEBUI_USERS);
    if (!v)
        v = "";
    if (g.secret_seen && strcmp(g.secret_seen, v) == 0)
        return;
    char *copy = strdup(v);
    if (!copy)
        return;
    free(g.secret_seen);
    g.secret_seen = copy;
    struct mutt_users *u = malloc(sizeof *u);
    char why[200];
    if (u && mutt_users_parse(v, strlen(v), u, why, sizeof why) == 0)
        g.secret_users = *u;
    else if (u)
        mutt_log_error("web", "WEBUI_USERS: %s; keeping the previous users", why);
    free(u);
}

bool web_changes_user(const char *key, size_t klen, enum mutt_api_role *role, char *changed_by, size_t cblen)
{
    if (!g.ctx)
        return false;
    refresh_secret_users();
    const struct mutt_user *u = mutt_users_find(&g.file_users, key, klen);
    const struct mutt_user *s = mutt_users_find(&g.secret_users, key, klen);
    if (!u)
        u = s;
    if (!u)
        return false;
    *role = u->role == MUTT_USER_ADMIN ? MUTT_API_ADMIN
          : u->role == MUTT_USER_APPROVER ? MUTT_API_APPROVER : MUTT_API_READONLY;
    snprintf(changed_by, cblen, "webui_api:%s", u->name);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* usage (D45, D62)                                                                            */

static void endpoint_label(char *buf, size_t len, const char *path, bool v1)
{
    if (path)
        snprintf(buf, len, "%s%s", v1 ? "/api/v1" : "/api/v2", path);
    else
        snprintf(buf, len, "unmatched");
}

void web_count_request(struct web *w, const char *version, const char *endpoint, int status, bool v1_prefix,
                       const char *user)
{
    char ep[160], st[8];
    endpoint_label(ep, sizeof ep, endpoint, v1_prefix);
    snprintf(st, sizeof st, "%d", status ? status : 499); /* 499: the client left unanswered */
    const char *labels[] = {version ? version : MUTT_API_CURRENT_VERSION, ep, st};
    if (w->api_requests)
        mutt_counter_inc(mutt_counter_labels(w->api_requests, labels));
    if (!g.ctx || !endpoint || !mutt_redis_connected(g.ctx->redis))
        return;
    const char *who = user && strncmp(user, "webui_api:", 10) == 0 ? user + 10 : user && *user ? user : "anonymous";
    char field[320], now[40];
    snprintf(field, sizeof field, "%s|%s|%s", labels[0], ep, who);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(now + n, sizeof now - n, ".%03ldZ", ts.tv_nsec / 1000000);
    /* fire and forget: usage is a statistic, a lost increment is not worth a client's error */
    const char *a1[] = {"HINCRBY", USAGE_KEY, field, "1"};
    size_t l1[] = {7, strlen(USAGE_KEY), strlen(field), 1};
    const char *a2[] = {"HSET", USAGE_LAST_KEY, field, now};
    size_t l2[] = {4, strlen(USAGE_LAST_KEY), strlen(field), strlen(now)};
    struct mutt_redis_conn *conn = mutt_redis_cmd(g.ctx->redis);
    if (mutt_redis_command(conn, NULL, NULL, 4, a1, l1) == 0)
        mutt_redis_command(conn, NULL, NULL, 4, a2, l2);
}

static void on_usage(struct web_call *c, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_ARRAY ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    const redisReply *cnt = reply->element[0], *last = reply->element[1];
    json_t *lastmap = json_object();
    for (size_t i = 0; i + 1 < last->elements; i += 2)
        if (last->element[i]->type == REDIS_REPLY_STRING && last->element[i + 1]->type == REDIS_REPLY_STRING)
            json_object_set_new(lastmap, last->element[i]->str, json_string(last->element[i + 1]->str));
    json_t *rows = json_array(), *by_version = json_object();
    for (size_t i = 0; i + 1 < cnt->elements; i += 2) {
        if (cnt->element[i]->type != REDIS_REPLY_STRING || cnt->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        const char *field = cnt->element[i]->str;
        const char *p1 = strchr(field, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
        if (!p2)
            continue;
        long long n = strtoll(cnt->element[i + 1]->str, NULL, 10);
        json_t *row = json_object();
        json_object_set_new(row, "version", json_stringn(field, (size_t)(p1 - field)));
        json_object_set_new(row, "endpoint", json_stringn(p1 + 1, (size_t)(p2 - p1 - 1)));
        json_object_set_new(row, "user", json_string(p2 + 1));
        json_object_set_new(row, "count", json_integer(n));
        json_t *ls = json_object_get(lastmap, field);
        json_object_set(row, "last_seen", ls ? ls : json_null());
        char ver[16];
        snprintf(ver, sizeof ver, "%.*s", (int)(p1 - field < 15 ? p1 - field : 15), field);
        json_t *v = json_object_get(by_version, ver);
        if (!v) {
            v = json_object();
            json_object_set_new(v, "requests", json_integer(0));
            json_object_set_new(v, "last_seen", json_null());
            json_object_set_new(by_version, ver, v);
        }
        json_object_set_new(v, "requests", json_integer(json_integer_value(json_object_get(v, "requests")) + n));
        const char *prev = json_string_value(json_object_get(v, "last_seen"));
        if (ls && (!prev || strcmp(json_string_value(ls), prev) > 0))
            json_object_set(v, "last_seen", ls);
        json_array_append_new(rows, row);
    }
    json_decref(lastmap);
    json_t *versions = json_object();
    for (const struct mutt_api_version *v = mutt_api_versions; v->version; v++) {
        json_t *o = json_object();
        json_object_set_new(o, "status", json_string(v->status));
        json_object_set_new(o, "sunset", v->sunset ? json_string(v->sunset) : json_null());
        json_t *u = json_object_get(by_version, v->version);
        json_object_set_new(o, "requests", json_integer(u ? json_integer_value(json_object_get(u, "requests")) : 0));
        json_object_set(o, "last_seen", u ? json_object_get(u, "last_seen") : json_null());
        json_object_set_new(versions, v->version, o);
    }
    json_decref(by_version);
    json_t *o = json_object();
    json_object_set_new(o, "versions", versions);
    json_object_set_new(o, "usage", rows);
    web_reply_obj(c, 200, o);
}

void web_version_usage(struct web_call *c)
{
    static const char script[] = "return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}";
    const char *argv[] = {"EVAL", script, "2", USAGE_KEY, USAGE_LAST_KEY};
    size_t lens[] = {4, sizeof(script) - 1, 1, strlen(USAGE_KEY), strlen(USAGE_LAST_KEY)};
    web_redis(c, 5, argv, lens, on_usage);
}

/* ------------------------------------------------------------------------------------------ */
/* the change being applied                                                                    */

struct web_change {
    long long id;
    char method[8];
    json_t *body;      /* NULL when the request had none */
    json_t *params;    /* {name: value} of the route's {name} segments */
    char approver[112];
    const struct mutt_api_endpoint *decide_ep; /* POST /changes/{id}/{action}: the route answered */
};

void web_change_free(struct web_change *ch)
{
    if (!ch)
        return;
    json_decref(ch->body);
    json_decref(ch->params);
    free(ch);
}

const char *web_change_method(const struct web_change *ch)
{
    return ch->method;
}

json_t *web_change_body(const struct web_change *ch)
{
    return json_is_object(ch->body) ? json_deep_copy(ch->body) : NULL;
}

const char *web_change_param(const struct web_change *ch, const char *name)
{
    return json_string_value(json_object_get(ch->params, name));
}

static const char SQL_RESULT[] =
    "UPDATE config_change_requests SET result = $2::jsonb, status = CASE WHEN $3 = 'ok' THEN status ELSE 'failed' END "
    "WHERE id = $1::bigint";

static void on_result_saved(void *privdata, PGresult *res, int status)
{
    (void)res;
    if (status != 0)
        mutt_log_error("web", "could not store the result of change request %s: %s", (char *)privdata,
                       mutt_strerror(status));
    free(privdata);
}

void web_change_answer(struct web_call *c, int status, const char *json, size_t len)
{
    struct web_change *ch = c->change;
    json_t *result = json_loadb(json, len, 0, NULL);
    bool ok = status >= 200 && status < 300;
    json_t *row = json_object();
    json_object_set_new(row, "status", json_integer(status));
    json_object_set(row, "body", result ? result : json_null());
    char *rowtext = json_dumps(row, JSON_COMPACT);
    json_decref(row);
    char *id = malloc(24);
    if (id && rowtext && g.ctx->pg) {
        snprintf(id, 24, "%lld", ch->id);
        const char *vals[] = {id, rowtext, ok ? "ok" : "failed"};
        if (mutt_pg_query(g.ctx->pg, SQL_RESULT, 3, vals, on_result_saved, id) == 0)
            id = NULL;
    }
    free(id);
    free(rowtext);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(ch->id));
    json_object_set_new(o, "status", json_string(ok ? "approved" : "failed"));
    json_object_set_new(o, "decided_by", json_string(ch->approver));
    json_object_set_new(o, "result_status", json_integer(status));
    json_object_set_new(o, "result", result ? result : json_null());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    /* an approval that could not be applied keeps the handler's status (400/404/409/503) */
    int answer = ok ? 200 : status;
    if (s && mutt_http_reply_json(c->req, answer, s, strlen(s)) == 0)
        c->status = answer;
    free(s);
    /* the books (metrics, usage) name the request that was made: the approval, by the approver */
    snprintf(c->changed_by, sizeof c->changed_by, "%s", ch->approver);
    c->ep = ch->decide_ep;
}

/* ------------------------------------------------------------------------------------------ */
/* filing (the dispatcher's intercept)                                                         */

static enum mutt_approval_scope scope_of(struct web_call *c, const char **key)
{
    const char *m = web_method(c);
    bool post = strcmp(m, "POST") == 0, put = strcmp(m, "PUT") == 0, del = strcmp(m, "DELETE") == 0;
    *key = NULL;
    switch (c->ep->id) {
    case MUTT_API_EP_RULES: return post ? MUTT_APPROVAL_RULES : 0;
    case MUTT_API_EP_RULE: return put || del ? MUTT_APPROVAL_RULES : 0;
    case MUTT_API_EP_DEV_HOSTS: return post ? MUTT_APPROVAL_DEV_HOSTS : 0;
    case MUTT_API_EP_DEV_HOST: return del ? MUTT_APPROVAL_DEV_HOSTS : 0;
    case MUTT_API_EP_TEAMS: return post ? MUTT_APPROVAL_TEAMS : 0;
    case MUTT_API_EP_TEAM: return put || del ? MUTT_APPROVAL_TEAMS : 0;
    case MUTT_API_EP_CONFIG_KEY:
        *key = web_path_param(c, "key");
        return put && *key ? MUTT_APPROVAL_CONFIG : 0;
    case MUTT_API_EP_CONFIG_ROLLBACK: return post ? MUTT_APPROVAL_CONFIG : 0;
    default: return 0;
    }
}

/* A header's value as a JSON string (NULL when absent or longer than 1000 bytes). */
static const char *header_text(struct web_call *c, const char *name, char *buf, size_t buflen)
{
    size_t len = 0;
    const char *v = mutt_http_req_header(c->req, name, &len, NULL);
    if (!v || len == 0 || len >= buflen || memchr(v, '\0', len))
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

static const char SQL_FILE[] =
    "WITH r AS (INSERT INTO config_change_requests (requested_by, scope, change, justification, impact, "
    "rollback_plan, emergency_reason, status) VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7::text, "
    "CASE WHEN $7::text IS NULL THEN 'pending' ELSE 'emergency' END) RETURNING *), "
    "a AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, new_values, reason, "
    "correlation_id) SELECT $1, 'EMERGENCY', 'config_change_requests', r.id::int, "
    "jsonb_build_object('scope', r.scope, 'change', r.change, 'status', r.status), $7, $9 FROM r "
    "WHERE $7::text IS NOT NULL) "
    "SELECT id::text, status, " WEB_ISO("created_at") ", " WEB_ISO("created_at + make_interval(secs => $8::float8)")
    " FROM r";

struct filing {
    char scope[16];
    json_t *change;
};

static void free_filing(void *p)
{
    struct filing *f = p;
    json_decref(f->change);
    free(f);
}

static void on_filed(struct web_call *c, PGresult *res)
{
    struct filing *f = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    const char *id = PQgetvalue(res, 0, 0);
    if (strcmp(PQgetvalue(res, 0, 1), "emergency") == 0) {
        /* applied at once; the request stays listed for a decision after the fact */
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "EMERGENCY change %s by %s applied without approval", id,
                    c->changed_by);
        mutt_http_add_header(c->req, "x-change-request-id", id);
        free_filing(f);
        c->data = NULL;
        c->free_data = NULL;
        web_dispatch(c);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(strtoll(id, NULL, 10)));
    json_object_set_new(o, "status", json_string("pending"));
    json_object_set_new(o, "scope", json_string(f->scope));
    json_object_set_new(o, "requested_by", json_string(c->changed_by));
    json_object_set_new(o, "created_at", json_string(PQgetvalue(res, 0, 2)));
    json_object_set_new(o, "expires_at", json_string(PQgetvalue(res, 0, 3)));
    json_object_set(o, "change", f->change);
    json_object_set_new(o, "message", json_string("approval required: another approver or admin must POST "
                                                  "/api/v2/changes/{id}/approve"));
    mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "change request %s filed by %s (%s)", id, c->changed_by, f->scope);
    web_reply_obj(c, 202, o);
}

/* The route's {name} segments with this request's values. */
static json_t *path_params(struct web_call *c)
{
    json_t *o = json_object();
    const char *p = c->ep->path;
    while (o && (p = strchr(p, '{'))) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(e - p - 1 < 63 ? e - p - 1 : 63), p + 1);
        const char *v = web_path_param(c, name);
        if (v)
            json_object_set_new(o, name, json_string(v));
        p = e + 1;
    }
    return o;
}

bool web_changes_intercept(struct web_call *c)
{
    if (!g.ctx || c->change || !mutt_approval_enabled(&g.policy))
        return false;
    const char *key = NULL;
    enum mutt_approval_scope scope = scope_of(c, &key);
    if (!scope || !mutt_approval_covers(&g.policy, scope, key))
        return false;
    size_t blen = 0;
    const char *b = mutt_http_req_body(c->req, &blen);
    json_t *body = NULL;
    if (b && blen > 0) {
        body = json_loadb(b, blen, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(body)) {
            json_decref(body);
            return false; /* the handler answers 400; nothing can be applied */
        }
    }
    char just[1001], impact[1001], plan[1001], emerg[1001];
    const char *j = header_text(c, "x-change-justification", just, sizeof just);
    if (!j)
        j = json_string_value(json_object_get(body, "reason"));
    const char *im = header_text(c, "x-change-impact", impact, sizeof impact);
    const char *rp = header_text(c, "x-change-rollback-plan", plan, sizeof plan);
    const char *em = header_text(c, "x-emergency-reason", emerg, sizeof emerg);
    struct filing *f = calloc(1, sizeof *f);
    json_t *change = json_object();
    if (!f || !change) {
        free(f);
        json_decref(change);
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return true;
    }
    snprintf(f->scope, sizeof f->scope, "%s", mutt_approval_scope_name(scope));
    json_object_set_new(change, "method", json_string(web_method(c)));
    json_object_set_new(change, "path", json_string(c->ep->path));
    json_object_set_new(change, "params", path_params(c));
    json_object_set_new(change, "body", body ? body : json_null());
    f->change = change;
    c->data = f;
    c->free_data = free_filing;
    char *text = json_dumps(change, JSON_COMPACT);
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%.3f", g.ttl_s);
    const char *vals[] = {c->changed_by, f->scope, text, j, im, rp, em, ttl, c->cid};
    if (!text)
        web_reply_error(c, 500, "internal error", NULL);
    else
        web_query(c, SQL_FILE, 9, vals, on_filed);
    free(text);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* GET /changes                                                                                */

static const char SQL_LIST[] =
    "SELECT id, requested_by, scope, change::text, justification, impact, rollback_plan, emergency_reason, status, "
    WEB_ISO("created_at") ", " WEB_ISO("created_at + make_interval(secs => $2::float8)") ", "
    WEB_ISO("decided_at") ", decided_by, result::text FROM config_change_requests "
    "WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $3::int";

static json_t *text_or_null(PGresult *res, int r, int col)
{
    return PQgetisnull(res, r, col) ? json_null() : json_string(PQgetvalue(res, r, col));
}

static void on_list(struct web_call *c, PGresult *res)
{
    json_t *arr = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(strtoll(PQgetvalue(res, r, 0), NULL, 10)));
        json_object_set_new(o, "requested_by", text_or_null(res, r, 1));
        json_object_set_new(o, "scope", text_or_null(res, r, 2));
        json_t *ch = json_loads(PQgetvalue(res, r, 3), 0, NULL);
        json_object_set_new(o, "change", ch ? ch : json_null());
        json_object_set_new(o, "justification", text_or_null(res, r, 4));
        json_object_set_new(o, "impact", text_or_null(res, r, 5));
        json_object_set_new(o, "rollback_plan", text_or_null(res, r, 6));
        json_object_set_new(o, "emergency_reason", text_or_null(res, r, 7));
        json_object_set_new(o, "status", text_or_null(res, r, 8));
        json_object_set_new(o, "created_at", text_or_null(res, r, 9));
        json_object_set_new(o, "expires_at", text_or_null(res, r, 10));
        json_object_set_new(o, "decided_at", text_or_null(res, r, 11));
        json_object_set_new(o, "decided_by", text_or_null(res, r, 12));
        json_t *result = PQgetisnull(res, r, 13) ? NULL : json_loads(PQgetvalue(res, r, 13), 0, NULL);
        json_object_set_new(o, "result", result ? result : json_null());
        json_array_append_new(arr, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "changes", arr);
    json_object_set_new(o, "approval_required", json_boolean(mutt_approval_enabled(&g.policy)));
    web_reply_obj(c, 200, o);
}

void web_changes_list(struct web_call *c)
{
    static const char *const statuses[] = {"pending", "approved", "rejected", "expired", "failed", "emergency", NULL};
    const char *status = web_query_param(c, "status");
    if (status && !*status)
        status = NULL;
    bool known = !status;
    for (int i = 0; status && statuses[i]; i++)
        known = known || strcmp(status, statuses[i]) == 0;
    if (!known) {
        web_reply_error(c, 400, "status must be pending, approved, rejected, expired, failed or emergency", "status");
        return;
    }
    long page = 1, limit = 0;
    const char *bad = NULL;
    if (mutt_api_parse_paging(NULL, web_query_param(c, "limit"), &page, &limit, &bad) != 0) {
        web_reply_error(c, 400, "limit must be a positive integer", "limit");
        return;
    }
    char ttl[32], lim[16];
    snprintf(ttl, sizeof ttl, "%.3f", g.ttl_s);
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *vals[] = {status, ttl, lim};
    web_query(c, SQL_LIST, 3, vals, on_list);
}

/* ------------------------------------------------------------------------------------------ */
/* POST /changes/{id}/approve|reject                                                           */

static const char SQL_ROW[] =
    "SELECT requested_by, status, change::text, created_at <= now() - make_interval(secs => $2::float8) "
    "FROM config_change_requests WHERE id = $1::bigint";

/* The decision and its audit row in one statement; no row when another decision came first. */
static const char SQL_DECIDE[] =
    "WITH d AS (UPDATE config_change_requests SET status = $3, decided_at = now(), decided_by = $2 "
    "WHERE id = $1::bigint AND status = $4 RETURNING id, requested_by, scope, change, status) "
    "INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, reason, "
    "correlation_id) SELECT $2, $5, 'config_change_requests', d.id::int, "
    "jsonb_build_object('status', $4::text, 'requested_by', d.requested_by), "
    "jsonb_build_object('status', d.status, 'scope', d.scope, 'change', d.change), $6, $7 FROM d RETURNING id";

struct decide {
    char id[24];
    bool approve;
    char *reason;
    char was[16];       /* status before: pending | emergency */
    char requester[112];
    json_t *change;
};

static void free_decide(void *p)
{
    struct decide *d = p;
    free(d->reason);
    json_decref(d->change);
    free(d);
}

static void apply_change(struct web_call *c, struct decide *d)
{
    const char *kind = json_string_value(json_object_get(d->change, "kind"));
    if (kind && strcmp(kind, "restore") == 0) {
        /* a restore is applied by the CLI that filed it, once approved (it holds the archive) */
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(strtoll(d->id, NULL, 10)));
        json_object_set_new(o, "status", json_string("approved"));
        json_object_set_new(o, "decided_by", json_string(c->changed_by));
        char msg[160];
        snprintf(msg, sizeof msg, "apply with: mutt restore FILE --change %s", d->id);
        json_object_set_new(o, "message", json_string(msg));
        web_reply_obj(c, 200, o);
        return;
    }
    const char *path = json_string_value(json_object_get(d->change, "path"));
    const char *method = json_string_value(json_object_get(d->change, "method"));
    const struct mutt_api_endpoint *ep = NULL;
    for (const struct mutt_api_endpoint *e = mutt_api_endpoints; path && e->path; e++)
        if (strcmp(e->path, path) == 0 && !(e->flags & MUTT_API_EXTERNAL))
            ep = e;
    struct web_change *ch = calloc(1, sizeof *ch);
    if (!ep || !method || !ch) {
        free(ch);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    ch->id = strtoll(d->id, NULL, 10);
    snprintf(ch->method, sizeof ch->method, "%s", method);
    json_t *body = json_object_get(d->change, "body");
    ch->body = json_is_object(body) ? json_incref(body) : NULL;
    json_t *params = json_object_get(d->change, "params");
    ch->params = json_is_object(params) ? json_incref(params) : json_object();
    snprintf(ch->approver, sizeof ch->approver, "%s", c->changed_by);
    ch->decide_ep = c->ep;
    /* The change's own audit row names who asked for it; the APPROVE row names who approved. */
    snprintf(c->changed_by, sizeof c->changed_by, "%s", d->requester);
    free_decide(d);
    c->data = NULL;
    c->free_data = NULL;
    c->ep = ep;
    c->change = ch;
    c->outlives_request = true;
    web_dispatch(c);
}

static void on_decided(struct web_call *c, PGresult *res)
{
    struct decide *d = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 409, "change request is no longer pending", NULL);
        return;
    }
    mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "change request %s %s by %s", d->id,
                d->approve ? "approved" : "rejected", c->changed_by);
    if (d->approve && strcmp(d->was, "pending") == 0) {
        apply_change(c, d);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(strtoll(d->id, NULL, 10)));
    json_object_set_new(o, "status", json_string(d->approve ? "approved" : "rejected"));
    json_object_set_new(o, "decided_by", json_string(c->changed_by));
    if (strcmp(d->was, "emergency") == 0)
        json_object_set_new(o, "message", json_string(d->approve ? "emergency change approved after the fact"
                                                                 : "emergency change rejected after the fact; it "
                                                                   "stays applied until reverted"));
    web_reply_obj(c, 200, o);
}

static void on_row(struct web_call *c, PGresult *res)
{
    struct decide *d = c->data;
    if (PQntuples(res) != 1) {
        web_reply_error(c, 404, "change request not found", "id");
        return;
    }
    snprintf(d->requester, sizeof d->requester, "%s", PQgetvalue(res, 0, 0));
    if (strcmp(d->requester, c->changed_by) == 0) {
        web_reply_error(c, 403, "a change request cannot be decided by its requester", NULL);
        return;
    }
    snprintf(d->was, sizeof d->was, "%s", PQgetvalue(res, 0, 1));
    bool stale = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    if ((strcmp(d->was, "pending") != 0 && strcmp(d->was, "emergency") != 0) ||
        (stale && strcmp(d->was, "pending") == 0)) {
        web_reply_error(c, 409, stale && strcmp(d->was, "pending") == 0 ? "change request has expired"
                                                                          : "change request is not pending", NULL);
        return;
    }
    d->change = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (!d->change) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    const char *vals[] = {d->id, c->changed_by, d->approve ? "approved" : "rejected", d->was,
                          d->approve ? "APPROVE" : "REJECT", d->reason, c->cid};
    web_query(c, SQL_DECIDE, 7, vals, on_decided);
}

void web_change_decide(struct web_call *c)
{
    const char *id = web_path_param(c, "id");
    const char *action = web_path_param(c, "action");
    bool approve = action && strcmp(action, "approve") == 0;
    if (!action || (!approve && strcmp(action, "reject") != 0)) {
        web_reply_error(c, 404, "not found", NULL);
        return;
    }
    char *end = NULL;
    long long n = id ? strtoll(id, &end, 10) : 0;
    if (!id || !*id || *end || n < 1) {
        web_reply_error(c, 400, "id must be a positive integer", "id");
        return;
    }
    if (c->role != MUTT_API_ADMIN && c->role != MUTT_API_APPROVER) {
        web_reply_error(c, 403, "deciding a change request needs the approver or admin role", NULL);
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, true, &reason);
    if (!body)
        return;
    struct decide *d = calloc(1, sizeof *d);
    if (!d) {
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    snprintf(d->id, sizeof d->id, "%lld", n);
    d->approve = approve;
    d->reason = reason ? strdup(reason) : NULL;
    json_decref(body);
    c->data = d;
    c->free_data = free_decide;
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%.3f", g.ttl_s);
    const char *vals[] = {d->id, ttl};
    web_query(c, SQL_ROW, 2, vals, on_row);
}

/* ------------------------------------------------------------------------------------------ */
/* expiry                                                                                      */

static const char SQL_EXPIRE[] =
    "WITH e AS (UPDATE config_change_requests SET status = 'expired', decided_at = now(), decided_by = 'system:expiry' "
    "WHERE status = 'pending' AND created_at <= now() - make_interval(secs => $1::float8) "
    "RETURNING id, requested_by, scope, change) "
    "INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, reason) "
    "SELECT 'system:expiry', 'EXPIRE', 'config_change_requests', e.id::int, "
    "jsonb_build_object('status', 'pending', 'requested_by', e.requested_by), "
    "jsonb_build_object('status', 'expired', 'scope', e.scope, 'change', e.change), "
    "'not decided within APPROVAL_TTL_HOURS' FROM e RETURNING record_id";

static void on_expired(void *privdata, PGresult *res, int status)
{
    (void)privdata;
    g.expiry_inflight = false;
    if (status == 0 && res && PQntuples(res) > 0)
        mutt_log_info("web", "%d change request(s) expired undecided", PQntuples(res));
    else if (status != 0 && status != MUTT_ECANCELED)
        mutt_log_debug("web", "change request expiry: %s", mutt_strerror(status));
}

static void on_expiry_timer(uv_timer_t *t)
{
    (void)t;
    if (g.expiry_inflight || !g.ctx || !g.ctx->pg || !mutt_pg_connected(g.ctx->pg))
        return;
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%.3f", g.ttl_s);
    const char *vals[] = {ttl};
    if (mutt_pg_query(g.ctx->pg, SQL_EXPIRE, 1, vals, on_expired, NULL) == 0)
        g.expiry_inflight = true;
}

/* ------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                   */

int web_changes_start(struct mutt_ctx *ctx, char *err, size_t errlen)
{
    memset(&g.file_users, 0, sizeof g.file_users);
    memset(&g.secret_users, 0, sizeof g.secret_users);
    free(g.secret_seen);
    g.secret_seen = NULL;
    const char *path = mutt_config_str(ctx->cfg, MUTT_CFG_WEBUI_USERS_FILE);
    if (path && *path && mutt_users_read_file(path, &g.file_users, err, errlen) != 0)
        return MUTT_EINVAL;
    if (mutt_approval_parse(mutt_config_str(ctx->cfg, MUTT_CFG_APPROVAL_REQUIRED), &g.policy, err, errlen) != 0)
        return MUTT_EINVAL;
    g.ttl_s = mutt_config_double(ctx->cfg, MUTT_CFG_APPROVAL_TTL_HOURS) * 3600.0;
    g.ctx = ctx;
    refresh_secret_users();
    if (g.file_users.n || g.secret_users.n)
        mutt_log_info("web", "%zu named API user(s)", g.file_users.n + g.secret_users.n);
    if (!ctx->pg)
        return 0;
    if (mutt_approval_enabled(&g.policy))
        mutt_log_info("web", "APPROVAL_REQUIRED=%s: covered writes file change requests (expire after %.4g h)",
                      mutt_config_str(ctx->cfg, MUTT_CFG_APPROVAL_REQUIRED), g.ttl_s / 3600.0);
    /* A few checks per TTL (a tiny test TTL expires within a second or two), at most a minute
     * apart. Runs on every web pod; the UPDATE's row locks expire each request once. */
    double every_ms = g.ttl_s * 1000.0 / 4.0;
    uint64_t ms = every_ms < 500 ? 500 : every_ms > 60000 ? 60000 : (uint64_t)every_ms;
    if (uv_timer_init(ctx->loop, &g.timer) != 0)
        return MUTT_ENOMEM;
    g.timer_init = true;
    uv_timer_start(&g.timer, on_expiry_timer, ms, ms);
    uv_unref((uv_handle_t *)&g.timer);
    return 0;
}

void web_changes_stop(void)
{
    if (g.timer_init) {
        uv_timer_stop(&g.timer);
        uv_close((uv_handle_t *)&g.timer, NULL); /* static storage: nothing to free */
        g.timer_init = false;
    }
    free(g.secret_seen);
    g.secret_seen = NULL;
    g.ctx = NULL;
}
