/* mutt-sink: a webhook destination for `make run` and the e2e/fault tests. It uses h2o and libuv
 * only (no MUTT module), so it builds even while the rest of the tree is in flux.
 *
 *   mutt-sink --port P [--bind 127.0.0.1] [--out FILE] [--status CODE] [--delay-ms N] [--retry-after S]
 *             [--stamp]
 *
 *   POST <any path>            answered with the current status (default 200), body {"ok":true},
 *                              after --delay-ms. A body answered 2xx counts as delivered: it is
 *                              appended as one line (CR/LF turned into spaces) to FILE or stdout;
 *                              with --stamp the line starts with the receive time (epoch ms, three
 *                              decimals) and a space (bench/e2e.sh measures latency from it).
 *   GET  /count                {"count":delivered,"received":all POSTs,"status":current}
 *   GET  /last                 the last POST body; x-last-authorization/-content-type headers
 *   GET  /health, /health/...  200 {"status":"ok"}
 *   POST /control?status=503&delay_ms=0&reset=1&retry_after=2&drop=1   change behaviour at run time (any subset);
 *                              drop=1: POSTs get their connection cut with no answer (drop=0 ends it)
 *
 * SIGTERM/SIGINT stop it with exit status 0. --port 0 picks a free port; the port actually used is
 * printed on stderr as "mutt-sink: listening on ADDR:PORT". */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <uv.h>
#include <h2o.h>

struct sink_op { /* one delayed reply */
    uv_timer_t timer;
    h2o_req_t *req; /* NULL once h2o disposed the request (client gone, shutdown) */
    int status;     /* decided when the request arrived, as was the delivered count */
    struct sink_op **guard;
    struct sink_op *prev, *next;
};

static struct {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_hostconf_t *hosts[2];
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    FILE *out;
    int status;
    unsigned delay_ms;
    long retry_after; /* > 0: Retry-After seconds sent with non-2xx POST answers */
    int drop;         /* POSTs: cut the connection instead of answering */
    int stamp;        /* --stamp: prefix each delivered line with the receive time */
    unsigned long long delivered, received;
    char *last_body, *last_auth, *last_ctype;
    size_t last_len;
    struct sink_op *pending;
    unsigned conns;   /* accepted connections not yet closed */
} g;

static void reply(h2o_req_t *req, int status, const char *body)
{
    char ra[24]; /* Retry-After on non-2xx answers to POSTs (copied into the request's pool) */
    if (g.retry_after > 0 && (status < 200 || status > 299) && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"))) {
        h2o_iovec_t v = h2o_strdup(&req->pool, ra, (size_t)snprintf(ra, sizeof(ra), "%ld", g.retry_after));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v.base, v.len);
    }
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 503 ? "Service Unavailable" : "Sink";
    req->res.content_length = strlen(body); /* without it h2o 2.2.5 drops keep-alive */
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, strlen(body));
}

