/* Unit tests of the PostgreSQL TLS mapping (D55): DB_TLS_ENABLED, DB_TLS_VERIFY and
 * DB_TLS_CA_CERT_PATH -> mutt_pg_opts_from_config -> the sslmode/sslrootcert of mutt_pg_conninfo,
 * and the config errors for combinations that would verify nothing. No I/O: the config comes from an
 * explicit environment and the conninfo is only built, never used. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/pg.h"

/* Loads a config from `env` (NULL-terminated), asserts it has exactly `want_errors` errors and
 * returns the conninfo it produces (malloc'd), or NULL when errors were expected. */
static char *conninfo_for(const char *const *env, size_t want_errors, char *first_error, size_t len)
{
    struct mutt_config_report rep = {0};
    struct mutt_config *cfg = mutt_config_load("/dev/null", (char *const *)env, MUTT_ROLE_NONE, &rep);
    assert_non_null(cfg);
    for (size_t i = 0; i < rep.n_errors && rep.n_errors != want_errors; i++)
        print_message("  %s\n", rep.errors[i]);
    assert_int_equal(rep.n_errors, want_errors);
    if (first_error && rep.n_errors)
        snprintf(first_error, len, "%s", rep.errors[0]);
    char *ci = NULL;
    if (!want_errors) {
        struct mutt_pg_opts o;
        mutt_pg_opts_from_config(cfg, &o);
        ci = mutt_pg_conninfo(&o, "pw");
        assert_non_null(ci);
    }
    mutt_config_report_free(&rep);
    mutt_config_destroy(cfg);
    return ci;
}

static void assert_conninfo(const char *const *env, const char *sslmode, const char *rootcert)
{
    char *ci = conninfo_for(env, 0, NULL, 0);
    char want[256];
    snprintf(want, sizeof want, "sslmode='%s'", sslmode);
    if (!strstr(ci, want))
        print_message("conninfo: %s\n", ci);
    assert_non_null(strstr(ci, want));
    if (rootcert) {
        snprintf(want, sizeof want, "sslrootcert='%s'", rootcert);
        assert_non_null(strstr(ci, want));
    } else {
        assert_null(strstr(ci, "sslrootcert"));
    }
    free(ci);
}

static void test_pg_conninfo_tls_off_is_disable_whatever_the_ca(void **state)
{
    (void)state;
    const char *env[] = { "DB_TLS_CA_CERT_PATH=/etc/ca.pem", NULL };
    assert_conninfo(env, "disable", NULL);
}

static void test_pg_conninfo_tls_without_ca_is_require(void **state)
{
    (void)state;
    const char *env[] = { "DB_TLS_ENABLED=true", NULL };
    assert_conninfo(env, "require", NULL);
}

static void test_pg_conninfo_ca_file_defaults_to_verify_ca(void **state)
{
    (void)state;
    const char *env[] = { "DB_TLS_ENABLED=true", "DB_TLS_CA_CERT_PATH=/etc/ca.pem", NULL };
    assert_conninfo(env, "verify-ca", "/etc/ca.pem");
}

static void test_pg_conninfo_verify_full_is_verify_full(void **state)
{
    (void)state;
    const char *env[] = { "DB_TLS_ENABLED=true", "DB_TLS_CA_CERT_PATH=/etc/ca.pem", "DB_TLS_VERIFY=full", NULL };
    assert_conninfo(env, "verify-full", "/etc/ca.pem");
}

static void test_pg_conninfo_verify_none_leaves_the_ca_out(void **state)
{
    (void)state;
    /* libpq would verify against an existing sslrootcert even with sslmode=require */
    const char *env[] = { "DB_TLS_ENABLED=true", "DB_TLS_CA_CERT_PATH=/etc/ca.pem", "DB_TLS_VERIFY=none", NULL };
    assert_conninfo(env, "require", NULL);
}

static void test_pg_conninfo_verify_without_ca_or_tls_is_a_config_error(void **state)
{
    (void)state;
    char err[512];
    const char *no_ca[] = { "DB_TLS_ENABLED=true", "DB_TLS_VERIFY=full", NULL };
    conninfo_for(no_ca, 1, err, sizeof err);
    assert_non_null(strstr(err, "config error: DB_TLS_VERIFY=full: needs DB_TLS_CA_CERT_PATH"));
    const char *no_tls[] = { "DB_TLS_CA_CERT_PATH=/etc/ca.pem", "DB_TLS_VERIFY=ca", NULL };
    conninfo_for(no_tls, 1, err, sizeof err);
    assert_non_null(strstr(err, "config error: DB_TLS_VERIFY=ca: needs DB_TLS_ENABLED=true"));
    const char *bad[] = { "DB_TLS_ENABLED=true", "DB_TLS_VERIFY=strict", NULL };
    conninfo_for(bad, 1, err, sizeof err);
    assert_non_null(strstr(err, "config error: DB_TLS_VERIFY=strict: must be none, ca or full"));
}

