/* Structured log lines to stderr (CONTRACT §12, D29). Owns the process-wide log settings.
 * Each line is built in a bounded stack buffer and emitted with one write(2) so lines from
 * children/threads never interleave mid-line. Loop thread only; never blocks beyond stderr. */
#include "mutt/log.h"
#include "mutt/error.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192 /* a longer line is truncated, never split */
#define LOG_MSG_MAX 4096
#define LOG_POD_MAX 256

static struct {
    enum mutt_log_format format;
    enum mutt_log_level level;
    char pod[LOG_POD_MAX];
} log_state = { MUTT_LOG_TEXT, MUTT_LOG_INFO, "" };

static const char *const level_names[] = { "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL" };

void mutt_log_configure(enum mutt_log_format format, enum mutt_log_level level, const char *pod)
{
    log_state.format = format;
    log_state.level = level;
    if (pod)
        snprintf(log_state.pod, sizeof log_state.pod, "%s", pod);
}

int mutt_log_parse_level(const char *s, enum mutt_log_level *out)
{
    if (!s)
        return MUTT_EINVAL;
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum mutt_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "WARN") == 0) {
        *out = MUTT_LOG_WARNING;
        return 0;
    }
    return MUTT_EINVAL;
}

int mutt_log_parse_format(const char *s, enum mutt_log_format *out)
{
    if (!s)
        return MUTT_EINVAL;
    if (strcasecmp(s, "text") == 0) {
        *out = MUTT_LOG_TEXT;
        return 0;
    }
    if (strcasecmp(s, "json") == 0) {
        *out = MUTT_LOG_JSON;
        return 0;
    }
    return MUTT_EINVAL;
}

enum mutt_log_level mutt_log_get_level(void)
{
    return log_state.level;
}

/* Bounded appender: once full, further appends are dropped and `len` stays at cap - 1 so the
 * trailing newline can always be placed. */
struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
    bool truncated;
};

static void put_char(struct line *l, char c)
{
    if (l->len < sizeof l->buf - 2) /* keep room for '\n' */
        l->buf[l->len++] = c;
    else
        l->truncated = true;
}

static void put_str(struct line *l, const char *s)
{
    while (*s)
        put_char(l, *s++);
}

/* JSON string body (no quotes): escapes ", \ and every control character, so a message that
 * embeds user data cannot break the line or forge fields. */
static void put_json_escaped(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': put_str(l, "\\\""); break;
        case '\\': put_str(l, "\\\\"); break;
        case '\n': put_str(l, "\\n"); break;
        case '\r': put_str(l, "\\r"); break;
        case '\t': put_str(l, "\\t"); break;
        case '\b': put_str(l, "\\b"); break;
        case '\f': put_str(l, "\\f"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                put_str(l, "\\u00");
                put_char(l, hex[c >> 4]);
                put_char(l, hex[c & 0xf]);
            } else {
                put_char(l, (char)c);
            }
        }
    }
}

/* Text mode: control characters become escapes so one event is always one line. */
static void put_text_escaped(struct line *l, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            put_str(l, "\\n");
        else if (c == '\r')
            put_str(l, "\\r");
        else if (c < 0x20 || c == 0x7f)
            put_char(l, '?');
        else
            put_char(l, (char)c);
    }
}

static bool needs_quotes(const char *s)
{
    if (!*s)
        return true;
    for (; *s; s++)
        if (*s == ' ' || *s == '"' || *s == '=' || (unsigned char)*s < 0x20)
            return true;
    return false;
}

static void put_json_field(struct line *l, const char *key, const char *value, bool first)
{
    if (!first)
        put_char(l, ',');
    put_char(l, '"');
    put_json_escaped(l, key);
    put_str(l, "\":\"");
    put_json_escaped(l, value);
    put_char(l, '"');
}

static void format_timestamp(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
}

static void build_json(struct line *l, const char *ts, const char *lvl, const char *logger,
                       const char *correlation_id, const char *const *extras, const char *msg)
{
    l->len = 0;
    l->truncated = false;
    put_char(l, '{');
    put_json_field(l, "timestamp", ts, true);
    put_json_field(l, "level", lvl, false);
    put_json_field(l, "message", msg, false);
    put_json_field(l, "logger", logger, false);
    put_json_field(l, "pod_name", log_state.pod, false);
    if (correlation_id)
        put_json_field(l, "correlation_id", correlation_id, false);
    for (const char *const *kv = extras; kv && kv[0]; kv += 2)
        put_json_field(l, kv[0], kv[1] ? kv[1] : "", false);
    put_char(l, '}');
}

static void build_text(struct line *l, const char *ts, const char *lvl, const char *logger,
                       const char *correlation_id, const char *const *extras, const char *msg)
{
    l->len = 0;
    l->truncated = false;
    put_str(l, ts);
    put_char(l, ' ');
    put_str(l, lvl);
    put_str(l, " [");
    put_text_escaped(l, logger);
    put_str(l, "]");
    if (log_state.pod[0]) {
        put_str(l, " pod=");
        put_text_escaped(l, log_state.pod);
    }
    if (correlation_id) {
        put_str(l, " cid=");
        put_text_escaped(l, correlation_id);
    }
    put_char(l, ' ');
    put_text_escaped(l, msg);
    for (const char *const *kv = extras; kv && kv[0]; kv += 2) {
        const char *v = kv[1] ? kv[1] : "";
        put_char(l, ' ');
        put_text_escaped(l, kv[0]);
        put_char(l, '=');
        if (needs_quotes(v)) {
            put_char(l, '"');
            put_json_escaped(l, v);
            put_char(l, '"');
        } else {
            put_text_escaped(l, v);
        }
    }
}

void mutt_log_kv(enum mutt_log_level level, const char *logger, const char *correlation_id,
                 const char *const *extras, const char *fmt, ...)
{
    if ((int)level < (int)log_state.level)
        return;
    if ((int)level < 0 || (int)level > (int)MUTT_LOG_CRITICAL)
        level = MUTT_LOG_ERROR;
    int saved_errno = errno; /* callers often log right before reading errno */

    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char ts[96];
    format_timestamp(ts, sizeof ts);
    const char *lvl = level_names[level];
    if (!logger)
        logger = "mutt";

    /* 8 KiB is too much for deep callback stacks; thread-local in case a worker thread logs */
    static __thread struct line l;
    if (log_state.format == MUTT_LOG_JSON) {
        build_json(&l, ts, lvl, logger, correlation_id, extras, msg);
        if (l.truncated) {
            /* A cut JSON line is unparseable: emit a shorter, still valid object instead. */
            msg[512] = '\0';
            build_json(&l, ts, lvl, logger, correlation_id, NULL, msg);
        }
    } else {
        build_text(&l, ts, lvl, logger, correlation_id, extras, msg);
    }
    l.buf[l.len++] = '\n';

    ssize_t n;
    do {
        n = write(STDERR_FILENO, l.buf, l.len);
    } while (n < 0 && errno == EINTR);
    errno = saved_errno;
}
