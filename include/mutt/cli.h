/* Operator sub-commands of the `mutt` binary (CONTRACT §10): config, health, dlq, send-event,
 * backup/restore, retention, migrate, relay, check-config, and the production compliance gate used at start.
 * They run before/without the daemon's loop, so they use blocking hiredis/libpq/libcurl on
 * purpose (retention runs the daemon's own async code on a private loop). Exit codes: 0 ok,
 * 1 runtime failure, 2 usage or config error; every failure prints one line to stderr. */
#ifndef MUTT_CLI_H
#define MUTT_CLI_H

#include <stdbool.h>
#include <stdio.h>

struct mutt_config;

/* True when `command` is one of the sub-commands mutt_cli_run handles. */
bool mutt_cli_known(const char *command);

/* Runs `command` with its arguments (argv[0..argc-1] are the words AFTER the command name).
 * cfg was loaded and validated by main (borrowed). Returns the exit code. */
int mutt_cli_run(const char *command, int argc, char **argv, struct mutt_config *cfg);

/* Prints the production compliance violations (D25) of cfg to out, one line each:
 * `compliance: <id> <severity> <KEY>: <message>`. Returns how many are critical. */
int mutt_cli_compliance_report(const struct mutt_config *cfg, FILE *out);
/* The values the compliance rules read (compliance.h), from cfg; the strings are borrowed from
 * it. */
struct mutt_compliance_input;
void mutt_cli_compliance_input(const struct mutt_config *cfg, struct mutt_compliance_input *in);

/* Applies the PostgreSQL schema (`mutt migrate`, and MIGRATE_ON_START before the loop exists):
 * blocking. Prints "migrate: ok (N migrations applied)" to stdout or one reason line to stderr.
 * Returns 0 or 1. */
int mutt_cli_migrate(const struct mutt_config *cfg);

/* One paragraph listing the sub-commands, for `mutt --help`. */
void mutt_cli_usage(FILE *out);

#endif
