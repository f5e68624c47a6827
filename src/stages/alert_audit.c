/* The alert stage's audit writer (CONTRACT §4, D3, D12, D28, W20): moves event audit rows from
 * mutt:audit:pending (where the completion Lua of each handled event put them) into
 * event_audit_log in batches. Claims are atomic Lua moves into per-pod, per-slot claim lists, so
 * a row is never lost between Redis and PostgreSQL and a repeated insert is a no-op (unique key
 * (event_id, event_timestamp) + ON CONFLICT DO NOTHING). Knows no rules and no queues besides
 * its own. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/alert.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "mutt/timefmt.h"

#define MAX_SLOTS 8u
#define SCAN_COUNT "200"

/* KEYS[1] pending, KEYS[2] this slot's claim list; ARGV[1] batch size.
 * A non-empty claim list is a batch that was claimed but not committed (PG failed, or this pod
 * restarted under the same name): hand it out again before claiming new rows. When the whole
 * pending list fits in one batch it is RENAMEd (O(1), no copy of the rows). Returns
 * {pending length, rows}. */
static const char CLAIM_LUA[] =
    "local items = redis.call('LRANGE', KEYS[2], 0, -1)\n"
    "if #items == 0 then\n"
    "  local n = tonumber(ARGV[1])\n"
    "  local len = redis.call('LLEN', KEYS[1])\n"
    "  if len > 0 and len <= n then\n"
    "    redis.call('RENAME', KEYS[1], KEYS[2])\n"
    "    return {0, redis.call('LRANGE', KEYS[2], 0, -1)}\n"
    "  end\n"
    "  items = redis.call('LRANGE', KEYS[1], -n, -1)\n"
    "  if #items > 0 then\n"
    "    redis.call('LTRIM', KEYS[1], 0, -#items - 1)\n"
    "    for i = 1, #items, 1000 do\n"
    "      redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {redis.call('LLEN', KEYS[1]), items}\n";

/* KEYS[1] claim list, KEYS[2] DLQ; ARGV: DLQ items for rows PostgreSQL refused. Done with a
 * batch: its rows are committed (or in the DLQ), so the claim list goes. */
static const char RELEASE_LUA[] =
    "for i = 1, #ARGV, 1000 do\n"
    "  redis.call('LPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))\n"
    "end\n"
    "return redis.call('DEL', KEYS[1])\n";

/* KEYS[1] a claim list, KEYS[2] its pod's heartbeat key, KEYS[3] pending. Moves the list back
 * only when the pod is dead, in one script: two janitors racing cannot both move it, and a pod
 * that is alive keeps its batch. Returns rows moved, or -1 when the pod is alive. */
static const char JANITOR_LUA[] =
    "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end\n"
    "local items = redis.call('LRANGE', KEYS[1], 0, -1)\n"
    "for i = 1, #items, 1000 do\n"
    "  redis.call('RPUSH', KEYS[3], unpack(items, i, math.min(i + 999, #items)))\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return #items\n";

static const char INSERT_SQL[] =
    "INSERT INTO event_audit_log (event_timestamp, event_id, correlation_id, hostname, matched_rule_id,"
    " handling_decision, forwarded_to_moog, raw_message)"
    " SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],"
    " $7::bool[], $8::text[]) ON CONFLICT DO NOTHING";
#define NCOLS 8

enum slot_state {
    SLOT_IDLE = 0, /* nothing claimed in memory */
    SLOT_CLAIMING, /* claim script in flight */
    SLOT_INSERTING,/* INSERT in flight (batch, or one row in single-row mode) */
    SLOT_RELEASING,/* release script in flight */
};

struct slot {
    struct mutt_alert_audit *a;
    unsigned index;
    enum slot_state state;
    char key[256];       /* claim list */
    char **rows;         /* claimed row JSON strings (owned) */
    size_t nrows;
    size_t next_single;  /* single-row mode: next row to insert */
    bool single;         /* the batch insert failed on data: rows go one by one */
    char **dlq;          /* DLQ items for rows refused in single-row mode (owned) */
    size_t ndlq;
    bool full;           /* the last claim filled a batch: claim again at once */
    uint64_t insert_ns;
};

