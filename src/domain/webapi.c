/* Pure helpers of the management API: versions and the endpoint table, auth helpers, paging and
 * audit filters, rule-body validation (see include/mutt/webapi.h). No I/O, no clock. */
#include "mutt/webapi.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mutt/error.h"
#include "mutt/rules.h"
#include "mutt/timefmt.h"

/* ------------------------------------------------------------------------------------------ */
/* versions                                                                                    */

const struct mutt_api_version mutt_api_versions[] = {
    {"2.0", "current", "2025-11-10", NULL, NULL, NULL},
    {"1.0", "deprecated", "2024-01-01", "2.0", "3.0", "2026-01-01"},
    {NULL, NULL, NULL, NULL, NULL, NULL},
};

const struct mutt_api_version *mutt_api_version_find(const char *s)
{
    if (!s)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == 'v' || *s == 'V')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    char buf[16];
    if (n == 0 || n >= sizeof buf)
        return NULL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strcmp(buf, "2.5") == 0 || strcmp(buf, "2") == 0) /* D21: the original's number */
        return &mutt_api_versions[0];
    if (strcmp(buf, "1") == 0)
        return &mutt_api_versions[1];
    for (const struct mutt_api_version *v = mutt_api_versions; v->version; v++)
        if (strcmp(v->version, buf) == 0)
            return v;
    return NULL;
}

const struct mutt_api_version *mutt_api_negotiate(const char *accept_version, const char *x_api_version,
                                                  const char *query_version)
{
    const char *cands[3] = {accept_version, x_api_version, query_version};
    for (int i = 0; i < 3; i++) {
        const struct mutt_api_version *v = mutt_api_version_find(cands[i]);
        if (v)
            return v;
    }
    return &mutt_api_versions[0];
}

/* One dotted component as a number (a non-digit counts as 0); saturates at LONG_MAX instead of
 * overflowing, so absurdly long components compare as "largest". Advances *p to the '.' or NUL. */
static long version_component(const char **p)
{
    long x = 0;
    for (; **p && **p != '.'; (*p)++) {
        int d = isdigit((unsigned char)**p) ? **p - '0' : 0;
        x = x > (LONG_MAX - d) / 10 ? LONG_MAX : x * 10 + d;
    }
    return x;
}

int mutt_api_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        long x = version_component(&a), y = version_component(&b);
        if (x != y)
            return x < y ? -1 : 1;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* endpoint table                                                                              */

const struct mutt_api_endpoint mutt_api_endpoints[] = {
    {MUTT_API_EP_RULES, "GET,POST", "/rules", 0, "1.0", NULL, NULL},
    /* before /rules/{id}, so "dry-run" is never read as an id */
    {MUTT_API_EP_RULES_DRY_RUN, "POST", "/rules/dry-run", MUTT_API_READ_POST, "1.0", NULL, NULL},
    {MUTT_API_EP_RULE, "GET,PUT,DELETE", "/rules/{id}", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_DEV_HOSTS, "GET,POST", "/dev-hosts", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_DEV_HOST, "DELETE", "/dev-hosts/{hostname}", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_TEAMS, "GET,POST", "/teams", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_TEAM, "PUT,DELETE", "/teams/{hostname}", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_CONFIG, "GET", "/config", 0, "1.0", NULL, NULL},
    /* literal paths before /config/{key}, so "history" is never read as a key */
    {MUTT_API_EP_CONFIG_HISTORY, "GET", "/config/history", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_CONFIG_ROLLBACK, "POST", "/config/rollback", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_CONFIG_DRIFT, "GET", "/config/drift", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_CONFIG_KEY, "GET,PUT", "/config/{key}", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_AUDIT, "GET", "/audit", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_AUDIT_REPORT, "GET", "/audit/report", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_LEGAL_HOLDS, "GET,POST", "/legal-holds", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_LEGAL_HOLD, "GET,DELETE", "/legal-holds/{id}", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_AUDIT_LOGS, "GET", "/audit-logs", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_METRICS, "GET", "/metrics", 0, "1.0", NULL, NULL},
    {MUTT_API_EP_DLQ, "GET", "/dlq", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_DLQ_REPLAY, "POST", "/dlq/{name}/replay", 0, "2.0", NULL, NULL},
    /* a key is needed here (D62), unlike /version */
    {MUTT_API_EP_VERSION_USAGE, "GET", "/version/usage", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_VERSION, "GET", "/version", MUTT_API_PUBLIC, "1.0", NULL, NULL},
    {MUTT_API_EP_CHANGES, "GET", "/changes", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_CHANGE_DECIDE, "POST", "/changes/{id}/{action}", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_SLO, "GET", "/slo", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_UNHANDLED, "GET", "/unhandled", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_MAINT_WINDOWS, "GET,POST", "/maintenance-windows", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_MAINT_WINDOW, "GET,DELETE", "/maintenance-windows/{id}", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_EVENTS, "GET", "/events", 0, "2.0", NULL, NULL},
    {MUTT_API_EP_EVENT, "GET", "/events/{event_id}", 0, "2.0", NULL, NULL},
    {-1, NULL, NULL, 0, NULL, NULL, NULL},
};

