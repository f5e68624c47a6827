/* The ingest stage (role ingest, CONTRACT §3): the POST handler on the ingest listener and the
 * Redis call of each loop turn's group of requests. Checks run in D6's order (auth 401, media
 * type 415, size 413, parse/validate 400, rate 429, cap 503); the last two and the push happen
 * inside one Lua script (ingest_call.c), so a 200 always means every accepted event is in the
 * queue. Does not parse or normalise events itself (domain/event.c does). Group commit (D50): a
 * request that passed the checks made before Redis joins the loop turn's group; a uv_check
 * handle (or a uv_prepare one, before the loop would block) sends the group as one script call
 * on ingest's own connection (D49) once the turn's I/O has been read (or, within 1 ms of the
 * previous send, a timer sends it when that millisecond is up: GROUP_PACE_NS), and the reply
 * answers every request of the group with its own verdict. With INGEST_MIN_REPLICAS (D37) a WAIT follows
 * each script call on that connection, and a pushed request gets its 200 only once enough
 * replicas confirmed (503 not_replicated otherwise). Loop thread only; one instance per process. */
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

#define QUEUE_FULL_RETRY_AFTER_S 5  /* a full queue drains at the alerter's pace: don't hammer it */
#define REDIS_DOWN_RETRY_AFTER_S 1  /* reconnects are retried every 100 ms .. 5 s */
#define OVERLOADED_RETRY_AFTER_S 1  /* in-flight bytes drain within INGEST_TIMEOUT_MS */

/* One group never grows past these (a new request that would take it over sends the group
 * first): the script runs alone on Redis, so a group must not hold it much longer than one
 * MAX_BATCH_EVENTS batch did before groups (~2,000 events, ~1 MiB: a few ms), and Redis copies
 * every argument. A single request larger than the limits still goes, alone. */
#define GROUP_MAX_REQUESTS 256
#define GROUP_MAX_EVENTS 2000
#define GROUP_MAX_BYTES ((size_t)1 << 20)
/* Groups are sent at most once per this (mutt_ingest_pace_wait_ms): at 5,000 single-event
 * requests/s a loop turn holds ~1 request, so without pacing every request paid the script's
 * fixed commands (LLEN, byte counter, LPUSH, 7 counter commands) alone, and the alert stage then
 * popped and completed them one by one too. 1 ms gathers ~5 such requests into one call; below
 * 1,000 requests/s nothing waits. */
#define GROUP_PACE_NS 1000000ull

/* Values of the `reason` label of mutt_ingest_requests_total (python-original §12 plus the
 * outcomes the original could not produce). */
enum reason { REASON_OK = 0, REASON_AUTH, REASON_MEDIA, REASON_SIZE, REASON_JSON, REASON_VALIDATION, REASON_RATE, REASON_FULL, REASON_REDIS, REASON_SHUTDOWN, REASON_INFLIGHT, REASON_NOT_REPLICATED, REASON_COUNT_ };
static const char *const reason_names[REASON_COUNT_] = {
    "", "auth", "media_type", "too_large", "json", "validation", "rate_limit", "queue_full", "redis", "shutdown",
    "inflight_bytes", "not_replicated",
};
/* The HTTP status each outcome answers with: mutt_api_requests_total's status label (D45, D62). */
static const char *const reason_status[REASON_COUNT_] = {
    "200", "401", "415", "413", "400", "400", "429", "503", "503", "503", "503", "503",
};

/* finish_op's verdict for a pushed request whose WAIT confirmed fewer than INGEST_MIN_REPLICAS
 * replicas (D37): its events are queued on the primary only, so they are in doubt. Not a
 * script code (those are 0..3). */
#define CODE_NOT_REPLICATED 100

struct ingest {
    struct mutt_ctx *ctx;
    struct mutt_stage_life life; /* RUNNING once the routes are up; DRAINING; the stop's done */
    int script_id;
    struct mutt_redis_conn *conn; /* D49: ingest's own connection (pushes never wait behind relq,
                                     heartbeats or the web stage on the shared one) */
    uv_check_t flush_check;    /* sends the group once the loop turn's I/O has been read */
    uv_prepare_t flush_prepare; /* ...or before the loop would block, for a request that came in
                                   a timer or pending callback (the check handle alone would
                                   then wait for the next I/O) */
    bool check_ready;          /* both handles (and pace_timer) initialised (closed again at stop) */
    uv_timer_t pace_timer;     /* sends a group held back by GROUP_PACE_NS */
    uint64_t last_send_ns;     /* uv_hrtime of the last group sent (0: none yet) */
    size_t inflight;           /* requests waiting for their verdict (in the group or sent) */
    size_t inflight_bytes;     /* body bytes of those requests (INGEST_INFLIGHT_BYTES) */
    struct mutt_event_rules rules;
    int64_t last_depth;        /* queue depth seen by the last script reply */
    int64_t last_cap;          /* cap in force at that reply */
    bool last_bytes_full;      /* the last script reply refused for max_ingest_queue_bytes (D52) */

