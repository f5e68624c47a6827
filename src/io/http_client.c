/* libcurl multi on the one uv loop (stack-notes §3.4): CURLMOPT_SOCKETFUNCTION maps each curl
 * socket to a uv_poll, CURLMOPT_TIMERFUNCTION to one uv_timer. Owns the easy handles, their
 * copied request data and captured bodies; every accepted request gets exactly one callback.
 * Loop thread only; curl_global_init is main's job. */
#include "mutt/http_client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "mutt/error.h"

struct http_sock { /* one curl socket being watched */
    uv_poll_t poll;
    curl_socket_t fd;
    struct mutt_http_client *c;
    struct http_sock *prev, *next; /* c->socks while open; unlinked when its close starts */
};

struct http_op { /* one request in flight */
    struct mutt_http_client *c;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* our copy of the request body (curl keeps a pointer to it) */
    mutt_http_client_cb *cb;
    void *privdata;
    char *resp; /* captured response body, NUL-terminated, capped */
    size_t resp_len, resp_alloc;
    bool resp_truncated;
    int64_t retry_after_s;
    char errbuf[CURL_ERROR_SIZE];
    struct http_op *prev, *next; /* c->ops */
};

struct mutt_http_client {
    uv_loop_t *loop;
    CURLM *multi;              /* NULL once stopped */
    uv_timer_t timer;          /* curl's single timeout */
    size_t max_inflight;
    size_t inflight;
    struct http_op *ops;       /* requests in flight */
    struct http_sock *socks;   /* open poll handles */
    int open_handles;          /* uv handles whose close callback has not run yet */
    bool stopped;              /* no new requests; set first thing in stop */
    bool destroy_requested;    /* free from the last close callback */
};

/* ------------------------------------------------------------------------------ lifetime */

static void maybe_free(struct mutt_http_client *c)
{
    if (c->destroy_requested && c->open_handles == 0)
        free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct mutt_http_client *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct http_sock *s = h->data;
    struct mutt_http_client *c = s->c;
    free(s); /* only here: a REMOVE can arrive inside on_poll for this very socket */
    c->open_handles--;
    maybe_free(c);
}

static void sock_close(struct http_sock *s)
{
    struct mutt_http_client *c = s->c;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

static void op_link(struct mutt_http_client *c, struct http_op *op)
{
    op->next = c->ops;
    if (c->ops)
        c->ops->prev = op;
    c->ops = op;
    c->inflight++;
}

static void op_unlink(struct http_op *op)
{
    struct mutt_http_client *c = op->c;
    if (op->prev)
        op->prev->next = op->next;
    else
        c->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->prev = op->next = NULL;
    c->inflight--;
}

static void op_free(struct http_op *op)
{
    if (op->easy)
        curl_easy_cleanup(op->easy);
    curl_slist_free_all(op->headers);
    free(op->body);
    free(op->resp);
    free(op);
}

/* ------------------------------------------------------------------------------ results */

/* Takes op out of the multi and the in-flight list, then calls back once and frees it. The
 * slot is released before the callback so the callback can start the next request. */
static void op_finish(struct http_op *op, int status, CURLcode rc)
{
    struct mutt_http_client *c = op->c;
    struct mutt_http_result res;
    memset(&res, 0, sizeof(res));
    res.status = status;
    res.curl_code = (int)rc;
    res.retry_after_s = -1;
    res.error = "";
    if (status == 0) {
        long code = 0;
        curl_off_t total = 0;
        curl_easy_getinfo(op->easy, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(op->easy, CURLINFO_TOTAL_TIME_T, &total);
        res.http_status = code;
        res.total_time_us = total > 0 ? (uint64_t)total : 0;
        res.retry_after_s = op->retry_after_s;
        if (rc != CURLE_OK)
            res.error = op->errbuf[0] ? op->errbuf : curl_easy_strerror(rc);
    } else {
        res.error = "cancelled";
    }
    res.body = op->resp ? op->resp : "";
    res.body_len = op->resp_len;
    res.body_truncated = op->resp_truncated;
    if (c->multi)
        curl_multi_remove_handle(c->multi, op->easy);
    op_unlink(op);
    op->cb(op->privdata, &res);
    op_free(op);
}

static void check_done(struct mutt_http_client *c)
{
    CURLMsg *m;
    int left;
    /* c->stopped is re-checked after every callback: a callback may stop the client */
    while (!c->stopped && (m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result; /* read before remove_handle invalidates m */
        struct http_op *op = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&op);
        op_finish(op, 0, rc);
    }
}

/* ------------------------------------------------------------------------------ curl <-> uv */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct http_sock *s = h->data;
    struct mutt_http_client *c = s->c;
    int flags = 0, running;
    if (status < 0) {
        flags = CURL_CSELECT_ERR; /* libuv stopped the handle; curl re-arms it or removes it */
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    check_done(c);
}

static void on_timer(uv_timer_t *t)
{
    struct mutt_http_client *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arms the uv timer. Calling socket_action from here would be
 * a recursive API call, so even "now" (0 ms) goes through the loop. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct mutt_http_client *c = userp;
    if (c->stopped)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct mutt_http_client *c = userp;
    struct http_sock *s = socketp;
    if (c->stopped)
        return 0; /* stop closes every poll handle itself */
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_close(s);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_op *op = userp;
    size_t len = size * nmemb;
    size_t room = MUTT_HTTP_CLIENT_BODY_CAP - op->resp_len;
    size_t take = len < room ? len : room;
    if (take < len)
        op->resp_truncated = true; /* keep reading: the connection stays reusable */
    if (take) {
        if (op->resp_len + take + 1 > op->resp_alloc) {
            size_t want = op->resp_alloc ? op->resp_alloc * 2 : 1024;
            while (want < op->resp_len + take + 1)
                want *= 2;
            if (want > MUTT_HTTP_CLIENT_BODY_CAP + 1)
                want = MUTT_HTTP_CLIENT_BODY_CAP + 1;
            char *p = realloc(op->resp, want);
            if (!p)
                return 0; /* curl fails the transfer with CURLE_WRITE_ERROR: a retry */
            op->resp = p;
            op->resp_alloc = want;
        }
        memcpy(op->resp + op->resp_len, data, take);
        op->resp_len += take;
        op->resp[op->resp_len] = '\0';
    }
    return len;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userp)
{
    struct http_op *op = userp;
    size_t len = size * nmemb;
    if (len >= 5 && strncasecmp(line, "HTTP/", 5) == 0)
        op->retry_after_s = -1; /* a new (possibly final after 100) response starts */
    else if (len > 12 && strncasecmp(line, "retry-after:", 12) == 0)
        op->retry_after_s = mutt_http_parse_retry_after(line + 12, len - 12, (int64_t)time(NULL));
    return len;
}

/* ------------------------------------------------------------------------------ public */

int64_t mutt_http_parse_retry_after(const char *value, size_t len, int64_t now_epoch_s)
{
    while (len && isspace((unsigned char)*value))
        value++, len--;
    while (len && isspace((unsigned char)value[len - 1]))
        len--;
    if (len == 0)
        return -1;
    bool digits = true;
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)value[i]))
            digits = false;
    if (digits) {
        int64_t v = 0;
        for (size_t i = 0; i < len; i++) {
            if (v > (INT64_MAX - 9) / 10)
                return INT64_MAX / 1000; /* absurd but valid: "very long" */
            v = v * 10 + (value[i] - '0');
        }
        return v;
    }
    char buf[64];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return -1;
    return (int64_t)t > now_epoch_s ? (int64_t)t - now_epoch_s : 0;
}

