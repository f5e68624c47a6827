/* The remediate stage (role remediate, CONTRACT §6, D5): a pass every remediation_interval s.
 * A pass = recover our processing list (items a crash or a Redis failure left there go back to
 * their DLQ) -> destination health (breaker state key, else a GET of MOOG_HEALTH_URL) -> for each
 * DLQ, up to remediation_batch_size items one at a time: LMOVE DLQ -> processing list, rewrite in
 * C (mutt_replay_rewrite), one Lua call that LREMs the item and pushes the rewrite to its target
 * or to the dead-letter list. Several remediate pods can run at once: LMOVE hands each item to
 * exactly one of them. Loop thread only; one instance per process. */
#define _GNU_SOURCE
#include "mutt/remediate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#include "lineage_push.h"

#include "mutt/config.h"
#include "mutt/deadlists.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/keys.h"
#include "mutt/http_client.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/redis.h"
#include "mutt/queue_bytes.h"
#include "mutt/redis_scripts.h"
#include "mutt/replay.h"
#include "mutt/stage_life.h"

#define DISABLED_RECHECK_MS 1000u /* remediation_enabled=false: look again this often */

/* Returns everything in a processing list to the DLQ it came from (by _origin: alert -> moog DLQ,
 * anything else -> alerter DLQ), at the end consumed next, as it was taken. Our own list at each
 * pass; a dead pod's from the janitor (ARGV[1] 'janitor'), only while that pod's identity key
 * KEYS[4] is gone (deadlists.h). */
static const char recover_lua[] =
    "if ARGV[1] == 'janitor' and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end\n"
    "local n = 0\n"
    "while true do\n"
    "  local item = redis.call('RPOP', KEYS[1])\n"
    "  if not item then break end\n"
    "  local ok, o = pcall(cjson.decode, item)\n"
    "  local dest = KEYS[2]\n"
    "  if ok and type(o) == 'table' and o['_origin'] == 'alert' then dest = KEYS[3] end\n"
    "  redis.call('RPUSH', dest, item)\n"
    "  n = n + 1\n"
    "end\n"
    "return n\n";

enum pass_step { STEP_IDLE = 0, STEP_RECOVER, STEP_HEALTH, STEP_DEPTH, STEP_MOVE, STEP_FINISH, STEP_DEAD_DEPTH };

struct dlq_route {
    const char *dlq;      /* source DLQ */
    const char *target;   /* where replays go */
    const char *target_bytes; /* D52: the target's byte counter (ingest queue), NULL = none */
    const char *origin;   /* D5 _origin of its items */
    struct mutt_gauge *depth;
};

struct remediate {
    struct mutt_ctx *ctx;
    struct mutt_stage_life life; /* RUNNING from start; DRAINING; the stop's done */
    bool timers_open, recovered_at_stop;
    bool recovered_at_start;     /* the start-up recovery ran (also when remediation is off) */
    struct mutt_http_client *http;
    char *processing;            /* mutt:processing:remediate:<pod> */
    const char *dead;            /* DEAD_LETTER_QUEUE */
    char ingest_bytes_key[MUTT_QUEUE_BYTES_KEY_MAX]; /* D52: the ingest queue's byte counter */
    struct dlq_route routes[2];
    int script_finish, script_recover;
    char *auth;                  /* Authorization header for the health GET */
    struct mutt_deadlists *janitor; /* returns dead remediate pods' processing lists */

    /* the pass in progress */
    enum pass_step step;
    size_t route;                /* index into routes */
    int64_t moved;               /* items taken from the current DLQ in this pass */
    int64_t batch;
    uint64_t pass_start_ns;
    char *item;                  /* bytes as taken (LREM needs them exactly) */
    size_t item_len;
    char *rewritten;
    size_t rewritten_len;
    bool to_dead;
    bool healthy;                /* last health verdict */
    bool health_known;
    const char *health_why;
    uint64_t passes;
    size_t out;                  /* Redis calls / HTTP requests in flight */

    uv_timer_t pass_timer, reap_timer;

    struct mutt_counter *m_loops, *m_success, *m_poison, *m_fail_processing, *m_fail_redis;
    struct mutt_gauge *m_health, *m_dead_depth;
    struct mutt_histogram *m_duration;
};

static struct remediate g_rem;

static void step_next_item(struct remediate *rm);
static void pass_end(struct remediate *rm);
static void maybe_stopped(struct remediate *rm);

