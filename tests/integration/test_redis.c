/* Integration tests of the Redis adapter (src/io/redis.c) against a real redis-server.
 * Needs: redis (MUTT_TEST_REDIS_HOST/PORT); the restart tests also need tests/harness/services.sh
 * (MUTT_TEST_STATE, MUTT_TEST_ROOT). Skips when the harness environment is absent.
 * Sync hiredis is used only by the test itself, for admin steps (CONFIG SET) and checks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <uv.h>

#include "mutt/error.h"
#include "mutt/redis.h"
#include "testenv.h"

#define TEST_PASSWORD "mutt-test-rotated-pw"

/* ------------------------------------------------------------------------------ fixture */

struct reply_rec {
    int calls;
    int status;
    int type;
    long long integer;
    size_t len;
    char str[256];
    size_t elements;
    uint64_t at_ms;
};

struct state_log {
    int ups;
    int downs;
    char seq[64]; /* 'U' / 'D' in order */
    size_t n;
};

struct fx {
    uv_loop_t loop;
    struct mutt_redis *r;
    struct state_log cmd_state;
    char prefix[64]; /* per-run key prefix so runs never collide */
};

static const char *redis_host(void)
{
    const char *h = mutt_test_env("REDIS_HOST");
    return h ? h : "127.0.0.1";
}

static struct mutt_redis_opts base_opts(void)
{
    struct mutt_redis_opts o;
    memset(&o, 0, sizeof(o));
    o.host = redis_host();
    o.port = mutt_test_env_int("REDIS_PORT", 0);
    o.connect_timeout_ms = 2000;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 400;
    o.max_inflight = 1000;
    return o;
}

static void on_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct state_log *s = privdata;
    (void)conn;
    if (connected)
        s->ups++;
    else
        s->downs++;
    if (s->n < sizeof(s->seq) - 1)
        s->seq[s->n++] = connected ? 'U' : 'D';
}

static void on_reply(void *privdata, redisReply *reply, int status)
{
    struct reply_rec *rec = privdata;
    rec->calls++;
    rec->status = status;
    rec->at_ms = uv_hrtime() / 1000000;
    rec->type = reply ? reply->type : 0;
    if (!reply)
        return;
    rec->integer = reply->integer;
    rec->elements = reply->elements;
    if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_ERROR) {
        rec->len = reply->len < sizeof(rec->str) ? reply->len : sizeof(rec->str);
        memcpy(rec->str, reply->str, rec->len);
    }
}

static int setup(void **state)
{
    if (!mutt_test_env("REDIS_PORT")) {
        *state = NULL;
        return 0;
    }
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->prefix, sizeof(f->prefix), "mutt:test:redis:%d:%llu:", (int)getpid(),
             (unsigned long long)(uv_hrtime() % 1000000007ull));
    *state = f;
    return 0;
}

/* Stops what a test left running; the manager must leave nothing open (uv_loop_close == 0). */
static int teardown(void **state)
{
    struct fx *f = *state;
    if (!f)
        return 0;
    if (f->r) {
        mutt_redis_stop(f->r);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        mutt_redis_destroy(f->r);
        f->r = NULL;
    }
    int rc = uv_loop_close(&f->loop);
    if (rc != 0)
        mutt_test_loop_close(&f->loop); /* free what leaked before failing */
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

static struct fx *fixture(void **state)
{
    struct fx *f = *state;
    if (!f)
        MUTT_SKIP("no-harness", "no Redis fixture");
    return f;
}

static void start_connected(struct fx *f, const struct mutt_redis_opts *o)
{
    f->r = mutt_redis_create(&f->loop, o);
    assert_non_null(f->r);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 1, 5000));
    assert_true(mutt_redis_connected(f->r));
}

static void key(const struct fx *f, const char *name, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s", f->prefix, name);
}

/* Sends argv (NUL-terminated strings) on c and runs the loop until the reply came. */
static void run_cmd(struct fx *f, struct mutt_redis_conn *c, struct reply_rec *rec, int argc, const char **argv)
{
    size_t lens[16];
    assert_true(argc <= 16);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    memset(rec, 0, sizeof(*rec));
    assert_int_equal(mutt_redis_command(c, on_reply, rec, argc, argv, lens), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &rec->calls, 1, 5000));
    assert_int_equal(rec->calls, 1);
}

static redisContext *admin_connect(const char *password)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(redis_host(), mutt_test_env_int("REDIS_PORT", 0), tv);
    if (!rc || rc->err) {
        if (rc)
            redisFree(rc);
        return NULL;
    }
    if (password) {
        redisReply *rep = redisCommand(rc, "AUTH %s", password);
        bool ok = rep && rep->type != REDIS_REPLY_ERROR;
        if (rep)
            freeReplyObject(rep);
        if (!ok) {
            redisFree(rc);
            return NULL;
        }
    }
    return rc;
}

