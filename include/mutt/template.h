/* Unhandled-event templates (CONTRACT §4, D14, W24): masks the varying tokens of a message so
 * "link down on port 12" and "... port 13" count as one template, and hashes the result for
 * the Redis counter key. Pure, no allocation, any thread. */
#ifndef MUTT_TEMPLATE_H
#define MUTT_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

/* Writes the template of msg[0..len) to out (NUL-terminated, at most cap-1 bytes; cap >= 3*len+1
 * always suffices) and returns the number of bytes written. A template that does not fit is cut
 * at a UTF-8 character boundary (messages that share their first cap-1 template bytes group).
 * Tokens are replaced in this order of precedence, left to right (D14):
 *   <uuid>  8-4-4-4-12 hex digits, not touching other letters or digits;
 *   <hex>   "0x"/"0X" plus hex digits, where the 0 does not follow a letter or digit;
 *   <hex>   a run of >= 8 hex digits holding a digit and a letter a-f (any case), not touching
 *           other letters or digits (a run of decimal digits alone is a number: counters of any
 *           width group together);
 *   <ip>    a dotted quad of 0..255 not touching digits, letters or further ".digit";
 *   <n>     every other run of decimal digits, also inside words: "eth0" -> "eth<n>" and
 *           "GigabitEthernet0/1" -> "GigabitEthernet<n>/<n>", deliberately, so one kind of message
 *           about different ports or interfaces of a host forms one template.
 * Everything else (case, punctuation, non-ASCII bytes) is copied unchanged. cap 0 writes nothing. */
size_t mutt_template_mask(const char *msg, size_t len, char *out, size_t cap);

/* FNV-1a 64-bit hash of s[0..len): stable across builds and hosts (Redis key material). */
uint64_t mutt_template_hash(const char *s, size_t len);

#endif
