/* Operations endpoints (CONTRACT §7, D5, D21, D22, reference §8.1/§8.5/§8.6): GET /metrics
 * (dashboard counters, queue and DLQ depths, breaker state; cached METRICS_CACHE_TTL s),
 * GET /dlq, POST /dlq/{name}/replay (one item at a time: RPOPLPUSH into this pod's own
 * processing list, rewrite `_replay_count` here, then one Lua call LREMs it and pushes it to its
 * target; audited as REPLAY/dlq), GET /version (public) and GET /slo (per-minute counters in
 * Redis, see slo.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "mutt/config.h"
#include "mutt/deadlists.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/keys.h"
#include "mutt/lineage.h"
#include "mutt/log.h"
#include "mutt/queue_bytes.h"
#include "mutt/redis.h"
#include "mutt/redis_scripts.h"
#include "mutt/slo.h"
#include "mutt/timefmt.h"
#include "mutt/unhandled_key.h"
#include "web_internal.h"

#define REPLAY_DEFAULT 100
#define REPLAY_MAX 10000
#define DLQ_PREVIEW 10

/* Items a replay left in a processing list (KEYS[1]) go back to their DLQ (KEYS[2]): ours at start
 * and before each replay; a dead pod's from the janitor (ARGV[1] 'janitor'), only while that
 * pod's identity key (KEYS[3]) is gone (deadlists.h). */
static const char LUA_RECOVER[] =
    "if ARGV[1] == 'janitor' and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end "
    "local n = 0 while redis.call('RPOPLPUSH', KEYS[1], KEYS[2]) do n = n + 1 end return n";
/* Sums the good/total fields of the given per-minute SLO hashes. */
static const char LUA_SLO_SUM[] =
    "local g, t = 0, 0 for _, k in ipairs(KEYS) do local v = redis.call('HMGET', k, 'good', 'total') "
    "g = g + (tonumber(v[1]) or 0) t = t + (tonumber(v[2]) or 0) end return {tostring(g), tostring(t)}";

static int script_push = -1, script_recover = -1, script_slo = -1, script_unhandled = -1;

static struct {
    char *body; /* last /metrics body */
    size_t len;
    uint64_t at_ms;
} metrics_cache;

int web_ops_register_scripts(struct mutt_ctx *ctx)
{
    /* LREM from our processing list, push only if it was still there (D5, redis_scripts.h) */
    script_push = mutt_redis_script_register(ctx->redis, "web_replay_push", mutt_script_dlq_move_lua);
    script_recover = mutt_redis_script_register(ctx->redis, "web_replay_recover", LUA_RECOVER);
    script_slo = mutt_redis_script_register(ctx->redis, "web_slo_sum", LUA_SLO_SUM);
    script_unhandled = mutt_redis_script_register(ctx->redis, "web_unhandled_top", mutt_script_unhandled_top_lua);
    if (script_unhandled < 0)
        return script_unhandled;
    if (script_push < 0)
        return script_push;
    if (script_recover < 0)
        return script_recover;
    return script_slo < 0 ? script_slo : 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------------------------------ */
/* DLQ names (D5: alerter, moog, dead)                                                         */

struct dlq_def {
    const char *name;
    enum mutt_cfg_key key;
};
static const struct dlq_def dlqs[] = {
    {"alerter", MUTT_CFG_ALERTER_DLQ_NAME},
    {"moog", MUTT_CFG_MOOG_DLQ_NAME},
    {"dead", MUTT_CFG_DEAD_LETTER_QUEUE},
};
#define NDLQ 3

static const struct dlq_def *dlq_find(const char *name)
{
    for (int i = 0; name && i < NDLQ; i++)
        if (strcmp(dlqs[i].name, name) == 0)
            return &dlqs[i];
    return NULL;
}

static void processing_key(struct mutt_ctx *ctx, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, MUTT_KEY_WEB_REPLAY_PROCESSING_PREFIX ":%s:%s", ctx->pod_name ? ctx->pod_name : "pod", name);
}

static struct mutt_deadlists *janitor;
static struct mutt_ctx *janitor_ctx;

/* web lists end in the DLQ's short name: its items go back to that DLQ */
static int janitor_keys(void *priv, const char *tail, const char **keys)
{
    (void)priv;
    const struct dlq_def *d = dlq_find(tail);
    if (!d)
        return -1;
    keys[0] = mutt_config_str(janitor_ctx->cfg, d->key);
    return 1;
}

