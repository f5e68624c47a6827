/* The alert stage's metric families, registered once at start into struct alert. Called by
 * alert.c only; it calls nothing back. Loop thread only. */
#include "alert_internal.h"

#include "mutt/error.h"
#include "mutt/metrics.h"

static const char *const status_names[ST_COUNT_] = {"handled", "unhandled", "poison", "error"};

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
