/* Unit tests of the production compliance rules (src/domain/compliance.c, D24, D25, over the
 * values mutt_cli_compliance_input reads from the config): a compliant config has no violation,
 * and each rule fires on a config crafted to break it. The environment is passed explicitly to
 * mutt_config_load, so the process environment cannot leak in. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mutt/cli.h"
#include "mutt/compliance.h"
#include "mutt/config.h"

#define GOOD_KEY "0123456789abcdef0123456789abcdef"

/* A production-grade baseline; `extra` entries (NULL-terminated) are appended and win. */
static struct mutt_config *load(const char *const *extra)
{
    const char *base[] = {
        "DB_TLS_ENABLED=true",
        "REDIS_HOST=127.0.0.1",
        "MOOG_WEBHOOK_URL=https://moog.example.com/events",
        "VAULT_ADDR=https://vault.example.com:8200",
        "VAULT_ROLE_ID=role",
        "LOG_LEVEL=INFO",
        "APPROVAL_REQUIRED=config,rules",
    };
    char *envp[64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        envp[n++] = (char *)base[i];
    for (size_t i = 0; extra && extra[i]; i++)
        envp[n++] = (char *)extra[i];
    envp[n] = NULL;
    struct mutt_config_report rep = {0};
    struct mutt_config *cfg = mutt_config_load("/dev/null", envp, MUTT_ROLE_NONE, &rep);
    assert_non_null(cfg);
    for (size_t i = 0; i < rep.n_errors; i++)
        fprintf(stderr, "%s\n", rep.errors[i]);
    assert_int_equal(rep.n_errors, 0);
    mutt_config_report_free(&rep);
    return cfg;
}

struct found {
    struct mutt_compliance_violation v[MUTT_COMPLIANCE_MAX_VIOLATIONS];
    size_t n;
};

static struct found check(const char *const *extra)
{
    struct found f;
    struct mutt_config *cfg = load(extra);
    struct mutt_compliance_input in;
    mutt_cli_compliance_input(cfg, &in);
    f.n = mutt_compliance_check(&in, f.v, MUTT_COMPLIANCE_MAX_VIOLATIONS);
    mutt_config_destroy(cfg);
    return f;
}

/* The one violation of `rule` on `key`, failing the test if absent. */
static const struct mutt_compliance_violation *find(const struct found *f, const char *rule, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].rule_id, rule) == 0 && strcmp(f->v[i].key, key) == 0)
            return &f->v[i];
    fail_msg("no %s violation on %s", rule, key);
    return NULL;
}

static void test_compliance_production_grade_config_has_no_violation(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"INGEST_API_KEY=" GOOD_KEY, NULL});
    /* the key is in the environment here, but VAULT_ADDR is set: Vault supplies secrets */
    for (size_t i = 0; i < f.n; i++)
        fprintf(stderr, "unexpected %s %s\n", f.v[i].rule_id, f.v[i].key);
    assert_int_equal(f.n, 0);
    assert_false(mutt_compliance_has_critical(f.v, f.n));
}

static void test_compliance_sec001_database_without_tls_is_critical(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"DB_TLS_ENABLED=false", NULL});
    assert_int_equal(f.n, 1);
    const struct mutt_compliance_violation *v = find(&f, "SEC_001", "DB_TLS_ENABLED");
    assert_int_equal(v->severity, MUTT_COMPLIANCE_CRITICAL);
    assert_true(mutt_compliance_has_critical(f.v, f.n));
}

static void test_compliance_sec002_remote_redis_is_critical_loopback_is_not(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"REDIS_HOST=10.0.0.5", NULL});
    assert_int_equal(f.n, 1);
    assert_int_equal(find(&f, "SEC_002", "REDIS_HOST")->severity, MUTT_COMPLIANCE_CRITICAL);
    f = check((const char *const[]){"REDIS_HOST=redis.internal", NULL});
    assert_int_equal(find(&f, "SEC_002", "REDIS_HOST")->severity, MUTT_COMPLIANCE_CRITICAL);
    static const char *const loopbacks[] = {"REDIS_HOST=localhost", "REDIS_HOST=127.0.0.2", "REDIS_HOST=::1"};
    for (size_t i = 0; i < 3; i++) {
        f = check((const char *const[]){loopbacks[i], NULL});
        assert_int_equal(f.n, 0);
    }
}

