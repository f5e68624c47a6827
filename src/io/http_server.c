/* The HTTP front end: h2o 2.2.5 (libuv flavour) listeners, one catch-all h2o handler per
 * listener feeding our own router, per-request deadlines and the request lifetime guard.
 * Does not know any endpoint. Loop thread only.
 *
 * Lifetime: a struct mutt_http_req is calloc'd per request with one reference owned by the
 * "request side" (h2o). The reference is dropped when the reply is sent, the deadline fires or
 * h2o disposes the request (client gone, shutdown). Handlers that go async take their own hold.
 * The h2o_req_t is only touched while r->h2o is non-NULL (stack-notes §3.1). */
#define _GNU_SOURCE
#include "mutt/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <h2o.h>
#include <openssl/ssl.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/random.h"
#include "mutt/urlpath.h"

#define MAX_ROUTE_SEGMENTS 12
#define MAX_PARAMS 4
#define NLISTENERS 3

struct route {
    unsigned mask;
    char methods[64]; /* comma list, upper case */
    char *pattern;    /* owned */
    char *segs[MAX_ROUTE_SEGMENTS];
    size_t nsegs;
    bool wildcard; /* last segment was `*` */
    mutt_http_handler *handler;
    void *privdata;
};

struct listener_handler {
    h2o_handler_t super; /* first member: h2o calls on_req with this pointer */
    struct mutt_http *http;
    unsigned listener; /* MUTT_HTTP_* bit */
};

struct listener {
    uv_tcp_t tcp;
    bool open;
    int port; /* actually bound */
    h2o_accept_ctx_t accept;
    h2o_hostconf_t *hosts[2]; /* NULL-terminated: one host = Host header ignored */
    struct mutt_http *http;
    size_t nconns;            /* accepted on this listener, not yet closed */
    struct mutt_counter *refused; /* mutt_http_connections_refused_total{listener} */
};

/* An accepted connection. h2o owns the socket; we only keep a list so that close can end idle
 * keep-alive connections (h2o 2.2's HTTP/1 has no shutdown hook, and disposing the context with
 * connections alive trips an assertion in h2o_timeout_dispose). tcp must stay first: h2o hands
 * the handle back to on_conn_closed. */
struct conn {
    uv_tcp_t tcp;
    struct mutt_http *http;
    struct listener *listener;
    struct conn *prev, *next;
};

struct mutt_http {
    uv_loop_t *loop;
    struct conn *conns; /* accepted, not yet closed */
    size_t nconns;
    bool closing;
    bool ready; /* false until the stages registered their routes */
    struct mutt_http_opts opts;
    char *bind_addr;
    char *server_name;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    bool ctx_inited;
    SSL_CTX *ssl_ctx;
    struct listener listeners[NLISTENERS];
    struct route *routes;
    size_t nroutes;
    size_t inflight;
    struct mutt_metrics *metrics;
    struct mutt_counter *requests;        /* mutt_http_requests_total{listener,code} */
    struct mutt_histogram *duration[NLISTENERS];
    struct mutt_counter *deadline_hits;   /* mutt_http_request_deadline_total */
};

static const char *const LISTENER_NAMES[NLISTENERS] = {"ingest", "web", "health"};

static int listener_index(unsigned bit)
{
    return bit == MUTT_HTTP_INGEST ? 0 : bit == MUTT_HTTP_WEB ? 1 : 2;
}

struct req_guard {
    struct mutt_http_req *r;
};

struct mutt_http_req {
    struct mutt_http *http;
    h2o_req_t *h2o;          /* NULL once answered or disposed */
    struct req_guard *guard; /* lives in h2o's pool; NULL once detached */
    int refs;
    bool answered;
    bool request_side_done;
    unsigned listener;
    uint64_t start_ms;
    uv_timer_t deadline;
    int timeout_status;
    char *timeout_message; /* owned; NULL = default */
    char correlation_id[65];
    const char *param_names[MAX_PARAMS];
    char *param_values[MAX_PARAMS]; /* owned */
    size_t nparams;
};