static char *header_dup(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i == -1 ? strdup("") : strndup(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
}

/* Value of `name=` in the query string, or -1. */
static long query_long(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return -1;
    char *q = h2o_strdup(&req->pool, req->path.base + req->query_at + 1, req->path.len - req->query_at - 1).base;
    size_t n = strlen(name);
    for (char *p = q; p && *p; p = strchr(p, '&') ? strchr(p, '&') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return strtol(p + n + 1, NULL, 10);
    return -1;
}

static void op_free(uv_handle_t *h) { free(h->data); }

static void op_unlink(struct sink_op *op)
{
    if (op->req)
        *op->guard = NULL;
    if (op->prev)
        op->prev->next = op->next;
    else
        g.pending = op->next;
    if (op->next)
        op->next->prev = op->prev;
    uv_close((uv_handle_t *)&op->timer, op_free);
}

static void on_guard_dispose(void *p)
{
    struct sink_op *op = *(struct sink_op **)p;
    if (op)
        op->req = NULL;
}

static void on_delay(uv_timer_t *t)
{
    struct sink_op *op = t->data;
    h2o_req_t *req = op->req;
    int status = op->status;
    op_unlink(op);
    if (req)
        reply(req, status, "{\"ok\":true}");
}

static void record(h2o_req_t *req)
{
    g.received++;
    free(g.last_body);
    free(g.last_auth);
    free(g.last_ctype);
    g.last_len = req->entity.base ? req->entity.len : 0;
    g.last_body = h2o_strdup(NULL, g.last_len ? req->entity.base : "", g.last_len).base; /* malloc'd, NUL-ended */
    g.last_auth = header_dup(req, H2O_TOKEN_AUTHORIZATION);
    g.last_ctype = header_dup(req, H2O_TOKEN_CONTENT_TYPE);
    if (g.status < 200 || g.status > 299)
        return;
    g.delivered++;
    if (g.stamp) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        fprintf(g.out, "%lld.%03ld ", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000, (long)(tv.tv_usec % 1000));
    }
    for (size_t i = 0; i < g.last_len; i++)
        fputc(g.last_body[i] == '\n' || g.last_body[i] == '\r' ? ' ' : g.last_body[i], g.out);
    fputc('\n', g.out);
    fflush(g.out);
}

/* drop mode: find our TCP handle whose peer is this request's client and cut it both ways; h2o
 * then fails the write of the answer and closes the connection, the client sees no response */
struct drop_match {
    struct sockaddr_storage peer;
    socklen_t len;
};

static void drop_walk(uv_handle_t *h, void *arg)
{
    struct drop_match *m = arg;
    if (h->type != UV_TCP || h == (uv_handle_t *)&g.listener || uv_is_closing(h))
        return;
    struct sockaddr_storage sa;
    int len = sizeof(sa);
    uv_os_fd_t fd;
    if (uv_tcp_getpeername((uv_tcp_t *)h, (struct sockaddr *)&sa, &len) == 0 && (socklen_t)len == m->len &&
        memcmp(&sa, &m->peer, (size_t)len) == 0 && uv_fileno(h, &fd) == 0)
        shutdown(fd, SHUT_RDWR);
}

static void drop_connection(h2o_req_t *req)
{
    struct drop_match m;
    memset(&m, 0, sizeof(m));
    m.len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&m.peer);
    if (m.len > 0)
        uv_walk(g.loop, drop_walk, &m);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    int is_post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST"));
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    char buf[160];
#define PATH_IS(s) h2o_memis(req->path.base, plen, H2O_STRLIT(s))
    if (is_post && PATH_IS("/control")) {
        long v;
        if ((v = query_long(req, "status")) >= 100 && v <= 599)
            g.status = (int)v;
        if ((v = query_long(req, "delay_ms")) >= 0)
            g.delay_ms = (unsigned)v;
        if ((v = query_long(req, "retry_after")) >= 0)
            g.retry_after = v;
        if (query_long(req, "reset") == 1)
            g.delivered = g.received = 0;
        if ((v = query_long(req, "drop")) >= 0)
            g.drop = v != 0;
        snprintf(buf, sizeof(buf), "{\"status\":%d,\"delay_ms\":%u}", g.status, g.delay_ms);
        reply(req, 200, buf);
    } else if (is_post && g.drop) {
        g.received++;
        drop_connection(req);
        reply(req, 500, "{\"dropped\":true}");
    } else if (is_post) {
        record(req);
        if (g.delay_ms == 0) {
            reply(req, g.status, "{\"ok\":true}");
            return 0;
        }
        struct sink_op *op = calloc(1, sizeof(*op));
        op->req = req;
        op->status = g.status;
        op->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*op->guard), on_guard_dispose);
        *op->guard = op;
        op->next = g.pending;
        if (g.pending)
            g.pending->prev = op;
        g.pending = op;
        uv_timer_init(g.loop, &op->timer);
        op->timer.data = op;
        uv_timer_start(&op->timer, on_delay, g.delay_ms, 0);
    } else if (PATH_IS("/count")) {
        snprintf(buf, sizeof(buf), "{\"count\":%llu,\"received\":%llu,\"status\":%d}", g.delivered, g.received,
                 g.status);
        reply(req, 200, buf);
    } else if (PATH_IS("/last")) {
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-last-authorization"), 0, NULL,
                              g.last_auth ? g.last_auth : "", g.last_auth ? strlen(g.last_auth) : 0);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-last-content-type"), 0, NULL,
                              g.last_ctype ? g.last_ctype : "", g.last_ctype ? strlen(g.last_ctype) : 0);
        reply(req, 200, g.last_body ? g.last_body : "");
    } else if (plen >= 7 && !memcmp(req->path.base, "/health", 7)) { /* /health, /health/live ... */
        reply(req, 200, "{\"status\":\"ok\"}");
    } else {
        reply(req, 404, "{\"error\":\"not found\"}");
    }
