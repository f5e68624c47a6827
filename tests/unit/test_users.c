/* Unit tests of WEBUI_USERS_FILE parsing and key lookup (domain/users.c, D43) and of the
 * APPROVAL_REQUIRED policy (core/approval.c, D47). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/approval.h"
#include "mutt/error.h"
#include "mutt/users.h"

static char alice_sha[65], bob_sha[65];

static void hex_sha(const char *key, char *out)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | sha256sum", key);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 65, p));
    pclose(p);
}

static int setup(void **state)
{
    (void)state;
    hex_sha("alice-key", alice_sha);
    hex_sha("bob-key", bob_sha);
    return 0;
}

static int parse(const char *text, struct mutt_users *u, char *err, size_t errlen)
{
    return mutt_users_parse(text, strlen(text), u, err, errlen);
}

static void test_users_parse_roles_comments_and_blank_lines(void **state)
{
    (void)state;
    struct mutt_users *u = malloc(sizeof *u);
    char text[512], err[200] = "";
    snprintf(text, sizeof text, "# operators\n\nalice admin %s\r\n  bob\tapprover %s   # second person\n", alice_sha,
             bob_sha);
    assert_int_equal(parse(text, u, err, sizeof err), 0);
    assert_int_equal(u->n, 2);
    assert_string_equal(u->users[0].name, "alice");
    assert_int_equal(u->users[0].role, MUTT_USER_ADMIN);
    assert_string_equal(u->users[1].name, "bob");
    assert_int_equal(u->users[1].role, MUTT_USER_APPROVER);
    const struct mutt_user *found = mutt_users_find(u, "bob-key", 7);
    assert_non_null(found);
    assert_string_equal(found->name, "bob");
    assert_string_equal(mutt_users_find(u, "alice-key", 9)->name, "alice");
    assert_null(mutt_users_find(u, "alice-ke", 8));
    assert_null(mutt_users_find(u, "", 0));
    assert_null(mutt_users_find(u, NULL, 0));
    free(u);
}

static void test_users_parse_errors_name_the_line(void **state)
{
    (void)state;
    struct mutt_users *u = malloc(sizeof *u);
    char text[512], err[200];
    snprintf(text, sizeof text, "alice admin %s\nbob root %s\n", alice_sha, bob_sha);
    assert_int_equal(parse(text, u, err, sizeof err), MUTT_EINVAL);
    assert_string_equal(err, "line 2: role must be admin, approver or readonly");
    assert_int_equal(u->n, 0);
    assert_int_equal(parse("# x\ncarol readonly abc\n", u, err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "line 2: key hash must be 64 hex digits"));
    assert_int_equal(parse("carol readonly\n", u, err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "line 1: expected 'name role key_sha256_hex'"));
    snprintf(text, sizeof text, "bad/name admin %s\n", alice_sha);
    assert_int_equal(parse(text, u, err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "line 1: bad user name"));
    snprintf(text, sizeof text, "alice admin %s\nalice readonly %s\n", alice_sha, bob_sha);
    assert_int_equal(parse(text, u, err, sizeof err), MUTT_EINVAL);
    assert_string_equal(err, "line 2: user alice listed twice");
    snprintf(text, sizeof text, "alice admin %s\nbob readonly %s\n", alice_sha, alice_sha);
    assert_int_equal(parse(text, u, err, sizeof err), MUTT_EINVAL);
    assert_string_equal(err, "line 2: same key hash as user alice");
    /* a hash with a non-hex character */
    char badhex[65];
    memcpy(badhex, alice_sha, 65);
    badhex[10] = 'g';
    snprintf(text, sizeof text, "alice admin %s\n", badhex);
    assert_int_equal(parse(text, u, err, sizeof err), MUTT_EINVAL);
    assert_int_equal(parse("", u, err, sizeof err), 0);
    assert_int_equal(u->n, 0);
    free(u);
}

static void test_users_uppercase_hex_is_accepted(void **state)
{
    (void)state;
    struct mutt_users *u = malloc(sizeof *u);
    char up[65], text[200], err[200];
    for (int i = 0; i < 65; i++)
        up[i] = (char)(alice_sha[i] >= 'a' && alice_sha[i] <= 'f' ? alice_sha[i] - 32 : alice_sha[i]);
    snprintf(text, sizeof text, "alice readonly %s", up); /* no final newline */
    assert_int_equal(parse(text, u, err, sizeof err), 0);
    assert_int_equal(mutt_users_find(u, "alice-key", 9)->role, MUTT_USER_READONLY);
    free(u);
}

static void test_approval_policy_items_and_matching(void **state)
{
    (void)state;
    struct mutt_approval_policy *p = malloc(sizeof *p);
    char err[200];
    assert_int_equal(mutt_approval_parse("", p, err, sizeof err), 0);
    assert_false(mutt_approval_enabled(p));
    assert_false(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, "moog_rate_limit"));
    assert_false(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, NULL));
    assert_int_equal(mutt_approval_parse(" rules , config:moog_rate_limit,config:alerter_queue_warn ", p, err,
                                         sizeof err), 0);
    assert_true(mutt_approval_enabled(p));
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_RULES, NULL));
    assert_false(mutt_approval_covers(p, MUTT_APPROVAL_TEAMS, NULL));
    assert_false(mutt_approval_covers(p, MUTT_APPROVAL_DEV_HOSTS, NULL));
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, "moog_rate_limit"));
    assert_false(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, "unhandled_threshold"));
    /* a legacy name in the list and in the write both resolve to the canonical key */
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, "alerter_queue_warn_threshold"));
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, "alerter_queue_warn"));
    /* a rollback (key unknown before the audit row is read) is covered when any key is */
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, NULL));
    assert_int_equal(mutt_approval_parse("config,teams,dev_hosts", p, err, sizeof err), 0);
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_CONFIG, "anything_at_all"));
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_TEAMS, NULL));
    assert_true(mutt_approval_covers(p, MUTT_APPROVAL_DEV_HOSTS, NULL));
    assert_false(mutt_approval_covers(p, MUTT_APPROVAL_RULES, NULL));
    free(p);
}

static void test_approval_policy_refuses_unknown_items(void **state)
{
    (void)state;
    struct mutt_approval_policy *p = malloc(sizeof *p);
    char err[200];
    assert_int_equal(mutt_approval_parse("rules,secrets", p, err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "unknown item 'secrets'"));
    assert_false(mutt_approval_enabled(p));
    assert_int_equal(mutt_approval_parse("config:no_such_key", p, err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "unknown dynamic config key"));
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_parse_roles_comments_and_blank_lines),
        cmocka_unit_test(test_users_parse_errors_name_the_line),
        cmocka_unit_test(test_users_uppercase_hex_is_accepted),
        cmocka_unit_test(test_approval_policy_items_and_matching),
        cmocka_unit_test(test_approval_policy_refuses_unknown_items),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
