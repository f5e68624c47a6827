/* DB_HOST / DB_PORT as libpq reads them (D38, D55): a comma list of hosts and either a matching
 * comma list of ports or one port for all. Pure: no I/O, usable by config validation and the pool. */
#ifndef MUTT_PG_HOSTS_H
#define MUTT_PG_HOSTS_H

#include <stddef.h>

#define MUTT_PG_MAX_HOSTS 16
#define MUTT_PG_HOST_MAX 256

struct mutt_pg_host {
    char host[MUTT_PG_HOST_MAX]; /* IP literal, name, or a unix-socket directory ("/...") */
    int port;
};

/* Pairs hosts with ports: ports has as many entries as hosts, or one (used for every host);
 * NULL/"" ports means 5432. Blanks around entries are ignored. Returns the number of hosts
 * (>= 1), or MUTT_EINVAL with a one-line reason in why (an empty entry, a bad port, too many
 * hosts, or lengths that do not match: the reason names both counts). */
int mutt_pg_hosts_parse(const char *hosts, const char *ports, struct mutt_pg_host *out, int max, char *why,
                        size_t why_len);

/* Checks a port list on its own (each entry 1..65535, none empty). Returns its length or
 * MUTT_EINVAL with why. */
int mutt_pg_ports_check(const char *ports, char *why, size_t why_len);

/* "host:port" ("[v6]:port" for an IPv6 literal) into buf; returns buf. */
const char *mutt_pg_host_format(const struct mutt_pg_host *h, char *buf, size_t len);

#endif
