/* Unit tests of the web API's pure helpers (domain/webapi.c): version negotiation,
 * the endpoint table (D21: the 410 path, proven on a table with an endpoint removed in 2.0),
 * auth helpers, paging and audit filters (D18), rule-body validation (SLO evaluation: test_slo.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/webapi.h"

/* ---- versions ---- */

static void test_webapi_negotiation_order_accept_then_header_then_query(void **state)
{
    (void)state;
    assert_string_equal(mutt_api_negotiate("1.0", "2.0", "2.0")->version, "1.0");
    assert_string_equal(mutt_api_negotiate(NULL, "1.0", "2.0")->version, "1.0");
    assert_string_equal(mutt_api_negotiate(NULL, NULL, "1.0")->version, "1.0");
    assert_string_equal(mutt_api_negotiate("9.9", "1.0", NULL)->version, "1.0"); /* unsupported skipped */
    assert_string_equal(mutt_api_negotiate(NULL, NULL, NULL)->version, "2.0");
    assert_string_equal(mutt_api_negotiate("garbage", "", "3.0")->version, "2.0");
}

static void test_webapi_original_version_2_5_reads_as_2_0(void **state)
{
    (void)state;
    assert_string_equal(mutt_api_version_find("2.5")->version, "2.0");
    assert_string_equal(mutt_api_version_find(" v2.0 ")->version, "2.0");
    assert_null(mutt_api_version_find("2.1"));
}

static void test_webapi_version_compare_is_numeric(void **state)
{
    (void)state;
    assert_true(mutt_api_version_cmp("1.10", "1.9") > 0);
    assert_true(mutt_api_version_cmp("2.0", "3.0") < 0);
    assert_int_equal(mutt_api_version_cmp("2", "2.0"), 0);
    /* a component past LONG_MAX saturates instead of overflowing (found by fuzz_route) */
    assert_true(mutt_api_version_cmp("10000000000000000000", "1") > 0);
    assert_true(mutt_api_version_cmp("1.99999999999999999999999", "1.2") > 0);
}

/* D21: the 410 path on a table where /legacy was removed in 2.0. */
static const struct mutt_api_endpoint test_table[] = {
    {1, "GET", "/legacy", 0, "1.0", "2.0", "2026-01-01"},
    {2, "GET,POST", "/things", 0, "1.0", NULL, NULL},
    {3, "GET,PUT,DELETE", "/things/{id}", 0, "1.0", NULL, NULL},
    {-1, NULL, NULL, 0, NULL, NULL, NULL},
};

static void test_webapi_endpoint_removed_in_2_0_answers_410_for_2_0(void **state)
{
    (void)state;
    const struct mutt_api_endpoint *ep = mutt_api_endpoint_find(test_table, "/legacy", 7);
    assert_non_null(ep);
    struct mutt_api_verdict v;
    mutt_api_check(ep, mutt_api_version_find("2.0"), &v);
    assert_int_equal(v.status, 410);
    assert_non_null(strstr(v.body, "\"error\":\"Endpoint removed\""));
    assert_non_null(strstr(v.body, "\"removed_in\":\"2.0\""));
    assert_non_null(strstr(v.body, "\"removal_date\":\"2026-01-01\""));
    assert_int_equal(v.body[strlen(v.body) - 1], '}');
}

static void test_webapi_endpoint_removed_in_2_0_still_serves_1_0_with_deprecation(void **state)
{
    (void)state;
    const struct mutt_api_endpoint *ep = mutt_api_endpoint_find(test_table, "/legacy", 7);
    struct mutt_api_verdict v;
    mutt_api_check(ep, mutt_api_version_find("1.0"), &v);
    assert_int_equal(v.status, 0);
    assert_string_equal(v.deprecated, "Deprecated in version 2.0, will be removed in 3.0 (removal date: 2026-01-01)");
    assert_string_equal(v.sunset, "2026-01-01");
}

static void test_webapi_current_version_has_no_deprecation_headers(void **state)
{
    (void)state;
    struct mutt_api_verdict v;
    mutt_api_check(mutt_api_endpoint_find(test_table, "/things", 7), mutt_api_version_find("2.0"), &v);
    assert_int_equal(v.status, 0);
    assert_string_equal(v.deprecated, "");
    assert_string_equal(v.sunset, "");
}

