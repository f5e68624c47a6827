/* Sub-command dispatch and the helpers every sub-command shares (include/mutt/cli.h): blocking
 * Redis/PostgreSQL connections and the audit writer, plus the small commands (check-config,
 * health, send-event). Blocking on purpose: no loop runs while a CLI command does. */
#define _GNU_SOURCE
#include "mutt/cli.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli_internal.h"
#include "mutt/adapter_opts.h"
#include "mutt/checkconfig.h"
#include "mutt/cli_relay.h"
#include "mutt/compliance.h"
#include "mutt/config.h"
#include "mutt/pg.h"
#include "mutt/redis.h"
#include "mutt/redis_sentinels.h"
#include "mutt/timefmt.h"
#include "mutt/version.h"

/* ------------------------------------------------------------------------------------------ */
/* shared helpers                                                                              */

bool cli_redis_ok(redisContext *c, redisReply *reply, const char *cmd, const char *what)
{
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return true;
    fprintf(stderr, "%s: %s: %s\n", cmd, what, reply ? reply->str : (c && c->errstr[0] ? c->errstr : "no reply"));
    return false;
}

redisContext *cli_redis(const struct mutt_config *cfg, const char *cmd)
{
    struct mutt_redis_opts o;
    mutt_redis_opts_from_config(cfg, &o);
    const char *host = o.host;
    int port = o.port;
    char primary[256];
    if (o.sentinels && o.sentinels[0]) { /* D53: the CLI finds the primary through the sentinels too */
        char why[320];
        if (mutt_redis_sentinel_discover_sync(&o, primary, sizeof primary, &port, why, sizeof why) != 0) {
            fprintf(stderr, "%s: no sentinel of REDIS_SENTINELS named the primary: %s\n", cmd, why);
            return NULL;
        }
        host = primary;
    }
    int64_t ms = (int64_t)o.connect_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        fprintf(stderr, "%s: Redis at %s:%d is unreachable: %s\n", cmd, host, port, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    struct timeval cmd_tv = {.tv_sec = 30, .tv_usec = 0};
    redisSetTimeout(c, cmd_tv);
    const char *passes[] = {o.pass_current, o.pass_next};
    if (passes[0][0] || passes[1][0]) {
        bool authed = false;
        for (int i = 0; i < 2 && !authed; i++) {
            if (!passes[i][0])
                continue;
            redisReply *r = redisCommand(c, "AUTH %s", passes[i]);
            authed = r && r->type != REDIS_REPLY_ERROR;
            if (r)
                freeReplyObject(r);
        }
        if (!authed) {
            fprintf(stderr, "%s: Redis at %s:%d refused REDIS_PASS_CURRENT and REDIS_PASS_NEXT\n", cmd, host, port);
            redisFree(c);
            return NULL;
        }
    }
    int64_t db = o.db;
    if (db > 0) {
        redisReply *r = redisCommand(c, "SELECT %lld", (long long)db);
        bool ok = cli_redis_ok(c, r, cmd, "SELECT");
        if (r)
            freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

PGconn *cli_pg(const struct mutt_config *cfg, const char *cmd)
{
    struct mutt_pg_opts o;
    mutt_pg_opts_from_config(cfg, &o);
    o.application_name = "mutt-cli";
    const char *passes[] = {o.pass_current ? o.pass_current : "", o.pass_next ? o.pass_next : ""};
    char last[300] = "";
    for (int i = 0; i < 2; i++) {
        if (i == 1 && !passes[1][0])
            break;
        char *ci = mutt_pg_conninfo(&o, passes[i]);
        if (!ci)
            break;
        PGconn *c = PQconnectdb(ci);
        free(ci);
        if (c && PQstatus(c) == CONNECTION_OK)
            return c;
        /* libpq's message names host and reason; it never contains the password */
        snprintf(last, sizeof(last), "%s", c ? PQerrorMessage(c) : "out of memory");
        last[strcspn(last, "\n")] = '\0';
        PQfinish(c);
    }
    fprintf(stderr, "%s: PostgreSQL at %s:%d is unreachable: %s\n", cmd, o.host, o.port, last);
    return NULL;
}

const char *cli_actor(char *buf, size_t len)
{
    const char *user = getenv("SUDO_USER");
    if (!user || !user[0]) {
        struct passwd *pw = getpwuid(geteuid());
        user = pw ? pw->pw_name : NULL;
    }
    if (!user || !user[0])
        user = getenv("USER");
    snprintf(buf, len, "cli:%s", user && user[0] ? user : "unknown");
    return buf;
}

int cli_pg_exec(PGconn *conn, const char *cmd, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "%s: %s failed: %s\n", cmd, sql, msg);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

int cli_audit(PGconn *conn, const char *cmd, const char *operation, const char *table_name, const char *record_key,
              const char *old_json, const char *new_json, const char *reason)
{
    char actor[128];
    cli_actor(actor, sizeof(actor));
    const char *p[] = {actor, operation, table_name, record_key, old_json, new_json, reason};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO config_audit_log (changed_by, operation, table_name, record_key, "
                                 "old_values, new_values, reason) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)",
                                 7, NULL, p, NULL, NULL, 0);
    bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "%s: writing the audit row failed: %s\n", cmd, msg);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

int cli_copy_json_row(PGconn *pg, char **esc, size_t *cap, const char *line, size_t len)
{
    if (*cap < 2 * len + 2) {
        char *n = realloc(*esc, 2 * len + 2);
        if (!n)
            return -1;
        *esc = n;
        *cap = 2 * len + 2;
    }
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\')
            (*esc)[o++] = '\\';
        (*esc)[o++] = line[i];
    }
    (*esc)[o++] = '\n';
    return PQputCopyData(pg, *esc, (int)o) == 1 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* check-config, compliance                                                                    */

static struct mutt_compliance_value compliance_value(const struct mutt_config *cfg, enum mutt_cfg_key k)
{
    return (struct mutt_compliance_value){
        .key = mutt_cfg_defs[k].name,
        .value = mutt_config_str(cfg, k),
        .from_file = mutt_config_source(cfg, k) == MUTT_CFG_SRC_FILE,
    };
}

void mutt_cli_compliance_input(const struct mutt_config *cfg, struct mutt_compliance_input *in)
{
    static const enum mutt_cfg_key api_keys[MUTT_COMPLIANCE_API_KEYS] = {
        MUTT_CFG_INGEST_API_KEY, MUTT_CFG_INGEST_API_KEY_NEXT, MUTT_CFG_WEBUI_API_KEY,
        MUTT_CFG_WEBUI_READONLY_API_KEY,
    };
    static const enum mutt_cfg_key secrets[MUTT_COMPLIANCE_SECRETS] = {
        MUTT_CFG_INGEST_API_KEY,  MUTT_CFG_INGEST_API_KEY_NEXT, MUTT_CFG_WEBUI_API_KEY,
        MUTT_CFG_WEBUI_READONLY_API_KEY, MUTT_CFG_MOOG_API_KEY, MUTT_CFG_REDIS_PASS_CURRENT,
        MUTT_CFG_REDIS_PASS_NEXT, MUTT_CFG_DB_PASS_CURRENT, MUTT_CFG_DB_PASS_NEXT, MUTT_CFG_REDIS_SENTINEL_PASSWORD,
    };
    *in = (struct mutt_compliance_input){
        .db_tls_enabled = mutt_config_bool(cfg, MUTT_CFG_DB_TLS_ENABLED),
        .redis_host = mutt_config_str(cfg, MUTT_CFG_REDIS_HOST),
        .redis_sentinels = mutt_config_str(cfg, MUTT_CFG_REDIS_SENTINELS),
        .redis_primary = NULL,
        .redis_trusted_network = mutt_config_bool(cfg, MUTT_CFG_REDIS_TRUSTED_NETWORK),
        .webhook_url = mutt_config_str(cfg, MUTT_CFG_MOOG_WEBHOOK_URL),
        .vault_addr = mutt_config_str(cfg, MUTT_CFG_VAULT_ADDR),
        .allow_query_key = mutt_config_bool(cfg, MUTT_CFG_WEBUI_ALLOW_QUERY_KEY),
        .log_level = mutt_config_str(cfg, MUTT_CFG_LOG_LEVEL),
        .approval_required = mutt_config_str(cfg, MUTT_CFG_APPROVAL_REQUIRED),
    };
    for (size_t i = 0; i < MUTT_COMPLIANCE_API_KEYS; i++)
        in->api_keys[i] = compliance_value(cfg, api_keys[i]);
    for (size_t i = 0; i < MUTT_COMPLIANCE_SECRETS; i++)
        in->secrets[i] = compliance_value(cfg, secrets[i]);
}

int mutt_cli_compliance_report(const struct mutt_config *cfg, FILE *out)
{
    struct mutt_compliance_input in;
    mutt_cli_compliance_input(cfg, &in);
    char primary[MUTT_REDIS_SENTINEL_HOST_MAX];
    if (in.redis_sentinels[0]) { /* D53: judge the primary the sentinels announce (bounded by the connect timeout) */
        struct mutt_redis_opts o;
        mutt_redis_opts_from_config(cfg, &o);
        int port;
        char why[320];
        if (mutt_redis_sentinel_discover_sync(&o, primary, sizeof primary, &port, why, sizeof why) == 0)
            in.redis_primary = primary;
        else
            fprintf(out, "compliance: could not ask the sentinels for the primary: %s\n", why);
    }
    struct mutt_compliance_violation v[MUTT_COMPLIANCE_MAX_VIOLATIONS];
    size_t n = mutt_compliance_check(&in, v, MUTT_COMPLIANCE_MAX_VIOLATIONS);
    if (n > MUTT_COMPLIANCE_MAX_VIOLATIONS)
        n = MUTT_COMPLIANCE_MAX_VIOLATIONS;
    int critical = 0;
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "compliance: %s %s %s: %s\n", v[i].rule_id, mutt_compliance_severity_name(v[i].severity), v[i].key,
                v[i].message);
        critical += v[i].severity == MUTT_COMPLIANCE_CRITICAL;
    }
    if (n == 0)
        fprintf(out, "compliance: ok (no violation)\n");
    return critical;
}

static int cli_check_config(int argc, char **argv, struct mutt_config *cfg)
{
    const char *env = mutt_config_str(cfg, MUTT_CFG_MUTT_ENV);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--environment") == 0 && i + 1 < argc) {
            env = argv[++i];
        } else if (strncmp(argv[i], "--environment=", 14) == 0) {
            env = argv[i] + 14;
        } else {
            fprintf(stderr, "check-config: unexpected argument '%s' (usage: mutt check-config [--environment ENV])\n",
                    argv[i]);
            return CLI_USAGE;
        }
    }
    printf("config: ok (%s)\n", mutt_config_path(cfg) ? mutt_config_path(cfg) : "no file; defaults + environment");
    int rc = mutt_check_connectivity(cfg, stdout);
    if (strcasecmp(env, "production") == 0) {
        int critical = mutt_cli_compliance_report(cfg, stdout);
        if (critical > 0) {
            fprintf(stderr, "check-config: %d critical compliance violation%s for production\n", critical,
                    critical == 1 ? "" : "s");
            rc = CLI_FAIL;
        }
    } else {
        printf("compliance: not checked for environment '%s' (use --environment production)\n", env);
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* health and send-event: HTTP to this host's own listeners                                    */

struct body {
    char *data;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    if (b->len + n > 1u << 20) /* a /health body is small; cap what we keep */
        return 0;
    char *p = realloc(b->data, b->len + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, n);
    b->len += n;
    p[b->len] = '\0';
    b->data = p;
    return n;
}

/* The address to reach our own listeners: BIND_ADDR unless it is a wildcard. */
static const char *local_host(const struct mutt_config *cfg)
{
    const char *bind = mutt_config_str(cfg, MUTT_CFG_BIND_ADDR);
    if (!bind[0] || strcmp(bind, "0.0.0.0") == 0 || strcmp(bind, "::") == 0)
        return "127.0.0.1";
    return bind;
}

static void local_url(const struct mutt_config *cfg, int port, const char *path, char *buf, size_t len)
{
    bool tls = mutt_config_str(cfg, MUTT_CFG_TLS_CERT_FILE)[0] != '\0';
    const char *host = local_host(cfg);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(buf, len, "%s://%s%s%s:%d%s", tls ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "", port, path);
}

/* TLS_CA_FILE of the running command (NULL = the system store); set by mutt_cli_run. The CLI is
 * one command per process, so a file-level setting is its whole lifetime. */
static const char *cli_tls_ca_file;

/* Whether `url` names a loopback host (127.0.0.0/8, ::1, localhost). */
static bool url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool loopback = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host) {
        size_t n = strlen(host);
        if (n > 2 && host[0] == '[' && host[n - 1] == ']') { /* IPv6 literal */
            memmove(host, host + 1, n - 2);
            host[n - 2] = '\0';
        }
        loopback = mutt_compliance_host_is_loopback(host);
    }
    curl_free(host);
    curl_url_cleanup(u);
    return loopback;
}