static bool admin_ok(redisContext *rc, const char *fmt, const char *arg)
{
    redisReply *rep = redisCommand(rc, fmt, arg);
    bool ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

static void sha1_hex(const char *s, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha1(), NULL), 1);
    for (unsigned i = 0; i < n && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* SCRIPT EXISTS through a separate client: what the server's script cache holds. */
static long long script_exists(const char *source)
{
    char sha[41];
    sha1_hex(source, sha);
    redisContext *admin = admin_connect(NULL);
    assert_non_null(admin);
    redisReply *rep = redisCommand(admin, "SCRIPT EXISTS %s", sha);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
    long long v = rep->element[0]->integer;
    freeReplyObject(rep);
    redisFree(admin);
    return v;
}

static void script_flush(void)
{
    redisContext *admin = admin_connect(NULL);
    assert_non_null(admin);
    assert_true(admin_ok(admin, "SCRIPT %s", "FLUSH"));
    redisFree(admin);
}

static void need_service_control(void)
{
    if (!mutt_test_env("STATE") || !mutt_test_env("ROOT"))
        MUTT_SKIP("no-harness", "stopping Redis needs the harness state dir");
}

/* ------------------------------------------------------------------------------ basics */

static void test_redis_connects_and_sets_then_gets(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    char k[128];
    key(f, "plain", k, sizeof(k));
    struct reply_rec rec;

    run_cmd(f, mutt_redis_cmd(f->r), &rec, 3, (const char *[]){"SET", k, "hello"});
    assert_int_equal(rec.status, 0);
    assert_int_equal(rec.type, REDIS_REPLY_STATUS);

    run_cmd(f, mutt_redis_cmd(f->r), &rec, 2, (const char *[]){"GET", k});
    assert_int_equal(rec.status, 0);
    assert_int_equal(rec.type, REDIS_REPLY_STRING);
    assert_int_equal(rec.len, 5);
    assert_memory_equal(rec.str, "hello", 5);
    assert_string_equal(f->cmd_state.seq, "U");
}

static void test_redis_command_argv_is_binary_safe(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    char k[128];
    key(f, "bin", k, sizeof(k));
    static const char value[] = {'a', '\0', 'b', '\r', '\n', '\0', 'c'};
    const char *argv[3] = {"SET", k, value};
    size_t lens[3] = {3, strlen(k), sizeof(value)};
    struct reply_rec rec = {0};
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &rec, 3, argv, lens), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &rec.calls, 1, 5000));
    assert_int_equal(rec.status, 0);

    run_cmd(f, mutt_redis_cmd(f->r), &rec, 2, (const char *[]){"STRLEN", k});
    assert_int_equal(rec.integer, (long long)sizeof(value));
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 2, (const char *[]){"GET", k});
    assert_int_equal(rec.len, sizeof(value));
    assert_memory_equal(rec.str, value, sizeof(value));
}

static void test_redis_error_reply_reports_eio_with_the_reply(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 1, (const char *[]){"NOSUCHCOMMAND"});
    assert_int_equal(rec.status, MUTT_EIO);
    assert_int_equal(rec.type, REDIS_REPLY_ERROR);
    assert_true(rec.len > 3 && memcmp(rec.str, "ERR", 3) == 0);
    /* the connection stays usable */
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 1, (const char *[]){"PING"});
    assert_int_equal(rec.status, 0);
}

static void test_redis_commandf_formats_binary_arguments(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    char k[128];
    key(f, "fmt", k, sizeof(k));
    struct reply_rec rec = {0};
    assert_int_equal(mutt_redis_commandf(mutt_redis_cmd(f->r), on_reply, &rec, "SET %s %b", k, "x\0y", (size_t)3), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &rec.calls, 1, 5000));
    assert_int_equal(rec.status, 0);
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 2, (const char *[]){"GET", k});
    assert_int_equal(rec.len, 3);
    assert_memory_equal(rec.str, "x\0y", 3);
}

static void test_redis_selects_the_configured_db(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    o.db = 3;
    start_connected(f, &o);
    char k[128];
    key(f, "db3", k, sizeof(k));
    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 3, (const char *[]){"SET", k, "in-db-3"});
    assert_int_equal(rec.status, 0);

    redisContext *admin = admin_connect(NULL);
    assert_non_null(admin);
    redisReply *rep = redisCommand(admin, "EXISTS %s", k); /* db 0 */
    assert_non_null(rep);
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    assert_true(admin_ok(admin, "SELECT %s", "3"));
    rep = redisCommand(admin, "GET %s", k);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_string_equal(rep->str, "in-db-3");
    freeReplyObject(rep);
    admin_ok(admin, "DEL %s", k);
    redisFree(admin);
}

static void test_redis_resolves_a_host_name_before_connecting(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    if (strcmp(o.host, "127.0.0.1") != 0)
        MUTT_SKIP("no-harness", "Redis not on 127.0.0.1: \"localhost\" only reaches a loopback server");
    o.host = "localhost";
    start_connected(f, &o);
    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 1, (const char *[]){"PING"});
    assert_int_equal(rec.status, 0);
    assert_memory_equal(rec.str, "PONG", 4);
}

