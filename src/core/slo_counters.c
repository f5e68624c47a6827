/* SLO counter writer (see include/mutt/slo_counters.h): per-minute good/total sums held in a
 * small sorted array, moved out as one snapshot per flush and merged back when the flush fails.
 * The Redis side is one Lua script per flush, so a flush is applied whole or not at all (a
 * pipeline of HINCRBYs could half-apply and then be retried whole; only a connection lost after
 * the script ran makes a retry count twice). Loop thread only. */
#include "mutt/slo_counters.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/redis.h"
#include "mutt/slo.h"

/* KEYS: the minute hashes; ARGV[1]: TTL in s, then per key its good and total. Every key's type
 * is checked before the first write, so a foreign value under our name fails the flush without
 * half-applying it (a Lua runtime error does not roll back earlier writes). */
static const char LUA_SLO_ADD[] =
    "for _, k in ipairs(KEYS) do local t = redis.call('TYPE', k).ok "
    "if t ~= 'hash' and t ~= 'none' then return redis.error_reply('WRONGTYPE ' .. k .. ' is a ' .. t) end end "
    "local ttl = ARGV[1] "
    "for i, k in ipairs(KEYS) do "
    "redis.call('HINCRBY', k, 'good', ARGV[2 * i]) "
    "redis.call('HINCRBY', k, 'total', ARGV[2 * i + 1]) "
    "redis.call('EXPIRE', k, ttl) "
    "end "
    "return #KEYS";

#define NUM_LEN 24 /* a uint64 in decimal, NUL included */

struct minute_counts {
    int64_t minute; /* epoch minutes (UTC) */
    uint64_t good[MUTT_SLO_COUNT_];
    uint64_t total[MUTT_SLO_COUNT_];
};

enum stop_phase {
    STOP_NONE = 0,   /* running (or not started) */
    STOP_WAIT,       /* stop asked while a flush was out: the last flush follows its reply */
    STOP_FINAL_SENT, /* the last flush is out */
    STOP_DONE,       /* the stop callback has run */
};

struct mutt_slo_counters {
    uv_loop_t *loop;
    struct mutt_redis *redis;
    uv_timer_t timer;          /* flush tick; after stop, the stop deadline */
    int script_id;
    uint64_t flush_interval_ms;
    uint64_t stop_timeout_ms;
    size_t cap;                /* max_pending_minutes */
    char ttl_arg[NUM_LEN];
    mutt_slo_clock_cb *clock;
    void *clock_arg;
    int64_t wall_offset_ms;    /* wall clock - uv_now, refreshed each tick */

    struct minute_counts *pending; /* sorted by minute, oldest first */
    size_t npending;
    struct minute_counts *sending; /* the snapshot of the flush in flight */
    size_t nsending;
    bool flushing;
    bool failing;              /* the last flush failed (log transitions only) */

    /* scratch for one flush: cap * MUTT_SLO_COUNT_ keys and 1 + 2 * that many arguments */
    char *keybuf;
    const char **keys;
    size_t *keylens;
    char *argbuf;
    const char **args;
    size_t *arglens;

    bool started;
    enum stop_phase stop_phase;
    mutt_slo_counters_stopped_cb *stop_cb;
    void *stop_priv;
    bool destroying, timer_closed;

    uint64_t flushes, flush_failures, dropped_minutes;
    struct mutt_counter *m_failures;
    struct mutt_counter *m_dropped;
    struct mutt_gauge *m_pending;
};

static void flush(struct mutt_slo_counters *s);

/* ------------------------------------------------------------------------------------------ */
/* clock and the pending minutes                                                               */

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* The hot path reads the loop's cached time plus an offset instead of a clock syscall per
 * request; the offset follows wall-clock steps at the next tick. */
static int64_t now_ms(const struct mutt_slo_counters *s)
{
    if (s->clock)
        return s->clock(s->clock_arg);
    return (int64_t)uv_now(s->loop) + s->wall_offset_ms;
}

static void update_gauge(struct mutt_slo_counters *s)
{
    mutt_gauge_set(s->m_pending, (double)(s->npending + s->nsending));
}

/* Counts and logs one minute of counts given up (Redis away longer than the cap). */
static void count_drop(struct mutt_slo_counters *s, int64_t minute)
{
    char key[MUTT_SLO_KEY_MAX];
    mutt_slo_key("*", minute * 60000, key, sizeof key);
    s->dropped_minutes++;
    mutt_counter_inc(s->m_dropped);
    mutt_log_warn("slo", "more than %zu minutes of SLO counts held: %s dropped", s->cap, key);
}

