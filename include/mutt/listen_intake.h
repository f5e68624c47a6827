/* How a listener hands its events to ingest one at a time (issue 15 item 3), each with its own
 * verdict. A listener is written against this small interface and is given one at start, so it
 * does not depend on how ingest groups and pushes. `mutt_listen_intake_group` backs it with
 * ingest's group intake (include/mutt/ingest_intake.h): the event joins its loop turn's group
 * (D50) with the same caps and rate limit as POST /ingest. Loop thread only. */
#ifndef MUTT_LISTEN_INTAKE_H
#define MUTT_LISTEN_INTAKE_H

#include <jansson.h>
#include <stddef.h>


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

/* Sets `out` up on ingest's group intake; source_id (a D8 correlation id, e.g. "snmp-trap")
 * becomes the events' _correlation_id. Returns 0. */
int mutt_listen_intake_group(const char *source_id, struct mutt_listen_intake *out);

#endif
