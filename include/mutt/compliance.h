/* Production compliance rules over the loaded static config (CONTRACT §2, D24, D25; seed "secure
 * configuration management"): stable rule ids and severities, one violation per offending key.
 * Pure: reads the values it is given (struct mutt_compliance_input, filled from the config by
 * mutt_cli_compliance_input), no I/O, never logs. Callers print and decide (check-config exits 1
 * on a critical violation; MUTT_ENV=production refuses to start on one). */
#ifndef MUTT_COMPLIANCE_H
#define MUTT_COMPLIANCE_H

#include <stdbool.h>
#include <stddef.h>

enum mutt_compliance_severity {
    MUTT_COMPLIANCE_WARNING = 0,
    MUTT_COMPLIANCE_ERROR,
    MUTT_COMPLIANCE_CRITICAL,
};

struct mutt_compliance_violation {
    const char *rule_id;                    /* static: "SEC_001" .. "SEC_006", "OPS_001" */
    enum mutt_compliance_severity severity;
    const char *key;                        /* static: the config key at fault */
    char message[200];                      /* one line, never a secret value */
};

/* Most violations one check can produce (every rule on every key it looks at). */
#define MUTT_COMPLIANCE_MAX_VIOLATIONS 32

/* A config value the rules read, with its key's name (static storage: it becomes a violation's
 * key). */
struct mutt_compliance_value {
    const char *key;
    const char *value;  /* "" when unset */
    bool from_file;     /* set in the config file rather than the environment */
};

#define MUTT_COMPLIANCE_API_KEYS 4
#define MUTT_COMPLIANCE_SECRETS 10

/* Everything the rules look at. Strings are borrowed for the call. */
struct mutt_compliance_input {
    bool db_tls_enabled;                 /* DB_TLS_ENABLED */
    const char *redis_host;              /* REDIS_HOST */
    const char *redis_sentinels;         /* REDIS_SENTINELS ("" = none: REDIS_HOST is the primary) */
    /* With sentinels: the primary's host as the sentinels announce it (D53), NULL when none of
     * them could be asked; the caller asks (mutt_cli_compliance_report does). */
    const char *redis_primary;
    bool redis_trusted_network;          /* REDIS_TRUSTED_NETWORK */
    const char *webhook_url;             /* MOOG_WEBHOOK_URL */
    const char *vault_addr;              /* VAULT_ADDR */
    bool allow_query_key;                /* WEBUI_ALLOW_QUERY_KEY */
    const char *log_level;               /* LOG_LEVEL */
    const char *approval_required;       /* APPROVAL_REQUIRED (D47: OPS_002 when blank) */
    /* API keys our clients present to us: their length is ours to enforce (MOOG_API_KEY is
     * issued by the webhook's owner, so it is not one of them). */
    struct mutt_compliance_value api_keys[MUTT_COMPLIANCE_API_KEYS];
    /* The keys that hold secrets (CONTRACT §9, D26), in report order. */
    struct mutt_compliance_value secrets[MUTT_COMPLIANCE_SECRETS];
};

/* Runs every rule over in and writes up to `max` violations into out in rule order; returns how
 * many it found (may exceed max: only the first max are written). Cannot fail. */
size_t mutt_compliance_check(const struct mutt_compliance_input *in, struct mutt_compliance_violation *out,
                             size_t max);

/* "warning" "error" "critical". */
const char *mutt_compliance_severity_name(enum mutt_compliance_severity s);

/* True when any of the n violations is critical. */
bool mutt_compliance_has_critical(const struct mutt_compliance_violation *v, size_t n);

/* True for "localhost", 127.0.0.0/8 literals and "::1" (D24: a local TLS tunnel endpoint). */
bool mutt_compliance_host_is_loopback(const char *host);

#endif
