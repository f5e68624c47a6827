/* REDIS_SENTINELS as the Redis adapter reads it (D37): a comma list of `host:port` (`[v6]:port`
 * for an IPv6 literal). Pure: no I/O, used by config validation, the adapter and the CLI. */
#ifndef MUTT_REDIS_SENTINELS_H
#define MUTT_REDIS_SENTINELS_H

#include <stddef.h>

#define MUTT_REDIS_MAX_SENTINELS 16
#define MUTT_REDIS_SENTINEL_HOST_MAX 256

struct mutt_redis_addr {
    char host[MUTT_REDIS_SENTINEL_HOST_MAX];
    int port;
};

/* Parses the list; blanks around entries are ignored. Returns the number of sentinels (0 for
 * NULL/"" = no sentinels), or MUTT_EINVAL with a one-line reason in why (an empty entry, a
 * missing or bad port, too many entries). */
int mutt_redis_sentinels_parse(const char *list, struct mutt_redis_addr *out, int max, char *why, size_t why_len);

/* "host:port" ("[v6]:port" for an IPv6 literal) into buf; returns buf. */
const char *mutt_redis_addr_format(const struct mutt_redis_addr *a, char *buf, size_t len);

#endif
