/* The shared circuit breaker as the forward stage sees it (CONTRACT §5, W15; reference §3.10).
 * The state lives in Redis (mutt:circuit_breaker:moogsoft:{state,failures,open_time,probe}) and
 * changes only inside the breaker Lua script (mutt_breaker_lua), so every pod sees one breaker
 * and exactly one pod probes in HALF_OPEN. This file keeps a local view (refreshed by every
 * script reply and a 1 s poll) so a CLOSED breaker costs no Redis call per alert, and answers
 * with verdicts: admit / hold / probe an alert, when to look for a probe, the health line.
 * It never waits, sends or pauses anything itself and calls nothing in forward.c: forward.c
 * owns the waiting list, relq's pause, the probe timer and the reply callbacks, and feeds each
 * reply back here (fwd_breaker_take_*). Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "forward_internal.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/forward.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/redis.h"
#include "mutt/timefmt.h"

#define PROBE_TTL_SLACK_MS 5000 /* probe lock = request timeout + this */

static const char *const state_names[] = {"CLOSED", "OPEN", "HALF_OPEN"};

int fwd_breaker_init(struct forward *fw)
{
    fw->bkeys[0] = MUTT_KEY_BREAKER_STATE;
    fw->bkeys[1] = MUTT_KEY_BREAKER_PREFIX ":failures";
    fw->bkeys[2] = MUTT_KEY_BREAKER_PREFIX ":open_time";
    fw->bkeys[3] = MUTT_KEY_BREAKER_PREFIX ":probe";
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
    const char *v[] = {MUTT_KEY_BREAKER_NAME};
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
    return mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_CIRCUIT_BREAKER_TIMEOUT) * 1000;
}

static int64_t probe_ttl_ms(const struct forward *fw)
{
    return (int64_t)fw->timeout_ms + PROBE_TTL_SLACK_MS;
}

/* How long until this pod should try to probe: when the open timeout ends (OPEN), or a fresh
 * look (HALF_OPEN: another pod's probe is out, or the pod that took it died and its lock must
 * expire). -1 while there is nothing to probe for or a probe is already under way. */
int64_t fwd_breaker_probe_delay_ms(const struct forward *fw, int64_t now_wall_ms)
{
    if (fw->probe_state != FWD_PROBE_NONE || !fwd_breaker_holds(fw) || !fw->bknown)
        return -1;
    int64_t delay = FWD_BREAKER_RECHECK_MS;
    if (fw->bmode == MUTT_BREAKER_OPEN) {
        delay = fw->bopen_ms + open_timeout_ms(fw) - now_wall_ms;
        if (delay < 10)
            delay = 10;
    }
    return delay;
}

/* The one writer of the view: logs and counts each transition this pod sees (curl mstate).
 * What the stage does about it (wake the waiting alerts, pause relq, arm the probe) is
 * forward.c's business. */
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
        const char *v[] = {MUTT_KEY_BREAKER_NAME, state_names[old], state_names[mode]};
        mutt_counter_inc(mutt_counter_labels(fw->m_bchanges, v));
        if (mode == MUTT_BREAKER_OPEN)
            /* the operational alert (log + metric + /health details) */
            mutt_log_error("forward",
                           "circuit breaker %s %s -> OPEN after %lld consecutive failures: %s is not consumed, "
                           "alerts wait there until a probe succeeds (in %lld s)",
                           MUTT_KEY_BREAKER_NAME, state_names[old], (long long)failures, fw->source,
                           (long long)mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_CIRCUIT_BREAKER_TIMEOUT));
        else
            mutt_log_info("forward", "circuit breaker %s %s -> %s", MUTT_KEY_BREAKER_NAME, state_names[old],
                          state_names[mode]);
    } else if (first && mode != MUTT_BREAKER_CLOSED) {
        mutt_log_warn("forward", "circuit breaker %s is %s: not consuming %s until a probe succeeds",
                      MUTT_KEY_BREAKER_NAME, state_names[mode], fw->source);
    }
}

