/* Health and metrics endpoints. A role is `down` when a dependency it cannot work without is
 * disconnected, `degraded` when it works with reduced guarantees (D17: only `down` makes 503).
 * Loop thread only. */
#include "mutt/health.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mutt/config.h"
#include "mutt/ctx.h"
#include "mutt/error.h"
#include "mutt/http.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/pod.h"
#include "mutt/redis.h"
#include "mutt/secrets.h"
#include "mutt/stages.h"
#include "mutt/version.h"

struct health {
    struct mutt_ctx *ctx;
};

static struct health g_health; /* one per process, like the registry it reports on */

/* Roles that cannot do their job without PostgreSQL. The alert stage buffers audit rows in
 * Redis while the database is away (W20), so it is only degraded. */
static const unsigned PG_HARD_ROLES = MUTT_ROLE_WEB | MUTT_ROLE_RETENTION;
static const unsigned PG_SOFT_ROLES = MUTT_ROLE_ALERT;

static const char *health_name(enum mutt_role_health h)
{
    return h == MUTT_HEALTH_OK ? "ok" : h == MUTT_HEALTH_DEGRADED ? "degraded" : "down";
}

int mutt_health_build(struct mutt_ctx *ctx, char **body, size_t *len)
{
    bool redis_up = ctx->redis && mutt_redis_connected(ctx->redis);
    bool pg_needed = (ctx->roles & (PG_HARD_ROLES | PG_SOFT_ROLES)) != 0;
    bool pg_up = ctx->pg && mutt_pg_connected(ctx->pg);
    json_t *root = json_object();
    json_t *roles = json_object();
    json_t *details = json_array();
    json_t *errors = json_array();
    bool any_down = false;

    if (!redis_up)
        json_array_append_new(errors, json_string("redis: disconnected"));
    if (pg_needed && !pg_up)
        json_array_append_new(errors, json_string("database: disconnected"));
    if (ctx->pod && !mutt_pod_held(ctx->pod))
        json_array_append_new(details, json_string("pod identity not held (yet)"));

    for (unsigned bit = 1; bit <= MUTT_ROLE_RETENTION; bit <<= 1) {
        if (!(ctx->roles & bit))
            continue;
        enum mutt_role_health h = MUTT_HEALTH_OK;
        char detail[256] = "";
        const struct mutt_stage *st = NULL;
        for (const struct mutt_stage *const *sp = mutt_stages; *sp; sp++)
            if ((*sp)->role == bit)
                st = *sp;
        if (st && st->health)
            h = st->health(ctx, detail, sizeof(detail));
        if (!redis_up)
            h = MUTT_HEALTH_DOWN;
        if (pg_needed && !pg_up) {
            if (bit & PG_HARD_ROLES)
                h = MUTT_HEALTH_DOWN;
            else if ((bit & PG_SOFT_ROLES) && h == MUTT_HEALTH_OK)
                h = MUTT_HEALTH_DEGRADED;
        }
        if (detail[0]) {
            char line[300];
            snprintf(line, sizeof(line), "%s: %s", mutt_role_name(bit), detail);
            json_array_append_new(details, json_string(line));
        }
        if (h == MUTT_HEALTH_DOWN)
            any_down = true;
        json_object_set_new(roles, mutt_role_name(bit), json_string(health_name(h)));
    }
    json_object_set_new(root, "status", json_string(any_down ? "unhealthy" : "healthy"));
    json_object_set_new(root, "version", json_string(MUTT_VERSION));
    json_object_set_new(root, "pod", json_string(ctx->pod_name ? ctx->pod_name : ""));
    json_object_set_new(root, "roles", roles);
    json_object_set_new(root, "redis", json_string(redis_up ? "connected" : "disconnected"));
    json_object_set_new(root, "database",
                        json_string(!pg_needed ? "not_required" : pg_up ? "connected" : "disconnected"));
    json_object_set_new(root, "vault", json_string(mutt_secrets_vault_status()));
    json_object_set_new(root, "details", details);
    if (any_down)
        json_object_set_new(root, "errors", errors);
    else
        json_decref(errors);
    *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    *len = *body ? strlen(*body) : 0;
    return any_down ? 503 : 200;
}

static void on_health(struct mutt_http_req *req, void *privdata)
{
    char *body = NULL;
    size_t len = 0;
    int status = mutt_health_build(g_health.ctx, &body, &len);
    if (body == NULL) {
        mutt_http_reply_error(req, 500, "out of memory", NULL);
        return;
    }
    mutt_http_reply_json(req, status, body, len);
    free(body);
}

static void on_live(struct mutt_http_req *req, void *privdata)
{
    static const char body[] = "{\"status\":\"alive\"}";
    mutt_http_reply_json(req, 200, body, sizeof(body) - 1);
}

static void on_metrics(struct mutt_http_req *req, void *privdata)
{
    char *text = NULL;
    size_t len = 0;
    if (mutt_metrics_render(g_health.ctx->metrics, &text, &len) != 0) {
        mutt_http_reply_error(req, 500, "cannot render metrics", NULL);
        return;
    }
    mutt_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

int mutt_health_register(struct mutt_ctx *ctx)
{
    g_health.ctx = ctx;
    int rc = mutt_http_route(ctx->http, MUTT_HTTP_ALL, "GET", "/health", on_health, NULL);
    if (rc == 0)
        rc = mutt_http_route(ctx->http, MUTT_HTTP_ALL, "GET", "/health/ready", on_health, NULL);
    if (rc == 0)
        rc = mutt_http_route(ctx->http, MUTT_HTTP_ALL, "GET", "/health/live", on_live, NULL);
    if (rc == 0)
        rc = mutt_http_route(ctx->http, MUTT_HTTP_ALL, "GET", "/metrics", on_metrics, NULL);
    return rc;
}
