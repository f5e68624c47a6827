/* Rule dry-run (include/mutt/dryrun.h): the candidate's validation, the two rulesets (as they are,
 * and with the candidate) and the per-event comparison over the sample. Matching and decisions
 * are rules.c and alert_item.c, the alert stage's own code, never a second copy. No I/O, no
 * clock; any thread. */
#include "mutt/dryrun.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/alert_item.h"
#include "mutt/error.h"
#include "mutt/maintenance.h"
#include "mutt/rules.h"
#include "mutt/webapi.h"

struct mutt_dryrun {
    struct mutt_ruleset *current;
    struct mutt_ruleset *proposed;
    struct mutt_match_scratch *scratch;
    json_t *dev_hosts;    /* object used as a set: hostname -> null */
    json_t *taken_from;   /* "<rule id>" -> integer */
    json_t *examples;     /* array, at most MUTT_DRYRUN_MAX_EXAMPLES */
    json_t *windows_json; /* owns the strings `windows` borrows */
    struct mutt_maint_window *windows; /* active maintenance windows (mutt_dryrun_set_windows) */
    size_t nwindows;
    int64_t now_ms;       /* the instant the windows are judged at */
    int64_t candidate_id; /* the candidate's id in `proposed` */
    bool is_edit;
    struct mutt_dryrun_counts counts;
};

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* the candidate                                                                               */

int mutt_dryrun_parse_rule_id(const json_t *body, int64_t *edit_id, char *err, size_t errlen)
{
    *edit_id = 0;
    const json_t *v = json_object_get(body, "rule_id");
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 2147483647LL)
        return fail(err, errlen, MUTT_EINVAL, "rule_id must be a positive integer");
    *edit_id = json_integer_value(v);
    return 0;
}

static const json_t *row_by_id(const json_t *rows, int64_t id)
{
    size_t i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        const json_t *rid = json_object_get(row, "id");
        if (json_is_integer(rid) && json_integer_value(rid) == id)
            return row;
    }
    return NULL;
}

int mutt_dryrun_candidate(const json_t *body, const json_t *rows, int64_t edit_id, json_t **candidate, char *err,
                          size_t errlen, const char **bad_field)
{
    *candidate = NULL;
    *bad_field = NULL;
    if (edit_id <= 0)
        return mutt_api_rule_validate(body, NULL, candidate, NULL, err, errlen, bad_field);
    const json_t *base = row_by_id(rows, edit_id);
    if (!base)
        return fail(err, errlen, MUTT_ENOTFOUND, "Rule not found");
    bool any = false;
    for (int i = 0; i < 9 && !any; i++)
        any = json_object_get(body, mutt_api_rule_fields[i]) != NULL;
    /* "test the rule as it is" is a question PUT never asks; the stored row is then the body */
    return mutt_api_rule_validate(any ? body : base, any ? base : NULL, candidate, NULL, err, errlen, bad_field);
}

/* ------------------------------------------------------------------------------------------ */
/* rulesets                                                                                    */

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* One row (or the candidate) as a struct mutt_rule borrowing the row's strings. False when the
 * row is inactive or would not survive the alert stage's cache load (alert_cache.c skips it). */
static bool row_rule(const json_t *row, int64_t id, struct mutt_rule *r)
{
    const json_t *act = json_object_get(row, "is_active");
    if (json_is_false(act))
        return false;
    memset(r, 0, sizeof *r);
    r->id = id;
    r->match_string = jstr(row, "match_string");
    r->trap_oid = jstr(row, "trap_oid");
    const json_t *sev = json_object_get(row, "syslog_severity");
    r->syslog_severity = json_is_integer(sev) ? (int)json_integer_value(sev) : -1;
    r->priority = (int)json_integer_value(json_object_get(row, "priority"));
    r->prod_handling = jstr(row, "prod_handling");
    r->dev_handling = jstr(row, "dev_handling");
    r->team_assignment = jstr(row, "team_assignment");
    r->is_active = true;
    const char *mt = jstr(row, "match_type");
    char why[256];
    return mt && mutt_rules_match_type_parse(mt, &r->match_type) == 0 && r->prod_handling && r->dev_handling &&
           r->team_assignment && mutt_rules_validate(r, why, sizeof why) == 0;
}

