/* `mutt relay` (src/cli_relay.c, D32): syslog lines → ingest events, and the batching/retry
 * behaviour against an HTTP server played by a forked child of this test (it records every
 * request and answers with a scripted status). The real ingest API end to end is covered by
 * tests/e2e/test_integrations.sh. Needs no harness service. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "mutt/cli_relay.h"
#include "mutt/config.h"

/* --------------------------------------------------------------------------- line → event */

static json_t *event_of(const char *line)
{
    char *s = mutt_relay_line_to_event(line, strlen(line), "relay-host", 1767225600000LL); /* 2026-01-01 */
    assert_non_null(s);
    assert_null(strchr(s, '\n'));
    json_t *o = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_object(o));
    return o;
}

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "(missing)";
}

static void test_relay_reads_an_rfc5424_line(void **state)
{
    json_t *o = event_of("<11>1 2026-03-04T05:06:07.123Z web01 nginx 42 ID7 [ex@1 a=\"x\\]y\"] upstream timed out");
    assert_string_equal("web01", str(o, "hostname"));
    assert_string_equal("nginx", str(o, "program"));
    assert_string_equal("2026-03-04T05:06:07.123Z", str(o, "timestamp"));
    assert_string_equal("upstream timed out", str(o, "message"));
    assert_int_equal(3, json_integer_value(json_object_get(o, "syslog_severity")));
    assert_int_equal(1, json_integer_value(json_object_get(o, "facility")));
    json_decref(o);
}

static void test_relay_reads_an_rfc3164_line_stamping_arrival_time(void **state)
{
    json_t *o = event_of("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8");
    assert_string_equal("mymachine", str(o, "hostname"));
    assert_string_equal("su", str(o, "program"));
    assert_string_equal("su[230]: 'su root' failed for lonvick on /dev/pts/8", str(o, "message"));
    assert_string_equal("Oct 11 22:14:15", str(o, "syslog_timestamp"));
    assert_string_equal("2026-01-01T00:00:00.000Z", str(o, "timestamp"));
    assert_int_equal(2, json_integer_value(json_object_get(o, "syslog_severity")));
    json_decref(o);
}

static void test_relay_passes_a_json_object_line_through(void **state)
{
    json_t *o = event_of("  {\"hostname\":\"sw1\",\"message\":\"link down\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"x\":[1,2]}");
    assert_string_equal("sw1", str(o, "hostname"));
    assert_string_equal("link down", str(o, "message"));
    assert_int_equal(2, json_array_size(json_object_get(o, "x")));
    assert_null(json_object_get(o, "program"));
    json_decref(o);
}

static void test_relay_wraps_a_plain_line_with_the_default_host(void **state)
{
    json_t *o = event_of("disk almost full\r");
    assert_string_equal("relay-host", str(o, "hostname"));
    assert_string_equal("disk almost full", str(o, "message"));
    assert_string_equal("2026-01-01T00:00:00.000Z", str(o, "timestamp"));
    assert_null(json_object_get(o, "syslog_severity"));
    json_decref(o);
    o = event_of("{not json");
    assert_string_equal("{not json", str(o, "message"));
    json_decref(o);
}

static void test_relay_keeps_a_line_with_invalid_utf8(void **state)
{
    json_t *o = event_of("bad \xff\xfe bytes");
    assert_string_equal("bad ?? bytes", str(o, "message"));
    json_decref(o);
}

/* A NUL byte would be written as \u0000, which ingest refuses, and with it the whole NDJSON batch
 * the line travels in: it is replaced like an invalid byte. (Found by tests/fuzz/fuzz_relay_line.) */
static void test_relay_replaces_nul_bytes_so_ingest_accepts_the_line(void **state)
{
    static const char line[] = "<13>1 - host\0x app - - - a\0b";
    char *s = mutt_relay_line_to_event(line, sizeof line - 1, "relay-host", 1767225600000LL);
    assert_non_null(s);
    json_t *o = json_loads(s, 0, NULL);
    assert_true(json_is_object(o));
    assert_string_equal("host?x", str(o, "hostname"));
    assert_string_equal("a?b", str(o, "message"));
    json_decref(o);
    free(s);
}

