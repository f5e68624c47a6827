/* The dynamic-config schema (CONTRACT §2, reference §3.12): one row per runtime-tunable key,
 * plus the pure checks built on it (validation, canonical spelling, env/file/default fallback).
 * No I/O: the Redis side lives in dynconfig.c. */
#include "mutt/dynconfig.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutt/error.h"

#define NO_TWIN MUTT_CFG__COUNT
#define BIG 1e9

/* Rows are built through these so that every row names its twin (or NO_TWIN) explicitly:
 * a forgotten field would otherwise silently mean MUTT_CFG_MUTT_ROLES (enum value 0). */
#define ROW_INT(i, n, dflt, lo, hi, twin, u, desc) \
    { .id = i, .name = n, .type = MUTT_DYN_INT, .default_value = dflt, .min = lo, .max = hi, .allowed = NULL, \
      .static_twin = twin, .unit = u, .description = desc }
#define ROW_DOUBLE(i, n, dflt, lo, hi, twin, u, desc) \
    { .id = i, .name = n, .type = MUTT_DYN_DOUBLE, .default_value = dflt, .min = lo, .max = hi, .allowed = NULL, \
      .static_twin = twin, .unit = u, .description = desc }
#define ROW_BOOL(i, n, dflt, twin, desc) \
    { .id = i, .name = n, .type = MUTT_DYN_BOOL, .default_value = dflt, .min = 1, .max = 0, .allowed = NULL, \
      .static_twin = twin, .unit = "", .description = desc }
#define ROW_ENUM(i, n, dflt, vals, twin, desc) \
    { .id = i, .name = n, .type = MUTT_DYN_ENUM, .default_value = dflt, .min = 1, .max = 0, .allowed = vals, \
      .static_twin = twin, .unit = "", .description = desc }

/* SLO thresholds (reference §8.6): window, burn-rate levels for every SLO, upper bounds (in
 * seconds) for the two latency SLOs. */
#define SLO_ROWS(ID, slo, what) \
    ROW_INT(MUTT_DYN_SLO_##ID##_WINDOW_HOURS, "slo_" slo "_window_hours", "24", 1, 720, NO_TWIN, "h", \
            "SLO window for " what " (hours)."), \
    ROW_DOUBLE(MUTT_DYN_SLO_##ID##_BURN_RATE_WARNING, "slo_" slo "_burn_rate_warning", "5", 0, 1000, NO_TWIN, "x", \
               "Error-budget burn rate at which " what " is reported as warning."), \
    ROW_DOUBLE(MUTT_DYN_SLO_##ID##_BURN_RATE_CRITICAL, "slo_" slo "_burn_rate_critical", "10", 0, 1000, NO_TWIN, "x", \
               "Error-budget burn rate at which " what " is reported as critical.")
#define SLO_LATENCY_ROWS(ID, slo, what, warn, crit) \
    SLO_ROWS(ID, slo, what), \
    ROW_DOUBLE(MUTT_DYN_SLO_##ID##_UPPER_BOUND_WARNING, "slo_" slo "_upper_bound_warning", warn, 0, 3600, NO_TWIN, "s", \
               "Latency at or above which " what " is reported as warning."), \
    ROW_DOUBLE(MUTT_DYN_SLO_##ID##_UPPER_BOUND_CRITICAL, "slo_" slo "_upper_bound_critical", crit, 0, 3600, NO_TWIN, "s", \
               "Latency at or above which " what " is reported as critical.")

static const char *const shed_modes[] = { "defer", "dlq", NULL };

