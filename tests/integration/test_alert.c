/* Integration tests of the alert stage (src/stages/alert*.c) in-process, against the harness's
 * real Redis and PostgreSQL (MUTT_TEST_REDIS_*, MUTT_TEST_PG_*; skipped without). One scratch
 * database with the schema (migrate.h) for the file; Redis is flushed and the rule tables
 * emptied before every test. The crash and outage drills live in tests/e2e/test_alert.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mutt/alert.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/keys.h"
#include "mutt/error.h"
#include "mutt/metrics.h"
#include "mutt/migrate.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "pgscratch.h"
#include "testenv.h"

static char g_db[96];
static bool g_have_db;
static uv_loop_t g_loop;
static struct mutt_ctx g_ctx;
static redisContext *g_rc; /* blocking client for setup and checks (test code only) */
static char g_conf_path[256];
static bool g_started; /* the stage runs: teardown stops it when a test failed half-way */
static char *g_required_env; /* "REQUIRED_FIELDS=..." for the next start_stage, or NULL */

/* ------------------------------------------------------------------------------ helpers */

static long long rint_cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(g_rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return v;
}

static void redis_do(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(g_rc, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

/* LINDEX key i as a malloc'd string ("" when none). */
static char *rindex_str(const char *key, long i)
{
    redisReply *r = redisCommand(g_rc, "LINDEX %s %ld", key, i);
    assert_non_null(r);
    char *s = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return s;
}

static void push_event(const char *host, const char *msg, const char *extra)
{
    char ev[1024];
    static int seq;
    snprintf(ev, sizeof ev,
             "{\"hostname\":\"%s\",\"message\":\"%s\",\"timestamp\":\"2025-11-25T10:00:00Z\","
             "\"_correlation_id\":\"it-%d\",\"_event_id\":\"00000000-0000-4000-8000-%012d\"%s%s}",
             host, msg, seq, seq, extra ? "," : "", extra ? extra : "");
    seq++;
    redis_do("LPUSH mutt:ingest_queue %s", ev);
}

/* Number of keys matching a KEYS pattern (test data only: a handful of keys). */
static long long count_keys(const char *pattern)
{
    redisReply *r = redisCommand(g_rc, "KEYS %s", pattern);
    assert_non_null(r);
    long long n = r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    freeReplyObject(r);
    return n;
}

static long long pg_count(const char *sql)
{
    char v[64];
    assert_int_equal(mutt_test_pg_value(g_db, sql, v, sizeof v), 0);
    return atoll(v);
}

/* Runs the loop until cond() holds (checked every 10 ms) or deadline_ms. */
typedef bool cond_fn(void);
struct waiter {
    cond_fn *cond;
    bool seen;
};
static void on_check(uv_timer_t *t)
{
    struct waiter *w = t->data;
    if (w->cond())
        w->seen = true;
}
static bool wait_for(cond_fn *cond, uint64_t deadline_ms)
{
    struct waiter w = {cond, cond()};
    uv_timer_t t;
    uv_timer_init(&g_loop, &t);
    t.data = &w;
    uv_timer_start(&t, on_check, 10, 10);
    mutt_test_run_until(&g_loop, &w.seen, deadline_ms);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&g_loop, UV_RUN_NOWAIT);
    return w.seen;
}

/* Every pushed item has its outcome: nothing queued, nothing in our processing list, and every
 * completion's reply seen (metrics counted). */
static bool ingest_empty(void)
{
    return rint_cmd("LLEN mutt:ingest_queue") == 0 && rint_cmd("LLEN mutt:processing:alerter:itest-alert") == 0 &&
           mutt_alert_busy() == 0;
}
static bool consuming(void)
{
    return mutt_alert_consuming();
}
static long long g_want_rows;
static bool rows_reached(void)
{
    return pg_count("SELECT count(*) FROM event_audit_log") >= g_want_rows;
}

static double metric(const char *series)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(mutt_metrics_render(g_ctx.metrics, &text, &len), 0);
    double v = -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        size_t n = strlen(series);
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            v = atof(line + n + 1);
    }
    free(text);
    return v;
}

/* ------------------------------------------------------------------------------ fixtures */