/* ------------------------------------------------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void clear_item(struct remediate *rm)
{
    free(rm->item);
    free(rm->rewritten);
    rm->item = rm->rewritten = NULL;
    rm->item_len = rm->rewritten_len = 0;
}

static void redis_failed(struct remediate *rm, const char *what, int status)
{
    mutt_counter_inc(rm->m_fail_redis);
    mutt_log_warn("remediate", "%s failed (%s): pass ended; an item taken stays in %s until the next pass",
                  what, mutt_strerror(status), rm->processing);
    pass_end(rm);
}

/* ---- per item ------------------------------------------------------------------------------ */

static void on_finish_reply(void *priv, redisReply *reply, int status)
{
    struct remediate *rm = priv;
    rm->out--;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_INTEGER) {
        redis_failed(rm, "replay push", status ? status : MUTT_EIO);
        return;
    }
    struct dlq_route *r = &rm->routes[rm->route];
    if (reply->integer == 1) {
        if (rm->to_dead) {
            mutt_counter_inc(rm->m_poison);
            mutt_log_warn("remediate", "poison item from %s to %s", r->dlq, rm->dead);
        } else {
            mutt_counter_inc(rm->m_success);
        }
    }
    /* 0: a recovery returned it to its DLQ meanwhile; nothing was pushed */
    clear_item(rm);
    step_next_item(rm);
}

static void process_item(struct remediate *rm)
{
    struct dlq_route *r = &rm->routes[rm->route];
    json_error_t jerr;
    json_t *o = json_loadb(rm->item, rm->item_len, 0, &jerr);
    int64_t max = mutt_dynconfig_int(rm->ctx->dyn, MUTT_DYN_MAX_POISON_RETRIES);
    enum mutt_replay_verdict v;
    if (!json_is_object(o)) {
        /* not even JSON: nothing can count its replays, so it is parked for a human */
        json_decref(o);
        o = json_object();
        json_t *raw = json_stringn(rm->item, rm->item_len);
        json_object_set_new(o, "_raw", raw ? raw : json_string("(not UTF-8)"));
        json_object_set_new(o, "_origin", json_string(r->origin));
        json_object_set_new(o, "_dead_reason", json_string("not a JSON object"));
        v = MUTT_REPLAY_DEAD;
    } else {
        v = mutt_replay_rewrite(o, r->origin, max);
    }
    int rc = mutt_event_dump_alloc(o, &rm->rewritten, &rm->rewritten_len);
    struct mutt_lineage_args lin;
    const json_t *why = json_object_get(o, "_dead_reason");
    bool has_lin = rc == 0 && mutt_lineage_args_make(mutt_config_bool(rm->ctx->cfg, MUTT_CFG_LINEAGE_ENABLED),
                                                     mutt_config_int(rm->ctx->cfg, MUTT_CFG_LINEAGE_TTL_SECONDS), o, v == MUTT_REPLAY_DEAD ? MUTT_LINEAGE_DEAD : MUTT_LINEAGE_REPLAY,
                                                     json_pack("{s:s, s:s, s:s, s:s*}", "from", r->dlq, "to",
                                                               v == MUTT_REPLAY_DEAD ? rm->dead : r->target, "by",
                                                               "remediate", "reason", json_string_value(why)),
                                                     wall_ms(), &lin);
    json_decref(o);
    if (rc != 0) {
        mutt_counter_inc(rm->m_fail_processing);
        mutt_log_warn("remediate", "cannot rewrite an item of %s (%s): it stays in %s until the next pass", r->dlq,
                      mutt_strerror(rc), rm->processing);
        pass_end(rm);
        return;
    }
    rm->to_dead = v == MUTT_REPLAY_DEAD;
    rm->step = STEP_FINISH;
    const char *keys[] = {rm->processing, rm->to_dead ? rm->dead : r->target, r->target_bytes};
    const char *args[7] = {rm->item, rm->rewritten, MUTT_SCRIPT_DLQ_MOVE_LREM};
    size_t arglens[7] = {rm->item_len, rm->rewritten_len, strlen(MUTT_SCRIPT_DLQ_MOVE_LREM)};
    for (int i = 0; has_lin && i < 4; i++) { /* D63: the step goes in the move itself */
        args[3 + i] = lin.argv[i];
        arglens[3 + i] = lin.argl[i];
    }
    int nkeys = !rm->to_dead && r->target_bytes ? 3 : 2;
    rc = mutt_redis_evalsha(mutt_redis_cmd(rm->ctx->redis), rm->script_finish, nkeys, keys, NULL, has_lin ? 7 : 3,
                            args, arglens, on_finish_reply, rm);
    if (has_lin)
        mutt_lineage_args_free(&lin);
    if (rc != 0) {
        redis_failed(rm, "replay push", rc);
        return;
    }
    rm->out++;
}

