/* Integration tests of the HTTP client adapter (src/io/http_client.c): libcurl multi on a uv
 * loop against the harness webhook sink (tests/harness/sink.c, started here as a child process
 * on a free port) and, for answers the sink cannot give (Retry-After, 301, huge bodies), a tiny
 * canned-response TCP server on the test's own loop. Needs: the mutt-sink binary
 * (MUTT_SINK_BIN, else <build>/tests/mutt-sink next to this binary's directory); skips without
 * it. No Redis or PostgreSQL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "mutt/error.h"
#include "mutt/forward_classify.h"
#include "mutt/http_client.h"
#include "testenv.h"

#define DEADLINE_MS 10000

/* ------------------------------------------------------------------------------ the sink */

static struct {
    char path[PATH_MAX];
    pid_t pid;
    int port;
} sink;

static const char *argv0;

static bool find_sink(void)
{
    const char *env = getenv("MUTT_SINK_BIN");
    if (env && access(env, X_OK) == 0) {
        snprintf(sink.path, sizeof(sink.path), "%s", env);
        return true;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", argv0);
    snprintf(sink.path, sizeof(sink.path), "%s/../mutt-sink", dirname(tmp));
    return access(sink.path, X_OK) == 0;
}

/* Starts mutt-sink --port 0 and reads the port it chose from its stderr. Blocking: test code. */
static int sink_start(void **state)
{
    sink.pid = 0;
    if (!find_sink())
        return 0; /* every test skips */
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl(sink.path, sink.path, "--port", "0", "--bind", "127.0.0.1", "--out", "/dev/null", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char buf[512];
    size_t n = 0;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    while (n < sizeof(buf) - 1 && poll(&p, 1, 5000) == 1) {
        ssize_t r = read(fds[0], buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        const char *at = strstr(buf, "listening on 127.0.0.1:");
        if (at && strchr(at, '(')) {
            sink.port = atoi(at + strlen("listening on 127.0.0.1:"));
            break;
        }
    }
    close(fds[0]); /* the sink ignores SIGPIPE; its later stderr lines are lost, fine */
    if (sink.port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    sink.pid = pid;
    return 0;
}

static int sink_stop(void **state)
{
    if (sink.pid > 0) {
        kill(sink.pid, SIGTERM);
        waitpid(sink.pid, NULL, 0);
        sink.pid = 0;
    }
    return 0;
}

/* ------------------------------------------------------------------------------ fixture */

struct rec { /* what one callback saw */
    int calls;
    int status;
    int curl_code;
    long http_status;
    char body[256];
    size_t body_len;
    bool truncated;
    int64_t retry_after_s;
    uint64_t total_time_us;
    char error[CURL_ERROR_SIZE];
};

struct fx {
    uv_loop_t loop;
    struct mutt_http_client *c;
    int done; /* callbacks seen, over all recs */
    /* canned server */
    uv_tcp_t server;
    bool server_on;
    int server_port;
    const char *canned; /* the whole response */
    size_t canned_len;
};

static void on_rec(void *privdata, const struct mutt_http_result *r)
{
    struct rec *rec = privdata;
    rec->calls++;
    rec->status = r->status;
    rec->curl_code = r->curl_code;
    rec->http_status = r->http_status;
    rec->body_len = r->body_len;
    snprintf(rec->body, sizeof(rec->body), "%s", r->body);
    rec->truncated = r->body_truncated;
    rec->retry_after_s = r->retry_after_s;
    rec->total_time_us = r->total_time_us;
    snprintf(rec->error, sizeof(rec->error), "%s", r->error);
}

struct rec_fx {
    struct rec rec;
    struct fx *fx;
};

static void on_rec_fx(void *privdata, const struct mutt_http_result *r)
{
    struct rec_fx *rf = privdata;
    on_rec(&rf->rec, r);
    rf->fx->done++;
}

static char *url(char *buf, size_t len, int port, const char *path)
{
    snprintf(buf, len, "http://127.0.0.1:%d%s", port, path);
    return buf;
}

/* Runs one request to completion on fx's loop; returns its record. */
static struct rec run_one(struct fx *fx, const struct mutt_http_request *req)
{
    struct rec_fx rf = {.fx = fx};
    int before = fx->done;
    assert_int_equal(mutt_http_client_request(fx->c, req, on_rec_fx, &rf), 0);
    assert_int_equal(rf.rec.calls, 0); /* never called back synchronously */
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->done, before + 1, DEADLINE_MS));
    assert_int_equal(rf.rec.calls, 1);
    return rf.rec;
}

static struct rec sink_call(struct fx *fx, const char *method, const char *path)
{
    char u[128];
    struct mutt_http_request req = {.method = method, .url = url(u, sizeof(u), sink.port, path), .timeout_ms = 5000};
    return run_one(fx, &req);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    uv_loop_init(&fx->loop);
    fx->c = mutt_http_client_create(&fx->loop, 32);
    *state = fx;
    if (sink.pid > 0) { /* every test starts from a healthy, empty sink */
        struct rec r = sink_call(fx, "POST", "/control?status=200&delay_ms=0&reset=1&drop=0");
        if (r.http_status != 200)
            return -1;
    }
    return fx->c ? 0 : -1;
}

static void on_server_closed(uv_handle_t *h)
{
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    mutt_http_client_destroy(fx->c);
    if (fx->server_on)
        uv_close((uv_handle_t *)&fx->server, on_server_closed);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* close callbacks, canned connections */
    int rc = uv_loop_close(&fx->loop);
    free(fx);
    assert_int_equal(rc, 0); /* nothing leaked on the loop */
    return 0;
}

#define NEED_SINK()                                                                                                    \
    do {                                                                                                               \
        if (sink.pid <= 0)                                                                                             \
            MUTT_SKIP("no-harness", "mutt-sink not running");                                                                                                    \
    } while (0)

/* ------------------------------------------------------------------------------ canned server */

struct canned_conn {
    uv_tcp_t tcp;
    uv_write_t wr;
    struct fx *fx;
    char req[8192];
    size_t req_len;
    bool answered;
};

static void on_conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_canned_written(uv_write_t *w, int status)
{
    struct canned_conn *cc = w->data;
    uv_close((uv_handle_t *)&cc->tcp, on_conn_closed);
}

static void on_canned_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct canned_conn *cc = h->data;
    buf->base = cc->req + cc->req_len;
    buf->len = sizeof(cc->req) - 1 - cc->req_len;
}

static void on_canned_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct canned_conn *cc = s->data;
    if (n < 0) {
        if (!cc->answered)
            uv_close((uv_handle_t *)&cc->tcp, on_conn_closed);
        return;
    }
    cc->req_len += (size_t)n;
    cc->req[cc->req_len] = '\0';
    if (cc->answered || !strstr(cc->req, "\r\n\r\n"))
        return;
    cc->answered = true;
    uv_read_stop(s);
    uv_buf_t out = uv_buf_init((char *)cc->fx->canned, (unsigned)cc->fx->canned_len);
    cc->wr.data = cc;
    uv_write(&cc->wr, s, &out, 1, on_canned_written);
}

