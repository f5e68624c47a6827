/* The alert stage's backpressure (CONTRACT §4, W17): polls the alert queue's depth, warns above
 * alerter_queue_warn_threshold and above alerter_queue_shed_threshold pauses consuming (defer)
 * or sheds through the processing list into the DLQ (dlq), thresholds read live; also keeps the
 * DLQ and processing-list gauges and registers the stage's metrics. Loop thread only. */
#define _GNU_SOURCE
#include "alert_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/redis.h"

static const char *const status_names[ST_COUNT_] = {"handled", "unhandled", "poison", "error"};

static void on_alert_depth(void *priv, redisReply *reply, int status)
{
    struct alert *al = priv;
    al->bp_inflight--;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_INTEGER || !al->running) {
        alert_maybe_stopped(al);
        return;
    }
    struct mutt_dynconfig *dyn = al->ctx->dyn;
    long long depth = reply->integer;
    al->last_alert_depth = depth;
    mutt_gauge_set(al->queue_depth, (double)depth);
    int64_t warn = mutt_dynconfig_int(dyn, "alerter_queue_warn_threshold");
    int64_t shed = mutt_dynconfig_int(dyn, "alerter_queue_shed_threshold");
    bool dlq_mode = strcmp(mutt_dynconfig_str(dyn, "alerter_shed_mode"), "dlq") == 0;
    bool over = depth > shed && !al->stopping;
    if (depth > warn && !al->warned) {
        mutt_log_warn("alert", "%s depth %lld above alerter_queue_warn_threshold %lld", al->alert_queue, depth,
                      (long long)warn);
        al->warned = true;
    } else if (depth <= warn) {
        al->warned = false;
    }
    bool want_defer = over && !dlq_mode;
    bool want_shed = over && dlq_mode;
    if (want_defer != al->deferring) {
        al->deferring = want_defer;
        if (want_defer) {
            mutt_relq_pause(al->relq);
            mutt_log_warn("alert", "deferring: %s depth %lld above %lld; consuming paused", al->alert_queue, depth,
                          (long long)shed);
        } else {
            mutt_relq_resume(al->relq);
            mutt_log_info("alert", "resuming: %s depth %lld", al->alert_queue, depth);
        }
    }
    if (want_defer)
        mutt_counter_inc(al->shed_defer);
    if (want_shed != al->shedding) {
        al->shedding = want_shed;
        mutt_log_warn("alert", "%s: %s depth %lld (threshold %lld)", want_shed ? "shedding to the DLQ" : "shedding ended",
                      al->alert_queue, depth, (long long)shed);
    }
    alert_maybe_stopped(al);
}

static void on_dlq_depth(void *priv, redisReply *reply, int status)
{
    struct alert *al = priv;
    al->bp_inflight--;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER)
        mutt_gauge_set(al->dlq_depth, (double)reply->integer);
    alert_maybe_stopped(al);
}

static void on_processing_depth(void *priv, int status, long long depth)
{
    struct alert *al = priv;
    al->bp_inflight--;
    if (status == 0)
        mutt_gauge_set(al->processing_depth, (double)depth);
    alert_maybe_stopped(al);
}

