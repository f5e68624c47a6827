/* Writing, verifying and reading retention archives (CONTRACT D64; names and manifest lines in
 * include/mutt/archive_format.h). Blocking file I/O by design: the retention stage calls
 * mutt_archive_write from a uv_queue_work thread, the CLI calls everything directly. Thread-safe
 * (no globals). */
#ifndef MUTT_RETENTION_ARCHIVE_H
#define MUTT_RETENTION_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One row: the UTC day it belongs to and its JSON (one line, no '\n' inside). Borrowed. */
struct mutt_archive_row {
    char day[11];
    const char *json;
    size_t len;
};

struct mutt_archive_batch {
    const char *dir;     /* ARCHIVE_DIR */
    const char *command; /* ARCHIVE_COMMAND or NULL/"" */
    const char *table;   /* config_audit_log | event_audit_log */
    int64_t run_ms;      /* the run's start: part of each file name */
    unsigned seq;        /* batch number within the run: part of each file name */
    const struct mutt_archive_row *rows;
    size_t nrows;        /* rows sorted by day (each day's rows become one file) */
};

/* Makes every row of the batch durable before returning 0: per day, gzip'd NDJSON written to a
 * temporary name, fsync'd, renamed into <dir>/<table>/<day>/, the directory fsync'd, and the
 * day's MANIFEST.sha256 rewritten the same way. With a command, each file is written under
 * <dir>/.outgoing/, handed to `/bin/sh -c '<command> "$1"'` and removed afterwards; only exit 0
 * counts as durable. Returns 0 or MUTT_EIO/MUTT_ENOMEM/MUTT_EINVAL with a one-line reason in
 * err. On failure some files may exist: their rows are not deleted, and the next run archives
 * them again (restore is idempotent). */
int mutt_archive_write(const struct mutt_archive_batch *b, char *err, size_t err_len);

/* Checks every MANIFEST.sha256 under dir (recursively): each listed file exists and its sha256
 * matches. Prints one line per checked file to out ("OK <path>" / "FAILED <path>: <why>") and
 * a line for each *.ndjson.gz no manifest lists (not a failure: a crash between file and
 * manifest leaves one, and its rows were not deleted). Returns 0 when all match, MUTT_EIO when
 * any does not (err names the first bad file), MUTT_ENOTFOUND when no manifest was found. */
int mutt_archive_verify(const char *dir, FILE *out, char *err, size_t err_len);

/* Calls line_cb for every line of a gzip'd NDJSON file (without the '\n'; empty lines skipped)
 * until it returns non-zero (that value is returned). Returns 0 at the end, MUTT_EIO on a
 * read or decompression error (message in err). */
typedef int mutt_archive_line_cb(void *privdata, const char *line, size_t len);
int mutt_archive_read(const char *path, mutt_archive_line_cb *cb, void *privdata, char *err, size_t err_len);

/* sha256 of a file's bytes. Returns 0 or MUTT_EIO. */
int mutt_archive_sha256_file(const char *path, uint8_t out[32]);

#endif
