/* Structured logging: one line per event of interest to stderr, text or JSON (CONTRACT §12,
 * D29 field names: timestamp level message logger pod_name correlation_id + extras).
 * Never pass a secret. Loop thread only (not thread-safe, by design: there is one thread). */
#ifndef MUTT_LOG_H
#define MUTT_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum mutt_log_level { MUTT_LOG_DEBUG = 0, MUTT_LOG_INFO, MUTT_LOG_WARNING, MUTT_LOG_ERROR, MUTT_LOG_CRITICAL };
enum mutt_log_format { MUTT_LOG_TEXT = 0, MUTT_LOG_JSON };

/* Sets format, minimum level and pod name (copied). Safe to call again (SIGHUP). */
void mutt_log_configure(enum mutt_log_format format, enum mutt_log_level level, const char *pod);
/* Parses "DEBUG".."CRITICAL" (case-insensitive, WARN accepted). Returns 0 or MUTT_EINVAL. */
int mutt_log_parse_level(const char *s, enum mutt_log_level *out);
int mutt_log_parse_format(const char *s, enum mutt_log_format *out);
enum mutt_log_level mutt_log_get_level(void);

/* `logger` names the module or role ("redis", "ingest"); `correlation_id` may be NULL.
 * `extras` may be NULL or a NULL-terminated list of key, value string pairs added as fields. */
void mutt_log_kv(enum mutt_log_level level, const char *logger, const char *correlation_id,
                 const char *const *extras, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define mutt_log_debug(logger, ...) mutt_log_kv(MUTT_LOG_DEBUG, logger, NULL, NULL, __VA_ARGS__)
#define mutt_log_info(logger, ...) mutt_log_kv(MUTT_LOG_INFO, logger, NULL, NULL, __VA_ARGS__)
#define mutt_log_warn(logger, ...) mutt_log_kv(MUTT_LOG_WARNING, logger, NULL, NULL, __VA_ARGS__)
#define mutt_log_error(logger, ...) mutt_log_kv(MUTT_LOG_ERROR, logger, NULL, NULL, __VA_ARGS__)

#endif
