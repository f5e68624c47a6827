/* `mutt archive verify DIR` and `mutt archive restore FILE` (issue 17, CONTRACT D64): checks the
 * manifests retention writes, and loads an archive file back into its table (idempotent on the
 * primary key), putting the restored time range under a legal hold named after the file so the
 * next retention run keeps it. Blocking I/O: no loop exists while a sub-command runs. */
#define _GNU_SOURCE
#include <libgen.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "mutt/retention_archive.h"
#include "mutt/archive_format.h"
#include "mutt/config.h"

#define CMD "archive"

static int usage(void)
{
    fprintf(stderr, "usage: mutt archive verify DIR | mutt archive restore FILE\n");
    return CLI_USAGE;
}

static int archive_verify(const char *dir)
{
    char err[512] = "";
    int rc = mutt_archive_verify(dir, stdout, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, CMD " verify: %s\n", err);
        return CLI_FAIL;
    }
    printf(CMD " verify: every file matches its manifest\n");
    return CLI_OK;
}

/* The file's line in the MANIFEST.sha256 beside it must match, when there is one: restoring a
 * corrupted archive would put wrong rows under a hold. */
static int check_manifest(const char *path, const char *base)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    char man[4096];
    snprintf(man, sizeof(man), "%s/%s", dirname(copy), MUTT_ARCHIVE_MANIFEST);
    free(copy);
    FILE *f = fopen(man, "re");
    if (!f)
        return 0; /* a file handed out by ARCHIVE_COMMAND comes back without one */
    char line[1024], hex[65], name[MUTT_ARCHIVE_NAME_MAX + 64];
    int found = 0;
    while (fgets(line, sizeof(line), f))
        if (mutt_archive_manifest_parse(line, strlen(line), hex, name, sizeof(name)) == 0 && strcmp(name, base) == 0)
            found = 1;
    fclose(f);
    if (!found)
        return 0;
    uint8_t sha[32];
    char got[65];
    if (mutt_archive_sha256_file(path, sha) != 0) {
        fprintf(stderr, CMD " restore: cannot read %s\n", path);
        return -1;
    }
    mutt_archive_hex(sha, got);
    if (strcmp(got, hex) != 0) {
        fprintf(stderr, CMD " restore: %s does not match %s (checksum mismatch); nothing restored\n", path, man);
        return -1;
    }
    return 0;
}

struct copy_ctx {
    PGconn *conn;
    char *esc;
    size_t cap;
    long long lines;
};

/* One COPY text row per archive line (cli_copy_json_row), counted. */
static int copy_line(void *privdata, const char *line, size_t len)
{
    struct copy_ctx *c = privdata;
    c->lines++;
    return cli_copy_json_row(c->conn, &c->esc, &c->cap, line, len);
}

static bool exec_ok(PGconn *conn, const char *sql, int n, const char *const *p, ExecStatusType want, PGresult **out)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, p, NULL, NULL, 0);
    bool ok = res && PQresultStatus(res) == want;
    if (!ok) {
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, CMD " restore: %s\n", msg);
    }
    if (out && ok)
        *out = res;
    else
        PQclear(res);
    return ok;
}