    struct mutt_counter *requests[REASON_COUNT_]; /* mutt_ingest_requests_total{status,reason} */
    struct mutt_counter *api_requests[REASON_COUNT_]; /* mutt_api_requests_total{version,endpoint,status} */
    struct mutt_counter *ev_accepted;        /* mutt_ingest_events_total{result="accepted"} */
    struct mutt_counter *ev_rejected;        /* {result="rejected"}: invalid events */
    struct mutt_counter *ev_refused;         /* {result="refused"}: valid, but 429/503 */
    struct mutt_counter *in_doubt;           /* events queued after their request got a 503 (D2) */
    struct mutt_counter *rate_hits;
    struct mutt_counter *reserved_stripped; /* D35: client `_` fields removed */
    struct mutt_counter *calls;              /* script calls sent: one per group (D50) */
    struct mutt_counter *not_replicated;     /* requests answered 503 not_replicated (D37) */
    int64_t min_replicas;      /* INGEST_MIN_REPLICAS: 0 = no WAIT */
    char wait_n[24], wait_ms[24]; /* WAIT's arguments, written at start */
    long long last_replicas;   /* replicas the last WAIT confirmed (-1: none answered yet) */
    struct mutt_gauge *depth;
    struct mutt_gauge *inflight_bytes_g;     /* mutt_ingest_inflight_bytes */
    struct mutt_histogram *latency;

    /* The group being gathered (D50), reused after each send: mutt_redis_evalsha copies its
     * arguments at once. */
    struct ingest_op **gops; /* its requests, in arrival order */
    size_t gnops, gops_cap;
    size_t gnev;          /* events of the group: entries used in offs/lens */
    size_t gused;         /* bytes used in buf */
    char *buf;            /* serialised events of the group, back to back */
    size_t buf_cap;
    size_t *offs;         /* per accepted event: offset and length in buf */
    size_t *lens;
    const char **argv;    /* fixed ARGV, R, per-request counts, then the events */
    size_t *argl;
    size_t arr_cap;       /* entries in offs/lens/argv/argl */
    char *nums;           /* the decimal strings of R and the per-request counts */
    size_t nums_cap;
    struct mutt_event_fast fast; /* bodies that need no jansson tree (event_fast.h) */
    char *lin_value;      /* lineage (D63): the "accepted" step's details; NULL = LINEAGE_ENABLED off */
    size_t lin_value_len;
    char lin_ttl[24];     /* LINEAGE_TTL_SECONDS */
};

static struct ingest g_ingest;

/* One request's verdict from the script, kept until the group's WAIT answers. */
struct ingest_verdict {
    long long code, depth, extra, held;
};

/* A sent group: the reply answers ops[0..nops) in order. With INGEST_MIN_REPLICAS a WAIT
 * follows the script call on the same connection (D37, D49): the script's verdicts are kept in
 * `v` until it answers, and only then is any request answered. */
struct ingest_flight {
    size_t nops;
    bool waiting;      /* a WAIT was sent after the script call and has not answered */
    bool have_reply;   /* the script's reply came (v, status, why hold it) */
    bool unconfirmed;  /* the WAIT could not be sent: pushed requests are not replicated */
    bool wait_early;   /* the WAIT answered before the script (an EVALSHA re-sent as EVAL after
                          NOSCRIPT goes out behind it): it did not cover the push */
    int status;        /* the script call's status */
    char *why;         /* its error text (owned), or NULL */
    struct ingest_verdict *v; /* nops entries, only when waiting */
    struct ingest_op *ops[];
};

/* One request waiting for its verdict (in the group, then in a sent call). The request is held
 * until the reply (or the cancel) comes back. */
struct ingest_op {
    struct mutt_http_req *req; /* NULL for a listener's submission (ingest_intake.h) */
    mutt_ingest_intake_cb *icb; /* ...which is answered here instead; read only when req is NULL */
    void *ipriv;
    uint64_t start_ns;
    size_t body_bytes;   /* counted in ing->inflight_bytes while the call is out */
    size_t accepted;     /* valid events: its share of the group's events */
    size_t rejected;
    size_t rejected_len; /* bytes of `rejected_json` (a JSON array), 0 when none was rejected */
    char rejected_json[];
};

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void observe_latency(struct ingest *ing, uint64_t start_ns)
{
    mutt_histogram_observe(ing->latency, (double)(uv_hrtime() - start_ns) / 1e9);
}

/* D22: one answered request that passed auth. Availability: anything but 5xx; latency: answered
 * within ingestor_latency_p99's target. No I/O (the counters flush once a second). */
static void record_slo(struct ingest *ing, int status, uint64_t start_ns)
{
    struct mutt_slo_counters *slo = ing->ctx->slo;
    mutt_slo_record(slo, MUTT_SLO_INGESTOR_AVAILABILITY, status < 500 ? 1 : 0, 1);
    mutt_slo_record_latency(slo, MUTT_SLO_INGESTOR_LATENCY_P99, (double)(uv_hrtime() - start_ns) / 1e9);
}

static void count_request(struct ingest *ing, enum reason r)
{
    mutt_counter_inc(ing->requests[r]);
    mutt_counter_inc(ing->api_requests[r]);
}

static void maybe_stopped(struct ingest *ing)
{
    if (mutt_stage_life_drained(&ing->life, ing->inflight)) {
        if (ing->check_ready) {
            ing->check_ready = false;
            uv_close((uv_handle_t *)&ing->flush_check, NULL); /* static storage: nothing to free */
            uv_close((uv_handle_t *)&ing->flush_prepare, NULL);
            uv_close((uv_handle_t *)&ing->pace_timer, NULL);
        }
        mutt_stage_life_finish(&ing->life); /* the connection closes with the manager */
    }
}