static void on_move_reply(void *priv, redisReply *reply, int status)
{
    struct remediate *rm = priv;
    rm->out--;
    if (status != 0 || !reply) {
        redis_failed(rm, "LMOVE", status ? status : MUTT_EIO);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) { /* nil: this DLQ is empty */
        rm->route++;
        rm->moved = 0;
        step_next_item(rm);
        return;
    }
    rm->item = malloc(reply->len + 1);
    if (!rm->item) {
        mutt_counter_inc(rm->m_fail_processing);
        pass_end(rm);
        return;
    }
    memcpy(rm->item, reply->str, reply->len);
    rm->item[reply->len] = '\0';
    rm->item_len = reply->len;
    rm->moved++;
    process_item(rm);
}

static void on_depth_reply(void *priv, redisReply *reply, int status);

/* Next item of the current DLQ, or the next DLQ, or the end of the pass. */
static void step_next_item(struct remediate *rm)
{
    if (mutt_stage_life_draining(&rm->life)) {
        pass_end(rm);
        return;
    }
    if (rm->route >= 2) {
        rm->step = STEP_DEAD_DEPTH;
        if (mutt_redis_commandf(mutt_redis_cmd(rm->ctx->redis), on_depth_reply, rm, "LLEN %s", rm->dead) == 0)
            rm->out++;
        else
            pass_end(rm);
        return;
    }
    struct dlq_route *r = &rm->routes[rm->route];
    if (rm->moved >= rm->batch) {
        rm->route++;
        rm->moved = 0;
        step_next_item(rm);
        return;
    }
    rm->step = STEP_MOVE;
    /* oldest first: DLQs are LPUSHed, so the oldest item is at the right */
    int rc = mutt_redis_commandf(mutt_redis_cmd(rm->ctx->redis), on_move_reply, rm, "LMOVE %s %s RIGHT LEFT", r->dlq,
                                 rm->processing);
    if (rc != 0) {
        redis_failed(rm, "LMOVE", rc);
        return;
    }
    rm->out++;
}

/* ---- pass ---------------------------------------------------------------------------------- */

static void on_depth_reply(void *priv, redisReply *reply, int status)
{
    struct remediate *rm = priv;
    rm->out--;
    bool ok = status == 0 && reply && reply->type == REDIS_REPLY_INTEGER;
    if (rm->step == STEP_DEAD_DEPTH) {
        if (ok)
            mutt_gauge_set(rm->m_dead_depth, (double)reply->integer);
        pass_end(rm);
        return;
    }
    /* STEP_DEPTH: both DLQ depths were asked; the last reply starts the moves */
    if (ok)
        mutt_gauge_set(rm->routes[rm->route].depth, (double)reply->integer);
    rm->route++;
    if (rm->route < 2)
        return;
    rm->route = 0;
    rm->moved = 0;
    if (!rm->healthy) {
        pass_end(rm);
        return;
    }
    step_next_item(rm);
}

static void ask_depths(struct remediate *rm)
{
    rm->step = STEP_DEPTH;
    rm->route = 0;
    for (size_t i = 0; i < 2; i++) {
        if (mutt_redis_commandf(mutt_redis_cmd(rm->ctx->redis), on_depth_reply, rm, "LLEN %s", rm->routes[i].dlq) !=
            0) {
            /* replies for the ones sent still come back; count this one as answered */
            redisReply none = {.type = REDIS_REPLY_NIL};
            rm->out++;
            on_depth_reply(rm, &none, MUTT_EDISCONNECTED);
            continue;
        }
        rm->out++;
    }
}

static void set_health(struct remediate *rm, bool healthy, const char *why)
{
    if (rm->health_known && healthy != rm->healthy)
        mutt_log_info("remediate", "destination %s (%s)", healthy ? "healthy: replaying DLQs" : "unhealthy: replay paused",
                      why);
    rm->healthy = healthy;
    rm->health_known = true;
    rm->health_why = why;
    mutt_gauge_set(rm->m_health, healthy ? 1 : 0);
}

