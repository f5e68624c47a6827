/* relq: batched completion (D3, D51); the script's contract is told in relq_scripts.c. */
#include "relq_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"

/* ------------------------------------------------------------------------------ completion */

/* One completion call in flight: the items it carries, in argument order. */
struct complete_batch {
    struct mutt_relq *q;
    size_t n;
    struct mutt_relq_item *items[];
};

static void on_flush_timer(uv_timer_t *t);

static void schedule_flush(struct mutt_relq *q, uint64_t delay_ms)
{
    if (!q->destroyed && !uv_is_active((uv_handle_t *)&q->flush_timer))
        uv_timer_start(&q->flush_timer, on_flush_timer, delay_ms, 0);
}

/* The call did not run as a whole: every item gets `status` and stays valid (the stage
 * completes it again or abandons it). */
static void batch_failed(struct mutt_relq_item **items, size_t n, int status)
{
    for (size_t i = 0; i < n; i++) {
        struct mutt_relq_item *it = items[i];
        it->state = ITEM_HANDED;
        if (it->cb)
            it->cb(it->priv, it, status);
    }
}

static void on_complete_batch_reply(void *privdata, redisReply *reply, int status)
{
    struct complete_batch *b = privdata;
    struct mutt_relq *q = b->q;
    if (!relq_op_return(q)) {
        free(b); /* destroyed: free_all frees the items */
        return;
    }
    if (status == 0 && (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != b->n + 2 ||
                        reply->element[0]->type != REDIS_REPLY_INTEGER))
        status = MUTT_EIO; /* a script error, or a reply of the wrong shape: nothing known to be done */
    if (status != 0) {
        if (status != MUTT_ECANCELED && status != MUTT_EDISCONNECTED)
            mutt_log_warn("relq", "%s: completion of %zu items failed: %.200s", q->name, b->n,
                          reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status));
        batch_failed(b->items, b->n, status);
        free(b);
        return;
    }
    q->stats.processing_depth = reply->element[0]->integer;
    const redisReply *err = reply->element[b->n + 1];
    if (err->type == REDIS_REPLY_STRING && err->len > 0)
        mutt_log_warn("relq", "%s: completion refused by Redis (the item stays in %s): %.200s", q->name,
                      q->proc_list, err->str);
    for (size_t i = 0; i < b->n; i++) {
        struct mutt_relq_item *it = b->items[i];
        const redisReply *e = reply->element[i + 1];
        long long code = e->type == REDIS_REPLY_INTEGER ? e->integer : -1;
        if (code != 1 && code != 0) {
            /* refused: its outcome may be partly pushed, the item is still in our list */
            it->state = ITEM_HANDED;
            if (it->cb)
                it->cb(it->priv, it, MUTT_EIO);
            continue;
        }
        if (code == 1)
            q->stats.completed++;
        else
            q->stats.already_gone++;
        it->state = ITEM_FINISHED;
        if (it->cb)
            it->cb(it->priv, it, code == 1 ? 0 : MUTT_ENOTFOUND);
        relq_release_item(it);
    }
    free(b);
}

static size_t target_index(const char **targets, size_t *nt, const char *key)
{
    for (size_t i = 0; i < *nt; i++)
        if (strcmp(targets[i], key) == 0)
            return i;
    targets[*nt] = key;
    return (*nt)++;
}

/* Sends `n` queued items (detached from the queue) in one call. Returns 0 or the send's error
 * (the items are then untouched). */
