/* Unit tests for the dynamic-config schema (src/core/dynconfig_schema.c): table sanity,
 * validation of writes (W41), the env > file > default fallback through the static twin, and
 * the cache's behaviour with no Redis at all. No services needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"

#include "capture.h"
#include "testenv.h"

/* ---- schema table ------------------------------------------------------------------------- */

static void test_dynconfig_schema_every_row_has_name_description_and_unit(void **state)
{
    (void)state;
    assert_true(mutt_dynconfig_count() > 0);
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        assert_non_null(def);
        assert_non_null(def->name);
        assert_true(strlen(def->name) > 0);
        assert_non_null(def->description);
        assert_true(strlen(def->description) > 10);
        assert_non_null(def->unit);
        assert_non_null(def->default_value);
    }
    assert_null(mutt_dynconfig_def_at(mutt_dynconfig_count()));
}

static void test_dynconfig_schema_names_are_unique_and_findable(void **state)
{
    (void)state;
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        assert_ptr_equal(mutt_dynconfig_def_find(def->name), def);
        for (size_t j = i + 1; j < mutt_dynconfig_count(); j++)
            assert_string_not_equal(def->name, mutt_dynconfig_def_at(j)->name);
    }
    assert_null(mutt_dynconfig_def_find("no_such_key"));
    assert_null(mutt_dynconfig_def_find(NULL));
}

/* The enum and the table must not drift: the build checks the count, this the order. */
static void test_dynconfig_schema_row_of_each_id_has_that_id(void **state)
{
    (void)state;
    assert_int_equal(mutt_dynconfig_count(), MUTT_DYN_COUNT_);
    for (int id = 0; id < MUTT_DYN_COUNT_; id++)
        assert_int_equal(mutt_dynconfig_def_at((size_t)id)->id, id);
    /* Spot checks that ids name the row of the same name (first, middle, SLO, last). */
    assert_string_equal(mutt_dynconfig_def_at(MUTT_DYN_MAX_INGEST_QUEUE_SIZE)->name, "max_ingest_queue_size");
    assert_string_equal(mutt_dynconfig_def_at(MUTT_DYN_ALERTER_DEFER_SLEEP_MS)->name, "alerter_defer_sleep_ms");
    assert_string_equal(mutt_dynconfig_def_at(MUTT_DYN_REMEDIATION_ENABLED)->name, "remediation_enabled");
    assert_string_equal(mutt_dynconfig_def_at(MUTT_DYN_SLO_FORWARDER_LATENCY_P99_UPPER_BOUND_CRITICAL)->name,
                        "slo_forwarder_latency_p99_upper_bound_critical");
    assert_string_equal(mutt_dynconfig_def_at(MUTT_DYN_SLO_ALERTER_CACHE_RELOAD_SUCCESS_BURN_RATE_CRITICAL)->name,
                        "slo_alerter_cache_reload_success_burn_rate_critical");
}

static void test_dynconfig_schema_defaults_validate_against_their_own_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        char err[256] = "";
        char norm[256];
        int rc = mutt_dynconfig_normalize(def, def->default_value, norm, sizeof(norm), err, sizeof(err));
        if (rc != 0)
            fail_msg("default of %s refused: %s", def->name, err);
        /* Defaults are written in their canonical spelling, so GET /config shows them as stored. */
        assert_string_equal(norm, def->default_value);
        assert_int_equal(mutt_dynconfig_validate(def->name, def->default_value, NULL, 0), 0);
    }
}

static void test_dynconfig_schema_enum_rows_list_their_values_and_default_is_one(void **state)
{
    (void)state;
    size_t enums = 0;
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        if (def->type != MUTT_DYN_ENUM) {
            assert_null(def->allowed);
            continue;
        }
        enums++;
        assert_non_null(def->allowed);
        assert_non_null(def->allowed[0]);
        bool found = false;
        for (const char *const *a = def->allowed; *a; a++)
            found = found || strcmp(*a, def->default_value) == 0;
        assert_true(found);
    }
    assert_true(enums >= 1);
}