int web_ops_janitor_start(struct mutt_ctx *ctx)
{
    janitor_ctx = ctx;
    struct mutt_deadlists_opts o = {
        .name = "web",
        .list_prefix = MUTT_KEY_WEB_REPLAY_PROCESSING_PREFIX,
        .has_tail = true,
        .own_pod = ctx->pod_name ? ctx->pod_name : "pod",
        .script = script_recover,
        .interval_ms = (uint64_t)mutt_config_int(ctx->cfg, MUTT_CFG_JANITOR_INTERVAL) * 1000u,
        .keys_cb = janitor_keys,
    };
    janitor = mutt_deadlists_start(ctx->loop, ctx->redis, &o);
    return janitor ? 0 : MUTT_ENOMEM;
}

void web_ops_janitor_stop(void)
{
    mutt_deadlists_stop(janitor);
    janitor = NULL;
}

void web_ops_recover(struct mutt_ctx *ctx)
{
    for (int i = 0; i < NDLQ; i++) {
        char proc[256];
        processing_key(ctx, dlqs[i].name, proc, sizeof proc);
        const char *keys[] = {proc, mutt_config_str(ctx->cfg, dlqs[i].key)};
        size_t lens[] = {strlen(keys[0]), strlen(keys[1])};
        /* fire and forget: the command waits for the connection like any other */
        mutt_redis_evalsha(mutt_redis_cmd(ctx->redis), script_recover, 2, keys, lens, 0, NULL, NULL, NULL, NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* a batch of Redis commands answered together                                                  */

#define BATCH_MAX 16
struct batch;
typedef void batch_done_fn(struct web_call *c, struct batch *b);
struct batch_slot {
    struct batch *b;
    int idx;
};
struct batch {
    struct web_call *c;
    int n;
    int pending;
    bool failed;
    bool sending;
    batch_done_fn *done;
    json_t *vals[BATCH_MAX];
    struct batch_slot slots[BATCH_MAX];
    void *extra;
};

static void batch_free(void *p)
{
    struct batch *b = p;
    for (int i = 0; i < b->n; i++)
        json_decref(b->vals[i]);
    free(b->extra);
    free(b);
}

static json_t *reply_json(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_INTEGER:
        return json_integer(r->integer);
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        return json_stringn_nocheck(r->str, r->len);
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements; i++)
            json_array_append_new(a, reply_json(r->element[i]));
        return a;
    }
    default:
        return json_null();
    }
}

static void batch_check(struct batch *b)
{
    if (b->pending > 0 || b->sending)
        return;
    struct web_call *c = b->c;
    if (web_answered(c)) {
        web_done(c);
        return;
    }
    if (b->failed) {
        web_reply_error(c, 503, "Redis unavailable", NULL);
        return;
    }
    b->done(c, b);
}

static void on_batch_reply(void *privdata, redisReply *reply, int status)
{
    struct batch_slot *s = privdata;
    struct batch *b = s->b;
    b->pending--;
    if (status != 0 || !reply) {
        if (!b->failed)
            mutt_log_kv(MUTT_LOG_WARNING, "web", b->c->cid, NULL, "Redis %s",
                        status == MUTT_EIO && reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                       : mutt_strerror(status));
        b->failed = true;
    } else {
        b->vals[s->idx] = reply_json(reply);
    }
    batch_check(b);
}

static struct batch *batch_new(struct web_call *c, batch_done_fn *done)
{
    struct batch *b = calloc(1, sizeof *b);
    if (!b) {
        web_reply_error(c, 500, "internal error", NULL);
        return NULL;
    }
    b->c = c;
    b->done = done;
    b->sending = true;
    c->data = b;
    c->free_data = batch_free;
    return b;
}

static void batch_cmd(struct batch *b, int argc, const char **argv, const size_t *lens)
{
    int i = b->n++;
    b->slots[i] = (struct batch_slot){b, i};
    if (mutt_redis_command(mutt_redis_cmd(b->c->ctx->redis), on_batch_reply, &b->slots[i], argc, argv, lens) != 0)
        b->failed = true;
    else
        b->pending++;
}

static void batch_eval(struct batch *b, int script, int nkeys, const char **keys, const size_t *keylens)
{
    int i = b->n++;
    b->slots[i] = (struct batch_slot){b, i};
    if (mutt_redis_evalsha(mutt_redis_cmd(b->c->ctx->redis), script, nkeys, keys, keylens, 0, NULL, NULL,
                           on_batch_reply, &b->slots[i]) != 0)
        b->failed = true;
    else
        b->pending++;
}

/* All commands sent: the batch may complete now (even synchronously, when every send failed). */
static void batch_sent(struct batch *b)
{
    b->sending = false;
    batch_check(b);
}

