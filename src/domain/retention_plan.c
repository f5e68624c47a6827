/* Pure retention decisions (see include/mutt/retention_plan.h). No clock, no I/O; jansson only to
 * read the `_failed_at` field of a DLQ item. */
#include "mutt/retention_plan.h"

#include <jansson.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/timefmt.h"

int64_t mutt_retention_cutoff_ms(int64_t now_ms, int64_t days)
{
    if (days < 0)
        days = 0;
    return now_ms - days * MUTT_RETENTION_DAY_MS;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

int64_t mutt_retention_month_start_ms(int year, int month)
{
    return days_from_civil(year, (unsigned)month, 1) * MUTT_RETENTION_DAY_MS;
}

static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int mutt_retention_partition_month(const char *name, int *year, int *month)
{
    static const size_t plen = sizeof(MUTT_RETENTION_PARTITION_PREFIX) - 1;
    if (name == NULL || strncmp(name, MUTT_RETENTION_PARTITION_PREFIX, plen) != 0)
        return MUTT_EINVAL;
    const char *p = name + plen;
    if (strlen(p) != 7 || p[4] != '_')
        return MUTT_EINVAL;
    int y = digits(p, 4);
    int m = digits(p + 5, 2);
    if (y < 1970 || m < 1 || m > 12)
        return MUTT_EINVAL;
    *year = y;
    *month = m;
    return 0;
}

bool mutt_retention_partition_droppable(const char *name, int64_t cutoff_ms)
{
    int y, m;
    if (mutt_retention_partition_month(name, &y, &m) != 0)
        return false;
    int64_t end = m == 12 ? mutt_retention_month_start_ms(y + 1, 1) : mutt_retention_month_start_ms(y, m + 1);
    /* rows are < end; all of them are older than the cutoff when end <= cutoff */
    return end <= cutoff_ms;
}

enum mutt_retention_dlq_verdict mutt_retention_dlq_decide(const char *item, size_t len, int64_t cutoff_ms)
{
    if (item == NULL)
        return MUTT_RETENTION_DLQ_KEEP;
    json_t *o = json_loadb(item, len, JSON_REJECT_DUPLICATES, NULL);
    enum mutt_retention_dlq_verdict v = MUTT_RETENTION_DLQ_KEEP;
    if (json_is_object(o)) {
        const char *at = json_string_value(json_object_get(o, "_failed_at"));
        int64_t at_ms;
        if (at && mutt_time_parse_iso8601(at, &at_ms) == 0 && at_ms < cutoff_ms)
            v = MUTT_RETENTION_DLQ_EXPIRED;
    }
    json_decref(o);
    return v;
}

int64_t mutt_retention_next_run_ms(int64_t now_ms, int hour)
{
    if (hour < 0 || hour > 23)
        hour = 0;
    int64_t day_start = now_ms >= 0 ? now_ms / MUTT_RETENTION_DAY_MS * MUTT_RETENTION_DAY_MS
                                    : -((-now_ms + MUTT_RETENTION_DAY_MS - 1) / MUTT_RETENTION_DAY_MS) *
                                          MUTT_RETENTION_DAY_MS;
    int64_t t = day_start + (int64_t)hour * 3600000LL;
    if (t <= now_ms)
        t += MUTT_RETENTION_DAY_MS;
    return t;
}

bool mutt_retention_due_at_start(int64_t now_ms, int64_t last_run_ms)
{
    return last_run_ms <= 0 || now_ms - last_run_ms >= MUTT_RETENTION_DAY_MS;
}
