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
int cli_trace(int argc, char **argv, struct mutt_config *cfg); /* cli_trace.c: event lineage (D63) */

#endif