static void test_webapi_no_real_endpoint_is_removed_in_a_supported_version(void **state)
{
    (void)state;
    for (const struct mutt_api_endpoint *e = mutt_api_endpoints; e->path; e++)
        for (const struct mutt_api_version *v = mutt_api_versions; v->version; v++) {
            struct mutt_api_verdict vd;
            mutt_api_check(e, v, &vd);
            assert_int_equal(vd.status, 0);
        }
}

static void test_webapi_path_match_params_and_trailing_slash(void **state)
{
    (void)state;
    assert_true(mutt_api_path_match("/things/{id}", "/things/42", 10));
    assert_true(mutt_api_path_match("/things/{id}", "/things/42/", 11));
    assert_false(mutt_api_path_match("/things/{id}", "/things/", 8));
    assert_false(mutt_api_path_match("/things/{id}", "/things/42/x", 12));
    assert_false(mutt_api_path_match("/things", "/thing", 6));
    assert_true(mutt_api_path_match("/dlq/{name}/replay", "/dlq/moog/replay", 16));
}

static void test_webapi_allowed_methods_lists_every_matching_row(void **state)
{
    (void)state;
    char buf[64];
    assert_true(mutt_api_allowed_methods(test_table, "/things/7", 9, buf, sizeof buf));
    assert_string_equal(buf, "GET, PUT, DELETE");
    assert_false(mutt_api_allowed_methods(test_table, "/nothing", 8, buf, sizeof buf));
    /* the real table: literal /config/history is found before /config/{key} */
    const struct mutt_api_endpoint *e = mutt_api_endpoint_find(mutt_api_endpoints, "/config/history", 15);
    assert_int_equal(e->id, MUTT_API_EP_CONFIG_HISTORY);
    /* literal /rules/dry-run before /rules/{id}; the one POST a read-only key may make (D47) */
    e = mutt_api_endpoint_find(mutt_api_endpoints, "/rules/dry-run", 14);
    assert_int_equal(e->id, MUTT_API_EP_RULES_DRY_RUN);
    assert_true(e->flags & MUTT_API_READ_POST);
    for (e = mutt_api_endpoints; e->path; e++)
        if (e->id != MUTT_API_EP_RULES_DRY_RUN)
            assert_false(e->flags & MUTT_API_READ_POST);
}

static void test_webapi_version_body_has_d21_shape(void **state)
{
    (void)state;
    char *s = mutt_api_version_body();
    json_t *o = json_loads(s, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "current_version")), "2.0");
    assert_string_equal(json_string_value(json_object_get(o, "default_version")), "2.0");
    assert_int_equal(json_array_size(json_object_get(o, "supported_versions")), 2);
    assert_non_null(json_object_get(json_object_get(o, "version_history"), "1.0"));
    json_decref(o);
    free(s);
}

/* ---- auth ---- */

static void test_webapi_key_role_equal_keys_grant_reads_only(void **state)
{
    (void)state;
    assert_int_equal(mutt_api_key_role("samekey", 7, "samekey", "samekey"), MUTT_API_READONLY);
}

static void test_webapi_key_role_admin_readonly_none(void **state)
{
    (void)state;
    assert_int_equal(mutt_api_key_role("adminkey", 8, "adminkey", "rokey"), MUTT_API_ADMIN);
    assert_int_equal(mutt_api_key_role("rokey", 5, "adminkey", "rokey"), MUTT_API_READONLY);
    assert_int_equal(mutt_api_key_role("adminke", 7, "adminkey", "rokey"), MUTT_API_NONE);
    assert_int_equal(mutt_api_key_role("adminkeyX", 9, "adminkey", "rokey"), MUTT_API_NONE);
    assert_int_equal(mutt_api_key_role("", 0, "adminkey", ""), MUTT_API_NONE); /* empty key never matches */
}

static void test_webapi_changed_by_is_first_8_hex_of_sha256(void **state)
{
    (void)state;
    char buf[32];
    mutt_api_changed_by("abc", 3, buf, sizeof buf); /* sha256("abc") = ba7816bf... */
    assert_string_equal(buf, "webui_api:ba7816bf");
}

/* ---- paging and filters ---- */

