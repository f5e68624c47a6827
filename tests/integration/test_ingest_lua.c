/* Integration test of the ingest group script (src/stages/ingest_call.c, CONTRACT D7, D50, D52)
 * against a real redis-server: one call judges each request of a group in arrival order against
 * the rate limit, the item cap and the byte cap; a refused request takes nothing (a batch that
 * does not fit is refused whole, a later smaller one that fits goes in); the accepted events are
 * queued in arrival order; the byte counter and the dashboard counters grow once, by the group's
 * accepted totals. Keys are per process, so runs do not see each other.
 * Needs: redis (MUTT_TEST_REDIS_HOST/PORT); skips without it. Sync hiredis: test code only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "mutt/ingest.h"
#include "testenv.h"

#define MAXREQ 8
#define MAXEV 64

static char queue[96], prefix[96];

struct group {
    size_t nreq;
    size_t counts[MAXREQ];
    const char *events[MAXEV]; /* every request's events back to back */
    size_t nev;
    const char *lineage[4 + MAXREQ]; /* D63: optional block after the events (prefix, TTL, field, value, cids) */
    size_t nlin;
};

struct verdict {
    long long code, depth, extra, held;
};

static redisContext *connect_redis(void)
{
    const char *host = mutt_test_env("REDIS_HOST");
    redisContext *c = redisConnect(host ? host : "127.0.0.1", mutt_test_env_int("REDIS_PORT", 0));
    return (c && !c->err) ? c : NULL;
}

static const int64_t NOW_MS = 1767225600000LL; /* 2026-01-01T00:00:00Z: fixed key names */

static void del_all(redisContext *c, const struct mutt_ingest_call *call)
{
    for (int i = 0; i < MUTT_INGEST_NKEYS; i++)
        freeReplyObject(redisCommand(c, "DEL %s", call->keys[i]));
}

static struct mutt_ingest_params params(int64_t cap, int64_t rate_max, int64_t byte_cap)
{
    struct mutt_ingest_params p = {
        .queue = queue,
        .metrics_prefix = prefix,
        .now_ms = NOW_MS,
        .cap = cap,
        .rate_enabled = rate_max > 0,
        .rate_max = rate_max > 0 ? rate_max : 1,
        .rate_window_s = 60,
        .byte_cap = byte_cap,
    };
    return p;
}

static int setup(void **state)
{
    static int run;
    snprintf(queue, sizeof queue, "mutt:test:%d:%d:ingest_queue", (int)getpid(), run);
    snprintf(prefix, sizeof prefix, "mutt:test:%d:%d:metrics", (int)getpid(), run++);
    *state = mutt_test_env("REDIS_PORT") ? connect_redis() : NULL;
    return 0;
}

static int teardown(void **state)
{
    redisContext *c = *state;
    if (c) {
        struct mutt_ingest_params p = params(1, 0, 0);
        struct mutt_ingest_call call;
        if (mutt_ingest_call_prepare(&call, &p) == 0)
            del_all(c, &call);
        redisFree(c);
    }
    return 0;
}

/* Runs the script for the group; fills one verdict per request. Returns 0 or -1. */
static int run_group(redisContext *c, const struct mutt_ingest_params *p, const struct group *g, struct verdict *v)
{
    struct mutt_ingest_call call;
    if (mutt_ingest_call_prepare(&call, p) != 0)
        return -1;
    const char *argv[3 + MUTT_INGEST_NKEYS + MUTT_INGEST_NFIXED + 1 + MAXREQ + MAXEV + 4 + MAXREQ];
    size_t lens[sizeof argv / sizeof argv[0]];
    char nums[MAXREQ + 1][24];
    char nkeys[8];
    size_t k = 0;
    snprintf(nkeys, sizeof nkeys, "%d", MUTT_INGEST_NKEYS);
    argv[k++] = "EVAL";
    argv[k++] = mutt_ingest_lua;
    argv[k++] = nkeys;
    for (int i = 0; i < MUTT_INGEST_NKEYS; i++)
        argv[k++] = call.keys[i];
    for (int i = 0; i < MUTT_INGEST_NFIXED; i++)
        argv[k++] = call.args[i];
    snprintf(nums[0], sizeof nums[0], "%zu", g->nreq);
    argv[k++] = nums[0];
    for (size_t r = 0; r < g->nreq; r++) {
        snprintf(nums[r + 1], sizeof nums[0], "%zu", g->counts[r]);
        argv[k++] = nums[r + 1];
    }
    for (size_t e = 0; e < g->nev; e++)
        argv[k++] = g->events[e];
    for (size_t i = 0; i < g->nlin; i++)
        argv[k++] = g->lineage[i];
    for (size_t i = 0; i < k; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, (int)k, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != g->nreq * MUTT_INGEST_RESULT_WIDTH) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    for (size_t i = 0; i < g->nreq; i++) {
        v[i].code = r->element[4 * i]->integer;
        v[i].depth = r->element[4 * i + 1]->integer;
        v[i].extra = r->element[4 * i + 2]->integer;
        v[i].held = r->element[4 * i + 3]->integer;
    }
    freeReplyObject(r);
    return 0;
}