static long long num(const json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* GET /metrics                                                                                */

#define METRICS_MINUTES 60
#define METRICS_HOURS 24
#define METRICS_KEY_MAX 192 /* "" when METRICS_PREFIX is too long for it: MGET answers nil, counted 0 */

struct metrics_extra {
    char labels[METRICS_HOURS][8];
};

static double round2(double v)
{
    return (double)(long long)(v * 100.0 + (v >= 0 ? 0.5 : -0.5)) / 100.0;
}

static void on_metrics(struct web_call *c, struct batch *b)
{
    struct metrics_extra *x = b->extra;
    /* vals: 0 MGET minutes (current minute first, then the 60 complete ones), 1 MGET hours,
     * 2..6 LLEN ingest alert dlq-alerter dlq-moog dlq-dead, 7 ZCARD retry, 8 GET breaker */
    json_t *mins = b->vals[0], *hours = b->vals[1];
    double sum15 = 0, sum60 = 0, last = num(json_array_get(mins, 1));
    for (int i = 1; i <= METRICS_MINUTES; i++) {
        long long v = num(json_array_get(mins, (size_t)i));
        sum60 += (double)v;
        if (i <= 15)
            sum15 += (double)v;
    }
    json_t *o = json_object();
    json_t *summary = json_object();
    json_object_set_new(summary, "current_rate_1m", json_real(round2(last)));
    json_object_set_new(summary, "avg_rate_15m", json_real(round2(sum15 / 15.0)));
    json_object_set_new(summary, "avg_rate_1h", json_real(round2(sum60 / 60.0)));
    json_object_set_new(summary, "current_minute", json_integer(num(json_array_get(mins, 0))));
    json_object_set_new(o, "summary", summary);
    json_t *labels = json_array(), *data = json_array();
    for (int i = METRICS_HOURS - 1; i >= 0; i--) { /* oldest first */
        json_array_append_new(labels, json_string(x->labels[i]));
        json_array_append_new(data, json_real(round2((double)num(json_array_get(hours, (size_t)i)) / 60.0)));
    }
    json_t *chart = json_object();
    json_object_set_new(chart, "labels", labels);
    json_object_set_new(chart, "data", data);
    json_object_set_new(o, "chart_24h", chart);
    json_t *queues = json_object();
    json_object_set_new(queues, "ingest", json_integer(num(b->vals[2])));
    json_object_set_new(queues, "alert", json_integer(num(b->vals[3])));
    json_object_set_new(queues, "retry", json_integer(num(b->vals[7])));
    json_object_set_new(o, "queues", queues);
    json_t *dl = json_object();
    json_object_set_new(dl, "alerter", json_integer(num(b->vals[4])));
    json_object_set_new(dl, "moog", json_integer(num(b->vals[5])));
    json_object_set_new(dl, "dead", json_integer(num(b->vals[6])));
    json_object_set_new(o, "dlq", dl);
    const char *bs = json_string_value(b->vals[8]);
    json_object_set_new(o, "breaker", json_pack("{s:s}", "state", bs && *bs ? bs : "CLOSED"));
    char iso[MUTT_TIME_ISO8601_MS_LEN];
    mutt_time_format_iso8601_ms(wall_ms(), iso, sizeof iso);
    json_object_set_new(o, "generated_at", json_string(iso));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    free(metrics_cache.body);
    metrics_cache.body = s;
    metrics_cache.len = strlen(s);
    metrics_cache.at_ms = uv_now(c->ctx->loop);
    web_reply_text(c, 200, s, metrics_cache.len);
}

static void fmt_utc(int64_t ms, const char *fmt, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, fmt, &tm);
}