static void on_health_get(void *priv, const struct mutt_http_result *res)
{
    struct remediate *rm = priv;
    rm->out--;
    if (res->status == MUTT_ECANCELED) {
        pass_end(rm);
        return;
    }
    bool ok = res->curl_code == 0 && res->http_status >= 200 && res->http_status <= 299;
    set_health(rm, ok, ok ? "MOOG_HEALTH_URL answered 2xx" : "breaker not CLOSED and MOOG_HEALTH_URL check failed");
    ask_depths(rm);
}

static void check_health_url(struct remediate *rm)
{
    const struct mutt_config *cfg = rm->ctx->cfg;
    const char *url = mutt_config_str(cfg, MUTT_CFG_MOOG_HEALTH_URL);
    if (!url[0] || !mutt_config_bool(cfg, MUTT_CFG_MOOG_HEALTH_CHECK_ENABLED)) {
        set_health(rm, false, "breaker not CLOSED and no MOOG_HEALTH_URL to ask");
        ask_depths(rm);
        return;
    }
    const char *key = mutt_config_str(cfg, MUTT_CFG_MOOG_API_KEY);
    free(rm->auth);
    rm->auth = NULL;
    const char *headers[1];
    size_t nh = 0;
    if (key[0] && asprintf(&rm->auth, "Authorization: Bearer %s", key) >= 0)
        headers[nh++] = rm->auth;
    else
        rm->auth = NULL;
    struct mutt_http_request req = {
        .method = "GET",
        .url = url,
        .headers = headers,
        .nheaders = nh,
        .timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_MOOG_HEALTH_TIMEOUT) * 1000u,
        .ca_file = mutt_config_str(cfg, MUTT_CFG_MOOG_CA_CERT)[0] ? mutt_config_str(cfg, MUTT_CFG_MOOG_CA_CERT) : NULL,
    };
    rm->step = STEP_HEALTH;
    if (mutt_http_client_request(rm->http, &req, on_health_get, rm) != 0) {
        set_health(rm, false, "MOOG_HEALTH_URL request could not start");
        ask_depths(rm);
        return;
    }
    rm->out++;
}

static void on_breaker_state(void *priv, redisReply *reply, int status)
{
    struct remediate *rm = priv;
    rm->out--;
    if (status != 0 || !reply) {
        redis_failed(rm, "breaker state read", status ? status : MUTT_EIO);
        return;
    }
    if (mutt_stage_life_draining(&rm->life)) {
        pass_end(rm);
        return;
    }
    /* a missing key is CLOSED (also when the breaker is disabled: nothing ever writes it) */
    if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, "CLOSED") == 0) {
        set_health(rm, true, "circuit breaker CLOSED");
        ask_depths(rm);
        return;
    }
    check_health_url(rm);
}

static void on_recover_reply(void *priv, redisReply *reply, int status)
{
    struct remediate *rm = priv;
    rm->out--;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_INTEGER) {
        redis_failed(rm, "recovering the processing list", status ? status : MUTT_EIO);
        return;
    }
    if (reply->integer > 0)
        mutt_log_info("remediate", "returned %lld item(s) left in %s to their DLQ", reply->integer, rm->processing);
    rm->recovered_at_start = true;
    if (mutt_stage_life_draining(&rm->life) || !mutt_dynconfig_bool(rm->ctx->dyn, MUTT_DYN_REMEDIATION_ENABLED)) {
        if (mutt_stage_life_draining(&rm->life))
            rm->recovered_at_stop = true;
        pass_end(rm);
        return;
    }
    rm->step = STEP_HEALTH;
    if (mutt_redis_commandf(mutt_redis_cmd(rm->ctx->redis), on_breaker_state, rm, "GET %s",
                            MUTT_KEY_BREAKER_STATE) != 0) {
        redis_failed(rm, "breaker state read", MUTT_EDISCONNECTED);
        return;
    }
    rm->out++;
}

static int send_recover(struct remediate *rm)
{
    const char *keys[] = {rm->processing, rm->routes[0].dlq, rm->routes[1].dlq};
    int rc = mutt_redis_evalsha(mutt_redis_cmd(rm->ctx->redis), rm->script_recover, 3, keys, NULL, 0, NULL, NULL,
                                on_recover_reply, rm);
    if (rc == 0)
        rm->out++;
    return rc;
}

