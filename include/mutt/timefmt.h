/* ISO 8601 / RFC 3339 timestamps <-> epoch milliseconds (CONTRACT W36, W43, D9). Pure: no clock,
 * no locale, no timezone database (a timestamp without offset is UTC, D9). Any thread. */
#ifndef MUTT_TIMEFMT_H
#define MUTT_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Length of "YYYY-MM-DDTHH:MM:SS.mmmZ" plus the NUL. */
#define MUTT_TIME_ISO8601_MS_LEN 25

/* The instants both functions handle: 0000-01-01T00:00:00.000Z .. 9999-12-31T23:59:59.999Z. */
#define MUTT_TIME_MIN_MS (-62167219200000LL)
#define MUTT_TIME_MAX_MS 253402300799999LL

/* Parses `YYYY-MM-DD(T|t| )HH:MM[:SS[(.|,)fraction]][Z|z|(+|-)HH[[:]MM]]` (NUL-terminated, no
 * surrounding spaces). Seconds 60 (leap) is accepted and rolls into the next minute; the fraction
 * may have any number of digits and is truncated to milliseconds; no offset means UTC.
 * Calendar-checked: month 13, day 32, Feb 30 or Feb 29 of a common year are rejected. The
 * instant, in UTC, must lie in MUTT_TIME_MIN_MS..MUTT_TIME_MAX_MS, so that whatever this accepts
 * mutt_time_format_iso8601_ms can write ("9999-12-31T23:59:59-23:59" is refused).
 * Returns 0 and writes *epoch_ms (may be NULL), or MUTT_EINVAL and leaves it untouched. */
int mutt_time_parse_iso8601(const char *s, int64_t *epoch_ms);

/* Same for a string that is not NUL-terminated (`len` bytes). */
int mutt_time_parse_iso8601n(const char *s, size_t len, int64_t *epoch_ms);

/* Writes `epoch_ms` as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into buf. Returns 0, or MUTT_EINVAL when
 * len < MUTT_TIME_ISO8601_MS_LEN or epoch_ms is outside MUTT_TIME_MIN_MS..MUTT_TIME_MAX_MS (buf
 * then holds ""). For every value the parser accepts, parse(format(v)) == v. */
int mutt_time_format_iso8601_ms(int64_t epoch_ms, char *buf, size_t len);

#endif
