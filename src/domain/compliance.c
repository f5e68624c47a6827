/* Production compliance rules (include/mutt/compliance.h). Pure: reads the config, returns
 * violations. Rule ids and severities are D25's; SEC_002 is D24's wording because hiredis 0.14
 * has no TLS: only a loopback REDIS_HOST (a local stunnel) keeps Redis traffic on the host. */
#include "mutt/compliance.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mutt/config.h"

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

static bool is_https(const char *url)
{
    return strncasecmp(url, "https://", 8) == 0;
}

/* The keys that hold secrets (CONTRACT §9, D26), in report order. */
static const enum mutt_cfg_key secret_keys[] = {
    MUTT_CFG_INGEST_API_KEY,  MUTT_CFG_INGEST_API_KEY_NEXT, MUTT_CFG_WEBUI_API_KEY,
    MUTT_CFG_WEBUI_READONLY_API_KEY, MUTT_CFG_MOOG_API_KEY, MUTT_CFG_REDIS_PASS_CURRENT,
    MUTT_CFG_REDIS_PASS_NEXT, MUTT_CFG_DB_PASS_CURRENT, MUTT_CFG_DB_PASS_NEXT,
};
/* API keys our clients present to us: their length is ours to enforce (MOOG_API_KEY is issued
 * by the webhook's owner, so it is not in this list). */
static const enum mutt_cfg_key api_keys[] = {
    MUTT_CFG_INGEST_API_KEY, MUTT_CFG_INGEST_API_KEY_NEXT, MUTT_CFG_WEBUI_API_KEY, MUTT_CFG_WEBUI_READONLY_API_KEY,
};

size_t mutt_compliance_check(const struct mutt_config *cfg, struct mutt_compliance_violation *out, size_t max)
{
    struct sink s = {.out = out, .max = out ? max : 0, .n = 0};
    const char *name;

    if (!mutt_config_bool(cfg, MUTT_CFG_DB_TLS_ENABLED))
        add(&s, "SEC_001", MUTT_COMPLIANCE_CRITICAL, mutt_cfg_defs[MUTT_CFG_DB_TLS_ENABLED].name,
            "database connections are not encrypted: set DB_TLS_ENABLED=true");

    const char *redis_host = mutt_config_str(cfg, MUTT_CFG_REDIS_HOST);
    if (!mutt_compliance_host_is_loopback(redis_host))
        add(&s, "SEC_002", MUTT_COMPLIANCE_CRITICAL, mutt_cfg_defs[MUTT_CFG_REDIS_HOST].name,
            "Redis traffic to %s leaves the host unencrypted: run a local TLS tunnel (stunnel) and set "
            "REDIS_HOST to loopback",
            redis_host);

    const char *webhook = mutt_config_str(cfg, MUTT_CFG_MOOG_WEBHOOK_URL);
    if (webhook[0] && !is_https(webhook))
        add(&s, "SEC_003", MUTT_COMPLIANCE_CRITICAL, mutt_cfg_defs[MUTT_CFG_MOOG_WEBHOOK_URL].name,
            "the webhook URL is not https://");
    const char *vault = mutt_config_str(cfg, MUTT_CFG_VAULT_ADDR);
    if (vault[0] && !is_https(vault))
        add(&s, "SEC_003", MUTT_COMPLIANCE_CRITICAL, mutt_cfg_defs[MUTT_CFG_VAULT_ADDR].name,
            "the Vault address is not https://");

    for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
        const char *v = mutt_config_str(cfg, api_keys[i]);
        size_t len = strlen(v);
        name = mutt_cfg_defs[api_keys[i]].name;
        if (len > 0 && len < MIN_API_KEY_LEN)
            add(&s, "SEC_004", MUTT_COMPLIANCE_ERROR, name, "API key is %zu characters; at least %d required", len,
                MIN_API_KEY_LEN);
    }

    if (vault[0] == '\0') {
        for (size_t i = 0; i < sizeof(secret_keys) / sizeof(secret_keys[0]); i++) {
            if (mutt_config_str(cfg, secret_keys[i])[0] == '\0')
                continue;
            name = mutt_cfg_defs[secret_keys[i]].name;
            add(&s, "SEC_005", MUTT_COMPLIANCE_CRITICAL, name, "secret comes from the %s, not from Vault (set VAULT_ADDR)",
                mutt_config_source(cfg, secret_keys[i]) == MUTT_CFG_SRC_FILE ? "config file" : "environment");
        }
    }

    if (mutt_config_bool(cfg, MUTT_CFG_WEBUI_ALLOW_QUERY_KEY))
        add(&s, "SEC_006", MUTT_COMPLIANCE_ERROR, mutt_cfg_defs[MUTT_CFG_WEBUI_ALLOW_QUERY_KEY].name,
            "API keys are accepted in query strings (they end up in access logs)");

    if (strcasecmp(mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL), "DEBUG") == 0)
        add(&s, "OPS_001", MUTT_COMPLIANCE_WARNING, mutt_cfg_defs[MUTT_CFG_LOG_LEVEL].name,
            "DEBUG logging is on in production");
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