static void test_relay_skips_blank_lines(void **state)
{
    assert_null(mutt_relay_line_to_event("   \r", 4, "h", 0));
    assert_null(mutt_relay_line_to_event("", 0, "h", 0));
}

/* ------------------------------------------------------------------ scripted HTTP server */

struct server {
    pid_t pid;
    int port;
    char log[64]; /* one record per request: "<header-lines>\n\n<body>\n\x1e\n" */
};

/* Serves requests one per connection (Connection: close), answering statuses[i] to request i
 * (the last one repeats). A 200 body says every NDJSON line was accepted. */
static void serve(int lfd, const char *log, const int *statuses, int nstatuses)
{
    for (int i = 0;; i++) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            _exit(0);
        static char buf[1 << 20];
        size_t len = 0;
        char *hdr_end = NULL;
        while (hdr_end == NULL && len < sizeof(buf) - 1) {
            ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            hdr_end = strstr(buf, "\r\n\r\n");
        }
        if (hdr_end == NULL) {
            close(c);
            continue;
        }
        size_t want = 0;
        for (char *h = buf; h < hdr_end; h = strstr(h, "\r\n") + 2)
            if (strncasecmp(h, "Content-Length:", 15) == 0)
                want = strtoul(h + 15, NULL, 10);
        size_t head = (size_t)(hdr_end + 4 - buf);
        while (len < head + want) {
            ssize_t n = read(c, buf + len, sizeof(buf) - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
        int lines = 0;
        for (size_t k = head; k < len; k++)
            lines += buf[k] == '\n';
        FILE *f = fopen(log, "a");
        fwrite(buf, 1, len, f);
        fputs("\n\x1e\n", f);
        fclose(f);
        int st = statuses[i < nstatuses ? i : nstatuses - 1];
        char body[128], resp[512];
        if (st == 200)
            snprintf(body, sizeof(body), "{\"status\":\"accepted\",\"accepted\":%d}", lines);
        else
            snprintf(body, sizeof(body), "{\"status\":\"error\",\"message\":\"scripted %d\"}", st);
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         st, strlen(body), body);
        if (write(c, resp, (size_t)n) < 0)
            _exit(1);
        close(c);
    }
}

static void server_start(struct server *s, const int *statuses, int nstatuses)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(0, bind(lfd, (struct sockaddr *)&sa, sizeof(sa)));
    socklen_t sl = sizeof(sa);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    assert_int_equal(0, listen(lfd, 16));
    s->port = ntohs(sa.sin_port);
    snprintf(s->log, sizeof(s->log), "/tmp/mutt-relay-test.%d.log", (int)getpid());
    unlink(s->log);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0)
        serve(lfd, s->log, statuses, nstatuses);
    close(lfd);
}

/* Stops the server and returns its log (caller frees). */
static char *server_stop(struct server *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    FILE *f = fopen(s->log, "r");
    static char empty[] = "";
    if (f == NULL)
        return strdup(empty);
    char *out = calloc(1, 1 << 21);
    size_t n = fread(out, 1, (1 << 21) - 1, f);
    out[n] = '\0';
    fclose(f);
    unlink(s->log);
    return out;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static struct mutt_config *relay_config(void)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/mutt-relay-test.%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs("INGEST_API_KEY=relay-test-key-0123456789abcdef0123\nLOG_LEVEL=INFO\n", f);
    fclose(f);
    char *envp[] = {NULL};
    struct mutt_config_report rep = {0};
    struct mutt_config *cfg = mutt_config_load(path, envp, MUTT_ROLE_NONE, &rep);
    assert_int_equal(0, (int)rep.n_errors);
    mutt_config_report_free(&rep);
    unlink(path);
    return cfg;
}

