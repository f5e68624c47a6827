/* Integration tests of the reliable queue (src/io/relq.c) against a real redis-server.
 * Needs: redis (MUTT_TEST_REDIS_HOST/PORT); the restart test also needs tests/harness/services.sh
 * (MUTT_TEST_STATE, MUTT_TEST_ROOT). Skips when the harness environment is absent.
 * Sync hiredis is used only by the test itself, to seed lists and to look at what Redis holds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "mutt/error.h"
#include "mutt/redis.h"
#include "mutt/relq.h"
#include "testenv.h"

#define MAX_ITEMS 20000
#define MAX_HELD 256
#define MAX_CONSUMERS 2

/* ------------------------------------------------------------------------------ fixture */

enum mode {
    MODE_ACK,        /* complete at once with no push */
    MODE_PUSH,       /* complete at once with LPUSH <target> "done:<item>" */
    MODE_HOLD,       /* keep the handle; the test completes it */
    MODE_ACK_LATER,  /* keep the handle; a timer completes every held item a few ms later */
    MODE_ABANDON,    /* complete at once; a completion that cannot be sent abandons the item (as the
                        forward stage does) */
};

struct fx;

struct consumer {
    struct fx *f;
    struct mutt_relq *q;
    char pod[64];
    enum mode mode;
    int delivered;
    int abandoned;
    int order[MAX_ITEMS]; /* ids in delivery order */
    int completed_ok;
    int completed_gone;
    int completed_fail;
    int terminal; /* completed_ok + completed_gone */
    int outstanding;
    int max_outstanding;
    int pause_after; /* pause the relq when `delivered` reaches it (0 = never) */
    struct mutt_relq_item *held[MAX_HELD];
    int nheld;
    struct mutt_relq_item *retry[MAX_HELD]; /* completions that failed: retried by the timer */
    int nretry;
    int last_status;
    uv_timer_t timer;
    bool timer_on;
    int stopped_calls;
    int stopped_status;
    bool stopped;
};

struct fx {
    uv_loop_t loop;
    struct mutt_redis *r;
    struct consumer *c[MAX_CONSUMERS];
    int nconsumers;
    int counts[MAX_ITEMS]; /* deliveries per item id, over every consumer */
    char prefix[96];
    char source[128];
    char proc_prefix[128];
    char hb_prefix[128];
    char target[128];
    char zset[128];
};

static const char *redis_host(void)
{
    const char *h = mutt_test_env("REDIS_HOST");
    return h ? h : "127.0.0.1";
}

static redisContext *admin(void)
{
    struct timeval tv = {5, 0};
    redisContext *rc = redisConnectWithTimeout(redis_host(), mutt_test_env_int("REDIS_PORT", 0), tv);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    return rc;
}

static long long admin_int(const char *fmt, const char *a, const char *b)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, fmt, a, b);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    long long v = rep->integer;
    freeReplyObject(rep);
    redisFree(rc);
    return v;
}

static long long llen(const char *key)
{
    return admin_int("LLEN %s", key, NULL);
}

static long long key_exists(const char *key)
{
    return admin_int("EXISTS %s", key, NULL);
}

static void item_name(int id, char *out, size_t n)
{
    snprintf(out, n, "item-%06d", id);
}

/* Id of "item-N" or of an outcome "done:item-N"; -1 for anything else. */
static int item_id(const char *data, size_t len)
{
    if (len > 5 && memcmp(data, "done:", 5) == 0) {
        data += 5;
        len -= 5;
    }
    if (len < 6 || memcmp(data, "item-", 5) != 0)
        return -1;
    int id = atoi(data + 5);
    return id >= 0 && id < MAX_ITEMS ? id : -1;
}

/* LPUSHes items [from, to) one by one (a producer's order), pipelined. */
static void push_items(const char *key, int from, int to)
{
    redisContext *rc = admin();
    char name[32];
    for (int i = from; i < to; i++) {
        item_name(i, name, sizeof(name));
        assert_int_equal(redisAppendCommand(rc, "LPUSH %s %s", key, name), REDIS_OK);
    }
    for (int i = from; i < to; i++) {
        redisReply *rep = NULL;
        assert_int_equal(redisGetReply(rc, (void **)&rep), REDIS_OK);
        freeReplyObject(rep);
    }
    redisFree(rc);
}

/* Ids of a list in consumption order (tail first, as RPOP would take them). Returns the count. */
static int list_ids_tail_first(const char *key, int *ids, int max)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "LRANGE %s 0 -1", key);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    int n = 0;
    for (size_t i = rep->elements; i-- > 0 && n < max;)
        ids[n++] = item_id(rep->element[i]->str, rep->element[i]->len);
    freeReplyObject(rep);
    redisFree(rc);
    return n;
}

static int setup_reconnect(void **state, unsigned min_ms, unsigned max_ms);
static int setup(void **state)
{
    return setup_reconnect(state, 50, 300);
}

/* A command connection that stays down 1.5 s after it drops (the relq tests of that window). */
static int setup_slow_reconnect(void **state)
{
    return setup_reconnect(state, 1500, 1500);
}

static int setup_reconnect(void **state, unsigned min_ms, unsigned max_ms)
{
    if (!mutt_test_env("REDIS_PORT")) {
        *state = NULL;
        return 0;
    }
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->prefix, sizeof(f->prefix), "mutt:test:relq:%d:%llu", (int)getpid(),
             (unsigned long long)(uv_hrtime() % 1000000007ull));
    snprintf(f->source, sizeof(f->source), "%s:src", f->prefix);
    snprintf(f->proc_prefix, sizeof(f->proc_prefix), "%s:processing", f->prefix);
    snprintf(f->hb_prefix, sizeof(f->hb_prefix), "%s:heartbeat", f->prefix);
    snprintf(f->target, sizeof(f->target), "%s:target", f->prefix);
    snprintf(f->zset, sizeof(f->zset), "%s:retry", f->prefix);

    struct mutt_redis_opts o;
    memset(&o, 0, sizeof(o));
    o.host = redis_host();
    o.port = mutt_test_env_int("REDIS_PORT", 0);
    o.connect_timeout_ms = 2000;
    o.reconnect_min_ms = min_ms;
    o.reconnect_max_ms = max_ms;
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    assert_int_equal(mutt_redis_start(f->r), 0);
    for (int i = 0; i < 200 && !mutt_redis_connected(f->r); i++)
        mutt_test_run_for(&f->loop, 10);
    assert_true(mutt_redis_connected(f->r));
    *state = f;
    return 0;
}