static const struct mutt_dynconfig_def defs[] = {
    /* ingest */
    ROW_INT(MUTT_DYN_MAX_INGEST_QUEUE_SIZE, "max_ingest_queue_size", "1000000", 1, BIG, MUTT_CFG_MAX_INGEST_QUEUE_SIZE, "events",
            "Ingest queue depth above which POST /ingest answers 503 (checked per request)."),
    ROW_INT(MUTT_DYN_MAX_INGEST_QUEUE_BYTES, "max_ingest_queue_bytes", "536870912", 1, 1e15, MUTT_CFG_MAX_INGEST_QUEUE_BYTES, "bytes",
            "Bytes of queued events above which POST /ingest answers 503 (approximate, D52)."),
    ROW_INT(MUTT_DYN_INGEST_MAX_RATE, "ingest_max_rate", "1000", 1, BIG, MUTT_CFG_INGEST_MAX_RATE, "events",
            "Events accepted per ingest_rate_window across all pods before 429."),
    ROW_INT(MUTT_DYN_INGEST_RATE_WINDOW, "ingest_rate_window", "60", 1, 86400, MUTT_CFG_INGEST_RATE_WINDOW, "s",
            "Length of the global ingest rate-limit window; also the Retry-After value."),
    /* alert */
    ROW_INT(MUTT_DYN_CACHE_RELOAD_INTERVAL, "cache_reload_interval", "300", 1, 86400, MUTT_CFG_CACHE_RELOAD_INTERVAL, "s",
            "How often the alerter reloads rules, dev hosts and teams from PostgreSQL."),
    ROW_INT(MUTT_DYN_UNHANDLED_THRESHOLD, "unhandled_threshold", "100", 1, BIG, MUTT_CFG_UNHANDLED_THRESHOLD, "events",
            "Unmatched events from one host/message within unhandled_expiry_seconds that raise a meta-alert."),
    ROW_INT(MUTT_DYN_UNHANDLED_EXPIRY_SECONDS, "unhandled_expiry_seconds", "86400", 1, 31536000, MUTT_CFG_UNHANDLED_EXPIRY_SECONDS, "s",
            "Lifetime of an unhandled-event counter."),
    ROW_INT(MUTT_DYN_UNHANDLED_MAX_TEMPLATES_PER_HOST, "unhandled_max_templates_per_host", "1000", 1, 1000000, NO_TWIN, "templates",
            "Distinct unhandled templates tracked per host per unhandled_expiry_seconds window; further new "
            "templates are not tracked and count in mutt_unhandled_templates_capped_total (D62)."),
    ROW_INT(MUTT_DYN_SAMPLE_EVENTS, "sample_events", "10000", 0, 1000000, MUTT_CFG_SAMPLE_EVENTS, "events",
            "Recent events kept in mutt:sample_events for the rule dry-run (D62); 0 stops sampling."),
    ROW_INT(MUTT_DYN_ALERTER_QUEUE_WARN_THRESHOLD, "alerter_queue_warn_threshold", "1000", 1, BIG, NO_TWIN, "items",
            "Alert queue depth above which the alerter logs a backpressure warning."),
    ROW_INT(MUTT_DYN_ALERTER_QUEUE_SHED_THRESHOLD, "alerter_queue_shed_threshold", "2000", 1, BIG, NO_TWIN, "items",
            "Alert queue depth above which the alerter acts per alerter_shed_mode."),
    ROW_ENUM(MUTT_DYN_ALERTER_SHED_MODE, "alerter_shed_mode", "defer", shed_modes, NO_TWIN,
             "Above the shed threshold: defer (pause consuming, nothing moves) or dlq (move to the DLQ)."),
    ROW_INT(MUTT_DYN_ALERTER_DEFER_SLEEP_MS, "alerter_defer_sleep_ms", "250", 1, 60000, NO_TWIN, "ms",
            "Pause between queue-depth checks while the alerter defers."),
    /* forward */
    ROW_INT(MUTT_DYN_MOOG_RATE_LIMIT, "moog_rate_limit", "50", 1, 1000000, MUTT_CFG_MOOG_RATE_LIMIT, "requests",
            "Webhook POSTs allowed per moog_rate_period across all pods."),
    ROW_INT(MUTT_DYN_MOOG_RATE_PERIOD, "moog_rate_period", "1", 1, 86400, MUTT_CFG_MOOG_RATE_PERIOD, "s",
            "Length of the shared webhook rate-limit window."),
    ROW_INT(MUTT_DYN_MOOG_MAX_INFLIGHT, "moog_max_inflight", "32", 1, 10000, MUTT_CFG_MOOG_MAX_INFLIGHT, "requests",
            "Concurrent webhook POSTs per pod."),
    ROW_INT(MUTT_DYN_CIRCUIT_BREAKER_THRESHOLD, "circuit_breaker_threshold", "10", 1, 100000, MUTT_CFG_CIRCUIT_BREAKER_THRESHOLD, "failures",
            "Consecutive webhook failures that open the circuit breaker."),
    ROW_INT(MUTT_DYN_CIRCUIT_BREAKER_TIMEOUT, "circuit_breaker_timeout", "300", 1, 86400, MUTT_CFG_CIRCUIT_BREAKER_TIMEOUT, "s",
            "Time the breaker stays OPEN before one probe is sent (HALF_OPEN)."),
    /* remediate */
    ROW_BOOL(MUTT_DYN_REMEDIATION_ENABLED, "remediation_enabled", "true", MUTT_CFG_REMEDIATION_ENABLED,
             "Whether the remediation loop replays DLQ items."),
    ROW_INT(MUTT_DYN_REMEDIATION_INTERVAL, "remediation_interval", "300", 1, 86400, MUTT_CFG_REMEDIATION_INTERVAL, "s",
            "Pause between remediation passes."),
    ROW_INT(MUTT_DYN_REMEDIATION_BATCH_SIZE, "remediation_batch_size", "10", 1, 100000, MUTT_CFG_REMEDIATION_BATCH_SIZE, "items",
            "DLQ items replayed per remediation pass and queue."),
    ROW_INT(MUTT_DYN_MAX_POISON_RETRIES, "max_poison_retries", "3", 1, 1000, MUTT_CFG_MAX_POISON_RETRIES, "retries",
            "Replays after which a DLQ item is moved to mutt:dlq:dead."),
    /* SLOs (web) */
    SLO_ROWS(INGESTOR_AVAILABILITY, "ingestor_availability", "ingestor availability"),
    SLO_LATENCY_ROWS(INGESTOR_LATENCY_P99, "ingestor_latency_p99", "ingestor p99 latency", "0.75", "1.0"),
    SLO_ROWS(FORWARDER_AVAILABILITY, "forwarder_availability", "forwarder availability"),
    SLO_LATENCY_ROWS(FORWARDER_LATENCY_P99, "forwarder_latency_p99", "forwarder p99 latency", "3.0", "5.0"),
    SLO_ROWS(ALERTER_PROCESSING_SUCCESS, "alerter_processing_success", "alerter processing success"),
    SLO_ROWS(ALERTER_CACHE_RELOAD_SUCCESS, "alerter_cache_reload_success", "alerter cache reload success"),
};

