/* The stages' side of lineage (D63): one step of an event as a relq HSET push, so it goes out in
 * the completion the stage makes anyway. Loop thread only. */
#ifndef MUTT_STAGES_LINEAGE_PUSH_H
#define MUTT_STAGES_LINEAGE_PUSH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "mutt/lineage.h"
#include "mutt/relq.h"

struct mutt_config;

/* Fills *push with step `code` of the event or alert `ev` (its "_event_id") at now_ms, with
 * `details` (an object or NULL; always consumed). The key is written into keybuf (the caller's,
 * MUTT_LINEAGE_KEY_MAX bytes, alive until the completion is sent), the payload into *payload
 * (malloc'd, the caller frees). Returns false, with nothing to free, when LINEAGE_ENABLED is off,
 * `ev` has no usable id, or memory ran out: lineage never holds an event up. */
bool mutt_lineage_push(const struct mutt_config *cfg, const json_t *ev, enum mutt_lineage_step code,
                       json_t *details, int64_t now_ms, char *keybuf, struct mutt_relq_push *push, char **payload);

#endif
