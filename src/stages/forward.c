/* The forward stage (role forward, CONTRACT §5): lifecycle and the per-alert flow. Items come
 * from relq (BRPOPLPUSH mutt:alert_queue -> mutt:processing:moog:<pod>, up to moog_max_inflight
 * handed out); each goes admit -> (breaker, rate limit) -> POST -> classify -> exactly one
 * atomic completion (D3): delivered = plain LREM; retry = ZADD into mutt:retry:moog + LREM (D4);
 * dead = LPUSH mutt:dlq:moog + LREM. Alerts held by the breaker or the rate limiter wait in this
 * stage's `waiting` list (they stay in the processing list, relq is paused so nothing more is
 * popped), never dropped (W13, W15). forward_breaker.c keeps the breaker's view and answers
 * with verdicts; this file and its parts (forward_internal.h) act on them (waits, pauses, probes,
 * sends) and own every callback. Lifecycle and stop go through stage_life. Loop thread only;
 * one instance per process. */
#define _GNU_SOURCE
#include "mutt/forward.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "forward_internal.h"
#include "lineage_push.h"
#include "mutt/alert_item.h"
#include "mutt/backoff.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/forward_classify.h"
#include "mutt/http_client.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/moog_payload.h"
#include "mutt/random.h"
#include "mutt/ratelimit.h"
#include "mutt/redact.h"
#include "mutt/redis.h"
#include "mutt/relq.h"
#include "mutt/replay.h"
#include "mutt/retryset.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/version.h"

static struct forward g_forward;



/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

int64_t fwd_wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

const char *fwd_alert_str(const json_t *a, const char *key)
{
    const json_t *v = json_object_get(a, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *fwd_op_cid(const struct fwd_op *op)
{
    return op->alert ? fwd_alert_str(op->alert, "_correlation_id") : NULL;
}

static void op_free(struct fwd_op *op)
{
    free(op->lin_payload);
    json_decref(op->lin_attempt);
    free(op->payload);
    free(op->body);
    json_decref(op->alert);
    free(op);
}

void fwd_op_finish(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    op_free(op);
    fw->busy--;
    fwd_maybe_stopped(fw);
}

/* The item stays in the processing list: relq returns it at our stop or its reconnect
 * recovery, or a janitor does after a crash. Used when Redis itself failed, and at stop. */
void fwd_op_abandon(struct fwd_op *op)
{
    mutt_relq_abandon(op->item);
    fwd_op_finish(op);
}

struct mutt_counter *fwd_requests_child(struct forward *fw, const char *status, const char *reason)
{
    const char *v[] = {status, reason};
    return mutt_counter_labels(fw->m_requests, v);
}

/* ------------------------------------------------------------------------------------------ */
/* retry-set promotion and gauges                                                              */

static void on_promote_timer(uv_timer_t *t);

static void on_promote_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    uint64_t next = PROMOTE_INTERVAL_MS;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        mutt_counter_add(fw->m_promoted, (double)reply->integer);
        if (reply->integer >= PROMOTE_BATCH)
            next = 0; /* more are due: go on at once */
    }
    if (fw->timers_open && !mutt_stage_life_draining(&fw->life))
        uv_timer_start(&fw->promote_timer, on_promote_timer, next, 0);
    fwd_maybe_stopped(fw);
}

static void on_promote_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    char now[24], max[16];
    snprintf(now, sizeof now, "%lld", (long long)fwd_wall_ms());
    snprintf(max, sizeof max, "%d", PROMOTE_BATCH);
    const char *keys[] = {fw->retry_key, fw->source};
    const char *args[] = {now, max};
    if (mutt_redis_evalsha(mutt_redis_cmd(fw->ctx->redis), fw->script_promote, 2, keys, NULL, 2, args, NULL,
                           on_promote_reply, fw) == 0) {
        fw->rpending++;
        return;
    }
    uv_timer_start(&fw->promote_timer, on_promote_timer, PROMOTE_INTERVAL_MS, 0);
}

static void on_dlq_depth(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    mutt_gauge_set_from_reply(fw->m_dlq_depth, reply, status);
    fwd_maybe_stopped(fw);
}

static void on_processing_depth(void *priv, int status, long long depth)
{
    struct forward *fw = priv;
    fw->rpending--;
    mutt_gauge_set_if_ok(fw->m_processing_depth, status, depth);
    fwd_maybe_stopped(fw);
}

