/* Alert decisions and alert-queue items (CONTRACT §4, D15, D33): which handling decision
 * forwards, and the JSON item the alert stage pushes to mutt:alert_queue for a handled event or
 * an unhandled-threshold meta-alert. Pure (jansson only), no I/O; any thread. */
#ifndef MUTT_ALERT_ITEM_H
#define MUTT_ALERT_ITEM_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "mutt/rules.h"

enum mutt_env {
    MUTT_ENV_PROD = 0, /* host not in development_hosts: prod_handling */
    MUTT_ENV_DEV,      /* host in development_hosts: dev_handling */
};

#define MUTT_ALERT_META_HOSTNAME "MUTT_Alerter"
#define MUTT_ALERT_META_SIGNATURE_PREFIX "mutt-unhandled:"
#define MUTT_ALERT_SAMPLE_CHARS 200 /* characters (code points) of the sample in a meta-alert */

/* "production" / "development". Static string. */
const char *mutt_env_name(enum mutt_env env);

/* The rule's decision for the environment (dev_handling or prod_handling; borrowed from rule,
 * "" when the rule has none). */
const char *mutt_handling_decision(const struct mutt_rule *rule, enum mutt_env env);

/* True when the decision forwards to Moog: Page_and_ticket, Page_only or Ticket_only, compared
 * case-insensitively (reference §5.4); everything else (Ignore, typos, NULL) does not. */
bool mutt_handling_forwards(const char *decision);

/* The rule that decides `event` (a JSON object, borrowed): the first match in rs of its message
 * ("" when absent or not a string), trap_oid and normalised syslog_severity, or NULL (unhandled).
 * The alert stage and the rule dry-run (dryrun.h) both decide through this one call. */
const struct mutt_rule *mutt_alert_match_event(const struct mutt_ruleset *rs, const json_t *event,
                                               struct mutt_match_scratch *scratch);

/* Alert item for a handled event. event and rule are borrowed. Fields, in this order:
 * hostname, team_assignment (rule), severity (mutt_severity_alert_name of the event's
 * normalised syslog_severity), message_body (event message), raw_json (the event itself, shared
 * by reference, or a deep copy without api_key when it has one, D33: do not change the event
 * while the alert lives), handling_decision, rule_id, environment, _correlation_id and _event_id
 * (copied when the event has them as strings), signature (= hostname), source_hostname.
 * No secrets. Missing string fields of the event become "". Returns a new reference, or NULL
 * on OOM or when event is not an object / rule is NULL. */
json_t *mutt_alert_build(const json_t *event, const struct mutt_rule *rule, enum mutt_env env,
                         const char *decision);

/* Meta-alert for a (hostname, template) that reached the unhandled threshold; event (borrowed)
 * is the one that crossed it. hostname MUTT_Alerter, team_assignment = team, severity Warning,
 * message_body "[MUTT] Detected >= <threshold> unhandled messages in <expiry_s>s from
 * '<hostname>'. Sample message: <first 200 characters>", raw_json (as above), handling_decision,
 * rule_id and environment null (no rule decided it), _correlation_id/_event_id as above,
 * signature "mutt-unhandled:<hostname>", source_hostname = the event's hostname.
 * Returns a new reference, or NULL on OOM / event not an object. */
json_t *mutt_alert_build_meta(const json_t *event, const char *team, int threshold,
                              int64_t expiry_s);

#endif
