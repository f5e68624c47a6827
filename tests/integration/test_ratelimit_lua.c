/* Integration test of the shared webhook rate limiter script (src/domain/ratelimit_lua.c), in
 * leases, against a real redis-server: exact window arithmetic with explicit clocks (a lease
 * never grants past the limit, settling returns unspent tokens, spent ones count until one window
 * after the settle or the deadline, a crashed holder's lease counts until its deadline + window,
 * the wait points at the earliest token that can come back), the server-clock mode and bad
 * arguments, and two clients (threads, one connection each, like two pods) leasing from one key
 * for several windows without their spends exceeding the limit in any window.
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

struct grant {
    long long n, wait, now;
    char member[160];
};

/* One lease call. now_ms < 0 = server clock. prev "" = nothing to settle. 0 ok, -1 error. */
static int lease_at(redisContext *c, long limit, long window_ms, int64_t now_ms, const char *base, long want,
                    long lease_ms, const char *prev, long spent, int64_t last_spend, struct grant *g)
{
    char l[32], w[32], n[32] = "", wa[32], le[32], sp[32];
    snprintf(l, sizeof(l), "%ld", limit);
    snprintf(w, sizeof(w), "%ld", window_ms);
    if (now_ms >= 0)
        snprintf(n, sizeof(n), "%lld", (long long)now_ms);
    snprintf(wa, sizeof(wa), "%ld", want);
    snprintf(le, sizeof(le), "%ld", lease_ms);
    snprintf(sp, sizeof(sp), "%ld", spent);
    char la[32] = "";
    if (last_spend >= 0)
        snprintf(la, sizeof(la), "%lld", (long long)last_spend);
    const char *argv[] = {"EVAL", mutt_ratelimit_lua, "1", key, l, w, n, base, wa, le, prev ? prev : "", sp, la};
    redisReply *r = redisCommandArgv(c, 13, argv, NULL);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    memset(g, 0, sizeof(*g));
    g->n = r->element[0]->integer;
    g->wait = r->element[1]->integer;
    g->now = r->element[2]->integer;
    snprintf(g->member, sizeof(g->member), "%s", r->element[3]->str ? r->element[3]->str : "");
    freeReplyObject(r);
    return 0;
}

/* Settles without saying when the last token was spent (the settle time bounds it). */
static int lease(redisContext *c, long limit, long window_ms, int64_t now_ms, const char *base, long want,
                 long lease_ms, const char *prev, long spent, struct grant *g)
{
    return lease_at(c, limit, window_ms, now_ms, base, want, lease_ms, prev, spent, -1, g);
}

