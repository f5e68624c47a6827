/* Connectivity checks for --check-config. CLI path only: blocking calls with short timeouts
 * are fine here because no loop is running. */
#define _GNU_SOURCE
#include "mutt/checkconfig.h"

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "mutt/redact.h"
#include "mutt/secrets.h"

static int check_redis(const struct mutt_config *cfg, FILE *out)
{
    struct mutt_redis_opts o;
    mutt_redis_opts_from_config(cfg, &o);
    const char *host = o.host;
    int port = o.port;
    char primary[256];
    if (o.sentinels && o.sentinels[0]) { /* D53: the primary the sentinels name */
        char why[320];
        if (mutt_redis_sentinel_discover_sync(&o, primary, sizeof primary, &port, why, sizeof why) != 0) {
            fprintf(out, "redis: FAIL sentinels %s: %s\n", o.sentinels, why);
            return 1;
        }
        fprintf(out, "redis: sentinels %s name %s:%d as the primary of %s\n", o.sentinels, primary, port,
                o.sentinel_master);
        host = primary;
    }
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        fprintf(out, "redis: FAIL %s:%d: %s\n", host, port, c ? c->errstr : "out of memory");
        redisFree(c);
        return 1;
    }
    redisSetTimeout(c, tv);
    const char *passes[] = {o.pass_current, o.pass_next};
    if (passes[0][0]) {
        bool ok = false;
        for (int i = 0; i < 2 && !ok; i++) {
            if (!passes[i][0])
                continue;
            redisReply *r = redisCommand(c, "AUTH %s", passes[i]);
            ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
        }
        if (!ok) {
            fprintf(out, "redis: FAIL %s:%d: AUTH refused with REDIS_PASS_CURRENT and REDIS_PASS_NEXT\n", host, port);
            redisFree(c);
            return 1;
        }
    }
    redisReply *r = redisCommand(c, "PING");
    int rc = (r && r->type == REDIS_REPLY_STATUS) ? 0 : 1;
    fprintf(out, "redis: %s %s:%d%s%s\n", rc ? "FAIL" : "ok", host, port, rc ? ": " : "",
            rc ? (r && r->str ? r->str : c->errstr) : "");
    freeReplyObject(r);
    redisFree(c);
    return rc;
}

static int check_pg(const struct mutt_config *cfg, FILE *out)
{
    struct mutt_pg_opts o;
    mutt_pg_opts_from_config(cfg, &o);
    const char *passes[] = {o.pass_current, o.pass_next};
    char last_err[512] = "";
    for (int i = 0; i < 2; i++) {
        if (i == 1 && (!passes[1] || !passes[1][0]))
            break;
        char *ci = mutt_pg_conninfo(&o, passes[i]);
        if (ci == NULL)
            return 1;
        char *full = NULL;
        if (asprintf(&full, "%s connect_timeout=3", ci) < 0) {
            free(ci);
            return 1;
        }
        free(ci);
        PGconn *conn = PQconnectdb(full);
        free(full);
        if (PQstatus(conn) == CONNECTION_OK) {
            /* with several hosts, the one libpq settled on (D55: the host in use) */
            const char *h = PQhost(conn), *p = PQport(conn);
            bool v6 = h && strchr(h, ':') && h[0] != '/';
            fprintf(out, v6 ? "database: ok [%s]:%s/%s\n" : "database: ok %s:%s/%s\n", h ? h : o.host,
                    p ? p : o.ports, o.dbname);
            PQfinish(conn);
            return 0;
        }
        snprintf(last_err, sizeof(last_err), "%s", PQerrorMessage(conn));
        PQfinish(conn);
    }
    /* libpq messages end with a newline and may span lines: keep the first line */
    char *nl = strchr(last_err, '\n');
    if (nl)
        *nl = '\0';
    fprintf(out, "database: FAIL %s:%s/%s: %s\n", o.host, o.ports, o.dbname, last_err);
    return 1;
}

static int check_webhook_dns(const struct mutt_config *cfg, FILE *out)
{
    const char *url = mutt_config_str(cfg, MUTT_CFG_MOOG_WEBHOOK_URL);
    const char *p = strstr(url, "://");
    if (p == NULL)
        return 1;
    p += 3;
    char host[256];
    size_t n = 0;
    if (*p == '[') { /* IPv6 literal */
        p++;
        while (*p && *p != ']' && n + 1 < sizeof(host))
            host[n++] = *p++;
    } else {
        while (*p && *p != ':' && *p != '/' && n + 1 < sizeof(host))
            host[n++] = *p++;
    }
    host[n] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0) {
        fprintf(out, "webhook: FAIL cannot resolve %s: %s\n", host, gai_strerror(rc));
        return 1;
    }
    freeaddrinfo(res);
    fprintf(out, "webhook: ok %s resolves\n", host);
    return 0;
}

/* With VAULT_ADDR set, log in and read the secrets first: the Redis and database checks then use
 * Vault's passwords, as the daemon would. */
static int check_vault(struct mutt_config *cfg, FILE *out)
{
    if (!mutt_config_str(cfg, MUTT_CFG_VAULT_ADDR)[0]) {
        fprintf(out, "vault: not_configured\n");
        return 0;
    }
    char err[512] = "", addr[MUTT_REDACT_URL_MAX];
    mutt_redact_url(mutt_config_str(cfg, MUTT_CFG_VAULT_ADDR), addr, sizeof addr);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = mutt_secrets_load_once(cfg, 5000, err, sizeof(err));
    if (rc != 0) {
        fprintf(out, "vault: FAIL %s: %s\n", addr, err);
        return 1;
    }
    fprintf(out, "vault: ok %s (secrets read)\n", addr);
    return 0;
}

int mutt_check_connectivity(struct mutt_config *cfg, FILE *out)
{
    unsigned roles = mutt_config_roles(cfg);
    int rc = check_vault(cfg, out);
    rc |= check_redis(cfg, out);
    if (roles & (MUTT_ROLE_ALERT | MUTT_ROLE_WEB | MUTT_ROLE_RETENTION))
        rc |= check_pg(cfg, out);
    else
        fprintf(out, "database: not_required for these roles\n");
    if (roles & MUTT_ROLE_FORWARD)
        rc |= check_webhook_dns(cfg, out);
    return rc ? 1 : 0;
}