/* D53: with sentinels, REDIS_HOST is ignored and the announced primary is judged; a statement
 * that the Redis network is trusted turns critical into a warning. */
static struct found check_primary(const char *const *extra, const char *primary)
{
    struct found f;
    struct mutt_config *cfg = load(extra);
    struct mutt_compliance_input in;
    mutt_cli_compliance_input(cfg, &in);
    in.redis_primary = primary;
    f.n = mutt_compliance_check(&in, f.v, MUTT_COMPLIANCE_MAX_VIOLATIONS);
    mutt_config_destroy(cfg);
    return f;
}

static void test_compliance_sec002_judges_the_primary_sentinels_announce(void **state)
{
    (void)state;
    const char *const sentinels[] = {"REDIS_HOST=10.9.9.9", "REDIS_SENTINELS=10.0.0.1:26379,10.0.0.2:26379", NULL};
    struct found f = check_primary(sentinels, "10.0.0.7");
    assert_int_equal(f.n, 1);
    const struct mutt_compliance_violation *v = find(&f, "SEC_002", "REDIS_SENTINELS");
    assert_int_equal(v->severity, MUTT_COMPLIANCE_CRITICAL);
    assert_non_null(strstr(v->message, "10.0.0.7"));
    assert_null(strstr(v->message, "10.9.9.9")); /* the ignored REDIS_HOST is not judged */
    f = check_primary(sentinels, "127.0.0.1");   /* a loopback primary (a local tunnel) passes */
    assert_int_equal(f.n, 0);
    f = check_primary(sentinels, NULL);          /* no sentinel answered: said, not critical */
    assert_int_equal(f.n, 1);
    assert_int_equal(find(&f, "SEC_002", "REDIS_SENTINELS")->severity, MUTT_COMPLIANCE_WARNING);
}

static void test_compliance_sec002_trusted_network_makes_a_remote_primary_a_warning(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"REDIS_HOST=10.0.0.5", "REDIS_TRUSTED_NETWORK=true", NULL});
    assert_int_equal(f.n, 1);
    assert_int_equal(find(&f, "SEC_002", "REDIS_HOST")->severity, MUTT_COMPLIANCE_WARNING);
    assert_false(mutt_compliance_has_critical(f.v, f.n));
    f = check_primary((const char *const[]){"REDIS_SENTINELS=10.0.0.1:26379", "REDIS_TRUSTED_NETWORK=true", NULL},
                      "10.0.0.7");
    assert_int_equal(f.n, 1);
    assert_int_equal(find(&f, "SEC_002", "REDIS_SENTINELS")->severity, MUTT_COMPLIANCE_WARNING);
}

static void test_compliance_sec003_plain_http_webhook_and_vault_are_critical(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"MOOG_WEBHOOK_URL=http://moog.example.com/events",
                                                 "VAULT_ADDR=http://vault:8200", NULL});
    assert_int_equal(f.n, 2);
    assert_int_equal(find(&f, "SEC_003", "MOOG_WEBHOOK_URL")->severity, MUTT_COMPLIANCE_CRITICAL);
    assert_int_equal(find(&f, "SEC_003", "VAULT_ADDR")->severity, MUTT_COMPLIANCE_CRITICAL);
}

static void test_compliance_sec004_short_api_keys_are_errors(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"INGEST_API_KEY=short", "WEBUI_API_KEY=0123456789abcdef0123456789abcde",
                                                 "WEBUI_READONLY_API_KEY=" GOOD_KEY, NULL});
    assert_int_equal(f.n, 2);
    const struct mutt_compliance_violation *v = find(&f, "SEC_004", "INGEST_API_KEY");
    assert_int_equal(v->severity, MUTT_COMPLIANCE_ERROR);
    assert_null(strstr(v->message, "short")); /* never the secret itself */
    find(&f, "SEC_004", "WEBUI_API_KEY");      /* 31 characters */
    assert_false(mutt_compliance_has_critical(f.v, f.n));
}

