/* Production compliance rules (include/mutt/compliance.h). Pure: reads the values it is given,
 * returns violations. Rule ids and severities are D25's; SEC_002 is D24's and D53's. */
#include "mutt/compliance.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MIN_API_KEY_LEN 32

struct sink {
    struct mutt_compliance_violation *out;
    size_t max;
    size_t n;
};

__attribute__((format(printf, 5, 6))) static void add(struct sink *s, const char *rule,
                                                      enum mutt_compliance_severity sev, const char *key,
                                                      const char *fmt, ...)
{
    if (s->n < s->max) {
        struct mutt_compliance_violation *v = &s->out[s->n];
        v->rule_id = rule;
        v->severity = sev;
        v->key = key;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof(v->message), fmt, ap);
        va_end(ap);
    }
    s->n++;
}

bool mutt_compliance_host_is_loopback(const char *host)
{
    if (host == NULL || host[0] == '\0')
        return false;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return memcmp(&a6, &in6addr_loopback, sizeof(a6)) == 0;
    return false;
}

/* SEC_002 (D24, D53): Redis traffic is unencrypted (hiredis 0.14 has no TLS), so the primary
 * must be on loopback (a local TLS tunnel) unless the operator states that the Redis network is
 * private or encrypted below TCP. With sentinels the primary is the address they announce:
 * REDIS_HOST is ignored then, and judging it would judge nothing. */
static void redis_primary_rule(struct sink *s, const struct mutt_compliance_input *in)
{
    bool sentinels = in->redis_sentinels && in->redis_sentinels[0];
    const char *key = sentinels ? "REDIS_SENTINELS" : "REDIS_HOST";
    const char *host = sentinels ? in->redis_primary : in->redis_host;
    if (sentinels && host == NULL) {
        add(s, "SEC_002", MUTT_COMPLIANCE_WARNING, key,
            "no sentinel named the primary, so its address is not judged; run the check again when they answer");
        return;
    }
    if (mutt_compliance_host_is_loopback(host))
        return;
    if (in->redis_trusted_network)
        add(s, "SEC_002", MUTT_COMPLIANCE_WARNING, key,
            "Redis traffic to %s is unencrypted; accepted: REDIS_TRUSTED_NETWORK=true says the network is "
            "private or encrypted below TCP",
            host);
    else
        add(s, "SEC_002", MUTT_COMPLIANCE_CRITICAL, key,
            "Redis traffic to %s%s leaves the host unencrypted: tunnel it (stunnel) to loopback, or set "
            "REDIS_TRUSTED_NETWORK=true for a private network",
            host, sentinels ? " (the primary the sentinels announce)" : "");
}

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

size_t mutt_compliance_check(const struct mutt_compliance_input *in, struct mutt_compliance_violation *out,
                             size_t max)
{
    struct sink s = {.out = out, .max = out ? max : 0, .n = 0};

    if (!in->db_tls_enabled)
        add(&s, "SEC_001", MUTT_COMPLIANCE_CRITICAL, "DB_TLS_ENABLED",
            "database connections are not encrypted: set DB_TLS_ENABLED=true");

    redis_primary_rule(&s, in);

    const char *webhook = in->webhook_url;
    if (webhook[0] && !is_https(webhook))
        add(&s, "SEC_003", MUTT_COMPLIANCE_CRITICAL, "MOOG_WEBHOOK_URL", "the webhook URL is not https://");
    const char *vault = in->vault_addr;
    if (vault[0] && !is_https(vault))
        add(&s, "SEC_003", MUTT_COMPLIANCE_CRITICAL, "VAULT_ADDR", "the Vault address is not https://");

    for (size_t i = 0; i < MUTT_COMPLIANCE_API_KEYS; i++) {
        size_t len = strlen(in->api_keys[i].value);
        if (len > 0 && len < MIN_API_KEY_LEN)
            add(&s, "SEC_004", MUTT_COMPLIANCE_ERROR, in->api_keys[i].key,
                "API key is %zu characters; at least %d required", len, MIN_API_KEY_LEN);
    }

    if (vault[0] == '\0') {
        for (size_t i = 0; i < MUTT_COMPLIANCE_SECRETS; i++) {
            const struct mutt_compliance_value *v = &in->secrets[i];
            if (v->value[0] == '\0')
                continue;
            add(&s, "SEC_005", MUTT_COMPLIANCE_CRITICAL, v->key, "secret comes from the %s, not from Vault (set VAULT_ADDR)",
                v->from_file ? "config file" : "environment");
        }
    }

    if (in->allow_query_key)
        add(&s, "SEC_006", MUTT_COMPLIANCE_ERROR, "WEBUI_ALLOW_QUERY_KEY",
            "API keys are accepted in query strings (they end up in access logs)");

    if (strcasecmp(in->log_level, "DEBUG") == 0)
        add(&s, "OPS_001", MUTT_COMPLIANCE_WARNING, "LOG_LEVEL", "DEBUG logging is on in production");

    /* D47: warned, never switched on for the operator */
    const char *a = in->approval_required ? in->approval_required : "";
    while (*a == ' ' || *a == ',' || *a == '\t')
        a++;
    if (!*a)
        add(&s, "OPS_002", MUTT_COMPLIANCE_WARNING, "APPROVAL_REQUIRED",
            "production changes need no second person (set APPROVAL_REQUIRED, e.g. config,rules)");
    return s.n;
}

const char *mutt_compliance_severity_name(enum mutt_compliance_severity s)
{
    switch (s) {
    case MUTT_COMPLIANCE_WARNING:
        return "warning";
    case MUTT_COMPLIANCE_ERROR:
        return "error";
    case MUTT_COMPLIANCE_CRITICAL:
        return "critical";
    }
    return "unknown";
}

bool mutt_compliance_has_critical(const struct mutt_compliance_violation *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].severity == MUTT_COMPLIANCE_CRITICAL)
            return true;
    return false;
}
