/* The running process: builds the adapters the enabled roles need, starts the HTTP front end,
 * acquires the pod identity, starts the stages, and orchestrates signals and the graceful drain
 * (SIGTERM: stop accepting, let stages finish in-flight work, release the pod key, close).
 * Everything here runs on the one loop. */
#define _GNU_SOURCE
#include "mutt/app.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <curl/curl.h>

#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/ctx.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/health.h"
#include "mutt/http.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/pg.h"
#include "mutt/pod.h"
#include "mutt/redis.h"
#include "mutt/sdnotify.h"
#include "mutt/secrets.h"
#include "mutt/slo_counters.h"
#include "mutt/stages.h"
#include "mutt/version.h"

/* Roles whose work needs PostgreSQL. */
static const unsigned PG_ROLES = MUTT_ROLE_ALERT | MUTT_ROLE_WEB | MUTT_ROLE_RETENTION;

enum app_phase { APP_STARTING, APP_RUNNING, APP_DRAINING, APP_CLOSING };

struct app {
    struct mutt_ctx ctx;
    enum app_phase phase;
    int exit_code;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t drain_timer;    /* polls for in-flight work to finish */
    uv_timer_t shutdown_timer; /* SHUTDOWN_TIMEOUT: force the exit */
    uv_timer_t ready_timer;    /* polls readiness until systemd READY is sent (D34) */
    bool ready_sent;
    const struct mutt_stage *running[16];
    size_t nrunning;
    size_t stages_stopping;
    bool pod_released;
    struct mutt_sdnotify_watchdog *watchdog; /* NULL unless systemd asked for WatchdogSec */
    struct mutt_secrets *secrets; /* Vault (or nothing without VAULT_ADDR) */
    bool pod_acquired, secrets_ready; /* the stages start once both hold */
    bool slo_stop_asked, slo_flushed; /* the last SLO flush goes out before Redis closes */
};

static void begin_close(struct app *a);

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* ------------------------------------------------------------------------------------------ */
/* shutdown                                                                                    */

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_pod_released(void *privdata)
{
    struct app *a = privdata;
    a->pod_released = true;
    begin_close(a);
}

static void on_slo_flushed(void *privdata, int status)
{
    struct app *a = privdata;
    (void)status; /* the counters logged a failure themselves */
    a->slo_flushed = true;
    begin_close(a);
}

/* Closing: the adapters close their handles and uv_run returns once they are gone. A client
 * connection that h2o has stopped reading (seen with TLS clients that gave up) never sees the
 * half-close of mutt_http_close, so h2o's context, and its async handle, stay alive and the
 * process would never exit after "stopped". Past this deadline the loop is stopped and
 * tear_down closes what is left, as it does for keep-alive connections. */
#define CLOSE_DEADLINE_MS 1000

static void on_close_deadline(uv_timer_t *t)
{
    mutt_log_warn("main", "handles still open %d ms after closing (an idle client connection): closing them",
                  CLOSE_DEADLINE_MS);
    uv_stop(t->loop);
}

/* Last step: everything that holds work has let go. Close adapters; uv_run then returns. */
static void begin_close(struct app *a)
{
    if (a->phase == APP_CLOSING)
        return;
    if (a->ctx.pod && !a->pod_released) {
        mutt_pod_release(a->ctx.pod, on_pod_released, a);
        return;
    }
    /* The stages are done: their last second of SLO counts is written while Redis is still
     * open (the flush waits at most MUTT_SLO_STOP_TIMEOUT_MS; its callback may run at once). */
    if (a->ctx.slo && !a->slo_flushed) {
        if (!a->slo_stop_asked) {
            a->slo_stop_asked = true;
            mutt_slo_counters_stop(a->ctx.slo, on_slo_flushed, a);
        }
        return;
    }
    a->phase = APP_CLOSING;
    mutt_sdnotify_watchdog_stop(a->watchdog);
    a->watchdog = NULL;
    uv_timer_stop(&a->drain_timer);
    uv_timer_stop(&a->ready_timer);
    /* unreferenced: it keeps nothing alive, it only fires when something else does */
    uv_timer_start(&a->shutdown_timer, on_close_deadline, CLOSE_DEADLINE_MS, 0);
    uv_unref((uv_handle_t *)&a->shutdown_timer);
    if (a->ctx.dyn)
        mutt_dynconfig_stop(a->ctx.dyn);
    mutt_secrets_stop(a->secrets);
    if (a->ctx.http)
        mutt_http_close(a->ctx.http);
    if (a->ctx.redis)
        mutt_redis_stop(a->ctx.redis);
    if (a->ctx.pg)
        mutt_pg_stop(a->ctx.pg);
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
    uv_close((uv_handle_t *)&a->sig_hup, NULL);
    mutt_log_info("main", "stopped");
}

