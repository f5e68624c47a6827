/* The shared circuit breaker as the forward stage sees it (CONTRACT §5, W15; reference §3.10).
 * The state lives in Redis (mutt:circuit_breaker:moogsoft:{state,failures,open_time,probe}) and
 * changes only inside the breaker Lua script (mutt_breaker_lua), so every pod sees one breaker
 * and exactly one pod probes in HALF_OPEN. This file keeps a local view (refreshed by every
 * script reply and a 1 s poll) so a CLOSED breaker costs no Redis call per alert; while it is not
 * CLOSED relq is paused and alerts wait in the queue, nothing is attempted and nothing counted.
 * Probing: when the open timeout has passed, the pod takes one alert (from its waiting list, or
 * pops one), asks the script, and sends it only on PROBE. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "forward_internal.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/forward.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/redis.h"
#include "mutt/timefmt.h"

#define PROBE_RECHECK_MS 1000u  /* HALF_OPEN held by another pod / script failed: look again */
#define PROBE_TTL_SLACK_MS 5000 /* probe lock = request timeout + this */

static const char *const state_names[] = {"CLOSED", "OPEN", "HALF_OPEN"};

static void on_probe_timer(uv_timer_t *t);

int fwd_breaker_init(struct forward *fw)
{
    fw->bkeys[0] = MUTT_FORWARD_BREAKER_PREFIX ":state";
    fw->bkeys[1] = MUTT_FORWARD_BREAKER_PREFIX ":failures";
    fw->bkeys[2] = MUTT_FORWARD_BREAKER_PREFIX ":open_time";
    fw->bkeys[3] = MUTT_FORWARD_BREAKER_PREFIX ":probe";
    fw->bmode = MUTT_BREAKER_CLOSED;
    fw->probe_state = FWD_PROBE_NONE;
    fw->script_breaker = mutt_redis_script_register(fw->ctx->redis, "moog_breaker", mutt_breaker_lua);
    return fw->script_breaker < 0 ? fw->script_breaker : 0;
}

int fwd_breaker_register_metrics(struct forward *fw, struct mutt_metrics *m)
{
    static const char *const name_l[] = {"name", NULL};
    static const char *const change_l[] = {"name", "from_state", "to_state", NULL};
    struct mutt_gauge *state = mutt_metrics_gauge(m, "mutt_circuit_breaker_state",
                                                  "Webhook circuit breaker: 0 CLOSED, 1 HALF_OPEN, 2 OPEN.", name_l);
    struct mutt_gauge *failures = mutt_metrics_gauge(m, "mutt_circuit_breaker_failures",
                                                     "Consecutive webhook failures counted by the breaker.", name_l);
    fw->m_bchanges = mutt_metrics_counter(m, "mutt_circuit_breaker_state_changes_total",
                                          "Breaker transitions seen by this pod.", change_l);
    if (!state || !failures || !fw->m_bchanges)
        return MUTT_ENOMEM;
    const char *v[] = {MUTT_FORWARD_BREAKER_NAME};
    fw->m_bstate = mutt_gauge_labels(state, v);
    fw->m_bfailures = mutt_gauge_labels(failures, v);
    return 0;
}

bool fwd_breaker_holds(const struct forward *fw)
{
    return fw->breaker_enabled && (!fw->bknown || fw->bmode != MUTT_BREAKER_CLOSED);
}

static int64_t open_timeout_ms(const struct forward *fw)
{
    return mutt_dynconfig_int(fw->ctx->dyn, "circuit_breaker_timeout") * 1000;
}

static int64_t probe_ttl_ms(const struct forward *fw)
{
    return (int64_t)fw->timeout_ms + PROBE_TTL_SLACK_MS;
}

/* Arms the probe timer for when the open timeout ends (OPEN), or for a fresh look (HALF_OPEN:
 * another pod's probe is out, or the pod that took it died and its lock must expire). */
static void arm_probe(struct forward *fw)
{
    if (!fw->timers_open || fw->stopping || fw->probe_state != FWD_PROBE_NONE || !fwd_breaker_holds(fw) ||
        !fw->bknown)
        return;
    int64_t delay = PROBE_RECHECK_MS;
    if (fw->bmode == MUTT_BREAKER_OPEN) {
        delay = fw->bopen_ms + open_timeout_ms(fw) - fwd_wall_ms();
        if (delay < 10)
            delay = 10;
    }
    uv_timer_start(&fw->probe_timer, on_probe_timer, (uint64_t)delay, 0);
}

