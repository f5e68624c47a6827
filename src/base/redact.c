/* URL credential redaction (include/mutt/redact.h). Pure: the callers (log lines of forward,
 * relay, check-config, config reports) own the buffers. */
#include "mutt/redact.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define MASK "***"

struct out {
    char *p;
    size_t len, cap; /* cap excludes the NUL */
};

static void put(struct out *o, const char *s, size_t n)
{
    size_t room = o->cap - o->len;
    if (n > room)
        n = room;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

/* Substrings of parameter names that carry credentials in the wild: api_key, apikey, access_token,
 * password, passwd, client_secret, X-Amz-Signature, sig, auth, credential, sessionid... Erring
 * towards masking is cheap: the value is only shown, never used. */
static bool secret_name(const char *name, size_t n)
{
    static const char *const words[] = { "token", "key", "pass", "secret", "sig", "auth", "credential", "session" };
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (strncasecmp(name + i, words[w], wl) == 0)
                return true;
    }
    return false;
}

/* The query (after '?', up to '#' or the end): name=value pairs split by '&' or ';'. */
static void put_query(struct out *o, const char *q, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t end = i;
        while (end < n && q[end] != '&' && q[end] != ';')
            end++;
        const char *eq = memchr(q + i, '=', end - i);
        if (eq && secret_name(q + i, (size_t)(eq - (q + i)))) {
            put(o, q + i, (size_t)(eq - (q + i)) + 1);
            put(o, MASK, strlen(MASK));
        } else {
            put(o, q + i, end - i);
        }
        if (end < n)
            put(o, q + end, 1);
        i = end + 1;
    }
}

const char *mutt_redact_url(const char *url, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return out;
    struct out o = { out, 0, outlen - 1 };
    out[0] = '\0';
    if (!url)
        return out;
    size_t n = strlen(url);
    const char *p = url;
    const char *sep = strstr(url, "://");
    if (sep && strcspn(url, "/?#") < (size_t)(sep - url))
        sep = NULL; /* a "://" inside a path or query is no scheme */
    if (sep) {
        const char *auth = sep + 3;
        size_t alen = strcspn(auth, "/?#");
        put(&o, url, (size_t)(auth - url));
        /* the last '@' of the authority ends the userinfo (a password may contain '@') */
        const char *at = NULL;
        for (size_t i = 0; i < alen; i++)
            if (auth[i] == '@')
                at = auth + i;
        if (at) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon)
                put(&o, auth, (size_t)(colon - auth) + 1);
            put(&o, MASK, strlen(MASK));
            put(&o, at, (size_t)(auth + alen - at));
        } else {
            put(&o, auth, alen);
        }
        p = auth + alen;
    }
    const char *q = memchr(p, '?', (size_t)(url + n - p));
    if (!q) {
        put(&o, p, (size_t)(url + n - p));
        return out;
    }
    put(&o, p, (size_t)(q - p) + 1);
    const char *frag = memchr(q + 1, '#', (size_t)(url + n - q - 1));
    const char *qend = frag ? frag : url + n;
    put_query(&o, q + 1, (size_t)(qend - q - 1));
    if (frag)
        put(&o, frag, (size_t)(url + n - frag));
    return out;
}
