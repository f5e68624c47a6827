/* relq: the janitor (dead pods' processing lists back to the source) and the graceful stop. */
#include "relq_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/queue_bytes.h"

static void janitor_next_page(struct mutt_relq *q);

/* ------------------------------------------------------------------------------ janitor */

static void on_janitor_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    if (mutt_relq_run_janitor(q) != 0 && !q->janitor_running && q->state == RELQ_RUNNING)
        uv_timer_start(&q->janitor_timer, on_janitor_timer, q->janitor_interval_ms, 0);
}

static void janitor_finish(struct mutt_relq *q, bool ok)
{
    q->janitor_running = false;
    free(q->janitor_cursor);
    q->janitor_cursor = NULL;
    if (ok)
        q->stats.janitor_runs++;
    if (q->state == RELQ_RUNNING)
        uv_timer_start(&q->janitor_timer, on_janitor_timer, ok ? q->janitor_interval_ms : RETRY_DELAY_MS, 0);
}

static void free_janitor_op(struct janitor_op *op)
{
    free(op->list);
    free(op->heartbeat);
    free(op);
}

static void on_janitor_move_reply(void *privdata, redisReply *reply, int status);

static int send_janitor_move(struct janitor_op *op)
{
    struct mutt_relq *q = op->q;
    const char *keys[4] = {op->list, op->heartbeat, q->source, q->bytes_key};
    const char *args[3] = {"janitor", q->batch_str, q->expiry_str};
    int rc = mutt_redis_evalsha(q->cmd, q->script_move, relq_move_nkeys(q), keys, NULL, 3, args, NULL,
                                on_janitor_move_reply, op);
    if (rc == 0)
        q->pending++;
    return rc;
}

static void janitor_op_done(struct mutt_relq *q)
{
    if (--q->janitor_page_pending == 0)
        janitor_next_page(q);
}

static void on_janitor_move_reply(void *privdata, redisReply *reply, int status)
{
    struct janitor_op *op = privdata;
    struct mutt_relq *q = op->q;
    if (!relq_op_return(q)) {
        free_janitor_op(op);
        return;
    }
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) {
        long long moved = reply->element[0]->integer;
        long long left = reply->element[1]->integer;
        if (moved > 0) {
            q->stats.janitor_recovered += (uint64_t)moved;
            mutt_log_info("relq", "%s: janitor returned %lld items of dead pod list %s to %s (%lld left)", q->name,
                          moved, op->list, q->source, left);
            if (left > 0 && q->state == RELQ_RUNNING && send_janitor_move(op) == 0)
                return; /* same op, next batch */
        }
    } else if (status != MUTT_ECANCELED) {
        mutt_log_warn("relq", "%s: janitor on %s failed: %.200s", q->name, op->list,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status ? status : MUTT_EIO));
    }
    free_janitor_op(op);
    janitor_op_done(q);
}

static void on_scan_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    if (!relq_op_return(q))
        return;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_ARRAY) {
        if (status != MUTT_ECANCELED)
            mutt_log_warn("relq", "%s: janitor SCAN failed: %s", q->name, mutt_strerror(status ? status : MUTT_EIO));
        janitor_finish(q, false);
        return;
    }
    char *cursor = strdup(reply->element[0]->str);
    if (!cursor) {
        janitor_finish(q, false);
        return;
    }
    free(q->janitor_cursor);
    q->janitor_cursor = cursor;
    size_t plen = strlen(q->proc_prefix);
    const redisReply *keys = reply->element[1];
    q->janitor_page_pending = 1; /* held by this loop so a synchronous finish cannot advance */
    for (size_t i = 0; i < keys->elements && q->state == RELQ_RUNNING; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= plen + 1 || memcmp(k->str, q->proc_prefix, plen) != 0 ||
            k->str[plen] != ':' || strlen(k->str) != k->len)
            continue;
        if (strcmp(k->str, q->proc_list) == 0)
            continue; /* never our own list: its items may be in flight */
        struct janitor_op *op = calloc(1, sizeof(*op));
        if (!op)
            break;
        op->q = q;
        op->list = strdup(k->str);
        op->heartbeat = relq_join_key(q->hb_prefix, k->str + plen + 1);
        if (!op->list || !op->heartbeat || send_janitor_move(op) != 0) {
            free_janitor_op(op);
            continue;
        }
        q->janitor_page_pending++;
    }
    janitor_op_done(q);
}

static void janitor_scan(struct mutt_relq *q)
{
    const char *argv[6] = {"SCAN", q->janitor_cursor, "MATCH", q->scan_pattern, "COUNT", SCAN_COUNT};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (mutt_redis_command(q->cmd, on_scan_reply, q, 6, argv, lens) != 0) {
        janitor_finish(q, false);
        return;
    }
    q->pending++;
}

static void janitor_next_page(struct mutt_relq *q)
{
    if (q->state != RELQ_RUNNING) {
        janitor_finish(q, false);
        return;
    }
    if (strcmp(q->janitor_cursor, "0") == 0) {
        janitor_finish(q, true);
        return;
    }
    janitor_scan(q);
}