static void test_webapi_paging_defaults_clamp_and_refusals(void **state)
{
    (void)state;
    long p, l;
    const char *bad = NULL;
    assert_int_equal(mutt_api_parse_paging(NULL, NULL, &p, &l, &bad), 0);
    assert_int_equal(p, 1);
    assert_int_equal(l, 50);
    assert_int_equal(mutt_api_parse_paging("3", "5000", &p, &l, &bad), 0);
    assert_int_equal(p, 3);
    assert_int_equal(l, 200);
    assert_int_equal(mutt_api_parse_paging("2", "99999999999999999999", &p, &l, &bad), 0);
    assert_int_equal(l, 200);
    assert_int_equal(mutt_api_parse_paging("0", NULL, &p, &l, &bad), MUTT_EINVAL);
    assert_string_equal(bad, "page");
    assert_int_equal(mutt_api_parse_paging("1.5", NULL, &p, &l, &bad), MUTT_EINVAL);
    assert_int_equal(mutt_api_parse_paging(NULL, "0", &p, &l, &bad), MUTT_EINVAL);
    assert_string_equal(bad, "limit");
    assert_int_equal(mutt_api_parse_paging(NULL, "-1", &p, &l, &bad), MUTT_EINVAL);
    assert_int_equal(mutt_api_parse_paging(NULL, "ten", &p, &l, &bad), MUTT_EINVAL);
}

static void test_webapi_like_escape_escapes_percent_underscore_backslash(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(mutt_api_like_escape("a%b_c\\d", buf, sizeof buf), 0);
    assert_string_equal(buf, "a\\%b\\_c\\\\d");
    assert_int_equal(mutt_api_like_escape("%%%%", buf, 5), MUTT_EFULL);
}

struct params {
    const char *names[8];
    const char *values[8];
};

static const char *lookup(void *privdata, const char *name)
{
    struct params *p = privdata;
    for (int i = 0; i < 8 && p->names[i]; i++)
        if (strcmp(p->names[i], name) == 0)
            return p->values[i];
    return NULL;
}

static void test_webapi_filter_binds_values_never_splices_them(void **state)
{
    (void)state;
    struct params p = {{"changed_by", "table_name", "record_id", "start_date"},
                       {"' OR 1=1 --", "alert_rules", "7", "2026-01-02T03:04:05+01:00"}};
    struct mutt_api_filter f;
    char err[128];
    const char *bad = NULL;
    assert_int_equal(mutt_api_filter_parse(MUTT_API_AUDIT_CONFIG, lookup, &p, &f, err, sizeof err, &bad), 0);
    assert_int_equal(f.nvalues, 4);
    assert_null(strstr(f.where, "OR 1=1"));
    assert_string_equal(f.where, "WHERE changed_by ILIKE $1 AND table_name = $2 AND record_id = $3::int AND "
                                 "changed_at >= $4::timestamptz");
    assert_string_equal(f.values[0], "%' OR 1=1 --%");
    assert_string_equal(f.values[3], "2026-01-02T02:04:05.000Z"); /* re-rendered, UTC */
}

