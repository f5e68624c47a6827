/* Integration test of the shared Lua scripts (src/domain/redis_scripts.c) against a real
 * redis-server: the one DLQ-move script keeps each caller's behaviour (mode tail for `mutt dlq
 * replay`, which reads the DLQ's tail itself; mode lrem for the web replay and remediation, which
 * move through a processing list first), pushes only what it removed, grows an optional byte
 * counter; the unhandled top script answers live templates best first and drops expired ones;
 * the dry-run sample push keeps the newest items in order up to its cap.
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

#include "mutt/redis_scripts.h"
#include "testenv.h"

static char from[96], target[96], bytes[96], top[96], info[96];

static redisContext *connect_redis(void)
{
    const char *host = mutt_test_env("REDIS_HOST");
    redisContext *c = redisConnect(host ? host : "127.0.0.1", mutt_test_env_int("REDIS_PORT", 0));
    return (c && !c->err) ? c : NULL;
}

static int setup(void **state)
{
    static int run;
    snprintf(from, sizeof from, "mutt:test:%d:%d:from", (int)getpid(), run);
    snprintf(target, sizeof target, "mutt:test:%d:%d:target", (int)getpid(), run);
    snprintf(bytes, sizeof bytes, "mutt:test:%d:%d:target:bytes", (int)getpid(), run);
    snprintf(top, sizeof top, "mutt:test:%d:%d:unhandled:_top", (int)getpid(), run);
    snprintf(info, sizeof info, "mutt:test:%d:%d:unhandled:i:", (int)getpid(), run);
    run++;
    *state = mutt_test_env("REDIS_PORT") ? connect_redis() : NULL;
    return 0;
}

static int teardown(void **state)
{
    redisContext *c = *state;
    if (c) {
        freeReplyObject(redisCommand(c, "DEL %s %s %s %s %sa %sb %sc", from, target, bytes, top, info, info, info));
        redisFree(c);
    }
    return 0;
}

#define NEED_REDIS(c)                                                                                                  \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            skip();                                                                                                    \
    } while (0)

/* Runs the move; returns its integer reply, -2 for an error reply. with_bytes adds KEYS[3]. */
static long long move(redisContext *c, const char *item, const char *rewrite, const char *mode, int with_bytes)
{
    const char *argv[] = {"EVAL", mutt_script_dlq_move_lua, with_bytes ? "3" : "2", from, target, bytes};
    const char *argv_rest[] = {item, rewrite, mode};
    const char *all[9];
    int n = 0;
    for (int i = 0; i < 5; i++)
        all[n++] = argv[i];
    if (with_bytes)
        all[n++] = bytes;
    for (int i = 0; i < 3; i++)
        all[n++] = argv_rest[i];
    redisReply *r = redisCommandArgv(c, n, all, NULL);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : r->type == REDIS_REPLY_ERROR ? -2 : -3;
    freeReplyObject(r);
    return v;
}

static void lpush(redisContext *c, const char *key, const char *v)
{
    freeReplyObject(redisCommand(c, "LPUSH %s %s", key, v));
}