static long long get_int(redisContext *c, const char *cmd, const char *key)
{
    redisReply *r = redisCommand(c, "%s %s", cmd, key);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r && r->type == REDIS_REPLY_NIL)
        v = 0;
    if (r)
        freeReplyObject(r);
    return v;
}

/* The queue, oldest first (LPUSH puts the newest at the head), joined with ','. */
static void queue_oldest_first(redisContext *c, char *out, size_t len)
{
    redisReply *r = redisCommand(c, "LRANGE %s 0 -1", queue);
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = r ? r->elements : 0; i-- > 0;)
        used += (size_t)snprintf(out + used, len - used, "%s%s", used ? "," : "", r->element[i]->str);
    if (r)
        freeReplyObject(r);
}

static void test_ingest_lua_group_judges_each_request_in_arrival_order_against_the_cap(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    /* cap 5: A (2 events) fits; B (4) would make 6: refused whole; C (3) fits exactly: 5; D (1)
     * would make 6: refused. B's refusal takes nothing, so C is not refused because of B. */
    struct group g = {.nreq = 4, .counts = {2, 4, 3, 1},
                      .events = {"a1", "a2", "b1", "b2", "b3", "b4", "c1", "c2", "c3", "d1"}, .nev = 10};
    struct mutt_ingest_params p = params(5, 0, 0);
    struct verdict v[4];
    assert_int_equal(run_group(c, &p, &g, v), 0);
    assert_int_equal(v[0].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[0].depth, 2);
    assert_int_equal(v[0].extra, 2);
    assert_int_equal(v[1].code, MUTT_INGEST_QUEUE_FULL);
    assert_int_equal(v[1].depth, 2);
    assert_int_equal(v[1].extra, 5);
    assert_int_equal(v[2].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[2].depth, 5);
    assert_int_equal(v[2].extra, 3);
    assert_int_equal(v[3].code, MUTT_INGEST_QUEUE_FULL);
    assert_int_equal(v[3].depth, 5);

    char got[512];
    queue_oldest_first(c, got, sizeof got);
    assert_string_equal(got, "a1,a2,c1,c2,c3"); /* arrival order, refused requests absent */
    struct mutt_ingest_call call;
    assert_int_equal(mutt_ingest_call_prepare(&call, &p), 0);
    assert_int_equal(get_int(c, "GET", call.keys[5]), 10); /* bytes of the 5 pushed events */
    for (int k = 2; k <= 4; k++) /* dashboard 1m/1h/24h: accepted events only */
        assert_int_equal(get_int(c, "GET", call.keys[k]), 5);
    assert_true(get_int(c, "TTL", call.keys[2]) > 0);
}

static void test_ingest_lua_byte_cap_refuses_the_request_that_overflows_not_the_next(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    /* byte cap 10: A (4 bytes) fits; B (8 bytes, one event) would make 12: refused whole with the
     * counter it saw; C (6 bytes in 2 events) fits exactly. */
    struct group g = {.nreq = 3, .counts = {1, 1, 2}, .events = {"aaaa", "bbbbbbbb", "ccc", "ddd"}, .nev = 4};
    struct mutt_ingest_params p = params(1000, 0, 10);
    struct verdict v[3];
    assert_int_equal(run_group(c, &p, &g, v), 0);
    assert_int_equal(v[0].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[1].code, MUTT_INGEST_QUEUE_BYTES_FULL);
    assert_int_equal(v[1].extra, 10);
    assert_int_equal(v[1].held, 4);
    assert_int_equal(v[2].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[2].depth, 3);
    struct mutt_ingest_call call;
    assert_int_equal(mutt_ingest_call_prepare(&call, &p), 0);
    assert_int_equal(get_int(c, "GET", call.keys[5]), 10);
    assert_int_equal(get_int(c, "LLEN", queue), 3);

    /* the next group sees the counter the last one left: anything more is refused */
    struct group g2 = {.nreq = 1, .counts = {1}, .events = {"e"}, .nev = 1};
    assert_int_equal(run_group(c, &p, &g2, v), 0);
    assert_int_equal(v[0].code, MUTT_INGEST_QUEUE_BYTES_FULL);
    assert_int_equal(v[0].held, 10);
}

static void test_ingest_lua_rate_tokens_count_only_accepted_requests(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    /* 3 tokens: A (2) passes, B (2) is rate limited (D6: before the cap, and it takes nothing),
     * C (1) passes; D (1) is then limited even though the cap (2) would refuse it anyway. */
    struct group g = {.nreq = 4, .counts = {2, 2, 1, 1}, .events = {"a", "a", "b", "b", "c", "d"}, .nev = 6};
    struct mutt_ingest_params p = params(3, 3, 0);
    struct verdict v[4];
    assert_int_equal(run_group(c, &p, &g, v), 0);
    assert_int_equal(v[0].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[1].code, MUTT_INGEST_RATE_LIMITED);
    assert_int_equal(v[1].extra, 2);
    assert_int_equal(v[2].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[3].code, MUTT_INGEST_RATE_LIMITED);
    assert_int_equal(v[3].extra, 3);
    struct mutt_ingest_call call;
    assert_int_equal(mutt_ingest_call_prepare(&call, &p), 0);
    assert_int_equal(get_int(c, "GET", call.keys[1]), 3);
    assert_true(get_int(c, "TTL", call.keys[1]) > 0);
}

