/* Maintenance windows in the alert stage (issue 16 §3, D40 D42): keeps this pod's copy of the
 * windows (re-read from PostgreSQL on every PUBLISH mutt:maintenance:updates, after a pub/sub
 * reconnect and every WINDOWS_RELOAD_MS), answers "which window holds this event" (the pure
 * domain/maintenance.c decides), keeps the per-window counts of suppressed events (and of the
 * unhandled-event meta-alerts a window held) in Redis and sends each ended window's one summary
 * alert.
 * Counts: suppressed completions are tallied in memory and written every FLUSH_MS by ONE script
 * call for all windows (never a round trip per event); the hash lives in Redis, so a restart or
 * another pod sending the summary sees them. A crash loses at most the last FLUSH_MS of counts.
 * Summary: SUMMARY_GRACE_MS after a window ends (so every pod has flushed) each pod tries a
 * SET NX claim; the one that wins reads the hash, pushes the summary to the alert queue and
 * marks the claim sent, in one script. A claim whose pod died before sending expires after
 * CLAIM_TTL_S and another pod sends it. Loop thread only; one instance per process (static,
 * because the pub/sub subscription cannot be removed). */
#define _GNU_SOURCE
#include "alert_internal.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/maintenance.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/uuid.h"

#define FLUSH_MS 250u               /* counts held in memory at most this long */
#define WINDOWS_RELOAD_MS 30000u    /* fallback when a PUBLISH was missed */
#define SUMMARY_GRACE_MS 3000       /* after ends_at: every pod has flushed and seen a delete */
#define CLAIM_TTL_S 60              /* a claim not marked sent by then can be taken by another pod */
#define SENT_TTL_S (31 * 86400)     /* a sent summary stays marked longer than any window is loaded */
#define COUNTS_TTL_S (32 * 86400)   /* the longest window (30 days) plus its summary */
#define HOST_FIELDS_MAX 2000        /* fields per window hash; hosts past it go to "o" ("uo" for meta-alerts) */
#define MAX_WINDOWS 1000            /* windows loaded (the newest by end) */
#define DONE_MAX 1024               /* ended windows whose summary this pod no longer handles */
#define KEY_PREFIX "mutt:maintenance"

static const char LOAD_SQL[] =
    "SELECT id, hostname_pattern, COALESCE(team, ''), (extract(epoch FROM starts_at) * 1000)::bigint, "
    "(extract(epoch FROM ends_at) * 1000)::bigint, summary, reason FROM maintenance_windows "
    "WHERE ends_at > now() - interval '1 day' ORDER BY ends_at DESC, id LIMIT 1000";

/* KEYS: one count hash per window. ARGV[1] ttl, ARGV[2] host cap, then per window: nfields,
 * first ms, last ms, and nfields (field, increment) pairs. */
static const char FLUSH_LUA[] =
    "local ttl, cap, a = tonumber(ARGV[1]), tonumber(ARGV[2]), 3\n"
    "for i = 1, #KEYS do\n"
    "  local k = KEYS[i]\n"
    "  local nf, first, last = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]\n"
    "  a = a + 3\n"
    "  for j = 1, nf do\n"
    "    local f, inc = ARGV[a], tonumber(ARGV[a + 1])\n"
    "    a = a + 2\n"
    "    local p = string.sub(f, 1, 2)\n"
    "    if (p == 'h:' or p == 'u:') and redis.call('HEXISTS', k, f) == 0 and redis.call('HLEN', k) >= cap then\n"
    "      f = p == 'u:' and 'uo' or 'o'\n"
    "    end\n"
    "    redis.call('HINCRBY', k, f, inc)\n"
    "  end\n"
    "  local f0 = tonumber(redis.call('HGET', k, 'first'))\n"
    "  if not f0 or tonumber(first) < f0 then redis.call('HSET', k, 'first', first) end\n"
    "  local l0 = tonumber(redis.call('HGET', k, 'last'))\n"
    "  if not l0 or tonumber(last) > l0 then redis.call('HSET', k, 'last', last) end\n"
    "  redis.call('EXPIRE', k, ttl)\n"
    "end\n"
    "return #KEYS\n";

/* KEYS[1] claim, KEYS[2] counts. ARGV[1] pod, ARGV[2] claim ttl. nil when another pod holds or
 * sent it, else the counts (HGETALL). */
static const char CLAIM_LUA[] =
    "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return false end\n"
    "return redis.call('HGETALL', KEYS[2])\n";