/* ------------------------------------------------------------------------------ scripts */

#define ECHO_SCRIPT "return {KEYS[1], ARGV[1], #ARGV[1]}"

static void assert_echo_reply(struct fx *f, int script_id, const char *k)
{
    static const char arg[] = {'v', '\0', 'w'};
    const char *keys[1] = {k};
    size_t keylens[1] = {strlen(k)};
    const char *args[1] = {arg};
    size_t arglens[1] = {sizeof(arg)};
    struct reply_rec rec = {0};
    assert_int_equal(mutt_redis_evalsha(mutt_redis_cmd(f->r), script_id, 1, keys, keylens, 1, args, arglens,
                                        on_reply, &rec),
                     0);
    assert_true(mutt_test_run_until_count(&f->loop, &rec.calls, 1, 5000));
    assert_int_equal(rec.calls, 1);
    assert_int_equal(rec.status, 0);
    assert_int_equal(rec.type, REDIS_REPLY_ARRAY);
    assert_int_equal(rec.elements, 3);
}

static struct reply_rec g_echo_detail;

static void on_echo_detail(void *privdata, redisReply *reply, int status)
{
    struct reply_rec *rec = privdata;
    on_reply(privdata, reply, status);
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3) {
        /* element 1 is ARGV[1]: must arrive intact with its NUL; element 2 its length */
        rec->len = reply->element[1]->len;
        memcpy(rec->str, reply->element[1]->str, rec->len);
        rec->integer = reply->element[2]->integer;
    }
}

static void test_redis_evalsha_runs_a_registered_script(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    script_flush();
    assert_int_equal(script_exists(ECHO_SCRIPT), 0);
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    int id = mutt_redis_script_register(f->r, "echo", ECHO_SCRIPT);
    assert_true(id >= 0);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 1, 5000));
    /* SCRIPT LOADed in the handshake: cached before our first EVALSHA */
    assert_int_equal(script_exists(ECHO_SCRIPT), 1);

    char k[128];
    key(f, "script", k, sizeof(k));
    assert_echo_reply(f, id, k);

    static const char arg[] = {'v', '\0', 'w'};
    const char *keys[1] = {k};
    const char *args[1] = {arg};
    size_t keylens[1] = {strlen(k)};
    size_t arglens[1] = {sizeof(arg)};
    memset(&g_echo_detail, 0, sizeof(g_echo_detail));
    assert_int_equal(mutt_redis_evalsha(mutt_redis_cmd(f->r), id, 1, keys, keylens, 1, args, arglens,
                                        on_echo_detail, &g_echo_detail),
                     0);
    assert_true(mutt_test_run_until_count(&f->loop, &g_echo_detail.calls, 1, 5000));
    assert_int_equal(g_echo_detail.len, sizeof(arg));
    assert_memory_equal(g_echo_detail.str, arg, sizeof(arg));
    assert_int_equal(g_echo_detail.integer, 3);
}

static void test_redis_evalsha_recovers_from_noscript_after_script_flush(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    int id = mutt_redis_script_register(f->r, "echo", ECHO_SCRIPT);
    assert_true(id >= 0);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 1, 5000));

    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 2, (const char *[]){"SCRIPT", "FLUSH"});
    assert_int_equal(rec.status, 0);
    assert_int_equal(script_exists(ECHO_SCRIPT), 0);

    char k[128];
    key(f, "noscript", k, sizeof(k));
    assert_echo_reply(f, id, k); /* NOSCRIPT answered by EVAL: one callback, status 0 */

    /* and the script is cached again, so later EVALSHAs hit directly */
    assert_int_equal(script_exists(ECHO_SCRIPT), 1);
    assert_echo_reply(f, id, k);
}

static void test_redis_script_registered_after_connect_is_loaded(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    int id = mutt_redis_script_register(f->r, "late", "return 'late-' .. ARGV[1]");
    assert_true(id >= 0);
    const char *args[1] = {"x"};
    struct reply_rec rec = {0};
    assert_int_equal(mutt_redis_evalsha(mutt_redis_cmd(f->r), id, 0, NULL, NULL, 1, args, NULL, on_reply, &rec), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &rec.calls, 1, 5000));
    assert_int_equal(rec.status, 0);
    assert_int_equal(rec.len, 6);
    assert_memory_equal(rec.str, "late-x", 6);
}

/* ------------------------------------------------------------------------------ failure modes */

static void on_reply_must_not_run(void *privdata, redisReply *reply, int status)
{
    (void)privdata;
    (void)reply;
    (void)status;
    fail_msg("a command refused synchronously must never call back");
}

