/* One retention run as a task on the loop (include/mutt/retention.h): a chain of steps, each
 * one PostgreSQL statement, Redis command or (archiving a batch) uv_queue_work job whose
 * callback starts the next. The decisions
 * (cutoffs, which partitions go whole, DLQ item age) are src/domain/retention_plan.c; this file
 * only does the I/O (`mutt retention` runs this chain on a private loop: src/cli/cli_retention.c).
 * Loop thread only. */
#define _GNU_SOURCE
#include "mutt/retention.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "mutt/adapter_opts.h"
#include "mutt/retention_archive.h"
#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/retention_plan.h"
#include "mutt/timefmt.h"

#define LOCK_REFRESH_MS 30000u /* well inside MUTT_RETENTION_LOCK_TTL_MS */
#define MAX_DROP_PARTITIONS 1024
/* Rows per read of an old partition archived whole: bounds memory and each file (one file per
 * UTC day per read). Larger than any sane RETENTION_BATCH_SIZE because nothing is deleted per
 * read: the batch size bounds DELETE transactions, which this path has none of. */
#define PART_CHUNK_ROWS 50000
/* SQLSTATE the drop guard raises when the partition is not what was archived (a late row, a
 * hold created meanwhile): the partition then takes the row-by-row path. */
#define SQLSTATE_PART_CHANGED "MUT01"

/* ---- SQL: one row each (STYLE 2.1). All parameterised except the DROP/count of a partition,
 * whose name is an identifier (cannot be a parameter) and was matched against
 * event_audit_log_YYYY_MM by mutt_retention_partition_month first. */
static const char SQL_ENSURE_PARTITIONS[] = "SELECT mutt_ensure_partitions($1::int)";
/* A row under a legal hold (migration 17) is neither archived nor deleted. Event holds ignore
 * changed_by (event rows have none): a hold keeps more, never less. */
#define HELD_CONFIG(a)                                                                                        \
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.table_name = 'config_audit_log' AND " a ".changed_at "       \
    "BETWEEN h.from_ts AND h.to_ts AND (h.hostname IS NULL OR h.hostname = " a ".record_key) AND "          \
    "(h.changed_by IS NULL OR h.changed_by = " a ".changed_by))"
#define HELD_EVENT(a)                                                                                         \
    "EXISTS (SELECT 1 FROM legal_holds h WHERE h.table_name = 'event_audit_log' AND " a ".event_timestamp "   \
    "BETWEEN h.from_ts AND h.to_ts AND (h.hostname IS NULL OR h.hostname = " a ".hostname))"
static const char SQL_CONFIG_COUNT[] =
    "SELECT count(*) FILTER (WHERE NOT held), count(*) FILTER (WHERE held) FROM (SELECT " HELD_CONFIG("c")
    " AS held FROM config_audit_log c WHERE c.changed_at < $1::timestamptz) s";
/* A batch to archive: id, UTC day, the whole row. Oldest first so files follow days. */
/* From where the last batch ended ($3, $4), as SQL_EVENT_SELECT. */
static const char SQL_CONFIG_SELECT[] =
    "SELECT c.id, to_char(c.changed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), row_to_json(c)::text, "
    "c.changed_at::text FROM config_audit_log c WHERE c.changed_at < $1::timestamptz AND "
    "(c.changed_at, c.id) > ($3::timestamptz, $4::bigint) AND NOT " HELD_CONFIG("c")
    " ORDER BY c.changed_at, c.id LIMIT $2::int";
/* Only archived ids; the hold check again for a hold created while the batch was archived. */
static const char SQL_CONFIG_DELETE[] =
    "DELETE FROM config_audit_log c WHERE c.id = ANY($1::bigint[]) AND NOT " HELD_CONFIG("c");
static const char SQL_EVENT_PARTITIONS[] =
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = 'event_audit_log'::regclass ORDER BY c.relname";
static const char SQL_EVENT_COUNT[] =
    "SELECT count(*) FILTER (WHERE NOT held), count(*) FILTER (WHERE held) FROM (SELECT " HELD_EVENT("e")
    " AS held FROM event_audit_log e WHERE e.event_timestamp < $1::timestamptz) s";
/* Rows of DEFAULT (D28) and of whatever old partition was not archived whole (held rows in it,
 * or it changed while archived): those are emptied this way and dropped when nothing is left. */
/* From where the last batch ended ($3, $4): the index scan starts there instead of stepping over
 * every row deleted (and every held row kept) by the batches before. */
static const char SQL_EVENT_SELECT[] =
    "SELECT e.id, to_char(e.event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD'), row_to_json(e)::text, "
    "e.event_timestamp::text FROM event_audit_log e WHERE e.event_timestamp < $1::timestamptz AND "
    "(e.event_timestamp, e.id) > ($3::timestamptz, $4::bigint) AND NOT " HELD_EVENT("e")
    " ORDER BY e.event_timestamp, e.id LIMIT $2::int";
/* The cutoff bound prunes to old partitions; ids are one BIGSERIAL across partitions. */
static const char SQL_EVENT_DELETE[] =
    "DELETE FROM event_audit_log e WHERE e.id = ANY($1::bigint[]) AND e.event_timestamp < $2::timestamptz "
    "AND NOT " HELD_EVENT("e");

/* ---- Lua: owner-checked lock refresh/release and DLQ removal by value (the list may move
 * under us: remediation pops its tail, stages push its head; removing by value stays right). */
