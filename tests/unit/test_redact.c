/* Unit tests of URL credential redaction (src/base/redact.c, CONTRACT §9): passwords in the
 * userinfo and secret-looking query parameters are masked; everything else survives. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/redact.h"

static const struct {
    const char *in, *want;
} cases[] = {
    { "https://moog.example.com/events", "https://moog.example.com/events" },
    { "https://user:hunter2@moog.example.com/events", "https://user:***@moog.example.com/events" },
    { "https://user:p@ss@moog.example.com:8443/x", "https://user:***@moog.example.com:8443/x" },
    { "https://ghp_TOKEN123@hooks.example.com/", "https://***@hooks.example.com/" },
    { "http://u:pw@[::1]:8080/a?b=1", "http://u:***@[::1]:8080/a?b=1" },
    { "https://h/x?token=abc&page=2", "https://h/x?token=***&page=2" },
    { "https://h/x?page=2&api_key=abc;Password=p#frag", "https://h/x?page=2&api_key=***;Password=***#frag" },
    { "https://h/x?X-Amz-Signature=abc&X-Amz-Date=1", "https://h/x?X-Amz-Signature=***&X-Amz-Date=1" },
    { "https://h/x?access_token=a&client_secret=b&sessionid=c&auth=d",
      "https://h/x?access_token=***&client_secret=***&sessionid=***&auth=***" },
    { "https://h/x?key", "https://h/x?key" },          /* no value: nothing to hide */
    { "https://h/x?q=a@b:c", "https://h/x?q=a@b:c" },  /* '@' outside the authority is no userinfo */
    { "https://h/p@th", "https://h/p@th" },
    { "postgresql://mutt:s3cret@db.example/mutt?sslmode=require",
      "postgresql://mutt:***@db.example/mutt?sslmode=require" },
    { "not a url", "not a url" },
    { "", "" },
};

static void test_redact_url_masks_passwords_and_secret_parameters(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[MUTT_REDACT_URL_MAX];
        const char *got = mutt_redact_url(cases[i].in, out, sizeof out);
        if (strcmp(got, cases[i].want) != 0)
            print_message("case %zu: %s -> %s (want %s)\n", i, cases[i].in, got, cases[i].want);
        assert_string_equal(got, cases[i].want);
    }
}

static void test_redact_url_cuts_to_the_buffer_and_terminates(void **state)
{
    (void)state;
    char out[12];
    memset(out, 'x', sizeof out);
    mutt_redact_url("https://user:hunter2@moog.example.com/", out, sizeof out);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_string_equal(out, "https://use");
    char tiny[1] = { 'x' };
    mutt_redact_url("https://a/", tiny, sizeof tiny);
    assert_int_equal(tiny[0], '\0');
    /* a cut never lets the password through: the mask comes before anything after it */
    char mid[20];
    mutt_redact_url("https://u:hunter2@h/", mid, sizeof mid);
    assert_null(strstr(mid, "hunter2"));
}

static void test_redact_url_null_is_empty(void **state)
{
    (void)state;
    char out[8] = "junk";
    assert_string_equal(mutt_redact_url(NULL, out, sizeof out), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redact_url_masks_passwords_and_secret_parameters),
        cmocka_unit_test(test_redact_url_cuts_to_the_buffer_and_terminates),
        cmocka_unit_test(test_redact_url_null_is_empty),
    };
    return cmocka_run_group_tests_name("redact", tests, NULL, NULL);
}