static long long llen(redisContext *c, const char *key)
{
    redisReply *r = redisCommand(c, "LLEN %s", key);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static char *lindex(redisContext *c, const char *key, int i)
{
    redisReply *r = redisCommand(c, "LINDEX %s %d", key, i);
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

static void test_dlq_move_tail_moves_the_tail_it_read(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    lpush(c, from, "old");
    lpush(c, from, "new");
    assert_int_equal(move(c, "old", "old'", MUTT_SCRIPT_DLQ_MOVE_TAIL, 0), 1);
    assert_int_equal(llen(c, from), 1);
    char *s = lindex(c, target, 0);
    assert_string_equal(s, "old'");
    free(s);
}

/* the CLI's race check: someone took the tail first, and an equal item further up stays put */
static void test_dlq_move_tail_leaves_an_item_that_is_no_longer_the_tail(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    lpush(c, from, "other");
    lpush(c, from, "x");
    assert_int_equal(move(c, "x", "x'", MUTT_SCRIPT_DLQ_MOVE_TAIL, 0), 0);
    assert_int_equal(llen(c, from), 2);
    assert_int_equal(llen(c, target), 0);
}

static void test_dlq_move_lrem_takes_the_item_from_anywhere_once(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    lpush(c, from, "a");
    lpush(c, from, "x");
    lpush(c, from, "b");
    assert_int_equal(move(c, "x", "x'", MUTT_SCRIPT_DLQ_MOVE_LREM, 0), 1);
    assert_int_equal(llen(c, from), 2);
    assert_int_equal(llen(c, target), 1);
    /* a recovery returned it meanwhile: nothing is pushed twice */
    assert_int_equal(move(c, "x", "x'", MUTT_SCRIPT_DLQ_MOVE_LREM, 0), 0);
    assert_int_equal(llen(c, target), 1);
}

static void test_dlq_move_refuses_an_unknown_mode_and_changes_nothing(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    lpush(c, from, "x");
    assert_int_equal(move(c, "x", "x'", "sideways", 0), -2);
    assert_int_equal(llen(c, from), 1);
    assert_int_equal(llen(c, target), 0);
}

static void test_dlq_move_grows_the_optional_byte_counter_by_the_rewrite(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    lpush(c, from, "x");
    lpush(c, from, "y");
    assert_int_equal(move(c, "x", "12345", MUTT_SCRIPT_DLQ_MOVE_LREM, 1), 1);
    assert_int_equal(move(c, "gone", "999", MUTT_SCRIPT_DLQ_MOVE_LREM, 1), 0);
    redisReply *r = redisCommand(c, "GET %s", bytes);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "5");
    freeReplyObject(r);
    /* without KEYS[3] no counter is touched */
    assert_int_equal(move(c, "y", "yy", MUTT_SCRIPT_DLQ_MOVE_TAIL, 0), 1);
    r = redisCommand(c, "GET %s", bytes);
    assert_string_equal(r->str, "5");
    freeReplyObject(r);
}

/* D63: the optional lineage step (ARGV[4..7]) is written with its TTL only when the item moved. */
static void test_dlq_move_writes_the_lineage_step_only_when_it_moved(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    char lin[128];
    snprintf(lin, sizeof lin, "%s:lineage", from);
    lpush(c, from, "x");
    const char *argv[] = {"EVAL", mutt_script_dlq_move_lua, "2", from, target, "x", "x'", MUTT_SCRIPT_DLQ_MOVE_LREM,
                          lin, "5:p", "{\"by\":\"web\"}", "600"};
    for (int round = 0; round < 2; round++) {
        redisReply *r = redisCommandArgv(c, 12, argv, NULL);
        assert_non_null(r);
        assert_int_equal(r->integer, round == 0 ? 1 : 0);
        freeReplyObject(r);
        r = redisCommand(c, "HLEN %s", lin);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        if (round == 0) /* the second move finds nothing: the step must not be written again */
            freeReplyObject(redisCommand(c, "DEL %s", lin)), freeReplyObject(redisCommand(c, "HSET %s 0:a {}", lin));
    }
    redisReply *r = redisCommand(c, "HGET %s 5:p", lin);
    assert_int_equal(r->type, REDIS_REPLY_NIL); /* written by the first move only, and deleted since */
    freeReplyObject(r);
    freeReplyObject(redisCommand(c, "DEL %s", lin));
    /* the first move wrote the step with the TTL */
    lpush(c, from, "y");
    argv[5] = "y";
    r = redisCommandArgv(c, 12, argv, NULL);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    r = redisCommand(c, "HGET %s 5:p", lin);
    assert_string_equal(r->str, "{\"by\":\"web\"}");
    freeReplyObject(r);
    r = redisCommand(c, "TTL %s", lin);
    assert_true(r->integer > 590 && r->integer <= 600);
    freeReplyObject(r);
    freeReplyObject(redisCommand(c, "DEL %s", lin));
}

static void test_unhandled_top_answers_live_templates_best_first_and_drops_expired(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    freeReplyObject(redisCommand(c, "ZADD %s 5 a 9 b 7 c", top));
    freeReplyObject(redisCommand(c, "HSET %sa hostname h1 template t1 sample s1 first_seen f1 last_seen l1", info));
    freeReplyObject(redisCommand(c, "HSET %sb hostname h2 template t2 sample s2 first_seen f2 last_seen l2", info));
    /* c has no info hash: its window expired */
    const char *argv[] = {"EVAL", mutt_script_unhandled_top_lua, "1", top, info, "50", "10"};
    redisReply *r = redisCommandArgv(c, 7, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[0]->element[0]->str, "h2");
    assert_string_equal(r->element[0]->element[2]->str, "9");
    assert_string_equal(r->element[1]->element[1]->str, "t1");
    assert_string_equal(r->element[1]->element[5]->str, "l1");
    freeReplyObject(r);
    r = redisCommand(c, "ZSCORE %s c", top);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
}

/* The dry-run sample (issue 16): more items than one inner LPUSH takes (1000), pushed in order
 * (the last argument is the newest, at the head), then trimmed to the cap. */
static void test_sample_push_keeps_the_newest_cap_items_in_order(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    lpush(c, target, "old");
    enum { N = 2500 };
    const char **argv = calloc(N + 5, sizeof *argv);
    char (*items)[16] = calloc(N, sizeof *items);
    assert_non_null(argv);
    assert_non_null(items);
    argv[0] = "EVAL";
    argv[1] = mutt_script_sample_push_lua;
    argv[2] = "1";
    argv[3] = target;
    argv[4] = "2000";
    for (int i = 0; i < N; i++) {
        snprintf(items[i], sizeof items[i], "e%d", i);
        argv[5 + i] = items[i];
    }
    redisReply *r = redisCommandArgv(c, N + 5, argv, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 2000);
    freeReplyObject(r);
    free(argv);
    free(items);
    assert_int_equal(llen(c, target), 2000);
    char *head = lindex(c, target, 0), *tail = lindex(c, target, 1999);
    assert_string_equal(head, "e2499"); /* the newest */
    assert_string_equal(tail, "e500");  /* "old" and e0..e499 trimmed */
    free(head);
    free(tail);
    char *mid = lindex(c, target, 1499); /* across the 1000-argument boundary: still in order */
    assert_string_equal(mid, "e1000");
    free(mid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dlq_move_tail_moves_the_tail_it_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_tail_leaves_an_item_that_is_no_longer_the_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_lrem_takes_the_item_from_anywhere_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_refuses_an_unknown_mode_and_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_grows_the_optional_byte_counter_by_the_rewrite, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sample_push_keeps_the_newest_cap_items_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_move_writes_the_lineage_step_only_when_it_moved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unhandled_top_answers_live_templates_best_first_and_drops_expired, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("redis_scripts", tests, NULL, NULL);
}
