/* Per-source storm control of the listeners (listen_storm.h). A once-a-second timer hands the
 * summaries whose minute is over to ingest as ordinary events, so an operator sees a storm in the
 * same place as the messages it would have produced. A summary that cannot be queued (Redis
 * down, queue full) is logged instead: it is a count, not data. */
#include "mutt/listen_storm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "mutt/error.h"
#include "mutt/ingest_intake.h"
#include "mutt/log.h"
#include "mutt/source_rate.h"
#include "mutt/timefmt.h"

#define SWEEP_MS 1000
#define SUMMARY_BATCH 64

struct mutt_listen_storm {
    uv_timer_t timer;
    struct mutt_source_rate *table;
    const char *listener;
    const char *source_id;
    uint32_t rate;
    void (*closed)(void *arg);
    void *closed_arg;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct summary_wait {
    char addr[MUTT_SOURCE_ADDR_MAX];
    const char *listener;
    uint64_t suppressed;
};

static void log_unqueued(const char *listener, const char *addr, uint64_t n, const char *why)
{
    mutt_log_warn("listen", "%s: storm control suppressed %llu message(s) from %s (summary event not queued: %s)",
                  listener, (unsigned long long)n, addr, why);
}

static void on_summary_verdict(void *privdata, enum mutt_ingest_intake_result r, size_t queued)
{
    struct summary_wait *w = privdata;
    if (r != MUTT_INTAKE_QUEUED || queued == 0)
        log_unqueued(w->listener, w->addr, w->suppressed,
                     r == MUTT_INTAKE_QUEUE_FULL     ? "queue full"
                     : r == MUTT_INTAKE_RATE_LIMITED ? "rate limit"
                                                     : "Redis unavailable");
    free(w);
}

/* The summary event: hostname and source_ip are the sender, so rules can route a storm by host. */
static void queue_summary(struct mutt_listen_storm *s, const struct mutt_source_summary *sum, int64_t now_ms)
{
    char ts[40], msg[256];
    if (mutt_time_format_iso8601_ms(now_ms, ts, sizeof ts) != 0)
        snprintf(ts, sizeof ts, "1970-01-01T00:00:00.000Z");
    snprintf(msg, sizeof msg,
             "%s listener storm control: %llu message(s) from %s suppressed over LISTENER_SOURCE_MAX_RATE=%u/s in %llds",
             s->listener, (unsigned long long)sum->suppressed, sum->addr, s->rate,
             (long long)((now_ms - sum->first_ms + 999) / 1000));
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:I, s:I}", "hostname", sum->addr, "source_ip",
                           sum->addr, "timestamp", ts, "message", msg, "source", "mutt-listener", "syslog_severity", 4,
                           "listener", s->listener, "suppressed", (json_int_t)sum->suppressed, "rate_limit",
                           (json_int_t)s->rate);
    struct summary_wait *w = malloc(sizeof *w);
    if (!ev || !w) {
        json_decref(ev);
        free(w);
        log_unqueued(s->listener, sum->addr, sum->suppressed, "out of memory");
        return;
    }
    memcpy(w->addr, sum->addr, sizeof w->addr);
    w->listener = s->listener;
    w->suppressed = sum->suppressed;
    long rc = mutt_ingest_intake_ready() ? mutt_ingest_intake_submit(&ev, 1, s->source_id, NULL, on_summary_verdict, w)
                                         : MUTT_EDISCONNECTED;
    json_decref(ev);
    if (rc <= 0) {
        log_unqueued(s->listener, sum->addr, sum->suppressed, rc == 0 ? "invalid" : mutt_strerror((int)rc));
        free(w);
    }
}

static void sweep(struct mutt_listen_storm *s, bool all)
{
    struct mutt_source_summary out[SUMMARY_BATCH];
    int64_t now = wall_ms();
    size_t n;
    do {
        n = mutt_source_rate_due(s->table, now, all, out, SUMMARY_BATCH);
        for (size_t i = 0; i < n; i++)
            queue_summary(s, &out[i], now);
    } while (n == SUMMARY_BATCH);
}

static void on_sweep(uv_timer_t *t)
{
    sweep(t->data, false);
}

int mutt_listen_storm_start(uv_loop_t *loop, const char *listener, const char *source_id, uint32_t rate,
                            struct mutt_listen_storm **out)
{
    *out = NULL;
    if (rate == 0)
        return 0;
    struct mutt_listen_storm *s = calloc(1, sizeof *s);
    if (!s)
        return MUTT_ENOMEM;
    s->table = mutt_source_rate_new(MUTT_LISTEN_STORM_SOURCES, rate, MUTT_LISTEN_STORM_WINDOW_MS);
    if (!s->table) {
        free(s);
        return MUTT_ENOMEM;
    }
    s->listener = listener;
    s->source_id = source_id;
    s->rate = rate;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&s->timer);
    *out = s;
    return 0;
}

bool mutt_listen_storm_admit(struct mutt_listen_storm *s, const char *ip)
{
    if (!s)
        return true;
    struct mutt_source_summary evicted;
    bool has = false;
    bool ok = mutt_source_rate_take(s->table, ip, wall_ms(), &evicted, &has);
    if (has) /* forgotten before its minute was over: its summary goes now */
        queue_summary(s, &evicted, wall_ms());
    return ok;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_listen_storm *s = h->data;
    void (*closed)(void *) = s->closed;
    void *arg = s->closed_arg;
    mutt_source_rate_free(s->table);
    free(s);
    if (closed)
        closed(arg);
}

int mutt_listen_storm_stop(struct mutt_listen_storm *s, void (*closed)(void *arg), void *arg)
{
    if (!s)
        return 0;
    sweep(s, true);
    s->closed = closed;
    s->closed_arg = arg;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    return 1;
}
