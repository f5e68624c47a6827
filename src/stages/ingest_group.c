/* ingest: the group commit (D50): the group's buffers and serialisation, the script call per
 * group (paced, GROUP_PACE_NS), the WAIT for replicas (D37), and each request's verdict in
 * arrival order; the lineage block rides on the script's ARGV (D63). */
#define _GNU_SOURCE
#include "mutt/ingest.h"
#include "mutt/ingest_intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/event_fast.h"
#include "mutt/http.h"
#include "mutt/lineage.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/uuid.h"

#include "ingest_internal.h"

/* Grows offs/lens/argv/argl to `want` entries; false on OOM. */
bool ingest_reserve_entries(struct ingest *ing, size_t want)
{
    if (want <= ing->arr_cap)
        return true;
    size_t cap = ing->arr_cap ? ing->arr_cap : 64;
    while (cap < want)
        cap *= 2;
    size_t *offs = realloc(ing->offs, cap * sizeof *offs);
    if (offs)
        ing->offs = offs;
    size_t *lens = realloc(ing->lens, cap * sizeof *lens);
    if (lens)
        ing->lens = lens;
    const char **argv = realloc(ing->argv, cap * sizeof *argv);
    if (argv)
        ing->argv = argv;
    size_t *argl = realloc(ing->argl, cap * sizeof *argl);
    if (argl)
        ing->argl = argl;
    if (!offs || !lens || !argv || !argl)
        return false;
    ing->arr_cap = cap;
    return true;
}

/* Grows *buf (capacity *cap, doubling from `first`) to hold `want` bytes; false on OOM (the
 * buffer is then unchanged). */
static bool grow_buffer(char **buf, size_t *cap, size_t want, size_t first)
{
    if (want <= *cap)
        return true;
    size_t c = *cap ? *cap : first;
    while (c < want)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return false;
    *buf = b;
    *cap = c;
    return true;
}

bool ingest_reserve_bytes(struct ingest *ing, size_t want)
{
    return grow_buffer(&ing->buf, &ing->buf_cap, want, 16384);
}

/* Serialises every accepted event of the batch after the group's events in ing->buf (ids
 * stamped first; offs/lens from index gnev). Returns the number of events written (the group's
 * counters are the caller's to advance), or a negative MUTT_E*. */
long ingest_serialise(struct ingest *ing, struct mutt_event_batch *b, const char *cid)
{
    json_t *jcid = json_stringn_nocheck(cid, strlen(cid)); /* safe characters only (D8) */
    if (!jcid || !ingest_reserve_bytes(ing, ing->gused + 16384)) {
        json_decref(jcid);
        return MUTT_ENOMEM;
    }
    size_t used = ing->gused, n = 0;
    int rc = 0;
    for (size_t i = 0; i < b->count && rc == 0; i++) {
        json_t *ev = b->items[i].event;
        if (!ev)
            continue;
        uint8_t rnd[16];
        mutt_random_bytes(rnd, sizeof rnd); /* D1: a fresh _event_id per event */
        rc = mutt_event_stamp_shared(ev, jcid, rnd);
        if (rc < 0)
            break;
        size_t len = 0;
        rc = mutt_event_dump(ev, ing->buf + used, ing->buf_cap - used, &len);
        if (rc == MUTT_EFULL) {
            if (!ingest_reserve_bytes(ing, used + len + 4096)) {
                rc = MUTT_ENOMEM;
                break;
            }
            rc = mutt_event_dump(ev, ing->buf + used, ing->buf_cap - used, &len);
        }
        if (rc < 0)
            break;
        ing->offs[ing->gnev + n] = used;
        ing->lens[ing->gnev + n] = len;
        used += len;
        n++;
    }
    json_decref(jcid);
    return rc < 0 ? rc : (long)n;
}

/* ------------------------------------------------------------------------------------------ */
/* the script's answer                                                                         */