struct mutt_alert_audit {
    uv_loop_t *loop;
    struct mutt_redis *redis;
    struct mutt_pg *pg;
    char *pending_key, *claim_prefix, *pod, *hb_prefix, *dlq_key;
    size_t batch_size;
    unsigned nslots;
    uint64_t flush_interval_ms, retry_ms;
    int claim_script, release_script, janitor_script;
    struct slot slots[MAX_SLOTS];
    uv_timer_t timer;
    bool timer_open;
    bool running;
    bool stopping;
    uint64_t backoff_until_ms; /* loop time before which no slot touches PostgreSQL */
    size_t inflight;           /* Redis/PG calls whose callback has not run (slots + janitor) */
    void (*done)(void *);
    void *done_priv;
    int64_t pending_seen;
    uint64_t written, dlqd;
    bool pg_down_logged;

    struct mutt_histogram *db_latency; /* mutt_db_write_latency_ms */
    struct mutt_counter *rows_written;
    struct mutt_counter *rows_dlq;
    struct mutt_counter *fail_disconnected;
    struct mutt_counter *fail_error;
    struct mutt_gauge *pending_gauge;
};

static void slot_kick(struct slot *s);

/* ------------------------------------------------------------------------------------------ */
/* row JSON                                                                                    */

int mutt_alert_audit_row_json(const struct mutt_alert_audit_row *row, char **out, size_t *len)
{
    *out = NULL;
    json_t *o = json_object();
    if (!o)
        return MUTT_ENOMEM;
    int bad = 0;
    bad |= json_object_set_new(o, "ts", json_string(row->event_timestamp));
    bad |= json_object_set_new(o, "eid", json_string(row->event_id));
    if (row->correlation_id)
        bad |= json_object_set_new(o, "cid", json_string(row->correlation_id));
    bad |= json_object_set_new(o, "host", json_string(row->hostname ? row->hostname : ""));
    bad |= json_object_set_new(o, "rule", json_integer((json_int_t)row->rule_id));
    bad |= json_object_set_new(o, "dec", json_string(row->handling_decision ? row->handling_decision : ""));
    bad |= json_object_set_new(o, "fwd", json_boolean(row->forwarded));
    if (bad) {
        json_decref(o);
        return MUTT_EINVAL;
    }
    char head[1024];
    size_t hn = 0;
    char *heap = NULL;
    if (mutt_event_dump(o, head, sizeof head, &hn) == MUTT_EFULL) {
        if (mutt_event_dump_alloc(o, &heap, &hn) != 0) {
            json_decref(o);
            return MUTT_ENOMEM;
        }
    }
    json_decref(o);
    /* the raw event is already compact JSON: splice it in as a value instead of escaping it as
     * a string (half the bytes to write and to read back) */
    const char *h = heap ? heap : head;
    char *s = malloc(hn + row->raw_len + 16);
    if (!s) {
        free(heap);
        return MUTT_ENOMEM;
    }
    size_t n = hn - 1; /* drop the closing brace */
    memcpy(s, h, n);
    memcpy(s + n, ",\"raw\":", 7);
    n += 7;
    memcpy(s + n, row->raw, row->raw_len);
    n += row->raw_len;
    s[n++] = '}';
    s[n] = '\0';
    free(heap);
    *out = s;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* array literals for unnest()                                                                 */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void buf_putc(struct buf *b, char c)
{
    buf_reserve(b, 1);
    if (!b->oom) {
        b->p[b->len++] = c;
        b->p[b->len] = '\0';
    }
}

/* Appends one element of a PostgreSQL array literal: NULL unquoted, else "..." with \ and "
 * escaped (the only two characters special inside a quoted element). */
static void buf_elem(struct buf *b, const char *s, size_t n)
{
    if (b->len > 1)
        buf_putc(b, ',');
    if (!s) {
        buf_reserve(b, 4);
        if (!b->oom) {
            memcpy(b->p + b->len, "NULL", 5);
            b->len += 4;
        }
        return;
    }
    buf_reserve(b, n * 2 + 2);
    if (b->oom)
        return;
    char *d = b->p + b->len;
    *d++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            *d++ = '\\';
        *d++ = s[i];
    }
    *d++ = '"';
    *d = '\0';
    b->len = (size_t)(d - b->p);
}

/* Parses one pending row into its column texts (pointers into `o`, or scratch for numbers).
 * Returns false when the row is not one of ours (it then goes to the DLQ as it is). */