#define N_DEFS (sizeof(defs) / sizeof(defs[0]))
/* A row added without its enum id (or the reverse) stops the build; the order is checked by
 * tests/unit/test_dynconfig_schema.c (row i has id i). */
_Static_assert(N_DEFS == MUTT_DYN_COUNT_, "dynamic-config schema table and enum mutt_dyn_key differ");

size_t mutt_dynconfig_count(void)
{
    return N_DEFS;
}

const struct mutt_dynconfig_def *mutt_dynconfig_def_at(size_t i)
{
    return i < N_DEFS ? &defs[i] : NULL;
}

const struct mutt_dynconfig_def *mutt_dynconfig_def_find(const char *key)
{
    if (!key)
        return NULL;
    for (size_t i = 0; i < N_DEFS; i++)
        if (strcmp(defs[i].name, key) == 0)
            return &defs[i];
    return NULL;
}

static const struct {
    const char *name;
    enum mutt_dyn_key id;
} legacy_names[] = {
    {"alerter_queue_warn", MUTT_DYN_ALERTER_QUEUE_WARN_THRESHOLD},
    {"alerter_queue_shed", MUTT_DYN_ALERTER_QUEUE_SHED_THRESHOLD},
};

const struct mutt_dynconfig_def *mutt_dynconfig_legacy_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof legacy_names / sizeof legacy_names[0]; i++)
        if (strcmp(legacy_names[i].name, name) == 0)
            return mutt_dynconfig_def_at(legacy_names[i].id);
    return NULL;
}

const char *mutt_dynconfig_legacy_name(enum mutt_dyn_key id)
{
    for (size_t i = 0; i < sizeof legacy_names / sizeof legacy_names[0]; i++)
        if (legacy_names[i].id == id)
            return legacy_names[i].name;
    return NULL;
}

