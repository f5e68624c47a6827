/* Static configuration (CONTRACT §2): KEY=VALUE file, then environment, with aliases, typed
 * validation and one `config error:` line per problem. Owns the key table (src/core/config_keys.c,
 * one row per key: name, aliases, type, default, range, roles, description). Knows nothing of
 * dynamic config (dynconfig.h layers Redis on top). Pure apart from reading the file and environ
 * at load time, which happens before the loop starts. */
#ifndef MUTT_CONFIG_H
#define MUTT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Role bits, shared by config validation ("required for the enabled roles") and main. */
enum mutt_role {
    MUTT_ROLE_INGEST = 1u << 0,
    MUTT_ROLE_ALERT = 1u << 1,
    MUTT_ROLE_FORWARD = 1u << 2,
    MUTT_ROLE_REMEDIATE = 1u << 3,
    MUTT_ROLE_WEB = 1u << 4,
    MUTT_ROLE_RETENTION = 1u << 5,
    MUTT_ROLE_ALL = 0x3fu,
    /* Passed to mutt_config_load: validate without any role's required keys (CLI commands such
     * as `mutt migrate` that need only the database settings). */
    MUTT_ROLE_NONE = 1u << 30,
};

/* Parses "all" or a comma list of role names into bits. On an unknown name returns MUTT_EINVAL
 * and copies the offending name into bad (if given). */
int mutt_roles_parse(const char *list, unsigned *out_roles, char *bad, size_t bad_len);
/* Writes "ingest,alert,..." for the bits into buf; returns buf. */
const char *mutt_roles_format(unsigned roles, char *buf, size_t len);
const char *mutt_role_name(unsigned role_bit);

enum mutt_cfg_type {
    MUTT_CFG_T_STRING,
    MUTT_CFG_T_INT,    /* int64 within [min,max] */
    MUTT_CFG_T_BOOL,   /* true/false/1/0/yes/no/on/off */
    MUTT_CFG_T_DOUBLE, /* within [min,max] */
    MUTT_CFG_T_PORT,   /* 1..65535 */
    MUTT_CFG_T_SECRET, /* string, never printed (shown as ***) */
    MUTT_CFG_T_PORT_LIST, /* comma list of ports 1..65535 (mutt_config_int gives the first) */
};