static void on_consumer_timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void delete_test_keys(const struct fx *f)
{
    redisContext *rc = admin();
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "%s:*", f->prefix);
    char cursor[32] = "0";
    do {
        redisReply *rep = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            if (rep)
                freeReplyObject(rep);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
        for (size_t i = 0; i < rep->element[1]->elements; i++) {
            redisReply *d = redisCommand(rc, "DEL %s", rep->element[1]->element[i]->str);
            if (d)
                freeReplyObject(d);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0") != 0);
    redisFree(rc);
}

/* Destroys consumers, then the manager; the loop must close with nothing left open. */
static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    for (int i = 0; i < f->nconsumers; i++) {
        struct consumer *c = f->c[i];
        mutt_relq_destroy(c->q);
        if (c->timer_on)
            uv_close((uv_handle_t *)&c->timer, on_consumer_timer_closed);
    }
    mutt_redis_stop(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    mutt_redis_destroy(f->r);
    int rc = uv_loop_close(&f->loop);
    if (rc != 0)
        mutt_test_loop_close(&f->loop);
    delete_test_keys(f);
    for (int i = 0; i < f->nconsumers; i++)
        free(f->c[i]);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

static struct fx *fixture(void **state)
{
    struct fx *f = *state;
    if (!f)
        MUTT_SKIP("no-harness", "no Redis fixture");
    return f;
}

/* ------------------------------------------------------------------------------ consumer */

static void on_completed(void *priv, struct mutt_relq_item *item, int status)
{
    struct consumer *c = priv;
    c->last_status = status;
    if (status == 0 || status == MUTT_ENOTFOUND) {
        if (status == 0)
            c->completed_ok++;
        else
            c->completed_gone++;
        c->terminal++;
        c->outstanding--;
        return;
    }
    c->completed_fail++;
    assert_true(c->nretry < MAX_HELD);
    c->retry[c->nretry++] = item; /* still ours: the timer tries again */
}

static int complete_item(struct consumer *c, struct mutt_relq_item *item)
{
    if (c->mode != MODE_PUSH)
        return mutt_relq_complete(item, NULL, 0, on_completed, c);
    size_t len = 0;
    const char *data = mutt_relq_item_data(item, &len);
    char payload[64];
    int n = snprintf(payload, sizeof(payload), "done:%.*s", (int)len, data);
    struct mutt_relq_push push = {.kind = MUTT_RELQ_LPUSH, .key = c->f->target, .payload = payload, .len = (size_t)n};
    return mutt_relq_complete(item, &push, 1, on_completed, c);
}

static void on_item(void *priv, struct mutt_relq_item *item, const char *data, size_t len)
{
    struct consumer *c = priv;
    int id = item_id(data, len);
    assert_true(id >= 0);
    c->f->counts[id]++;
    if (c->delivered < MAX_ITEMS)
        c->order[c->delivered] = id;
    c->delivered++;
    c->outstanding++;
    if (c->outstanding > c->max_outstanding)
        c->max_outstanding = c->outstanding;
    if (c->pause_after && c->delivered == c->pause_after)
        mutt_relq_pause(c->q);
    if (c->mode == MODE_HOLD || c->mode == MODE_ACK_LATER) {
        assert_true(c->nheld < MAX_HELD);
        c->held[c->nheld++] = item;
        return;
    }
    int rc = complete_item(c, item);
    if (rc != 0 && c->mode == MODE_ABANDON) {
        c->abandoned++;
        assert_int_equal(mutt_relq_abandon(item), 0);
        c->outstanding--;
        return;
    }
    if (rc != 0) {
        assert_true(c->nretry < MAX_HELD);
        c->retry[c->nretry++] = item;
    }
}

/* Retries failed completions; in MODE_ACK_LATER also completes what is held. */
static void on_consumer_timer(uv_timer_t *t)
{
    struct consumer *c = t->data;
    int n = c->nretry;
    c->nretry = 0;
    struct mutt_relq_item *again[MAX_HELD];
    memcpy(again, c->retry, sizeof(again[0]) * (size_t)n);
    for (int i = 0; i < n; i++)
        if (complete_item(c, again[i]) != 0)
            c->retry[c->nretry++] = again[i];
    if (c->mode == MODE_ACK_LATER) {
        for (int i = 0; i < c->nheld; i++)
            assert_int_equal(complete_item(c, c->held[i]), 0);
        c->nheld = 0;
    }
}

static struct mutt_relq_opts base_opts(struct fx *f, const char *pod)
{
    struct mutt_relq_opts o;
    memset(&o, 0, sizeof(o));
    o.name = "test";
    o.source = f->source;
    o.processing_prefix = f->proc_prefix;
    o.heartbeat_prefix = f->hb_prefix;
    o.pod = pod;
    o.block_timeout_s = 1;
    o.max_inflight = 64;
    o.heartbeat_interval_ms = 200;
    o.heartbeat_expiry_s = 5;
    o.janitor_interval_ms = 60000;
    return o;
}

static struct consumer *new_consumer(struct fx *f, const char *pod, enum mode mode, struct mutt_relq_opts *o)
{
    assert_true(f->nconsumers < MAX_CONSUMERS);
    struct consumer *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->f = f;
    c->mode = mode;
    snprintf(c->pod, sizeof(c->pod), "%s", pod);
    struct mutt_relq_opts def;
    if (!o) {
        def = base_opts(f, c->pod);
        o = &def;
    }
    o->pod = c->pod;
    c->q = mutt_relq_create(&f->loop, f->r, o, on_item, c);
    assert_non_null(c->q);
    uv_timer_init(&f->loop, &c->timer);
    c->timer.data = c;
    c->timer_on = true;
    uv_timer_start(&c->timer, on_consumer_timer, 5, 5);
    f->c[f->nconsumers++] = c;
    return c;
}

static void on_stopped(void *priv, int status)
{
    struct consumer *c = priv;
    c->stopped_calls++;
    c->stopped_status = status;
    c->stopped = true;
}

static void proc_key(const struct fx *f, const char *pod, char *out, size_t n)
{
    snprintf(out, n, "%s:%s", f->proc_prefix, pod);
}

static void hb_key(const struct fx *f, const char *pod, char *out, size_t n)
{
    snprintf(out, n, "%s:%s", f->hb_prefix, pod);
}

/* ------------------------------------------------------------------------------ delivery */

static void test_relq_delivers_each_item_once_in_fifo_order(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 300);
    struct mutt_relq_opts o = base_opts(f, "pod-fifo");
    o.max_inflight = 16;
    struct consumer *c = new_consumer(f, "pod-fifo", MODE_ACK, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 300, 10000));
    mutt_test_run_for(&f->loop, 100); /* nothing more may arrive */
    assert_int_equal(c->delivered, 300);
    for (int i = 0; i < 300; i++) {
        assert_int_equal(c->order[i], i);
        assert_int_equal(f->counts[i], 1);
    }
    assert_int_equal(llen(f->source), 0);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.popped, 300);
    assert_int_equal(st.completed, 300);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(key_exists(mutt_relq_heartbeat_key(c->q)), 1);
}