bool mutt_api_path_match(const char *pattern, const char *path, size_t len)
{
    const char *p = pattern, *s = path, *end = path + len;
    if (len > 1 && path[len - 1] == '/')
        end--;
    while (*p && s < end) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchr(p, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        const char *se = memchr(s, '/', (size_t)(end - s));
        size_t slen = se ? (size_t)(se - s) : (size_t)(end - s);
        if (plen > 0 && p[0] == '{') {
            if (slen == 0)
                return false;
        } else if (plen != slen || memcmp(p, s, slen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && s == end;
}

const struct mutt_api_endpoint *mutt_api_endpoint_find(const struct mutt_api_endpoint *table, const char *path,
                                                       size_t len)
{
    for (const struct mutt_api_endpoint *e = table; e->path; e++)
        if (mutt_api_path_match(e->path, path, len))
            return e;
    return NULL;
}

bool mutt_api_allowed_methods(const struct mutt_api_endpoint *table, const char *path, size_t len, char *buf,
                              size_t buflen)
{
    size_t o = 0;
    bool any = false;
    buf[0] = '\0';
    for (const struct mutt_api_endpoint *e = table; e->path; e++) {
        if (!mutt_api_path_match(e->path, path, len))
            continue;
        any = true;
        for (const char *m = e->methods; *m && o + 3 < buflen; m++) {
            if (*m == ',') {
                buf[o++] = ',';
                buf[o++] = ' ';
            } else {
                if (o > 0 && m == e->methods) {
                    buf[o++] = ',';
                    buf[o++] = ' ';
                }
                buf[o++] = *m;
            }
        }
        buf[o] = '\0';
    }
    return any;
}

void mutt_api_check(const struct mutt_api_endpoint *ep, const struct mutt_api_version *v,
                    struct mutt_api_verdict *out)
{
    memset(out, 0, sizeof *out);
    if (v->deprecated_in) {
        int n = snprintf(out->deprecated, sizeof out->deprecated, "Deprecated in version %s", v->deprecated_in);
        if (v->removed_in && n > 0 && (size_t)n < sizeof out->deprecated)
            n += snprintf(out->deprecated + n, sizeof out->deprecated - (size_t)n, ", will be removed in %s",
                          v->removed_in);
        if (v->sunset && n > 0 && (size_t)n < sizeof out->deprecated)
            snprintf(out->deprecated + n, sizeof out->deprecated - (size_t)n, " (removal date: %s)", v->sunset);
    }
    if (v->sunset)
        snprintf(out->sunset, sizeof out->sunset, "%s", v->sunset);
    if (ep && ep->removed_in && mutt_api_version_cmp(v->version, ep->removed_in) >= 0) {
        out->status = 410;
        snprintf(out->body, sizeof out->body,
                 "{\"error\":\"Endpoint removed\",\"message\":\"This endpoint was removed in version %s\","
                 "\"removed_in\":\"%s\",\"removal_date\":%s%s%s,\"current_version\":\"%s\"}",
                 ep->removed_in, ep->removed_in, ep->removal_date ? "\"" : "",
                 ep->removal_date ? ep->removal_date : "null", ep->removal_date ? "\"" : "",
                 MUTT_API_CURRENT_VERSION);
    }
}

char *mutt_api_version_body(void)
{
    static const char *const changes_20[] = {
        "C implementation (one binary, one event loop)", "Every /api/v1 endpoint also under /api/v2",
        "Input validation with 400 naming the field", "Audit rows for rules, dev hosts, teams, config, DLQ replays",
        "ISO 8601 UTC timestamps with milliseconds", "Read-only API key", "Dynamic config schema, history and rollback",
        NULL};
    static const char *const changes_10[] = {"Rules, dev hosts and teams CRUD", "Dashboard metrics",
                                             "Dynamic configuration", "Event audit log", NULL};
    json_t *root = json_object();
    json_object_set_new(root, "current_version", json_string(MUTT_API_CURRENT_VERSION));
    json_object_set_new(root, "default_version", json_string(MUTT_API_CURRENT_VERSION));
    json_t *sup = json_array();
    json_t *hist = json_object();
    for (const struct mutt_api_version *v = mutt_api_versions; v->version; v++) {
        json_array_append_new(sup, json_string(v->version));
        json_t *h = json_object();
        json_object_set_new(h, "released", json_string(v->released));
        json_object_set_new(h, "status", json_string(v->status));
        json_t *ch = json_array();
        for (const char *const *c = strcmp(v->version, "2.0") == 0 ? changes_20 : changes_10; *c; c++)
            json_array_append_new(ch, json_string(*c));
        json_object_set_new(h, "changes", ch);
        if (v->deprecated_in)
            json_object_set_new(h, "deprecated_in", json_string(v->deprecated_in));
        if (v->removed_in)
            json_object_set_new(h, "removed_in", json_string(v->removed_in));
        if (v->sunset)
            json_object_set_new(h, "removal_date", json_string(v->sunset));
        json_object_set_new(hist, v->version, h);
    }
    json_object_set_new(root, "supported_versions", sup);
    json_object_set_new(root, "version_history", hist);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* auth                                                                                        */

/* Constant time in the length of `given` and of the key: every byte of both is visited. */
static bool key_equal(const char *given, size_t glen, const char *key)
{
    if (!key || !*key)
        return false;
    size_t klen = strlen(key);
    unsigned char diff = (unsigned char)(glen != klen);
    size_t n = glen > klen ? glen : klen;
    for (size_t i = 0; i < n; i++) {
        unsigned char a = i < glen ? (unsigned char)given[i] : 0;
        unsigned char b = i < klen ? (unsigned char)key[i] : 0;
        diff |= (unsigned char)(a ^ b);
    }
    return diff == 0;
}

enum mutt_api_role mutt_api_key_role(const char *given, size_t glen, const char *admin, const char *readonly)
{
    if (!given)
        return MUTT_API_NONE;
    bool a = key_equal(given, glen, admin);
    bool r = key_equal(given, glen, readonly);
    /* Equal admin and read-only keys are a config error; should they still meet here (both
     * from Vault, after the start-up check), the key grants reads only, never writes. */
    if (a && r)
        return MUTT_API_READONLY;
    return a ? MUTT_API_ADMIN : r ? MUTT_API_READONLY : MUTT_API_NONE;
}

void mutt_api_changed_by(const char *key, size_t klen, char *buf, size_t buflen)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(key, klen, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 4) {
        snprintf(buf, buflen, "webui_api:unknown");
        return;
    }
    snprintf(buf, buflen, "webui_api:%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
}

/* ------------------------------------------------------------------------------------------ */
/* paging and filters                                                                          */

/* Whole decimal integer (optional leading '-'), no spaces, within [lo, hi]. */
static bool parse_long(const char *s, long lo, long hi, long *out)
{
    if (!s || !*s)
        return false;
    const char *p = s;
    if (*p == '-')
        p++;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return false;
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int mutt_api_parse_paging(const char *page, const char *limit, long *page_out, long *limit_out,
                          const char **bad_field)
{
    long p = 1, l = MUTT_API_LIMIT_DEFAULT;
    if (page && !parse_long(page, 1, 1000000000L, &p)) {
        *bad_field = "page";
        return MUTT_EINVAL;
    }
    if (limit) {
        /* any positive integer is fine: D18 clamps large values instead of refusing them */
        const char *q = limit;
        bool digits = *q != '\0';
        for (; *q; q++)
            digits = digits && isdigit((unsigned char)*q);
        if (!digits) {
            *bad_field = "limit";
            return MUTT_EINVAL;
        }
        if (strlen(limit) > 9)
            l = MUTT_API_LIMIT_MAX;
        else
            l = strtol(limit, NULL, 10);
        if (l < 1) {
            *bad_field = "limit";
            return MUTT_EINVAL;
        }
        if (l > MUTT_API_LIMIT_MAX)
            l = MUTT_API_LIMIT_MAX;
    }
    *page_out = p;
    *limit_out = l;
    return 0;
}

int mutt_api_like_escape(const char *in, char *buf, size_t buflen)
{
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        bool esc = *p == '%' || *p == '_' || *p == '\\';
        if (o + (esc ? 2 : 1) >= buflen)
            return MUTT_EFULL;
        if (esc)
            buf[o++] = '\\';
        buf[o++] = *p;
    }
    if (o >= buflen)
        return MUTT_EFULL;
    buf[o] = '\0';
    return 0;
}

static const char *const audit_operations[] = {"CREATE", "UPDATE", "DELETE", "REPLAY", "ROLLBACK", "RESTORE",
                                                   "APPROVE", "REJECT", "EMERGENCY", "EXPIRE", NULL};
static const char *const audit_tables[] = {"alert_rules", "development_hosts", "device_teams", "dynamic_config",
                                           "dlq", "backup", "maintenance_windows", "legal_holds",
                                           "config_change_requests", NULL};

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

bool mutt_api_audit_operation_valid(const char *s)
{
    return s && in_list(audit_operations, s);
}

bool mutt_api_audit_table_valid(const char *s)
{
    return s && in_list(audit_tables, s);
}

/* Appends "<col> <op> $n[cast]" with value v to the filter. */
static void add_cond(struct mutt_api_filter *f, const char *fmt_col_op, const char *cast, const char *v)
{
    int n = f->nvalues;
    snprintf(f->store[n], sizeof f->store[n], "%s", v);
    f->values[n] = f->store[n];
    f->nvalues++;
    size_t used = strlen(f->where);
    snprintf(f->where + used, sizeof f->where - used, "%s%s $%d%s", used ? " AND " : "WHERE ", fmt_col_op, n + 1,
             cast);
}

static int bad(char *err, size_t errlen, const char **bad_field, const char *field, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    *bad_field = field;
    return MUTT_EINVAL;
}

/* A date filter: ISO 8601, re-rendered canonically (UTC, ms) so PostgreSQL never parses user text. */
static int date_cond(struct mutt_api_filter *f, const char *col_op, const char *v, const char *field, char *err,
                     size_t errlen, const char **bad_field)
{
    int64_t ms = 0;
    char iso[MUTT_TIME_ISO8601_MS_LEN], day[32];
    bool date_only = strlen(v) == 10;
    if (date_only) {
        /* YYYY-MM-DD: a start means that day's first ms, an end its last (the day is included) */
        snprintf(day, sizeof day, "%sT%s", v, strchr(col_op, '<') ? "23:59:59.999Z" : "00:00:00Z");
        v = day;
    }
    if (strlen(v) > 64 || mutt_time_parse_iso8601(v, &ms) != 0 ||
        mutt_time_format_iso8601_ms(ms, iso, sizeof iso) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s must be an ISO 8601 timestamp", field);
        return bad(err, errlen, bad_field, field, msg);
    }
    add_cond(f, col_op, "::timestamptz", iso);
    return 0;
}

/* A short text filter without control characters. */
static bool text_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20)
            return false;
    return true;
}

int mutt_api_filter_parse(enum mutt_api_audit_kind kind, mutt_api_param_fn *get, void *privdata,
                          struct mutt_api_filter *out, char *err, size_t errlen, const char **bad_field)
{
    memset(out, 0, sizeof *out);
    *bad_field = NULL;
    if (mutt_api_parse_paging(get(privdata, "page"), get(privdata, "limit"), &out->page, &out->limit, bad_field) !=
        0)
        return bad(err, errlen, bad_field, *bad_field,
                   strcmp(*bad_field, "page") == 0 ? "page must be an integer >= 1"
                                                   : "limit must be an integer >= 1 (values above 200 read as 200)");
    if (kind == MUTT_API_AUDIT_EVENT && (out->page - 1) * (long long)out->limit > MUTT_API_MAX_EVENT_OFFSET) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "offset ((page - 1) * limit = %lld) must be at most %d; narrow start_date/end_date to reach older rows",
                 (out->page - 1) * (long long)out->limit, MUTT_API_MAX_EVENT_OFFSET);
        return bad(err, errlen, bad_field, "offset", msg);
    }
    const char *v;
    long id;
    if (kind == MUTT_API_AUDIT_CONFIG) {
        if ((v = get(privdata, "changed_by")) != NULL) {
            char esc[300];
            if (!text_ok(v) || mutt_api_like_escape(v, esc + 1, sizeof esc - 2) != 0)
                return bad(err, errlen, bad_field, "changed_by", "changed_by must be 1 to 255 printable characters");
            esc[0] = '%';
            size_t n = strlen(esc);
            esc[n] = '%';
            esc[n + 1] = '\0';
            add_cond(out, "changed_by ILIKE", "", esc);
        }
        if ((v = get(privdata, "operation")) != NULL) {
            if (!mutt_api_audit_operation_valid(v))
                return bad(err, errlen, bad_field, "operation",
                           "operation must be one of CREATE UPDATE DELETE REPLAY ROLLBACK RESTORE");
            add_cond(out, "operation =", "", v);
        }
        if ((v = get(privdata, "table_name")) != NULL) {
            if (!mutt_api_audit_table_valid(v))
                return bad(err, errlen, bad_field, "table_name",
                           "table_name must be one of alert_rules development_hosts device_teams dynamic_config "
                           "dlq backup");
            add_cond(out, "table_name =", "", v);
        }
        if ((v = get(privdata, "record_id")) != NULL) {
            if (!parse_long(v, 0, INT_MAX, &id))
                return bad(err, errlen, bad_field, "record_id", "record_id must be a non-negative integer");
            add_cond(out, "record_id =", "::int", v);
        }
        if ((v = get(privdata, "record_key")) != NULL) {
            if (!text_ok(v))
                return bad(err, errlen, bad_field, "record_key", "record_key must be 1 to 255 printable characters");
            add_cond(out, "record_key =", "", v);
        }
        if ((v = get(privdata, "q")) != NULL) {
            /* D44: full-text search backed by the GIN index on this very expression (migration 17) */
            if (!text_ok(v))
                return bad(err, errlen, bad_field, "q", "q must be 1 to 255 printable characters");
            add_cond(out, "mutt_config_audit_tsv(reason, old_values, new_values) @@ plainto_tsquery('simple',", ")",
                     v);
        }
        if ((v = get(privdata, "start_date")) != NULL &&
            date_cond(out, "changed_at >=", v, "start_date", err, errlen, bad_field) != 0)
            return MUTT_EINVAL;
        if ((v = get(privdata, "end_date")) != NULL &&
            date_cond(out, "changed_at <=", v, "end_date", err, errlen, bad_field) != 0)
            return MUTT_EINVAL;
    } else {
        if ((v = get(privdata, "hostname")) != NULL) {
            if (!text_ok(v))
                return bad(err, errlen, bad_field, "hostname", "hostname must be 1 to 255 printable characters");
            add_cond(out, "hostname =", "", v);
        }
        if ((v = get(privdata, "rule_id")) != NULL) {
            if (!parse_long(v, 0, INT_MAX, &id))
                return bad(err, errlen, bad_field, "rule_id", "rule_id must be a non-negative integer");
            add_cond(out, "matched_rule_id =", "::int", v);
        }
        if ((v = get(privdata, "start_date")) != NULL &&
            date_cond(out, "event_timestamp >=", v, "start_date", err, errlen, bad_field) != 0)
            return MUTT_EINVAL;
        if ((v = get(privdata, "end_date")) != NULL &&
            date_cond(out, "event_timestamp <=", v, "end_date", err, errlen, bad_field) != 0)
            return MUTT_EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* rule bodies                                                                                 */

const char *const mutt_api_rule_fields[9] = {"match_string",  "trap_oid",     "syslog_severity",
                                             "match_type",    "priority",     "prod_handling",
                                             "dev_handling",  "team_assignment", "is_active"};

/* Checks one present field and stores its normalised value in `out`. */
static int rule_field(const char *name, json_t *v, json_t *out, char *err, size_t errlen, const char **bad_field)
{
    char msg[160];
    if (strcmp(name, "match_string") == 0 || strcmp(name, "trap_oid") == 0) {
        if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
            json_object_set_new(out, name, json_null());
            return 0;
        }
        if (!json_is_string(v) || json_string_length(v) > 255) {
            snprintf(msg, sizeof msg, "%s must be a string of at most 255 bytes or null", name);
            return bad(err, errlen, bad_field, name, msg);
        }
        json_object_set(out, name, v);
        return 0;
    }
    if (strcmp(name, "syslog_severity") == 0) {
        if (json_is_null(v)) {
            json_object_set_new(out, name, json_null());
            return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 7)
            return bad(err, errlen, bad_field, name, "syslog_severity must be an integer 0..7 or null");
        json_object_set(out, name, v);
        return 0;
    }
    if (strcmp(name, "match_type") == 0) {
        enum mutt_match_type t;
        if (!json_is_string(v) || mutt_rules_match_type_parse(json_string_value(v), &t) != 0)
            return bad(err, errlen, bad_field, name, "match_type must be one of contains, regex, oid_prefix");
        json_object_set(out, name, v);
        return 0;
    }
    if (strcmp(name, "priority") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX)
            return bad(err, errlen, bad_field, name, "priority must be an integer");
        json_object_set(out, name, v);
        return 0;
    }
    if (strcmp(name, "is_active") == 0) {
        if (!json_is_boolean(v))
            return bad(err, errlen, bad_field, name, "is_active must be true or false");
        json_object_set(out, name, v);
        return 0;
    }
    /* prod_handling, dev_handling, team_assignment */
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 100) {
        snprintf(msg, sizeof msg, "%s must be a non-empty string of at most 100 bytes", name);
        return bad(err, errlen, bad_field, name, msg);
    }
    json_object_set(out, name, v);
    return 0;
}

