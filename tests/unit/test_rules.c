/* Unit tests of the rules engine (src/domain/rules.c): every matching criterion, ordering,
 * validation, PCRE2 limits, the indexed matcher against the linear reference on random rule
 * sets, and the shared demo data against the five sample rules of reference §4.1.
 * No I/O except reading the demo data files of tests/data/ (a missing one fails). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/rules.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static struct mutt_rule rule(int64_t id, int priority, enum mutt_match_type type,
                             const char *match_string, const char *trap_oid, int severity)
{
    return (struct mutt_rule){
        .id = id,
        .match_string = match_string,
        .trap_oid = trap_oid,
        .syslog_severity = severity,
        .match_type = type,
        .priority = priority,
        .prod_handling = "Page_and_ticket",
        .dev_handling = "Ignore",
        .team_assignment = "NETO",
        .is_active = true,
    };
}

static struct mutt_ruleset *compile_ok(const struct mutt_rule *rules, size_t n)
{
    char err[256] = "";
    struct mutt_ruleset *rs = mutt_rules_compile(rules, n, err, sizeof err);
    if (!rs)
        fail_msg("compile failed: %s", err);
    return rs;
}

/* Matches with both matchers, fails when they disagree, returns the rule id or -1. */
static int64_t match_both_sev(const struct mutt_ruleset *rs, const char *msg, const char *oid,
                              int sev, struct mutt_match_scratch *s)
{
    size_t len = msg ? strlen(msg) : 0;
    const struct mutt_rule *a = mutt_rules_first_match(rs, msg, len, oid, sev, s);
    const struct mutt_rule *b = mutt_rules_first_match_linear(rs, msg, len, oid, sev, s);
    if (a != b)
        fail_msg("index %lld != linear %lld for msg '%s' oid '%s' sev %d",
                 a ? (long long)a->id : -1LL, b ? (long long)b->id : -1LL, msg ? msg : "(null)",
                 oid ? oid : "(null)", sev);
    return a ? a->id : -1;
}

static int64_t match_both(const struct mutt_ruleset *rs, const char *msg, const char *oid,
                          struct mutt_match_scratch *s)
{
    return match_both_sev(rs, msg, oid, -1, s);
}

static int setup(void **state)
{
    *state = mutt_match_scratch_create();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    mutt_match_scratch_destroy(*state);
    return 0;
}

/* ---- contains ------------------------------------------------------------------------------- */

