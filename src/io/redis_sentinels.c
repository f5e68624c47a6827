/* REDIS_SENTINELS lists (include/mutt/redis_sentinels.h). Pure. */
#include "mutt/redis_sentinels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"

static int parse_one(const char *s, size_t n, struct mutt_redis_addr *out, char *why, size_t why_len)
{
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0) {
        snprintf(why, why_len, "empty entry (expected host:port)");
        return MUTT_EINVAL;
    }
    const char *host = s;
    size_t hlen;
    const char *colon;
    if (*s == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || close + 1 >= s + n || close[1] != ':') {
            snprintf(why, why_len, "'%.*s': expected [ipv6]:port", (int)n, s);
            return MUTT_EINVAL;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ':')
                colon = s + i;
        if (!colon) {
            snprintf(why, why_len, "'%.*s': missing :port", (int)n, s);
            return MUTT_EINVAL;
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        snprintf(why, why_len, "'%.*s': %s host", (int)n, s, hlen ? "too long a" : "empty");
        return MUTT_EINVAL;
    }
    const char *p = colon + 1;
    size_t plen = (size_t)(s + n - p);
    long port = 0;
    if (plen == 0 || plen > 5) {
        port = -1;
    } else {
        for (size_t i = 0; i < plen; i++) {
            if (p[i] < '0' || p[i] > '9') {
                port = -1;
                break;
            }
            port = port * 10 + (p[i] - '0');
        }
    }
    if (port < 1 || port > 65535) {
        snprintf(why, why_len, "'%.*s': port must be 1..65535", (int)n, s);
        return MUTT_EINVAL;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
    return 0;
}

int mutt_redis_sentinels_parse(const char *list, struct mutt_redis_addr *out, int max, char *why, size_t why_len)
{
    if (!list)
        return 0;
    const char *s = list;
    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s)
        return 0;
    int n = 0;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (n >= max) {
            snprintf(why, why_len, "more than %d sentinels", max);
            return MUTT_EINVAL;
        }
        if (parse_one(s, len, &out[n], why, why_len) != 0)
            return MUTT_EINVAL;
        n++;
        if (!comma)
            break;
        s = comma + 1;
    }
    return n;
}

const char *mutt_redis_addr_format(const struct mutt_redis_addr *a, char *buf, size_t len)
{
    if (strchr(a->host, ':'))
        snprintf(buf, len, "[%s]:%d", a->host, a->port);
    else
        snprintf(buf, len, "%s:%d", a->host, a->port);
    return buf;
}