static int group_setup(void **state)
{
    (void)state;
    if (!mutt_test_have_services())
        return 0;
    if (mutt_test_pg_scratch_create("alert", g_db, sizeof g_db) != 0)
        return -1;
    g_have_db = true;
    struct mutt_pg_opts o;
    mutt_test_pg_opts(&o, g_db);
    char err[256];
    if (mutt_migrate_run(&o, err, sizeof err, NULL) != 0) {
        fprintf(stderr, "migrate: %s\n", err);
        return -1;
    }
    snprintf(g_conf_path, sizeof g_conf_path, "/tmp/mutt-test-alert-%d.conf", (int)getpid());
    FILE *f = fopen(g_conf_path, "w");
    if (!f)
        return -1;
    fprintf(f, "REDIS_HOST=%s\nREDIS_PORT=%s\nDB_HOST=%s\nDB_PORT=%s\nDB_NAME=%s\nDB_USER=%s\nDB_PASS_CURRENT=%s\n"
               "POD_NAME=itest-alert\nHEARTBEAT_INTERVAL=1\nHEARTBEAT_EXPIRY=3\nJANITOR_INTERVAL=1\nSHUTDOWN_TIMEOUT=4\n"
               "ALERTER_MAX_RETRIES=2\nLOG_LEVEL=ERROR\n",
            mutt_test_env("REDIS_HOST"), mutt_test_env("REDIS_PORT"), mutt_test_env("PG_HOST"),
            mutt_test_env("PG_PORT"), g_db, mutt_test_env("PG_USER"), mutt_test_env("PG_PASS"));
    fclose(f);
    g_rc = redisConnect(mutt_test_env("REDIS_HOST"), mutt_test_env_int("REDIS_PORT", 6379));
    return g_rc && !g_rc->err ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_rc)
        redisFree(g_rc);
    if (g_have_db)
        mutt_test_pg_scratch_drop(g_db);
    if (g_conf_path[0])
        unlink(g_conf_path);
    return 0;
}

/* Fresh Redis and rule tables, one rule (CRITICAL -> Page_and_ticket / dev Ignore), then the
 * services the stage borrows. Dynamic config given as "key=value" pairs is set before start. */
static void start_stage(const char *const *dyn_kv)
{
    redis_do("FLUSHALL");
    redis_do("SET mutt:config:alerter_queue_shed_threshold 100000");
    for (size_t i = 0; dyn_kv && dyn_kv[i]; i += 2)
        redis_do("SET mutt:config:%s %s", dyn_kv[i], dyn_kv[i + 1]);
    assert_int_equal(mutt_test_pg_exec(g_db, "TRUNCATE alert_rules, development_hosts, device_teams, event_audit_log "
                                             "RESTART IDENTITY;"
                                             "INSERT INTO alert_rules (match_string, match_type, priority, prod_handling,"
                                             " dev_handling, team_assignment) VALUES "
                                             "('CRITICAL', 'contains', 10, 'Page_and_ticket', 'Ignore', 'NETO');"
                                             "INSERT INTO development_hosts VALUES ('dev-1');"
                                             "INSERT INTO device_teams VALUES ('h-team', 'NetOps')"),
                     0);
    assert_int_equal(uv_loop_init(&g_loop), 0);
    memset(&g_ctx, 0, sizeof g_ctx);
    struct mutt_config_report rep = {0};
    char *envp[] = {g_required_env, NULL};
    g_ctx.cfg = mutt_config_load(g_conf_path, g_required_env ? envp : envp + 1, MUTT_ROLE_ALERT, &rep);
    assert_non_null(g_ctx.cfg);
    assert_int_equal(rep.n_errors, 0);
    mutt_config_report_free(&rep);
    g_ctx.loop = &g_loop;
    g_ctx.roles = MUTT_ROLE_ALERT;
    g_ctx.pod_name = "itest-alert";
    g_ctx.metrics = mutt_metrics_create();
    struct mutt_redis_opts ro = {.host = mutt_test_env("REDIS_HOST"), .port = mutt_test_env_int("REDIS_PORT", 6379),
                                 .connect_timeout_ms = 2000, .reconnect_min_ms = 50, .reconnect_max_ms = 500,
                                 .max_inflight = 10000};
    g_ctx.redis = mutt_redis_create(&g_loop, &ro);
    struct mutt_pg_opts po;
    mutt_test_pg_opts(&po, g_db);
    g_ctx.pg = mutt_pg_create(&g_loop, &po);
    g_ctx.dyn = mutt_dynconfig_create(&g_loop, g_ctx.redis, g_ctx.cfg);
    assert_non_null(g_ctx.redis);
    assert_non_null(g_ctx.pg);
    assert_non_null(g_ctx.dyn);
    mutt_redis_start(g_ctx.redis);
    mutt_pg_start(g_ctx.pg);
    mutt_dynconfig_start(g_ctx.dyn);
    assert_int_equal(mutt_alert_stage.start(&g_ctx), 0);
    g_started = true;
    assert_true(wait_for(consuming, 10000));
}