static void test_dynconfig_schema_numeric_rows_have_a_range(void **state)
{
    (void)state;
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        if (def->type == MUTT_DYN_INT || def->type == MUTT_DYN_DOUBLE)
            assert_true(def->min <= def->max);
    }
}

/* The keys the contract names, with the defaults it fixes (CONTRACT §2, §4; reference §3.12). */
static void test_dynconfig_schema_holds_every_contract_key_with_its_default(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum mutt_dyn_type type;
        const char *dflt;
    } want[] = {
        { "max_ingest_queue_size", MUTT_DYN_INT, "1000000" },
        { "ingest_max_rate", MUTT_DYN_INT, "1000" },
        { "ingest_rate_window", MUTT_DYN_INT, "60" },
        { "cache_reload_interval", MUTT_DYN_INT, "300" },
        { "unhandled_threshold", MUTT_DYN_INT, "100" },
        { "unhandled_expiry_seconds", MUTT_DYN_INT, "86400" },
        { "alerter_queue_warn_threshold", MUTT_DYN_INT, "1000" },
        { "alerter_queue_shed_threshold", MUTT_DYN_INT, "2000" },
        { "alerter_shed_mode", MUTT_DYN_ENUM, "defer" },
        { "alerter_defer_sleep_ms", MUTT_DYN_INT, "250" },
        { "moog_rate_limit", MUTT_DYN_INT, "50" },
        { "moog_rate_period", MUTT_DYN_INT, "1" },
        { "circuit_breaker_threshold", MUTT_DYN_INT, "10" },
        { "circuit_breaker_timeout", MUTT_DYN_INT, "300" },
        { "remediation_enabled", MUTT_DYN_BOOL, "true" },
        { "remediation_interval", MUTT_DYN_INT, "300" },
        { "remediation_batch_size", MUTT_DYN_INT, "10" },
        { "max_poison_retries", MUTT_DYN_INT, "3" },
        { "moog_max_inflight", MUTT_DYN_INT, "32" },
        { "slo_ingestor_latency_p99_upper_bound_warning", MUTT_DYN_DOUBLE, "0.75" },
        { "slo_forwarder_latency_p99_upper_bound_critical", MUTT_DYN_DOUBLE, "5.0" },
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(want[i].name);
        if (!def)
            fail_msg("missing dynamic key %s", want[i].name);
        assert_int_equal(def->type, want[i].type);
        assert_string_equal(def->default_value, want[i].dflt);
    }
}

static void test_dynconfig_schema_has_window_and_burn_rates_for_six_slos(void **state)
{
    (void)state;
    static const char *const slos[] = { "ingestor_availability", "ingestor_latency_p99", "forwarder_availability",
                                        "forwarder_latency_p99", "alerter_processing_success",
                                        "alerter_cache_reload_success" };
    static const char *const suffixes[] = { "window_hours", "burn_rate_warning", "burn_rate_critical" };
    for (size_t i = 0; i < 6; i++) {
        for (size_t j = 0; j < 3; j++) {
            char name[128];
            snprintf(name, sizeof(name), "slo_%s_%s", slos[i], suffixes[j]);
            const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(name);
            if (!def)
                fail_msg("missing SLO key %s", name);
            assert_int_equal(def->type, j == 0 ? MUTT_DYN_INT : MUTT_DYN_DOUBLE);
        }
    }
    assert_string_equal(mutt_dynconfig_def_find("slo_forwarder_availability_window_hours")->default_value, "24");
    assert_string_equal(mutt_dynconfig_def_find("slo_alerter_processing_success_burn_rate_critical")->default_value,
                        "10");
}