struct cols {
    const char *v[NCOLS];
    size_t n[NCOLS];
    char ts[MUTT_TIME_ISO8601_MS_LEN];
    char rule[24];
    char *raw_heap; /* the raw event re-serialised when stored as an object (freed by caller) */
};

static bool row_cols(const json_t *o, struct cols *c)
{
    const json_t *ts = json_object_get(o, "ts"), *eid = json_object_get(o, "eid"), *raw = json_object_get(o, "raw");
    c->raw_heap = NULL;
    if (json_is_object(raw)) {
        size_t rl = 0;
        if (mutt_event_dump_alloc(raw, &c->raw_heap, &rl) != 0)
            return false;
    }
    const json_t *rule = json_object_get(o, "rule");
    int64_t ms;
    if (!json_is_string(ts) || !json_is_string(eid) || (!json_is_string(raw) && !c->raw_heap) ||
        mutt_time_parse_iso8601(json_string_value(ts), &ms) != 0 ||
        mutt_time_format_iso8601_ms(ms, c->ts, sizeof c->ts) != 0)
        return false;
    c->v[0] = c->ts;
    c->n[0] = strlen(c->ts);
    const char *keys[] = {NULL, "eid", "cid", "host", NULL, "dec", NULL, "raw"};
    for (int i = 1; i < NCOLS; i++) {
        if (!keys[i])
            continue;
        const json_t *v = json_object_get(o, keys[i]);
        c->v[i] = json_is_string(v) ? json_string_value(v) : NULL;
        c->n[i] = json_is_string(v) ? json_string_length(v) : 0;
    }
    if (json_is_integer(rule)) {
        snprintf(c->rule, sizeof c->rule, "%lld", (long long)json_integer_value(rule));
        c->v[4] = c->rule;
        c->n[4] = strlen(c->rule);
    } else {
        c->v[4] = NULL;
    }
    c->v[6] = json_is_true(json_object_get(o, "fwd")) ? "t" : "f";
    c->n[6] = 1;
    if (c->raw_heap) {
        c->v[7] = c->raw_heap;
        c->n[7] = strlen(c->raw_heap);
    }
    return true;
}

static json_t *dlq_wrap(const char *row, const char *reason)
{
    char at[MUTT_TIME_ISO8601_MS_LEN];
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    mutt_time_format_iso8601_ms((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, at, sizeof at);
    json_t *o = json_object();
    json_object_set_new(o, "_raw", json_string(row));
    json_object_set_new(o, "_dlq_reason", json_string(reason));
    json_object_set_new(o, "_failed_at", json_string(at));
    json_object_set_new(o, "_origin", json_string("audit"));
    return o;
}

static void slot_add_dlq(struct slot *s, const char *row, const char *reason)
{
    json_t *o = dlq_wrap(row, reason);
    char *item = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!item)
        return; /* OOM: the row then stays claimed and is retried (never dropped) */
    char **grown = realloc(s->dlq, (s->ndlq + 1) * sizeof *grown);
    if (!grown) {
        free(item);
        return;
    }
    s->dlq = grown;
    s->dlq[s->ndlq++] = item;
}

/* ------------------------------------------------------------------------------------------ */
/* slot lifecycle                                                                              */

static void slot_clear(struct slot *s)
{
    for (size_t i = 0; i < s->nrows; i++)
        free(s->rows[i]);
    free(s->rows);
    s->rows = NULL;
    s->nrows = 0;
    for (size_t i = 0; i < s->ndlq; i++)
        free(s->dlq[i]);
    free(s->dlq);
    s->dlq = NULL;
    s->ndlq = 0;
    s->single = false;
    s->next_single = 0;
}

static void maybe_stopped(struct mutt_alert_audit *a)
{
    if (!a->stopping || a->inflight > 0 || !a->done)
        return;
    void (*done)(void *) = a->done;
    a->done = NULL;
    done(a->done_priv);
}

static uint64_t now_ms(struct mutt_alert_audit *a)
{
    return uv_now(a->loop);
}

/* PostgreSQL could not take the batch: keep it claimed and pause every slot for retry_ms. */
static void pg_backoff(struct mutt_alert_audit *a, int status)
{
    a->backoff_until_ms = now_ms(a) + a->retry_ms;
    if (!a->pg_down_logged) {
        mutt_log_warn("alert", "audit rows wait in Redis: PostgreSQL %s", mutt_strerror(status));
        a->pg_down_logged = true;
    }
}

