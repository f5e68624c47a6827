/* The web stage's lifecycle and the API front: routes (every row of mutt_api_endpoints under
 * /api/v1 and /api/v2, plus an /api/ catch-all so 404/405 carry the version headers too),
 * version negotiation and headers, auth (admin / read-only key), and the helpers every
 * handler uses to reach PostgreSQL and Redis and to reply. Loop thread only; one instance. */
#define _GNU_SOURCE
#include "web_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/http.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/redis.h"

struct web {
    struct mutt_ctx *ctx;
    bool running;
    bool stopping;
    size_t inflight;            /* calls not yet done */
    mutt_stage_done_cb *done;   /* set while a stop waits for inflight to reach 0 */
    void *done_priv;
    struct mutt_counter *requests;  /* mutt_webui_api_requests_total{endpoint,status} */
    struct mutt_histogram *latency; /* mutt_webui_api_latency_seconds{endpoint} */
    struct mutt_counter *client_gone;
};

static struct web g_web;

/* The handler of each endpoint id. */
static void (*const handlers[MUTT_API_EP__COUNT])(struct web_call *) = {
    [MUTT_API_EP_RULES] = web_rules,
    [MUTT_API_EP_RULE] = web_rule,
    [MUTT_API_EP_DEV_HOSTS] = web_dev_hosts,
    [MUTT_API_EP_DEV_HOST] = web_dev_host,
    [MUTT_API_EP_TEAMS] = web_teams,
    [MUTT_API_EP_TEAM] = web_team,
    [MUTT_API_EP_CONFIG] = web_config,
    [MUTT_API_EP_CONFIG_HISTORY] = web_config_history,
    [MUTT_API_EP_CONFIG_ROLLBACK] = web_config_rollback,
    [MUTT_API_EP_CONFIG_DRIFT] = web_config_drift,
    [MUTT_API_EP_CONFIG_KEY] = web_config_key,
    [MUTT_API_EP_AUDIT] = web_audit,
    [MUTT_API_EP_AUDIT_LOGS] = web_audit_logs,
    [MUTT_API_EP_METRICS] = web_metrics,
    [MUTT_API_EP_DLQ] = web_dlq,
    [MUTT_API_EP_DLQ_REPLAY] = web_dlq_replay,
    [MUTT_API_EP_VERSION] = web_version,
    [MUTT_API_EP_SLO] = web_slo,
    [MUTT_API_EP_UNHANDLED] = web_unhandled,
};

/* ------------------------------------------------------------------------------------------ */
/* call lifetime and replies                                                                   */

static void maybe_stopped(struct web *w)
{
    if (!w->stopping || w->inflight > 0 || !w->done)
        return;
    mutt_stage_done_cb *done = w->done;
    w->done = NULL;
    w->running = false;
    done(w->ctx, w->done_priv);
}

static const char *endpoint_label(const struct mutt_api_endpoint *ep)
{
    return ep && ep->path ? ep->path + 1 : "unknown";
}

void web_done(struct web_call *c)
{
    struct web *w = c->w;
    const char *st = c->status >= 500 ? "error" : c->status >= 400 ? "error_invalid" : c->status ? "success"
                                                                                               : "client_gone";
    const char *labels[] = {endpoint_label(c->ep), st};
    mutt_counter_inc(mutt_counter_labels(w->requests, labels));
    const char *el[] = {endpoint_label(c->ep)};
    mutt_histogram_observe(mutt_histogram_labels(w->latency, el), (double)(uv_hrtime() - c->start_ns) / 1e9);
    if (c->data) {
        if (c->free_data)
            c->free_data(c->data);
        else
            free(c->data);
    }
    mutt_http_req_release(c->req);
    free(c);
    w->inflight--;
    maybe_stopped(w);
}

bool web_answered(struct web_call *c)
{
    return mutt_http_req_answered(c->req);
}

/* A backend reply arrived after the client got its answer (the deadline's 503, or it left).
 * A read has nothing left to do. A write must not stop half-way (audit row without the Redis
 * value, a change without its PUBLISH, an item stranded in a processing list): its steps go on
 * and their replies are dropped by the request side. */
static bool abandon_if_answered(struct web_call *c)
{
    if (!web_answered(c) || c->outlives_request)
        return false;
    mutt_counter_inc(c->w->client_gone);
    web_done(c);
    return true;
}