/* Every static key. Names are the contract's; the enum is only an index into the table. */
enum mutt_cfg_key {
    /* process */
    MUTT_CFG_MUTT_ROLES,
    MUTT_CFG_POD_NAME,
    MUTT_CFG_MUTT_ENV,
    MUTT_CFG_LOG_LEVEL,
    MUTT_CFG_LOG_FORMAT,
    MUTT_CFG_SHUTDOWN_TIMEOUT,
    MUTT_CFG_MIGRATE_ON_START,
    MUTT_CFG_HEARTBEAT_INTERVAL,
    MUTT_CFG_HEARTBEAT_EXPIRY,
    MUTT_CFG_JANITOR_INTERVAL,
    /* http */
    MUTT_CFG_BIND_ADDR,
    MUTT_CFG_INGESTOR_PORT,
    MUTT_CFG_WEBUI_PORT,
    MUTT_CFG_HEALTH_PORT,
    MUTT_CFG_TLS_CERT_FILE,
    MUTT_CFG_TLS_KEY_FILE,
    MUTT_CFG_TLS_CA_FILE,
    MUTT_CFG_REQUEST_TIMEOUT_MS,
    MUTT_CFG_MAX_BODY_BYTES,
    MUTT_CFG_MAX_CONNECTIONS,
    /* redis */
    MUTT_CFG_REDIS_HOST,
    MUTT_CFG_REDIS_PORT,
    MUTT_CFG_REDIS_DB,
    MUTT_CFG_REDIS_PASS_CURRENT,
    MUTT_CFG_REDIS_PASS_NEXT,
    MUTT_CFG_REDIS_TLS_ENABLED,
    MUTT_CFG_REDIS_CONNECT_TIMEOUT_MS,
    MUTT_CFG_REDIS_MAX_INFLIGHT,
    MUTT_CFG_REDIS_RECONNECT_MAX_MS,
    MUTT_CFG_REDIS_COMMAND_TIMEOUT_MS,
    MUTT_CFG_REDIS_SENTINELS,
    MUTT_CFG_REDIS_SENTINEL_MASTER,
    MUTT_CFG_REDIS_SENTINEL_PASSWORD,
    MUTT_CFG_REDIS_TRUSTED_NETWORK,
    /* postgres */
    MUTT_CFG_DB_HOST,
    MUTT_CFG_DB_PORT,
    MUTT_CFG_DB_NAME,
    MUTT_CFG_DB_USER,
    MUTT_CFG_DB_PASS_CURRENT,
    MUTT_CFG_DB_PASS_NEXT,
    MUTT_CFG_DB_TLS_ENABLED,
    MUTT_CFG_DB_TLS_CA_CERT_PATH,
    MUTT_CFG_DB_TLS_VERIFY,
    MUTT_CFG_DB_TARGET_SESSION_ATTRS,
    MUTT_CFG_DB_POOL_MIN_CONN,
    MUTT_CFG_DB_POOL_MAX_CONN,
    MUTT_CFG_DB_QUEUE_MAX,
    MUTT_CFG_DB_CONNECT_TIMEOUT_MS,
    MUTT_CFG_DB_QUERY_TIMEOUT_MS,
    /* ingest */
    MUTT_CFG_INGEST_API_KEY,
    MUTT_CFG_INGEST_API_KEY_NEXT,
    MUTT_CFG_INGEST_QUEUE_NAME,
    MUTT_CFG_MAX_INGEST_QUEUE_SIZE,
    MUTT_CFG_MAX_INGEST_QUEUE_BYTES,
    MUTT_CFG_INGEST_INFLIGHT_BYTES,
    MUTT_CFG_MAX_BATCH_EVENTS,
    MUTT_CFG_MAX_EVENT_BYTES,
    MUTT_CFG_REQUIRED_FIELDS,
    MUTT_CFG_RATE_LIMIT_ENABLED,
    MUTT_CFG_INGEST_MAX_RATE,
    MUTT_CFG_INGEST_RATE_WINDOW,
    MUTT_CFG_INGEST_TIMEOUT_MS,
    MUTT_CFG_INGEST_MIN_REPLICAS,
    MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS,
    MUTT_CFG_INGEST_REUSEPORT,
    MUTT_CFG_METRICS_PREFIX,
    /* listeners (ingest role, D39) */
    MUTT_CFG_SNMP_TRAP_PORT,
    MUTT_CFG_SNMP_COMMUNITIES,
    MUTT_CFG_SYSLOG_UDP_PORT,
    MUTT_CFG_SYSLOG_TCP_PORT,
    MUTT_CFG_SYSLOG_TLS_PORT,
    MUTT_CFG_SYSLOG_TLS_CERT_FILE,
    MUTT_CFG_SYSLOG_TLS_KEY_FILE,
    MUTT_CFG_LISTENER_BIND_ADDR,
    MUTT_CFG_LISTENER_SOURCE_MAX_RATE,
    /* alert */
    MUTT_CFG_ALERT_QUEUE_NAME,
    MUTT_CFG_ALERTER_PROCESSING_LIST_PREFIX,
    MUTT_CFG_ALERTER_HEARTBEAT_PREFIX,
    MUTT_CFG_ALERTER_DLQ_NAME,
    MUTT_CFG_ALERTER_MAX_RETRIES,
    MUTT_CFG_BRPOPLPUSH_TIMEOUT,
    MUTT_CFG_CACHE_RELOAD_INTERVAL,
    MUTT_CFG_UNHANDLED_PREFIX,
    MUTT_CFG_UNHANDLED_THRESHOLD,
    MUTT_CFG_UNHANDLED_EXPIRY_SECONDS,
    MUTT_CFG_UNHANDLED_DEFAULT_TEAM,
    MUTT_CFG_AUDIT_BATCH_SIZE,
    MUTT_CFG_ALERTER_CONCURRENCY,
    MUTT_CFG_SAMPLE_EVENTS,
    /* forward */
    MUTT_CFG_MOOG_WEBHOOK_URL,
    MUTT_CFG_MOOG_API_KEY,
    MUTT_CFG_MOOG_TIMEOUT,
    MUTT_CFG_MOOG_HEALTH_URL,
    MUTT_CFG_MOOG_HEALTH_TIMEOUT,
    MUTT_CFG_MOOG_PROCESSING_LIST_PREFIX,
    MUTT_CFG_MOOG_HEARTBEAT_PREFIX,
    MUTT_CFG_MOOG_DLQ_NAME,
    MUTT_CFG_MOOG_RETRY_KEY,
    MUTT_CFG_MOOG_RATE_LIMIT,
    MUTT_CFG_MOOG_RATE_PERIOD,
    MUTT_CFG_MOOG_RATE_LIMIT_KEY,
    MUTT_CFG_MOOG_MAX_RETRIES,
    MUTT_CFG_MOOG_RETRY_BASE_DELAY,
    MUTT_CFG_MOOG_RETRY_MAX_DELAY,
    MUTT_CFG_MOOG_MAX_INFLIGHT,
    MUTT_CFG_CIRCUIT_BREAKER_ENABLED,
    MUTT_CFG_CIRCUIT_BREAKER_THRESHOLD,
    MUTT_CFG_CIRCUIT_BREAKER_TIMEOUT,
    MUTT_CFG_MOOG_HEALTH_CHECK_ENABLED,
    MUTT_CFG_MOOG_CA_CERT,
    /* remediate */
    MUTT_CFG_REMEDIATION_ENABLED,
    MUTT_CFG_REMEDIATION_INTERVAL,
    MUTT_CFG_REMEDIATION_BATCH_SIZE,
    MUTT_CFG_MAX_POISON_RETRIES,
    MUTT_CFG_DEAD_LETTER_QUEUE,
    /* web */
    MUTT_CFG_WEBUI_API_KEY,
    MUTT_CFG_WEBUI_READONLY_API_KEY,
    MUTT_CFG_WEBUI_ALLOW_QUERY_KEY,
    MUTT_CFG_METRICS_CACHE_TTL,
    MUTT_CFG_WEBUI_USERS_FILE,
    MUTT_CFG_WEBUI_USERS,
    MUTT_CFG_APPROVAL_REQUIRED,
    MUTT_CFG_APPROVAL_TTL_HOURS,
    /* retention */
    MUTT_CFG_RETENTION_HOUR,
    MUTT_CFG_RETENTION_AUDIT_DAYS,
    MUTT_CFG_RETENTION_EVENT_AUDIT_DAYS,
    MUTT_CFG_RETENTION_DLQ_DAYS,
    MUTT_CFG_RETENTION_BATCH_SIZE,
    MUTT_CFG_RETENTION_DRY_RUN,
    MUTT_CFG_ARCHIVE_DIR,
    MUTT_CFG_ARCHIVE_COMMAND,
    /* vault / secrets */
    MUTT_CFG_LINEAGE_ENABLED,
    MUTT_CFG_LINEAGE_TTL_SECONDS,
    MUTT_CFG_VAULT_ADDR,
    MUTT_CFG_VAULT_ROLE_ID,
    MUTT_CFG_VAULT_SECRET_ID_FILE,
    MUTT_CFG_VAULT_MOUNT_PATH,
    MUTT_CFG_VAULT_SECRET_PATH,
    MUTT_CFG_VAULT_TOKEN_RENEW_THRESHOLD,
    MUTT_CFG_VAULT_RENEW_CHECK_INTERVAL,
    MUTT_CFG_VAULT_TLS_VERIFY,
    MUTT_CFG_VAULT_CA_CERT,
    MUTT_CFG_SECRETS_REFRESH_INTERVAL,
    MUTT_CFG__COUNT
};