static void reply_accepted(struct ingest *ing, struct ingest_op *op, long long depth)
{
    struct mutt_http_req *req = op->req;
    const char *cid = mutt_http_req_correlation_id(req);
    size_t cap = 200 + strlen(cid) + op->rejected_len;
    char stack[512];
    char *body = cap <= sizeof stack ? stack : malloc(cap);
    if (!body) {
        /* the events are queued; a 200 without the list is still the truth */
        body = stack;
        cap = sizeof stack;
        op->rejected_len = 0;
    }
    int n = snprintf(body, cap, "{\"status\":\"accepted\",\"queued\":true,\"accepted\":%zu,\"correlation_id\":\"%s\","
                                "\"queue_depth\":%lld",
                     op->accepted, cid, depth);
    if (op->rejected_len > 0) {
        n += snprintf(body + n, cap - (size_t)n, ",\"rejected\":%.*s", (int)op->rejected_len, op->rejected_json);
    }
    n += snprintf(body + n, cap - (size_t)n, "}");
    mutt_http_reply_json(req, 200, body, (size_t)n);
    if (body != stack)
        free(body);
    ingest_count_request(ing, REASON_OK);
    mutt_counter_add(ing->ev_accepted, (double)op->accepted);
    if (op->rejected)
        mutt_counter_add(ing->ev_rejected, (double)op->rejected);
    ingest_observe_latency(ing, op->start_ns);
    ingest_record_slo(ing, 200, op->start_ns);
}

/* The common tail of every refusal of a grouped request: the answer with its Retry-After, the
 * request and rejected-event counters, latency and the SLO sample. */
static void send_refusal(struct ingest *ing, struct ingest_op *op, int status, int reason, unsigned retry_s,
                         const char *body, int n)
{
    ingest_add_retry_after(op->req, retry_s);
    mutt_http_reply_json(op->req, status, body, (size_t)n);
    ingest_count_request(ing, reason);
    if (op->rejected)
        mutt_counter_add(ing->ev_rejected, (double)op->rejected);
    ingest_observe_latency(ing, op->start_ns);
    ingest_record_slo(ing, status, op->start_ns);
}

static void reply_rate_limited(struct ingest *ing, struct ingest_op *op)
{
    struct mutt_http_req *req = op->req;
    int64_t window = mutt_dynconfig_int(ing->ctx->dyn, MUTT_DYN_INGEST_RATE_WINDOW);
    unsigned secs = mutt_ingest_retry_after_s(ingest_wall_ms(), window);
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"error\",\"message\":\"rate limit exceeded\",\"correlation_id\":\"%s\","
                     "\"retry_after\":%u}",
                     mutt_http_req_correlation_id(req), secs);
    send_refusal(ing, op, 429, REASON_RATE, secs, body, n);
    mutt_counter_inc(ing->rate_hits);
    mutt_counter_add(ing->ev_refused, (double)op->accepted);
    mutt_log_kv(MUTT_LOG_INFO, "ingest", mutt_http_req_correlation_id(req), NULL,
                "429 rate_limit: %zu events refused, retry after %u s", op->accepted, secs);
}

static void reply_queue_full(struct ingest *ing, struct ingest_op *op, long long depth, long long cap)
{
    struct mutt_http_req *req = op->req;
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"error\",\"message\":\"queue full\",\"correlation_id\":\"%s\","
                     "\"queue_depth\":%lld,\"queue_limit\":%lld}",
                     mutt_http_req_correlation_id(req), depth, cap);
    send_refusal(ing, op, 503, REASON_FULL, QUEUE_FULL_RETRY_AFTER_S, body, n);
    mutt_counter_add(ing->ev_refused, (double)op->accepted);
    mutt_log_kv(MUTT_LOG_WARNING, "ingest", mutt_http_req_correlation_id(req), NULL,
                "503 queue_full: depth %lld, limit %lld, %zu events refused", depth, cap, op->accepted);
}

