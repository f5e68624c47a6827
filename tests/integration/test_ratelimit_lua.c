/* Integration test of the shared webhook rate limiter script (src/domain/ratelimit_lua.c)
 * against a real redis-server: exact window arithmetic with explicit clocks, the server-clock
 * mode, and two clients (threads, one connection each, like two pods) hammering one key for
 * several windows without exceeding the limit in any window.
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
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "mutt/ratelimit.h"
#include "testenv.h"

static char key[96];

static redisContext *connect_redis(void)
{
    const char *host = mutt_test_env("REDIS_HOST");
    redisContext *c = redisConnect(host ? host : "127.0.0.1", mutt_test_env_int("REDIS_PORT", 0));
    return (c && !c->err) ? c : NULL;
}

static int setup(void **state)
{
    static int run;
    snprintf(key, sizeof(key), "mutt:test:%d:%d:rate_limit:moog", (int)getpid(), run++);
    *state = mutt_test_env("REDIS_PORT") ? connect_redis() : NULL;
    return 0;
}

static int teardown(void **state)
{
    redisContext *c = *state;
    if (c) {
        freeReplyObject(redisCommand(c, "DEL %s", key));
        redisFree(c);
    }
    return 0;
}

/* Returns 1 allowed / 0 denied; *wait_ms gets the script's wait. now_ms < 0 = server clock. */
static int take(redisContext *c, long limit, long window_ms, int64_t now_ms, const char *member, long long *wait_ms,
                long long *used_now)
{
    char l[32], w[32], n[32] = "";
    snprintf(l, sizeof(l), "%ld", limit);
    snprintf(w, sizeof(w), "%ld", window_ms);
    if (now_ms >= 0)
        snprintf(n, sizeof(n), "%lld", (long long)now_ms);
    const char *argv[] = {"EVAL", mutt_ratelimit_lua, "1", key, l, w, n, member};
    redisReply *r = redisCommandArgv(c, 8, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    int allowed = (int)r->element[0]->integer;
    if (wait_ms)
        *wait_ms = r->element[1]->integer;
    if (used_now)
        *used_now = r->element[2]->integer;
    freeReplyObject(r);
    return allowed;
}

static void test_ratelimit_lua_allows_limit_per_window_then_says_how_long_to_wait(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    long long wait = -1;
    assert_int_equal(take(c, 3, 1000, 10000, "a", &wait, NULL), 1);
    assert_int_equal(wait, 0);
    assert_int_equal(take(c, 3, 1000, 10001, "b", NULL, NULL), 1);
    assert_int_equal(take(c, 3, 1000, 10002, "c", NULL, NULL), 1);
    assert_int_equal(take(c, 3, 1000, 10003, "d", &wait, NULL), 0);
    assert_int_equal(wait, 997); /* when "a" leaves the window */
    assert_int_equal(take(c, 3, 1000, 10999, "d", &wait, NULL), 0);
    assert_int_equal(wait, 1);
    assert_int_equal(take(c, 3, 1000, 11000, "d", NULL, NULL), 1); /* "a" left; b, c, d now */
    assert_int_equal(take(c, 3, 1000, 11000, "e", NULL, NULL), 0);
    redisReply *r = redisCommand(c, "ZCARD %s", key);
    assert_int_equal(r->integer, 3); /* denied calls leave nothing behind */
    freeReplyObject(r);
    r = redisCommand(c, "PTTL %s", key);
    assert_true(r->integer > 0 && r->integer <= 1000);
    freeReplyObject(r);
}

static void test_ratelimit_lua_server_clock_mode_and_bad_args(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    assert_int_equal(take(c, 2, 60000, -1, "x1", NULL, NULL), 1);
    assert_int_equal(take(c, 2, 60000, -1, "x2", NULL, NULL), 1);
    long long wait = 0;
    assert_int_equal(take(c, 2, 60000, -1, "x3", &wait, NULL), 0);
    assert_true(wait > 59000 && wait <= 60000);
    long long used = 0;
    assert_int_equal(take(c, 2, 60000, 777, "x5", NULL, &used), 0);
    assert_int_equal(used, 777); /* the clock the script used is reported back */
    assert_int_equal(take(c, 2, 0, -1, "x4", NULL, NULL), -1); /* window 0 is refused with an error */
}

/* ---- two pods ---- */

#define WINDOW_MS 200
#define LIMIT 40
#define RUN_MS 1500

struct client {
    int id;
    int64_t *allowed_at; /* Redis clock of allowed calls */
    int nallowed;
    int calls;
    int errors;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    redisContext *c = connect_redis();
    if (!c) {
        cl->errors++;
        return NULL;
    }
    int64_t end = now_ms() + RUN_MS;
    char member[64];
    for (int64_t t = now_ms(); t < end; t = now_ms()) {
        snprintf(member, sizeof(member), "pod%d:%d", cl->id, cl->calls++);
        long long used = 0;
        /* the server clock, as production runs it: calls are judged in execution order */
        int rc = take(c, LIMIT, WINDOW_MS, -1, member, NULL, &used);
        if (rc < 0)
            cl->errors++;
        else if (rc == 1)
            cl->allowed_at[cl->nallowed++] = used;
    }
    redisFree(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_ratelimit_lua_two_pods_share_one_budget(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct client cl[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].id = i;
        cl[i].allowed_at = calloc(100000, sizeof(int64_t));
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(cl[0].errors + cl[1].errors, 0);
    int n = cl[0].nallowed + cl[1].nallowed;
    int64_t *all = calloc((size_t)n + 1, sizeof(int64_t));
    memcpy(all, cl[0].allowed_at, (size_t)cl[0].nallowed * sizeof(int64_t));
    memcpy(all + cl[0].nallowed, cl[1].allowed_at, (size_t)cl[1].nallowed * sizeof(int64_t));
    qsort(all, (size_t)n, sizeof(int64_t), cmp_i64);
    /* every sliding window (t - WINDOW, t] holds at most LIMIT allowed calls */
    int worst = 0;
    for (int i = 0, lo = 0; i < n; i++) {
        while (all[lo] <= all[i] - WINDOW_MS)
            lo++;
        if (i - lo + 1 > worst)
            worst = i - lo + 1;
    }
    print_message("two pods: %d + %d calls, %d allowed, busiest window %d (limit %d)\n", cl[0].calls, cl[1].calls, n,
                  worst, LIMIT);
    assert_true(cl[0].calls > 2 * LIMIT && cl[1].calls > 2 * LIMIT); /* both really competed */
    assert_true(worst <= LIMIT);
    /* and the budget was used: at most limit per period, within 10 % */
    double periods = (double)RUN_MS / WINDOW_MS;
    assert_true(n <= (int)(LIMIT * (periods + 1)));
    assert_true(n >= (int)(0.9 * LIMIT * periods));
    assert_true(cl[0].nallowed > 0 && cl[1].nallowed > 0);
    free(all);
    free(cl[0].allowed_at);
    free(cl[1].allowed_at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_allows_limit_per_window_then_says_how_long_to_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_server_clock_mode_and_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_two_pods_share_one_budget, setup, teardown),
    };
    return cmocka_run_group_tests_name("ratelimit_lua", tests, NULL, NULL);
}
