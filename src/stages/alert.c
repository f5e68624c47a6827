/* The alert stage (role alert, CONTRACT §4): lifecycle and the per-item flow. Items come from
 * relq (BRPOPLPUSH into mutt:processing:alerter:<pod>, up to ALERTER_CONCURRENCY in flight);
 * each one ends in exactly one atomic completion (D3): LREM of the item together with its
 * outcome pushes: handled -> alert (when forwarding) + audit row to mutt:audit:pending;
 * unhandled -> meta-alert when the counting script said so; poison/unparseable -> DLQ; a failed
 * attempt -> the item with _retry_count + 1 back to the ingest queue. Audit rows reach
 * PostgreSQL later, in batches (alert_audit.c), so alerts never wait for the database.
 * Loop thread only; one instance per process. */
#define _GNU_SOURCE
#include "mutt/alert.h"
#include "alert_internal.h"
#include "lineage_push.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/alert_item.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/maintenance.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/relq.h"
#include "mutt/replay.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/rules.h"
#include "mutt/timefmt.h"

#define CACHE_RETRY_MS 1000u   /* until the first load succeeds */
#define AUDIT_SLOTS 4u
#define AUDIT_FLUSH_MS 50u
#define AUDIT_RETRY_MS 1000u
#define DLQ_ORIGIN MUTT_REPLAY_ORIGIN_INGEST /* D5: where a DLQ item of this stage replays to */



static struct alert g_alert;

/* One item between relq handing it out and its completion. */
struct item_op {
    struct alert *al;
    struct mutt_relq_item *item;
    json_t *ev;                 /* parsed event (NULL for unparseable items) */
    const char *raw;            /* the item's bytes when they still are ev (not rewritten), else NULL:
                                   the audit row takes them as they are instead of a new dump */
    size_t raw_len;
    uint64_t start_ns;
    enum status_label label;    /* what a successful completion counts */
    bool forwards;              /* handled + forwarding: count the alert */
    bool meta;                  /* meta-alert pushed */
    bool retrying;              /* this completion is the retry path */
    struct alert_maint_hit maint; /* window_id != 0: held by that maintenance window */
    char *payloads[MUTT_RELQ_MAX_PUSHES];
    size_t npayloads;
    struct mutt_relq_push pushes[MUTT_RELQ_MAX_PUSHES]; /* kept for a resend after EFULL */
    size_t npushes;
    struct item_op *next_stalled;
    char lin_key[MUTT_LINEAGE_KEY_MAX]; /* the lineage push's key (D63), alive until completion */
};

