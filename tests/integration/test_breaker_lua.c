/* Integration test of the circuit breaker's Lua twin (src/domain/breaker_lua.c) against a real
 * redis-server: scripted and random sequences run through both the script and the C state
 * machine (src/domain/breaker.c, the specification), which must agree step by step; plus the
 * one-probe rule across two connections ("pods") and the server-clock mode.
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

#include "mutt/breaker.h"
#include "testenv.h"

struct fx {
    redisContext *pod_a, *pod_b;
    char keys[4][96]; /* state failures open_time probe */
};

static redisContext *connect_redis(void)
{
    const char *host = mutt_test_env("REDIS_HOST");
    redisContext *c = redisConnect(host ? host : "127.0.0.1", mutt_test_env_int("REDIS_PORT", 0));
    if (!c || c->err)
        fail_msg("redis connect: %s", c ? c->errstr : "oom");
    return c;
}

static int setup(void **state)
{
    if (!mutt_test_env("REDIS_PORT")) {
        *state = NULL;
        return 0;
    }
    struct fx *fx = calloc(1, sizeof(*fx));
    fx->pod_a = connect_redis();
    fx->pod_b = connect_redis();
    static int run;
    const char *names[4] = {"state", "failures", "open_time", "probe"};
    for (int i = 0; i < 4; i++)
        snprintf(fx->keys[i], sizeof(fx->keys[i]), "mutt:test:%d:%d:circuit_breaker:moogsoft:%s", (int)getpid(), run,
                 names[i]);
    run++;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    if (!fx)
        return 0;
    freeReplyObject(redisCommand(fx->pod_a, "DEL %s %s %s %s", fx->keys[0], fx->keys[1], fx->keys[2], fx->keys[3]));
    redisFree(fx->pod_a);
    redisFree(fx->pod_b);
    free(fx);
    return 0;
}

#define NEED_REDIS(fx)                                                                                                 \
    do {                                                                                                               \
        if (!(fx))                                                                                                     \
            MUTT_SKIP("no-harness", "no Redis fixture");                                                                                                    \
    } while (0)

struct lua_out {
    char verdict[16];
    char state[16];
    long long failures;
    long long open_time;
    char prev[16];
};

/* Runs the script once; now_ms < 0 means "" (server clock). */
static struct lua_out run_lua(struct fx *fx, redisContext *c, const char *op, int64_t now_ms,
                              const struct mutt_breaker_cfg *cfg)
{
    char now[32] = "", thr[32], to[32], ttl[32];
    if (now_ms >= 0)
        snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(thr, sizeof(thr), "%lld", (long long)cfg->threshold);
    snprintf(to, sizeof(to), "%lld", (long long)cfg->open_timeout_ms);
    snprintf(ttl, sizeof(ttl), "%lld", (long long)cfg->probe_ttl_ms);
    const char *argv[] = {"EVAL", mutt_breaker_lua, "4", fx->keys[0], fx->keys[1], fx->keys[2], fx->keys[3],
                          op, now, thr, to, ttl};
    redisReply *r = redisCommandArgv(c, 12, argv, NULL);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("script error: %s", r->str);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 5);
    struct lua_out o;
    memset(&o, 0, sizeof(o));
    snprintf(o.verdict, sizeof(o.verdict), "%s", r->element[0]->str);
    snprintf(o.state, sizeof(o.state), "%s", r->element[1]->str);
    o.failures = r->element[2]->integer;
    o.open_time = r->element[3]->integer;
    snprintf(o.prev, sizeof(o.prev), "%s", r->element[4]->str);
    freeReplyObject(r);
    return o;
}

static const char *verdict_name(enum mutt_breaker_verdict v)
{
    return v == MUTT_BREAKER_ALLOW ? "ALLOW" : v == MUTT_BREAKER_DENY ? "DENY" : "PROBE";
}

enum step_op { DECIDE, SUCCESS, FAILURE };

