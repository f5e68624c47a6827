/* Alert rules (CONTRACT §4, D13, W25): validation, compilation into an indexed ruleset, and
 * first-match lookup for one event. Pure: no I/O, no logging, no clock. A compiled ruleset is
 * immutable and may be shared; each matching caller brings its own scratch (loop thread only). */
#ifndef MUTT_RULES_H
#define MUTT_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mutt_match_type {
    MUTT_MATCH_CONTAINS = 0, /* match_string: ASCII case-insensitive substring */
    MUTT_MATCH_REGEX,        /* match_string: PCRE2 caseless unanchored search */
    MUTT_MATCH_OID_PREFIX,   /* OID-only rule: trap_oid set, match_string unset */
};

/* One row of alert_rules. Strings are borrowed by the functions below (compile copies them);
 * NULL and "" both mean "not set" for match_string and trap_oid. */
struct mutt_rule {
    int64_t id;
    const char *match_string;        /* NULL/"" = no string criterion */
    const char *trap_oid;            /* NULL/"" = no OID criterion; leading '.', trailing ".*" ok */
    int syslog_severity;             /* 0..7, -1 = any severity */
    enum mutt_match_type match_type;
    int priority;                    /* lower wins; ties broken by id */
    const char *prod_handling;       /* decision when the host is not a development host */
    const char *dev_handling;        /* decision for development hosts */
    const char *team_assignment;
    bool is_active;                  /* inactive rules are dropped by compile */
};

/* Default PCRE2 limits per regex evaluation; hitting one counts as "no match" (D13). */
#define MUTT_RULES_MATCH_LIMIT 100000u
#define MUTT_RULES_DEPTH_LIMIT 10000u

/* "contains" / "regex" / "oid_prefix" (exact, lower case). Returns 0 or MUTT_EINVAL. */
int mutt_rules_match_type_parse(const char *name, enum mutt_match_type *out);
/* Static name of a match type ("contains" for unknown values). */
const char *mutt_rules_match_type_name(enum mutt_match_type t);

/* Write-time check of a regex (web API): compiles it with the flags matching uses. Returns 0, or
 * MUTT_EINVAL with the PCRE2 message and offset in err (err may be NULL). */
int mutt_rules_validate_regex(const char *pattern, char *err, size_t errlen);

/* Write-time check of a whole rule, the same one compile applies to each active rule: needs
 * match_string or trap_oid; oid_prefix needs trap_oid and no match_string; trap_oid must be dot
 * separated non-empty components (leading '.' and trailing ".*" allowed); severity -1..7;
 * regex must compile. Returns 0 or MUTT_EINVAL (message names the rule id). */
int mutt_rules_validate(const struct mutt_rule *rule, char *err, size_t errlen);

struct mutt_ruleset;

/* Copies the active rules among rules[0..n) into a new ruleset ordered by (priority ASC, id ASC),
 * compiles regexes (PCRE2_UTF|PCRE2_UCP|PCRE2_CASELESS, JIT when available) and builds the match
 * indexes. rules is borrowed. Returns NULL on failure with the reason in err: an invalid rule
 * (named by id, see mutt_rules_validate) or "out of memory". n == 0 gives an empty ruleset. */
struct mutt_ruleset *mutt_rules_compile(const struct mutt_rule *rules, size_t n, char *err,
                                        size_t errlen);
/* Frees the ruleset (NULL is fine). Rules returned by it become invalid. */
void mutt_rules_destroy(struct mutt_ruleset *rs);

/* Number of (active) rules, and the i-th in match order; the rule's strings are owned by rs. */
size_t mutt_rules_count(const struct mutt_ruleset *rs);
const struct mutt_rule *mutt_rules_at(const struct mutt_ruleset *rs, size_t i);

/* Per-caller matching state: PCRE2 match data and match context (limits), plus the count of
 * regex evaluations stopped by a limit. Independent of any ruleset, so it survives reloads. */
struct mutt_match_scratch;

/* Returns a scratch with the default limits, or NULL on OOM. */
struct mutt_match_scratch *mutt_match_scratch_create(void);
void mutt_match_scratch_destroy(struct mutt_match_scratch *s); /* NULL is fine */
/* Sets PCRE2 match and depth limits (0 keeps the current value). Returns 0 or MUTT_EINVAL. */
int mutt_match_scratch_set_limits(struct mutt_match_scratch *s, uint32_t match_limit,
                                  uint32_t depth_limit);
/* Regex evaluations that hit a PCRE2 limit (match, depth, heap, JIT stack) since creation:
 * the source of mutt_alerter_regex_limit_hits_total. */
uint64_t mutt_match_scratch_regex_limit_hits(const struct mutt_match_scratch *s);

/* First rule in (priority, id) order that matches the event, or NULL. message[0..len) need not
 * be NUL-terminated; trap_oid is a C string or NULL; severity is the event's normalised syslog
 * severity (0..7) or -1. Uses the indexes; never allocates. */
const struct mutt_rule *mutt_rules_first_match(const struct mutt_ruleset *rs, const char *message,
                                               size_t len, const char *trap_oid, int severity,
                                               struct mutt_match_scratch *scratch);
/* The same answer by a plain scan over every rule (the reference the index is tested against). */
const struct mutt_rule *mutt_rules_first_match_linear(const struct mutt_ruleset *rs,
                                                      const char *message, size_t len,
                                                      const char *trap_oid, int severity,
                                                      struct mutt_match_scratch *scratch);

#endif
