/* Integration tests for dynamic config (src/core/dynconfig.c) against a real redis-server.
 * Needs: Redis (MUTT_TEST_REDIS_HOST/PORT; skipped when absent). The restart test also needs
 * tests/harness/services.sh (MUTT_TEST_ROOT/STATE). Every test runs with its own loop, a
 * "pod A" and a "pod B" (each a Redis manager + dynconfig) and an admin connection that plays
 * redis-cli. Keys live in DB 7 so other suites' data is not touched. */
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

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/redis.h"
#include "testenv.h"

#define TEST_DB 7

struct watch_log {
    int calls;
    char key[64];
    char old_value[64];
    char new_value[64];
};

struct pod {
    struct mutt_redis *redis;
    struct mutt_dynconfig *dyn;
    struct watch_log watched;
};

struct fixture {
    uv_loop_t loop;
    char cfg_path[64];
    struct mutt_config *cfg;
    struct mutt_redis *admin;
    struct pod a, b;
};

static struct mutt_redis *new_redis(uv_loop_t *loop)
{
    struct mutt_redis_opts opts = {
        .host = mutt_test_env("REDIS_HOST") ? mutt_test_env("REDIS_HOST") : "127.0.0.1",
        .port = mutt_test_env_int("REDIS_PORT", 6379),
        .db = TEST_DB,
        .connect_timeout_ms = 2000,
        .reconnect_min_ms = 50,
        .reconnect_max_ms = 300, /* the restart test waits for the reconnect */
        .max_inflight = 1000,
    };
    struct mutt_redis *r = mutt_redis_create(loop, &opts);
    assert_non_null(r);
    assert_int_equal(mutt_redis_start(r), 0);
    return r;
}

static void on_watch(void *privdata, const char *key, const char *old_value, const char *new_value)
{
    struct watch_log *w = privdata;
    w->calls++;
    snprintf(w->key, sizeof(w->key), "%s", key);
    snprintf(w->old_value, sizeof(w->old_value), "%s", old_value);
    snprintf(w->new_value, sizeof(w->new_value), "%s", new_value);
}

/* ---- admin connection (plays redis-cli) --------------------------------------------------- */

struct reply_wait {
    bool done;
    int status;
    int type; /* REDIS_REPLY_* of the reply */
};

static void on_admin_reply(void *privdata, redisReply *reply, int status)
{
    struct reply_wait *w = privdata;
    w->status = status;
    w->type = reply ? reply->type : -1;
    w->done = true;
}

static int admin_argv_type(struct fixture *fx, int argc, const char **argv, int *type)
{
    struct reply_wait w = { 0 };
    int rc = mutt_redis_command(mutt_redis_cmd(fx->admin), on_admin_reply, &w, argc, argv, NULL);
    if (rc < 0)
        return rc;
    assert_true(mutt_test_run_until(&fx->loop, &w.done, 3000));
    if (type)
        *type = w.type;
    return w.status;
}

static int admin_argv(struct fixture *fx, int argc, const char **argv)
{
    return admin_argv_type(fx, argc, argv, NULL);
}

static void admin_set(struct fixture *fx, const char *name, const char *value)
{
    char key[128];
    snprintf(key, sizeof(key), "%s%s", MUTT_DYNCONFIG_PREFIX, name);
    const char *argv[] = { "SET", key, value };
    assert_int_equal(admin_argv(fx, 3, argv), 0);
}

static void admin_publish(struct fixture *fx, const char *name)
{
    const char *argv[] = { "PUBLISH", MUTT_DYNCONFIG_CHANNEL, name };
    assert_int_equal(admin_argv(fx, 3, argv), 0);
}

