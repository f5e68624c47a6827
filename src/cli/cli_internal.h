/* Shared helpers of the CLI sub-commands (the files in src/cli): blocking Redis and PostgreSQL
 * connections for a one-shot command, and the config_audit_log writer. Not part of the public
 * API (include/mutt/cli.h). Blocking by design: no loop exists while a sub-command runs. */
#ifndef MUTT_CLI_INTERNAL_H
#define MUTT_CLI_INTERNAL_H

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct mutt_config;

#define CLI_OK 0
#define CLI_FAIL 1  /* runtime failure */
#define CLI_USAGE 2 /* usage or config error */

/* Connects, AUTHs (REDIS_PASS_CURRENT, then _NEXT) and SELECTs. NULL with a one-line reason
 * printed to stderr as "<cmd>: ...". */
redisContext *cli_redis(const struct mutt_config *cfg, const char *cmd);
/* Connects with DB_PASS_CURRENT, then DB_PASS_NEXT. NULL with a reason printed. */
PGconn *cli_pg(const struct mutt_config *cfg, const char *cmd);
/* Sends one line of JSON as one COPY text row ('\' doubled: JSON escapes every control
 * character, so no raw tab or newline is left). esc and cap are the caller's scratch buffer, grown
 * as needed and freed by the caller. 0, or -1 (out of memory, or libpq refused the data). */
int cli_copy_json_row(PGconn *pg, char **esc, size_t *cap, const char *line, size_t len);
/* "cli:<user>" (D18) into buf. */
const char *cli_actor(char *buf, size_t len);
/* Inserts one config_audit_log row (D20) on conn, inside the caller's transaction if one is
 * open. old_json/new_json/reason/record_key may be NULL. Returns 0 or -1 (reason printed). */
int cli_audit(PGconn *conn, const char *cmd, const char *operation, const char *table_name, const char *record_key,
              const char *old_json, const char *new_json, const char *reason);
/* Runs a parameter-less command (BEGIN, COMMIT, ROLLBACK). Returns 0 or -1 (reason printed). */
int cli_pg_exec(PGconn *conn, const char *cmd, const char *sql);
/* True when reply is non-NULL and not an error; otherwise prints "<cmd>: <what>: <reason>". */
bool cli_redis_ok(redisContext *c, redisReply *reply, const char *cmd, const char *what);

int cli_config(int argc, char **argv, struct mutt_config *cfg);
int cli_dlq(int argc, char **argv, struct mutt_config *cfg);
int cli_backup(int argc, char **argv, struct mutt_config *cfg);
int cli_restore(int argc, char **argv, struct mutt_config *cfg);
int cli_health(int argc, char **argv, struct mutt_config *cfg);
int cli_send_event(int argc, char **argv, struct mutt_config *cfg);
int cli_retention(int argc, char **argv, struct mutt_config *cfg);
int cli_migrate(int argc, char **argv, struct mutt_config *cfg);
int cli_rules(int argc, char **argv, struct mutt_config *cfg); /* cli_rules.c */
int cli_archive(int argc, char **argv, struct mutt_config *cfg);
int cli_audit_cmd(int argc, char **argv, struct mutt_config *cfg);
int cli_maintenance(int argc, char **argv, struct mutt_config *cfg); /* cli_maint.c */
int cli_changes(int argc, char **argv, struct mutt_config *cfg);

/* cli_changes.c: the two-person rule from the CLI (D47). cli_approval_covers: 0 with *covered
 * set, or -1 when APPROVAL_REQUIRED does not parse (reason printed). cli_change_file: inserts a
 * change request by cli:<user> (status pending, or emergency with its EMERGENCY audit row when
 * `emergency` is given) inside the caller's transaction if one is open; 0 with *id, or -1. */
enum mutt_approval_scope;
int cli_approval_covers(const struct mutt_config *cfg, enum mutt_approval_scope scope, const char *key, bool *covered);
/* `mutt restore` under APPROVAL_REQUIRED (any item: a restore rewrites all of them): without
 * options the restore is filed as one change request {"kind":"restore","file","sha256"} and not
 * applied (returns 1); `--change ID` applies a request that an approver approved, for the same
 * archive bytes, once (returns 0); `--emergency REASON` applies now and files it as emergency
 * (returns 0). Not covered: 0. Failure: -1 (reason printed). */
struct cli_restore_gate {
    const char *emergency;
    long long change_id;
};
int cli_restore_gate_check(const struct mutt_config *cfg, PGconn *pg, const char *path,
                           const struct cli_restore_gate *gate);
int cli_change_file(PGconn *pg, const char *cmd, const char *scope, const char *change_json, const char *justification,
                    const char *emergency, long long *id);
int cli_trace(int argc, char **argv, struct mutt_config *cfg); /* cli_trace.c: event lineage (D63) */

#endif
