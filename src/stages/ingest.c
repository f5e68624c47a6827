/* The ingest stage (role ingest, CONTRACT §3): the POST handler on the ingest listener and the
 * Redis call of each loop turn's group of requests. Checks run in D6's order (auth 401, media
 * type 415, size 413, parse/validate 400, rate 429, cap 503); the last two and the push happen
 * inside one Lua script (ingest_call.c), so a 200 always means every accepted event is in the
 * queue. Does not parse or normalise events itself (domain/event.c does). Group commit (D50): a
 * request that passed the checks made before Redis joins the loop turn's group; a uv_check
 * handle (or a uv_prepare one, before the loop would block) sends the group as one script call
 * on ingest's own connection (D49) once the turn's I/O has been read (or, within 1 ms of the
 * previous send, a timer sends it when that millisecond is up: GROUP_PACE_NS), and the reply
 * answers every request of the group with its own verdict. With INGEST_MIN_REPLICAS (D37) a WAIT follows
 * each script call on that connection, and a pushed request gets its 200 only once enough
 * replicas confirmed (503 not_replicated otherwise). Loop thread only; one instance per process. */
#define _GNU_SOURCE
#include "mutt/ingest.h"
#include "mutt/ingest_intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/event_fast.h"
#include "mutt/http.h"
#include "mutt/lineage.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/uuid.h"

#include "ingest_internal.h"

static const char *const reason_names[REASON_COUNT_] = {
    "", "auth", "media_type", "too_large", "json", "validation", "rate_limit", "queue_full", "redis", "shutdown",
    "inflight_bytes", "not_replicated",
};
/* The HTTP status each outcome answers with: mutt_api_requests_total's status label (D45, D62). */
static const char *const reason_status[REASON_COUNT_] = {
    "200", "401", "415", "413", "400", "400", "429", "503", "503", "503", "503", "503",
};

struct ingest g_ingest;

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

int64_t ingest_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ingest_observe_latency(struct ingest *ing, uint64_t start_ns)
{
    mutt_histogram_observe(ing->latency, (double)(uv_hrtime() - start_ns) / 1e9);
}

/* D22: one answered request that passed auth. Availability: anything but 5xx; latency: answered
 * within ingestor_latency_p99's target. No I/O (the counters flush once a second). */
void ingest_record_slo(struct ingest *ing, int status, uint64_t start_ns)
{
    struct mutt_slo_counters *slo = ing->ctx->slo;
    mutt_slo_record(slo, MUTT_SLO_INGESTOR_AVAILABILITY, status < 500 ? 1 : 0, 1);
    mutt_slo_record_latency(slo, MUTT_SLO_INGESTOR_LATENCY_P99, (double)(uv_hrtime() - start_ns) / 1e9);
}

void ingest_count_request(struct ingest *ing, enum reason r)
{
    mutt_counter_inc(ing->requests[r]);
    mutt_counter_inc(ing->api_requests[r]);
}

void ingest_maybe_stopped(struct ingest *ing)
{
    if (mutt_stage_life_drained(&ing->life, ing->inflight)) {
        if (ing->check_ready) {
            ing->check_ready = false;
            uv_close((uv_handle_t *)&ing->flush_check, NULL); /* static storage: nothing to free */
            uv_close((uv_handle_t *)&ing->flush_prepare, NULL);
            uv_close((uv_handle_t *)&ing->pace_timer, NULL);
        }
        mutt_stage_life_finish(&ing->life); /* the connection closes with the manager */
    }
}

void ingest_add_retry_after(struct mutt_http_req *req, unsigned secs)
{
    char v[16];
    snprintf(v, sizeof v, "%u", secs ? secs : 1u);
    mutt_http_add_header(req, "retry-after", v);
}

/* Every refusal made before Redis: one reply, one metric, one log line with the correlation id. */
void ingest_refuse(struct ingest *ing, struct mutt_http_req *req, uint64_t start_ns, int status, enum reason r,
                   const char *message, unsigned retry_after)
{
    if (retry_after)
        ingest_add_retry_after(req, retry_after);
    mutt_http_reply_status_error(req, status, message);
    ingest_count_request(ing, r);
    if (r != REASON_AUTH) /* python-original §12: auth rejections are not timed */
        ingest_observe_latency(ing, start_ns);
    if (r != REASON_AUTH && r != REASON_SHUTDOWN) /* both are answered before the auth check */
        ingest_record_slo(ing, status, start_ns);
    mutt_log_kv(status >= 500 ? MUTT_LOG_WARNING : MUTT_LOG_INFO, "ingest", mutt_http_req_correlation_id(req), NULL,
                "%d %s: %s", status, reason_names[r], message);
}

/* D49: names the connection in CLIENT LIST (mutt:<pod>:ingest) each time it comes up, so an
 * operator can tell ingest's pushes from the rest. */
