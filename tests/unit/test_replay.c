/* Unit tests of the DLQ replay rewrite (src/domain/replay.c, CONTRACT §6, D5, W18). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "mutt/replay.h"

static json_t *parse(const char *s)
{
    json_t *o = json_loads(s, 0, NULL);
    assert_non_null(o);
    return o;
}

static void test_replay_first_replay_counts_one_and_clears_attempt_fields(void **state)
{
    json_t *o = parse("{\"hostname\":\"h\",\"_dlq_reason\":\"http_500\",\"_failed_at\":\"x\",\"_moog_retry_count\":6,"
                      "\"_retry_count\":4}");
    assert_int_equal(mutt_replay_rewrite(o, MUTT_REPLAY_ORIGIN_ALERT, 3), MUTT_REPLAY_TARGET);
    assert_int_equal(json_integer_value(json_object_get(o, "_replay_count")), 1);
    assert_null(json_object_get(o, "_dlq_reason"));
    assert_null(json_object_get(o, "_failed_at"));
    assert_null(json_object_get(o, "_moog_retry_count"));
    assert_null(json_object_get(o, "_retry_count"));
    assert_string_equal(json_string_value(json_object_get(o, "hostname")), "h");
    json_decref(o);
}

static void test_replay_sets_a_missing_origin_and_keeps_a_present_one(void **state)
{
    json_t *a = parse("{\"hostname\":\"h\"}");
    mutt_replay_rewrite(a, MUTT_REPLAY_ORIGIN_INGEST, 3);
    assert_string_equal(json_string_value(json_object_get(a, "_origin")), "ingest");
    json_t *b = parse("{\"_origin\":\"alert\"}");
    mutt_replay_rewrite(b, MUTT_REPLAY_ORIGIN_INGEST, 3);
    assert_string_equal(json_string_value(json_object_get(b, "_origin")), "alert");
    json_decref(a);
    json_decref(b);
}

static void test_replay_item_replayed_max_times_is_dead(void **state)
{
    json_t *o = parse("{\"_replay_count\":3,\"_dlq_reason\":\"http_400\"}");
    assert_int_equal(mutt_replay_rewrite(o, MUTT_REPLAY_ORIGIN_ALERT, 3), MUTT_REPLAY_DEAD);
    assert_int_equal(json_integer_value(json_object_get(o, "_replay_count")), 3);
    assert_non_null(json_object_get(o, "_dead_reason"));
    assert_string_equal(json_string_value(json_object_get(o, "_dlq_reason")), "http_400"); /* kept */
    json_decref(o);
}

static void test_replay_below_max_is_replayed_with_the_count_incremented(void **state)
{
    json_t *o = parse("{\"_replay_count\":2}");
    assert_int_equal(mutt_replay_rewrite(o, MUTT_REPLAY_ORIGIN_ALERT, 3), MUTT_REPLAY_TARGET);
    assert_int_equal(json_integer_value(json_object_get(o, "_replay_count")), 3);
    json_decref(o);
}

static void test_replay_non_integer_or_negative_count_reads_as_zero(void **state)
{
    json_t *a = parse("{\"_replay_count\":\"9\"}");
    json_t *b = parse("{\"_replay_count\":-5}");
    assert_int_equal(mutt_replay_rewrite(a, MUTT_REPLAY_ORIGIN_ALERT, 1), MUTT_REPLAY_TARGET);
    assert_int_equal(mutt_replay_rewrite(b, MUTT_REPLAY_ORIGIN_ALERT, 1), MUTT_REPLAY_TARGET);
    assert_int_equal(json_integer_value(json_object_get(a, "_replay_count")), 1);
    assert_int_equal(json_integer_value(json_object_get(b, "_replay_count")), 1);
    json_decref(a);
    json_decref(b);
}

static void test_replay_not_an_object_is_dead_and_untouched(void **state)
{
    json_t *a = json_string("x");
    assert_int_equal(mutt_replay_rewrite(a, MUTT_REPLAY_ORIGIN_ALERT, 3), MUTT_REPLAY_DEAD);
    assert_string_equal(json_string_value(a), "x");
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_first_replay_counts_one_and_clears_attempt_fields),
        cmocka_unit_test(test_replay_sets_a_missing_origin_and_keeps_a_present_one),
        cmocka_unit_test(test_replay_item_replayed_max_times_is_dead),
        cmocka_unit_test(test_replay_below_max_is_replayed_with_the_count_incremented),
        cmocka_unit_test(test_replay_non_integer_or_negative_count_reads_as_zero),
        cmocka_unit_test(test_replay_not_an_object_is_dead_and_untouched),
    };
    return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
