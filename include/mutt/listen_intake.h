/* How a listener hands its events to ingest (issue 15 item 3). A listener is written against this
 * small interface and is given one at start, so it does not depend on how ingest groups and
 * pushes. `mutt_listen_intake_local` is a stand-in: one ingest script call (the same Lua, caps and
 * rate limit as POST /ingest) per event on a connection of its own. It is meant to be replaced by
 * ingest's group intake (mutt_ingest_intake_submit) when both land. Loop thread only. */
#ifndef MUTT_LISTEN_INTAKE_H
#define MUTT_LISTEN_INTAKE_H

#include <jansson.h>
#include <stddef.h>

#include "mutt/ctx.h"

/* verdict: 0 = queued; MUTT_EFULL = refused by the queue cap or the rate limit; MUTT_EINVAL =
 * invalid after normalisation; MUTT_EDISCONNECTED / MUTT_EIO / MUTT_ECANCELED = Redis failed. */
typedef void mutt_listen_verdict_cb(void *arg, int verdict);

struct mutt_listen_intake {
    /* Takes one event (the reference is stolen, whatever the result): normalises it as HTTP
     * ingest does (D9: the message is built from trap_oid), stamps its ids and queues it. Returns
     * 0 when taken (cb, which may be NULL, is then called exactly once, later, with the verdict),
     * or a negative MUTT_E* when it cannot take it now (not connected, too much in flight, invalid:
     * the caller drops and counts; cb is not called). Never blocks. */
    int (*submit)(void *ud, json_t *event, mutt_listen_verdict_cb *cb, void *arg);
    /* events taken whose verdict has not come back yet */
    size_t (*pending)(void *ud);
    void *ud;
};

/* Sets `out` up as the stand-in intake on ctx (opens its Redis connection). Returns 0 or MUTT_E*. */
int mutt_listen_intake_local(struct mutt_ctx *ctx, struct mutt_listen_intake *out);

#endif