/* The one writer of the view: logs and counts each transition this pod sees (curl mstate). */
static void apply_view(struct forward *fw, enum mutt_breaker_mode mode, int64_t failures, int64_t open_ms)
{
    bool first = !fw->bknown;
    enum mutt_breaker_mode old = fw->bmode;
    fw->bknown = true;
    fw->bmode = mode;
    fw->bfailures = failures;
    fw->bopen_ms = open_ms;
    mutt_gauge_set(fw->m_bstate, mutt_breaker_mode_gauge(mode));
    mutt_gauge_set(fw->m_bfailures, (double)failures);
    if (!first && old != mode) {
        const char *v[] = {MUTT_FORWARD_BREAKER_NAME, state_names[old], state_names[mode]};
        mutt_counter_inc(mutt_counter_labels(fw->m_bchanges, v));
        if (mode == MUTT_BREAKER_OPEN)
            /* the operational alert (log + metric + /health details) */
            mutt_log_error("forward",
                           "circuit breaker %s %s -> OPEN after %lld consecutive failures: %s is not consumed, "
                           "alerts wait there until a probe succeeds (in %lld s)",
                           MUTT_FORWARD_BREAKER_NAME, state_names[old], (long long)failures, fw->source,
                           (long long)mutt_dynconfig_int(fw->ctx->dyn, "circuit_breaker_timeout"));
        else
            mutt_log_info("forward", "circuit breaker %s %s -> %s", MUTT_FORWARD_BREAKER_NAME, state_names[old],
                          state_names[mode]);
    } else if (first && mode != MUTT_BREAKER_CLOSED) {
        mutt_log_warn("forward", "circuit breaker %s is %s: not consuming %s until a probe succeeds",
                      MUTT_FORWARD_BREAKER_NAME, state_names[mode], fw->source);
    }
    if (mode == MUTT_BREAKER_CLOSED) {
        if (fw->probe_state == FWD_PROBE_FETCHING)
            fw->probe_state = FWD_PROBE_NONE;
        if (fw->timers_open)
            uv_timer_stop(&fw->probe_timer);
        fwd_wake(fw);
        return;
    }
    fwd_update_pause(fw);
    arm_probe(fw);
}

static long long reply_num(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* {verdict, state, failures, open_time_ms, previous_state}; returns the verdict string or NULL. */
static const char *parse_script_reply(struct forward *fw, const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 4 || reply->element[1]->type != REDIS_REPLY_STRING)
        return NULL;
    enum mutt_breaker_mode mode;
    mutt_breaker_mode_parse(reply->element[1]->str, &mode);
    apply_view(fw, mode, reply_num(reply->element[2]), reply_num(reply->element[3]));
    return reply->element[0]->type == REDIS_REPLY_STRING ? reply->element[0]->str : "";
}

static int run_script(struct forward *fw, const char *op, mutt_redis_reply_cb *cb, void *priv)
{
    char threshold[24], timeout[24], ttl[24];
    snprintf(threshold, sizeof threshold, "%lld",
             (long long)mutt_dynconfig_int(fw->ctx->dyn, "circuit_breaker_threshold"));
    snprintf(timeout, sizeof timeout, "%lld", (long long)open_timeout_ms(fw));
    snprintf(ttl, sizeof ttl, "%lld", (long long)probe_ttl_ms(fw));
    /* "" = the Redis server clock: one clock for every pod */
    const char *args[] = {op, "", threshold, timeout, ttl};
    return mutt_redis_evalsha(mutt_redis_cmd(fw->ctx->redis), fw->script_breaker, 4, fw->bkeys, NULL, 5, args, NULL,
                              cb, priv);
}

/* ---- probing ---------------------------------------------------------------------------- */

static void on_decide_reply(void *priv, redisReply *reply, int status)
{
    struct fwd_op *op = priv;
    struct forward *fw = op->fw;
    fw->probe_state = FWD_PROBE_NONE;
    const char *verdict = status == 0 ? parse_script_reply(fw, reply) : NULL;
    if (fw->stopping) {
        fwd_op_abandon(op); /* a probe lock we took expires by itself */
        return;
    }
    if (verdict && strcmp(verdict, "PROBE") == 0) {
        fw->probe_state = FWD_PROBE_SENDING;
        op->probe = true;
        mutt_log_info("forward", "circuit breaker %s: this pod probes the destination with one alert",
                      MUTT_FORWARD_BREAKER_NAME);
        fwd_send(op);
        return;
    }
    /* ALLOW (closed meanwhile: apply_view woke the others), DENY, or the script failed: the
     * alert goes first in line again */
    fwd_wait_push(op, true);
    if (verdict && strcmp(verdict, "ALLOW") == 0) {
        fwd_wake(fw);
        return;
    }
    fwd_update_pause(fw);
    if (!verdict && fw->timers_open)
        uv_timer_start(&fw->probe_timer, on_probe_timer, PROBE_RECHECK_MS, 0);
    else
        arm_probe(fw);
}