/* D52: same answer as the item cap, naming the byte cap. */
static void reply_queue_bytes_full(struct ingest *ing, struct ingest_op *op, long long depth, long long byte_cap,
                                   long long held)
{
    struct mutt_http_req *req = op->req;
    char body[320];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"error\",\"message\":\"queue full: max_ingest_queue_bytes reached\","
                     "\"correlation_id\":\"%s\",\"queue_depth\":%lld,\"queue_bytes\":%lld,\"queue_bytes_limit\":%lld}",
                     mutt_http_req_correlation_id(req), depth, held, byte_cap);
    send_refusal(ing, op, 503, REASON_FULL, QUEUE_FULL_RETRY_AFTER_S, body, n);
    mutt_counter_add(ing->ev_refused, (double)op->accepted);
    mutt_log_kv(MUTT_LOG_WARNING, "ingest", mutt_http_req_correlation_id(req), NULL,
                "503 queue_full: %lld bytes queued, max_ingest_queue_bytes %lld, %zu events refused", held, byte_cap,
                op->accepted);
}

/* D37: the events are queued on the primary but fewer replicas than asked confirmed them in
 * INGEST_REPLICA_TIMEOUT_MS; a failover now could lose them, so no 200. They stay queued: in
 * doubt, as after a late push (the client's retry may duplicate them). */
static void reply_not_replicated(struct ingest *ing, struct ingest_op *op, long long replicas)
{
    struct mutt_http_req *req = op->req;
    char body[320];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"error\",\"message\":\"not replicated\",\"reason\":\"not_replicated\","
                     "\"correlation_id\":\"%s\",\"replicas\":%lld,\"min_replicas\":%lld}",
                     mutt_http_req_correlation_id(req), replicas, (long long)ing->min_replicas);
    send_refusal(ing, op, 503, REASON_NOT_REPLICATED, REDIS_DOWN_RETRY_AFTER_S, body, n);
    mutt_counter_inc(ing->not_replicated);
    mutt_counter_add(ing->in_doubt, (double)op->accepted);
    mutt_log_kv(MUTT_LOG_WARNING, "ingest", mutt_http_req_correlation_id(req), NULL,
                "503 not_replicated: %lld of %lld replicas confirmed, %zu events in doubt", replicas,
                (long long)ing->min_replicas, op->accepted);
}

/* A listener's submission got its verdict (or none: code -1). */
static void finish_intake(struct ingest *ing, struct ingest_op *op, long long code, int status, bool sent)
{
    enum mutt_ingest_intake_result r = MUTT_INTAKE_UNAVAILABLE;
    if (code == MUTT_INGEST_PUSHED)
        r = MUTT_INTAKE_QUEUED;
    else if (code == CODE_NOT_REPLICATED) {
        /* D37: queued on the primary, too few replicas confirmed in time. A listener has no 503
         * to give: the events stay queued (a resend would duplicate them), counted in doubt. */
        r = MUTT_INTAKE_QUEUED;
        mutt_counter_inc(ing->not_replicated);
        mutt_counter_add(ing->in_doubt, (double)op->accepted);
    }
    else if (code == MUTT_INGEST_RATE_LIMITED)
        r = MUTT_INTAKE_RATE_LIMITED;
    else if (code == MUTT_INGEST_QUEUE_FULL || code == MUTT_INGEST_QUEUE_BYTES_FULL)
        r = MUTT_INTAKE_QUEUE_FULL;
    if (r == MUTT_INTAKE_QUEUED) {
        mutt_counter_add(ing->ev_accepted, (double)op->accepted);
    } else {
        mutt_counter_add(ing->ev_refused, (double)op->accepted);
        if (r == MUTT_INTAKE_RATE_LIMITED)
            mutt_counter_inc(ing->rate_hits);
        if (code < 0 && sent && status == MUTT_EDISCONNECTED) /* D48: the script may have run */
            mutt_counter_add(ing->in_doubt, (double)op->accepted);
    }
    mutt_ingest_intake_cb *cb = op->icb;
    void *priv = op->ipriv;
    size_t n = op->accepted;
    free(op);
    cb(priv, r, r == MUTT_INTAKE_QUEUED ? n : 0);
}