/* ------------------------------------------------------------------------------------------ */
/* request lifetime                                                                            */

static void on_req_timer_closed(uv_handle_t *h)
{
    struct mutt_http_req *r = h->data;
    for (size_t i = 0; i < r->nparams; i++)
        free(r->param_values[i]);
    free(r->timeout_message);
    free(r);
}

static void req_unref(struct mutt_http_req *r)
{
    if (--r->refs > 0)
        return;
    uv_close((uv_handle_t *)&r->deadline, on_req_timer_closed);
}

/* The request side is finished: answered, expired or disposed. Cuts the h2o link both ways. */
static void finish_request_side(struct mutt_http_req *r)
{
    if (r->request_side_done)
        return;
    r->request_side_done = true;
    r->answered = true;
    r->h2o = NULL;
    if (r->guard != NULL) {
        r->guard->r = NULL;
        r->guard = NULL;
    }
    uv_timer_stop(&r->deadline);
    r->http->inflight--;
    req_unref(r);
}

static void on_req_dispose(void *p)
{
    struct req_guard *g = p;
    if (g->r != NULL) {
        /* h2o is freeing the request before we answered: client gone (HTTP/2 reset) or shutdown */
        g->r->guard = NULL;
        finish_request_side(g->r);
    }
}

void mutt_http_req_hold(struct mutt_http_req *req)
{
    req->refs++;
}

void mutt_http_req_release(struct mutt_http_req *req)
{
    req_unref(req);
}

bool mutt_http_req_answered(const struct mutt_http_req *req)
{
    return req->answered;
}

/* ------------------------------------------------------------------------------------------ */
/* replies                                                                                     */

static size_t json_escape_into(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n + 7 < cap; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

int mutt_http_add_header(struct mutt_http_req *req, const char *name, const char *value)
{
    if (req->answered || req->h2o == NULL)
        return MUTT_ESTATE;
    h2o_req_t *h = req->h2o;
    size_t nlen = strlen(name), vlen = strlen(value);
    h2o_iovec_t n = h2o_strdup(&h->pool, name, nlen);
    h2o_iovec_t v = h2o_strdup(&h->pool, value, vlen);
    h2o_add_header_by_str(&h->pool, &h->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
    return 0;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "OK";
    }
}

int mutt_http_reply(struct mutt_http_req *req, int status, const char *content_type, const char *body, size_t len)
{
    if (req->answered || req->h2o == NULL)
        return MUTT_ESTATE;
    h2o_req_t *h = req->h2o;
    struct mutt_http *http = req->http;
    if (http->requests != NULL) {
        char code[8];
        snprintf(code, sizeof(code), "%d", status);
        const char *labels[] = {LISTENER_NAMES[listener_index(req->listener)], code};
        mutt_counter_inc(mutt_counter_labels(http->requests, labels));
        mutt_histogram_observe(http->duration[listener_index(req->listener)],
                               (double)(uv_now(http->loop) - req->start_ms) / 1000.0);
    }
    h->res.status = status;
    h->res.reason = reason_phrase(status);
    /* Without content_length h2o 2.2.5 closes keep-alive connections (stack-notes pitfall 1). */
    h->res.content_length = len;
    h2o_add_header(&h->pool, &h->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header_by_str(&h->pool, &h->res.headers, H2O_STRLIT("x-correlation-id"), 0, "X-Correlation-ID",
                          req->correlation_id, strlen(req->correlation_id));
    /* Detach before sending: h2o may dispose the pool once the final chunk is written. */
    finish_request_side(req);
    h2o_send_inline(h, body, len);
    return 0;
}

int mutt_http_reply_json(struct mutt_http_req *req, int status, const char *body, size_t len)
{
    return mutt_http_reply(req, status, "application/json", body, len);
}

int mutt_http_reply_error(struct mutt_http_req *req, int status, const char *message, const char *field)
{
    char msg[512], fld[160], body[900];
    json_escape_into(msg, sizeof(msg), message);
    int n;
    if (field != NULL) {
        json_escape_into(fld, sizeof(fld), field);
        n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"field\":\"%s\",\"correlation_id\":\"%s\"}", msg, fld,
                     req->correlation_id);
    } else {
        n = snprintf(body, sizeof(body), "{\"error\":\"%s\",\"correlation_id\":\"%s\"}", msg, req->correlation_id);
    }
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)strlen(body);
    return mutt_http_reply_json(req, status, body, (size_t)n);
}

