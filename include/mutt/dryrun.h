/* Rule dry-run (issue 16 §1, D41): what a candidate rule would catch in the sample of recent
 * events (MUTT_KEY_SAMPLE_EVENTS), compared with the rules as they are. Both rulesets are compiled
 * and matched by rules.h and the decision comes from alert_item.h, the code the alert stage runs:
 * priority order, ties by id, dev-host handling. Pure: the callers (web stage, CLI) read the rows
 * from PostgreSQL and the sample from Redis and feed them in. Any thread, one caller per object. */
#ifndef MUTT_DRYRUN_H
#define MUTT_DRYRUN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The rows a dry-run needs, in one snapshot: $1 = every alert_rules row (inactive ones too: an
 * edit may start from one) as a JSON array ordered by (priority, id), $2 = the dev hosts as a JSON
 * array of names, $3 = the maintenance windows active now ({id, hostname_pattern, team,
 * starts_ms, ends_ms}, epoch ms), $4 = PostgreSQL's now in epoch ms (the clock $3 was chosen
 * by, so the domain's own check agrees with it). Four text columns, one row. Shared by the web
 * stage and the CLI. */
#define MUTT_DRYRUN_ROWS_SQL                                                                              \
    "SELECT (SELECT coalesce(json_agg(r ORDER BY r.priority, r.id), '[]'::json) FROM ("                  \
    "  SELECT id, match_string, trap_oid, syslog_severity, match_type, priority, prod_handling,"         \
    "         dev_handling, team_assignment, is_active FROM alert_rules) r)::text,"                      \
    " (SELECT coalesce(json_agg(hostname), '[]'::json) FROM development_hosts)::text,"                    \
    " (SELECT coalesce(json_agg(w ORDER BY w.id), '[]'::json) FROM ("                                    \
    "  SELECT id, hostname_pattern, team, (extract(epoch FROM starts_at) * 1000)::bigint AS starts_ms,"   \
    "         (extract(epoch FROM ends_at) * 1000)::bigint AS ends_ms FROM maintenance_windows"          \
    "  WHERE starts_at <= now() AND ends_at > now()) w)::text,"                                          \
    " ((extract(epoch FROM now()) * 1000)::bigint)::text"

#define MUTT_DRYRUN_MAX_EXAMPLES 20

/* The body's optional "rule_id": absent or null -> *edit_id = 0 (a new rule); a positive integer
 * within int32 -> that id (an edit). Returns 0, or MUTT_EINVAL with the message in err. */
int mutt_dryrun_parse_rule_id(const json_t *body, int64_t *edit_id, char *err, size_t errlen);

/* The candidate rule of a dry-run body, validated exactly as the API validates it
 * (mutt_api_rule_validate): a new rule (edit_id 0) as POST /rules does; an edit as PUT
 * /rules/{id} does, over the stored row of `rows` (MUTT_DRYRUN_ROWS_SQL's first column) with that
 * id; an edit body without any rule field tries the stored rule as it is. Fields other than the
 * rule's own ("rule_id", "reason") are ignored. On success *candidate is a new object with the
 * nine rule fields (caller decrefs). Returns 0; MUTT_EINVAL (400: err, *bad_field or NULL);
 * MUTT_ENOTFOUND (no row has edit_id); MUTT_ENOMEM. */
int mutt_dryrun_candidate(const json_t *body, const json_t *rows, int64_t edit_id, json_t **candidate, char *err,
                          size_t errlen, const char **bad_field);

struct mutt_dryrun;

/* Prepares a dry-run: the current ruleset from the active rows of `rows`, the proposed one from
 * the same rows with the candidate in place of row edit_id (edit) or added with id max(id) + 1
 * (new: the id PostgreSQL's sequence would give it, so priority ties break as they will), and
 * the dev-host set from `dev_hosts` (JSON array of names, exact match as the alert stage's
 * cache). Stored rows that fail mutt_rules_validate are left out of both, as the alert stage's
 * cache leaves them out. All arguments are borrowed (copied). NULL on OOM or a candidate that
 * does not compile, with the reason in err. */
struct mutt_dryrun *mutt_dryrun_create(const json_t *rows, const json_t *dev_hosts, const json_t *candidate,
                                       int64_t edit_id, char *err, size_t errlen);
void mutt_dryrun_destroy(struct mutt_dryrun *d); /* NULL is fine */

/* The maintenance windows to honour (issue 16 §3): a JSON array as MUTT_DRYRUN_ROWS_SQL's third
 * column gives it, judged at now_ms (its fourth) by mutt_maint_match, the alert stage's own
 * matching. Call before the first mutt_dryrun_add_event. An example whose decision would forward
 * while a window active at now_ms holds its host (for that rule's team) gets the decision
 * "Maintenance", not forwarded, and counts in held_by_maintenance. Entries that are not objects
 * with a string hostname_pattern and integer id/starts_ms/ends_ms are left out. Borrows windows
 * (copied). Returns 0 or MUTT_ENOMEM. */
int mutt_dryrun_set_windows(struct mutt_dryrun *d, const json_t *windows, int64_t now_ms);

/* Feeds one sample item (an event as the alert stage matched it; data borrowed). Items that do
 * not parse as a JSON object are skipped and not counted as examined. Returns 0 or MUTT_ENOMEM. */
int mutt_dryrun_add_event(struct mutt_dryrun *d, const char *data, size_t len);

/* Counts so far. Per examined event, with cur = first match of the current rules and next = first
 * match of the proposed ones: would_match when next is the candidate; newly_matched when it
 * would match and cur is not the same rule (for an edit, events the rule already catches are
 * not new); then taken_from[cur id] when cur is another rule, else unhandled_now_handled. So
 * newly_matched == sum(taken_from) + unhandled_now_handled. */
struct mutt_dryrun_counts {
    uint64_t examined;
    uint64_t would_match;
    uint64_t newly_matched;
    uint64_t unhandled_now_handled;
    uint64_t held_by_maintenance; /* of would_match: held by a window active now, not forwarded */
    uint64_t skipped; /* sample items that were not JSON objects */
};
void mutt_dryrun_counts(const struct mutt_dryrun *d, struct mutt_dryrun_counts *out);
/* Events taken from rule `rule_id` (0 when none). */
uint64_t mutt_dryrun_taken_from(const struct mutt_dryrun *d, int64_t rule_id);

/* The D41 answer: {"examined","would_match","newly_matched","taken_from":{"<id>":n},
 * "unhandled_now_handled","held_by_maintenance","examples":[...]}; examples are the first
 * MUTT_DRYRUN_MAX_EXAMPLES events fed in that would match, each {"event": the event, "decision":
 * {"rule_id" (null for a new rule), "handling_decision", "environment", "forwarded",
 * "team_assignment", and "maintenance_window": id only when a window holds it}, "current":
 * {"rule_id", "handling_decision"} (nulls when it is unhandled today; "Maintenance" when a window
 * holds what the current rule would forward)}. New reference (caller
 * decrefs), NULL on OOM. */
json_t *mutt_dryrun_result(const struct mutt_dryrun *d);

#endif
