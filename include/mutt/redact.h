/* Redaction of credentials in URLs before they reach a log line, a report or stdout (CONTRACT §9:
 * secrets never appear in logs). Pure string work: no I/O, no allocation. */
#ifndef MUTT_REDACT_H
#define MUTT_REDACT_H

#include <stddef.h>

/* Enough for any URL a config value can hold, with room for the masks. */
#define MUTT_REDACT_URL_MAX 2048

/* Copies `url` into `out` (`outlen` bytes, always NUL-terminated when outlen > 0; a longer
 * result is cut) with:
 *   - the password of a `scheme://user:password@host` replaced by `***`, and a userinfo without
 *     a colon (`https://TOKEN@host`, often a token) replaced by `***` as a whole;
 *   - the value of every query parameter whose name looks secret (contains, case-insensitively,
 *     token, key, pass, secret, sig, auth, credential or session) replaced by `***`.
 * Anything else (scheme, host, port, path, other parameters, fragment) is kept as is. A string
 * that is not a URL is copied unchanged. Borrows `url`; returns `out`. */
const char *mutt_redact_url(const char *url, char *out, size_t outlen);

#endif
