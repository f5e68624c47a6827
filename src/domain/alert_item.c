/* Handling decisions and alert-queue items (CONTRACT §4, D15, D33). Builds JSON with jansson;
 * owns nothing beyond the objects it returns. No I/O, no logging; any thread. */
#define _GNU_SOURCE /* asprintf */
#include "mutt/alert_item.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutt/event.h"

const char *mutt_env_name(enum mutt_env env)
{
    return env == MUTT_ENV_DEV ? "development" : "production";
}

const struct mutt_rule *mutt_alert_match_event(const struct mutt_ruleset *rs, const json_t *event,
                                               struct mutt_match_scratch *scratch)
{
    const json_t *msgj = json_object_get(event, "message");
    const char *msg = json_is_string(msgj) ? json_string_value(msgj) : ""; /* not required: "" */
    size_t msglen = json_is_string(msgj) ? json_string_length(msgj) : 0;
    const json_t *oidj = json_object_get(event, "trap_oid");
    return mutt_rules_first_match(rs, msg, msglen, json_is_string(oidj) ? json_string_value(oidj) : NULL,
                                  mutt_event_severity(event), scratch);
}

const char *mutt_handling_decision(const struct mutt_rule *rule, enum mutt_env env)
{
    const char *d;
    if (!rule)
        return "";
    d = env == MUTT_ENV_DEV ? rule->dev_handling : rule->prod_handling;
    return d ? d : "";
}

bool mutt_handling_forwards(const char *decision)
{
    static const char *const forwarding[] = {"Page_and_ticket", "Page_only", "Ticket_only"};
    if (!decision)
        return false;
    for (size_t i = 0; i < sizeof forwarding / sizeof forwarding[0]; i++) {
        if (strcasecmp(decision, forwarding[i]) == 0)
            return true;
    }
    return false;
}

static const char *event_str(const json_t *event, const char *key)
{
    const char *s = json_string_value(json_object_get(event, key));
    return s ? s : "";
}

/* json_object_set_new() that records failure instead of returning it, so building reads as a
 * list of fields with one check at the end. */
static void set(json_t *obj, const char *key, json_t *value, bool *failed)
{
    if (!value || json_object_set_new(obj, key, value) != 0)
        *failed = true;
}

/* D33: the original put the Moog API key into queue items; never carry one forward. */
static json_t *raw_copy(const json_t *event)
{
    /* Without a key to strip, share the event instead of copying it (one copy per alert was a
     * measurable share of the alert stage's CPU): the alert holds a reference, so callers must
     * not change the event while the alert lives. */
    if (json_object_get(event, "api_key") == NULL)
        return json_incref((json_t *)event);
    json_t *copy = json_deep_copy(event);
    if (copy)
        json_object_del(copy, "api_key");
    return copy;
}

static void copy_ids(json_t *alert, const json_t *event, bool *failed)
{
    static const char *const ids[] = {"_correlation_id", "_event_id"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        json_t *v = json_object_get(event, ids[i]);
        if (json_is_string(v))
            set(alert, ids[i], json_string(json_string_value(v)), failed);
    }
}

json_t *mutt_alert_build(const json_t *event, const struct mutt_rule *rule, enum mutt_env env,
                         const char *decision)
{
    bool failed = false;
    json_t *alert;
    const char *host = event_str(event, "hostname");

    if (!json_is_object(event) || !rule)
        return NULL;
    alert = json_object();
    if (!alert)
        return NULL;
    set(alert, "hostname", json_string(host), &failed);
    set(alert, "team_assignment", json_string(rule->team_assignment ? rule->team_assignment : ""),
        &failed);
    set(alert, "severity", json_string(mutt_severity_alert_name(mutt_event_severity(event))),
        &failed);
    set(alert, "message_body", json_string(event_str(event, "message")), &failed);
    set(alert, "raw_json", raw_copy(event), &failed);
    set(alert, "handling_decision", json_string(decision ? decision : ""), &failed);
    set(alert, "rule_id", json_integer((json_int_t)rule->id), &failed);
    set(alert, "environment", json_string(mutt_env_name(env)), &failed);
    copy_ids(alert, event, &failed);
    set(alert, "signature", json_string(host), &failed);
    set(alert, "source_hostname", json_string(host), &failed);
    if (failed) {
        json_decref(alert);
        return NULL;
    }
    return alert;
}

/* Byte length of the first max_chars UTF-8 characters of s (s is valid UTF-8: jansson). */
static size_t utf8_prefix(const char *s, size_t max_chars)
{
    size_t i = 0, chars = 0;
    while (s[i] && chars < max_chars) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    return i;
}

json_t *mutt_alert_build_meta(const json_t *event, const char *team, int threshold,
                              int64_t expiry_s)
{
    bool failed = false;
    json_t *alert;
    const char *host = event_str(event, "hostname");
    const char *msg = event_str(event, "message");
    char *body = NULL, *signature = NULL;

    if (!json_is_object(event))
        return NULL;
    /* ">=" (CONTRACT §4): the meta-alert fires at or above the threshold, not only when the
     * count equals it as in the original */
    if (asprintf(&body,
                 "[MUTT] Detected >= %d unhandled messages in %llds from '%s'. Sample message: %.*s",
                 threshold, (long long)expiry_s, host, (int)utf8_prefix(msg, MUTT_ALERT_SAMPLE_CHARS),
                 msg) < 0)
        return NULL;
    if (asprintf(&signature, "%s%s", MUTT_ALERT_META_SIGNATURE_PREFIX, host) < 0) {
        free(body);
        return NULL;
    }
    alert = json_object();
    if (!alert)
        goto out;
    set(alert, "hostname", json_string(MUTT_ALERT_META_HOSTNAME), &failed);
    set(alert, "team_assignment", json_string(team ? team : ""), &failed);
    set(alert, "severity", json_string("Warning"), &failed);
    set(alert, "message_body", json_string(body), &failed);
    set(alert, "raw_json", raw_copy(event), &failed);
    set(alert, "handling_decision", json_null(), &failed);
    set(alert, "rule_id", json_null(), &failed);
    set(alert, "environment", json_null(), &failed);
    copy_ids(alert, event, &failed);
    set(alert, "signature", json_string(signature), &failed);
    set(alert, "source_hostname", json_string(host), &failed);
    if (failed) {
        json_decref(alert);
        alert = NULL;
    }
out:
    free(body);
    free(signature);
    return alert;
}
