/* Unit tests of RFC 6587 framing (src/domain/syslog_frame.c). No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/syslog_frame.h"

static size_t next(struct mutt_syslog_framer *f, const char *buf, size_t pos, char *out, bool *cut)
{
    const char *m;
    size_t ml;
    size_t used = mutt_syslog_frame_next(f, buf, strlen(buf), pos, &m, &ml, cut);
    if (used)
        memcpy(out, m, ml), out[ml] = '\0';
    return used;
}

static void test_syslog_frame_octet_counting_picked_from_a_digit_and_partial_frames_wait(void **state)
{
    (void)state;
    struct mutt_syslog_framer f;
    mutt_syslog_frame_init(&f, 100);
    char m[128];
    bool cut;
    assert_int_equal(next(&f, "5 hel", 0, m, &cut), 0); /* incomplete: wait */
    assert_int_equal(next(&f, "5 hello3 abc", 0, m, &cut), 7);
    assert_string_equal(m, "hello");
    assert_false(cut);
    assert_int_equal(next(&f, "5 hello3 abc", 7, m, &cut), 5);
    assert_string_equal(m, "abc");
    assert_int_equal(next(&f, "12", 0, m, &cut), 0); /* the length itself may be split */
}

static void test_syslog_frame_lf_picked_from_anything_else(void **state)
{
    (void)state;
    struct mutt_syslog_framer f;
    mutt_syslog_frame_init(&f, 100);
    char m[128];
    bool cut;
    assert_int_equal(next(&f, "<13>a\n5 b\n", 0, m, &cut), 6);
    assert_string_equal(m, "<13>a");
    assert_int_equal(next(&f, "<13>a\n5 b\n", 6, m, &cut), 4); /* stays LF: a digit later is text */
    assert_string_equal(m, "5 b");
    assert_int_equal(next(&f, "<13>no end", 0, m, &cut), 0);
}

static void test_syslog_frame_octet_stream_switches_to_lf_for_good(void **state)
{
    (void)state;
    struct mutt_syslog_framer f;
    mutt_syslog_frame_init(&f, 100);
    char m[128];
    bool cut;
    assert_int_equal(next(&f, "1 x<13>y\n", 0, m, &cut), 3);
    assert_int_equal(next(&f, "1 x<13>y\n", 3, m, &cut), 6);
    assert_string_equal(m, "<13>y");
    assert_int_equal(f.framing, 'l');
}

static void test_syslog_frame_long_octet_frame_is_cut_and_its_rest_skipped(void **state)
{
    (void)state;
    struct mutt_syslog_framer f;
    mutt_syslog_frame_init(&f, 4);
    char m[128];
    bool cut;
    const char *s = "10 0123456789" "2 ok";
    assert_int_equal(next(&f, s, 0, m, &cut), 3 + 4);
    assert_true(cut);
    assert_string_equal(m, "0123");
    assert_true(mutt_syslog_frame_skipping(&f));
    assert_int_equal(next(&f, s, 7, m, &cut), 0); /* nothing while skipping */
    /* the rest arrives in two pieces */
    assert_int_equal(mutt_syslog_frame_skip(&f, "45", 2), 2);
    assert_true(mutt_syslog_frame_skipping(&f));
    assert_int_equal(mutt_syslog_frame_skip(&f, "67892 ok", 8), 4);
    assert_false(mutt_syslog_frame_skipping(&f));
    assert_int_equal(next(&f, "2 ok", 0, m, &cut), 4);
    assert_string_equal(m, "ok");
}

static void test_syslog_frame_long_line_is_cut_even_before_its_lf_arrives(void **state)
{
    (void)state;
    struct mutt_syslog_framer f;
    mutt_syslog_frame_init(&f, 4);
    char m[128];
    bool cut;
    assert_int_equal(next(&f, "abcd", 0, m, &cut), 0); /* exactly max, LF may follow: wait */
    assert_int_equal(next(&f, "abcd\n", 0, m, &cut), 5);
    assert_false(cut);
    /* an LF past max in the same read: still cut at max (the buffer holds max + 32 bytes) */
    assert_int_equal(next(&f, "abcdef\n", 0, m, &cut), 4);
    assert_true(cut);
    assert_int_equal(mutt_syslog_frame_skip(&f, "ef\n", 3), 3);
    assert_int_equal(next(&f, "abcdefg", 0, m, &cut), 4);
    assert_true(cut);
    assert_string_equal(m, "abcd");
    assert_int_equal(mutt_syslog_frame_skip(&f, "efg\nnext\n", 9), 4);
    assert_false(mutt_syslog_frame_skipping(&f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syslog_frame_octet_counting_picked_from_a_digit_and_partial_frames_wait),
        cmocka_unit_test(test_syslog_frame_lf_picked_from_anything_else),
        cmocka_unit_test(test_syslog_frame_octet_stream_switches_to_lf_for_good),
        cmocka_unit_test(test_syslog_frame_long_octet_frame_is_cut_and_its_rest_skipped),
        cmocka_unit_test(test_syslog_frame_long_line_is_cut_even_before_its_lf_arrives),
    };
    return cmocka_run_group_tests_name("syslog_frame", tests, NULL, NULL);
}