static void maybe_finish_drain(struct app *a)
{
    if (a->phase != APP_DRAINING)
        return;
    if (a->stages_stopping > 0 || (a->ctx.http && mutt_http_inflight(a->ctx.http) > 0))
        return;
    begin_close(a);
}

static void on_stage_stopped(struct mutt_ctx *ctx, void *privdata)
{
    struct app *a = privdata;
    a->stages_stopping--;
    maybe_finish_drain(a);
}

static void on_drain_tick(uv_timer_t *t)
{
    maybe_finish_drain(t->data);
}

static void on_shutdown_timeout(uv_timer_t *t)
{
    struct app *a = t->data;
    mutt_log_warn("main", "SHUTDOWN_TIMEOUT passed with work in flight; closing anyway");
    a->stages_stopping = 0;
    a->pod_released = a->pod_released || a->ctx.pod == NULL;
    begin_close(a);
}

static void begin_drain(struct app *a, const char *why)
{
    if (a->phase == APP_DRAINING || a->phase == APP_CLOSING)
        return;
    mutt_log_info("main", "%s: draining (stop accepting, finish in-flight work)", why);
    a->phase = APP_DRAINING;
    a->ctx.stopping = true;
    uv_timer_stop(&a->ready_timer);
    mutt_sdnotify_stopping();
    if (a->ctx.http)
        mutt_http_stop_accepting(a->ctx.http);
    uint64_t timeout_s = (uint64_t)mutt_config_int(a->ctx.cfg, MUTT_CFG_SHUTDOWN_TIMEOUT);
    uv_timer_start(&a->shutdown_timer, on_shutdown_timeout, timeout_s * 1000u, 0);
    uv_timer_start(&a->drain_timer, on_drain_tick, 20, 20);
    a->stages_stopping = a->nrunning;
    for (size_t i = a->nrunning; i > 0; i--)
        a->running[i - 1]->stop(&a->ctx, on_stage_stopped, a);
    maybe_finish_drain(a);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct app *a = s->data;
    if (signum == SIGHUP) {
        struct mutt_config_report rep = {0};
        int rc = mutt_config_reload_safe(a->ctx.cfg, &rep);
        for (size_t i = 0; i < rep.n_errors; i++)
            mutt_log_error("config", "%s", rep.errors[i]);
        for (size_t i = 0; i < rep.n_warnings; i++)
            mutt_log_warn("config", "%s", rep.warnings[i]);
        mutt_config_report_free(&rep);
        if (rc == 0) {
            enum mutt_log_level lvl;
            enum mutt_log_format fmt;
            if (mutt_log_parse_level(mutt_config_str(a->ctx.cfg, MUTT_CFG_LOG_LEVEL), &lvl) == 0 &&
                mutt_log_parse_format(mutt_config_str(a->ctx.cfg, MUTT_CFG_LOG_FORMAT), &fmt) == 0)
                mutt_log_configure(fmt, lvl, a->ctx.pod_name);
            if (a->ctx.dyn)
                mutt_dynconfig_reload_fallbacks(a->ctx.dyn); /* file values feed dynamic fallbacks */
            for (size_t i = 0; i < a->nrunning; i++)
                if (a->running[i]->reload)
                    a->running[i]->reload(&a->ctx);
            mutt_log_info("main", "SIGHUP: configuration re-read");
        }
        return;
    }
    if (a->phase == APP_DRAINING) {
        mutt_log_warn("main", "second stop signal: closing now");
        a->stages_stopping = 0;
        begin_close(a);
        return;
    }
    begin_drain(a, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ------------------------------------------------------------------------------------------ */
/* start-up                                                                                    */

static void start_stages(struct app *a);

/* D34: systemd READY means what /health/ready's 200 means (no role starting or down), so it is
 * sent on the first check that finds the process ready, never earlier. A stage may still be
 * starting after its start() returned, and Redis may be away: poll until then. */
#define READY_POLL_MS 50
static void on_ready_tick(uv_timer_t *t);

static void check_ready(struct app *a)
{
    if (a->ready_sent || a->phase != APP_RUNNING)
        return;
    if (!mutt_health_ready(&a->ctx)) {
        if (!uv_is_active((uv_handle_t *)&a->ready_timer))
            uv_timer_start(&a->ready_timer, on_ready_tick, READY_POLL_MS, READY_POLL_MS);
        return;
    }
    a->ready_sent = true;
    uv_timer_stop(&a->ready_timer);
    mutt_log_info("main", "ready: every role accepts work");
    mutt_sdnotify_ready(); /* systemd Type=notify: every stage accepts work */
}

static void on_ready_tick(uv_timer_t *t)
{
    check_ready(t->data);
}

static void on_pod_acquired(void *privdata, enum mutt_pod_outcome outcome)
{
    struct app *a = privdata;
    if (outcome == MUTT_POD_CONFLICT) {
        a->exit_code = 2;
        a->pod_released = true; /* not ours: never delete it */
        begin_close(a);
        return;
    }
    a->pod_acquired = true;
    start_stages(a);
}

/* With VAULT_ADDR the stages need the first secret read (API keys, passwords); without it this
 * fires at once. */
static void on_secrets_ready(void *privdata, int status)
{
    struct app *a = privdata;
    if (status != 0)
        return; /* stopped before the first read: shutting down */
    a->secrets_ready = true;
    start_stages(a);
}

static void start_stages(struct app *a)
{
    if (a->phase != APP_STARTING || !a->pod_acquired || !a->secrets_ready)
        return;
    for (const struct mutt_stage *const *sp = mutt_stages; *sp; sp++) {
        const struct mutt_stage *st = *sp;
        if (!(a->ctx.roles & st->role))
            continue;
        int rc = st->start(&a->ctx);
        if (rc != 0) {
            mutt_log_error("main", "role %s failed to start: %s", st->name, mutt_strerror(rc));
            a->exit_code = 1;
            begin_drain(a, "start-up failure");
            return;
        }
        a->running[a->nrunning++] = st;
        a->ctx.roles_started |= st->role;
    }
    a->phase = APP_RUNNING;
    mutt_http_set_ready(a->ctx.http, true);
    char roles[128];
    mutt_log_info("main", "mutt %s running as pod %s with roles %s", MUTT_VERSION, a->ctx.pod_name,
                  mutt_roles_format(a->ctx.roles, roles, sizeof(roles)));
    check_ready(a);
}

static struct mutt_redis *make_redis(uv_loop_t *loop, const struct mutt_config *cfg)
{
    struct mutt_redis_opts o;
    mutt_redis_opts_from_config(cfg, &o);
    return mutt_redis_create(loop, &o);
}

static int make_http(struct app *a, char *err, size_t errlen)
{
    const struct mutt_config *cfg = a->ctx.cfg;
    unsigned roles = a->ctx.roles;
    bool reuse = mutt_config_bool(cfg, MUTT_CFG_INGEST_REUSEPORT);
    struct mutt_http_opts o = {
        .bind_addr = mutt_config_str(cfg, MUTT_CFG_BIND_ADDR),
        .max_body_bytes = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BODY_BYTES),
        .max_connections = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_CONNECTIONS),
        .request_timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_REQUEST_TIMEOUT_MS),
        .tls_cert_file = mutt_config_str(cfg, MUTT_CFG_TLS_CERT_FILE),
        .tls_key_file = mutt_config_str(cfg, MUTT_CFG_TLS_KEY_FILE),
        .server_name = "mutt",
    };
    if (roles & MUTT_ROLE_INGEST) {
        o.ports[0] = (int)mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT);
        o.reuseport[0] = reuse;
    }
    if (roles & MUTT_ROLE_WEB)
        o.ports[1] = (int)mutt_config_int(cfg, MUTT_CFG_WEBUI_PORT);
    /* CONTRACT §1: HEALTH_PORT when neither API listener is on; D11: every reuseport ingest
     * process also needs its own health port, since the shared port lands on any of them. */
    if (!(roles & (MUTT_ROLE_INGEST | MUTT_ROLE_WEB)) || (reuse && (roles & MUTT_ROLE_INGEST)))
        o.ports[2] = (int)mutt_config_int(cfg, MUTT_CFG_HEALTH_PORT);
    a->ctx.http = mutt_http_create(a->ctx.loop, &o, a->ctx.metrics, err, errlen);
    return a->ctx.http ? 0 : MUTT_EIO;
}