void web_metrics(struct web_call *c)
{
    const struct mutt_config *cfg = c->ctx->cfg;
    uint64_t ttl_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_METRICS_CACHE_TTL) * 1000;
    if (metrics_cache.body && ttl_ms > 0 && uv_now(c->ctx->loop) - metrics_cache.at_ms < ttl_ms) {
        web_reply_text(c, 200, metrics_cache.body, metrics_cache.len);
        return;
    }
    struct batch *b = batch_new(c, on_metrics);
    if (!b)
        return;
    struct metrics_extra *x = calloc(1, sizeof *x);
    char (*mkeys)[METRICS_KEY_MAX] = calloc(METRICS_MINUTES + 1, sizeof *mkeys);
    char (*hkeys)[METRICS_KEY_MAX] = calloc(METRICS_HOURS, sizeof *hkeys);
    if (!x || !mkeys || !hkeys) {
        free(x);
        free(mkeys);
        free(hkeys);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    b->extra = x;
    const char *prefix = mutt_config_str(cfg, MUTT_CFG_METRICS_PREFIX);
    int64_t now = wall_ms();
    const char *argv[METRICS_MINUTES + 2];
    size_t lens[METRICS_MINUTES + 2];
    argv[0] = "MGET";
    lens[0] = 4;
    for (int i = 0; i <= METRICS_MINUTES; i++) {
        mutt_key_metrics(prefix, MUTT_KEY_METRICS_1M, now - (int64_t)i * 60000, mkeys[i], METRICS_KEY_MAX);
        argv[i + 1] = mkeys[i];
        lens[i + 1] = strlen(mkeys[i]);
    }
    batch_cmd(b, METRICS_MINUTES + 2, argv, lens);
    for (int i = 0; i < METRICS_HOURS; i++) {
        mutt_key_metrics(prefix, MUTT_KEY_METRICS_1H, now - (int64_t)i * 3600000, hkeys[i], METRICS_KEY_MAX);
        fmt_utc(now - (int64_t)i * 3600000, "%H:00", x->labels[i], sizeof x->labels[i]);
        argv[i + 1] = hkeys[i];
        lens[i + 1] = strlen(hkeys[i]);
    }
    batch_cmd(b, METRICS_HOURS + 1, argv, lens);
    free(mkeys);
    free(hkeys);
    const enum mutt_cfg_key lists[] = {MUTT_CFG_INGEST_QUEUE_NAME, MUTT_CFG_ALERT_QUEUE_NAME, MUTT_CFG_ALERTER_DLQ_NAME,
                                       MUTT_CFG_MOOG_DLQ_NAME, MUTT_CFG_DEAD_LETTER_QUEUE};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        const char *a[] = {"LLEN", mutt_config_str(cfg, lists[i])};
        size_t l[] = {4, strlen(a[1])};
        batch_cmd(b, 2, a, l);
    }
    const char *z[] = {"ZCARD", mutt_config_str(cfg, MUTT_CFG_MOOG_RETRY_KEY)};
    size_t zl[] = {5, strlen(z[1])};
    batch_cmd(b, 2, z, zl);
    const char *g[] = {"GET", MUTT_KEY_BREAKER_STATE};
    size_t gl[] = {3, strlen(MUTT_KEY_BREAKER_STATE)};
    batch_cmd(b, 2, g, gl);
    batch_sent(b);
}

/* ------------------------------------------------------------------------------------------ */
/* GET /dlq                                                                                    */

static void on_dlq(struct web_call *c, struct batch *b)
{
    json_t *o = json_object(), *all = json_object();
    for (int i = 0; i < NDLQ; i++) {
        json_t *d = json_object();
        json_object_set_new(d, "key", json_string(mutt_config_str(c->ctx->cfg, dlqs[i].key)));
        json_object_set_new(d, "depth", json_integer(num(b->vals[2 * i])));
        json_t *items = json_array();
        size_t idx;
        json_t *raw;
        json_array_foreach(b->vals[2 * i + 1], idx, raw)
        {
            const char *s = json_string_value(raw);
            json_t *parsed = s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
            json_array_append_new(items, parsed ? parsed : json_string(s ? s : ""));
        }
        json_object_set_new(d, "items", items);
        json_object_set_new(all, dlqs[i].name, d);
    }
    json_object_set_new(o, "dlqs", all);
    web_reply_obj(c, 200, o);
}

void web_dlq(struct web_call *c)
{
    struct batch *b = batch_new(c, on_dlq);
    if (!b)
        return;
    for (int i = 0; i < NDLQ; i++) {
        const char *key = mutt_config_str(c->ctx->cfg, dlqs[i].key);
        const char *a[] = {"LLEN", key};
        size_t l[] = {4, strlen(key)};
        batch_cmd(b, 2, a, l);
        const char *r[] = {"LRANGE", key, "0", "9"};
        size_t rl[] = {6, strlen(key), 1, 1};
        batch_cmd(b, 4, r, rl);
    }
    batch_sent(b);
}

/* ------------------------------------------------------------------------------------------ */
/* POST /dlq/{name}/replay                                                                     */

struct replay {
    const struct dlq_def *dlq;
    char dlq_key[256];
    char proc_key[320];
    long requested;   /* count asked for, then capped by the depth at start */
    long asked;
    long replayed;
    long skipped;
    char *item;       /* the item being moved (as popped) */
    char *rewritten;
    char target[256];
    char *reason;
    int redis_status; /* a Redis step failed: stop, audit what moved, answer 503 */
};

static void free_replay(void *p)
{
    struct replay *r = p;
    free(r->item);
    free(r->rewritten);
    free(r->reason);
    free(r);
}

static void replay_next(struct web_call *c);

static void on_replay_audited(struct web_call *c, PGresult *res)
{
    (void)res;
    struct replay *r = c->data;
    if (r->redis_status) {
        web_reply_error(c, 503, "Redis unavailable", NULL);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "dlq", json_string(r->dlq->name));
    json_object_set_new(o, "replayed", json_integer(r->replayed));
    json_object_set_new(o, "skipped", json_integer(r->skipped));
    json_object_set_new(o, "message", json_string("DLQ replay finished"));
    web_reply_obj(c, 200, o);
}