static bool g_stopped;
static void on_stage_done(struct mutt_ctx *ctx, void *priv)
{
    g_stopped = true;
}

static void stop_stage(void)
{
    if (!g_started)
        return;
    g_started = false;
    g_stopped = false;
    mutt_alert_stage.stop(&g_ctx, on_stage_done, NULL);
    assert_true(mutt_test_run_until(&g_loop, &g_stopped, 10000));
    mutt_redis_stop(g_ctx.redis);
    mutt_pg_stop(g_ctx.pg);
    mutt_dynconfig_destroy(g_ctx.dyn);
    assert_int_equal(mutt_test_loop_close(&g_loop), 0);
    mutt_redis_destroy(g_ctx.redis);
    mutt_pg_destroy(g_ctx.pg);
    mutt_metrics_destroy(g_ctx.metrics);
    mutt_config_destroy(g_ctx.cfg);
}

/* After a failed assertion the test body never reached its stop: do it here. */
static int teardown(void **state)
{
    (void)state;
    g_required_env = NULL;
    stop_stage();
    return 0;
}

#define NEED_SERVICES()                                                                                              \
    do {                                                                                                             \
        if (!mutt_test_have_services())                                                                              \
            MUTT_SKIP("no-harness", "harness services not set");                                                                                                  \
    } while (0)

/* ------------------------------------------------------------------------------ tests */

static void test_alert_handled_event_gives_one_alert_and_one_audit_row(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    push_event("h1", "CRITICAL fan failure", "\"api_key\":\"secret-from-python\",\"syslog_severity\":2");
    g_want_rows = 1;
    assert_true(wait_for(rows_reached, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 1);
    char *alert = rindex_str("mutt:alert_queue", 0);
    assert_non_null(strstr(alert, "\"hostname\":\"h1\",\"team_assignment\":\"NETO\",\"severity\":\"Critical\""));
    assert_non_null(strstr(alert, "\"handling_decision\":\"Page_and_ticket\",\"rule_id\":1,\"environment\":\"production\""));
    assert_null(strstr(alert, "api_key")); /* W33, D33 */
    free(alert);
    assert_int_equal(pg_count("SELECT count(*) FROM event_audit_log WHERE forwarded_to_moog AND matched_rule_id = 1"
                              " AND handling_decision = 'Page_and_ticket' AND hostname = 'h1' AND correlation_id = 'it-0'"
                              " AND raw_message NOT LIKE '%api_key%'"),
                     1);
    assert_int_equal(rint_cmd("LLEN mutt:processing:alerter:itest-alert"), 0);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"handled\"}") == 1);
    assert_true(metric("mutt_alerter_rules_match_seconds_count") == 1);
    stop_stage();
}

