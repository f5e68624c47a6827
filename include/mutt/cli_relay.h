/* `mutt relay`: reads syslog lines (or one JSON event per line) on stdin and posts them in
 * batches to the ingest API, for rsyslog builds without omhttp (D32: omprog pipes lines here).
 * A CLI command: blocking libcurl, no loop. */
#ifndef MUTT_CLI_RELAY_H
#define MUTT_CLI_RELAY_H

#include <stddef.h>
#include <stdint.h>

struct mutt_config;

/* Runs the command. argv[0] is "relay"; the rest are its options (see `mutt relay --help`).
 * Returns the process exit code: 0 every line read was accepted, 1 some lines were dropped or
 * the API refused the key, 2 usage or config error. */
int mutt_cli_relay(struct mutt_config *cfg, int argc, char **argv);
/* Same, in src/cli's command-table shape: argv holds only the options (no "relay"). */
int mutt_cli_relay_cmd(int argc, char **argv, struct mutt_config *cfg);

/* One input line (no newline) → one ingest event as compact JSON (caller frees), or NULL for a
 * blank line or on OOM. A line that is a JSON object passes through with its reserved `_` fields
 * removed (rsyslog templates that already build the event). Any other line is read as syslog by
 * mutt_syslog_parse (include/mutt/syslog_parse.h, D57) with default_host and now_ms and no
 * source_ip (a pipe has no sender address). */
char *mutt_relay_line_to_event(const char *line, size_t len, const char *default_host, int64_t now_ms);

#endif
