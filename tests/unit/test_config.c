/* Unit tests of the static configuration (src/core/config.c, config_keys.c); the log line writer
 * has its own, test_log.c. Config files are temp files under /tmp (mkstemp); the environment is
 * always passed explicitly, so the process environment cannot leak into a result. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testenv.h"
#include "mutt/config.h"
#include "mutt/error.h"

static char *const no_env[] = { NULL };

/* ---------------------------------------------------------------------------------------------- */
/* helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static char tmp_paths[32][64];
static int n_tmp_paths;

/* Writes `content` to a fresh temp file; the path lives until teardown removes it. */
static const char *write_tmp(const char *content)
{
    assert_true(n_tmp_paths < 32);
    char *path = tmp_paths[n_tmp_paths++];
    snprintf(path, 64, "/tmp/mutt_cfg_test_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void rewrite(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int teardown_tmp(void **state)
{
    (void)state;
    for (int i = 0; i < n_tmp_paths; i++)
        unlink(tmp_paths[i]);
    n_tmp_paths = 0;
    return 0;
}

static struct mutt_config *load_text(const char *content, char *const *envp, unsigned roles,
                                     struct mutt_config_report *r)
{
    const char *path = write_tmp(content);
    struct mutt_config *cfg = mutt_config_load(path, envp, roles, r);
    assert_non_null(cfg);
    return cfg;
}

static size_t count_containing(char **lines, size_t n, const char *needle)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (strstr(lines[i], needle))
            c++;
    return c;
}

static void print_report(const struct mutt_config_report *r)
{
    for (size_t i = 0; i < r->n_errors; i++)
        print_message("  %s\n", r->errors[i]);
    for (size_t i = 0; i < r->n_warnings; i++)
        print_message("  %s\n", r->warnings[i]);
}

static void assert_no_problems(const struct mutt_config_report *r)
{
    if (r->n_errors || r->n_warnings)
        print_report(r);
    assert_int_equal(r->n_errors, 0);
    assert_int_equal(r->n_warnings, 0);
}

/* Every required key set, so roles=all validates. */
#define REQUIRED_ALL "INGEST_API_KEY=k1\nWEBUI_API_KEY=k2\nMOOG_WEBHOOK_URL=https://moog.example/x\n"

/* ---------------------------------------------------------------------------------------------- */
/* defaults and precedence                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void test_config_defaults_apply_when_file_is_empty(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", no_env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT), 8080);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_WEBUI_PORT), 8090);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_HEALTH_PORT), 8081);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_BIND_ADDR), "0.0.0.0");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_REDIS_HOST), "127.0.0.1");
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 6379);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_DB_NAME), "mutt");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_DB_USER), "mutt_user");
    assert_false(mutt_config_bool(cfg, MUTT_CFG_DB_TLS_ENABLED));
    assert_false(mutt_config_bool(cfg, MUTT_CFG_REDIS_TLS_ENABLED));
    assert_false(mutt_config_bool(cfg, MUTT_CFG_RATE_LIMIT_ENABLED));
    assert_true(mutt_config_bool(cfg, MUTT_CFG_CIRCUIT_BREAKER_ENABLED));
    assert_true(mutt_config_bool(cfg, MUTT_CFG_REMEDIATION_ENABLED));
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_MAX_BODY_BYTES), 1048576);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_EXPIRY), 30);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_MOOG_MAX_INFLIGHT), 32);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_MAX_INGEST_QUEUE_SIZE), 1000000);
    assert_true(mutt_config_double(cfg, MUTT_CFG_MOOG_RETRY_BASE_DELAY) == 1.0);
    assert_true(mutt_config_double(cfg, MUTT_CFG_MOOG_RETRY_MAX_DELAY) == 60.0);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME), "mutt:ingest_queue");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_MOOG_RETRY_KEY), "mutt:retry:moog");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_DEAD_LETTER_QUEUE), "mutt:dlq:dead");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_REQUIRED_FIELDS), "hostname,message,timestamp");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_VAULT_SECRET_ID_FILE), "/etc/mutt/secrets/vault_secret_id");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), "INFO");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_POD_NAME), "");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_MOOG_WEBHOOK_URL), "");
    assert_int_equal(mutt_config_source(cfg, MUTT_CFG_REDIS_PORT), MUTT_CFG_SRC_DEFAULT);
    assert_int_equal(mutt_config_roles(cfg), MUTT_ROLE_ALERT);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_every_default_in_the_table_validates(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text(REQUIRED_ALL, no_env, MUTT_ROLE_ALL, &r);
    assert_no_problems(&r);
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        assert_non_null(mutt_cfg_defs[k].name);
        assert_non_null(mutt_cfg_defs[k].group);
        assert_non_null(mutt_cfg_defs[k].description);
        assert_int_equal(mutt_config_find(mutt_cfg_defs[k].name), k);
    }
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_file_overrides_default(void **state)
{
    (void)state;
    struct mutt_config_report r;
    const char *path = write_tmp("REDIS_PORT=7000\nRATE_LIMIT_ENABLED=yes\n");
    struct mutt_config *cfg = mutt_config_load(path, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    assert_no_problems(&r);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 7000);
    assert_int_equal(mutt_config_source(cfg, MUTT_CFG_REDIS_PORT), MUTT_CFG_SRC_FILE);
    assert_true(mutt_config_bool(cfg, MUTT_CFG_RATE_LIMIT_ENABLED));
    char *real = realpath(path, NULL);
    assert_string_equal(mutt_config_path(cfg), real);
    free(real);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_env_overrides_file(void **state)
{
    (void)state;
    char *const env[] = { "PATH=/usr/bin", "REDIS_PORT=7100", "HOME=/root", NULL };
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("REDIS_PORT=7000\nREDIS_HOST=10.1.1.1\n", env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 7100);
    assert_int_equal(mutt_config_source(cfg, MUTT_CFG_REDIS_PORT), MUTT_CFG_SRC_ENV);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_REDIS_HOST), "10.1.1.1");
    assert_int_equal(mutt_config_source(cfg, MUTT_CFG_REDIS_HOST), MUTT_CFG_SRC_FILE);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_file_syntax_accepts_quotes_export_comments_and_blanks(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("# a comment\n"
                                        "\n"
                                        "   \t\n"
                                        "   # indented comment\n"
                                        "export REDIS_HOST = \"10.0.0.1\"\n"
                                        "DB_NAME='my db'\n"
                                        "  UNHANDLED_DEFAULT_TEAM =  OPS  \n"
                                        "MOOG_API_KEY=\"a#b c\"\n"
                                        "export\tDB_USER=u1\r\n"
                                        "METRICS_PREFIX=\"unbalanced\n",
                                        no_env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_REDIS_HOST), "10.0.0.1");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_DB_NAME), "my db");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_UNHANDLED_DEFAULT_TEAM), "OPS");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_MOOG_API_KEY), "a#b c");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_DB_USER), "u1");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_METRICS_PREFIX), "\"unbalanced");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_line_without_equals_is_an_error_with_its_line_number(void **state)
{
    (void)state;
    struct mutt_config_report r;
    const char *path = write_tmp("REDIS_PORT=7000\nthis is not a setting\n");
    struct mutt_config *cfg = mutt_config_load(path, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    assert_int_equal(r.n_errors, 1);
    char expect[128];
    snprintf(expect, sizeof expect, "config error: %s:2: expected KEY=VALUE", path);
    assert_string_equal(r.errors[0], expect);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

/* ---------------------------------------------------------------------------------------------- */
/* aliases                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* A value that is valid for `key` and differs from its default. */
static const char *alias_test_value(enum mutt_cfg_key key)
{
    switch (mutt_cfg_defs[key].type) {
    case MUTT_CFG_T_PORT:
    case MUTT_CFG_T_PORT_LIST: return "1234";
    case MUTT_CFG_T_INT: return key == MUTT_CFG_HEARTBEAT_EXPIRY ? "45" : "7";
    case MUTT_CFG_T_BOOL: return "true";
    case MUTT_CFG_T_DOUBLE: return "2.5";
    default: return "alias-value";
    }
}

static void test_config_every_alias_spelling_is_accepted_in_file_and_env(void **state)
{
    (void)state;
    int aliases_seen = 0;
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        for (size_t a = 0; a < 4 && mutt_cfg_defs[k].aliases[a]; a++) {
            const char *alias = mutt_cfg_defs[k].aliases[a];
            const char *value = alias_test_value((enum mutt_cfg_key)k);
            char line[256];
            snprintf(line, sizeof line, "%s=%s", alias, value);
            aliases_seen++;

            struct mutt_config_report r;
            char file_text[300];
            snprintf(file_text, sizeof file_text, "%s\n", line);
            struct mutt_config *cfg = load_text(file_text, no_env, MUTT_ROLE_ALERT, &r);
            assert_no_problems(&r);
            assert_string_equal(mutt_config_str(cfg, (enum mutt_cfg_key)k), value);
            assert_int_equal(mutt_config_source(cfg, (enum mutt_cfg_key)k), MUTT_CFG_SRC_FILE);
            assert_int_equal(mutt_config_find(alias), k);
            mutt_config_destroy(cfg);
            mutt_config_report_free(&r);

            char *const env[] = { line, NULL };
            cfg = load_text("", env, MUTT_ROLE_ALERT, &r);
            assert_no_problems(&r);
            assert_string_equal(mutt_config_str(cfg, (enum mutt_cfg_key)k), value);
            assert_int_equal(mutt_config_source(cfg, (enum mutt_cfg_key)k), MUTT_CFG_SRC_ENV);
            mutt_config_destroy(cfg);
            mutt_config_report_free(&r);
        }
    }
    /* the contract's list: ports x2, DB x5 (pass has 2), redis pass x2, moog timeout, heartbeat x4, poison */
    assert_int_equal(aliases_seen, 16);
}