/* One source of truth per default: a dynamic key and its static twin agree when nothing is set. */
static void test_dynconfig_schema_defaults_match_their_static_twins(void **state)
{
    (void)state;
    size_t twins = 0;
    for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        if (def->static_twin == MUTT_CFG__COUNT)
            continue;
        twins++;
        const struct mutt_cfg_def *sdef = &mutt_cfg_defs[def->static_twin];
        assert_non_null(sdef->default_value);
        char norm[64];
        assert_int_equal(mutt_dynconfig_normalize(def, sdef->default_value, norm, sizeof(norm), NULL, 0), 0);
        if (strcmp(norm, def->default_value) != 0)
            fail_msg("%s default %s differs from %s default %s", def->name, def->default_value, sdef->name,
                     sdef->default_value);
    }
    assert_true(twins >= 15);
    assert_int_equal(mutt_dynconfig_def_find("moog_rate_limit")->static_twin, MUTT_CFG_MOOG_RATE_LIMIT);
    assert_int_equal(mutt_dynconfig_def_find("alerter_shed_mode")->static_twin, MUTT_CFG__COUNT);
}

static void test_dynconfig_schema_names_types_and_sources(void **state)
{
    (void)state;
    assert_string_equal(mutt_dynconfig_type_name(MUTT_DYN_INT), "int");
    assert_string_equal(mutt_dynconfig_type_name(MUTT_DYN_DOUBLE), "double");
    assert_string_equal(mutt_dynconfig_type_name(MUTT_DYN_BOOL), "bool");
    assert_string_equal(mutt_dynconfig_type_name(MUTT_DYN_STRING), "string");
    assert_string_equal(mutt_dynconfig_type_name(MUTT_DYN_ENUM), "enum");
    assert_string_equal(mutt_dynconfig_source_name(MUTT_DYN_SRC_REDIS), "redis");
    assert_string_equal(mutt_dynconfig_source_name(MUTT_DYN_SRC_ENV), "env");
    assert_string_equal(mutt_dynconfig_source_name(MUTT_DYN_SRC_FILE), "file");
    assert_string_equal(mutt_dynconfig_source_name(MUTT_DYN_SRC_DEFAULT), "default");
}

/* ---- validation (W41) --------------------------------------------------------------------- */

static void test_dynconfig_validate_refuses_unknown_key_naming_it(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(mutt_dynconfig_validate("max_ingest_queue_sise", "10", err, sizeof(err)), MUTT_ENOTFOUND);
    assert_non_null(strstr(err, "max_ingest_queue_sise"));
    assert_non_null(strstr(err, "unknown"));
    assert_int_equal(mutt_dynconfig_validate(NULL, "10", NULL, 0), MUTT_ENOTFOUND);
}

static void test_dynconfig_validate_refuses_non_integers(void **state)
{
    (void)state;
    static const char *const bad[] = { "abc", "12abc", " 12", "12 ", "0x10", "", "1.5", "+", "-",
                                       "99999999999999999999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        int rc = mutt_dynconfig_validate("max_ingest_queue_size", bad[i], err, sizeof(err));
        if (rc != MUTT_EINVAL)
            fail_msg("'%s' accepted as an integer", bad[i]);
        assert_non_null(strstr(err, "max_ingest_queue_size"));
    }
    char err[256] = "";
    mutt_dynconfig_validate("moog_rate_limit", "abc", err, sizeof(err));
    assert_string_equal(err, "moog_rate_limit=abc: not an integer");
}

static void test_dynconfig_validate_refuses_values_outside_the_range(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(mutt_dynconfig_validate("moog_max_inflight", "0", err, sizeof(err)), MUTT_EINVAL);
    assert_non_null(strstr(err, "moog_max_inflight=0"));
    assert_non_null(strstr(err, "below the minimum 1"));
    assert_int_equal(mutt_dynconfig_validate("moog_max_inflight", "-5", err, sizeof(err)), MUTT_EINVAL);
    assert_int_equal(mutt_dynconfig_validate("ingest_rate_window", "86401", err, sizeof(err)), MUTT_EINVAL);
    assert_non_null(strstr(err, "above the maximum 86400"));
}