/* Answers one request of a group. code is the script's verdict for it, or -1 when the group
 * got none: then status says why (0 with a malformed reply) and `sent` whether the script may
 * have run (D2/D48: a dropped connection with the call out leaves its events in doubt). */
static void finish_op(struct ingest *ing, struct ingest_op *op, long long code, long long depth, long long extra,
                      long long held, int status, const char *why, bool sent)
{
    struct mutt_http_req *req = op->req;

    ing->inflight--;
    ing->inflight_bytes -= op->body_bytes;
    mutt_gauge_set(ing->inflight_bytes_g, (double)ing->inflight_bytes);
    if (!req) {
        finish_intake(ing, op, code, status, sent);
        return;
    }

    if (mutt_http_req_answered(req)) {
        /* The INGEST_TIMEOUT_MS deadline answered 503 (or the client left) before Redis did. If
         * the script ran anyway, these events are queued without a 200: D2's "in doubt". */
        ingest_count_request(ing, REASON_REDIS);
        ingest_record_slo(ing, 503, op->start_ns);
        if (code == MUTT_INGEST_PUSHED || code == CODE_NOT_REPLICATED || (sent && status == MUTT_EDISCONNECTED)) {
            mutt_counter_add(ing->in_doubt, (double)op->accepted);
            mutt_log_kv(MUTT_LOG_WARNING, "ingest", mutt_http_req_correlation_id(req), NULL,
                        "%zu events may be queued though the request had already been answered", op->accepted);
        }
        goto out;
    }
    switch (code) {
    case MUTT_INGEST_PUSHED:
        reply_accepted(ing, op, depth);
        break;
    case MUTT_INGEST_RATE_LIMITED:
        reply_rate_limited(ing, op);
        break;
    case MUTT_INGEST_QUEUE_FULL:
        ing->last_cap = extra;
        reply_queue_full(ing, op, depth, extra);
        break;
    case MUTT_INGEST_QUEUE_BYTES_FULL:
        reply_queue_bytes_full(ing, op, depth, extra, held);
        break;
    case CODE_NOT_REPLICATED:
        reply_not_replicated(ing, op, extra);
        break;
    default:
        /* Lost connection, cancel, not sent, or a Redis error (OOM, script error): nothing was
         * pushed unless the script ran to the end, and then it would have said so. */
        mutt_log_kv(MUTT_LOG_WARNING, "ingest", mutt_http_req_correlation_id(req), NULL, "503 redis: %s",
                    why ? why : mutt_strerror(status));
        if (sent && status == MUTT_EDISCONNECTED) /* D48: the script may have run before the drop */
            mutt_counter_add(ing->in_doubt, (double)op->accepted);
        ingest_add_retry_after(req, REDIS_DOWN_RETRY_AFTER_S);
        mutt_http_reply_status_error(req, 503, why && !sent ? why : "Redis unavailable");
        ingest_count_request(ing, REASON_REDIS);
        mutt_counter_add(ing->ev_refused, (double)op->accepted);
        ingest_observe_latency(ing, op->start_ns);
        ingest_record_slo(ing, 503, op->start_ns);
        break;
    }
out:
    mutt_http_req_release(req);
    free(op);
}

static void flight_free(struct ingest_flight *f)
{
    free(f->why);
    free(f->v);
    free(f);
}

static void on_group_wait(void *privdata, redisReply *reply, int status);
static void finish_flight(struct ingest *ing, struct ingest_flight *f, long long replicas);

/* D37: one WAIT for the group's pushes, behind everything sent so far on ingest's connection.
 * The connection's command timeout allows for its wait (D48). */