static void on_pass_timer(uv_timer_t *t);

static void pass_end(struct remediate *rm)
{
    if (rm->out > 0)
        return; /* the last reply ends it */
    clear_item(rm);
    if (rm->step != STEP_IDLE) {
        rm->passes++;
        mutt_histogram_observe(rm->m_duration, (double)(uv_hrtime() - rm->pass_start_ns) / 1e9);
    }
    rm->step = STEP_IDLE;
    if (mutt_stage_life_draining(&rm->life)) {
        maybe_stopped(rm);
        return;
    }
    uint64_t ms = (uint64_t)mutt_dynconfig_int(rm->ctx->dyn, MUTT_DYN_REMEDIATION_INTERVAL) * 1000u;
    if (!mutt_dynconfig_bool(rm->ctx->dyn, MUTT_DYN_REMEDIATION_ENABLED))
        ms = DISABLED_RECHECK_MS;
    if (rm->timers_open)
        uv_timer_start(&rm->pass_timer, on_pass_timer, ms ? ms : 1000, 0);
}

static void on_pass_timer(uv_timer_t *t)
{
    struct remediate *rm = t->data;
    if (mutt_stage_life_draining(&rm->life) || rm->step != STEP_IDLE)
        return;
    bool enabled = mutt_dynconfig_bool(rm->ctx->dyn, MUTT_DYN_REMEDIATION_ENABLED);
    if (!enabled && rm->recovered_at_start) {
        uv_timer_start(&rm->pass_timer, on_pass_timer, DISABLED_RECHECK_MS, 0);
        return;
    }
    /* disabled but just started: only return what a crashed predecessor left in our list */
    if (enabled)
        mutt_counter_inc(rm->m_loops);
    rm->pass_start_ns = uv_hrtime();
    rm->batch = mutt_dynconfig_int(rm->ctx->dyn, MUTT_DYN_REMEDIATION_BATCH_SIZE);
    rm->step = STEP_RECOVER;
    int rc = send_recover(rm);
    if (rc != 0)
        redis_failed(rm, "recovering the processing list", rc);
}

static void on_interval_changed(void *priv, const char *key, const char *old_value, const char *new_value)
{
    struct remediate *rm = priv;
    /* a shorter interval (or switching it on) takes effect now, not after the old wait */
    if (mutt_stage_life_live(&rm->life) && rm->step == STEP_IDLE && rm->timers_open)
        uv_timer_start(&rm->pass_timer, on_pass_timer,
                       (uint64_t)mutt_dynconfig_int(rm->ctx->dyn, MUTT_DYN_REMEDIATION_INTERVAL) * 1000u, 0);
}

/* ---- stage ----------------------------------------------------------------------------------- */