/* The adapters and services of ctx (metrics, Redis, PostgreSQL when a role needs it, SLO
 * counters, dynamic config, pod): 0, or 1 with what exists left for tear_down. */
static int create_services(struct app *a, const char *pod_name)
{
    uv_loop_t *loop = a->ctx.loop;
    const struct mutt_config *cfg = a->ctx.cfg;
    char roles_buf[128];
    mutt_roles_format(a->ctx.roles, roles_buf, sizeof(roles_buf));
    a->ctx.metrics = mutt_metrics_create();
    if (a->ctx.metrics == NULL)
        return 1;
    mutt_metrics_register_process(a->ctx.metrics, MUTT_VERSION, MUTT_GIT_REV, pod_name, roles_buf);
    a->ctx.redis = make_redis(loop, cfg);
    if (a->ctx.redis == NULL)
        return 1;
    if (a->ctx.roles & PG_ROLES) {
        struct mutt_pg_opts po;
        mutt_pg_opts_from_config(cfg, &po);
        a->ctx.pg = mutt_pg_create(loop, &po);
        if (a->ctx.pg == NULL)
            return 1;
    }
    a->ctx.slo = mutt_slo_counters_create(loop, a->ctx.redis, a->ctx.metrics, NULL);
    if (a->ctx.slo == NULL)
        return 1;
    a->ctx.dyn = mutt_dynconfig_create(loop, a->ctx.redis, cfg);
    a->ctx.pod = mutt_pod_create(loop, a->ctx.redis, pod_name,
                                 (uint64_t)mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_INTERVAL) * 1000u,
                                 (uint64_t)mutt_config_int(cfg, MUTT_CFG_HEARTBEAT_EXPIRY));
    if (a->ctx.dyn == NULL || a->ctx.pod == NULL)
        return 1;
    a->ctx.pod_name = mutt_pod_name(a->ctx.pod);
    return 0;
}

