/* Lineage steps as relq pushes (lineage_push.h). Loop thread only. */
#include "lineage_push.h"

#include <stdlib.h>

#include "mutt/config.h"

bool mutt_lineage_push(const struct mutt_config *cfg, const json_t *ev, enum mutt_lineage_step code,
                       json_t *details, int64_t now_ms, char *keybuf, struct mutt_relq_push *push, char **payload)
{
    *payload = NULL;
    const json_t *id = json_object_get(ev, "_event_id");
    bool ok = mutt_config_bool(cfg, MUTT_CFG_LINEAGE_ENABLED) && json_is_string(id) &&
              mutt_lineage_key(json_string_value(id), keybuf, MUTT_LINEAGE_KEY_MAX) > 0;
    size_t len = 0;
    if (ok && mutt_lineage_entry(now_ms, code, details, payload, &len) != 0)
        ok = false;
    json_decref(details);
    if (!ok)
        return false;
    *push = (struct mutt_relq_push){.kind = MUTT_RELQ_HSET, .key = keybuf, .payload = *payload, .len = len,
                                    .score = (double)mutt_config_int(cfg, MUTT_CFG_LINEAGE_TTL_SECONDS)};
    return true;
}
