/* Drift report between effective dynamic config and the approved baseline. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mutt/config_drift.h"

static char *report(const char *current, const char *baseline)
{
    json_t *c = json_loads(current, 0, NULL), *b = json_loads(baseline, 0, NULL);
    assert_non_null(c);
    assert_non_null(b);
    json_t *r = mutt_config_drift(c, b);
    assert_non_null(r);
    char *s = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    json_decref(c);
    json_decref(b);
    return s;
}

static void test_config_drift_identical_config_reports_no_drift(void **state)
{
    char *s = report("{\"a\":\"1\",\"b\":\"x\"}", "{\"b\":\"x\",\"a\":\"1\"}");
    assert_string_equal(s, "{\"drift\":false,\"changed\":[],\"added\":[],\"missing\":[]}");
    free(s);
}

static void test_config_drift_changed_value_is_listed_with_both_sides(void **state)
{
    char *s = report("{\"a\":\"2\",\"b\":\"x\"}", "{\"a\":\"1\",\"b\":\"x\"}");
    assert_string_equal(s, "{\"drift\":true,\"changed\":[{\"key\":\"a\",\"baseline\":\"1\",\"current\":\"2\"}],"
                           "\"added\":[],\"missing\":[]}");
    free(s);
}

static void test_config_drift_added_and_missing_keys_are_sorted(void **state)
{
    char *s = report("{\"z\":\"1\",\"c\":\"2\",\"k\":\"3\"}", "{\"k\":\"3\",\"old2\":\"b\",\"old1\":\"a\"}");
    assert_string_equal(s, "{\"drift\":true,\"changed\":[],"
                           "\"added\":[{\"key\":\"c\",\"current\":\"2\"},{\"key\":\"z\",\"current\":\"1\"}],"
                           "\"missing\":[{\"key\":\"old1\",\"baseline\":\"a\"},{\"key\":\"old2\",\"baseline\":\"b\"}]}");
    free(s);
}

static void test_config_drift_empty_baseline_lists_every_key_as_added(void **state)
{
    char *s = report("{\"a\":\"1\"}", "{}");
    assert_string_equal(s, "{\"drift\":true,\"changed\":[],\"added\":[{\"key\":\"a\",\"current\":\"1\"}],\"missing\":[]}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_drift_identical_config_reports_no_drift),
        cmocka_unit_test(test_config_drift_changed_value_is_listed_with_both_sides),
        cmocka_unit_test(test_config_drift_added_and_missing_keys_are_sorted),
        cmocka_unit_test(test_config_drift_empty_baseline_lists_every_key_as_added),
    };
    return cmocka_run_group_tests_name("config_drift", tests, NULL, NULL);
}