/* Runs `mutt relay ARGS` with stdin = `input` (from a file, so EOF comes after the last line). */
static int run_relay(const char *input, const char *const *args)
{
    char path[64];
    snprintf(path, sizeof(path), "/tmp/mutt-relay-test.%d.in", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(input, f);
    fclose(f);
    int saved = dup(0);
    FILE *in = fopen(path, "r");
    dup2(fileno(in), 0);
    char *argv[16] = {"relay"};
    int argc = 1;
    for (const char *const *a = args; *a; a++)
        argv[argc++] = (char *)*a;
    struct mutt_config *cfg = relay_config();
    int rc = mutt_cli_relay(cfg, argc, argv);
    mutt_config_destroy(cfg);
    dup2(saved, 0);
    close(saved);
    fclose(in);
    unlink(path);
    return rc;
}

static const char *url_of(const struct server *s)
{
    static char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", s->port);
    return url;
}

static void test_relay_posts_lines_as_one_ndjson_batch_with_the_api_key(void **state)
{
    struct server s;
    const int ok[] = {200};
    server_start(&s, ok, 1);
    const char *args[] = {"--url", url_of(&s), "--batch", "10", NULL};
    int rc = run_relay("<13>1 2026-01-01T00:00:00Z h1 app - - - one\n"
                       "<13>Jan  1 00:00:00 h2 app: two\n"
                       "{\"hostname\":\"h3\",\"message\":\"three\",\"timestamp\":\"2026-01-01T00:00:00Z\"}\n"
                       "\n"
                       "four without newline",
                       args);
    char *log = server_stop(&s);
    assert_int_equal(0, rc);
    assert_int_equal(1, count_of(log, "\x1e"));
    assert_int_equal(1, count_of(log, "POST /ingest "));
    assert_int_equal(1, count_of(log, "X-API-KEY: relay-test-key-0123456789abcdef0123\r\n"));
    assert_int_equal(1, count_of(log, "Content-Type: application/x-ndjson\r\n"));
    assert_int_equal(1, count_of(log, "\"message\":\"one\""));
    assert_int_equal(1, count_of(log, "\"message\":\"app: two\""));
    assert_int_equal(1, count_of(log, "\"message\":\"three\""));
    assert_int_equal(1, count_of(log, "\"message\":\"four without newline\""));
    assert_int_equal(4, count_of(log, "\"hostname\":"));
    free(log);
}

static void test_relay_splits_input_into_batches_of_the_given_size(void **state)
{
    struct server s;
    const int ok[] = {200};
    server_start(&s, ok, 1);
    const char *args[] = {"--url", url_of(&s), "--batch", "2", NULL};
    int rc = run_relay("a\nb\nc\nd\ne\n", args);
    char *log = server_stop(&s);
    assert_int_equal(0, rc);
    assert_int_equal(3, count_of(log, "\x1e"));
    /* events per request, in order: 2, 2, 1 */
    int per[3] = {0};
    char *rec = log;
    for (int i = 0; i < 3; i++) {
        char *sep = strchr(rec, '\x1e');
        assert_non_null(sep);
        *sep = '\0';
        per[i] = count_of(rec, "\"message\":");
        rec = sep + 1;
    }
    assert_int_equal(2, per[0]);
    assert_int_equal(2, per[1]);
    assert_int_equal(1, per[2]);
    free(log);
}

static void test_relay_retries_a_batch_after_503_and_delivers_it(void **state)
{
    struct server s;
    const int script[] = {503, 200};
    server_start(&s, script, 2);
    const char *args[] = {"--url", url_of(&s), "--max-retries", "3", NULL};
    int rc = run_relay("kept through a 503\n", args);
    char *log = server_stop(&s);
    assert_int_equal(0, rc);
    assert_int_equal(2, count_of(log, "\"message\":\"kept through a 503\""));
    free(log);
}

static void test_relay_gives_up_after_max_retries_and_exits_1(void **state)
{
    struct server s;
    const int script[] = {503};
    server_start(&s, script, 1);
    const char *args[] = {"--url", url_of(&s), "--max-retries", "1", NULL};
    int rc = run_relay("never delivered\n", args);
    char *log = server_stop(&s);
    assert_int_equal(1, rc);
    assert_int_equal(2, count_of(log, "\x1e")); /* first attempt + one retry */
    free(log);
}

static void test_relay_stops_with_1_when_the_key_is_refused(void **state)
{
    struct server s;
    const int script[] = {401};
    server_start(&s, script, 1);
    const char *args[] = {"--url", url_of(&s), "--batch", "1", NULL};
    int rc = run_relay("x\ny\nz\n", args);
    char *log = server_stop(&s);
    assert_int_equal(1, rc);
    assert_int_equal(1, count_of(log, "\x1e")); /* no point posting the rest */
    free(log);
}

static void test_relay_drops_a_refused_batch_and_goes_on(void **state)
{
    struct server s;
    const int script[] = {400, 200};
    server_start(&s, script, 2);
    const char *args[] = {"--url", url_of(&s), "--batch", "1", NULL};
    int rc = run_relay("bad\ngood\n", args);
    char *log = server_stop(&s);
    assert_int_equal(1, rc);
    assert_int_equal(2, count_of(log, "\x1e"));
    assert_int_equal(1, count_of(log, "\"message\":\"good\""));
    free(log);
}

static void test_relay_posts_a_partial_batch_when_input_pauses(void **state)
{
    struct server s;
    const int ok[] = {200};
    server_start(&s, ok, 1);
    int pfd[2];
    assert_int_equal(0, pipe(pfd));
    pid_t writer = fork();
    if (writer == 0) {
        close(pfd[0]);
        if (write(pfd[1], "first\n", 6) != 6)
            _exit(1);
        usleep(800 * 1000); /* the pause under test: longer than --flush-ms */
        if (write(pfd[1], "second\n", 7) != 7)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    int saved = dup(0);
    dup2(pfd[0], 0);
    close(pfd[0]);
    char *argv[] = {"relay", "--url", (char *)url_of(&s), "--batch", "100", "--flush-ms", "100", NULL};
    struct mutt_config *cfg = relay_config();
    int rc = mutt_cli_relay(cfg, 7, argv);
    mutt_config_destroy(cfg);
    dup2(saved, 0);
    close(saved);
    waitpid(writer, NULL, 0);
    char *log = server_stop(&s);
    assert_int_equal(0, rc);
    assert_int_equal(2, count_of(log, "\x1e")); /* one POST per line, not one with both */
    free(log);
}

static void test_relay_refuses_unknown_options_with_2(void **state)
{
    const char *args[] = {"--bogus", NULL};
    assert_int_equal(2, run_relay("", args));
    const char *args2[] = {"--batch", "0", NULL};
    assert_int_equal(2, run_relay("", args2));
    /* the command-table entry point takes the options without the command name */
    char *opts[] = {"--batch", "0", NULL};
    struct mutt_config *cfg = relay_config();
    assert_int_equal(2, mutt_cli_relay_cmd(2, opts, cfg));
    char *help[] = {"--help", NULL};
    assert_int_equal(0, mutt_cli_relay_cmd(1, help, cfg));
    mutt_config_destroy(cfg);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_reads_an_rfc5424_line),
        cmocka_unit_test(test_relay_reads_an_rfc3164_line_stamping_arrival_time),
        cmocka_unit_test(test_relay_passes_a_json_object_line_through),
        cmocka_unit_test(test_relay_wraps_a_plain_line_with_the_default_host),
        cmocka_unit_test(test_relay_keeps_a_line_with_invalid_utf8),
        cmocka_unit_test(test_relay_replaces_nul_bytes_so_ingest_accepts_the_line),
        cmocka_unit_test(test_relay_skips_blank_lines),
        cmocka_unit_test(test_relay_posts_lines_as_one_ndjson_batch_with_the_api_key),
        cmocka_unit_test(test_relay_splits_input_into_batches_of_the_given_size),
        cmocka_unit_test(test_relay_retries_a_batch_after_503_and_delivers_it),
        cmocka_unit_test(test_relay_gives_up_after_max_retries_and_exits_1),
        cmocka_unit_test(test_relay_stops_with_1_when_the_key_is_refused),
        cmocka_unit_test(test_relay_drops_a_refused_batch_and_goes_on),
        cmocka_unit_test(test_relay_posts_a_partial_batch_when_input_pauses),
        cmocka_unit_test(test_relay_refuses_unknown_options_with_2),
    };
    return cmocka_run_group_tests_name("relay", tests, NULL, NULL);
}