static void test_relq_complete_pushes_outcome_and_removes_item_atomically(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 1);
    struct consumer *c = new_consumer(f, "pod-push", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 1, 5000));
    const char *proc = mutt_relq_processing_list(c->q);
    assert_int_equal(llen(proc), 1); /* in flight: still in the processing list */
    assert_int_equal(llen(f->source), 0);

    struct mutt_relq_push pushes[2] = {
        {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "alert\0bin", .len = 9},
        {.kind = MUTT_RELQ_ZADD, .key = f->zset, .payload = "u1|alert", .len = 8, .score = 1234.5},
    };
    assert_int_equal(mutt_relq_complete(c->held[0], pushes, 2, on_completed, c), 0);
    assert_int_equal(mutt_relq_complete(c->held[0], pushes, 2, on_completed, c), MUTT_ESTATE);
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 1, 5000));
    assert_int_equal(c->completed_ok, 1);
    assert_int_equal(llen(proc), 0);

    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "LRANGE %s 0 -1", f->target);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 1);
    assert_int_equal(rep->element[0]->len, 9);
    assert_memory_equal(rep->element[0]->str, "alert\0bin", 9);
    freeReplyObject(rep);
    rep = redisCommand(rc, "ZSCORE %s %s", f->zset, "u1|alert");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "1234.5");
    freeReplyObject(rep);
    redisFree(rc);
}

static void test_relq_complete_refuses_wrong_target_type_without_losing_item(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 1);
    assert_int_equal(admin_int("SADD %s %s", f->target, "x"), 1); /* a set: LPUSH would fail */
    struct consumer *c = new_consumer(f, "pod-wrongtype", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 1, 5000));
    uv_timer_stop(&c->timer); /* the retry below is the test's own: the timer must not ack first */
    struct mutt_relq_item *it = c->held[0];
    struct mutt_relq_push push = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "a", .len = 1};
    assert_int_equal(mutt_relq_complete(it, &push, 1, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_fail, 1, 5000));
    c->nretry = 0; /* handled here, not by the retry timer */
    assert_int_equal(c->last_status, MUTT_EIO);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 1); /* the script wrote nothing */
    /* the handle is still valid: a plain ack succeeds */
    assert_int_equal(mutt_relq_complete(it, NULL, 0, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 1, 5000));
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
}

static long long cmd_calls(const char *cmd);
static void reset_stats(void);

/* D63: an HSET push writes "<field> <value>" into the hash with the score as TTL, in the same
 * completion; its key costs no TYPE call, and a hash write that fails (wrong type) neither refuses
 * the item nor stops its other pushes. */
static void test_relq_hset_push_writes_lineage_with_ttl_and_never_refuses(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 2);
    char hkey[160], bad[160];
    snprintf(hkey, sizeof hkey, "%s:lineage:e1", f->prefix);
    snprintf(bad, sizeof bad, "%s:lineage:bad", f->prefix);
    assert_int_equal(admin_int("RPUSH %s %s", bad, "x"), 1); /* a list: HSET fails on it */
    struct consumer *c = new_consumer(f, "pod-hset", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 2, 5000));
    reset_stats();
    struct mutt_relq_push p0[2] = {
        {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "a0", .len = 2},
        {.kind = MUTT_RELQ_HSET, .key = hkey, .payload = "100:h {\"rule_id\":7}", .len = 19, .score = 600},
    };
    struct mutt_relq_push p1[2] = {
        {.kind = MUTT_RELQ_HSET, .key = bad, .payload = "101:s {}", .len = 8, .score = 600},
        {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "a1", .len = 2},
    };
    assert_int_equal(mutt_relq_complete(c->held[0], p0, 2, on_completed, c), 0);
    assert_int_equal(mutt_relq_complete(c->held[1], p1, 2, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 2, 5000));
    assert_int_equal(c->completed_ok, 2);
    assert_int_equal(c->completed_fail, 0);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
    assert_int_equal(llen(f->target), 2);
    assert_int_equal(cmd_calls("type"), 0); /* one list push per item: no check at all (issue 13) */

    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "HGET %s 100:h", hkey);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "{\"rule_id\":7}");
    freeReplyObject(rep);
    redisFree(rc);
    long long ttl = admin_int("TTL %s%s", hkey, "");
    assert_true(ttl > 590 && ttl <= 600);
    assert_int_equal(llen(bad), 1); /* untouched */
    /* a payload the caller may not send */
    push_items(f->source, 2, 3);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 3, 5000));
    struct mutt_relq_push nan = {.kind = MUTT_RELQ_HSET, .key = hkey, .payload = "1:a {}", .len = 6, .score = NAN};
    assert_int_equal(mutt_relq_complete(c->held[2], &nan, 1, on_completed, c), MUTT_EINVAL);
}

/* An item with two pushes whose second target has the wrong type is refused before anything
 * of it is written (its targets' types are still checked first), while a single-push item of
 * the same call completes. */
static void test_relq_multi_push_item_with_wrong_type_target_writes_nothing(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 2);
    assert_int_equal(admin_int("SADD %s %s", f->zset, "x"), 1); /* a set: ZADD would fail */
    struct consumer *c = new_consumer(f, "pod-multi-wrong", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 2, 5000));
    uv_timer_stop(&c->timer);
    struct mutt_relq_push p0[2] = {
        {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "first", .len = 5},
        {.kind = MUTT_RELQ_ZADD, .key = f->zset, .payload = "m", .len = 1, .score = 1},
    };
    struct mutt_relq_push p1 = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "other", .len = 5};
    assert_int_equal(mutt_relq_complete(c->held[0], p0, 2, on_completed, c), 0);
    assert_int_equal(mutt_relq_complete(c->held[1], &p1, 1, on_completed, c), 0);
    for (int i = 0; i < 500 && (c->completed_ok < 1 || c->completed_fail < 1); i++)
        mutt_test_run_for(&f->loop, 10);
    c->nretry = 0;
    assert_int_equal(c->completed_ok, 1);
    assert_int_equal(c->completed_fail, 1);
    int ids[4];
    assert_int_equal(list_ids_tail_first(mutt_relq_processing_list(c->q), ids, 4), 1);
    assert_int_equal(ids[0], c->order[0]);
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "LRANGE %s 0 -1", f->target);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    assert_int_equal(rep->elements, 1); /* "other" only: nothing of the refused item */
    assert_string_equal(rep->element[0]->str, "other");
    freeReplyObject(rep);
    redisFree(rc);
}