/* KEYS[1] claim, KEYS[2] counts, KEYS[3] alert queue. ARGV[1] pod, ARGV[2] the summary alert,
 * ARGV[3] sent ttl. Pushes only while the claim is still ours: 1 sent, 0 claim lost. */
static const char SEND_LUA[] =
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
    "redis.call('LPUSH', KEYS[3], ARGV[2])\n"
    "redis.call('SET', KEYS[1], 'sent', 'EX', ARGV[3])\n"
    "redis.call('DEL', KEYS[2])\n"
    "return 1\n";

/* A loaded window: the domain struct plus the strings it borrows (owned here). */
struct loaded {
    struct mutt_maint_window *w; /* n windows; their strings point into the same block's strs */
    char **strs;                 /* 3 per window: pattern, team, reason */
    char **reasons;              /* reasons[i] (may be NULL) */
    size_t n;
};

/* In-memory tally of one window since the last flush. */
struct tally {
    int64_t window_id;
    json_t *fields; /* field -> integer */
    int64_t first_ms, last_ms;
};

static struct maint {
    struct mutt_ctx *ctx;
    bool running;               /* between start and stop */
    bool subscribed;            /* once per process: the subscription stays */
    const char *alert_queue;    /* borrowed from cfg */
    int flush_script, claim_script, send_script;
    struct loaded win;
    bool loading, reload_again;
    struct tally *tallies;
    size_t ntallies, captallies;
    bool flushing;
    int64_t done[DONE_MAX];     /* ended windows this pod need not look at again */
    size_t ndone;
    int64_t claiming;           /* window id whose claim/send is in flight (0 = none) */
    int64_t retry_after_ms;     /* no summary attempt before this (after a Redis failure) */
    size_t inflight;            /* PG loads and Redis calls not yet answered */
    uv_timer_t tick;            /* flush + summary check every FLUSH_MS */
    uint64_t last_load_ms;      /* loop time of the last load started */
    bool timer_open;
    void (*stopped)(void *);
    void *stopped_priv;
    struct mutt_counter *suppressed;
    struct mutt_counter *unhandled_suppressed;
    struct mutt_counter *summaries;
} g;

static void maybe_stopped(void);
static void finish_if_idle(void);
static void load_windows(const char *why);

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void loaded_free(struct loaded *l)
{
    for (size_t i = 0; l->strs && i < l->n * 3; i++)
        free(l->strs[i]);
    free(l->strs);
    free(l->w);
    free(l->reasons);
    memset(l, 0, sizeof *l);
}

static bool is_done(int64_t id)
{
    for (size_t i = 0; i < g.ndone; i++)
        if (g.done[i] == id)
            return true;
    return false;
}

static void mark_done(int64_t id)
{
    if (is_done(id))
        return;
    if (g.ndone == DONE_MAX) { /* oldest out: it would only cost one more claim attempt */
        memmove(g.done, g.done + 1, (DONE_MAX - 1) * sizeof g.done[0]);
        g.ndone--;
    }
    g.done[g.ndone++] = id;
}

/* ------------------------------------------------------------------------------------------ */
/* windows from PostgreSQL                                                                     */

static int build_loaded(PGresult *res, struct loaded *out)
{
    size_t n = (size_t)PQntuples(res);
    memset(out, 0, sizeof *out);
    if (n == 0)
        return 0;
    out->w = calloc(n, sizeof *out->w);
    out->strs = calloc(n * 3, sizeof *out->strs);
    out->reasons = calloc(n, sizeof *out->reasons);
    out->n = n;
    if (!out->w || !out->strs || !out->reasons)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        char **s = &out->strs[i * 3];
        s[0] = strdup(PQgetvalue(res, r, 1));
        s[1] = strdup(PQgetvalue(res, r, 2));
        s[2] = PQgetisnull(res, r, 6) ? NULL : strdup(PQgetvalue(res, r, 6));
        if (!s[0] || !s[1] || (!PQgetisnull(res, r, 6) && !s[2]))
            goto oom;
        out->w[i] = (struct mutt_maint_window){
            .id = strtoll(PQgetvalue(res, r, 0), NULL, 10),
            .hostname_pattern = s[0],
            .team = s[1][0] ? s[1] : NULL,
            .starts_ms = strtoll(PQgetvalue(res, r, 3), NULL, 10),
            .ends_ms = strtoll(PQgetvalue(res, r, 4), NULL, 10),
            .summary = PQgetvalue(res, r, 5)[0] == 't',
        };
        out->reasons[i] = s[2];
    }
    return 0;
