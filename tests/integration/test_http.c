#define _GNU_SOURCE
/* HTTP front end against real sockets: router (404/405 + Allow, path params), h2o's 413,
 * per-request deadline 503 (and a handler that answers after it: refused, never sent, not counted),
 * keep-alive reuse, correlation ids, async replies and the health and
 * metrics endpoints. The server runs its loop on a background thread (all h2o calls stay on that
 * thread); the test thread is a plain blocking libcurl client. Needs no external service. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "mutt/config.h"
#include "mutt/ctx.h"
#include "mutt/error.h"
#include "mutt/health.h"
#include "mutt/http.h"
#include "mutt/metrics.h"
#include "metrics_text.h"

struct server {
    uv_loop_t loop;
    uv_async_t stop;
    struct mutt_http *http;
    struct mutt_metrics *metrics;
    struct mutt_config *cfg;
    struct mutt_ctx ctx;
    pthread_t thread;
    int port;
    int web_port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
};

static struct server srv;

/* ------------------------------------------------------------------------------------------ */
/* handlers                                                                                    */

static void on_echo(struct mutt_http_req *req, void *privdata)
{
    size_t blen = 0;
    const char *body = mutt_http_req_body(req, &blen);
    char out[256];
    int n = snprintf(out, sizeof(out), "{\"len\":%zu,\"first\":\"%c\"}", blen, blen && body ? body[0] : '-');
    mutt_http_reply_json(req, 200, out, (size_t)n);
}

static void on_item(struct mutt_http_req *req, void *privdata)
{
    const char *id = mutt_http_req_param(req, "id");
    const char *q = mutt_http_req_query_param(req, "q");
    char out[256];
    int n = snprintf(out, sizeof(out), "{\"id\":\"%s\",\"q\":\"%s\"}", id ? id : "", q ? q : "");
    mutt_http_reply_json(req, 200, out, (size_t)n);
}

static void on_make_ready(struct mutt_http_req *req, void *privdata)
{
    mutt_http_set_ready(srv.http, true); /* on the server thread, like app.c does */
    mutt_http_reply_json(req, 200, "{}", 2);
}

static void on_never(struct mutt_http_req *req, void *privdata)
{
    /* takes a hold and never answers: the deadline must */
    (void)req;
}

struct later {
    uv_timer_t timer;
    struct mutt_http_req *req;
};

static void on_later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_later_timer(uv_timer_t *t)
{
    struct later *l = t->data;
    if (!mutt_http_req_answered(l->req))
        mutt_http_reply_json(l->req, 202, "{\"late\":true}", 13);
    mutt_http_req_release(l->req);
    uv_close((uv_handle_t *)&l->timer, on_later_closed);
}

static void on_async(struct mutt_http_req *req, void *privdata)
{
    struct later *l = calloc(1, sizeof(*l));
    l->req = req;
    mutt_http_req_hold(req);
    uv_timer_init(req ? srv.ctx.loop : NULL, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_later_timer, 50, 0);
}

/* What the too-late handler saw when it finally answered: written on the server thread, read by
 * the test thread, which waits on `cv` for `done` instead of sleeping. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bool answered_before; /* the deadline had already answered the request */
    int rc;               /* what the late mutt_http_reply_json returned */
    int rc_again;         /* and a second late attempt */
} late = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0, 0};

static void on_too_late_timer(uv_timer_t *t)
{
    struct later *l = t->data;
    bool answered = mutt_http_req_answered(l->req);
    /* a careless handler: it replies without asking whether the deadline got there first */
    int rc = mutt_http_reply_json(l->req, 202, "{\"late\":true}", 13);
    int rc_again = mutt_http_reply_json(l->req, 200, "{\"late\":2}", 10);
    mutt_http_req_release(l->req);
    uv_close((uv_handle_t *)&l->timer, on_later_closed);
    pthread_mutex_lock(&late.mu);
    late.answered_before = answered;
    late.rc = rc;
    late.rc_again = rc_again;
    late.done = true;
    pthread_cond_signal(&late.cv);
    pthread_mutex_unlock(&late.mu);
}

