/* Syslog line → event fields (CONTRACT D57): RFC 5424 and RFC 3164 lines, shared by `mutt relay`
 * and the native syslog listeners. Pure: jansson only, no I/O; the arrival time and the sender's
 * address come in as arguments. Any thread, no shared state. */
#ifndef MUTT_SYSLOG_PARSE_H
#define MUTT_SYSLOG_PARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the line's header may lack, supplied by whoever received it. */
struct mutt_syslog_origin {
    const char *default_host; /* hostname when the header has none (borrowed, not NULL) */
    const char *source_ip;    /* sender's address as text, or NULL when unknown (the relay reads a
                               * pipe): then the event has no source_ip */
    int64_t now_ms;           /* arrival time, Unix ms: the timestamp when the header has none or
                               * it is RFC 3164 (no year, no zone) */
};

/* Parses one line (len bytes; trailing CR/LF/spaces and leading white space are ignored) into a
 * new event object the caller owns (json_decref), or NULL for a blank line or on OOM.
 * "<PRI>" gives facility (PRI >> 3, integer), facility_text and syslog_severity (PRI & 7).
 * RFC 5424 ("<PRI>1 TS HOST APP PROCID MSGID SD MSG"): timestamp (when ISO 8601), hostname,
 * program, procid, msgid ("-" leaves a field out) and structured_data as
 * {"SD-ID": {"PARAM": "value", ...}, ...} (left out when "-" or malformed).
 * RFC 3164 ("<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: msg"): hostname, program, procid and
 * syslog_timestamp (the header's time as written); message keeps the TAG.
 * Any other text becomes the message. Always: hostname (default_host when the header has none),
 * message, timestamp, source "syslog", and source_ip when origin gives one. Bytes that are not
 * UTF-8 are kept as '?'. Never fails on content. */
json_t *mutt_syslog_parse(const char *line, size_t len, const struct mutt_syslog_origin *origin);

/* The part of a line the parser reads: trailing CR/LF/spaces and leading white space cut off.
 * Narrows *line and *len in place; false when nothing is left (a blank line). */
bool mutt_syslog_trim(const char **line, size_t *len);

/* The facility's keyword as rsyslog names it ("kern", "user", ..., "local7"), or NULL when
 * facility is outside 0..23. Static storage. */
const char *mutt_syslog_facility_name(int facility);

#endif
