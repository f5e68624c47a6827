/* Raw-path routing with one percent-decoding per segment (see include/mutt/urlpath.h). h2o's
 * path_normalized is already decoded, so routing on it and decoding parameters again read
 * `host%2541` as `hostA`, cut values at `%2500`, and split a `%2F` hostname into two segments.
 * Pure logic, in base so the HTTP server (io) can use it. */
#include "mutt/urlpath.h"

#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The one percent-decoder: src[0..len) into dst (room for len+1), NUL-terminated; '+' becomes
 * a space when plus_is_space. Returns the decoded length; *has_nul when a NUL was decoded. */
static size_t decode(const char *src, size_t len, char *dst, bool plus_is_space, bool *has_nul)
{
    size_t o = 0;
    *has_nul = false;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%' && i + 2 < len && hexval(src[i + 1]) >= 0 && hexval(src[i + 2]) >= 0) {
            c = (char)(hexval(src[i + 1]) * 16 + hexval(src[i + 2]));
            i += 2;
        } else if (plus_is_space && c == '+') {
            c = ' ';
        }
        if (c == '\0')
            *has_nul = true;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return o;
}

int mutt_urlpath_decode(const char *src, size_t len, char *dst, size_t *out_len)
{
    bool has_nul;
    size_t o = decode(src, len, dst, false, &has_nul);
    if (out_len)
        *out_len = o;
    return has_nul ? MUTT_EINVAL : 0;
}

void mutt_urlpath_decode_query(const char *src, size_t len, char *dst)
{
    bool has_nul; /* a decoded NUL ends the value as a C string, as for any query value */
    decode(src, len, dst, true, &has_nul);
}

/* Does the raw segment, decoded once, equal the literal? Decoding never lengthens a segment. */
static bool literal_equals(const char *lit, const char *raw, size_t rlen)
{
    size_t llen = strlen(lit);
    if (rlen < llen)
        return false;
    size_t i = 0, k = 0;
    while (i < rlen) {
        char c = raw[i];
        if (c == '%' && i + 2 < rlen && hexval(raw[i + 1]) >= 0 && hexval(raw[i + 2]) >= 0) {
            c = (char)(hexval(raw[i + 1]) * 16 + hexval(raw[i + 2]));
            i += 3;
        } else {
            i++;
        }
        if (k >= llen || lit[k] != c || c == '\0')
            return false;
        k++;
    }
    return k == llen;
}

static void free_params(struct mutt_urlpath_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(params[i].value);
        params[i].value = NULL;
    }
}

int mutt_urlpath_match(const char *const *segs, size_t nsegs, bool wildcard, const char *path, size_t plen,
                       struct mutt_urlpath_param *params, size_t max_params, size_t *nparams,
                       const char **bad_name)
{
    const char *p = path, *end = path + plen;
    size_t n = 0;
    if (nparams)
        *nparams = 0;
    if (p < end && *p == '/')
        p++;
    for (size_t i = 0; i < nsegs; i++) {
        const char *seg = segs[i];
        if (wildcard && i == nsegs - 1)
            goto matched; /* `*` swallows the rest, including nothing */
        if (p > end)
            goto no_match;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash ? slash : end;
        size_t slen = (size_t)(seg_end - p);
        if (seg[0] == '{') {
            if (slen == 0)
                goto no_match;
            if (params) {
                if (n >= max_params)
                    goto no_match;
                char *v = malloc(slen + 1);
                if (v == NULL) {
                    free_params(params, n);
                    return MUTT_ENOMEM;
                }
                params[n].name = seg + 1;
                params[n].value = v;
                n++;
                if (mutt_urlpath_decode(p, slen, v, NULL) != 0) {
                    if (bad_name)
                        *bad_name = seg + 1;
                    free_params(params, n);
                    return MUTT_URLPATH_BAD_PARAM;
                }
            }
        } else if (!literal_equals(seg, p, slen)) {
            goto no_match;
        }
        p = slash ? slash + 1 : end + 1;
    }
    /* all segments consumed: the path must be consumed too (a trailing slash is tolerated) */
    if (p < end)
        goto no_match;
matched:
    if (nparams)
        *nparams = n;
    return MUTT_URLPATH_MATCH;
no_match:
    if (params)
        free_params(params, n);
    return MUTT_URLPATH_NO_MATCH;
}
