/* forward: the breaker's verdicts acted on (forward_breaker.c decides; this waits, pauses,
 * probes), and each attempt's outcome fed back to the shared breaker. */
#define _GNU_SOURCE
#include "mutt/forward.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "forward_internal.h"
#include "lineage_push.h"
#include "mutt/alert_item.h"
#include "mutt/backoff.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/forward_classify.h"
#include "mutt/http_client.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/moog_payload.h"
#include "mutt/random.h"
#include "mutt/ratelimit.h"
#include "mutt/redact.h"
#include "mutt/redis.h"
#include "mutt/relq.h"
#include "mutt/replay.h"
#include "mutt/retryset.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/version.h"

/* ------------------------------------------------------------------------------------------ */
/* the breaker's verdicts acted on: forward_breaker.c decides, this file waits, pauses, sends   */

static void on_probe_timer(uv_timer_t *t);

/* Arms the probe timer when the breaker says a probe is due (or due for a fresh look). */
void fwd_arm_probe(struct forward *fw)
{
    if (!fw->timers_open || mutt_stage_life_draining(&fw->life))
        return;
    int64_t delay = fwd_breaker_probe_delay_ms(fw, fwd_wall_ms());
    if (delay >= 0)
        uv_timer_start(&fw->probe_timer, on_probe_timer, (uint64_t)delay, 0);
}

/* After each update of the breaker view: CLOSED wakes the waiting alerts, anything else keeps
 * relq paused and looks for the next probe. */
static void on_breaker_view(struct forward *fw)
{
    if (fw->bmode == MUTT_BREAKER_CLOSED) {
        if (fw->probe_state == FWD_PROBE_FETCHING)
            fw->probe_state = FWD_PROBE_NONE;
        if (fw->timers_open)
            uv_timer_stop(&fw->probe_timer);
        fwd_wake(fw);
        return;
    }
    fwd_update_pause(fw);
    fwd_arm_probe(fw);
}

static void on_decide_reply(void *priv, redisReply *reply, int status)
{
    struct fwd_op *op = priv;
    struct forward *fw = op->fw;
    fw->probe_state = FWD_PROBE_NONE;
    const char *verdict = fwd_breaker_take_script_reply(fw, status == 0 ? reply : NULL);
    if (verdict)
        on_breaker_view(fw);
    if (mutt_stage_life_draining(&fw->life)) {
        fwd_op_abandon(op); /* a probe lock we took expires by itself */
        return;
    }
    if (verdict && strcmp(verdict, "PROBE") == 0) {
        fw->probe_state = FWD_PROBE_SENDING;
        op->probe = true;
        mutt_log_info("forward", "circuit breaker %s: this pod probes the destination with one alert",
                      MUTT_KEY_BREAKER_NAME);
        fwd_attempt(op);
        return;
    }
    /* ALLOW (closed meanwhile: on_breaker_view woke the others), DENY, or the script failed: the
     * alert goes first in line again */
    fwd_wait_push(op, true);
    if (verdict && strcmp(verdict, "ALLOW") == 0) {
        fwd_wake(fw);
        return;
    }
    fwd_update_pause(fw);
    if (!verdict && fw->timers_open)
        uv_timer_start(&fw->probe_timer, on_probe_timer, FWD_BREAKER_RECHECK_MS, 0);
    else
        fwd_arm_probe(fw);
}

/* op becomes the probe candidate: the script says whether this pod may send it. */
void fwd_decide_probe(struct forward *fw, struct fwd_op *op)
{
    fw->probe_state = FWD_PROBE_DECIDING;
    fwd_update_pause(fw);
    if (fwd_breaker_request_decide(fw, on_decide_reply, op) != 0) {
        fw->probe_state = FWD_PROBE_NONE;
        fwd_wait_push(op, true);
        fwd_update_pause(fw);
        uv_timer_start(&fw->probe_timer, on_probe_timer, FWD_BREAKER_RECHECK_MS, 0);
    }
}

static void on_probe_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (mutt_stage_life_draining(&fw->life) || fw->probe_state != FWD_PROBE_NONE || !fwd_breaker_holds(fw))
        return;
    struct fwd_op *op = fwd_wait_pop(fw);
    if (op) {
        fwd_decide_probe(fw, op);
        return;
    }
    /* nothing held here: let relq pop one alert to probe with (admit hands it to decide_probe) */
    fw->probe_state = FWD_PROBE_FETCHING;
    fwd_update_pause(fw);
}

/* Our probe was never sent (stop, cannot build): its lock expires by itself. */
void fwd_probe_abandoned(struct forward *fw)
{
    if (fw->probe_state == FWD_PROBE_SENDING)
        fw->probe_state = FWD_PROBE_NONE;
    fwd_arm_probe(fw);
}

static void on_record_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    if (status == 0 && !mutt_stage_life_draining(&fw->life)) {
        if (fwd_breaker_take_script_reply(fw, reply))
            on_breaker_view(fw);
    } else if (status != 0) {
        fwd_arm_probe(fw);
    }
    fwd_maybe_stopped(fw); /* the stop may be waiting for this reply */
}

/* Feeds one attempt's outcome to the shared breaker. */
void fwd_record_outcome(struct forward *fw, enum mutt_delivery d, bool probe)
{
    if (!fw->breaker_enabled)
        return;
    if (probe && fw->probe_state == FWD_PROBE_SENDING)
        fw->probe_state = FWD_PROBE_NONE;
    int rc = fwd_breaker_request_record(fw, d, probe, on_record_reply, fw);
    if (rc == 0)
        fw->rpending++;
    else if (rc < 0)
        fwd_arm_probe(fw);
}

static void on_poll_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    if (fwd_breaker_take_poll_reply(fw, status == 0 && !mutt_stage_life_draining(&fw->life) ? reply : NULL))
        on_breaker_view(fw);
    fwd_maybe_stopped(fw);
}

void fwd_poll_breaker(struct forward *fw)
{
    switch (fwd_breaker_request_poll(fw, on_poll_reply, fw)) {
    case FWD_BREAKER_POLL_SENT:
        fw->rpending++;
        break;
    case FWD_BREAKER_POLL_KNOWN:
        fwd_update_pause(fw);
        break;
    case FWD_BREAKER_POLL_NONE:
        break;
    }
}