/* A port on loopback with nothing listening (bound, never listened: stays unused). */
static int closed_port(int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

static void test_redis_commands_fail_fast_while_disconnected(void **state)
{
    struct fx *f = fixture(state);
    int hold_fd;
    struct mutt_redis_opts o = base_opts();
    o.host = "127.0.0.1";
    o.port = closed_port(&hold_fd);
    o.reconnect_min_ms = 20;
    o.reconnect_max_ms = 40;
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    const char *argv[1] = {"PING"};

    /* before start */
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EDISCONNECTED);

    /* refused connects: reported down, retried, commands still refused at once */
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.downs, 1, 3000));
    mutt_test_run_for(&f->loop, 200); /* several refused retries */
    assert_int_equal(f->cmd_state.downs, 1); /* reported once, not per attempt */
    assert_int_equal(f->cmd_state.ups, 0);
    assert_false(mutt_redis_connected(f->r));
    uint64_t t0 = uv_hrtime();
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EDISCONNECTED);
    assert_int_equal(mutt_redis_commandf(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, "PING"),
                     MUTT_EDISCONNECTED);
    assert_true(uv_hrtime() - t0 < 5 * 1000000ull);
    mutt_test_run_for(&f->loop, 50);
    close(hold_fd);
}

static void test_redis_max_inflight_cap_returns_efull(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    o.max_inflight = 2;
    start_connected(f, &o);
    const char *argv[1] = {"PING"};
    struct reply_rec a = {0}, b = {0}, c = {0};
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &a, 1, argv, NULL), 0);
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &b, 1, argv, NULL), 0);
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EFULL);
    assert_int_equal(mutt_redis_commandf(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, "PING"), MUTT_EFULL);
    assert_true(mutt_test_run_until_count(&f->loop, &b.calls, 1, 5000));
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    /* answered commands free their slots */
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &c, 1, argv, NULL), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &c.calls, 1, 5000));
    assert_int_equal(c.status, 0);
}

/* Loopback "blackhole": a listener with backlog 0 whose accept queue we fill, so the kernel
 * drops later SYNs and a connect neither completes nor fails. */
struct blackhole {
    int listen_fd;
    int fill[4];
    int port;
};

static void blackhole_open(struct blackhole *bh)
{
    bh->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(bh->listen_fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(bh->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(bh->listen_fd, 0), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(bh->listen_fd, (struct sockaddr *)&a, &len), 0);
    bh->port = ntohs(a.sin_port);
    for (int i = 0; i < 4; i++) {
        bh->fill[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(bh->fill[i] >= 0);
        fcntl(bh->fill[i], F_SETFL, O_NONBLOCK);
        (void)connect(bh->fill[i], (struct sockaddr *)&a, sizeof(a)); /* EINPROGRESS expected */
    }
}

static void blackhole_close(struct blackhole *bh)
{
    for (int i = 0; i < 4; i++)
        close(bh->fill[i]);
    close(bh->listen_fd);
}

static void test_redis_connect_timeout_reports_down_without_hanging(void **state)
{
    struct fx *f = fixture(state);
    struct blackhole bh;
    blackhole_open(&bh);
    struct mutt_redis_opts o = base_opts();
    o.host = "127.0.0.1";
    o.port = bh.port;
    o.connect_timeout_ms = 300;
    o.reconnect_min_ms = 5000; /* one attempt inside this test */
    o.reconnect_max_ms = 5000;
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    uint64_t t0 = uv_hrtime() / 1000000;
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.downs, 1, 3000));
    uint64_t elapsed = uv_hrtime() / 1000000 - t0;
    /* down because the deadline fired (not an immediate refusal), and not much later */
    assert_true(elapsed >= 250);
    assert_true(elapsed < 1500);
    assert_int_equal(f->cmd_state.ups, 0);
    const char *argv[1] = {"PING"};
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EDISCONNECTED);
    /* stop while waiting to retry: teardown asserts the loop closes cleanly */
    mutt_redis_stop(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    blackhole_close(&bh);
}

static void test_redis_auth_falls_back_to_next_password(void **state)
{
    struct fx *f = fixture(state);
    redisContext *admin = admin_connect(NULL);
    assert_non_null(admin);
    assert_true(admin_ok(admin, "CONFIG SET requirepass %s", TEST_PASSWORD));
    redisFree(admin);

    struct mutt_redis_opts o = base_opts();
    o.pass_current = "wrong-current-pw";
    o.pass_next = TEST_PASSWORD;
    start_connected(f, &o); /* a fresh manager: AUTH runs in its handshake */
    char k[128];
    key(f, "auth", k, sizeof(k));
    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 3, (const char *[]){"SET", k, "authed"});
    assert_int_equal(rec.status, 0);
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 2, (const char *[]){"GET", k});
    assert_memory_equal(rec.str, "authed", 6);
    assert_string_equal(f->cmd_state.seq, "U");
    /* teardown_auth restores requirepass even when an assert above failed */
}

static void test_redis_auth_with_only_wrong_passwords_stays_down(void **state)
{
    struct fx *f = fixture(state);
    redisContext *admin = admin_connect(NULL);
    assert_non_null(admin);
    assert_true(admin_ok(admin, "CONFIG SET requirepass %s", TEST_PASSWORD));
    redisFree(admin);

    struct mutt_redis_opts o = base_opts();
    o.pass_current = "wrong-1";
    o.pass_next = "wrong-2";
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.downs, 1, 3000));
    mutt_test_run_for(&f->loop, 150);
    assert_int_equal(f->cmd_state.ups, 0); /* never "connected" without a successful AUTH */
    assert_false(mutt_redis_connected(f->r));
}

