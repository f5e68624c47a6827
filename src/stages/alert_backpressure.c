/* The alert stage's backpressure decision (CONTRACT §4, W17): given the alert queue's depth
 * and the live thresholds (alerter_queue_warn_threshold, alerter_queue_shed_threshold,
 * alerter_shed_mode), says whether to warn, defer (pause consuming) or shed into the DLQ, and
 * what changed since the last depth. It does no I/O and calls nothing in alert.c: alert.c polls
 * the depth, and pauses, resumes, logs and counts on the verdict. Loop thread only. */
#include "alert_internal.h"

#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/dynconfig.h"

void alert_bp_judge(struct alert_bp *bp, const struct mutt_dynconfig *dyn, long long depth, bool stopping,
                    struct alert_bp_verdict *out)
{
    int64_t warn = mutt_dynconfig_int(dyn, MUTT_DYN_ALERTER_QUEUE_WARN_THRESHOLD);
    int64_t shed = mutt_dynconfig_int(dyn, MUTT_DYN_ALERTER_QUEUE_SHED_THRESHOLD);
    bool dlq_mode = strcmp(mutt_dynconfig_str(dyn, MUTT_DYN_ALERTER_SHED_MODE), "dlq") == 0;
    bool over = depth > shed && !stopping;
    *out = (struct alert_bp_verdict){.warn_threshold = warn, .shed_threshold = shed};
    if (depth > warn && !bp->warned) {
        out->warn_crossed = true; /* logged once per crossing */
        bp->warned = true;
    } else if (depth <= warn) {
        bp->warned = false;
    }
    bool want_defer = over && !dlq_mode;
    bool want_shed = over && dlq_mode;
    out->defer_changed = want_defer != bp->deferring;
    out->shed_changed = want_shed != bp->shedding;
    bp->deferring = want_defer;
    bp->shedding = want_shed;
}