void alert_on_bp_timer(uv_timer_t *t)
{
    struct alert *al = t->data;
    struct mutt_redis_conn *c = mutt_redis_cmd(al->ctx->redis);
    if (al->bp_inflight == 0 && mutt_redis_connected(al->ctx->redis)) {
        if (mutt_redis_commandf(c, on_alert_depth, al, "LLEN %s", al->alert_queue) == 0)
            al->bp_inflight++;
        if (mutt_redis_commandf(c, on_dlq_depth, al, "LLEN %s", al->dlq) == 0)
            al->bp_inflight++;
        if (al->consuming && mutt_relq_processing_depth(al->relq, on_processing_depth, al) == 0)
            al->bp_inflight++;
    }
    /* audit claim lists of dead pods: at start (start_consuming) and every JANITOR_INTERVAL */
    uint64_t now = uv_now(al->ctx->loop);
    uint64_t every = (uint64_t)mutt_config_int(al->ctx->cfg, MUTT_CFG_JANITOR_INTERVAL) * 1000u;
    if (al->consuming && now - al->last_janitor_ms >= every && mutt_alert_audit_janitor(al->audit) == 0)
        al->last_janitor_ms = now;
    uint64_t ms = (uint64_t)mutt_dynconfig_int(al->ctx->dyn, "alerter_defer_sleep_ms");
    if (al->last_alert_depth < 0)
        ms = 20; /* no depth seen yet (Redis still connecting): look again soon */
    uv_timer_start(&al->bp_timer, alert_on_bp_timer, ms ? ms : 250, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* stage                                                                                       */

int alert_register_metrics(struct alert *al, struct mutt_metrics *m)
{
    static const char *const status_l[] = {"status", NULL};
    static const char *const mode_l[] = {"mode", NULL};
    static const double match_buckets[] = {1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2};
    struct mutt_counter *processed = mutt_metrics_counter(m, "mutt_alerter_events_processed_total",
                                                          "Events by outcome.", status_l);
    struct mutt_counter *shed = mutt_metrics_counter(m, "mutt_alerter_shed_events_total",
                                                     "Backpressure actions: dlq = items shed, defer = paused checks.",
                                                     mode_l);
    al->forwarded = mutt_metrics_counter(m, "mutt_alerter_alerts_forwarded_total",
                                         "Alerts pushed to the alert queue (handled + meta).", NULL);
    al->meta_alerts = mutt_metrics_counter(m, "mutt_alerter_unhandled_meta_alerts_total", "Meta-alerts raised.", NULL);
    al->templates_capped = mutt_metrics_counter(
        m, "mutt_unhandled_templates_capped_total",
        "Unhandled events whose new template was not tracked: the host had unhandled_max_templates_per_host "
        "templates in its window (D62).",
        NULL);
    al->reload_failures = mutt_metrics_counter(m, "mutt_alerter_cache_reload_failures_total",
                                               "Rules cache reloads that failed (old cache kept).", NULL);
    al->regex_hits = mutt_metrics_counter(m, "mutt_alerter_regex_limit_hits_total",
                                          "Regex evaluations stopped by a PCRE2 limit (counted as no match).", NULL);
    al->already_gone = mutt_metrics_counter(m, "mutt_alerter_completions_already_gone_total",
                                            "Completions that found the item already returned to the queue.", NULL);
    al->latency = mutt_metrics_histogram(m, "mutt_alerter_processing_latency_seconds",
                                         "Time from pop to durable outcome (handled and unhandled events).", NULL,
                                         mutt_metrics_latency_buckets,
                                         MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
    al->reload_latency = mutt_metrics_histogram(m, "mutt_alerter_cache_reload_latency_seconds",
                                                "Rules cache reload time.", NULL, mutt_metrics_default_buckets,
                                                MUTT_METRICS_NBUCKETS(mutt_metrics_default_buckets));
    al->match_seconds = mutt_metrics_histogram(m, "mutt_alerter_rules_match_seconds", "Rule matching time per event.",
                                               NULL, match_buckets, MUTT_METRICS_NBUCKETS(match_buckets));
    al->rules_count = mutt_metrics_gauge(m, "mutt_alerter_cache_rules_count", "Active rules cached.", NULL);
    al->dev_count = mutt_metrics_gauge(m, "mutt_alerter_cache_dev_hosts_count", "Development hosts cached.", NULL);
    al->teams_count = mutt_metrics_gauge(m, "mutt_alerter_cache_teams_count", "Device teams cached.", NULL);
    al->dlq_depth = mutt_metrics_gauge(m, "mutt_alerter_dlq_depth", "Length of the alerter DLQ.", NULL);
    al->processing_depth = mutt_metrics_gauge(m, "mutt_alerter_processing_list_depth",
                                              "Length of this pod's processing list.", NULL);
    al->queue_depth = mutt_metrics_gauge(m, "mutt_alerter_queue_depth",
                                         "Length of the alert queue (backpressure input).", NULL);
    if (!processed || !shed || !al->forwarded || !al->meta_alerts || !al->templates_capped || !al->reload_failures || !al->regex_hits ||
        !al->already_gone || !al->latency || !al->reload_latency || !al->match_seconds || !al->rules_count ||
        !al->dev_count || !al->teams_count || !al->dlq_depth || !al->processing_depth || !al->queue_depth)
        return MUTT_ENOMEM;
    for (int i = 0; i < ST_COUNT_; i++) {
        const char *v[] = {status_names[i]};
        al->processed[i] = mutt_counter_labels(processed, v);
    }
    const char *d[] = {"dlq"}, *f[] = {"defer"};
    al->shed_dlq = mutt_counter_labels(shed, d);
    al->shed_defer = mutt_counter_labels(shed, f);
    return 0;
}
