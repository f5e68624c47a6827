/* The web stage's lifecycle and the API front: routes (every row of mutt_api_endpoints under
 * /api/v1 and /api/v2, plus an /api/ catch-all so 404/405 carry the version headers too),
 * version negotiation and headers, auth (admin / read-only key), and the dispatch of each
 * request to its handler as a struct web_call (whose helpers live in web_call.c). Loop thread
 * only; one instance. */
#define _GNU_SOURCE
#include "web_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/http.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"

static struct web g_web;

/* The handler of each endpoint id. */
static void (*const handlers[MUTT_API_EP__COUNT])(struct web_call *) = {
    [MUTT_API_EP_RULES] = web_rules,
    [MUTT_API_EP_RULE] = web_rule,
    [MUTT_API_EP_RULES_DRY_RUN] = web_rules_dry_run,
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
    [MUTT_API_EP_AUDIT_REPORT] = web_audit_report,
    [MUTT_API_EP_LEGAL_HOLDS] = web_legal_holds,
    [MUTT_API_EP_LEGAL_HOLD] = web_legal_hold,
    [MUTT_API_EP_MAINT_WINDOWS] = web_maint_windows,
    [MUTT_API_EP_MAINT_WINDOW] = web_maint_window,
    [MUTT_API_EP_CHANGES] = web_changes_list,
    [MUTT_API_EP_CHANGE_DECIDE] = web_change_decide,
    [MUTT_API_EP_VERSION_USAGE] = web_version_usage,
    [MUTT_API_EP_EVENTS] = web_events,
    [MUTT_API_EP_EVENT] = web_event,
};

void web_dispatch(struct web_call *c)
{
    handlers[c->ep->id](c);
}

/* The /api/v1 or /api/v2 prefix of the request (metrics label the route pattern under it). */
static bool v1_prefix(struct mutt_http_req *req)
{
    size_t plen = 0;
    const char *path = mutt_http_req_raw_path(req, &plen);
    return plen >= 7 && memcmp(path, "/api/v1", 7) == 0;
}

/* An answer given before a call exists (503, 410, 401, 403), counted for D45. */
static void reply_early(struct web *w, struct mutt_http_req *req, const struct mutt_api_version *v,
                        const struct mutt_api_endpoint *ep, int status, const char *message)
{
    mutt_http_reply_error(req, status, message, NULL);
    web_count_request(w, v->version, ep ? ep->path : NULL, status, v1_prefix(req), NULL);
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

static bool is_write(struct mutt_http_req *req, const struct mutt_api_endpoint *ep)
{
    if (ep && (ep->flags & MUTT_API_READ_POST))
        return false; /* a POST that only reads (D47: dry-run) */
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
    const struct mutt_api_version *v = version_headers(req, ep, &vd);
    if (!w->running || w->stopping) {
        mutt_http_add_header(req, "retry-after", "1");
        reply_early(w, req, v, ep, 503, "shutting down");
        return;
    }
    if (vd.status == 410) {
        mutt_http_reply_json(req, 410, vd.body, strlen(vd.body));
        web_count_request(w, v->version, ep->path, 410, v1_prefix(req), NULL);
        return;
    }
    /* A literal row listed before a {param} row owns its path: GET /rules/dry-run is a 405 of
     * the dry-run, not a GET of rule "dry-run" (the router matched the pattern by method). */
    size_t plen = 0;
    const char *path = mutt_http_req_raw_path(req, &plen);
    const struct mutt_api_endpoint *owner =
        plen > 7 ? mutt_api_endpoint_find(mutt_api_endpoints, path + 7, plen - 7) : NULL;
    if (owner && owner != ep) {
        mutt_http_add_header(req, "allow", owner->methods);
        mutt_http_reply_error(req, 405, "method not allowed", NULL);
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
        /* D46: the audit name comes from the key alone (a named user's name, else the key's
         * hash); an X-Actor header is ignored, so a holder of a key cannot write someone else's
         * name into the audit trail. */
        enum mutt_api_role user_role = MUTT_API_NONE;
        if (count == 1 && web_changes_user(key, klen, &user_role, changed_by, sizeof changed_by))
            role = user_role;
        else if (role != MUTT_API_NONE)
            mutt_api_changed_by(key, klen, changed_by, sizeof changed_by);
        if (role == MUTT_API_NONE) {
            reply_early(w, req, v, ep, 401, "Unauthorized");
            return;
        }
        if (role == MUTT_API_READONLY && is_write(req, ep)) {
            reply_early(w, req, v, ep, 403, "read-only API key: writes need the admin key");
            return;
        }
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
    c->version = v->version;
    c->v1_prefix = v1_prefix(req);
    c->start_ns = uv_hrtime();
    c->outlives_request = is_write(req, ep);
    /* D62: the management API's deadline answer */
    mutt_http_req_set_deadline(req, (uint64_t)mutt_config_int(cfg, MUTT_CFG_REQUEST_TIMEOUT_MS), 503,
                               "deadline exceeded");
    snprintf(c->changed_by, sizeof c->changed_by, "%s", changed_by);
    mutt_http_req_hold(req);
    w->inflight++;
    if (is_write(req, ep) && web_changes_intercept(c))
        return;
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
    static const char *const api_labels[] = {"version", "endpoint", "status", NULL};
    w->api_requests = mutt_metrics_counter(m, "mutt_api_requests_total",
                                           "API requests by negotiated version, route pattern and HTTP status.",
                                           api_labels);
    return w->requests && w->latency && w->client_gone && w->api_requests ? 0 : MUTT_ENOMEM;
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
    char err[256] = "";
    if (rc == 0 && (rc = web_changes_start(ctx, err, sizeof err)) != 0)
        mutt_log_error("web", "%s", err);
    if (rc == 0)
        rc = web_events_register_scripts(ctx);
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
    web_changes_stop();
    w->stopping = true;
    w->done = done;
    w->done_priv = privdata;
    if (!w->running) {
        w->done = NULL;
        done(ctx, privdata);
        return;
    }
    web_maybe_stopped(w);
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