int mutt_http_reply_status_error(struct mutt_http_req *req, int status, const char *message)
{
    char msg[512], body[800];
    json_escape_into(msg, sizeof(msg), message);
    int n = snprintf(body, sizeof(body), "{\"status\":\"error\",\"message\":\"%s\",\"correlation_id\":\"%s\"}", msg,
                     req->correlation_id);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = (int)strlen(body);
    return mutt_http_reply_json(req, status, body, (size_t)n);
}

/* ------------------------------------------------------------------------------------------ */
/* deadlines (h2o 2.2.5 has no timeout for a handler that never answers: pitfall 7)            */

static void on_deadline(uv_timer_t *t)
{
    struct mutt_http_req *r = t->data;
    if (r->answered)
        return;
    mutt_counter_inc(r->http->deadline_hits);
    if (r->timeout_status == 503)
        mutt_http_add_header(r, "retry-after", "1");
    mutt_log_kv(MUTT_LOG_WARNING, "http", r->correlation_id, NULL, "request deadline passed, answering %d",
                r->timeout_status);
    const char *msg = r->timeout_message ? r->timeout_message : "request timed out";
    /* the management API speaks D18's {"error":..}; ingest and health the §3 status shape */
    if (r->listener == MUTT_HTTP_WEB)
        mutt_http_reply_error(r, r->timeout_status, msg, NULL);
    else
        mutt_http_reply_status_error(r, r->timeout_status, msg);
}