static const char LUA_LOCK_REFRESH[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0";
static const char LUA_LOCK_RELEASE[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
static const char LUA_DLQ_REMOVE[] =
    "local n = 0 for i = 1, #ARGV do n = n + redis.call('LREM', KEYS[1], -1, ARGV[i]) end return n";

enum step {
    ST_IDLE,
    ST_PART_CHECK, /* live run, old partition: any held row in it? */
    ST_PART_CHUNK, /* ...none: read the next chunk by id and archive it */
    ST_PART_DROP,  /* ...all read and archived: guarded DROP */
    ST_LOCK,
    ST_CHECK_RECENT,
    ST_PARTITIONS_AHEAD,
    ST_CONFIG,
    ST_CONFIG_DELETE,
    ST_EVENT_ROWS,
    ST_EVENT_DELETE,
    ST_EVENT_PARTITIONS,
    ST_EVENT_DROP_COUNT,
    ST_EVENT_DROP,
    ST_DLQ,
    ST_LAST_RUN,
    ST_UNLOCK,
};

enum { DLQ_ALERTER, DLQ_MOOG, DLQ_DEAD, DLQ__COUNT };

struct mutt_retention {
    uv_loop_t *loop;
    struct mutt_redis *redis;
    struct mutt_pg *pg;
    const struct mutt_config *cfg;
    int script_refresh, script_release, script_dlq_remove;
    struct mutt_counter *deleted[3];  /* config_audit, event_audit, dlq */
    struct mutt_gauge *last_run_gauge;

    /* the run in progress */
    enum step step;
    bool cancel;
    bool locked;
    struct mutt_retention_result res;
    mutt_retention_done_cb *done;
    void *done_priv;
    int64_t batch;
    int64_t skip_if_newer_than_ms;
    char batch_s[24];
    char cutoff_config[MUTT_TIME_ISO8601_MS_LEN];
    char cutoff_event[MUTT_TIME_ISO8601_MS_LEN];
    int64_t cutoff_dlq_ms;
    char token[40];
    uint64_t lock_refreshed_at; /* uv_now */
    char *drop[MAX_DROP_PARTITIONS];
    bool drop_slow[MAX_DROP_PARTITIONS]; /* live: emptied row by row (held rows, or changed) */
    bool drop_done[MAX_DROP_PARTITIONS]; /* live: archived whole and dropped */
    size_t ndrop, drop_i;
    /* the partition being archived whole: rows read so far, the sum of their ids, the last id */
    int64_t part_rows;
    unsigned __int128 part_idsum;
    char part_last_id[24];
    /* the row-by-row paths (0 config, 1 event): where the last batch ended. Held rows and
     * deleted ones (dead until vacuumed) stay behind it instead of being stepped over again by
     * every batch. */
    char rows_last_ts[2][48];
    char rows_last_id[2][24];
    int dlq_i;
    int64_t dlq_kept; /* items at the list's tail already looked at and kept */
    /* the batch being archived (a uv_queue_work job) and then deleted */
    uv_work_t work;
    struct mutt_archive_row *arows;
    char *arena;         /* the rows' JSON, one block */
    char *ids;           /* "{1,2,...}": the archived ids, the DELETE's parameter */
    int64_t selected;    /* rows in the batch */
    unsigned seq;        /* batches so far (part of the archive file names) */
    int arc_rc;
    char arc_err[256];
    const char *arc_table;
};

static void next(struct mutt_retention *r);

static int64_t wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static const char *dlq_key(const struct mutt_retention *r, int i)
{
    static const enum mutt_cfg_key keys[DLQ__COUNT] = {MUTT_CFG_ALERTER_DLQ_NAME, MUTT_CFG_MOOG_DLQ_NAME,
                                                       MUTT_CFG_DEAD_LETTER_QUEUE};
    return mutt_config_str(r->cfg, keys[i]);
}

struct mutt_retention *mutt_retention_create(uv_loop_t *loop, struct mutt_redis *redis, struct mutt_pg *pg,
                                             const struct mutt_config *cfg, struct mutt_metrics *metrics)
{
    struct mutt_retention *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->redis = redis;
    r->pg = pg;
    r->cfg = cfg;
    r->script_refresh = mutt_redis_script_register(redis, "retention_lock_refresh", LUA_LOCK_REFRESH);
    r->script_release = mutt_redis_script_register(redis, "retention_lock_release", LUA_LOCK_RELEASE);
    r->script_dlq_remove = mutt_redis_script_register(redis, "retention_dlq_remove", LUA_DLQ_REMOVE);
    if (r->script_refresh < 0 || r->script_release < 0 || r->script_dlq_remove < 0) {
        free(r);
        return NULL;
    }
    if (metrics) {
        static const char *const type_label[] = {"type", NULL};
        struct mutt_counter *fam = mutt_metrics_counter(
            metrics, "mutt_retention_cleanup_records_deleted_total", "Records removed by retention runs", type_label);
        struct mutt_gauge *days = mutt_metrics_gauge(metrics, "mutt_retention_policy_days",
                                                     "Retention period in days per data type", type_label);
        r->last_run_gauge = mutt_metrics_gauge(metrics, "mutt_retention_cleanup_last_run_timestamp_seconds",
                                               "Unix time the last retention run finished", NULL);
        static const char *const types[3] = {"config_audit", "event_audit", "dlq"};
        static const enum mutt_cfg_key day_keys[3] = {MUTT_CFG_RETENTION_AUDIT_DAYS,
                                                      MUTT_CFG_RETENTION_EVENT_AUDIT_DAYS, MUTT_CFG_RETENTION_DLQ_DAYS};
        for (int i = 0; i < 3; i++) {
            const char *v[] = {types[i]};
            r->deleted[i] = mutt_counter_labels(fam, v);
            mutt_counter_add(r->deleted[i], 0); /* render the series from the start */
            mutt_gauge_set(mutt_gauge_labels(days, v), (double)mutt_config_int(cfg, day_keys[i]));
        }
    }
    return r;
}

void mutt_retention_destroy(struct mutt_retention *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ndrop; i++)
        free(r->drop[i]);
    free(r);
}

bool mutt_retention_running(const struct mutt_retention *r)
{
    return r && r->step != ST_IDLE;
}

void mutt_retention_cancel(struct mutt_retention *r)
{
    if (r && r->step != ST_IDLE)
        r->cancel = true;
}

/* ------------------------------------------------------------------------------------------ */
/* finishing                                                                                   */

static void free_batch(struct mutt_retention *r)
{
    free(r->arows);
    free(r->arena);
    free(r->ids);
    r->arows = NULL;
    r->arena = NULL;
    r->ids = NULL;
}

static void finish(struct mutt_retention *r)
{
    free_batch(r);
    for (size_t i = 0; i < r->ndrop; i++) {
        free(r->drop[i]);
        r->drop[i] = NULL;
    }
    r->ndrop = 0;
    r->step = ST_IDLE;
    if (r->res.status == 0 && !r->res.dry_run && !r->res.skipped) {
        mutt_counter_add(r->deleted[0], (double)r->res.config_audit);
        mutt_counter_add(r->deleted[1], (double)r->res.event_audit);
        mutt_counter_add(r->deleted[2], (double)r->res.dlq);
        mutt_gauge_set(r->last_run_gauge, (double)wall_ms() / 1000.0);
    }
    struct mutt_retention_result res = r->res;
    mutt_retention_done_cb *done = r->done;
    void *priv = r->done_priv;
    r->done = NULL;
    done(priv, &res); /* may start the next run or destroy r: touch nothing after */
}

static void on_unlocked(void *privdata, redisReply *reply, int status)
{
    struct mutt_retention *r = privdata;
    r->locked = false;
    finish(r);
}

static void unlock_and_finish(struct mutt_retention *r)
{
    r->step = ST_UNLOCK;
    if (!r->locked) {
        finish(r);
        return;
    }
    const char *keys[] = {MUTT_RETENTION_LOCK_KEY};
    const char *args[] = {r->token};
    if (mutt_redis_evalsha(mutt_redis_cmd(r->redis), r->script_release, 1, keys, NULL, 1, args, NULL, on_unlocked, r) !=
        0) {
        r->locked = false; /* it expires by itself */
        finish(r);
    }
}

__attribute__((format(printf, 3, 4))) static void fail_run(struct mutt_retention *r, int status, const char *fmt, ...)
{
    if (r->res.status == 0) {
        r->res.status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->res.error, sizeof(r->res.error), fmt, ap);
        va_end(ap);
    }
    unlock_and_finish(r);
}