static int teardown_auth(void **state)
{
    if (*state) {
        redisContext *admin = admin_connect(TEST_PASSWORD);
        if (!admin)
            admin = admin_connect(NULL);
        if (admin) {
            admin_ok(admin, "CONFIG SET requirepass %s", "");
            redisFree(admin);
        }
    }
    return teardown(state);
}

/* ------------------------------------------------------------------------------ blocking + stop */

static void test_redis_blocking_command_on_dedicated_connection_does_not_delay_commands(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    struct state_log blk_state = {0};
    struct mutt_redis_conn *blk = mutt_redis_conn_open(f->r, "test-blocking");
    assert_non_null(blk);
    assert_int_equal(mutt_redis_conn_on_state(blk, on_state, &blk_state), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &blk_state.ups, 1, 5000));
    assert_true(mutt_redis_conn_connected(blk));

    char src[128], dst[128], other[128];
    key(f, "empty-src", src, sizeof(src));
    key(f, "dst", dst, sizeof(dst));
    key(f, "other", other, sizeof(other));
    struct reply_rec brpop = {0}, lpush = {0};
    const char *bargv[4] = {"BRPOPLPUSH", src, dst, "2"};
    assert_int_equal(mutt_redis_command(blk, on_reply, &brpop, 4, bargv, NULL), 0);
    mutt_test_run_for(&f->loop, 50); /* the server is now blocked on it */

    uint64_t t0 = uv_hrtime() / 1000000;
    const char *largv[3] = {"LPUSH", other, "x"};
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &lpush, 3, largv, NULL), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &lpush.calls, 1, 3000));
    assert_int_equal(lpush.status, 0);
    assert_true(lpush.at_ms - t0 < 500);
    assert_int_equal(brpop.calls, 0); /* still blocked: the LPUSH did not wait behind it */

    /* the blocking command times out on its own with a nil reply */
    assert_true(mutt_test_run_until_count(&f->loop, &brpop.calls, 1, 5000));
    assert_int_equal(brpop.status, 0);
    assert_int_equal(brpop.type, REDIS_REPLY_NIL);
    mutt_redis_conn_close(blk);
    mutt_test_run_for(&f->loop, 20);
}

static void test_redis_stop_cancels_pending_commands_and_closes_the_loop(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    struct state_log blk_state = {0};
    struct mutt_redis_conn *blk = mutt_redis_conn_open(f->r, "test-blocking");
    assert_non_null(blk);
    assert_int_equal(mutt_redis_conn_on_state(blk, on_state, &blk_state), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &blk_state.ups, 1, 5000));

    char src[128];
    key(f, "never", src, sizeof(src));
    struct reply_rec blocked = {0}, queued[3];
    memset(queued, 0, sizeof(queued));
    const char *bargv[3] = {"BLPOP", src, "30"};
    assert_int_equal(mutt_redis_command(blk, on_reply, &blocked, 3, bargv, NULL), 0);
    mutt_test_run_for(&f->loop, 50); /* on the wire, blocked in the server */
    const char *argv[1] = {"PING"};
    for (int i = 0; i < 3; i++) /* accepted, not yet sent (the loop has not run) */
        assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &queued[i], 1, argv, NULL), 0);

    mutt_redis_stop(f->r);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns: nothing left open */
    assert_int_equal(blocked.calls, 1);
    assert_int_equal(blocked.status, MUTT_ECANCELED);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(queued[i].calls, 1);
        assert_int_equal(queued[i].status, MUTT_ECANCELED);
    }
    /* after stop: refused synchronously, and the connections report down */
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EDISCONNECTED);
    assert_int_equal(mutt_redis_command(blk, on_reply_must_not_run, NULL, 1, argv, NULL), MUTT_EDISCONNECTED);
    assert_string_equal(f->cmd_state.seq, "UD");
    assert_string_equal(blk_state.seq, "UD");
    mutt_redis_destroy(f->r);
    f->r = NULL;
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0); /* teardown closes it again */
}

static void test_redis_destroy_before_the_loop_ran_is_deferred_safely(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    struct mutt_redis *r = mutt_redis_create(&f->loop, &o);
    assert_non_null(r);
    assert_non_null(mutt_redis_conn_open(r, "dedicated"));
    assert_int_equal(mutt_redis_start(r), 0);
    mutt_redis_destroy(r); /* connects in flight, timers closing: freed during uv_run */
    uv_run(&f->loop, UV_RUN_DEFAULT);
}

struct stop_from_cb {
    struct mutt_redis *r;
    struct reply_rec rec;
};