static void on_too_late(struct mutt_http_req *req, void *privdata)
{
    /* answers 600 ms in, after the 300 ms deadline fired: both timers run on this loop and the
     * deadline is due first, so the reply below always comes late */
    struct later *l = calloc(1, sizeof(*l));
    l->req = req;
    mutt_http_req_hold(req);
    uv_timer_init(srv.ctx.loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_too_late_timer, 600, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* server thread                                                                               */

static void on_stop(uv_async_t *a)
{
    /* no uv_walk: the server must wind down its own connections */
    mutt_http_close(srv.http);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg)
{
    uv_loop_init(&srv.loop);
    uv_async_init(&srv.loop, &srv.stop, on_stop);
    srv.metrics = mutt_metrics_create();
    struct mutt_config_report rep = {0};
    char *envp[] = {"MUTT_ROLES=ingest,web", "INGEST_API_KEY=k", "WEBUI_API_KEY=w", NULL};
    srv.cfg = mutt_config_load("/dev/null", envp, MUTT_ROLE_INGEST | MUTT_ROLE_WEB, &rep);
    mutt_config_report_free(&rep);
    struct mutt_http_opts o = {
        .bind_addr = "127.0.0.1",
        .ports = {-1, -1, 0},
        .max_body_bytes = 1024,
        .request_timeout_ms = 300,
        .max_connections = 5, /* test_http_connection_over_cap_is_closed (web listener) */
    };
    char err[256];
    srv.http = mutt_http_create(&srv.loop, &o, srv.metrics, err, sizeof(err));
    assert_non_null(srv.http);
    srv.ctx.loop = &srv.loop;
    srv.ctx.cfg = srv.cfg;
    srv.ctx.http = srv.http;
    srv.ctx.metrics = srv.metrics;
    srv.ctx.roles = MUTT_ROLE_INGEST | MUTT_ROLE_WEB;
    srv.ctx.pod_name = "test-pod";
    mutt_metrics_register_process(srv.metrics, "0", "rev", "test-pod", "ingest,web");
    assert_int_equal(mutt_health_register(&srv.ctx), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "POST", "/echo", on_echo, NULL), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "GET,PUT", "/items/{id}", on_item, NULL), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "DELETE", "/items/{id}", on_item, NULL), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "GET", "/never", on_never, NULL), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "GET", "/async", on_async, NULL), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "GET", "/too-late", on_too_late, NULL), 0);
    assert_int_equal(mutt_http_route(srv.http, MUTT_HTTP_INGEST, "POST", "/make-ready", on_make_ready, NULL), 0);
    assert_int_equal(mutt_http_start(srv.http, err, sizeof(err)), 0);
    pthread_mutex_lock(&srv.mu);
    srv.port = mutt_http_port(srv.http, 0);
    srv.web_port = mutt_http_port(srv.http, 1);
    srv.ready = true;
    pthread_cond_signal(&srv.cv);
    pthread_mutex_unlock(&srv.mu);
    uv_run(&srv.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&srv.loop);
    mutt_http_destroy(srv.http);
    mutt_metrics_destroy(srv.metrics);
    mutt_config_destroy(srv.cfg);
    return (void *)(intptr_t)rc;
}

static int group_setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.cv, NULL);
    pthread_create(&srv.thread, NULL, server_main, NULL);
    pthread_mutex_lock(&srv.mu);
    while (!srv.ready)
        pthread_cond_wait(&srv.cv, &srv.mu);
    pthread_mutex_unlock(&srv.mu);
    return srv.port > 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    uv_async_send(&srv.stop);
    void *ret = NULL;
    pthread_join(srv.thread, &ret);
    curl_global_cleanup();
    /* the loop must close with nothing left open */
    return (intptr_t)ret == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* client                                                                                      */