static void on_reconcile_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    if (!relq_op_return(q))
        return;
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_INTEGER &&
        reply->element[2]->type == REDIS_REPLY_INTEGER) {
        long long mode = reply->element[0]->integer, before = reply->element[1]->integer;
        long long after = reply->element[2]->integer;
        q->stats.bytes_reconciles++;
        if (mode != 0 && before != after)
            mutt_log_info("relq", "%s: byte counter %s reconciled: %lld -> %lld (%s)", q->name, q->bytes_key, before,
                          after, mode == 1 ? "recounted" : "estimated");
    } else if (status != MUTT_ECANCELED && status != MUTT_EDISCONNECTED) {
        mutt_log_warn("relq", "%s: reconciling %s failed: %.200s", q->name, q->bytes_key,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status ? status : MUTT_EIO));
    }
}

/* D52: the byte counter drifts (a pop whose DECRBY was lost, items written by other tools); every
 * janitor pass sets it back to what the source holds. Sent on the dedicated connection, behind
 * any blocking pop: a recount between a pop and its DECRBY would count that item twice. */
static void reconcile_bytes(struct mutt_relq *q)
{
    if (!q->bytes_key || !q->bconn || !mutt_redis_conn_connected(q->bconn))
        return;
    char limit[24];
    snprintf(limit, sizeof limit, "%d", MUTT_QUEUE_BYTES_RECOUNT_MAX);
    const char *keys[2] = {q->source, q->bytes_key};
    const char *args[1] = {limit};
    if (mutt_redis_evalsha(q->bconn, q->script_reconcile, 2, keys, NULL, 1, args, NULL, on_reconcile_reply, q) == 0)
        q->pending++;
}

int mutt_relq_run_janitor(struct mutt_relq *q)
{
    if (!q || q->state != RELQ_RUNNING || q->janitor_running)
        return MUTT_ESTATE;
    if (!mutt_redis_conn_connected(q->cmd))
        return MUTT_EDISCONNECTED;
    uv_timer_stop(&q->janitor_timer);
    q->janitor_cursor = strdup("0");
    if (!q->janitor_cursor)
        return MUTT_ENOMEM;
    q->janitor_running = true;
    reconcile_bytes(q);
    janitor_scan(q);
    return 0;
}

/* ------------------------------------------------------------------------------ stop */

static void finish_stop(struct mutt_relq *q, int status)
{
    q->state = RELQ_STOPPED;
    uv_timer_stop(&q->stop_timer);
    uv_timer_stop(&q->hb_timer);
    if (status == 0)
        mutt_log_info("relq", "%s: stopped; %s returned to %s, heartbeat deleted", q->name, q->proc_list, q->source);
    else
        mutt_log_warn("relq", "%s: stopped, but returning %s failed (%s): a janitor recovers it", q->name,
                      q->proc_list, mutt_strerror(status));
    mutt_relq_stopped_cb *cb = q->stopped_cb;
    q->stopped_cb = NULL;
    if (cb)
        cb(q->stopped_priv, status); /* last: the stage may destroy us from here */
}

static void send_release(struct mutt_relq *q);

static void release_failed(struct mutt_relq *q, int status)
{
    if (++q->release_attempts < RELEASE_MAX_ATTEMPTS) {
        uv_timer_start(&q->stop_timer, relq_on_stop_timer, SEND_RETRY_DELAY_MS, 0);
        return;
    }
    finish_stop(q, status);
}

static void on_release_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    if (!relq_op_return(q))
        return;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        release_failed(q, status ? status : MUTT_EIO);
        return;
    }
    long long moved = reply->element[0]->integer;
    long long left = reply->element[1]->integer;
    if (moved > 0)
        q->stats.returned_on_stop += (uint64_t)moved;
    q->stats.processing_depth = left;
    if (left > 0) {
        send_release(q);
        return;
    }
    finish_stop(q, 0);
}

static void send_release(struct mutt_relq *q)
{
    const char *keys[4] = {q->proc_list, q->hb_key, q->source, q->bytes_key};
    const char *args[3] = {"release", q->batch_str, q->expiry_str};
    int rc = mutt_redis_evalsha(q->cmd, q->script_move, relq_move_nkeys(q), keys, NULL, 3, args, NULL, on_release_reply, q);
    if (rc != 0) {
        release_failed(q, rc);
        return;
    }
    q->pending++;
}

void relq_on_stop_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    if (q->state == RELQ_DRAINING) { /* deadline: whatever the stage still holds goes back too */
        if (q->inflight > 0)
            mutt_log_warn("relq", "%s: stop deadline passed with %zu items still held; returning them", q->name,
                          q->inflight);
        q->state = RELQ_RELEASING;
        uv_timer_stop(&q->hb_timer);
    }
    if (q->state == RELQ_RELEASING)
        send_release(q);
}

int mutt_relq_stop(struct mutt_relq *q, uint64_t drain_timeout_ms, mutt_relq_stopped_cb *cb, void *priv)
{
    if (!q || q->state != RELQ_RUNNING)
        return MUTT_ESTATE;
    q->state = RELQ_DRAINING;
    q->stopped_cb = cb;
    q->stopped_priv = priv;
    q->release_attempts = 0;
    uv_timer_stop(&q->janitor_timer);
    uv_timer_stop(&q->retry_timer);
    /* closing cancels a BRPOPLPUSH at once instead of waiting up to block_timeout_s. If the
     * server served it in that instant, the item is in our list and the release returns it. */
    if (q->bconn) {
        struct mutt_redis_conn *c = q->bconn;
        q->bconn = NULL;
        mutt_redis_conn_close(c);
    }
    relq_drop_held(q);
    uv_timer_start(&q->stop_timer, relq_on_stop_timer, q->inflight == 0 ? 0 : drain_timeout_ms, 0);
    return 0;
}