static void test_webapi_filter_refuses_bad_values_naming_the_parameter(void **state)
{
    (void)state;
    static const struct {
        enum mutt_api_audit_kind kind;
        const char *name, *value;
    } cases[] = {
        {MUTT_API_AUDIT_CONFIG, "operation", "create"},   {MUTT_API_AUDIT_CONFIG, "operation", "DROP"},
        {MUTT_API_AUDIT_CONFIG, "table_name", "users"},   {MUTT_API_AUDIT_CONFIG, "record_id", "1 OR 1"},
        {MUTT_API_AUDIT_CONFIG, "record_id", "-3"},       {MUTT_API_AUDIT_CONFIG, "start_date", "yesterday"},
        {MUTT_API_AUDIT_CONFIG, "end_date", "2026-02-30"}, {MUTT_API_AUDIT_CONFIG, "changed_by", ""},
        {MUTT_API_AUDIT_EVENT, "rule_id", "x"},           {MUTT_API_AUDIT_EVENT, "hostname", "a\nb"},
        {MUTT_API_AUDIT_EVENT, "page", "0"},              {MUTT_API_AUDIT_EVENT, "limit", "%"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct params p = {{cases[i].name}, {cases[i].value}};
        struct mutt_api_filter f;
        char err[128];
        const char *bad = NULL;
        assert_int_equal(mutt_api_filter_parse(cases[i].kind, lookup, &p, &f, err, sizeof err, &bad), MUTT_EINVAL);
        assert_non_null(bad);
        assert_string_equal(bad, cases[i].name);
    }
}

static void test_webapi_event_offset_over_cap_is_refused_naming_offset(void **state)
{
    (void)state;
    struct mutt_api_filter f;
    char err[200];
    const char *bad = NULL;
    /* (201 - 1) * 50 = 10000: the deepest allowed page */
    struct params ok = {{"page", "limit"}, {"201", "50"}};
    assert_int_equal(mutt_api_filter_parse(MUTT_API_AUDIT_EVENT, lookup, &ok, &f, err, sizeof err, &bad), 0);
    struct params deep = {{"page", "limit"}, {"202", "50"}};
    assert_int_equal(mutt_api_filter_parse(MUTT_API_AUDIT_EVENT, lookup, &deep, &f, err, sizeof err, &bad),
                     MUTT_EINVAL);
    assert_string_equal(bad, "offset");
    assert_non_null(strstr(err, "offset"));
    assert_non_null(strstr(err, "10000"));
    struct params huge = {{"page"}, {"1000000000"}};
    assert_int_equal(mutt_api_filter_parse(MUTT_API_AUDIT_EVENT, lookup, &huge, &f, err, sizeof err, &bad),
                     MUTT_EINVAL);
    assert_string_equal(bad, "offset");
    /* the config audit keeps its paging (its table grows with admin changes only) */
    assert_int_equal(mutt_api_filter_parse(MUTT_API_AUDIT_CONFIG, lookup, &deep, &f, err, sizeof err, &bad), 0);
}

static void test_webapi_event_filter_columns(void **state)
{
    (void)state;
    struct params p = {{"hostname", "rule_id", "end_date"}, {"h1", "42", "2026-01-01"}};
    struct mutt_api_filter f;
    char err[128];
    const char *bad = NULL;
    assert_int_equal(mutt_api_filter_parse(MUTT_API_AUDIT_EVENT, lookup, &p, &f, err, sizeof err, &bad), 0);
    assert_string_equal(f.where,
                        "WHERE hostname = $1 AND matched_rule_id = $2::int AND event_timestamp <= $3::timestamptz");
    assert_string_equal(f.values[2], "2026-01-01T23:59:59.999Z"); /* a date-only end includes that day */
}

/* ---- rule bodies ---- */

static int validate(const char *body, const char *base, const char **field, int *changed, json_t **out)
{
    json_t *b = json_loads(body, 0, NULL);
    json_t *bs = base ? json_loads(base, 0, NULL) : NULL;
    char err[300];
    json_t *o = NULL;
    int rc = mutt_api_rule_validate(b, bs, &o, changed, err, sizeof err, field);
    json_decref(b);
    json_decref(bs);
    if (out)
        *out = o;
    else
        json_decref(o);
    return rc;
}

#define H "\"prod_handling\":\"P\",\"dev_handling\":\"D\",\"team_assignment\":\"T\""

static void test_webapi_rule_create_applies_defaults(void **state)
{
    (void)state;
    const char *field = NULL;
    json_t *o = NULL;
    assert_int_equal(validate("{\"match_string\":\"x\"," H "}", NULL, &field, NULL, &o), 0);
    assert_string_equal(json_string_value(json_object_get(o, "match_type")), "contains");
    assert_int_equal(json_integer_value(json_object_get(o, "priority")), 100);
    assert_true(json_is_true(json_object_get(o, "is_active")));
    assert_true(json_is_null(json_object_get(o, "syslog_severity")));
    assert_int_equal(json_object_size(o), 9);
    json_decref(o);
}

static void test_webapi_rule_validation_names_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *body, *field;
    } cases[] = {
        {"{\"match_string\":\"x\",\"match_type\":\"fuzzy\"," H "}", "match_type"},
        {"{\"match_string\":\"x\",\"syslog_severity\":8," H "}", "syslog_severity"},
        {"{\"match_string\":\"x\",\"syslog_severity\":-1," H "}", "syslog_severity"},
        {"{\"match_string\":\"x\",\"priority\":1.5," H "}", "priority"},
        {"{\"match_string\":\"x\",\"priority\":99999999999," H "}", "priority"},
        {"{\"match_string\":\"(x\",\"match_type\":\"regex\"," H "}", "match_string"},
        {"{" H "}", "match_string"},
        {"{\"match_string\":\"\",\"trap_oid\":null," H "}", "match_string"},
        {"{\"match_string\":\"x\",\"prod_handling\":\"\",\"dev_handling\":\"D\",\"team_assignment\":\"T\"}",
         "prod_handling"},
        {"{\"match_string\":\"x\",\"prod_handling\":\"P\",\"team_assignment\":\"T\"}", "dev_handling"},
        {"{\"match_string\":\"x\",\"is_active\":\"yes\"," H "}", "is_active"},
        {"{\"match_string\":\"x\",\"match_type\":\"oid_prefix\"," H "}", "trap_oid"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *field = NULL;
        assert_int_equal(validate(cases[i].body, NULL, &field, NULL, NULL), MUTT_EINVAL);
        assert_non_null(field);
        assert_string_equal(field, cases[i].field);
    }
}