static void on_canned_conn(uv_stream_t *server, int status)
{
    struct fx *fx = server->data;
    struct canned_conn *cc = calloc(1, sizeof(*cc));
    cc->fx = fx;
    uv_tcp_init(&fx->loop, &cc->tcp);
    cc->tcp.data = cc;
    if (uv_accept(server, (uv_stream_t *)&cc->tcp) != 0) {
        uv_close((uv_handle_t *)&cc->tcp, on_conn_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&cc->tcp, on_canned_alloc, on_canned_read);
}

/* Answers every request on a fresh port with `response` (kept by the caller) and closes. */
static void canned_start(struct fx *fx, const char *response, size_t len)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int gotlen = sizeof(got);
    fx->canned = response;
    fx->canned_len = len;
    uv_tcp_init(&fx->loop, &fx->server);
    fx->server.data = fx;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&fx->server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->server, 128, on_canned_conn), 0);
    uv_tcp_getsockname(&fx->server, (struct sockaddr *)&got, &gotlen);
    fx->server_port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    fx->server_on = true;
}

static struct rec canned_get(struct fx *fx)
{
    char u[128];
    struct mutt_http_request req = {.url = url(u, sizeof(u), fx->server_port, "/x"), .timeout_ms = 5000};
    return run_one(fx, &req);
}