void mutt_http_req_set_deadline(struct mutt_http_req *req, uint64_t timeout_ms, int status, const char *message)
{
    if (req->answered)
        return;
    req->timeout_status = status;
    free(req->timeout_message);
    req->timeout_message = message ? strdup(message) : NULL;
    uv_timer_start(&req->deadline, on_deadline, timeout_ms, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* accessors                                                                                   */

const char *mutt_http_req_method(const struct mutt_http_req *req, size_t *len)
{
    if (req->h2o == NULL) {
        *len = 0;
        return "";
    }
    *len = req->h2o->method.len;
    return req->h2o->method.base;
}

const char *mutt_http_req_path(const struct mutt_http_req *req, size_t *len)
{
    if (req->h2o == NULL) {
        *len = 0;
        return "";
    }
    *len = req->h2o->path_normalized.len;
    return req->h2o->path_normalized.base;
}

const char *mutt_http_req_raw_path(const struct mutt_http_req *req, size_t *len)
{
    if (req->h2o == NULL) {
        *len = 0;
        return "";
    }
    *len = req->h2o->query_at == SIZE_MAX ? req->h2o->path.len : req->h2o->query_at;
    return req->h2o->path.base;
}

const char *mutt_http_req_query(const struct mutt_http_req *req, size_t *len)
{
    if (req->h2o == NULL || req->h2o->query_at == SIZE_MAX) {
        *len = 0;
        return NULL;
    }
    *len = req->h2o->path.len - req->h2o->query_at - 1;
    return req->h2o->path.base + req->h2o->query_at + 1;
}

const char *mutt_http_req_body(const struct mutt_http_req *req, size_t *len)
{
    if (req->h2o == NULL || req->h2o->entity.base == NULL) {
        *len = 0;
        return NULL;
    }
    *len = req->h2o->entity.len;
    return req->h2o->entity.base;
}

const char *mutt_http_req_header(const struct mutt_http_req *req, const char *lc_name, size_t *len, int *count)
{
    if (count)
        *count = 0;
    if (req->h2o == NULL)
        return NULL;
    const h2o_headers_t *hs = &req->h2o->headers;
    size_t nlen = strlen(lc_name);
    ssize_t first = -1, cur = -1;
    int n = 0;
    while ((cur = h2o_find_header_by_str(hs, lc_name, nlen, cur)) != -1) {
        if (first == -1)
            first = cur;
        n++;
    }
    if (count)
        *count = n;
    if (first == -1)
        return NULL;
    if (len)
        *len = hs->entries[first].value.len;
    return hs->entries[first].value.base;
}

const char *mutt_http_req_param(const struct mutt_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp(req->param_names[i], name) == 0)
            return req->param_values[i];
    return NULL;
}

const char *mutt_http_req_query_param(const struct mutt_http_req *req, const char *name)
{
    size_t qlen;
    const char *q = mutt_http_req_query(req, &qlen);
    if (q == NULL)
        return NULL;
    size_t nlen = strlen(name);
    const char *end = q + qlen;
    for (const char *p = q; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        const char *key_end = eq ? eq : seg_end;
        if ((size_t)(key_end - p) == nlen && memcmp(p, name, nlen) == 0) {
            const char *v = eq ? eq + 1 : seg_end;
            size_t vlen = (size_t)(seg_end - v);
            char *out = h2o_mem_alloc_pool(&req->h2o->pool, vlen + 1);
            mutt_urlpath_decode_query(v, vlen, out);
            return out;
        }
        p = amp ? amp + 1 : end;
    }
    return NULL;
}

const char *mutt_http_req_correlation_id(const struct mutt_http_req *req)
{
    return req->correlation_id;
}

unsigned mutt_http_req_listener(const struct mutt_http_req *req)
{
    return req->listener;
}

uint64_t mutt_http_req_start_ms(const struct mutt_http_req *req)
{
    return req->start_ms;
}

void mutt_http_set_ready(struct mutt_http *h, bool ready)
{
    h->ready = ready;
}

size_t mutt_http_inflight(const struct mutt_http *h)
{
    return h->inflight;
}

/* ------------------------------------------------------------------------------------------ */
/* router                                                                                      */

static bool correlation_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.' || c == ':';
        if (!ok)
            return false;
    }
    return true;
}

