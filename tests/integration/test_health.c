/* /health aggregation against a real Redis (src/core/health.c, D17, D34): with every dependency
 * up, a role whose stage has not started is `starting` and the answer is 503 (not ready); once
 * started it is `ok` and 200. Needs the harness Redis. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/config.h"
#include "mutt/ctx.h"
#include "mutt/health.h"
#include "mutt/redis.h"
#include "testenv.h"

struct fx {
    uv_loop_t loop;
    struct mutt_redis *r;
    int ups;
};

static void on_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    (void)conn;
    if (connected)
        ((struct fx *)privdata)->ups++;
}

static int setup(void **state)
{
    const char *port = mutt_test_env("REDIS_PORT");
    if (!port)
        return -1; /* the harness always provides Redis for integration tests */
    struct fx *f = calloc(1, sizeof(*f));
    if (!f || uv_loop_init(&f->loop) != 0)
        return -1;
    const char *host = mutt_test_env("REDIS_HOST");
    struct mutt_redis_opts o = {
        .host = host ? host : "127.0.0.1",
        .port = atoi(port),
        .connect_timeout_ms = 2000,
        .reconnect_min_ms = 100,
        .reconnect_max_ms = 1000,
        .max_inflight = 100,
    };
    f->r = mutt_redis_create(&f->loop, &o);
    if (!f->r || mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, f) != 0 || mutt_redis_start(f->r) != 0)
        return -1;
    if (!mutt_test_run_until_count(&f->loop, &f->ups, 1, 5000))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mutt_redis_stop(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    mutt_redis_destroy(f->r);
    int rc = uv_loop_close(&f->loop);
    free(f);
    return rc;
}

static json_t *build(struct mutt_ctx *ctx, int *status)
{
    char *body = NULL;
    size_t len = 0;
    *status = mutt_health_build(ctx, &body, &len);
    json_t *o = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(o);
    return o;
}

static const char *role(json_t *o, const char *name)
{
    return json_string_value(json_object_get(json_object_get(o, "roles"), name));
}

static void test_health_role_not_started_is_starting_503_then_ok_200(void **state)
{
    struct fx *f = *state;
    struct mutt_ctx ctx = {.loop = &f->loop, .redis = f->r, .roles = MUTT_ROLE_INGEST, .pod_name = "p"};
    int status = 0;
    json_t *o = build(&ctx, &status);
    assert_int_equal(status, 503);
    assert_string_equal(role(o, "ingest"), "starting");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "starting");
    assert_string_equal(json_string_value(json_object_get(o, "redis")), "connected");
    assert_false(mutt_health_ready(&ctx));
    json_decref(o);

    ctx.roles_started = MUTT_ROLE_INGEST;
    o = build(&ctx, &status);
    assert_int_equal(status, 200);
    assert_string_equal(role(o, "ingest"), "ok");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "healthy");
    assert_true(mutt_health_ready(&ctx));
    json_decref(o);
}

static void test_health_one_role_still_starting_keeps_the_process_not_ready(void **state)
{
    struct fx *f = *state;
    /* ingest started, remediate not yet */
    struct mutt_ctx ctx = {.loop = &f->loop, .redis = f->r, .roles = MUTT_ROLE_INGEST | MUTT_ROLE_REMEDIATE,
                           .roles_started = MUTT_ROLE_INGEST, .pod_name = "p"};
    int status = 0;
    json_t *o = build(&ctx, &status);
    assert_int_equal(status, 503);
    assert_string_equal(role(o, "ingest"), "ok");
    assert_string_equal(role(o, "remediate"), "starting");
    assert_false(mutt_health_ready(&ctx));
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_role_not_started_is_starting_503_then_ok_200),
        cmocka_unit_test(test_health_one_role_still_starting_keeps_the_process_not_ready),
    };
    return cmocka_run_group_tests_name("health", tests, setup, teardown);
}
