/* `mutt retention [--dry-run]`: runs the retention stage's own async runner once, on a private
 * loop (the CLI has nothing else on it), and prints the counts. Exit code 0 done, 1 failed
 * (including "another host holds the lock"), 2 usage. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "cli_internal.h"
#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "mutt/retention.h"

/* ------------------------------------------------------------------------------------------ */
/* `mutt retention` on a private loop (the CLI has nothing else on it)                         */

struct cli_run {
    struct mutt_retention *ret;
    bool dry_run;
    bool started, finished, timed_out;
    struct mutt_retention_result res;
    uv_timer_t deadline;
};

static void on_cli_done(void *privdata, const struct mutt_retention_result *res)
{
    struct cli_run *c = privdata;
    c->res = *res;
    c->finished = true;
    uv_stop(c->deadline.loop);
}

static void on_cli_redis_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct cli_run *c = privdata;
    if (!connected || c->started)
        return;
    c->started = true;
    uv_timer_stop(&c->deadline);
    if (mutt_retention_start(c->ret, c->dry_run, 0, on_cli_done, c) != 0) {
        c->finished = true;
        c->res.status = MUTT_ESTATE;
        snprintf(c->res.error, sizeof(c->res.error), "could not start");
        uv_stop(c->deadline.loop);
    }
}

static void on_cli_deadline(uv_timer_t *t)
{
    struct cli_run *c = t->data;
    c->timed_out = true;
    uv_stop(t->loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run_once(const struct mutt_config *cfg, bool dry_run, FILE *out)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "retention: cannot create an event loop\n");
        return 1;
    }
    struct mutt_redis_opts ro;
    mutt_redis_opts_from_config(cfg, &ro);
    struct mutt_pg_opts po;
    mutt_pg_opts_from_config(cfg, &po);
    po.pool_min = 1;
    po.pool_max = 1;
    po.query_timeout_ms = 0; /* a batch of a big DELETE may take long; the run has no deadline */
    po.application_name = "mutt-retention";
    struct mutt_redis *redis = mutt_redis_create(&loop, &ro);
    struct mutt_pg *pg = mutt_pg_create(&loop, &po);
    struct cli_run c = {.dry_run = dry_run};
    int rc = 1;
    if (!redis || !pg) {
        fprintf(stderr, "retention: out of memory\n");
        goto out;
    }
    c.ret = mutt_retention_create(&loop, redis, pg, cfg, NULL);
    if (!c.ret) {
        fprintf(stderr, "retention: out of memory\n");
        goto out;
    }
    uv_timer_init(&loop, &c.deadline);
    c.deadline.data = &c;
    uv_timer_start(&c.deadline, on_cli_deadline,
                   (uint64_t)mutt_config_int(cfg, MUTT_CFG_REDIS_CONNECT_TIMEOUT_MS) + 5000u, 0);
    mutt_redis_conn_on_state(mutt_redis_cmd(redis), on_cli_redis_state, &c);
    mutt_redis_start(redis);
    mutt_pg_start(pg);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (c.timed_out && !c.started) {
        fprintf(stderr, "retention: Redis at %s:%d is unreachable\n", ro.host, ro.port);
    } else if (!c.finished) {
        fprintf(stderr, "retention: the run did not finish\n");
    } else if (c.res.status != 0) {
        fprintf(stderr, "retention: %s\n", c.res.error);
    } else {
        const char *verb = c.res.dry_run ? "would delete" : "deleted";
        fprintf(out,
                "retention%s: %s config_audit=%" PRId64 " event_audit=%" PRId64 " (partitions %s: %" PRId64
                ") dlq=%" PRId64,
                c.res.dry_run ? " (dry run)" : "", verb, c.res.config_audit, c.res.event_audit,
                c.res.dry_run ? "to drop" : "dropped", c.res.partitions_dropped, c.res.dlq);
        if (c.res.dry_run)
            fprintf(out, " held: config_audit=%" PRId64 " event_audit=%" PRId64, c.res.held_config_audit,
                    c.res.held_event_audit);
        fprintf(out, " partitions kept for held rows: %" PRId64 "\n", c.res.partitions_kept);
        rc = 0;
    }
out:
    if (redis)
        mutt_redis_stop(redis);
    if (pg)
        mutt_pg_stop(pg);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_walk(&loop, close_walk, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    mutt_redis_destroy(redis);
    mutt_pg_destroy(pg);
    mutt_retention_destroy(c.ret);
    return rc;
}

int cli_retention(int argc, char **argv, struct mutt_config *cfg)
{
    bool dry_run = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else {
            fprintf(stderr, "retention: unexpected argument '%s' (usage: mutt retention [--dry-run])\n", argv[i]);
            return CLI_USAGE;
        }
    }
    return run_once(cfg, dry_run, stdout);
}