/* Common entry of every callback: a cancel or an earlier failure ends the run. */
static bool stopping(struct mutt_retention *r)
{
    if (r->cancel) {
        fail_run(r, MUTT_ECANCELED, "retention run cancelled (stopping)");
        return true;
    }
    return false;
}

static void pg_failed(struct mutt_retention *r, const char *what, PGresult *res, int status)
{
    /* W35: the driver's text goes to the log line only through our own words */
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    fail_run(r, status ? status : MUTT_EIO, "%s failed: %s%s%s", what, mutt_strerror(status ? status : MUTT_EIO),
             state ? " sqlstate " : "", state ? state : "");
}

static void on_lock_refreshed(void *privdata, redisReply *reply, int status)
{
    (void)privdata;
    (void)reply;
    (void)status; /* best effort: a lost refresh only shortens the lock */
}

/* Keeps the lock alive through long runs (a million rows take minutes). */
static void refresh_lock(struct mutt_retention *r)
{
    uint64_t now = uv_now(r->loop);
    if (!r->locked || now - r->lock_refreshed_at < LOCK_REFRESH_MS)
        return;
    r->lock_refreshed_at = now;
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%u", MUTT_RETENTION_LOCK_TTL_MS);
    const char *keys[] = {MUTT_RETENTION_LOCK_KEY};
    const char *args[] = {r->token, ttl};
    mutt_redis_evalsha(mutt_redis_cmd(r->redis), r->script_refresh, 1, keys, NULL, 2, args, NULL, on_lock_refreshed, NULL);
}

static int64_t result_count(PGresult *res)
{
    if (!res || PQntuples(res) < 1 || PQnfields(res) < 1)
        return 0;
    return strtoll(PQgetvalue(res, 0, 0), NULL, 10);
}

static int64_t result_affected(PGresult *res)
{
    const char *t = res ? PQcmdTuples(res) : "";
    return t[0] ? strtoll(t, NULL, 10) : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* steps                                                                                       */

static void on_lock(void *privdata, redisReply *reply, int status)
{
    struct mutt_retention *r = privdata;
    if (status != 0) {
        fail_run(r, status, "cannot take the retention lock: %s", mutt_strerror(status));
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        fail_run(r, MUTT_EEXIST, "another host is running retention (%s is held)", MUTT_RETENTION_LOCK_KEY);
        return;
    }
    r->locked = true;
    r->lock_refreshed_at = uv_now(r->loop);
    if (stopping(r))
        return;
    r->step = r->skip_if_newer_than_ms > 0 ? ST_CHECK_RECENT : ST_PARTITIONS_AHEAD;
    next(r);
}

static void on_last_run_read(void *privdata, redisReply *reply, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0) {
        fail_run(r, status, "cannot read %s: %s", MUTT_RETENTION_LAST_RUN_KEY, mutt_strerror(status));
        return;
    }
    if (reply->type == REDIS_REPLY_STRING) {
        int64_t last_ms = strtoll(reply->str, NULL, 10) * 1000;
        if (last_ms > 0 && wall_ms() - last_ms < r->skip_if_newer_than_ms) {
            r->res.skipped = true;
            unlock_and_finish(r);
            return;
        }
    }
    r->step = ST_PARTITIONS_AHEAD;
    next(r);
}