static bool method_listed(const char *methods, const char *m, size_t mlen)
{
    const char *p = methods;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == mlen && memcmp(p, m, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

/* Matches the raw path against route; with r, decodes the parameters (once) into r. Returns an
 * enum mutt_urlpath_result or MUTT_ENOMEM; *bad_name names a parameter refused for a NUL. */
static int route_match(const struct route *rt, const char *path, size_t plen, struct mutt_http_req *r,
                       const char **bad_name)
{
    struct mutt_urlpath_param params[MAX_PARAMS];
    size_t n = 0;
    int rc = mutt_urlpath_match((const char *const *)rt->segs, rt->nsegs, rt->wildcard, path, plen,
                                r ? params : NULL, MAX_PARAMS, &n, bad_name);
    if (rc != MUTT_URLPATH_MATCH || r == NULL)
        return rc;
    for (size_t i = 0; i < n; i++) {
        r->param_names[r->nparams] = params[i].name;
        r->param_values[r->nparams] = params[i].value; /* the request owns it now */
        r->nparams++;
    }
    return rc;
}

int mutt_http_route(struct mutt_http *h, unsigned mask, const char *methods, const char *pattern,
                    mutt_http_handler *handler, void *privdata)
{
    if (pattern[0] != '/' || strlen(methods) >= sizeof(((struct route *)0)->methods))
        return MUTT_EINVAL;
    struct route *grown = realloc(h->routes, (h->nroutes + 1) * sizeof(*grown));
    if (grown == NULL)
        return MUTT_ENOMEM;
    h->routes = grown;
    struct route *rt = &h->routes[h->nroutes];
    memset(rt, 0, sizeof(*rt));
    rt->pattern = strdup(pattern);
    if (rt->pattern == NULL)
        return MUTT_ENOMEM;
    snprintf(rt->methods, sizeof(rt->methods), "%s", methods);
    /* split "/api/v1/rules/{id}" into segments; "{id}" keeps its braces-free name */
    char *save = NULL;
    for (char *tok = strtok_r(rt->pattern + 1, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
        if (rt->nsegs == MAX_ROUTE_SEGMENTS) {
            free(rt->pattern);
            return MUTT_EINVAL;
        }
        if (tok[0] == '{') {
            size_t n = strlen(tok);
            if (n < 3 || tok[n - 1] != '}') {
                free(rt->pattern);
                return MUTT_EINVAL;
            }
            tok[n - 1] = '\0';
            /* keep a '{' marker in front of the name: route_match tests seg[0] */
        } else if (strcmp(tok, "*") == 0) {
            rt->wildcard = true;
        }
        rt->segs[rt->nsegs++] = tok;
    }
    rt->mask = mask;
    rt->handler = handler;
    rt->privdata = privdata;
    h->nroutes++;
    return 0;
}

static int on_h2o_req(h2o_handler_t *self, h2o_req_t *hreq)
{
    struct listener_handler *lh = (struct listener_handler *)self;
    struct mutt_http *http = lh->http;
    struct mutt_http_req *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        h2o_send_error_503(hreq, "Service Unavailable", "out of memory\n", 0);
        return 0;
    }
    r->http = http;
    r->h2o = hreq;
    r->refs = 1;
    r->listener = lh->listener;
    r->start_ms = uv_now(http->loop);
    r->timeout_status = 503;
    uv_timer_init(http->loop, &r->deadline);
    r->deadline.data = r;
    r->guard = h2o_mem_alloc_shared(&hreq->pool, sizeof(*r->guard), on_req_dispose);
    r->guard->r = r;
    http->inflight++;

    size_t cid_len = 0;
    int cid_count = 0;
    const char *cid = mutt_http_req_header(r, "x-correlation-id", &cid_len, &cid_count);
    if (cid != NULL && cid_count == 1 && correlation_id_ok(cid, cid_len)) {
        memcpy(r->correlation_id, cid, cid_len);
        r->correlation_id[cid_len] = '\0';
    } else {
        mutt_random_uuid(r->correlation_id);
    }

    /* Routing reads the raw path and decodes each segment once (urlpath.h): path_normalized is
     * already percent-decoded, so a `%2F` inside a value would split it and a second decoding
     * would turn `%2541` into `A`. */
    size_t plen = 0;
    const char *path = mutt_http_req_raw_path(r, &plen);
    const char *m = hreq->method.base;
    size_t mlen = hreq->method.len;
    char allow[160] = "";
    struct route *chosen = NULL;
    for (size_t i = 0; i < http->nroutes; i++) {
        struct route *rt = &http->routes[i];
        if (!(rt->mask & lh->listener) || route_match(rt, path, plen, NULL, NULL) != MUTT_URLPATH_MATCH)
            continue;
        if (method_listed(rt->methods, m, mlen) ||
            (mlen == 4 && memcmp(m, "HEAD", 4) == 0 && method_listed(rt->methods, "GET", 3))) {
            chosen = rt;
            break;
        }
        if (strlen(allow) + strlen(rt->methods) + 3 < sizeof(allow)) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, rt->methods);
        }
    }
    if (chosen == NULL) {
        if (allow[0]) {
            /* commas inside one route's list read better with a space after them */
            char pretty[200];
            size_t o = 0;
            for (const char *p = allow; *p && o + 2 < sizeof(pretty); p++) {
                pretty[o++] = *p;
                if (*p == ',' && p[1] != ' ')
                    pretty[o++] = ' ';
            }
            pretty[o] = '\0';
            mutt_http_add_header(r, "allow", pretty);
            mutt_http_reply_error(r, 405, "method not allowed", NULL);
        } else if (!http->ready) {
            /* the stages register their routes once the pod identity is ours: tell clients to
             * come back rather than claim the path does not exist */
            mutt_http_add_header(r, "retry-after", "1");
            mutt_http_reply_status_error(r, 503, "starting: not ready yet");
        } else {
            mutt_http_reply_error(r, 404, "not found", NULL);
        }
        return 0;
    }
    const char *bad_name = NULL;
    int mrc = route_match(chosen, path, plen, r, &bad_name);
    if (mrc == MUTT_URLPATH_BAD_PARAM) {
        char msg[160];
        snprintf(msg, sizeof msg, "path parameter %s contains a NUL byte (%%00)", bad_name ? bad_name : "?");
        mutt_http_reply_error(r, 400, msg, bad_name);
        return 0;
    }
    if (mrc != MUTT_URLPATH_MATCH) {
        mutt_http_reply_error(r, 500, "internal error", NULL);
        return 0;
    }
    uv_timer_start(&r->deadline, on_deadline, http->opts.request_timeout_ms, 0);
    /* A hold across the handler: it may answer (dropping the request side's reference) and we
     * must not free r under its feet. */
    mutt_http_req_hold(r);
    chosen->handler(r, chosen->privdata);
    mutt_http_req_release(r);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* listeners                                                                                   */

static void dispose_context(struct mutt_http *h)
{
    if (h->ctx_inited) {
        h->ctx_inited = false;
        h2o_context_dispose(&h->ctx);
    }
}

static void on_conn_closed(uv_handle_t *handle)
{
    struct conn *c = (struct conn *)handle;
    struct mutt_http *h = c->http;
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    c->listener->nconns--;
    free(c);
    if (h->closing && h->nconns == 0)
        dispose_context(h);
}

static void on_refused_closed(uv_handle_t *handle)
{
    free(handle);
}

/* Over MAX_CONNECTIONS: accept and close at once. Leaving it in the backlog would keep the
 * client waiting and, with a level-triggered listen socket, make libuv call us again at once. */
static void refuse_connection(uv_stream_t *server, struct listener *l)
{
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t)
        return;
    uv_tcp_init(server->loop, t);
    uv_accept(server, (uv_stream_t *)t); /* closed either way */
    uv_close((uv_handle_t *)t, on_refused_closed);
    mutt_counter_inc(l->refused);
}