/* One row of the key table. Aliases: NULL-terminated list of alternative spellings. */
struct mutt_cfg_def {
    const char *name;
    const char *aliases[4];
    enum mutt_cfg_type type;
    const char *default_value; /* NULL = unset (empty) */
    double min, max;           /* INT/DOUBLE range; ignored when min > max */
    unsigned required_roles;   /* key must be non-empty when any of these roles is on */
    const char *group;         /* section in mutt.conf.example */
    const char *description;
    bool dynamic_safe;         /* re-read on SIGHUP */
};

extern const struct mutt_cfg_def mutt_cfg_defs[MUTT_CFG__COUNT];

/* The key table marks "no upper bound" with a max above this. */
#define MUTT_CFG_NOMAX_THRESHOLD 9.0e18
/* True when the row sets a range (min <= max) for its INT/DOUBLE value. */
static inline bool mutt_cfg_def_has_range(const struct mutt_cfg_def *d)
{
    return d->min <= d->max;
}

/* Where a value came from, for check-config and GET /config. */
enum mutt_cfg_source { MUTT_CFG_SRC_DEFAULT = 0, MUTT_CFG_SRC_FILE, MUTT_CFG_SRC_ENV };

struct mutt_config; /* opaque: values, sources, file path */

/* Result of loading: problems are collected, never printed by the module itself.
 * Each error line reads `config error: KEY=VALUE: why`; each warning `config warning: ...`. */