static void test_ingest_lua_group_with_nothing_accepted_changes_nothing(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct group g = {.nreq = 2, .counts = {3, 2}, .events = {"a", "a", "a", "b", "b"}, .nev = 5};
    struct mutt_ingest_params p = params(1, 0, 0);
    struct verdict v[2];
    assert_int_equal(run_group(c, &p, &g, v), 0);
    assert_int_equal(v[0].code, MUTT_INGEST_QUEUE_FULL);
    assert_int_equal(v[1].code, MUTT_INGEST_QUEUE_FULL);
    struct mutt_ingest_call call;
    assert_int_equal(mutt_ingest_call_prepare(&call, &p), 0);
    for (int k = 0; k < MUTT_INGEST_NKEYS; k++)
        assert_int_equal(get_int(c, "EXISTS", call.keys[k]), 0);
}

#define EV(cid, id) "{\"message\":\"m\",\"_correlation_id\":\"" cid "\",\"_event_id\":\"" id "\"}"
#define ID_A1 "aaaaaaaa-0000-4000-8000-000000000001"
#define ID_A2 "aaaaaaaa-0000-4000-8000-000000000002"
#define ID_B1 "bbbbbbbb-0000-4000-8000-000000000001"
#define ID_C1 "cccccccc-0000-4000-8000-000000000001"

/* D63: with the lineage block, each pushed event gets the accepted step and its correlation id
 * in its own hash, each request's ids go into its correlation set, all with the TTL; a refused
 * request and an event not ending in its id (another writer's text) get nothing. */
static void test_ingest_lua_lineage_block_records_pushed_events_only(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    char lp[128], key[256];
    snprintf(lp, sizeof lp, "%s:lineage:", queue);
    struct group g = {.nreq = 3, .counts = {2, 2, 1},
                      .events = {EV("cid-a", ID_A1), EV("cid-a", ID_A2), EV("cid-b", ID_B1), "{\"message\":\"no ids\"}",
                                 EV("cid-c", ID_C1)},
                      .nev = 5,
                      .lineage = {lp, "600", "1767225600000:a", "{\"pod\":\"p1\"}", "cid-a", "cid-b", "cid-c"},
                      .nlin = 7};
    struct mutt_ingest_params p = params(4, 0, 0); /* A (2) fits, B (2) fits, C (1) would make 5 */
    struct verdict v[3];
    assert_int_equal(run_group(c, &p, &g, v), 0);
    assert_int_equal(v[0].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[1].code, MUTT_INGEST_PUSHED);
    assert_int_equal(v[2].code, MUTT_INGEST_QUEUE_FULL);
    const char *pushed[] = {ID_A1, ID_A2, ID_B1};
    for (size_t i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s%s", lp, pushed[i]);
        redisReply *r = redisCommand(c, "HGET %s 1767225600000:a", key);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, "{\"pod\":\"p1\"}");
        freeReplyObject(r);
        r = redisCommand(c, "HGET %s c", key);
        assert_string_equal(r->str, i < 2 ? "cid-a" : "cid-b");
        freeReplyObject(r);
        long long ttl = get_int(c, "TTL", key);
        assert_true(ttl > 590 && ttl <= 600);
        freeReplyObject(redisCommand(c, "DEL %s", key));
    }
    snprintf(key, sizeof key, "%s%s", lp, ID_C1);
    assert_int_equal(get_int(c, "EXISTS", key), 0); /* refused: no step */
    snprintf(key, sizeof key, "%sc:cid-a", lp);
    assert_int_equal(get_int(c, "SCARD", key), 2);
    long long ttl = get_int(c, "TTL", key);
    assert_true(ttl > 590 && ttl <= 600);
    freeReplyObject(redisCommand(c, "DEL %s", key));
    snprintf(key, sizeof key, "%sc:cid-b", lp);
    assert_int_equal(get_int(c, "SCARD", key), 1);
    freeReplyObject(redisCommand(c, "DEL %s", key));
    snprintf(key, sizeof key, "%sc:cid-c", lp);
    assert_int_equal(get_int(c, "EXISTS", key), 0);
    redisReply *r = redisCommand(c, "KEYS %s*", lp);
    assert_int_equal(r->elements, 0); /* nothing else, nothing for the event without ids */
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingest_lua_group_judges_each_request_in_arrival_order_against_the_cap,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_lua_byte_cap_refuses_the_request_that_overflows_not_the_next,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_lua_rate_tokens_count_only_accepted_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_lua_group_with_nothing_accepted_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_lua_lineage_block_records_pushed_events_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