static void add_retry_after(struct mutt_http_req *req, unsigned secs)
{
    char v[16];
    snprintf(v, sizeof v, "%u", secs ? secs : 1u);
    mutt_http_add_header(req, "retry-after", v);
}

/* Every refusal made before Redis: one reply, one metric, one log line with the correlation id. */
static void refuse(struct ingest *ing, struct mutt_http_req *req, uint64_t start_ns, int status, enum reason r,
                   const char *message, unsigned retry_after)
{
    if (retry_after)
        add_retry_after(req, retry_after);
    mutt_http_reply_status_error(req, status, message);
    count_request(ing, r);
    if (r != REASON_AUTH) /* python-original §12: auth rejections are not timed */
        observe_latency(ing, start_ns);
    if (r != REASON_AUTH && r != REASON_SHUTDOWN) /* both are answered before the auth check */
        record_slo(ing, status, start_ns);
    mutt_log_kv(status >= 500 ? MUTT_LOG_WARNING : MUTT_LOG_INFO, "ingest", mutt_http_req_correlation_id(req), NULL,
                "%d %s: %s", status, reason_names[r], message);
}

/* JSON array [{"index":i,"error":".."},...] of the rejected items; NULL on OOM. */
static char *rejected_array(const struct mutt_event_batch *b, size_t *len)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < b->count; i++) {
        if (!b->items[i].error)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        json_object_set_new(o, "error", json_string(b->items[i].error));
        json_array_append_new(arr, o);
    }
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    *len = s ? strlen(s) : 0;
    return s;
}

/* 400 when no event of the body was valid: the list names each item's problem. */
static void reply_none_valid(struct ingest *ing, struct mutt_http_req *req, uint64_t start_ns,
                             const struct mutt_event_batch *b)
{
    const char *cid = mutt_http_req_correlation_id(req);
    json_t *o = json_object();
    char msg[300];
    if (b->count == 1)
        snprintf(msg, sizeof msg, "%s", b->items[0].error ? b->items[0].error : "invalid event");
    else
        snprintf(msg, sizeof msg, "no valid event in the body (%zu rejected)", b->rejected);
    json_object_set_new(o, "status", json_string("error"));
    json_object_set_new(o, "message", json_string(msg));
    json_object_set_new(o, "correlation_id", json_string(cid));
    size_t rlen = 0;
    char *rej = rejected_array(b, &rlen);
    json_t *arr = rej ? json_loadb(rej, rlen, 0, NULL) : NULL;
    free(rej);
    json_object_set_new(o, "rejected", arr ? arr : json_array());
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (body) {
        mutt_http_reply_json(req, 400, body, strlen(body));
        free(body);
    } else {
        mutt_http_reply_status_error(req, 400, msg);
    }
    count_request(ing, REASON_VALIDATION);
    mutt_counter_add(ing->ev_rejected, (double)b->rejected);
    observe_latency(ing, start_ns);
    record_slo(ing, 400, start_ns);
    mutt_log_kv(MUTT_LOG_INFO, "ingest", cid, NULL, "400 validation: %s", msg);
}

/* Grows offs/lens/argv/argl to `want` entries; false on OOM. */
static bool reserve_entries(struct ingest *ing, size_t want)
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

static bool reserve_bytes(struct ingest *ing, size_t want)
{
    return grow_buffer(&ing->buf, &ing->buf_cap, want, 16384);
}

/* Serialises every accepted event of the batch after the group's events in ing->buf (ids
 * stamped first; offs/lens from index gnev). Returns the number of events written (the group's
 * counters are the caller's to advance), or a negative MUTT_E*. */