static void test_alert_dev_host_ignore_is_audited_but_not_forwarded(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    push_event("dev-1", "CRITICAL on a lab box", NULL);
    g_want_rows = 1;
    assert_true(wait_for(rows_reached, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 0);
    assert_int_equal(pg_count("SELECT count(*) FROM event_audit_log WHERE NOT forwarded_to_moog"
                              " AND handling_decision = 'Ignore'"),
                     1);
    stop_stage();
}

static void test_alert_unhandled_threshold_gives_one_meta_alert_per_window(void **state)
{
    NEED_SERVICES();
    const char *dyn[] = {"unhandled_threshold", "3", NULL};
    start_stage(dyn);
    for (int i = 0; i < 6; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "disk %d at 9%d percent", i, i); /* one template: digits masked */
        push_event("h-team", msg, NULL);
    }
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 1);
    char *meta = rindex_str("mutt:alert_queue", 0);
    assert_non_null(strstr(meta, "\"hostname\":\"MUTT_Alerter\",\"team_assignment\":\"NetOps\""));
    assert_non_null(strstr(meta, "\"signature\":\"mutt-unhandled:h-team\""));
    free(meta);
    assert_int_equal(pg_count("SELECT count(*) FROM event_audit_log"), 0); /* D12: matched only */
    assert_true(metric("mutt_alerter_events_processed_total{status=\"unhandled\"}") == 6);
    assert_true(metric("mutt_alerter_unhandled_meta_alerts_total") == 1);
    stop_stage();
}

/* Calls of one command since the last CONFIG RESETSTAT (Lua-inner commands included). */
static long long cmd_calls(const char *cmd)
{
    redisReply *r = redisCommand(g_rc, "INFO commandstats");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char needle[64];
    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
    const char *at = strstr(r->str, needle);
    long long n = at ? atoll(at + strlen(needle)) : 0;
    freeReplyObject(r);
    return n;
}

/* Issue 13: unmatched events popped together are counted in one script call per batch, grouped
 * by (hostname, template): per-template commands run once per group, not once per event, and
 * each template still raises exactly one meta-alert at the threshold. */
static void test_alert_unhandled_batch_is_counted_per_group_with_one_meta_alert_each(void **state)
{
    NEED_SERVICES();
    const char *dyn[] = {"unhandled_threshold", "5", NULL};
    start_stage(dyn);
    redis_do("CONFIG RESETSTAT");
    /* 30 events in one LPUSH: the stage takes them in at most a few pops */
    const char *argv[32];
    size_t lens[32];
    static char evs[30][512];
    argv[0] = "LPUSH";
    argv[1] = "mutt:ingest_queue";
    for (int i = 0; i < 30; i++) {
        snprintf(evs[i], sizeof evs[i],
                 "{\"hostname\":\"h-batch\",\"message\":\"%s %d\",\"timestamp\":\"2025-11-25T10:00:00Z\","
                 "\"_correlation_id\":\"ib-%d\",\"_event_id\":\"00000000-0000-4000-9000-%012d\"}",
                 i % 2 ? "fan speed low" : "link flap on port", i, i, i);
        argv[2 + i] = evs[i];
    }
    for (int i = 0; i < 32; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(g_rc, 32, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->integer, 30);
    freeReplyObject(r);
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 2); /* one meta-alert per template */
    assert_true(metric("mutt_alerter_unhandled_meta_alerts_total") == 2);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"unhandled\"}") == 30);
    assert_int_equal(rint_cmd("ZCARD mutt:unhandled:_top"), 2);
    /* two groups per counting call, a few calls at most: far fewer than one per event */
    long long z = cmd_calls("zincrby");
    assert_true(z >= 2 && z <= 8);
    assert_int_equal(cmd_calls("incr"), 0);
    /* each template's window counter stops at the event that crossed the threshold (later
     * events see the marker and are not counted), and it expires */
    redisReply *keys = redisCommand(g_rc, "KEYS mutt:unhandled:c:7:h-batch:*");
    assert_non_null(keys);
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    assert_int_equal(keys->elements, 2);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *v = redisCommand(g_rc, "GET %s", keys->element[i]->str);
        assert_int_equal(v->type, REDIS_REPLY_STRING);
        assert_string_equal(v->str, "5");
        freeReplyObject(v);
        v = redisCommand(g_rc, "TTL %s", keys->element[i]->str);
        assert_true(v->type == REDIS_REPLY_INTEGER && v->integer > 0);
        freeReplyObject(v);
    }
    freeReplyObject(keys);
    stop_stage();
}

/* Issue 11 bug 2 (D36): a sender named "_info:h-team" used to create a string at h-team's info
 * hash key, so h-team's counting failed ("unhandled counting refused by Redis"), its events went
 * to the DLQ and its meta-alert never fired. */
