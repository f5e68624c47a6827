/* relq: popping (BRPOPLPUSH, then batched pops), claiming our own list, the heartbeat. */
#include "relq_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"

static void settle_pop_debt(struct mutt_relq *q);

/* ------------------------------------------------------------------------------ popping */

static void on_retry_timer(uv_timer_t *t)
{
    relq_pump(t->data);
}

static void retry_later(struct mutt_relq *q, uint64_t delay_ms)
{
    if (q->state == RELQ_RUNNING && !uv_is_active((uv_handle_t *)&q->retry_timer))
        uv_timer_start(&q->retry_timer, on_retry_timer, delay_ms, 0);
}

/* A send that failed synchronously: EDISCONNECTED waits for the connection's "up" (which calls
 * pump), anything else retries shortly. */
static void send_failed(struct mutt_relq *q, int rc)
{
    if (rc != MUTT_EDISCONNECTED)
        retry_later(q, SEND_RETRY_DELAY_MS);
}

static void take_items(struct mutt_relq *q, const redisReply *reply, size_t *got)
{
    *got = 0;
    if (reply->type == REDIS_REPLY_STRING) {
        if (!relq_add_item(q, reply->str, reply->len))
            q->need_claim = true; /* it sits in our list untracked: the claim returns it */
        *got = 1;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (!relq_add_item(q, e->str, e->len))
            q->need_claim = true;
        (*got)++;
    }
}

static void on_pop_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    q->bconn_busy = false;
    if (!relq_op_return(q))
        return;
    if (status == 0 && reply) {
        size_t got = 0;
        /* D52: BRPOPLPUSH cannot run a script; the counter follows in a second command, on the
         * same connection as our reconcile so that one never lands in between (lost if we die
         * first: the janitor's reconcile repairs it): in the batch pop that pump sends next, or
         * alone when none goes */
        if (reply->type == REDIS_REPLY_STRING && q->bytes_key)
            q->pop_debt += reply->len;
        if (q->state == RELQ_RUNNING) /* else they stay in our list: the stop returns them */
            take_items(q, reply, &got);
        q->stats.popped += got;
        /* BRPOPLPUSH gave one: drain without blocking; a batch that got all it asked for: again */
        q->drain_next = got > 0 && got >= q->pop_asked;
        relq_dispatch(q);
        relq_pump(q);
        settle_pop_debt(q);
        return;
    }
    q->drain_next = false;
    if (status == MUTT_EDISCONNECTED) {
        /* the server may have moved an item whose reply we lost: claim our list once idle */
        q->need_claim = true;
        return; /* the connection's "up" calls pump */
    }
    if (status == MUTT_ECANCELED)
        return;
    mutt_log_warn("relq", "%s: pop from %s failed: %.200s", q->name, q->source,
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status));
    retry_later(q, RETRY_DELAY_MS);
}

/* The bytes of a BRPOPLPUSH's item when no batch pop carried them off the counter. */
static void settle_pop_debt(struct mutt_relq *q)
{
    if (q->pop_debt == 0 || !q->bytes_key)
        return;
    char n[24];
    snprintf(n, sizeof n, "%zu", q->pop_debt);
    q->pop_debt = 0;
    const char *argv[3] = {"DECRBY", q->bytes_key, n};
    size_t lens[3] = {6, strlen(q->bytes_key), strlen(n)};
    if (!q->bconn || mutt_redis_command(q->bconn, NULL, NULL, 3, argv, lens) != 0)
        mutt_redis_command(q->cmd, NULL, NULL, 3, argv, lens);
}

static void send_blocking_pop(struct mutt_relq *q)
{
    const char *argv[4] = {"BRPOPLPUSH", q->source, q->proc_list, q->block_timeout_str};
    size_t lens[4] = {10, strlen(q->source), strlen(q->proc_list), strlen(q->block_timeout_str)};
    int rc = mutt_redis_command(q->bconn, on_pop_reply, q, 4, argv, lens);
    if (rc != 0) {
        send_failed(q, rc);
        return;
    }
    q->pending++;
    q->bconn_busy = true;
    q->pop_asked = 1;
}

static void send_batch_pop(struct mutt_relq *q, size_t n)
{
    char nbuf[24], debt[24];
    snprintf(nbuf, sizeof(nbuf), "%zu", n);
    snprintf(debt, sizeof(debt), "%zu", q->pop_debt);
    const char *keys[3] = {q->source, q->proc_list, q->bytes_key};
    const char *args[2] = {nbuf, debt};
    int rc = mutt_redis_evalsha(q->bconn, q->script_pop_batch, q->bytes_key ? 3 : 2, keys, NULL, 2, args, NULL,
                                on_pop_reply, q);
    if (rc != 0) {
        send_failed(q, rc);
        return;
    }
    q->pop_debt = 0;
    q->pending++;
    q->bconn_busy = true;
    q->pop_asked = n;
}