/* A port nothing listens on (bound, read, closed again). */
static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

/* ------------------------------------------------------------------------------ tests */

static void test_http_client_post_gets_200_and_the_body(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    char u[128];
    const char *headers[] = {"Content-Type: application/json", "Authorization: Bearer t0k3n"};
    const char body[] = "{\"alert\":\"x\"}";
    struct mutt_http_request req = {.url = url(u, sizeof(u), sink.port, "/api/v1/events"),
                                    .headers = headers, .nheaders = 2,
                                    .body = body, .body_len = strlen(body), .timeout_ms = 5000};
    struct rec r = run_one(fx, &req);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.http_status, 200);
    assert_string_equal(r.body, "{\"ok\":true}");
    assert_int_equal(r.body_len, 11);
    assert_false(r.truncated);
    assert_int_equal(r.retry_after_s, -1);
    assert_true(r.total_time_us > 0);
    assert_string_equal(r.error, "");

    /* what the sink received: the body as sent, counted as delivered */
    struct rec last = sink_call(fx, "GET", "/last");
    assert_string_equal(last.body, body);
    struct rec count = sink_call(fx, "GET", "/count");
    assert_non_null(strstr(count.body, "\"count\":1,"));
}

static void test_http_client_reports_a_500_as_the_http_status(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    assert_int_equal(sink_call(fx, "POST", "/control?status=500").http_status, 200);
    struct rec r = sink_call(fx, "POST", "/hook");
    assert_int_equal(r.status, 0);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.http_status, 500);
}

static void test_http_client_connection_cut_without_answer_is_a_retry(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    assert_int_equal(sink_call(fx, "POST", "/control?drop=1").http_status, 200);
    char u[128];
    struct mutt_http_request req = {.url = url(u, sizeof(u), sink.port, "/hook"), .body = "{}", .body_len = 2,
                                    .timeout_ms = 5000};
    struct rec r = run_one(fx, &req);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.http_status, 0);
    assert_true(r.curl_code == CURLE_GOT_NOTHING || r.curl_code == CURLE_RECV_ERROR ||
                r.curl_code == CURLE_SEND_ERROR);
    assert_int_equal(mutt_forward_classify(r.http_status, r.curl_code), MUTT_RETRY);
    /* nothing counted as delivered; after drop=0 the same request goes through */
    assert_non_null(strstr(sink_call(fx, "GET", "/count").body, "\"count\":0,"));
    assert_int_equal(sink_call(fx, "POST", "/control?drop=0").http_status, 200);
    r = run_one(fx, &req);
    assert_int_equal(r.http_status, 200);
}

static void test_http_client_refused_port_is_couldnt_connect(void **state)
{
    struct fx *fx = *state;
    char u[128];
    struct mutt_http_request req = {.url = url(u, sizeof(u), free_port(), "/"), .body = "{}", .body_len = 2,
                                    .timeout_ms = 5000};
    struct rec r = run_one(fx, &req);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.curl_code, CURLE_COULDNT_CONNECT);
    assert_int_equal(r.http_status, 0);
    assert_true(strlen(r.error) > 0);
}

