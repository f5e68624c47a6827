/* Unit tests of the shared stage lifecycle and stop protocol (src/core/stage_life.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mutt/stage_life.h"

struct done_count {
    int calls;
    struct mutt_ctx *ctx;
};

static void on_done(struct mutt_ctx *ctx, void *privdata)
{
    struct done_count *d = privdata;
    d->calls++;
    d->ctx = ctx;
}

static struct mutt_ctx *const fake_ctx = (struct mutt_ctx *)&fake_ctx; /* never dereferenced */

static void test_stage_life_starts_stopped_and_zeroed_is_stopped(void **state)
{
    struct mutt_stage_life zeroed = {0};
    assert_int_equal(zeroed.state, MUTT_STAGE_STOPPED);
    struct mutt_stage_life life;
    mutt_stage_life_init(&life, "t", fake_ctx);
    assert_int_equal(life.state, MUTT_STAGE_STOPPED);
    assert_false(mutt_stage_life_started(&life));
    assert_false(mutt_stage_life_live(&life));
    assert_false(mutt_stage_life_draining(&life));
}

static void test_stage_life_starting_and_running_are_live_draining_is_not(void **state)
{
    struct mutt_stage_life life;
    mutt_stage_life_init(&life, "t", fake_ctx);
    mutt_stage_life_set_state(&life, MUTT_STAGE_STARTING);
    assert_true(mutt_stage_life_live(&life));
    assert_true(mutt_stage_life_started(&life));
    mutt_stage_life_set_state(&life, MUTT_STAGE_RUNNING);
    assert_true(mutt_stage_life_live(&life));
    struct done_count d = {0};
    assert_true(mutt_stage_life_begin_stop(&life, on_done, &d));
    assert_false(mutt_stage_life_live(&life));
    assert_true(mutt_stage_life_started(&life));
    assert_true(mutt_stage_life_draining(&life));
    assert_int_equal(d.calls, 0);
}

static void test_stage_life_stop_of_a_stage_never_started_is_done_at_once(void **state)
{
    struct mutt_stage_life life;
    mutt_stage_life_init(&life, "t", fake_ctx);
    struct done_count d = {0};
    assert_false(mutt_stage_life_begin_stop(&life, on_done, &d));
    assert_int_equal(d.calls, 1);
    assert_ptr_equal(d.ctx, fake_ctx);
    assert_int_equal(life.state, MUTT_STAGE_STOPPED);
}

static void test_stage_life_drained_only_when_nothing_is_out(void **state)
{
    struct mutt_stage_life life;
    mutt_stage_life_init(&life, "t", fake_ctx);
    mutt_stage_life_set_state(&life, MUTT_STAGE_RUNNING);
    assert_false(mutt_stage_life_drained(&life, 0)); /* no stop asked */
    struct done_count d = {0};
    mutt_stage_life_begin_stop(&life, on_done, &d);
    assert_false(mutt_stage_life_drained(&life, 3));
    assert_true(mutt_stage_life_drained(&life, 0));
    assert_int_equal(d.calls, 0);
}

static void test_stage_life_finish_calls_done_exactly_once(void **state)
{
    struct mutt_stage_life life;
    mutt_stage_life_init(&life, "t", fake_ctx);
    mutt_stage_life_set_state(&life, MUTT_STAGE_RUNNING);
    struct done_count d = {0};
    mutt_stage_life_begin_stop(&life, on_done, &d);
    mutt_stage_life_finish(&life);
    assert_int_equal(d.calls, 1);
    assert_int_equal(life.state, MUTT_STAGE_STOPPED);
    assert_false(mutt_stage_life_drained(&life, 0));
    mutt_stage_life_finish(&life);
    assert_int_equal(d.calls, 1);
}

static void test_stage_life_state_names(void **state)
{
    assert_string_equal(mutt_stage_state_name(MUTT_STAGE_STOPPED), "stopped");
    assert_string_equal(mutt_stage_state_name(MUTT_STAGE_STARTING), "starting");
    assert_string_equal(mutt_stage_state_name(MUTT_STAGE_RUNNING), "running");
    assert_string_equal(mutt_stage_state_name(MUTT_STAGE_DRAINING), "draining");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stage_life_starts_stopped_and_zeroed_is_stopped),
        cmocka_unit_test(test_stage_life_starting_and_running_are_live_draining_is_not),
        cmocka_unit_test(test_stage_life_stop_of_a_stage_never_started_is_done_at_once),
        cmocka_unit_test(test_stage_life_drained_only_when_nothing_is_out),
        cmocka_unit_test(test_stage_life_finish_calls_done_exactly_once),
        cmocka_unit_test(test_stage_life_state_names),
    };
    return cmocka_run_group_tests_name("stage_life", tests, NULL, NULL);
}