static void test_alert_unhandled_hostile_hostname_cannot_break_another_hosts_counting(void **state)
{
    NEED_SERVICES();
    const char *dyn[] = {"unhandled_threshold", "3", NULL};
    start_stage(dyn);
    push_event("_info:h-team", "disk 1 at 91 percent", NULL);
    push_event("h-team:triggered", "disk 1 at 91 percent", NULL);
    assert_true(wait_for(ingest_empty, 10000));
    for (int i = 0; i < 3; i++)
        push_event("h-team", "disk 2 at 92 percent", NULL);
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:dlq:alerter"), 0);
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 1);
    char *meta = rindex_str("mutt:alert_queue", 0);
    assert_non_null(strstr(meta, "\"signature\":\"mutt-unhandled:h-team\""));
    free(meta);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"unhandled\"}") == 5);
    /* every host's template is listed for the GET (top ZSET members have live info hashes) */
    assert_int_equal(rint_cmd("ZCARD mutt:unhandled:_top"), 3);
    assert_int_equal(count_keys("mutt:unhandled:i:*"), 3);
    stop_stage();
}

/* D62: unhandled_max_templates_per_host caps the distinct templates tracked per host per window;
 * an event of a further new template is still processed (unhandled) but not tracked, and counted
 * in mutt_unhandled_templates_capped_total. Templates already tracked keep counting; other hosts
 * are not affected. */
static void test_alert_unhandled_templates_per_host_are_capped_and_counted(void **state)
{
    NEED_SERVICES();
    const char *dyn[] = {"unhandled_threshold", "100", "unhandled_max_templates_per_host", "2", NULL};
    start_stage(dyn);
    push_event("h-cap", "alpha failed", NULL);
    push_event("h-cap", "bravo failed", NULL);
    push_event("h-cap", "charlie failed", NULL); /* third template: capped */
    push_event("h-cap", "delta failed", NULL);   /* fourth: capped */
    push_event("h-cap", "alpha failed", NULL);   /* tracked template: still counted */
    push_event("h-other", "charlie failed", NULL);
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:dlq:alerter"), 0);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"unhandled\"}") == 6);
    assert_true(metric("mutt_unhandled_templates_capped_total") == 2);
    assert_int_equal(rint_cmd("SCARD mutt:unhandled:h:5:h-cap"), 2);
    assert_true(rint_cmd("TTL mutt:unhandled:h:5:h-cap") > 0);
    assert_int_equal(rint_cmd("ZCARD mutt:unhandled:_top"), 3); /* alpha, bravo of h-cap; charlie of h-other */
    assert_int_equal(count_keys("mutt:unhandled:i:5:h-cap:*"), 2);
    stop_stage();
}

/* Issue 11 bug 3: the alert stage checks the configured REQUIRED_FIELDS (it had its own list). */
static void test_alert_uses_the_configured_required_fields(void **state)
{
    NEED_SERVICES();
    static char env[] = "REQUIRED_FIELDS=hostname,message,site";
    g_required_env = env;
    start_stage(NULL);
    g_required_env = NULL;
    push_event("h-req", "no site here", NULL);
    push_event("h-req", "with a site", "\"site\":\"dc2\"");
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:dlq:alerter"), 1);
    char *item = rindex_str("mutt:dlq:alerter", 0);
    assert_non_null(strstr(item, "missing or empty field: site"));
    assert_non_null(strstr(item, "no site here"));
    free(item);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"unhandled\"}") == 1);
    stop_stage();
}

/* ... and a field ingest does not require (here: timestamp) is not demanded either. */
static void test_alert_processes_an_event_without_a_timestamp_when_not_required(void **state)
{
    NEED_SERVICES();
    static char env[] = "REQUIRED_FIELDS=hostname,message";
    g_required_env = env;
    start_stage(NULL);
    g_required_env = NULL;
    redis_do("LPUSH mutt:ingest_queue %s", "{\"hostname\":\"h-nots\",\"message\":\"CRITICAL no time\","
                                           "\"_correlation_id\":\"it-nots\",\"_event_id\":\"00000000-0000-4000-8000-00000000abcd\"}");
    g_want_rows = 1;
    assert_true(wait_for(rows_reached, 10000));
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:dlq:alerter"), 0);
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 1);
    stop_stage();
}

