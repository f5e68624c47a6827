/* libpq conninfo strings: the adapter's own (one host and address per attempt) and
 * mutt_pg_conninfo's (the whole host list, for blocking callers). Values are quoted as libpq
 * requires; the password is wiped from any buffer given up. */
#include "mutt/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/pg_hosts.h"
#include "pg_internal.h"

void pg_sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* key='value' with ' and \ escaped as libpq requires; NULL or empty values are left out. */
static void sb_kv(struct sbuf *b, const char *key, const char *val)
{
    if (!val || !*val)
        return;
    if (b->len)
        pg_sb_put(b, " ", 1);
    pg_sb_put(b, key, strlen(key));
    pg_sb_put(b, "='", 2);
    for (const char *p = val; *p; p++) {
        if (*p == '\'' || *p == '\\')
            pg_sb_put(b, "\\", 1);
        pg_sb_put(b, p, 1);
    }
    pg_sb_put(b, "'", 1);
}

/* libpq's own default is any; with several hosts MUTT wants the writable one (D38). */
const char *pg_effective_tsa(const struct mutt_pg_opts *o, int nhosts)
{
    if (o->target_session_attrs && o->target_session_attrs[0])
        return o->target_session_attrs;
    return nhosts > 1 ? "read-write" : NULL;
}

/* host, hostaddr and port as libpq takes them: one entry, or lists of equal length (or one port
 * for all). tsa NULL/"" leaves target_session_attrs at libpq's default. */
char *pg_build_conninfo(const struct mutt_pg_opts *o, const char *password, const char *host,
                            const char *hostaddr, const char *port, const char *tsa, bool with_timeout)
{
    struct sbuf b = {0};
    char num[32];
    sb_kv(&b, "host", host);
    sb_kv(&b, "hostaddr", hostaddr);
    sb_kv(&b, "port", port);
    sb_kv(&b, "dbname", o->dbname);
    sb_kv(&b, "user", o->user);
    sb_kv(&b, "password", password);
    if (o->tls) {
        static const char *const sslmodes[] = {
            [MUTT_PG_TLS_VERIFY_NONE] = "require",
            [MUTT_PG_TLS_VERIFY_CA] = "verify-ca",
            [MUTT_PG_TLS_VERIFY_FULL] = "verify-full",
        };
        unsigned v = (unsigned)o->tls_verify;
        sb_kv(&b, "sslmode", v < sizeof sslmodes / sizeof sslmodes[0] ? sslmodes[v] : "verify-full");
        /* libpq treats require plus an existing sslrootcert as verify-ca: none means none */
        if (o->tls_verify != MUTT_PG_TLS_VERIFY_NONE)
            sb_kv(&b, "sslrootcert", o->ca_file);
    } else {
        sb_kv(&b, "sslmode", "disable");
    }
    sb_kv(&b, "application_name", o->application_name ? o->application_name : "mutt");
    sb_kv(&b, "target_session_attrs", tsa);
    if (with_timeout && o->connect_timeout_ms > 0) {
        /* libpq takes whole seconds (and treats 1 as 2); round up. Only honoured by blocking connects. */
        snprintf(num, sizeof(num), "%llu", (unsigned long long)((o->connect_timeout_ms + 999) / 1000));
        sb_kv(&b, "connect_timeout", num);
    }
    if (b.oom || !b.p) {
        if (b.p) {
            explicit_bzero(b.p, b.cap);
            free(b.p);
        }
        return NULL;
    }
    return b.p;
}

char *mutt_pg_conninfo(const struct mutt_pg_opts *opts, const char *password)
{
    if (!opts)
        return NULL;
    struct mutt_pg_host hosts[MUTT_PG_MAX_HOSTS];
    char why[128], num[16];
    int n = mutt_pg_hosts_parse(opts->host, opts->ports, hosts, MUTT_PG_MAX_HOSTS, why, sizeof why);
    if (n < 0)
        return NULL;
    /* normalised lists (no blanks), one port per host */
    struct sbuf hl = {0}, pl = {0};
    bool ports_given = opts->ports && opts->ports[0];
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            pg_sb_put(&hl, ",", 1);
            pg_sb_put(&pl, ",", 1);
        }
        pg_sb_put(&hl, hosts[i].host, strlen(hosts[i].host));
        snprintf(num, sizeof num, "%d", ports_given ? hosts[i].port : opts->port);
        pg_sb_put(&pl, num, strlen(num));
    }
    char *ci = NULL;
    if (!hl.oom && !pl.oom)
        ci = pg_build_conninfo(opts, password, hl.p, NULL, ports_given || opts->port > 0 ? pl.p : NULL,
                            pg_effective_tsa(opts, n), true);
    free(hl.p);
    free(pl.p);
    return ci;
}