struct mutt_config_report {
    char **errors;
    size_t n_errors;
    char **warnings;
    size_t n_warnings;
};
void mutt_config_report_free(struct mutt_config_report *r);

/* Loads defaults, then `path` (NULL = /etc/mutt/mutt.conf if it exists, else ./mutt.conf if it
 * exists, else none), then `environ` entries (envp; NULL = the process environment), then
 * validates for `roles` (MUTT_ROLE_* bits; 0 = take them from MUTT_ROLES).
 * Returns a config (caller owns; free with mutt_config_destroy) even when the report has errors,
 * so callers can print every problem; returns NULL only on allocation failure or when an
 * explicitly given path cannot be read (reported in the report). */
struct mutt_config *mutt_config_load(const char *path, char *const *envp, unsigned roles,
                                     struct mutt_config_report *report);
void mutt_config_destroy(struct mutt_config *cfg);

/* Accessors never fail: the value was validated at load. Strings are borrowed ("" when unset). */
const char *mutt_config_str(const struct mutt_config *cfg, enum mutt_cfg_key key);
int64_t mutt_config_int(const struct mutt_config *cfg, enum mutt_cfg_key key);
bool mutt_config_bool(const struct mutt_config *cfg, enum mutt_cfg_key key);
double mutt_config_double(const struct mutt_config *cfg, enum mutt_cfg_key key);
enum mutt_cfg_source mutt_config_source(const struct mutt_config *cfg, enum mutt_cfg_key key);
unsigned mutt_config_roles(const struct mutt_config *cfg);
const char *mutt_config_path(const struct mutt_config *cfg); /* file actually read, or NULL */

/* Looks a key up by name or alias; returns MUTT_CFG__COUNT when unknown. */
enum mutt_cfg_key mutt_config_find(const char *name);

/* Overrides one value (tests, CLI, secrets provider). Validates it; returns 0 or MUTT_EINVAL. */
int mutt_config_set(struct mutt_config *cfg, enum mutt_cfg_key key, const char *value);

/* SIGHUP: re-reads the file and applies only keys marked dynamic_safe. Returns 0 or MUTT_EINVAL
 * (then nothing changed and the report says why). */
int mutt_config_reload_safe(struct mutt_config *cfg, struct mutt_config_report *report);

/* Writes mutt.conf.example text (every key, default, aliases, grouped by role). */
void mutt_config_write_example(FILE *out);

#endif
