/* The forward stage (role forward, CONTRACT §5): lifecycle and the per-alert flow. Items come
 * from relq (BRPOPLPUSH mutt:alert_queue -> mutt:processing:moog:<pod>, up to moog_max_inflight
 * handed out); each goes admit -> (breaker, rate limit) -> POST -> classify -> exactly one
 * atomic completion (D3): delivered = plain LREM; retry = ZADD into mutt:retry:moog + LREM (D4);
 * dead = LPUSH mutt:dlq:moog + LREM. Alerts held by the breaker or the rate limiter wait in this
 * stage's `waiting` list (they stay in the processing list, relq is paused so nothing more is
 * popped), never dropped (W13, W15). forward_breaker.c keeps the breaker's view and answers
 * with verdicts; this file acts on them (waits, pauses, probes, sends) and owns every callback.
 * Lifecycle and stop go through stage_life. Loop thread only; one instance per process. */
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

#define DLQ_ORIGIN MUTT_REPLAY_ORIGIN_ALERT /* D5: a moog DLQ item replays to the alert queue */
#define HTTP_CLIENT_CAP 10000u      /* = moog_max_inflight's schema max; relq caps the real number */
#define PROMOTE_INTERVAL_MS 200u    /* retry-set promotion period (any pod) */
#define PROMOTE_BATCH 1000          /* members moved per promotion call */
#define GAUGE_INTERVAL_MS 1000u     /* depth gauges + breaker view refresh */
#define STALL_RETRY_MS 20u          /* resend of a completion refused locally (EFULL/ENOMEM) */

static struct forward g_forward;