static long serialise(struct ingest *ing, struct mutt_event_batch *b, const char *cid)
{
    json_t *jcid = json_stringn_nocheck(cid, strlen(cid)); /* safe characters only (D8) */
    if (!jcid || !reserve_bytes(ing, ing->gused + 16384)) {
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
            if (!reserve_bytes(ing, used + len + 4096)) {
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
    count_request(ing, REASON_OK);
    mutt_counter_add(ing->ev_accepted, (double)op->accepted);
    if (op->rejected)
        mutt_counter_add(ing->ev_rejected, (double)op->rejected);
    observe_latency(ing, op->start_ns);
    record_slo(ing, 200, op->start_ns);
}

/* The common tail of every refusal of a grouped request: the answer with its Retry-After, the
 * request and rejected-event counters, latency and the SLO sample. */
static void send_refusal(struct ingest *ing, struct ingest_op *op, int status, int reason, unsigned retry_s,
                         const char *body, int n)
{
    add_retry_after(op->req, retry_s);
    mutt_http_reply_json(op->req, status, body, (size_t)n);
    count_request(ing, reason);
    if (op->rejected)
        mutt_counter_add(ing->ev_rejected, (double)op->rejected);
    observe_latency(ing, op->start_ns);
    record_slo(ing, status, op->start_ns);
}

static void reply_rate_limited(struct ingest *ing, struct ingest_op *op)
{
    struct mutt_http_req *req = op->req;
    int64_t window = mutt_dynconfig_int(ing->ctx->dyn, MUTT_DYN_INGEST_RATE_WINDOW);
    unsigned secs = mutt_ingest_retry_after_s(wall_ms(), window);
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
        count_request(ing, REASON_REDIS);
        record_slo(ing, 503, op->start_ns);
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
        add_retry_after(req, REDIS_DOWN_RETRY_AFTER_S);
        mutt_http_reply_status_error(req, 503, why && !sent ? why : "Redis unavailable");
        count_request(ing, REASON_REDIS);
        mutt_counter_add(ing->ev_refused, (double)op->accepted);
        observe_latency(ing, op->start_ns);
        record_slo(ing, 503, op->start_ns);
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
    maybe_stopped(ing);
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
    maybe_stopped(ing);
}

/* ------------------------------------------------------------------------------------------ */
/* the handler                                                                                 */

static void group_make_room(struct ingest *ing, size_t nev, size_t bytes);
static void group_add(struct ingest *ing, struct ingest_op *op, size_t nev, size_t used);

/* Bytes the fast path leaves after each event: ,"_correlation_id":"<cid>","_event_id":"<uuid>"} */
#define FAST_SUFFIX_FIXED (20 + 15 + (MUTT_UUID_STR_LEN - 1) + 2)
#define FAST_ROOM (FAST_SUFFIX_FIXED + 64)

/* Events from mutt_event_fast_body (already what normalise + dump would give, minus the '}'):
 * the two id fields are appended in place, in the order mutt_event_stamp_shared sets them. */
static void submit_fast(struct ingest *ing, struct mutt_http_req *req, uint64_t t0, size_t n)
{
    const char *cid = mutt_http_req_correlation_id(req);
    size_t cidlen = strlen(cid);
    struct mutt_event_fast *fp = &ing->fast;
    struct ingest_op *op = NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += fp->lens[i] + FAST_SUFFIX_FIXED + cidlen;

    group_make_room(ing, n, bytes);
    if (!reserve_entries(ing, ing->gnev + n) || !reserve_bytes(ing, ing->gused + bytes) ||
        (op = malloc(sizeof *op)) == NULL) {
        free(op);
        refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
        return;
    }
    op->req = req;
    op->start_ns = t0;
    op->accepted = n;
    op->rejected = 0;
    op->rejected_len = 0;
    size_t used = ing->gused;
    for (size_t i = 0; i < n; i++) {
        char *e = ing->buf + used;
        size_t len = fp->lens[i];
        memcpy(e, fp->buf + fp->offs[i], len);
        uint8_t rnd[16];
        char id[MUTT_UUID_STR_LEN];
        mutt_random_bytes(rnd, sizeof rnd); /* D1: a fresh _event_id per event */
        mutt_uuid_v4_format(rnd, id);
        memcpy(e + len, ",\"_correlation_id\":\"", 20);
        len += 20;
        memcpy(e + len, cid, cidlen);
        len += cidlen;
        memcpy(e + len, "\",\"_event_id\":\"", 15);
        len += 15;
        memcpy(e + len, id, MUTT_UUID_STR_LEN - 1);
        len += MUTT_UUID_STR_LEN - 1;
        memcpy(e + len, "\"}", 2);
        len += 2;
        ing->offs[ing->gnev + i] = used;
        ing->lens[ing->gnev + i] = len;
        used += len;
    }
    group_add(ing, op, n, used);
}

/* Over 100 lines, left whole on purpose for now: the intake checks run in the order the
 * contract answers them (auth, media type, size, parse, validate, queue), and this body is being
 * changed by the reserved-field (D35) and in-flight budget work; split it after those land. */
/* The answers that need no parsing (shutdown, 401, 415, 413, the in-flight budget, a bad
 * X-Correlation-ID). Returns true when the request may go on; else it has been refused.
 * *body and *blen get the request body. */
static bool admit_request(struct ingest *ing, struct mutt_http_req *req, uint64_t t0, const char **body_out,
                          size_t *blen_out)
{
    const struct mutt_config *cfg = ing->ctx->cfg;
    if (ing->life.state != MUTT_STAGE_RUNNING) {
        refuse(ing, req, t0, 503, REASON_SHUTDOWN, "shutting down", REDIS_DOWN_RETRY_AFTER_S);
        return false;
    }

    /* 401: exactly one X-API-KEY header; never the query string (W34) */
    size_t klen = 0;
    int kcount = 0;
    const char *key = mutt_http_req_header(req, "x-api-key", &klen, &kcount);
    if (kcount != 1 || !mutt_ingest_key_matches(key, klen, mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY),
                                                 mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY_NEXT))) {
        refuse(ing, req, t0, 401, REASON_AUTH, "Unauthorized", 0);
        return false;
    }

    /* 415 */
    size_t ctlen = 0;
    int ctcount = 0;
    const char *ct = mutt_http_req_header(req, "content-type", &ctlen, &ctcount);
    if (ctcount != 1 || !mutt_ingest_media_type_ok(ct, ctlen)) {
        refuse(ing, req, t0, 415, REASON_MEDIA, "Content-Type must be application/json or application/x-ndjson", 0);
        return false;
    }

    /* 413 (h2o already refuses bodies over MAX_BODY_BYTES before routing, D10; this covers any
     * path around it) */
    size_t blen = 0;
    const char *body = mutt_http_req_body(req, &blen);
    size_t max_body = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BODY_BYTES);
    if (blen > max_body) {
        char msg[96];
        snprintf(msg, sizeof msg, "body is larger than MAX_BODY_BYTES (%zu)", max_body);
        refuse(ing, req, t0, 413, REASON_SIZE, msg, 0);
        return false;
    }

    /* 503: this process already holds INGEST_INFLIGHT_BYTES of bodies waiting for Redis (a
     * stalled Redis must not grow memory without bound). One request is always admitted, so a
     * budget below MAX_BODY_BYTES cannot lock out a large body. */
    size_t budget = (size_t)mutt_config_int(cfg, MUTT_CFG_INGEST_INFLIGHT_BYTES);
    if (ing->inflight_bytes > 0 && ing->inflight_bytes + blen > budget) {
        char msg[160];
        snprintf(msg, sizeof msg, "overloaded: INGEST_INFLIGHT_BYTES (%zu) of requests are waiting for Redis", budget);
        refuse(ing, req, t0, 503, REASON_INFLIGHT, msg, OVERLOADED_RETRY_AFTER_S);
        return false;
    }

    /* 400: a correlation id we would otherwise silently replace (D8) */
    size_t cidlen = 0;
    int cidcount = 0;
    const char *cidh = mutt_http_req_header(req, "x-correlation-id", &cidlen, &cidcount);
    if (cidcount > 1 || (cidcount == 1 && !mutt_correlation_id_valid(cidh, cidlen))) {
        refuse(ing, req, t0, 400, REASON_VALIDATION,
               cidcount > 1 ? "X-Correlation-ID: sent more than once"
                            : "X-Correlation-ID: must be 1 to 64 characters from A-Z a-z 0-9 . _ : -",
               0);
        return false;
    }

    *body_out = body;
    *blen_out = blen;
    return true;
}