static void test_dynconfig_validate_accepts_the_range_edges(void **state)
{
    (void)state;
    assert_int_equal(mutt_dynconfig_validate("ingest_rate_window", "1", NULL, 0), 0);
    assert_int_equal(mutt_dynconfig_validate("ingest_rate_window", "86400", NULL, 0), 0);
    assert_int_equal(mutt_dynconfig_validate("ingest_rate_window", "+60", NULL, 0), 0);
    char norm[32];
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find("ingest_rate_window");
    assert_int_equal(mutt_dynconfig_normalize(def, "+060", norm, sizeof(norm), NULL, 0), 0);
    assert_string_equal(norm, "60");
}

static void test_dynconfig_validate_enum_accepts_listed_values_only(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(mutt_dynconfig_validate("alerter_shed_mode", "defer", NULL, 0), 0);
    assert_int_equal(mutt_dynconfig_validate("alerter_shed_mode", "dlq", NULL, 0), 0);
    assert_int_equal(mutt_dynconfig_validate("alerter_shed_mode", "drop", err, sizeof(err)), MUTT_EINVAL);
    assert_string_equal(err, "alerter_shed_mode=drop: not one of: defer dlq");
    assert_int_equal(mutt_dynconfig_validate("alerter_shed_mode", "", NULL, 0), MUTT_EINVAL);
    char norm[32];
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find("alerter_shed_mode");
    assert_int_equal(mutt_dynconfig_normalize(def, "DLQ", norm, sizeof(norm), NULL, 0), 0);
    assert_string_equal(norm, "dlq");
}

static void test_dynconfig_validate_bool_accepts_common_spellings(void **state)
{
    (void)state;
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find("remediation_enabled");
    static const char *const yes[] = { "true", "TRUE", "1", "yes", "On" };
    static const char *const no[] = { "false", "False", "0", "no", "OFF" };
    char norm[16];
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(mutt_dynconfig_normalize(def, yes[i], norm, sizeof(norm), NULL, 0), 0);
        assert_string_equal(norm, "true");
        assert_int_equal(mutt_dynconfig_normalize(def, no[i], norm, sizeof(norm), NULL, 0), 0);
        assert_string_equal(norm, "false");
    }
    char err[256] = "";
    assert_int_equal(mutt_dynconfig_validate("remediation_enabled", "maybe", err, sizeof(err)), MUTT_EINVAL);
    assert_non_null(strstr(err, "remediation_enabled=maybe: not a boolean"));
    assert_int_equal(mutt_dynconfig_validate("remediation_enabled", "2", NULL, 0), MUTT_EINVAL);
}

static void test_dynconfig_validate_double_refuses_nan_inf_and_text(void **state)
{
    (void)state;
    const char *key = "slo_ingestor_availability_burn_rate_warning";
    assert_int_equal(mutt_dynconfig_validate(key, "2.5", NULL, 0), 0);
    assert_int_equal(mutt_dynconfig_validate(key, "3", NULL, 0), 0);
    assert_int_equal(mutt_dynconfig_validate(key, "1e2", NULL, 0), 0);
    static const char *const bad[] = { "nan", "inf", "-inf", "1e999", "abc", "2.5x", " 2", "0x1p3", "", "-1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mutt_dynconfig_validate(key, bad[i], NULL, 0) != MUTT_EINVAL)
            fail_msg("'%s' accepted as a number", bad[i]);
}

static void test_dynconfig_validate_refuses_missing_and_oversized_values(void **state)
{
    (void)state;
    char err[256] = "";
    assert_int_equal(mutt_dynconfig_validate("moog_rate_limit", NULL, err, sizeof(err)), MUTT_EINVAL);
    assert_non_null(strstr(err, "moog_rate_limit"));
    char big[MUTT_DYNCONFIG_MAX_VALUE + 2];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(mutt_dynconfig_validate("moog_rate_limit", big, err, sizeof(err)), MUTT_EINVAL);
    assert_non_null(strstr(err, "too long"));
}

/* ---- fallback: env > file > default ------------------------------------------------------- */

struct cfg_fixture {
    char path[64];
    struct mutt_config *cfg;
};

static struct mutt_config *load_cfg(struct cfg_fixture *fx, const char *file_text, char *const *envp)
{
    snprintf(fx->path, sizeof(fx->path), "/tmp/mutt-dyn-test-XXXXXX");
    int fd = mkstemp(fx->path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, file_text, strlen(file_text)), (ssize_t)strlen(file_text));
    close(fd);
    struct mutt_config_report report = { 0 };
    fx->cfg = mutt_config_load(fx->path, envp, MUTT_ROLE_RETENTION, &report);
    size_t errors = report.n_errors;
    mutt_config_report_free(&report);
    assert_int_equal(errors, 0);
    assert_non_null(fx->cfg);
    return fx->cfg;
}

