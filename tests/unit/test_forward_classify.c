/* Unit tests of the forward stage's outcome classification (src/domain/forward_classify.c):
 * delivered / retry / dead by HTTP status and transport error, and the reason labels. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/error.h"
#include "mutt/forward_classify.h"

static void test_forward_classify_any_2xx_is_delivered(void **state)
{
    const long codes[] = {200, 201, 202, 204, 299};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(mutt_forward_classify(codes[i], 0), MUTT_DELIVERED);
}

static void test_forward_classify_408_429_and_5xx_are_retried(void **state)
{
    const long codes[] = {408, 429, 500, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(mutt_forward_classify(codes[i], 0), MUTT_RETRY);
}

static void test_forward_classify_other_4xx_and_1xx_3xx_finals_are_dead(void **state)
{
    const long codes[] = {100, 101, 199, 300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 409, 413, 422, 499};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_int_equal(mutt_forward_classify(codes[i], 0), MUTT_DEAD);
}

static void test_forward_classify_transport_errors_are_retried_whatever_the_status(void **state)
{
    assert_int_equal(mutt_forward_classify(0, 7), MUTT_RETRY);   /* couldn't connect */
    assert_int_equal(mutt_forward_classify(0, 28), MUTT_RETRY);  /* timeout */
    assert_int_equal(mutt_forward_classify(0, 6), MUTT_RETRY);   /* DNS */
    assert_int_equal(mutt_forward_classify(0, 35), MUTT_RETRY);  /* TLS */
    assert_int_equal(mutt_forward_classify(200, 28), MUTT_RETRY); /* body timed out after 200 */
    assert_int_equal(mutt_forward_classify(400, 56), MUTT_RETRY);
    assert_int_equal(mutt_forward_classify(0, 0), MUTT_RETRY); /* no answer at all */
}

static void test_forward_classify_reason_names_status_or_curl_error(void **state)
{
    char buf[96];
    assert_string_equal(mutt_forward_reason(400, 0, buf, sizeof(buf)), "http_400");
    assert_string_equal(mutt_forward_reason(0, 7, buf, sizeof(buf)), "curl_7: Couldn't connect to server");
    assert_string_equal(mutt_forward_reason(0, 28, buf, sizeof(buf)), "curl_28: Timeout was reached");
    assert_string_equal(mutt_forward_reason(0, 9999, buf, sizeof(buf)), "curl_9999: transport error");
    assert_string_equal(mutt_forward_reason(0, 0, buf, sizeof(buf)), "no_http_status");
    char small[5];
    assert_string_equal(mutt_forward_reason(404, 0, small, sizeof(small)), "http");
}

static void test_forward_classify_metric_reason_labels(void **state)
{
    assert_string_equal(mutt_forward_metric_reason(429, 0), "rate_limit");
    assert_string_equal(mutt_forward_metric_reason(503, 0), "http");
    assert_string_equal(mutt_forward_metric_reason(0, 28), "timeout");
    assert_string_equal(mutt_forward_metric_reason(0, 7), "connect");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_classify_any_2xx_is_delivered),
        cmocka_unit_test(test_forward_classify_408_429_and_5xx_are_retried),
        cmocka_unit_test(test_forward_classify_other_4xx_and_1xx_3xx_finals_are_dead),
        cmocka_unit_test(test_forward_classify_transport_errors_are_retried_whatever_the_status),
        cmocka_unit_test(test_forward_classify_reason_names_status_or_curl_error),
        cmocka_unit_test(test_forward_classify_metric_reason_labels),
    };
    return cmocka_run_group_tests_name("forward_classify", tests, NULL, NULL);
}