static void on_conn_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct ingest *ing = privdata;
    if (!connected)
        return;
    char name[128];
    int n = snprintf(name, sizeof name, "mutt:%s:ingest", ing->ctx->pod_name ? ing->ctx->pod_name : "pod");
    if (n < 0)
        return;
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '_' || *c == ':' || *c == '-'))
            *c = '_'; /* CLIENT SETNAME refuses spaces */
    const char *argv[3] = {"CLIENT", "SETNAME", name};
    size_t lens[3] = {6, 7, strlen(name)};
    mutt_redis_command(conn, NULL, NULL, 3, argv, lens); /* best effort: only a label */
}

/* ------------------------------------------------------------------------------------------ */
/* stage                                                                                       */

static int register_metrics(struct ingest *ing, struct mutt_metrics *m)
{
    static const char *const req_labels[] = {"status", "reason", NULL};
    static const char *const ev_labels[] = {"result", NULL};
    struct mutt_counter *req = mutt_metrics_counter(m, "mutt_ingest_requests_total",
                                                    "Ingest requests by outcome.", req_labels);
    struct mutt_counter *ev = mutt_metrics_counter(
        m, "mutt_ingest_events_total", "Events by outcome: accepted (queued), rejected (invalid), refused (429/503).",
        ev_labels);
    ing->depth = mutt_metrics_gauge(m, "mutt_ingest_queue_depth", "Ingest queue length seen by the last push.", NULL);
    ing->latency = mutt_metrics_histogram(m, "mutt_ingest_latency_seconds", "Ingest request handling time.", NULL,
                                          mutt_metrics_latency_buckets,
                                          MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
    ing->rate_hits = mutt_metrics_counter(m, "mutt_ingest_rate_limit_hits_total",
                                          "Ingest requests refused by the global rate limit.", NULL);
    ing->inflight_bytes_g = mutt_metrics_gauge(
        m, "mutt_ingest_inflight_bytes",
        "Body bytes of ingest requests waiting for their Redis push (capped by INGEST_INFLIGHT_BYTES).", NULL);
    ing->in_doubt = mutt_metrics_counter(m, "mutt_ingest_events_in_doubt_total",
                                         "Events that may be queued though their request got a 503 (deadline, or the "
                                         "connection dropped with the push outstanding).", NULL);
    ing->reserved_stripped = mutt_metrics_counter(
        m, "mutt_ingest_reserved_fields_stripped_total",
        "Top-level fields beginning with '_' removed from client events (MUTT's own, D35).", NULL);
    ing->calls = mutt_metrics_counter(
        m, "mutt_ingest_script_calls_total",
        "Ingest script calls sent to Redis: one per group of requests that arrived in one loop turn (D50).", NULL);
    ing->not_replicated = mutt_metrics_counter(
        m, "mutt_ingest_not_replicated_total",
        "Ingest requests answered 503 not_replicated: WAIT confirmed fewer than INGEST_MIN_REPLICAS replicas in "
        "INGEST_REPLICA_TIMEOUT_MS (their events count as in doubt).", NULL);
    if (!req || !ev || !ing->depth || !ing->latency || !ing->rate_hits || !ing->in_doubt || !ing->reserved_stripped ||
        !ing->inflight_bytes_g || !ing->calls || !ing->not_replicated)
        return MUTT_ENOMEM;
    /* D62: ingest counts in the API usage metric too; it has one version (the current one) */
    static const char *const api_labels[] = {"version", "endpoint", "status", NULL};
    struct mutt_counter *api = mutt_metrics_counter(
        m, "mutt_api_requests_total", "API requests by negotiated version, route pattern and HTTP status.", api_labels);
    if (!api)
        return MUTT_ENOMEM;
    for (int r = 0; r < REASON_COUNT_; r++) {
        const char *vals[] = {r == REASON_OK ? "success" : "fail", reason_names[r]};
        ing->requests[r] = mutt_counter_labels(req, vals);
        const char *avals[] = {"2.0", "/api/v2/ingest", reason_status[r]};
        ing->api_requests[r] = mutt_counter_labels(api, avals);
    }
    const char *acc[] = {"accepted"}, *rej[] = {"rejected"}, *ref[] = {"refused"};
    ing->ev_accepted = mutt_counter_labels(ev, acc);
    ing->ev_rejected = mutt_counter_labels(ev, rej);
    ing->ev_refused = mutt_counter_labels(ev, ref);
    return 0;
}

static int load_rules(struct ingest *ing, const struct mutt_config *cfg)
{
    struct mutt_event_rules rules;
    mutt_event_rules_init_default(&rules);
    if (mutt_event_rules_set_required(&rules, mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS)) != 0) {
        mutt_log_error("ingest", "config error: REQUIRED_FIELDS=%s: too many or too long entries",
                       mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS));
        return MUTT_EINVAL;
    }
    ing->rules = rules;
    return 0;
}