static void unload_cfg(struct cfg_fixture *fx)
{
    mutt_config_destroy(fx->cfg);
    unlink(fx->path);
}

static void fallback_of(const char *key, const struct mutt_config *cfg, char *buf, size_t len,
                        enum mutt_dyn_source *src, int want_rc)
{
    assert_int_equal(mutt_dynconfig_fallback(mutt_dynconfig_def_find(key), cfg, buf, len, src, NULL, 0), want_rc);
}

static void test_dynconfig_fallback_without_config_is_the_schema_default(void **state)
{
    (void)state;
    char buf[64];
    enum mutt_dyn_source src = MUTT_DYN_SRC_REDIS;
    fallback_of("moog_rate_limit", NULL, buf, sizeof(buf), &src, 0);
    assert_string_equal(buf, "50");
    assert_int_equal(src, MUTT_DYN_SRC_DEFAULT);
}

static void test_dynconfig_fallback_prefers_env_over_file_over_default(void **state)
{
    (void)state;
    struct cfg_fixture fx;
    char *envp[] = { "MOOG_RATE_LIMIT=80", "REMEDIATION_ENABLED=false", NULL };
    load_cfg(&fx, "MOOG_RATE_LIMIT=70\nINGEST_MAX_RATE=500\n", envp);
    char buf[64];
    enum mutt_dyn_source src;

    fallback_of("moog_rate_limit", fx.cfg, buf, sizeof(buf), &src, 0); /* env beats file */
    assert_string_equal(buf, "80");
    assert_int_equal(src, MUTT_DYN_SRC_ENV);

    fallback_of("ingest_max_rate", fx.cfg, buf, sizeof(buf), &src, 0); /* file beats default */
    assert_string_equal(buf, "500");
    assert_int_equal(src, MUTT_DYN_SRC_FILE);

    fallback_of("remediation_enabled", fx.cfg, buf, sizeof(buf), &src, 0); /* bool spelled canonically */
    assert_string_equal(buf, "false");
    assert_int_equal(src, MUTT_DYN_SRC_ENV);

    fallback_of("cache_reload_interval", fx.cfg, buf, sizeof(buf), &src, 0); /* twin not set */
    assert_string_equal(buf, "300");
    assert_int_equal(src, MUTT_DYN_SRC_DEFAULT);

    fallback_of("alerter_queue_warn_threshold", fx.cfg, buf, sizeof(buf), &src, 0); /* no twin */
    assert_string_equal(buf, "1000");
    assert_int_equal(src, MUTT_DYN_SRC_DEFAULT);
    unload_cfg(&fx);
}

static void test_dynconfig_fallback_refuses_a_static_value_outside_the_dynamic_range(void **state)
{
    (void)state;
    struct cfg_fixture fx;
    char *envp[] = { "MAX_INGEST_QUEUE_SIZE=5000000000", NULL };
    load_cfg(&fx, "\n", envp);
    assert_int_equal(mutt_config_source(fx.cfg, MUTT_CFG_MAX_INGEST_QUEUE_SIZE), MUTT_CFG_SRC_ENV);
    char buf[64];
    char err[256] = "";
    enum mutt_dyn_source src;
    assert_int_equal(mutt_dynconfig_fallback(mutt_dynconfig_def_find("max_ingest_queue_size"), fx.cfg, buf,
                                             sizeof(buf), &src, err, sizeof(err)),
                     MUTT_ERANGE);
    assert_string_equal(buf, "1000000");
    assert_int_equal(src, MUTT_DYN_SRC_DEFAULT);
    assert_non_null(strstr(err, "above the maximum"));
    unload_cfg(&fx);
}

