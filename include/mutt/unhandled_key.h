/* Redis key names of the unhandled-event store (CONTRACT §4, D14, D36), built from event data
 * (hostname, message template) so that no hostname or template can reach another one's keys:
 * the hostname is length-prefixed, the template is hashed to a fixed 16 hex digits, and a fixed
 * one-letter tag right after the configured prefix keeps the kinds of key apart. Pure: no I/O,
 * no allocation, any thread. */
#ifndef MUTT_UNHANDLED_KEY_H
#define MUTT_UNHANDLED_KEY_H

#include <stddef.h>
#include <stdint.h>

/* Kinds of per-(hostname, template) key; the value is the tag written after "<prefix>:". */
enum mutt_unhandled_key_kind {
    MUTT_UNHANDLED_KEY_COUNTER = 'c', /* INCR counter of the fixed window */
    MUTT_UNHANDLED_KEY_MARKER = 'm',  /* "triggered" marker: meta-alert sent for this window */
    MUTT_UNHANDLED_KEY_INFO = 'i',    /* hash read by GET /api/v1/unhandled */
};

/* Key suffixes, for readers that only know the prefix (the GET script joins
 * "<prefix>" MUTT_UNHANDLED_INFO_SUFFIX with a member). "_top" keeps its old name: its stale
 * members (old-format info keys) are dropped by the GET script, so it cleans itself up. */
#define MUTT_UNHANDLED_TOP_SUFFIX ":_top"
#define MUTT_UNHANDLED_INFO_SUFFIX ":i:"

/* The decimal length, ':', the hostname bytes, ':' and 16 lower-case hex digits of the template
 * hash: "<len>:<hostname>:<hash16>". It is the top ZSET's member and the variable tail of every
 * per-template key; a reader can always split it back (length first, then exactly len bytes), so
 * two different (hostname, hash) pairs never give the same member, whatever bytes the hostname
 * holds (':', digits, "_info", "triggered", NUL included).
 * hostname may be NULL when host_len is 0. Writes a NUL-terminated string into out and returns
 * its length, or MUTT_EFULL when it does not fit in cap (out then holds "" if cap > 0). */
int mutt_unhandled_member(const char *hostname, size_t host_len, uint64_t template_hash, char *out, size_t cap);

/* "<prefix>:<tag>:<member>" for one (hostname, template hash). prefix is NUL-terminated
 * (UNHANDLED_PREFIX, fixed by the operator). Returns the length written or MUTT_EFULL (as above),
 * MUTT_EINVAL for an unknown kind. */
int mutt_unhandled_key(const char *prefix, enum mutt_unhandled_key_kind kind, const char *hostname, size_t host_len,
                       uint64_t template_hash, char *out, size_t cap);

/* "<prefix>:h:<len>:<hostname>": the set of template hashes tracked for one host in the current
 * window (unhandled_max_templates_per_host, D62). Returns the length or MUTT_EFULL. */
int mutt_unhandled_host_key(const char *prefix, const char *hostname, size_t host_len, char *out, size_t cap);

/* The template hash as the 16 hex digits used in members (out: 17 bytes). */
void mutt_unhandled_hash_hex(uint64_t template_hash, char out[17]);

#endif