static void on_gauge_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (mutt_redis_connected(fw->ctx->redis)) {
        if (mutt_redis_commandf(mutt_redis_cmd(fw->ctx->redis), on_dlq_depth, fw, "LLEN %s", fw->dlq) == 0)
            fw->rpending++;
        if (mutt_stage_life_started(&fw->life) && mutt_relq_processing_depth(fw->relq, on_processing_depth, fw) == 0)
            fw->rpending++;
        fwd_poll_breaker(fw);
    }
    uv_timer_start(&fw->gauge_timer, on_gauge_timer, GAUGE_INTERVAL_MS, 0);
}

static void on_inflight_changed(void *priv, const char *key, const char *old_value, const char *new_value)
{
    struct forward *fw = priv;
    if (fw->relq)
        mutt_relq_set_max_inflight(fw->relq, (size_t)mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_MAX_INFLIGHT));
}

/* ------------------------------------------------------------------------------------------ */
/* stage                                                                                       */

static int register_metrics(struct forward *fw, struct mutt_metrics *m)
{
    static const char *const req_l[] = {"status", "reason", NULL};
    static const char *const status_l[] = {"status", NULL};
    static const double req_buckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}; /* reference §12.3 */
    fw->m_requests = mutt_metrics_counter(m, "mutt_moog_requests_total",
                                          "Webhook attempts by outcome (reason: http, rate_limit = a 429 answer, "
                                          "timeout, connect, retry_exhausted).",
                                          req_l);
    struct mutt_counter *processed = mutt_metrics_counter(
        m, "mutt_moog_alerts_processed_total", "Alerts by outcome: success, dlq, error (= retry scheduled).", status_l);
    fw->m_latency = mutt_metrics_histogram(m, "mutt_moog_request_latency_seconds",
                                           "Webhook exchange time (every completed attempt).", NULL, req_buckets,
                                           MUTT_METRICS_NBUCKETS(req_buckets));
    fw->m_processing = mutt_metrics_histogram(m, "mutt_moog_processing_latency_seconds",
                                              "Time from pop to durable outcome per alert.", NULL,
                                              mutt_metrics_latency_buckets,
                                              MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
    fw->m_dlq_depth = mutt_metrics_gauge(m, "mutt_moog_dlq_depth", "Length of the forward DLQ.", NULL);
    fw->m_processing_depth = mutt_metrics_gauge(m, "mutt_moog_processing_list_depth",
                                                "Length of this pod's forward processing list.", NULL);
    fw->m_rate_hits = mutt_metrics_counter(m, "mutt_moog_rate_limit_hits_total",
                                           "Alerts held by the shared rate limiter (they wait, never dropped).", NULL);
    fw->m_promoted = mutt_metrics_counter(m, "mutt_moog_retries_promoted_total",
                                          "Retry-set members moved back to the alert queue by this pod.", NULL);
    fw->m_already_gone = mutt_metrics_counter(m, "mutt_moog_completions_already_gone_total",
                                              "Completions that found the alert already returned to the queue.", NULL);
    if (!fw->m_requests || !processed || !fw->m_latency || !fw->m_processing || !fw->m_dlq_depth ||
        !fw->m_processing_depth || !fw->m_rate_hits || !fw->m_promoted || !fw->m_already_gone)
        return MUTT_ENOMEM;
    static const char *const names[FWD_ST_COUNT_] = {"success", "dlq", "error"};
    for (int i = 0; i < FWD_ST_COUNT_; i++) {
        const char *v[] = {names[i]};
        fw->m_processed[i] = mutt_counter_labels(processed, v);
    }
    fw->c_success = fwd_requests_child(fw, "success", "");
    fwd_requests_child(fw, "fail", "http"); /* shown at 0 from the start */
    return fwd_breaker_register_metrics(fw, m);
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_timers(struct forward *fw)
{
    if (!fw->timers_open)
        return;
    fw->timers_open = false;
    uv_close((uv_handle_t *)&fw->promote_timer, on_timer_closed);
    uv_close((uv_handle_t *)&fw->gauge_timer, on_timer_closed);
    uv_close((uv_handle_t *)&fw->rate_timer, on_timer_closed);
    uv_close((uv_handle_t *)&fw->stall_timer, on_timer_closed);
    uv_close((uv_handle_t *)&fw->probe_timer, on_timer_closed);
    uv_close((uv_handle_t *)&fw->reap_timer, on_timer_closed);
    uv_close((uv_handle_t *)&fw->lease_timer, on_timer_closed);
}

static void release_all(struct forward *fw)
{
    mutt_relq_destroy(fw->relq);
    fw->relq = NULL;
    mutt_http_client_destroy(fw->http);
    fw->http = NULL;
    free(fw->auth);
    fw->auth = NULL;
}

static void on_reap(uv_timer_t *t)
{
    struct forward *fw = t->data;
    release_all(fw);
    close_timers(fw);
    mutt_log_info("forward", "stopped");
    mutt_stage_life_finish(&fw->life);
}

void fwd_maybe_stopped(struct forward *fw)
{
    /* out: ops alive, the stage's own Redis calls, and relq until its stop returned the list */
    if (!mutt_stage_life_drained(&fw->life, fw->busy + fw->rpending + (fw->relq_stopped ? 0 : 1)))
        return;
    if (!uv_is_active((uv_handle_t *)&fw->reap_timer))
        uv_timer_start(&fw->reap_timer, on_reap, 0, 0);
}

static void on_relq_stopped(void *priv, int status)
{
    struct forward *fw = priv;
    if (status != 0)
        mutt_log_warn("forward", "stop: returning the processing list failed (%s); a janitor will",
                      mutt_strerror(status));
    fw->relq_stopped = true;
    /* what is still in flight after the drain went back to the queue with the list: cancel it
     * (each cancelled request abandons its item) */
    mutt_http_client_stop(fw->http);
    fwd_maybe_stopped(fw);
}

static int forward_start(struct mutt_ctx *ctx)
{
    struct forward *fw = &g_forward;
    if (mutt_stage_life_started(&fw->life))
        return MUTT_ESTATE;
    const struct mutt_config *cfg = ctx->cfg;
    memset(fw, 0, sizeof *fw);
    fw->ctx = ctx;
    mutt_stage_life_init(&fw->life, "forward", ctx);
    fw->source = mutt_config_str(cfg, MUTT_CFG_ALERT_QUEUE_NAME);
    fw->dlq = mutt_config_str(cfg, MUTT_CFG_MOOG_DLQ_NAME);
    fw->retry_key = mutt_config_str(cfg, MUTT_CFG_MOOG_RETRY_KEY);
    fw->rate_key = mutt_config_str(cfg, MUTT_CFG_MOOG_RATE_LIMIT_KEY);
    fw->url = mutt_config_str(cfg, MUTT_CFG_MOOG_WEBHOOK_URL);
    fw->timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_MOOG_TIMEOUT) * 1000u;
    fw->retry_base_ms = (uint64_t)(mutt_config_double(cfg, MUTT_CFG_MOOG_RETRY_BASE_DELAY) * 1000.0);
    fw->retry_max_ms = (uint64_t)(mutt_config_double(cfg, MUTT_CFG_MOOG_RETRY_MAX_DELAY) * 1000.0);
    if (fw->retry_max_ms < fw->retry_base_ms)
        fw->retry_max_ms = fw->retry_base_ms;
    fw->breaker_enabled = mutt_config_bool(cfg, MUTT_CFG_CIRCUIT_BREAKER_ENABLED);
    if (!fw->url[0]) {
        mutt_log_error("forward", "MOOG_WEBHOOK_URL is not set");
        return MUTT_EINVAL;
    }
    int rc = register_metrics(fw, ctx->metrics);
    if (rc != 0)
        return rc;
    fw->script_rate = mutt_redis_script_register(ctx->redis, "moog_ratelimit", mutt_ratelimit_lua);
    fw->script_promote = mutt_redis_script_register(ctx->redis, "moog_retry_promote", mutt_retry_promote_lua);
    if (fw->script_rate < 0 || fw->script_promote < 0 || fwd_breaker_init(fw) != 0)
        return MUTT_ENOMEM;
    size_t inflight = (size_t)mutt_dynconfig_int(ctx->dyn, MUTT_DYN_MOOG_MAX_INFLIGHT);
    struct mutt_relq_opts ro = {
        .name = "moog",
        .source = fw->source,
        .processing_prefix = mutt_config_str(cfg, MUTT_CFG_MOOG_PROCESSING_LIST_PREFIX),
        .heartbeat_prefix = mutt_config_str(cfg, MUTT_CFG_MOOG_HEARTBEAT_PREFIX),
        .pod = ctx->pod_name,
        .block_timeout_s = (unsigned)mutt_config_int(cfg, MUTT_CFG_BRPOPLPUSH_TIMEOUT),
        .max_inflight = inflight ? inflight : 1,
        .heartbeat_interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_INTERVAL) * 1000u,
        .heartbeat_expiry_s = (unsigned)mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_EXPIRY),
        .janitor_interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_JANITOR_INTERVAL) * 1000u,
    };
    fw->relq = mutt_relq_create(ctx->loop, ctx->redis, &ro, fwd_on_item, fw);
    fw->http = mutt_http_client_create(ctx->loop, HTTP_CLIENT_CAP);
    if (!fw->relq || !fw->http) {
        release_all(fw);
        return MUTT_ENOMEM;
    }
    uv_timer_t *timers[] = {&fw->promote_timer, &fw->gauge_timer, &fw->rate_timer, &fw->stall_timer,
                            &fw->probe_timer,   &fw->reap_timer,  &fw->lease_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(ctx->loop, timers[i]);
        timers[i]->data = fw;
    }
    fw->timers_open = true;
    if (ctx->dyn && (rc = mutt_dynconfig_watch(ctx->dyn, MUTT_DYN_MOOG_MAX_INFLIGHT, on_inflight_changed, fw)) != 0) {
        release_all(fw);
        close_timers(fw);
        return rc;
    }
    rc = mutt_relq_start(fw->relq);
    if (rc != 0) {
        if (ctx->dyn)
            mutt_dynconfig_unwatch(ctx->dyn, on_inflight_changed, fw);
        release_all(fw);
        close_timers(fw);
        return rc;
    }
    /* STARTING: held until the first look at the shared breaker (update_pause moves it to
     * RUNNING then): a pod starting while it is OPEN must not send (W15) */
    mutt_stage_life_set_state(&fw->life, MUTT_STAGE_STARTING);
    fwd_update_pause(fw);
    uv_timer_start(&fw->promote_timer, on_promote_timer, 0, 0);
    uv_timer_start(&fw->gauge_timer, on_gauge_timer, 0, 0);
    char shown_url[MUTT_REDACT_URL_MAX]; /* the URL may carry credentials (CONTRACT §9) */
    mutt_log_info("forward", "consuming %s into %s -> %s (%zu in flight, breaker %s)", fw->source,
                  mutt_relq_processing_list(fw->relq), mutt_redact_url(fw->url, shown_url, sizeof shown_url),
                  ro.max_inflight, fw->breaker_enabled ? "on" : "off");
    return 0;
}

