/* DB_HOST/DB_PORT lists (include/mutt/pg_hosts.h). Pure. */
#include "mutt/pg_hosts.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"

#define PG_DEFAULT_PORT 5432

/* Next comma-separated entry of *p, blanks trimmed, into [*s, *s + *n). False at the end. */
static bool next_entry(const char **p, const char **s, size_t *n)
{
    if (!*p)
        return false;
    const char *start = *p, *comma = strchr(start, ',');
    const char *end = comma ? comma : start + strlen(start);
    *p = comma ? comma + 1 : NULL;
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    *s = start;
    *n = (size_t)(end - start);
    return true;
}

static bool parse_port(const char *s, size_t n, int *out)
{
    if (n == 0 || n > 5)
        return false;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *out = v;
    return true;
}

int mutt_pg_ports_check(const char *ports, char *why, size_t why_len)
{
    const char *p = ports ? ports : "", *s;
    size_t n;
    int count = 0, port;
    while (next_entry(&p, &s, &n)) {
        if (!parse_port(s, n, &port)) {
            if (n > 0 && strspn(s, "0123456789") >= n) {
                snprintf(why, why_len, "port must be between 1 and 65535");
                return MUTT_EINVAL;
            }
            snprintf(why, why_len, n == 0 ? "empty entry in the port list" : "'%.*s' is not a port number (1..65535)",
                     (int)(n > 16 ? 16 : n), s);
            return MUTT_EINVAL;
        }
        count++;
    }
    return count;
}

int mutt_pg_hosts_parse(const char *hosts, const char *ports, struct mutt_pg_host *out, int max, char *why,
                        size_t why_len)
{
    const char *p = hosts ? hosts : "", *s;
    size_t n;
    int nh = 0;
    if (!hosts || !*hosts) { /* libpq's default (the local socket) */
        if (max < 1) {
            snprintf(why, why_len, "no room for a host");
            return MUTT_EINVAL;
        }
        out[0].host[0] = '\0';
        out[0].port = PG_DEFAULT_PORT;
        nh = 1;
        p = NULL;
    }
    while (next_entry(&p, &s, &n)) {
        if (n == 0) {
            snprintf(why, why_len, "empty entry in the host list");
            return MUTT_EINVAL;
        }
        if (nh >= max || n >= MUTT_PG_HOST_MAX) {
            snprintf(why, why_len, nh >= max ? "more than %d hosts" : "host name too long (%d characters at most)",
                     nh >= max ? max : MUTT_PG_HOST_MAX - 1);
            return MUTT_EINVAL;
        }
        memcpy(out[nh].host, s, n);
        out[nh].host[n] = '\0';
        out[nh].port = PG_DEFAULT_PORT;
        nh++;
    }
    if (!ports || !*ports)
        return nh;
    int np = mutt_pg_ports_check(ports, why, why_len);
    if (np < 0)
        return np;
    if (np != 1 && np != nh) {
        snprintf(why, why_len, "%d hosts but %d ports (give one port for all hosts, or one per host)", nh, np);
        return MUTT_EINVAL;
    }
    p = ports;
    for (int i = 0; i < nh; i++) {
        if (i < np)
            next_entry(&p, &s, &n);
        parse_port(s, n, &out[i].port);
    }
    return nh;
}

const char *mutt_pg_host_format(const struct mutt_pg_host *h, char *buf, size_t len)
{
    bool v6 = strchr(h->host, ':') != NULL && h->host[0] != '/';
    snprintf(buf, len, v6 ? "[%s]:%d" : "%s:%d", h->host, h->port);
    return buf;
}