static int send_wait(struct ingest *ing, struct ingest_flight *f)
{
    const char *wargv[3] = {"WAIT", ing->wait_n, ing->wait_ms};
    size_t wlens[3] = {4, strlen(ing->wait_n), strlen(ing->wait_ms)};
    f->waiting = true;
    int rc = mutt_redis_command(ing->conn, on_group_wait, f, 3, wargv, wlens);
    if (rc != 0)
        f->waiting = false;
    return rc;
}

/* The group's reply: RESULT_WIDTH integers per request, in the order they were sent. With a
 * WAIT outstanding the verdicts are only kept (on_group_wait answers); when the WAIT already
 * answered (wait_early), a new one is sent now that the push is done. */
static void on_group_reply(void *privdata, redisReply *reply, int status)
{
    struct ingest_flight *f = privdata;
    struct ingest *ing = &g_ingest;
    if (f->waiting || f->wait_early) {
        bool ok = status == 0 && reply && reply->type == REDIS_REPLY_ARRAY &&
                  reply->elements == f->nops * MUTT_INGEST_RESULT_WIDTH;
        for (size_t i = 0; ok && i < reply->elements; i++)
            ok = reply->element[i]->type == REDIS_REPLY_INTEGER;
        for (size_t i = 0; i < f->nops; i++) {
            struct ingest_verdict *v = &f->v[i];
            v->code = -1;
            v->depth = v->extra = v->held = 0;
            if (ok) {
                redisReply **e = reply->element + i * MUTT_INGEST_RESULT_WIDTH;
                v->code = e[0]->integer;
                v->depth = e[1]->integer;
                v->extra = e[2]->integer;
                v->held = e[3]->integer;
            }
        }
        f->status = status;
        if (status == MUTT_EIO && reply && reply->type == REDIS_REPLY_ERROR && reply->str)
            f->why = strdup(reply->str); /* NULL on OOM: the generic message then */
        f->have_reply = true;
        if (f->waiting)
            return;
        f->wait_early = false;
        if (status == 0 && send_wait(ing, f) == 0)
            return;
        finish_flight(ing, f, -1); /* nothing can confirm the push now */
        return;
    }
    bool ok = status == 0 && reply && reply->type == REDIS_REPLY_ARRAY &&
              reply->elements == f->nops * MUTT_INGEST_RESULT_WIDTH;
    for (size_t i = 0; ok && i < reply->elements; i++)
        ok = reply->element[i]->type == REDIS_REPLY_INTEGER;
    const char *why = status == MUTT_EIO && reply && reply->type == REDIS_REPLY_ERROR ? reply->str : NULL;
    for (size_t i = 0; i < f->nops; i++) {
        long long code = -1, depth = 0, extra = 0, held = 0;
        if (ok) {
            redisReply **e = reply->element + i * MUTT_INGEST_RESULT_WIDTH;
            code = e[0]->integer;
            depth = e[1]->integer;
            extra = e[2]->integer;
            held = e[3]->integer;
            ing->last_depth = depth;
            if (code == MUTT_INGEST_PUSHED || code == MUTT_INGEST_QUEUE_BYTES_FULL)
                ing->last_bytes_full = code == MUTT_INGEST_QUEUE_BYTES_FULL;
            if (code == MUTT_INGEST_PUSHED && f->unconfirmed) {
                code = CODE_NOT_REPLICATED;
                extra = 0;
            }
        }
        finish_op(ing, f->ops[i], code, depth, extra, held, status, why, true);
    }
    if (ok && f->nops > 0)
        mutt_gauge_set(ing->depth, (double)ing->last_depth);
    flight_free(f);
    ingest_maybe_stopped(ing);
}

