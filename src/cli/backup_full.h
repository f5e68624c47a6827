/* Streamed members of `mutt backup --full [--with-audit]` and their checks (issue 17): DLQs and
 * audit tables go through spool files (tmpfile, never whole in memory), hashed (sha256) and
 * counted line by line as they are written, then copied into the tar in chunks. Private to
 * src/cli (cli_backup.c). Blocking I/O. */
#ifndef MUTT_CLI_BACKUP_FULL_H
#define MUTT_CLI_BACKUP_FULL_H

#include <archive.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct mutt_config;

#define BACKUP_MAX_SPOOLS 8

struct spool {
    char name[64];   /* member name: dlq/<alerter|moog|dead>.ndjson, audit/<table>.ndjson */
    char key[256];   /* DLQ: the Redis list; audit: the table */
    FILE *f;         /* tmpfile(): gone when closed */
    void *md;        /* EVP_MD_CTX while writing */
    char sha[65];    /* after spool_finish */
    int64_t bytes;
    int64_t lines;
};

/* The three DLQs of cfg as spools (names and keys filled, files open). Returns the count (3) or -1. */
int spool_dlqs_init(struct spool *s, const struct mutt_config *cfg);
/* A fresh spool for a member of a full backup being read: 0, 1 when the name is not one of
 * ours (dlq/<alerter|moog|dead>.ndjson, audit/<config_audit_log|event_audit_log|legal_holds>.ndjson;
 * audit spools get their table as key), -1 on failure. */
int spool_for_member(struct spool *s, const char *member);
/* The audit tables as spools. Returns the count or -1. */
int spool_audit_init(struct spool *s);
/* The DLQ item (any bytes) or audit row as one NDJSON line: a JSON string when it is UTF-8, else
 * {"base64":"..."}; audit rows are JSON text already. Returns 0 or -1. */
int spool_line(struct spool *s, const char *data, size_t len, bool encode);
/* Ends writing: the sha256 into s->sha, the file rewound. 0 or -1. */
int spool_finish(struct spool *s);
void spool_close(struct spool *s);

/* Fills a DLQ spool with LRANGE pages of 1000 (head first). 0 or -1 (reason printed). */
int spool_fill_dlq(struct spool *s, redisContext *c, const char *cmd);
/* Fills the audit spools from one REPEATABLE READ snapshot through a cursor. 0 or -1. */
int spool_fill_audit(struct spool *s, int n, PGconn *pg, const char *cmd);
/* Appends the spool to the tar as a member of s->bytes bytes. 0 or -1. */
int spool_to_archive(struct spool *s, struct archive *a, time_t mtime);
/* Reads a tar entry of `size` bytes into a fresh spool (hashing, counting lines). 0 or -1. */
int spool_from_archive(struct spool *s, struct archive *a, int64_t size);

/* Decodes one DLQ line back to the item's bytes (malloc'd into *out). 0 or -1 (not our line). */
int spool_decode_item(const char *line, size_t len, char **out, size_t *out_len);
/* Calls cb for each line of a finished spool (rewinds first). Stops at the first non-zero. */
int spool_each_line(struct spool *s, int (*cb)(void *priv, const char *line, size_t len), void *priv);

/* Loads an audit spool into its table (s->key) inside the caller's transaction: COPY into a temp
 * table, INSERT ... ON CONFLICT DO NOTHING (rows already there stay), the id sequence moved past
 * the restored ids. *inserted = rows added. 0 or -1 (reason printed). */
int spool_restore_table(struct spool *s, PGconn *pg, const char *cmd, long long *inserted);

/* sha256 hex of a buffer. */
void backup_sha256_hex(const void *data, size_t len, char out[65]);

#endif