static void on_released(void *privdata, redisReply *reply, int status)
{
    struct slot *s = privdata;
    struct mutt_alert_audit *a = s->a;
    a->inflight--;
    if (status == 0) {
        mutt_counter_add(a->rows_dlq, (double)s->ndlq);
        a->dlqd += s->ndlq;
    }
    /* on failure the claim list is still there: the next claim returns it and the insert is a
     * no-op for the rows already committed */
    slot_clear(s);
    s->state = SLOT_IDLE;
    if (status == 0 && s->full)
        slot_kick(s);
    maybe_stopped(a);
}

static void release(struct slot *s)
{
    struct mutt_alert_audit *a = s->a;
    const char *keys[2] = {s->key, a->dlq_key};
    size_t keylens[2] = {strlen(s->key), strlen(a->dlq_key)};
    size_t *lens = s->ndlq ? malloc(s->ndlq * sizeof *lens) : NULL;
    if (s->ndlq && !lens) {
        slot_clear(s);
        s->state = SLOT_IDLE;
        return;
    }
    for (size_t i = 0; i < s->ndlq; i++)
        lens[i] = strlen(s->dlq[i]);
    s->state = SLOT_RELEASING;
    int rc = mutt_redis_evalsha(mutt_redis_cmd(a->redis), a->release_script, 2, keys, keylens, (int)s->ndlq,
                                (const char **)s->dlq, lens, on_released, s);
    free(lens);
    if (rc != 0) {
        slot_clear(s);
        s->state = SLOT_IDLE;
        return;
    }
    a->inflight++;
}

static void insert_next(struct slot *s);

/* Single-row mode: on to the next row, or release the batch after the last one. */
static void single_advance(struct slot *s)
{
    struct mutt_alert_audit *a = s->a;
    if (++s->next_single < s->nrows) {
        if (!a->stopping) {
            insert_next(s);
            return;
        }
        slot_clear(s); /* stopping mid-way: the claim list keeps the batch for later */
        s->state = SLOT_IDLE;
        return;
    }
    release(s);
}

static void on_inserted(void *privdata, PGresult *res, int status)
{
    struct slot *s = privdata;
    struct mutt_alert_audit *a = s->a;
    a->inflight--;
    if (status == 0) {
        mutt_histogram_observe(a->db_latency, (double)(uv_hrtime() - s->insert_ns) / 1e6);
        a->pg_down_logged = false;
        size_t n = s->single ? 1 : s->nrows;
        mutt_counter_add(a->rows_written, (double)n);
        a->written += n;
        if (s->single)
            single_advance(s);
        else
            release(s);
    } else if (status == MUTT_EIO && res) {
        /* PostgreSQL refused the data (not the connection): find the row(s) at fault one by one
         * rather than blocking every later row behind them. */
        mutt_counter_inc(a->fail_error);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (!s->single && s->nrows > 1) {
            mutt_log_warn("alert", "audit batch of %zu rows refused (%s): inserting one by one", s->nrows,
                          msg ? msg : "error");
            s->single = true;
            s->next_single = 0;
            if (!a->stopping) {
                insert_next(s);
            } else {
                slot_clear(s);
                s->state = SLOT_IDLE;
            }
        } else {
            char reason[300];
            snprintf(reason, sizeof reason, "audit insert refused: %s", msg ? msg : "error");
            mutt_log_warn("alert", "audit row to the DLQ: %s", reason);
            slot_add_dlq(s, s->rows[s->single ? s->next_single : 0], reason);
            if (s->single)
                single_advance(s);
            else
                release(s);
        }
    } else {
        mutt_counter_inc(a->fail_disconnected);
        pg_backoff(a, status);
        slot_clear(s);
        s->state = SLOT_IDLE;
    }
    maybe_stopped(a);
}

/* Builds and sends the INSERT for the whole batch, or for row next_single in single-row mode.
 * Rows that are not ours (corrupt) go to the DLQ instead of blocking the batch. */
