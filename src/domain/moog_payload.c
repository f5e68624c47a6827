/* Moogsoft payload builder (reference §6.2 with the CONTRACT §5 / D15 changes). Copies only the
 * fields it names, so stray item fields such as a Python-era `api_key` (D33) never reach Moog. */
#include "mutt/moog_payload.h"

#include <stdio.h>
#include <strings.h>

static const struct {
    const char *name;
    int moog;
} severities[] = {
    {"Critical", 5}, {"Major", 4}, {"Warning", 3}, {"Minor", 2}, {"Info", 1}, {"Clear", 0},
};

#define MOOG_DEFAULT_SEVERITY 3

int mutt_moog_severity(const char *alert_severity)
{
    if (!alert_severity)
        return MOOG_DEFAULT_SEVERITY;
    for (size_t i = 0; i < sizeof(severities) / sizeof(severities[0]); i++)
        if (strcasecmp(alert_severity, severities[i].name) == 0)
            return severities[i].moog;
    return MOOG_DEFAULT_SEVERITY;
}

/* The string value of alert[key], or NULL when absent, not a string, or empty. */
static const char *str_field(const json_t *alert, const char *key)
{
    const char *s = json_string_value(json_object_get(alert, key));
    return (s && *s) ? s : NULL;
}

static const char *first_of(const char *a, const char *b, const char *dflt)
{
    return a ? a : b ? b : dflt;
}

/* Sets obj[key] to a string or null; returns -1 on allocation failure. */
static int set_str_or_null(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, value ? json_string(value) : json_null());
}

/* rule_id may be an integer (PostgreSQL id) or a string; anything else scalar is copied as is. */
static int set_copy_or_null(json_t *obj, const char *key, const json_t *value)
{
    return json_object_set_new(obj, key, value ? json_deep_copy(value) : json_null());
}

static json_t *build_custom_info(const json_t *alert)
{
    json_t *ci = json_object();
    if (!ci)
        return NULL;
    const json_t *raw = json_object_get(alert, "raw_json");
    json_t *raw_copy;
    if (!raw)
        raw_copy = json_null();
    else if (json_is_object(raw) && json_object_get(raw, "api_key") == NULL)
        /* nothing to strip: share it (a deep copy per alert was a few dozen allocations); the
         * payload lives only while the caller still holds `alert`, and nobody changes either */
        raw_copy = json_incref((json_t *)raw);
    else
        raw_copy = json_deep_copy(raw);
    if (!raw_copy)
        goto fail;
    if (json_is_object(raw_copy))
        json_object_del(raw_copy, "api_key"); /* D33: a secret never leaves through us */
    if (json_object_set_new(ci, "raw_event", raw_copy) < 0 ||
        set_copy_or_null(ci, "rule_id", json_object_get(alert, "rule_id")) < 0 ||
        set_str_or_null(ci, "handling_decision", str_field(alert, "handling_decision")) < 0 ||
        set_str_or_null(ci, "environment", str_field(alert, "environment")) < 0 ||
        set_str_or_null(ci, "correlation_id", str_field(alert, "_correlation_id")) < 0 ||
        set_str_or_null(ci, "event_id", str_field(alert, "_event_id")) < 0)
        goto fail;
    return ci;
fail:
    json_decref(ci);
    return NULL;
}

json_t *mutt_moog_payload(const json_t *alert, const char *version, int64_t now_epoch_s)
{
    if (!json_is_object(alert))
        return NULL;
    json_t *p = json_object();
    if (!p)
        return NULL;
    const char *hostname = str_field(alert, "hostname");
    const char *signature = first_of(str_field(alert, "signature"), hostname, "unknown");
    char agent[64];
    snprintf(agent, sizeof(agent), "MUTT %s", version ? version : "");

    if (json_object_set_new(p, "signature", json_string(signature)) < 0 ||
        json_object_set_new(p, "source_id", json_string(signature)) < 0 ||
        json_object_set_new(p, "external_id",
                            json_string(first_of(str_field(alert, "_event_id"),
                                                 str_field(alert, "_correlation_id"), "unknown"))) < 0 ||
        json_object_set_new(p, "manager", json_string("MUTT")) < 0 ||
        json_object_set_new(p, "source",
                            json_string(first_of(str_field(alert, "source_hostname"), hostname, "unknown"))) < 0 ||
        json_object_set_new(p, "class", json_string(first_of(str_field(alert, "team_assignment"), NULL, "Unknown"))) < 0 ||
        json_object_set_new(p, "agent", json_string(agent)) < 0 ||
        json_object_set_new(p, "agent_location", json_string("Alerter Service")) < 0 ||
        json_object_set_new(p, "type", json_string("Alert")) < 0 ||
        json_object_set_new(p, "severity", json_integer(mutt_moog_severity(str_field(alert, "severity")))) < 0 ||
        json_object_set_new(p, "description", json_string(first_of(str_field(alert, "message_body"), NULL, ""))) < 0 ||
        json_object_set_new(p, "agent_time", json_integer(now_epoch_s)) < 0 ||
        json_object_set_new(p, "custom_info", build_custom_info(alert)) < 0) {
        json_decref(p);
        return NULL;
    }
    return p;
}
