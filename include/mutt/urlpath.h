/* Request-path routing on the raw (undecoded) path: each segment is percent-decoded exactly
 * once, so `%2F` stays inside a parameter, `%2541` is the literal text `%41`, and a `%00` can
 * never truncate a value (it is refused). Pure: no I/O, no allocation beyond the values the
 * caller asks for. */
#ifndef MUTT_URLPATH_H
#define MUTT_URLPATH_H

#include <stdbool.h>
#include <stddef.h>

/* Percent-decodes src[0..len) once into dst (room for len+1 bytes), NUL-terminated; *out_len
 * gets the decoded length. A `%` not followed by two hex digits is kept as is. Returns 0, or
 * MUTT_EINVAL when the decoded text contains a NUL byte (dst is then unusable as a C string). */
int mutt_urlpath_decode(const char *src, size_t len, char *dst, size_t *out_len);

/* Query-string decoding: like mutt_urlpath_decode, and '+' is a space. A `%00` ends the value
 * as a C string (query values are read as C strings). */
void mutt_urlpath_decode_query(const char *src, size_t len, char *dst);

/* A captured `{name}` segment. */
struct mutt_urlpath_param {
    const char *name; /* borrowed from the pattern segment (after its '{' marker) */
    char *value;      /* malloc'd, decoded once; the caller frees */
};

enum mutt_urlpath_result {
    MUTT_URLPATH_NO_MATCH = 0,
    MUTT_URLPATH_MATCH = 1,
    MUTT_URLPATH_BAD_PARAM = 2, /* the shape matched but a parameter decodes to a NUL byte */
};

/* Matches the raw path (without the query) against pattern segments: a literal segment equals
 * the path segment once decoded; "{name" (the '{' marks a parameter) takes any non-empty segment;
 * `*` as the last segment (when `wildcard`) takes the rest. A trailing slash is tolerated.
 * With params == NULL only the shape is checked. Otherwise up to max_params values are decoded
 * into params (*nparams set); on BAD_PARAM, *bad_name names the parameter and nothing is left
 * allocated. Returns an enum mutt_urlpath_result, or MUTT_ENOMEM (nothing left allocated). */
int mutt_urlpath_match(const char *const *segs, size_t nsegs, bool wildcard, const char *path, size_t plen,
                       struct mutt_urlpath_param *params, size_t max_params, size_t *nparams,
                       const char **bad_name);

#endif