/* Applies one op to both, asserts they agree. Returns the C verdict (DENY for results). */
static enum mutt_breaker_verdict step(struct fx *fx, struct mutt_breaker_state *s, const struct mutt_breaker_cfg *cfg,
                                      enum step_op op, int64_t now, int line)
{
    enum mutt_breaker_verdict v = MUTT_BREAKER_DENY;
    const char *prev = mutt_breaker_mode_name(s->mode);
    struct lua_out o;
    if (op == DECIDE) {
        v = mutt_breaker_decide(s, cfg, now);
        o = run_lua(fx, fx->pod_a, "decide", now, cfg);
        if (strcmp(o.verdict, verdict_name(v)) != 0)
            fail_msg("line %d now %lld: lua verdict %s, C %s", line, (long long)now, o.verdict, verdict_name(v));
    } else {
        mutt_breaker_on_result(s, cfg, op == SUCCESS ? MUTT_BREAKER_SUCCESS : MUTT_BREAKER_FAILURE, now);
        o = run_lua(fx, fx->pod_a, op == SUCCESS ? "success" : "failure", now, cfg);
        assert_string_equal(o.verdict, "");
    }
    if (strcmp(o.state, mutt_breaker_mode_name(s->mode)) != 0 || o.failures != s->failures ||
        o.open_time != s->open_since_ms || strcmp(o.prev, prev) != 0)
        fail_msg("line %d now %lld: lua %s/%lld/%lld (prev %s), C %s/%lld/%lld (prev %s)", line, (long long)now,
                 o.state, o.failures, o.open_time, o.prev, mutt_breaker_mode_name(s->mode), (long long)s->failures,
                 (long long)s->open_since_ms, prev);
    return v;
}

#define STEP(op, now) step(fx, &s, &cfg, (op), (now), __LINE__)

static void test_breaker_lua_follows_the_c_machine_on_a_scripted_sequence(void **state)
{
    struct fx *fx = *state;
    NEED_REDIS(fx);
    /* a probe ttl far longer than this test's real run time: PX expiry never interferes */
    const struct mutt_breaker_cfg cfg = {.threshold = 3, .open_timeout_ms = 1000, .probe_ttl_ms = 600000};
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    int64_t t = 1700000000000LL;
    assert_int_equal(STEP(DECIDE, t), MUTT_BREAKER_ALLOW); /* missing keys = CLOSED */
    STEP(FAILURE, t + 1);
    STEP(FAILURE, t + 2);
    STEP(SUCCESS, t + 3); /* resets the run */
    STEP(FAILURE, t + 4);
    STEP(FAILURE, t + 5);
    assert_int_equal(STEP(DECIDE, t + 6), MUTT_BREAKER_ALLOW);
    STEP(FAILURE, t + 7); /* third consecutive: OPEN */
    assert_int_equal(s.mode, MUTT_BREAKER_OPEN);
    assert_int_equal(STEP(DECIDE, t + 8), MUTT_BREAKER_DENY);
    STEP(FAILURE, t + 9);  /* straggler */
    STEP(SUCCESS, t + 10); /* straggler success: stays OPEN */
    assert_int_equal(STEP(DECIDE, t + 1006), MUTT_BREAKER_DENY);
    assert_int_equal(STEP(DECIDE, t + 1007), MUTT_BREAKER_PROBE); /* timeout from t+7 */
    assert_int_equal(STEP(DECIDE, t + 1008), MUTT_BREAKER_DENY);  /* one probe only */
    STEP(FAILURE, t + 1500);                                      /* probe failed: OPEN again */
    assert_int_equal(STEP(DECIDE, t + 2499), MUTT_BREAKER_DENY);
    assert_int_equal(STEP(DECIDE, t + 2500), MUTT_BREAKER_PROBE);
    assert_int_equal(STEP(DECIDE, t + 2500 + 600000), MUTT_BREAKER_PROBE); /* lock of a vanished prober expired */
    STEP(SUCCESS, t + 2500 + 600001);
    assert_int_equal(s.mode, MUTT_BREAKER_CLOSED);
    assert_int_equal(STEP(DECIDE, t + 2500 + 600002), MUTT_BREAKER_ALLOW);
}

static void test_breaker_lua_follows_the_c_machine_on_a_random_sequence(void **state)
{
    struct fx *fx = *state;
    NEED_REDIS(fx);
    const struct mutt_breaker_cfg cfg = {.threshold = 4, .open_timeout_ms = 300, .probe_ttl_ms = 600000};
    struct mutt_breaker_state s;
    mutt_breaker_state_init(&s);
    int64_t t = 1700000000000LL;
    uint64_t x = 0x243F6A8885A308D3ULL;
    int probes = 0, opens = 0;
    for (int i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t += (int64_t)(x % 120);
        enum mutt_breaker_mode before = s.mode;
        int r = (int)((x >> 20) % 10);
        enum step_op op = r < 5 ? DECIDE : r < 8 ? FAILURE : SUCCESS;
        if (step(fx, &s, &cfg, op, t, __LINE__) == MUTT_BREAKER_PROBE && op == DECIDE)
            probes++;
        if (before != MUTT_BREAKER_OPEN && s.mode == MUTT_BREAKER_OPEN)
            opens++;
    }
    assert_true(probes > 10); /* the sequence really went through every state */
    assert_true(opens > 10);
}

