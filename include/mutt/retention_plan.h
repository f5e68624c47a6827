/* The decisions of a retention run (CONTRACT §11, D28) without any I/O: cutoffs, which monthly
 * event_audit_log partitions lie wholly before a cutoff, the DLQ item age verdict and the daily
 * schedule. Time is always a parameter (epoch ms, UTC). The retention stage does the I/O. */
#ifndef MUTT_RETENTION_PLAN_H
#define MUTT_RETENTION_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUTT_RETENTION_DAY_MS 86400000LL
/* Prefix of the monthly partitions mutt_ensure_partitions creates: event_audit_log_YYYY_MM. */
#define MUTT_RETENTION_PARTITION_PREFIX "event_audit_log_"

/* now_ms - days whole days. days < 0 counts as 0. */
int64_t mutt_retention_cutoff_ms(int64_t now_ms, int64_t days);

/* Parses exactly "event_audit_log_YYYY_MM" (4-digit year >= 1970, month 01..12, nothing after).
 * Returns 0 and writes *year, *month, or MUTT_EINVAL (the DEFAULT partition, any other name). */
int mutt_retention_partition_month(const char *name, int *year, int *month);

/* Epoch ms of YYYY-MM-01T00:00:00Z (month 1..12). */
int64_t mutt_retention_month_start_ms(int year, int month);

/* True when `name` is a monthly partition whose whole range [month start, next month start)
 * lies before cutoff_ms, so it can be dropped instead of deleted row by row. False for the
 * DEFAULT partition and any name that is not a monthly partition (those are batch-deleted). */
bool mutt_retention_partition_droppable(const char *name, int64_t cutoff_ms);

/* Verdict on one DLQ item (any bytes): EXPIRED when it is a JSON object whose `_failed_at` is an
 * ISO 8601 time strictly before cutoff_ms; KEEP otherwise, including unparseable items and items
 * without (or with a non-string or unparseable) `_failed_at`: never drop what we cannot date. */
enum mutt_retention_dlq_verdict { MUTT_RETENTION_DLQ_KEEP = 0, MUTT_RETENTION_DLQ_EXPIRED };
enum mutt_retention_dlq_verdict mutt_retention_dlq_decide(const char *item, size_t len, int64_t cutoff_ms);

/* The next start of hour `hour` (0..23) UTC strictly after now_ms. */
int64_t mutt_retention_next_run_ms(int64_t now_ms, int hour);

/* At start-up: run at once when there never was a run (last_run_ms <= 0) or the last one is at
 * least a day old. */
bool mutt_retention_due_at_start(int64_t now_ms, int64_t last_run_ms);

#endif
