/* DLQ item rewrite for replays (include/mutt/replay.h). */
#include "mutt/replay.h"

#include <stdio.h>

enum mutt_replay_verdict mutt_replay_rewrite(json_t *item, const char *origin, int64_t max_poison_retries)
{
    if (!json_is_object(item))
        return MUTT_REPLAY_DEAD;
    if (!json_is_string(json_object_get(item, "_origin")))
        json_object_set_new(item, "_origin", json_string(origin));
    const json_t *rc = json_object_get(item, "_replay_count");
    json_int_t replays = json_is_integer(rc) ? json_integer_value(rc) : 0;
    if (replays < 0)
        replays = 0;
    if (replays >= max_poison_retries) {
        char why[128];
        snprintf(why, sizeof why, "replayed %lld times (max_poison_retries %lld)", (long long)replays,
                 (long long)max_poison_retries);
        json_object_set_new(item, "_dead_reason", json_string(why));
        return MUTT_REPLAY_DEAD;
    }
    json_object_set_new(item, "_replay_count", json_integer(replays + 1));
    json_object_del(item, "_dlq_reason");
    json_object_del(item, "_failed_at");
    json_object_del(item, "_retry_count");
    json_object_del(item, "_moog_retry_count");
    return MUTT_REPLAY_TARGET;
}
