/* The HTTP front end on h2o (libuv flavour): listeners (ingest, web, health), a router with
 * method checks (405 + Allow), per-request deadlines (h2o has none), correlation ids, JSON
 * replies with content-length always set (keep-alive), and the request/op lifetime guard.
 * Knows no endpoint: stages register routes. Loop thread only. */
#ifndef MUTT_HTTP_H
#define MUTT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mutt_http;
struct mutt_http_req;
struct mutt_metrics;

/* Listener bits: a route is served on the listeners named in its mask. */
enum mutt_http_listener {
    MUTT_HTTP_INGEST = 1u << 0, /* INGESTOR_PORT */
    MUTT_HTTP_WEB = 1u << 1,    /* WEBUI_PORT */
    MUTT_HTTP_HEALTH = 1u << 2, /* HEALTH_PORT (when neither ingest nor web is on, or reuseport) */
    MUTT_HTTP_ALL = 7u,
};

struct mutt_http_opts {
    const char *bind_addr;        /* IP literal */
    int ports[3];                 /* index 0 ingest, 1 web, 2 health; 0 = listener off */
    bool reuseport[3];            /* SO_REUSEPORT on that listener (D11) */
    size_t max_body_bytes;        /* h2o answers 413 above it (before routing, D10) */
    uint64_t request_timeout_ms;  /* default deadline -> 503 */
    const char *tls_cert_file;    /* both or neither */
    const char *tls_key_file;
    const char *server_name;
};

/* A handler answers synchronously (mutt_http_reply*) or takes a hold (mutt_http_req_hold) and
 * answers later. Returns nothing: every path must end in a reply, the deadline, or the client
 * leaving. `privdata` is what was given to mutt_http_route. */
typedef void mutt_http_handler(struct mutt_http_req *req, void *privdata);

/* Creates listeners and the h2o context. Returns NULL and fills err on failure (port in use,
 * bad cert...). Routes may be added until mutt_http_start. */
struct mutt_http *mutt_http_create(uv_loop_t *loop, const struct mutt_http_opts *opts, struct mutt_metrics *metrics,
                                   char *err, size_t errlen);
/* Registers `methods` (comma list: "GET", "GET,POST") on `pattern` for the listeners in `mask`.
 * Pattern segments: literal, `{name}` (one segment, read with mutt_http_req_param), or a final
 * `*` (any rest). Exact match otherwise. Returns 0 or MUTT_EINVAL/MUTT_ENOMEM. */
int mutt_http_route(struct mutt_http *h, unsigned mask, const char *methods, const char *pattern,
                    mutt_http_handler *handler, void *privdata);
/* Binds and listens. Returns 0 or a negative MUTT_E* (err filled). */
int mutt_http_start(struct mutt_http *h, char *err, size_t errlen);
/* Stops accepting new connections (drain begins). Requests in flight still complete. */
void mutt_http_stop_accepting(struct mutt_http *h);
/* Until ready, a path no route matches answers 503 + Retry-After: 1 ("starting") instead of 404,
 * so clients that arrive before the stages registered their routes retry. Starts not ready. */
void mutt_http_set_ready(struct mutt_http *h, bool ready);
/* Number of requests accepted and not yet answered. */
size_t mutt_http_inflight(const struct mutt_http *h);
/* Stops accepting and disposes the h2o context (its timers close asynchronously). Call once the
 * stages have stopped; then close the remaining handles, run the loop, and destroy. */
void mutt_http_close(struct mutt_http *h);
/* Frees everything. Only after mutt_http_close and a uv_run that let the close callbacks run. */
void mutt_http_destroy(struct mutt_http *h);
/* Port actually bound for a listener index (0 ingest, 1 web, 2 health); 0 when off. */
int mutt_http_port(const struct mutt_http *h, int index);

/* --- request accessors (borrowed: valid until the reply, the deadline or the client leaving) --- */
const char *mutt_http_req_method(const struct mutt_http_req *req, size_t *len);
const char *mutt_http_req_path(const struct mutt_http_req *req, size_t *len);   /* without query, h2o-normalized (decoded) */
/* The path as sent, without query, not percent-decoded: what routing and `{name}` values use. */
const char *mutt_http_req_raw_path(const struct mutt_http_req *req, size_t *len);
const char *mutt_http_req_query(const struct mutt_http_req *req, size_t *len);  /* NULL when none */
const char *mutt_http_req_body(const struct mutt_http_req *req, size_t *len);   /* NOT NUL-terminated */
/* Header value by lower-case name; NULL when absent. `count` (optional) receives how many times
 * the header appears, so handlers can refuse duplicates. */
const char *mutt_http_req_header(const struct mutt_http_req *req, const char *lc_name, size_t *len, int *count);
/* Value of a `{name}` path segment, NUL-terminated, percent-decoded exactly once from the raw
 * path (a `%00` is refused with 400 before any handler runs); NULL when absent. */
const char *mutt_http_req_param(const struct mutt_http_req *req, const char *name);
/* Query parameter, percent-decoded into the request's pool; NULL when absent. */
const char *mutt_http_req_query_param(const struct mutt_http_req *req, const char *name);
/* The request's correlation id: X-Correlation-ID when valid, else a generated UUIDv4. */
const char *mutt_http_req_correlation_id(const struct mutt_http_req *req);
/* Which listener (MUTT_HTTP_INGEST/WEB/HEALTH) accepted it. */
unsigned mutt_http_req_listener(const struct mutt_http_req *req);
/* Monotonic ms when the request reached the router. */
uint64_t mutt_http_req_start_ms(const struct mutt_http_req *req);

/* --- async lifetime --- */
/* Takes a hold: the req struct stays allocated (not the h2o request!) until released, so an
 * async callback can safely ask mutt_http_req_answered() and reply. Every hold needs a release. */
void mutt_http_req_hold(struct mutt_http_req *req);
void mutt_http_req_release(struct mutt_http_req *req);
/* True once a reply was sent, the deadline fired or the client went away: replying is then a
 * no-op. */
bool mutt_http_req_answered(const struct mutt_http_req *req);
/* Replaces the default deadline: after timeout_ms the request is answered `status` with
 * {"status":"error","message":<message>,"correlation_id":..} (message copied); a 503 also carries
 * Retry-After: 1. */
void mutt_http_req_set_deadline(struct mutt_http_req *req, uint64_t timeout_ms, int status, const char *message);

/* --- replies (each returns 0, or MUTT_ESTATE when the request was already answered) --- */
/* Adds a response header (name lower-case, copied) before the reply. */
int mutt_http_add_header(struct mutt_http_req *req, const char *name, const char *value);
/* Sends body (copied) with Content-Type application/json and content-length. */
int mutt_http_reply_json(struct mutt_http_req *req, int status, const char *body, size_t len);
int mutt_http_reply(struct mutt_http_req *req, int status, const char *content_type, const char *body, size_t len);
/* Error body per D18: {"error":message,"field":field?,"correlation_id":..}. field may be NULL. */
int mutt_http_reply_error(struct mutt_http_req *req, int status, const char *message, const char *field);
/* Ingest-style error body (CONTRACT §3): {"status":"error","message":..,"correlation_id":..}. */
int mutt_http_reply_status_error(struct mutt_http_req *req, int status, const char *message);

#endif