/* Returns the HTTP status (0 when nothing answered; curl's reason in err). */
static long http_call(const char *url, const char *api_key, const char *post_body, struct body *out, char *err,
                      size_t errlen)
{
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return 0;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    char keyhdr[600];
    if (api_key && api_key[0]) {
        snprintf(keyhdr, sizeof(keyhdr), "X-API-KEY: %s", api_key);
        hdrs = curl_slist_append(hdrs, keyhdr);
    }
    if (post_body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (url_is_loopback(url)) {
        /* Our own listener on loopback: its certificate names the service, not 127.0.0.1, and
         * the traffic never leaves the host, so only local root could stand in for it. */
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    } else {
        /* Across a network (BIND_ADDR is a real address): full verification, peer and name (the
         * certificate must carry that IP address), against TLS_CA_FILE or the system store. */
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        if (cli_tls_ca_file)
            curl_easy_setopt(h, CURLOPT_CAINFO, cli_tls_ca_file);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    long status = 0;
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}

/* GET /health on one port: prints the verdict; returns the HTTP status (0 = no answer) and, when
 * `roles_out` is given, the roles the answering process reports (its "roles" object's keys). */
static long probe_health(const struct mutt_config *cfg, int port, bool quiet, unsigned *roles_out)
{
    char url[300], err[CURL_ERROR_SIZE] = "";
    local_url(cfg, port, "/health", url, sizeof(url));
    struct body b = {0};
    long status = http_call(url, NULL, NULL, &b, err, sizeof(err));
    json_t *j = b.data ? json_loads(b.data, 0, NULL) : NULL;
    const char *verdict = json_string_value(json_object_get(j, "status"));
    if (roles_out) {
        char list[256] = "";
        const char *name;
        json_t *v;
        json_object_foreach(json_object_get(j, "roles"), name, v)
        {
            size_t used = strlen(list);
            snprintf(list + used, sizeof(list) - used, "%s%s", used ? "," : "", name);
        }
        *roles_out = 0;
        if (list[0] && mutt_roles_parse(list, roles_out, NULL, 0) != 0)
            *roles_out = 0;
    }
    if (quiet) {
        /* discovery: the verdict is printed when the port is probed for real */
    } else if (status == 0) {
        printf("health: %s: no answer (%s)\n", url, err);
    } else {
        printf("health: %s: %ld %s\n", url, status, verdict ? verdict : "(no status)");
        const char *db = json_string_value(json_object_get(j, "database"));
        const char *db_host = json_string_value(json_object_get(j, "database_host"));
        const char *primary = json_string_value(json_object_get(j, "redis_primary"));
        const char *sentinels = json_string_value(json_object_get(j, "redis_sentinels"));
        if (primary || sentinels)
            printf("  redis: primary %s, sentinels %s\n", primary && primary[0] ? primary : "(none yet)",
                   sentinels ? sentinels : "?");
        if (db && strcmp(db, "not_required") != 0)
            printf("  database: %s%s%s\n", db, db_host && db_host[0] ? " " : "", db_host ? db_host : "");
        json_t *errors = json_object_get(j, "errors");
        json_t *details = json_object_get(j, "details");
        size_t k;
        json_t *e;
        json_array_foreach(errors, k, e) printf("  error: %s\n", json_string_value(e) ? json_string_value(e) : "?");
        json_array_foreach(details, k, e) printf("  detail: %s\n", json_string_value(e) ? json_string_value(e) : "?");
    }
    json_decref(j);
    free(b.data);
    return status;
}

/* The listeners app.c opens for these roles (CONTRACT §1, D11); returns how many. */
static int role_ports(const struct mutt_config *cfg, unsigned roles, int ports[3])
{
    int n = 0;
    bool reuse = mutt_config_bool(cfg, MUTT_CFG_INGEST_REUSEPORT);
    if (roles & MUTT_ROLE_INGEST)
        ports[n++] = (int)mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT);
    if (roles & MUTT_ROLE_WEB)
        ports[n++] = (int)mutt_config_int(cfg, MUTT_CFG_WEBUI_PORT);
    if (!(roles & (MUTT_ROLE_INGEST | MUTT_ROLE_WEB)) || (reuse && (roles & MUTT_ROLE_INGEST)))
        ports[n++] = (int)mutt_config_int(cfg, MUTT_CFG_HEALTH_PORT);
    return n;
}

/* Roles to check: --roles, else MUTT_ROLES when the file or environment sets it, else the roles
 * the running process reports on the first of its possible listeners that answers. The last case
 * is the container's: `docker run IMAGE --roles=ingest` gives the roles on the command line, which
 * the image's HEALTHCHECK (`mutt health`) cannot see; probing the web port of an ingest-only
 * process would call it unhealthy. */
int cli_health(int argc, char **argv, struct mutt_config *cfg)
{
    const char *roles_arg = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--roles=", 8) == 0) {
            roles_arg = argv[i] + 8;
        } else if (strcmp(argv[i], "--roles") == 0 && i + 1 < argc) {
            roles_arg = argv[++i];
        } else {
            fprintf(stderr, "health: unexpected argument '%s' (usage: mutt health [--roles LIST])\n", argv[i]);
            return CLI_USAGE;
        }
    }
    unsigned roles = 0;
    if (roles_arg) {
        char bad[64] = "";
        if (mutt_roles_parse(roles_arg, &roles, bad, sizeof(bad)) != 0 || roles == 0) {
            fprintf(stderr, "health: --roles=%s: unknown role '%s'\n", roles_arg, bad);
            return CLI_USAGE;
        }
    } else if (mutt_config_source(cfg, MUTT_CFG_MUTT_ROLES) != MUTT_CFG_SRC_DEFAULT) {
        if (mutt_roles_parse(mutt_config_str(cfg, MUTT_CFG_MUTT_ROLES), &roles, NULL, 0) != 0 || roles == 0)
            roles = MUTT_ROLE_ALL;
    } else {
        int all[3], n_all = role_ports(cfg, MUTT_ROLE_ALL, all);
        all[n_all++] = (int)mutt_config_int(cfg, MUTT_CFG_HEALTH_PORT);
        for (int i = 0; i < n_all && roles == 0; i++)
            probe_health(cfg, all[i], true, &roles);
        if (roles == 0)
            roles = MUTT_ROLE_ALL; /* nothing answers: report every listener as down */
    }
    int ports[3], n = role_ports(cfg, roles, ports);
    int rc = CLI_OK;
    for (int i = 0; i < n; i++)
        if (probe_health(cfg, ports[i], false, NULL) != 200)
            rc = CLI_FAIL;
    if (rc != CLI_OK)
        fprintf(stderr, "health: unhealthy\n");
    return rc;
}

