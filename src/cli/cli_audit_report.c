/* `mutt audit report [--from T] [--to T] [--format table|csv|json]` (issue 17, D44): the same
 * aggregation as GET /api/v2/audit/report (include/mutt/audit_report.h), read with one
 * blocking query. Exit 0 done, 1 failed, 2 usage. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "cli_internal.h"
#include "mutt/audit_report.h"
#include "mutt/config.h"

static int usage(void)
{
    fprintf(stderr, "usage: mutt audit report [--from T] [--to T] [--format table|csv|json]\n");
    return CLI_USAGE;
}

static int report(int argc, char **argv, struct mutt_config *cfg)
{
    const char *from = NULL, *to = NULL;
    enum mutt_audit_report_format fmt = MUTT_AUDIT_REPORT_TABLE;
    for (int i = 0; i < argc; i++) {
        if (i + 1 >= argc)
            return usage();
        if (strcmp(argv[i], "--from") == 0) {
            from = argv[++i];
        } else if (strcmp(argv[i], "--to") == 0) {
            to = argv[++i];
        } else if (strcmp(argv[i], "--format") == 0) {
            if (mutt_audit_report_format_parse(argv[++i], &fmt) != 0)
                return usage();
        } else {
            return usage();
        }
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char f[MUTT_TIME_ISO8601_MS_LEN], t[MUTT_TIME_ISO8601_MS_LEN], err[128];
    const char *field = NULL;
    if (mutt_audit_report_range(from, to, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, f, t, err, sizeof err,
                                &field) != 0) {
        fprintf(stderr, "audit report: --%s: %s\n", field, err);
        return CLI_USAGE;
    }
    PGconn *conn = cli_pg(cfg, "audit report");
    if (!conn)
        return CLI_FAIL;
    const char *p[] = {f, t};
    PGresult *res = PQexecParams(conn, mutt_audit_report_sql, 2, NULL, p, NULL, NULL, 0);
    int rc = CLI_FAIL;
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "audit report: query failed: %s\n", msg);
    } else if (mutt_audit_report_write(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), fmt, stdout) != 0) {
        fprintf(stderr, "audit report: unexpected report shape\n");
    } else {
        rc = CLI_OK;
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int cli_audit_cmd(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc < 1 || strcmp(argv[0], "report") != 0)
        return usage();
    return report(argc - 1, argv + 1, cfg);
}
