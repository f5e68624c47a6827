/* Integration test of the retry-set scripts (src/domain/retryset.c, D4) against a real
 * redis-server: schedule moves an item from a processing list into mutt:retry:moog atomically;
 * promote moves due members (prefix stripped) to the alert queue, earliest first, bounded by the
 * batch size, and two pods promoting at once never duplicate or lose a member.
 * Needs: redis (MUTT_TEST_REDIS_HOST/PORT); skips without it. Sync hiredis: test code only. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "mutt/retryset.h"
#include "testenv.h"

static char zkey[96], queue[96], processing[96];

static redisContext *connect_redis(void)
{
    const char *host = mutt_test_env("REDIS_HOST");
    redisContext *c = redisConnect(host ? host : "127.0.0.1", mutt_test_env_int("REDIS_PORT", 0));
    return (c && !c->err) ? c : NULL;
}

static int setup(void **state)
{
    static int run;
    snprintf(zkey, sizeof(zkey), "mutt:test:%d:%d:retry:moog", (int)getpid(), run);
    snprintf(queue, sizeof(queue), "mutt:test:%d:%d:alert_queue", (int)getpid(), run);
    snprintf(processing, sizeof(processing), "mutt:test:%d:%d:processing:moog:pod-1", (int)getpid(), run);
    run++;
    *state = mutt_test_env("REDIS_PORT") ? connect_redis() : NULL;
    return 0;
}

static int teardown(void **state)
{
    redisContext *c = *state;
    if (c) {
        freeReplyObject(redisCommand(c, "DEL %s %s %s", zkey, queue, processing));
        redisFree(c);
    }
    return 0;
}

/* now_ms < 0 = server clock. Returns the count, or -1 on a script error. */
static long long promote(redisContext *c, int64_t now_ms, int max)
{
    char n[32] = "", m[16];
    if (now_ms >= 0)
        snprintf(n, sizeof(n), "%lld", (long long)now_ms);
    snprintf(m, sizeof(m), "%d", max);
    const char *argv[] = {"EVAL", mutt_retry_promote_lua, "2", zkey, queue, n, m};
    redisReply *r = redisCommandArgv(c, 7, argv, NULL);
    long long v = (r && r->type == REDIS_REPLY_INTEGER) ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static void zadd(redisContext *c, long long score, const char *member)
{
    freeReplyObject(redisCommand(c, "ZADD %s %lld %s", zkey, score, member));
}

static char *rpop(redisContext *c)
{
    redisReply *r = redisCommand(c, "RPOP %s", queue);
    char *s = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return s;
}

static long long count(redisContext *c, const char *cmd, const char *k)
{
    redisReply *r = redisCommand(c, "%s %s", cmd, k);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

#define NEED_REDIS(c)                                                                                                  \
    do {                                                                                                               \
        if (!(c))                                                                                                      \
            MUTT_SKIP("no-harness", "no Redis");                                                                                                    \
    } while (0)

static void test_retryset_promote_moves_due_members_earliest_first_without_the_prefix(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    zadd(c, 300, "u3|{\"n\":3,\"msg\":\"a|b\"}");
    zadd(c, 100, "u1|{\"n\":1}");
    zadd(c, 200, "u2|{\"n\":2}");
    zadd(c, 5000, "u4|{\"n\":4}");
    assert_int_equal(promote(c, 300, 10), 3); /* due = score <= now */
    assert_int_equal(count(c, "ZCARD", zkey), 1);
    char *s;
    /* the consumer pops from the right (BRPOPLPUSH): earliest due comes out first */
    s = rpop(c); assert_string_equal(s, "{\"n\":1}"); free(s);
    s = rpop(c); assert_string_equal(s, "{\"n\":2}"); free(s);
    s = rpop(c); assert_string_equal(s, "{\"n\":3,\"msg\":\"a|b\"}"); free(s); /* only the first '|' splits */
    assert_null(rpop(c));
    assert_int_equal(promote(c, 4999, 10), 0);
}

static void test_retryset_promote_honours_the_batch_size(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    char m[64];
    for (int i = 0; i < 10; i++) {
        snprintf(m, sizeof(m), "u%d|{\"i\":%d}", i, i);
        zadd(c, 10 + i, m);
    }
    assert_int_equal(promote(c, 1000, 4), 4);
    assert_int_equal(count(c, "LLEN", queue), 4);
    assert_int_equal(count(c, "ZCARD", zkey), 6);
    char *s = rpop(c);
    assert_string_equal(s, "{\"i\":0}");
    free(s);
    assert_int_equal(promote(c, 1000, 100), 6);
    assert_int_equal(count(c, "ZCARD", zkey), 0);
}

static void test_retryset_promote_pushes_a_member_without_prefix_whole(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    zadd(c, 1, "{\"legacy\":true}");
    assert_int_equal(promote(c, -1, 10), 1); /* server clock: score 1 is long due */
    char *s = rpop(c);
    assert_string_equal(s, "{\"legacy\":true}");
    free(s);
    assert_int_equal(promote(c, 5, 0), -1); /* batch size 0 is an error, not "all" */
}

static void test_retryset_schedule_moves_the_processing_item_atomically(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    const char *item = "{\"hostname\":\"h\",\"_moog_retry_count\":0}";
    freeReplyObject(redisCommand(c, "LPUSH %s %s", processing, item));
    freeReplyObject(redisCommand(c, "LPUSH %s %s", processing, "{\"other\":1}"));
    size_t mlen;
    const char *updated = "{\"hostname\":\"h\",\"_moog_retry_count\":1}";
    char *member = mutt_retry_member("6f1c0e7a-0000-4000-8000-000000000001", updated, strlen(updated), &mlen);
    const char *argv[] = {"EVAL", mutt_retry_schedule_lua, "2", zkey, processing, "123456", member, item};
    redisReply *r = redisCommandArgv(c, 8, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(count(c, "LLEN", processing), 1); /* only that item left the list */
    r = redisCommand(c, "ZSCORE %s %s", zkey, member);
    assert_string_equal(r->str, "123456");
    freeReplyObject(r);
    /* scheduled twice (e.g. after a janitor requeue): the item is gone, the member is still kept */
    r = redisCommandArgv(c, 8, argv, NULL);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    assert_int_equal(count(c, "ZCARD", zkey), 1);
    assert_int_equal(promote(c, 123456, 10), 1);
    char *s = rpop(c);
    assert_string_equal(s, updated);
    free(s);
    free(member);
}

/* ---- two pods promoting at once ---- */

#define MEMBERS 2000

struct pod {
    long long moved;
    int errors;
};

static void *pod_main(void *arg)
{
    struct pod *p = arg;
    redisContext *c = connect_redis();
    if (!c) {
        p->errors++;
        return NULL;
    }
    for (;;) {
        long long n = promote(c, 1000000, 7);
        if (n < 0) {
            p->errors++;
            break;
        }
        if (n == 0)
            break;
        p->moved += n;
    }
    redisFree(c);
    return NULL;
}

static void test_retryset_two_pods_promoting_neither_duplicate_nor_lose(void **state)
{
    redisContext *c = *state;
    NEED_REDIS(c);
    char m[64];
    for (int i = 0; i < MEMBERS; i++) {
        snprintf(m, sizeof(m), "u%d|%d", i, i);
        redisAppendCommand(c, "ZADD %s %d %s", zkey, i, m);
    }
    for (int i = 0; i < MEMBERS; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    struct pod pods[2] = {{0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, pod_main, &pods[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(pods[0].errors + pods[1].errors, 0);
    assert_int_equal(pods[0].moved + pods[1].moved, MEMBERS);
    assert_int_equal(count(c, "LLEN", queue), MEMBERS);
    assert_int_equal(count(c, "ZCARD", zkey), 0);
    /* every value exactly once */
    char *seen = calloc(MEMBERS, 1);
    redisReply *r = redisCommand(c, "LRANGE %s 0 -1", queue);
    assert_int_equal(r->elements, MEMBERS);
    for (size_t i = 0; i < r->elements; i++) {
        int v = atoi(r->element[i]->str);
        assert_true(v >= 0 && v < MEMBERS);
        assert_int_equal(seen[v], 0);
        seen[v] = 1;
    }
    freeReplyObject(r);
    free(seen);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retryset_promote_moves_due_members_earliest_first_without_the_prefix,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryset_promote_honours_the_batch_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryset_promote_pushes_a_member_without_prefix_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryset_schedule_moves_the_processing_item_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retryset_two_pods_promoting_neither_duplicate_nor_lose, setup, teardown),
    };
    return cmocka_run_group_tests_name("retryset_lua", tests, NULL, NULL);
}