static void insert_next(struct slot *s)
{
    struct mutt_alert_audit *a = s->a;
    struct buf cols[NCOLS];
    memset(cols, 0, sizeof cols);
    for (int c = 0; c < NCOLS; c++)
        buf_putc(&cols[c], '{');
    size_t from = s->single ? s->next_single : 0, to = s->single ? s->next_single + 1 : s->nrows;
    size_t good = 0;
    for (size_t i = from; i < to; i++) {
        json_t *o = json_loads(s->rows[i], 0, NULL);
        struct cols cv = {.raw_heap = NULL};
        if (!o || !row_cols(o, &cv)) {
            slot_add_dlq(s, s->rows[i], "audit row unreadable");
            free(cv.raw_heap);
            json_decref(o);
            continue;
        }
        for (int c = 0; c < NCOLS; c++)
            buf_elem(&cols[c], cv.v[c], cv.v[c] ? cv.n[c] : 0);
        free(cv.raw_heap);
        json_decref(o);
        good++;
    }
    bool oom = false;
    for (int c = 0; c < NCOLS; c++) {
        buf_putc(&cols[c], '}');
        oom |= cols[c].oom;
    }
    int rc = 0;
    if (oom) {
        rc = MUTT_ENOMEM;
    } else if (good == 0) {
        /* nothing to insert: skip ahead */
        for (int c = 0; c < NCOLS; c++)
            free(cols[c].p);
        if (s->single)
            single_advance(s);
        else
            release(s);
        return;
    } else {
        const char *vals[NCOLS];
        for (int c = 0; c < NCOLS; c++)
            vals[c] = cols[c].p;
        s->insert_ns = uv_hrtime();
        rc = mutt_pg_query(a->pg, INSERT_SQL, NCOLS, vals, on_inserted, s);
    }
    for (int c = 0; c < NCOLS; c++)
        free(cols[c].p);
    if (rc != 0) {
        mutt_counter_inc(a->fail_disconnected);
        pg_backoff(a, rc);
        slot_clear(s);
        s->state = SLOT_IDLE;
        return;
    }
    s->state = SLOT_INSERTING;
    a->inflight++;
}

static void on_claimed(void *privdata, redisReply *reply, int status)
{
    struct slot *s = privdata;
    struct mutt_alert_audit *a = s->a;
    a->inflight--;
    s->state = SLOT_IDLE;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER || reply->element[1]->type != REDIS_REPLY_ARRAY) {
        maybe_stopped(a);
        return;
    }
    a->pending_seen = reply->element[0]->integer;
    mutt_gauge_set(a->pending_gauge, (double)a->pending_seen);
    redisReply *items = reply->element[1];
    if (items->elements == 0 || a->stopping) {
        maybe_stopped(a); /* stopping: anything claimed stays in the claim list for later */
        return;
    }
    s->rows = calloc(items->elements, sizeof *s->rows);
    if (!s->rows) {
        maybe_stopped(a);
        return;
    }
    for (size_t i = 0; i < items->elements; i++) {
        redisReply *e = items->element[i];
        s->rows[i] = e->type == REDIS_REPLY_STRING ? strndup(e->str, e->len) : strdup("");
        if (!s->rows[i]) {
            slot_clear(s);
            maybe_stopped(a);
            return;
        }
        s->nrows++;
    }
    s->full = items->elements >= a->batch_size;
    insert_next(s);
    maybe_stopped(a);
}

/* Claims a batch for an idle slot (unless stopping or PostgreSQL is backing off). */
static void slot_kick(struct slot *s)
{
    struct mutt_alert_audit *a = s->a;
    if (s->state != SLOT_IDLE || !a->running || a->stopping || now_ms(a) < a->backoff_until_ms)
        return;
    if (!mutt_pg_connected(a->pg) && s->index > 0)
        return; /* one slot probes while PostgreSQL is down */
    char n[24];
    snprintf(n, sizeof n, "%zu", a->batch_size);
    const char *keys[2] = {a->pending_key, s->key};
    size_t keylens[2] = {strlen(a->pending_key), strlen(s->key)};
    const char *args[1] = {n};
    size_t arglens[1] = {strlen(n)};
    if (mutt_redis_evalsha(mutt_redis_cmd(a->redis), a->claim_script, 2, keys, keylens, 1, args, arglens, on_claimed,
                           s) != 0)
        return;
    s->state = SLOT_CLAIMING;
    a->inflight++;
}

static void on_tick(uv_timer_t *t)
{
    struct mutt_alert_audit *a = t->data;
    for (unsigned i = 0; i < a->nslots; i++)
        slot_kick(&a->slots[i]);
}

/* ------------------------------------------------------------------------------------------ */
/* janitor                                                                                     */