/* ---- the cache without Redis -------------------------------------------------------------- */

static int watch_calls;
static void on_watch_never(void *privdata, const char *key, const char *old_value, const char *new_value)
{
    (void)privdata, (void)key, (void)old_value, (void)new_value;
    watch_calls++;
}



static const struct mutt_dynconfig *unknown_reads_d;

static void read_unknown_names(void)
{
    const char *v = "untouched";
    assert_int_equal(mutt_dynconfig_str_by_name(unknown_reads_d, "no_such_key", &v), MUTT_ENOTFOUND);
    assert_null(v);
    assert_int_equal(mutt_dynconfig_str_by_name(unknown_reads_d, "other_unknown", NULL), MUTT_ENOTFOUND);
    assert_int_equal(mutt_dynconfig_str_by_name(unknown_reads_d, NULL, NULL), MUTT_ENOTFOUND);
}

static void read_bad_ids(void)
{
    assert_int_equal(mutt_dynconfig_int(unknown_reads_d, MUTT_DYN_COUNT_), 0);
    assert_string_equal(mutt_dynconfig_str(unknown_reads_d, (enum mutt_dyn_key)-1), "");
    assert_false(mutt_dynconfig_bool(unknown_reads_d, MUTT_DYN_COUNT_));
}
static void test_dynconfig_without_redis_serves_fallbacks_and_refuses_writes(void **state)
{
    (void)state;
    struct cfg_fixture fx;
    char *envp[] = { "MOOG_RATE_LIMIT=80", NULL };
    load_cfg(&fx, "REMEDIATION_ENABLED=no\n", envp);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mutt_dynconfig *d = mutt_dynconfig_create(&loop, NULL, fx.cfg);
    assert_non_null(d);
    assert_int_equal(mutt_dynconfig_start(d), 0);

    assert_int_equal(mutt_dynconfig_int(d, MUTT_DYN_MOOG_RATE_LIMIT), 80);
    assert_int_equal(mutt_dynconfig_source(d, MUTT_DYN_MOOG_RATE_LIMIT), MUTT_DYN_SRC_ENV);
    assert_false(mutt_dynconfig_bool(d, MUTT_DYN_REMEDIATION_ENABLED));
    assert_int_equal(mutt_dynconfig_source(d, MUTT_DYN_REMEDIATION_ENABLED), MUTT_DYN_SRC_FILE);
    assert_string_equal(mutt_dynconfig_str(d, MUTT_DYN_ALERTER_SHED_MODE), "defer");
    assert_true(mutt_dynconfig_double(d, MUTT_DYN_SLO_INGESTOR_LATENCY_P99_UPPER_BOUND_WARNING) == 0.75);
    /* An unknown name read through the string API is an error, logged once (the first of the
     * process: no other test of this binary reads an unknown name). */
    unknown_reads_d = d;
    char *log = mutt_test_capture_stderr(read_unknown_names);
    assert_non_null(log);
    assert_non_null(strstr(log, "unknown dynamic key no_such_key"));
    assert_null(strstr(log, "other_unknown"));
    free(log);
    const char *v = NULL;
    assert_int_equal(mutt_dynconfig_str_by_name(d, "moog_rate_limit", &v), 0);
    assert_string_equal(v, "80");
    /* An id outside the table (only reachable by a cast) reads as nothing, logged once too. */
    log = mutt_test_capture_stderr(read_bad_ids);
    assert_non_null(log);
    assert_non_null(strstr(log, "outside the schema"));
    assert_null(strstr(strstr(log, "outside the schema") + 1, "outside the schema"));
    free(log);
    assert_false(mutt_dynconfig_loaded(d));

    watch_calls = 0;
    assert_int_equal(mutt_dynconfig_watch(d, MUTT_DYN_ALL_KEYS + 1, on_watch_never, NULL), MUTT_ENOTFOUND);
    assert_int_equal(mutt_dynconfig_watch(d, MUTT_DYN_ALL_KEYS, on_watch_never, NULL), 0);
    assert_int_equal(mutt_dynconfig_set(d, "no_such_key", "1", true, NULL, NULL), MUTT_ENOTFOUND);
    assert_int_equal(mutt_dynconfig_set(d, "moog_rate_limit", "abc", true, NULL, NULL), MUTT_EINVAL);
    assert_int_equal(mutt_dynconfig_set(d, "moog_rate_limit", "90", true, NULL, NULL), MUTT_EDISCONNECTED);
    assert_int_equal(mutt_dynconfig_delete(d, "moog_rate_limit", true, NULL, NULL), MUTT_EDISCONNECTED);
    assert_int_equal(mutt_dynconfig_int(d, MUTT_DYN_MOOG_RATE_LIMIT), 80);
    assert_int_equal(watch_calls, 0);

    mutt_dynconfig_stop(d);
    mutt_dynconfig_destroy(d);
    assert_int_equal(mutt_test_loop_close(&loop), 0);
    unload_cfg(&fx);
}

