/* Unit tests of raw-path routing with one decoding per segment (src/base/urlpath.c; issue 11
 * item 4): `%2F` stays inside a parameter, `%2541` is the literal `%41`, `%2500` the literal
 * `%00`, and a `%00` is refused instead of truncating the value. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/urlpath.h"

/* "/api/v1/dev-hosts/{hostname}" as the router stores it ('{' marks a parameter) */
static const char *const DEV_HOST[] = {"api", "v1", "dev-hosts", "{hostname"};

static char *match_one(const char *path, int *rc_out)
{
    struct mutt_urlpath_param p[4];
    size_t n = 0;
    const char *bad = NULL;
    int rc = mutt_urlpath_match(DEV_HOST, 4, false, path, strlen(path), p, 4, &n, &bad);
    *rc_out = rc;
    if (rc != MUTT_URLPATH_MATCH)
        return NULL;
    assert_int_equal(n, 1);
    assert_string_equal(p[0].name, "hostname");
    return p[0].value;
}

static void test_urlpath_parameter_is_decoded_exactly_once(void **state)
{
    int rc;
    char *v = match_one("/api/v1/dev-hosts/host%2541", &rc);
    assert_int_equal(rc, MUTT_URLPATH_MATCH);
    assert_string_equal(v, "host%41");
    free(v);
    v = match_one("/api/v1/dev-hosts/host%41", &rc);
    assert_string_equal(v, "hostA");
    free(v);
}

static void test_urlpath_encoded_slash_stays_inside_the_parameter(void **state)
{
    int rc;
    char *v = match_one("/api/v1/dev-hosts/rack%2Fhost1", &rc);
    assert_int_equal(rc, MUTT_URLPATH_MATCH);
    assert_string_equal(v, "rack/host1");
    free(v);
    /* a real slash is a segment boundary: no such route */
    assert_null(match_one("/api/v1/dev-hosts/rack/host1", &rc));
    assert_int_equal(rc, MUTT_URLPATH_NO_MATCH);
}

static void test_urlpath_encoded_percent_00_is_the_literal_text(void **state)
{
    int rc;
    char *v = match_one("/api/v1/dev-hosts/x%2500y", &rc);
    assert_int_equal(rc, MUTT_URLPATH_MATCH);
    assert_string_equal(v, "x%00y");
    assert_int_equal(strlen(v), 5);
    free(v);
}

static void test_urlpath_nul_in_a_parameter_is_refused_and_named(void **state)
{
    struct mutt_urlpath_param p[4];
    size_t n = 9;
    const char *bad = NULL;
    const char *path = "/api/v1/dev-hosts/hostA%00.evil";
    assert_int_equal(mutt_urlpath_match(DEV_HOST, 4, false, path, strlen(path), p, 4, &n, &bad),
                     MUTT_URLPATH_BAD_PARAM);
    assert_string_equal(bad, "hostname");
    assert_int_equal(n, 0);
    /* shape-only matching (route selection) still finds the route, so the 400 names it */
    assert_int_equal(mutt_urlpath_match(DEV_HOST, 4, false, path, strlen(path), NULL, 0, NULL, NULL),
                     MUTT_URLPATH_MATCH);
}

static void test_urlpath_literal_segments_compare_decoded_and_trailing_slash_is_fine(void **state)
{
    int rc;
    char *v = match_one("/api/v1/dev%2Dhosts/h1/", &rc);
    assert_int_equal(rc, MUTT_URLPATH_MATCH);
    assert_string_equal(v, "h1");
    free(v);
    assert_null(match_one("/api/v1/dev-hosts/", &rc)); /* empty parameter */
    assert_null(match_one("/api/v1/dev-hostsX/h1", &rc));
    assert_null(match_one("/api/v1/dev%00hosts/h1", &rc));
}

static void test_urlpath_wildcard_takes_the_rest(void **state)
{
    static const char *const UI[] = {"ui", "*"};
    const char *path = "/ui/app.js";
    assert_int_equal(mutt_urlpath_match(UI, 2, true, path, strlen(path), NULL, 0, NULL, NULL), MUTT_URLPATH_MATCH);
    path = "/other/app.js";
    assert_int_equal(mutt_urlpath_match(UI, 2, true, path, strlen(path), NULL, 0, NULL, NULL), MUTT_URLPATH_NO_MATCH);
}

static void test_urlpath_decode_keeps_malformed_escapes(void **state)
{
    char out[16];
    size_t n = 0;
    assert_int_equal(mutt_urlpath_decode("a%zz%4", 6, out, &n), 0);
    assert_string_equal(out, "a%zz%4");
    assert_int_equal(mutt_urlpath_decode("a%00", 4, out, &n), MUTT_EINVAL);
    assert_int_equal(n, 2);
}

/* The query-string decoder the HTTP server uses: '+' is a space there, and only there. */
static void test_urlpath_query_decoding_turns_plus_into_space(void **state)
{
    char out[32];
    mutt_urlpath_decode_query("a+b%2Bc%20d%zz", 14, out);
    assert_string_equal(out, "a b+c d%zz");
    size_t n = 0;
    assert_int_equal(mutt_urlpath_decode("a+b", 3, out, &n), 0);
    assert_string_equal(out, "a+b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urlpath_parameter_is_decoded_exactly_once),
        cmocka_unit_test(test_urlpath_encoded_slash_stays_inside_the_parameter),
        cmocka_unit_test(test_urlpath_encoded_percent_00_is_the_literal_text),
        cmocka_unit_test(test_urlpath_nul_in_a_parameter_is_refused_and_named),
        cmocka_unit_test(test_urlpath_literal_segments_compare_decoded_and_trailing_slash_is_fine),
        cmocka_unit_test(test_urlpath_wildcard_takes_the_rest),
        cmocka_unit_test(test_urlpath_decode_keeps_malformed_escapes),
        cmocka_unit_test(test_urlpath_query_decoding_turns_plus_into_space),
    };
    return cmocka_run_group_tests_name("urlpath", tests, NULL, NULL);
}