static void on_reply_then_stop(void *privdata, redisReply *reply, int status)
{
    struct stop_from_cb *s = privdata;
    on_reply(&s->rec, reply, status);
    mutt_redis_stop(s->r); /* inside hiredis's reply callback: the free must be deferred */
}

static void test_redis_stop_inside_a_reply_callback_cancels_the_rest_once(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    struct stop_from_cb first = {.r = f->r};
    struct reply_rec rest[3];
    memset(rest, 0, sizeof(rest));
    const char *argv[1] = {"PING"};
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_then_stop, &first, 1, argv, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &rest[i], 1, argv, NULL), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* ends once the stop closed everything */
    assert_int_equal(first.rec.calls, 1);
    assert_int_equal(first.rec.status, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rest[i].calls, 1);
        assert_int_equal(rest[i].status, MUTT_ECANCELED);
    }
    assert_string_equal(f->cmd_state.seq, "UD");
}

static void test_redis_unanswered_handshake_times_out_and_retries(void **state)
{
    struct fx *f = fixture(state);
    need_service_control();
    struct mutt_redis_opts o = base_opts();
    o.connect_timeout_ms = 300;
    o.reconnect_min_ms = 50;
    o.reconnect_max_ms = 100;
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    /* SCRIPT LOAD is part of the handshake; a paused server accepts the TCP connection but
     * answers nothing, so only the deadline can end the attempt */
    assert_true(mutt_redis_script_register(f->r, "one", "return 1") >= 0);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_test_service("pause-redis 900"), 0);
    uint64_t t0 = uv_hrtime() / 1000000;
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.downs, 1, 3000));
    assert_true(uv_hrtime() / 1000000 - t0 >= 250);
    assert_false(mutt_redis_connected(f->r)); /* TCP up is not "connected" */
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 1, 5000));
    assert_string_equal(f->cmd_state.seq, "DU");
    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 1, (const char *[]){"PING"});
    assert_int_equal(rec.status, 0);
}

/* ------------------------------------------------------------------------------ command timeout (D48) */

/* A stalled server (CLIENT PAUSE) answers nothing: after REDIS_COMMAND_TIMEOUT_MS the oldest
 * command's connection is dropped, every outstanding command is answered MUTT_EDISCONNECTED (in
 * doubt), nothing stays queued, and the connection comes back; once the server wakes, commands
 * work again. Without the timeout these commands would wait out the pause and succeed. */
static void test_redis_stalled_server_times_commands_out_and_reconnects(void **state)
{
    struct fx *f = fixture(state);
    need_service_control();
    struct mutt_redis_opts o = base_opts();
    o.command_timeout_ms = 300;
    start_connected(f, &o);
    struct mutt_redis_conn *c = mutt_redis_cmd(f->r);
    char k[128];
    key(f, "stalled", k, sizeof(k));
    assert_int_equal(mutt_test_service("pause-redis 2500"), 0);
    /* the commands below are sent from outside a loop callback, after a subprocess that may take
     * long on a loaded machine: refresh the loop's clock as a callback would see it */
    uv_update_time(&f->loop);
    uint64_t t0 = uv_hrtime() / 1000000;
    struct reply_rec rec[5];
    memset(rec, 0, sizeof(rec));
    const char *argv[3] = {"SET", k, "v"};
    for (int i = 0; i < 5; i++)
        assert_int_equal(mutt_redis_command(c, on_reply, &rec[i], 3, argv, NULL), 0);
    assert_int_equal(mutt_redis_conn_inflight(c), 5);
    assert_true(mutt_test_run_until_count(&f->loop, &rec[4].calls, 1, 5000));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rec[i].calls, 1);
        assert_int_equal(rec[i].status, MUTT_EDISCONNECTED);
        assert_true(rec[i].at_ms - t0 >= 250); /* not before the timeout */
    }
    assert_int_equal(mutt_redis_conn_inflight(c), 0); /* nothing kept for the stalled server */
    assert_true(f->cmd_state.downs >= 1);
    /* reconnects (the paused server still accepts TCP), and works once it wakes up */
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 2, 10000));
    bool ok = false;
    for (int attempt = 0; attempt < 50 && !ok; attempt++) {
        struct reply_rec r2;
        memset(&r2, 0, sizeof(r2));
        if (mutt_redis_command(c, on_reply, &r2, 3, argv, NULL) != 0) {
            mutt_test_run_for(&f->loop, 100);
            continue;
        }
        assert_true(mutt_test_run_until_count(&f->loop, &r2.calls, 1, 5000));
        ok = r2.status == 0;
    }
    assert_true(ok);
}

/* A blocking pop may wait its block time plus the timeout: BRPOPLPUSH with a 2 s block on an
 * empty list answers nil after 2 s, past the 1 s timeout, and the connection stays up. (The
 * margins are seconds so that a loaded machine's scheduling cannot eat them.) */
