/* Pure helpers of the management API (CONTRACT §7, D18-D21): version negotiation and the
 * endpoint table (since / deprecated / removed per endpoint -> 410), request-body validation of
 * rules, audit-query filter parsing into bound parameters (page/limit rules, ILIKE escaping),
 * constant-time key checks and the changed_by label. No I/O, no clock: the web stage
 * (src/web/) does the HTTP, PostgreSQL and Redis work. Any thread. */
#ifndef MUTT_WEBAPI_H
#define MUTT_WEBAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* ---- versions (D21) ------------------------------------------------------------------------ */

#define MUTT_API_CURRENT_VERSION "2.0"
#define MUTT_API_SUPPORTED_HEADER "2.0, 1.0"

struct mutt_api_version {
    const char *version;       /* "2.0" */
    const char *status;        /* "current" | "deprecated" */
    const char *released;      /* YYYY-MM-DD */
    const char *deprecated_in; /* NULL when not deprecated */
    const char *removed_in;    /* NULL when no removal is planned */
    const char *sunset;        /* YYYY-MM-DD, NULL when none */
};

/* The supported versions, newest first; NULL-terminated by a row whose version is NULL. */
extern const struct mutt_api_version mutt_api_versions[];

/* Row of a supported version string ("2.0", "1.0"; the original's "2.5" reads as "2.0"),
 * surrounding spaces and a leading 'v' tolerated. NULL when not supported. */
const struct mutt_api_version *mutt_api_version_find(const char *s);

/* CONTRACT §7: the first of Accept-Version, X-API-Version, ?api_version= (each may be NULL) that
 * names a supported version wins; none -> the current version. The path prefix (/api/v1 or
 * /api/v2) takes no part (D21). Never NULL. */
const struct mutt_api_version *mutt_api_negotiate(const char *accept_version, const char *x_api_version,
                                                  const char *query_version);

/* Numeric dotted compare ("1.10" > "1.9"): <0, 0, >0. */
int mutt_api_version_cmp(const char *a, const char *b);

/* ---- endpoint table ------------------------------------------------------------------------ */

/* Handler ids of the real table's rows. */
enum mutt_api_ep_id {
    MUTT_API_EP_RULES, MUTT_API_EP_RULE, MUTT_API_EP_DEV_HOSTS, MUTT_API_EP_DEV_HOST, MUTT_API_EP_TEAMS,
    MUTT_API_EP_TEAM, MUTT_API_EP_RULES_DRY_RUN, MUTT_API_EP_CONFIG, MUTT_API_EP_CONFIG_HISTORY, MUTT_API_EP_CONFIG_ROLLBACK,
    MUTT_API_EP_CONFIG_KEY, MUTT_API_EP_AUDIT, MUTT_API_EP_AUDIT_LOGS, MUTT_API_EP_METRICS, MUTT_API_EP_DLQ,
    MUTT_API_EP_DLQ_REPLAY, MUTT_API_EP_VERSION, MUTT_API_EP_SLO, MUTT_API_EP_UNHANDLED, MUTT_API_EP_CONFIG_DRIFT,
    MUTT_API_EP_AUDIT_REPORT, MUTT_API_EP_LEGAL_HOLDS, MUTT_API_EP_LEGAL_HOLD, /* issue 17 */
    MUTT_API_EP_MAINT_WINDOWS, MUTT_API_EP_MAINT_WINDOW,
    MUTT_API_EP_CHANGES, MUTT_API_EP_CHANGE_DECIDE, MUTT_API_EP_VERSION_USAGE,
    MUTT_API_EP_EVENTS, MUTT_API_EP_EVENT,
    MUTT_API_EP__COUNT
};

enum mutt_api_ep_flags {
    MUTT_API_PUBLIC = 1u << 0,   /* no key needed (GET /version) */
    MUTT_API_EXTERNAL = 1u << 1, /* served by another stage (GET /unhandled): listed for 405s only */
    MUTT_API_READ_POST = 1u << 2, /* a POST that writes nothing: the read-only key may call it (D47) */
};

struct mutt_api_endpoint {
    int id;                    /* the web stage's handler index */
    const char *methods;       /* "GET,POST" */
    const char *path;          /* after the /api/vN prefix: "/rules/{id}" */
    unsigned flags;
    const char *since;         /* first version with the endpoint */
    const char *removed_in;    /* NULL = never removed */
    const char *removal_date;  /* YYYY-MM-DD or NULL */
};

/* The real table (the web stage registers each row under /api/v1 and /api/v2), ended by a row
 * whose path is NULL. */
extern const struct mutt_api_endpoint mutt_api_endpoints[];

/* Matches `path` (after the prefix, no query) against a pattern with `{name}` segments. A
 * trailing '/' on path is tolerated. */
bool mutt_api_path_match(const char *pattern, const char *path, size_t len);

/* First row of `table` whose pattern matches path; NULL when none. */
const struct mutt_api_endpoint *mutt_api_endpoint_find(const struct mutt_api_endpoint *table, const char *path,
                                                       size_t len);

/* The comma list ("GET, POST") of methods that `table` serves on `path` into buf; returns false
 * when no row matches. */
bool mutt_api_allowed_methods(const struct mutt_api_endpoint *table, const char *path, size_t len, char *buf,
                              size_t buflen);

/* The verdict for one request: 410 when the endpoint was removed in (or before) the negotiated
 * version, plus the deprecation headers the version carries. */