/* Listens, starts the adapters and the secrets provider: 0, or 1 with the reason logged. */
static int start_services(struct app *a)
{
    char err[512] = "";
    if (make_http(a, err, sizeof(err)) != 0 || mutt_health_register(&a->ctx) != 0) {
        mutt_log_error("main", "cannot set up HTTP: %s", err);
        return 1;
    }
    if (mutt_http_start(a->ctx.http, err, sizeof(err)) != 0) {
        mutt_log_error("main", "cannot listen: %s", err);
        return 1;
    }
    mutt_redis_start(a->ctx.redis);
    mutt_slo_counters_start(a->ctx.slo);
    if (a->ctx.pg)
        mutt_pg_start(a->ctx.pg);
    mutt_dynconfig_start(a->ctx.dyn);
    /* After the adapters exist (it updates their passwords), before the pod acquire. */
    a->secrets = mutt_secrets_create(a->ctx.loop, a->ctx.cfg, a->ctx.redis, a->ctx.pg);
    if (a->secrets == NULL || mutt_secrets_start(a->secrets, on_secrets_ready, a) != 0) {
        mutt_log_error("main", "cannot set up the secrets provider");
        return 1;
    }
    return 0;
}

/* The drain, shutdown and readiness timers and the SIGTERM/SIGINT/SIGHUP handlers. */
static void init_handles(struct app *a)
{
    uv_loop_t *loop = a->ctx.loop;
    uv_timer_init(loop, &a->drain_timer);
    a->drain_timer.data = a;
    uv_timer_init(loop, &a->shutdown_timer);
    a->shutdown_timer.data = a;
    uv_timer_init(loop, &a->ready_timer);
    a->ready_timer.data = a;
    uv_signal_init(loop, &a->sig_term);
    uv_signal_init(loop, &a->sig_int);
    uv_signal_init(loop, &a->sig_hup);
    a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
    uv_signal_start(&a->sig_term, on_signal, SIGTERM);
    uv_signal_start(&a->sig_int, on_signal, SIGINT);
    uv_signal_start(&a->sig_hup, on_signal, SIGHUP);
}