static void test_webapi_rule_update_merges_base_and_counts_changes(void **state)
{
    (void)state;
    const char *base = "{\"match_string\":\"x\",\"trap_oid\":null,\"syslog_severity\":null,\"match_type\":\"contains\","
                       "\"priority\":100,\"is_active\":true," H "}";
    const char *field = NULL;
    int changed = -1;
    json_t *o = NULL;
    assert_int_equal(validate("{\"priority\":5,\"is_active\":true}", base, &field, &changed, &o), 0);
    assert_int_equal(changed, 1);
    assert_int_equal(json_integer_value(json_object_get(o, "priority")), 5);
    assert_string_equal(json_string_value(json_object_get(o, "match_string")), "x");
    json_decref(o);
    /* switching to regex validates the stored match_string too */
    const char *bad_base = "{\"match_string\":\"[z-a]\",\"match_type\":\"contains\",\"priority\":1,\"is_active\":true," H "}";
    assert_int_equal(validate("{\"match_type\":\"regex\"}", bad_base, &field, NULL, NULL), MUTT_EINVAL);
    assert_string_equal(field, "match_string");
    assert_int_equal(validate("{\"nothing\":1}", base, &field, NULL, NULL), MUTT_EINVAL);
    assert_int_equal(validate("{\"match_string\":null}", base, &field, NULL, NULL), MUTT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webapi_negotiation_order_accept_then_header_then_query),
        cmocka_unit_test(test_webapi_original_version_2_5_reads_as_2_0),
        cmocka_unit_test(test_webapi_version_compare_is_numeric),
        cmocka_unit_test(test_webapi_endpoint_removed_in_2_0_answers_410_for_2_0),
        cmocka_unit_test(test_webapi_endpoint_removed_in_2_0_still_serves_1_0_with_deprecation),
        cmocka_unit_test(test_webapi_current_version_has_no_deprecation_headers),
        cmocka_unit_test(test_webapi_no_real_endpoint_is_removed_in_a_supported_version),
        cmocka_unit_test(test_webapi_path_match_params_and_trailing_slash),
        cmocka_unit_test(test_webapi_allowed_methods_lists_every_matching_row),
        cmocka_unit_test(test_webapi_version_body_has_d21_shape),
        cmocka_unit_test(test_webapi_key_role_admin_readonly_none),
        cmocka_unit_test(test_webapi_key_role_equal_keys_grant_reads_only),
        cmocka_unit_test(test_webapi_changed_by_is_first_8_hex_of_sha256),
        cmocka_unit_test(test_webapi_paging_defaults_clamp_and_refusals),
        cmocka_unit_test(test_webapi_like_escape_escapes_percent_underscore_backslash),
        cmocka_unit_test(test_webapi_filter_binds_values_never_splices_them),
        cmocka_unit_test(test_webapi_filter_refuses_bad_values_naming_the_parameter),
        cmocka_unit_test(test_webapi_event_offset_over_cap_is_refused_naming_offset),
        cmocka_unit_test(test_webapi_event_filter_columns),
        cmocka_unit_test(test_webapi_rule_create_applies_defaults),
        cmocka_unit_test(test_webapi_rule_validation_names_the_field),
        cmocka_unit_test(test_webapi_rule_update_merges_base_and_counts_changes),
    };
    return cmocka_run_group_tests_name("webapi", tests, NULL, NULL);
}