static int archive_restore(const char *path, struct mutt_config *cfg)
{
    char *copy = strdup(path);
    if (!copy)
        return CLI_FAIL;
    char base[MUTT_ARCHIVE_NAME_MAX + 64], table[32];
    snprintf(base, sizeof(base), "%s", basename(copy));
    free(copy);
    if (mutt_archive_table_of(base, table, sizeof(table)) != 0) {
        fprintf(stderr, CMD " restore: %s is not a retention archive name (<table>_<YYYY-MM-DD>_..%s)\n", base,
                MUTT_ARCHIVE_SUFFIX);
        return CLI_USAGE;
    }
    if (check_manifest(path, base) != 0)
        return CLI_FAIL;
    PGconn *conn = cli_pg(cfg, CMD);
    if (!conn)
        return CLI_FAIL;
    const char *ts_col = strcmp(table, "config_audit_log") == 0 ? "changed_at" : "event_timestamp";
    int rc = CLI_FAIL;
    struct copy_ctx cc = {.conn = conn};
    PGresult *res = NULL;
    char err[512] = "", sql[512], reason[MUTT_ARCHIVE_NAME_MAX + 96], actor[128];
    if (cli_pg_exec(conn, CMD, "BEGIN") != 0 ||
        cli_pg_exec(conn, CMD, "CREATE TEMP TABLE mutt_archive_restore (j json) ON COMMIT DROP") != 0)
        goto out;
    res = PQexec(conn, "COPY mutt_archive_restore (j) FROM STDIN");
    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        fprintf(stderr, CMD " restore: COPY failed\n");
        goto out;
    }
    PQclear(res);
    res = NULL;
    /* streamed: the file is never whole in memory */
    int rrc = mutt_archive_read(path, copy_line, &cc, err, sizeof(err));
    if (PQputCopyEnd(conn, rrc == 0 ? NULL : "archive unreadable") != 1 || rrc != 0) {
        fprintf(stderr, CMD " restore: %s\n", err[0] ? err : "reading the archive failed");
        goto out;
    }
    res = PQgetResult(conn);
    bool copied = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    res = NULL;
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    if (!copied) {
        fprintf(stderr, CMD " restore: loading the lines failed (not NDJSON rows of %s?)\n", table);
        goto out;
    }
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s SELECT (json_populate_record(NULL::%s, j)).* FROM mutt_archive_restore "
             "ON CONFLICT DO NOTHING",
             table, table);
    if (!exec_ok(conn, sql, 0, NULL, PGRES_COMMAND_OK, &res))
        goto out;
    const char *inserted = PQcmdTuples(res);
    long long n_inserted = inserted[0] ? atoll(inserted) : 0;
    PQclear(res);
    res = NULL;
    /* D64: the hold is named after the file; restoring the same file twice keeps one hold */
    snprintf(reason, sizeof(reason), "restored from archive %s", base);
    cli_actor(actor, sizeof(actor));
    snprintf(sql, sizeof(sql),
             "INSERT INTO legal_holds (table_name, from_ts, to_ts, reason, created_by) "
             "SELECT $1, min(ts), max(ts), $2, $3 FROM (SELECT (j->>'%s')::timestamptz ts FROM mutt_archive_restore) s "
             "HAVING count(*) > 0 AND NOT EXISTS (SELECT 1 FROM legal_holds WHERE table_name = $1 AND reason = $2) "
             "RETURNING id, json_build_object('id', id, 'table', table_name, 'from', from_ts, 'to', to_ts, "
             "'reason', reason, 'created_by', created_by)::text",
             ts_col);
    const char *hp[] = {table, reason, actor};
    if (!exec_ok(conn, sql, 3, hp, PGRES_TUPLES_OK, &res))
        goto out;
    if (PQntuples(res) == 1) {
        char why[128];
        snprintf(why, sizeof(why), "archive restore: %lld rows into %s", n_inserted, table);
        if (cli_audit(conn, CMD, "CREATE", "legal_holds", PQgetvalue(res, 0, 0), NULL, PQgetvalue(res, 0, 1), why) != 0)
            goto out;
    }
    PQclear(res);
    res = NULL;
    if (cli_pg_exec(conn, CMD, "COMMIT") != 0)
        goto out;
    printf(CMD " restore: %lld of %lld rows restored into %s (the rest were there); held as \"%s\"\n", n_inserted,
           cc.lines, table, reason);
    rc = CLI_OK;
out:
    PQclear(res);
    free(cc.esc);
    PQfinish(conn);
    return rc;
}

int cli_archive(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc != 2)
        return usage();
    if (strcmp(argv[0], "verify") == 0)
        return archive_verify(argv[1]);
    if (strcmp(argv[0], "restore") == 0)
        return archive_restore(argv[1], cfg);
    return usage();
}