static void test_http_client_answer_later_than_the_timeout_is_timed_out(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    assert_int_equal(sink_call(fx, "POST", "/control?delay_ms=3000").http_status, 200);
    char u[128];
    struct mutt_http_request req = {.url = url(u, sizeof(u), sink.port, "/hook"), .body = "{}", .body_len = 2,
                                    .timeout_ms = 300};
    uint64_t t0 = uv_hrtime();
    struct rec r = run_one(fx, &req);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(r.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.http_status, 0);
    assert_true(took_ms >= 250 && took_ms < 2500);
}

static void test_http_client_parses_retry_after_seconds(void **state)
{
    struct fx *fx = *state;
    static const char resp[] = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n"
                               "Connection: close\r\n\r\nbusy";
    canned_start(fx, resp, sizeof(resp) - 1);
    struct rec r = canned_get(fx);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.http_status, 503);
    assert_int_equal(r.retry_after_s, 7);
    assert_string_equal(r.body, "busy");
}

static void test_http_client_parses_retry_after_http_date(void **state)
{
    struct fx *fx = *state;
    static char resp[256];
    char date[64];
    time_t when = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 429 Too Many Requests\r\nretry-after:  %s \r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             date);
    canned_start(fx, resp, strlen(resp));
    struct rec r = canned_get(fx);
    assert_int_equal(r.http_status, 429);
    assert_true(r.retry_after_s >= 117 && r.retry_after_s <= 120);
}

static void test_http_client_does_not_follow_redirects(void **state)
{
    struct fx *fx = *state;
    static const char resp[] = "HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
                               "Content-Length: 0\r\nConnection: close\r\n\r\n";
    canned_start(fx, resp, sizeof(resp) - 1);
    struct rec r = canned_get(fx);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.http_status, 301); /* the final answer, a DEAD delivery per D4 */
    assert_int_equal(r.retry_after_s, -1);
}

static void test_http_client_caps_the_captured_body(void **state)
{
    struct fx *fx = *state;
    size_t body = 100 * 1024;
    char head[128];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", body);
    char *resp = malloc((size_t)hl + body);
    memcpy(resp, head, (size_t)hl);
    memset(resp + hl, 'b', body);
    canned_start(fx, resp, (size_t)hl + body);
    struct rec r = canned_get(fx);
    free(resp);
    assert_int_equal(r.curl_code, 0);
    assert_int_equal(r.http_status, 200);
    assert_int_equal(r.body_len, MUTT_HTTP_CLIENT_BODY_CAP);
    assert_true(r.truncated);
}

/* ---- concurrency and the cap ---- */

struct burst {
    struct fx *fx;
    int submitted, done, ok, max_inflight_seen;
    int refill_failed, second_refused, second_accepted;
    char url[128];
};

static int burst_submit(struct burst *b);

static void on_burst(void *privdata, const struct mutt_http_result *r)
{
    struct burst *b = privdata;
    b->done++;
    if (r->status == 0 && r->curl_code == 0 && r->http_status == 200)
        b->ok++;
    if (b->submitted < 100 && burst_submit(b) != 0)
        b->refill_failed++; /* the slot this request just freed must be usable at once */
    if (b->submitted < 100) {
        int rc = burst_submit(b); /* ...but only that one */
        if (rc == MUTT_EFULL)
            b->second_refused++;
        else if (rc == 0)
            b->second_accepted++;
    }
}

static int burst_submit(struct burst *b)
{
    struct mutt_http_request req = {.url = b->url, .body = "{\"n\":1}", .body_len = 7, .timeout_ms = 10000};
    int rc = mutt_http_client_request(b->fx->c, &req, on_burst, b);
    if (rc == 0) {
        b->submitted++;
        int now = (int)mutt_http_client_inflight(b->fx->c);
        if (now > b->max_inflight_seen)
            b->max_inflight_seen = now;
    }
    return rc;
}