static void on_accept(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    if (status != 0)
        return;
    struct mutt_http *h = l->http;
    if (h->opts.max_connections > 0 && l->nconns >= h->opts.max_connections) {
        refuse_connection(server, l);
        return;
    }
    struct conn *c = h2o_mem_alloc(sizeof(*c));
    c->http = h;
    c->listener = l;
    l->nconns++;
    c->prev = NULL;
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    uv_tcp_init(server->loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, on_conn_closed);
    h2o_accept(&l->accept, sock);
}

static int open_listener(struct mutt_http *h, int idx, char *err, size_t errlen)
{
    struct listener *l = &h->listeners[idx];
    int want = h->opts.ports[idx];
    const char *const *names = LISTENER_NAMES;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int family;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    int bind_port = want < 0 ? 0 : want; /* negative = ephemeral (tests) */
    if (uv_ip4_addr(h->bind_addr, bind_port, sin) == 0) {
        family = AF_INET;
    } else if (uv_ip6_addr(h->bind_addr, bind_port, sin6) == 0) {
        family = AF_INET6;
    } else {
        snprintf(err, errlen, "BIND_ADDR=%s is not an IP address", h->bind_addr);
        return MUTT_EINVAL;
    }
    uv_tcp_init(h->loop, &l->tcp);
    l->tcp.data = l;
    l->open = true;
    int rc;
    if (h->opts.reuseport[idx]) {
        /* D11: several processes share the port; the socket must carry SO_REUSEPORT before bind,
         * which uv_tcp_bind cannot do, so build it by hand and hand it to libuv. */
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            bind(fd, (struct sockaddr *)&ss, family == AF_INET ? sizeof(*sin) : sizeof(*sin6)) != 0) {
            snprintf(err, errlen, "%s listener %s:%d: %s", names[idx], h->bind_addr, bind_port, strerror(errno));
            if (fd >= 0)
                close(fd);
            return MUTT_EIO;
        }
        rc = uv_tcp_open(&l->tcp, fd);
    } else {
        rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    }
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_accept);
    if (rc != 0) {
        snprintf(err, errlen, "%s listener %s:%d: %s", names[idx], h->bind_addr, bind_port, uv_strerror(rc));
        return MUTT_EIO;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &blen) == 0)
        l->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                   : ((struct sockaddr_in6 *)&bound)->sin6_port);
    return 0;
}

