/* One stage's lifecycle and the stop protocol every stage shares (alert, forward, remediate,
 * ingest). The state changes only through mutt_stage_life_set_state, which logs old -> new
 * (curl mstate). Stop protocol: mutt_stage_life_begin_stop (stop accepting: DRAINING), the stage
 * reports what it still has out through mutt_stage_life_drained, and mutt_stage_life_finish
 * calls the stage's done callback exactly once. Knows nothing of what a stage holds. Loop thread
 * only. */
#ifndef MUTT_STAGE_LIFE_H
#define MUTT_STAGE_LIFE_H

#include <stdbool.h>
#include <stddef.h>

#include "mutt/ctx.h"

enum mutt_stage_state {
    MUTT_STAGE_STOPPED = 0, /* never started, or stopped (a zeroed struct is STOPPED) */
    MUTT_STAGE_STARTING,    /* started, not yet accepting work (D34 reports the role `starting`) */
    MUTT_STAGE_RUNNING,     /* accepting work */
    MUTT_STAGE_DRAINING,    /* a stop was asked: nothing new is accepted, in-flight work ends */
};

struct mutt_stage_life {
    enum mutt_stage_state state; /* read-only outside stage_life.c */
    const char *name;            /* read-only: the stage's log module ("alert", ...) */
    struct mutt_ctx *ctx;        /* private: passed to done */
    mutt_stage_done_cb *done;    /* private: set while a stop waits */
    void *done_priv;             /* private */
};

/* Sets up life as STOPPED for the stage `name` (borrowed, a literal). Cannot fail. */
void mutt_stage_life_init(struct mutt_stage_life *life, const char *name, struct mutt_ctx *ctx);

/* The one writer of life->state; logs the transition at debug level. Cannot fail. */
void mutt_stage_life_set_state(struct mutt_stage_life *life, enum mutt_stage_state state);

/* "stopped", "starting", "running", "draining". */
const char *mutt_stage_state_name(enum mutt_stage_state state);

/* Started and not yet stopped: STARTING, RUNNING or DRAINING. */
static inline bool mutt_stage_life_started(const struct mutt_stage_life *life)
{
    return life->state != MUTT_STAGE_STOPPED;
}

/* Started and no stop asked: STARTING or RUNNING (new work may begin). */
static inline bool mutt_stage_life_live(const struct mutt_stage_life *life)
{
    return life->state == MUTT_STAGE_STARTING || life->state == MUTT_STAGE_RUNNING;
}

/* A stop was asked and has not finished. */
static inline bool mutt_stage_life_draining(const struct mutt_stage_life *life)
{
    return life->state == MUTT_STAGE_DRAINING;
}

/* Stop step 1, stop accepting. A stage that never started (STOPPED) is done at once: done runs
 * before this returns and the result is false. Otherwise the state becomes DRAINING, done is kept
 * (borrowed until finish) and the result is true: the stage now stops its intake, and calls
 * mutt_stage_life_drained whenever something it had out comes back. */
bool mutt_stage_life_begin_stop(struct mutt_stage_life *life, mutt_stage_done_cb *done, void *privdata);

/* Stop step 2: true when a stop waits and `outstanding` (whatever the stage still has in flight:
 * ops, Redis calls, helpers not yet stopped) is zero. The stage then releases what it holds
 * (now, or from a timer when it is inside a callback of what it frees) and calls
 * mutt_stage_life_finish. Safe to call any time; changes nothing. */
bool mutt_stage_life_drained(const struct mutt_stage_life *life, size_t outstanding);

/* Stop step 3: STOPPED, and the done callback of the stop runs, exactly once (a second call does
 * nothing). */
void mutt_stage_life_finish(struct mutt_stage_life *life);

#endif