static long long zcard(redisContext *c)
{
    redisReply *r = redisCommand(c, "ZCARD %s", key);
    long long n = r ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

static void test_ratelimit_lua_lease_never_grants_past_the_limit_and_says_how_long_to_wait(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct grant a, b, d;
    /* limit 10 per 1000 ms, leases of 100 ms */
    assert_int_equal(lease(c, 10, 1000, 10000, "p:1", 4, 100, "", 0, &a), 0);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.member, "p:1#4");
    assert_int_equal(lease(c, 10, 1000, 10010, "q:1", 8, 100, "", 0, &b), 0);
    assert_int_equal(b.n, 6); /* only what is left */
    assert_int_equal(lease(c, 10, 1000, 10020, "r:1", 1, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_string_equal(d.member, "");
    assert_int_equal(d.wait, 80); /* p's lease reaches its deadline (10100): its holder gives back */
    /* both holders spent everything and settle at their deadlines */
    assert_int_equal(lease(c, 10, 1000, 10100, "p:2", 0, 100, a.member, 4, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(lease(c, 10, 1000, 10110, "q:2", 0, 100, b.member, 6, &d), 0);
    assert_int_equal(lease(c, 10, 1000, 10200, "r:2", 3, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.wait, 900); /* p's spends (settled at 10100) leave the window at 11100 */
    assert_int_equal(lease(c, 10, 1000, 11099, "r:3", 3, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.wait, 1);
    assert_int_equal(lease(c, 10, 1000, 11100, "r:4", 5, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 4); /* p's 4 are back, q's 6 still count until 11110 */
    assert_int_equal(zcard(c), 2);
    redisReply *r = redisCommand(c, "PTTL %s", key);
    assert_true(r->integer > 0 && r->integer <= 1100);
    freeReplyObject(r);
}

static void test_ratelimit_lua_settling_returns_unspent_tokens(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct grant a, b, d;
    assert_int_equal(lease(c, 10, 1000, 5000, "p:1", 10, 100, "", 0, &a), 0);
    assert_int_equal(a.n, 10);
    assert_int_equal(lease(c, 10, 1000, 5010, "q:1", 5, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0); /* all held by p */
    /* p spent 3 and asks again in the same call: 7 come back, p gets 5 of them */
    assert_int_equal(lease(c, 10, 1000, 5020, "p:2", 5, 100, a.member, 3, &b), 0);
    assert_int_equal(b.n, 5);
    assert_int_equal(lease(c, 10, 1000, 5030, "q:2", 5, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 2);
    /* an idle holder settling with nothing spent removes its lease */
    assert_int_equal(lease(c, 10, 1000, 5040, "p:3", 0, 100, b.member, 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(lease(c, 10, 1000, 5050, "q:3", 9, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 5);
    /* settling an entry that is gone (expired, or already settled) changes nothing */
    assert_int_equal(lease(c, 10, 1000, 5060, "p:4", 0, 100, b.member, 5, &d), 0);
    assert_int_equal(lease(c, 10, 1000, 5070, "z:1", 1, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
}

static void test_ratelimit_lua_a_crashed_holder_counts_until_its_deadline_plus_window(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct grant a, d;
    assert_int_equal(lease(c, 5, 1000, 1000, "dead:1", 5, 200, "", 0, &a), 0);
    assert_int_equal(a.n, 5);
    /* never settled: it could have spent until 1200, so it counts until 2200 */
    assert_int_equal(lease(c, 5, 1000, 1300, "q:1", 1, 200, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.wait, 900);
    assert_int_equal(lease(c, 5, 1000, 2199, "q:2", 1, 200, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(lease(c, 5, 1000, 2200, "q:3", 5, 200, "", 0, &d), 0);
    assert_int_equal(d.n, 5);
    /* a settle after the deadline is scored at the deadline, not later */
    assert_int_equal(lease(c, 5, 1000, 2900, "q:4", 0, 200, d.member, 5, &d), 0);
    assert_int_equal(lease(c, 5, 1000, 3400, "q:5", 5, 200, "", 0, &d), 0);
    assert_int_equal(d.n, 5); /* settled at 2400 (the deadline): out of the window at 3400 */
}

static void test_ratelimit_lua_spent_tokens_count_from_the_last_spend(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct grant a, d;
    assert_int_equal(lease(c, 4, 1000, 1000, "p:1", 4, 100, "", 0, &a), 0);
    /* all 4 spent by 1003, settled at 1050: they count until 2003, not 2050 */
    assert_int_equal(lease_at(c, 4, 1000, 1050, "p:2", 0, 100, a.member, 4, 1003, &d), 0);
    assert_int_equal(lease(c, 4, 1000, 1500, "q:1", 1, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.wait, 503);
    assert_int_equal(lease(c, 4, 1000, 2003, "q:2", 4, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 4);
    /* a last spend later than the settle or the deadline is capped by them */
    assert_int_equal(lease_at(c, 4, 1000, 2010, "q:3", 0, 100, d.member, 4, 9999, &d), 0);
    assert_int_equal(lease(c, 4, 1000, 3009, "r:1", 1, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.wait, 1);
    assert_int_equal(lease(c, 4, 1000, 3010, "r:2", 1, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 1);
}

static void test_ratelimit_lua_older_entries_count_one_each(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    redisReply *r = redisCommand(c, "ZADD %s 1000 pod:1 1001 pod:2", key); /* the older script's log */
    freeReplyObject(r);
    struct grant d;
    assert_int_equal(lease(c, 5, 1000, 1100, "p:1", 5, 100, "", 0, &d), 0);
    assert_int_equal(d.n, 3);
}

static void test_ratelimit_lua_server_clock_mode_and_bad_args(void **state)
{
    redisContext *c = *state;
    if (!c)
        MUTT_SKIP("no-harness", "no Redis");
    struct grant d;
    assert_int_equal(lease(c, 2, 60000, -1, "x:1", 2, 1000, "", 0, &d), 0);
    assert_int_equal(d.n, 2);
    int64_t t0 = d.now;
    assert_true(t0 > 1700000000000LL); /* the Redis clock, epoch ms */
    assert_int_equal(lease(c, 2, 60000, -1, "x:2", 1, 1000, "", 0, &d), 0);
    assert_int_equal(d.n, 0);
    assert_true(d.wait >= 1 && d.wait <= 1000); /* the pending lease's deadline */
    assert_int_equal(lease(c, 2, 60000, 777, "x:3", 1, 1000, "", 0, &d), 0);
    assert_int_equal(d.now, 777); /* the clock the script used is reported back */
    assert_int_equal(lease(c, 2, 0, -1, "x:4", 1, 100, "", 0, &d), -1);   /* window 0 */
    assert_int_equal(lease(c, 2, 1000, -1, "", 1, 100, "", 0, &d), -1);   /* no base */
    assert_int_equal(lease(c, 2, 1000, -1, "x:5", -1, 100, "", 0, &d), -1); /* negative want */
}

/* ---- two pods ---- */

#define WINDOW_MS 200
#define LEASE_MS 20
#define LIMIT 40
#define LEASE 4
#define RUN_MS 1500

struct client {
    int id;
    int64_t *spent_at; /* Redis clock of each token spent */
    int nspent;
    int calls;
    int errors;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A pod with more alerts than the limit: spends every granted token at once (at the script's
 * clock, the earliest it can), settles it in its next call, saying it spent them at the grant,
 * and that call also asks for the next lease. */
static void *client_main(void *arg)
{
    struct client *cl = arg;
    redisContext *c = connect_redis();
    if (!c) {
        cl->errors++;
        return NULL;
    }
    int64_t end = now_ms() + RUN_MS;
    char base[64], prev[160] = "";
    long spent = 0;
    int64_t last_at = -1;
    for (int64_t t = now_ms(); t < end; t = now_ms()) {
        snprintf(base, sizeof(base), "pod%d:%d", cl->id, cl->calls++);
        struct grant g;
        /* the server clock, as production runs it: calls are judged in execution order */
        if (lease_at(c, LIMIT, WINDOW_MS, -1, base, LEASE, LEASE_MS, prev, spent, spent ? last_at : -1, &g) != 0) {
            cl->errors++;
            continue;
        }
        snprintf(prev, sizeof(prev), "%s", g.member);
        spent = g.n;
        last_at = g.now;
        for (long i = 0; i < g.n; i++)
            cl->spent_at[cl->nspent++] = g.now;
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
        cl[i].spent_at = calloc(100000, sizeof(int64_t));
        assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(cl[0].errors + cl[1].errors, 0);
    int n = cl[0].nspent + cl[1].nspent;
    int64_t *all = calloc((size_t)n + 1, sizeof(int64_t));
    memcpy(all, cl[0].spent_at, (size_t)cl[0].nspent * sizeof(int64_t));
    memcpy(all + cl[0].nspent, cl[1].spent_at, (size_t)cl[1].nspent * sizeof(int64_t));
    qsort(all, (size_t)n, sizeof(int64_t), cmp_i64);
    /* every sliding window (t - WINDOW, t] holds at most LIMIT spent tokens */
    int worst = 0;
    for (int i = 0, lo = 0; i < n; i++) {
        while (all[lo] <= all[i] - WINDOW_MS)
            lo++;
        if (i - lo + 1 > worst)
            worst = i - lo + 1;
    }
    print_message("two pods: %d + %d lease calls, %d tokens spent, busiest window %d (limit %d)\n", cl[0].calls,
                  cl[1].calls, n, worst, LIMIT);
    assert_true(cl[0].calls > 2 * LIMIT / LEASE && cl[1].calls > 2 * LIMIT / LEASE); /* both really competed */
    assert_true(worst <= LIMIT);
    /* and the budget was used: at most limit per period, within 10 % */
    double periods = (double)RUN_MS / WINDOW_MS;
    assert_true(n <= (int)(LIMIT * (periods + 1)));
    assert_true(n >= (int)(0.9 * LIMIT * periods));
    assert_true(cl[0].nspent > 0 && cl[1].nspent > 0);
    free(all);
    free(cl[0].spent_at);
    free(cl[1].spent_at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_lease_never_grants_past_the_limit_and_says_how_long_to_wait,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_settling_returns_unspent_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_a_crashed_holder_counts_until_its_deadline_plus_window,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_spent_tokens_count_from_the_last_spend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_older_entries_count_one_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_server_clock_mode_and_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ratelimit_lua_two_pods_share_one_budget, setup, teardown),
    };
    return cmocka_run_group_tests_name("ratelimit_lua", tests, NULL, NULL);
}