struct mutt_http *mutt_http_create(uv_loop_t *loop, const struct mutt_http_opts *opts, struct mutt_metrics *metrics,
                                   char *err, size_t errlen)
{
    struct mutt_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->opts = *opts;
    h->metrics = metrics;
    if (metrics != NULL) {
        static const char *const req_labels[] = {"listener", "code", NULL};
        static const char *const dur_labels[] = {"listener", NULL};
        h->requests = mutt_metrics_counter(metrics, "mutt_http_requests_total",
                                           "HTTP responses by listener and status code", req_labels);
        struct mutt_histogram *dur = mutt_metrics_histogram(
            metrics, "mutt_http_request_duration_seconds", "Time from routing to the response, by listener",
            dur_labels, mutt_metrics_latency_buckets, MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
        for (int i = 0; i < NLISTENERS; i++) {
            const char *v[] = {LISTENER_NAMES[i]};
            h->duration[i] = mutt_histogram_labels(dur, v);
        }
        h->deadline_hits = mutt_metrics_counter(metrics, "mutt_http_request_deadline_total",
                                                "Requests answered by the per-request deadline", NULL);
        struct mutt_counter *refused = mutt_metrics_counter(
            metrics, "mutt_http_connections_refused_total",
            "Connections accepted and closed at once because the listener had MAX_CONNECTIONS open", dur_labels);
        for (int i = 0; i < NLISTENERS && refused; i++) {
            const char *v[] = {LISTENER_NAMES[i]};
            h->listeners[i].refused = mutt_counter_labels(refused, v);
        }
    }
    h->bind_addr = strdup(opts->bind_addr ? opts->bind_addr : "0.0.0.0");
    h->server_name = strdup(opts->server_name ? opts->server_name : "mutt");
    h->opts.bind_addr = h->bind_addr;
    h->opts.server_name = h->server_name;
    if (h->opts.request_timeout_ms == 0)
        h->opts.request_timeout_ms = 5000;
    if (h->bind_addr == NULL || h->server_name == NULL) {
        snprintf(err, errlen, "out of memory");
        mutt_http_destroy(h);
        return NULL;
    }
    h2o_config_init(&h->config);
    /* The body is buffered in memory before the handler runs: cap it (pitfall 9). */
    h->config.max_request_entity_size = opts->max_body_bytes ? opts->max_body_bytes : 1048576;
    h->config.server_name = h2o_iovec_init(h->server_name, strlen(h->server_name));
    /* h2o 2.2's HTTP/2 code is unmaintained; refuse cleartext upgrades (pitfall 8). */
    h->config.http1.upgrade_to_http2 = 0;

    if ((opts->tls_cert_file && *opts->tls_cert_file) || (opts->tls_key_file && *opts->tls_key_file)) {
        h->ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (h->ssl_ctx == NULL) {
            snprintf(err, errlen, "TLS: cannot create context");
            mutt_http_destroy(h);
            return NULL;
        }
        SSL_CTX_set_min_proto_version(h->ssl_ctx, TLS1_2_VERSION);
        if (SSL_CTX_use_certificate_chain_file(h->ssl_ctx, opts->tls_cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(h->ssl_ctx, opts->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(h->ssl_ctx) != 1) {
            snprintf(err, errlen, "TLS_CERT_FILE=%s / TLS_KEY_FILE=%s: cannot load certificate or key",
                     opts->tls_cert_file, opts->tls_key_file);
            mutt_http_destroy(h);
            return NULL;
        }
    }
    static const char *hostnames[] = {"ingest", "web", "health"};
    static const unsigned bits[] = {MUTT_HTTP_INGEST, MUTT_HTTP_WEB, MUTT_HTTP_HEALTH};
    for (int i = 0; i < NLISTENERS; i++) {
        struct listener *l = &h->listeners[i];
        l->http = h;
        h2o_hostconf_t *host =
            h2o_config_register_host(&h->config, h2o_iovec_init(hostnames[i], strlen(hostnames[i])), 65535);
        h2o_pathconf_t *pathconf = h2o_config_register_path(host, "/", 0);
        struct listener_handler *lh = (struct listener_handler *)h2o_create_handler(pathconf, sizeof(*lh));
        lh->super.on_req = on_h2o_req;
        lh->http = h;
        lh->listener = bits[i];
        l->hosts[0] = host;
        l->hosts[1] = NULL;
    }
    return h;
}

int mutt_http_start(struct mutt_http *h, char *err, size_t errlen)
{
    /* h2o_context_init must come after every host and path is registered */
    h2o_context_init(&h->ctx, h->loop, &h->config);
    h->ctx_inited = true;
    for (int i = 0; i < NLISTENERS; i++) {
        struct listener *l = &h->listeners[i];
        l->accept.ctx = &h->ctx;
        l->accept.hosts = l->hosts;
        l->accept.ssl_ctx = h->ssl_ctx;
        if (h->opts.ports[i] == 0)
            continue;
        int rc = open_listener(h, i, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mutt_http_port(const struct mutt_http *h, int index)
{
    if (index < 0 || index >= NLISTENERS || !h->listeners[index].open)
        return 0;
    return h->listeners[index].port;
}

static void on_listener_closed(uv_handle_t *h)
{
    (void)h; /* embedded in struct mutt_http: nothing to free */
}

void mutt_http_stop_accepting(struct mutt_http *h)
{
    for (int i = 0; i < NLISTENERS; i++) {
        struct listener *l = &h->listeners[i];
        if (l->open) {
            l->open = false;
            uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
        }
    }
}

void mutt_http_close(struct mutt_http *h)
{
    if (h == NULL || h->closing)
        return;
    h->closing = true;
    mutt_http_stop_accepting(h);
    /* Half-close every connection: h2o then reads EOF and tears each one down itself, cleanly
     * removing its timeout entries; the context is disposed when the last one is gone. */
    for (struct conn *c = h->conns; c != NULL; c = c->next) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
            shutdown(fd, SHUT_RDWR);
    }
    if (h->nconns == 0)
        dispose_context(h);
}

void mutt_http_destroy(struct mutt_http *h)
{
    if (h == NULL)
        return;
    mutt_http_close(h);
    /* a connection that never closed (should not happen after a full loop run) keeps the
     * context alive: leaking it at exit beats h2o's assertion */
    if (!h->ctx_inited)
        h2o_config_dispose(&h->config);
    if (h->ssl_ctx)
        SSL_CTX_free(h->ssl_ctx);
    for (size_t i = 0; i < h->nroutes; i++)
        free(h->routes[i].pattern);
    free(h->routes);
    free(h->bind_addr);
    free(h->server_name);
    free(h);
}
