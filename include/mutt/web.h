/* The web stage (role web, CONTRACT §7, D18-D22): the management API under /api/v1 and /api/v2
 * (auth, versioning headers, 410 for removed endpoints) and the embedded dashboard. Its handlers,
 * call helpers and the dashboard share src/web/web_internal.h; only the stage descriptor is
 * public. Loop thread only. */
#ifndef MUTT_WEB_H
#define MUTT_WEB_H

#include "mutt/ctx.h"

extern const struct mutt_stage mutt_web_stage;

#endif