static void test_compliance_sec005_secrets_without_vault_are_critical(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"VAULT_ADDR=", "INGEST_API_KEY=" GOOD_KEY,
                                                 "DB_PASS_CURRENT=pw", "REDIS_SENTINEL_PASSWORD=spw", NULL});
    assert_int_equal(f.n, 3);
    const struct mutt_compliance_violation *v = find(&f, "SEC_005", "INGEST_API_KEY");
    assert_int_equal(v->severity, MUTT_COMPLIANCE_CRITICAL);
    assert_non_null(strstr(v->message, "environment"));
    find(&f, "SEC_005", "DB_PASS_CURRENT");
    find(&f, "SEC_005", "REDIS_SENTINEL_PASSWORD"); /* D53: a Vault key like the others */
}

static void test_compliance_sec006_query_string_keys_are_an_error(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"WEBUI_ALLOW_QUERY_KEY=true", NULL});
    assert_int_equal(f.n, 1);
    assert_int_equal(find(&f, "SEC_006", "WEBUI_ALLOW_QUERY_KEY")->severity, MUTT_COMPLIANCE_ERROR);
    assert_false(mutt_compliance_has_critical(f.v, f.n));
}

static void test_compliance_ops001_debug_logs_are_a_warning(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"LOG_LEVEL=DEBUG", NULL});
    assert_int_equal(f.n, 1);
    assert_int_equal(find(&f, "OPS_001", "LOG_LEVEL")->severity, MUTT_COMPLIANCE_WARNING);
    assert_false(mutt_compliance_has_critical(f.v, f.n));
}

static void test_compliance_ops002_approvals_off_is_a_warning(void **state)
{
    (void)state;
    struct found f = check((const char *const[]){"APPROVAL_REQUIRED=", NULL});
    assert_int_equal(f.n, 1);
    const struct mutt_compliance_violation *v = find(&f, "OPS_002", "APPROVAL_REQUIRED");
    assert_int_equal(v->severity, MUTT_COMPLIANCE_WARNING);
    assert_false(mutt_compliance_has_critical(f.v, f.n));
    f = check((const char *const[]){"APPROVAL_REQUIRED= , ", NULL});
    assert_int_equal(f.n, 1);
    f = check((const char *const[]){"APPROVAL_REQUIRED=config:moog_rate_limit", NULL});
    assert_int_equal(f.n, 0);
}

static void test_compliance_count_is_exact_even_past_max(void **state)
{
    (void)state;
    struct mutt_config *cfg = load((const char *const[]){"DB_TLS_ENABLED=false", "REDIS_HOST=10.1.1.1",
                                                         "LOG_LEVEL=DEBUG", NULL});
    struct mutt_compliance_input in;
    mutt_cli_compliance_input(cfg, &in);
    struct mutt_compliance_violation one[1];
    assert_int_equal(mutt_compliance_check(&in, one, 1), 3);
    assert_string_equal(one[0].rule_id, "SEC_001");
    assert_int_equal(mutt_compliance_check(&in, NULL, 0), 3);
    mutt_config_destroy(cfg);
}

static void test_compliance_severity_names(void **state)
{
    (void)state;
    assert_string_equal(mutt_compliance_severity_name(MUTT_COMPLIANCE_CRITICAL), "critical");
    assert_string_equal(mutt_compliance_severity_name(MUTT_COMPLIANCE_ERROR), "error");
    assert_string_equal(mutt_compliance_severity_name(MUTT_COMPLIANCE_WARNING), "warning");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compliance_production_grade_config_has_no_violation),
        cmocka_unit_test(test_compliance_sec001_database_without_tls_is_critical),
        cmocka_unit_test(test_compliance_sec002_remote_redis_is_critical_loopback_is_not),
        cmocka_unit_test(test_compliance_sec002_judges_the_primary_sentinels_announce),
        cmocka_unit_test(test_compliance_sec002_trusted_network_makes_a_remote_primary_a_warning),
        cmocka_unit_test(test_compliance_sec003_plain_http_webhook_and_vault_are_critical),
        cmocka_unit_test(test_compliance_sec004_short_api_keys_are_errors),
        cmocka_unit_test(test_compliance_sec005_secrets_without_vault_are_critical),
        cmocka_unit_test(test_compliance_sec006_query_string_keys_are_an_error),
        cmocka_unit_test(test_compliance_ops001_debug_logs_are_a_warning),
        cmocka_unit_test(test_compliance_ops002_approvals_off_is_a_warning),
        cmocka_unit_test(test_compliance_count_is_exact_even_past_max),
        cmocka_unit_test(test_compliance_severity_names),
    };
    return cmocka_run_group_tests_name("compliance", tests, NULL, NULL);
}