struct resp {
    long status;
    char body[65536];
    size_t len;
    char headers[8192];
    size_t hlen;
    long connects;
    double seconds;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = sz * n;
    size_t room = sizeof(r->body) - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t len = sz * n;
    size_t room = sizeof(r->headers) - 1 - r->hlen;
    size_t take = len < room ? len : room;
    memcpy(r->headers + r->hlen, p, take);
    r->hlen += take;
    r->headers[r->hlen] = '\0';
    return len;
}

/* One request on `curl` (reused for keep-alive checks when non-NULL). */
static void request(CURL *curl, int port, const char *method, const char *path, const char *body, size_t blen,
                    const char *extra_header, struct resp *r)
{
    bool own = curl == NULL;
    if (own)
        curl = curl_easy_init();
    memset(r, 0, sizeof(*r));
    char url[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *hdrs = NULL;
    if (extra_header)
        hdrs = curl_slist_append(hdrs, extra_header);
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)blen);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(curl);
    assert_int_equal(rc, CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &r->connects);
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME, &r->seconds);
    curl_slist_free_all(hdrs);
    if (own)
        curl_easy_cleanup(curl);
}

static bool header_has(const struct resp *r, const char *needle)
{
    return strcasestr(r->headers, needle) != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* tests                                                                                       */

static void test_http_unknown_path_before_ready_is_503_retry_after(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/api/v2/later", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_true(header_has(&r, "retry-after: 1"));
    assert_non_null(strstr(r.body, "not ready"));
    request(NULL, srv.port, "POST", "/make-ready", "x", 1, NULL, &r);
    assert_int_equal(r.status, 200);
    request(NULL, srv.port, "GET", "/api/v2/later", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
}

static void test_http_unknown_path_is_404_json_with_correlation_id(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/nope", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body, "\"error\":\"not found\""));
    assert_non_null(strstr(r.body, "\"correlation_id\":\""));
    assert_true(header_has(&r, "x-correlation-id:"));
    assert_true(header_has(&r, "content-type: application/json"));
}

static void test_http_wrong_method_is_405_with_allow(void **state)
{
    struct resp r;
    request(NULL, srv.port, "POST", "/items/7", "{}", 2, "Content-Type: application/json", &r);
    assert_int_equal(r.status, 405);
    assert_true(header_has(&r, "allow: GET, PUT, DELETE"));
    assert_non_null(strstr(r.body, "method not allowed"));
}

static void test_http_path_params_and_query_are_decoded(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/items/a%20b?q=x%2By+z", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"id\":\"a b\",\"q\":\"x+y z\"}");
}

static void test_http_routes_are_bound_to_their_listener(void **state)
{
    struct resp r;
    request(NULL, srv.web_port, "POST", "/echo", "x", 1, NULL, &r);
    assert_int_equal(r.status, 404);
}

static void test_http_body_over_limit_is_413(void **state)
{
    char big[4096];
    memset(big, 'a', sizeof(big));
    struct resp r;
    request(NULL, srv.port, "POST", "/echo", big, sizeof(big), NULL, &r);
    assert_int_equal(r.status, 413);
    request(NULL, srv.port, "POST", "/echo", big, 1000, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"len\":1000,\"first\":\"a\"}");
}

static void test_http_handler_that_never_answers_gets_deadline_503(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/never", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "request timed out"));
    assert_true(header_has(&r, "retry-after: 1"));
    assert_true(r.seconds >= 0.25 && r.seconds < 3.0);
}

/* Waits (bounded) until the too-late handler has made its late reply attempts. */
static void wait_for_late_reply(void)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20; /* generous: the machine may be loaded; the handler fires at 600 ms */
    pthread_mutex_lock(&late.mu);
    int rc = 0;
    while (!late.done && rc == 0)
        rc = pthread_cond_timedwait(&late.cv, &late.mu, &until);
    bool done = late.done;
    pthread_mutex_unlock(&late.mu);
    if (!done)
        fail_msg("the too-late handler never replied (20 s)");
}