static void on_claim_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    q->bconn_busy = false;
    if (!relq_op_return(q))
        return;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        if (status == MUTT_EDISCONNECTED || status == MUTT_ECANCELED)
            return; /* need_claim stays set; the next "up" claims again */
        mutt_log_warn("relq", "%s: recovering own list %s failed: %.200s", q->name, q->proc_list,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status ? status : MUTT_EIO));
        retry_later(q, RETRY_DELAY_MS);
        return;
    }
    long long moved = reply->element[0]->integer;
    long long left = reply->element[1]->integer;
    if (moved > 0) {
        q->stats.own_recovered += (uint64_t)moved;
        mutt_log_info("relq", "%s: returned %lld items of our own list %s to %s", q->name, moved, q->proc_list,
                      q->source);
    }
    if (left == 0) {
        q->need_claim = false;
        q->stats.processing_depth = 0;
    }
    if (!q->janitor_started && q->state == RELQ_RUNNING) {
        /* first janitor pass only now: our heartbeat is written, our list is clean */
        q->janitor_started = true;
        mutt_relq_run_janitor(q);
    }
    relq_pump(q);
}

static void send_claim(struct mutt_relq *q)
{
    const char *keys[4] = {q->proc_list, q->hb_key, q->source, q->bytes_key};
    const char *args[3] = {"claim", q->batch_str, q->expiry_str};
    int rc = mutt_redis_evalsha(q->bconn, q->script_move, relq_move_nkeys(q), keys, NULL, 3, args, NULL, on_claim_reply, q);
    if (rc != 0) {
        send_failed(q, rc);
        return;
    }
    q->pending++;
    q->bconn_busy = true;
}

/* The one place that decides the next command on the dedicated connection. */
void relq_pump(struct mutt_relq *q)
{
    if (q->state != RELQ_RUNNING || q->bconn_busy || !q->bconn)
        return;
    if (!mutt_redis_conn_connected(q->bconn))
        return; /* relq_on_bconn_state calls us when it is up */
    if (q->need_claim) {
        /* only with nothing in flight is every item in our list known to be untracked; a claim
         * is no pop, so it runs while paused too (a stage paused from the start still writes
         * its heartbeat and returns a predecessor's items) */
        if (q->inflight == 0)
            send_claim(q);
        return;
    }
    /* Refill at half capacity, not at every free slot: one Lua pop then fetches a batch, where
     * topping up slot by slot cost a Redis call per item on top of its completion. */
    if (q->paused || q->inflight > q->max_inflight / 2)
        return;
    if (!mutt_redis_conn_connected(q->cmd)) {
        /* completions go out on the command connection: an item popped now could only be
         * abandoned, claimed back and popped again, a redelivery loop for as long as the two
         * connections are not up together (after a Redis failover they reconnect apart) */
        retry_later(q, SEND_RETRY_DELAY_MS);
        return;
    }
    if (q->drain_next)
        send_batch_pop(q, q->max_inflight - q->inflight);
    else
        send_blocking_pop(q);
}

void relq_on_bconn_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct mutt_relq *q = privdata;
    (void)conn;
    if (q->destroyed || q->bconn != conn)
        return;
    if (!connected) {
        q->drain_next = false;
        return;
    }
    /* first connect: our heartbeat + a crashed predecessor's items; reconnect: a pop whose reply
     * was lost may have left an item in our list */
    q->need_claim = true;
    relq_pump(q);
}

/* ------------------------------------------------------------------------------ heartbeat */


static void arm_heartbeat(struct mutt_relq *q, uint64_t delay_ms)
{
    if (q->state == RELQ_RUNNING || q->state == RELQ_DRAINING)
        uv_timer_start(&q->hb_timer, relq_on_hb_timer, delay_ms, 0);
}

static void on_hb_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    (void)reply;
    if (!relq_op_return(q))
        return;
    if (status != 0)
        mutt_log_warn("relq", "%s: heartbeat %s not written: %s", q->name, q->hb_key, mutt_strerror(status));
    uint64_t next = q->hb_interval_ms;
    if (status != 0 && next > RETRY_DELAY_MS)
        next = RETRY_DELAY_MS;
    arm_heartbeat(q, next);
}

void relq_on_hb_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    const char *argv[4] = {"SETEX", q->hb_key, q->expiry_str, "alive"};
    size_t lens[4] = {5, strlen(q->hb_key), strlen(q->expiry_str), 5};
    int rc = mutt_redis_command(q->cmd, on_hb_reply, q, 4, argv, lens);
    if (rc != 0) {
        arm_heartbeat(q, q->hb_interval_ms < RETRY_DELAY_MS ? q->hb_interval_ms : RETRY_DELAY_MS);
        return;
    }
    q->pending++;
}