static void on_partitions_ahead(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0) {
        pg_failed(r, "creating event_audit_log partitions ahead", res, status);
        return;
    }
    r->step = ST_CONFIG;
    next(r);
}

/* Dry run: rows that would go and rows a hold keeps, per table. */
static void on_count(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    bool config = r->step == ST_CONFIG;
    if (status != 0) {
        pg_failed(r, config ? "config_audit_log retention" : "event_audit_log retention", res, status);
        return;
    }
    int64_t held = res && PQntuples(res) > 0 && PQnfields(res) > 1 ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    if (config) {
        r->res.config_audit = result_count(res);
        r->res.held_config_audit = held;
        r->step = ST_EVENT_ROWS;
    } else {
        r->res.event_audit = result_count(res);
        r->res.held_event_audit = held;
        r->step = ST_EVENT_PARTITIONS;
    }
    next(r);
}

/* Off the loop (D64): compress, write, fsync, rename, manifest, or ARCHIVE_COMMAND. Reads only
 * what the loop thread leaves alone while the job is queued. */
static void archive_work(uv_work_t *w)
{
    struct mutt_retention *r = w->data;
    const struct mutt_archive_batch b = {
        .dir = mutt_config_str(r->cfg, MUTT_CFG_ARCHIVE_DIR),
        .command = mutt_config_str(r->cfg, MUTT_CFG_ARCHIVE_COMMAND),
        .table = r->arc_table,
        .run_ms = r->res.started_at_ms,
        .seq = r->seq,
        .rows = r->arows,
        .nrows = (size_t)r->selected,
    };
    r->arc_rc = mutt_archive_write(&b, r->arc_err, sizeof(r->arc_err));
}

static void archive_done(uv_work_t *w, int status)
{
    struct mutt_retention *r = w->data;
    free(r->arows);
    free(r->arena);
    r->arows = NULL;
    r->arena = NULL;
    if (stopping(r))
        return;
    if (status != 0 || r->arc_rc != 0) {
        fail_run(r, MUTT_EIO, "archiving %s failed, its rows were not deleted: %s", r->arc_table,
                 status != 0 ? uv_strerror(status) : r->arc_err);
        return;
    }
    if (r->step == ST_PART_CHUNK) /* nothing to delete: the partition goes whole at the end */
        r->step = r->selected < PART_CHUNK_ROWS ? ST_PART_DROP : ST_PART_CHUNK;
    else
        r->step = r->step == ST_CONFIG ? ST_CONFIG_DELETE : ST_EVENT_DELETE;
    next(r);
}

/* Live run, after the config rows: old partitions first (archived whole and dropped), then the
 * rows left over (DEFAULT, partitions that hold rows, the current month's old part). */
static void start_slow_partitions(struct mutt_retention *r);

/* Copies a result's rows (id, day, json) into r->arows/r->arena, and with want_ids the ids into
 * r->ids as a bigint[] literal. Returns 0 or MUTT_ENOMEM. */
static int copy_batch(struct mutt_retention *r, PGresult *res, bool want_ids)
{
    int n = PQntuples(res);
    size_t total = 0, idlen = 3;
    for (int i = 0; i < n; i++) {
        total += (size_t)PQgetlength(res, i, 2);
        idlen += (size_t)PQgetlength(res, i, 0) + 1;
    }
    r->arows = calloc((size_t)n, sizeof(*r->arows));
    r->arena = malloc(total + 1);
    r->ids = want_ids ? malloc(idlen) : NULL;
    if (!r->arows || !r->arena || (want_ids && !r->ids))
        return MUTT_ENOMEM;
    char *a = r->arena, *ip = r->ids;
    if (ip)
        *ip++ = '{';
    for (int i = 0; i < n; i++) {
        size_t jl = (size_t)PQgetlength(res, i, 2), il = (size_t)PQgetlength(res, i, 0);
        memcpy(a, PQgetvalue(res, i, 2), jl);
        r->arows[i].json = a;
        r->arows[i].len = jl;
        a += jl;
        snprintf(r->arows[i].day, sizeof(r->arows[i].day), "%s", PQgetvalue(res, i, 1));
        if (ip) {
            if (i > 0)
                *ip++ = ',';
            memcpy(ip, PQgetvalue(res, i, 0), il);
            ip += il;
        }
    }
    if (ip) {
        *ip++ = '}';
        *ip = '\0';
    }
    return 0;
}

static void queue_archive(struct mutt_retention *r, const char *table)
{
    r->arc_table = table;
    r->seq++;
    r->work.data = r;
    int rc = uv_queue_work(r->loop, &r->work, archive_work, archive_done);
    if (rc != 0)
        fail_run(r, MUTT_EIO, "cannot queue the archive job: %s", uv_strerror(rc));
}

/* A batch of rows to delete: copy it out of the result and archive it before anything goes. */
static void on_batch_selected(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    bool config = r->step == ST_CONFIG;
    if (status != 0) {
        pg_failed(r, config ? "selecting config_audit_log rows" : "selecting event_audit_log rows", res, status);
        return;
    }
    int n = PQntuples(res);
    r->selected = n;
    if (n == 0) {
        if (config) {
            r->step = ST_EVENT_PARTITIONS;
            next(r);
        } else {
            start_slow_partitions(r);
        }
        return;
    }
    if (copy_batch(r, res, true) != 0) {
        fail_run(r, MUTT_ENOMEM, "out of memory");
        return;
    }
    int path = config ? 0 : 1;
    snprintf(r->rows_last_ts[path], sizeof(r->rows_last_ts[path]), "%s", PQgetvalue(res, n - 1, 3));
    snprintf(r->rows_last_id[path], sizeof(r->rows_last_id[path]), "%s", PQgetvalue(res, n - 1, 0));
    queue_archive(r, config ? "config_audit_log" : "event_audit_log");
}