static void test_redis_blocking_pop_waits_its_block_time_plus_the_timeout(void **state)
{
    struct fx *f = fixture(state);
    struct mutt_redis_opts o = base_opts();
    o.command_timeout_ms = 1000;
    start_connected(f, &o);
    struct mutt_redis_conn *b = mutt_redis_conn_open(f->r, "redis-blocking-test");
    assert_non_null(b);
    struct state_log bs = {0};
    assert_int_equal(mutt_redis_conn_on_state(b, on_state, &bs), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &bs.ups, 1, 5000));
    char src[128], dst[128];
    key(f, "bsrc", src, sizeof(src));
    key(f, "bdst", dst, sizeof(dst));
    struct reply_rec rec;
    uv_update_time(&f->loop);
    uint64_t t0 = uv_now(&f->loop);
    run_cmd(f, b, &rec, 4, (const char *[]){"BRPOPLPUSH", src, dst, "2"});
    assert_int_equal(rec.status, 0);
    assert_int_equal(rec.type, REDIS_REPLY_NIL);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 1500); /* it outlived the plain 1 s timeout */
    assert_int_equal(bs.downs, 0);
    mutt_redis_conn_close(b);
}

/* ------------------------------------------------------------------------------ pub/sub */

struct sub_rec {
    int messages;
    char channel[128];
    char payload[128];
    size_t len;
};

static void on_message(void *privdata, const char *channel, const char *message, size_t len)
{
    struct sub_rec *s = privdata;
    s->messages++;
    snprintf(s->channel, sizeof(s->channel), "%s", channel);
    s->len = len < sizeof(s->payload) ? len : sizeof(s->payload);
    memcpy(s->payload, message, s->len);
}

static void publish(struct fx *f, const char *channel, const char *payload, size_t len, long long receivers)
{
    const char *argv[3] = {"PUBLISH", channel, payload};
    size_t lens[3] = {7, strlen(channel), len};
    struct reply_rec rec = {0};
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &rec, 3, argv, lens), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &rec.calls, 1, 5000));
    assert_int_equal(rec.status, 0);
    assert_int_equal(rec.integer, receivers);
}

static void subscribe_and_start(struct fx *f, const char *channel, struct sub_rec *sub, struct state_log *ps)
{
    struct mutt_redis_opts o = base_opts();
    f->r = mutt_redis_create(&f->loop, &o);
    assert_non_null(f->r);
    assert_null(mutt_redis_pubsub(f->r));
    assert_int_equal(mutt_redis_subscribe(f->r, channel, on_message, sub), 0);
    assert_non_null(mutt_redis_pubsub(f->r));
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_pubsub(f->r), on_state, ps), 0);
    assert_int_equal(mutt_redis_conn_on_state(mutt_redis_cmd(f->r), on_state, &f->cmd_state), 0);
    assert_int_equal(mutt_redis_start(f->r), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &ps->ups, 1, 5000));
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 1, 5000));
}

