/* Integration tests of the SLO counter writer (src/core/slo_counters.c) against a real
 * redis-server. Needs: redis (MUTT_TEST_REDIS_HOST/PORT); the restart test also needs
 * tests/harness/services.sh (MUTT_TEST_STATE, MUTT_TEST_ROOT). Skips without the harness.
 * A fake clock puts each run in its own minutes of the 2000s, so runs never share keys.
 * Sync hiredis is used only by the test itself, to read what was written. */
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
#include <uv.h>

#include "mutt/error.h"
#include "mutt/redis.h"
#include "mutt/slo.h"
#include "mutt/slo_counters.h"
#include "testenv.h"

struct fx {
    uv_loop_t loop;
    struct mutt_redis *r;
    struct mutt_slo_counters *slo;
    int64_t now_ms;      /* the fake wall clock */
    int64_t base_minute; /* this run's first minute */
    uv_timer_t watch;    /* copies the counters' getters into the ints below */
    int flushes, failures, pending, ups;
    int stopped;
    int stop_status;
    redisContext *admin;
};

static int64_t fake_clock(void *arg)
{
    return ((struct fx *)arg)->now_ms;
}

static void on_watch(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->flushes = (int)mutt_slo_counters_flushes(f->slo);
    f->failures = (int)mutt_slo_counters_flush_failures(f->slo);
    f->pending = (int)mutt_slo_counters_pending_minutes(f->slo);
}

static void on_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    (void)conn;
    if (connected)
        ((struct fx *)privdata)->ups++;
}

static void on_stopped(void *privdata, int status)
{
    struct fx *f = privdata;
    f->stopped++;
    f->stop_status = status;
}

static const char *redis_host(void)
{
    const char *h = mutt_test_env("REDIS_HOST");
    return h ? h : "127.0.0.1";
}

static int setup(void **state)
{
    if (!mutt_test_env("REDIS_PORT")) {
        *state = NULL;
        return 0;
    }
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    /* minutes of 2000..2019: never the real present, and random enough per run */
    f->base_minute = 15778080 + (int64_t)((uv_hrtime() ^ ((uint64_t)getpid() << 20)) % 10000000ull);
    f->now_ms = f->base_minute * 60000 + 1500;
    struct timeval tv = {2, 0};
    f->admin = redisConnectWithTimeout(redis_host(), mutt_test_env_int("REDIS_PORT", 0), tv);
    assert_non_null(f->admin);
    assert_int_equal(f->admin->err, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    mutt_slo_counters_destroy(f->slo); /* before the manager: its reply may still be out */
    if (f->r)
        mutt_redis_stop(f->r);
    if (uv_is_active((uv_handle_t *)&f->watch) || f->watch.data)
        uv_close((uv_handle_t *)&f->watch, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    mutt_redis_destroy(f->r);
    int rc = uv_loop_close(&f->loop);
    if (rc != 0)
        mutt_test_loop_close(&f->loop);
    if (f->admin)
        redisFree(f->admin);
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

/* Manager connected, counters created on the fake clock (not started: tests flush by hand
 * unless they start the tick). */
static void start(struct fx *f, const struct mutt_slo_counters_opts *extra)
{
    struct mutt_redis_opts o = {
        .host = redis_host(),
        .port = mutt_test_env_int("REDIS_PORT", 0),
        .connect_timeout_ms = 2000,
        .reconnect_min_ms = 50,
        .reconnect_max_ms = 200,
        .max_inflight = 1000,
    };
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, f), 0);
    struct mutt_slo_counters_opts so = extra ? *extra : (struct mutt_slo_counters_opts){0};
    so.clock = fake_clock;
    so.clock_arg = f;
    f->slo = mutt_slo_counters_create(&f->loop, f->r, NULL, &so);
    assert_non_null(f->slo);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->ups, 1, 5000));
    uv_timer_init(&f->loop, &f->watch);
    f->watch.data = f;
    uv_timer_start(&f->watch, on_watch, 5, 5);
}

