/* forward: each alert's one completion (D3): delivered, retry (D4) or DLQ, with its lineage step;
 * completions refused locally are resent. */
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
/* completion                                                                                  */

static void on_completed(void *priv, struct mutt_relq_item *item, int status)
{
    struct fwd_op *op = priv;
    struct forward *fw = op->fw;
    if (status == 0) {
        if (op->label < FWD_ST_COUNT_)
            mutt_counter_inc(fw->m_processed[op->label]);
        mutt_histogram_observe(fw->m_processing, (double)(uv_hrtime() - op->start_ns) / 1e9);
        fwd_op_finish(op);
        return;
    }
    if (status == MUTT_ENOTFOUND) {
        /* a janitor or our stop already returned it to the queue: nothing was pushed, the next
         * consumer delivers it again (the at-most-in-flight duplicate) */
        mutt_counter_inc(fw->m_already_gone);
        fwd_op_finish(op);
        return;
    }
    mutt_log_kv(MUTT_LOG_WARNING, "forward", fwd_op_cid(op), NULL,
                "completion failed (%s): the alert stays in the processing list", mutt_strerror(status));
    fwd_op_abandon(op);
}

static void on_stall_timer(uv_timer_t *t);

/* Sends the completion with op's push (if any). A local refusal (the command connection's cap,
 * OOM) is retried shortly; a disconnected Redis leaves the item for relq's recovery. */
void fwd_complete(struct fwd_op *op)
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
        mutt_log_kv(MUTT_LOG_WARNING, "forward", fwd_op_cid(op), NULL,
                    "completion not sent (%s): the alert stays in the processing list", mutt_strerror(rc));
        fwd_op_abandon(op);
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
        fwd_complete(op);
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
void fwd_set_lineage(struct fwd_op *op, enum mutt_lineage_step code, json_t *extra)
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
    if (d && strcmp(fwd_alert_str(op->alert, "hostname") ? fwd_alert_str(op->alert, "hostname") : "", MUTT_ALERT_META_HOSTNAME) == 0)
        json_object_set_new(d, "meta_alert", json_true());
    free(op->lin_payload);
    op->lin_payload = NULL;
    op->nlin = mutt_lineage_push(op->fw->ctx->cfg, op->alert, code, d, fwd_wall_ms(), op->lin_key, &op->lin_push,
                                 &op->lin_payload) ? 1 : 0;
}

/* Dead letter: the alert (D33-cleaned) in the D5 envelope. */
void fwd_to_dlq(struct fwd_op *op, const char *reason)
{
    struct forward *fw = op->fw;
    char *s = NULL;
    size_t len = 0;
    if (mutt_dlq_envelope(op->alert, DLQ_ORIGIN, reason, fwd_wall_ms(), &s, &len) != 0) {
        fwd_op_abandon(op);
        return;
    }
    set_push(op, MUTT_RELQ_LPUSH, fw->dlq, s, len, 0);
    fwd_set_lineage(op, MUTT_LINEAGE_FORWARD_DLQ, json_pack("{s:s, s:s}", "dlq", fw->dlq, "reason", reason));
    op->label = FWD_ST_DLQ;
    mutt_log_kv(MUTT_LOG_WARNING, "forward", fwd_op_cid(op), NULL, "to %s: %s", fw->dlq, reason);
    fwd_complete(op);
}

/* An item that is not a JSON object: its text under "_raw" in the D5 envelope. */
void fwd_to_dlq_raw(struct fwd_op *op, const char *data, size_t len, const char *reason)
{
    struct forward *fw = op->fw;
    char *s = NULL;
    size_t slen = 0;
    if (mutt_dlq_envelope_raw(data, len, DLQ_ORIGIN, reason, fwd_wall_ms(), &s, &slen) != 0) {
        fwd_op_abandon(op);
        return;
    }
    set_push(op, MUTT_RELQ_LPUSH, fw->dlq, s, slen, 0);
    op->label = FWD_ST_DLQ;
    mutt_log_warn("forward", "unparseable item to %s: %s", fw->dlq, reason);
    fwd_complete(op);
}

int64_t fwd_retry_count(const struct fwd_op *op)
{
    const json_t *v = json_object_get(op->alert, "_moog_retry_count");
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return 0;
}

/* W16/D4: the alert waits in the retry set, no worker waits for it. */
void fwd_to_retry(struct fwd_op *op, const char *reason, int64_t retry_after_s)
{
    struct forward *fw = op->fw;
    int64_t n = fwd_retry_count(op);
    int64_t max = mutt_config_int(fw->ctx->cfg, MUTT_CFG_MOOG_MAX_RETRIES);
    if (n >= max) {
        char why[256];
        snprintf(why, sizeof why, "retries exhausted after %lld attempts (MOOG_MAX_RETRIES %lld): %s",
                 (long long)n + 1, (long long)max, reason);
        mutt_counter_inc(fwd_requests_child(fw, "fail", "retry_exhausted"));
        fwd_to_dlq(op, why);
        return;
    }
    uint64_t delay = mutt_backoff_delay_ms((unsigned)(n < 0 ? 0 : n), fw->retry_base_ms, fw->retry_max_ms,
                                           mutt_random_u64(), retry_after_s);
    json_object_set_new(op->alert, "_moog_retry_count", json_integer(n + 1));
    char *json = NULL;
    size_t jlen = 0;
    if (mutt_event_dump_alloc(op->alert, &json, &jlen) != 0) {
        fwd_op_abandon(op);
        return;
    }
    char uuid[37];
    mutt_random_uuid(uuid);
    size_t mlen = 0;
    char *member = mutt_retry_member(uuid, json, jlen, &mlen);
    free(json);
    if (!member) {
        fwd_op_abandon(op);
        return;
    }
    double due = (double)(fwd_wall_ms() + (int64_t)delay);
    set_push(op, MUTT_RELQ_ZADD, fw->retry_key, member, mlen, due);
    fwd_set_lineage(op, MUTT_LINEAGE_FORWARD_RETRY,
                json_pack("{s:s, s:I}", "reason", reason, "retry_in_ms", (json_int_t)delay));
    op->label = FWD_ST_ERROR;
    mutt_log_kv(MUTT_LOG_INFO, "forward", fwd_op_cid(op), NULL, "attempt %lld failed (%s): retry in %llu ms",
                (long long)n + 1, reason, (unsigned long long)delay);
    fwd_complete(op);
}