static void reply_error_only(struct web_call *c, int status, const char *message, const char *field)
{
    if (mutt_http_reply_error(c->req, status, message, field) == 0)
        c->status = status;
}

void web_reply_error(struct web_call *c, int status, const char *message, const char *field)
{
    reply_error_only(c, status, message, field);
    web_done(c);
}

void web_reply_text(struct web_call *c, int status, const char *json, size_t len)
{
    if (mutt_http_reply_json(c->req, status, json, len) == 0)
        c->status = status;
    web_done(c);
}

void web_reply_obj(struct web_call *c, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_text(c, status, s, strlen(s));
    free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* request helpers                                                                             */

const char *web_method(struct web_call *c)
{
    size_t n = 0;
    const char *m = mutt_http_req_method(c->req, &n);
    if (n == 3 && memcmp(m, "GET", 3) == 0)
        return "GET";
    if (n == 4 && memcmp(m, "HEAD", 4) == 0)
        return "GET";
    if (n == 4 && memcmp(m, "POST", 4) == 0)
        return "POST";
    if (n == 3 && memcmp(m, "PUT", 3) == 0)
        return "PUT";
    if (n == 6 && memcmp(m, "DELETE", 6) == 0)
        return "DELETE";
    return "OTHER";
}

json_t *web_body_object(struct web_call *c, bool optional)
{
    size_t len = 0;
    const char *b = mutt_http_req_body(c->req, &len);
    size_t i = 0;
    while (b && i < len && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
        i++;
    if (!b || i == len) {
        if (optional)
            return json_object();
        web_reply_error(c, 400, "body must be a JSON object", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *o = json_loadb(b, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        web_reply_error(c, 400, "body must be a JSON object", NULL);
        return NULL;
    }
    return o;
}

bool web_body_reason(struct web_call *c, const json_t *body, const char **reason)
{
    *reason = NULL;
    json_t *r = json_object_get(body, "reason");
    if (!r || json_is_null(r))
        return true;
    if (!json_is_string(r) || json_string_length(r) > 1000) {
        web_reply_error(c, 400, "reason must be a string of at most 1000 bytes", "reason");
        return false;
    }
    *reason = json_string_value(r);
    return true;
}

json_t *web_body_with_reason(struct web_call *c, bool optional, const char **reason)
{
    json_t *body = web_body_object(c, optional);
    if (!body)
        return NULL;
    if (!web_body_reason(c, body, reason)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

const char *web_query_param(struct web_call *c, const char *name)
{
    return mutt_http_req_query_param(c->req, name);
}

const char *web_path_param(struct web_call *c, const char *name)
{
    return mutt_http_req_param(c->req, name);
}

/* ------------------------------------------------------------------------------------------ */
/* PostgreSQL and Redis                                                                        */

static void on_pg_result(void *privdata, PGresult *res, int status)
{
    struct web_call *c = privdata;
    web_pg_cb *cb = (web_pg_cb *)c->next;
    c->next = NULL;
    if (abandon_if_answered(c))
        return;
    if (status == 0) {
        cb(c, res);
        return;
    }
    if (status == MUTT_EIO && res) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23505") == 0) {
            web_reply_error(c, 409, c->conflict ? c->conflict : "already exists", NULL);
            return;
        }
        if (state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
            /* a value PostgreSQL refused (CHECK, NOT NULL, range): the request's fault */
            mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "%s refused by PostgreSQL: %s", endpoint_label(c->ep),
                        state);
            web_reply_error(c, 400, "invalid value", NULL);
            return;
        }
        /* W35: the driver's text goes to the log, never to the client */
        mutt_log_kv(MUTT_LOG_ERROR, "web", c->cid, NULL, "%s: PostgreSQL error %s: %s", endpoint_label(c->ep),
                    state ? state : "?", PQresultErrorMessage(res));
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: PostgreSQL %s", endpoint_label(c->ep),
                mutt_strerror(status));
    web_reply_error(c, 503, "database unavailable", NULL);
}

int web_query(struct web_call *c, const char *sql, int nparams, const char *const *values, web_pg_cb *cb)
{
    if (!c->ctx->pg) {
        web_reply_error(c, 503, "database unavailable", NULL);
        return MUTT_EDISCONNECTED;
    }
    c->next = (void *)cb;
    int rc = mutt_pg_query(c->ctx->pg, sql, nparams, values, on_pg_result, c);
    if (rc != 0) {
        c->next = NULL;
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: PostgreSQL %s", endpoint_label(c->ep),
                    mutt_strerror(rc));
        web_reply_error(c, 503, "database unavailable", NULL);
    }
    return rc;
}

static void on_redis_reply(void *privdata, redisReply *reply, int status)
{
    struct web_call *c = privdata;
    web_redis_cb *cb = (web_redis_cb *)c->next;
    c->next = NULL;
    if (abandon_if_answered(c))
        return;
    if (status == 0 && reply) {
        cb(c, reply);
        return;
    }
    const char *why = status == MUTT_EIO && reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                     : mutt_strerror(status);
    mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: Redis %s", endpoint_label(c->ep), why);
    if (c->on_redis_failed) {
        c->on_redis_failed(c, status ? status : MUTT_EIO);
        return;
    }
    if (status == MUTT_EIO)
        web_reply_error(c, 500, "internal error", NULL);
    else
        web_reply_error(c, 503, "Redis unavailable", NULL);
}

static int redis_failed(struct web_call *c, int rc)
{
    c->next = NULL;
    mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: Redis %s", endpoint_label(c->ep), mutt_strerror(rc));
    if (c->on_redis_failed)
        c->on_redis_failed(c, rc);
    else
        web_reply_error(c, 503, "Redis unavailable", NULL);
    return rc;
}

int web_redis(struct web_call *c, int argc, const char **argv, const size_t *lens, web_redis_cb *cb)
{
    c->next = (void *)cb;
    int rc = mutt_redis_command(mutt_redis_cmd(c->ctx->redis), on_redis_reply, c, argc, argv, lens);
    return rc != 0 ? redis_failed(c, rc) : 0;
}

int web_evalsha(struct web_call *c, int script, int nkeys, const char **keys, const size_t *keylens, int nargs,
                const char **args, const size_t *arglens, web_redis_cb *cb)
{
    c->next = (void *)cb;
    int rc = mutt_redis_evalsha(mutt_redis_cmd(c->ctx->redis), script, nkeys, keys, keylens, nargs, args, arglens,
                                on_redis_reply, c);
    return rc != 0 ? redis_failed(c, rc) : 0;
}

void web_publish_rules(struct web_call *c, const char *what)
{
    const char *argv[] = {"PUBLISH", MUTT_KEY_RULES_CHANNEL, what};
    size_t lens[] = {7, strlen(MUTT_KEY_RULES_CHANNEL), strlen(what)};
    /* Fire and forget: when Redis is down the alerter's periodic reload still picks it up. */
    if (mutt_redis_command(mutt_redis_cmd(c->ctx->redis), NULL, NULL, 3, argv, lens) != 0)
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "PUBLISH %s failed; alerters reload on their timer",
                    MUTT_KEY_RULES_CHANNEL);
}

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                    */

/* Header value copied NUL-terminated into buf; NULL when absent or too long. */
static const char *header_copy(struct mutt_http_req *req, const char *name, char *buf, size_t buflen)
{
    size_t len = 0;
    const char *v = mutt_http_req_header(req, name, &len, NULL);
    if (!v || len >= buflen)
        return NULL;
    memcpy(buf, v, len);
    buf[len] = '\0';
    return buf;
}

/* CONTRACT §7 versioning: negotiate and set the headers every /api/ response carries. */
static const struct mutt_api_version *version_headers(struct mutt_http_req *req, const struct mutt_api_endpoint *ep,
                                                      struct mutt_api_verdict *vd)
{
    char a[32], x[32];
    const struct mutt_api_version *v =
        mutt_api_negotiate(header_copy(req, "accept-version", a, sizeof a),
                           header_copy(req, "x-api-version", x, sizeof x), mutt_http_req_query_param(req, "api_version"));
    mutt_http_add_header(req, "x-api-version", v->version);
    mutt_http_add_header(req, "x-api-supported-versions", MUTT_API_SUPPORTED_HEADER);
    mutt_api_check(ep, v, vd);
    if (vd->deprecated[0])
        mutt_http_add_header(req, "x-api-deprecated", vd->deprecated);
    if (vd->sunset[0])
        mutt_http_add_header(req, "x-api-sunset", vd->sunset);
    return v;
}

static bool is_write(struct mutt_http_req *req)
{
    size_t n = 0;
    const char *m = mutt_http_req_method(req, &n);
    return !((n == 3 && memcmp(m, "GET", 3) == 0) || (n == 4 && memcmp(m, "HEAD", 4) == 0) ||
             (n == 7 && memcmp(m, "OPTIONS", 7) == 0));
}

static void on_api(struct mutt_http_req *req, void *privdata)
{
    const struct mutt_api_endpoint *ep = privdata;
    struct web *w = &g_web;
    struct mutt_api_verdict vd;
    version_headers(req, ep, &vd);
    if (!w->running || w->stopping) {
        mutt_http_add_header(req, "retry-after", "1");
        mutt_http_reply_error(req, 503, "shutting down", NULL);
        return;
    }
    if (vd.status == 410) {
        mutt_http_reply_json(req, 410, vd.body, strlen(vd.body));
        return;
    }
    const struct mutt_config *cfg = w->ctx->cfg;
    enum mutt_api_role role = MUTT_API_NONE;
    char changed_by[112] = "";
    if (!(ep->flags & MUTT_API_PUBLIC)) {
        size_t klen = 0;
        int count = 0;
        const char *key = mutt_http_req_header(req, "x-api-key", &klen, &count);
        if (count == 0 && mutt_config_bool(cfg, MUTT_CFG_WEBUI_ALLOW_QUERY_KEY)) {
            /* W34: only when explicitly enabled */
            key = mutt_http_req_query_param(req, "api_key");
            klen = key ? strlen(key) : 0;
            count = key ? 1 : 0;
        }
        if (count == 1)
            role = mutt_api_key_role(key, klen, mutt_config_str(cfg, MUTT_CFG_WEBUI_API_KEY),
                                     mutt_config_str(cfg, MUTT_CFG_WEBUI_READONLY_API_KEY));
        if (role == MUTT_API_NONE) {
            mutt_http_reply_error(req, 401, "Unauthorized", NULL);
            return;
        }
        if (role == MUTT_API_READONLY && is_write(req)) {
            mutt_http_reply_error(req, 403, "read-only API key: writes need the admin key", NULL);
            return;
        }
        /* D46: the audit name comes from the key alone; an X-Actor header is ignored, so a
         * holder of the admin key cannot write someone else's name into the audit trail. */
        mutt_api_changed_by(key, klen, changed_by, sizeof changed_by);
    }
    struct web_call *c = calloc(1, sizeof *c);
    if (!c) {
        mutt_http_reply_error(req, 503, "out of memory", NULL);
        return;
    }
    c->w = w;
    c->ctx = w->ctx;
    c->req = req;
    c->ep = ep;
    c->role = role;
    c->cid = mutt_http_req_correlation_id(req);
    c->start_ns = uv_hrtime();
    c->outlives_request = is_write(req);
    /* D62: the management API's deadline answer */
    mutt_http_req_set_deadline(req, (uint64_t)mutt_config_int(cfg, MUTT_CFG_REQUEST_TIMEOUT_MS), 503,
                               "deadline exceeded");
    snprintf(c->changed_by, sizeof c->changed_by, "%s", changed_by);
    mutt_http_req_hold(req);
    w->inflight++;
    handlers[ep->id](c);
}

/* Everything under /api/ that no route took: 405 with Allow for our paths, else 404, both with
 * the version headers (the router's own 404/405 would lack them). */
static void on_api_fallback(struct mutt_http_req *req, void *privdata)
{
    (void)privdata;
    struct mutt_api_verdict vd;
    version_headers(req, NULL, &vd);
    size_t plen = 0;
    const char *path = mutt_http_req_raw_path(req, &plen); /* as the router saw it */
    char allow[96];
    if (plen > 8 && (memcmp(path, "/api/v1/", 8) == 0 || memcmp(path, "/api/v2/", 8) == 0) &&
        mutt_api_allowed_methods(mutt_api_endpoints, path + 7, plen - 7, allow, sizeof allow)) {
        size_t mlen = 0;
        const char *m = mutt_http_req_method(req, &mlen);
        char method[16];
        snprintf(method, sizeof method, "%.*s", (int)(mlen < 15 ? mlen : 15), m);
        if (mlen > 0 && mlen < 15 && strstr(allow, method)) {
            /* an endpoint another role serves (GET /unhandled: alert) on a pod without that role */
            mutt_http_reply_error(req, 404, "not served by this pod (its role is not enabled here)", NULL);
            return;
        }
        mutt_http_add_header(req, "allow", allow);
        mutt_http_reply_error(req, 405, "method not allowed", NULL);
        return;
    }
    mutt_http_reply_error(req, 404, "not found", NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* stage                                                                                       */

static int register_routes(struct web *w)
{
    static const char *const prefixes[] = {"/api/v1", "/api/v2"};
    for (const struct mutt_api_endpoint *ep = mutt_api_endpoints; ep->path; ep++) {
        if (ep->flags & MUTT_API_EXTERNAL)
            continue;
        for (int i = 0; i < 2; i++) {
            char pattern[128];
            snprintf(pattern, sizeof pattern, "%s%s", prefixes[i], ep->path);
            int rc = mutt_http_route(w->ctx->http, MUTT_HTTP_WEB, ep->methods, pattern, on_api, (void *)ep);
            if (rc != 0)
                return rc;
        }
    }
    int rc = mutt_web_ui_register(w->ctx);
    if (rc != 0)
        return rc;
    /* last: only what no other route (ours or another stage's, e.g. /unhandled) matched */
    return mutt_http_route(w->ctx->http, MUTT_HTTP_WEB, "GET,HEAD,POST,PUT,DELETE,PATCH,OPTIONS", "/api/*",
                           on_api_fallback, w);
}

static int register_metrics(struct web *w, struct mutt_metrics *m)
{
    static const char *const req_labels[] = {"endpoint", "status", NULL};
    static const char *const ep_labels[] = {"endpoint", NULL};
    static const double buckets[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
    w->requests = mutt_metrics_counter(m, "mutt_webui_api_requests_total", "Management API requests by outcome.",
                                       req_labels);
    w->latency = mutt_metrics_histogram(m, "mutt_webui_api_latency_seconds", "Management API handling time.",
                                        ep_labels, buckets, sizeof buckets / sizeof buckets[0]);
    w->client_gone = mutt_metrics_counter(m, "mutt_web_client_gone_total",
                                          "Backend answers that arrived after the request was answered.", NULL);
    return w->requests && w->latency && w->client_gone ? 0 : MUTT_ENOMEM;
}

static int web_start(struct mutt_ctx *ctx)
{
    struct web *w = &g_web;
    if (w->running)
        return MUTT_ESTATE;
    w->ctx = ctx;
    w->stopping = false;
    w->done = NULL;
    w->inflight = 0;
    int rc = register_metrics(w, ctx->metrics);
    if (rc == 0)
        rc = web_ops_register_scripts(ctx);
    if (rc == 0)
        rc = register_routes(w);
    if (rc != 0)
        return rc;
    if (!mutt_config_str(ctx->cfg, MUTT_CFG_WEBUI_READONLY_API_KEY)[0])
        mutt_log_info("web", "no WEBUI_READONLY_API_KEY: only the admin key is accepted");
    web_ops_recover(ctx);
    rc = web_ops_janitor_start(ctx);
    if (rc != 0)
        return rc;
    w->running = true;
    mutt_log_info("web", "management API on /api/v1 and /api/v2, dashboard on /");
    return 0;
}

static void web_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    (void)ctx;
    struct web *w = &g_web;
    web_ops_janitor_stop();
    w->stopping = true;
    w->done = done;
    w->done_priv = privdata;
    if (!w->running) {
        w->done = NULL;
        done(ctx, privdata);
        return;
    }
    maybe_stopped(w);
}

static enum mutt_role_health web_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    if (ctx->pg && !mutt_pg_connected(ctx->pg)) {
        snprintf(detail, detail_len, "web: PostgreSQL unavailable, API answers 503 for rules/audit/config writes");
        return MUTT_HEALTH_DEGRADED;
    }
    return MUTT_HEALTH_OK;
}

const struct mutt_stage mutt_web_stage = {
    .name = "web",
    .role = MUTT_ROLE_WEB,
    .start = web_start,
    .stop = web_stop,
    .health = web_health,
    .reload = NULL,
};