static void schedule_reload(struct alert *al, uint64_t ms);
static void alert_maybe_stopped(struct alert *al);

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *event_str(const json_t *ev, const char *key)
{
    const json_t *v = json_object_get(ev, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void op_free(struct item_op *op)
{
    for (size_t i = 0; i < op->npayloads; i++)
        free(op->payloads[i]);
    json_decref(op->ev);
    free(op);
}

static void op_finish(struct item_op *op)
{
    struct alert *al = op->al;
    op_free(op);
    al->busy--;
    alert_maybe_stopped(al);
}

/* The item stays in the processing list; relq returns it to the source at our stop or its
 * reconnect recovery, or a janitor does after a crash. Used when Redis itself failed. */
static void op_abandon(struct item_op *op)
{
    mutt_relq_abandon(op->item);
    op_finish(op);
}

/* ------------------------------------------------------------------------------------------ */
/* completion                                                                                  */

static void retry_item(struct item_op *op, const char *why);

static void on_completed(void *priv, struct mutt_relq_item *item, int status)
{
    struct item_op *op = priv;
    struct alert *al = op->al;
    if (status == 0) {
        mutt_counter_inc(al->processed[op->label]);
        /* D22: poison and errored events are the "bad" of the processing SLO */
        mutt_slo_record(al->ctx->slo, MUTT_SLO_ALERTER_PROCESSING_SUCCESS,
                        op->label == ST_HANDLED || op->label == ST_UNHANDLED, 1);
        if (op->forwards)
            mutt_counter_inc(al->forwarded);
        if (op->meta) {
            mutt_counter_inc(al->meta_alerts);
            mutt_counter_inc(al->forwarded);
        }
        if (op->maint.window_id) {
            op->maint.hostname = event_str(op->ev, "hostname");
            alert_maint_count(&op->maint, wall_ms());
        }
        if (op->label == ST_HANDLED || op->label == ST_UNHANDLED)
            mutt_histogram_observe(al->latency, (double)(uv_hrtime() - op->start_ns) / 1e9);
        op_finish(op);
        return;
    }
    if (status == MUTT_ENOTFOUND) {
        /* a janitor or our stop already returned it to the source: nothing was pushed, the next
         * consumer does the work (the outcome stays single) */
        mutt_counter_inc(al->already_gone);
        op_finish(op);
        return;
    }
    if (status == MUTT_EIO && !op->retrying && op->ev) {
        retry_item(op, "completion refused by Redis");
        return;
    }
    mutt_log_kv(MUTT_LOG_WARNING, "alert", event_str(op->ev, "_correlation_id"), NULL,
                "completion failed (%s): the item stays in the processing list", mutt_strerror(status));
    op_abandon(op);
}

static void on_stall_timer(uv_timer_t *t);

/* Sends the completion with `pushes` (payloads owned by op). A local refusal (the command
 * connection's cap, OOM) is retried shortly: the item must not sit in the processing list until
 * the next reconnect. A disconnected Redis leaves it there for relq's recovery. */
static void complete(struct item_op *op, const struct mutt_relq_push *pushes, size_t n)
{
    if (pushes != op->pushes) {
        for (size_t i = 0; i < n; i++)
            op->pushes[i] = pushes[i];
        op->npushes = n;
    }
    int rc = mutt_relq_complete(op->item, op->pushes, op->npushes, on_completed, op);
    if (rc == MUTT_EFULL || rc == MUTT_ENOMEM) {
        struct alert *al = op->al;
        op->next_stalled = al->stalled;
        al->stalled = op;
        if (al->timers_open && !uv_is_active((uv_handle_t *)&al->stall_timer))
            uv_timer_start(&al->stall_timer, on_stall_timer, 20, 0);
        return;
    }
    if (rc != 0) {
        mutt_log_kv(MUTT_LOG_WARNING, "alert", event_str(op->ev, "_correlation_id"), NULL,
                    "completion not sent (%s): the item stays in the processing list", mutt_strerror(rc));
        op_abandon(op);
    }
}

static void on_stall_timer(uv_timer_t *t)
{
    struct alert *al = t->data;
    struct item_op *list = al->stalled;
    al->stalled = NULL;
    while (list) {
        struct item_op *op = list;
        list = op->next_stalled;
        op->next_stalled = NULL;
        complete(op, op->pushes, op->npushes);
    }
}

static void clear_payloads(struct item_op *op)
{
    for (size_t i = 0; i < op->npayloads; i++)
        free(op->payloads[i]);
    op->npayloads = 0;
}

/* Takes ownership of s (malloc'd). */
static void add_payload(struct item_op *op, struct mutt_relq_push *pushes, const char *key, char *s, size_t len)
{
    pushes[op->npayloads] = (struct mutt_relq_push){.kind = MUTT_RELQ_LPUSH, .key = key, .payload = s, .len = len};
    op->payloads[op->npayloads++] = s;
}

/* Lineage (D63): the event's step rides in its completion (no call of its own); details
 * packed from fmt (json_pack) only when lineage is on. Nothing is added when it is off or the
 * event has no id. */
static void add_lineage(struct item_op *op, struct mutt_relq_push *pushes, enum mutt_lineage_step code,
                        const char *fmt, ...)
{
    const struct mutt_config *cfg = op->al->ctx->cfg;
    if (!mutt_config_bool(cfg, MUTT_CFG_LINEAGE_ENABLED)) /* off: not even the details are built */
        return;
    va_list ap;
    va_start(ap, fmt);
    json_t *details = json_vpack_ex(NULL, 0, fmt, ap); /* json_pack's format (NULL on failure: "{}") */
    va_end(ap);
    char *s = NULL;
    if (mutt_lineage_push(cfg, op->ev, code, details, wall_ms(), op->lin_key, &pushes[op->npayloads], &s))
        op->payloads[op->npayloads++] = s;
}

static void to_dlq_event(struct item_op *op, const char *reason, enum status_label label)
{
    struct alert *al = op->al;
    struct mutt_relq_push pushes[2];
    size_t len = 0;
    char *s = NULL;
    if (mutt_dlq_envelope(op->ev, DLQ_ORIGIN, reason, wall_ms(), &s, &len) != 0) {
        op_abandon(op);
        return;
    }
    clear_payloads(op);
    add_payload(op, pushes, al->dlq, s, len);
    add_lineage(op, pushes, MUTT_LINEAGE_ALERT_DLQ, "{s:s, s:s}", "dlq", al->dlq, "reason", reason);
    op->label = label;
    mutt_log_kv(MUTT_LOG_WARNING, "alert", event_str(op->ev, "_correlation_id"), NULL, "to %s: %s", al->dlq, reason);
    complete(op, pushes, op->npayloads);
}

/* A failed attempt (Redis refused a script, OOM building an item): the event goes back to the
 * ingest queue with _retry_count + 1, atomically with its removal; after ALERTER_MAX_RETRIES
 * the next pop sends it to the DLQ (reference §3.6, D4 counting). */
static void retry_item(struct item_op *op, const char *why)
{
    struct alert *al = op->al;
    json_t *rc = json_object_get(op->ev, "_retry_count");
    json_int_t n = json_is_integer(rc) ? json_integer_value(rc) : 0;
    json_object_set_new(op->ev, "_retry_count", json_integer(n + 1));
    size_t len = 0;
    char *s = NULL;
    clear_payloads(op);
    if (mutt_event_dump_alloc(op->ev, &s, &len) != 0) {
        op_abandon(op);
        return;
    }
    struct mutt_relq_push pushes[2];
    add_payload(op, pushes, al->source, s, len);
    add_lineage(op, pushes, MUTT_LINEAGE_ALERT_RETRY, "{s:s, s:I}", "reason", why, "retry", (json_int_t)n + 1);
    op->label = ST_ERROR;
    op->forwards = op->meta = false;
    op->maint.window_id = 0; /* counted when the event is handled, on a later attempt */
    op->retrying = true;
    mutt_log_kv(MUTT_LOG_WARNING, "alert", event_str(op->ev, "_correlation_id"), NULL,
                "attempt %lld failed (%s): back to %s", (long long)n + 1, why, al->source);
    complete(op, pushes, op->npayloads);
}

/* ------------------------------------------------------------------------------------------ */
/* handled / unhandled                                                                         */

static void handle_matched(struct item_op *op, const struct mutt_rule *rule, const char *ts_iso)
{
    struct alert *al = op->al;
    json_t *ev = op->ev;
    const char *host = event_str(ev, "hostname");
    enum mutt_env env = mutt_alert_cache_is_dev(al->cache, host) ? MUTT_ENV_DEV : MUTT_ENV_PROD;
    const char *decision = mutt_handling_decision(rule, env);
    bool fwd = mutt_handling_forwards(decision);
    /* issue 16 §3: what would page is audited as Maintenance instead, and counted for the summary */
    const struct mutt_maint_window *mw = fwd ? alert_maint_match(host, rule->team_assignment, wall_ms()) : NULL;
    if (mw) {
        decision = MUTT_MAINT_DECISION;
        fwd = false;
        op->maint = (struct alert_maint_hit){.window_id = mw->id, .rule_id = rule->id, .summary = mw->summary};
    }
    struct mutt_relq_push pushes[3];
    char *raw = NULL, *row = NULL;
    size_t rawlen = 0, rowlen = 0;
    if (fwd) {
        json_t *alert = mutt_alert_build(ev, rule, env, decision);
        char *s = NULL;
        size_t len = 0;
        if (!alert || mutt_event_dump_alloc(alert, &s, &len) != 0) {
            json_decref(alert);
            retry_item(op, "out of memory building the alert");
            return;
        }
        json_decref(alert);
        add_payload(op, pushes, al->alert_queue, s, len);
    }
    struct mutt_alert_audit_row ar = {
        .event_timestamp = ts_iso,
        .event_id = event_str(ev, "_event_id"),
        .correlation_id = event_str(ev, "_correlation_id"),
        .hostname = host,
        .rule_id = rule->id,
        .handling_decision = decision,
        .forwarded = fwd,
    };
    if (op->raw) {
        ar.raw = op->raw;
        ar.raw_len = op->raw_len;
    } else if (mutt_event_dump_alloc(ev, &raw, &rawlen) != 0) {
        retry_item(op, "out of memory building the audit row");
        return;
    } else {
        ar.raw = raw;
        ar.raw_len = rawlen;
    }
    int rc = mutt_alert_audit_row_json(&ar, &row, &rowlen);
    free(raw);
    if (rc != 0) {
        retry_item(op, "cannot build the audit row");
        return;
    }
    add_payload(op, pushes, MUTT_ALERT_AUDIT_PENDING, row, rowlen);
    if (mw) /* D63: the event's state is `maintenance` */
        add_lineage(op, pushes, MUTT_LINEAGE_MAINTENANCE, "{s:s*, s:I, s:s*, s:I}", "pod", al->ctx->pod_name, "rule_id",
                    (json_int_t)rule->id, "team", rule->team_assignment, "window", (json_int_t)mw->id);
    else
        add_lineage(op, pushes, MUTT_LINEAGE_HANDLED, "{s:s*, s:I, s:s*, s:s*, s:b}", "pod", al->ctx->pod_name,
                    "rule_id", (json_int_t)rule->id, "handling", decision, "team", rule->team_assignment, "forwarded",
                    (int)fwd);
    op->label = ST_HANDLED;
    op->forwards = fwd;
    complete(op, pushes, op->npayloads);
}

static void on_unhandled_counted(void *priv, int status, enum mutt_alert_unhandled_verdict verdict)
{
    struct item_op *op = priv;
    struct alert *al = op->al;
    if (status == MUTT_EIO) {
        retry_item(op, "unhandled counting refused by Redis");
        return;
    }
    if (status != 0) {
        op_abandon(op);
        return;
    }
    op->label = ST_UNHANDLED;
    if (verdict == MUTT_ALERT_UNHANDLED_CAPPED)
        mutt_counter_inc(al->templates_capped);
    struct mutt_relq_push pushes[2];
    add_lineage(op, pushes, MUTT_LINEAGE_UNHANDLED, "{s:s*, s:b}", "pod", al->ctx->pod_name, "meta_alert",
                (int)(verdict == MUTT_ALERT_UNHANDLED_TRIGGER));
    if (verdict != MUTT_ALERT_UNHANDLED_TRIGGER) {
        complete(op, pushes, op->npayloads);
        return;
    }
    const char *host = event_str(op->ev, "hostname");
    const char *team = mutt_alert_cache_team(al->cache, host);
    if (!team)
        team = mutt_config_str(al->ctx->cfg, MUTT_CFG_UNHANDLED_DEFAULT_TEAM);
    /* issue 16 §3: a window holding the host for the meta-alert's team holds the meta-alert too;
     * it is counted for the window's summary once the completion is durable (on_completed) */
    const struct mutt_maint_window *mw = alert_maint_match(host, team, wall_ms());
    if (mw) {
        op->maint = (struct alert_maint_hit){.window_id = mw->id, .summary = mw->summary, .unhandled = true};
        mutt_log_kv(MUTT_LOG_INFO, "alert", event_str(op->ev, "_correlation_id"), NULL,
                    "unhandled threshold reached for %s: meta-alert held by maintenance window %lld", host,
                    (long long)mw->id);
        complete(op, NULL, 0);
        return;
    }
    struct mutt_dynconfig *dyn = al->ctx->dyn;
    json_t *meta = mutt_alert_build_meta(op->ev, team, (int)mutt_dynconfig_int(dyn, MUTT_DYN_UNHANDLED_THRESHOLD),
                                         mutt_dynconfig_int(dyn, MUTT_DYN_UNHANDLED_EXPIRY_SECONDS));
    char *s = NULL;
    size_t len = 0;
    if (!meta || mutt_event_dump_alloc(meta, &s, &len) != 0) {
        json_decref(meta);
        retry_item(op, "out of memory building the meta-alert");
        return;
    }
    json_decref(meta);
    add_payload(op, pushes, al->alert_queue, s, len);
    op->meta = true;
    mutt_log_kv(MUTT_LOG_INFO, "alert", event_str(op->ev, "_correlation_id"), NULL,
                "unhandled threshold reached for %s: meta-alert to team %s", host, team);
    complete(op, pushes, op->npayloads);
}

static void handle_unmatched(struct item_op *op, const char *msg, size_t msglen)
{
    struct alert *al = op->al;
    struct mutt_dynconfig *dyn = al->ctx->dyn;
    struct mutt_alert_unhandled_hit hit = {
        .hostname = event_str(op->ev, "hostname"),
        .message = msg,
        .message_len = msglen,
        .event_id = event_str(op->ev, "_event_id"),
        .threshold = mutt_dynconfig_int(dyn, MUTT_DYN_UNHANDLED_THRESHOLD),
        .expiry_s = mutt_dynconfig_int(dyn, MUTT_DYN_UNHANDLED_EXPIRY_SECONDS),
        .now_ms = wall_ms(),
        .max_templates = mutt_dynconfig_int(dyn, MUTT_DYN_UNHANDLED_MAX_TEMPLATES_PER_HOST),
    };
    int rc = mutt_alert_unhandled_count(al->unhandled, &hit, on_unhandled_counted, op);
    if (rc == MUTT_EINVAL) {
        to_dlq_event(op, "hostname too long for the unhandled counter key", ST_ERROR);
        return;
    }
    if (rc != 0)
        op_abandon(op);
}

/* ------------------------------------------------------------------------------------------ */
/* one item                                                                                    */

/* W17 dlq mode: the item goes via the processing list into the DLQ, never dropped. True when
 * it was taken (completed or abandoned); false for an item that is not a JSON object, which the
 * unparseable path handles. */
static bool shed_item(struct item_op *op, const char *data, size_t len)
{
    struct alert *al = op->al;
    char reason[96];
    snprintf(reason, sizeof reason, "queue_depth_exceeded:%lld>%lld", (long long)al->last_alert_depth,
             (long long)mutt_dynconfig_int(al->ctx->dyn, MUTT_DYN_ALERTER_QUEUE_SHED_THRESHOLD));
    mutt_counter_inc(al->shed_dlq);
    json_error_t jerr;
    op->ev = json_loadb(data, len, 0, &jerr);
    if (json_is_object(op->ev)) {
        json_object_set_new(op->ev, "shedding_reason", json_string(reason));
        struct mutt_relq_push pushes[2];
        size_t n = 0;
        char *s = NULL;
        if (mutt_dlq_envelope(op->ev, DLQ_ORIGIN, "shed", wall_ms(), &s, &n) != 0) {
            op_abandon(op);
            return true;
        }
        add_payload(op, pushes, al->dlq, s, n);
        add_lineage(op, pushes, MUTT_LINEAGE_ALERT_DLQ, "{s:s, s:s}", "dlq", al->dlq, "reason", reason);
        op->label = ST_ERROR;
        complete(op, pushes, op->npayloads);
        return true;
    }
    json_decref(op->ev);
    op->ev = NULL;
    return false;
}

static void process(struct item_op *op, const char *data, size_t len)
{
    struct alert *al = op->al;
    if (al->bp.shedding && shed_item(op, data, len))
        return;

    json_error_t jerr;
    op->ev = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(op->ev)) {
        char reason[256];
        if (op->ev)
            snprintf(reason, sizeof reason, "not a JSON object");
        else
            snprintf(reason, sizeof reason, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                     jerr.column);
        json_decref(op->ev);
        op->ev = NULL;
        struct mutt_relq_push pushes[1];
        size_t n = 0;
        char *s = NULL;
        if (mutt_dlq_envelope_raw(data, len, DLQ_ORIGIN, reason, wall_ms(), &s, &n) != 0) {
            op_abandon(op);
            return;
        }
        add_payload(op, pushes, al->dlq, s, n);
        op->label = ST_ERROR;
        mutt_log_warn("alert", "unparseable item to %s: %s", al->dlq, reason);
        complete(op, pushes, 1);
        return;
    }

    json_t *rcj = json_object_get(op->ev, "_retry_count");
    if (json_is_integer(rcj) && json_integer_value(rcj) > al->max_retries) {
        char reason[128];
        snprintf(reason, sizeof reason, "retries exhausted: _retry_count %lld > ALERTER_MAX_RETRIES %lld",
                 (long long)json_integer_value(rcj), (long long)al->max_retries);
        to_dlq_event(op, reason, ST_POISON);
        return;
    }

    /* D33: items of the Python original */
    bool rewritten = json_object_del(op->ev, "api_key") == 0;
    uint8_t rnd[16];
    mutt_random_bytes(rnd, sizeof rnd);
    if (mutt_event_ensure_event_id(op->ev, rnd) != 0)
        rewritten = true;
    if (!rewritten) { /* parsed once, serialised never again for the audit row */
        op->raw = data;
        op->raw_len = len;
    }

    /* the list ingest enforced (REQUIRED_FIELDS): items of older versions or other writers may
     * lack a field ingest would have refused */
    const char *missing = mutt_event_missing_required(op->ev, &al->required);
    if (missing) {
        char reason[128];
        snprintf(reason, sizeof reason, "missing or empty field: %s", missing);
        to_dlq_event(op, reason, ST_ERROR);
        return;
    }
    /* A timestamp not required and absent (or null) dates the audit row at processing time; a
     * present one must parse, and whatever parses also formats (timefmt.h: one range). */
    int64_t ts_ms;
    char ts_iso[MUTT_TIME_ISO8601_MS_LEN];
    const json_t *tsj = json_object_get(op->ev, "timestamp");
    if (!tsj || json_is_null(tsj))
        ts_ms = wall_ms();
    else if (!json_is_string(tsj) || mutt_time_parse_iso8601n(json_string_value(tsj), json_string_length(tsj), &ts_ms) != 0) {
        to_dlq_event(op, "invalid field: timestamp (not ISO 8601)", ST_ERROR);
        return;
    }
    if (mutt_time_format_iso8601_ms(ts_ms, ts_iso, sizeof ts_iso) != 0) {
        to_dlq_event(op, "invalid field: timestamp (not ISO 8601)", ST_ERROR);
        return;
    }

    const json_t *msgj = json_object_get(op->ev, "message");
    const char *msg = json_is_string(msgj) ? json_string_value(msgj) : ""; /* not required: "" */
    size_t msglen = json_is_string(msgj) ? json_string_length(msgj) : 0;
    /* the dry-run sample: what matching sees, once per event (a retried attempt was sampled) */
    if (!json_is_integer(rcj) || json_integer_value(rcj) == 0) {
        char *dump = NULL;
        size_t dlen = 0;
        if (op->raw)
            alert_sample_add(al->sample, op->raw, op->raw_len);
        else if (mutt_event_dump_alloc(op->ev, &dump, &dlen) == 0)
            alert_sample_add(al->sample, dump, dlen);
        free(dump);
    }
    uint64_t t0 = uv_hrtime();
    const struct mutt_rule *rule = mutt_alert_match_event(mutt_alert_cache_rules(al->cache), op->ev, al->scratch);
    mutt_histogram_observe(al->match_seconds, (double)(uv_hrtime() - t0) / 1e9);
    uint64_t hits = mutt_match_scratch_regex_limit_hits(al->scratch);
    if (hits != al->regex_hits_seen) {
        mutt_counter_add(al->regex_hits, (double)(hits - al->regex_hits_seen));
        al->regex_hits_seen = hits;
    }
    if (rule)
        handle_matched(op, rule, ts_iso);
    else
        handle_unmatched(op, msg, msglen);
}

static void on_item(void *priv, struct mutt_relq_item *item, const char *data, size_t len)
{
    struct alert *al = priv;
    struct item_op *op = calloc(1, sizeof *op);
    if (!op) {
        mutt_relq_abandon(item);
        return;
    }
    op->al = al;
    op->item = item;
    op->start_ns = uv_hrtime();
    al->busy++;
    process(op, data, len);
}

/* ------------------------------------------------------------------------------------------ */
/* cache                                                                                       */

static void start_consuming(struct alert *al)
{
    if (al->life.state != MUTT_STAGE_STARTING)
        return;
    int rc = mutt_relq_start(al->relq);
    if (rc != 0) {
        mutt_log_error("alert", "cannot start consuming %s: %s", al->source, mutt_strerror(rc));
        return;
    }
    al->consuming = true;
    mutt_stage_life_set_state(&al->life, MUTT_STAGE_RUNNING);
    if (mutt_alert_audit_janitor(al->audit) == 0)
        al->last_janitor_ms = uv_now(al->ctx->loop);
    mutt_log_info("alert", "consuming %s into %s (%lld in flight)", al->source, mutt_relq_processing_list(al->relq),
                  (long long)mutt_config_int(al->ctx->cfg, MUTT_CFG_ALERTER_CONCURRENCY));
}

static void on_cache_loaded(void *priv, int status, double seconds)
{
    struct alert *al = priv;
    if (!mutt_stage_life_live(&al->life))
        return;
    mutt_histogram_observe(al->reload_latency, seconds);
    mutt_slo_record(al->ctx->slo, MUTT_SLO_ALERTER_CACHE_RELOAD_SUCCESS, status == 0, 1);
    if (status != 0) {
        mutt_counter_inc(al->reload_failures);
        mutt_log_warn("alert", "rules cache reload failed (%s); %s", mutt_alert_cache_last_error(al->cache),
                      mutt_alert_cache_ready(al->cache) ? "keeping the previous cache" : "not consuming yet");
    } else {
        size_t r, d, t;
        mutt_alert_cache_counts(al->cache, &r, &d, &t);
        mutt_gauge_set(al->rules_count, (double)r);
        mutt_gauge_set(al->dev_count, (double)d);
        mutt_gauge_set(al->teams_count, (double)t);
        mutt_log_info("alert", "rules cache loaded: %zu rules, %zu dev hosts, %zu teams (%.1f ms)", r, d, t,
                      seconds * 1000);
        start_consuming(al);
    }
    if (!mutt_alert_cache_loading(al->cache))
        schedule_reload(al, mutt_alert_cache_ready(al->cache)
                                ? (uint64_t)mutt_dynconfig_int(al->ctx->dyn, MUTT_DYN_CACHE_RELOAD_INTERVAL) * 1000u
                                : CACHE_RETRY_MS);
}

static void reload_now(struct alert *al, const char *why)
{
    if (!mutt_stage_life_live(&al->life))
        return;
    int rc = mutt_alert_cache_reload(al->cache);
    if (rc != 0) {
        mutt_counter_inc(al->reload_failures);
        mutt_slo_record(al->ctx->slo, MUTT_SLO_ALERTER_CACHE_RELOAD_SUCCESS, 0, 1);
        mutt_log_warn("alert", "rules cache reload (%s) not started: %s", why, mutt_strerror(rc));
        schedule_reload(al, mutt_alert_cache_ready(al->cache)
                                ? (uint64_t)mutt_dynconfig_int(al->ctx->dyn, MUTT_DYN_CACHE_RELOAD_INTERVAL) * 1000u
                                : CACHE_RETRY_MS);
    }
}

static void on_reload_timer(uv_timer_t *t)
{
    reload_now(t->data, "interval");
}

static void schedule_reload(struct alert *al, uint64_t ms)
{
    if (al->timers_open && !mutt_stage_life_draining(&al->life))
        uv_timer_start(&al->reload_timer, on_reload_timer, ms ? ms : 1, 0);
}

static void on_rules_update(void *priv, const char *channel, const char *message, size_t len)
{
    reload_now(priv, "rules update");
}

static void on_pubsub_state(void *priv, struct mutt_redis_conn *conn, bool connected)
{
    /* a PUBLISH sent while we were disconnected is lost: re-read after every resubscribe */
    struct alert *al = priv;
    if (connected && mutt_stage_life_live(&al->life) && mutt_alert_cache_ready(al->cache))
        reload_now(al, "pub/sub reconnect");
}

static void on_interval_changed(void *priv, const char *key, const char *old_value, const char *new_value)
{
    struct alert *al = priv;
    if (mutt_stage_life_live(&al->life) && al->cache && mutt_alert_cache_ready(al->cache) && !mutt_alert_cache_loading(al->cache))
        schedule_reload(al, (uint64_t)mutt_dynconfig_int(al->ctx->dyn, MUTT_DYN_CACHE_RELOAD_INTERVAL) * 1000u);
}

/* ------------------------------------------------------------------------------------------ */
/* backpressure (W17) and depth gauges: alert_backpressure.c judges, this file acts            */

static void act_on_depth(struct alert *al, long long depth)
{
    struct alert_bp_verdict v;
    alert_bp_judge(&al->bp, al->ctx->dyn, depth, mutt_stage_life_draining(&al->life), &v);
    if (v.warn_crossed)
        mutt_log_warn("alert", "%s depth %lld above alerter_queue_warn_threshold %lld", al->alert_queue, depth,
                      (long long)v.warn_threshold);
    if (v.defer_changed) {
        if (al->bp.deferring) {
            mutt_relq_pause(al->relq);
            mutt_log_warn("alert", "deferring: %s depth %lld above %lld; consuming paused", al->alert_queue, depth,
                          (long long)v.shed_threshold);
        } else {
            mutt_relq_resume(al->relq);
            mutt_log_info("alert", "resuming: %s depth %lld", al->alert_queue, depth);
        }
    }
    if (al->bp.deferring)
        mutt_counter_inc(al->shed_defer);
    if (v.shed_changed)
        mutt_log_warn("alert", "%s: %s depth %lld (threshold %lld)",
                      al->bp.shedding ? "shedding to the DLQ" : "shedding ended", al->alert_queue, depth,
                      (long long)v.shed_threshold);
}

static void on_alert_depth(void *priv, redisReply *reply, int status)
{
    struct alert *al = priv;
    al->bp_inflight--;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER && mutt_stage_life_started(&al->life)) {
        al->last_alert_depth = reply->integer;
        mutt_gauge_set(al->queue_depth, (double)reply->integer);
        act_on_depth(al, reply->integer);
    }
    alert_maybe_stopped(al);
}