static void key_of(const struct fx *f, enum mutt_slo_id id, int64_t minute, char *out)
{
    assert_int_equal(mutt_slo_key(mutt_slo_defs[id].name, minute * 60000, out, MUTT_SLO_KEY_MAX), 0);
    (void)f;
}

/* HGET key field as a number; -1 when the field or key is absent. */
static long long hget(struct fx *f, const char *key, const char *field)
{
    redisReply *rep = redisCommand(f->admin, "HGET %s %s", key, field);
    assert_non_null(rep);
    long long v = rep->type == REDIS_REPLY_STRING ? atoll(rep->str) : -1;
    freeReplyObject(rep);
    return v;
}

static long long ttl(struct fx *f, const char *key)
{
    redisReply *rep = redisCommand(f->admin, "TTL %s", key);
    assert_non_null(rep);
    long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -3;
    freeReplyObject(rep);
    return v;
}

static void flush_and_wait(struct fx *f, int flushes_before)
{
    mutt_slo_counters_flush_now(f->slo);
    assert_true(mutt_test_run_until_count(&f->loop, &f->flushes, flushes_before + 1, 5000));
}

/* ------------------------------------------------------------------------------------ tests */

static void test_slo_counters_flush_writes_the_sums_into_the_minute_key_with_a_ttl(void **state)
{
    struct fx *f = fixture(state);
    start(f, NULL);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 1, 1);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 0, 1);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 5, 7);
    mutt_slo_record_latency(f->slo, MUTT_SLO_INGESTOR_LATENCY_P99, 0.1);  /* within 0.5 s */
    mutt_slo_record_latency(f->slo, MUTT_SLO_INGESTOR_LATENCY_P99, 0.75); /* late */
    flush_and_wait(f, 0);

    char k[MUTT_SLO_KEY_MAX];
    key_of(f, MUTT_SLO_INGESTOR_AVAILABILITY, f->base_minute, k);
    assert_int_equal(hget(f, k, "good"), 6);
    assert_int_equal(hget(f, k, "total"), 9);
    long long t = ttl(f, k);
    assert_true(t > (long long)MUTT_SLO_KEY_TTL_S - 60 && t <= (long long)MUTT_SLO_KEY_TTL_S);
    key_of(f, MUTT_SLO_INGESTOR_LATENCY_P99, f->base_minute, k);
    assert_int_equal(hget(f, k, "good"), 1);
    assert_int_equal(hget(f, k, "total"), 2);
    key_of(f, MUTT_SLO_FORWARDER_AVAILABILITY, f->base_minute, k);
    assert_int_equal(hget(f, k, "total"), -1); /* nothing recorded, nothing written */
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 0);
}

static void test_slo_counters_each_minute_goes_to_its_own_key_and_flushes_add_up(void **state)
{
    struct fx *f = fixture(state);
    start(f, NULL);
    mutt_slo_record(f->slo, MUTT_SLO_FORWARDER_AVAILABILITY, 3, 4);
    f->now_ms += 60000; /* next minute */
    mutt_slo_record(f->slo, MUTT_SLO_FORWARDER_AVAILABILITY, 10, 10);
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 2);
    flush_and_wait(f, 0);
    mutt_slo_record(f->slo, MUTT_SLO_FORWARDER_AVAILABILITY, 1, 2); /* same minute, second flush */
    flush_and_wait(f, 1);

    char k[MUTT_SLO_KEY_MAX];
    key_of(f, MUTT_SLO_FORWARDER_AVAILABILITY, f->base_minute, k);
    assert_int_equal(hget(f, k, "good"), 3);
    assert_int_equal(hget(f, k, "total"), 4);
    key_of(f, MUTT_SLO_FORWARDER_AVAILABILITY, f->base_minute + 1, k);
    assert_int_equal(hget(f, k, "good"), 11);
    assert_int_equal(hget(f, k, "total"), 12);
}