/* Same day: keep the read order (the arena address follows it), so the sort is stable. */
static int cmp_row_day(const void *a, const void *b)
{
    const struct mutt_archive_row *x = a, *y = b;
    int c = strcmp(x->day, y->day);
    if (c != 0)
        return c;
    return x->json < y->json ? -1 : x->json > y->json;
}

/* A chunk of an old partition without held rows, read by id: archive it; nothing is deleted,
 * the partition is dropped whole once every chunk is durable. */
static void on_part_chunk(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0) {
        pg_failed(r, "reading an old event_audit_log partition", res, status);
        return;
    }
    int n = PQntuples(res);
    r->selected = n;
    if (n == 0) {
        r->step = ST_PART_DROP;
        next(r);
        return;
    }
    for (int i = 0; i < n; i++)
        r->part_idsum += (unsigned __int128)strtoull(PQgetvalue(res, i, 0), NULL, 10);
    r->part_rows += n;
    snprintf(r->part_last_id, sizeof(r->part_last_id), "%s", PQgetvalue(res, n - 1, 0));
    if (copy_batch(r, res, false) != 0) {
        fail_run(r, MUTT_ENOMEM, "out of memory");
        return;
    }
    /* mutt_archive_write makes one file per run of equal days: group them */
    qsort(r->arows, (size_t)n, sizeof(*r->arows), cmp_row_day);
    queue_archive(r, "event_audit_log");
}

static void on_batch_deleted(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    free(r->ids);
    r->ids = NULL;
    if (stopping(r))
        return;
    bool config = r->step == ST_CONFIG_DELETE;
    if (status != 0) {
        pg_failed(r, config ? "config_audit_log retention" : "event_audit_log retention", res, status);
        return;
    }
    int64_t n = result_affected(res);
    if (config)
        r->res.config_audit += n;
    else
        r->res.event_audit += n;
    if (r->selected < r->batch && !config) { /* the last, short batch: nothing older is left */
        start_slow_partitions(r);
        return;
    }
    if (r->selected < r->batch)
        r->step = ST_EVENT_PARTITIONS;
    else
        r->step = config ? ST_CONFIG : ST_EVENT_ROWS;
    next(r);
}

static void on_event_partitions(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0) {
        pg_failed(r, "listing event_audit_log partitions", res, status);
        return;
    }
    int64_t cutoff_ms = 0;
    mutt_time_parse_iso8601(r->cutoff_event, &cutoff_ms);
    for (int i = 0; i < PQntuples(res) && r->ndrop < MAX_DROP_PARTITIONS; i++) {
        const char *name = PQgetvalue(res, i, 0);
        if (!mutt_retention_partition_droppable(name, cutoff_ms))
            continue;
        r->drop[r->ndrop] = strdup(name);
        if (!r->drop[r->ndrop]) {
            fail_run(r, MUTT_ENOMEM, "out of memory");
            return;
        }
        r->drop_slow[r->ndrop] = false;
        r->drop_done[r->ndrop] = false;
        r->ndrop++;
    }
    r->drop_i = 0;
    if (r->res.dry_run)
        r->step = r->ndrop == 0 ? ST_DLQ : ST_EVENT_DROP_COUNT;
    else
        r->step = r->ndrop == 0 ? ST_EVENT_ROWS : ST_PART_CHECK;
    next(r);
}

/* Live run: the next old partition to archive whole, or on to the row-by-row path. */
static void next_whole_partition(struct mutt_retention *r)
{
    r->drop_i++;
    r->step = r->drop_i < r->ndrop ? ST_PART_CHECK : ST_EVENT_ROWS;
    next(r);
}

/* Dry run: every old partition. Live run: those not archived whole (held rows, or a partition
 * that changed while it was archived); the row-by-row path has emptied them up to held rows. */
static void next_partition(struct mutt_retention *r)
{
    r->drop_i++;
    while (r->drop_i < r->ndrop && r->drop_done[r->drop_i])
        r->drop_i++;
    r->step = r->drop_i < r->ndrop ? ST_EVENT_DROP_COUNT : ST_DLQ;
    next(r);
}

static void start_slow_partitions(struct mutt_retention *r)
{
    if (r->res.dry_run) {
        r->step = ST_EVENT_PARTITIONS;
        next(r);
        return;
    }
    r->drop_i = (size_t)-1; /* next_partition starts at 0 */
    next_partition(r);
}

static void on_part_check(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0) {
        pg_failed(r, "looking for held rows in an old event_audit_log partition", res, status);
        return;
    }
    if (result_count(res) > 0) {
        mutt_log_info("retention", "partition %s has rows under legal hold: emptying it row by row",
                      r->drop[r->drop_i]);
        r->drop_slow[r->drop_i] = true;
        next_whole_partition(r);
        return;
    }
    r->part_rows = 0;
    r->part_idsum = 0;
    snprintf(r->part_last_id, sizeof(r->part_last_id), "0");
    r->step = ST_PART_CHUNK;
    next(r);
}