/* The group's WAIT (D37): every request the script pushed gets its 200 only when at least
 * INGEST_MIN_REPLICAS replicas confirmed; otherwise 503 not_replicated. Requests the script
 * refused keep their own answer. Should the script's reply not have come first (an EVALSHA
 * retried as EVAL after NOSCRIPT goes out behind the WAIT), the WAIT did not cover the push:
 * the script's reply, still to come, answers its pushed requests not_replicated. */
static void on_group_wait(void *privdata, redisReply *reply, int status)
{
    struct ingest_flight *f = privdata;
    struct ingest *ing = &g_ingest;
    long long replicas = status == 0 && reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
    f->waiting = false;
    if (replicas >= 0)
        ing->last_replicas = replicas;
    if (!f->have_reply) {
        f->wait_early = true; /* on_group_reply waits again, or answers (and frees f) */
        return;
    }
    finish_flight(ing, f, replicas);
}

/* Answers every request of a group whose script reply and WAIT both came: pushed requests get
 * 200 when `replicas` (-1: unknown) reaches INGEST_MIN_REPLICAS, 503 not_replicated otherwise. */
static void finish_flight(struct ingest *ing, struct ingest_flight *f, long long replicas)
{
    bool replicated = replicas >= ing->min_replicas;
    int sstatus = f->status;
    bool ok = false;
    for (size_t i = 0; i < f->nops; i++) {
        struct ingest_verdict v = f->v[i];
        if (v.code >= 0) {
            ok = true;
            ing->last_depth = v.depth;
            if (v.code == MUTT_INGEST_PUSHED || v.code == MUTT_INGEST_QUEUE_BYTES_FULL)
                ing->last_bytes_full = v.code == MUTT_INGEST_QUEUE_BYTES_FULL;
        }
        if (v.code == MUTT_INGEST_PUSHED && !replicated) {
            v.code = CODE_NOT_REPLICATED;
            v.extra = replicas < 0 ? 0 : replicas;
        }
        finish_op(ing, f->ops[i], v.code, v.depth, v.extra, v.held, sstatus, f->why, true);
    }
    if (ok)
        mutt_gauge_set(ing->depth, (double)ing->last_depth);
    flight_free(f);
    ingest_maybe_stopped(ing);
}

/* The script call's fixed KEYS/ARGV for this request. */
static int prepare_call(struct ingest *ing, struct mutt_ingest_call *call)
{
    struct mutt_ctx *ctx = ing->ctx;
    const struct mutt_config *cfg = ctx->cfg;
    struct mutt_ingest_params p = {
        .queue = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME),
        .metrics_prefix = mutt_config_str(cfg, MUTT_CFG_METRICS_PREFIX),
        .now_ms = ingest_wall_ms(),
        .cap = mutt_dynconfig_int(ctx->dyn, MUTT_DYN_MAX_INGEST_QUEUE_SIZE),
        .rate_enabled = mutt_config_bool(cfg, MUTT_CFG_RATE_LIMIT_ENABLED),
        .rate_max = mutt_dynconfig_int(ctx->dyn, MUTT_DYN_INGEST_MAX_RATE),
        .rate_window_s = mutt_dynconfig_int(ctx->dyn, MUTT_DYN_INGEST_RATE_WINDOW),
        .byte_cap = mutt_dynconfig_int(ctx->dyn, MUTT_DYN_MAX_INGEST_QUEUE_BYTES),
    };
    ing->last_cap = p.cap;
    return mutt_ingest_call_prepare(call, &p);
}

/* Answers every request of the unsent group 503 and empties it (why: a message for the body,
 * or NULL for "Redis unavailable"). */
static void group_fail(struct ingest *ing, int status, const char *why)
{
    for (size_t i = 0; i < ing->gnops; i++)
        finish_op(ing, ing->gops[i], -1, 0, 0, 0, status, why, false);
    ing->gnops = ing->gnev = ing->gused = 0;
}

static bool reserve_nums(struct ingest *ing, size_t want)
{
    return grow_buffer(&ing->nums, &ing->nums_cap, want, 4096);
}