static long long reply_num(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

const char *fwd_breaker_take_script_reply(struct forward *fw, const redisReply *reply)
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
             (long long)mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_CIRCUIT_BREAKER_THRESHOLD));
    snprintf(timeout, sizeof timeout, "%lld", (long long)open_timeout_ms(fw));
    snprintf(ttl, sizeof ttl, "%lld", (long long)probe_ttl_ms(fw));
    /* "" = the Redis server clock: one clock for every pod */
    const char *args[] = {op, "", threshold, timeout, ttl};
    return mutt_redis_evalsha(mutt_redis_cmd(fw->ctx->redis), fw->script_breaker, 4, fw->bkeys, NULL, 5, args, NULL,
                              cb, priv);
}

/* ---- requests: the stage passes its own reply callbacks ------------------------------------ */

int fwd_breaker_request_decide(struct forward *fw, mutt_redis_reply_cb *cb, void *priv)
{
    return run_script(fw, "decide", cb, priv);
}

enum fwd_breaker_verdict fwd_breaker_admit(const struct forward *fw)
{
    if (!fw->breaker_enabled)
        return FWD_BREAKER_ADMIT;
    if (fw->probe_state == FWD_PROBE_FETCHING && fwd_breaker_holds(fw))
        return FWD_BREAKER_PROBE;
    if (!fwd_breaker_holds(fw))
        return FWD_BREAKER_ADMIT;
    return FWD_BREAKER_HOLD;
}

int fwd_breaker_request_record(struct forward *fw, enum mutt_delivery d, bool probe, mutt_redis_reply_cb *cb,
                               void *priv)
{
    enum mutt_breaker_outcome outcome = mutt_breaker_outcome_of(d);
    /* a success changes nothing while CLOSED with no failures counted (as this pod last saw it;
     * the 1 s poll bounds how stale that is) */
    if (outcome == MUTT_BREAKER_SUCCESS && !probe && fw->bknown && fw->bmode == MUTT_BREAKER_CLOSED &&
        fw->bfailures == 0)
        return 1;
    return run_script(fw, outcome == MUTT_BREAKER_SUCCESS ? "success" : "failure", cb, priv);
}

enum fwd_breaker_poll fwd_breaker_request_poll(struct forward *fw, mutt_redis_reply_cb *cb, void *priv)
{
    if (!fw->breaker_enabled) {
        if (fw->bknown)
            return FWD_BREAKER_POLL_NONE;
        fw->bknown = true; /* a disabled breaker is known at once: CLOSED for good */
        return FWD_BREAKER_POLL_KNOWN;
    }
    if (fw->bpolling)
        return FWD_BREAKER_POLL_NONE;
    if (mutt_redis_commandf(mutt_redis_cmd(fw->ctx->redis), cb, priv, "MGET %s %s %s", fw->bkeys[0], fw->bkeys[1],
                            fw->bkeys[2]) != 0)
        return FWD_BREAKER_POLL_NONE;
    fw->bpolling = true;
    return FWD_BREAKER_POLL_SENT;
}

bool fwd_breaker_take_poll_reply(struct forward *fw, const redisReply *reply)
{
    fw->bpolling = false;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return false;
    enum mutt_breaker_mode mode = MUTT_BREAKER_CLOSED;
    if (reply->element[0]->type == REDIS_REPLY_STRING)
        mutt_breaker_mode_parse(reply->element[0]->str, &mode);
    apply_view(fw, mode, reply_num(reply->element[1]), reply_num(reply->element[2]));
    return true;
}

bool fwd_breaker_health(struct forward *fw, char *detail, size_t len)
{
    if (!fw->breaker_enabled || !fw->bknown || fw->bmode == MUTT_BREAKER_CLOSED)
        return false;
    char since[MUTT_TIME_ISO8601_MS_LEN] = "";
    if (fw->bopen_ms > 0 && mutt_time_format_iso8601_ms(fw->bopen_ms, since, sizeof since) != 0)
        since[0] = '\0';
    snprintf(detail, len, "circuit breaker %s %s%s%s (%lld consecutive failures); alerts wait in %s",
             MUTT_KEY_BREAKER_NAME, state_names[fw->bmode], since[0] ? " since " : "", since,
             (long long)fw->bfailures, fw->source);
    return true;
}