static void test_config_two_aliases_with_different_values_is_an_error_naming_both(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("DB_HOST=10.0.0.1\nPOSTGRES_HOST=10.0.0.2\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "config error: DB_HOST=10.0.0.1: "));
    assert_non_null(strstr(r.errors[0], "POSTGRES_HOST=10.0.0.2"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_aliases_conflict_across_file_and_env(void **state)
{
    (void)state;
    char *const env[] = { "SERVER_PORT_INGESTOR=9001", NULL };
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("INGESTOR_PORT=9000\n", env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "INGESTOR_PORT=9000"));
    assert_non_null(strstr(r.errors[0], "SERVER_PORT_INGESTOR=9001"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_aliases_with_equal_values_or_same_spelling_override_are_fine(void **state)
{
    (void)state;
    char *const env[] = { "INGESTOR_PORT=9002", "SERVER_PORT_INGESTOR=9002", NULL };
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("INGESTOR_PORT=9000\nMOOG_TIMEOUT=12\nMOOG_WEBHOOK_TIMEOUT=12\n"
                                        "CIRCUIT_BREAKER_ENABLED=true\n",
                                        env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT), 9002);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_MOOG_TIMEOUT), 12);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_log_json_enabled_selects_json_format(void **state)
{
    (void)state;
    char *const env[] = { "LOG_JSON_ENABLED=true", NULL };
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_LOG_FORMAT), "json");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load_text("LOG_JSON_ENABLED=true\nLOG_FORMAT=text\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "LOG_JSON_ENABLED=true"));
    assert_non_null(strstr(r.errors[0], "LOG_FORMAT=text"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_vault_secrets_path_splits_into_mount_and_path(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("VAULT_SECRETS_PATH=kv/team/mutt\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_VAULT_MOUNT_PATH), "kv");
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_VAULT_SECRET_PATH), "team/mutt");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load_text("VAULT_SECRETS_PATH=noslash\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "config error: VAULT_SECRETS_PATH=noslash: "));
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_VAULT_MOUNT_PATH), "secret");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

/* ---------------------------------------------------------------------------------------------- */
/* validation                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

static const struct {
    const char *text;   /* file content */
    const char *prefix; /* the one error line starts with this */
} bad_values[] = {
    { "REDIS_DB=abc\n", "config error: REDIS_DB=abc: not an integer" },
    { "REDIS_DB=12x\n", "config error: REDIS_DB=12x: not an integer" },
    { "REDIS_DB=99999999999999999999\n", "config error: REDIS_DB=99999999999999999999: does not fit" },
    { "MIGRATE_ON_START=maybe\n", "config error: MIGRATE_ON_START=maybe: not a boolean" },
    { "REDIS_PORT=70000\n", "config error: REDIS_PORT=70000: port must be between 1 and 65535" },
    { "POSTGRES_PORT=0\n", "config error: POSTGRES_PORT=0: port must be between 1 and 65535" },
    { "WEBUI_PORT=http\n", "config error: WEBUI_PORT=http: not a port number" },
    { "RETENTION_HOUR=24\n", "config error: RETENTION_HOUR=24: must be between 0 and 23" },
    { "HEARTBEAT_INTERVAL=0\n", "config error: HEARTBEAT_INTERVAL=0: must be between 1 and 3600" },
    { "MAX_BATCH_EVENTS=0\n", "config error: MAX_BATCH_EVENTS=0: must be >= 1" },
    { "MOOG_RETRY_BASE_DELAY=fast\n", "config error: MOOG_RETRY_BASE_DELAY=fast: not a number" },
    { "LOG_LEVEL=VERBOSE\n", "config error: LOG_LEVEL=VERBOSE: must be one of DEBUG INFO WARNING ERROR CRITICAL" },
    { "LOG_FORMAT=xml\n", "config error: LOG_FORMAT=xml: must be json or text" },
    { "MUTT_ENV=staging\n", "config error: MUTT_ENV=staging: must be development or production" },
    { "BIND_ADDR=localhost\n", "config error: BIND_ADDR=localhost: must be an IPv4 or IPv6" },
    { "MOOG_WEBHOOK_URL=ftp://moog/x\n", "config error: MOOG_WEBHOOK_URL=ftp://moog/x: must be an http:// or https://" },
    { "ALERTER_JANITOR_TIMEOUT=10\n", "config error: HEARTBEAT_EXPIRY=10: must be greater than HEARTBEAT_INTERVAL" },
    { "DB_POOL_MIN_CONN=5\nDB_POOL_MAX_CONN=4\n", "config error: DB_POOL_MAX_CONN=4: must be >= DB_POOL_MIN_CONN" },
    { "TLS_CERT_FILE=/etc/c.pem\n", "config error: TLS_CERT_FILE=/etc/c.pem: TLS_KEY_FILE must be set too" },
    { "MUTT_ROLES=ingest,bogus\n", "config error: MUTT_ROLES=ingest,bogus: unknown role 'bogus'" },
    { "INGEST_QUEUE_NAME=\n", "config error: INGEST_QUEUE_NAME=: must not be empty" },
    { "POD_NAME=a b\n", "config error: POD_NAME=a b: may only contain" },
    { "LOG_JSON_ENABLED=perhaps\n", "config error: LOG_JSON_ENABLED=perhaps: not a boolean" },
    { "INGEST_MIN_REPLICAS=-1\n", "config error: INGEST_MIN_REPLICAS=-1: must be between 0 and 64" },
    { "INGEST_MIN_REPLICAS=1\nINGEST_TIMEOUT_MS=1000\n",
      "config error: INGEST_REPLICA_TIMEOUT_MS=1000: must be below INGEST_TIMEOUT_MS (1000)" },
    { "INGEST_MIN_REPLICAS=2\nINGEST_REPLICA_TIMEOUT_MS=3000\n",
      "config error: INGEST_REPLICA_TIMEOUT_MS=3000: must be below INGEST_TIMEOUT_MS (2000)" },
};

/* D37: the replica timeout only has to fit under INGEST_TIMEOUT_MS when WAIT is sent at all, so
 * configs written before INGEST_MIN_REPLICAS (INGEST_TIMEOUT_MS=1000) keep loading. */
static void test_config_replica_timeout_is_checked_only_when_replicas_are_asked(void **state)
{
    (void)state;
    static const char *const fine[] = {
        "INGEST_TIMEOUT_MS=1000\n",
        "INGEST_MIN_REPLICAS=0\nINGEST_TIMEOUT_MS=500\n",
        "INGEST_MIN_REPLICAS=1\nINGEST_TIMEOUT_MS=1001\n",
        "INGEST_MIN_REPLICAS=3\nINGEST_REPLICA_TIMEOUT_MS=50\nINGEST_TIMEOUT_MS=100\n",
    };
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        struct mutt_config_report r;
        struct mutt_config *cfg = load_text(fine[i], no_env, MUTT_ROLE_ALERT, &r);
        if (r.n_errors != 0) {
            print_message("case %zu: %s", i, fine[i]);
            print_report(&r);
        }
        assert_int_equal(r.n_errors, 0);
        mutt_config_destroy(cfg);
        mutt_config_report_free(&r);
    }
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_INGEST_MIN_REPLICAS), 0);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS), 1000);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_each_bad_value_gives_exactly_one_error_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        struct mutt_config_report r;
        struct mutt_config *cfg = load_text(bad_values[i].text, no_env, MUTT_ROLE_ALERT, &r);
        if (r.n_errors != 1 || strncmp(r.errors[0], bad_values[i].prefix, strlen(bad_values[i].prefix)) != 0) {
            print_message("case %zu: %s", i, bad_values[i].text);
            print_report(&r);
        }
        assert_int_equal(r.n_errors, 1);
        assert_memory_equal(r.errors[0], bad_values[i].prefix, strlen(bad_values[i].prefix));
        mutt_config_destroy(cfg);
        mutt_config_report_free(&r);
    }
}

