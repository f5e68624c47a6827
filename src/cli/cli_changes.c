/* `mutt changes list [--status S]` and the CLI side of the two-person rule (D47): a covered
 * `mutt config set` files a config_change_requests row instead of writing (the web API applies
 * it once another user approves it), `--emergency REASON` applies at once and files the change
 * as `emergency` with an EMERGENCY audit row. The CLI cannot approve (D47): its user is only a
 * unix name, so `mutt changes approve|reject` refuses and names the API call that decides, made
 * with an approver's own key. Blocking libpq: runs without a loop. */
#define _GNU_SOURCE
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "mutt/approval.h"
#include "mutt/config.h"

#define CMD "changes"

int cli_approval_covers(const struct mutt_config *cfg, enum mutt_approval_scope scope, const char *key, bool *covered)
{
    struct mutt_approval_policy *p = malloc(sizeof *p);
    char err[256];
    if (!p)
        return -1;
    int rc = mutt_approval_parse(mutt_config_str(cfg, MUTT_CFG_APPROVAL_REQUIRED), p, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "%s\n", err);
    else
        *covered = mutt_approval_covers(p, scope, key);
    free(p);
    return rc == 0 ? 0 : -1;
}

int cli_change_file(PGconn *pg, const char *cmd, const char *scope, const char *change_json, const char *justification,
                    const char *emergency, long long *id)
{
    char actor[128];
    cli_actor(actor, sizeof actor);
    const char *p[] = {actor, scope, change_json, justification, emergency};
    PGresult *res = PQexecParams(
        pg,
        "WITH r AS (INSERT INTO config_change_requests (requested_by, scope, change, justification, emergency_reason, "
        "status) VALUES ($1, $2, $3::jsonb, $4, $5::text, CASE WHEN $5::text IS NULL THEN 'pending' ELSE 'emergency' END) "
        "RETURNING *), "
        "a AS (INSERT INTO config_audit_log (changed_by, operation, table_name, record_id, new_values, reason) "
        "SELECT $1, 'EMERGENCY', 'config_change_requests', r.id::int, "
        "jsonb_build_object('scope', r.scope, 'change', r.change, 'status', r.status), $5 FROM r "
        "WHERE $5::text IS NOT NULL) SELECT id FROM r",
        5, NULL, p, NULL, NULL, 0);
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "%s: filing the change request failed: %s\n", cmd, msg);
    }
    PQclear(res);
    return ok ? 0 : -1;
}

static int changes_list(const struct mutt_config *cfg, const char *status)
{
    PGconn *pg = cli_pg(cfg, CMD);
    if (!pg)
        return CLI_FAIL;
    const char *p[] = {status};
    PGresult *res = PQexecParams(pg,
                                 "SELECT id, status, scope, requested_by, "
                                 "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                                 "coalesce(decided_by, '-'), change::text, coalesce(justification, '') "
                                 "FROM config_change_requests WHERE ($1::text IS NULL OR status = $1) "
                                 "ORDER BY id DESC LIMIT 200",
                                 1, NULL, p, NULL, NULL, 0);
    int rc = CLI_FAIL;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) {
        printf("%-6s %-10s %-10s %-24s %-21s %-24s %s\n", "ID", "STATUS", "SCOPE", "REQUESTED_BY", "CREATED",
               "DECIDED_BY", "CHANGE / JUSTIFICATION");
        for (int r = 0; r < PQntuples(res); r++)
            printf("%-6s %-10s %-10s %-24s %-21s %-24s %s %s\n", PQgetvalue(res, r, 0), PQgetvalue(res, r, 1),
                   PQgetvalue(res, r, 2), PQgetvalue(res, r, 3), PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
                   PQgetvalue(res, r, 6), PQgetvalue(res, r, 7));
        rc = CLI_OK;
    } else {
        char msg[300];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(pg));
        msg[strcspn(msg, "\n")] = '\0';
        fprintf(stderr, "%s: list failed: %s\n", CMD, msg);
    }
    PQclear(res);
    PQfinish(pg);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "changes: usage: mutt changes list [--status pending|approved|rejected|expired|failed|emergency]\n"
                    "                 | approve ID | reject ID (refused: see below)\n");
    return CLI_USAGE;
}