struct mutt_dryrun *mutt_dryrun_create(const json_t *rows, const json_t *dev_hosts, const json_t *candidate,
                                       int64_t edit_id, char *err, size_t errlen)
{
    size_t n = json_array_size(rows);
    struct mutt_rule *cur = calloc(n + 1, sizeof *cur);
    struct mutt_rule *next = calloc(n + 1, sizeof *next);
    struct mutt_dryrun *d = calloc(1, sizeof *d);
    if (!cur || !next || !d)
        goto oom;
    int64_t max_id = 0;
    size_t ncur = 0, nnext = 0, i;
    const json_t *row;
    json_array_foreach(rows, i, row) {
        int64_t id = json_integer_value(json_object_get(row, "id"));
        if (id > max_id)
            max_id = id;
        struct mutt_rule r;
        if (!row_rule(row, id, &r))
            continue;
        cur[ncur++] = r;
        if (id != edit_id)
            next[nnext++] = r;
    }
    d->is_edit = edit_id > 0;
    d->candidate_id = d->is_edit ? edit_id : max_id + 1;
    struct mutt_rule cand;
    if (row_rule(candidate, d->candidate_id, &cand))
        next[nnext++] = cand;
    d->current = mutt_rules_compile(cur, ncur, err, errlen);
    if (!d->current)
        goto fail;
    d->proposed = mutt_rules_compile(next, nnext, err, errlen);
    if (!d->proposed)
        goto fail;
    d->scratch = mutt_match_scratch_create();
    d->dev_hosts = json_object();
    d->taken_from = json_object();
    d->examples = json_array();
    if (!d->scratch || !d->dev_hosts || !d->taken_from || !d->examples)
        goto oom;
    const json_t *h;
    json_array_foreach(dev_hosts, i, h) {
        if (json_is_string(h) && json_object_set_new(d->dev_hosts, json_string_value(h), json_null()) != 0)
            goto oom;
    }
    free(cur);
    free(next);
    return d;
oom:
    fail(err, errlen, MUTT_ENOMEM, "out of memory");
fail:
    free(cur);
    free(next);
    mutt_dryrun_destroy(d);
    return NULL;
}

void mutt_dryrun_destroy(struct mutt_dryrun *d)
{
    if (!d)
        return;
    mutt_rules_destroy(d->current);
    mutt_rules_destroy(d->proposed);
    mutt_match_scratch_destroy(d->scratch);
    json_decref(d->dev_hosts);
    json_decref(d->taken_from);
    json_decref(d->examples);
    json_decref(d->windows_json);
    free(d->windows);
    free(d);
}

