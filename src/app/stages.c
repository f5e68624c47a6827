/* Registry of the stages compiled in. A role without a stage here starts nothing but still
 * reports its dependencies on /health. */
#include "mutt/stages.h"

#include <stddef.h>

#include "mutt/alert.h"
#include "mutt/forward.h"
#include "mutt/ingest.h"
#include "mutt/listen_snmp.h"
#include "mutt/listen_syslog.h"
#include "mutt/remediate.h"
#include "mutt/web.h"
#include "mutt/retention.h"

const struct mutt_stage *const mutt_stages[] = {
    /* before ingest: /health reads the last stage of a role, and stopping in reverse order lets
     * ingest answer the listeners' submissions before they close */
    &mutt_listen_syslog_stage,
    &mutt_listen_snmp_stage,
    &mutt_ingest_stage,
    &mutt_alert_stage,
    &mutt_forward_stage,
    &mutt_remediate_stage,
    &mutt_retention_stage,
    &mutt_web_stage, /* last: its /api/ catch-all must follow the other stages' routes */
    NULL,
};