static void test_alert_unparseable_item_goes_to_dlq_wrapped(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    redis_do("LPUSH mutt:ingest_queue %s", "{not json");
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:dlq:alerter"), 1);
    char *item = rindex_str("mutt:dlq:alerter", 0);
    assert_non_null(strstr(item, "{\"_raw\":\"{not json\",\"_dlq_reason\":\"invalid JSON"));
    assert_non_null(strstr(item, "\"_failed_at\":\""));
    assert_non_null(strstr(item, "\"_origin\":\"ingest\""));
    free(item);
    stop_stage();
}

static void test_alert_event_without_timestamp_goes_to_dlq_with_reason(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    redis_do("LPUSH mutt:ingest_queue %s", "{\"hostname\":\"h\",\"message\":\"CRITICAL\"}");
    assert_true(wait_for(ingest_empty, 10000));
    char *item = rindex_str("mutt:dlq:alerter", 0);
    assert_non_null(strstr(item, "\"_dlq_reason\":\"missing or empty field: timestamp\""));
    free(item);
    stop_stage();
}

static void test_alert_retry_count_over_max_goes_to_dlq_as_poison(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    push_event("h1", "CRITICAL again", "\"_retry_count\":3"); /* ALERTER_MAX_RETRIES=2 */
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 0);
    char *item = rindex_str("mutt:dlq:alerter", 0);
    assert_non_null(strstr(item, "\"_dlq_reason\":\"retries exhausted"));
    assert_non_null(strstr(item, "\"_retry_count\":3"));
    free(item);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"poison\"}") == 1);
    stop_stage();
}

/* A Redis refusal at completion (the alert queue is a string, WRONGTYPE) is a failed attempt:
 * the event goes back with _retry_count + 1 until ALERTER_MAX_RETRIES, then to the DLQ. */
static void test_alert_failed_attempts_are_retried_then_dead_lettered(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    redis_do("SET mutt:alert_queue not-a-list");
    push_event("h1", "CRITICAL retried", NULL);
    assert_true(wait_for(ingest_empty, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:dlq:alerter"), 1);
    char *item = rindex_str("mutt:dlq:alerter", 0);
    assert_non_null(strstr(item, "\"_retry_count\":3"));
    free(item);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"error\"}") == 3);
    assert_int_equal(pg_count("SELECT count(*) FROM event_audit_log"), 0); /* no half outcome */
    stop_stage();
}

static bool reload_failed(void)
{
    return metric("mutt_alerter_cache_reload_failures_total") >= 1;
}

static void test_alert_failed_reload_keeps_the_old_cache(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    assert_int_equal(mutt_test_pg_exec(g_db, "ALTER TABLE alert_rules RENAME TO alert_rules_away"), 0);
    redis_do("PUBLISH %s x", MUTT_KEY_RULES_CHANNEL);
    bool ok = wait_for(reload_failed, 5000);
    assert_int_equal(mutt_test_pg_exec(g_db, "ALTER TABLE alert_rules_away RENAME TO alert_rules"), 0);
    assert_true(ok);
    push_event("h1", "CRITICAL still matched", NULL);
    g_want_rows = 1;
    assert_true(wait_for(rows_reached, 10000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 1);
    stop_stage();
}

/* The stage acted on a depth of 5: /health says it defers or sheds. */
static bool depth_seen_5(void)
{
    char detail[256] = "";
    return metric("mutt_alerter_queue_depth") == 5 &&
           mutt_alert_stage.health(&g_ctx, detail, sizeof detail) == MUTT_HEALTH_DEGRADED &&
           (strstr(detail, "deferring") || strstr(detail, "shedding"));
}

static void test_alert_defer_mode_pauses_until_the_alert_queue_drains(void **state)
{
    NEED_SERVICES();
    const char *dyn[] = {"alerter_queue_shed_threshold", "3", "alerter_defer_sleep_ms", "20", NULL};
    start_stage(dyn);
    redis_do("LPUSH mutt:alert_queue a b c d e");
    assert_true(wait_for(depth_seen_5, 5000)); /* the depth check saw it (and acted) */
    push_event("h1", "CRITICAL deferred", NULL);
    mutt_test_run_for(&g_loop, 500);
    /* W17 defer: nothing is processed (a pop already in flight holds its item, unprocessed) */
    assert_int_equal(rint_cmd("LLEN mutt:ingest_queue") + rint_cmd("LLEN mutt:processing:alerter:itest-alert"), 1);
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 5);
    assert_true(metric("mutt_alerter_events_processed_total{status=\"handled\"}") == 0);
    assert_true(metric("mutt_alerter_shed_events_total{mode=\"defer\"}") >= 1);
    redis_do("DEL mutt:alert_queue");
    assert_true(wait_for(ingest_empty, 5000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 1);
    stop_stage();
}

static void test_alert_dlq_mode_sheds_through_the_processing_list(void **state)
{
    NEED_SERVICES();
    const char *dyn[] = {"alerter_queue_shed_threshold", "3", "alerter_shed_mode", "dlq", "alerter_defer_sleep_ms",
                         "20", NULL};
    start_stage(dyn);
    redis_do("LPUSH mutt:alert_queue a b c d e");
    assert_true(wait_for(depth_seen_5, 5000));
    push_event("h1", "CRITICAL shed", NULL);
    assert_true(wait_for(ingest_empty, 5000));
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 5);
    char *item = rindex_str("mutt:dlq:alerter", 0);
    assert_non_null(strstr(item, "\"shedding_reason\":\"queue_depth_exceeded:5>3\""));
    assert_non_null(strstr(item, "\"_origin\":\"ingest\""));
    free(item);
    stop_stage();
}