static void admit(struct fwd_op *op);
static void maybe_stopped(struct forward *fw);
static void probe_abandoned(struct forward *fw);
static void record_outcome(struct forward *fw, enum mutt_delivery d, bool probe);

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *alert_str(const json_t *a, const char *key)
{
    const json_t *v = json_object_get(a, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *op_cid(const struct fwd_op *op)
{
    return op->alert ? alert_str(op->alert, "_correlation_id") : NULL;
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

static void op_finish(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    op_free(op);
    fw->busy--;
    maybe_stopped(fw);
}

/* The item stays in the processing list: relq returns it at our stop or its reconnect
 * recovery, or a janitor does after a crash. Used when Redis itself failed, and at stop. */
static void op_abandon(struct fwd_op *op)
{
    mutt_relq_abandon(op->item);
    op_finish(op);
}

static struct mutt_counter *requests_child(struct forward *fw, const char *status, const char *reason)
{
    const char *v[] = {status, reason};
    return mutt_counter_labels(fw->m_requests, v);
}

/* ------------------------------------------------------------------------------------------ */
/* waiting list: alerts held by the breaker or the rate limiter                                */

static void wait_push(struct fwd_op *op, bool front)
{
    struct forward *fw = op->fw;
    op->wait_next = NULL;
    if (front) {
        op->wait_next = fw->wait_head;
        fw->wait_head = op;
        if (!fw->wait_tail)
            fw->wait_tail = op;
    } else {
        if (fw->wait_tail)
            fw->wait_tail->wait_next = op;
        else
            fw->wait_head = op;
        fw->wait_tail = op;
    }
    fw->nwaiting++;
}

static struct fwd_op *wait_pop(struct forward *fw)
{
    struct fwd_op *op = fw->wait_head;
    if (!op)
        return NULL;
    fw->wait_head = op->wait_next;
    if (!fw->wait_head)
        fw->wait_tail = NULL;
    op->wait_next = NULL;
    fw->nwaiting--;
    return op;
}

static bool rate_held(const struct forward *fw)
{
    return fw->rate_hold_until_ms > uv_now(fw->ctx->loop);
}

/* One place decides whether relq may pop: held by the breaker (unless a probe is being fetched),
 * by the rate limiter, or stopping. */
static void update_pause(struct forward *fw)
{
    if (!fw->relq)
        return;
    if (fw->life.state == MUTT_STAGE_STARTING && fw->bknown)
        mutt_stage_life_set_state(&fw->life, MUTT_STAGE_RUNNING); /* first look at the breaker done */
    bool want = mutt_stage_life_draining(&fw->life) || fwd_breaker_holds(fw) || rate_held(fw) || fw->nwaiting > 0;
    if (fw->probe_state == FWD_PROBE_FETCHING && !mutt_stage_life_draining(&fw->life))
        want = false;
    if (want)
        mutt_relq_pause(fw->relq);
    else
        mutt_relq_resume(fw->relq);
}

/* Re-admits every waiting alert in order (each may be held again), then lets relq pop. */
static void wake(struct forward *fw)
{
    if (fw->waking)
        return;
    fw->waking = true;
    size_t n = fw->nwaiting;
    while (n-- > 0 && !mutt_stage_life_draining(&fw->life) && !fwd_breaker_holds(fw) && !rate_held(fw)) {
        struct fwd_op *op = wait_pop(fw);
        if (!op)
            break;
        admit(op);
    }
    fw->waking = false;
    update_pause(fw);
}

static void on_rate_timer(uv_timer_t *t)
{
    wake(t->data);
}

/* ------------------------------------------------------------------------------------------ */
/* completion                                                                                  */

static void on_completed(void *priv, struct mutt_relq_item *item, int status)
{
    struct fwd_op *op = priv;
    struct forward *fw = op->fw;
    if (status == 0) {
        if (op->label < FWD_ST_COUNT_)
            mutt_counter_inc(fw->m_processed[op->label]);
        mutt_histogram_observe(fw->m_processing, (double)(uv_hrtime() - op->start_ns) / 1e9);
        op_finish(op);
        return;
    }
    if (status == MUTT_ENOTFOUND) {
        /* a janitor or our stop already returned it to the queue: nothing was pushed, the next
         * consumer delivers it again (the at-most-in-flight duplicate) */
        mutt_counter_inc(fw->m_already_gone);
        op_finish(op);
        return;
    }
    mutt_log_kv(MUTT_LOG_WARNING, "forward", op_cid(op), NULL,
                "completion failed (%s): the alert stays in the processing list", mutt_strerror(status));
    op_abandon(op);
}

static void on_stall_timer(uv_timer_t *t);

/* Sends the completion with op's push (if any). A local refusal (the command connection's cap,
 * OOM) is retried shortly; a disconnected Redis leaves the item for relq's recovery. */
static void complete(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    struct mutt_relq_push pushes[2];
    size_t n = 0;
    if (op->npush)
        pushes[n++] = op->push;
    if (op->nlin)
        pushes[n++] = op->lin_push;
    int rc = mutt_relq_complete(op->item, n ? pushes : NULL, n, on_completed, op);
    if (rc == MUTT_EFULL || rc == MUTT_ENOMEM) {
        op->wait_next = fw->stalled;
        fw->stalled = op;
        if (fw->timers_open && !uv_is_active((uv_handle_t *)&fw->stall_timer))
            uv_timer_start(&fw->stall_timer, on_stall_timer, STALL_RETRY_MS, 0);
        return;
    }
    if (rc != 0) {
        mutt_log_kv(MUTT_LOG_WARNING, "forward", op_cid(op), NULL,
                    "completion not sent (%s): the alert stays in the processing list", mutt_strerror(rc));
        op_abandon(op);
    }
}

static void on_stall_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    struct fwd_op *list = fw->stalled;
    fw->stalled = NULL;
    while (list) {
        struct fwd_op *op = list;
        list = op->wait_next;
        op->wait_next = NULL;
        complete(op);
    }
}

static void set_push(struct fwd_op *op, enum mutt_relq_push_kind kind, const char *key, char *payload, size_t len,
                     double score)
{
    free(op->payload);
    op->payload = payload;
    op->push = (struct mutt_relq_push){.kind = kind, .key = key, .payload = payload, .len = len, .score = score};
    op->npush = 1;
}

/* Lineage (D63): the outcome's step (the last attempt's details plus `extra`, consumed) rides in
 * the completion. A meta-alert carries its event's id: its steps say so, and leave the event's
 * state alone (lineage.h). */
static void set_lineage(struct fwd_op *op, enum mutt_lineage_step code, json_t *extra)
{
    if (!mutt_config_bool(op->fw->ctx->cfg, MUTT_CFG_LINEAGE_ENABLED)) {
        json_decref(extra);
        return;
    }
    json_t *d = op->lin_attempt ? op->lin_attempt : json_object();
    op->lin_attempt = NULL;
    if (d && extra)
        json_object_update(d, extra);
    json_decref(extra);
    if (d && strcmp(alert_str(op->alert, "hostname") ? alert_str(op->alert, "hostname") : "", MUTT_ALERT_META_HOSTNAME) == 0)
        json_object_set_new(d, "meta_alert", json_true());
    free(op->lin_payload);
    op->lin_payload = NULL;
    op->nlin = mutt_lineage_push(op->fw->ctx->cfg, op->alert, code, d, wall_ms(), op->lin_key, &op->lin_push,
                                 &op->lin_payload) ? 1 : 0;
}

/* Dead letter: the alert (D33-cleaned) in the D5 envelope. */
static void to_dlq(struct fwd_op *op, const char *reason)
{
    struct forward *fw = op->fw;
    char *s = NULL;
    size_t len = 0;
    if (mutt_dlq_envelope(op->alert, DLQ_ORIGIN, reason, wall_ms(), &s, &len) != 0) {
        op_abandon(op);
        return;
    }
    set_push(op, MUTT_RELQ_LPUSH, fw->dlq, s, len, 0);
    set_lineage(op, MUTT_LINEAGE_FORWARD_DLQ, json_pack("{s:s, s:s}", "dlq", fw->dlq, "reason", reason));
    op->label = FWD_ST_DLQ;
    mutt_log_kv(MUTT_LOG_WARNING, "forward", op_cid(op), NULL, "to %s: %s", fw->dlq, reason);
    complete(op);
}

/* An item that is not a JSON object: its text under "_raw" in the D5 envelope. */
static void to_dlq_raw(struct fwd_op *op, const char *data, size_t len, const char *reason)
{
    struct forward *fw = op->fw;
    char *s = NULL;
    size_t slen = 0;
    if (mutt_dlq_envelope_raw(data, len, DLQ_ORIGIN, reason, wall_ms(), &s, &slen) != 0) {
        op_abandon(op);
        return;
    }
    set_push(op, MUTT_RELQ_LPUSH, fw->dlq, s, slen, 0);
    op->label = FWD_ST_DLQ;
    mutt_log_warn("forward", "unparseable item to %s: %s", fw->dlq, reason);
    complete(op);
}

static int64_t retry_count(const struct fwd_op *op)
{
    const json_t *v = json_object_get(op->alert, "_moog_retry_count");
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

/* W16/D4: the alert waits in the retry set, no worker waits for it. */
static void to_retry(struct fwd_op *op, const char *reason, int64_t retry_after_s)
{
    struct forward *fw = op->fw;
    int64_t n = retry_count(op);
    int64_t max = mutt_config_int(fw->ctx->cfg, MUTT_CFG_MOOG_MAX_RETRIES);
    if (n >= max) {
        char why[256];
        snprintf(why, sizeof why, "retries exhausted after %lld attempts (MOOG_MAX_RETRIES %lld): %s",
                 (long long)n + 1, (long long)max, reason);
        mutt_counter_inc(requests_child(fw, "fail", "retry_exhausted"));
        to_dlq(op, why);
        return;
    }
    uint64_t delay = mutt_backoff_delay_ms((unsigned)(n < 0 ? 0 : n), fw->retry_base_ms, fw->retry_max_ms,
                                           mutt_random_u64(), retry_after_s);
    json_object_set_new(op->alert, "_moog_retry_count", json_integer(n + 1));
    char *json = NULL;
    size_t jlen = 0;
    if (mutt_event_dump_alloc(op->alert, &json, &jlen) != 0) {
        op_abandon(op);
        return;
    }
    char uuid[37];
    mutt_random_uuid(uuid);
    size_t mlen = 0;
    char *member = mutt_retry_member(uuid, json, jlen, &mlen);
    free(json);
    if (!member) {
        op_abandon(op);
        return;
    }
    double due = (double)(wall_ms() + (int64_t)delay);
    set_push(op, MUTT_RELQ_ZADD, fw->retry_key, member, mlen, due);
    set_lineage(op, MUTT_LINEAGE_FORWARD_RETRY,
                json_pack("{s:s, s:I}", "reason", reason, "retry_in_ms", (json_int_t)delay));
    op->label = FWD_ST_ERROR;
    mutt_log_kv(MUTT_LOG_INFO, "forward", op_cid(op), NULL, "attempt %lld failed (%s): retry in %llu ms",
                (long long)n + 1, reason, (unsigned long long)delay);
    complete(op);
}

/* ------------------------------------------------------------------------------------------ */
/* the attempt                                                                                 */

static void on_http_done(void *priv, const struct mutt_http_result *res)
{
    struct fwd_op *op = priv;
    struct forward *fw = op->fw;
    fw->http_inflight--;
    if (res->status == MUTT_ECANCELED) {
        /* our stop cancelled it: the item goes back to the queue with relq's stop */
        if (op->probe)
            probe_abandoned(fw);
        op_abandon(op);
        return;
    }
    mutt_histogram_observe(fw->m_latency, (double)res->total_time_us / 1e6);
    enum mutt_delivery d = mutt_forward_classify(res->http_status, res->curl_code);
    /* D22: every attempt's outcome (delivered / retry / dead) and its time, no I/O here */
    mutt_slo_record(fw->ctx->slo, MUTT_SLO_FORWARDER_AVAILABILITY, d == MUTT_DELIVERED ? 1 : 0, 1);
    mutt_slo_record_latency(fw->ctx->slo, MUTT_SLO_FORWARDER_LATENCY_P99, (double)res->total_time_us / 1e6);
    record_outcome(fw, d, op->probe);
    op->probe = false;
    char reason[256];
    mutt_forward_reason(res->http_status, res->curl_code, reason, sizeof reason);
    json_decref(op->lin_attempt);
    op->lin_attempt = NULL;
    if (mutt_config_bool(fw->ctx->cfg, MUTT_CFG_LINEAGE_ENABLED)) { /* D63: this attempt, for its step */
        op->lin_attempt = json_pack("{s:I, s:I}", "attempt", (json_int_t)retry_count(op) + 1, "latency_ms",
                                    (json_int_t)(res->total_time_us / 1000));
        if (op->lin_attempt)
            json_object_set_new(op->lin_attempt, res->http_status > 0 ? "status" : "error",
                                res->http_status > 0 ? json_integer(res->http_status) : json_string(reason));
    }
    if (d == MUTT_DELIVERED) {
        mutt_counter_inc(fw->c_success);
        op->label = FWD_ST_SUCCESS;
        op->npush = 0;
        set_lineage(op, MUTT_LINEAGE_DELIVERED, NULL);
        complete(op);
        return;
    }
    mutt_counter_inc(requests_child(fw, "fail", mutt_forward_metric_reason(res->http_status, res->curl_code)));
    if (d == MUTT_DEAD) {
        to_dlq(op, reason);
        return;
    }
    to_retry(op, reason, res->retry_after_s);
}

/* Rebuilds the Authorization header when MOOG_API_KEY changed (secrets rotation, W37). */
static const char *auth_header(struct forward *fw)
{
    const char *key = mutt_config_str(fw->ctx->cfg, MUTT_CFG_MOOG_API_KEY);
    if (!key[0])
        return NULL;
    if (fw->auth && fw->auth_key_len == strlen(key) && strncmp(fw->auth + 22, key, fw->auth_key_len) == 0)
        return fw->auth;
    free(fw->auth);
    fw->auth = NULL;
    if (asprintf(&fw->auth, "Authorization: Bearer %s", key) < 0) {
        fw->auth = NULL;
        return NULL;
    }
    fw->auth_key_len = strlen(key);
    return fw->auth;
}

static void attempt(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    if (mutt_stage_life_draining(&fw->life)) {
        if (op->probe)
            probe_abandoned(fw);
        op_abandon(op);
        return;
    }
    /* the breaker may have opened while a rate-limit call was out: no attempt then (W15) */
    if (!op->probe && fwd_breaker_holds(fw)) {
        wait_push(op, false);
        update_pause(fw);
        return;
    }
    if (!op->body) {
        json_t *p = mutt_moog_payload(op->alert, MUTT_VERSION, wall_ms() / 1000);
        int rc = p ? mutt_event_dump_alloc(p, &op->body, &op->body_len) : MUTT_ENOMEM;
        json_decref(p);
        if (rc != 0) {
            op->body = NULL;
            if (op->probe)
                probe_abandoned(fw);
            to_dlq(op, rc == MUTT_EINVAL ? "payload cannot be encoded" : "out of memory building the payload");
            return;
        }
    }
    const char *headers[4];
    size_t nh = 0;
    headers[nh++] = "Content-Type: application/json";
    headers[nh++] = "Expect:"; /* no 100-continue round trip for bodies over 1 KiB */
    const char *auth = auth_header(fw);
    if (auth)
        headers[nh++] = auth;
    struct mutt_http_request req = {
        .method = "POST",
        .url = fw->url,
        .headers = headers,
        .nheaders = nh,
        .body = op->body,
        .body_len = op->body_len,
        .timeout_ms = fw->timeout_ms,
        .ca_file = mutt_config_str(fw->ctx->cfg, MUTT_CFG_MOOG_CA_CERT)[0] ? mutt_config_str(fw->ctx->cfg, MUTT_CFG_MOOG_CA_CERT) : NULL,
    };
    int rc = mutt_http_client_request(fw->http, &req, on_http_done, op);
    if (rc == 0) {
        fw->http_inflight++;
        return;
    }
    if (rc == MUTT_EFULL || rc == MUTT_ENOMEM) {
        /* a local cap, not the destination: try again shortly, nothing counted */
        wait_push(op, true);
        if (!uv_is_active((uv_handle_t *)&fw->rate_timer))
            uv_timer_start(&fw->rate_timer, on_rate_timer, STALL_RETRY_MS, 0);
        return;
    }
    /* the request itself is unusable (bad URL...): retried like a transport error */
    if (op->probe)
        probe_abandoned(fw);
    op->probe = false;
    char reason[128];
    snprintf(reason, sizeof reason, "request not started: %s", mutt_strerror(rc));
    mutt_counter_inc(requests_child(fw, "fail", "http"));
    mutt_slo_record(fw->ctx->slo, MUTT_SLO_FORWARDER_AVAILABILITY, 0, 1); /* a failed delivery too */
    to_retry(op, reason, -1);
}

/* ------------------------------------------------------------------------------------------ */
/* the breaker's verdicts acted on: forward_breaker.c decides, this file waits, pauses, sends   */

static void on_probe_timer(uv_timer_t *t);

/* Arms the probe timer when the breaker says a probe is due (or due for a fresh look). */
static void arm_probe(struct forward *fw)
{
    if (!fw->timers_open || mutt_stage_life_draining(&fw->life))
        return;
    int64_t delay = fwd_breaker_probe_delay_ms(fw, wall_ms());
    if (delay >= 0)
        uv_timer_start(&fw->probe_timer, on_probe_timer, (uint64_t)delay, 0);
}

/* After each update of the breaker view: CLOSED wakes the waiting alerts, anything else keeps
 * relq paused and looks for the next probe. */
static void on_breaker_view(struct forward *fw)
{
    if (fw->bmode == MUTT_BREAKER_CLOSED) {
        if (fw->probe_state == FWD_PROBE_FETCHING)
            fw->probe_state = FWD_PROBE_NONE;
        if (fw->timers_open)
            uv_timer_stop(&fw->probe_timer);
        wake(fw);
        return;
    }
    update_pause(fw);
    arm_probe(fw);
}

static void on_decide_reply(void *priv, redisReply *reply, int status)
{
    struct fwd_op *op = priv;
    struct forward *fw = op->fw;
    fw->probe_state = FWD_PROBE_NONE;
    const char *verdict = fwd_breaker_take_script_reply(fw, status == 0 ? reply : NULL);
    if (verdict)
        on_breaker_view(fw);
    if (mutt_stage_life_draining(&fw->life)) {
        op_abandon(op); /* a probe lock we took expires by itself */
        return;
    }
    if (verdict && strcmp(verdict, "PROBE") == 0) {
        fw->probe_state = FWD_PROBE_SENDING;
        op->probe = true;
        mutt_log_info("forward", "circuit breaker %s: this pod probes the destination with one alert",
                      MUTT_KEY_BREAKER_NAME);
        attempt(op);
        return;
    }
    /* ALLOW (closed meanwhile: on_breaker_view woke the others), DENY, or the script failed: the
     * alert goes first in line again */
    wait_push(op, true);
    if (verdict && strcmp(verdict, "ALLOW") == 0) {
        wake(fw);
        return;
    }
    update_pause(fw);
    if (!verdict && fw->timers_open)
        uv_timer_start(&fw->probe_timer, on_probe_timer, FWD_BREAKER_RECHECK_MS, 0);
    else
        arm_probe(fw);
}

/* op becomes the probe candidate: the script says whether this pod may send it. */
static void decide_probe(struct forward *fw, struct fwd_op *op)
{
    fw->probe_state = FWD_PROBE_DECIDING;
    update_pause(fw);
    if (fwd_breaker_request_decide(fw, on_decide_reply, op) != 0) {
        fw->probe_state = FWD_PROBE_NONE;
        wait_push(op, true);
        update_pause(fw);
        uv_timer_start(&fw->probe_timer, on_probe_timer, FWD_BREAKER_RECHECK_MS, 0);
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (mutt_stage_life_draining(&fw->life) || fw->probe_state != FWD_PROBE_NONE || !fwd_breaker_holds(fw))
        return;
    struct fwd_op *op = wait_pop(fw);
    if (op) {
        decide_probe(fw, op);
        return;
    }
    /* nothing held here: let relq pop one alert to probe with (admit hands it to decide_probe) */
    fw->probe_state = FWD_PROBE_FETCHING;
    update_pause(fw);
}

/* Our probe was never sent (stop, cannot build): its lock expires by itself. */
static void probe_abandoned(struct forward *fw)
{
    if (fw->probe_state == FWD_PROBE_SENDING)
        fw->probe_state = FWD_PROBE_NONE;
    arm_probe(fw);
}

static void on_record_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    if (status == 0 && !mutt_stage_life_draining(&fw->life)) {
        if (fwd_breaker_take_script_reply(fw, reply))
            on_breaker_view(fw);
    } else if (status != 0) {
        arm_probe(fw);
    }
    maybe_stopped(fw); /* the stop may be waiting for this reply */
}

/* Feeds one attempt's outcome to the shared breaker. */
static void record_outcome(struct forward *fw, enum mutt_delivery d, bool probe)
{
    if (!fw->breaker_enabled)
        return;
    if (probe && fw->probe_state == FWD_PROBE_SENDING)
        fw->probe_state = FWD_PROBE_NONE;
    int rc = fwd_breaker_request_record(fw, d, probe, on_record_reply, fw);
    if (rc == 0)
        fw->rpending++;
    else if (rc < 0)
        arm_probe(fw);
}

static void on_poll_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    if (fwd_breaker_take_poll_reply(fw, status == 0 && !mutt_stage_life_draining(&fw->life) ? reply : NULL))
        on_breaker_view(fw);
    maybe_stopped(fw);
}

static void poll_breaker(struct forward *fw)
{
    switch (fwd_breaker_request_poll(fw, on_poll_reply, fw)) {
    case FWD_BREAKER_POLL_SENT:
        fw->rpending++;
        break;
    case FWD_BREAKER_POLL_KNOWN:
        update_pause(fw);
        break;
    case FWD_BREAKER_POLL_NONE:
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* shared rate limit (W13)                                                                     */

/* The stage takes tokens from the shared limit in leases (include/mutt/ratelimit.h): one script
 * call per lease, not per alert. Alerts with no token wait in the waiting list while the one
 * lease call is out; its reply wakes them. At a lease's deadline (lease_timer) a pod that used it
 * settles it and takes the next one in the same call (so a steady flow does not stop at every
 * deadline); an idle pod gives its unspent tokens back, so it does not starve the others. */

static void lease_request(struct forward *fw, bool want_tokens);
static void on_lease_timer(uv_timer_t *t);

/* The lease's clock (ms): read fresh, not the loop's cached time, so a spend late in a long loop
 * turn is recorded when it happens. */
static uint64_t lease_clock(void)
{
    return uv_hrtime() / 1000000u;
}

/* Redis failed: fail open like the original (the completion that follows needs Redis anyway),
 * a lease's worth of tokens at a time, with nothing to settle. */
static void lease_fail_open(struct forward *fw, uint32_t n, uint64_t lease_ms)
{
    uint64_t now = lease_clock();
    mutt_rate_lease_grant(&fw->lease, "", n ? n : 1, now, lease_ms, 0, now);
    uv_timer_start(&fw->lease_timer, on_lease_timer, 0, 0); /* wakes the waiting alerts (not from inside admit) */
}

static void on_lease_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (mutt_stage_life_draining(&fw->life))
        return;
    if (fw->nwaiting > 0)
        wake(fw); /* each admit spends a token or asks for the next lease (settling this one) */
    if (fw->lease_pending || lease_clock() < fw->lease.deadline)
        return;
    if (fw->lease.spent > 0 && fw->lease.member[0] && !rate_held(fw))
        lease_request(fw, true); /* in use: settle it and take the next one before an alert waits */
    else if (mutt_rate_lease_has_unspent(&fw->lease))
        lease_request(fw, false); /* idle: give back what was not spent */
    else
        mutt_rate_lease_clear(&fw->lease); /* its entry already ends at the deadline */
}

static void on_lease_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    fw->lease_pending = false;
    uint64_t now = lease_clock();
    if (mutt_stage_life_draining(&fw->life)) {
        maybe_stopped(fw); /* a lease granted now ends at its deadline in Redis */
        return;
    }
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 4 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_INTEGER) {
        long long granted = reply->element[0]->integer;
        if (granted > 0 && reply->element[3]->type == REDIS_REPLY_STRING) {
            long long redis_now = reply->element[2]->type == REDIS_REPLY_INTEGER ? reply->element[2]->integer : 0;
            mutt_rate_lease_grant(&fw->lease, reply->element[3]->str, (uint32_t)granted, fw->lease_sent_ms,
                                  fw->lease_len_ms, redis_now, now);
            uint64_t d = fw->lease.deadline > now ? fw->lease.deadline - now : 0;
            uv_timer_start(&fw->lease_timer, on_lease_timer, d, 0);
        } else if (fw->lease_want) {
            long long wait = reply->element[1]->integer;
            if (wait < 1)
                wait = 1;
            mutt_counter_add(fw->m_rate_hits, (double)fw->nwaiting);
            uint64_t until = uv_now(fw->ctx->loop) + (uint64_t)wait;
            if (until > fw->rate_hold_until_ms) {
                fw->rate_hold_until_ms = until;
                uv_timer_start(&fw->rate_timer, on_rate_timer, (uint64_t)wait, 0);
            }
        }
    } else if (fw->lease_want) {
        lease_fail_open(fw, mutt_ratelimit_lease_size(mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_RATE_LIMIT)),
                        fw->lease_len_ms);
    }
    wake(fw);
    maybe_stopped(fw);
}