static void test_http_late_reply_after_deadline_is_dropped_safely(void **state)
{
    CURL *c = curl_easy_init();
    struct resp r;
    request(c, srv.port, "GET", "/too-late", NULL, 0, NULL, &r);
    /* the client saw the deadline's refusal, not the handler's answer */
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "request timed out"));
    assert_null(strstr(r.body, "late"));
    assert_true(header_has(&r, "retry-after: 1"));
    wait_for_late_reply();
    /* the handler really answered after the deadline, and both late replies were refused */
    assert_true(late.answered_before);
    assert_int_equal(late.rc, MUTT_ESTATE);
    assert_int_equal(late.rc_again, MUTT_ESTATE);
    /* nothing stray on the connection: the next request on the same handle gets its own answer */
    request(c, srv.port, "GET", "/items/9", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"id\":\"9\",\"q\":\"\"}");
    curl_easy_cleanup(c);
    /* the server keeps working after the late reply was refused */
    request(NULL, srv.port, "GET", "/health/live", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
}

static void test_http_async_reply_after_hold_arrives(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/async", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 202);
    assert_string_equal(r.body, "{\"late\":true}");
}

static void test_http_keep_alive_reuses_the_connection(void **state)
{
    CURL *c = curl_easy_init();
    struct resp r;
    request(c, srv.port, "POST", "/echo", "abc", 3, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.connects, 1);
    for (int i = 0; i < 5; i++) {
        request(c, srv.port, "GET", "/items/1", NULL, 0, NULL, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.connects, 0); /* no new connection: keep-alive worked */
        assert_true(header_has(&r, "content-length:"));
    }
    curl_easy_cleanup(c);
}

static void test_http_valid_correlation_id_is_echoed(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/nope", NULL, 0, "X-Correlation-ID: abc-123.x", &r);
    assert_true(header_has(&r, "x-correlation-id: abc-123.x"));
    assert_non_null(strstr(r.body, "\"correlation_id\":\"abc-123.x\""));
}

static void test_http_invalid_correlation_id_is_replaced(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/nope", NULL, 0, "X-Correlation-ID: bad id with spaces", &r);
    assert_false(header_has(&r, "bad id"));
    const char *p = strcasestr(r.headers, "x-correlation-id: ");
    assert_non_null(p);
    p += strlen("x-correlation-id: ");
    assert_int_equal(strcspn(p, "\r\n"), 36); /* a UUID */
    assert_int_equal(p[14], '4');
}

static void test_http_health_live_and_health_without_redis(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/health/live", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"alive\"}");
    request(NULL, srv.web_port, "GET", "/health", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 503); /* no Redis at all: every role is down */
    assert_non_null(strstr(r.body, "\"status\":\"unhealthy\""));
    assert_non_null(strstr(r.body, "\"redis\":\"disconnected\""));
    assert_non_null(strstr(r.body, "\"ingest\":\"down\""));
    assert_non_null(strstr(r.body, "\"vault\":\"not_configured\""));
    assert_non_null(strstr(r.body, "\"errors\":["));
}

static void test_http_metrics_is_valid_prometheus_text(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/metrics", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(header_has(&r, "content-type: text/plain; version=0.0.4"));
    char err[256] = "";
    int rc = mutt_test_metrics_text_validate(r.body, r.len, err, sizeof(err));
    if (rc != 0)
        fail_msg("metrics text invalid: %s", err);
    assert_non_null(strstr(r.body, "process_resident_memory_bytes"));
    assert_non_null(strstr(r.body, "mutt_build_info{"));
    /* earlier tests produced 404s and deadline 503s on the ingest listener */
    assert_non_null(strstr(r.body, "mutt_http_requests_total{listener=\"ingest\",code=\"404\"}"));
    assert_non_null(strstr(r.body, "mutt_http_request_deadline_total 2\n"));
    /* the one 202 is /async's: the refused late 202 (and its late 200) were never counted */
    assert_non_null(strstr(r.body, "mutt_http_requests_total{listener=\"ingest\",code=\"202\"} 1\n"));
}