static void on_part_drop(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (status != 0 && state && (strcmp(state, SQLSTATE_PART_CHANGED) == 0 || strcmp(state, "40P01") == 0)) {
        /* archived rows stay archived; the row-by-row path archives the partition again (restore
         * is idempotent) and deletes only what it archived */
        mutt_log_warn("retention", "partition %s changed while it was archived (sqlstate %s): emptying it row by row",
                      r->drop[r->drop_i], state);
        r->drop_slow[r->drop_i] = true;
        next_whole_partition(r);
        return;
    }
    if (status != 0) {
        pg_failed(r, "dropping an old event_audit_log partition", res, status);
        return;
    }
    mutt_log_info("retention", "dropped partition %s after archiving its %" PRId64 " rows whole", r->drop[r->drop_i],
                  r->part_rows);
    r->drop_done[r->drop_i] = true;
    r->res.event_audit += r->part_rows;
    r->res.partitions_dropped++;
    next_whole_partition(r);
}

/* Decimal text of an unsigned 128-bit value into buf (>= 40 bytes). */
static const char *u128_dec(unsigned __int128 v, char *buf, size_t len)
{
    char *p = buf + len - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v && p > buf);
    return p;
}

/* Live run: the rows left in an old partition after the archived deletes (only held ones, unless
 * something wrote into a months-old partition meanwhile). Dry run: the held rows in it. Either
 * way a partition with rows in it stays: it was emptied row by row instead of dropped. */
static void on_drop_count(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0) {
        pg_failed(r, "counting an old event_audit_log partition", res, status);
        return;
    }
    int64_t left = result_count(res);
    if (left > 0) {
        mutt_log_info("retention", "keeping partition %s: %" PRId64 " rows under legal hold", r->drop[r->drop_i],
                      left);
        r->res.partitions_kept++;
        next_partition(r);
        return;
    }
    if (r->res.dry_run) {
        r->res.partitions_dropped++;
        next_partition(r);
        return;
    }
    r->step = ST_EVENT_DROP;
    next(r);
}

static void on_drop(void *privdata, PGresult *res, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (status != 0 && state && (strcmp(state, SQLSTATE_PART_CHANGED) == 0 || strcmp(state, "40P01") == 0)) {
        /* its new rows were never archived: they stay, and the next run takes them */
        mutt_log_warn("retention", "keeping partition %s: rows arrived while it was emptied (sqlstate %s)",
                      r->drop[r->drop_i], state);
        r->res.partitions_kept++;
        next_partition(r);
        return;
    }
    if (status != 0) {
        pg_failed(r, "dropping an old event_audit_log partition", res, status);
        return;
    }
    mutt_log_info("retention", "dropped partition %s (emptied after archiving)", r->drop[r->drop_i]);
    r->res.partitions_dropped++;
    next_partition(r);
}

static void dlq_advance(struct mutt_retention *r, int64_t scanned, int64_t kept)
{
    r->dlq_kept += kept;
    if (scanned < r->batch) { /* reached the head: next list */
        r->dlq_i++;
        r->dlq_kept = 0;
    }
    if (r->dlq_i >= DLQ__COUNT)
        r->step = r->res.dry_run ? ST_UNLOCK : ST_LAST_RUN;
    next(r);
}

struct dlq_remove_ctx {
    struct mutt_retention *r;
    int64_t scanned, kept;
};

static void on_dlq_removed(void *privdata, redisReply *reply, int status)
{
    struct dlq_remove_ctx *c = privdata;
    struct mutt_retention *r = c->r;
    int64_t scanned = c->scanned, kept = c->kept;
    free(c);
    if (stopping(r))
        return;
    if (status != 0) {
        fail_run(r, status, "trimming %s: %s", dlq_key(r, r->dlq_i), mutt_strerror(status));
        return;
    }
    int64_t removed = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
    r->res.dlq += removed;
    dlq_advance(r, scanned, kept);
}

static void on_dlq_range(void *privdata, redisReply *reply, int status)
{
    struct mutt_retention *r = privdata;
    if (stopping(r))
        return;
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY) {
        fail_run(r, status ? status : MUTT_EIO, "reading %s: %s", dlq_key(r, r->dlq_i),
                 mutt_strerror(status ? status : MUTT_EIO));
        return;
    }
    int64_t scanned = (int64_t)reply->elements;
    size_t nexp = 0;
    const char **args = reply->elements ? calloc(reply->elements, sizeof(*args)) : NULL;
    size_t *lens = reply->elements ? calloc(reply->elements, sizeof(*lens)) : NULL;
    if (reply->elements && (!args || !lens)) {
        free(args);
        free(lens);
        fail_run(r, MUTT_ENOMEM, "out of memory");
        return;
    }
    /* tail first, the oldest end of an LPUSHed list */
    for (size_t i = reply->elements; i > 0; i--) {
        redisReply *it = reply->element[i - 1];
        if (it->type != REDIS_REPLY_STRING)
            continue;
        if (mutt_retention_dlq_decide(it->str, it->len, r->cutoff_dlq_ms) == MUTT_RETENTION_DLQ_EXPIRED) {
            args[nexp] = it->str;
            lens[nexp] = it->len;
            nexp++;
        }
    }
    if (r->res.dry_run || nexp == 0) {
        if (r->res.dry_run)
            r->res.dlq += (int64_t)nexp;
        free(args);
        free(lens);
        dlq_advance(r, scanned, scanned);
        return;
    }
    struct dlq_remove_ctx *c = malloc(sizeof(*c));
    const char *keys[] = {dlq_key(r, r->dlq_i)};
    int rc = c ? 0 : MUTT_ENOMEM;
    if (c) {
        *c = (struct dlq_remove_ctx){.r = r, .scanned = scanned, .kept = scanned - (int64_t)nexp};
        rc = mutt_redis_evalsha(mutt_redis_cmd(r->redis), r->script_dlq_remove, 1, keys, NULL, (int)nexp, args, lens,
                                on_dlq_removed, c);
        if (rc != 0)
            free(c);
    }
    free(args); /* argv is copied by the adapter */
    free(lens);
    if (rc != 0)
        fail_run(r, rc, "trimming %s: %s", keys[0], mutt_strerror(rc));
}