static void on_dlq_depth(void *priv, redisReply *reply, int status)
{
    struct alert *al = priv;
    al->bp_inflight--;
    mutt_gauge_set_from_reply(al->dlq_depth, reply, status);
    alert_maybe_stopped(al);
}

static void on_processing_depth(void *priv, int status, long long depth)
{
    struct alert *al = priv;
    al->bp_inflight--;
    mutt_gauge_set_if_ok(al->processing_depth, status, depth);
    alert_maybe_stopped(al);
}

static void on_bp_timer(uv_timer_t *t)
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
    uint64_t ms = (uint64_t)mutt_dynconfig_int(al->ctx->dyn, MUTT_DYN_ALERTER_DEFER_SLEEP_MS);
    if (al->last_alert_depth < 0)
        ms = 20; /* no depth seen yet (Redis still connecting): look again soon */
    uv_timer_start(&al->bp_timer, on_bp_timer, ms ? ms : 250, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* stop                                                                                        */

static void release_all(struct alert *al)
{
    mutt_relq_destroy(al->relq);
    al->relq = NULL;
    mutt_alert_audit_destroy(al->audit);
    al->audit = NULL;
    mutt_alert_cache_destroy(al->cache);
    al->cache = NULL;
    mutt_alert_unhandled_destroy(al->unhandled);
    al->unhandled = NULL;
    mutt_match_scratch_destroy(al->scratch);
    al->scratch = NULL;
    alert_sample_destroy(al->sample);
    al->sample = NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void close_timers(struct alert *al)
{
    if (!al->timers_open)
        return;
    al->timers_open = false;
    uv_close((uv_handle_t *)&al->reload_timer, on_timer_closed);
    uv_close((uv_handle_t *)&al->bp_timer, on_timer_closed);
    uv_close((uv_handle_t *)&al->reap_timer, on_timer_closed);
    uv_close((uv_handle_t *)&al->stall_timer, on_timer_closed);
}

static void on_reap(uv_timer_t *t)
{
    struct alert *al = t->data;
    release_all(al);
    close_timers(al);
    mutt_log_info("alert", "stopped");
    mutt_stage_life_finish(&al->life);
}

static void alert_maybe_stopped(struct alert *al)
{
    /* out: item ops, depth calls, and relq and the audit writer until each has stopped */
    size_t out = al->busy + al->bp_inflight + (al->relq_stopped ? 0 : 1) + (al->audit_stopped ? 0 : 1) +
                 (al->maint_stopped ? 0 : 1);
    if (!mutt_stage_life_drained(&al->life, out))
        return;
    /* free relq, audit... outside of their own callbacks */
    if (!uv_is_active((uv_handle_t *)&al->reap_timer))
        uv_timer_start(&al->reap_timer, on_reap, 0, 0);
}

static void on_audit_stopped(void *priv)
{
    struct alert *al = priv;
    al->audit_stopped = true;
    alert_maybe_stopped(al);
}

static void on_maint_stopped(void *priv)
{
    struct alert *al = priv;
    al->maint_stopped = true;
    alert_maybe_stopped(al);
}

static void on_relq_stopped(void *priv, int status)
{
    struct alert *al = priv;
    if (status != 0)
        mutt_log_warn("alert", "stop: returning the processing list failed (%s); a janitor will", mutt_strerror(status));
    al->relq_stopped = true;
    alert_maint_stop(on_maint_stopped, al); /* items are all complete: the counts are final */
    mutt_alert_audit_stop(al->audit, on_audit_stopped, al);
}

static int alert_start(struct mutt_ctx *ctx)
{
    struct alert *al = &g_alert;
    if (mutt_stage_life_started(&al->life))
        return MUTT_ESTATE;
    if (!ctx->pg) {
        mutt_log_error("alert", "the alert role needs PostgreSQL");
        return MUTT_EINVAL;
    }
    const struct mutt_config *cfg = ctx->cfg;
    memset(al, 0, sizeof *al);
    al->ctx = ctx;
    mutt_stage_life_init(&al->life, "alert", ctx);
    al->source = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME);
    if (mutt_queue_bytes_key(al->source, al->source_bytes_key, sizeof al->source_bytes_key) != 0)
        return MUTT_EINVAL;
    al->alert_queue = mutt_config_str(cfg, MUTT_CFG_ALERT_QUEUE_NAME);
    al->dlq = mutt_config_str(cfg, MUTT_CFG_ALERTER_DLQ_NAME);
    al->max_retries = mutt_config_int(cfg, MUTT_CFG_ALERTER_MAX_RETRIES);
    mutt_event_rules_init_default(&al->required);
    if (mutt_event_rules_set_required(&al->required, mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS)) != 0) {
        mutt_log_error("alert", "config error: REQUIRED_FIELDS=%s: too many or too long entries",
                       mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS));
        return MUTT_EINVAL;
    }
    al->last_alert_depth = -1;
    int rc = alert_register_metrics(al, ctx->metrics);
    if (rc == 0)
        rc = alert_maint_register(ctx);
    if (rc != 0)
        return rc;
    struct mutt_relq_opts ro = {
        .name = "alerter",
        .source = al->source,
        .processing_prefix = mutt_config_str(cfg, MUTT_CFG_ALERTER_PROCESSING_LIST_PREFIX),
        .heartbeat_prefix = mutt_config_str(cfg, MUTT_CFG_ALERTER_HEARTBEAT_PREFIX),
        .pod = ctx->pod_name,
        .block_timeout_s = (unsigned)mutt_config_int(cfg, MUTT_CFG_BRPOPLPUSH_TIMEOUT),
        .max_inflight = (size_t)mutt_config_int(cfg, MUTT_CFG_ALERTER_CONCURRENCY),
        .heartbeat_interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_INTERVAL) * 1000u,
        .heartbeat_expiry_s = (unsigned)mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_EXPIRY),
        .janitor_interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_JANITOR_INTERVAL) * 1000u,
        .source_bytes_key = al->source_bytes_key,
    };
    struct mutt_alert_audit_opts ao = {
        .pending_key = MUTT_ALERT_AUDIT_PENDING,
        .claim_prefix = MUTT_ALERT_AUDIT_CLAIM_PREFIX,
        .pod = ctx->pod_name,
        .heartbeat_prefix = ro.heartbeat_prefix,
        .dlq_key = al->dlq,
        .batch_size = (size_t)mutt_config_int(cfg, MUTT_CFG_AUDIT_BATCH_SIZE),
        .slots = AUDIT_SLOTS,
        .flush_interval_ms = AUDIT_FLUSH_MS,
        .retry_ms = AUDIT_RETRY_MS,
    };
    al->relq = mutt_relq_create(ctx->loop, ctx->redis, &ro, on_item, al);
    al->audit = mutt_alert_audit_create(ctx->loop, ctx->redis, ctx->pg, ctx->metrics, &ao);
    al->cache = mutt_alert_cache_create(ctx->pg, on_cache_loaded, al);
    al->unhandled = mutt_alert_unhandled_create(ctx->loop, ctx->redis, cfg, mutt_config_str(cfg, MUTT_CFG_UNHANDLED_PREFIX));
    al->scratch = mutt_match_scratch_create();
    al->sample = alert_sample_create(ctx->loop, ctx->redis, ctx->dyn);
    if (!al->relq || !al->audit || !al->cache || !al->unhandled || !al->scratch || !al->sample) {
        release_all(al);
        return MUTT_ENOMEM;
    }
    uv_timer_init(ctx->loop, &al->reload_timer);
    uv_timer_init(ctx->loop, &al->bp_timer);
    uv_timer_init(ctx->loop, &al->reap_timer);
    uv_timer_init(ctx->loop, &al->stall_timer);
    al->reload_timer.data = al->bp_timer.data = al->reap_timer.data = al->stall_timer.data = al;
    al->timers_open = true;
    if ((rc = mutt_redis_subscribe(ctx->redis, MUTT_KEY_RULES_CHANNEL, on_rules_update, al)) != 0 ||
        (ctx->dyn && (rc = mutt_dynconfig_watch(ctx->dyn, MUTT_DYN_CACHE_RELOAD_INTERVAL, on_interval_changed, al)) != 0) ||
        (rc = alert_maint_start(ctx, al->alert_queue)) != 0) {
        release_all(al);
        close_timers(al);
        return rc;
    }
    struct mutt_redis_conn *ps = mutt_redis_pubsub(ctx->redis);
    if (ps)
        mutt_redis_conn_on_state(ps, on_pubsub_state, al);
    /* STARTING until the first rules cache load starts consuming (RUNNING) */
    mutt_stage_life_set_state(&al->life, MUTT_STAGE_STARTING);
    mutt_alert_audit_start(al->audit);
    uv_timer_start(&al->bp_timer, on_bp_timer, 0, 0);
    reload_now(al, "start");
    return 0;
}