/* Calls of one command since the last CONFIG RESETSTAT (INFO commandstats; Lua-inner included). */
static long long cmd_calls(const char *cmd)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "INFO commandstats");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    char needle[64];
    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    const char *at = strstr(rep->str, needle);
    long long n = at ? atoll(at + strlen(needle)) : 0;
    freeReplyObject(rep);
    redisFree(rc);
    return n;
}

static void reset_stats(void)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "CONFIG RESETSTAT");
    assert_non_null(rep);
    freeReplyObject(rep);
    redisFree(rc);
}

/* Ids of a list from the head (index 0) on. Returns the count. */
static int list_ids_head_first(const char *key, int *ids, int max)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "LRANGE %s 0 -1", key);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    int n = 0;
    for (size_t i = 0; i < rep->elements && n < max; i++)
        ids[n++] = item_id(rep->element[i]->str, rep->element[i]->len);
    freeReplyObject(rep);
    redisFree(rc);
    return n;
}

/* D51: the completions of one loop turn are one script call: outcomes pushed (one LPUSH for the
 * key), items removed, no per-item LREM (the batch is the whole list: one trim). */
static void test_relq_batched_completion_of_many_items_is_one_script_call(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 50);
    struct mutt_relq_opts o = base_opts(f, "pod-batch");
    o.max_inflight = 64; /* 50 held > half the cap: no pop runs meanwhile */
    struct consumer *c = new_consumer(f, "pod-batch", MODE_HOLD, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 50, 5000));
    const char *proc = mutt_relq_processing_list(c->q);
    assert_int_equal(llen(proc), 50);
    uv_timer_stop(&c->timer);
    reset_stats();
    for (int i = 0; i < 50; i++) {
        size_t len = 0;
        const char *data = mutt_relq_item_data(c->held[i], &len);
        char payload[64];
        int n = snprintf(payload, sizeof payload, "done:%.*s", (int)len, data);
        struct mutt_relq_push push = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = payload, .len = (size_t)n};
        assert_int_equal(mutt_relq_complete(c->held[i], &push, 1, on_completed, c), 0);
    }
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 50, 5000));
    assert_int_equal(c->completed_ok, 50);
    assert_int_equal(cmd_calls("evalsha"), 1);
    assert_int_equal(cmd_calls("lpush"), 1);
    assert_int_equal(cmd_calls("lrem"), 0);
    /* issue 13: single-push items need no TYPE probe, and the one LRANGE replaces LLEN */
    assert_int_equal(cmd_calls("type"), 0);
    assert_int_equal(cmd_calls("llen"), 0);
    assert_int_equal(cmd_calls("lrange"), 1);
    assert_int_equal(llen(proc), 0);
    int ids[64];
    assert_int_equal(list_ids_tail_first(f->target, ids, 64), 50); /* in completion order */
    for (int i = 0; i < 50; i++)
        assert_int_equal(ids[i], c->order[i]);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.completed, 50);
    assert_int_equal(st.processing_depth, 0);
}

/* Issue 13: completions made in consecutive loop turns within a millisecond of the previous call
 * share one call (the forwarder completes one item per webhook answer, each in its own turn);
 * every outcome is pushed and the processing list ends empty. */
static void test_relq_completions_of_consecutive_turns_share_a_call(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 10);
    struct consumer *c = new_consumer(f, "pod-pace", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 10, 5000));
    uv_timer_stop(&c->timer);
    const char *proc = mutt_relq_processing_list(c->q);
    struct mutt_relq_push push = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "d", .len = 1};
    assert_int_equal(mutt_relq_complete(c->held[0], &push, 1, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 1, 5000));
    reset_stats();
    uint64_t t0 = uv_hrtime();
    for (int i = 1; i < 10; i++) {
        assert_int_equal(mutt_relq_complete(c->held[i], &push, 1, on_completed, c), 0);
        uv_run(&f->loop, UV_RUN_NOWAIT); /* one loop turn per completion */
    }
    uint64_t spent = uv_hrtime() - t0;
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 10, 5000));
    assert_int_equal(c->completed_ok, 10);
    assert_int_equal(llen(f->target), 10);
    assert_int_equal(llen(proc), 0);
    /* the first may go at once (the previous call is more than a pace ago by now), the other
     * eight wait for it to pass: two calls, where one per turn was nine. Only when all nine
     * turns fit in the pace (else the box stalled us and the count says nothing). */
    if (spent < 1000000)
        assert_true(cmd_calls("evalsha") <= 2);
}

/* Completing items out of order in one call removes exactly those (runs at both ends trimmed,
 * the middle by LREM) and keeps the others in place. */
static void test_relq_batched_completion_out_of_order_removes_exactly_the_completed(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 10);
    struct consumer *c = new_consumer(f, "pod-ooo", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 10, 5000));
    uv_timer_stop(&c->timer);
    const int done[] = {9, 0, 4, 1, 8, 7};
    for (size_t i = 0; i < sizeof done / sizeof done[0]; i++)
        assert_int_equal(mutt_relq_complete(c->held[done[i]], NULL, 0, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 6, 5000));
    assert_int_equal(c->completed_ok, 6);
    int ids[16];
    /* popped oldest first, each to the head: the newest popped is at index 0 */
    assert_int_equal(list_ids_head_first(mutt_relq_processing_list(c->q), ids, 16), 4);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 3);
    assert_int_equal(ids[3], 2);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.processing_depth, 4);
}

/* D51: a push Redis refuses in the middle of a batch (item 1's second push: its key became a
 * list earlier in the same call) leaves that item in the processing list (its first push may be
 * duplicated, never lost) while the others complete; once the pod is gone, a janitor returns the
 * item and it completes. */
