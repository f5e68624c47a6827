/* The `retention` role (CONTRACT §11): runs retention_run.c's chain daily at RETENTION_HOUR UTC,
 * and once at start when the last live run (mutt:retention:last_run, shared by every host) is a
 * day old or missing. Several hosts may carry the role: the run's Redis lock lets one work and
 * a run right after another host's is skipped. Owns one timer. Loop thread only. */
#include "mutt/retention.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/redis.h"
#include "mutt/retention_plan.h"

#define RETRY_MS 60000u /* Redis down at a check or a failed run: try again in a minute */
/* A scheduled run within this long after any host's live run is skipped (same hour, two hosts). */
#define SKIP_IF_NEWER_MS (20LL * 3600 * 1000)

struct retention_stage {
    struct mutt_ctx *ctx;
    struct mutt_retention *runner;
    uv_timer_t timer;
    bool timer_open;
    bool running;       /* started and not stopped */
    bool stopping;
    bool checked_start; /* the at-start check of last_run happened */
    mutt_stage_done_cb *done;
    void *done_priv;
    int consecutive_failures;
    char last_error[256];
};

static struct retention_stage g_ret;

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void on_timer(uv_timer_t *t);

static void arm(struct retention_stage *s, uint64_t delay_ms)
{
    if (s->stopping || !s->timer_open)
        return;
    uv_timer_start(&s->timer, on_timer, delay_ms, 0);
}

static void arm_daily(struct retention_stage *s)
{
    int64_t now = wall_ms();
    int hour = (int)mutt_config_int(s->ctx->cfg, MUTT_CFG_RETENTION_HOUR);
    int64_t at = mutt_retention_next_run_ms(now, hour);
    arm(s, (uint64_t)(at - now));
}

static void maybe_stopped(struct retention_stage *s)
{
    if (!s->stopping || !s->done || mutt_retention_running(s->runner) || s->timer_open)
        return;
    mutt_retention_destroy(s->runner);
    s->runner = NULL;
    s->running = false;
    mutt_stage_done_cb *done = s->done;
    s->done = NULL;
    done(s->ctx, s->done_priv);
}

static void on_run_done(void *privdata, const struct mutt_retention_result *res)
{
    struct retention_stage *s = privdata;
    if (res->status == 0) {
        s->consecutive_failures = 0;
        s->last_error[0] = '\0';
        if (res->skipped)
            mutt_log_info("retention", "skipped: another host ran retention recently");
        else
            mutt_log_info("retention",
                          "%s: config_audit=%" PRId64 " event_audit=%" PRId64 " (partitions %" PRId64 ") dlq=%" PRId64
                          " in %" PRId64 " ms",
                          res->dry_run ? "dry run, would delete" : "deleted", res->config_audit, res->event_audit,
                          res->partitions_dropped, res->dlq, wall_ms() - res->started_at_ms);
        arm_daily(s);
    } else if (res->status == MUTT_EEXIST) {
        mutt_log_info("retention", "%s", res->error);
        arm_daily(s);
    } else if (res->status != MUTT_ECANCELED) {
        s->consecutive_failures++;
        snprintf(s->last_error, sizeof(s->last_error), "%s", res->error);
        mutt_log_error("retention", "run failed: %s; retrying in %u s", res->error, RETRY_MS / 1000);
        arm(s, RETRY_MS);
    }
    maybe_stopped(s);
}

static void start_run(struct retention_stage *s, int64_t skip_if_newer_ms)
{
    if (s->stopping || mutt_retention_running(s->runner))
        return;
    int rc = mutt_retention_start(s->runner, false, skip_if_newer_ms, on_run_done, s);
    if (rc != 0) {
        mutt_log_error("retention", "cannot start a run: %s", mutt_strerror(rc));
        arm(s, RETRY_MS);
    }
}

static void on_last_run(void *privdata, redisReply *reply, int status)
{
    struct retention_stage *s = privdata;
    if (s->stopping)
        return;
    if (status != 0) {
        arm(s, RETRY_MS); /* Redis down: check again later */
        return;
    }
    s->checked_start = true;
    int64_t last_ms = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) * 1000 : 0;
    if (mutt_retention_due_at_start(wall_ms(), last_ms)) {
        mutt_log_info("retention", "last run %s: running now",
                      last_ms > 0 ? "is more than a day old" : "never happened");
        start_run(s, 0);
    } else {
        mutt_log_info("retention", "last run %" PRId64 " s ago: next run at %02d:00 UTC",
                      (wall_ms() - last_ms) / 1000, (int)mutt_config_int(s->ctx->cfg, MUTT_CFG_RETENTION_HOUR));
        arm_daily(s);
    }
}

static void check_at_start(struct retention_stage *s)
{
    const char *argv[] = {"GET", MUTT_RETENTION_LAST_RUN_KEY};
    if (mutt_redis_command(mutt_redis_cmd(s->ctx->redis), on_last_run, s, 2, argv, NULL) != 0)
        arm(s, 1000); /* not connected yet: the manager is still connecting */
}

static void on_timer(uv_timer_t *t)
{
    struct retention_stage *s = t->data;
    if (!s->checked_start)
        check_at_start(s);
    else
        start_run(s, SKIP_IF_NEWER_MS);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct retention_stage *s = h->data;
    s->timer_open = false;
    maybe_stopped(s);
}

static int retention_start(struct mutt_ctx *ctx)
{
    struct retention_stage *s = &g_ret;
    if (s->running)
        return MUTT_ESTATE;
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    if (!ctx->pg)
        return MUTT_EINVAL;
    s->runner = mutt_retention_create(ctx->loop, ctx->redis, ctx->pg, ctx->cfg, ctx->metrics);
    if (!s->runner)
        return MUTT_ENOMEM;
    uv_timer_init(ctx->loop, &s->timer);
    s->timer.data = s;
    s->timer_open = true;
    s->running = true;
    check_at_start(s);
    mutt_log_info("retention", "daily at %02d:00 UTC: config audit %" PRId64 " d, event audit %" PRId64
                  " d, DLQ %" PRId64 " d, batch %" PRId64 "%s",
                  (int)mutt_config_int(ctx->cfg, MUTT_CFG_RETENTION_HOUR),
                  mutt_config_int(ctx->cfg, MUTT_CFG_RETENTION_AUDIT_DAYS),
                  mutt_config_int(ctx->cfg, MUTT_CFG_RETENTION_EVENT_AUDIT_DAYS),
                  mutt_config_int(ctx->cfg, MUTT_CFG_RETENTION_DLQ_DAYS),
                  mutt_config_int(ctx->cfg, MUTT_CFG_RETENTION_BATCH_SIZE),
                  mutt_config_bool(ctx->cfg, MUTT_CFG_RETENTION_DRY_RUN) ? " (dry run)" : "");
    return 0;
}

static void retention_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct retention_stage *s = &g_ret;
    s->stopping = true;
    s->done = done;
    s->done_priv = privdata;
    mutt_retention_cancel(s->runner);
    if (s->timer_open && !uv_is_closing((uv_handle_t *)&s->timer))
        uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    maybe_stopped(s);
}

static enum mutt_role_health retention_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    struct retention_stage *s = &g_ret;
    if (s->consecutive_failures > 0) {
        snprintf(detail, detail_len, "retention: last run failed (%s)", s->last_error);
        return MUTT_HEALTH_DEGRADED;
    }
    return MUTT_HEALTH_OK;
}

const struct mutt_stage mutt_retention_stage = {
    .name = "retention",
    .role = MUTT_ROLE_RETENTION,
    .start = retention_start,
    .stop = retention_stop,
    .health = retention_health,
    .reload = NULL,
};