/* The general path: split and parse with jansson, strip, normalise and size each event, then
 * join the loop turn's group (or answer 400/413 when nothing is valid). */
static void submit_general(struct ingest *ing, struct mutt_http_req *req, uint64_t t0, const char *body, size_t blen)
{
    const struct mutt_config *cfg = ing->ctx->cfg;
    /* 413 / 400: split and parse */
    struct mutt_event_batch b;
    int rc = mutt_event_parse_body(body, blen, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BATCH_EVENTS),
                                   (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), &b);
    if (rc != 0) {
        if (rc == MUTT_ERANGE)
            refuse(ing, req, t0, 413, REASON_SIZE, b.error, 0);
        else if (rc == MUTT_ENOMEM)
            refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
        else
            refuse(ing, req, t0, 400, REASON_JSON, b.error[0] ? b.error : "invalid JSON", 0);
        mutt_event_batch_dispose(&b);
        return;
    }
    for (size_t i = 0; i < b.count; i++) {
        if (!b.items[i].event)
            continue;
        char err[256];
        size_t stripped = mutt_event_strip_reserved(b.items[i].event); /* D35 */
        if (stripped)
            mutt_counter_add(ing->reserved_stripped, (double)stripped);
        if (mutt_event_normalize(b.items[i].event, &ing->rules, err, sizeof err, NULL) != 0 ||
            mutt_event_check_size(b.items[i].event, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), err,
                                  sizeof err) != 0)
            mutt_event_batch_reject(&b, i, err[0] ? err : "invalid event");
    }
    size_t accepted = b.count - b.rejected;
    if (accepted == 0) {
        reply_none_valid(ing, req, t0, &b);
        mutt_event_batch_dispose(&b);
        return;
    }

    /* 429 / 503 / 200: the group's script call */
    const char *cid = mutt_http_req_correlation_id(req);
    size_t rlen = 0;
    char *rej = NULL;
    struct ingest_op *op = NULL;
    long n = -1;
    group_make_room(ing, accepted, blen + accepted * (FAST_SUFFIX_FIXED + 64));
    if (!reserve_entries(ing, ing->gnev + accepted) ||
        (b.rejected > 0 && (rej = rejected_array(&b, &rlen)) == NULL) ||
        (op = malloc(sizeof *op + rlen)) == NULL || (n = serialise(ing, &b, cid)) < 0) {
        free(rej);
        free(op);
        mutt_event_batch_dispose(&b);
        refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
        return;
    }
    op->req = req;
    op->start_ns = t0;
    op->accepted = (size_t)n;
    op->rejected = b.rejected;
    op->rejected_len = rlen;
    if (rlen)
        memcpy(op->rejected_json, rej, rlen);
    free(rej);
    mutt_event_batch_dispose(&b);
    size_t used = op->accepted ? ing->offs[ing->gnev + op->accepted - 1] + ing->lens[ing->gnev + op->accepted - 1]
                               : ing->gused;
    group_add(ing, op, op->accepted, used);
}

/* POST /api/v2/ingest (and /ingest): the checks that need no parsing, then the fast path for
 * compact bodies, else the general path; both end in the loop turn's group (D50). */
static void on_ingest(struct mutt_http_req *req, void *privdata)
{
    struct ingest *ing = privdata;
    const struct mutt_config *cfg = ing->ctx->cfg;
    uint64_t t0 = uv_hrtime();

    const char *body = NULL;
    size_t blen = 0;
    if (!admit_request(ing, req, t0, &body, &blen))
        return;

    /* Compact bodies that need no normalisation skip jansson (same bytes, see event_fast.h). */
    if (strlen(mutt_http_req_correlation_id(req)) + FAST_SUFFIX_FIXED <= FAST_ROOM) {
        long nfast = mutt_event_fast_body(body, blen, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BATCH_EVENTS),
                                          (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), &ing->rules,
                                          FAST_ROOM, &ing->fast);
        if (nfast > 0) {
            submit_fast(ing, req, t0, (size_t)nfast);
            return;
        }
        /* 0: not a fast body; MUTT_ENOMEM: the general path will say so if it persists */
    }

    submit_general(ing, req, t0, body, blen);
}