static void test_http_h2c_upgrade_is_not_honoured(void **state)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/health/live", NULL, 0, "Upgrade: h2c", &r);
    assert_int_equal(r.status, 200);
    assert_false(header_has(&r, "101 Switching"));
}

/* A blocking TCP connection to 127.0.0.1:port with a 5 s receive timeout; -1 on failure. */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends GET /health/live on fd; returns bytes of the answer read (0 = closed by the server). */
static ssize_t raw_get_live(int fd, char *buf, size_t cap)
{
    static const char rq[] = "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd, rq, sizeof rq - 1, MSG_NOSIGNAL) < 0)
        return 0; /* reset: closed */
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n > 0)
        buf[n] = '\0';
    return n < 0 ? 0 : n;
}

static bool metrics_have(const char *needle)
{
    struct resp r;
    request(NULL, srv.port, "GET", "/metrics", NULL, 0, NULL, &r);
    return r.status == 200 && strstr(r.body, needle) != NULL;
}

/* MAX_CONNECTIONS=5 on the web listener: five idle connections are served, the sixth is accepted
 * and closed at once and counted; once one of the five closes, a new connection is served. */
static void test_http_connection_over_cap_is_closed(void **state)
{
    char buf[2048];
    int fds[5];
    for (int i = 0; i < 5; i++) {
        fds[i] = raw_connect(srv.web_port);
        assert_true(fds[i] >= 0);
    }
    /* all five are served (accepted before the sixth arrives: accepts go in connect order) */
    for (int i = 0; i < 5; i++) {
        assert_true(raw_get_live(fds[i], buf, sizeof buf) > 0);
        assert_non_null(strstr(buf, "200"));
    }
    assert_true(metrics_have("mutt_http_connections_refused_total{listener=\"web\"} 0"));
    int sixth = raw_connect(srv.web_port);
    assert_true(sixth >= 0);
    assert_int_equal(raw_get_live(sixth, buf, sizeof buf), 0);
    close(sixth);
    assert_true(metrics_have("mutt_http_connections_refused_total{listener=\"web\"} 1"));
    /* the other listener has its own count */
    assert_true(metrics_have("mutt_http_connections_refused_total{listener=\"ingest\"} 0"));

    close(fds[0]);
    /* the server sees the close asynchronously: a connection that races it is refused (and
     * counted); one made after it is served */
    bool served = false;
    for (int attempt = 0; attempt < 100 && !served; attempt++) {
        int fd = raw_connect(srv.web_port);
        assert_true(fd >= 0);
        served = raw_get_live(fd, buf, sizeof buf) > 0 && strstr(buf, "200") != NULL;
        close(fd);
        if (!served)
            usleep(20000);
    }
    assert_true(served);
    for (int i = 1; i < 5; i++)
        close(fds[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_unknown_path_before_ready_is_503_retry_after),
        cmocka_unit_test(test_http_unknown_path_is_404_json_with_correlation_id),
        cmocka_unit_test(test_http_wrong_method_is_405_with_allow),
        cmocka_unit_test(test_http_path_params_and_query_are_decoded),
        cmocka_unit_test(test_http_routes_are_bound_to_their_listener),
        cmocka_unit_test(test_http_body_over_limit_is_413),
        cmocka_unit_test(test_http_handler_that_never_answers_gets_deadline_503),
        cmocka_unit_test(test_http_late_reply_after_deadline_is_dropped_safely),
        cmocka_unit_test(test_http_async_reply_after_hold_arrives),
        cmocka_unit_test(test_http_keep_alive_reuses_the_connection),
        cmocka_unit_test(test_http_valid_correlation_id_is_echoed),
        cmocka_unit_test(test_http_invalid_correlation_id_is_replaced),
        cmocka_unit_test(test_http_health_live_and_health_without_redis),
        cmocka_unit_test(test_http_metrics_is_valid_prometheus_text),
        cmocka_unit_test(test_http_h2c_upgrade_is_not_honoured),
        cmocka_unit_test(test_http_connection_over_cap_is_closed),
    };
    return cmocka_run_group_tests_name("http", tests, group_setup, group_teardown);
}
