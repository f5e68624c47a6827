/* Owns one stage's reliable queue consumption: pops (BRPOPLPUSH, then batched non-blocking pops)
 * on a dedicated connection, hands items to the stage under a cap, completes them in batches (the
 * completions of one loop turn share one Lua call: pushes first, then the removals, D3/D51),
 * refreshes the stage heartbeat, runs the janitor and the graceful stop. Knows no queue names.
 * Loop thread only; every Redis call is async. */
#include "relq_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/queue_bytes.h"

/* ------------------------------------------------------------------------------ lifetime */

void relq_free_all(struct mutt_relq *q)
{
    while (q->items) {
        struct mutt_relq_item *it = q->items;
        q->items = it->next;
        free(it->pbuf);
        free(it);
    }
    free(q->janitor_cursor);
    free(q->name);
    free(q->source);
    free(q->proc_prefix);
    free(q->hb_prefix);
    free(q->pod);
    free(q->proc_list);
    free(q->hb_key);
    free(q->scan_pattern);
    free(q->bytes_key);
    free(q);
}

static void maybe_free(struct mutt_relq *q)
{
    if (q->destroyed && q->pending == 0 && q->timers_open == 0)
        relq_free_all(q);
}

/* First thing in every Redis callback: false when the relq was destroyed meanwhile (then it may
 * have been freed by this very call: touch nothing). */
bool relq_op_return(struct mutt_relq *q)
{
    q->pending--;
    if (q->destroyed) {
        maybe_free(q);
        return false;
    }
    return true;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_relq *q = h->data;
    q->timers_open--;
    maybe_free(q);
}

char *relq_join_key(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + 1 + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    s[la] = ':';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

/* SCAN MATCH pattern for "<prefix>:*" with the prefix's glob characters escaped. */
static char *scan_pattern_for(const char *prefix)
{
    size_t n = strlen(prefix);
    char *s = malloc(2 * n + 3);
    if (!s)
        return NULL;
    char *p = s;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]\\", prefix[i]))
            *p++ = '\\';
        *p++ = prefix[i];
    }
    memcpy(p, ":*", 3);
    return s;
}

static void init_timer(struct mutt_relq *q, uv_timer_t *t)
{
    uv_timer_init(q->loop, t);
    t->data = q;
    q->timers_open++;
}

struct mutt_relq *mutt_relq_create(uv_loop_t *loop, struct mutt_redis *r, const struct mutt_relq_opts *opts,
                                   mutt_relq_item_cb *on_item, void *priv)
{
    if (!loop || !r || !opts || !on_item || !opts->source || !*opts->source || !opts->processing_prefix ||
        !*opts->processing_prefix || !opts->heartbeat_prefix || !*opts->heartbeat_prefix || !opts->pod ||
        !*opts->pod)
        return NULL;
    struct mutt_relq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = loop;
    q->r = r;
    q->cmd = mutt_redis_cmd(r);
    q->on_item = on_item;
    q->item_priv = priv;
    q->name = strdup(opts->name && *opts->name ? opts->name : "relq");
    q->source = strdup(opts->source);
    q->proc_prefix = strdup(opts->processing_prefix);
    q->hb_prefix = strdup(opts->heartbeat_prefix);
    q->pod = strdup(opts->pod);
    q->proc_list = relq_join_key(opts->processing_prefix, opts->pod);
    q->hb_key = relq_join_key(opts->heartbeat_prefix, opts->pod);
    q->scan_pattern = scan_pattern_for(opts->processing_prefix);
    q->bytes_key = opts->source_bytes_key && *opts->source_bytes_key ? strdup(opts->source_bytes_key) : NULL;
    if (!q->name || !q->source || !q->proc_prefix || !q->hb_prefix || !q->pod || !q->proc_list || !q->hb_key ||
        !q->scan_pattern || (opts->source_bytes_key && *opts->source_bytes_key && !q->bytes_key)) {
        relq_free_all(q);
        return NULL;
    }
    q->block_timeout_s = opts->block_timeout_s ? opts->block_timeout_s : DEFAULT_BLOCK_TIMEOUT_S;
    q->hb_expiry_s = opts->heartbeat_expiry_s ? opts->heartbeat_expiry_s : DEFAULT_HEARTBEAT_EXPIRY_S;
    q->max_inflight = opts->max_inflight ? opts->max_inflight : DEFAULT_MAX_INFLIGHT;
    q->recover_batch = opts->recover_batch ? opts->recover_batch : DEFAULT_RECOVER_BATCH;
    q->hb_interval_ms = opts->heartbeat_interval_ms ? opts->heartbeat_interval_ms : DEFAULT_HEARTBEAT_INTERVAL_MS;
    q->janitor_interval_ms = opts->janitor_interval_ms ? opts->janitor_interval_ms : DEFAULT_JANITOR_INTERVAL_MS;
    snprintf(q->block_timeout_str, sizeof(q->block_timeout_str), "%u", q->block_timeout_s);
    snprintf(q->expiry_str, sizeof(q->expiry_str), "%u", q->hb_expiry_s);
    snprintf(q->batch_str, sizeof(q->batch_str), "%zu", q->recover_batch);
    q->stats.processing_depth = -1;

    q->script_complete = mutt_redis_script_register(r, "relq_complete_batch", relq_complete_batch_lua);
    q->script_pop_batch = mutt_redis_script_register(r, "relq_pop_batch", relq_pop_batch_lua);
    q->script_move = mutt_redis_script_register(r, "relq_move", relq_move_lua);
    q->script_reconcile = q->bytes_key ? mutt_redis_script_register(r, "queue_bytes_reconcile",
                                                                    mutt_queue_bytes_reconcile_lua)
                                       : -1;
    if (q->script_complete < 0 || q->script_pop_batch < 0 || q->script_move < 0 ||
        (q->bytes_key && q->script_reconcile < 0)) {
        relq_free_all(q);
        return NULL;
    }
    init_timer(q, &q->hb_timer);
    init_timer(q, &q->janitor_timer);
    init_timer(q, &q->retry_timer);
    init_timer(q, &q->stop_timer);
    init_timer(q, &q->flush_timer);
    q->state = RELQ_CREATED;
    return q;
}