static void lease_request(struct forward *fw, bool want_tokens)
{
    if (fw->lease_pending)
        return;
    int64_t limit = mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_RATE_LIMIT);
    int64_t window = mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_RATE_PERIOD) * 1000;
    uint64_t lease_ms = mutt_ratelimit_lease_ms(window);
    uint32_t want = want_tokens ? mutt_ratelimit_lease_size(limit) : 0;
    if (want_tokens && want == 0)
        want = 1; /* a limit of 0: the script denies */
    const char *prev = "";
    uint32_t spent = 0;
    int64_t last = -1;
    mutt_rate_lease_settlement(&fw->lease, &prev, &spent, &last);
    char a_limit[24], a_window[24], a_base[160], a_want[16], a_lease[24], a_spent[16], a_last[24] = "";
    if (last >= 0)
        snprintf(a_last, sizeof a_last, "%lld", (long long)last);
    snprintf(a_limit, sizeof a_limit, "%lld", (long long)limit);
    snprintf(a_window, sizeof a_window, "%lld", (long long)window);
    snprintf(a_base, sizeof a_base, "%s:%llu", fw->ctx->pod_name, (unsigned long long)++fw->rate_seq);
    snprintf(a_want, sizeof a_want, "%u", want);
    snprintf(a_lease, sizeof a_lease, "%llu", (unsigned long long)lease_ms);
    snprintf(a_spent, sizeof a_spent, "%u", spent);
    const char *keys[] = {fw->rate_key};
    const char *args[] = {a_limit, a_window, "", a_base, a_want, a_lease, prev, a_spent, a_last};
    uint64_t sent = lease_clock();
    int rc = mutt_redis_evalsha(mutt_redis_cmd(fw->ctx->redis), fw->script_rate, 1, keys, NULL, 9, args, NULL,
                                on_lease_reply, fw); /* args are copied at once */
    /* the settlement is sent (or lost with Redis): this lease spends no more either way */
    mutt_rate_lease_clear(&fw->lease);
    if (rc == 0) {
        fw->rpending++;
        fw->lease_pending = true;
        fw->lease_want = want_tokens;
        fw->lease_sent_ms = sent;
        fw->lease_len_ms = lease_ms;
        return;
    }
    if (want_tokens)
        lease_fail_open(fw, want, lease_ms);
}