static void replay_finish(struct web_call *c)
{
    struct replay *r = c->data;
    if (r->replayed + r->skipped == 0 && web_answered(c)) {
        web_done(c); /* cut before it moved anything: no trace, and nobody to answer */
        return;
    }
    mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "DLQ %s: %ld replayed, %ld skipped by %s", r->dlq->name,
                r->replayed, r->skipped, c->changed_by);
    char newv[256];
    snprintf(newv, sizeof newv, "{\"dlq\":\"%s\",\"requested\":%ld,\"replayed\":%ld,\"skipped\":%ld}", r->dlq->name,
             r->asked, r->replayed, r->skipped);
    const char *vals[] = {c->changed_by, r->dlq->name, newv, r->reason, c->cid};
    web_query(c,
              "INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, new_values, reason, "
              "correlation_id) VALUES ($1, 'REPLAY', 'dlq', $2, $3::jsonb, $4, $5)",
              5, vals, on_replay_audited);
}

static void on_pushed(struct web_call *c, redisReply *reply)
{
    struct replay *r = c->data;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        if (strcmp(r->target, r->dlq_key) == 0)
            r->skipped++;
        else
            r->replayed++;
    }
    free(r->item);
    free(r->rewritten);
    r->item = r->rewritten = NULL;
    replay_next(c);
}

/* Where an item of this DLQ goes (D5): alerter -> ingest queue, moog -> alert queue, dead -> its
 * _origin. Unknown origin or unreadable item: back into its DLQ (counted as skipped). */
static void on_popped(struct web_call *c, redisReply *reply)
{
    struct replay *r = c->data;
    if (reply->type != REDIS_REPLY_STRING) { /* nil: the DLQ is empty */
        replay_finish(c);
        return;
    }
    r->item = strndup(reply->str, reply->len);
    json_t *o = json_loadb(reply->str, reply->len, 0, NULL);
    const struct mutt_config *cfg = c->ctx->cfg;
    const char *target = NULL;
    if (json_is_object(o)) {
        if (strcmp(r->dlq->name, "alerter") == 0) {
            target = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME);
        } else if (strcmp(r->dlq->name, "moog") == 0) {
            target = mutt_config_str(cfg, MUTT_CFG_ALERT_QUEUE_NAME);
        } else {
            const char *origin = json_string_value(json_object_get(o, "_origin"));
            if (origin && strcmp(origin, "ingest") == 0)
                target = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME);
            else if (origin && strcmp(origin, "alert") == 0)
                target = mutt_config_str(cfg, MUTT_CFG_ALERT_QUEUE_NAME);
        }
    }
    if (target) {
        json_int_t n = json_integer_value(json_object_get(o, "_replay_count"));
        json_object_set_new(o, "_replay_count", json_integer(n + 1));
        r->rewritten = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    struct mutt_lineage_args lin; /* D63: the replay is a step of the item's event */
    bool has_lin = target && r->rewritten &&
                   mutt_lineage_args_make(mutt_config_bool(cfg, MUTT_CFG_LINEAGE_ENABLED),
                                          mutt_config_int(cfg, MUTT_CFG_LINEAGE_TTL_SECONDS), o, MUTT_LINEAGE_REPLAY,
                                          json_pack("{s:s, s:s, s:s}", "from", r->dlq_key, "to", target, "by", "web"),
                                          wall_ms(), &lin);
    json_decref(o);
    if (!target || !r->rewritten) {
        target = r->dlq_key;
        free(r->rewritten);
        r->rewritten = strdup(r->item);
    }
    snprintf(r->target, sizeof r->target, "%s", target);
    if (!r->item || !r->rewritten) {
        if (has_lin)
            mutt_lineage_args_free(&lin);
        web_reply_error(c, 500, "internal error", NULL); /* the item stays in our list: recovered at start */
        return;
    }
    char bytes_key[MUTT_QUEUE_BYTES_KEY_MAX];
    bool to_ingest = strcmp(r->target, mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME)) == 0 &&
                     mutt_queue_bytes_key(r->target, bytes_key, sizeof bytes_key) == 0;
    const char *keys[] = {r->proc_key, r->target, bytes_key};
    size_t keylens[] = {strlen(keys[0]), strlen(keys[1]), to_ingest ? strlen(bytes_key) : 0};
    const char *args[7] = {r->item, r->rewritten, MUTT_SCRIPT_DLQ_MOVE_LREM};
    size_t arglens[7] = {strlen(r->item), strlen(r->rewritten), strlen(MUTT_SCRIPT_DLQ_MOVE_LREM)};
    for (int i = 0; has_lin && i < 4; i++) {
        args[3 + i] = lin.argv[i];
        arglens[3 + i] = lin.argl[i];
    }
    web_evalsha(c, script_push, to_ingest ? 3 : 2, keys, keylens, has_lin ? 7 : 3, args, arglens, on_pushed);
    if (has_lin)
        mutt_lineage_args_free(&lin);
}