static void alert_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct alert *al = &g_alert;
    if (!mutt_stage_life_begin_stop(&al->life, done, privdata))
        return; /* never started: done already ran */
    if (ctx->dyn)
        mutt_dynconfig_unwatch(ctx->dyn, on_interval_changed, al);
    uv_timer_stop(&al->reload_timer);
    uv_timer_stop(&al->bp_timer);
    if (al->consuming) {
        uint64_t drain_ms = (uint64_t)mutt_config_int(ctx->cfg, MUTT_CFG_SHUTDOWN_TIMEOUT) * 1000u / 2u;
        if (mutt_relq_stop(al->relq, drain_ms, on_relq_stopped, al) == 0)
            return;
    }
    al->relq_stopped = true;
    alert_maint_stop(on_maint_stopped, al);
    mutt_alert_audit_stop(al->audit, on_audit_stopped, al);
}

static enum mutt_role_health alert_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    struct alert *al = &g_alert;
    if (!mutt_stage_life_started(&al->life))
        return MUTT_HEALTH_DOWN;
    if (!mutt_alert_cache_ready(al->cache)) {
        /* D34: no rules, no consuming: the stage takes no work until the first load */
        snprintf(detail, detail_len, "alert: rules cache not loaded yet (%s)", mutt_alert_cache_last_error(al->cache));
        return MUTT_HEALTH_STARTING;
    }
    if (al->bp.deferring || al->bp.shedding) {
        snprintf(detail, detail_len, "alert: %s (%s depth %lld)", al->bp.deferring ? "deferring" : "shedding to the DLQ",
                 al->alert_queue, (long long)al->last_alert_depth);
        return MUTT_HEALTH_DEGRADED;
    }
    if (ctx->pg && !mutt_pg_connected(ctx->pg)) {
        snprintf(detail, detail_len, "alert: PostgreSQL down, audit rows wait in %s", MUTT_ALERT_AUDIT_PENDING);
        return MUTT_HEALTH_DEGRADED;
    }
    return MUTT_HEALTH_OK;
}

static void alert_reload(struct mutt_ctx *ctx)
{
    reload_now(&g_alert, "SIGHUP");
}

const struct mutt_stage mutt_alert_stage = {
    .name = "alert",
    .role = MUTT_ROLE_ALERT,
    .start = alert_start,
    .stop = alert_stop,
    .health = alert_health,
    .reload = alert_reload,
};

/* ---- test hooks ------------------------------------------------------------------------------ */

bool mutt_alert_consuming(void)
{
    return mutt_stage_life_started(&g_alert.life) && g_alert.consuming;
}

size_t mutt_alert_busy(void)
{
    return g_alert.busy;
}

const struct mutt_alert_cache *mutt_alert_stage_cache(void)
{
    return mutt_stage_life_started(&g_alert.life) ? g_alert.cache : NULL;
}

struct mutt_alert_audit *mutt_alert_stage_audit(void)
{
    return mutt_stage_life_started(&g_alert.life) ? g_alert.audit : NULL;
}