static void decide(struct forward *fw, struct fwd_op *op)
{
    fw->probe_state = FWD_PROBE_DECIDING;
    fwd_update_pause(fw);
    if (run_script(fw, "decide", on_decide_reply, op) != 0) {
        fw->probe_state = FWD_PROBE_NONE;
        fwd_wait_push(op, true);
        fwd_update_pause(fw);
        uv_timer_start(&fw->probe_timer, on_probe_timer, PROBE_RECHECK_MS, 0);
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (fw->stopping || fw->probe_state != FWD_PROBE_NONE || !fwd_breaker_holds(fw))
        return;
    struct fwd_op *op = fwd_wait_pop(fw);
    if (op) {
        decide(fw, op);
        return;
    }
    /* nothing held here: let relq pop one alert to probe with (fwd_breaker_admit takes it) */
    fw->probe_state = FWD_PROBE_FETCHING;
    fwd_update_pause(fw);
}

bool fwd_breaker_admit(struct forward *fw, struct fwd_op *op)
{
    if (!fw->breaker_enabled)
        return false;
    if (fw->probe_state == FWD_PROBE_FETCHING && fwd_breaker_holds(fw)) {
        decide(fw, op);
        return true;
    }
    if (!fwd_breaker_holds(fw))
        return false;
    fwd_wait_push(op, false);
    fwd_update_pause(fw);
    arm_probe(fw);
    return true;
}

void fwd_breaker_probe_abandoned(struct forward *fw)
{
    if (fw->probe_state == FWD_PROBE_SENDING)
        fw->probe_state = FWD_PROBE_NONE;
    arm_probe(fw);
}

/* ---- outcomes and polling ----------------------------------------------------------------- */

static void on_record_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    if (status == 0 && !fw->stopping)
        parse_script_reply(fw, reply);
    else if (status != 0)
        arm_probe(fw);
    fwd_maybe_stopped(fw); /* the stop may be waiting for this reply */
}

void fwd_breaker_record(struct forward *fw, enum mutt_delivery d, bool probe)
{
    if (!fw->breaker_enabled)
        return;
    enum mutt_breaker_outcome outcome = mutt_breaker_outcome_of(d);
    if (probe && fw->probe_state == FWD_PROBE_SENDING)
        fw->probe_state = FWD_PROBE_NONE;
    /* a success changes nothing while CLOSED with no failures counted (as this pod last saw it;
     * the 1 s poll bounds how stale that is) */
    if (outcome == MUTT_BREAKER_SUCCESS && !probe && fw->bknown && fw->bmode == MUTT_BREAKER_CLOSED &&
        fw->bfailures == 0)
        return;
    if (run_script(fw, outcome == MUTT_BREAKER_SUCCESS ? "success" : "failure", on_record_reply, fw) == 0)
        fw->rpending++;
    else
        arm_probe(fw);
}

static void on_poll_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    fw->bpolling = false;
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 && !fw->stopping) {
        enum mutt_breaker_mode mode = MUTT_BREAKER_CLOSED;
        if (reply->element[0]->type == REDIS_REPLY_STRING)
            mutt_breaker_mode_parse(reply->element[0]->str, &mode);
        apply_view(fw, mode, reply_num(reply->element[1]), reply_num(reply->element[2]));
    }
    fwd_maybe_stopped(fw);
}

void fwd_breaker_poll(struct forward *fw)
{
    if (!fw->breaker_enabled) {
        if (!fw->bknown) {
            fw->bknown = true;
            fwd_update_pause(fw);
        }
        return;
    }
    if (fw->bpolling)
        return;
    if (mutt_redis_commandf(mutt_redis_cmd(fw->ctx->redis), on_poll_reply, fw, "MGET %s %s %s", fw->bkeys[0],
                            fw->bkeys[1], fw->bkeys[2]) == 0) {
        fw->bpolling = true;
        fw->rpending++;
    }
}

bool fwd_breaker_health(struct forward *fw, char *detail, size_t len)
{
    if (!fw->breaker_enabled || !fw->bknown || fw->bmode == MUTT_BREAKER_CLOSED)
        return false;
    char since[MUTT_TIME_ISO8601_MS_LEN] = "";
    if (fw->bopen_ms > 0 && mutt_time_format_iso8601_ms(fw->bopen_ms, since, sizeof since) != 0)
        since[0] = '\0';
    snprintf(detail, len, "circuit breaker %s %s%s%s (%lld consecutive failures); alerts wait in %s",
             MUTT_FORWARD_BREAKER_NAME, state_names[fw->bmode], since[0] ? " since " : "", since,
             (long long)fw->bfailures, fw->source);
    return true;
}