/* Stops and frees whatever create_services/start_services made, the loop and a. */
static void tear_down(struct app *a)
{
    uv_loop_t *loop = a->ctx.loop;
    /* Let close callbacks run, then close whatever is still open (keep-alive client
     * connections) so uv_loop_close can succeed. */
    if (a->ctx.http)
        mutt_http_close(a->ctx.http);
    if (a->ctx.dyn)
        mutt_dynconfig_destroy(a->ctx.dyn);
    mutt_secrets_destroy(a->secrets); /* freed by the loop runs below */
    if (a->ctx.pod)
        mutt_pod_destroy(a->ctx.pod);
    if (a->ctx.redis)
        mutt_redis_stop(a->ctx.redis);
    mutt_slo_counters_destroy(a->ctx.slo); /* after the Redis stop: no flush reply is left out */
    if (a->ctx.pg)
        mutt_pg_stop(a->ctx.pg);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, close_walk_cb, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    int lrc = uv_loop_close(loop);
    if (lrc != 0)
        mutt_log_warn("main", "loop closed with handles left: %s", uv_err_name(lrc));
    mutt_http_destroy(a->ctx.http);
    mutt_redis_destroy(a->ctx.redis);
    mutt_pg_destroy(a->ctx.pg);
    mutt_metrics_destroy(a->ctx.metrics);
    curl_global_cleanup();
    free(loop);
    free(a);
}

int mutt_app_run(struct mutt_config *cfg, const char *pod_name)
{
    struct app *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return 1;
    uv_loop_t *loop = malloc(sizeof(*loop));
    if (loop == NULL || uv_loop_init(loop) != 0) {
        free(loop);
        free(a);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2): a dead peer must not kill us */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    a->ctx.loop = loop;
    a->ctx.cfg = cfg;
    a->ctx.roles = mutt_config_roles(cfg);
    a->ctx.started_at_ms = wall_ms();
    a->phase = APP_STARTING;
    int rc = create_services(a, pod_name);
    if (rc == 0)
        rc = start_services(a);
    if (rc == 0) {
        init_handles(a);
        mutt_log_info("main", "listening: ingest=%d web=%d health=%d; waiting for Redis to claim pod %s",
                      mutt_http_port(a->ctx.http, 0), mutt_http_port(a->ctx.http, 1),
                      mutt_http_port(a->ctx.http, 2), pod_name);
        a->watchdog = mutt_sdnotify_watchdog_start(loop); /* pings while the loop turns */
        mutt_pod_acquire(a->ctx.pod, on_pod_acquired, a);
        uv_run(loop, UV_RUN_DEFAULT);
        rc = a->exit_code;
    }
    tear_down(a);
    return rc;
}