struct janitor_scan {
    struct mutt_alert_audit *a;
    char cursor[32];
};

static void janitor_scan_next(struct janitor_scan *js);

static void on_janitor_moved(void *privdata, redisReply *reply, int status)
{
    struct mutt_alert_audit *a = privdata;
    a->inflight--;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
        mutt_log_info("alert", "janitor: %lld audit rows of a dead pod back to %s", reply->integer, a->pending_key);
    maybe_stopped(a);
}

static void on_janitor_scan(void *privdata, redisReply *reply, int status)
{
    struct janitor_scan *js = privdata;
    struct mutt_alert_audit *a = js->a;
    a->inflight--;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_ARRAY) {
        free(js);
        maybe_stopped(a);
        return;
    }
    snprintf(js->cursor, sizeof js->cursor, "%s", reply->element[0]->str);
    size_t plen = strlen(a->claim_prefix);
    redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= plen + 1)
            continue;
        /* <prefix>:<pod>:<slot>: the pod is everything between, so pod names may hold ':' */
        const char *pod = k->str + plen + 1;
        const char *last = memrchr(pod, ':', k->len - plen - 1);
        if (!last || last == pod)
            continue;
        size_t podlen = (size_t)(last - pod);
        if (podlen == strlen(a->pod) && memcmp(pod, a->pod, podlen) == 0)
            continue; /* ours: the slots re-insert them */
        char hb[512];
        int hn = snprintf(hb, sizeof hb, "%s:%.*s", a->hb_prefix, (int)podlen, pod);
        if (hn < 0 || (size_t)hn >= sizeof hb)
            continue;
        const char *kk[3] = {k->str, hb, a->pending_key};
        size_t kl[3] = {k->len, (size_t)hn, strlen(a->pending_key)};
        if (mutt_redis_evalsha(mutt_redis_cmd(a->redis), a->janitor_script, 3, kk, kl, 0, NULL, NULL,
                               on_janitor_moved, a) == 0)
            a->inflight++;
    }
    if (strcmp(js->cursor, "0") == 0 || a->stopping) {
        free(js);
        maybe_stopped(a);
        return;
    }
    janitor_scan_next(js);
    maybe_stopped(a);
}

static void janitor_scan_next(struct janitor_scan *js)
{
    struct mutt_alert_audit *a = js->a;
    char match[300];
    snprintf(match, sizeof match, "%s:*", a->claim_prefix);
    const char *argv[] = {"SCAN", js->cursor, "MATCH", match, "COUNT", SCAN_COUNT};
    size_t argl[6];
    for (int i = 0; i < 6; i++)
        argl[i] = strlen(argv[i]);
    if (mutt_redis_command(mutt_redis_cmd(a->redis), on_janitor_scan, js, 6, argv, argl) != 0) {
        free(js);
        return;
    }
    a->inflight++;
}