static void test_rules_contains_is_ascii_case_insensitive(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "Link-Down", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "%LINK-DOWN on Gi0/1", NULL, *state), 1);
    assert_int_equal(match_both(rs, "xx link-down", NULL, *state), 1);
    assert_int_equal(match_both(rs, "link-dow", NULL, *state), -1);
    assert_int_equal(match_both(rs, "link down", NULL, *state), -1);
    assert_int_equal(match_both(rs, "", NULL, *state), -1);
    assert_int_equal(match_both(rs, NULL, NULL, *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_contains_compares_non_ascii_bytes_exactly(void **state)
{
    /* "café": only the ASCII letters fold; é (C3 A9) and É (C3 89) stay different */
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "caf\xc3\xa9", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "LE CAF\xc3\xa9 OUVERT", NULL, *state), 1);
    assert_int_equal(match_both(rs, "LE CAF\xc3\x89 OUVERT", NULL, *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_contains_short_needles_match(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "zq", NULL, -1),
                            rule(2, 20, MUTT_MATCH_CONTAINS, "X", NULL, -1),
                            rule(3, 30, MUTT_MATCH_CONTAINS, "abc", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 3);

    assert_int_equal(match_both(rs, "..ZQ..", NULL, *state), 1);
    assert_int_equal(match_both(rs, "box", NULL, *state), 2);
    assert_int_equal(match_both(rs, "ABC", NULL, *state), 3);
    assert_int_equal(match_both(rs, "ab", NULL, *state), -1);
    mutt_rules_destroy(rs);
}

/* ---- regex ---------------------------------------------------------------------------------- */

static void test_rules_regex_is_caseless_unanchored_search(void **state)
{
    struct mutt_rule r[] = {rule(7, 10, MUTT_MATCH_REGEX, "link-(up|down)", NULL, -1),
                            rule(8, 20, MUTT_MATCH_REGEX, "^start", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 2);

    assert_int_equal(match_both(rs, "%LINEPROTO LINK-DOWN here", NULL, *state), 7);
    assert_int_equal(match_both(rs, "Link-Up", NULL, *state), 7);
    assert_int_equal(match_both(rs, "START of it", NULL, *state), 8);
    assert_int_equal(match_both(rs, "not start", NULL, *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_regex_folds_unicode_case(void **state)
{
    /* UCP caseless: É matches é, and the Kelvin sign (U+212A) matches k, which a byte-wise
     * literal prefilter alone would miss */
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_REGEX, "caf\xc3\xa9", NULL, -1),
                            rule(2, 20, MUTT_MATCH_REGEX, "kelvin \\d+", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 2);

    assert_int_equal(match_both(rs, "CAF\xc3\x89", NULL, *state), 1);
    assert_int_equal(match_both(rs, "\xe2\x84\xaa" "ELVIN 300", NULL, *state), 2);
    assert_int_equal(match_both(rs, "KELVIN 300", NULL, *state), 2);
    assert_int_equal(match_both(rs, "kelvin x", NULL, *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_invalid_regex_refused_naming_rule(void **state)
{
    char err[256] = "";
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "ok", NULL, -1),
                            rule(42, 20, MUTT_MATCH_REGEX, "link-(up|down", NULL, -1)};

    assert_null(mutt_rules_compile(r, 2, err, sizeof err));
    assert_non_null(strstr(err, "rule 42"));
    assert_non_null(strstr(err, "offset"));
    assert_int_equal(mutt_rules_validate_regex("link-(up|down", err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "missing closing parenthesis"));
    assert_int_equal(mutt_rules_validate_regex("link-(up|down)", err, sizeof err), 0);
    assert_int_equal(mutt_rules_validate(&r[1], err, sizeof err), MUTT_EINVAL);
    assert_non_null(strstr(err, "rule 42"));
}

static void test_rules_regex_limit_hit_is_no_match_and_counted(void **state)
{
    struct mutt_match_scratch *s = mutt_match_scratch_create(); /* own limits, not the group's */
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_REGEX, "(a+)+$", NULL, -1),
                            rule(2, 20, MUTT_MATCH_CONTAINS, "aaaa", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 2);
    const char *evil = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab";
    uint64_t before;

    assert_non_null(s);
    before = mutt_match_scratch_regex_limit_hits(s);
    assert_int_equal(before, 0);
    assert_int_equal(mutt_match_scratch_set_limits(s, 1000, 100), 0);
    assert_int_equal(match_both(rs, evil, NULL, s), 2);
    /* once per matcher */
    assert_int_equal(mutt_match_scratch_regex_limit_hits(s) - before, 2);
    /* a message the regex handles within the limit still matches it */
    assert_int_equal(match_both(rs, "aaa", NULL, s), 1);
    assert_int_equal(mutt_match_scratch_regex_limit_hits(s) - before, 2);
    mutt_rules_destroy(rs);
    mutt_match_scratch_destroy(s);
}

static void test_rules_regex_invalid_utf8_subject_is_no_match(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_REGEX, "bad.byte", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "bad\xffyte", NULL, *state), -1);
    assert_int_equal(match_both(rs, "bad byte", NULL, *state), 1);
    mutt_rules_destroy(rs);
}

/* ---- OID ------------------------------------------------------------------------------------ */

static void test_rules_oid_prefix_respects_dot_boundaries(void **state)
{
    struct mutt_rule r[] = {rule(5, 15, MUTT_MATCH_OID_PREFIX, NULL, ".1.3.6.1.4.1.9", -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "trap", "1.3.6.1.4.1.9.9.41", *state), 5);
    assert_int_equal(match_both(rs, "trap", "1.3.6.1.4.1.9", *state), 5);
    assert_int_equal(match_both(rs, "trap", "1.3.6.1.4.1.99", *state), -1);
    assert_int_equal(match_both(rs, "trap", "1.3.6.1.4.1", *state), -1);
    assert_int_equal(match_both(rs, "trap", "2.1.3.6.1.4.1.9", *state), -1);
    assert_int_equal(match_both(rs, "trap", "", *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_oid_leading_dot_ignored_on_both_sides(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_OID_PREFIX, NULL, "1.3.6.1.6.3.1.1.5", -1),
                            rule(2, 20, MUTT_MATCH_OID_PREFIX, NULL, ".1.3.6.1.2.1.15", -1)};
    struct mutt_ruleset *rs = compile_ok(r, 2);

    assert_int_equal(match_both(rs, "", ".1.3.6.1.6.3.1.1.5.3", *state), 1);
    assert_int_equal(match_both(rs, "", "1.3.6.1.6.3.1.1.5.3", *state), 1);
    assert_int_equal(match_both(rs, "", ".1.3.6.1.2.1.15.7.0.1", *state), 2);
    assert_int_equal(match_both(rs, "", "1.3.6.1.2.1.15.7.0.1", *state), 2);
    mutt_rules_destroy(rs);
}

static void test_rules_oid_trailing_star_allowed(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_OID_PREFIX, NULL, "1.3.6.1.4.1.9.*", -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "", "1.3.6.1.4.1.9.2", *state), 1);
    assert_int_equal(match_both(rs, "", "1.3.6.1.4.1.90.2", *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_oid_rule_never_matches_event_without_oid(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_OID_PREFIX, NULL, "1.3.6", -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "1.3.6 in the text", NULL, *state), -1);
    assert_int_equal(match_both(rs, "1.3.6 in the text", "", *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_string_rule_matches_events_with_oid(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "linkdown", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 1);

    assert_int_equal(match_both(rs, "SNMP trap linkDown", "1.3.6.1.6.3.1.1.5.3", *state), 1);
    mutt_rules_destroy(rs);
}

/* ---- severity, combined criteria ------------------------------------------------------------ */

static void test_rules_severity_must_equal_when_set(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "disk", NULL, 3),
                            rule(2, 20, MUTT_MATCH_OID_PREFIX, NULL, "1.3.6", 2),
                            rule(3, 30, MUTT_MATCH_CONTAINS, "disk", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 3);

    assert_int_equal(match_both_sev(rs, "disk full", NULL, 3, *state), 1);
    assert_int_equal(match_both_sev(rs, "disk full", NULL, 4, *state), 3);
    assert_int_equal(match_both_sev(rs, "disk full", NULL, -1, *state), 3);
    assert_int_equal(match_both_sev(rs, "trap", "1.3.6.1", 2, *state), 2);
    assert_int_equal(match_both_sev(rs, "trap", "1.3.6.1", 0, *state), -1);
    mutt_rules_destroy(rs);
}

static void test_rules_rule_with_string_and_oid_needs_both(void **state)
{
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, "down", "1.3.6.1.6.3.1.1.5", -1),
                            rule(2, 20, MUTT_MATCH_REGEX, "up$", "1.3.6.1.6.3.1.1.5", -1)};
    struct mutt_ruleset *rs = compile_ok(r, 2);

    assert_int_equal(match_both(rs, "link down", "1.3.6.1.6.3.1.1.5.3", *state), 1);
    assert_int_equal(match_both(rs, "link down", "1.3.6.1.6.3.1.1.6", *state), -1);
    assert_int_equal(match_both(rs, "link down", NULL, *state), -1);
    assert_int_equal(match_both(rs, "link up", "1.3.6.1.6.3.1.1.5.4", *state), 2);
    assert_int_equal(match_both(rs, "link up", NULL, *state), -1);
    mutt_rules_destroy(rs);
}

/* ---- ordering ------------------------------------------------------------------------------- */

static void test_rules_inactive_rules_are_skipped(void **state)
{
    struct mutt_rule r[] = {rule(1, 1, MUTT_MATCH_CONTAINS, "down", NULL, -1),
                            rule(2, 2, MUTT_MATCH_CONTAINS, "down", NULL, -1)};
    r[0].is_active = false;
    struct mutt_ruleset *rs = compile_ok(r, 2);

    assert_int_equal(mutt_rules_count(rs), 1);
    assert_int_equal(mutt_rules_at(rs, 0)->id, 2);
    assert_int_equal(match_both(rs, "down", NULL, *state), 2);
    mutt_rules_destroy(rs);
}

static void test_rules_first_match_wins_by_priority_then_id(void **state)
{
    struct mutt_rule r[] = {rule(1, 20, MUTT_MATCH_CONTAINS, "error", NULL, -1),
                            rule(9, 10, MUTT_MATCH_REGEX, "err", NULL, -1),
                            rule(5, 10, MUTT_MATCH_CONTAINS, "rror", NULL, -1),
                            rule(3, 10, MUTT_MATCH_OID_PREFIX, NULL, "1.3", -1),
                            rule(4, 30, MUTT_MATCH_CONTAINS, "e", NULL, -1)};
    struct mutt_ruleset *rs = compile_ok(r, 5);
    const int64_t order[] = {3, 5, 9, 1, 4};

    assert_int_equal(mutt_rules_count(rs), 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(mutt_rules_at(rs, i)->id, order[i]);
    assert_null(mutt_rules_at(rs, 5));
    assert_int_equal(match_both(rs, "ERROR", "1.3.1", *state), 3);
    assert_int_equal(match_both(rs, "ERROR", NULL, *state), 5);
    assert_int_equal(match_both(rs, "err", NULL, *state), 9);
    assert_int_equal(match_both(rs, "e", NULL, *state), 4);
    mutt_rules_destroy(rs);
}

static void test_rules_compile_copies_rule_strings(void **state)
{
    char text[] = "fan failure";
    char team[] = "Facilities";
    struct mutt_rule r[] = {rule(1, 10, MUTT_MATCH_CONTAINS, text, NULL, -1)};
    r[0].team_assignment = team;
    struct mutt_ruleset *rs = compile_ok(r, 1);

    memset(text, 'x', sizeof text - 1);
    memset(team, 'x', sizeof team - 1);
    const struct mutt_rule *m = mutt_rules_first_match(rs, "FAN FAILURE", 11, NULL, -1, *state);
    assert_non_null(m);
    assert_string_equal(m->match_string, "fan failure");
    assert_string_equal(m->team_assignment, "Facilities");
    assert_string_equal(m->prod_handling, "Page_and_ticket");
    mutt_rules_destroy(rs);
}

static void test_rules_empty_ruleset_matches_nothing(void **state)
{
    struct mutt_ruleset *rs = compile_ok(NULL, 0);

    assert_int_equal(mutt_rules_count(rs), 0);
    assert_int_equal(match_both(rs, "anything", "1.3.6", *state), -1);
    mutt_rules_destroy(rs);
    mutt_rules_destroy(NULL);
}

/* ---- validation ----------------------------------------------------------------------------- */

static void test_rules_validate_refuses_malformed_rules(void **state)
{
    char err[256];
    struct mutt_rule bad[] = {
        rule(11, 10, MUTT_MATCH_CONTAINS, NULL, NULL, -1),       /* no criterion */
        rule(12, 10, MUTT_MATCH_CONTAINS, "", "", -1),           /* empty = unset */
        rule(13, 10, MUTT_MATCH_OID_PREFIX, "x", NULL, -1),      /* oid_prefix without OID */
        rule(14, 10, MUTT_MATCH_OID_PREFIX, "x", "1.3", -1),     /* oid_prefix with a string */
        rule(15, 10, MUTT_MATCH_OID_PREFIX, NULL, "1..3", -1),   /* empty component */
        rule(16, 10, MUTT_MATCH_OID_PREFIX, NULL, "1.3.", -1),   /* trailing dot */
        rule(17, 10, MUTT_MATCH_OID_PREFIX, NULL, ".*", -1),     /* nothing left */
        rule(18, 10, MUTT_MATCH_CONTAINS, "x", NULL, 8),         /* severity out of range */
        rule(19, 10, (enum mutt_match_type)7, "x", NULL, -1),    /* unknown type */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[32];
        err[0] = '\0';
        assert_int_equal(mutt_rules_validate(&bad[i], err, sizeof err), MUTT_EINVAL);
        snprintf(want, sizeof want, "rule %lld", (long long)bad[i].id);
        assert_non_null(strstr(err, want));
        assert_null(mutt_rules_compile(&bad[i], 1, err, sizeof err));
        assert_non_null(strstr(err, want));
    }
    struct mutt_rule good = rule(20, 10, MUTT_MATCH_CONTAINS, NULL, ".1.3.6.*", 0);
    assert_int_equal(mutt_rules_validate(&good, err, sizeof err), 0);
    /* an inactive malformed rule does not block the others */
    bad[0].is_active = false;
    struct mutt_ruleset *rs = compile_ok(bad, 1);
    mutt_rules_destroy(rs);
}

static void test_rules_match_type_names_round_trip(void **state)
{
    enum mutt_match_type t;
    const char *names[] = {"contains", "regex", "oid_prefix"};

    for (int i = 0; i < 3; i++) {
        assert_int_equal(mutt_rules_match_type_parse(names[i], &t), 0);
        assert_int_equal((int)t, i);
        assert_string_equal(mutt_rules_match_type_name(t), names[i]);
    }
    assert_int_equal(mutt_rules_match_type_parse("Contains", &t), MUTT_EINVAL);
    assert_int_equal(mutt_rules_match_type_parse(NULL, &t), MUTT_EINVAL);
}

/* ---- index == linear, randomised -------------------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static uint32_t rnd_below(uint32_t n)
{
    return rnd() % n;
}

/* Small vocabulary so rules and events collide often; includes non-ASCII forms that fold to
 * ASCII letters under Unicode caseless matching (Kelvin sign, long s) and an accented word. */
static const char *const words[] = {
    "link", "down", "up", "error", "ERR", "fail", "failed", "port", "eth0", "Gi1/0/24", "kelvin",
    "\xe2\x84\xaa" "elvin", "sys", "\xc5\xbf" "ys", "caf\xc3\xa9", "CAF\xc3\x89", "disk", "full",
    "%LINK-3-UPDOWN:", "AAAA", "a", "b", "ab", "abc", "x", "10.0.0.1", "0x1f", "state", "to",
    "changed", "Line", "protocol", "on", "Interface", "critical", "CRITICAL", "DOT1X", "-", ":",
};
#define N_WORDS (sizeof words / sizeof words[0])

static const char *const regexes[] = {
    "link-(up|down)", "port \\d+", "err(or)?", "fa.l", "^sys", "[a-f]+0", "k\\w+n", "s.s",
    "ab?c", "x+y", "\\.1$", "(?i)down", "a{2,}", "\\bup\\b", "caf\xc3\xa9", "disk\\s+full",
    "%link-\\d-updown:", "state to (up|down)", "kelvin|sys", "[[:digit:]]+\\.[0-9]", "ful+",
    "Gi\\d/\\d/\\d+", "\\Qa.b\\E", "(?=link)link", "c*ritical", "dot1x", "0x[0-9a-f]+",
    "line\\sprotocol", "interface", "k", "s", "^$", "changed.*down", "\\x41A", "up\\b",
};
#define N_REGEXES (sizeof regexes / sizeof regexes[0])

static const char *const oid_bases[] = {"1.3.6.1.4.1.9.9.41.2", "1.3.6.1.6.3.1.1.5.3",
                                        "1.3.6.1.4.1.99.1", "1.3.6.1.2.1.15.7"};

static void random_oid(char *buf, size_t cap, bool for_rule)
{
    const char *base = oid_bases[rnd_below(4)];
    size_t n = strlen(base);
    size_t cut = rnd_below((uint32_t)n) + 1;
    /* cut on a component end so rules are valid */
    while (cut < n && base[cut] != '.')
        cut++;
    snprintf(buf, cap, "%s%.*s", rnd_below(3) == 0 ? "." : "", (int)cut, base);
    if (for_rule && rnd_below(4) == 0)
        strncat(buf, ".*", cap - strlen(buf) - 1);
    if (!for_rule && rnd_below(2))
        snprintf(buf + strlen(buf), cap - strlen(buf), ".%u", rnd_below(12));
}

static void random_message(char *buf, size_t cap)
{
    size_t n = 1 + rnd_below(10), pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && pos + 40 < cap; i++) {
        const char *w = words[rnd_below(N_WORDS)];
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", i ? (rnd_below(5) ? " " : "") : "", w);
    }
    /* random case flips of ASCII letters */
    for (size_t i = 0; buf[i]; i++) {
        if (rnd_below(6) == 0 && ((buf[i] >= 'a' && buf[i] <= 'z') || (buf[i] >= 'A' && buf[i] <= 'Z')))
            buf[i] ^= 0x20;
    }
}

static size_t min_needle = 1;     /* shortest contains needle the generator makes */
static uint32_t priority_span = 20; /* priorities are drawn from 0..span-1 (ties on purpose) */

struct rule_store {
    struct mutt_rule *rules;
    char (*text)[64];
    char (*oid)[64];
};

static void random_rules(struct rule_store *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t kind = rnd_below(100);
        struct mutt_rule *r = &st->rules[i];
        *r = rule((int64_t)(rnd_below((uint32_t)n * 4) + 1), (int)rnd_below(priority_span),
                  MUTT_MATCH_CONTAINS, NULL, NULL, rnd_below(6) == 0 ? (int)rnd_below(8) : -1);
        r->is_active = rnd_below(20) != 0;
        if (kind < 60) {
            /* a substring of a random message, 1..12 bytes */
            char msg[256];
            random_message(msg, sizeof msg);
            size_t len = strlen(msg), take = min_needle + rnd_below(12);
            size_t at = rnd_below((uint32_t)len);
            if (at + take > len)
                take = len - at;
            snprintf(st->text[i], 64, "%.*s", (int)take, msg + at);
            r->match_string = st->text[i];
        } else if (kind < 75) {
            r->match_type = MUTT_MATCH_REGEX;
            r->match_string = regexes[rnd_below(N_REGEXES)];
        } else {
            random_oid(st->oid[i], 64, true);
            r->trap_oid = st->oid[i];
            if (kind < 85) {
                r->match_type = MUTT_MATCH_OID_PREFIX;
            } else {
                r->match_type = rnd_below(2) ? MUTT_MATCH_REGEX : MUTT_MATCH_CONTAINS;
                r->match_string = r->match_type == MUTT_MATCH_REGEX ? regexes[rnd_below(N_REGEXES)]
                                                                   : words[rnd_below(N_WORDS)];
            }
        }
    }
}

/* Compares both matchers on `rounds` random rule sets; returns how many events matched and how
 * many distinct rules won, so callers can check the generator exercised what they meant. */
static void check_index_equals_linear(size_t n_rules, size_t n_events, int rounds, void **state,
                                      size_t *matched_out, size_t *total_out, size_t *winners_out)
{
    struct rule_store st = {calloc(n_rules, sizeof(struct mutt_rule)), calloc(n_rules, 64),
                            calloc(n_rules, 64)};
    size_t matched = 0, total = 0, winners = 0;
    unsigned char *won = calloc(n_rules, 1);

    assert_non_null(st.rules);
    assert_non_null(won);
    for (int round = 0; round < rounds; round++) {
        uint64_t seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(round + 1) + n_rules;
        rng_state = seed;
        random_rules(&st, n_rules);
        struct mutt_ruleset *rs = compile_ok(st.rules, n_rules);
        for (size_t e = 0; e < n_events; e++) {
            char msg[512], oid[64];
            random_message(msg, sizeof msg);
            bool with_oid = rnd_below(3) == 0;
            if (with_oid)
                random_oid(oid, sizeof oid, false);
            int sev = (int)rnd_below(9) - 1;
            const struct mutt_rule *a =
                mutt_rules_first_match(rs, msg, strlen(msg), with_oid ? oid : NULL, sev, *state);
            const struct mutt_rule *b = mutt_rules_first_match_linear(
                rs, msg, strlen(msg), with_oid ? oid : NULL, sev, *state);
            if (a != b)
                fail_msg("seed %llu event %zu: index %lld != linear %lld (msg '%s')",
                         (unsigned long long)seed, e, a ? (long long)a->id : -1LL,
                         b ? (long long)b->id : -1LL, msg);
            matched += a != NULL;
            total++;
            if (a) {
                size_t rank = 0;
                while (mutt_rules_at(rs, rank) != a)
                    rank++;
                winners += !won[rank];
                won[rank] = 1;
            }
        }
        memset(won, 0, n_rules);
        mutt_rules_destroy(rs);
    }
    *matched_out = matched;
    *total_out = total;
    *winners_out = winners;
    free(won);
    free(st.rules);
    free(st.text);
    free(st.oid);
}

static void test_rules_index_equals_linear_on_small_random_sets(void **state)
{
    size_t matched, total, winners;

    check_index_equals_linear(12, 500, 300, state, &matched, &total, &winners);
    /* both outcomes occur, or the comparison would prove little */
    assert_true(matched > total / 10);
    assert_true(matched < total - total / 10);
    assert_true(winners > 300);
}

static void test_rules_index_equals_linear_on_large_random_sets(void **state)
{
    size_t matched, total, winners;

    /* with thousands of rules nearly every event matches something; what is compared is which
     * rule wins, so many different rules must win */
    min_needle = 4;
    priority_span = 3000;
    check_index_equals_linear(3000, 4000, 4, state, &matched, &total, &winners);
    min_needle = 1;
    priority_span = 20;
    print_message("large sets: %zu of %zu events matched, %zu distinct winners\n", matched, total,
                  winners);
    assert_true(winners > 100);
}

/* ---- shared demo data against the sample rules (reference §4.1) -------------------------------- */

static const struct mutt_rule *sample_rules(size_t *n)
{
    static struct mutt_rule r[5];
    r[0] = rule(1, 10, MUTT_MATCH_CONTAINS, "CRITICAL", NULL, -1);
    r[1] = rule(2, 20, MUTT_MATCH_CONTAINS, "ERROR", NULL, -1);
    r[1].prod_handling = "Ticket_only";
    r[2] = rule(3, 5, MUTT_MATCH_CONTAINS, "LINK-DOWN", NULL, -1);
    r[2].team_assignment = "NetOps";
    r[3] = rule(4, 50, MUTT_MATCH_CONTAINS, "DOT1X-FIRMWARE-RUNNING", NULL, -1);
    r[3].team_assignment = "Security";
    r[4] = rule(5, 15, MUTT_MATCH_OID_PREFIX, NULL, ".1.3.6.1.4.1.9.9.41.2", -1);
    r[4].team_assignment = "NetOps";
    *n = 5;
    return r;
}

/* tests/data/ of the repository (the harness runs tests from its root); missing = failure. */
static json_t *load_shared(const char *name)
{
    char path[1024];
    json_error_t jerr;
    snprintf(path, sizeof path, "tests/data/%s", name);
    json_t *j = json_load_file(path, 0, &jerr);
    if (!j)
        fail_msg("fixture %s cannot be loaded: %s (run from the repository root)", path, jerr.text);
    return j;
}

/* counts[id] = events whose first match is rule id (index 0 = unmatched) */
static void count_matches(json_t *events, const char *msg_key, struct mutt_match_scratch *s,
                          size_t counts[6])
{
    size_t n;
    const struct mutt_rule *rules = sample_rules(&n);
    struct mutt_ruleset *rs = compile_ok(rules, n);
    size_t i;
    json_t *ev;

    memset(counts, 0, 6 * sizeof counts[0]);
    json_array_foreach(events, i, ev) {
        const char *msg = json_string_value(json_object_get(ev, msg_key));
        const char *oid = json_string_value(json_object_get(ev, "trap_oid"));
        size_t len = msg ? strlen(msg) : 0;
        const struct mutt_rule *lin =
            mutt_rules_first_match_linear(rs, msg, len, oid, mutt_event_severity(ev), s);
        const struct mutt_rule *idx =
            mutt_rules_first_match(rs, msg, len, oid, mutt_event_severity(ev), s);
        assert_ptr_equal(lin, idx);
        counts[lin ? lin->id : 0]++;
    }
    mutt_rules_destroy(rs);
}

static void test_rules_demo_syslog_events_match_sample_rules(void **state)
{
    json_t *events = load_shared("demo_syslog_events.json");
    size_t counts[6];

    assert_int_equal(json_array_size(events), 330);
    count_matches(events, "message", *state, counts);
    /* Only "ERROR" occurs (30 events, e.g. "%BGP-3-NOTIFICATION: ... (Unspecified Error)" and
     * "apache2[1234]: [error] ..."); no message holds CRITICAL, LINK-DOWN or
     * DOT1X-FIRMWARE-RUNNING, and syslog events have no trap_oid. */
    assert_int_equal(counts[0], 300);
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[2], 30);
    assert_int_equal(counts[3], 0);
    assert_int_equal(counts[4], 0);
    assert_int_equal(counts[5], 0);
    json_decref(events);
}

