/* Production compliance rules over the loaded static config (CONTRACT §2, D24, D25; seed "secure
 * configuration management"): stable rule ids and severities, one violation per offending key.
 * Pure: reads the config only, no I/O, never logs. Callers print and decide (check-config exits 1
 * on a critical violation; MUTT_ENV=production refuses to start on one). */
#ifndef MUTT_COMPLIANCE_H
#define MUTT_COMPLIANCE_H

#include <stdbool.h>
#include <stddef.h>

struct mutt_config;

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

/* Runs every rule over cfg and writes up to `max` violations into out in rule order; returns how
 * many it found (may exceed max: only the first max are written). Cannot fail. */
size_t mutt_compliance_check(const struct mutt_config *cfg, struct mutt_compliance_violation *out, size_t max);

/* "warning" "error" "critical". */
const char *mutt_compliance_severity_name(enum mutt_compliance_severity s);

/* True when any of the n violations is critical. */
bool mutt_compliance_has_critical(const struct mutt_compliance_violation *v, size_t n);

/* True for "localhost", 127.0.0.0/8 literals and "::1" (D24: a local TLS tunnel endpoint). */
bool mutt_compliance_host_is_loopback(const char *host);

#endif