/* Sends the group as one script call (D50) on ingest's own connection (D49) and starts a new
 * one. Every request of the group is answered from the reply, or at once when it cannot go. */
static void group_flush(struct ingest *ing)
{
    if (ing->check_ready) {
        uv_check_stop(&ing->flush_check);
        uv_prepare_stop(&ing->flush_prepare);
        uv_timer_stop(&ing->pace_timer);
    }
    if (ing->gnops == 0)
        return;
    size_t nops = ing->gnops, nargs = MUTT_INGEST_NFIXED + 1 + nops + ing->gnev;
    size_t nlin = ing->lin_value ? 4 + nops : 0; /* lineage block after the events (ingest_call.c) */
    char lin_field[MUTT_LINEAGE_FIELD_MAX];
    struct mutt_ingest_call call;
    struct ingest_flight *f = NULL;
    if (prepare_call(ing, &call) != 0 || !ingest_reserve_entries(ing, nargs + nlin) || !reserve_nums(ing, (nops + 1) * 24) ||
        (f = calloc(1, sizeof *f + nops * sizeof f->ops[0])) == NULL ||
        (ing->min_replicas > 0 && (f->v = calloc(nops, sizeof *f->v)) == NULL)) {
        if (f)
            flight_free(f);
        group_fail(ing, MUTT_ENOMEM, "out of memory");
        ingest_maybe_stopped(ing);
        return;
    }
    size_t k = 0, numused = 0;
    for (int i = 0; i < MUTT_INGEST_NFIXED; i++, k++) {
        ing->argv[k] = call.args[i];
        ing->argl[k] = call.arglens[i];
    }
    for (size_t i = 0; i <= nops; i++, k++) {
        size_t v = i == 0 ? nops : ing->gops[i - 1]->accepted;
        int w = snprintf(ing->nums + numused, 24, "%zu", v);
        ing->argv[k] = ing->nums + numused;
        ing->argl[k] = (size_t)w;
        numused += (size_t)w;
    }
    for (size_t i = 0; i < ing->gnev; i++, k++) {
        ing->argv[k] = ing->buf + ing->offs[i];
        ing->argl[k] = ing->lens[i];
    }
    if (nlin && mutt_lineage_field(ingest_wall_ms(), MUTT_LINEAGE_ACCEPTED, lin_field, sizeof lin_field) > 0) {
        const char *fixed[] = {MUTT_LINEAGE_KEY_PREFIX, ing->lin_ttl, lin_field, ing->lin_value};
        for (size_t i = 0; i < 4; i++, k++) {
            ing->argv[k] = fixed[i];
            ing->argl[k] = i == 3 ? ing->lin_value_len : strlen(fixed[i]);
        }
        size_t ev = 0;
        for (size_t i = 0; i < nops; i++, k++) {
            size_t cl = 0;
            const char *cid = ing->gops[i]->accepted
                                  ? mutt_ingest_tail_cid(ing->buf + ing->offs[ev], ing->lens[ev], &cl) : NULL;
            ing->argv[k] = cid ? cid : "";
            ing->argl[k] = cl;
            ev += ing->gops[i]->accepted;
        }
        nargs += nlin;
    }
    int rc = mutt_redis_evalsha(ing->conn, ing->script_id, MUTT_INGEST_NKEYS, call.keys, call.keylens, (int)nargs,
                                ing->argv, ing->argl, on_group_reply, f);
    if (rc != 0) {
        /* Fail fast (CONTRACT §3): not connected, or too many commands already in flight. */
        flight_free(f);
        group_fail(ing, rc, NULL);
        ingest_maybe_stopped(ing);
        return;
    }
    f->nops = nops;
    memcpy(f->ops, ing->gops, nops * sizeof f->ops[0]);
    if (ing->min_replicas > 0) {
        /* D37: one WAIT right behind the script call on the same (ordered) connection covers
         * every push of the group. */
        if (send_wait(ing, f) != 0)
            f->unconfirmed = true; /* the script goes anyway; nothing can confirm it */
    }
    mutt_counter_inc(ing->calls);
    ing->gnops = ing->gnev = ing->gused = 0;
    ing->last_send_ns = uv_hrtime();
}