static void test_http_client_caps_inflight_at_max_and_recovers(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    struct burst b = {.fx = fx};
    url(b.url, sizeof(b.url), sink.port, "/hook");
    int accepted = 0, efull = 0;
    for (int i = 0; i < 100; i++) {
        int rc = burst_submit(&b);
        if (rc == 0)
            accepted++;
        else if (rc == MUTT_EFULL)
            efull++;
    }
    assert_int_equal(accepted, 32);
    assert_int_equal(efull, 68);
    assert_int_equal(mutt_http_client_inflight(fx->c), 32);
    assert_true(mutt_test_run_until_count(&fx->loop, &b.done, 100, 20000));
    assert_int_equal(b.submitted, 100);
    assert_int_equal(b.ok, 100);
    assert_int_equal(b.max_inflight_seen, 32);
    assert_int_equal(b.refill_failed, 0);
    assert_int_equal(b.second_accepted, 0);
    assert_true(b.second_refused > 0);
    assert_int_equal(mutt_http_client_inflight(fx->c), 0);
    struct rec count = sink_call(fx, "GET", "/count");
    assert_non_null(strstr(count.body, "\"count\":100,"));
}

/* ---- stop ---- */

static void test_http_client_stop_cancels_each_request_exactly_once(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    assert_int_equal(sink_call(fx, "POST", "/control?delay_ms=5000").http_status, 200);
    struct rec recs[10];
    memset(recs, 0, sizeof(recs));
    char u[128];
    struct mutt_http_request req = {.url = url(u, sizeof(u), sink.port, "/hook"), .body = "{}", .body_len = 2,
                                    .timeout_ms = 10000};
    for (int i = 0; i < 10; i++)
        assert_int_equal(mutt_http_client_request(fx->c, &req, on_rec, &recs[i]), 0);
    /* let them connect and send (the sink holds the answers for 5 s) */
    int never = 0;
    mutt_test_run_until_count(&fx->loop, &never, 1, 300);
    for (int i = 0; i < 10; i++)
        assert_int_equal(recs[i].calls, 0);
    mutt_http_client_stop(fx->c);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(recs[i].calls, 1);
        assert_int_equal(recs[i].status, MUTT_ECANCELED);
        assert_int_equal(recs[i].http_status, 0);
    }
    assert_int_equal(mutt_http_client_inflight(fx->c), 0);
    struct rec late = {0};
    assert_int_equal(mutt_http_client_request(fx->c, &req, on_rec, &late), MUTT_ESTATE);
    mutt_http_client_stop(fx->c); /* twice is harmless */
    mutt_test_run_until_count(&fx->loop, &never, 1, 100);
    for (int i = 0; i < 10; i++)
        assert_int_equal(recs[i].calls, 1);
    assert_int_equal(late.calls, 0);
}

struct stopper {
    struct fx *fx;
    struct rec recs[4];
    int cancelled, stop_cb_calls;
};

static void on_stopper_victim(void *privdata, const struct mutt_http_result *r)
{
    struct rec *rec = privdata;
    on_rec(rec, r);
}

static void on_stopper_trigger(void *privdata, const struct mutt_http_result *r)
{
    struct stopper *s = privdata;
    s->stop_cb_calls++;
    mutt_http_client_stop(s->fx->c); /* from inside a callback */
}

static void test_http_client_stop_inside_a_callback_cancels_the_rest(void **state)
{
    struct fx *fx = *state;
    NEED_SINK();
    assert_int_equal(sink_call(fx, "POST", "/control?delay_ms=5000").http_status, 200);
    struct stopper s = {.fx = fx};
    char slow[128], refused[128];
    /* POSTs: the sink delays only those (a GET would get its 404 at once and race the trigger) */
    struct mutt_http_request slow_req = {.url = url(slow, sizeof(slow), sink.port, "/hook"), .body = "{}",
                                         .body_len = 2, .timeout_ms = 10000};
    struct mutt_http_request bad_req = {.url = url(refused, sizeof(refused), free_port(), "/"), .timeout_ms = 10000};
    for (int i = 0; i < 4; i++)
        assert_int_equal(mutt_http_client_request(fx->c, &slow_req, on_stopper_victim, &s.recs[i]), 0);
    assert_int_equal(mutt_http_client_request(fx->c, &bad_req, on_stopper_trigger, &s), 0);
    assert_true(mutt_test_run_until_count(&fx->loop, &s.stop_cb_calls, 1, DEADLINE_MS));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.recs[i].calls, 1);
        assert_int_equal(s.recs[i].status, MUTT_ECANCELED);
    }
    int never = 0;
    mutt_test_run_until_count(&fx->loop, &never, 1, 100);
    assert_int_equal(s.stop_cb_calls, 1);
}