static void test_relq_push_error_mid_batch_duplicates_but_never_loses(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 3);
    struct consumer *a = new_consumer(f, "pod-err", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(a->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &a->delivered, 3, 5000));
    uv_timer_stop(&a->timer);
    char proc[160], hb[160];
    proc_key(f, "pod-err", proc, sizeof proc);
    hb_key(f, "pod-err", hb, sizeof hb);
    struct mutt_relq_push p0 = {.kind = MUTT_RELQ_LPUSH, .key = f->zset, .payload = "a", .len = 1};
    struct mutt_relq_push p1[2] = {
        {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "done:1", .len = 6},
        {.kind = MUTT_RELQ_ZADD, .key = f->zset, .payload = "m", .len = 1, .score = 1},
    };
    struct mutt_relq_push p2 = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "done:2", .len = 6};
    assert_int_equal(mutt_relq_complete(a->held[0], &p0, 1, on_completed, a), 0);
    assert_int_equal(mutt_relq_complete(a->held[1], p1, 2, on_completed, a), 0);
    assert_int_equal(mutt_relq_complete(a->held[2], &p2, 1, on_completed, a), 0);
    for (int i = 0; i < 500 && (a->terminal < 2 || a->completed_fail < 1); i++)
        mutt_test_run_for(&f->loop, 10);
    assert_int_equal(a->completed_ok, 2);
    assert_int_equal(a->completed_fail, 1);
    assert_int_equal(a->nretry, 1);
    assert_ptr_equal(a->retry[0], a->held[1]);
    int ids[8];
    assert_int_equal(list_ids_tail_first(proc, ids, 8), 1); /* item 1 only: not lost */
    assert_int_equal(ids[0], a->order[1]);
    assert_int_equal(llen(f->target), 2); /* done:1 (pushed before the refusal) and done:2 */

    /* the pod dies with the item in its list; a janitor returns it and it completes */
    assert_int_equal(mutt_relq_abandon(a->held[1]), 0);
    a->nretry = 0;
    mutt_relq_destroy(a->q);
    a->q = NULL;
    admin_int("DEL %s", hb, NULL);
    struct mutt_relq_opts ob = base_opts(f, "pod-rescue");
    struct consumer *b = new_consumer(f, "pod-rescue", MODE_ACK, &ob);
    assert_int_equal(mutt_relq_start(b->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &b->completed_ok, 1, 5000));
    assert_int_equal(b->order[0], a->order[1]);
    assert_int_equal(f->counts[a->order[1]], 2);
    assert_int_equal(key_exists(proc), 0);
    assert_int_equal(llen(f->source), 0);
}

static void test_relq_complete_after_janitor_moved_item_pushes_nothing(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 1);
    struct mutt_relq_opts o = base_opts(f, "pod-gone");
    o.max_inflight = 1; /* at the cap: nothing pops the item again behind our back */
    struct consumer *c = new_consumer(f, "pod-gone", MODE_HOLD, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 1, 5000));
    const char *proc = mutt_relq_processing_list(c->q);
    /* what a janitor does when it wrongly thinks we are dead */
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "RPOPLPUSH %s %s", proc, f->source);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    freeReplyObject(rep);
    redisFree(rc);

    struct mutt_relq_push push = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "alert", .len = 5};
    assert_int_equal(mutt_relq_complete(c->held[0], &push, 1, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, 1, 5000));
    assert_int_equal(c->last_status, MUTT_ENOTFOUND);
    assert_int_equal(c->completed_gone, 1);
    assert_int_equal(llen(f->target), 0); /* no outcome for an item that went back */
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.already_gone, 1);
    /* nothing is lost: the item comes round again and completes once */
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 2, 5000));
    assert_int_equal(c->order[1], 0);
    assert_int_equal(mutt_relq_complete(c->held[1], &push, 1, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 1, 5000));
    assert_int_equal(llen(f->target), 1);
    assert_int_equal(llen(proc), 0);
}

static void test_relq_never_hands_out_more_than_max_inflight(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 50);
    struct mutt_relq_opts o = base_opts(f, "pod-cap");
    o.max_inflight = 5;
    struct consumer *c = new_consumer(f, "pod-cap", MODE_HOLD, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 5, 5000));
    mutt_test_run_for(&f->loop, 200); /* a sixth would arrive now if the cap leaked */
    assert_int_equal(c->delivered, 5);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 5);
    assert_int_equal(llen(f->source), 45);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.inflight, 5);

    c->mode = MODE_ACK_LATER; /* the timer completes what is held, a few ms after delivery */
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 50, 10000));
    assert_int_equal(c->delivered, 50);
    assert_int_equal(c->max_outstanding, 5);
    for (int i = 0; i < 50; i++)
        assert_int_equal(c->order[i], i);

    /* the cap is live: raise it and more are handed out at once */
    push_items(f->source, 50, 70);
    c->mode = MODE_HOLD;
    c->max_outstanding = 0;
    mutt_relq_set_max_inflight(c->q, 12);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 62, 5000));
    mutt_test_run_for(&f->loop, 200);
    assert_int_equal(c->delivered, 62);
    assert_int_equal(c->max_outstanding, 12);
}

static void test_relq_pause_stops_delivery_and_resume_continues(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 10);
    struct consumer *c = new_consumer(f, "pod-pause", MODE_ACK, NULL);
    c->pause_after = 3; /* the item callback pauses, as the breaker would */
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 3, 5000));
    assert_true(mutt_relq_paused(c->q));
    mutt_test_run_for(&f->loop, 300);
    assert_int_equal(c->delivered, 3);
    push_items(f->source, 10, 15);
    mutt_test_run_for(&f->loop, 300);
    assert_int_equal(c->delivered, 3);
    assert_int_equal(llen(f->source), 5); /* no new pops while paused */
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.held + 3 + llen(f->source), 15); /* popped ones wait, nothing is lost */

    mutt_relq_resume(c->q);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 15, 5000));
    for (int i = 0; i < 15; i++)
        assert_int_equal(c->order[i], i);
    assert_int_equal(llen(f->source), 0);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
}

static void test_relq_abandoned_item_returns_to_source_and_comes_round_again(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 2);
    struct consumer *c = new_consumer(f, "pod-abandon", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 2, 5000));
    assert_int_equal(mutt_relq_abandon(c->held[0]), 0); /* item 0: the stage gives up on it */
    assert_int_equal(mutt_relq_complete(c->held[1], NULL, 0, on_completed, c), 0);
    assert_int_equal(mutt_relq_abandon(c->held[1]), MUTT_ESTATE); /* completion running */
    c->nheld = 0;
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 3, 5000));
    assert_int_equal(c->order[2], 0);
    assert_int_equal(c->completed_ok, 1);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.own_recovered, 1);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 1); /* only the redelivered one */
}

