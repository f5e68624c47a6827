/* Private to the alert stage (alert.c: lifecycle and per-item flow; alert_backpressure.c: the W17
 * verdict; alert_metrics.c: metric registration): the stage's state and the calls from alert.c
 * into its helpers (never the other way).
 * Not a public interface: include/mutt/alert.h is. Loop thread only. */
#ifndef MUTT_ALERT_INTERNAL_H
#define MUTT_ALERT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/alert.h"
#include "mutt/event.h"
#include "mutt/metrics.h"
#include "mutt/queue_bytes.h"
#include "mutt/relq.h"
#include "mutt/stage_life.h"

enum status_label { ST_HANDLED = 0, ST_UNHANDLED, ST_POISON, ST_ERROR, ST_COUNT_ };

struct mutt_dynconfig;

/* Backpressure as last judged (written only by alert_bp_judge). */
struct alert_bp {
    bool deferring;             /* relq paused by backpressure (defer mode) */
    bool shedding;              /* items go to the DLQ (dlq mode) */
    bool warned;                /* above the warn threshold (logged once per crossing) */
};

/* What one depth reading means; alert.c acts on it. */
struct alert_bp_verdict {
    bool warn_crossed;          /* just went above the warn threshold: log once */
    bool defer_changed;         /* bp->deferring flipped: pause or resume relq */
    bool shed_changed;          /* bp->shedding flipped: log it */
    int64_t warn_threshold, shed_threshold; /* as read for this verdict (for the log lines) */
};

struct alert {
    struct mutt_ctx *ctx;
    struct mutt_stage_life life; /* STARTING until the first cache load, then RUNNING; DRAINING */
    bool consuming;             /* relq started (it must be stopped at our stop); set with RUNNING */
    struct mutt_relq *relq;
    struct mutt_alert_cache *cache;
    struct mutt_alert_audit *audit;
    struct mutt_alert_unhandled *unhandled; /* read by the GET route through &g_alert.unhandled */
    struct mutt_match_scratch *scratch;
    uint64_t regex_hits_seen;
    struct alert_sample *sample;      /* the dry-run sample's writer (alert_sample.c) */

    struct mutt_event_rules required; /* REQUIRED_FIELDS, the list ingest enforces */
    const char *source;         /* INGEST_QUEUE_NAME (borrowed from cfg) */
    char source_bytes_key[MUTT_QUEUE_BYTES_KEY_MAX]; /* D52: its byte counter, kept by relq */
    const char *alert_queue;
    const char *dlq;
    int64_t max_retries;

    uv_timer_t reload_timer;
    uv_timer_t bp_timer;        /* backpressure + depth gauges */
    uv_timer_t reap_timer;      /* runs the final frees outside any callback */
    bool timers_open;
    struct alert_bp bp;         /* W17 state (alert_backpressure.c) */
    int64_t last_alert_depth;
    size_t bp_inflight;

    size_t busy;                /* item ops not finished */
    struct item_op *stalled;    /* completions refused locally (EFULL/ENOMEM), resent by a timer */
    uv_timer_t stall_timer;
    uint64_t last_janitor_ms;   /* loop time of the last audit janitor pass */
    bool relq_stopped, audit_stopped;
    bool maint_stopped;         /* alert_maint.c wrote its last counts (or never ran) */

    struct mutt_counter *processed[ST_COUNT_];
    struct mutt_counter *forwarded;
    struct mutt_counter *meta_alerts;
    struct mutt_counter *templates_capped; /* D62: new templates not tracked (host at its cap) */
    struct mutt_counter *reload_failures;
    struct mutt_counter *regex_hits;
    struct mutt_counter *shed_dlq, *shed_defer;
    struct mutt_counter *already_gone;
    struct mutt_histogram *latency;
    struct mutt_histogram *reload_latency;
    struct mutt_histogram *match_seconds;
    struct mutt_gauge *rules_count, *dev_count, *teams_count;
    struct mutt_gauge *dlq_depth, *processing_depth, *queue_depth;
};

/* alert_backpressure.c: judges one depth reading against the live thresholds, updates bp and
 * says what changed. No I/O; cannot fail. */
void alert_bp_judge(struct alert_bp *bp, const struct mutt_dynconfig *dyn, long long depth, bool stopping,
                    struct alert_bp_verdict *out);
/* alert_metrics.c: registers every alert-stage metric family into al. 0 or MUTT_ENOMEM. */
int alert_register_metrics(struct alert *al, struct mutt_metrics *m);

/* alert_sample.c: the dry-run sample's writer (issue 16). create registers its script (NULL on
 * failure); add copies one matched event's bytes (borrowed) and sends the turn's batch in one
 * call on the next loop turn (nothing when sample_events is 0); destroy drops what is unsent and
 * frees once its timer is closed. */
struct alert_sample;
struct alert_sample *alert_sample_create(uv_loop_t *loop, struct mutt_redis *r, const struct mutt_dynconfig *dyn);
void alert_sample_add(struct alert_sample *s, const char *data, size_t len);
void alert_sample_destroy(struct alert_sample *s);
/* alert_maint.c (issue 16 §3): maintenance windows. One instance per process. */
struct mutt_maint_window;
struct mutt_ctx;
/* One suppressed event, counted once its completion is durable. Borrowed for the call. */
struct alert_maint_hit {
    int64_t window_id;
    int64_t rule_id;            /* 0 for an unhandled meta-alert */
    const char *hostname;
    bool summary;               /* the window sends a summary: keep counts for it */
    bool unhandled;             /* an unhandled-event meta-alert held, not a matched event */
};
/* Registers mutt_maintenance_suppressed_total, mutt_maintenance_unhandled_suppressed_total and
 * mutt_maintenance_summaries_total. 0 or MUTT_ENOMEM. */
int alert_maint_register(struct mutt_ctx *ctx);
/* Reads the windows, subscribes to their updates (once per process), starts the flush/summary
 * timer. alert_queue is borrowed (config). 0, MUTT_ESTATE when running, or a Redis error. */
int alert_maint_start(struct mutt_ctx *ctx, const char *alert_queue);
/* The window holding an event of `hostname` matched by a rule of `team` at now_ms (borrowed;
 * valid until the next loop turn), or NULL. NULL when not running. */
const struct mutt_maint_window *alert_maint_match(const char *hostname, const char *team, int64_t now_ms);
/* Counts a suppressed event or held meta-alert (metric; and its window's summary counts when it
 * wants one). */
void alert_maint_count(const struct alert_maint_hit *hit, int64_t now_ms);
/* Writes the last counts, waits for every call in flight, then calls done(priv) exactly once
 * (at once when not running). */
void alert_maint_stop(void (*done)(void *), void *priv);

#endif