static void admin_clear_all_keys(struct fixture *fx)
{
    size_t n = mutt_dynconfig_count();
    const char **argv = calloc(n + 1, sizeof(*argv));
    char **keys = calloc(n, sizeof(*keys));
    assert_non_null(argv);
    assert_non_null(keys);
    argv[0] = "DEL";
    for (size_t i = 0; i < n; i++) {
        keys[i] = malloc(128);
        assert_non_null(keys[i]);
        snprintf(keys[i], 128, "%s%s", MUTT_DYNCONFIG_PREFIX, mutt_dynconfig_def_at(i)->name);
        argv[i + 1] = keys[i];
    }
    assert_int_equal(admin_argv(fx, (int)n + 1, argv), 0);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
}

static bool redis_up(struct mutt_redis *r)
{
    struct mutt_redis_conn *ps = mutt_redis_pubsub(r);
    return mutt_redis_connected(r) && (!ps || mutt_redis_conn_connected(ps));
}

/* Runs the loop until every manager (and its pub/sub connection) is up. */
static bool wait_all_up(struct fixture *fx, uint64_t deadline_ms)
{
    for (uint64_t waited = 0; waited < deadline_ms; waited += 20) {
        if (redis_up(fx->admin) && redis_up(fx->a.redis) && redis_up(fx->b.redis))
            return true;
        mutt_test_run_for(&fx->loop, 20);
    }
    return false;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static void start_pod(struct fixture *fx, struct pod *p)
{
    p->redis = new_redis(&fx->loop);
    p->dyn = mutt_dynconfig_create(&fx->loop, p->redis, fx->cfg);
    assert_non_null(p->dyn);
    assert_int_equal(mutt_dynconfig_start(p->dyn), 0);
}

static int setup(void **state)
{
    if (!mutt_test_env("REDIS_PORT"))
        return 0; /* each test skips */
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);

    /* env beats file for moog_rate_limit; ingest_max_rate comes from the file */
    snprintf(fx->cfg_path, sizeof(fx->cfg_path), "/tmp/mutt-dyn-it-XXXXXX");
    int fd = mkstemp(fx->cfg_path);
    assert_true(fd >= 0);
    const char *text = "MOOG_RATE_LIMIT=70\nINGEST_MAX_RATE=500\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char *envp[] = { "MOOG_RATE_LIMIT=80", NULL };
    struct mutt_config_report report = { 0 };
    fx->cfg = mutt_config_load(fx->cfg_path, envp, MUTT_ROLE_RETENTION, &report);
    mutt_config_report_free(&report);
    assert_non_null(fx->cfg);

    fx->admin = new_redis(&fx->loop);
    bool admin_up = false;
    for (int i = 0; i < 150 && !admin_up; i++) {
        mutt_test_run_for(&fx->loop, 20);
        admin_up = mutt_redis_connected(fx->admin);
    }
    assert_true(admin_up);
    admin_clear_all_keys(fx);

    start_pod(fx, &fx->a);
    start_pod(fx, &fx->b);
    assert_true(wait_all_up(fx, 3000));
    for (int i = 0; i < 150 && !(mutt_dynconfig_loaded(fx->a.dyn) && mutt_dynconfig_loaded(fx->b.dyn)); i++)
        mutt_test_run_for(&fx->loop, 20);
    assert_true(mutt_dynconfig_loaded(fx->a.dyn) && mutt_dynconfig_loaded(fx->b.dyn));
    assert_int_equal(mutt_dynconfig_watch(fx->a.dyn, MUTT_DYN_ALL_KEYS, on_watch, &fx->a.watched), 0);
    assert_int_equal(mutt_dynconfig_watch(fx->b.dyn, MUTT_DYN_ALL_KEYS, on_watch, &fx->b.watched), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    if (!fx)
        return 0;
    if (mutt_redis_connected(fx->admin))
        admin_clear_all_keys(fx);
    mutt_dynconfig_stop(fx->a.dyn);
    mutt_dynconfig_stop(fx->b.dyn);
    /* Managers stop first: they cancel pending replies and hold the dynconfigs as privdata. */
    mutt_redis_stop(fx->a.redis);
    mutt_redis_stop(fx->b.redis);
    mutt_redis_stop(fx->admin);
    mutt_dynconfig_destroy(fx->a.dyn);
    mutt_dynconfig_destroy(fx->b.dyn);
    mutt_redis_destroy(fx->a.redis);
    mutt_redis_destroy(fx->b.redis);
    mutt_redis_destroy(fx->admin);
    assert_int_equal(mutt_test_loop_close(&fx->loop), 0);
    mutt_config_destroy(fx->cfg);
    unlink(fx->cfg_path);
    free(fx);
    *state = NULL;
    return 0;
}

#define NEED_REDIS(state)                 \
    do {                                  \
        if (!*(state))                    \
            MUTT_SKIP("no-harness", "no Redis");                       \
    } while (0)

/* ---- tests -------------------------------------------------------------------------------- */

static void test_dynconfig_serves_env_file_and_default_when_redis_has_nothing(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 80);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_ENV);
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_INGEST_MAX_RATE), 500);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_INGEST_MAX_RATE), MUTT_DYN_SRC_FILE);
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_ALERTER_QUEUE_WARN_THRESHOLD), 1000);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_ALERTER_QUEUE_WARN_THRESHOLD), MUTT_DYN_SRC_DEFAULT);
    assert_string_equal(mutt_dynconfig_str(fx->a.dyn, MUTT_DYN_ALERTER_SHED_MODE), "defer");
    assert_int_equal(fx->a.watched.calls, 0);
}

