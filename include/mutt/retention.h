/* Retention (CONTRACT §11, D28, W30, D64; issue 17): one run archives and then deletes
 * config_audit_log rows older than RETENTION_AUDIT_DAYS and event_audit_log rows older than
 * RETENTION_EVENT_AUDIT_DAYS, RETENTION_BATCH_SIZE rows per batch: each batch is written to
 * ARCHIVE_DIR or handed to ARCHIVE_COMMAND off the loop (include/mutt/retention_archive.h), and
 * only its archived ids are deleted. Rows under a legal hold (table legal_holds) are neither
 * archived nor deleted. An old monthly event partition without held rows is archived whole (read
 * by id in chunks) and dropped under a guard (same rows as archived, none held); one with held
 * rows, or one that changed meanwhile, is emptied batch by batch and dropped once empty (kept
 * while held rows remain). DLQ items whose _failed_at is older than RETENTION_DLQ_DAYS
 * are removed (not archived), and event partitions are created ahead. A dry run only counts,
 * held rows included. The `retention` role runs it daily at RETENTION_HOUR UTC; `mutt retention`
 * (src/cli/cli_retention.c) runs it once on a private loop. Loop thread only. */
#ifndef MUTT_RETENTION_H
#define MUTT_RETENTION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/ctx.h"

struct mutt_config;
struct mutt_metrics;
struct mutt_pg;
struct mutt_redis;
struct mutt_retention; /* a runner: script ids, metrics handles, at most one run at a time */

extern const struct mutt_stage mutt_retention_stage;

/* Redis keys. The lock is what makes several hosts safe: only its holder runs (SET NX PX with
 * a random token, refreshed while the run lasts, deleted only by its owner). The pool of
 * PostgreSQL connections gives no stable session to hold a pg_advisory_lock on. */
#define MUTT_RETENTION_LOCK_KEY "mutt:retention:lock"
#define MUTT_RETENTION_LAST_RUN_KEY "mutt:retention:last_run" /* epoch seconds of the last live run */
#define MUTT_RETENTION_LOCK_TTL_MS 300000u
#define MUTT_RETENTION_PARTITIONS_AHEAD 3

struct mutt_retention_result {
    int status;                 /* 0, MUTT_EEXIST (another host holds the lock), or the failure */
    bool dry_run;
    bool skipped;               /* a recent run by any host made this one unnecessary */
    int64_t config_audit;       /* rows deleted (or, dry run, that would be) */
    int64_t event_audit;        /* rows deleted including those in dropped partitions */
    int64_t partitions_dropped; /* monthly partitions dropped (or that would be) */
    int64_t dlq;                /* DLQ items removed (or that would be) */
    int64_t held_config_audit;  /* dry run: old rows a legal hold keeps */
    int64_t held_event_audit;
    int64_t partitions_kept;    /* old monthly partitions kept because held rows are in them */
    int64_t started_at_ms;      /* wall clock */
    char error[256];            /* one line, no secrets, when status != 0 */
};
/* res is borrowed for the call. */
typedef void mutt_retention_done_cb(void *privdata, const struct mutt_retention_result *res);

/* Borrows loop, redis, pg and cfg (they must outlive the runner); metrics may be NULL (CLI) and
 * is then not touched. Registers its Lua scripts on redis. NULL on allocation failure. */
struct mutt_retention *mutt_retention_create(uv_loop_t *loop, struct mutt_redis *redis, struct mutt_pg *pg,
                                             const struct mutt_config *cfg, struct mutt_metrics *metrics);
/* Starts one run. dry_run || RETENTION_DRY_RUN -> count only, write nothing (not even
 * last_run or future partitions). skip_if_newer_than_ms > 0: after taking the lock, skip the
 * run when the last live run is younger than that (two hosts firing at the same hour).
 * Returns 0 and calls done exactly once, or MUTT_ESTATE (a run is in progress) without calling. */
int mutt_retention_start(struct mutt_retention *r, bool dry_run, int64_t skip_if_newer_than_ms,
                         mutt_retention_done_cb *done, void *privdata);
bool mutt_retention_running(const struct mutt_retention *r);
/* Asks a run in progress to stop after the statement in flight; it then releases the lock and
 * calls done with MUTT_ECANCELED. No-op when idle. */
void mutt_retention_cancel(struct mutt_retention *r);
/* Frees an idle runner (NULL is fine). */
void mutt_retention_destroy(struct mutt_retention *r);

#endif