#undef PATH_IS
    return 0;
}

static void on_conn_closed(uv_handle_t *h)
{
    g.conns--;
    free(h);
}

static void on_accept(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    uv_tcp_t *conn = h2o_mem_alloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    g.conns++;
    h2o_accept(&g.accept, h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed));
}

static void on_signal(uv_signal_t *s, int signum)
{
    fprintf(stderr, "mutt-sink: signal %d, stopping (delivered %llu, received %llu)\n", signum, g.delivered,
            g.received);
    uv_close((uv_handle_t *)&g.listener, NULL);
    uv_close((uv_handle_t *)&g.sigint, NULL);
    uv_close((uv_handle_t *)&g.sigterm, NULL);
    while (g.pending)
        op_unlink(g.pending);
    uv_stop(g.loop);
}

static void close_walk(uv_handle_t *h, void *arg) { if (!uv_is_closing(h)) uv_close(h, NULL); }

static int usage(void)
{
    fprintf(stderr, "usage: mutt-sink --port P [--bind ADDR] [--out FILE] [--status CODE] [--delay-ms N] [--stamp]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *bind = "127.0.0.1", *out = NULL;
    int port = -1;
    g.status = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--stamp")) { /* the one flag without a value */
            g.stamp = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--port"))
            port = atoi(v);
        else if (!strcmp(argv[i], "--bind"))
            bind = v;
        else if (!strcmp(argv[i], "--out"))
            out = v;
        else if (!strcmp(argv[i], "--status"))
            g.status = atoi(v);
        else if (!strcmp(argv[i], "--delay-ms"))
            g.delay_ms = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--retry-after"))
            g.retry_after = atol(v);
        else
            return usage();
        i++;
    }
    if (port < 0 || port > 65535 || g.status < 100 || g.status > 599)
        return usage();
    g.out = out ? fopen(out, "a") : stdout;
    if (!g.out) {
        perror(out);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    g.loop = uv_default_loop();

    h2o_config_init(&g.config);
    g.config.max_request_entity_size = 16 * 1024 * 1024;
    g.config.http1.upgrade_to_http2 = 0;
    g.hosts[0] = h2o_config_register_host(&g.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(g.hosts[0], "/", 0);
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_context_init(&g.ctx, g.loop, &g.config);
    g.accept.ctx = &g.ctx;
    g.accept.hosts = g.hosts;

    struct sockaddr_storage addr;
    int addrlen = sizeof(addr), r;
    uv_tcp_init(g.loop, &g.listener);
    if ((r = uv_ip4_addr(bind, port, (struct sockaddr_in *)&addr)) != 0 &&
        (r = uv_ip6_addr(bind, port, (struct sockaddr_in6 *)&addr)) != 0) {
        fprintf(stderr, "mutt-sink: bad --bind %s\n", bind);
        return 2;
    }
    if ((r = uv_tcp_bind(&g.listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (r = uv_listen((uv_stream_t *)&g.listener, 1024, on_accept)) != 0) {
        fprintf(stderr, "mutt-sink: listen on %s:%d: %s\n", bind, port, uv_strerror(r));
        return 1;
    }
    uv_tcp_getsockname(&g.listener, (struct sockaddr *)&addr, &addrlen);
    port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)&addr)->sin_port);
    uv_signal_init(g.loop, &g.sigint);
    uv_signal_start(&g.sigint, on_signal, SIGINT);
    uv_signal_init(g.loop, &g.sigterm);
    uv_signal_start(&g.sigterm, on_signal, SIGTERM);
    fprintf(stderr, "mutt-sink: listening on %s:%d (status %d, delay %u ms)\n", bind, port, g.status, g.delay_ms);

    uv_run(g.loop, UV_RUN_DEFAULT);

    uv_run(g.loop, UV_RUN_NOWAIT);
    if (g.conns > 0) {
        /* A client still holds a keep-alive connection: h2o 2.2.5 has no way to shut it down,
         * and disposing the context under it aborts (h2o_timeout_dispose). The output is what
         * matters; exiting here is the documented clean stop. */
        if (out)
            fclose(g.out);
        return 0;
    }
    h2o_context_dispose(&g.ctx);
    uv_walk(g.loop, close_walk, NULL);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_loop_close(g.loop);
    h2o_config_dispose(&g.config);
    free(g.last_body);
    free(g.last_auth);
    free(g.last_ctype);
    if (out)
        fclose(g.out);
    return 0;
}