static void test_dynconfig_published_change_reaches_cache_and_watcher_within_1s(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    mutt_dynconfig_set_refresh_interval(fx->a.dyn, 0); /* only pub/sub can deliver it now */
    admin_set(fx, "moog_rate_limit", "120");
    admin_publish(fx, "moog_rate_limit");
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->a.watched.calls, 1, 1000));
    assert_int_equal(fx->a.watched.calls, 1);
    assert_string_equal(fx->a.watched.key, "moog_rate_limit");
    assert_string_equal(fx->a.watched.old_value, "80");
    assert_string_equal(fx->a.watched.new_value, "120");
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 120);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_REDIS);
}

static void test_dynconfig_unpublished_change_is_picked_up_by_the_5s_refresh(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    admin_set(fx, "unhandled_threshold", "250");
    assert_int_equal(mutt_dynconfig_int(fx->b.dyn, MUTT_DYN_UNHANDLED_THRESHOLD), 100);
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->b.watched.calls, 1, 7000));
    assert_string_equal(fx->b.watched.key, "unhandled_threshold");
    assert_int_equal(mutt_dynconfig_int(fx->b.dyn, MUTT_DYN_UNHANDLED_THRESHOLD), 250);
    assert_int_equal(mutt_dynconfig_source(fx->b.dyn, MUTT_DYN_UNHANDLED_THRESHOLD), MUTT_DYN_SRC_REDIS);
}

static void test_dynconfig_invalid_value_in_redis_is_ignored_and_fallback_kept(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    admin_set(fx, "moog_rate_limit", "abc");
    admin_publish(fx, "moog_rate_limit");
    /* A valid change published after it: once that one arrived, the bad one was handled too
     * (messages and GET replies are ordered). */
    admin_set(fx, "alerter_defer_sleep_ms", "300");
    admin_publish(fx, "alerter_defer_sleep_ms");
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->a.watched.calls, 1, 1000));
    mutt_test_run_for(&fx->loop, 50);
    assert_int_equal(fx->a.watched.calls, 1);
    assert_string_equal(fx->a.watched.key, "alerter_defer_sleep_ms");
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 80);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_ENV);

    /* A valid value replaced by a bad one reverts to the fallback, and watchers hear about it. */
    admin_set(fx, "moog_rate_limit", "90");
    admin_publish(fx, "moog_rate_limit");
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->a.watched.calls, 2, 1000));
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 90);
    admin_set(fx, "moog_rate_limit", "-4");
    admin_publish(fx, "moog_rate_limit");
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->a.watched.calls, 3, 1000));
    assert_string_equal(fx->a.watched.old_value, "90");
    assert_string_equal(fx->a.watched.new_value, "80");
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_ENV);
}