static void test_breaker_lua_grants_exactly_one_probe_across_pods(void **state)
{
    struct fx *fx = *state;
    NEED_REDIS(fx);
    const struct mutt_breaker_cfg cfg = {.threshold = 1, .open_timeout_ms = 100, .probe_ttl_ms = 600000};
    int64_t t = 1700000000000LL;
    run_lua(fx, fx->pod_a, "failure", t, &cfg); /* threshold 1: OPEN */
    int probes = 0;
    for (int i = 0; i < 50; i++) {
        redisContext *pod = (i % 2) ? fx->pod_b : fx->pod_a;
        struct lua_out o = run_lua(fx, pod, "decide", t + 100 + i, &cfg);
        if (strcmp(o.verdict, "PROBE") == 0)
            probes++;
        else
            assert_string_equal(o.verdict, "DENY");
        assert_string_equal(o.state, "HALF_OPEN");
    }
    assert_int_equal(probes, 1);
    struct lua_out o = run_lua(fx, fx->pod_b, "success", t + 200, &cfg);
    assert_string_equal(o.state, "CLOSED");
    assert_string_equal(o.prev, "HALF_OPEN");
    assert_string_equal(run_lua(fx, fx->pod_a, "decide", t + 201, &cfg).verdict, "ALLOW");
}

static void test_breaker_lua_probe_lock_expires_in_redis_time(void **state)
{
    struct fx *fx = *state;
    NEED_REDIS(fx);
    const struct mutt_breaker_cfg cfg = {.threshold = 1, .open_timeout_ms = 0, .probe_ttl_ms = 200};
    run_lua(fx, fx->pod_a, "failure", -1, &cfg);
    assert_string_equal(run_lua(fx, fx->pod_a, "decide", -1, &cfg).verdict, "PROBE");
    assert_string_equal(run_lua(fx, fx->pod_b, "decide", -1, &cfg).verdict, "DENY");
    redisReply *r = redisCommand(fx->pod_a, "PTTL %s", fx->keys[3]);
    assert_true(r->integer > 0 && r->integer <= 200);
    freeReplyObject(r);
    /* The prober "died": waiting out its lock is the point of this test, and the lock lapses on
     * the server's own clock. Poll (bounded) until Redis no longer has it rather than sleeping a
     * fixed time. */
    bool gone = false;
    for (int i = 0; i < 1000 && !gone; i++) {
        r = redisCommand(fx->pod_a, "EXISTS %s", fx->keys[3]);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        gone = r->integer == 0;
        freeReplyObject(r);
        if (!gone)
            usleep(10 * 1000);
    }
    if (!gone)
        fail_msg("the probe lock (PTTL <= 200 ms) still exists in Redis after 10 s");
    assert_string_equal(run_lua(fx, fx->pod_b, "decide", -1, &cfg).verdict, "PROBE");
}

static void test_breaker_lua_rejects_unknown_ops(void **state)
{
    struct fx *fx = *state;
    NEED_REDIS(fx);
    const char *argv[] = {"EVAL", mutt_breaker_lua, "4", fx->keys[0], fx->keys[1], fx->keys[2], fx->keys[3],
                          "explode", "1", "1", "1", "1"};
    redisReply *r = redisCommandArgv(fx->pod_a, 12, argv, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(r->str, "unknown op"));
    freeReplyObject(r);
    const char *bad[] = {"EVAL", mutt_breaker_lua, "4", fx->keys[0], fx->keys[1], fx->keys[2], fx->keys[3],
                         "decide", "1", "x", "1", "1"};
    r = redisCommandArgv(fx->pod_a, 12, bad, NULL);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_breaker_lua_follows_the_c_machine_on_a_scripted_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_lua_follows_the_c_machine_on_a_random_sequence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_lua_grants_exactly_one_probe_across_pods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_lua_probe_lock_expires_in_redis_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_lua_rejects_unknown_ops, setup, teardown),
    };
    return cmocka_run_group_tests_name("breaker_lua", tests, NULL, NULL);
}