/* Every alert passes here on its way to the destination, and again after waiting. */
static void admit(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    if (mutt_stage_life_draining(&fw->life)) {
        op_abandon(op);
        return;
    }
    switch (fwd_breaker_admit(fw)) {
    case FWD_BREAKER_PROBE:
        decide_probe(fw, op);
        return;
    case FWD_BREAKER_HOLD:
        wait_push(op, false);
        update_pause(fw);
        arm_probe(fw);
        return;
    case FWD_BREAKER_ADMIT:
        break;
    }
    if (rate_held(fw)) {
        wait_push(op, false);
        update_pause(fw);
        return;
    }
    if (mutt_rate_lease_take(&fw->lease, lease_clock())) {
        attempt(op);
        return;
    }
    wait_push(op, false);
    lease_request(fw, true);
    update_pause(fw);
}

static void on_item(void *priv, struct mutt_relq_item *item, const char *data, size_t len)
{
    struct forward *fw = priv;
    struct fwd_op *op = calloc(1, sizeof *op);
    if (!op) {
        mutt_relq_abandon(item);
        return;
    }
    op->fw = fw;
    op->item = item;
    op->start_ns = uv_hrtime();
    fw->busy++;
    json_error_t jerr;
    op->alert = json_loadb(data, len, 0, &jerr);
    if (!json_is_object(op->alert)) {
        char reason[256];
        if (op->alert)
            snprintf(reason, sizeof reason, "not a JSON object");
        else
            snprintf(reason, sizeof reason, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                     jerr.column);
        json_decref(op->alert);
        op->alert = NULL;
        to_dlq_raw(op, data, len, reason);
        return;
    }
    /* D33: items of the Python original */
    json_object_del(op->alert, "api_key");
    uint8_t rnd[16];
    mutt_random_bytes(rnd, sizeof rnd);
    mutt_event_ensure_event_id(op->alert, rnd);
    int64_t n = retry_count(op);
    int64_t max = mutt_config_int(fw->ctx->cfg, MUTT_CFG_MOOG_MAX_RETRIES);
    if (n > max) { /* an item written by the original past its retries (reference §6.1 step 3) */
        char why[160];
        snprintf(why, sizeof why, "retries exhausted: _moog_retry_count %lld > MOOG_MAX_RETRIES %lld", (long long)n,
                 (long long)max);
        mutt_counter_inc(requests_child(fw, "fail", "retry_exhausted"));
        to_dlq(op, why);
        return;
    }
    admit(op);
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
    maybe_stopped(fw);
}