int cli_send_event(int argc, char **argv, struct mutt_config *cfg)
{
    const char *message = "MUTT test event from mutt send-event";
    char hostbuf[256] = "";
    const char *host = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--message") == 0 && i + 1 < argc) {
            message = argv[++i];
        } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else {
            fprintf(stderr, "send-event: unexpected argument '%s' (usage: mutt send-event [--message M] [--host H])\n",
                    argv[i]);
            return CLI_USAGE;
        }
    }
    if (!host) {
        gethostname(hostbuf, sizeof(hostbuf) - 1);
        host = hostbuf[0] ? hostbuf : "mutt-cli";
    }
    const char *key = mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY);
    if (!key[0]) {
        fprintf(stderr, "send-event: INGEST_API_KEY is not set\n");
        return CLI_USAGE;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char ts[MUTT_TIME_ISO8601_MS_LEN];
    mutt_time_format_iso8601_ms((int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, ts, sizeof(ts));
    json_t *ev = json_pack("{s:s, s:s, s:s, s:i, s:s}", "timestamp", ts, "hostname", host, "message", message,
                           "syslog_severity", 6, "source", "mutt send-event");
    char *body = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!body) {
        fprintf(stderr, "send-event: --message and --host must be valid UTF-8\n");
        return CLI_USAGE;
    }
    char url[300], err[CURL_ERROR_SIZE] = "";
    local_url(cfg, (int)mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT), "/api/v2/ingest", url, sizeof(url));
    struct body b = {0};
    long status = http_call(url, key, body, &b, err, sizeof(err));
    free(body);
    int rc = CLI_OK;
    if (status == 0) {
        fprintf(stderr, "send-event: %s: no answer (%s)\n", url, err);
        rc = CLI_FAIL;
    } else if (status != 200) {
        fprintf(stderr, "send-event: %s answered %ld: %s\n", url, status, b.data ? b.data : "");
        rc = CLI_FAIL;
    } else {
        printf("send-event: accepted: %s\n", b.data ? b.data : "");
    }
    free(b.data);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* dispatch                                                                                    */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv, struct mutt_config *cfg);
} commands[] = {
    {"config", cli_config},   {"health", cli_health},       {"dlq", cli_dlq},
    {"send-event", cli_send_event}, {"backup", cli_backup}, {"restore", cli_restore},
    {"retention", cli_retention},   {"check-config", cli_check_config},
    {"migrate", cli_migrate},
    {"rules", cli_rules}, /* issue 16: dry-run, src/cli/cli_rules.c */
    {"archive", cli_archive}, /* issue 17, src/cli/cli_archive.c */
    {"audit", cli_audit_cmd}, /* issue 17, src/cli/cli_audit_report.c */
    {"maintenance", cli_maintenance}, /* issue 16 §3, src/cli/cli_maint.c */
    {"changes", cli_changes},
    {"trace", cli_trace},
    {"relay", mutt_cli_relay_cmd}, /* D32, src/cli/cli_relay.c */
};

