/* forward: the per-alert flow up to the destination: items from relq, admission (breaker, rate
 * limit), the waiting list, the POST and its classification. */
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

/* ------------------------------------------------------------------------------------------ */
/* waiting list: alerts held by the breaker or the rate limiter                                */

void fwd_wait_push(struct fwd_op *op, bool front)
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

struct fwd_op *fwd_wait_pop(struct forward *fw)
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

bool fwd_rate_held(const struct forward *fw)
{
    return fw->rate_hold_until_ms > uv_now(fw->ctx->loop);
}

/* One place decides whether relq may pop: held by the breaker (unless a probe is being fetched),
 * by the rate limiter, or stopping. */
void fwd_update_pause(struct forward *fw)
{
    if (!fw->relq)
        return;
    if (fw->life.state == MUTT_STAGE_STARTING && fw->bknown)
        mutt_stage_life_set_state(&fw->life, MUTT_STAGE_RUNNING); /* first look at the breaker done */
    bool want = mutt_stage_life_draining(&fw->life) || fwd_breaker_holds(fw) || fwd_rate_held(fw) || fw->nwaiting > 0;
    if (fw->probe_state == FWD_PROBE_FETCHING && !mutt_stage_life_draining(&fw->life))
        want = false;
    if (want)
        mutt_relq_pause(fw->relq);
    else
        mutt_relq_resume(fw->relq);
}

/* Re-admits every waiting alert in order (each may be held again), then lets relq pop. */
void fwd_wake(struct forward *fw)
{
    if (fw->waking)
        return;
    fw->waking = true;
    size_t n = fw->nwaiting;
    while (n-- > 0 && !mutt_stage_life_draining(&fw->life) && !fwd_breaker_holds(fw) && !fwd_rate_held(fw)) {
        struct fwd_op *op = fwd_wait_pop(fw);
        if (!op)
            break;
        fwd_admit(op);
    }
    fw->waking = false;
    fwd_update_pause(fw);
}

void fwd_on_rate_timer(uv_timer_t *t)
{
    fwd_wake(t->data);
}

/* Every alert passes here on its way to the destination, and again after waiting. */
void fwd_admit(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    if (mutt_stage_life_draining(&fw->life)) {
        fwd_op_abandon(op);
        return;
    }
    switch (fwd_breaker_admit(fw)) {
    case FWD_BREAKER_PROBE:
        fwd_decide_probe(fw, op);
        return;
    case FWD_BREAKER_HOLD:
        fwd_wait_push(op, false);
        fwd_update_pause(fw);
        fwd_arm_probe(fw);
        return;
    case FWD_BREAKER_ADMIT:
        break;
    }
    if (fwd_rate_held(fw)) {
        fwd_wait_push(op, false);
        fwd_update_pause(fw);
        return;
    }
    if (mutt_rate_lease_take(&fw->lease, fwd_lease_clock())) {
        fwd_attempt(op);
        return;
    }
    fwd_wait_push(op, false);
    fwd_lease_request(fw, true);
    fwd_update_pause(fw);
}