static int register_metrics(struct remediate *rm, struct mutt_metrics *m)
{
    static const char *const dlq_l[] = {"dlq_name", NULL};
    static const char *const reason_l[] = {"reason", NULL};
    rm->m_loops = mutt_metrics_counter(m, "mutt_remediation_loops_total", "Remediation passes run.", NULL);
    rm->m_success = mutt_metrics_counter(m, "mutt_remediation_replay_success_total",
                                         "DLQ items replayed to their queue.", NULL);
    struct mutt_counter *fail = mutt_metrics_counter(m, "mutt_remediation_replay_fail_total",
                                                     "Replays that failed (processing_error, redis_error).", reason_l);
    rm->m_poison = mutt_metrics_counter(m, "mutt_remediation_poison_messages_total",
                                        "Items moved to the dead-letter list after max_poison_retries replays.", NULL);
    struct mutt_gauge *depth = mutt_metrics_gauge(m, "mutt_remediation_dlq_depth", "DLQ length seen by the last pass.",
                                                  dlq_l);
    rm->m_health = mutt_metrics_gauge(m, "mutt_remediation_moog_health",
                                      "1 when the last pass found the destination healthy.", NULL);
    rm->m_duration = mutt_metrics_histogram(m, "mutt_remediation_loop_duration_seconds", "Remediation pass time.",
                                            NULL, mutt_metrics_default_buckets,
                                            MUTT_METRICS_NBUCKETS(mutt_metrics_default_buckets));
    if (!rm->m_loops || !rm->m_success || !fail || !rm->m_poison || !depth || !rm->m_health || !rm->m_duration)
        return MUTT_ENOMEM;
    const char *p[] = {"processing_error"}, *r[] = {"redis_error"};
    rm->m_fail_processing = mutt_counter_labels(fail, p);
    rm->m_fail_redis = mutt_counter_labels(fail, r);
    for (size_t i = 0; i < 2; i++) {
        const char *v[] = {rm->routes[i].dlq};
        rm->routes[i].depth = mutt_gauge_labels(depth, v);
    }
    const char *d[] = {rm->dead};
    rm->m_dead_depth = mutt_gauge_labels(depth, d);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

/* dead pods' lists hold items of both DLQs: the script routes each by its _origin */
static int janitor_keys(void *priv, const char *tail, const char **keys)
{
    struct remediate *rm = priv;
    (void)tail;
    keys[0] = rm->routes[0].dlq;
    keys[1] = rm->routes[1].dlq;
    return 2;
}

static void release_all(struct remediate *rm)
{
    mutt_deadlists_stop(rm->janitor);
    rm->janitor = NULL;
    mutt_http_client_destroy(rm->http);
    rm->http = NULL;
    free(rm->processing);
    rm->processing = NULL;
    free(rm->auth);
    rm->auth = NULL;
    clear_item(rm);
    if (rm->timers_open) {
        rm->timers_open = false;
        uv_close((uv_handle_t *)&rm->pass_timer, on_timer_closed);
        uv_close((uv_handle_t *)&rm->reap_timer, on_timer_closed);
    }
}

static void on_reap(uv_timer_t *t)
{
    struct remediate *rm = t->data;
    release_all(rm);
    mutt_log_info("remediate", "stopped");
    mutt_stage_life_finish(&rm->life);
}

static void maybe_stopped(struct remediate *rm)
{
    /* out: Redis calls, and a pass that has not come back to idle */
    if (!mutt_stage_life_drained(&rm->life, rm->out + (rm->step != STEP_IDLE ? 1 : 0)))
        return;
    /* an item a cancelled pass left in our list goes back to its DLQ now, not at our next start */
    if (!rm->recovered_at_stop) {
        rm->recovered_at_stop = true;
        rm->step = STEP_RECOVER;
        if (send_recover(rm) == 0)
            return;
        rm->step = STEP_IDLE;
    }
    if (!uv_is_active((uv_handle_t *)&rm->reap_timer))
        uv_timer_start(&rm->reap_timer, on_reap, 0, 0);
}

static int remediate_start(struct mutt_ctx *ctx)
{
    struct remediate *rm = &g_rem;
    if (mutt_stage_life_started(&rm->life))
        return MUTT_ESTATE;
    const struct mutt_config *cfg = ctx->cfg;
    memset(rm, 0, sizeof *rm);
    rm->ctx = ctx;
    mutt_stage_life_init(&rm->life, "remediate", ctx);
    rm->dead = mutt_config_str(cfg, MUTT_CFG_DEAD_LETTER_QUEUE);
    rm->routes[0] = (struct dlq_route){.dlq = mutt_config_str(cfg, MUTT_CFG_ALERTER_DLQ_NAME),
                                       .target = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME),
                                       .target_bytes = rm->ingest_bytes_key,
                                       .origin = MUTT_REPLAY_ORIGIN_INGEST};
    if (mutt_queue_bytes_key(rm->routes[0].target, rm->ingest_bytes_key, sizeof rm->ingest_bytes_key) != 0)
        return MUTT_EINVAL;
    rm->routes[1] = (struct dlq_route){.dlq = mutt_config_str(cfg, MUTT_CFG_MOOG_DLQ_NAME),
                                       .target = mutt_config_str(cfg, MUTT_CFG_ALERT_QUEUE_NAME),
                                       .origin = MUTT_REPLAY_ORIGIN_ALERT};
    int rc = register_metrics(rm, ctx->metrics);
    if (rc != 0)
        return rc;
    /* one Lua call moves a rewritten item out of the processing list (D5): the push happens only
     * when the LREM removed it, so a concurrent recovery cannot turn it into two items */
    rm->script_finish = mutt_redis_script_register(ctx->redis, "remediate_finish", mutt_script_dlq_move_lua);
    rm->script_recover = mutt_redis_script_register(ctx->redis, "remediate_recover", recover_lua);
    if (rm->script_finish < 0 || rm->script_recover < 0)
        return MUTT_ENOMEM;
    if (asprintf(&rm->processing, "%s:%s", MUTT_KEY_REMEDIATE_PROCESSING_PREFIX, ctx->pod_name) < 0) {
        rm->processing = NULL;
        return MUTT_ENOMEM;
    }
    rm->http = mutt_http_client_create(ctx->loop, 1);
    if (!rm->http) {
        release_all(rm);
        return MUTT_ENOMEM;
    }
    uv_timer_init(ctx->loop, &rm->pass_timer);
    uv_timer_init(ctx->loop, &rm->reap_timer);
    rm->pass_timer.data = rm->reap_timer.data = rm;
    rm->timers_open = true;
    if (ctx->dyn && ((rc = mutt_dynconfig_watch(ctx->dyn, MUTT_DYN_REMEDIATION_INTERVAL, on_interval_changed, rm)) != 0 ||
                     (rc = mutt_dynconfig_watch(ctx->dyn, MUTT_DYN_REMEDIATION_ENABLED, on_interval_changed, rm)) != 0)) {
        mutt_dynconfig_unwatch(ctx->dyn, on_interval_changed, rm);
        release_all(rm);
        return rc;
    }
    struct mutt_deadlists_opts jo = {
        .name = "remediate",
        .list_prefix = MUTT_KEY_REMEDIATE_PROCESSING_PREFIX,
        .has_tail = false,
        .own_pod = ctx->pod_name,
        .script = rm->script_recover,
        .interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_JANITOR_INTERVAL) * 1000u,
        .keys_cb = janitor_keys,
        .priv = rm,
    };
    rm->janitor = mutt_deadlists_start(ctx->loop, ctx->redis, &jo);
    if (!rm->janitor) {
        if (ctx->dyn)
            mutt_dynconfig_unwatch(ctx->dyn, on_interval_changed, rm);
        release_all(rm);
        return MUTT_ENOMEM;
    }
    mutt_stage_life_set_state(&rm->life, MUTT_STAGE_RUNNING); /* its work is timer-driven: nothing to wait for */
    /* the first pass at once: it also returns what a crashed predecessor left in our list */
    uv_timer_start(&rm->pass_timer, on_pass_timer, 0, 0);
    mutt_log_info("remediate", "replaying %s -> %s and %s -> %s every %lld s (poison after %lld replays -> %s)",
                  rm->routes[0].dlq, rm->routes[0].target, rm->routes[1].dlq, rm->routes[1].target,
                  (long long)mutt_dynconfig_int(ctx->dyn, MUTT_DYN_REMEDIATION_INTERVAL),
                  (long long)mutt_dynconfig_int(ctx->dyn, MUTT_DYN_MAX_POISON_RETRIES), rm->dead);
    return 0;
}