bool mutt_cli_known(const char *command)
{
    for (size_t i = 0; command && i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(commands[i].name, command) == 0)
            return true;
    return false;
}

int mutt_cli_run(const char *command, int argc, char **argv, struct mutt_config *cfg)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, command) != 0)
            continue;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const char *ca = mutt_config_str(cfg, MUTT_CFG_TLS_CA_FILE);
        cli_tls_ca_file = ca[0] ? ca : NULL;
        int rc = commands[i].run(argc, argv, cfg);
        curl_global_cleanup();
        return rc;
    }
    fprintf(stderr, "mutt: unknown command '%s' (try --help)\n", command);
    return CLI_USAGE;
}

void mutt_cli_usage(FILE *out)
{
    fprintf(out,
            "  config list | get KEY | set KEY VALUE [--reason R] [--no-publish] [--emergency REASON]\n"
            "                      dynamic configuration (validated, audited as cli:<user>; under\n"
            "                      APPROVAL_REQUIRED a set files a change request unless --emergency)\n"
            "  changes list [--status S]\n"
            "                      change requests of the two-person rule (decided in the API/dashboard)\n"
            "  health [--roles LIST]\n"
            "                      GET /health on the listeners of the roles (default: MUTT_ROLES when set,\n"
            "                      else those the running mutt reports); exit 0 healthy, 1 not\n"
            "  dlq list [NAME [--count N]] | replay NAME [--count N]\n"
            "                      dead-letter queues alerter, moog, dead (replay moves atomically)\n"
            "  send-event [--message M] [--host H]\n"
            "                      post a test event to the local ingest API\n"
            "  trace ID [--json]   the timeline of an event, by event id or correlation id (lineage)\n"
            "  backup [--full [--with-audit]] FILE\n"
            "                      tar.gz: config without secrets, dynamic config, rules, dev hosts, teams;\n"
            "                      --full adds the DLQs (and the audit tables), streamed, with checksums\n"
            "  restore [--verify] [--max-bytes N] [--max-stream-bytes M] FILE\n"
            "                      restore a backup (one transaction; refuses a newer schema and an\n"
            "                      archive expanding beyond N bytes, default 64 MiB; DLQ and audit members\n"
            "                      beyond M, default 16 GiB); --verify checks it and applies nothing\n"
            "  retention [--dry-run]\n"
            "                      run the retention policy once (archives rows first; dry run only counts)\n"
            "  archive verify DIR | restore FILE\n"
            "                      check retention archives against their manifests; load one back\n"
            "                      (idempotent) under a legal hold named after the file\n"
            "  audit report [--from T] [--to T] [--format table|csv|json]\n"
            "                      config audit counts by operation, user, table, day; top records\n"
            "  rules dry-run [--json] FILE.json\n"
            "                      what a rule body (rule_id: an edit) would catch in the recent events\n"
            "  maintenance list | add PATTERN --ends T [--starts T] [--team T] [--reason R] [--no-summary]\n"
            "              | end ID [--reason R]\n"
            "                      maintenance windows (audited as cli:<user>; end = DELETE in the API)\n"
            "  relay [OPTIONS]     post syslog lines read on stdin to the ingest API (mutt relay --help)\n"
            "  check-config [--environment production]\n"
            "                      validate, test connectivity, check production compliance\n");
}