/* The rule before the body's fields apply: a copy of base (PUT), or the defaults (POST) once
 * the body holds every required field. 0 with *r set (caller owns), or MUTT_EINVAL. */
static int rule_start(const json_t *body, const json_t *base, json_t **r_out, char *err, size_t errlen,
                      const char **bad_field)
{
    json_t *r = json_object();
    if (!r)
        return bad(err, errlen, bad_field, NULL, "out of memory");
    if (base) {
        for (int i = 0; i < 9; i++) {
            json_t *bv = json_object_get(base, mutt_api_rule_fields[i]);
            json_object_set_new(r, mutt_api_rule_fields[i], bv ? json_deep_copy(bv) : json_null());
        }
    } else {
        json_object_set_new(r, "match_string", json_null());
        json_object_set_new(r, "trap_oid", json_null());
        json_object_set_new(r, "syslog_severity", json_null());
        json_object_set_new(r, "match_type", json_string("contains"));
        json_object_set_new(r, "priority", json_integer(100));
        json_object_set_new(r, "is_active", json_true());
        static const char *const required[] = {"prod_handling", "dev_handling", "team_assignment"};
        for (int i = 0; i < 3; i++) {
            if (!json_object_get(body, required[i])) {
                char msg[96];
                snprintf(msg, sizeof msg, "%s is required", required[i]);
                json_decref(r);
                return bad(err, errlen, bad_field, required[i], msg);
            }
        }
    }
    *r_out = r;
    return 0;
}