static int send_batch(struct mutt_relq *q, struct mutt_relq_item **items, size_t n)
{
    size_t npush = 0;
    for (size_t i = 0; i < n; i++)
        npush += items[i]->npushes;
    size_t maxkeys = 2 + npush, maxargs = 3 + 2 * n + 4 * npush;
    const char **keys = malloc(maxkeys * sizeof *keys);
    size_t *keylens = malloc(maxkeys * sizeof *keylens);
    const char **args = malloc(maxargs * sizeof *args);
    size_t *arglens = malloc(maxargs * sizeof *arglens);
    char (*nums)[32] = malloc((2 + n + 2 * npush) * sizeof *nums);
    struct complete_batch *b = malloc(sizeof *b + n * sizeof(b->items[0]));
    int rc = MUTT_ENOMEM;
    if (!keys || !keylens || !args || !arglens || !nums || !b)
        goto out;
    const char **targets = keys + 1;
    size_t nt = 0, na = 3, nn = 2;
    for (size_t i = 0; i < n; i++) {
        struct mutt_relq_item *it = items[i];
        args[na] = it->data;
        arglens[na++] = it->len;
        snprintf(nums[nn], sizeof nums[nn], "%zu", it->npushes);
        args[na] = nums[nn];
        arglens[na++] = strlen(nums[nn++]);
        for (size_t j = 0; j < it->npushes; j++) {
            const struct mutt_relq_push *p = &it->pushes[j];
            size_t ti = target_index(targets, &nt, p->key);
            snprintf(nums[nn], sizeof nums[nn], "%zu", ti + 2);
            args[na] = nums[nn];
            arglens[na++] = strlen(nums[nn++]);
            args[na] = p->kind == MUTT_RELQ_ZADD ? "Z" : p->kind == MUTT_RELQ_RPUSH ? "R" : p->kind == MUTT_RELQ_HSET ? "H" : "L";
            arglens[na++] = 1;
            args[na] = p->payload;
            arglens[na++] = p->len;
            if (p->kind == MUTT_RELQ_ZADD || p->kind == MUTT_RELQ_HSET) {
                snprintf(nums[nn], sizeof nums[nn], "%.17g", p->score);
                args[na] = nums[nn];
                arglens[na++] = strlen(nums[nn++]);
            } else { /* unused by the script: no float formatting per push */
                args[na] = "0";
                arglens[na++] = 1;
            }
        }
    }
    keys[0] = q->proc_list;
    size_t nk = 1 + nt;
    if (q->bytes_key) /* D52: pushes back to the source (retries) raise its byte counter */
        keys[nk++] = q->bytes_key;
    for (size_t i = 0; i < nk; i++)
        keylens[i] = strlen(keys[i]);
    snprintf(nums[0], sizeof nums[0], "%zu", n);
    snprintf(nums[1], sizeof nums[1], "%zu", nt);
    args[0] = nums[0];
    args[1] = nums[1];
    args[2] = q->bytes_key ? q->source : "";
    for (size_t i = 0; i < 3; i++)
        arglens[i] = strlen(args[i]);
    b->q = q;
    b->n = n;
    memcpy(b->items, items, n * sizeof items[0]);
    rc = mutt_redis_evalsha(q->cmd, q->script_complete, (int)nk, keys, keylens, (int)na, args, arglens,
                            on_complete_batch_reply, b);
    if (rc == 0) {
        q->pending++;
        b = NULL;
    }
out:
    free(keys);
    free(keylens);
    free(args);
    free(arglens);
    free(nums);
    free(b);
    return rc;
}

/* Sends everything queued, COMPLETE_BATCH_MAX items (or COMPLETE_BATCH_BYTES) per call. A local
 * refusal (the connection's cap, OOM) keeps the items queued and tries again shortly; any other
 * send failure is the items' answer. */
static void on_flush_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    /* taken off the queue first: a completion the callbacks below make again goes out in the
     * next call, never in a loop here */
    struct mutt_relq_item *list = q->cq_head;
    q->cq_head = q->cq_tail = NULL;
    if (list)
        q->last_flush_ns = uv_hrtime();
    while (list) {
        struct mutt_relq_item *items[COMPLETE_BATCH_MAX];
        size_t n = 0, bytes = 0;
        struct mutt_relq_item *it = list;
        while (it && n < COMPLETE_BATCH_MAX && (n == 0 || bytes < COMPLETE_BATCH_BYTES)) {
            items[n++] = it;
            bytes += it->len;
            for (size_t j = 0; j < it->npushes; j++)
                bytes += it->pushes[j].len;
            it = it->batch_next;
        }
        int rc = send_batch(q, items, n);
        if (rc == MUTT_EFULL || rc == MUTT_ENOMEM) {
            /* back in front of whatever was queued meanwhile, in order */
            struct mutt_relq_item *last = list;
            while (last->batch_next)
                last = last->batch_next;
            last->batch_next = q->cq_head;
            if (!q->cq_head)
                q->cq_tail = last;
            q->cq_head = list;
            uv_timer_stop(&q->flush_timer);
            schedule_flush(q, SEND_RETRY_DELAY_MS);
            return;
        }
        list = it;
        for (size_t i = 0; i < n; i++)
            items[i]->batch_next = NULL;
        if (rc != 0)
            batch_failed(items, n, rc);
    }
}