static void test_slo_counters_tick_flushes_without_being_asked(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_slo_counters_opts o = {.flush_interval_ms = 50};
    start(f, &o);
    mutt_slo_record(f->slo, MUTT_SLO_ALERTER_PROCESSING_SUCCESS, 2, 2);
    char k[MUTT_SLO_KEY_MAX];
    key_of(f, MUTT_SLO_ALERTER_PROCESSING_SUCCESS, f->base_minute, k);
    assert_int_equal(hget(f, k, "total"), -1); /* recording alone sends nothing */
    assert_int_equal(mutt_slo_counters_start(f->slo), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->flushes, 1, 3000));
    assert_int_equal(hget(f, k, "total"), 2);
}

static void test_slo_counters_redis_error_keeps_the_counts_and_writes_nothing(void **state)
{
    struct fx *f = fixture(state);
    start(f, NULL);
    char good_key[MUTT_SLO_KEY_MAX], bad_key[MUTT_SLO_KEY_MAX];
    key_of(f, MUTT_SLO_INGESTOR_AVAILABILITY, f->base_minute, good_key);
    key_of(f, MUTT_SLO_FORWARDER_AVAILABILITY, f->base_minute, bad_key);
    redisReply *rep = redisCommand(f->admin, "SET %s not-a-hash", bad_key);
    assert_non_null(rep);
    freeReplyObject(rep);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 4, 4);
    mutt_slo_record(f->slo, MUTT_SLO_FORWARDER_AVAILABILITY, 1, 1);
    mutt_slo_counters_flush_now(f->slo);
    assert_true(mutt_test_run_until_count(&f->loop, &f->failures, 1, 5000));
    assert_int_equal(hget(f, good_key, "total"), -1); /* not half-applied */
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 1);

    rep = redisCommand(f->admin, "DEL %s", bad_key);
    assert_non_null(rep);
    freeReplyObject(rep);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 0, 1);
    flush_and_wait(f, 0);
    assert_int_equal(hget(f, good_key, "good"), 4);
    assert_int_equal(hget(f, good_key, "total"), 5);
    assert_int_equal(hget(f, bad_key, "total"), 1);
}

static void test_slo_counters_redis_down_keeps_the_counts_until_it_is_back(void **state)
{
    struct fx *f = fixture(state);
    if (!mutt_test_env("STATE"))
        MUTT_SKIP("no-harness", "stopping Redis needs the harness state dir");
    struct mutt_slo_counters_opts o = {.flush_interval_ms = 50};
    start(f, &o);
    assert_int_equal(mutt_slo_counters_start(f->slo), 0);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 1, 2);
    assert_true(mutt_test_run_until_count(&f->loop, &f->flushes, 1, 3000));

    assert_int_equal(mutt_test_service("stop-redis"), 0);
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 10, 10);
    f->now_ms += 60000;
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 7, 8);
    assert_true(mutt_test_run_until_count(&f->loop, &f->failures, 3, 5000));
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 2);
    int ups = f->ups;
    int flushes = f->flushes;
    assert_int_equal(mutt_test_service("start-redis"), 0);
    redisFree(f->admin);
    struct timeval tv = {2, 0};
    f->admin = redisConnectWithTimeout(redis_host(), mutt_test_env_int("REDIS_PORT", 0), tv);
    assert_non_null(f->admin);
    assert_int_equal(f->admin->err, 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->ups, ups + 1, 10000));
    assert_true(mutt_test_run_until_count(&f->loop, &f->flushes, flushes + 1, 3000));
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 0);

    char k[MUTT_SLO_KEY_MAX];
    key_of(f, MUTT_SLO_INGESTOR_AVAILABILITY, f->base_minute, k);
    assert_int_equal(hget(f, k, "good"), 11);
    assert_int_equal(hget(f, k, "total"), 12);
    key_of(f, MUTT_SLO_INGESTOR_AVAILABILITY, f->base_minute + 1, k);
    assert_int_equal(hget(f, k, "good"), 7);
    assert_int_equal(hget(f, k, "total"), 8);
}