/* The bucket of `minute`, added in order when missing. At the cap the oldest minute goes; NULL
 * when that is `minute` itself (older than everything held). The snapshot of a flush in flight
 * is not counted: it is checked against the cap again if it has to come back. */
static struct minute_counts *bucket(struct mutt_slo_counters *s, int64_t minute)
{
    size_t i = s->npending;
    if (i > 0 && s->pending[i - 1].minute == minute)
        return &s->pending[i - 1]; /* the hot path */
    while (i > 0 && s->pending[i - 1].minute > minute)
        i--;
    if (i > 0 && s->pending[i - 1].minute == minute)
        return &s->pending[i - 1];
    if (s->npending >= s->cap) {
        if (i == 0) {
            count_drop(s, minute);
            return NULL;
        }
        count_drop(s, s->pending[0].minute);
        memmove(&s->pending[0], &s->pending[1], (s->npending - 1) * sizeof s->pending[0]);
        s->npending--;
        i--;
    }
    memmove(&s->pending[i + 1], &s->pending[i], (s->npending - i) * sizeof s->pending[0]);
    memset(&s->pending[i], 0, sizeof s->pending[i]);
    s->pending[i].minute = minute;
    s->npending++;
    update_gauge(s);
    return &s->pending[i];
}

static int64_t minute_of(int64_t ms)
{
    return ms >= 0 ? ms / 60000 : -((-ms + 59999) / 60000);
}

void mutt_slo_record(struct mutt_slo_counters *s, enum mutt_slo_id id, uint64_t good, uint64_t total)
{
    if (!s || (unsigned)id >= MUTT_SLO_COUNT_ || (good == 0 && total == 0))
        return;
    struct minute_counts *b = bucket(s, minute_of(now_ms(s)));
    if (!b)
        return;
    b->good[id] += good;
    b->total[id] += total;
}

void mutt_slo_record_latency(struct mutt_slo_counters *s, enum mutt_slo_id id, double seconds)
{
    if (!s || (unsigned)id >= MUTT_SLO_COUNT_)
        return;
    mutt_slo_record(s, id, seconds <= mutt_slo_defs[id].target_seconds ? 1 : 0, 1);
}

/* A failed snapshot goes back among the pending minutes (merged with what was recorded since). */
static void merge_back(struct mutt_slo_counters *s)
{
    size_t n = s->nsending;
    s->nsending = 0;
    for (size_t k = 0; k < n; k++) {
        const struct minute_counts *from = &s->sending[k];
        struct minute_counts *to = bucket(s, from->minute);
        if (!to)
            continue;
        for (int i = 0; i < MUTT_SLO_COUNT_; i++) {
            to->good[i] += from->good[i];
            to->total[i] += from->total[i];
        }
    }
    update_gauge(s);
}

/* ------------------------------------------------------------------------------------------ */
/* flushing                                                                                    */

static void maybe_free(struct mutt_slo_counters *s)
{
    if (!s->destroying || !s->timer_closed || s->flushing)
        return;
    free(s->pending);
    free(s->sending);
    free(s->keybuf);
    free(s->keys);
    free(s->keylens);
    free(s->argbuf);
    free(s->args);
    free(s->arglens);
    free(s);
}

static void finish_stop(struct mutt_slo_counters *s, int status)
{
    if (s->stop_phase == STOP_DONE || s->stop_phase == STOP_NONE)
        return;
    s->stop_phase = STOP_DONE;
    if (!s->destroying)
        uv_timer_stop(&s->timer);
    mutt_slo_counters_stopped_cb *cb = s->stop_cb;
    s->stop_cb = NULL;
    if (cb)
        cb(s->stop_priv, status);
}

static void note_result(struct mutt_slo_counters *s, int status, const char *why)
{
    if (status == 0) {
        s->flushes++;
        if (s->failing)
            mutt_log_info("slo", "SLO counters written to Redis again");
        s->failing = false;
        return;
    }
    s->flush_failures++;
    mutt_counter_inc(s->m_failures);
    if (!s->failing)
        mutt_log_warn("slo", "SLO counters not written (%s): kept for the next flush, at most %zu minutes", why,
                      s->cap);
    s->failing = true;
}