static void test_config_rejected_value_keeps_the_default(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("REDIS_PORT=70000\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 6379);
    assert_int_equal(mutt_config_source(cfg, MUTT_CFG_REDIS_PORT), MUTT_CFG_SRC_DEFAULT);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_bool_spellings_are_case_insensitive(void **state)
{
    (void)state;
    static const char *const truthy[] = { "true", "TRUE", "1", "yes", "On" };
    static const char *const falsy[] = { "false", "False", "0", "NO", "off" };
    for (size_t i = 0; i < 5; i++) {
        char text[64];
        struct mutt_config_report r;
        snprintf(text, sizeof text, "RETENTION_DRY_RUN=%s\nCIRCUIT_BREAKER_ENABLED=%s\n", truthy[i], falsy[i]);
        struct mutt_config *cfg = load_text(text, no_env, MUTT_ROLE_ALERT, &r);
        assert_no_problems(&r);
        assert_true(mutt_config_bool(cfg, MUTT_CFG_RETENTION_DRY_RUN));
        assert_false(mutt_config_bool(cfg, MUTT_CFG_CIRCUIT_BREAKER_ENABLED));
        mutt_config_destroy(cfg);
        mutt_config_report_free(&r);
    }
}

static void test_config_secrets_are_masked_in_errors(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("DB_PASS=hunter2\nPOSTGRES_PASSWORD=swordfish\n"
                                        "REDIS_PASS=opensesame\n",
                                        no_env, MUTT_ROLE_ALERT, &r);
    char *const env[] = { "REDIS_PASSWORD=letmein", NULL };
    struct mutt_config_report r2;
    struct mutt_config *cfg2 = load_text("REDIS_PASS=opensesame\n", env, MUTT_ROLE_ALERT, &r2);
    assert_int_equal(r.n_errors, 1);
    assert_int_equal(r2.n_errors, 1);
    assert_string_equal(r.errors[0], "config error: DB_PASS=***: conflicts with POSTGRES_PASSWORD=*** "
                                     "(both set DB_PASS_CURRENT)");
    assert_null(strstr(r2.errors[0], "opensesame"));
    assert_null(strstr(r2.errors[0], "letmein"));
    assert_non_null(strstr(r2.errors[0], "REDIS_PASS=***"));
    assert_non_null(strstr(r2.errors[0], "REDIS_PASSWORD=***"));
    mutt_config_destroy(cfg);
    mutt_config_destroy(cfg2);
    mutt_config_report_free(&r);
    mutt_config_report_free(&r2);
}

static void test_config_url_credentials_are_redacted_in_errors(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("MOOG_WEBHOOK_URL=ftp://moog:hunter2@moog.example/x?token=t0k3n\n", no_env,
                                        MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "MOOG_WEBHOOK_URL=ftp://moog:***@moog.example/x?token=***: "));
    assert_null(strstr(r.errors[0], "hunter2"));
    assert_null(strstr(r.errors[0], "t0k3n"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_admin_and_readonly_keys_must_differ(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("WEBUI_API_KEY=samesecret\nWEBUI_READONLY_API_KEY=samesecret\n", no_env,
                                        MUTT_ROLE_WEB, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "config error: WEBUI_READONLY_API_KEY=***: must differ from WEBUI_API_KEY"));
    assert_null(strstr(r.errors[0], "samesecret"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
    cfg = load_text("WEBUI_API_KEY=adminsecret\nWEBUI_READONLY_API_KEY=rosecret\n", no_env, MUTT_ROLE_WEB, &r);
    assert_no_problems(&r);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_required_keys_follow_enabled_roles(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", no_env, MUTT_ROLE_FORWARD, &r);
    assert_int_equal(r.n_errors, 1);
    assert_string_equal(r.errors[0], "config error: MOOG_WEBHOOK_URL=: required when role forward is enabled");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load_text("", no_env, MUTT_ROLE_ALERT | MUTT_ROLE_REMEDIATE | MUTT_ROLE_RETENTION, &r);
    assert_no_problems(&r);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load_text("", no_env, MUTT_ROLE_INGEST | MUTT_ROLE_WEB, &r);
    assert_int_equal(r.n_errors, 2);
    assert_int_equal(count_containing(r.errors, r.n_errors, "INGEST_API_KEY=: required when role ingest"), 1);
    assert_int_equal(count_containing(r.errors, r.n_errors, "WEBUI_API_KEY=: required when role web"), 1);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_roles_come_from_mutt_roles_when_not_given(void **state)
{
    (void)state;
    char *const env[] = { "MUTT_ROLES=forward", NULL };
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", env, 0, &r);
    assert_int_equal(mutt_config_roles(cfg), MUTT_ROLE_FORWARD);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "MOOG_WEBHOOK_URL"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_secrets_are_not_required_when_vault_provides_them(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("VAULT_ADDR=https://vault.example:8200\nVAULT_ROLE_ID=r1\n", no_env,
                                        MUTT_ROLE_INGEST | MUTT_ROLE_WEB, &r);
    assert_no_problems(&r);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    cfg = load_text("VAULT_ADDR=https://vault.example:8200\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "config error: VAULT_ROLE_ID=: required when VAULT_ADDR is set"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_redis_tls_enabled_is_refused_with_stunnel_advice(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("REDIS_TLS_ENABLED=true\n", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "config error: REDIS_TLS_ENABLED=true: "));
    assert_non_null(strstr(r.errors[0], "hiredis 0.14"));
    assert_non_null(strstr(r.errors[0], "stunnel"));
    assert_non_null(strstr(r.errors[0], "REDIS_HOST"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_unknown_file_key_warns_with_nearest_key(void **state)
{
    (void)state;
    struct mutt_config_report r;
    const char *path = write_tmp("REDIS_PORT=7000\nREDIS_HSOT=10.0.0.1\nSERVER_PORT_INGESTR=1\nZQXWVUTSRPONMLK=1\n");
    struct mutt_config *cfg = mutt_config_load(path, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    assert_int_equal(r.n_errors, 0);
    assert_int_equal(r.n_warnings, 3);
    char expect[256];
    snprintf(expect, sizeof expect, "config warning: %s:2: unknown key REDIS_HSOT (did you mean REDIS_HOST?)", path);
    assert_string_equal(r.warnings[0], expect);
    snprintf(expect, sizeof expect,
             "config warning: %s:3: unknown key SERVER_PORT_INGESTR (did you mean SERVER_PORT_INGESTOR?)", path);
    assert_string_equal(r.warnings[1], expect);
    snprintf(expect, sizeof expect, "config warning: %s:4: unknown key ZQXWVUTSRPONMLK", path);
    assert_string_equal(r.warnings[2], expect);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 7000);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_unknown_environment_variables_are_ignored(void **state)
{
    (void)state;
    char *const env[] = { "REDIS_HSOT=1", "TERM=xterm", "NOEQUALS", "=weird", NULL };
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_unreadable_explicit_path_is_an_error(void **state)
{
    (void)state;
    struct mutt_config_report r;
    struct mutt_config *cfg = mutt_config_load("/nonexistent/dir/mutt.conf", no_env, MUTT_ROLE_ALERT, &r);
    assert_null(cfg);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "config error: cannot read config file /nonexistent/dir/mutt.conf"));
    mutt_config_report_free(&r);
}

static void test_config_default_path_is_local_mutt_conf_when_present(void **state)
{
    (void)state;
    if (access("/etc/mutt/mutt.conf", F_OK) == 0)
        MUTT_SKIP("system-mutt-conf", "/etc/mutt/mutt.conf exists and would win over ./mutt.conf");
    char dir[] = "/tmp/mutt_cfg_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char old_cwd[PATH_MAX];
    assert_non_null(getcwd(old_cwd, sizeof old_cwd));
    assert_int_equal(chdir(dir), 0);

    struct mutt_config_report r;
    struct mutt_config *cfg = mutt_config_load(NULL, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    assert_null(mutt_config_path(cfg));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    FILE *f = fopen("mutt.conf", "w");
    assert_non_null(f);
    fputs("REDIS_PORT=7300\n", f);
    fclose(f);
    cfg = mutt_config_load(NULL, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    assert_no_problems(&r);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 7300);
    assert_non_null(mutt_config_path(cfg));
    assert_non_null(strstr(mutt_config_path(cfg), "/mutt.conf"));
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);

    unlink("mutt.conf");
    assert_int_equal(chdir(old_cwd), 0);
    rmdir(dir);
}

/* ---------------------------------------------------------------------------------------------- */
/* reload, find/set                                                                               */
/* ---------------------------------------------------------------------------------------------- */

static void test_config_reload_safe_applies_log_level_but_not_redis_port(void **state)
{
    (void)state;
    struct mutt_config_report r;
    const char *path = write_tmp("LOG_LEVEL=INFO\nREDIS_PORT=6400\nMOOG_RATE_LIMIT=50\n");
    struct mutt_config *cfg = mutt_config_load(path, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    assert_no_problems(&r);
    mutt_config_report_free(&r);

    rewrite(path, "LOG_LEVEL=DEBUG\nREDIS_PORT=7000\nMOOG_RATE_LIMIT=80\n");
    assert_int_equal(mutt_config_reload_safe(cfg, &r), 0);
    assert_no_problems(&r);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), "DEBUG");
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_MOOG_RATE_LIMIT), 80);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 6400);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_reload_safe_changes_nothing_when_the_file_has_an_error(void **state)
{
    (void)state;
    struct mutt_config_report r;
    const char *path = write_tmp("LOG_LEVEL=INFO\n");
    struct mutt_config *cfg = mutt_config_load(path, no_env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    mutt_config_report_free(&r);

    rewrite(path, "LOG_LEVEL=DEBUG\nREDIS_PORT=abc\n");
    assert_int_equal(mutt_config_reload_safe(cfg, &r), MUTT_EINVAL);
    assert_int_equal(r.n_errors, 1);
    assert_non_null(strstr(r.errors[0], "REDIS_PORT=abc"));
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), "INFO");
    mutt_config_report_free(&r);

    unlink(path);
    assert_int_equal(mutt_config_reload_safe(cfg, &r), MUTT_EINVAL);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), "INFO");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_reload_safe_keeps_environment_precedence(void **state)
{
    (void)state;
    char *const env[] = { "LOG_LEVEL=ERROR", NULL };
    struct mutt_config_report r;
    const char *path = write_tmp("LOG_LEVEL=INFO\n");
    struct mutt_config *cfg = mutt_config_load(path, env, MUTT_ROLE_ALERT, &r);
    assert_non_null(cfg);
    mutt_config_report_free(&r);
    rewrite(path, "LOG_LEVEL=DEBUG\n");
    assert_int_equal(mutt_config_reload_safe(cfg, &r), 0);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), "ERROR");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

static void test_config_find_and_set_validate_names_and_values(void **state)
{
    (void)state;
    assert_int_equal(mutt_config_find("POSTGRES_HOST"), MUTT_CFG_DB_HOST);
    assert_int_equal(mutt_config_find("DB_HOST"), MUTT_CFG_DB_HOST);
    assert_int_equal(mutt_config_find("NO_SUCH_KEY"), MUTT_CFG__COUNT);
    assert_int_equal(mutt_config_find(NULL), MUTT_CFG__COUNT);

    struct mutt_config_report r;
    struct mutt_config *cfg = load_text("", no_env, MUTT_ROLE_ALERT, &r);
    assert_int_equal(mutt_config_set(cfg, MUTT_CFG_REDIS_PORT, "0"), MUTT_EINVAL);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 6379);
    assert_int_equal(mutt_config_set(cfg, MUTT_CFG_REDIS_PORT, "7001"), 0);
    assert_int_equal(mutt_config_int(cfg, MUTT_CFG_REDIS_PORT), 7001);
    assert_int_equal(mutt_config_set(cfg, MUTT_CFG_INGEST_API_KEY, "from-vault"), 0);
    assert_string_equal(mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY), "from-vault");
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
}

/* ---------------------------------------------------------------------------------------------- */
/* roles                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static void test_config_roles_parse_accepts_all_and_trimmed_lists(void **state)
{
    (void)state;
    unsigned roles = 0;
    assert_int_equal(mutt_roles_parse("all", &roles, NULL, 0), 0);
    assert_int_equal(roles, MUTT_ROLE_ALL);
    assert_int_equal(mutt_roles_parse(" ingest , web ", &roles, NULL, 0), 0);
    assert_int_equal(roles, MUTT_ROLE_INGEST | MUTT_ROLE_WEB);
    assert_int_equal(mutt_roles_parse("alert,forward,remediate,retention", &roles, NULL, 0), 0);
    assert_int_equal(roles, MUTT_ROLE_ALERT | MUTT_ROLE_FORWARD | MUTT_ROLE_REMEDIATE | MUTT_ROLE_RETENTION);
}

static void test_config_roles_parse_rejects_empty_and_unknown_names(void **state)
{
    (void)state;
    unsigned roles = 77;
    char bad[16];
    assert_int_equal(mutt_roles_parse("", &roles, bad, sizeof bad), MUTT_EINVAL);
    assert_int_equal(mutt_roles_parse("  ", &roles, bad, sizeof bad), MUTT_EINVAL);
    assert_int_equal(mutt_roles_parse("ingest,,web", &roles, bad, sizeof bad), MUTT_EINVAL);
    assert_int_equal(mutt_roles_parse("ingest, bogus ", &roles, bad, sizeof bad), MUTT_EINVAL);
    assert_string_equal(bad, "bogus");
    assert_int_equal(mutt_roles_parse("averyveryverylongrolename", &roles, bad, sizeof bad), MUTT_EINVAL);
    assert_string_equal(bad, "averyveryverylo"); /* truncated, still terminated */
    assert_int_equal(roles, 77);                 /* untouched on failure */
}

static void test_config_roles_format_lists_names_in_order(void **state)
{
    (void)state;
    char buf[128];
    assert_string_equal(mutt_roles_format(MUTT_ROLE_WEB | MUTT_ROLE_INGEST, buf, sizeof buf), "ingest,web");
    assert_string_equal(mutt_roles_format(MUTT_ROLE_ALL, buf, sizeof buf),
                        "ingest,alert,forward,remediate,web,retention");
    assert_string_equal(mutt_roles_format(0, buf, sizeof buf), "");
    char small[10];
    assert_string_equal(mutt_roles_format(MUTT_ROLE_ALL, small, sizeof small), "ingest");
    assert_string_equal(mutt_role_name(MUTT_ROLE_REMEDIATE), "remediate");
    assert_string_equal(mutt_role_name(1u << 20), "unknown");
}

/* ---------------------------------------------------------------------------------------------- */
/* mutt.conf.example                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(mem);
    fclose(f);
    return buf;
}

static void test_config_committed_example_equals_generated_text(void **state)
{
    (void)state;
    const char *root = getenv("MUTT_TEST_ROOT");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/mutt.conf.example", root && root[0] ? root : ".");
    char *committed = read_whole(path);
    if (!committed)
        print_message("cannot read %s: %s\n", path, strerror(errno));
    assert_non_null(committed);

    char *generated = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&generated, &len);
    mutt_config_write_example(mem);
    fclose(mem);
    if (strcmp(committed, generated) != 0)
        print_message("mutt.conf.example is stale: regenerate it with mutt_config_write_example()\n");
    assert_string_equal(committed, generated);

    /* and every key appears with its default, commented out */
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        char line[256];
        snprintf(line, sizeof line, "\n#%s=%s\n", mutt_cfg_defs[k].name,
                 mutt_cfg_defs[k].default_value ? mutt_cfg_defs[k].default_value : "");
        assert_non_null(strstr(generated, line));
    }
    free(committed);
    free(generated);
}

static void test_config_example_file_loads_without_problems(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    mutt_config_write_example(mem);
    fclose(mem);
    /* uncomment every KEY=default line: the defaults must round-trip through the parser */
    char *p = text;
    while ((p = strstr(p, "\n#"))) {
        if (p[2] >= 'A' && p[2] <= 'Z' && strchr(p + 2, '=') && strchr(p + 2, '=') < strchr(p + 2, '\n'))
            p[1] = ' ';
        p += 2;
    }
    struct mutt_config_report r;
    struct mutt_config *cfg = load_text(text, no_env, MUTT_ROLE_ALERT, &r);
    assert_no_problems(&r);
    assert_int_equal(mutt_config_source(cfg, MUTT_CFG_REDIS_PORT), MUTT_CFG_SRC_FILE);
    mutt_config_destroy(cfg);
    mutt_config_report_free(&r);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_config_defaults_apply_when_file_is_empty, teardown_tmp),
        cmocka_unit_test_teardown(test_config_every_default_in_the_table_validates, teardown_tmp),
        cmocka_unit_test_teardown(test_config_file_overrides_default, teardown_tmp),
        cmocka_unit_test_teardown(test_config_env_overrides_file, teardown_tmp),
        cmocka_unit_test_teardown(test_config_file_syntax_accepts_quotes_export_comments_and_blanks, teardown_tmp),
        cmocka_unit_test_teardown(test_config_line_without_equals_is_an_error_with_its_line_number, teardown_tmp),
        cmocka_unit_test_teardown(test_config_every_alias_spelling_is_accepted_in_file_and_env, teardown_tmp),
        cmocka_unit_test_teardown(test_config_two_aliases_with_different_values_is_an_error_naming_both,
                                  teardown_tmp),
        cmocka_unit_test_teardown(test_config_aliases_conflict_across_file_and_env, teardown_tmp),
        cmocka_unit_test_teardown(test_config_aliases_with_equal_values_or_same_spelling_override_are_fine,
                                  teardown_tmp),
        cmocka_unit_test_teardown(test_config_log_json_enabled_selects_json_format, teardown_tmp),
        cmocka_unit_test_teardown(test_config_vault_secrets_path_splits_into_mount_and_path, teardown_tmp),
        cmocka_unit_test_teardown(test_config_each_bad_value_gives_exactly_one_error_line, teardown_tmp),
        cmocka_unit_test_teardown(test_config_replica_timeout_is_checked_only_when_replicas_are_asked, teardown_tmp),
        cmocka_unit_test_teardown(test_config_rejected_value_keeps_the_default, teardown_tmp),
        cmocka_unit_test_teardown(test_config_bool_spellings_are_case_insensitive, teardown_tmp),
        cmocka_unit_test_teardown(test_config_secrets_are_masked_in_errors, teardown_tmp),
        cmocka_unit_test_teardown(test_config_url_credentials_are_redacted_in_errors, teardown_tmp),
        cmocka_unit_test_teardown(test_config_admin_and_readonly_keys_must_differ, teardown_tmp),
        cmocka_unit_test_teardown(test_config_required_keys_follow_enabled_roles, teardown_tmp),
        cmocka_unit_test_teardown(test_config_roles_come_from_mutt_roles_when_not_given, teardown_tmp),
        cmocka_unit_test_teardown(test_config_secrets_are_not_required_when_vault_provides_them, teardown_tmp),
        cmocka_unit_test_teardown(test_config_redis_tls_enabled_is_refused_with_stunnel_advice, teardown_tmp),
        cmocka_unit_test_teardown(test_config_unknown_file_key_warns_with_nearest_key, teardown_tmp),
        cmocka_unit_test_teardown(test_config_unknown_environment_variables_are_ignored, teardown_tmp),
        cmocka_unit_test_teardown(test_config_unreadable_explicit_path_is_an_error, teardown_tmp),
        cmocka_unit_test_teardown(test_config_default_path_is_local_mutt_conf_when_present, teardown_tmp),
        cmocka_unit_test_teardown(test_config_reload_safe_applies_log_level_but_not_redis_port, teardown_tmp),
        cmocka_unit_test_teardown(test_config_reload_safe_changes_nothing_when_the_file_has_an_error,
                                  teardown_tmp),
        cmocka_unit_test_teardown(test_config_reload_safe_keeps_environment_precedence, teardown_tmp),
        cmocka_unit_test_teardown(test_config_find_and_set_validate_names_and_values, teardown_tmp),
        cmocka_unit_test(test_config_roles_parse_accepts_all_and_trimmed_lists),
        cmocka_unit_test(test_config_roles_parse_rejects_empty_and_unknown_names),
        cmocka_unit_test(test_config_roles_format_lists_names_in_order),
        cmocka_unit_test(test_config_committed_example_equals_generated_text),
        cmocka_unit_test_teardown(test_config_example_file_loads_without_problems, teardown_tmp),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