static void test_rules_demo_snmp_traps_match_sample_oid_rule(void **state)
{
    json_t *events = load_shared("demo_snmp_traps.json");
    size_t counts[6];

    assert_int_equal(json_array_size(events), 100);
    count_matches(events, "message", *state, counts);
    /* 5 traps carry 1.3.6.1.4.1.9.9.41.2.0.1 (clogMessageGenerated), under rule 5's
     * ".1.3.6.1.4.1.9.9.41.2" once the leading dot is ignored (the original never matched) */
    assert_int_equal(counts[5], 5);
    assert_int_equal(counts[0], 95);
    json_decref(events);
}

static void test_rules_hand_checked_sample_events(void **state)
{
    size_t n;
    const struct mutt_rule *rules = sample_rules(&n);
    struct mutt_ruleset *rs = compile_ok(rules, n);

    /* LINK-DOWN (p5) beats CRITICAL (p10) and ERROR (p20) */
    assert_int_equal(match_both(rs, "CRITICAL ERROR: %LINK-DOWN", NULL, *state), 3);
    assert_int_equal(match_both(rs, "CRITICAL: System failure detected", NULL, *state), 1);
    assert_int_equal(match_both(rs, "tomcat[5678]: SEVERE: Error listenerStart", NULL, *state), 2);
    /* OID rule (p15) beats ERROR (p20) but not CRITICAL (p10) */
    assert_int_equal(match_both(rs, "error", "1.3.6.1.4.1.9.9.41.2.0.1", *state), 5);
    assert_int_equal(match_both(rs, "critical", "1.3.6.1.4.1.9.9.41.2.0.1", *state), 1);
    assert_int_equal(
        match_both(rs, "%LINEPROTO-5-UPDOWN: Line protocol on Interface Gi0/0/0, changed state to down",
                   NULL, *state),
        -1);
    mutt_rules_destroy(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_contains_is_ascii_case_insensitive),
        cmocka_unit_test(test_rules_contains_compares_non_ascii_bytes_exactly),
        cmocka_unit_test(test_rules_contains_short_needles_match),
        cmocka_unit_test(test_rules_regex_is_caseless_unanchored_search),
        cmocka_unit_test(test_rules_regex_folds_unicode_case),
        cmocka_unit_test(test_rules_invalid_regex_refused_naming_rule),
        cmocka_unit_test(test_rules_regex_limit_hit_is_no_match_and_counted),
        cmocka_unit_test(test_rules_regex_invalid_utf8_subject_is_no_match),
        cmocka_unit_test(test_rules_oid_prefix_respects_dot_boundaries),
        cmocka_unit_test(test_rules_oid_leading_dot_ignored_on_both_sides),
        cmocka_unit_test(test_rules_oid_trailing_star_allowed),
        cmocka_unit_test(test_rules_oid_rule_never_matches_event_without_oid),
        cmocka_unit_test(test_rules_string_rule_matches_events_with_oid),
        cmocka_unit_test(test_rules_severity_must_equal_when_set),
        cmocka_unit_test(test_rules_rule_with_string_and_oid_needs_both),
        cmocka_unit_test(test_rules_inactive_rules_are_skipped),
        cmocka_unit_test(test_rules_first_match_wins_by_priority_then_id),
        cmocka_unit_test(test_rules_compile_copies_rule_strings),
        cmocka_unit_test(test_rules_empty_ruleset_matches_nothing),
        cmocka_unit_test(test_rules_validate_refuses_malformed_rules),
        cmocka_unit_test(test_rules_match_type_names_round_trip),
        cmocka_unit_test(test_rules_index_equals_linear_on_small_random_sets),
        cmocka_unit_test(test_rules_index_equals_linear_on_large_random_sets),
        cmocka_unit_test(test_rules_demo_syslog_events_match_sample_rules),
        cmocka_unit_test(test_rules_demo_snmp_traps_match_sample_oid_rule),
        cmocka_unit_test(test_rules_hand_checked_sample_events),
    };
    return cmocka_run_group_tests_name("rules", tests, setup, teardown);
}