static void on_pace_timer(uv_timer_t *h)
{
    group_flush(h->data);
}

/* End of a loop turn with a group gathered: send it, or, when the last group left less than
 * GROUP_PACE_NS ago, let the pace timer send it (more requests join it meanwhile). A stopping
 * stage sends at once. */
static void group_due(struct ingest *ing)
{
    if (ing->gnops > 0 && ing->life.state == MUTT_STAGE_RUNNING) {
        uint64_t wait_ms = mutt_ingest_pace_wait_ms(uv_hrtime(), ing->last_send_ns, GROUP_PACE_NS);
        if (wait_ms > 0) {
            uv_check_stop(&ing->flush_check);
            uv_prepare_stop(&ing->flush_prepare);
            if (!uv_is_active((uv_handle_t *)&ing->pace_timer))
                uv_timer_start(&ing->pace_timer, on_pace_timer, wait_ms, 0);
            return;
        }
    }
    group_flush(ing);
}

void ingest_on_flush_check(uv_check_t *h)
{
    group_due(h->data);
}

void ingest_on_flush_prepare(uv_prepare_t *h)
{
    group_due(h->data);
}

/* Sends the group first when `nev` events of about `bytes` would take it over its limits. */
void ingest_group_make_room(struct ingest *ing, size_t nev, size_t bytes)
{
    if (ing->gnops > 0 && (ing->gnops >= GROUP_MAX_REQUESTS || ing->gnev + nev > GROUP_MAX_EVENTS ||
                           ing->gused + bytes > GROUP_MAX_BYTES))
        group_flush(ing);
}

/* Adds op (its nev events already written after the group's, ending at byte `used`) to the
 * group and holds its request until the verdict; takes op. */
void ingest_group_add(struct ingest *ing, struct ingest_op *op, size_t nev, size_t used)
{
    struct mutt_http_req *req = op->req;
    if (ing->gnops == ing->gops_cap) {
        size_t cap = ing->gops_cap ? ing->gops_cap * 2 : 64;
        struct ingest_op **g = realloc(ing->gops, cap * sizeof *g);
        if (!g) {
            uint64_t t0 = op->start_ns;
            free(op);
            ingest_refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
            return;
        }
        ing->gops = g;
        ing->gops_cap = cap;
    }
    if (!mutt_redis_conn_connected(ing->conn)) {
        /* Fail fast (CONTRACT §3): the group could not be sent either. */
        uint64_t t0 = op->start_ns;
        size_t nacc = op->accepted;
        free(op);
        ingest_refuse(ing, req, t0, 503, REASON_REDIS, "Redis unavailable", REDIS_DOWN_RETRY_AFTER_S);
        mutt_counter_add(ing->ev_refused, (double)nacc);
        return;
    }
    ing->gops[ing->gnops++] = op;
    ing->gnev += nev;
    ing->gused = used;
    ing->inflight++;
    size_t blen = 0;
    mutt_http_req_body(req, &blen);
    op->body_bytes = blen;
    ing->inflight_bytes += blen;
    mutt_gauge_set(ing->inflight_bytes_g, (double)ing->inflight_bytes);
    mutt_http_req_hold(req);
    mutt_http_req_set_deadline(req, (uint64_t)mutt_config_int(ing->ctx->cfg, MUTT_CFG_INGEST_TIMEOUT_MS), 503,
                               "Redis unavailable");
    if (ing->gnops == 1 && ing->check_ready) {
        uv_check_start(&ing->flush_check, ingest_on_flush_check);
        uv_prepare_start(&ing->flush_prepare, ingest_on_flush_prepare);
    }
}