/* ------------------------------------------------------------------------------ janitor */

static void test_relq_janitors_recover_dead_pod_list_exactly_once(void **state)
{
    struct fx *f = fixture(state);
    char dead[160];
    proc_key(f, "pod-dead", dead, sizeof(dead));
    push_items(dead, 0, 300); /* a crashed pod's processing list, no heartbeat */
    struct mutt_relq_opts oa = base_opts(f, "pod-a");
    oa.janitor_interval_ms = 20;
    oa.recover_batch = 7; /* several script calls per list: the race window is real */
    struct mutt_relq_opts ob = oa;
    struct consumer *a = new_consumer(f, "pod-a", MODE_ACK, &oa);
    struct consumer *b = new_consumer(f, "pod-b", MODE_ACK, &ob);
    assert_int_equal(mutt_relq_start(a->q), 0);
    assert_int_equal(mutt_relq_start(b->q), 0);
    int total = 0;
    for (int i = 0; i < 500 && total < 300; i++) {
        mutt_test_run_for(&f->loop, 10);
        total = a->completed_ok + b->completed_ok;
    }
    assert_int_equal(total, 300);
    mutt_test_run_for(&f->loop, 200); /* more janitor passes: nothing may move twice */
    assert_int_equal(a->delivered + b->delivered, 300);
    for (int i = 0; i < 300; i++)
        assert_int_equal(f->counts[i], 1);
    assert_int_equal(key_exists(dead), 0);
    assert_int_equal(llen(f->source), 0);
    struct mutt_relq_stats sa, sb;
    mutt_relq_get_stats(a->q, &sa);
    mutt_relq_get_stats(b->q, &sb);
    assert_int_equal(sa.janitor_recovered + sb.janitor_recovered, 300);
    assert_true(sa.janitor_runs >= 2 && sb.janitor_runs >= 2);
    /* live pods never recover each other's lists */
    assert_int_equal(sa.own_recovered + sb.own_recovered, 0);
}

static void test_relq_janitor_leaves_live_pod_list_alone(void **state)
{
    struct fx *f = fixture(state);
    char live[160], live_hb[160];
    proc_key(f, "pod-live", live, sizeof(live));
    hb_key(f, "pod-live", live_hb, sizeof(live_hb));
    push_items(live, 0, 3);
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "SETEX %s 30 alive", live_hb);
    freeReplyObject(rep);
    redisFree(rc);
    struct mutt_relq_opts o = base_opts(f, "pod-j");
    o.janitor_interval_ms = 20;
    struct consumer *c = new_consumer(f, "pod-j", MODE_ACK, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    struct mutt_relq_stats st;
    for (int i = 0; i < 300; i++) {
        mutt_test_run_for(&f->loop, 10);
        mutt_relq_get_stats(c->q, &st);
        if (st.janitor_runs >= 3)
            break;
    }
    assert_true(st.janitor_runs >= 3);
    assert_int_equal(llen(live), 3);
    assert_int_equal(c->delivered, 0);
    assert_int_equal(st.janitor_recovered, 0);
}

static void test_relq_recovers_own_stale_list_at_start(void **state)
{
    struct fx *f = fixture(state);
    char own[160], own_hb[160];
    proc_key(f, "pod-same", own, sizeof(own));
    hb_key(f, "pod-same", own_hb, sizeof(own_hb));
    push_items(own, 0, 3);         /* a crashed predecessor popped 0, 1, 2 */
    push_items(f->source, 3, 5);   /* and 3, 4 were still waiting */
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "SETEX %s 30 alive", own_hb); /* its heartbeat not expired yet */
    freeReplyObject(rep);
    redisFree(rc);
    struct consumer *c = new_consumer(f, "pod-same", MODE_ACK, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 5, 5000));
    for (int i = 0; i < 5; i++) /* returned to the front of the line, in their order */
        assert_int_equal(c->order[i], i);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.own_recovered, 3);
    assert_int_equal(st.janitor_recovered, 0);
    assert_int_equal(llen(own), 0);
}

/* ------------------------------------------------------------------------------ stop */

static void test_relq_graceful_stop_returns_items_and_deletes_heartbeat(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 20);
    struct mutt_relq_opts o = base_opts(f, "pod-stop");
    o.max_inflight = 5;
    struct consumer *c = new_consumer(f, "pod-stop", MODE_HOLD, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 5, 5000));
    const char *proc = mutt_relq_processing_list(c->q);
    assert_int_equal(key_exists(mutt_relq_heartbeat_key(c->q)), 1);

    uint64_t t0 = uv_hrtime() / 1000000;
    assert_int_equal(mutt_relq_stop(c->q, 300, on_stopped, c), 0);
    assert_int_equal(mutt_relq_stop(c->q, 300, on_stopped, c), MUTT_ESTATE);
    assert_int_equal(c->stopped_calls, 0); /* never from inside stop */
    /* in-flight items may still complete while the stop drains */
    assert_int_equal(mutt_relq_complete(c->held[0], NULL, 0, on_completed, c), 0);
    assert_int_equal(mutt_relq_complete(c->held[1], NULL, 0, on_completed, c), 0);
    assert_true(mutt_test_run_until(&f->loop, &c->stopped, 5000));
    uint64_t took = uv_hrtime() / 1000000 - t0;
    assert_true(took >= 250); /* it waited for the 3 still held */
    assert_int_equal(c->stopped_status, 0);
    assert_int_equal(c->completed_ok, 2);
    assert_int_equal(c->delivered, 5);
    assert_int_equal(llen(proc), 0);
    assert_int_equal(key_exists(mutt_relq_heartbeat_key(c->q)), 0);
    int ids[32];
    int n = list_ids_tail_first(f->source, ids, 32);
    assert_int_equal(n, 18);
    for (int i = 0; i < 18; i++) /* the 3 unfinished ones first, then the untouched rest */
        assert_int_equal(ids[i], i + 2);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.returned_on_stop, 3);
    /* a late completion of a returned item pushes nothing */
    struct mutt_relq_push push = {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "x", .len = 1};
    assert_int_equal(mutt_relq_complete(c->held[2], &push, 1, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_gone, 1, 5000));
    assert_int_equal(llen(f->target), 0);
    mutt_test_run_for(&f->loop, 100);
    assert_int_equal(c->stopped_calls, 1);
}

/* ------------------------------------------------------------------------------ byte counter (D52) */

static long long counter_value(const char *key)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "GET %s", key);
    assert_non_null(rep);
    long long v = rep->type == REDIS_REPLY_STRING ? atoll(rep->str) : 0;
    freeReplyObject(rep);
    redisFree(rc);
    return v;
}

