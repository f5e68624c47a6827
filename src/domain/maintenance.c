/* Maintenance windows: matching, body validation and the summary alert (issue 16 §3, D40 D42).
 * Pure (fnmatch and jansson only): the alert stage passes the clock and the counts in, the web
 * stage the body. No I/O, no logging; any thread. */
#define _GNU_SOURCE /* FNM_CASEFOLD, asprintf */
#include "mutt/maintenance.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutt/alert_item.h"
#include "mutt/error.h"
#include "mutt/timefmt.h"

enum mutt_maint_state mutt_maint_state(const struct mutt_maint_window *w, int64_t now_ms)
{
    if (now_ms < w->starts_ms)
        return MUTT_MAINT_SCHEDULED;
    return now_ms < w->ends_ms ? MUTT_MAINT_ACTIVE : MUTT_MAINT_ENDED;
}

const char *mutt_maint_state_name(enum mutt_maint_state s)
{
    switch (s) {
    case MUTT_MAINT_SCHEDULED: return "scheduled";
    case MUTT_MAINT_ACTIVE: return "active";
    default: return "ended";
    }
}

const struct mutt_maint_window *mutt_maint_match(const struct mutt_maint_window *ws, size_t n, const char *hostname,
                                                 const char *team, int64_t now_ms)
{
    if (!hostname)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const struct mutt_maint_window *w = &ws[i];
        if (mutt_maint_state(w, now_ms) != MUTT_MAINT_ACTIVE || !w->hostname_pattern)
            continue;
        if (w->team && w->team[0] && (!team || strcasecmp(w->team, team) != 0))
            continue;
        if (fnmatch(w->hostname_pattern, hostname, FNM_CASEFOLD) == 0)
            return w;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* validation                                                                                  */

static bool no_controls(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* fnmatch treats an unclosed '[' as a literal, which is never what an operator meant: refuse
 * it (and a trailing lone backslash) so the mistake shows at write time. */
static const char *glob_problem(const char *p)
{
    for (size_t i = 0; p[i]; i++) {
        if (p[i] == '\\') {
            if (!p[i + 1])
                return "ends with a lone backslash";
            i++;
        } else if (p[i] == '[') {
            size_t j = i + 1;
            if (p[j] == '!' || p[j] == '^')
                j++;
            if (p[j] == ']')
                j++; /* a leading ']' is a member, not the end */
            while (p[j] && p[j] != ']')
                j++;
            if (!p[j])
                return "has an unclosed '['";
            i = j;
        }
    }
    return NULL;
}

static int fail(const char **field, const char *name, char *msg, size_t msglen, const char *text)
{
    *field = name;
    if (msglen)
        snprintf(msg, msglen, "%s", text);
    return MUTT_EINVAL;
}

static int opt_text(const json_t *body, const char *name, size_t max, const char **out, const char **field,
                    char *msg, size_t msglen)
{
    const json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    char m[160];
    snprintf(m, sizeof m, "%s must be a string of at most %zu bytes without control characters", name, max);
    if (!json_is_string(v) || json_string_length(v) > max || !no_controls(json_string_value(v), json_string_length(v)))
        return fail(field, name, msg, msglen, m);
    *out = json_string_length(v) ? json_string_value(v) : NULL;
    return 0;
}

static int time_field(const json_t *body, const char *name, bool required, int64_t dflt, int64_t *out,
                      const char **field, char *msg, size_t msglen)
{
    const json_t *v = json_object_get(body, name);
    char m[160];
    if (!v || json_is_null(v)) {
        if (!required) {
            *out = dflt;
            return 0;
        }
        snprintf(m, sizeof m, "%s is required: an ISO 8601 time such as 2026-01-01T22:00:00Z", name);
        return fail(field, name, msg, msglen, m);
    }
    if (!json_is_string(v) || mutt_time_parse_iso8601n(json_string_value(v), json_string_length(v), out) != 0) {
        snprintf(m, sizeof m, "%s must be an ISO 8601 time such as 2026-01-01T22:00:00Z", name);
        return fail(field, name, msg, msglen, m);
    }
    return 0;
}

int mutt_maint_validate(const json_t *body, int64_t now_ms, struct mutt_maint_spec *out, const char **field,
                        char *msg, size_t msglen)
{
    memset(out, 0, sizeof *out);
    out->summary = true;
    if (!json_is_object(body))
        return fail(field, NULL, msg, msglen, "body must be a JSON object");
    const json_t *p = json_object_get(body, "hostname_pattern");
    if (!json_is_string(p) || json_string_length(p) == 0 || json_string_length(p) > MUTT_MAINT_PATTERN_MAX ||
        !no_controls(json_string_value(p), json_string_length(p)))
        return fail(field, "hostname_pattern", msg, msglen,
                    "hostname_pattern is required: a non-empty glob (e.g. db-*.example.com) of at most 255 bytes");
    const char *why = glob_problem(json_string_value(p));
    if (why) {
        char m[96];
        snprintf(m, sizeof m, "hostname_pattern is not a valid glob: it %s", why);
        return fail(field, "hostname_pattern", msg, msglen, m);
    }
    out->hostname_pattern = json_string_value(p);
    int rc;
    if ((rc = opt_text(body, "team", MUTT_MAINT_TEAM_MAX, &out->team, field, msg, msglen)) != 0 ||
        (rc = opt_text(body, "reason", MUTT_MAINT_REASON_MAX, &out->reason, field, msg, msglen)) != 0 ||
        (rc = time_field(body, "starts_at", false, now_ms, &out->starts_ms, field, msg, msglen)) != 0 ||
        (rc = time_field(body, "ends_at", true, 0, &out->ends_ms, field, msg, msglen)) != 0)
        return rc;
    if (out->ends_ms <= out->starts_ms)
        return fail(field, "ends_at", msg, msglen, "ends_at must be after starts_at");
    if (out->ends_ms - out->starts_ms > MUTT_MAINT_MAX_DURATION_MS)
        return fail(field, "ends_at", msg, msglen, "a maintenance window lasts at most 30 days");
    if (out->ends_ms <= now_ms)
        return fail(field, "ends_at", msg, msglen, "ends_at is in the past");
    const json_t *s = json_object_get(body, "summary");
    if (s && !json_is_null(s)) {
        if (!json_is_boolean(s))
            return fail(field, "summary", msg, msglen, "summary must be true or false");
        out->summary = json_is_true(s);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* summary                                                                                     */

static int64_t to_int(const char *s)
{
    if (!s)
        return 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    return end && end != s && *end == '\0' && v >= 0 ? (int64_t)v : 0;
}

static void set(json_t *obj, const char *key, json_t *value, bool *failed)
{
    if (!value || json_object_set_new(obj, key, value) != 0)
        *failed = true;
}

static json_t *iso_or_null(int64_t ms, bool have)
{
    char buf[MUTT_TIME_ISO8601_MS_LEN];
    if (!have || mutt_time_format_iso8601_ms(ms, buf, sizeof buf) != 0)
        return json_null();
    return json_string(buf);
}

json_t *mutt_maint_summary_alert(const struct mutt_maint_window *w, const char *reason, const char *default_team,
                                 const char *const *fields, const char *const *values, size_t n,
                                 const char *event_id)
{
    bool failed = false;
    int64_t total = 0, other = 0, first = 0, last = 0, unhandled = 0, unhandled_other = 0;
    bool have_first = false, have_last = false;
    json_t *by_rule = json_object(), *by_host = json_object(), *sum = json_object(), *alert = json_object();
    json_t *by_unhandled = json_object();
    char *body = NULL, *sig = NULL, *cid = NULL;
    const size_t rp = strlen(MUTT_MAINT_FIELD_RULE_PREFIX), hp = strlen(MUTT_MAINT_FIELD_HOST_PREFIX);
    const size_t up = strlen(MUTT_MAINT_FIELD_UNHANDLED_PREFIX);
    if (!by_rule || !by_host || !sum || !alert || !by_unhandled)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *f = fields[i];
        if (!f)
            continue;
        int64_t v = to_int(values[i]);
        if (strcmp(f, MUTT_MAINT_FIELD_TOTAL) == 0)
            total = v;
        else if (strcmp(f, MUTT_MAINT_FIELD_HOSTS_OTHER) == 0)
            other = v;
        else if (strcmp(f, MUTT_MAINT_FIELD_UNHANDLED_OTHER) == 0)
            unhandled_other = v, unhandled += v;
        else if (strcmp(f, MUTT_MAINT_FIELD_FIRST) == 0)
            first = v, have_first = true;
        else if (strcmp(f, MUTT_MAINT_FIELD_LAST) == 0)
            last = v, have_last = true;
        else if (strncmp(f, MUTT_MAINT_FIELD_RULE_PREFIX, rp) == 0)
            set(by_rule, f + rp, json_integer(v), &failed);
        else if (strncmp(f, MUTT_MAINT_FIELD_HOST_PREFIX, hp) == 0)
            set(by_host, f + hp, json_integer(v), &failed);
        else if (strncmp(f, MUTT_MAINT_FIELD_UNHANDLED_PREFIX, up) == 0) {
            set(by_unhandled, f + up, json_integer(v), &failed);
            unhandled += v;
        }
    }
    const char *team = w->team && w->team[0] ? w->team : default_team ? default_team : "";
    size_t nhosts = json_object_size(by_host);
    char held[96] = "";
    if (unhandled > 0)
        snprintf(held, sizeof held, "; %lld unhandled-event meta-alert%s held", (long long)unhandled,
                 unhandled == 1 ? "" : "s");
    if (asprintf(&body,
                 "[MUTT] Maintenance window %lld (%s) ended: %lld event%s suppressed from %zu host%s%s by %zu rule%s%s",
                 (long long)w->id, w->hostname_pattern, (long long)total, total == 1 ? "" : "s", nhosts,
                 nhosts == 1 ? "" : "s", other ? " and more" : "", json_object_size(by_rule),
                 json_object_size(by_rule) == 1 ? "" : "s", held) < 0) {
        body = NULL;
        goto fail;
    }
    if (asprintf(&sig, "%s%lld", MUTT_MAINT_SUMMARY_SIGNATURE_PREFIX, (long long)w->id) < 0) {
        sig = NULL;
        goto fail;
    }
    if (asprintf(&cid, "maintenance-window-%lld", (long long)w->id) < 0) {
        cid = NULL;
        goto fail;
    }
    set(sum, "window_id", json_integer(w->id), &failed);
    set(sum, "hostname_pattern", json_string(w->hostname_pattern), &failed);
    set(sum, "team", w->team && w->team[0] ? json_string(w->team) : json_null(), &failed);
    set(sum, "starts_at", iso_or_null(w->starts_ms, true), &failed);
    set(sum, "ends_at", iso_or_null(w->ends_ms, true), &failed);
    set(sum, "reason", reason ? json_string(reason) : json_null(), &failed);
    set(sum, "suppressed", json_integer(total), &failed);
    set(sum, "by_rule", json_incref(by_rule), &failed);
    set(sum, "by_host", json_incref(by_host), &failed);
    set(sum, "other_hosts", json_integer(other), &failed);
    set(sum, "unhandled", json_incref(by_unhandled), &failed);
    set(sum, "unhandled_other_hosts", json_integer(unhandled_other), &failed);
    set(sum, "first_seen", iso_or_null(first, have_first && total + unhandled > 0), &failed);
    set(sum, "last_seen", iso_or_null(last, have_last && total + unhandled > 0), &failed);

    set(alert, "hostname", json_string(MUTT_ALERT_META_HOSTNAME), &failed);
    set(alert, "team_assignment", json_string(team), &failed);
    set(alert, "severity", json_string("Warning"), &failed);
    set(alert, "message_body", json_string(body), &failed);
    set(alert, "raw_json", json_incref(sum), &failed);
    set(alert, "handling_decision", json_string(MUTT_MAINT_DECISION), &failed);
    set(alert, "rule_id", json_null(), &failed);
    set(alert, "environment", json_null(), &failed);
    set(alert, "_correlation_id", json_string(cid), &failed);
    set(alert, "_event_id", json_string(event_id ? event_id : ""), &failed);
    set(alert, "signature", json_string(sig), &failed);
    set(alert, "source_hostname", json_string(w->hostname_pattern), &failed);
    if (failed)
        goto fail;
    json_decref(by_rule);
    json_decref(by_host);
    json_decref(by_unhandled);
    json_decref(sum);
    free(body);
    free(sig);
    free(cid);
    return alert;
fail:
    json_decref(by_rule);
    json_decref(by_host);
    json_decref(by_unhandled);
    json_decref(sum);
    json_decref(alert);
    free(body);
    free(sig);
    free(cid);
    return NULL;
}
