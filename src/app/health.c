/* Health and metrics endpoints. A role is `starting` until its stage accepts work (D34), `down`
 * when a dependency it cannot work without is disconnected, `degraded` when it works with reduced
 * guarantees (D17, D34: `down` and `starting` make 503, `degraded` does not).
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
    switch (h) {
    case MUTT_HEALTH_OK:
        return "ok";
    case MUTT_HEALTH_DEGRADED:
        return "degraded";
    case MUTT_HEALTH_STARTING:
        return "starting";
    case MUTT_HEALTH_DOWN:
        break;
    }
    return "down";
}

enum mutt_role_health mutt_health_role_verdict(const struct mutt_health_role_input *in)
{
    enum mutt_role_health h = in->stage_verdict;
    /* a missing dependency is the more useful word, started or not: both answer 503 */
    if (!in->redis_up || (in->pg_needed && !in->pg_up && in->pg_hard))
        return MUTT_HEALTH_DOWN;
    /* D34: until start() has returned the stage takes no work (its routes are not even
     * registered) */
    if (!in->started)
        return MUTT_HEALTH_STARTING;
    if (in->pg_needed && !in->pg_up && h == MUTT_HEALTH_OK)
        return MUTT_HEALTH_DEGRADED;
    return h;
}

enum mutt_health_status mutt_health_combine(const enum mutt_role_health *verdicts, size_t n)
{
    enum mutt_health_status st = MUTT_HEALTH_READY;
    for (size_t i = 0; i < n; i++) {
        if (verdicts[i] == MUTT_HEALTH_DOWN)
            return MUTT_HEALTH_UNHEALTHY;
        if (verdicts[i] == MUTT_HEALTH_STARTING)
            st = MUTT_HEALTH_NOT_YET;
    }
    return st;
}

/* Fills one verdict per enabled role (in role-bit order) and, when given, the JSON pieces. */
static size_t collect(struct mutt_ctx *ctx, enum mutt_role_health *verdicts, json_t *roles, json_t *details)
{
    bool redis_up = ctx->redis && mutt_redis_connected(ctx->redis);
    bool pg_needed = (ctx->roles & (PG_HARD_ROLES | PG_SOFT_ROLES)) != 0;
    bool pg_up = ctx->pg && mutt_pg_connected(ctx->pg);
    size_t n = 0;
    for (unsigned bit = 1; bit <= MUTT_ROLE_RETENTION; bit <<= 1) {
        if (!(ctx->roles & bit))
            continue;
        char detail[256] = "";
        const struct mutt_stage *st = NULL;
        for (const struct mutt_stage *const *sp = mutt_stages; *sp; sp++)
            if ((*sp)->role == bit)
                st = *sp;
        bool started = (ctx->roles_started & bit) != 0;
        struct mutt_health_role_input in = {
            .started = started,
            .stage_verdict = MUTT_HEALTH_OK,
            .redis_up = redis_up,
            .pg_needed = pg_needed && (bit & (PG_HARD_ROLES | PG_SOFT_ROLES)),
            .pg_hard = (bit & PG_HARD_ROLES) != 0,
            .pg_up = pg_up,
        };
        /* a stage's health reads state its start() set up: only ask a started one */
        if (started && st && st->health)
            in.stage_verdict = st->health(ctx, detail, sizeof(detail));
        enum mutt_role_health h = mutt_health_role_verdict(&in);
        if (details && detail[0]) {
            char line[300];
            snprintf(line, sizeof(line), "%s: %s", mutt_role_name(bit), detail);
            json_array_append_new(details, json_string(line));
        }
        if (roles)
            json_object_set_new(roles, mutt_role_name(bit), json_string(health_name(h)));
        verdicts[n++] = h;
    }
    return n;
}

bool mutt_health_ready(struct mutt_ctx *ctx)
{
    enum mutt_role_health verdicts[16];
    size_t n = collect(ctx, verdicts, NULL, NULL);
    return mutt_health_combine(verdicts, n) == MUTT_HEALTH_READY;
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

    if (!redis_up)
        json_array_append_new(errors, json_string("redis: disconnected"));
    if (pg_needed && !pg_up)
        json_array_append_new(errors, json_string("database: disconnected"));
    if (ctx->pod && !mutt_pod_held(ctx->pod))
        json_array_append_new(details, json_string("pod identity not held (yet)"));

    enum mutt_role_health verdicts[16];
    size_t n = collect(ctx, verdicts, roles, details);
    enum mutt_health_status st = mutt_health_combine(verdicts, n);
    bool any_down = st == MUTT_HEALTH_UNHEALTHY;
    json_object_set_new(root, "status",
                        json_string(st == MUTT_HEALTH_READY ? "healthy" : any_down ? "unhealthy" : "starting"));
    json_object_set_new(root, "version", json_string(MUTT_VERSION));
    json_object_set_new(root, "pod", json_string(ctx->pod_name ? ctx->pod_name : ""));
    json_object_set_new(root, "roles", roles);
    json_object_set_new(root, "redis", json_string(redis_up ? "connected" : "disconnected"));
    if (ctx->redis && mutt_redis_sentinel_state(ctx->redis)) { /* D53: only with sentinels */
        char primary[300];
        json_object_set_new(root, "redis_primary", json_string(mutt_redis_primary(ctx->redis, primary, sizeof primary)));
        json_object_set_new(root, "redis_sentinels", json_string(mutt_redis_sentinel_state(ctx->redis)));
    }
    json_object_set_new(root, "database",
                        json_string(!pg_needed ? "not_required" : pg_up ? "connected" : "disconnected"));
    if (pg_needed && ctx->pg) { /* D55: which of DB_HOST's servers is in use ("" while none is) */
        char host[300];
        json_object_set_new(root, "database_host", json_string(mutt_pg_host_in_use(ctx->pg, host, sizeof host)));
    }
    json_object_set_new(root, "vault", json_string(mutt_secrets_vault_status()));
    json_object_set_new(root, "details", details);
    if (any_down || (st != MUTT_HEALTH_READY && json_array_size(errors) > 0))
        json_object_set_new(root, "errors", errors);
    else
        json_decref(errors);
    *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    *len = *body ? strlen(*body) : 0;
    return st == MUTT_HEALTH_READY ? 200 : 503;
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