struct mutt_http_client *mutt_http_client_create(uv_loop_t *loop, size_t max_inflight)
{
    if (!loop || max_inflight == 0)
        return NULL;
    struct mutt_http_client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = loop;
    c->max_inflight = max_inflight;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    /* keep enough idle connections that a steady max_inflight load reuses them */
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)max_inflight);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    return c;
}

static bool header_ok(const char *h)
{
    return h && !strchr(h, '\r') && !strchr(h, '\n');
}

int mutt_http_client_request(struct mutt_http_client *c, const struct mutt_http_request *req,
                             mutt_http_client_cb *cb, void *privdata)
{
    if (!c || !req || !req->url || !*req->url || !cb || (req->body_len && !req->body))
        return MUTT_EINVAL;
    if (c->stopped)
        return MUTT_ESTATE;
    if (c->inflight >= c->max_inflight)
        return MUTT_EFULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (!header_ok(req->headers[i]))
            return MUTT_EINVAL;

    int rc = MUTT_ENOMEM;
    struct http_op *op = calloc(1, sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->c = c;
    op->cb = cb;
    op->privdata = privdata;
    op->retry_after_s = -1;
    op->easy = curl_easy_init();
    op->body = malloc(req->body_len + 1);
    if (!op->easy || !op->body)
        goto fail;
    if (req->body_len)
        memcpy(op->body, req->body, req->body_len);
    op->body[req->body_len] = '\0';
    bool have_expect = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(op->headers, req->headers[i]);
        if (!l)
            goto fail;
        op->headers = l;
        if (strncasecmp(req->headers[i], "expect:", 7) == 0)
            have_expect = true;
    }
    if (!have_expect) {
        /* curl 7.88 sends "Expect: 100-continue" for POST bodies over 1 KiB and waits up to 1 s
         * for an interim answer many servers never send */
        struct curl_slist *l = curl_slist_append(op->headers, "Expect:");
        if (!l)
            goto fail;
        op->headers = l;
    }

    CURL *e = op->easy;
    const char *method = req->method ? req->method : req->body_len ? "POST" : "GET";
    rc = MUTT_EINVAL;
    if (curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK)
        goto fail;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)op);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* D4: a 3xx is a final answer */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body); /* else curl fwrite()s to stdout */
    curl_easy_setopt(e, CURLOPT_WRITEDATA, op);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, op);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, op->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, op->headers);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (req->timeout_ms)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    if (req->connect_timeout_ms)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->tls_skip_verify ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->tls_skip_verify ? 0L : 2L);
    if (req->ca_file && curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file) != CURLE_OK)
        goto fail;
    if (strcmp(method, "GET") == 0 && req->body_len == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        /* our copy outlives the transfer, so no COPYPOSTFIELDS; size first (binary safe) */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, op->body);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }

    rc = MUTT_EIO;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        goto fail;
    op_link(c, op);
    return 0;

fail:
    op_free(op);
    return rc;
}

size_t mutt_http_client_inflight(const struct mutt_http_client *c)
{
    return c ? c->inflight : 0;
}

void mutt_http_client_stop(struct mutt_http_client *c)
{
    if (!c || c->stopped)
        return;
    c->stopped = true;
    /* Polls first, while curl still owns open fds, so libuv never unregisters a closed fd. */
    while (c->socks)
        sock_close(c->socks);
    while (c->ops)
        op_finish(c->ops, MUTT_ECANCELED, CURLE_ABORTED_BY_CALLBACK);
    curl_multi_cleanup(c->multi); /* closes cached connections; the callbacks see c->stopped */
    c->multi = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void mutt_http_client_destroy(struct mutt_http_client *c)
{
    if (!c)
        return;
    mutt_http_client_stop(c);
    c->destroy_requested = true;
    maybe_free(c);
}