static void forward_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct forward *fw = &g_forward;
    if (!mutt_stage_life_begin_stop(&fw->life, done, privdata))
        return; /* never started: done already ran */
    if (ctx->dyn)
        mutt_dynconfig_unwatch(ctx->dyn, on_inflight_changed, fw);
    uv_timer_stop(&fw->promote_timer);
    uv_timer_stop(&fw->gauge_timer);
    uv_timer_stop(&fw->rate_timer);
    uv_timer_stop(&fw->probe_timer);
    uv_timer_stop(&fw->lease_timer);
    /* held alerts were never attempted: they go back to the queue with the processing list */
    struct fwd_op *op;
    while ((op = fwd_wait_pop(fw)))
        fwd_op_abandon(op);
    fwd_update_pause(fw);
    uint64_t drain_ms = (uint64_t)mutt_config_int(ctx->cfg, MUTT_CFG_SHUTDOWN_TIMEOUT) * 1000u / 2u;
    if (mutt_relq_stop(fw->relq, drain_ms, on_relq_stopped, fw) != 0)
        on_relq_stopped(fw, 0);
}

static enum mutt_role_health forward_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    struct forward *fw = &g_forward;
    if (!mutt_stage_life_started(&fw->life))
        return MUTT_HEALTH_DOWN;
    if (fw->life.state == MUTT_STAGE_STARTING) {
        snprintf(detail, detail_len, "forward: waiting for the first look at the shared breaker");
        return MUTT_HEALTH_STARTING; /* D34: nothing is sent before the breaker's state is known */
    }
    if (fwd_breaker_health(fw, detail, detail_len))
        return MUTT_HEALTH_DEGRADED;
    return MUTT_HEALTH_OK;
}

const struct mutt_stage mutt_forward_stage = {
    .name = "forward",
    .role = MUTT_ROLE_FORWARD,
    .start = forward_start,
    .stop = forward_stop,
    .health = forward_health,
    .reload = NULL,
};

/* ---- test hooks ------------------------------------------------------------------------------ */

bool mutt_forward_running(void)
{
    return mutt_stage_life_started(&g_forward.life);
}

size_t mutt_forward_busy(void)
{
    return g_forward.busy;
}