void mutt_relq_destroy(struct mutt_relq *q)
{
    if (!q || q->destroyed)
        return;
    q->destroyed = true; /* first: callbacks run by the close below must see it */
    uv_close((uv_handle_t *)&q->hb_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->janitor_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->stop_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->flush_timer, on_timer_closed);
    if (q->bconn) {
        struct mutt_redis_conn *c = q->bconn;
        q->bconn = NULL;
        mutt_redis_conn_close(c); /* its pending pop is answered MUTT_ECANCELED */
    }
    maybe_free(q); /* normally the timer close callbacks (next loop turn) free it */
}

/* ------------------------------------------------------------------------------ items */

static void unlink_item(struct mutt_relq_item *it)
{
    struct mutt_relq *q = it->q;
    if (it->prev)
        it->prev->next = it->next;
    else
        q->items = it->next;
    if (it->next)
        it->next->prev = it->prev;
    q->inflight--;
}


/* The handle is gone for good: free it, then let consumption (or the stop) go on. */
void relq_release_item(struct mutt_relq_item *it)
{
    struct mutt_relq *q = it->q;
    unlink_item(it);
    free(it->pbuf);
    free(it);
    if (q->state == RELQ_RUNNING) {
        relq_pump(q);
    } else if (q->state == RELQ_DRAINING && q->inflight == 0) {
        q->state = RELQ_RELEASING;
        uv_timer_stop(&q->hb_timer);
        uv_timer_start(&q->stop_timer, relq_on_stop_timer, 0, 0);
    }
}

struct mutt_relq_item *relq_add_item(struct mutt_relq *q, const char *data, size_t len)
{
    struct mutt_relq_item *it = malloc(sizeof(*it) + len + 1);
    if (!it)
        return NULL;
    it->q = q;
    it->prev = NULL;
    it->next = q->items;
    if (q->items)
        q->items->prev = it;
    q->items = it;
    it->ready_next = NULL;
    it->state = ITEM_HELD;
    it->cb = NULL;
    it->priv = NULL;
    it->batch_next = NULL;
    it->npushes = 0;
    it->pbuf = NULL;
    it->len = len;
    memcpy(it->data, data, len);
    it->data[len] = '\0';
    if (q->ready_tail)
        q->ready_tail->ready_next = it;
    else
        q->ready_head = it;
    q->ready_tail = it;
    q->inflight++;
    q->held++;
    return it;
}

