/* POST /rules/dry-run (issue 16 §1, D41, D47): what a rule body would catch in the sample of
 * recent events, before it is saved. A read: the read-only key may ask, nothing is written. The
 * steps are one PostgreSQL read (rules, dev hosts and the maintenance windows active now, one
 * snapshot) and one LRANGE of the sample,
 * both asynchronous; the comparison itself is domain/dryrun.c. Matching 10,000 events costs the
 * loop ~100 ms, so they are compared SLICE_EVENTS at a time, one slice per loop turn: the other
 * stages on this loop (ingest in --roles=all) are served in between. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mutt/dryrun.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/keys.h"
#include "mutt/metrics.h"
#include "web_internal.h"

#define SLICE_EVENTS 500 /* sample events compared per loop turn (~5 ms) */

/* Per-request state. */
struct dryrun_op {
    json_t *body;
    json_t *candidate; /* set up front for a new rule; for an edit once the rows are read */
    int64_t edit_id;
    struct mutt_dryrun *run;
    struct web_call *c;    /* the call that owns this op (c->data == op) */
    char **items;          /* copies of the sample's items, compared from `next` on */
    size_t *lens;
    size_t nitems, next;
    uv_timer_t slice_timer; /* next slice, on the next loop turn */
    bool timer_open;
};

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* web_done's free_data: the op goes once its timer is closed (never from the stack of its own
 * callback: uv_close defers the free to the close callback). */
static void free_dryrun_op(void *p)
{
    struct dryrun_op *op = p;
    json_decref(op->body);
    json_decref(op->candidate);
    mutt_dryrun_destroy(op->run);
    for (size_t i = 0; i < op->nitems; i++)
        free(op->items[i]);
    free(op->items);
    free(op->lens);
    if (op->timer_open)
        uv_close((uv_handle_t *)&op->slice_timer, on_timer_closed);
    else
        free(op);
}

static void reply_result(struct web_call *c)
{
    struct dryrun_op *op = c->data;
    json_t *o = mutt_dryrun_result(op->run);
    if (!o) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_obj(c, 200, o);
}

static void on_slice_timer(uv_timer_t *t);

/* Compares one slice; answers after the last one. Ends the call (web_done) or re-arms the timer. */
static void run_slice(struct dryrun_op *op)
{
    struct web_call *c = op->c;
    if (web_answered(c)) { /* the deadline answered 503, or the client left: a read stops here */
        mutt_counter_inc(c->w->client_gone);
        web_done(c);
        return;
    }
    size_t end = op->next + SLICE_EVENTS < op->nitems ? op->next + SLICE_EVENTS : op->nitems;
    for (; op->next < end; op->next++) {
        if (mutt_dryrun_add_event(op->run, op->items[op->next], op->lens[op->next]) != 0) {
            web_reply_error(c, 500, "internal error", NULL);
            return;
        }
    }
    if (op->next == op->nitems) {
        reply_result(c);
        return;
    }
    uv_timer_start(&op->slice_timer, on_slice_timer, 0, 0);
}

static void on_slice_timer(uv_timer_t *t)
{
    run_slice(t->data);
}

static void on_sample(struct web_call *c, redisReply *reply)
{
    struct dryrun_op *op = c->data;
    if (reply->type != REDIS_REPLY_ARRAY) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    /* the reply is borrowed: copy the items to compare them over several loop turns */
    op->items = calloc(reply->elements ? reply->elements : 1, sizeof *op->items);
    op->lens = calloc(reply->elements ? reply->elements : 1, sizeof *op->lens);
    if (!op->items || !op->lens) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        char *copy = malloc(e->len ? e->len : 1);
        if (!copy) {
            web_reply_error(c, 500, "internal error", NULL);
            return;
        }
        memcpy(copy, e->str, e->len);
        op->items[op->nitems] = copy;
        op->lens[op->nitems++] = e->len;
    }
    uv_timer_init(c->ctx->loop, &op->slice_timer);
    op->slice_timer.data = op;
    op->timer_open = true;
    run_slice(op);
}

static void on_rows(struct web_call *c, PGresult *res)
{
    struct dryrun_op *op = c->data;
    if (PQntuples(res) != 1 || PQnfields(res) != 4) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    json_t *rows = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    json_t *dev = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    json_t *windows = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    int64_t now_ms = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    char err[300] = "";
    const char *field = NULL;
    int rc = rows && dev && windows ? 0 : MUTT_ENOMEM;
    if (rc == 0 && !op->candidate)
        rc = mutt_dryrun_candidate(op->body, rows, op->edit_id, &op->candidate, err, sizeof err, &field);
    if (rc == 0) {
        op->run = mutt_dryrun_create(rows, dev, op->candidate, op->edit_id, err, sizeof err);
        rc = op->run ? 0 : MUTT_ENOMEM;
    }
    /* issue 16 §3: what an active window holds is not forwarded, so the dry-run says Maintenance */
    if (rc == 0)
        rc = mutt_dryrun_set_windows(op->run, windows, now_ms);
    json_decref(rows);
    json_decref(dev);
    json_decref(windows);
    if (rc == MUTT_EINVAL) {
        web_reply_error(c, 400, err, field);
        return;
    }
    if (rc == MUTT_ENOTFOUND) {
        web_reply_error(c, 404, "Rule not found", "rule_id");
        return;
    }
    if (rc != 0) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    /* D62: the live sample_events; the list holds at most that many once the next push trims it */
    int64_t n = mutt_dynconfig_int(c->ctx->dyn, MUTT_DYN_SAMPLE_EVENTS);
    if (n <= 0) {
        reply_result(c);
        return;
    }
    char stop[24];
    snprintf(stop, sizeof stop, "%lld", (long long)n - 1);
    const char *argv[] = {"LRANGE", MUTT_KEY_SAMPLE_EVENTS, "0", stop};
    size_t lens[] = {6, strlen(MUTT_KEY_SAMPLE_EVENTS), 1, strlen(stop)};
    web_redis(c, 4, argv, lens, on_sample);
}

void web_rules_dry_run(struct web_call *c)
{
    json_t *body = web_body_object(c, false);
    if (!body)
        return;
    struct dryrun_op *op = calloc(1, sizeof *op);
    if (!op) {
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    op->body = body;
    op->c = c;
    c->data = op;
    c->free_data = free_dryrun_op;
    char err[300] = "";
    const char *field = NULL;
    if (mutt_dryrun_parse_rule_id(body, &op->edit_id, err, sizeof err) != 0) {
        web_reply_error(c, 400, err, "rule_id");
        return;
    }
    /* a new rule is validated before any I/O, exactly as POST /rules does; an edit needs its row */
    if (op->edit_id == 0) {
        int rc = mutt_dryrun_candidate(body, NULL, 0, &op->candidate, err, sizeof err, &field);
        if (rc != 0) {
            web_reply_error(c, rc == MUTT_EINVAL ? 400 : 500, rc == MUTT_EINVAL ? err : "internal error", field);
            return;
        }
    }
    web_query(c, MUTT_DRYRUN_ROWS_SQL, 0, NULL, on_rows);
}