/* Checks of the merged rule as a whole: a match_string or a trap_oid, a regex that compiles,
 * oid_prefix's needs, and whatever else the alerter's compile would refuse. 0 or MUTT_EINVAL. */
static int rule_check_whole(const json_t *r, char *err, size_t errlen, const char **bad_field)
{
    const char *ms = json_string_value(json_object_get(r, "match_string"));
    const char *oid = json_string_value(json_object_get(r, "trap_oid"));
    const char *mt = json_string_value(json_object_get(r, "match_type"));
    if (!ms && !oid)
        return bad(err, errlen, bad_field, "match_string", "Either match_string or trap_oid is required");
    if (mt && strcmp(mt, "regex") == 0 && ms) {
        char rerr[200], msg[260];
        if (mutt_rules_validate_regex(ms, rerr, sizeof rerr) != 0) {
            snprintf(msg, sizeof msg, "match_string is not a valid regex: %s", rerr);
            return bad(err, errlen, bad_field, "match_string", msg);
        }
    }
    if (mt && strcmp(mt, "oid_prefix") == 0 && (!oid || ms))
        return bad(err, errlen, bad_field, "trap_oid", "match_type oid_prefix needs trap_oid and no match_string");
    /* Whatever else the alerter's compile would refuse (OID syntax ...), refused now. */
    struct mutt_rule rule = {
        .id = 0,
        .match_string = ms,
        .trap_oid = oid,
        .syslog_severity = json_is_integer(json_object_get(r, "syslog_severity"))
                               ? (int)json_integer_value(json_object_get(r, "syslog_severity"))
                               : -1,
        .priority = (int)json_integer_value(json_object_get(r, "priority")),
        .prod_handling = json_string_value(json_object_get(r, "prod_handling")),
        .dev_handling = json_string_value(json_object_get(r, "dev_handling")),
        .team_assignment = json_string_value(json_object_get(r, "team_assignment")),
        .is_active = true,
    };
    if (mt)
        mutt_rules_match_type_parse(mt, &rule.match_type);
    char verr[256];
    if (mutt_rules_validate(&rule, verr, sizeof verr) != 0)
        return bad(err, errlen, bad_field, oid && !ms ? "trap_oid" : NULL, verr);
    return 0;
}