oom:
    loaded_free(out);
    return MUTT_ENOMEM;
}

static void on_loaded(void *priv, PGresult *res, int status)
{
    (void)priv;
    g.inflight--;
    g.loading = false;
    if (!g.running) {
        maybe_stopped();
        return;
    }
    struct loaded l;
    if (status != 0 || !res || PQnfields(res) != 7) {
        /* keep the previous windows: a failed read must not end a window early */
        mutt_log_warn("alert", "maintenance windows not re-read (%s)%s%s", mutt_strerror(status),
                      res ? ": " : "", res ? PQresultErrorMessage(res) : "");
    } else if (build_loaded(res, &l) != 0) {
        mutt_log_warn("alert", "maintenance windows not re-read: out of memory");
    } else {
        loaded_free(&g.win);
        g.win = l;
        /* forget done ids of windows no longer loaded (the list stays bounded by what is loaded) */
        size_t k = 0;
        for (size_t i = 0; i < g.ndone; i++) {
            bool present = false;
            for (size_t j = 0; j < g.win.n && !present; j++)
                present = g.win.w[j].id == g.done[i];
            if (present)
                g.done[k++] = g.done[i];
        }
        g.ndone = k;
    }
    if (g.reload_again) {
        g.reload_again = false;
        load_windows("update during a load");
    }
}

static void load_windows(const char *why)
{
    if (!g.running)
        return;
    if (g.loading) {
        g.reload_again = true; /* a change arrived while the previous read ran: read once more */
        return;
    }
    g.last_load_ms = uv_now(g.ctx->loop);
    int rc = mutt_pg_query(g.ctx->pg, LOAD_SQL, 0, NULL, (mutt_pg_result_cb *)on_loaded, NULL);
    if (rc != 0) {
        mutt_log_debug("alert", "maintenance windows read (%s) not started: %s", why, mutt_strerror(rc));
        return;
    }
    g.loading = true;
    g.inflight++;
}

static void on_update(void *priv, const char *channel, const char *message, size_t len)
{
    load_windows("update");
}

static void on_pubsub_state(void *priv, struct mutt_redis_conn *conn, bool connected)
{
    if (connected)
        load_windows("pub/sub reconnect"); /* a PUBLISH sent while disconnected is lost */
}

/* ------------------------------------------------------------------------------------------ */
/* counts                                                                                      */

static struct tally *tally_of(int64_t window_id)
{
    for (size_t i = 0; i < g.ntallies; i++)
        if (g.tallies[i].window_id == window_id)
            return &g.tallies[i];
    if (g.ntallies == g.captallies) {
        size_t cap = g.captallies ? g.captallies * 2 : 4;
        struct tally *t = realloc(g.tallies, cap * sizeof *t);
        if (!t)
            return NULL;
        g.tallies = t;
        g.captallies = cap;
    }
    json_t *fields = json_object();
    if (!fields)
        return NULL;
    struct tally *t = &g.tallies[g.ntallies++];
    *t = (struct tally){.window_id = window_id, .fields = fields, .first_ms = INT64_MAX, .last_ms = INT64_MIN};
    return t;
}

static void bump(json_t *fields, const char *name)
{
    json_t *v = json_object_get(fields, name);
    if (v)
        json_integer_set(v, json_integer_value(v) + 1);
    else
        json_object_set_new(fields, name, json_integer(1));
}

static void clear_tallies(void)
{
    for (size_t i = 0; i < g.ntallies; i++)
        json_decref(g.tallies[i].fields);
    g.ntallies = 0;
}

static void on_flushed(void *priv, redisReply *reply, int status)
{
    (void)priv;
    g.inflight--;
    g.flushing = false;
    if (status != 0 || !reply || reply->type == REDIS_REPLY_ERROR)
        mutt_log_warn("alert", "maintenance counts not written (%s%s%s): they are lost for the summaries",
                      mutt_strerror(status ? status : MUTT_EIO), reply && reply->type == REDIS_REPLY_ERROR ? ": " : "",
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "");
    maybe_stopped();
}

/* One script call writes every window's tally. The tallies are cleared when sent: a failed call
 * loses them (logged) rather than risking counting them twice. */