/* A Redis step of the replay failed: the REPLAY row still records what was moved before. An item
 * caught between pop and push stays in our processing list; the next replay of this DLQ here
 * returns it first, and the janitor does if this pod dies. */
static void on_replay_redis_failed(struct web_call *c, int status)
{
    struct replay *r = c->data;
    c->on_redis_failed = NULL; /* the audit step is PostgreSQL only */
    if (r->replayed + r->skipped == 0) {
        web_reply_error(c, 503, "Redis unavailable", NULL); /* nothing moved: nothing to audit */
        return;
    }
    r->redis_status = status;
    replay_finish(c);
}

static void replay_next(struct web_call *c)
{
    struct replay *r = c->data;
    /* Cut by the deadline (the client already has its 503): stop between items, never inside
     * one, and write the REPLAY row for what moved. */
    if (r->replayed + r->skipped >= r->requested || web_answered(c)) {
        replay_finish(c);
        return;
    }
    const char *argv[] = {"RPOPLPUSH", r->dlq_key, r->proc_key};
    size_t lens[] = {9, strlen(r->dlq_key), strlen(r->proc_key)};
    web_redis(c, 3, argv, lens, on_popped);
}

/* One pass over what the DLQ holds now: an item that goes back (unreadable, unknown origin) is
 * not visited again, and items arriving meanwhile wait for the next replay. */
static void on_depth(struct web_call *c, redisReply *reply)
{
    struct replay *r = c->data;
    long long depth = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    if (depth < r->requested)
        r->requested = (long)depth;
    replay_next(c);
}

static void on_own_list_recovered(struct web_call *c, redisReply *reply)
{
    struct replay *r = c->data;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "returned %lld item(s) left in %s to %s", reply->integer,
                    r->proc_key, r->dlq_key);
    if (web_answered(c)) {
        replay_finish(c);
        return;
    }
    const char *argv[] = {"LLEN", r->dlq_key};
    size_t lens[] = {4, strlen(r->dlq_key)};
    web_redis(c, 2, argv, lens, on_depth);
}

void web_dlq_replay(struct web_call *c)
{
    const struct dlq_def *d = dlq_find(web_path_param(c, "name"));
    if (!d) {
        web_reply_error(c, 404, "unknown DLQ: use alerter, moog or dead", "name");
        return;
    }
    const char *reason = NULL;
    json_t *body = web_body_with_reason(c, true, &reason);
    if (!body)
        return;
    long count = REPLAY_DEFAULT;
    json_t *jc = json_object_get(body, "count");
    const char *qc = web_query_param(c, "count");
    if (jc) {
        if (!json_is_integer(jc) || json_integer_value(jc) < 1 || json_integer_value(jc) > REPLAY_MAX) {
            json_decref(body);
            web_reply_error(c, 400, "count must be an integer 1..10000", "count");
            return;
        }
        count = (long)json_integer_value(jc);
    } else if (qc) {
        char *end = NULL;
        count = strtol(qc, &end, 10);
        if (!*qc || *end || count < 1 || count > REPLAY_MAX) {
            json_decref(body);
            web_reply_error(c, 400, "count must be an integer 1..10000", "count");
            return;
        }
    }
    struct replay *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(body);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    r->dlq = d;
    r->requested = r->asked = count;
    r->reason = reason ? strdup(reason) : NULL;
    json_decref(body);
    snprintf(r->dlq_key, sizeof r->dlq_key, "%s", mutt_config_str(c->ctx->cfg, d->key));
    processing_key(c->ctx, d->name, r->proc_key, sizeof r->proc_key);
    c->data = r;
    c->free_data = free_replay;
    c->on_redis_failed = on_replay_redis_failed;
    /* First return what an earlier replay here left in our list (a Redis failure between pop and
     * push). Safe next to a concurrent replay of the same DLQ: its push LREMs the item first and
     * pushes nothing when the item went back (D5). */
    const char *rkeys[] = {r->proc_key, r->dlq_key};
    size_t rlens[] = {strlen(r->proc_key), strlen(r->dlq_key)};
    web_evalsha(c, script_recover, 2, rkeys, rlens, 0, NULL, NULL, on_own_list_recovered);
}

/* ------------------------------------------------------------------------------------------ */
/* GET /version, GET /slo                                                                      */

void web_version(struct web_call *c)
{
    char *s = mutt_api_version_body();
    if (!s) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_text(c, 200, s, strlen(s));
    free(s);
}

struct slo_extra {
    long window_hours[6];
};

/* /slo sums 6 windows of per-minute keys (up to 8640 HMGETs in Redis) per request, and a
 * read-only key may ask in a loop: the body is reused for SLO_CACHE_MS. */
