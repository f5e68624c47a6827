/* Unit tests of REDIS_SENTINELS (D37): the list the adapter and the CLI walk, and the config
 * errors that name the key. Pure (the config is read from a temp file). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/redis.h"
#include "mutt/redis_sentinels.h"

static void test_sentinels_list_in_order_blanks_ignored(void **state)
{
    (void)state;
    struct mutt_redis_addr a[MUTT_REDIS_MAX_SENTINELS];
    char why[128] = "";
    assert_int_equal(mutt_redis_sentinels_parse(" 10.0.0.1:26380 , 10.0.0.2:26381,[::1]:5000", a,
                                                MUTT_REDIS_MAX_SENTINELS, why, sizeof why),
                     3);
    assert_string_equal(a[0].host, "10.0.0.1");
    assert_int_equal(a[0].port, 26380);
    assert_string_equal(a[1].host, "10.0.0.2");
    assert_int_equal(a[1].port, 26381);
    assert_string_equal(a[2].host, "::1");
    assert_int_equal(a[2].port, 5000);
    char buf[300];
    assert_string_equal(mutt_redis_addr_format(&a[2], buf, sizeof buf), "[::1]:5000");
    assert_string_equal(mutt_redis_addr_format(&a[0], buf, sizeof buf), "10.0.0.1:26380");
}

static void test_sentinels_empty_means_none(void **state)
{
    (void)state;
    struct mutt_redis_addr a[2];
    char why[128] = "";
    assert_int_equal(mutt_redis_sentinels_parse("", a, 2, why, sizeof why), 0);
    assert_int_equal(mutt_redis_sentinels_parse("  ", a, 2, why, sizeof why), 0);
    assert_int_equal(mutt_redis_sentinels_parse(NULL, a, 2, why, sizeof why), 0);
}

static void test_sentinels_bad_entries_refused_with_reason(void **state)
{
    (void)state;
    struct mutt_redis_addr a[2];
    struct {
        const char *list;
        const char *why;
    } cases[] = {
        {"10.0.0.1", "missing :port"},
        {"10.0.0.1:", "port must be"},
        {"10.0.0.1:0", "port must be"},
        {"10.0.0.1:65536", "port must be"},
        {"10.0.0.1:26x", "port must be"},
        {"10.0.0.1:1,,10.0.0.2:2", "empty entry"},
        {":26379", "empty host"},
        {"[::1]26379", "[ipv6]:port"},
        {"a:1,b:2,c:3", "more than 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char why[128] = "";
        assert_int_equal(mutt_redis_sentinels_parse(cases[i].list, a, 2, why, sizeof why), MUTT_EINVAL);
        if (!strstr(why, cases[i].why))
            fail_msg("%s: reason [%s] lacks [%s]", cases[i].list, why, cases[i].why);
    }
}

static struct mutt_config *load(const char *content, struct mutt_config_report *r)
{
    char path[] = "/tmp/mutt-sentinel-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    char *env[] = {NULL};
    struct mutt_config *cfg = mutt_config_load(path, env, MUTT_ROLE_ALERT, r);
    unlink(path);
    return cfg;
}

static bool report_has(const struct mutt_config_report *r, const char *needle)
{
    for (size_t i = 0; i < r->n_errors; i++)
        if (strstr(r->errors[i], needle))
            return true;
    return false;
}

static void test_config_bad_sentinel_list_names_the_key(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load("REDIS_SENTINELS=127.0.0.1:26390,127.0.0.1\n", &r);
    assert_true(report_has(&r, "config error: REDIS_SENTINELS=127.0.0.1:26390,127.0.0.1: '127.0.0.1': missing :port"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load("REDIS_SENTINELS=127.0.0.1:26390,127.0.0.1:x\n", &r);
    assert_true(report_has(&r, "config error: REDIS_SENTINELS=127.0.0.1:26390,127.0.0.1:x: '127.0.0.1:x': port"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

/* Sentinels set: the adapter gets the list, master and sentinel password; REDIS_HOST may hold
 * anything (it is ignored), and without sentinels nothing changes for the adapter. */
static void test_config_sentinels_reach_the_adapter(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load("REDIS_SENTINELS=127.0.0.1:26390, 127.0.0.1:26391\nREDIS_SENTINEL_PASSWORD=sp\n"
                                   "REDIS_HOST=unreachable.invalid\nREDIS_PASSWORD=dp\n",
                                   &r);
    assert_non_null(cfg);
    assert_int_equal(r.n_errors, 0);
    struct mutt_redis_opts o;
    mutt_redis_opts_from_config(cfg, &o);
    assert_string_equal(o.sentinels, "127.0.0.1:26390, 127.0.0.1:26391");
    assert_string_equal(o.sentinel_master, "mymaster");
    assert_string_equal(o.sentinel_pass, "sp");
    assert_string_equal(o.pass_current, "dp");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load("REDIS_HOST=10.1.2.3\n", &r);
    assert_int_equal(r.n_errors, 0);
    mutt_redis_opts_from_config(cfg, &o);
    assert_string_equal(o.sentinels, "");
    assert_string_equal(o.host, "10.1.2.3");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentinels_list_in_order_blanks_ignored),
        cmocka_unit_test(test_sentinels_empty_means_none),
        cmocka_unit_test(test_sentinels_bad_entries_refused_with_reason),
        cmocka_unit_test(test_config_bad_sentinel_list_names_the_key),
        cmocka_unit_test(test_config_sentinels_reach_the_adapter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