static void flush(void)
{
    if (g.flushing || g.ntallies == 0)
        return;
    size_t nkeys = g.ntallies, nargs = 2;
    for (size_t i = 0; i < g.ntallies; i++)
        nargs += 3 + 2 * json_object_size(g.tallies[i].fields);
    const char **keys = calloc(nkeys, sizeof *keys), **args = calloc(nargs, sizeof *args);
    size_t *keylens = calloc(nkeys, sizeof *keylens), *arglens = calloc(nargs, sizeof *arglens);
    char *nums = calloc(nkeys * 3 + nargs, 24); /* number text: keys, nfields/first/last, increments */
    char (*keybuf)[64] = calloc(nkeys, 64);
    size_t a = 0, nn = 0;
    if (!keys || !args || !keylens || !arglens || !nums || !keybuf)
        goto out;
#define NUM(v) (snprintf(nums + nn * 24, 24, "%lld", (long long)(v)), nums + (nn++) * 24)
    args[a++] = NUM(COUNTS_TTL_S);
    args[a++] = NUM(HOST_FIELDS_MAX);
    for (size_t i = 0; i < g.ntallies; i++) {
        struct tally *t = &g.tallies[i];
        snprintf(keybuf[i], 64, KEY_PREFIX ":counts:%lld", (long long)t->window_id);
        keys[i] = keybuf[i];
        args[a++] = NUM(json_object_size(t->fields));
        args[a++] = NUM(t->first_ms);
        args[a++] = NUM(t->last_ms);
        const char *f;
        json_t *v;
        json_object_foreach(t->fields, f, v) {
            args[a++] = f;
            args[a++] = NUM(json_integer_value(v));
        }
    }
#undef NUM
    for (size_t i = 0; i < nkeys; i++)
        keylens[i] = strlen(keys[i]);
    for (size_t i = 0; i < a; i++)
        arglens[i] = strlen(args[i]);
    if (mutt_redis_evalsha(mutt_redis_cmd(g.ctx->redis), g.flush_script, (int)nkeys, keys, keylens, (int)a, args,
                           arglens, on_flushed, NULL) == 0) {
        g.flushing = true;
        g.inflight++;
    } else {
        mutt_log_warn("alert", "maintenance counts not written (Redis unavailable): they are lost for the summaries");
    }
out:
    /* every argument was copied by the call (or the call failed): the tallies go either way */
    clear_tallies();
    free(keys);
    free(args);
    free(keylens);
    free(arglens);
    free(nums);
    free(keybuf);
}

/* ------------------------------------------------------------------------------------------ */
/* summaries                                                                                   */

struct summary_op {
    struct mutt_maint_window w;
    char pattern[MUTT_MAINT_PATTERN_MAX + 1], team[MUTT_MAINT_TEAM_MAX + 1];
    char *reason;
    char claim_key[64], counts_key[64];
};

static void summary_op_free(struct summary_op *op)
{
    free(op->reason);
    free(op);
}

static void summary_failed(struct summary_op *op, const char *what, int status)
{
    mutt_log_warn("alert", "maintenance window %lld: summary %s (%s); retrying later", (long long)op->w.id, what,
                  mutt_strerror(status));
    g.retry_after_ms = wall_ms() + 5000;
}

static void on_sent(void *priv, redisReply *reply, int status)
{
    struct summary_op *op = priv;
    g.inflight--;
    g.claiming = 0;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER) {
        mark_done(op->w.id);
        if (reply->integer == 1) {
            mutt_counter_inc(g.summaries);
            mutt_log_info("alert", "maintenance window %lld ended: summary alert queued", (long long)op->w.id);
        }
    } else {
        /* our claim expires and this pod or another sends it then */
        summary_failed(op, "not pushed", status ? status : MUTT_EIO);
    }
    summary_op_free(op);
    maybe_stopped();
}