/* D38: the lists go to libpq as its own multi-host parameters, one port per host. */
static void assert_has(const char *ci, const char *want)
{
    if (!strstr(ci, want))
        print_message("conninfo: %s\n  wanted: %s\n", ci, want);
    assert_non_null(strstr(ci, want));
}

static void test_pg_conninfo_host_list_with_one_port_repeats_it_and_asks_for_read_write(void **state)
{
    (void)state;
    const char *env[] = { "DB_HOST=10.0.0.1, 10.0.0.2", "DB_PORT=5433", NULL };
    char *ci = conninfo_for(env, 0, NULL, 0);
    assert_has(ci, "host='10.0.0.1,10.0.0.2'");
    assert_has(ci, "port='5433,5433'");
    assert_has(ci, "target_session_attrs='read-write'");
    free(ci);
}

static void test_pg_conninfo_port_list_pairs_with_hosts(void **state)
{
    (void)state;
    const char *env[] = { "DB_HOST=db1,db2,db3", "DB_PORT=5432,5433, 5434", "DB_TARGET_SESSION_ATTRS=primary", NULL };
    char *ci = conninfo_for(env, 0, NULL, 0);
    assert_has(ci, "host='db1,db2,db3'");
    assert_has(ci, "port='5432,5433,5434'");
    assert_has(ci, "target_session_attrs='primary'");
    free(ci);
}

static void test_pg_conninfo_one_host_keeps_libpq_default_session_attrs(void **state)
{
    (void)state;
    const char *env[] = { "DB_HOST=10.0.0.1", "DB_PORT=6543", NULL };
    char *ci = conninfo_for(env, 0, NULL, 0);
    assert_has(ci, "host='10.0.0.1'");
    assert_has(ci, "port='6543'");
    assert_null(strstr(ci, "target_session_attrs"));
    free(ci);
    const char *any[] = { "DB_HOST=a,b", "DB_TARGET_SESSION_ATTRS=any", NULL };
    ci = conninfo_for(any, 0, NULL, 0);
    assert_has(ci, "target_session_attrs='any'");
    free(ci);
}

static void test_pg_conninfo_mismatched_lists_are_one_error_naming_both_keys(void **state)
{
    (void)state;
    char err[512];
    const char *env[] = { "DB_HOST=a,b", "DB_PORT=5432,5433,5434", NULL };
    conninfo_for(env, 1, err, sizeof err);
    assert_string_equal(err, "config error: DB_PORT=5432,5433,5434: does not match DB_HOST=a,b: 2 hosts but 3 ports "
                             "(give one port for all hosts, or one per host)");
    const char *bad_port[] = { "DB_PORT=5432,x", NULL };
    conninfo_for(bad_port, 1, err, sizeof err);
    assert_string_equal(err, "config error: DB_PORT=5432,x: 'x' is not a port number (1..65535)");
    const char *bad_tsa[] = { "DB_TARGET_SESSION_ATTRS=writable", NULL };
    conninfo_for(bad_tsa, 1, err, sizeof err);
    assert_non_null(strstr(err, "config error: DB_TARGET_SESSION_ATTRS=writable: must be any, read-write"));
    const char *empty_host[] = { "DB_HOST=a,,b", NULL };
    conninfo_for(empty_host, 1, err, sizeof err);
    assert_string_equal(err, "config error: DB_HOST=a,,b: empty entry in the host list");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_conninfo_tls_off_is_disable_whatever_the_ca),
        cmocka_unit_test(test_pg_conninfo_tls_without_ca_is_require),
        cmocka_unit_test(test_pg_conninfo_ca_file_defaults_to_verify_ca),
        cmocka_unit_test(test_pg_conninfo_verify_full_is_verify_full),
        cmocka_unit_test(test_pg_conninfo_verify_none_leaves_the_ca_out),
        cmocka_unit_test(test_pg_conninfo_verify_without_ca_or_tls_is_a_config_error),
        cmocka_unit_test(test_pg_conninfo_host_list_with_one_port_repeats_it_and_asks_for_read_write),
        cmocka_unit_test(test_pg_conninfo_port_list_pairs_with_hosts),
        cmocka_unit_test(test_pg_conninfo_one_host_keeps_libpq_default_session_attrs),
        cmocka_unit_test(test_pg_conninfo_mismatched_lists_are_one_error_naming_both_keys),
    };
    return cmocka_run_group_tests_name("pg_conninfo", tests, NULL, NULL);
}