static void test_slo_counters_cap_drops_the_oldest_pending_minutes(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_slo_counters_opts o = {.max_pending_minutes = 3};
    start(f, &o);
    for (int m = 0; m < 5; m++) {
        mutt_slo_record(f->slo, MUTT_SLO_ALERTER_CACHE_RELOAD_SUCCESS, 1, (uint64_t)m + 1);
        f->now_ms += 60000;
    }
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 3);
    assert_int_equal(mutt_slo_counters_dropped_minutes(f->slo), 2);
    f->now_ms -= 5 * 60000; /* a clock stepped back to a minute already dropped */
    mutt_slo_record(f->slo, MUTT_SLO_ALERTER_CACHE_RELOAD_SUCCESS, 1, 1);
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 3);
    assert_int_equal(mutt_slo_counters_dropped_minutes(f->slo), 3);
    flush_and_wait(f, 0);

    char k[MUTT_SLO_KEY_MAX];
    for (int m = 0; m < 5; m++) {
        key_of(f, MUTT_SLO_ALERTER_CACHE_RELOAD_SUCCESS, f->base_minute + m, k);
        assert_int_equal(hget(f, k, "total"), m < 2 ? -1 : m + 1);
    }
}

static void test_slo_counters_stop_writes_the_last_counts_then_calls_back_once(void **state)
{
    struct fx *f = fixture(state);
    start(f, NULL);
    assert_int_equal(mutt_slo_counters_start(f->slo), 0);
    mutt_slo_record(f->slo, MUTT_SLO_FORWARDER_LATENCY_P99, 1, 1);
    mutt_slo_counters_stop(f->slo, on_stopped, f);
    assert_int_equal(f->stopped, 0); /* the reply is still to come */
    mutt_slo_counters_stop(f->slo, on_stopped, f); /* ignored */
    assert_true(mutt_test_run_until_count(&f->loop, &f->stopped, 1, 3000));
    assert_int_equal(f->stop_status, 0);
    char k[MUTT_SLO_KEY_MAX];
    key_of(f, MUTT_SLO_FORWARDER_LATENCY_P99, f->base_minute, k);
    assert_int_equal(hget(f, k, "total"), 1);
    mutt_test_run_for(&f->loop, 100);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(mutt_slo_counters_start(f->slo), MUTT_ESTATE);
}

static void test_slo_counters_stop_with_nothing_pending_calls_back_at_once(void **state)
{
    struct fx *f = fixture(state);
    start(f, NULL);
    f->stop_status = 99;
    mutt_slo_counters_stop(f->slo, on_stopped, f);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->stop_status, 0);
}

static void test_slo_counters_stop_without_redis_reports_it_and_keeps_nothing_waiting(void **state)
{
    struct fx *f = fixture(state);
    start(f, NULL);
    mutt_redis_stop(f->r); /* no connection any more: the last flush fails fast */
    mutt_slo_record(f->slo, MUTT_SLO_INGESTOR_AVAILABILITY, 1, 1);
    mutt_slo_counters_stop(f->slo, on_stopped, f);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->stop_status, MUTT_EDISCONNECTED);
    assert_int_equal(mutt_slo_counters_pending_minutes(f->slo), 1);
}

static void test_slo_counters_null_accumulator_records_nothing_and_does_not_crash(void **state)
{
    (void)state;
    mutt_slo_record(NULL, MUTT_SLO_INGESTOR_AVAILABILITY, 1, 1);
    mutt_slo_record_latency(NULL, MUTT_SLO_INGESTOR_LATENCY_P99, 0.1);
    mutt_slo_counters_stop(NULL, on_stopped, NULL);
    mutt_slo_counters_destroy(NULL);
    assert_int_equal(mutt_slo_counters_pending_minutes(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slo_counters_flush_writes_the_sums_into_the_minute_key_with_a_ttl,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_each_minute_goes_to_its_own_key_and_flushes_add_up,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_tick_flushes_without_being_asked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_redis_error_keeps_the_counts_and_writes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_redis_down_keeps_the_counts_until_it_is_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_cap_drops_the_oldest_pending_minutes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_stop_writes_the_last_counts_then_calls_back_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_stop_with_nothing_pending_calls_back_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slo_counters_stop_without_redis_reports_it_and_keeps_nothing_waiting,
                                        setup, teardown),
        cmocka_unit_test(test_slo_counters_null_accumulator_records_nothing_and_does_not_crash),
    };
    return cmocka_run_group_tests_name("slo_counters", tests, NULL, NULL);
}
