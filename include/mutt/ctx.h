/* The process-wide context handed to every stage: the loop, the static config and handles to
 * the shared adapters. Stages keep their own state private and reach the core only through
 * these handles. Loop thread only. */
#ifndef MUTT_CTX_H
#define MUTT_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mutt_config;
struct mutt_redis;
struct mutt_pg;
struct mutt_metrics;
struct mutt_http;
struct mutt_dynconfig;
struct mutt_pod;
struct mutt_slo_counters;

struct mutt_ctx {
    uv_loop_t *loop;                /* read-only */
    struct mutt_config *cfg;        /* read-only for stages */
    struct mutt_redis *redis;       /* shared Redis manager */
    struct mutt_pg *pg;             /* NULL when no enabled role needs PostgreSQL */
    struct mutt_metrics *metrics;   /* the one registry of this process */
    struct mutt_http *http;         /* listeners + router */
    struct mutt_dynconfig *dyn;     /* dynamic config (Redis > env > file > default) */
    struct mutt_pod *pod;           /* identity key holder (D16) */
    struct mutt_slo_counters *slo;  /* per-minute SLO counts (D22); NULL-safe for stages */
    const char *pod_name;           /* borrowed from pod */
    unsigned roles;                 /* MUTT_ROLE_* bits */
    unsigned roles_started;         /* MUTT_ROLE_* bits whose stage start() returned 0 (D34) */
    uint64_t started_at_ms;         /* wall clock, for process_start_time_seconds */
    bool stopping;                  /* set once SIGTERM/SIGINT began the drain */
};

/* Role health as reported by /health (D17, D34). STARTING: the stage does not accept work yet
 * (not started, or a stage's own start-up still running); like DOWN it makes the process not
 * ready, DEGRADED does not. */
enum mutt_role_health { MUTT_HEALTH_OK = 0, MUTT_HEALTH_DEGRADED, MUTT_HEALTH_DOWN, MUTT_HEALTH_STARTING };

/* A stage: one role's task on the loop. start returns 0 or a negative MUTT_E*; stop begins a
 * drain and calls done exactly once when the stage has released everything it holds (unstarted
 * items returned to their queue). health may add one line to `detail` (size detail_len). */
typedef void mutt_stage_done_cb(struct mutt_ctx *ctx, void *privdata);
struct mutt_stage {
    const char *name; /* role name: ingest alert forward remediate web retention */
    unsigned role;    /* MUTT_ROLE_* bit */
    int (*start)(struct mutt_ctx *ctx);
    void (*stop)(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata);
    enum mutt_role_health (*health)(struct mutt_ctx *ctx, char *detail, size_t detail_len);
    void (*reload)(struct mutt_ctx *ctx); /* SIGHUP; may be NULL */
};

#endif