/* Hands held items out in pop order. Not re-entered: an item callback that resumes, or pops
 * more via pump, leaves the handing out to the outer loop. */
void relq_dispatch(struct mutt_relq *q)
{
    if (q->dispatching)
        return;
    q->dispatching = true;
    while (q->state == RELQ_RUNNING && !q->paused && q->ready_head) {
        struct mutt_relq_item *it = q->ready_head;
        q->ready_head = it->ready_next;
        if (!q->ready_head)
            q->ready_tail = NULL;
        it->ready_next = NULL;
        it->state = ITEM_HANDED;
        q->held--;
        q->stats.delivered++;
        q->on_item(q->item_priv, it, it->data, it->len);
    }
    q->dispatching = false;
}

/* Held items were never seen by the stage: forget them (they stay in the processing list and
 * the stop returns them to the source). */
void relq_drop_held(struct mutt_relq *q)
{
    while (q->ready_head) {
        struct mutt_relq_item *it = q->ready_head;
        q->ready_head = it->ready_next;
        unlink_item(it);
        q->held--;
        free(it);
    }
    q->ready_tail = NULL;
}

/* ------------------------------------------------------------------------------ control */

int mutt_relq_start(struct mutt_relq *q)
{
    if (!q || q->state != RELQ_CREATED)
        return MUTT_ESTATE;
    char cname[96];
    snprintf(cname, sizeof(cname), "redis-relq-%s", q->name);
    q->bconn = mutt_redis_conn_open(q->r, cname);
    if (!q->bconn)
        return MUTT_ENOMEM;
    /* the observer goes away with the connection (closed at stop/destroy): it never outlives us */
    int rc = mutt_redis_conn_on_state(q->bconn, relq_on_bconn_state, q);
    if (rc != 0) {
        mutt_redis_conn_close(q->bconn);
        q->bconn = NULL;
        return rc;
    }
    q->state = RELQ_RUNNING;
    q->need_claim = true;
    uv_timer_start(&q->hb_timer, relq_on_hb_timer, q->hb_interval_ms, 0);
    relq_pump(q); /* in case the connection is already up */
    return 0;
}

void mutt_relq_pause(struct mutt_relq *q)
{
    if (q)
        q->paused = true;
}

void mutt_relq_resume(struct mutt_relq *q)
{
    if (!q || !q->paused)
        return;
    q->paused = false;
    relq_dispatch(q);
    relq_pump(q);
}

bool mutt_relq_paused(const struct mutt_relq *q)
{
    return q && q->paused;
}

void mutt_relq_set_max_inflight(struct mutt_relq *q, size_t max_inflight)
{
    if (!q)
        return;
    q->max_inflight = max_inflight ? max_inflight : 1;
    relq_pump(q);
}

void mutt_relq_get_stats(const struct mutt_relq *q, struct mutt_relq_stats *out)
{
    *out = q->stats;
    out->inflight = q->inflight;
    out->held = q->held;
}

static void on_depth_reply(void *privdata, redisReply *reply, int status)
{
    struct depth_op *op = privdata;
    struct mutt_relq *q = op->q;
    if (!relq_op_return(q)) {
        free(op);
        return;
    }
    long long depth = -1;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER) {
        depth = reply->integer;
        q->stats.processing_depth = depth;
    } else if (status == 0) {
        status = MUTT_EIO;
    }
    mutt_relq_depth_cb *cb = op->cb;
    void *priv = op->priv;
    free(op);
    if (cb)
        cb(priv, status, depth);
}

int mutt_relq_processing_depth(struct mutt_relq *q, mutt_relq_depth_cb *cb, void *priv)
{
    if (!q || q->destroyed)
        return MUTT_EINVAL;
    struct depth_op *op = malloc(sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->q = q;
    op->cb = cb;
    op->priv = priv;
    const char *argv[2] = {"LLEN", q->proc_list};
    size_t lens[2] = {4, strlen(q->proc_list)};
    int rc = mutt_redis_command(q->cmd, on_depth_reply, op, 2, argv, lens);
    if (rc != 0) {
        free(op);
        return rc;
    }
    q->pending++;
    return 0;
}

const char *mutt_relq_processing_list(const struct mutt_relq *q)
{
    return q->proc_list;
}

const char *mutt_relq_heartbeat_key(const struct mutt_relq *q)
{
    return q->hb_key;
}