static void on_promote_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    char now[24], max[16];
    snprintf(now, sizeof now, "%lld", (long long)wall_ms());
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
    maybe_stopped(fw);
}

static void on_processing_depth(void *priv, int status, long long depth)
{
    struct forward *fw = priv;
    fw->rpending--;
    mutt_gauge_set_if_ok(fw->m_processing_depth, status, depth);
    maybe_stopped(fw);
}

static void on_gauge_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (mutt_redis_connected(fw->ctx->redis)) {
        if (mutt_redis_commandf(mutt_redis_cmd(fw->ctx->redis), on_dlq_depth, fw, "LLEN %s", fw->dlq) == 0)
            fw->rpending++;
        if (mutt_stage_life_started(&fw->life) && mutt_relq_processing_depth(fw->relq, on_processing_depth, fw) == 0)
            fw->rpending++;
        poll_breaker(fw);
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
    fw->c_success = requests_child(fw, "success", "");
    requests_child(fw, "fail", "http"); /* shown at 0 from the start */
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

static void maybe_stopped(struct forward *fw)
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
    maybe_stopped(fw);
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
    fw->relq = mutt_relq_create(ctx->loop, ctx->redis, &ro, on_item, fw);
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
    update_pause(fw);
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
    while ((op = wait_pop(fw)))
        op_abandon(op);
    update_pause(fw);
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
