/* The shared Redis schema (include/mutt/keys.h): dashboard counter keys and the DLQ envelope.
 * Pure; any thread. */
#include "mutt/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/timefmt.h"

int mutt_key_metrics(const char *prefix, enum mutt_key_metrics_period period, int64_t epoch_ms, char *out,
                     size_t cap)
{
    if (!prefix || !out || cap == 0 || epoch_ms < 0)
        return MUTT_EINVAL;
    out[0] = '\0';
    time_t s = (time_t)(epoch_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&s, &tm))
        return MUTT_EINVAL;
    int y = tm.tm_year + 1900, mo = tm.tm_mon + 1, d = tm.tm_mday, h = tm.tm_hour, mi = tm.tm_min;
    int n;
    switch (period) {
    case MUTT_KEY_METRICS_1M:
        n = snprintf(out, cap, "%s:1m:%04d-%02d-%02dT%02d:%02d", prefix, y, mo, d, h, mi);
        break;
    case MUTT_KEY_METRICS_1H:
        n = snprintf(out, cap, "%s:1h:%04d-%02d-%02dT%02d", prefix, y, mo, d, h);
        break;
    case MUTT_KEY_METRICS_24H:
        n = snprintf(out, cap, "%s:24h:%04d-%02d-%02d", prefix, y, mo, d);
        break;
    default:
        return MUTT_EINVAL;
    }
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return MUTT_EINVAL;
    }
    return n;
}

/* The three fields, in this order, after whatever the item holds (D5). */
static int envelope_dump(json_t *o, const char *origin, const char *reason, int64_t now_ms, char **out, size_t *len)
{
    char at[MUTT_TIME_ISO8601_MS_LEN];
    if (mutt_time_format_iso8601_ms(now_ms, at, sizeof at) != 0)
        at[0] = '\0';
    json_object_set_new(o, "_dlq_reason", json_string(reason));
    json_object_set_new(o, "_failed_at", json_string(at));
    json_object_set_new(o, "_origin", json_string(origin));
    return mutt_event_dump_alloc(o, out, len);
}

int mutt_dlq_envelope(json_t *item, const char *origin, const char *reason, int64_t now_ms, char **out,
                      size_t *len)
{
    *out = NULL;
    if (!json_is_object(item))
        return MUTT_EINVAL;
    int rc = envelope_dump(item, origin, reason, now_ms, out, len);
    if (rc != 0)
        *out = NULL;
    return rc;
}

int mutt_dlq_envelope_raw(const char *data, size_t data_len, const char *origin, const char *reason,
                          int64_t now_ms, char **out, size_t *len)
{
    *out = NULL;
    json_t *o = json_object();
    if (!o)
        return MUTT_ENOMEM;
    json_t *raw = json_stringn(data, data_len);
    if (!raw) {
        char *copy = malloc(data_len + 1);
        for (size_t i = 0; copy && i < data_len; i++)
            copy[i] = (unsigned char)data[i] < 0x80 && data[i] != '\0' ? data[i] : '?';
        if (copy) {
            copy[data_len] = '\0';
            raw = json_string(copy);
        }
        free(copy);
    }
    json_object_set_new(o, "_raw", raw ? raw : json_string(""));
    int rc = envelope_dump(o, origin, reason, now_ms, out, len);
    json_decref(o);
    if (rc != 0)
        *out = NULL;
    return rc;
}