#define SLO_CACHE_MS 1000
static struct {
    char *body; /* last /slo body (its "timestamp" says when it was computed) */
    size_t len;
    uint64_t at_ms; /* uv_now when computed */
} slo_cache;

/* Dynamic keys of each SLO (slo_<name>_*), in mutt_slo_defs order. */
static const struct {
    enum mutt_dyn_key window_hours, burn_warning, burn_critical;
} slo_keys[6] = {
    {MUTT_DYN_SLO_INGESTOR_AVAILABILITY_WINDOW_HOURS, MUTT_DYN_SLO_INGESTOR_AVAILABILITY_BURN_RATE_WARNING,
     MUTT_DYN_SLO_INGESTOR_AVAILABILITY_BURN_RATE_CRITICAL},
    {MUTT_DYN_SLO_INGESTOR_LATENCY_P99_WINDOW_HOURS, MUTT_DYN_SLO_INGESTOR_LATENCY_P99_BURN_RATE_WARNING,
     MUTT_DYN_SLO_INGESTOR_LATENCY_P99_BURN_RATE_CRITICAL},
    {MUTT_DYN_SLO_FORWARDER_AVAILABILITY_WINDOW_HOURS, MUTT_DYN_SLO_FORWARDER_AVAILABILITY_BURN_RATE_WARNING,
     MUTT_DYN_SLO_FORWARDER_AVAILABILITY_BURN_RATE_CRITICAL},
    {MUTT_DYN_SLO_FORWARDER_LATENCY_P99_WINDOW_HOURS, MUTT_DYN_SLO_FORWARDER_LATENCY_P99_BURN_RATE_WARNING,
     MUTT_DYN_SLO_FORWARDER_LATENCY_P99_BURN_RATE_CRITICAL},
    {MUTT_DYN_SLO_ALERTER_PROCESSING_SUCCESS_WINDOW_HOURS, MUTT_DYN_SLO_ALERTER_PROCESSING_SUCCESS_BURN_RATE_WARNING,
     MUTT_DYN_SLO_ALERTER_PROCESSING_SUCCESS_BURN_RATE_CRITICAL},
    {MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_WINDOW_HOURS,
     MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_BURN_RATE_WARNING,
     MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_BURN_RATE_CRITICAL},
};

static void on_slo(struct web_call *c, struct batch *b)
{
    struct slo_extra *x = b->extra;
    json_t *list = json_array();
    for (int i = 0; i < 6; i++) {
        const struct mutt_slo_def *def = &mutt_slo_defs[i];
        double good = (double)num(json_array_get(b->vals[i], 0)), total = (double)num(json_array_get(b->vals[i], 1));
        struct mutt_slo_result r;
        mutt_slo_evaluate(def, good, total, mutt_dynconfig_double(c->ctx->dyn, slo_keys[i].burn_warning),
                          mutt_dynconfig_double(c->ctx->dyn, slo_keys[i].burn_critical), &r);
        json_t *o = json_object();
        json_object_set_new(o, "slo_name", json_string(def->name));
        json_object_set_new(o, "description", json_string(def->description));
        json_object_set_new(o, "type", json_string(def->kind == MUTT_SLO_LATENCY ? "latency" : "availability"));
        json_object_set_new(o, "window_hours", json_integer(x->window_hours[i]));
        json_object_set_new(o, "target", json_real(def->target));
        if (def->kind == MUTT_SLO_LATENCY)
            json_object_set_new(o, "target_seconds", json_real(def->target_seconds));
        json_object_set_new(o, "actual_value", r.actual < 0 ? json_null() : json_real(r.actual));
        json_object_set_new(o, "status", json_string(r.status));
        json_object_set_new(o, "error_budget_remaining", json_real(r.budget_remaining));
        json_object_set_new(o, "burn_rate", json_real(r.burn_rate));
        json_object_set_new(o, "good", json_integer((json_int_t)good));
        json_object_set_new(o, "total", json_integer((json_int_t)total));
        json_object_set_new(o, "message", json_string(r.message));
        json_array_append_new(list, o);
    }
    char iso[MUTT_TIME_ISO8601_MS_LEN];
    mutt_time_format_iso8601_ms(wall_ms(), iso, sizeof iso);
    json_t *o = json_object();
    json_object_set_new(o, "timestamp", json_string(iso));
    json_object_set_new(o, "slos", list);
    char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!body) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    free(slo_cache.body);
    slo_cache.body = body;
    slo_cache.len = strlen(body);
    slo_cache.at_ms = uv_now(c->ctx->loop);
    web_reply_text(c, 200, body, slo_cache.len);
}