struct watch_log {
    int calls;
    char key[64];
    char old_value[64];
    char new_value[64];
};

static void on_watch_log(void *privdata, const char *key, const char *old_value, const char *new_value)
{
    struct watch_log *w = privdata;
    w->calls++;
    snprintf(w->key, sizeof(w->key), "%s", key);
    snprintf(w->old_value, sizeof(w->old_value), "%s", old_value);
    snprintf(w->new_value, sizeof(w->new_value), "%s", new_value);
}

/* SIGHUP: the file's dynamic keys take effect without a restart (CONTRACT §12). */
static void test_dynconfig_reload_fallbacks_applies_a_changed_file_and_tells_watchers(void **state)
{
    (void)state;
    struct cfg_fixture fx;
    char *envp[] = { NULL };
    load_cfg(&fx, "INGEST_MAX_RATE=500\n", envp);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct mutt_dynconfig *d = mutt_dynconfig_create(&loop, NULL, fx.cfg);
    assert_non_null(d);
    struct watch_log w = { 0 };
    assert_int_equal(mutt_dynconfig_watch(d, MUTT_DYN_INGEST_MAX_RATE, on_watch_log, &w), 0);
    assert_int_equal(mutt_dynconfig_int(d, MUTT_DYN_INGEST_MAX_RATE), 500);

    FILE *f = fopen(fx.path, "w");
    assert_non_null(f);
    fputs("INGEST_MAX_RATE=700\n", f);
    fclose(f);
    struct mutt_config_report report = { 0 };
    assert_int_equal(mutt_config_reload_safe(fx.cfg, &report), 0);
    mutt_config_report_free(&report);
    mutt_dynconfig_reload_fallbacks(d);

    assert_int_equal(mutt_dynconfig_int(d, MUTT_DYN_INGEST_MAX_RATE), 700);
    assert_int_equal(mutt_dynconfig_source(d, MUTT_DYN_INGEST_MAX_RATE), MUTT_DYN_SRC_FILE);
    assert_int_equal(w.calls, 1);
    assert_string_equal(w.old_value, "500");
    assert_string_equal(w.new_value, "700");
    mutt_dynconfig_reload_fallbacks(d); /* nothing changed: no call */
    assert_int_equal(w.calls, 1);

    mutt_dynconfig_unwatch(d, on_watch_log, &w); /* a change after unwatch is not reported */
    f = fopen(fx.path, "w");
    assert_non_null(f);
    fputs("INGEST_MAX_RATE=900\n", f);
    fclose(f);
    assert_int_equal(mutt_config_reload_safe(fx.cfg, NULL), 0);
    mutt_dynconfig_reload_fallbacks(d);
    assert_int_equal(mutt_dynconfig_int(d, MUTT_DYN_INGEST_MAX_RATE), 900);
    assert_int_equal(w.calls, 1);

    mutt_dynconfig_destroy(d);
    assert_int_equal(mutt_test_loop_close(&loop), 0);
    unload_cfg(&fx);
}