static long long list_bytes(const char *key)
{
    return admin_int("EVAL %s 1 %s",
                     "local s = 0 for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do s = s + #v end return s",
                     key);
}

/* The counter follows the source: runs the loop until it equals the bytes the source holds. */
static void assert_counter_follows(struct fx *f, const char *bytes_key)
{
    for (int i = 0; i < 100 && counter_value(bytes_key) != list_bytes(f->source); i++)
        mutt_test_run_for(&f->loop, 20);
    assert_int_equal(counter_value(bytes_key), list_bytes(f->source));
}

static void test_relq_keeps_the_source_byte_counter(void **state)
{
    struct fx *f = fixture(state);
    char bytes_key[160];
    snprintf(bytes_key, sizeof(bytes_key), "%s:bytes", f->source);
    push_items(f->source, 0, 10);
    redisContext *rc = admin();
    freeReplyObject(redisCommand(rc, "SET %s %lld", bytes_key, list_bytes(f->source)));
    redisFree(rc);
    struct mutt_relq_opts o = base_opts(f, "pod-bytes");
    o.max_inflight = 4;
    o.source_bytes_key = bytes_key;
    struct consumer *c = new_consumer(f, "pod-bytes", MODE_HOLD, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 4, 5000));
    /* the blocking pop and the batch pop both took their bytes off */
    assert_counter_follows(f, bytes_key);
    assert_int_equal(counter_value(bytes_key), 6 * 11);

    /* a retry pushed back to the source adds its bytes; a push elsewhere does not */
    struct mutt_relq_push pushes[2] = {
        {.kind = MUTT_RELQ_RPUSH, .key = f->source, .payload = "item-000100", .len = 11},
        {.kind = MUTT_RELQ_LPUSH, .key = f->target, .payload = "elsewhere", .len = 9},
    };
    assert_int_equal(mutt_relq_complete(c->held[0], pushes, 2, on_completed, c), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 1, 5000));
    assert_int_equal(counter_value(bytes_key), 7 * 11);
    assert_counter_follows(f, bytes_key);

    /* drift (a lost DECRBY, a writer outside MUTT) is set right by the janitor's reconcile */
    rc = admin();
    freeReplyObject(redisCommand(rc, "SET %s 999999", bytes_key));
    redisFree(rc);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    uint64_t before = st.bytes_reconciles; /* the start-up janitor pass ran one already */
    int rc_j = MUTT_ESTATE;
    for (int i = 0; i < 250 && rc_j != 0; i++) { /* a pass may still be running */
        rc_j = mutt_relq_run_janitor(c->q);
        if (rc_j != 0)
            mutt_test_run_for(&f->loop, 20);
    }
    assert_int_equal(rc_j, 0);
    for (int i = 0; i < 250; i++) {
        mutt_relq_get_stats(c->q, &st);
        if (st.bytes_reconciles > before)
            break;
        mutt_test_run_for(&f->loop, 20);
    }
    assert_int_equal(st.bytes_reconciles, before + 1);
    assert_int_equal(counter_value(bytes_key), 7 * 11);

    /* the graceful stop returns the 3 still held, with their bytes */
    assert_int_equal(mutt_relq_stop(c->q, 50, on_stopped, c), 0);
    assert_true(mutt_test_run_until(&f->loop, &c->stopped, 5000));
    assert_int_equal(llen(f->source), 10);
    assert_int_equal(counter_value(bytes_key), 10 * 11);
}

static void test_relq_stop_finishes_early_when_stage_releases_everything(void **state)
{
    struct fx *f = fixture(state);
    push_items(f->source, 0, 3);
    struct consumer *c = new_consumer(f, "pod-stop2", MODE_HOLD, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->delivered, 3, 5000));
    uint64_t t0 = uv_hrtime() / 1000000;
    assert_int_equal(mutt_relq_stop(c->q, 20000, on_stopped, c), 0);
    c->mode = MODE_ACK_LATER;
    assert_true(mutt_test_run_until(&f->loop, &c->stopped, 5000));
    assert_true(uv_hrtime() / 1000000 - t0 < 5000); /* did not sit out the 20 s */
    assert_int_equal(c->stopped_status, 0);
    assert_int_equal(c->completed_ok, 3);
    assert_int_equal(llen(f->source), 0);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
    assert_int_equal(key_exists(mutt_relq_heartbeat_key(c->q)), 0);
}

/* ------------------------------------------------------------------------------ faults, volume */

static void test_relq_loses_nothing_across_redis_restart(void **state)
{
    struct fx *f = fixture(state);
    if (!mutt_test_env("STATE") || !mutt_test_env("ROOT"))
        MUTT_SKIP("no-harness", "restarting Redis needs the harness state dir");
    enum { N = 2000 };
    push_items(f->source, 0, N);
    struct mutt_relq_opts o = base_opts(f, "pod-restart");
    o.max_inflight = 32;
    struct consumer *c = new_consumer(f, "pod-restart", MODE_PUSH, &o);
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 300, 10000));
    assert_int_equal(mutt_test_service("stop-redis"), 0);
    mutt_test_run_for(&f->loop, 500); /* completions and pops fail now */
    assert_int_equal(mutt_test_service("start-redis"), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->terminal, N, 30000));
    mutt_test_run_for(&f->loop, 200);

    /* every item's outcome exactly once; nothing left behind */
    static int ids[N + 10];
    int n = list_ids_tail_first(f->target, ids, N + 10);
    assert_int_equal(n, N);
    static int seen[N];
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < N);
        seen[ids[i]]++;
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    assert_int_equal(llen(f->source), 0);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
    assert_int_equal(c->terminal, c->delivered);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    fprintf(stderr, "relq restart: delivered %d, completions failed and retried %d, already gone %d, own list "
            "recovered %llu\n", c->delivered, c->completed_fail, c->completed_gone,
            (unsigned long long)st.own_recovered);
}

/* Kills (CLIENT KILL ID) every client blocked in BRPOPLPUSH; returns how many. */
static int kill_blocked_poppers(void)
{
    redisContext *rc = admin();
    redisReply *rep = redisCommand(rc, "CLIENT LIST");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    int killed = 0;
    for (char *line = strtok(rep->str, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, " cmd=brpoplpush "))
            continue;
        long long id = atoll(line + 3); /* "id=N ..." */
        redisReply *k = redisCommand(rc, "CLIENT KILL ID %lld", id);
        if (k && k->type == REDIS_REPLY_INTEGER)
            killed += (int)k->integer;
        if (k)
            freeReplyObject(k);
    }
    freeReplyObject(rep);
    redisFree(rc);
    return killed;
}

