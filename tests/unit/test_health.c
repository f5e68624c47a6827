/* Unit tests of the /health aggregation (src/core/health.c, CONTRACT §1, D17, D34): a role is
 * `starting` until its stage accepts work, and ready (200, systemd READY) means no role is
 * `starting` or `down`. No service is needed: the verdicts are pure, and the body is built for a
 * context without adapters. */
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

static struct mutt_health_role_input all_up(void)
{
    struct mutt_health_role_input in = {
        .started = true, .stage_verdict = MUTT_HEALTH_OK, .redis_up = true, .pg_needed = true, .pg_hard = true, .pg_up = true,
    };
    return in;
}

static void test_health_role_not_started_is_starting_even_with_every_dependency_up(void **state)
{
    struct mutt_health_role_input in = all_up();
    in.started = false;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_STARTING);
}

static void test_health_started_role_with_dependencies_up_takes_the_stage_verdict(void **state)
{
    struct mutt_health_role_input in = all_up();
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_OK);
    in.stage_verdict = MUTT_HEALTH_STARTING; /* a stage still finishing its own start-up */
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_STARTING);
    in.stage_verdict = MUTT_HEALTH_DEGRADED;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_DEGRADED);
}

static void test_health_redis_down_makes_a_role_down_started_or_not(void **state)
{
    struct mutt_health_role_input in = all_up();
    in.redis_up = false;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_DOWN);
    in.started = false;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_DOWN);
}

static void test_health_soft_database_dependency_degrades_hard_one_downs(void **state)
{
    struct mutt_health_role_input in = all_up();
    in.pg_up = false;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_DOWN);
    in.pg_hard = false;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_DEGRADED);
    in.pg_needed = false;
    assert_int_equal(mutt_health_role_verdict(&in), MUTT_HEALTH_OK);
}

static void test_health_ready_only_without_starting_or_down(void **state)
{
    enum mutt_role_health ok_deg[] = {MUTT_HEALTH_OK, MUTT_HEALTH_DEGRADED};
    assert_int_equal(mutt_health_combine(ok_deg, 2), MUTT_HEALTH_READY);
    enum mutt_role_health one_starting[] = {MUTT_HEALTH_OK, MUTT_HEALTH_STARTING};
    assert_int_equal(mutt_health_combine(one_starting, 2), MUTT_HEALTH_NOT_YET);
    enum mutt_role_health down_and_starting[] = {MUTT_HEALTH_STARTING, MUTT_HEALTH_DOWN};
    assert_int_equal(mutt_health_combine(down_and_starting, 2), MUTT_HEALTH_UNHEALTHY);
}

static void test_health_body_without_redis_is_503_unhealthy_with_roles_down(void **state)
{
    /* no adapters: Redis reads as down; a fresh process with Redis up is in
     * tests/integration/test_health.c */
    struct mutt_ctx ctx = {.roles = MUTT_ROLE_INGEST, .roles_started = 0, .pod_name = "p"};
    char *body = NULL;
    size_t len = 0;
    assert_int_equal(mutt_health_build(&ctx, &body, &len), 503);
    assert_false(mutt_health_ready(&ctx));
    json_t *o = json_loads(body, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "roles"), "ingest")), "down");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "unhealthy");
    assert_non_null(json_object_get(o, "errors"));
    json_decref(o);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_role_not_started_is_starting_even_with_every_dependency_up),
        cmocka_unit_test(test_health_started_role_with_dependencies_up_takes_the_stage_verdict),
        cmocka_unit_test(test_health_redis_down_makes_a_role_down_started_or_not),
        cmocka_unit_test(test_health_soft_database_dependency_degrades_hard_one_downs),
        cmocka_unit_test(test_health_ready_only_without_starting_or_down),
        cmocka_unit_test(test_health_body_without_redis_is_503_unhealthy_with_roles_down),
    };
    return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
