/* `mutt maintenance list | add PATTERN --ends T [--starts T] [--team T] [--reason R] [--no-summary]
 * | end ID [--reason R]` (issue 16 §3): the API's maintenance windows from the command line,
 * validated by the same domain code (domain/maintenance.c), each change one statement with its
 * config_audit_log row (changed_by cli:<user>, D46), then PUBLISH mutt:maintenance:updates so the
 * alert pods re-read within 1 s (without Redis they re-read on their 30 s timer). `end` behaves as
 * DELETE /maintenance-windows/{id}: an active window ends now (its summary is still sent), a
 * scheduled or ended one is removed. Blocking hiredis/libpq: runs without a loop. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cli_internal.h"
#include "mutt/keys.h"
#include "mutt/maintenance.h"
#include "mutt/timefmt.h"

#define CMD "maintenance"
#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define AUDIT(a)                                                                                                  \
    "jsonb_build_object('id'," a ".id,'hostname_pattern'," a ".hostname_pattern,'team'," a ".team,"              \
    "'starts_at'," ISO(a ".starts_at") ",'ends_at'," ISO(a ".ends_at") ",'reason'," a ".reason,"                 \
    "'summary'," a ".summary)"
#define ACTIVE(a) "(" a ".starts_at <= now() AND " a ".ends_at > now())"

static const char SQL_LIST[] =
    "SELECT id, CASE WHEN now() < starts_at THEN 'scheduled' WHEN now() < ends_at THEN 'active' ELSE 'ended' END, "
    "hostname_pattern, COALESCE(team, '-'), " ISO("starts_at") ", " ISO("ends_at") ", "
    "CASE WHEN summary THEN 'yes' ELSE 'no' END, COALESCE(reason, '') "
    "FROM maintenance_windows ORDER BY starts_at DESC, id DESC LIMIT 200";
static const char SQL_ADD[] =
    "WITH ins AS (INSERT INTO maintenance_windows (hostname_pattern, team, starts_at, ends_at, reason, summary, "
    "created_by) VALUES ($1, $2, $3::timestamptz, $4::timestamptz, $5, $6::boolean, $7) RETURNING *), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason) SELECT $7, 'CREATE', 'maintenance_windows', ins.id, NULL, " AUDIT("ins") ", $5 FROM ins RETURNING id) "
    "SELECT ins.id::text FROM ins, aud";
static const char SQL_END[] =
    "WITH old AS (SELECT * FROM maintenance_windows WHERE id = $1::int), "
    "ended AS (UPDATE maintenance_windows m SET ends_at = now() FROM old WHERE m.id = old.id AND " ACTIVE("old")
    " RETURNING m.*), "
    "del AS (DELETE FROM maintenance_windows m USING old WHERE m.id = old.id AND NOT " ACTIVE("old")
    " RETURNING m.id), "
    "aud AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, old_values, new_values, "
    "reason) SELECT $2, 'DELETE', 'maintenance_windows', old.id, " AUDIT("old") ", "
    "(SELECT " AUDIT("e") " FROM ended e), $3 FROM old RETURNING id) "
    "SELECT old.id::text, CASE WHEN " ACTIVE("old") " THEN 'ended' ELSE 'deleted' END FROM old, aud";

static int usage(void)
{
    fprintf(stderr, "usage: mutt maintenance list\n"
                    "       mutt maintenance add PATTERN --ends TIME [--starts TIME] [--team T] [--reason R] "
                    "[--no-summary]\n"
                    "       mutt maintenance end ID [--reason R]\n"
                    "TIME is ISO 8601 (2026-01-01T22:00:00Z); --starts defaults to now\n");
    return CLI_USAGE;
}

/* Runs sql with params; the result when its status is `want`, else NULL with the reason printed. */
static PGresult *run(PGconn *conn, const char *sql, int n, const char *const *params, ExecStatusType want)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (res && PQresultStatus(res) == want)
        return res;
    char msg[300];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
    msg[strcspn(msg, "\n")] = '\0';
    fprintf(stderr, CMD ": %s\n", msg);
    PQclear(res);
    return NULL;
}

/* The change is committed: a failed PUBLISH only delays it to the pods' next periodic read. */
static void publish(const struct mutt_config *cfg, const char *id)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c) {
        fprintf(stderr, CMD ": alert pods pick the change up within 30 s\n");
        return;
    }
    redisReply *r = redisCommand(c, "PUBLISH %s %s", MUTT_KEY_MAINT_CHANNEL, id);
    if (!cli_redis_ok(c, r, CMD, "PUBLISH"))
        fprintf(stderr, CMD ": alert pods pick the change up within 30 s\n");
    if (r)
        freeReplyObject(r);
    redisFree(c);
}