static void test_relq_reclaims_untracked_items_after_its_connection_drops(void **state)
{
    struct fx *f = fixture(state);
    struct consumer *c = new_consumer(f, "pod-drop", MODE_ACK, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    int killed = 0;
    for (int i = 0; i < 200 && !killed; i++) {
        mutt_test_run_for(&f->loop, 10);
        redisContext *rc = admin();
        redisReply *rep = redisCommand(rc, "CLIENT LIST");
        bool blocked = rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, " cmd=brpoplpush ");
        if (rep)
            freeReplyObject(rep);
        redisFree(rc);
        if (blocked) {
            /* what a BRPOPLPUSH whose reply was lost leaves behind: an item in our list that
             * nobody tracks */
            push_items(mutt_relq_processing_list(c->q), 7, 8);
            killed = kill_blocked_poppers();
        }
    }
    assert_true(killed >= 1);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 1, 5000));
    assert_int_equal(c->order[0], 7);
    struct mutt_relq_stats st;
    mutt_relq_get_stats(c->q, &st);
    assert_int_equal(st.own_recovered, 1);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
    /* and consumption goes on */
    push_items(f->source, 0, 5);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 6, 5000));
}

/* Kills every client of the test Redis except the admin connection itself and the ones blocked
 * in BRPOPLPUSH (relq's own): the command connection and pub/sub. Returns how many. */
static int kill_all_but_poppers(void)
{
    redisContext *rc = admin();
    redisReply *me = redisCommand(rc, "CLIENT ID");
    assert_non_null(me);
    long long my_id = me->integer;
    freeReplyObject(me);
    redisReply *rep = redisCommand(rc, "CLIENT LIST");
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    int killed = 0;
    for (char *line = strtok(rep->str, "\n"); line; line = strtok(NULL, "\n")) {
        long long id = atoll(line + 3); /* "id=N ..." */
        if (strstr(line, " cmd=brpoplpush ") || id == my_id)
            continue;
        redisReply *k = redisCommand(rc, "CLIENT KILL ID %lld", id);
        if (k && k->type == REDIS_REPLY_INTEGER)
            killed += (int)k->integer;
        if (k)
            freeReplyObject(k);
    }
    freeReplyObject(rep);
    redisFree(rc);
    return killed;
}

/* Found by the fleet drills (tests/fleet): after a Redis failover the popping connection came
 * back before the command connection that completions go out on. Every popped item's completion
 * failed, the stage abandoned it, the claim put it back and it was popped again: the same 32
 * alerts went to the webhook 12 times in 36 ms. While completions cannot be sent, relq must not
 * pop: one round of in-flight items may be redone, never a loop. */
static void test_relq_does_not_pop_while_completions_cannot_be_sent(void **state)
{
    struct fx *f = fixture(state);
    struct consumer *c = new_consumer(f, "pod-cmd-down", MODE_ABANDON, NULL);
    assert_int_equal(mutt_relq_start(c->q), 0);
    bool blocked = false;
    for (int i = 0; i < 300 && !blocked; i++) {
        mutt_test_run_for(&f->loop, 10);
        redisContext *rc = admin();
        redisReply *rep = redisCommand(rc, "CLIENT LIST");
        blocked = rep && rep->type == REDIS_REPLY_STRING && strstr(rep->str, " cmd=brpoplpush ");
        if (rep)
            freeReplyObject(rep);
        redisFree(rc);
    }
    assert_true(blocked);
    assert_true(kill_all_but_poppers() >= 1);
    mutt_test_run_for(&f->loop, 50); /* the drop is seen; the reconnect is 1.5 s away */
    assert_false(mutt_redis_connected(f->r));
    push_items(f->source, 0, 3);
    mutt_test_run_for(&f->loop, 700);
    fprintf(stderr, "relq with the command connection down: delivered %d, abandoned %d\n", c->delivered,
            c->abandoned);
    assert_false(mutt_redis_connected(f->r)); /* the window this test is about */
    /* the pop already blocked may hand out one item, whose completion cannot be sent */
    assert_true(c->delivered <= 1);
    /* once the command connection is back, each item is completed */
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, 3, 8000));
    assert_true(c->delivered <= 4);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
    assert_int_equal(llen(f->source), 0);
}

static void test_relq_consumes_ten_thousand_items_quickly(void **state)
{
    struct fx *f = fixture(state);
    enum { N = 10000 };
    push_items(f->source, 0, N);
    struct consumer *c = new_consumer(f, "pod-fast", MODE_PUSH, NULL); /* max_inflight 64 */
    uint64_t t0 = uv_hrtime();
    assert_int_equal(mutt_relq_start(c->q), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c->completed_ok, N, 20000));
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    fprintf(stderr, "relq: %d items consumed and completed in %.2f s\n", N, secs);
    assert_true(secs < 20.0);
    assert_int_equal(c->delivered, N);
    assert_int_equal(llen(f->target), N);
    assert_int_equal(llen(mutt_relq_processing_list(c->q)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relq_delivers_each_item_once_in_fifo_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_complete_pushes_outcome_and_removes_item_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_hset_push_writes_lineage_with_ttl_and_never_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_complete_refuses_wrong_target_type_without_losing_item, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relq_multi_push_item_with_wrong_type_target_writes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relq_complete_after_janitor_moved_item_pushes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_completions_of_consecutive_turns_share_a_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_batched_completion_of_many_items_is_one_script_call, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relq_batched_completion_out_of_order_removes_exactly_the_completed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_push_error_mid_batch_duplicates_but_never_loses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_never_hands_out_more_than_max_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_pause_stops_delivery_and_resume_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_abandoned_item_returns_to_source_and_comes_round_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relq_janitors_recover_dead_pod_list_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_janitor_leaves_live_pod_list_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_recovers_own_stale_list_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_graceful_stop_returns_items_and_deletes_heartbeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_stop_finishes_early_when_stage_releases_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_keeps_the_source_byte_counter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_loses_nothing_across_redis_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relq_reclaims_untracked_items_after_its_connection_drops, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_relq_does_not_pop_while_completions_cannot_be_sent,
                                        setup_slow_reconnect, teardown),
        cmocka_unit_test_setup_teardown(test_relq_consumes_ten_thousand_items_quickly, setup, teardown),
    };
    return cmocka_run_group_tests_name("relq", tests, NULL, NULL);
}