static void test_alert_stop_returns_nothing_lost_and_deletes_heartbeat(void **state)
{
    NEED_SERVICES();
    start_stage(NULL);
    for (int i = 0; i < 200; i++)
        push_event("h1", "CRITICAL burst", NULL);
    g_want_rows = 200;
    assert_true(wait_for(rows_reached, 15000));
    assert_int_equal(rint_cmd("EXISTS mutt:heartbeat:alerter:itest-alert"), 1);
    stop_stage();
    assert_int_equal(rint_cmd("EXISTS mutt:heartbeat:alerter:itest-alert"), 0);
    assert_int_equal(rint_cmd("LLEN mutt:alert_queue"), 200);
    assert_int_equal(pg_count("SELECT count(DISTINCT event_id) FROM event_audit_log"), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_alert_handled_event_gives_one_alert_and_one_audit_row, teardown),
        cmocka_unit_test_teardown(test_alert_dev_host_ignore_is_audited_but_not_forwarded, teardown),
        cmocka_unit_test_teardown(test_alert_unhandled_threshold_gives_one_meta_alert_per_window, teardown),
        cmocka_unit_test_teardown(test_alert_unhandled_batch_is_counted_per_group_with_one_meta_alert_each, teardown),
        cmocka_unit_test_teardown(test_alert_unhandled_hostile_hostname_cannot_break_another_hosts_counting,
                                  teardown),
        cmocka_unit_test_teardown(test_alert_unhandled_templates_per_host_are_capped_and_counted, teardown),
        cmocka_unit_test_teardown(test_alert_uses_the_configured_required_fields, teardown),
        cmocka_unit_test_teardown(test_alert_processes_an_event_without_a_timestamp_when_not_required, teardown),
        cmocka_unit_test_teardown(test_alert_unparseable_item_goes_to_dlq_wrapped, teardown),
        cmocka_unit_test_teardown(test_alert_event_without_timestamp_goes_to_dlq_with_reason, teardown),
        cmocka_unit_test_teardown(test_alert_retry_count_over_max_goes_to_dlq_as_poison, teardown),
        cmocka_unit_test_teardown(test_alert_failed_attempts_are_retried_then_dead_lettered, teardown),
        cmocka_unit_test_teardown(test_alert_failed_reload_keeps_the_old_cache, teardown),
        cmocka_unit_test_teardown(test_alert_defer_mode_pauses_until_the_alert_queue_drains, teardown),
        cmocka_unit_test_teardown(test_alert_dlq_mode_sheds_through_the_processing_list, teardown),
        cmocka_unit_test_teardown(test_alert_stop_returns_nothing_lost_and_deletes_heartbeat, teardown),
    };
    return cmocka_run_group_tests_name("alert", tests, group_setup, group_teardown);
}