int mutt_api_rule_validate(const json_t *body, const json_t *base, json_t **out, int *changed, char *err,
                           size_t errlen, const char **bad_field)
{
    *out = NULL;
    *bad_field = NULL;
    if (changed)
        *changed = 0;
    if (!json_is_object(body))
        return bad(err, errlen, bad_field, NULL, "body must be a JSON object");
    json_t *r = NULL;
    int rc = rule_start(body, base, &r, err, errlen, bad_field);
    if (rc != 0)
        return rc;
    int present = 0;
    for (int i = 0; i < 9; i++) {
        json_t *v = json_object_get(body, mutt_api_rule_fields[i]);
        if (!v)
            continue;
        present++;
        if (rule_field(mutt_api_rule_fields[i], v, r, err, errlen, bad_field) != 0) {
            json_decref(r);
            return MUTT_EINVAL;
        }
    }
    if (base && present == 0) {
        json_decref(r);
        return bad(err, errlen, bad_field, NULL, "No fields to update");
    }
    rc = rule_check_whole(r, err, errlen, bad_field);
    if (rc != 0) {
        json_decref(r);
        return rc;
    }
    if (changed && base) {
        int c = 0;
        for (int i = 0; i < 9; i++)
            if (!json_equal(json_object_get(r, mutt_api_rule_fields[i]),
                            json_object_get(base, mutt_api_rule_fields[i])))
                c++;
        *changed = c;
    } else if (changed) {
        *changed = 9;
    }
    *out = r;
    return 0;
}
