/* The life of one management API call (struct web_call) from the dispatcher's hand-over to its
 * one web_done: replies, request body and parameters, and the PostgreSQL and Redis steps with
 * their failure answers. The handlers (api_*.c) use only this file; the stage (api.c) creates
 * calls and uses it too; this file uses neither. What web_done needs of the stage (metrics, the
 * in-flight count of the stop protocol) it reads through the call's struct web. Loop thread only. */
#define _GNU_SOURCE
#include "web_internal.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "mutt/error.h"
#include "mutt/http.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/redis.h"

/* ------------------------------------------------------------------------------------------ */
/* call lifetime and replies                                                                   */

void web_maybe_stopped(struct web *w)
{
    if (!w->stopping || w->inflight > 0 || !w->done)
        return;
    mutt_stage_done_cb *done = w->done;
    w->done = NULL;
    w->running = false;
    done(w->ctx, w->done_priv);
}

static const char *endpoint_label(const struct mutt_api_endpoint *ep)
{
    return ep && ep->path ? ep->path + 1 : "unknown";
}

void web_done(struct web_call *c)
{
    struct web *w = c->w;
    const char *st = c->status >= 500 ? "error" : c->status >= 400 ? "error_invalid" : c->status ? "success"
                                                                                               : "client_gone";
    const char *labels[] = {endpoint_label(c->ep), st};
    mutt_counter_inc(mutt_counter_labels(w->requests, labels));
    web_count_request(w, c->version, c->ep ? c->ep->path : NULL, c->status, c->v1_prefix, c->changed_by);
    web_change_free(c->change);
    const char *el[] = {endpoint_label(c->ep)};
    mutt_histogram_observe(mutt_histogram_labels(w->latency, el), (double)(uv_hrtime() - c->start_ns) / 1e9);
    if (c->data) {
        if (c->free_data)
            c->free_data(c->data);
        else
            free(c->data);
    }
    mutt_http_req_release(c->req);
    free(c);
    w->inflight--;
    web_maybe_stopped(w);
}

bool web_answered(struct web_call *c)
{
    return mutt_http_req_answered(c->req);
}

/* A backend reply arrived after the client got its answer (the deadline's 503, or it left).
 * A read has nothing left to do. A write must not stop half-way (audit row without the Redis
 * value, a change without its PUBLISH, an item stranded in a processing list): its steps go on
 * and their replies are dropped by the request side. */
static bool abandon_if_answered(struct web_call *c)
{
    if (!web_answered(c) || c->outlives_request)
        return false;
    mutt_counter_inc(c->w->client_gone);
    web_done(c);
    return true;
}

static void reply_error_only(struct web_call *c, int status, const char *message, const char *field)
{
    if (c->change) {
        json_t *o = json_object();
        json_object_set_new(o, "error", json_string(message));
        if (field)
            json_object_set_new(o, "field", json_string(field));
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        web_change_answer(c, status, s ? s : "{}", s ? strlen(s) : 2);
        free(s);
        return;
    }
    if (mutt_http_reply_error(c->req, status, message, field) == 0)
        c->status = status;
}

void web_reply_error(struct web_call *c, int status, const char *message, const char *field)
{
    reply_error_only(c, status, message, field);
    web_done(c);
}

void web_reply_text(struct web_call *c, int status, const char *json, size_t len)
{
    if (c->change)
        web_change_answer(c, status, json, len);
    else if (mutt_http_reply_json(c->req, status, json, len) == 0)
        c->status = status;
    web_done(c);
}

void web_reply_obj(struct web_call *c, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    web_reply_text(c, status, s, strlen(s));
    free(s);
}

/* ------------------------------------------------------------------------------------------ */
/* request helpers                                                                             */

const char *web_method(struct web_call *c)
{
    if (c->change)
        return web_change_method(c->change);
    size_t n = 0;
    const char *m = mutt_http_req_method(c->req, &n);
    if (n == 3 && memcmp(m, "GET", 3) == 0)
        return "GET";
    if (n == 4 && memcmp(m, "HEAD", 4) == 0)
        return "GET";
    if (n == 4 && memcmp(m, "POST", 4) == 0)
        return "POST";
    if (n == 3 && memcmp(m, "PUT", 3) == 0)
        return "PUT";
    if (n == 6 && memcmp(m, "DELETE", 6) == 0)
        return "DELETE";
    return "OTHER";
}