static int ingest_start(struct mutt_ctx *ctx)
{
    struct ingest *ing = &g_ingest;
    if (mutt_stage_life_started(&ing->life))
        return MUTT_ESTATE;
    ing->ctx = ctx;
    mutt_stage_life_init(&ing->life, "ingest", ctx);
    ing->inflight = 0;
    ing->inflight_bytes = 0;
    ing->last_bytes_full = false;
    ing->min_replicas = mutt_config_int(ctx->cfg, MUTT_CFG_INGEST_MIN_REPLICAS);
    ing->last_replicas = -1;
    snprintf(ing->wait_n, sizeof ing->wait_n, "%lld", (long long)ing->min_replicas);
    snprintf(ing->wait_ms, sizeof ing->wait_ms, "%lld",
             (long long)mutt_config_int(ctx->cfg, MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS));
    int rc = load_rules(ing, ctx->cfg);
    if (rc != 0)
        return rc;
    if (mutt_config_bool(ctx->cfg, MUTT_CFG_LINEAGE_ENABLED)) {
        json_t *d = json_pack("{s:s, s:s}", "pod", ctx->pod_name ? ctx->pod_name : "", "queue",
                              mutt_config_str(ctx->cfg, MUTT_CFG_INGEST_QUEUE_NAME));
        rc = d ? mutt_lineage_value(d, &ing->lin_value, &ing->lin_value_len) : MUTT_ENOMEM;
        json_decref(d);
        if (rc != 0)
            return rc;
        snprintf(ing->lin_ttl, sizeof ing->lin_ttl, "%lld",
                 (long long)mutt_config_int(ctx->cfg, MUTT_CFG_LINEAGE_TTL_SECONDS));
    }
    rc = register_metrics(ing, ctx->metrics);
    if (rc != 0)
        return rc;
    ing->script_id = mutt_redis_script_register(ctx->redis, "ingest", mutt_ingest_lua);
    if (ing->script_id < 0)
        return ing->script_id;
    ing->conn = mutt_redis_conn_open(ctx->redis, "ingest");
    if (!ing->conn)
        return MUTT_ENOMEM;
    rc = mutt_redis_conn_on_state(ing->conn, on_conn_state, ing);
    if (rc != 0)
        return rc;
    if (uv_check_init(ctx->loop, &ing->flush_check) != 0 || uv_prepare_init(ctx->loop, &ing->flush_prepare) != 0 ||
        uv_timer_init(ctx->loop, &ing->pace_timer) != 0)
        return MUTT_EIO;
    ing->flush_check.data = ing;
    ing->flush_prepare.data = ing;
    ing->pace_timer.data = ing;
    ing->last_send_ns = 0;
    ing->check_ready = true;
    static const char *const paths[] = {"/api/v2/ingest", "/api/v1/ingest", "/ingest"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        rc = mutt_http_route(ctx->http, MUTT_HTTP_INGEST, "POST", paths[i], ingest_on_ingest, ing);
        if (rc != 0)
            return rc;
    }
    mutt_stage_life_set_state(&ing->life, MUTT_STAGE_RUNNING);
    mutt_log_info("ingest", "accepting events on POST /api/v2/ingest, /api/v1/ingest, /ingest -> %s",
                  mutt_config_str(ctx->cfg, MUTT_CFG_INGEST_QUEUE_NAME));
    return 0;
}

static void ingest_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct ingest *ing = &g_ingest;
    if (mutt_stage_life_begin_stop(&ing->life, done, privdata))
        ingest_maybe_stopped(ing);
}

static enum mutt_role_health ingest_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    (void)ctx;
    struct ingest *ing = &g_ingest;
    if (ing->last_bytes_full) {
        snprintf(detail, detail_len, "queue over max_ingest_queue_bytes: answering 503");
        return MUTT_HEALTH_DEGRADED;
    }
    if (ing->min_replicas > 0 && ing->last_replicas >= 0 && ing->last_replicas < ing->min_replicas) {
        snprintf(detail, detail_len, "last WAIT confirmed %lld of %lld replicas: answering 503 not_replicated",
                 ing->last_replicas, (long long)ing->min_replicas);
        return MUTT_HEALTH_DEGRADED;
    }
    if (ing->last_cap > 0 && ing->last_depth >= ing->last_cap) {
        snprintf(detail, detail_len, "queue full (%lld of %lld): answering 503", (long long)ing->last_depth,
                 (long long)ing->last_cap);
        return MUTT_HEALTH_DEGRADED;
    }
    return MUTT_HEALTH_OK;
}

static void ingest_reload(struct mutt_ctx *ctx)
{
    load_rules(&g_ingest, ctx->cfg); /* keeps the old rules when the new value is refused */
}

const struct mutt_stage mutt_ingest_stage = {
    .name = "ingest",
    .role = MUTT_ROLE_INGEST,
    .start = ingest_start,
    .stop = ingest_stop,
    .health = ingest_health,
    .reload = ingest_reload,
};