struct mutt_api_verdict {
    int status;               /* 0 = go on, 410 = removed */
    char body[320];           /* 410 JSON body (without correlation id) when status is 410 */
    char deprecated[160];     /* X-API-Deprecated value, "" when none */
    char sunset[16];          /* X-API-Sunset value, "" when none */
};
void mutt_api_check(const struct mutt_api_endpoint *ep, const struct mutt_api_version *v,
                    struct mutt_api_verdict *out);

/* The GET /version body (D21), compact JSON, malloc'd (NULL on OOM). */
char *mutt_api_version_body(void);

/* ---- auth ---------------------------------------------------------------------------------- */

/* APPROVER (a named user's role, D43): writes like ADMIN and may approve others' change requests,
 * but is not ADMIN where an endpoint is admin-only. */
enum mutt_api_role { MUTT_API_NONE = 0, MUTT_API_READONLY, MUTT_API_ADMIN, MUTT_API_APPROVER };

/* Which key `given` (glen bytes) is: both keys are always compared, in time independent of
 * where they differ. Empty/NULL keys match nothing. A key equal to both (a misconfiguration the
 * config check refuses) is read-only. */
enum mutt_api_role mutt_api_key_role(const char *given, size_t glen, const char *admin, const char *readonly);

/* D18: "webui_api:<first 8 hex of sha256(key)>" into buf (>= 20 bytes). */
void mutt_api_changed_by(const char *key, size_t klen, char *buf, size_t buflen);


/* ---- paging and filters (D18) -------------------------------------------------------------- */

#define MUTT_API_LIMIT_DEFAULT 50
#define MUTT_API_LIMIT_MAX 200
/* Deepest row the event audit (/audit-logs) pages to: (page - 1) * limit <= this, else 400 naming
 * offset. An OFFSET makes PostgreSQL read and drop every row before it, so a read-only key could
 * otherwise make each request scan most of event_audit_log; deeper history is reached by
 * narrowing start_date/end_date. */
#define MUTT_API_MAX_EVENT_OFFSET 10000

/* Looks a query parameter up (NULL when absent). */
typedef const char *mutt_api_param_fn(void *privdata, const char *name);

/* page: integer >= 1 (default 1); limit: integer >= 1 (default 50), values above 200 are
 * clamped to 200. Returns 0, or MUTT_EINVAL with *bad_field = "page" / "limit". */
int mutt_api_parse_paging(const char *page, const char *limit, long *page_out, long *limit_out,
                          const char **bad_field);

/* Escapes %, _ and \ with a backslash so the text matches itself under ILIKE (default escape).
 * Returns 0 or MUTT_EFULL when buf is too small. */
int mutt_api_like_escape(const char *in, char *buf, size_t buflen);

/* A WHERE clause with $n placeholders and the values to bind, built from query filters. */
#define MUTT_API_MAX_FILTERS 8
struct mutt_api_filter {
    char where[512];                          /* "" or "WHERE a = $1 AND ..." */
    const char *values[MUTT_API_MAX_FILTERS]; /* point into `store` */
    int nvalues;
    long page, limit;
    char store[MUTT_API_MAX_FILTERS][320];
};

enum mutt_api_audit_kind {
    MUTT_API_AUDIT_CONFIG, /* config_audit_log: changed_by operation table_name record_id start_date end_date */
    MUTT_API_AUDIT_EVENT,  /* event_audit_log: hostname rule_id start_date end_date */
};

/* Reads the filters of `kind` plus page/limit through `get`. Every value is validated (operation
 * and table_name against D20's lists, ids as int32 >= 0, dates as ISO 8601 (a date-only end_date
 * covers that whole day), text <= 255 bytes)
 * and bound as a parameter; for MUTT_API_AUDIT_EVENT the offset (page - 1) * limit must not exceed
 * MUTT_API_MAX_EVENT_OFFSET (*bad_field = "offset"), never spliced into SQL. Returns 0, or MUTT_EINVAL with the message in
 * err and the parameter's name in *bad_field. */
int mutt_api_filter_parse(enum mutt_api_audit_kind kind, mutt_api_param_fn *get, void *privdata,
                          struct mutt_api_filter *out, char *err, size_t errlen, const char **bad_field);

/* D20's lists. */
bool mutt_api_audit_operation_valid(const char *s);
bool mutt_api_audit_table_valid(const char *s);

/* ---- rule bodies --------------------------------------------------------------------------- */

/* The nine writable rule fields, in column order. */
extern const char *const mutt_api_rule_fields[9];

/* Validates a rule body. `body` must be a JSON object. For a create (`base` NULL) missing fields
 * take their defaults (match_type contains, priority 100, is_active true, severity null); for an
 * update `base` is the current row (same field names) and the result is base overridden by the
 * fields present in body (400 "No fields to update" when none is). On success *out is a new
 * object holding exactly the nine fields (caller decrefs) and *changed (may be NULL) the number of
 * fields whose value differs from base. On failure returns MUTT_EINVAL with err and *bad_field
 * (NULL when no single field is at fault). Rules: match_type in contains|regex|oid_prefix;
 * syslog_severity null or integer 0..7; priority an integer within int32; handlings and team
 * non-empty strings <= 100 bytes; match_string/trap_oid null or strings <= 255 bytes (empty ->
 * null); at least one of them set; regex compiles under PCRE2 (mutt_rules_validate_regex); the
 * rest of mutt_rules_validate (oid_prefix needs trap_oid and no match_string, OID syntax). */
int mutt_api_rule_validate(const json_t *body, const json_t *base, json_t **out, int *changed, char *err,
                           size_t errlen, const char **bad_field);

#endif