int mutt_alert_audit_janitor(struct mutt_alert_audit *a)
{
    if (a->stopping)
        return MUTT_ESTATE;
    if (!mutt_redis_connected(a->redis))
        return MUTT_EDISCONNECTED;
    struct janitor_scan *js = calloc(1, sizeof *js);
    if (!js)
        return MUTT_ENOMEM;
    js->a = a;
    snprintf(js->cursor, sizeof js->cursor, "0");
    janitor_scan_next(js);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* lifecycle                                                                                   */

static int register_metrics(struct mutt_alert_audit *a, struct mutt_metrics *m)
{
    static const char *const result[] = {"result", NULL};
    static const char *const reason[] = {"reason", NULL};
    a->db_latency = mutt_metrics_histogram(m, "mutt_db_write_latency_ms", "Audit batch insert time in ms.", NULL,
                                           mutt_metrics_db_ms_buckets,
                                           MUTT_METRICS_NBUCKETS(mutt_metrics_db_ms_buckets));
    struct mutt_counter *rows = mutt_metrics_counter(
        m, "mutt_alerter_audit_rows_total", "Audit rows moved out of mutt:audit:pending: written (committed) or dlq.",
        result);
    struct mutt_counter *fails = mutt_metrics_counter(
        m, "mutt_alerter_audit_failures_total", "Audit inserts that failed: disconnected (retried) or error.", reason);
    a->pending_gauge = mutt_metrics_gauge(m, "mutt_alerter_audit_pending", "Audit rows waiting in Redis for PostgreSQL.",
                                          NULL);
    if (!a->db_latency || !rows || !fails || !a->pending_gauge)
        return MUTT_ENOMEM;
    const char *w[] = {"written"}, *d[] = {"dlq"}, *dc[] = {"disconnected"}, *e[] = {"error"};
    a->rows_written = mutt_counter_labels(rows, w);
    a->rows_dlq = mutt_counter_labels(rows, d);
    a->fail_disconnected = mutt_counter_labels(fails, dc);
    a->fail_error = mutt_counter_labels(fails, e);
    return 0;
}

struct mutt_alert_audit *mutt_alert_audit_create(uv_loop_t *loop, struct mutt_redis *redis, struct mutt_pg *pg,
                                                 struct mutt_metrics *metrics,
                                                 const struct mutt_alert_audit_opts *o)
{
    struct mutt_alert_audit *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->loop = loop;
    a->redis = redis;
    a->pg = pg;
    a->pending_key = strdup(o->pending_key);
    a->claim_prefix = strdup(o->claim_prefix);
    a->pod = strdup(o->pod);
    a->hb_prefix = strdup(o->heartbeat_prefix);
    a->dlq_key = strdup(o->dlq_key);
    a->batch_size = o->batch_size ? o->batch_size : 100;
    a->nslots = o->slots < 1 ? 1 : o->slots > MAX_SLOTS ? MAX_SLOTS : o->slots;
    a->flush_interval_ms = o->flush_interval_ms ? o->flush_interval_ms : 50;
    a->retry_ms = o->retry_ms ? o->retry_ms : 1000;
    a->pending_seen = -1;
    a->claim_script = mutt_redis_script_register(redis, "audit_claim", CLAIM_LUA);
    a->release_script = mutt_redis_script_register(redis, "audit_release", RELEASE_LUA);
    a->janitor_script = mutt_redis_script_register(redis, "audit_janitor", JANITOR_LUA);
    bool ok = a->pending_key && a->claim_prefix && a->pod && a->hb_prefix && a->dlq_key && a->claim_script >= 0 &&
              a->release_script >= 0 && a->janitor_script >= 0 && register_metrics(a, metrics) == 0;
    for (unsigned i = 0; ok && i < a->nslots; i++) {
        struct slot *s = &a->slots[i];
        s->a = a;
        s->index = i;
        int n = snprintf(s->key, sizeof s->key, "%s:%s:%u", o->claim_prefix, o->pod, i);
        ok = n > 0 && (size_t)n < sizeof s->key;
    }
    if (!ok || uv_timer_init(loop, &a->timer) != 0) {
        free(a->pending_key);
        free(a->claim_prefix);
        free(a->pod);
        free(a->hb_prefix);
        free(a->dlq_key);
        free(a);
        return NULL;
    }
    a->timer.data = a;
    a->timer_open = true;
    return a;
}

int mutt_alert_audit_start(struct mutt_alert_audit *a)
{
    if (a->running)
        return MUTT_ESTATE;
    a->running = true;
    a->stopping = false;
    uv_timer_start(&a->timer, on_tick, 0, a->flush_interval_ms);
    return 0;
}

void mutt_alert_audit_stop(struct mutt_alert_audit *a, void (*done)(void *), void *privdata)
{
    a->stopping = true;
    a->done = done;
    a->done_priv = privdata;
    uv_timer_stop(&a->timer);
    maybe_stopped(a);
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void mutt_alert_audit_destroy(struct mutt_alert_audit *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < a->nslots; i++)
        slot_clear(&a->slots[i]);
    free(a->pending_key);
    free(a->claim_prefix);
    free(a->pod);
    free(a->hb_prefix);
    free(a->dlq_key);
    if (a->timer_open && !uv_is_closing((uv_handle_t *)&a->timer)) {
        uv_close((uv_handle_t *)&a->timer, on_timer_closed); /* frees a */
        return;
    }
    free(a);
}

uint64_t mutt_alert_audit_rows_written(const struct mutt_alert_audit *a)
{
    return a->written;
}

uint64_t mutt_alert_audit_rows_dlq(const struct mutt_alert_audit *a)
{
    return a->dlqd;
}

int64_t mutt_alert_audit_pending_seen(const struct mutt_alert_audit *a)
{
    return a->pending_seen;
}