static int maint_list(const struct mutt_config *cfg)
{
    PGconn *conn = cli_pg(cfg, CMD);
    if (!conn)
        return CLI_FAIL;
    PGresult *res = run(conn, SQL_LIST, 0, NULL, PGRES_TUPLES_OK);
    if (!res) {
        PQfinish(conn);
        return CLI_FAIL;
    }
    printf("%-6s %-9s %-30s %-12s %-24s %-24s %-7s %s\n", "ID", "STATE", "PATTERN", "TEAM", "STARTS", "ENDS", "SUMMARY",
           "REASON");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-6s %-9s %-30s %-12s %-24s %-24s %-7s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
               PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4), PQgetvalue(res, i, 5),
               PQgetvalue(res, i, 6), PQgetvalue(res, i, 7));
    PQclear(res);
    PQfinish(conn);
    return CLI_OK;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int maint_add(int argc, char **argv, const struct mutt_config *cfg)
{
    if (argc < 1)
        return usage();
    json_t *body = json_object();
    if (!body)
        return CLI_FAIL;
    json_object_set_new(body, "hostname_pattern", json_string(argv[0]));
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i], *field = NULL;
        if (strcmp(opt, "--no-summary") == 0) {
            json_object_set_new(body, "summary", json_false());
            continue;
        }
        if (strcmp(opt, "--ends") == 0)
            field = "ends_at";
        else if (strcmp(opt, "--starts") == 0)
            field = "starts_at";
        else if (strcmp(opt, "--team") == 0)
            field = "team";
        else if (strcmp(opt, "--reason") == 0)
            field = "reason";
        if (!field || i + 1 >= argc) {
            json_decref(body);
            return usage();
        }
        json_object_set_new(body, field, json_string(argv[++i]));
    }
    struct mutt_maint_spec spec;
    const char *bad = NULL;
    char msg[200];
    if (mutt_maint_validate(body, now_ms(), &spec, &bad, msg, sizeof msg) != 0) {
        fprintf(stderr, CMD ": %s\n", msg);
        json_decref(body);
        return CLI_USAGE;
    }
    char starts[MUTT_TIME_ISO8601_MS_LEN], ends[MUTT_TIME_ISO8601_MS_LEN], actor[128];
    mutt_time_format_iso8601_ms(spec.starts_ms, starts, sizeof starts);
    mutt_time_format_iso8601_ms(spec.ends_ms, ends, sizeof ends);
    cli_actor(actor, sizeof actor);
    PGconn *conn = cli_pg(cfg, CMD);
    if (!conn) {
        json_decref(body);
        return CLI_FAIL;
    }
    const char *p[] = {spec.hostname_pattern, spec.team, starts, ends, spec.reason, spec.summary ? "true" : "false",
                       actor};
    PGresult *res = run(conn, SQL_ADD, 7, p, PGRES_TUPLES_OK);
    int rc = CLI_FAIL;
    if (res && PQntuples(res) == 1) {
        printf("maintenance window %s: %s from %s to %s%s\n", PQgetvalue(res, 0, 0), spec.hostname_pattern, starts,
               ends, spec.summary ? "" : " (no summary)");
        publish(cfg, PQgetvalue(res, 0, 0));
        rc = CLI_OK;
    }
    PQclear(res);
    PQfinish(conn);
    json_decref(body);
    return rc;
}

static int maint_end(int argc, char **argv, const struct mutt_config *cfg)
{
    if (argc < 1)
        return usage();
    const char *id = argv[0], *reason = NULL;
    size_t n = strlen(id);
    if (n == 0 || n > 10 || strspn(id, "0123456789") != n || strtoll(id, NULL, 10) > 2147483647LL) {
        fprintf(stderr, CMD ": ID must be a window id (a positive integer)\n");
        return CLI_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else
            return usage();
    }
    char actor[128];
    cli_actor(actor, sizeof actor);
    PGconn *conn = cli_pg(cfg, CMD);
    if (!conn)
        return CLI_FAIL;
    const char *p[] = {id, actor, reason};
    PGresult *res = run(conn, SQL_END, 3, p, PGRES_TUPLES_OK);
    int rc = CLI_FAIL;
    if (res && PQntuples(res) == 0) {
        fprintf(stderr, CMD ": no maintenance window %s\n", id);
    } else if (res) {
        bool ended = strcmp(PQgetvalue(res, 0, 1), "ended") == 0;
        printf("maintenance window %s %s\n", id, ended ? "ended (its summary follows)" : "deleted");
        publish(cfg, id);
        rc = CLI_OK;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int cli_maintenance(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc < 1)
        return usage();
    if (strcmp(argv[0], "list") == 0 && argc == 1)
        return maint_list(cfg);
    if (strcmp(argv[0], "add") == 0)
        return maint_add(argc - 1, argv + 1, cfg);
    if (strcmp(argv[0], "end") == 0)
        return maint_end(argc - 1, argv + 1, cfg);
    return usage();
}