static void on_flush_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_slo_counters *s = privdata;
    s->flushing = false;
    const char *why = mutt_strerror(status);
    if (status == MUTT_EIO && reply && reply->type == REDIS_REPLY_ERROR)
        why = reply->str;
    else if (status == 0 && (!reply || reply->type != REDIS_REPLY_INTEGER)) {
        status = MUTT_EIO; /* not what the script returns: assume nothing was written */
        why = "unexpected reply";
    }
    if (status == 0)
        s->nsending = 0;
    else
        merge_back(s); /* a lost connection may have applied it: counting twice beats losing it */
    note_result(s, status, why);
    update_gauge(s);
    if (s->destroying) {
        maybe_free(s);
        return;
    }
    if (s->stop_phase == STOP_WAIT)
        flush(s); /* the last flush; finishes the stop */
    else if (s->stop_phase == STOP_FINAL_SENT)
        finish_stop(s, status);
}

/* Sends every pending minute as one script call. On a synchronous refusal the counts stay. */
static void flush(struct mutt_slo_counters *s)
{
    if (s->flushing || s->destroying)
        return;
    bool final = s->stop_phase == STOP_WAIT; /* the last flush of a stop */
    if (s->npending == 0) {
        if (final) {
            s->stop_phase = STOP_FINAL_SENT;
            finish_stop(s, 0);
        }
        return;
    }
    int nkeys = 0;
    size_t nargs = 1;
    s->args[0] = s->ttl_arg;
    s->arglens[0] = strlen(s->ttl_arg);
    for (size_t m = 0; m < s->npending; m++) {
        const struct minute_counts *b = &s->pending[m];
        for (int i = 0; i < MUTT_SLO_COUNT_; i++) {
            if (b->good[i] == 0 && b->total[i] == 0)
                continue;
            char *k = s->keybuf + (size_t)nkeys * MUTT_SLO_KEY_MAX;
            mutt_slo_key(mutt_slo_defs[i].name, b->minute * 60000, k, MUTT_SLO_KEY_MAX);
            s->keys[nkeys] = k;
            s->keylens[nkeys] = strlen(k);
            char *g = s->argbuf + nargs * NUM_LEN;
            s->arglens[nargs] = (size_t)snprintf(g, NUM_LEN, "%" PRIu64, b->good[i]);
            s->args[nargs++] = g;
            char *t = s->argbuf + nargs * NUM_LEN;
            s->arglens[nargs] = (size_t)snprintf(t, NUM_LEN, "%" PRIu64, b->total[i]);
            s->args[nargs++] = t;
            nkeys++;
        }
    }
    int rc = mutt_redis_evalsha(mutt_redis_cmd(s->redis), s->script_id, nkeys, s->keys, s->keylens, (int)nargs,
                                s->args, s->arglens, on_flush_reply, s);
    if (final)
        s->stop_phase = STOP_FINAL_SENT;
    if (rc != 0) {
        /* not connected (fail fast) or too many commands out: nothing was sent */
        note_result(s, rc, mutt_strerror(rc));
        if (final)
            finish_stop(s, rc);
        return;
    }
    memcpy(s->sending, s->pending, s->npending * sizeof s->pending[0]);
    s->nsending = s->npending;
    s->npending = 0;
    s->flushing = true;
}

static void on_tick(uv_timer_t *t)
{
    struct mutt_slo_counters *s = t->data;
    s->wall_offset_ms = wall_ms() - (int64_t)uv_now(s->loop);
    flush(s);
}

static void on_stop_deadline(uv_timer_t *t)
{
    struct mutt_slo_counters *s = t->data;
    mutt_log_warn("slo", "last SLO flush not answered within %llu ms", (unsigned long long)s->stop_timeout_ms);
    finish_stop(s, MUTT_ETIMEDOUT);
}

/* ------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                   */

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_slo_counters *s = h->data;
    s->timer_closed = true;
    maybe_free(s);
}