static void test_redis_pubsub_delivers_messages(void **state)
{
    struct fx *f = fixture(state);
    char ch[128], ch2[128];
    key(f, "chan", ch, sizeof(ch));
    key(f, "chan2", ch2, sizeof(ch2));
    struct sub_rec sub = {0}, sub2 = {0};
    struct state_log ps = {0};
    subscribe_and_start(f, ch, &sub, &ps);

    publish(f, ch, "p\0q", 3, 1);
    assert_true(mutt_test_run_until_count(&f->loop, &sub.messages, 1, 3000));
    assert_string_equal(sub.channel, ch);
    assert_int_equal(sub.len, 3);
    assert_memory_equal(sub.payload, "p\0q", 3);

    /* a subscription added while connected is live too; the first one does not see its traffic */
    assert_int_equal(mutt_redis_subscribe(f->r, ch2, on_message, &sub2), 0);
    struct reply_rec rec = {0};
    for (int i = 0; i < 50 && rec.integer != 1; i++) { /* wait until the server counts it */
        memset(&rec, 0, sizeof(rec));
        const char *argv[3] = {"PUBSUB", "NUMSUB", ch2};
        assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &rec, 3, argv, NULL), 0);
        assert_true(mutt_test_run_until_count(&f->loop, &rec.calls, 1, 3000));
    }
    publish(f, ch2, "two", 3, 1);
    assert_true(mutt_test_run_until_count(&f->loop, &sub2.messages, 1, 3000));
    assert_memory_equal(sub2.payload, "two", 3);
    assert_int_equal(sub.messages, 1);
    /* the pub/sub connection takes no commands */
    const char *argv[1] = {"PING"};
    assert_int_equal(mutt_redis_command(mutt_redis_pubsub(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EINVAL);
}

/* ------------------------------------------------------------------------------ restarts */

static void test_redis_reconnects_after_server_restart(void **state)
{
    struct fx *f = fixture(state);
    need_service_control();
    struct mutt_redis_opts o = base_opts();
    start_connected(f, &o);
    struct state_log blk_state = {0};
    struct mutt_redis_conn *blk = mutt_redis_conn_open(f->r, "test-blocking");
    assert_non_null(blk);
    assert_int_equal(mutt_redis_conn_on_state(blk, on_state, &blk_state), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &blk_state.ups, 1, 5000));

    char src[128];
    key(f, "restart-src", src, sizeof(src));
    struct reply_rec blocked = {0}, queued[3];
    memset(queued, 0, sizeof(queued));
    const char *bargv[3] = {"BLPOP", src, "30"};
    assert_int_equal(mutt_redis_command(blk, on_reply, &blocked, 3, bargv, NULL), 0);
    mutt_test_run_for(&f->loop, 50);
    const char *argv[1] = {"PING"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply, &queued[i], 1, argv, NULL), 0);

    assert_int_equal(mutt_test_service("stop-redis"), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.downs, 1, 5000));
    assert_true(mutt_test_run_until_count(&f->loop, &blk_state.downs, 1, 5000));
    /* every pending command answered exactly once, as disconnected */
    assert_int_equal(blocked.calls, 1);
    assert_int_equal(blocked.status, MUTT_EDISCONNECTED);
    int answered = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(queued[i].calls, 1);
        /* a PING may have been answered before the server went away; none may be lost */
        assert_true(queued[i].status == MUTT_EDISCONNECTED || queued[i].status == 0);
        answered += queued[i].status == 0;
    }
    (void)answered;
    /* while down: fail fast */
    assert_int_equal(mutt_redis_command(mutt_redis_cmd(f->r), on_reply_must_not_run, NULL, 1, argv, NULL),
                     MUTT_EDISCONNECTED);
    mutt_test_run_for(&f->loop, 300); /* a few refused reconnects */
    assert_int_equal(f->cmd_state.downs, 1);

    assert_int_equal(mutt_test_service("start-redis"), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 2, 10000));
    assert_true(mutt_test_run_until_count(&f->loop, &blk_state.ups, 2, 10000));
    assert_string_equal(f->cmd_state.seq, "UDU");
    assert_string_equal(blk_state.seq, "UDU");

    struct reply_rec rec;
    run_cmd(f, mutt_redis_cmd(f->r), &rec, 1, (const char *[]){"PING"});
    assert_int_equal(rec.status, 0);
    run_cmd(f, blk, &rec, 1, (const char *[]){"PING"});
    assert_int_equal(rec.status, 0);
    /* no late second callback for anything answered during the outage */
    mutt_test_run_for(&f->loop, 100);
    assert_int_equal(blocked.calls, 1);
    for (int i = 0; i < 3; i++)
        assert_int_equal(queued[i].calls, 1);
}

static void test_redis_pubsub_resubscribes_after_reconnect(void **state)
{
    struct fx *f = fixture(state);
    need_service_control();
    char ch[128];
    key(f, "rechan", ch, sizeof(ch));
    struct sub_rec sub = {0};
    struct state_log ps = {0};
    subscribe_and_start(f, ch, &sub, &ps);
    publish(f, ch, "before", 6, 1);
    assert_true(mutt_test_run_until_count(&f->loop, &sub.messages, 1, 3000));

    assert_int_equal(mutt_test_service("stop-redis"), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &ps.downs, 1, 5000));
    assert_int_equal(mutt_test_service("start-redis"), 0);
    assert_true(mutt_test_run_until_count(&f->loop, &ps.ups, 2, 10000));
    assert_true(mutt_test_run_until_count(&f->loop, &f->cmd_state.ups, 2, 10000));
    assert_string_equal(ps.seq, "UDU");

    publish(f, ch, "after", 5, 1); /* "up" means re-subscribed: the server counts one receiver */
    assert_true(mutt_test_run_until_count(&f->loop, &sub.messages, 2, 3000));
    assert_int_equal(sub.len, 5);
    assert_memory_equal(sub.payload, "after", 5);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2); main() ignores it too */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_connects_and_sets_then_gets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_command_argv_is_binary_safe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_error_reply_reports_eio_with_the_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_commandf_formats_binary_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_selects_the_configured_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_resolves_a_host_name_before_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_evalsha_runs_a_registered_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_evalsha_recovers_from_noscript_after_script_flush, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_script_registered_after_connect_is_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_commands_fail_fast_while_disconnected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_max_inflight_cap_returns_efull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_connect_timeout_reports_down_without_hanging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_auth_falls_back_to_next_password, setup, teardown_auth),
        cmocka_unit_test_setup_teardown(test_redis_auth_with_only_wrong_passwords_stays_down, setup, teardown_auth),
        cmocka_unit_test_setup_teardown(test_redis_blocking_command_on_dedicated_connection_does_not_delay_commands,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stop_cancels_pending_commands_and_closes_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_destroy_before_the_loop_ran_is_deferred_safely, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stop_inside_a_reply_callback_cancels_the_rest_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_unanswered_handshake_times_out_and_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stalled_server_times_commands_out_and_reconnects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_blocking_pop_waits_its_block_time_plus_the_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_pubsub_delivers_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_reconnects_after_server_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_pubsub_resubscribes_after_reconnect, setup, teardown),
    };
    return cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