int mutt_dryrun_set_windows(struct mutt_dryrun *d, const json_t *windows, int64_t now_ms)
{
    json_t *copy = json_deep_copy(windows);
    size_t n = json_array_size(copy), k = 0, i;
    struct mutt_maint_window *ws = calloc(n ? n : 1, sizeof *ws);
    if (!copy || !ws) {
        json_decref(copy);
        free(ws);
        return MUTT_ENOMEM;
    }
    const json_t *w;
    json_array_foreach(copy, i, w) {
        const json_t *id = json_object_get(w, "id"), *pat = json_object_get(w, "hostname_pattern");
        const json_t *st = json_object_get(w, "starts_ms"), *en = json_object_get(w, "ends_ms");
        const json_t *team = json_object_get(w, "team");
        if (!json_is_integer(id) || !json_is_string(pat) || !json_is_integer(st) || !json_is_integer(en))
            continue;
        ws[k++] = (struct mutt_maint_window){
            .id = json_integer_value(id),
            .hostname_pattern = json_string_value(pat),
            .team = json_is_string(team) && json_string_length(team) ? json_string_value(team) : NULL,
            .starts_ms = json_integer_value(st),
            .ends_ms = json_integer_value(en),
            .summary = true,
        };
    }
    json_decref(d->windows_json);
    free(d->windows);
    d->windows_json = copy;
    d->windows = ws;
    d->nwindows = k;
    d->now_ms = now_ms;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* the comparison                                                                              */

/* The window that would hold what `rule` decides for `host` in `env`, as the alert stage asks
 * (handle_matched): only a decision that forwards is held, by a window for the rule's team. */
static const struct mutt_maint_window *held_by(const struct mutt_dryrun *d, const struct mutt_rule *rule,
                                               const char *host, enum mutt_env env)
{
    if (!rule || !d->nwindows || !mutt_handling_forwards(mutt_handling_decision(rule, env)))
        return NULL;
    return mutt_maint_match(d->windows, d->nwindows, host, rule->team_assignment, d->now_ms);
}

static json_t *example(const struct mutt_dryrun *d, json_t *ev, const struct mutt_rule *next,
                       const struct mutt_rule *cur, enum mutt_env env, const char *host,
                       const struct mutt_maint_window *held)
{
    const char *decision = held ? MUTT_MAINT_DECISION : mutt_handling_decision(next, env);
    json_t *dec = json_pack("{s:o, s:s, s:s, s:b, s:s}", "rule_id",
                            d->is_edit ? json_integer(d->candidate_id) : json_null(), "handling_decision", decision,
                            "environment", mutt_env_name(env), "forwarded", !held && mutt_handling_forwards(decision),
                            "team_assignment", next->team_assignment ? next->team_assignment : "");
    if (dec && held && json_object_set_new(dec, "maintenance_window", json_integer(held->id)) != 0) {
        json_decref(dec);
        dec = NULL;
    }
    json_t *now = cur ? json_pack("{s:I, s:s}", "rule_id", (json_int_t)cur->id, "handling_decision",
                                  held_by(d, cur, host, env) ? MUTT_MAINT_DECISION : mutt_handling_decision(cur, env))
                      : json_pack("{s:n, s:n}", "rule_id", "handling_decision");
    if (!dec || !now) {
        json_decref(dec);
        json_decref(now);
        return NULL;
    }
    return json_pack("{s:O, s:o, s:o}", "event", ev, "decision", dec, "current", now);
}

int mutt_dryrun_add_event(struct mutt_dryrun *d, const char *data, size_t len)
{
    json_t *ev = json_loadb(data, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        d->counts.skipped++;
        return 0;
    }
    int rc = 0;
    d->counts.examined++;
    const struct mutt_rule *cur = mutt_alert_match_event(d->current, ev, d->scratch);
    const struct mutt_rule *next = mutt_alert_match_event(d->proposed, ev, d->scratch);
    if (!next || next->id != d->candidate_id)
        goto out;
    d->counts.would_match++;
    if (!cur || cur->id != d->candidate_id) {
        d->counts.newly_matched++;
        if (!cur) {
            d->counts.unhandled_now_handled++;
        } else {
            char key[24];
            snprintf(key, sizeof key, "%lld", (long long)cur->id);
            json_int_t was = json_integer_value(json_object_get(d->taken_from, key));
            if (json_object_set_new(d->taken_from, key, json_integer(was + 1)) != 0)
                rc = MUTT_ENOMEM;
        }
    }
    const json_t *hv = json_object_get(ev, "hostname");
    const char *host = json_is_string(hv) ? json_string_value(hv) : NULL;
    enum mutt_env env = host && json_object_get(d->dev_hosts, host) ? MUTT_ENV_DEV : MUTT_ENV_PROD;
    const struct mutt_maint_window *held = held_by(d, next, host, env);
    if (held)
        d->counts.held_by_maintenance++;
    if (json_array_size(d->examples) < MUTT_DRYRUN_MAX_EXAMPLES) {
        json_t *ex = example(d, ev, next, cur, env, host, held);
        if (!ex || json_array_append_new(d->examples, ex) != 0)
            rc = MUTT_ENOMEM;
    }
out:
    json_decref(ev);
    return rc;
}

void mutt_dryrun_counts(const struct mutt_dryrun *d, struct mutt_dryrun_counts *out)
{
    *out = d->counts;
}

uint64_t mutt_dryrun_taken_from(const struct mutt_dryrun *d, int64_t rule_id)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", (long long)rule_id);
    return (uint64_t)json_integer_value(json_object_get(d->taken_from, key));
}

json_t *mutt_dryrun_result(const struct mutt_dryrun *d)
{
    return json_pack("{s:I, s:I, s:I, s:O, s:I, s:I, s:O}", "examined", (json_int_t)d->counts.examined,
                     "would_match", (json_int_t)d->counts.would_match, "newly_matched",
                     (json_int_t)d->counts.newly_matched, "taken_from", d->taken_from, "unhandled_now_handled",
                     (json_int_t)d->counts.unhandled_now_handled, "held_by_maintenance",
                     (json_int_t)d->counts.held_by_maintenance, "examples", d->examples);
}
