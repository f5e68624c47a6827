/* Shared by the files of the web stage (src/web/), its one private header: the stage state, the
 * per-request call, the handlers of the endpoint table, reply/request helpers and the PG/Redis
 * call helpers. Split by concern, and used in one direction only (no circles):
 *   api.c        the stage: lifecycle, routes, auth, versioning, dispatch table -> handlers, web_call.c
 *   api_rules.c, api_hosts.c (dev hosts + teams), api_config.c, api_audit.c, api_ops.c (metrics,
 *                DLQ, SLO, version, unhandled) -> web_call.c only
 *   web_changes.c named users, change requests (approve/reject/emergency/expiry), API usage;
 *                applies an approved request through api.c's dispatch (web_dispatch)
 *   web_call.c   a call's life: replies, body/params, PG/Redis steps, web_done -> web_changes.c
 *                only for the books and a change being applied
 *   ui_assets.c  GET /, /audit, /ui/<file> (registered by api.c)
 * Pure rules live in domain/webapi.c. Every change commits with its config_audit_log row in one
 * statement. Uses the shared Redis command connection and the PG pool; owns no connection. Not
 * part of the public API (include/mutt/web.h). Loop thread only. */
#ifndef MUTT_WEB_INTERNAL_H
#define MUTT_WEB_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "mutt/ctx.h"
#include "mutt/web.h"
#include "mutt/webapi.h"

struct mutt_counter;
struct mutt_histogram;
struct mutt_http_req;

/* The stage's state (one instance, owned by api.c). It is declared here so that web_call.c can
 * keep the per-call books (metrics, in-flight count) and finish a waiting stop without calling
 * back into api.c. */
struct web {
    struct mutt_ctx *ctx;
    bool running;
    bool stopping;
    size_t inflight;            /* calls not yet done: api.c counts them in, web_done out */
    mutt_stage_done_cb *done;   /* set while a stop waits for inflight to reach 0 */
    void *done_priv;
    struct mutt_counter *requests;  /* mutt_webui_api_requests_total{endpoint,status} */
    struct mutt_histogram *latency; /* mutt_webui_api_latency_seconds{endpoint} */
    struct mutt_counter *client_gone;
    struct mutt_counter *api_requests; /* mutt_api_requests_total{version,endpoint,status} (D45) */
};

/* web_call.c: ends a stop that waits (stopping, done set) once no call is in flight. Called by
 * web_done after each call and by the stage's stop. */
void web_maybe_stopped(struct web *w);

/* One API request from dispatch to reply: created by the dispatcher in api.c (which holds the
 * HTTP request), freed by web_done in web_call.c. Handlers keep per-request state in `data`
 * (freed with free_data, or free() when free_data is NULL). */
struct web_call {
    struct web *w;
    struct mutt_ctx *ctx;
    struct mutt_http_req *req;
    const struct mutt_api_endpoint *ep;
    enum mutt_api_role role;
    char changed_by[112];    /* D18/D46: webui_api:<user name> or webui_api:<8 hex> */
    const char *version;     /* negotiated API version ("2.0", "1.0"): static storage */
    bool v1_prefix;          /* the request came in under /api/v1 (metrics endpoint label) */
    const char *cid;         /* correlation id (borrowed from req) */
    const char *conflict;    /* 409 message when a query hits a unique violation (23505) */
    const char *notfound;    /* 404 message for handlers that use web_query_one */
    uint64_t start_ns;
    void *data;
    void (*free_data)(void *);
    int status;              /* HTTP status sent (metrics) */
    /* When set, a failed Redis step (error reply, disconnect) calls this instead of answering
     * 503/500 and ending the call: a multi-step write finishes what it did (audit) first. The
     * hook must end the call (exactly one web_done, usually through a reply). */
    void (*on_redis_failed)(struct web_call *c, int status);
    bool outlives_request;   /* a write: once started, its chain of steps runs to the end even
                                after the deadline answered the client 503 (issue 11); only the
                                answer is cut. Reads stop at the next step instead. */
    void *next;              /* private to web_call.c: the pending backend callback */
    /* web_changes.c: while an approved change request is applied, its stored request stands in
     * for the HTTP one (method, body, path parameters) and the handler's answer is wrapped into
     * the approval's answer. NULL otherwise. Freed by web_done. */
    struct web_change *change;
};

/* api.c: runs the handler of c->ep (used by web_changes.c to apply a change request). */
void web_dispatch(struct web_call *c);

/* ---- web_changes.c: named users (D43/D46), the two-person rule (D47), API usage (D45) ---- */
int web_changes_start(struct mutt_ctx *ctx, char *err, size_t errlen);
void web_changes_stop(void);
/* The role and audit name of a presented key from the users table (WEBUI_USERS_FILE and the
 * WEBUI_USERS secret); false when the key names no user. */
bool web_changes_user(const char *key, size_t klen, enum mutt_api_role *role, char *changed_by, size_t cblen);
/* Called by the dispatcher before a write's handler: true when the write needs approval and the
 * call was taken over (a change request filed and 202 answered, or an emergency override that
 * runs the handler itself afterwards). */
bool web_changes_intercept(struct web_call *c);
/* web_call.c: a handler answered while its change request was being applied. Sends the
 * approval's own answer (sets c->status); the caller then ends the call. */
