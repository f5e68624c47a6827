/* Unit tests of unhandled-template masking and hashing (src/domain/template.c, D14): a table of
 * messages and their templates, grouping of messages that differ only in varying tokens,
 * truncation at a character boundary, and the stable hash. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mutt/template.h"

static const char *mask(const char *msg)
{
    static char out[1024];
    size_t n = mutt_template_mask(msg, strlen(msg), out, sizeof out);
    assert_int_equal(n, strlen(out));
    return out;
}

struct mask_case {
    const char *in;
    const char *want;
};

static void test_template_masks_tokens_by_table(void **state)
{
    static const struct mask_case cases[] = {
        /* decimal numbers */
        {"link down on port 12", "link down on port <n>"},
        {"sshd[4567]: 3 failed logins", "sshd[<n>]: <n> failed logins"},
        {"temp -5 C", "temp -<n> C"},
        {"took 1.5s", "took <n>.<n>s"},
        /* digits inside words are masked too, so ports and interfaces group */
        {"eth0 down", "eth<n> down"},
        {"Interface GigabitEthernet1/0/24", "Interface GigabitEthernet<n>/<n>/<n>"},
        {"%LINK-3-UPDOWN: x", "%LINK-<n>-UPDOWN: x"},
        /* UUIDs first */
        {"job 123e4567-e89b-12d3-a456-426614174000 done", "job <uuid> done"},
        {"id=123E4567-E89B-12D3-A456-426614174000.", "id=<uuid>."},
        {"not 123e4567-e89b-12d3-a456-42661417400 uuid", "not <hex>-e<n>b-<n>d<n>-a<n>-<n> uuid"},
        /* 0x hex */
        {"addr 0x7ffe12ab fault", "addr <hex> fault"},
        {"flags 0XFF", "flags <hex>"},
        {"0x", "<n>x"},
        /* hex runs of >= 8 with a digit and a letter */
        {"session 5f3a9c2e1b closed", "session <hex> closed"},
        {"sha deadbeef99", "sha <hex>"},
        {"word deadbeef stays", "word deadbeef stays"},
        {"short ab12cd3 run", "short ab<n>cd<n> run"},
        {"counter 123456789", "counter <n>"},
        {"x5f3a9c2e1b", "x<n>f<n>a<n>c<n>e<n>b"},
        /* IPv4 */
        {"from 10.0.0.15 port 22", "from <ip> port <n>"},
        {"src outside:203.0.113.45/443", "src outside:<ip>/<n>"},
        {"peer 10.0.0.1.", "peer <ip>."},
        {"ver 1.2.3.4.5", "ver <n>.<n>.<n>.<n>.<n>"},
        {"bad 256.1.1.1", "bad <n>.<n>.<n>.<n>"},
        {"dns 2001:db8::1#53", "dns <n>:db<n>::<n>#<n>"},
        /* everything else unchanged */
        {"", ""},
        {"no digits here", "no digits here"},
        {"caf\xc3\xa9 9", "caf\xc3\xa9 <n>"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = mask(cases[i].in);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("mask('%s') = '%s', want '%s'", cases[i].in, got, cases[i].want);
    }
}

static void test_template_groups_messages_differing_in_varying_tokens(void **state)
{
    char a[256], b[256];
    const char *pairs[][2] = {
        {"link down on port 12", "link down on port 13"},
        {"Deny tcp src outside:203.0.113.45/5123 dst inside:192.168.10.5/443",
         "Deny tcp src outside:198.51.100.7/61000 dst inside:10.0.0.1/22"},
        {"pid 123 segfault at 0x7f00dead ip 00007f3a9c2e1b80",
         "pid 98765 segfault at 0x1 ip 00005581aa0b1c20"},
        {"eth0 carrier lost", "eth1 carrier lost"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        mutt_template_mask(pairs[i][0], strlen(pairs[i][0]), a, sizeof a);
        mutt_template_mask(pairs[i][1], strlen(pairs[i][1]), b, sizeof b);
        assert_string_equal(a, b);
        assert_true(mutt_template_hash(a, strlen(a)) == mutt_template_hash(b, strlen(b)));
    }
    mutt_template_mask("link up on port 12", 18, a, sizeof a);
    mutt_template_mask("link down on port 12", 20, b, sizeof b);
    assert_string_not_equal(a, b);
}

static void test_template_reads_only_len_bytes(void **state)
{
    char out[64];
    size_t n = mutt_template_mask("port 12 and more", 7, out, sizeof out);

    assert_int_equal(n, 8);
    assert_string_equal(out, "port <n>");
}

static void test_template_truncates_at_character_boundary(void **state)
{
    char out[16];
    /* "ab" + é (2 bytes) + "cdé": room for 7 bytes: "abécd" is 6, the next é would need 8 */
    const char *msg = "ab\xc3\xa9" "cd\xc3\xa9";
    size_t n = mutt_template_mask(msg, strlen(msg), out, 7);

    assert_int_equal(n, 6);
    assert_string_equal(out, "ab\xc3\xa9" "cd");
    /* a replacement is never cut in half */
    n = mutt_template_mask("port 12", 7, out, 8);
    assert_string_equal(out, "port ");
    assert_int_equal(n, 5);
    n = mutt_template_mask("port 12", 7, out, 9);
    assert_string_equal(out, "port <n>");
    assert_int_equal(mutt_template_mask("x", 1, out, 0), 0);
    assert_int_equal(mutt_template_mask("x", 1, out, 1), 0);
    assert_string_equal(out, "");
}

static void test_template_worst_case_fits_three_times_length(void **state)
{
    char out[3 * 9 + 1];
    size_t n = mutt_template_mask("1g1g1g1g1", 9, out, sizeof out);

    assert_string_equal(out, "<n>g<n>g<n>g<n>g<n>");
    assert_int_equal(n, strlen(out));
}

static void test_template_hash_is_stable_fnv1a(void **state)
{
    /* FNV-1a 64 reference values: "" is the offset basis, "a" is the published test vector */
    assert_true(mutt_template_hash("", 0) == 0xcbf29ce484222325ULL);
    assert_true(mutt_template_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(mutt_template_hash("foobar", 6) == 0x85944171f73967e8ULL);
    assert_true(mutt_template_hash("port <n>", 8) != mutt_template_hash("port <ip>", 9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_masks_tokens_by_table),
        cmocka_unit_test(test_template_groups_messages_differing_in_varying_tokens),
        cmocka_unit_test(test_template_reads_only_len_bytes),
        cmocka_unit_test(test_template_truncates_at_character_boundary),
        cmocka_unit_test(test_template_worst_case_fits_three_times_length),
        cmocka_unit_test(test_template_hash_is_stable_fnv1a),
    };
    return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