static void on_claimed(void *priv, redisReply *reply, int status)
{
    struct summary_op *op = priv;
    g.inflight--;
    if (status != 0 || !reply || (reply->type != REDIS_REPLY_NIL && reply->type != REDIS_REPLY_ARRAY)) {
        summary_failed(op, "claim failed", status ? status : MUTT_EIO);
        goto done;
    }
    if (reply->type == REDIS_REPLY_NIL) { /* another pod has it, or it was sent */
        mark_done(op->w.id);
        goto done;
    }
    size_t n = reply->elements / 2;
    const char **fields = calloc(n ? n : 1, sizeof *fields), **values = calloc(n ? n : 1, sizeof *values);
    if (!fields || !values) {
        free(fields);
        free(values);
        summary_failed(op, "not built", MUTT_ENOMEM);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = reply->element[2 * i], *v = reply->element[2 * i + 1];
        fields[i] = f->type == REDIS_REPLY_STRING ? f->str : NULL;
        values[i] = v->type == REDIS_REPLY_STRING ? v->str : NULL;
    }
    uint8_t rnd[16];
    char event_id[MUTT_UUID_STR_LEN];
    mutt_random_bytes(rnd, sizeof rnd);
    mutt_uuid_v4_format(rnd, event_id);
    json_t *alert = mutt_maint_summary_alert(&op->w, op->reason,
                                             mutt_config_str(g.ctx->cfg, MUTT_CFG_UNHANDLED_DEFAULT_TEAM), fields,
                                             values, n, event_id);
    free(fields);
    free(values);
    char *s = NULL;
    size_t len = 0;
    if (!alert || mutt_event_dump_alloc(alert, &s, &len) != 0) {
        json_decref(alert);
        summary_failed(op, "not built", MUTT_ENOMEM);
        goto done;
    }
    json_decref(alert);
    const char *keys[] = {op->claim_key, op->counts_key, g.alert_queue};
    size_t keylens[] = {strlen(op->claim_key), strlen(op->counts_key), strlen(g.alert_queue)};
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", SENT_TTL_S);
    const char *args[] = {g.ctx->pod_name, s, ttl};
    size_t arglens[] = {strlen(g.ctx->pod_name), len, strlen(ttl)};
    int rc = mutt_redis_evalsha(mutt_redis_cmd(g.ctx->redis), g.send_script, 3, keys, keylens, 3, args, arglens,
                                on_sent, op);
    free(s);
    if (rc != 0) {
        summary_failed(op, "not pushed", rc);
        goto done;
    }
    g.inflight++;
    return; /* on_sent owns op */
done:
    g.claiming = 0;
    summary_op_free(op);
    maybe_stopped();
}

/* The first loaded window that ended SUMMARY_GRACE_MS ago, wants a summary and is not done:
 * claim it. One claim at a time keeps this simple; windows rarely end together. */
static void check_summaries(int64_t now_ms)
{
    if (g.claiming || now_ms < g.retry_after_ms || !mutt_redis_connected(g.ctx->redis))
        return;
    for (size_t i = 0; i < g.win.n; i++) {
        const struct mutt_maint_window *w = &g.win.w[i];
        if (now_ms < w->ends_ms + SUMMARY_GRACE_MS || is_done(w->id))
            continue;
        if (!w->summary) {
            mark_done(w->id);
            continue;
        }
        struct summary_op *op = calloc(1, sizeof *op);
        if (!op)
            return;
        op->w = *w;
        snprintf(op->pattern, sizeof op->pattern, "%s", w->hostname_pattern);
        snprintf(op->team, sizeof op->team, "%s", w->team ? w->team : "");
        op->w.hostname_pattern = op->pattern;
        op->w.team = op->team[0] ? op->team : NULL;
        op->reason = g.win.reasons[i] ? strdup(g.win.reasons[i]) : NULL;
        snprintf(op->claim_key, sizeof op->claim_key, KEY_PREFIX ":summary:%lld", (long long)w->id);
        snprintf(op->counts_key, sizeof op->counts_key, KEY_PREFIX ":counts:%lld", (long long)w->id);
        const char *keys[] = {op->claim_key, op->counts_key};
        size_t keylens[] = {strlen(op->claim_key), strlen(op->counts_key)};
        char ttl[24];
        snprintf(ttl, sizeof ttl, "%d", CLAIM_TTL_S);
        const char *args[] = {g.ctx->pod_name, ttl};
        size_t arglens[] = {strlen(g.ctx->pod_name), strlen(ttl)};
        if (mutt_redis_evalsha(mutt_redis_cmd(g.ctx->redis), g.claim_script, 2, keys, keylens, 2, args, arglens,
                               on_claimed, op) != 0) {
            summary_op_free(op);
            return;
        }
        g.claiming = w->id;
        g.inflight++;
        return;
    }
}

static void on_tick(uv_timer_t *t)
{
    flush();
    check_summaries(wall_ms());
    if (uv_now(g.ctx->loop) - g.last_load_ms >= WINDOWS_RELOAD_MS)
        load_windows("interval");
}

/* ------------------------------------------------------------------------------------------ */
/* the stage's calls                                                                           */