/* Counts lines containing `needle` that the code under test writes to stderr while `body`
 * runs (mutt_log writes each line with one write(2) to fd 2). */
static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

static void test_dynconfig_invalid_value_is_logged_once_per_distinct_value(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    char path[] = "/tmp/mutt-dyn-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);

    admin_set(fx, "moog_rate_limit", "abc");
    for (int i = 0; i < 3; i++) /* the same bad value seen three times by each pod */
        admin_publish(fx, "moog_rate_limit");
    admin_set(fx, "moog_rate_limit", "xyz"); /* a new bad value: one more line per pod */
    admin_publish(fx, "moog_rate_limit");
    admin_set(fx, "alerter_defer_sleep_ms", "300"); /* marker: everything before it was handled */
    admin_publish(fx, "alerter_defer_sleep_ms");
    bool ok = mutt_test_run_until_count(&fx->loop, &fx->b.watched.calls, 1, 1000);
    mutt_test_run_for(&fx->loop, 50);

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    int abc = count_in_file(path, "moog_rate_limit=abc");
    int xyz = count_in_file(path, "moog_rate_limit=xyz");
    unlink(path);
    assert_true(ok);
    assert_int_equal(abc, 2); /* pods A and B */
    assert_int_equal(xyz, 2);
    assert_int_equal(mutt_dynconfig_int(fx->b.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 80);
}

struct done_wait {
    int calls;
    int status;
};

static void on_done(void *privdata, int status)
{
    struct done_wait *w = privdata;
    w->calls++;
    w->status = status;
}

static void test_dynconfig_set_on_one_pod_reaches_the_other_and_fires_both_watchers(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    struct done_wait done = { 0, 1 };
    mutt_dynconfig_set_refresh_interval(fx->b.dyn, 0); /* only pub/sub can deliver it now */
    assert_int_equal(mutt_dynconfig_set(fx->a.dyn, "alerter_shed_mode", "DLQ", true, on_done, &done), 0);
    assert_true(mutt_test_run_until_count(&fx->loop, &done.calls, 1, 1000));
    assert_int_equal(done.status, 0);
    /* local change: the cache and watchers of pod A were updated before done ran (W42) */
    assert_int_equal(fx->a.watched.calls, 1);
    assert_string_equal(mutt_dynconfig_str(fx->a.dyn, MUTT_DYN_ALERTER_SHED_MODE), "dlq");
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->b.watched.calls, 1, 1000));
    assert_string_equal(fx->b.watched.key, "alerter_shed_mode");
    assert_string_equal(fx->b.watched.old_value, "defer");
    assert_string_equal(fx->b.watched.new_value, "dlq");
    assert_string_equal(mutt_dynconfig_str(fx->b.dyn, MUTT_DYN_ALERTER_SHED_MODE), "dlq");
    assert_int_equal(mutt_dynconfig_source(fx->b.dyn, MUTT_DYN_ALERTER_SHED_MODE), MUTT_DYN_SRC_REDIS);
    mutt_test_run_for(&fx->loop, 50);
    assert_int_equal(fx->a.watched.calls, 1); /* pod A's own notice changes nothing: no second call */
    assert_int_equal(done.calls, 1);
}