/* issue 17: the v2.3 names resolve to their canonical rows and are not rows themselves */
static void test_dynconfig_schema_legacy_names_resolve_to_canonical(void **state)
{
    (void)state;
    bool legacy = true;
    const struct mutt_dynconfig_def *d = mutt_dynconfig_def_resolve("alerter_queue_warn", &legacy);
    assert_non_null(d);
    assert_true(legacy);
    assert_string_equal(d->name, "alerter_queue_warn_threshold");
    assert_string_equal(mutt_dynconfig_def_resolve("alerter_queue_shed", NULL)->name, "alerter_queue_shed_threshold");
    assert_ptr_equal(mutt_dynconfig_def_resolve("alerter_queue_warn_threshold", &legacy), d);
    assert_false(legacy);
    assert_null(mutt_dynconfig_def_find("alerter_queue_warn"));
    assert_null(mutt_dynconfig_def_resolve("alerter_queue", NULL));
    assert_string_equal(mutt_dynconfig_legacy_name(MUTT_DYN_ALERTER_QUEUE_SHED_THRESHOLD), "alerter_queue_shed");
    assert_null(mutt_dynconfig_legacy_name(MUTT_DYN_MOOG_RATE_LIMIT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynconfig_schema_every_row_has_name_description_and_unit),
        cmocka_unit_test(test_dynconfig_schema_names_are_unique_and_findable),
        cmocka_unit_test(test_dynconfig_schema_row_of_each_id_has_that_id),
        cmocka_unit_test(test_dynconfig_schema_legacy_names_resolve_to_canonical),
        cmocka_unit_test(test_dynconfig_schema_defaults_validate_against_their_own_rows),
        cmocka_unit_test(test_dynconfig_schema_enum_rows_list_their_values_and_default_is_one),
        cmocka_unit_test(test_dynconfig_schema_numeric_rows_have_a_range),
        cmocka_unit_test(test_dynconfig_schema_holds_every_contract_key_with_its_default),
        cmocka_unit_test(test_dynconfig_schema_has_window_and_burn_rates_for_six_slos),
        cmocka_unit_test(test_dynconfig_schema_defaults_match_their_static_twins),
        cmocka_unit_test(test_dynconfig_schema_names_types_and_sources),
        cmocka_unit_test(test_dynconfig_validate_refuses_unknown_key_naming_it),
        cmocka_unit_test(test_dynconfig_validate_refuses_non_integers),
        cmocka_unit_test(test_dynconfig_validate_refuses_values_outside_the_range),
        cmocka_unit_test(test_dynconfig_validate_accepts_the_range_edges),
        cmocka_unit_test(test_dynconfig_validate_enum_accepts_listed_values_only),
        cmocka_unit_test(test_dynconfig_validate_bool_accepts_common_spellings),
        cmocka_unit_test(test_dynconfig_validate_double_refuses_nan_inf_and_text),
        cmocka_unit_test(test_dynconfig_validate_refuses_missing_and_oversized_values),
        cmocka_unit_test(test_dynconfig_fallback_without_config_is_the_schema_default),
        cmocka_unit_test(test_dynconfig_fallback_prefers_env_over_file_over_default),
        cmocka_unit_test(test_dynconfig_fallback_refuses_a_static_value_outside_the_dynamic_range),
        cmocka_unit_test(test_dynconfig_without_redis_serves_fallbacks_and_refuses_writes),
        cmocka_unit_test(test_dynconfig_reload_fallbacks_applies_a_changed_file_and_tells_watchers),
    };
    return cmocka_run_group_tests_name("dynconfig_schema", tests, NULL, NULL);
}
