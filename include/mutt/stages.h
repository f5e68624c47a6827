/* The table of stages built into this binary, one per role (see ctx.h for the interface). */
#ifndef MUTT_STAGES_H
#define MUTT_STAGES_H

#include "mutt/ctx.h"

/* NULL-terminated, in start order (consumers after producers' queues exist is not required:
 * stages meet only in Redis). Stopped in reverse order. */
extern const struct mutt_stage *const mutt_stages[];

#endif