static void remediate_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct remediate *rm = &g_rem;
    if (!mutt_stage_life_begin_stop(&rm->life, done, privdata))
        return; /* never started: done already ran */
    if (ctx->dyn)
        mutt_dynconfig_unwatch(ctx->dyn, on_interval_changed, rm);
    uv_timer_stop(&rm->pass_timer);
    mutt_deadlists_stop(rm->janitor);
    rm->janitor = NULL;
    mutt_http_client_stop(rm->http); /* a health GET in flight ends the pass (ECANCELED) */
    maybe_stopped(rm);
}

static enum mutt_role_health remediate_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    struct remediate *rm = &g_rem;
    if (!mutt_stage_life_started(&rm->life))
        return MUTT_HEALTH_DOWN;
    if (rm->health_known && !rm->healthy) {
        snprintf(detail, detail_len, "replay paused, destination unhealthy (%s)", rm->health_why);
        return MUTT_HEALTH_DEGRADED;
    }
    return MUTT_HEALTH_OK;
}

const struct mutt_stage mutt_remediate_stage = {
    .name = "remediate",
    .role = MUTT_ROLE_REMEDIATE,
    .start = remediate_start,
    .stop = remediate_stop,
    .health = remediate_health,
    .reload = NULL,
};

uint64_t mutt_remediate_passes(void)
{
    return mutt_stage_life_started(&g_rem.life) ? g_rem.passes : 0;
}
