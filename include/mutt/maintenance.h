/* Maintenance windows (issue 16 §3, D40 D42): which window, if any, holds an event (hostname glob
 * and optional team, at a given instant), validation of a window's API body, and the one summary
 * alert a window forwards when it ends, built from the counts the alert stage kept.
 * Pure: no I/O, time comes in as an argument. Any thread. */
#ifndef MUTT_MAINTENANCE_H
#define MUTT_MAINTENANCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUTT_MAINT_DECISION "Maintenance"           /* D42: handling_decision of a suppressed event */
#define MUTT_MAINT_MAX_DURATION_MS (30LL * 86400000LL) /* ends_at - starts_at at most 30 days */
#define MUTT_MAINT_PATTERN_MAX 255                  /* bytes of hostname_pattern (column width) */
#define MUTT_MAINT_TEAM_MAX 100                     /* bytes of team (device_teams width) */
#define MUTT_MAINT_REASON_MAX 1000                  /* bytes of reason (as other audited writes) */
#define MUTT_MAINT_SUMMARY_SIGNATURE_PREFIX "mutt-maintenance:"

/* Count fields of a window's summary hash (the alert stage writes them, the summary reads them). */
#define MUTT_MAINT_FIELD_TOTAL "n"
#define MUTT_MAINT_FIELD_FIRST "first"              /* epoch ms of the first suppressed event */
#define MUTT_MAINT_FIELD_LAST "last"                /* epoch ms of the last one */
#define MUTT_MAINT_FIELD_RULE_PREFIX "r:"           /* r:<rule id> -> count */
#define MUTT_MAINT_FIELD_HOST_PREFIX "h:"           /* h:<hostname> -> count */
#define MUTT_MAINT_FIELD_HOSTS_OTHER "o"            /* events of hosts past the per-window host cap */
#define MUTT_MAINT_FIELD_UNHANDLED_PREFIX "u:"      /* u:<hostname> -> unhandled meta-alerts held */
#define MUTT_MAINT_FIELD_UNHANDLED_OTHER "uo"       /* meta-alerts held of hosts past the host cap */

/* One window as the alert stage holds it. Strings are borrowed from whoever loaded it. */
struct mutt_maint_window {
    int64_t id;
    const char *hostname_pattern; /* fnmatch glob, matched case-insensitively (hostnames are) */
    const char *team;             /* NULL or "" = any team; else equal (case-insensitive) to the rule's team */
    int64_t starts_ms;            /* epoch ms, inclusive */
    int64_t ends_ms;              /* epoch ms, exclusive */
    bool summary;                 /* forward one summary alert when it ends */
};

enum mutt_maint_state { MUTT_MAINT_SCHEDULED = 0, MUTT_MAINT_ACTIVE, MUTT_MAINT_ENDED };

/* Where `now_ms` falls for w: before starts (SCHEDULED), in [starts, ends) (ACTIVE), after. */
enum mutt_maint_state mutt_maint_state(const struct mutt_maint_window *w, int64_t now_ms);
/* Static name: "scheduled" / "active" / "ended". */
const char *mutt_maint_state_name(enum mutt_maint_state s);

/* The first of ws[0..n) that is active at now_ms, whose pattern matches hostname and whose team
 * (when set) equals team. NULL when none, or hostname is NULL. team may be NULL (matches only
 * windows without a team). Borrows everything; cannot fail. */
const struct mutt_maint_window *mutt_maint_match(const struct mutt_maint_window *ws, size_t n, const char *hostname,
                                                 const char *team, int64_t now_ms);

/* A POST body, validated. Strings are borrowed from the body. */
struct mutt_maint_spec {
    const char *hostname_pattern;
    const char *team;          /* NULL when absent, null or "" */
    const char *reason;        /* NULL when absent or null */
    int64_t starts_ms, ends_ms;
    bool summary;              /* default true */
};

/* Checks a POST /maintenance-windows body (a JSON object): hostname_pattern a non-empty glob of
 * at most 255 bytes without control characters and with balanced brackets; team optional (string
 * <= 100 bytes); starts_at and ends_at ISO 8601 strings (starts_at may be omitted: now), ends_at
 * after starts_at and after now_ms, at most 30 days apart; reason optional string <= 1000 bytes;
 * summary optional boolean. Returns 0 and fills *out, or MUTT_EINVAL with *field naming the field
 * at fault and msg (NUL-terminated, truncated to msglen) saying why. */
int mutt_maint_validate(const json_t *body, int64_t now_ms, struct mutt_maint_spec *out, const char **field,
                        char *msg, size_t msglen);

/* The summary alert of window w (fields as mutt_alert_build_meta's: hostname MUTT_Alerter,
 * team_assignment = w->team or default_team, severity Warning, message_body, raw_json = the
 * summary object {window_id, hostname_pattern, team, starts_at, ends_at, reason, suppressed,
 * by_rule{id:n}, by_host{host:n}, other_hosts, unhandled{host:n}, unhandled_other_hosts,
 * first_seen, last_seen}, where unhandled counts the unhandled-event meta-alerts the window held
 * per host (suppressed counts matched events only; first/last_seen cover both), handling_decision
 * "Maintenance", rule_id/environment null, _correlation_id "maintenance-window-<id>", _event_id,
 * signature "mutt-maintenance:<id>", source_hostname = the pattern). counts is the window's
 * hash as field/value pairs (fields[i] -> values[i], as HGETALL gives them; unknown fields are
 * ignored, bad numbers count as 0). reason may be NULL; event_id is a UUID string.
 * Returns a new reference, or NULL on OOM. */
json_t *mutt_maint_summary_alert(const struct mutt_maint_window *w, const char *reason, const char *default_team,
                                 const char *const *fields, const char *const *values, size_t n,
                                 const char *event_id);

#endif
