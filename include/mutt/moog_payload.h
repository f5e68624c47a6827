/* Builds the Moogsoft event body from an alert-queue item (CONTRACT §5, D1, D15, D33;
 * reference §6.2). Pure: time and version are parameters; never copies an `api_key`. Any thread. */
#ifndef MUTT_MOOG_PAYLOAD_H
#define MUTT_MOOG_PAYLOAD_H

#include <stdint.h>
#include <jansson.h>

/* Moog severity for an alert severity name (case-insensitive): Critical 5, Major 4, Warning 3,
 * Minor 2, Info 1, Clear 0 (reference §6.2, kept as the original numbered them); NULL or any
 * other name -> 3. */
int mutt_moog_severity(const char *alert_severity);

/* Returns a new object (caller owns the reference), or NULL when `alert` is not an object or
 * memory ran out. `alert` is borrowed and left unchanged. Fields, each always present:
 *   signature, source_id  alert "signature", else "hostname", else "unknown"        (D15)
 *   external_id           "_event_id", else "_correlation_id", else "unknown"       (D1)
 *   manager "MUTT"; agent "MUTT <version>"; agent_location "Alerter Service"; type "Alert"
 *   source                "source_hostname", else "hostname", else "unknown"
 *   class                 "team_assignment", else "Unknown"
 *   severity              mutt_moog_severity(alert "severity")   (integer 0..5, W26)
 *   description           "message_body", else ""
 *   agent_time            now_epoch_s (integer; the send time, as the original)
 *   custom_info           {raw_event, rule_id, handling_decision, environment, correlation_id,
 *                          event_id} from "raw_json", "rule_id", "handling_decision",
 *                          "environment", "_correlation_id", "_event_id"; null when absent.
 *                          raw_event has no top-level "api_key" (D33): a copy without it when
 *                          raw_json has one, else raw_json itself, shared (a reference: change
 *                          neither the payload's raw_event nor the alert while both live).
 * Only string values are taken for the text fields; a non-string counts as absent. */
json_t *mutt_moog_payload(const json_t *alert, const char *version, int64_t now_epoch_s);

#endif