void web_change_answer(struct web_call *c, int status, const char *json, size_t len);
void web_change_free(struct web_change *ch);
/* The stored request of a change being applied: method, body (new reference, NULL when it had
 * none) and path parameters (borrowed). */
const char *web_change_method(const struct web_change *ch);
json_t *web_change_body(const struct web_change *ch);
const char *web_change_param(const struct web_change *ch, const char *name);
/* D45: one answered request (web_done, and the dispatcher's own early answers). */
void web_count_request(struct web *w, const char *version, const char *endpoint, int status, bool v1_prefix,
                       const char *user);
void web_changes_list(struct web_call *c);   /* GET /changes */
void web_change_decide(struct web_call *c);  /* POST /changes/{id}/{action} */
void web_version_usage(struct web_call *c);  /* GET /version/usage */

/* Handlers (api_*.c, one per row of mutt_api_endpoints). Each ends in exactly one web_done. */
void web_rules(struct web_call *c);
void web_rule(struct web_call *c);
void web_rules_dry_run(struct web_call *c); /* api_dryrun.c */
void web_dev_hosts(struct web_call *c);
void web_dev_host(struct web_call *c);
void web_teams(struct web_call *c);
void web_team(struct web_call *c);
void web_config(struct web_call *c);
void web_config_key(struct web_call *c);
void web_config_history(struct web_call *c);
void web_config_rollback(struct web_call *c);
void web_config_drift(struct web_call *c);
void web_audit(struct web_call *c);
void web_audit_logs(struct web_call *c);
void web_metrics(struct web_call *c);
void web_dlq(struct web_call *c);
void web_dlq_replay(struct web_call *c);
void web_version(struct web_call *c);
void web_slo(struct web_call *c);
void web_unhandled(struct web_call *c);
void web_audit_report(struct web_call *c); /* api_holds.c (issue 17) */
void web_legal_holds(struct web_call *c);  /* api_holds.c */
void web_legal_hold(struct web_call *c);   /* api_holds.c */
void web_maint_windows(struct web_call *c); /* api_maint.c */
void web_maint_window(struct web_call *c);
/* api_events.c: event lineage (D41, D63) */
void web_event(struct web_call *c);
void web_events(struct web_call *c);
int web_events_register_scripts(struct mutt_ctx *ctx); /* called by the stage start */

int web_ops_register_scripts(struct mutt_ctx *ctx); /* api_ops.c: called by the stage start */
void web_ops_recover(struct mutt_ctx *ctx);         /* api_ops.c: items left by a crashed replay */
/* api_ops.c: the janitor returning dead web pods' replay lists (deadlists.h); 0 or MUTT_ENOMEM */
int web_ops_janitor_start(struct mutt_ctx *ctx);
void web_ops_janitor_stop(void);

/* ---- web_call.c: replies (each ends the call) ---- */
void web_done(struct web_call *c);
void web_reply_error(struct web_call *c, int status, const char *message, const char *field);
/* Takes ownership of o. */
void web_reply_obj(struct web_call *c, int status, json_t *o);
void web_reply_text(struct web_call *c, int status, const char *json, size_t len);

/* ---- web_call.c: request helpers ---- */
const char *web_method(struct web_call *c); /* "GET" "POST" ... (HEAD reads as GET) */
/* Body parsed as a JSON object; NULL with a 400 already sent (and the call done) otherwise.
 * `optional`: an empty body gives an empty object. Caller decrefs. */
json_t *web_body_object(struct web_call *c, bool optional);
/* "reason" of a body: NULL when absent; false (400 sent) when present but not a string <= 1000 B. */
bool web_body_reason(struct web_call *c, const json_t *body, const char **reason);
/* Both of the above, as every write handler starts: the body, with *reason borrowed from it;
 * NULL with the 400 sent. Caller decrefs. */
json_t *web_body_with_reason(struct web_call *c, bool optional, const char **reason);
/* Percent-decoded query parameter or path parameter (borrowed from the request). */
const char *web_query_param(struct web_call *c, const char *name);
const char *web_path_param(struct web_call *c, const char *name);
bool web_answered(struct web_call *c);

/* ---- web_call.c: async backends: cb runs only on success; failures reply (503 / 409 / 400 /
 * 500 without driver text, W35) and end the call. The call must not be touched after a non-zero return. ---- */
typedef void web_pg_cb(struct web_call *c, PGresult *res);
int web_query(struct web_call *c, const char *sql, int nparams, const char *const *values, web_pg_cb *cb);
typedef void web_redis_cb(struct web_call *c, redisReply *reply);
int web_redis(struct web_call *c, int argc, const char **argv, const size_t *lens, web_redis_cb *cb);
int web_evalsha(struct web_call *c, int script, int nkeys, const char **keys, const size_t *keylens, int nargs,
                const char **args, const size_t *arglens, web_redis_cb *cb);
/* Fire-and-forget PUBLISH mutt:rules:updates <what>. */
void web_publish_rules(struct web_call *c, const char *what);

/* SQL fragment: ISO 8601 UTC with milliseconds of a timestamptz expression (W43). */
#define WEB_ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The dashboard (ui_assets.c): registers GET /, /audit and /ui/<file> on the web listener. */
int mutt_web_ui_register(struct mutt_ctx *ctx);

#endif
