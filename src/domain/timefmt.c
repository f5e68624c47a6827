/* ISO 8601 / RFC 3339 parsing and formatting in UTC without libc time zones: timegm() and
 * gmtime_r() are avoided because strptime/timegm accept impossible dates (Feb 30 normalises to
 * Mar 2) and we must reject them (W36). Pure; see include/mutt/timefmt.h. */
#include "mutt/timefmt.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mutt/error.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n digits at s[*i]; false if any is missing. */
static bool digits(const char *s, size_t len, size_t *i, int n, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

int mutt_time_parse_iso8601n(const char *s, size_t len, int64_t *epoch_ms)
{
    unsigned year, mon, day, hour, min, sec = 0, ms = 0;
    int64_t offset_s = 0;
    size_t i = 0;

    if (!s)
        return MUTT_EINVAL;
    if (!digits(s, len, &i, 4, &year) || !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &mon) ||
        !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &day))
        return MUTT_EINVAL;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return MUTT_EINVAL; /* a date alone is not an event time */
    i++;
    if (!digits(s, len, &i, 2, &hour) || !expect(s, len, &i, ':') || !digits(s, len, &i, 2, &min))
        return MUTT_EINVAL;
    if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, &sec))
            return MUTT_EINVAL;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            size_t start = ++i;
            unsigned scale = 100;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                ms += (unsigned)(s[i] - '0') * scale; /* truncate past milliseconds */
                scale /= 10;
                i++;
            }
            if (i == start)
                return MUTT_EINVAL;
        }
    }
    if (i < len) {
        if (s[i] == 'Z' || s[i] == 'z') {
            i++;
        } else if (s[i] == '+' || s[i] == '-') {
            int sign = s[i] == '-' ? -1 : 1;
            unsigned oh, om = 0;
            i++;
            if (!digits(s, len, &i, 2, &oh))
                return MUTT_EINVAL;
            if (i < len && s[i] == ':') {
                i++;
                if (!digits(s, len, &i, 2, &om))
                    return MUTT_EINVAL;
            } else if (i < len && !digits(s, len, &i, 2, &om)) {
                return MUTT_EINVAL;
            }
            if (oh > 23 || om > 59)
                return MUTT_EINVAL;
            offset_s = sign * (int64_t)(oh * 3600 + om * 60);
        } else {
            return MUTT_EINVAL;
        }
    }
    if (i != len)
        return MUTT_EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 || min > 59 ||
        sec > 60)
        return MUTT_EINVAL;

    int64_t secs = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec - offset_s;
    int64_t at = secs * 1000 + ms;
    /* Only instants the formatter can write (years 0000..9999 in UTC): an offset or a leap second
     * can carry 9999-12-31 or 0000-01-01 across the edge, and every stage that re-formats a
     * timestamp (audit rows, the web API) must be able to (one parser, one formatter). */
    if (at < MUTT_TIME_MIN_MS || at > MUTT_TIME_MAX_MS)
        return MUTT_EINVAL;
    if (epoch_ms)
        *epoch_ms = at;
    return 0;
}

int mutt_time_parse_iso8601(const char *s, int64_t *epoch_ms)
{
    if (!s)
        return MUTT_EINVAL;
    return mutt_time_parse_iso8601n(s, strlen(s), epoch_ms);
}

#define MIN_FORMAT_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define MAX_FORMAT_MS 253402300799999LL    /* 9999-12-31T23:59:59.999Z */

int mutt_time_format_iso8601_ms(int64_t epoch_ms, char *buf, size_t len)
{
    int64_t secs, days, y;
    unsigned m, d, sod, ms;

    if (!buf || len < MUTT_TIME_ISO8601_MS_LEN) {
        if (buf && len)
            buf[0] = '\0';
        return MUTT_EINVAL;
    }
    /* years 0000..9999 only; checked first, since the arithmetic below overflows near INT64_MIN */
    if (epoch_ms < MIN_FORMAT_MS || epoch_ms > MAX_FORMAT_MS) {
        buf[0] = '\0';
        return MUTT_EINVAL;
    }
    /* floor division so that times before 1970 still print a positive millisecond part */
    secs = epoch_ms / 1000;
    if (epoch_ms % 1000 < 0)
        secs--;
    ms = (unsigned)(epoch_ms - secs * 1000);
    days = secs / 86400;
    if (secs % 86400 < 0)
        days--;
    sod = (unsigned)(secs - days * 86400);
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        buf[0] = '\0';
        return MUTT_EINVAL;
    }
    snprintf(buf, len, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", (int)y, m, d, sod / 3600,
             sod / 60 % 60, sod % 60, ms);
    return 0;
}
