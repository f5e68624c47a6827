/* Names and manifest lines of retention archives (CONTRACT D64), without any I/O. An archive is
 * ARCHIVE_DIR/<table>/<YYYY-MM-DD>/<table>_<YYYY-MM-DD>_<run stamp>_<seq>.ndjson.gz (one JSON
 * object per line, each a whole row as row_to_json wrote it) next to that directory's
 * MANIFEST.sha256, whose lines are "<64 hex of sha256(file)>  <file name>" (sha256sum's format,
 * so `sha256sum -c MANIFEST.sha256` checks it too). src/stages/retention_archive.c does the file work. */
#ifndef MUTT_ARCHIVE_FORMAT_H
#define MUTT_ARCHIVE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUTT_ARCHIVE_MANIFEST "MANIFEST.sha256"
#define MUTT_ARCHIVE_SUFFIX ".ndjson.gz"
#define MUTT_ARCHIVE_NAME_MAX 128

/* The tables retention archives: "config_audit_log" and "event_audit_log". */
bool mutt_archive_table_ok(const char *table);
/* Exactly YYYY-MM-DD with digits (a directory name; no range check beyond that). */
bool mutt_archive_day_ok(const char *day);

/* "<table>_<day>_<YYYYMMDDTHHMMSSZ of run_ms>_<seq, 6 digits>.ndjson.gz" into buf. Returns 0,
 * MUTT_EINVAL (unknown table, bad day) or MUTT_ERANGE (buf too small). */
int mutt_archive_file_name(char *buf, size_t len, const char *table, const char *day, int64_t run_ms, unsigned seq);

/* The table a file name (a base name, no directory) was archived from, or MUTT_EINVAL when the
 * name is not one mutt_archive_file_name makes. */
int mutt_archive_table_of(const char *base_name, char *table, size_t len);

/* "<hex>  <name>\n" into buf (>= 64 + 2 + strlen(name) + 2). name must be a plain file name (no
 * '/', not "." or ".."). Returns 0, MUTT_EINVAL or MUTT_ERANGE. */
int mutt_archive_manifest_line(char *buf, size_t len, const uint8_t sha256[32], const char *name);

/* Parses one manifest line (len bytes, the '\n' optional): hex gets the 64 lower-case hex digits
 * and a NUL, name the file name. Returns 0 or MUTT_EINVAL (malformed, or a name with '/' or
 * "..": a manifest never points outside its directory). */
int mutt_archive_manifest_parse(const char *line, size_t len, char hex[65], char *name, size_t name_len);

/* 64 lower-case hex digits and a NUL into out. */
void mutt_archive_hex(const uint8_t sha256[32], char out[65]);

#endif
