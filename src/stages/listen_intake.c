/* The listener intake backed by ingest's group intake (include/mutt/listen_intake.h,
 * include/mutt/ingest_intake.h): each event joins the group of its loop turn (D50) and is judged
 * with the HTTP requests of that turn. One event per submission, so a trap's verdict is its own
 * (an INFORM is answered only once its event is queued). Loop thread only. */
#include "mutt/listen_intake.h"

#include <stdlib.h>

#include "mutt/error.h"
#include "mutt/ingest_intake.h"

struct group_intake {
    const char *source_id; /* the events' _correlation_id (a D8 id) */
    size_t pending;        /* submissions whose verdict has not come back */
};

struct wait {
    struct group_intake *gi;
    mutt_listen_verdict_cb *cb;
    void *arg;
};

static void on_verdict(void *privdata, enum mutt_ingest_intake_result result, size_t queued)
{
    struct wait *w = privdata;
    w->gi->pending--;
    int verdict = 0;
    if (result == MUTT_INTAKE_RATE_LIMITED || result == MUTT_INTAKE_QUEUE_FULL)
        verdict = MUTT_EFULL;
    else if (result != MUTT_INTAKE_QUEUED || queued == 0)
        verdict = MUTT_EDISCONNECTED;
    if (w->cb)
        w->cb(w->arg, verdict);
    free(w);
}

static int submit(void *ud, json_t *event, mutt_listen_verdict_cb *cb, void *arg)
{
    struct group_intake *gi = ud;
    struct wait *w = malloc(sizeof *w);
    if (!w) {
        json_decref(event);
        return MUTT_ENOMEM;
    }
    *w = (struct wait){.gi = gi, .cb = cb, .arg = arg};
    json_t *events[1] = {event};
    size_t invalid = 0;
    /* the group serialises the event now: the reference is ours to drop either way */
    long n = mutt_ingest_intake_submit(events, 1, gi->source_id, &invalid, on_verdict, w);
    json_decref(event);
    if (n <= 0) {
        free(w);
        return n == 0 ? MUTT_EINVAL : (int)n;
    }
    gi->pending++;
    return 0;
}

static size_t pending(void *ud)
{
    const struct group_intake *gi = ud;
    return gi->pending;
}

int mutt_listen_intake_group(const char *source_id, struct mutt_listen_intake *out)
{
    static struct group_intake gi; /* one listener stage uses it: the SNMP trap listener */
    gi.source_id = source_id;
    gi.pending = 0;
    *out = (struct mutt_listen_intake){.submit = submit, .pending = pending, .ud = &gi};
    return 0;
}