int alert_maint_register(struct mutt_ctx *ctx)
{
    g.suppressed = mutt_metrics_counter(ctx->metrics, "mutt_maintenance_suppressed_total",
                                        "Matched events held by a maintenance window (audited, not forwarded)", NULL);
    g.unhandled_suppressed =
        mutt_metrics_counter(ctx->metrics, "mutt_maintenance_unhandled_suppressed_total",
                             "Unhandled-event meta-alerts held by a maintenance window (not forwarded)", NULL);
    g.summaries = mutt_metrics_counter(ctx->metrics, "mutt_maintenance_summaries_total",
                                       "Maintenance window summary alerts queued by this pod", NULL);
    if (!g.suppressed || !g.unhandled_suppressed || !g.summaries)
        return MUTT_ENOMEM;
    return 0;
}

int alert_maint_start(struct mutt_ctx *ctx, const char *alert_queue)
{
    if (g.running)
        return MUTT_ESTATE;
    g.ctx = ctx;
    g.alert_queue = alert_queue;
    g.ndone = 0;
    g.claiming = 0;
    g.retry_after_ms = 0;
    g.stopped = NULL;
    if ((g.flush_script = mutt_redis_script_register(ctx->redis, "maint_flush", FLUSH_LUA)) < 0)
        return g.flush_script;
    if ((g.claim_script = mutt_redis_script_register(ctx->redis, "maint_claim", CLAIM_LUA)) < 0)
        return g.claim_script;
    if ((g.send_script = mutt_redis_script_register(ctx->redis, "maint_send", SEND_LUA)) < 0)
        return g.send_script;
    if (!g.subscribed) {
        int rc = mutt_redis_subscribe(ctx->redis, MUTT_KEY_MAINT_CHANNEL, on_update, NULL);
        if (rc != 0)
            return rc;
        struct mutt_redis_conn *ps = mutt_redis_pubsub(ctx->redis);
        if (ps)
            mutt_redis_conn_on_state(ps, on_pubsub_state, NULL);
        g.subscribed = true;
    }
    uv_timer_init(ctx->loop, &g.tick);
    g.timer_open = true;
    g.running = true;
    uv_timer_start(&g.tick, on_tick, FLUSH_MS, FLUSH_MS);
    load_windows("start");
    return 0;
}

const struct mutt_maint_window *alert_maint_match(const char *hostname, const char *team, int64_t now_ms)
{
    if (!g.running)
        return NULL;
    return mutt_maint_match(g.win.w, g.win.n, hostname, team, now_ms);
}

void alert_maint_count(const struct alert_maint_hit *hit, int64_t now_ms)
{
    /* a held meta-alert has a counter of its own: mutt_maintenance_suppressed_total keeps
     * counting matched events only, as it always did */
    mutt_counter_inc(hit->unhandled ? g.unhandled_suppressed : g.suppressed);
    if (!hit->summary || !g.running)
        return; /* after stop's final flush a tally would never be written */
    struct tally *t = tally_of(hit->window_id);
    if (!t)
        return; /* OOM: one event missing from a summary */
    char f[32 + 256];
    if (hit->unhandled) {
        snprintf(f, sizeof f, MUTT_MAINT_FIELD_UNHANDLED_PREFIX "%s", hit->hostname ? hit->hostname : "");
        bump(t->fields, f);
    } else {
        bump(t->fields, MUTT_MAINT_FIELD_TOTAL);
        snprintf(f, sizeof f, MUTT_MAINT_FIELD_RULE_PREFIX "%lld", (long long)hit->rule_id);
        bump(t->fields, f);
        snprintf(f, sizeof f, MUTT_MAINT_FIELD_HOST_PREFIX "%s", hit->hostname ? hit->hostname : "");
        bump(t->fields, f);
    }
    if (now_ms < t->first_ms)
        t->first_ms = now_ms;
    if (now_ms > t->last_ms)
        t->last_ms = now_ms;
}

/* The final flush has to reach Redis before the pod goes: stop waits for every call in flight. */
static void finish_if_idle(void)
{
    if (g.running || !g.stopped || g.inflight > 0 || g.timer_open)
        return;
    void (*cb)(void *) = g.stopped;
    g.stopped = NULL;
    loaded_free(&g.win);
    clear_tallies();
    free(g.tallies);
    g.tallies = NULL;
    g.captallies = 0;
    cb(g.stopped_priv);
}

static void maybe_stopped(void)
{
    finish_if_idle();
}

static void on_tick_closed(uv_handle_t *h)
{
    (void)h;
    g.timer_open = false;
    finish_if_idle();
}

void alert_maint_stop(void (*done)(void *), void *priv)
{
    if (!g.running) {
        done(priv);
        return;
    }
    flush();
    g.running = false;
    g.stopped = done;
    g.stopped_priv = priv;
    uv_close((uv_handle_t *)&g.tick, on_tick_closed);
}