struct mutt_slo_counters *mutt_slo_counters_create(uv_loop_t *loop, struct mutt_redis *redis,
                                                   struct mutt_metrics *metrics,
                                                   const struct mutt_slo_counters_opts *opts)
{
    static const struct mutt_slo_counters_opts defaults = {0};
    if (!loop || !redis)
        return NULL;
    if (!opts)
        opts = &defaults;
    /* enum mutt_slo_id indexes mutt_slo_defs: a reordered table must not swap SLOs silently */
    static const char *const names[MUTT_SLO_COUNT_] = {
        "ingestor_availability",      "ingestor_latency_p99",       "forwarder_availability",
        "forwarder_latency_p99",      "alerter_processing_success", "alerter_cache_reload_success",
    };
    for (int i = 0; i < MUTT_SLO_COUNT_; i++)
        if (strcmp(names[i], mutt_slo_defs[i].name) != 0)
            return NULL;

    struct mutt_slo_counters *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->redis = redis;
    s->flush_interval_ms = opts->flush_interval_ms ? opts->flush_interval_ms : MUTT_SLO_FLUSH_INTERVAL_MS;
    s->stop_timeout_ms = opts->stop_timeout_ms ? opts->stop_timeout_ms : MUTT_SLO_STOP_TIMEOUT_MS;
    s->cap = opts->max_pending_minutes ? opts->max_pending_minutes : MUTT_SLO_MAX_PENDING_MINUTES;
    snprintf(s->ttl_arg, sizeof s->ttl_arg, "%llu",
             (unsigned long long)(opts->key_ttl_s ? opts->key_ttl_s : MUTT_SLO_KEY_TTL_S));
    s->clock = opts->clock;
    s->clock_arg = opts->clock_arg;
    s->wall_offset_ms = wall_ms() - (int64_t)uv_now(loop);

    size_t maxkeys = s->cap * MUTT_SLO_COUNT_;
    s->pending = calloc(s->cap, sizeof *s->pending);
    s->sending = calloc(s->cap, sizeof *s->sending);
    s->keybuf = calloc(maxkeys, MUTT_SLO_KEY_MAX);
    s->keys = calloc(maxkeys, sizeof *s->keys);
    s->keylens = calloc(maxkeys, sizeof *s->keylens);
    s->argbuf = calloc(1 + 2 * maxkeys, NUM_LEN);
    s->args = calloc(1 + 2 * maxkeys, sizeof *s->args);
    s->arglens = calloc(1 + 2 * maxkeys, sizeof *s->arglens);
    s->script_id = mutt_redis_script_register(redis, "slo_add", LUA_SLO_ADD);
    if (!s->pending || !s->sending || !s->keybuf || !s->keys || !s->keylens || !s->argbuf || !s->args ||
        !s->arglens || s->script_id < 0) {
        s->destroying = s->timer_closed = true; /* the timer was never initialised */
        maybe_free(s);
        return NULL;
    }
    if (metrics) {
        s->m_failures = mutt_metrics_counter(metrics, "mutt_slo_flush_failures_total",
                                             "SLO counter flushes to Redis that failed (counts kept).", NULL);
        s->m_dropped = mutt_metrics_counter(metrics, "mutt_slo_minutes_dropped_total",
                                            "Minutes of SLO counts dropped while Redis was unreachable.", NULL);
        s->m_pending = mutt_metrics_gauge(metrics, "mutt_slo_pending_minutes",
                                          "Minutes of SLO counts not yet written to Redis.", NULL);
    }
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    return s;
}

int mutt_slo_counters_start(struct mutt_slo_counters *s)
{
    if (!s || s->stop_phase != STOP_NONE || s->destroying)
        return MUTT_ESTATE;
    if (s->started)
        return 0;
    s->started = true;
    uv_timer_start(&s->timer, on_tick, s->flush_interval_ms, s->flush_interval_ms);
    return 0;
}

void mutt_slo_counters_stop(struct mutt_slo_counters *s, mutt_slo_counters_stopped_cb *cb, void *privdata)
{
    if (!s || s->stop_phase != STOP_NONE || s->destroying)
        return;
    s->stop_cb = cb;
    s->stop_priv = privdata;
    s->stop_phase = STOP_WAIT;
    uv_timer_stop(&s->timer);
    uv_timer_start(&s->timer, on_stop_deadline, s->stop_timeout_ms, 0);
    if (!s->flushing)
        flush(s); /* else on_flush_reply sends the last one */
}

void mutt_slo_counters_destroy(struct mutt_slo_counters *s)
{
    if (!s || s->destroying)
        return;
    s->destroying = true;
    s->stop_cb = NULL; /* nobody is left to tell */
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

void mutt_slo_counters_flush_now(struct mutt_slo_counters *s)
{
    if (s && s->stop_phase == STOP_NONE)
        flush(s);
}

size_t mutt_slo_counters_pending_minutes(const struct mutt_slo_counters *s)
{
    return s ? s->npending + s->nsending : 0;
}

uint64_t mutt_slo_counters_dropped_minutes(const struct mutt_slo_counters *s)
{
    return s ? s->dropped_minutes : 0;
}

uint64_t mutt_slo_counters_flushes(const struct mutt_slo_counters *s)
{
    return s ? s->flushes : 0;
}

uint64_t mutt_slo_counters_flush_failures(const struct mutt_slo_counters *s)
{
    return s ? s->flush_failures : 0;
}