static void on_last_run_written(void *privdata, redisReply *reply, int status)
{
    struct mutt_retention *r = privdata;
    if (status != 0) {
        fail_run(r, status, "writing %s: %s", MUTT_RETENTION_LAST_RUN_KEY, mutt_strerror(status));
        return;
    }
    unlock_and_finish(r);
}

/* Sends the statement or command of the current step. */
static void next(struct mutt_retention *r)
{
    int rc = 0;
    const char *what = "";
    refresh_lock(r);
    switch (r->step) {
    case ST_IDLE:
    case ST_UNLOCK:
        unlock_and_finish(r);
        return;
    case ST_LOCK: {
        what = "taking the lock";
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%u", MUTT_RETENTION_LOCK_TTL_MS);
        const char *argv[] = {"SET", MUTT_RETENTION_LOCK_KEY, r->token, "NX", "PX", ttl};
        rc = mutt_redis_command(mutt_redis_cmd(r->redis), on_lock, r, 6, argv, NULL);
        break;
    }
    case ST_CHECK_RECENT: {
        what = "reading the last run";
        const char *argv[] = {"GET", MUTT_RETENTION_LAST_RUN_KEY};
        rc = mutt_redis_command(mutt_redis_cmd(r->redis), on_last_run_read, r, 2, argv, NULL);
        break;
    }
    case ST_PARTITIONS_AHEAD: {
        if (r->res.dry_run) { /* W30: a dry run changes nothing, not even future partitions */
            r->step = ST_CONFIG;
            next(r);
            return;
        }
        what = "creating partitions ahead";
        char months[8];
        snprintf(months, sizeof(months), "%d", MUTT_RETENTION_PARTITIONS_AHEAD);
        const char *p[] = {months};
        rc = mutt_pg_query(r->pg, SQL_ENSURE_PARTITIONS, 1, p, on_partitions_ahead, r);
        break;
    }
    case ST_CONFIG: {
        what = "config_audit_log retention";
        const char *p[] = {r->cutoff_config, r->batch_s, r->rows_last_ts[0], r->rows_last_id[0]};
        rc = r->res.dry_run ? mutt_pg_query(r->pg, SQL_CONFIG_COUNT, 1, p, on_count, r)
                            : mutt_pg_query(r->pg, SQL_CONFIG_SELECT, 4, p, on_batch_selected, r);
        break;
    }
    case ST_CONFIG_DELETE: {
        what = "config_audit_log retention";
        const char *p[] = {r->ids};
        rc = mutt_pg_query(r->pg, SQL_CONFIG_DELETE, 1, p, on_batch_deleted, r);
        break;
    }
    case ST_EVENT_DELETE: {
        what = "event_audit_log retention";
        const char *p[] = {r->ids, r->cutoff_event};
        rc = mutt_pg_query(r->pg, SQL_EVENT_DELETE, 2, p, on_batch_deleted, r);
        break;
    }
    case ST_EVENT_PARTITIONS:
        what = "listing partitions";
        rc = mutt_pg_query(r->pg, SQL_EVENT_PARTITIONS, 0, NULL, on_event_partitions, r);
        break;
    case ST_EVENT_DROP_COUNT:
    case ST_EVENT_DROP: {
        what = "dropping a partition";
        int y, m;
        const char *name = r->drop[r->drop_i];
        if (mutt_retention_partition_month(name, &y, &m) != 0) { /* never interpolate anything else */
            fail_run(r, MUTT_EINVAL, "refusing to drop unexpected table name");
            return;
        }
        char sql[512];
        if (r->step == ST_EVENT_DROP_COUNT) {
            if (r->res.dry_run)
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s e WHERE %s", name, HELD_EVENT("e"));
            else
                snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", name);
            rc = mutt_pg_query(r->pg, sql, 0, NULL, on_drop_count, r);
        } else {
            /* empty when counted; a row arriving since must not go unarchived: check again
             * under the same locks as the whole-partition drop */
            snprintf(sql, sizeof(sql),
                     "DO $mutt$ BEGIN IF to_regclass('%s') IS NULL THEN RETURN; END IF; "
                     "LOCK TABLE ONLY event_audit_log IN ACCESS EXCLUSIVE MODE; "
                     "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; "
                     "IF EXISTS (SELECT 1 FROM %s) THEN "
                     "RAISE EXCEPTION 'partition changed while emptied' USING ERRCODE = '%s'; END IF; "
                     "DROP TABLE %s; END $mutt$",
                     name, name, name, SQLSTATE_PART_CHANGED, name);
            rc = mutt_pg_query(r->pg, sql, 0, NULL, on_drop, r);
        }
        break;
    }
    case ST_PART_CHECK:
    case ST_PART_CHUNK:
    case ST_PART_DROP: {
        what = "archiving a partition whole";
        int y, m;
        const char *name = r->drop[r->drop_i];
        if (mutt_retention_partition_month(name, &y, &m) != 0) { /* never interpolate anything else */
            fail_run(r, MUTT_EINVAL, "refusing to archive unexpected table name");
            return;
        }
        char sql[2048];
        if (r->step == ST_PART_CHECK) {
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM (SELECT 1 FROM %s e WHERE %s LIMIT 1) s", name,
                     HELD_EVENT("e"));
            rc = mutt_pg_query(r->pg, sql, 0, NULL, on_part_check, r);
        } else if (r->step == ST_PART_CHUNK) {
            /* by id (the primary key's first column): no sort, no hold check per row */
            snprintf(sql, sizeof(sql),
                     "SELECT e.id, to_char(e.event_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD'), row_to_json(e)::text "
                     "FROM %s e WHERE e.id > $1::bigint ORDER BY e.id LIMIT %d",
                     name, PART_CHUNK_ROWS);
            const char *p[] = {r->part_last_id};
            rc = mutt_pg_query(r->pg, sql, 1, p, on_part_chunk, r);
        } else {
            /* One statement, one transaction. The parent first (DROP takes it anyway: the same
             * order as any insert, so no deadlock with one), then the partition: nothing can be
             * added or held while we check that it holds exactly the rows archived (their count
             * and id sum; retention is the only deleter) and none is held, then drop it. Inserts
             * into event_audit_log wait during that one scan of the partition (the alerter's
             * audit rows wait in Redis meanwhile); locking only the partition for the scan
             * would risk a deadlock with a late row's insert, which would then fail. */
            char sum[48];
            const char *sum_s = u128_dec(r->part_idsum, sum, sizeof(sum));
            snprintf(sql, sizeof(sql),
                     "DO $mutt$ DECLARE n bigint; s numeric; BEGIN "
                     "LOCK TABLE ONLY event_audit_log IN ACCESS EXCLUSIVE MODE; "
                     "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; "
                     "LOCK TABLE legal_holds IN SHARE MODE; "
                     "SELECT count(*), coalesce(sum(id), 0) INTO n, s FROM %s; "
                     "IF n <> %" PRId64 " OR s <> %s OR EXISTS (SELECT 1 FROM %s e WHERE %s) THEN "
                     "RAISE EXCEPTION 'partition changed while archiving' USING ERRCODE = '%s'; END IF; "
                     "DROP TABLE %s; END $mutt$",
                     name, name, r->part_rows, sum_s, name, HELD_EVENT("e"), SQLSTATE_PART_CHANGED, name);
            rc = mutt_pg_query(r->pg, sql, 0, NULL, on_part_drop, r);
        }
        break;
    }
    case ST_EVENT_ROWS: {
        what = "event_audit_log retention";
        const char *p[] = {r->cutoff_event, r->batch_s, r->rows_last_ts[1], r->rows_last_id[1]};
        rc = r->res.dry_run ? mutt_pg_query(r->pg, SQL_EVENT_COUNT, 1, p, on_count, r)
                            : mutt_pg_query(r->pg, SQL_EVENT_SELECT, 4, p, on_batch_selected, r);
        break;
    }
    case ST_DLQ: {
        what = "reading a DLQ";
        char start[24], stop[24];
        snprintf(start, sizeof(start), "%" PRId64, -(r->dlq_kept + r->batch));
        snprintf(stop, sizeof(stop), "%" PRId64, -(r->dlq_kept + 1));
        const char *argv[] = {"LRANGE", dlq_key(r, r->dlq_i), start, stop};
        rc = mutt_redis_command(mutt_redis_cmd(r->redis), on_dlq_range, r, 4, argv, NULL);
        break;
    }
    case ST_LAST_RUN: {
        what = "writing the last run";
        char secs[24];
        snprintf(secs, sizeof(secs), "%" PRId64, wall_ms() / 1000);
        const char *argv[] = {"SET", MUTT_RETENTION_LAST_RUN_KEY, secs};
        rc = mutt_redis_command(mutt_redis_cmd(r->redis), on_last_run_written, r, 3, argv, NULL);
        break;
    }
    }
    if (rc != 0)
        fail_run(r, rc, "%s: %s", what, mutt_strerror(rc));
}