const struct mutt_dynconfig_def *mutt_dynconfig_def_resolve(const char *name, bool *legacy)
{
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(name);
    if (legacy)
        *legacy = false;
    if (def)
        return def;
    def = mutt_dynconfig_legacy_find(name);
    if (def && legacy)
        *legacy = true;
    return def;
}

const char *mutt_dynconfig_type_name(enum mutt_dyn_type t)
{
    switch (t) {
    case MUTT_DYN_INT: return "int";
    case MUTT_DYN_DOUBLE: return "double";
    case MUTT_DYN_BOOL: return "bool";
    case MUTT_DYN_STRING: return "string";
    case MUTT_DYN_ENUM: return "enum";
    }
    return "unknown";
}

const char *mutt_dynconfig_source_name(enum mutt_dyn_source s)
{
    switch (s) {
    case MUTT_DYN_SRC_DEFAULT: return "default";
    case MUTT_DYN_SRC_FILE: return "file";
    case MUTT_DYN_SRC_ENV: return "env";
    case MUTT_DYN_SRC_REDIS: return "redis";
    }
    return "unknown";
}

/* ---- validation --------------------------------------------------------------------------- */

static int refuse(const struct mutt_dynconfig_def *def, const char *value, char *err, size_t errlen,
                  const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s=%.64s%s: %s", def->name, value, strlen(value) > 64 ? "..." : "", why);
    return MUTT_EINVAL;
}

static bool has_range(const struct mutt_dynconfig_def *def)
{
    return def->min <= def->max;
}

static int check_range(const struct mutt_dynconfig_def *def, const char *value, double v, char *err,
                       size_t errlen)
{
    if (!has_range(def))
        return 0;
    char why[96];
    if (v < def->min) {
        snprintf(why, sizeof(why), "below the minimum %.15g", def->min);
        return refuse(def, value, err, errlen, why);
    }
    if (v > def->max) {
        snprintf(why, sizeof(why), "above the maximum %.15g", def->max);
        return refuse(def, value, err, errlen, why);
    }
    return 0;
}

static int put(char *norm, size_t normlen, const char *s)
{
    if (norm && normlen)
        snprintf(norm, normlen, "%s", s);
    return 0;
}

/* Decimal only, optional sign, no spaces: strtoll alone would accept " 12" and "0x1f". */
static int normalize_int(const struct mutt_dynconfig_def *def, const char *value, char *norm, size_t normlen,
                         char *err, size_t errlen)
{
    const char *p = value;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return refuse(def, value, err, errlen, "not an integer");
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return refuse(def, value, err, errlen, "not an integer");
    errno = 0;
    long long v = strtoll(value, NULL, 10);
    if (errno == ERANGE)
        return refuse(def, value, err, errlen, "integer out of range");
    int rc = check_range(def, value, (double)v, err, errlen);
    if (rc < 0)
        return rc;
    if (norm && normlen)
        snprintf(norm, normlen, "%lld", v);
    return 0;
}

static int normalize_double(const struct mutt_dynconfig_def *def, const char *value, char *norm,
                            size_t normlen, char *err, size_t errlen)
{
    /* Refuse what strtod accepts but a config value should not be: spaces, hex, inf, nan. */
    for (const char *q = value; *q; q++)
        if (!(isdigit((unsigned char)*q) || *q == '.' || *q == '-' || *q == '+' || *q == 'e' || *q == 'E'))
            return refuse(def, value, err, errlen, "not a number");
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (end == value || *end || errno == ERANGE || !isfinite(v))
        return refuse(def, value, err, errlen, "not a number");
    int rc = check_range(def, value, v, err, errlen);
    if (rc < 0)
        return rc;
    return put(norm, normlen, value);
}

static int normalize_bool(const struct mutt_dynconfig_def *def, const char *value, char *norm, size_t normlen,
                          char *err, size_t errlen)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0)
            return put(norm, normlen, "true");
        if (strcasecmp(value, no[i]) == 0)
            return put(norm, normlen, "false");
    }
    return refuse(def, value, err, errlen, "not a boolean (true/false/1/0/yes/no/on/off)");
}