void web_slo(struct web_call *c)
{
    if (slo_cache.body && uv_now(c->ctx->loop) - slo_cache.at_ms < SLO_CACHE_MS) {
        web_reply_text(c, 200, slo_cache.body, slo_cache.len);
        return;
    }
    struct batch *b = batch_new(c, on_slo);
    if (!b)
        return;
    struct slo_extra *x = calloc(1, sizeof *x);
    char *keybuf = calloc(MUTT_SLO_MAX_MINUTES, MUTT_SLO_KEY_MAX);
    const char **keys = calloc(MUTT_SLO_MAX_MINUTES, sizeof *keys);
    size_t *lens = calloc(MUTT_SLO_MAX_MINUTES, sizeof *lens);
    if (!x || !keybuf || !keys || !lens) {
        free(x);
        free(keybuf);
        free(keys);
        free(lens);
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    b->extra = x;
    int64_t now = wall_ms();
    for (int i = 0; i < 6; i++) {
        long hours = (long)mutt_dynconfig_int(c->ctx->dyn, slo_keys[i].window_hours);
        if (hours < 1)
            hours = 24;
        long minutes = hours * 60;
        if (minutes > MUTT_SLO_MAX_MINUTES)
            minutes = MUTT_SLO_MAX_MINUTES;
        x->window_hours[i] = minutes / 60;
        for (long m = 0; m < minutes; m++) {
            char *k = keybuf + m * MUTT_SLO_KEY_MAX;
            mutt_slo_key(mutt_slo_defs[i].name, now - m * 60000, k, MUTT_SLO_KEY_MAX);
            keys[m] = k;
            lens[m] = strlen(k);
        }
        batch_eval(b, script_slo, (int)minutes, keys, lens);
    }
    free(keybuf);
    free(keys);
    free(lens);
    batch_sent(b);
}

/* ------------------------------------------------------------------------------------------ */
/* GET /unhandled (D14): the alert stage's store, read from Redis so any web pod answers       */

static json_t *reply_str(const redisReply *r)
{
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        return json_stringn(r->str, r->len);
    return json_string("");
}

/* The top script's reply as the D14 body {"unhandled":[{hostname, template, count, sample,
 * first_seen, last_seen}]} (malloc'd). Returns 0, MUTT_EIO (bad reply) or MUTT_ENOMEM. */
static int unhandled_top_json(const redisReply *reply, char **out, size_t *len)
{
    *out = NULL;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return MUTT_EIO;
    json_t *list = json_array();
    for (size_t i = 0; list && i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 6)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "hostname", reply_str(e->element[0]));
        json_object_set_new(o, "template", reply_str(e->element[1]));
        long long count = 0;
        if (e->element[2]->type == REDIS_REPLY_STRING)
            count = strtoll(e->element[2]->str, NULL, 10);
        json_object_set_new(o, "count", json_integer(count));
        json_object_set_new(o, "sample", reply_str(e->element[3]));
        json_object_set_new(o, "first_seen", reply_str(e->element[4]));
        json_object_set_new(o, "last_seen", reply_str(e->element[5]));
        json_array_append_new(list, o);
    }
    json_t *body = json_object();
    if (!list || !body || json_object_set_new(body, "unhandled", list) != 0) {
        json_decref(body);
        return MUTT_ENOMEM;
    }
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!s)
        return MUTT_ENOMEM;
    *out = s;
    *len = strlen(s);
    return 0;
}

static void on_unhandled_top(struct web_call *c, redisReply *reply)
{
    char *body = NULL;
    size_t len = 0;
    if (unhandled_top_json(reply, &body, &len) != 0) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_text(c, 200, body, len);
    free(body);
}

void web_unhandled(struct web_call *c)
{
    long limit = MUTT_SCRIPT_UNHANDLED_TOP_LIMIT;
    const char *lim = web_query_param(c, "limit");
    if (lim) {
        char *end = NULL;
        long v = strtol(lim, &end, 10);
        if (!*lim || *end || v < 1) {
            web_reply_error(c, 400, "limit must be a positive integer", "limit");
            return;
        }
        if (v < limit)
            limit = v;
    }
    const char *prefix = mutt_config_str(c->ctx->cfg, MUTT_CFG_UNHANDLED_PREFIX);
    char top_key[300], info_prefix[300], lbuf[24], pages[24];
    snprintf(top_key, sizeof top_key, "%s" MUTT_UNHANDLED_TOP_SUFFIX, prefix);
    snprintf(info_prefix, sizeof info_prefix, "%s" MUTT_UNHANDLED_INFO_SUFFIX, prefix);
    snprintf(lbuf, sizeof lbuf, "%ld", limit);
    snprintf(pages, sizeof pages, "%d", MUTT_SCRIPT_UNHANDLED_TOP_PAGES);
    const char *keys[] = {top_key};
    const char *args[] = {info_prefix, lbuf, pages};
    web_evalsha(c, script_unhandled, 1, keys, NULL, 3, args, NULL, on_unhandled_top);
}