static void test_http_client_rejects_bad_requests_synchronously(void **state)
{
    struct fx *fx = *state;
    struct rec r = {0};
    struct mutt_http_request no_url = {.timeout_ms = 10};
    assert_int_equal(mutt_http_client_request(fx->c, &no_url, on_rec, &r), MUTT_EINVAL);
    const char *bad[] = {"X-Evil: a\r\nInjected: b"};
    struct mutt_http_request inj = {.url = "http://127.0.0.1:1/", .headers = bad, .nheaders = 1};
    assert_int_equal(mutt_http_client_request(fx->c, &inj, on_rec, &r), MUTT_EINVAL);
    struct mutt_http_request nobody = {.url = "http://127.0.0.1:1/", .body_len = 3};
    assert_int_equal(mutt_http_client_request(fx->c, &nobody, on_rec, &r), MUTT_EINVAL);
    assert_null(mutt_http_client_create(&fx->loop, 0));
    int never = 0;
    mutt_test_run_until_count(&fx->loop, &never, 1, 50);
    assert_int_equal(r.calls, 0);
    assert_int_equal(mutt_http_client_inflight(fx->c), 0);
}

static void test_http_client_unsupported_scheme_fails_in_the_callback(void **state)
{
    struct fx *fx = *state;
    struct mutt_http_request req = {.url = "file:///etc/passwd", .timeout_ms = 1000};
    struct rec r = run_one(fx, &req);
    assert_int_equal(r.curl_code, CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal(r.body_len, 0);
}

static void test_http_client_parse_retry_after_forms(void **state)
{
    const int64_t now = 784111777; /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(mutt_http_parse_retry_after("120", 3, now), 120);
    assert_int_equal(mutt_http_parse_retry_after(" 0 \r\n", 5, now), 0);
    assert_int_equal(mutt_http_parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT\r\n", 31, now), 120);
    assert_int_equal(mutt_http_parse_retry_after("Sun, 06 Nov 1994 08:40:00 GMT", 29, now), 0); /* past */
    assert_int_equal(mutt_http_parse_retry_after("soon", 4, now), -1);
    assert_int_equal(mutt_http_parse_retry_after("-5", 2, now), -1);
    assert_int_equal(mutt_http_parse_retry_after("", 0, now), -1);
    assert_true(mutt_http_parse_retry_after("99999999999999999999999", 23, now) > 0);
}

int main(int argc, char **argv)
{
    argv0 = argv[0];
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_client_post_gets_200_and_the_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_reports_a_500_as_the_http_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_connection_cut_without_answer_is_a_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_refused_port_is_couldnt_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_answer_later_than_the_timeout_is_timed_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_parses_retry_after_seconds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_parses_retry_after_http_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_does_not_follow_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_caps_the_captured_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_caps_inflight_at_max_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_stop_cancels_each_request_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_stop_inside_a_callback_cancels_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_rejects_bad_requests_synchronously, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_unsupported_scheme_fails_in_the_callback, setup, teardown),
        cmocka_unit_test(test_http_client_parse_retry_after_forms),
    };
    int failed = cmocka_run_group_tests_name("http_client", tests, sink_start, sink_stop);
    curl_global_cleanup();
    return failed;
}