json_t *web_body_object(struct web_call *c, bool optional)
{
    if (c->change) {
        json_t *o = web_change_body(c->change);
        if (!o && !optional)
            web_reply_error(c, 400, "body must be a JSON object", NULL);
        return o ? o : optional ? json_object() : NULL;
    }
    size_t len = 0;
    const char *b = mutt_http_req_body(c->req, &len);
    size_t i = 0;
    while (b && i < len && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
        i++;
    if (!b || i == len) {
        if (optional)
            return json_object();
        web_reply_error(c, 400, "body must be a JSON object", NULL);
        return NULL;
    }
    json_error_t jerr;
    json_t *o = json_loadb(b, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        web_reply_error(c, 400, "body must be a JSON object", NULL);
        return NULL;
    }
    return o;
}

bool web_body_reason(struct web_call *c, const json_t *body, const char **reason)
{
    *reason = NULL;
    json_t *r = json_object_get(body, "reason");
    if (!r || json_is_null(r))
        return true;
    if (!json_is_string(r) || json_string_length(r) > 1000) {
        web_reply_error(c, 400, "reason must be a string of at most 1000 bytes", "reason");
        return false;
    }
    *reason = json_string_value(r);
    return true;
}

json_t *web_body_with_reason(struct web_call *c, bool optional, const char **reason)
{
    json_t *body = web_body_object(c, optional);
    if (!body)
        return NULL;
    if (!web_body_reason(c, body, reason)) {
        json_decref(body);
        return NULL;
    }
    return body;
}

const char *web_query_param(struct web_call *c, const char *name)
{
    return mutt_http_req_query_param(c->req, name);
}

const char *web_path_param(struct web_call *c, const char *name)
{
    if (c->change)
        return web_change_param(c->change, name);
    return mutt_http_req_param(c->req, name);
}

/* ------------------------------------------------------------------------------------------ */
/* PostgreSQL and Redis                                                                        */

static void on_pg_result(void *privdata, PGresult *res, int status)
{
    struct web_call *c = privdata;
    web_pg_cb *cb = (web_pg_cb *)c->next;
    c->next = NULL;
    if (abandon_if_answered(c))
        return;
    if (status == 0) {
        cb(c, res);
        return;
    }
    if (status == MUTT_EIO && res) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "23505") == 0) {
            web_reply_error(c, 409, c->conflict ? c->conflict : "already exists", NULL);
            return;
        }
        if (state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)) {
            /* a value PostgreSQL refused (CHECK, NOT NULL, range): the request's fault */
            mutt_log_kv(MUTT_LOG_INFO, "web", c->cid, NULL, "%s refused by PostgreSQL: %s", endpoint_label(c->ep),
                        state);
            web_reply_error(c, 400, "invalid value", NULL);
            return;
        }
        /* W35: the driver's text goes to the log, never to the client */
        mutt_log_kv(MUTT_LOG_ERROR, "web", c->cid, NULL, "%s: PostgreSQL error %s: %s", endpoint_label(c->ep),
                    state ? state : "?", PQresultErrorMessage(res));
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: PostgreSQL %s", endpoint_label(c->ep),
                mutt_strerror(status));
    web_reply_error(c, 503, "database unavailable", NULL);
}

int web_query(struct web_call *c, const char *sql, int nparams, const char *const *values, web_pg_cb *cb)
{
    if (!c->ctx->pg) {
        web_reply_error(c, 503, "database unavailable", NULL);
        return MUTT_EDISCONNECTED;
    }
    c->next = (void *)cb;
    int rc = mutt_pg_query(c->ctx->pg, sql, nparams, values, on_pg_result, c);
    if (rc != 0) {
        c->next = NULL;
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: PostgreSQL %s", endpoint_label(c->ep),
                    mutt_strerror(rc));
        web_reply_error(c, 503, "database unavailable", NULL);
    }
    return rc;
}

static void on_redis_reply(void *privdata, redisReply *reply, int status)
{
    struct web_call *c = privdata;
    web_redis_cb *cb = (web_redis_cb *)c->next;
    c->next = NULL;
    if (abandon_if_answered(c))
        return;
    if (status == 0 && reply) {
        cb(c, reply);
        return;
    }
    const char *why = status == MUTT_EIO && reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                     : mutt_strerror(status);
    mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: Redis %s", endpoint_label(c->ep), why);
    if (c->on_redis_failed) {
        c->on_redis_failed(c, status ? status : MUTT_EIO);
        return;
    }
    if (status == MUTT_EIO)
        web_reply_error(c, 500, "internal error", NULL);
    else
        web_reply_error(c, 503, "Redis unavailable", NULL);
}

static int redis_failed(struct web_call *c, int rc)
{
    c->next = NULL;
    mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "%s: Redis %s", endpoint_label(c->ep), mutt_strerror(rc));
    if (c->on_redis_failed)
        c->on_redis_failed(c, rc);
    else
        web_reply_error(c, 503, "Redis unavailable", NULL);
    return rc;
}

int web_redis(struct web_call *c, int argc, const char **argv, const size_t *lens, web_redis_cb *cb)
{
    c->next = (void *)cb;
    int rc = mutt_redis_command(mutt_redis_cmd(c->ctx->redis), on_redis_reply, c, argc, argv, lens);
    return rc != 0 ? redis_failed(c, rc) : 0;
}

int web_evalsha(struct web_call *c, int script, int nkeys, const char **keys, const size_t *keylens, int nargs,
                const char **args, const size_t *arglens, web_redis_cb *cb)
{
    c->next = (void *)cb;
    int rc = mutt_redis_evalsha(mutt_redis_cmd(c->ctx->redis), script, nkeys, keys, keylens, nargs, args, arglens,
                                on_redis_reply, c);
    return rc != 0 ? redis_failed(c, rc) : 0;
}

void web_publish_rules(struct web_call *c, const char *what)
{
    const char *argv[] = {"PUBLISH", MUTT_KEY_RULES_CHANNEL, what};
    size_t lens[] = {7, strlen(MUTT_KEY_RULES_CHANNEL), strlen(what)};
    /* Fire and forget: when Redis is down the alerter's periodic reload still picks it up. */
    if (mutt_redis_command(mutt_redis_cmd(c->ctx->redis), NULL, NULL, 3, argv, lens) != 0)
        mutt_log_kv(MUTT_LOG_WARNING, "web", c->cid, NULL, "PUBLISH %s failed; alerters reload on their timer",
                    MUTT_KEY_RULES_CHANNEL);
}