int cli_changes(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc < 1)
        return usage();
    if (strcmp(argv[0], "list") == 0) {
        if (argc == 1)
            return changes_list(cfg, NULL);
        if (argc == 3 && strcmp(argv[1], "--status") == 0)
            return changes_list(cfg, argv[2]);
        return usage();
    }
    if ((strcmp(argv[0], "approve") == 0 || strcmp(argv[0], "reject") == 0) && argc == 2) {
        /* D47: a decision needs an authenticated second person; the CLI only knows a unix user */
        fprintf(stderr,
                "changes: the CLI cannot %s change requests (D47): an approver decides through the API with their "
                "own key, e.g.\n  curl -X POST -H 'X-API-KEY: <approver key>' "
                "http://<web>:%lld/api/v2/changes/%s/%s\nor in the dashboard's Changes tab.\n",
                argv[0], (long long)mutt_config_int(cfg, MUTT_CFG_WEBUI_PORT), argv[1], argv[0]);
        return CLI_USAGE;
    }
    return usage();
}

/* sha256 of a file as 64 hex digits; -1 when it cannot be read. */
static int file_sha256(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[65536], dig[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0)
        ok = EVP_DigestUpdate(md, buf, n) == 1;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(md, dig, &dlen) == 1 && dlen == 32;
    EVP_MD_CTX_free(md);
    fclose(f);
    for (unsigned i = 0; ok && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", dig[i]);
    return ok ? 0 : -1;
}

static bool restore_covered(const struct mutt_config *cfg, int *err)
{
    bool any = false, c = false;
    static const enum mutt_approval_scope scopes[] = {MUTT_APPROVAL_CONFIG, MUTT_APPROVAL_RULES,
                                                      MUTT_APPROVAL_DEV_HOSTS, MUTT_APPROVAL_TEAMS};
    *err = 0;
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        if (cli_approval_covers(cfg, scopes[i], NULL, &c) != 0) {
            *err = -1;
            return false;
        }
        any = any || c;
    }
    return any;
}

/* Marks an approved restore request applied (once) when it names this archive. */
static int claim_approved_restore(PGconn *pg, long long id, const char *sha)
{
    char ids[24], actor[128];
    snprintf(ids, sizeof ids, "%lld", id);
    cli_actor(actor, sizeof actor);
    const char *p[] = {ids, sha, actor};
    PGresult *res = PQexecParams(
        pg,
        "UPDATE config_change_requests SET result = jsonb_build_object('applied_by', $3::text, 'applied_at', now()) "
        "WHERE id = $1::bigint AND status = 'approved' AND change->>'kind' = 'restore' AND change->>'sha256' = $2 "
        "AND result IS NULL RETURNING id",
        3, NULL, p, NULL, NULL, 0);
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    int n = ok ? PQntuples(res) : -1;
    PQclear(res);
    if (n != 1) {
        fprintf(stderr, "restore: change request %lld is not an approved, not yet applied restore of this archive "
                        "(mutt changes list shows its status)\n", id);
        return -1;
    }
    return 0;
}

int cli_restore_gate_check(const struct mutt_config *cfg, PGconn *pg, const char *path,
                           const struct cli_restore_gate *gate)
{
    int err = 0;
    bool covered = restore_covered(cfg, &err);
    if (err)
        return -1;
    if (!covered) {
        if (gate->change_id)
            fprintf(stderr, "restore: --change ignored: APPROVAL_REQUIRED is off\n");
        return 0;
    }
    char sha[65];
    if (file_sha256(path, sha) != 0) {
        fprintf(stderr, "restore: cannot read %s\n", path);
        return -1;
    }
    if (gate->change_id)
        return claim_approved_restore(pg, gate->change_id, sha);
    char abs[PATH_MAX];
    json_t *ch = json_pack("{s:s, s:s, s:s}", "kind", "restore", "file", realpath(path, abs) ? abs : path, "sha256", sha);
    char *text = ch ? json_dumps(ch, JSON_COMPACT) : NULL;
    json_decref(ch);
    long long id = 0;
    int rc = text ? cli_change_file(pg, "restore", "restore", text, NULL, gate->emergency, &id) : -1;
    free(text);
    if (rc != 0)
        return -1;
    if (gate->emergency) {
        fprintf(stderr, "restore: EMERGENCY restore (change request %lld) applied without approval; it is listed "
                        "for approval\n", id);
        return 0;
    }
    printf("restore: needs approval (APPROVAL_REQUIRED): change request %lld filed; once approved, run "
           "mutt restore --change %lld %s\n", id, id, path);
    return 1;
}