int mutt_retention_start(struct mutt_retention *r, bool dry_run, int64_t skip_if_newer_than_ms,
                         mutt_retention_done_cb *done, void *privdata)
{
    if (!r || !done)
        return MUTT_EINVAL;
    if (r->step != ST_IDLE)
        return MUTT_ESTATE;
    const struct mutt_config *cfg = r->cfg;
    memset(&r->res, 0, sizeof(r->res));
    r->res.dry_run = dry_run || mutt_config_bool(cfg, MUTT_CFG_RETENTION_DRY_RUN);
    r->res.started_at_ms = wall_ms();
    r->cancel = false;
    r->locked = false;
    r->done = done;
    r->done_priv = privdata;
    r->skip_if_newer_than_ms = skip_if_newer_than_ms;
    r->dlq_i = 0;
    r->dlq_kept = 0;
    r->seq = 0;
    for (int i = 0; i < 2; i++) {
        snprintf(r->rows_last_ts[i], sizeof(r->rows_last_ts[i]), "-infinity");
        snprintf(r->rows_last_id[i], sizeof(r->rows_last_id[i]), "0");
    }
    r->batch = mutt_config_int(cfg, MUTT_CFG_RETENTION_BATCH_SIZE);
    snprintf(r->batch_s, sizeof(r->batch_s), "%" PRId64, r->batch);
    int64_t now = r->res.started_at_ms;
    mutt_time_format_iso8601_ms(mutt_retention_cutoff_ms(now, mutt_config_int(cfg, MUTT_CFG_RETENTION_AUDIT_DAYS)),
                                r->cutoff_config, sizeof(r->cutoff_config));
    mutt_time_format_iso8601_ms(
        mutt_retention_cutoff_ms(now, mutt_config_int(cfg, MUTT_CFG_RETENTION_EVENT_AUDIT_DAYS)), r->cutoff_event,
        sizeof(r->cutoff_event));
    r->cutoff_dlq_ms = mutt_retention_cutoff_ms(now, mutt_config_int(cfg, MUTT_CFG_RETENTION_DLQ_DAYS));
    uint8_t rnd[16];
    mutt_random_bytes(rnd, sizeof(rnd));
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(r->token + 2 * i, 3, "%02x", rnd[i]);
    r->step = ST_LOCK;
    next(r);
    return 0;
}
