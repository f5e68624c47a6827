/* Rule validation and matching (src/domain/rules.c through mutt_api_rule_validate in
 * src/domain/webapi.c, the door every rule comes in by). Input: a JSON rule body, or, when it is
 * not JSON, a regex. Properties: whatever the API accepts (create, or update of a stored row)
 * has exactly the nine fields, passes mutt_rules_validate and compiles (the alerter must never
 * meet a rule the API let in); the indexed matcher and the plain scan agree on messages made
 * from the input; a refused body names a reason. */
#include "fuzz.h"

#include <jansson.h>

#include "mutt/rules.h"
#include "mutt/webapi.h"

static const char *str_or_null(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void check_accepted(const json_t *r, const char *message, size_t mlen, struct mutt_match_scratch *scratch)
{
    FUZZ_CHECK(json_object_size(r) == 9, "accepted rule has %zu fields", json_object_size(r));
    for (int i = 0; i < 9; i++) {
        json_t *v = json_object_get(r, mutt_api_rule_fields[i]);
        FUZZ_CHECK(v != NULL, "accepted rule lacks %s", mutt_api_rule_fields[i]);
        /* PostgreSQL text cannot hold NUL: an accepted string must not carry one */
        if (json_is_string(v))
            FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v), "%s holds a NUL byte",
                       mutt_api_rule_fields[i]);
    }
    json_t *sev = json_object_get(r, "syslog_severity");
    struct mutt_rule rule = {
        .id = 7,
        .match_string = str_or_null(r, "match_string"),
        .trap_oid = str_or_null(r, "trap_oid"),
        .syslog_severity = json_is_integer(sev) ? (int)json_integer_value(sev) : -1,
        .priority = (int)json_integer_value(json_object_get(r, "priority")),
        .prod_handling = str_or_null(r, "prod_handling"),
        .dev_handling = str_or_null(r, "dev_handling"),
        .team_assignment = str_or_null(r, "team_assignment"),
        .is_active = true,
    };
    FUZZ_CHECK(mutt_rules_match_type_parse(str_or_null(r, "match_type"), &rule.match_type) == 0, "match_type %s",
               str_or_null(r, "match_type"));
    char err[256];
    FUZZ_CHECK(mutt_rules_validate(&rule, err, sizeof err) == 0, "API accepted what validate refuses: %s", err);
    /* a second rule that always matches, behind it, so the two matchers have a choice to make */
    struct mutt_rule rules[2] = {rule, {.id = 8, .match_string = "", .trap_oid = ".1", .syslog_severity = -1,
                                        .match_type = MUTT_MATCH_OID_PREFIX, .priority = rule.priority,
                                        .prod_handling = "x", .dev_handling = "x", .team_assignment = "t",
                                        .is_active = true}};
    struct mutt_ruleset *rs = mutt_rules_compile(rules, 2, err, sizeof err);
    FUZZ_CHECK(rs != NULL, "API accepted what compile refuses: %s", err);
    const char *oids[] = {NULL, rule.trap_oid, "1.3.6.1.4.1.9", rule.match_string};
    for (int sev_i = -1; sev_i <= 7; sev_i += 4) {
        for (size_t o = 0; o < sizeof oids / sizeof oids[0]; o++) {
            const char *msgs[] = {message, rule.match_string ? rule.match_string : ""};
            size_t lens[] = {mlen, strlen(msgs[1])};
            for (int m = 0; m < 2; m++) {
                const struct mutt_rule *a =
                    mutt_rules_first_match(rs, msgs[m], lens[m], oids[o], sev_i, scratch);
                const struct mutt_rule *b =
                    mutt_rules_first_match_linear(rs, msgs[m], lens[m], oids[o], sev_i, scratch);
                FUZZ_CHECK(a == b, "index says rule %lld, scan says %lld (oid %s, severity %d, message '%.*s')",
                           a ? (long long)a->id : -1LL, b ? (long long)b->id : -1LL, oids[o] ? oids[o] : "-",
                           sev_i, (int)lens[m], msgs[m]);
            }
        }
    }
    mutt_rules_destroy(rs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mutt_match_scratch *scratch;
    if (scratch == NULL && (scratch = mutt_match_scratch_create()) == NULL)
        return 0;
    /* the flags of the web stage's body parser (src/web/web_call.c), which refuses "\u0000" */
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (body == NULL) {
        char *re = fuzz_strndup(data, size);
        char err[256] = "";
        if (re != NULL && mutt_rules_validate_regex(re, err, sizeof err) != 0)
            FUZZ_CHECK(err[0] != '\0', "regex refused without a message");
        free(re);
        return 0;
    }
    json_t *base = json_pack("{s:s, s:n, s:n, s:s, s:i, s:s, s:s, s:s, s:b}", "match_string", "link down", "trap_oid",
                             "syslog_severity", "match_type", "contains", "priority", 10, "prod_handling",
                             "Page_and_ticket", "dev_handling", "Ignore", "team_assignment", "netops", "is_active", 1);
    const json_t *bases[] = {NULL, base};
    for (int i = 0; i < 2; i++) {
        json_t *out = NULL;
        int changed = -1;
        char err[512] = "";
        const char *bad = NULL;
        if (mutt_api_rule_validate(body, bases[i], &out, &changed, err, sizeof err, &bad) == 0) {
            FUZZ_CHECK(changed >= 0 && changed <= 9, "changed %d", changed);
            check_accepted(out, (const char *)data, size, scratch);
            json_decref(out);
        } else {
            FUZZ_CHECK(out == NULL && err[0] != '\0', "refusal without message");
        }
    }
    json_decref(base);
    json_decref(body);
    return 0;
}