/* The script call's fixed KEYS/ARGV for this request. */
static int prepare_call(struct ingest *ing, struct mutt_ingest_call *call)
{
    struct mutt_ctx *ctx = ing->ctx;
    const struct mutt_config *cfg = ctx->cfg;
    struct mutt_ingest_params p = {
        .queue = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME),
        .metrics_prefix = mutt_config_str(cfg, MUTT_CFG_METRICS_PREFIX),
        .now_ms = wall_ms(),
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
    if (prepare_call(ing, &call) != 0 || !reserve_entries(ing, nargs + nlin) || !reserve_nums(ing, (nops + 1) * 24) ||
        (f = calloc(1, sizeof *f + nops * sizeof f->ops[0])) == NULL ||
        (ing->min_replicas > 0 && (f->v = calloc(nops, sizeof *f->v)) == NULL)) {
        if (f)
            flight_free(f);
        group_fail(ing, MUTT_ENOMEM, "out of memory");
        maybe_stopped(ing);
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
    if (nlin && mutt_lineage_field(wall_ms(), MUTT_LINEAGE_ACCEPTED, lin_field, sizeof lin_field) > 0) {
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
        maybe_stopped(ing);
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

static void on_flush_check(uv_check_t *h)
{
    group_due(h->data);
}

static void on_flush_prepare(uv_prepare_t *h)
{
    group_due(h->data);
}

/* Sends the group first when `nev` events of about `bytes` would take it over its limits. */
static void group_make_room(struct ingest *ing, size_t nev, size_t bytes)
{
    if (ing->gnops > 0 && (ing->gnops >= GROUP_MAX_REQUESTS || ing->gnev + nev > GROUP_MAX_EVENTS ||
                           ing->gused + bytes > GROUP_MAX_BYTES))
        group_flush(ing);
}

/* Adds op (its nev events already written after the group's, ending at byte `used`) to the
 * group and holds its request until the verdict; takes op. */
static void group_add(struct ingest *ing, struct ingest_op *op, size_t nev, size_t used)
{
    struct mutt_http_req *req = op->req;
    if (ing->gnops == ing->gops_cap) {
        size_t cap = ing->gops_cap ? ing->gops_cap * 2 : 64;
        struct ingest_op **g = realloc(ing->gops, cap * sizeof *g);
        if (!g) {
            uint64_t t0 = op->start_ns;
            free(op);
            refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
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
        refuse(ing, req, t0, 503, REASON_REDIS, "Redis unavailable", REDIS_DOWN_RETRY_AFTER_S);
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
        uv_check_start(&ing->flush_check, on_flush_check);
        uv_prepare_start(&ing->flush_prepare, on_flush_prepare);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* intake for the listeners (ingest_intake.h)                                                  */

bool mutt_ingest_intake_ready(void)
{
    struct ingest *ing = &g_ingest;
    return ing->life.state == MUTT_STAGE_RUNNING && ing->conn && mutt_redis_conn_connected(ing->conn);
}

/* The same checks an HTTP event passes after parsing (D35, normalisation, MAX_EVENT_BYTES). */
static bool intake_valid(struct ingest *ing, json_t *ev)
{
    if (!json_is_object(ev))
        return false;
    size_t stripped = mutt_event_strip_reserved(ev);
    if (stripped)
        mutt_counter_add(ing->reserved_stripped, (double)stripped);
    return mutt_event_normalize(ev, &ing->rules, NULL, 0, NULL) == 0 &&
           mutt_event_check_size(ev, (size_t)mutt_config_int(ing->ctx->cfg, MUTT_CFG_MAX_EVENT_BYTES), NULL, 0) == 0;
}

long mutt_ingest_intake_submit(json_t *const *events, size_t n, const char *source_id, size_t *invalid,
                               mutt_ingest_intake_cb *cb, void *privdata)
{
    struct ingest *ing = &g_ingest;
    if (invalid)
        *invalid = 0;
    if (ing->life.state != MUTT_STAGE_RUNNING || !cb || !source_id ||
        !mutt_correlation_id_valid(source_id, strlen(source_id)))
        return MUTT_ESTATE;
    if (!mutt_redis_conn_connected(ing->conn))
        return MUTT_EDISCONNECTED;
    struct mutt_event_batch b = {.count = n};
    b.items = calloc(n ? n : 1, sizeof *b.items);
    if (!b.items)
        return MUTT_ENOMEM;
    size_t valid = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (intake_valid(ing, events[i])) {
            b.items[i].event = events[i]; /* borrowed: never disposed here */
            valid++;
            bytes += 1024;
        } else {
            b.rejected++;
        }
    }
    if (invalid)
        *invalid = b.rejected;
    if (b.rejected)
        mutt_counter_add(ing->ev_rejected, (double)b.rejected);
    if (valid == 0) {
        free(b.items);
        return 0;
    }
    group_make_room(ing, valid, bytes);
    struct ingest_op *op = NULL;
    long w = -1;
    if (ing->gnops == ing->gops_cap) {
        size_t cap = ing->gops_cap ? ing->gops_cap * 2 : 64;
        struct ingest_op **g = realloc(ing->gops, cap * sizeof *g);
        if (g) {
            ing->gops = g;
            ing->gops_cap = cap;
        }
    }
    if (ing->gnops == ing->gops_cap || !reserve_entries(ing, ing->gnev + valid) ||
        (op = calloc(1, sizeof *op)) == NULL || (w = serialise(ing, &b, source_id)) < 0) {
        free(op);
        free(b.items);
        return MUTT_ENOMEM;
    }
    free(b.items);
    op->icb = cb;
    op->ipriv = privdata;
    op->start_ns = uv_hrtime();
    op->accepted = (size_t)w;
    ing->gops[ing->gnops++] = op;
    ing->gused = ing->offs[ing->gnev + op->accepted - 1] + ing->lens[ing->gnev + op->accepted - 1];
    ing->gnev += op->accepted;
    ing->inflight++;
    if (ing->gnops == 1 && ing->check_ready) {
        uv_check_start(&ing->flush_check, on_flush_check);
        uv_prepare_start(&ing->flush_prepare, on_flush_prepare);
    }
    return (long)op->accepted;
}

/* D49: names the connection in CLIENT LIST (mutt:<pod>:ingest) each time it comes up, so an
 * operator can tell ingest's pushes from the rest. */
static void on_conn_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct ingest *ing = privdata;
    if (!connected)
        return;
    char name[128];
    int n = snprintf(name, sizeof name, "mutt:%s:ingest", ing->ctx->pod_name ? ing->ctx->pod_name : "pod");
    if (n < 0)
        return;
    for (char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '_' || *c == ':' || *c == '-'))
            *c = '_'; /* CLIENT SETNAME refuses spaces */
    const char *argv[3] = {"CLIENT", "SETNAME", name};
    size_t lens[3] = {6, 7, strlen(name)};
    mutt_redis_command(conn, NULL, NULL, 3, argv, lens); /* best effort: only a label */
}

/* ------------------------------------------------------------------------------------------ */
/* stage                                                                                       */

static int register_metrics(struct ingest *ing, struct mutt_metrics *m)
{
    static const char *const req_labels[] = {"status", "reason", NULL};
    static const char *const ev_labels[] = {"result", NULL};
    struct mutt_counter *req = mutt_metrics_counter(m, "mutt_ingest_requests_total",
                                                    "Ingest requests by outcome.", req_labels);
    struct mutt_counter *ev = mutt_metrics_counter(
        m, "mutt_ingest_events_total", "Events by outcome: accepted (queued), rejected (invalid), refused (429/503).",
        ev_labels);
    ing->depth = mutt_metrics_gauge(m, "mutt_ingest_queue_depth", "Ingest queue length seen by the last push.", NULL);
    ing->latency = mutt_metrics_histogram(m, "mutt_ingest_latency_seconds", "Ingest request handling time.", NULL,
                                          mutt_metrics_latency_buckets,
                                          MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
    ing->rate_hits = mutt_metrics_counter(m, "mutt_ingest_rate_limit_hits_total",
                                          "Ingest requests refused by the global rate limit.", NULL);
    ing->inflight_bytes_g = mutt_metrics_gauge(
        m, "mutt_ingest_inflight_bytes",
        "Body bytes of ingest requests waiting for their Redis push (capped by INGEST_INFLIGHT_BYTES).", NULL);
    ing->in_doubt = mutt_metrics_counter(m, "mutt_ingest_events_in_doubt_total",
                                         "Events that may be queued though their request got a 503 (deadline, or the "
                                         "connection dropped with the push outstanding).", NULL);
    ing->reserved_stripped = mutt_metrics_counter(
        m, "mutt_ingest_reserved_fields_stripped_total",
        "Top-level fields beginning with '_' removed from client events (MUTT's own, D35).", NULL);
    ing->calls = mutt_metrics_counter(
        m, "mutt_ingest_script_calls_total",
        "Ingest script calls sent to Redis: one per group of requests that arrived in one loop turn (D50).", NULL);
    ing->not_replicated = mutt_metrics_counter(
        m, "mutt_ingest_not_replicated_total",
        "Ingest requests answered 503 not_replicated: WAIT confirmed fewer than INGEST_MIN_REPLICAS replicas in "
        "INGEST_REPLICA_TIMEOUT_MS (their events count as in doubt).", NULL);
    if (!req || !ev || !ing->depth || !ing->latency || !ing->rate_hits || !ing->in_doubt || !ing->reserved_stripped ||
        !ing->inflight_bytes_g || !ing->calls || !ing->not_replicated)
        return MUTT_ENOMEM;
    /* D62: ingest counts in the API usage metric too; it has one version (the current one) */
    static const char *const api_labels[] = {"version", "endpoint", "status", NULL};
    struct mutt_counter *api = mutt_metrics_counter(
        m, "mutt_api_requests_total", "API requests by negotiated version, route pattern and HTTP status.", api_labels);
    if (!api)
        return MUTT_ENOMEM;
    for (int r = 0; r < REASON_COUNT_; r++) {
        const char *vals[] = {r == REASON_OK ? "success" : "fail", reason_names[r]};
        ing->requests[r] = mutt_counter_labels(req, vals);
        const char *avals[] = {"2.0", "/api/v2/ingest", reason_status[r]};
        ing->api_requests[r] = mutt_counter_labels(api, avals);
    }
    const char *acc[] = {"accepted"}, *rej[] = {"rejected"}, *ref[] = {"refused"};
    ing->ev_accepted = mutt_counter_labels(ev, acc);
    ing->ev_rejected = mutt_counter_labels(ev, rej);
    ing->ev_refused = mutt_counter_labels(ev, ref);
    return 0;
}

static int load_rules(struct ingest *ing, const struct mutt_config *cfg)
{
    struct mutt_event_rules rules;
    mutt_event_rules_init_default(&rules);
    if (mutt_event_rules_set_required(&rules, mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS)) != 0) {
        mutt_log_error("ingest", "config error: REQUIRED_FIELDS=%s: too many or too long entries",
                       mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS));
        return MUTT_EINVAL;
    }
    ing->rules = rules;
    return 0;
}

static int ingest_start(struct mutt_ctx *ctx)
{
    struct ingest *ing = &g_ingest;
    if (mutt_stage_life_started(&ing->life))
        return MUTT_ESTATE;
    ing->ctx = ctx;
    mutt_stage_life_init(&ing->life, "ingest", ctx);
    ing->inflight = 0;
    ing->inflight_bytes = 0;
    ing->last_bytes_full = false;
    ing->min_replicas = mutt_config_int(ctx->cfg, MUTT_CFG_INGEST_MIN_REPLICAS);
    ing->last_replicas = -1;
    snprintf(ing->wait_n, sizeof ing->wait_n, "%lld", (long long)ing->min_replicas);
    snprintf(ing->wait_ms, sizeof ing->wait_ms, "%lld",
             (long long)mutt_config_int(ctx->cfg, MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS));
    int rc = load_rules(ing, ctx->cfg);
    if (rc != 0)
        return rc;
    if (mutt_config_bool(ctx->cfg, MUTT_CFG_LINEAGE_ENABLED)) {
        json_t *d = json_pack("{s:s, s:s}", "pod", ctx->pod_name ? ctx->pod_name : "", "queue",
                              mutt_config_str(ctx->cfg, MUTT_CFG_INGEST_QUEUE_NAME));
        rc = d ? mutt_lineage_value(d, &ing->lin_value, &ing->lin_value_len) : MUTT_ENOMEM;
        json_decref(d);
        if (rc != 0)
            return rc;
        snprintf(ing->lin_ttl, sizeof ing->lin_ttl, "%lld",
                 (long long)mutt_config_int(ctx->cfg, MUTT_CFG_LINEAGE_TTL_SECONDS));
    }
    rc = register_metrics(ing, ctx->metrics);
    if (rc != 0)
        return rc;
    ing->script_id = mutt_redis_script_register(ctx->redis, "ingest", mutt_ingest_lua);
    if (ing->script_id < 0)
        return ing->script_id;
    ing->conn = mutt_redis_conn_open(ctx->redis, "ingest");
    if (!ing->conn)
        return MUTT_ENOMEM;
    rc = mutt_redis_conn_on_state(ing->conn, on_conn_state, ing);
    if (rc != 0)
        return rc;
    if (uv_check_init(ctx->loop, &ing->flush_check) != 0 || uv_prepare_init(ctx->loop, &ing->flush_prepare) != 0 ||
        uv_timer_init(ctx->loop, &ing->pace_timer) != 0)
        return MUTT_EIO;
    ing->flush_check.data = ing;
    ing->flush_prepare.data = ing;
    ing->pace_timer.data = ing;
    ing->last_send_ns = 0;
    ing->check_ready = true;
    static const char *const paths[] = {"/api/v2/ingest", "/api/v1/ingest", "/ingest"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        rc = mutt_http_route(ctx->http, MUTT_HTTP_INGEST, "POST", paths[i], on_ingest, ing);
        if (rc != 0)
            return rc;
    }
    mutt_stage_life_set_state(&ing->life, MUTT_STAGE_RUNNING);
    mutt_log_info("ingest", "accepting events on POST /api/v2/ingest, /api/v1/ingest, /ingest -> %s",
                  mutt_config_str(ctx->cfg, MUTT_CFG_INGEST_QUEUE_NAME));
    return 0;
}

static void ingest_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct ingest *ing = &g_ingest;
    if (mutt_stage_life_begin_stop(&ing->life, done, privdata))
        maybe_stopped(ing);
}

static enum mutt_role_health ingest_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    (void)ctx;
    struct ingest *ing = &g_ingest;
    if (ing->last_bytes_full) {
        snprintf(detail, detail_len, "queue over max_ingest_queue_bytes: answering 503");
        return MUTT_HEALTH_DEGRADED;
    }
    if (ing->min_replicas > 0 && ing->last_replicas >= 0 && ing->last_replicas < ing->min_replicas) {
        snprintf(detail, detail_len, "last WAIT confirmed %lld of %lld replicas: answering 503 not_replicated",
                 ing->last_replicas, (long long)ing->min_replicas);
        return MUTT_HEALTH_DEGRADED;
    }
    if (ing->last_cap > 0 && ing->last_depth >= ing->last_cap) {
        snprintf(detail, detail_len, "queue full (%lld of %lld): answering 503", (long long)ing->last_depth,
                 (long long)ing->last_cap);
        return MUTT_HEALTH_DEGRADED;
    }
    return MUTT_HEALTH_OK;
}

static void ingest_reload(struct mutt_ctx *ctx)
{
    load_rules(&g_ingest, ctx->cfg); /* keeps the old rules when the new value is refused */
}

const struct mutt_stage mutt_ingest_stage = {
    .name = "ingest",
    .role = MUTT_ROLE_INGEST,
    .start = ingest_start,
    .stop = ingest_stop,
    .health = ingest_health,
    .reload = ingest_reload,
};