int mutt_relq_complete(struct mutt_relq_item *item, const struct mutt_relq_push *pushes, size_t npushes,
                       mutt_relq_complete_cb *cb, void *priv)
{
    if (!item || npushes > MUTT_RELQ_MAX_PUSHES || (npushes > 0 && !pushes))
        return MUTT_EINVAL;
    if (item->state != ITEM_HANDED)
        return MUTT_ESTATE;
    struct mutt_relq *q = item->q;
    size_t total = 0;
    for (size_t i = 0; i < npushes; i++) {
        const struct mutt_relq_push *p = &pushes[i];
        if (!p->key || !*p->key || (!p->payload && p->len > 0))
            return MUTT_EINVAL;
        if (p->kind != MUTT_RELQ_LPUSH && p->kind != MUTT_RELQ_RPUSH && p->kind != MUTT_RELQ_ZADD &&
            p->kind != MUTT_RELQ_HSET)
            return MUTT_EINVAL;
        if (p->kind == MUTT_RELQ_ZADD || p->kind == MUTT_RELQ_HSET) {
            char sc[32];
            int n = snprintf(sc, sizeof sc, "%.17g", p->score);
            if (p->score != p->score || n <= 0 || strstr(sc, "inf"))
                return MUTT_EINVAL; /* NaN/inf: ZADD would refuse it */
        }
        total += strlen(p->key) + 1 + p->len;
    }
    if (!mutt_redis_conn_connected(q->cmd))
        return MUTT_EDISCONNECTED;
    /* copied: the call goes out later in this loop turn, with the other completions */
    char *buf = total ? malloc(total) : NULL;
    if (total && !buf)
        return MUTT_ENOMEM;
    char *w = buf;
    for (size_t i = 0; i < npushes; i++) {
        const struct mutt_relq_push *p = &pushes[i];
        size_t kl = strlen(p->key) + 1;
        item->pushes[i] = *p;
        memcpy(w, p->key, kl);
        item->pushes[i].key = w;
        w += kl;
        if (p->len)
            memcpy(w, p->payload, p->len);
        item->pushes[i].payload = w;
        w += p->len;
    }
    free(item->pbuf);
    item->pbuf = buf;
    item->npushes = npushes;
    item->state = ITEM_COMPLETING;
    item->cb = cb;
    item->priv = priv;
    item->batch_next = NULL;
    if (q->cq_tail)
        q->cq_tail->batch_next = item;
    else
        q->cq_head = item;
    q->cq_tail = item;
    uint64_t now = uv_hrtime(), delay_ms = 0;
    if (q->last_flush_ns != 0 && now >= q->last_flush_ns && now - q->last_flush_ns < COMPLETE_PACE_NS)
        delay_ms = (COMPLETE_PACE_NS - (now - q->last_flush_ns) + 999999) / 1000000;
    schedule_flush(q, delay_ms);
    return 0;
}

int mutt_relq_abandon(struct mutt_relq_item *item)
{
    if (!item)
        return MUTT_EINVAL;
    if (item->state != ITEM_HANDED)
        return MUTT_ESTATE;
    struct mutt_relq *q = item->q;
    /* it stays in our list untracked: once nothing is in flight, the claim returns it to the
     * source, so it is retried within this pod's life and not only after a crash */
    if (q->state == RELQ_RUNNING)
        q->need_claim = true;
    relq_release_item(item);
    return 0;
}

const char *mutt_relq_item_data(const struct mutt_relq_item *item, size_t *len)
{
    if (len)
        *len = item ? item->len : 0;
    return item ? item->data : NULL;
}