static int normalize_enum(const struct mutt_dynconfig_def *def, const char *value, char *norm, size_t normlen,
                          char *err, size_t errlen)
{
    char why[160] = "not one of:";
    size_t used = strlen(why);
    for (const char *const *a = def->allowed; a && *a; a++) {
        if (strcasecmp(value, *a) == 0)
            return put(norm, normlen, *a);
        int n = snprintf(why + used, sizeof(why) - used, " %s", *a);
        if (n > 0 && (size_t)n < sizeof(why) - used)
            used += (size_t)n;
    }
    return refuse(def, value, err, errlen, why);
}

int mutt_dynconfig_normalize(const struct mutt_dynconfig_def *def, const char *value, char *norm,
                             size_t normlen, char *err, size_t errlen)
{
    if (!def)
        return MUTT_ENOTFOUND;
    if (!value)
        return refuse(def, "", err, errlen, "missing value");
    if (strlen(value) > MUTT_DYNCONFIG_MAX_VALUE)
        return refuse(def, value, err, errlen, "value too long");
    switch (def->type) {
    case MUTT_DYN_INT: return normalize_int(def, value, norm, normlen, err, errlen);
    case MUTT_DYN_DOUBLE: return normalize_double(def, value, norm, normlen, err, errlen);
    case MUTT_DYN_BOOL: return normalize_bool(def, value, norm, normlen, err, errlen);
    case MUTT_DYN_ENUM: return normalize_enum(def, value, norm, normlen, err, errlen);
    case MUTT_DYN_STRING: return put(norm, normlen, value);
    }
    return refuse(def, value, err, errlen, "unknown type");
}

int mutt_dynconfig_validate(const char *key, const char *value, char *err, size_t errlen)
{
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(key);
    if (!def) {
        if (err && errlen)
            snprintf(err, errlen, "%.64s: unknown dynamic config key", key ? key : "(null)");
        return MUTT_ENOTFOUND;
    }
    return mutt_dynconfig_normalize(def, value, NULL, 0, err, errlen);
}

/* ---- fallback ------------------------------------------------------------------------------ */

/* The static value as text, spelled by the static key's own type. */
static void static_value(const struct mutt_config *cfg, enum mutt_cfg_key key, char *buf, size_t len)
{
    switch (mutt_cfg_defs[key].type) {
    case MUTT_CFG_T_INT:
    case MUTT_CFG_T_PORT:
        snprintf(buf, len, "%" PRId64, mutt_config_int(cfg, key));
        break;
    case MUTT_CFG_T_BOOL:
        snprintf(buf, len, "%s", mutt_config_bool(cfg, key) ? "true" : "false");
        break;
    case MUTT_CFG_T_DOUBLE:
        snprintf(buf, len, "%.15g", mutt_config_double(cfg, key));
        break;
    case MUTT_CFG_T_STRING:
    case MUTT_CFG_T_SECRET:
    case MUTT_CFG_T_PORT_LIST:
        snprintf(buf, len, "%s", mutt_config_str(cfg, key));
        break;
    }
}

int mutt_dynconfig_fallback(const struct mutt_dynconfig_def *def, const struct mutt_config *cfg, char *buf,
                            size_t len, enum mutt_dyn_source *src, char *err, size_t errlen)
{
    *src = MUTT_DYN_SRC_DEFAULT;
    if (cfg && def->static_twin < MUTT_CFG__COUNT) {
        enum mutt_cfg_source s = mutt_config_source(cfg, def->static_twin);
        if (s == MUTT_CFG_SRC_ENV || s == MUTT_CFG_SRC_FILE) {
            char raw[MUTT_DYNCONFIG_MAX_VALUE + 2];
            static_value(cfg, def->static_twin, raw, sizeof(raw));
            if (mutt_dynconfig_normalize(def, raw, buf, len, err, errlen) == 0) {
                *src = s == MUTT_CFG_SRC_ENV ? MUTT_DYN_SRC_ENV : MUTT_DYN_SRC_FILE;
                return 0;
            }
            /* The static range may be wider than the dynamic one: keep the schema default. */
            mutt_dynconfig_normalize(def, def->default_value, buf, len, NULL, 0);
            return MUTT_ERANGE;
        }
    }
    mutt_dynconfig_normalize(def, def->default_value, buf, len, NULL, 0);
    return 0;
}