static void test_dynconfig_set_refuses_bad_values_without_writing(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    struct done_wait done = { 0, 1 };
    assert_int_equal(mutt_dynconfig_set(fx->a.dyn, "moog_max_inflight", "0", true, on_done, &done), MUTT_EINVAL);
    assert_int_equal(mutt_dynconfig_set(fx->a.dyn, "moog_max_inflite", "5", true, on_done, &done), MUTT_ENOTFOUND);
    assert_int_equal(mutt_dynconfig_delete(fx->a.dyn, "nope", true, on_done, &done), MUTT_ENOTFOUND);
    /* Redis untouched */
    const char *get[] = { "GET", MUTT_DYNCONFIG_PREFIX "moog_max_inflight" };
    int type = 0;
    assert_int_equal(admin_argv_type(fx, 2, get, &type), 0);
    assert_int_equal(type, REDIS_REPLY_NIL);
    mutt_test_run_for(&fx->loop, 50);
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_MOOG_MAX_INFLIGHT), 32);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_MOOG_MAX_INFLIGHT), MUTT_DYN_SRC_DEFAULT);
    assert_int_equal(done.calls, 0);
    assert_int_equal(fx->a.watched.calls, 0);
}

static void test_dynconfig_delete_reverts_every_pod_to_the_fallback(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    struct done_wait done = { 0, 1 };
    assert_int_equal(mutt_dynconfig_set(fx->a.dyn, "moog_rate_limit", "150", true, on_done, &done), 0);
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->b.watched.calls, 1, 1000));
    assert_int_equal(mutt_dynconfig_int(fx->b.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 150);

    assert_int_equal(mutt_dynconfig_delete(fx->a.dyn, "moog_rate_limit", true, on_done, &done), 0);
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->b.watched.calls, 2, 1000));
    assert_int_equal(done.calls, 2);
    assert_int_equal(done.status, 0);
    assert_string_equal(fx->b.watched.old_value, "150");
    assert_string_equal(fx->b.watched.new_value, "80");
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), 80);
    assert_int_equal(mutt_dynconfig_source(fx->a.dyn, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_ENV);
    assert_int_equal(mutt_dynconfig_source(fx->b.dyn, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_ENV);
    assert_int_equal(fx->a.watched.calls, 2);
}

static void test_dynconfig_changes_still_arrive_after_a_redis_restart(void **state)
{
    NEED_REDIS(state);
    struct fixture *fx = *state;
    if (!mutt_test_env("STATE"))
        MUTT_SKIP("no-harness", "only the harness can restart Redis");
    mutt_dynconfig_set_refresh_interval(fx->a.dyn, 0); /* only pub/sub can deliver it now */
    assert_int_equal(mutt_test_service("stop-redis"), 0);
    mutt_test_run_for(&fx->loop, 300); /* let every connection notice */
    assert_false(mutt_redis_connected(fx->a.redis));
    assert_int_equal(mutt_test_service("start-redis"), 0);
    assert_true(wait_all_up(fx, 10000));

    /* The writes go through pod B; pod A must hear of them over its re-subscribed channel. */
    int before = fx->a.watched.calls;
    struct done_wait done = { 0, 1 };
    assert_int_equal(mutt_dynconfig_set(fx->b.dyn, "circuit_breaker_timeout", "120", true, on_done, &done), 0);
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->a.watched.calls, before + 1, 1000));
    assert_string_equal(fx->a.watched.key, "circuit_breaker_timeout");
    assert_int_equal(mutt_dynconfig_int(fx->a.dyn, MUTT_DYN_CIRCUIT_BREAKER_TIMEOUT), 120);
    assert_int_equal(done.status, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dynconfig_serves_env_file_and_default_when_redis_has_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_published_change_reaches_cache_and_watcher_within_1s, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_unpublished_change_is_picked_up_by_the_5s_refresh, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_invalid_value_in_redis_is_ignored_and_fallback_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_invalid_value_is_logged_once_per_distinct_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_set_on_one_pod_reaches_the_other_and_fires_both_watchers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_set_refuses_bad_values_without_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_delete_reverts_every_pod_to_the_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dynconfig_changes_still_arrive_after_a_redis_restart, setup, teardown),
    };
    return cmocka_run_group_tests_name("dynconfig", tests, NULL, NULL);
}