void fwd_on_item(void *priv, struct mutt_relq_item *item, const char *data, size_t len)
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
        fwd_to_dlq_raw(op, data, len, reason);
        return;
    }
    /* D33: items of the Python original */
    json_object_del(op->alert, "api_key");
    uint8_t rnd[16];
    mutt_random_bytes(rnd, sizeof rnd);
    mutt_event_ensure_event_id(op->alert, rnd);
    int64_t n = fwd_retry_count(op);
    int64_t max = mutt_config_int(fw->ctx->cfg, MUTT_CFG_MOOG_MAX_RETRIES);
    if (n > max) { /* an item written by the original past its retries (reference §6.1 step 3) */
        char why[160];
        snprintf(why, sizeof why, "retries exhausted: _moog_retry_count %lld > MOOG_MAX_RETRIES %lld", (long long)n,
                 (long long)max);
        mutt_counter_inc(fwd_requests_child(fw, "fail", "retry_exhausted"));
        fwd_to_dlq(op, why);
        return;
    }
    fwd_admit(op);
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
            fwd_probe_abandoned(fw);
        fwd_op_abandon(op);
        return;
    }
    mutt_histogram_observe(fw->m_latency, (double)res->total_time_us / 1e6);
    enum mutt_delivery d = mutt_forward_classify(res->http_status, res->curl_code);
    /* D22: every attempt's outcome (delivered / retry / dead) and its time, no I/O here */
    mutt_slo_record(fw->ctx->slo, MUTT_SLO_FORWARDER_AVAILABILITY, d == MUTT_DELIVERED ? 1 : 0, 1);
    mutt_slo_record_latency(fw->ctx->slo, MUTT_SLO_FORWARDER_LATENCY_P99, (double)res->total_time_us / 1e6);
    fwd_record_outcome(fw, d, op->probe);
    op->probe = false;
    char reason[256];
    mutt_forward_reason(res->http_status, res->curl_code, reason, sizeof reason);
    json_decref(op->lin_attempt);
    op->lin_attempt = NULL;
    if (mutt_config_bool(fw->ctx->cfg, MUTT_CFG_LINEAGE_ENABLED)) { /* D63: this attempt, for its step */
        op->lin_attempt = json_pack("{s:I, s:I}", "attempt", (json_int_t)fwd_retry_count(op) + 1, "latency_ms",
                                    (json_int_t)(res->total_time_us / 1000));
        if (op->lin_attempt)
            json_object_set_new(op->lin_attempt, res->http_status > 0 ? "status" : "error",
                                res->http_status > 0 ? json_integer(res->http_status) : json_string(reason));
    }
    if (d == MUTT_DELIVERED) {
        mutt_counter_inc(fw->c_success);
        op->label = FWD_ST_SUCCESS;
        op->npush = 0;
        fwd_set_lineage(op, MUTT_LINEAGE_DELIVERED, NULL);
        fwd_complete(op);
        return;
    }
    mutt_counter_inc(fwd_requests_child(fw, "fail", mutt_forward_metric_reason(res->http_status, res->curl_code)));
    if (d == MUTT_DEAD) {
        fwd_to_dlq(op, reason);
        return;
    }
    fwd_to_retry(op, reason, res->retry_after_s);
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

void fwd_attempt(struct fwd_op *op)
{
    struct forward *fw = op->fw;
    if (mutt_stage_life_draining(&fw->life)) {
        if (op->probe)
            fwd_probe_abandoned(fw);
        fwd_op_abandon(op);
        return;
    }
    /* the breaker may have opened while a rate-limit call was out: no attempt then (W15) */
    if (!op->probe && fwd_breaker_holds(fw)) {
        fwd_wait_push(op, false);
        fwd_update_pause(fw);
        return;
    }
    if (!op->body) {
        json_t *p = mutt_moog_payload(op->alert, MUTT_VERSION, fwd_wall_ms() / 1000);
        int rc = p ? mutt_event_dump_alloc(p, &op->body, &op->body_len) : MUTT_ENOMEM;
        json_decref(p);
        if (rc != 0) {
            op->body = NULL;
            if (op->probe)
                fwd_probe_abandoned(fw);
            fwd_to_dlq(op, rc == MUTT_EINVAL ? "payload cannot be encoded" : "out of memory building the payload");
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
        fwd_wait_push(op, true);
        if (!uv_is_active((uv_handle_t *)&fw->rate_timer))
            uv_timer_start(&fw->rate_timer, fwd_on_rate_timer, STALL_RETRY_MS, 0);
        return;
    }
    /* the request itself is unusable (bad URL...): retried like a transport error */
    if (op->probe)
        fwd_probe_abandoned(fw);
    op->probe = false;
    char reason[128];
    snprintf(reason, sizeof reason, "request not started: %s", mutt_strerror(rc));
    mutt_counter_inc(fwd_requests_child(fw, "fail", "http"));
    mutt_slo_record(fw->ctx->slo, MUTT_SLO_FORWARDER_AVAILABILITY, 0, 1); /* a failed delivery too */
    fwd_to_retry(op, reason, -1);
}

