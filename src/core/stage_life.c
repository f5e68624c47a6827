/* The lifecycle state and stop protocol shared by the stages (include/mutt/stage_life.h). Holds
 * no handle and does no I/O: each stage keeps its own resources and says when they are all back.
 * Loop thread only. */
#include "mutt/stage_life.h"

#include "mutt/log.h"

void mutt_stage_life_init(struct mutt_stage_life *life, const char *name, struct mutt_ctx *ctx)
{
    *life = (struct mutt_stage_life){.state = MUTT_STAGE_STOPPED, .name = name, .ctx = ctx};
}

const char *mutt_stage_state_name(enum mutt_stage_state state)
{
    switch (state) {
    case MUTT_STAGE_STOPPED:
        return "stopped";
    case MUTT_STAGE_STARTING:
        return "starting";
    case MUTT_STAGE_RUNNING:
        return "running";
    case MUTT_STAGE_DRAINING:
        return "draining";
    }
    return "?";
}

void mutt_stage_life_set_state(struct mutt_stage_life *life, enum mutt_stage_state state)
{
    if (life->state == state)
        return;
    mutt_log_debug(life->name, "stage %s -> %s", mutt_stage_state_name(life->state), mutt_stage_state_name(state));
    life->state = state;
}

bool mutt_stage_life_begin_stop(struct mutt_stage_life *life, mutt_stage_done_cb *done, void *privdata)
{
    if (life->state == MUTT_STAGE_STOPPED) {
        done(life->ctx, privdata);
        return false;
    }
    life->done = done;
    life->done_priv = privdata;
    mutt_stage_life_set_state(life, MUTT_STAGE_DRAINING);
    return true;
}

bool mutt_stage_life_drained(const struct mutt_stage_life *life, size_t outstanding)
{
    return life->state == MUTT_STAGE_DRAINING && life->done && outstanding == 0;
}

void mutt_stage_life_finish(struct mutt_stage_life *life)
{
    mutt_stage_done_cb *done = life->done;
    void *priv = life->done_priv;
    life->done = NULL;
    life->done_priv = NULL;
    mutt_stage_life_set_state(life, MUTT_STAGE_STOPPED);
    if (done)
        done(life->ctx, priv);
}
