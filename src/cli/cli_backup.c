/* `mutt backup FILE` / `mutt restore FILE` (CONTRACT §10, D27): a tar.gz written with libarchive
 * holding mutt.conf (the static config without secrets), dynamic_config.json (every string key
 * mutt:config:*), rules.json, dev_hosts.json, teams.json and manifest.json (schema version,
 * time, pod). Restore replaces rules, dev hosts and teams in one PostgreSQL transaction, writes
 * the dynamic keys in one MULTI, commits only when Redis took them, audits RESTORE/backup, and
 * refuses an archive from a newer schema than mutt_migrate_latest(). Blocking I/O: no loop. */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "backup_full.h"
#include "cli_internal.h"
#include "mutt/adapter_opts.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/keys.h"
#include "mutt/migrate.h"
#include "mutt/pg.h"
#include "mutt/pod.h"
#include "mutt/redact.h"
#include "mutt/timefmt.h"
#include "mutt/version.h"

#define FORMAT_NAME "mutt-backup"
#define FORMAT_VERSION 1
#define MAX_MEMBER_BYTES (256u << 20) /* a member larger than this is not one of ours */
/* Default of `restore --max-bytes`: what the whole archive may expand to (every entry, read or
 * skipped, and its headers). A config backup is kilobytes to a few MiB; the cap makes a
 * decompression bomb fail fast instead of filling memory or disk-backed swap (D64). */
#define RESTORE_MAX_BYTES_DEFAULT (64ll << 20)
/* Default of `restore --max-audit-bytes`: what the audit members of a `backup --full
 * --with-audit` archive may expand to (D64: they stream to spool files and to PostgreSQL, so
 * they have their own cap instead of sharing the config part's 64 MiB). */
#define RESTORE_MAX_AUDIT_BYTES_DEFAULT (16ll << 30)

/* The three tables, in restore order, with their JSON member. ORDER BY makes a backup of the
 * same data byte-identical. */
static const struct table {
    const char *member;
    const char *export_sql;
    const char *delete_sql;
    const char *insert_sql;
} tables[] = {
    {"rules.json", "SELECT coalesce(json_agg(t ORDER BY t.id), '[]'::json)::text FROM alert_rules t",
     "DELETE FROM alert_rules",
     "INSERT INTO alert_rules SELECT * FROM json_populate_recordset(NULL::alert_rules, $1::json)"},
    {"dev_hosts.json", "SELECT coalesce(json_agg(t ORDER BY t.hostname), '[]'::json)::text FROM development_hosts t",
     "DELETE FROM development_hosts",
     "INSERT INTO development_hosts SELECT * FROM json_populate_recordset(NULL::development_hosts, $1::json)"},
    {"teams.json", "SELECT coalesce(json_agg(t ORDER BY t.hostname), '[]'::json)::text FROM device_teams t",
     "DELETE FROM device_teams",
     "INSERT INTO device_teams SELECT * FROM json_populate_recordset(NULL::device_teams, $1::json)"},
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

static const char *pg_msg(PGconn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s", PQerrorMessage(c));
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* Every string key under mutt:config: as {"<key without prefix>": value}; NULL on failure. */
static json_t *read_dynamic(redisContext *c, const char *cmd)
{
    json_t *out = json_object();
    char cursor[32] = "0";
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s* COUNT 1000", cursor, MUTT_DYNCONFIG_PREFIX);
        if (!cli_redis_ok(c, r, cmd, "SCAN") || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            json_decref(out);
            return NULL;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *key = keys->element[i]->str;
            redisReply *v = redisCommand(c, "GET %s", key);
            /* only strings: another module's hash or list under the prefix is not a config value */
            if (v && v->type == REDIS_REPLY_STRING)
                json_object_set_new(out, key + strlen(MUTT_DYNCONFIG_PREFIX), json_stringn(v->str, v->len));
            if (v)
                freeReplyObject(v);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return out;
}

/* The static config as KEY=VALUE lines: every key not at its default, secrets left out, and
 * credentials inside URL values (MOOG_WEBHOOK_URL=https://user:pw@...) masked: they are secrets
 * too (CONTRACT §9). */
static char *static_conf(const struct mutt_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "# MUTT static configuration written by `mutt backup` (secrets left out)\n");
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        const struct mutt_cfg_def *d = &mutt_cfg_defs[k];
        if (d->type == MUTT_CFG_T_SECRET || mutt_config_source(cfg, (enum mutt_cfg_key)k) == MUTT_CFG_SRC_DEFAULT)
            continue;
        char shown[MUTT_REDACT_URL_MAX];
        fprintf(f, "%s=%s\n", d->name, mutt_redact_url(mutt_config_str(cfg, (enum mutt_cfg_key)k), shown, sizeof shown));
    }
    fclose(f);
    return buf;
}

static int add_member(struct archive *a, const char *name, const char *data, size_t len, time_t mtime)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return -1;
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_mtime(e, mtime, 0);
    int rc = archive_write_header(a, e) == ARCHIVE_OK && archive_write_data(a, data, len) == (la_ssize_t)len ? 0 : -1;
    archive_entry_free(e);
    return rc;
}

/* One snapshot of the three tables, as their JSON texts in members[] (malloc'd). */
static int export_tables(PGconn *pg, char *members[NTABLES])
{
    char msg[300];
    if (cli_pg_exec(pg, "backup", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        return -1;
    for (size_t i = 0; i < NTABLES; i++) {
        PGresult *res = PQexec(pg, tables[i].export_sql);
        if (!res || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
            fprintf(stderr, "backup: reading %s failed: %s\n", tables[i].member, pg_msg(pg, msg, sizeof(msg)));
            PQclear(res);
            return -1;
        }
        members[i] = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (!members[i])
            return -1;
    }
    cli_pg_exec(pg, "backup", "COMMIT");
    return 0;
}

/* manifest.json's text (malloc'd), or NULL when out of memory. */
static char *manifest_json(const struct mutt_config *cfg, int schema, size_t dynamic_keys, const struct timeval *tv,
                           json_t *extra)
{
    char at[MUTT_TIME_ISO8601_MS_LEN];
    mutt_time_format_iso8601_ms((int64_t)tv->tv_sec * 1000 + tv->tv_usec / 1000, at, sizeof(at));
    char pod[300];
    const char *configured = mutt_config_str(cfg, MUTT_CFG_POD_NAME);
    if (configured[0])
        snprintf(pod, sizeof(pod), "%s", configured);
    else
        mutt_pod_default_name(pod, sizeof(pod));
    json_t *manifest = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:I, s:[sssss]}", "format", FORMAT_NAME,
                                 "format_version", FORMAT_VERSION, "schema_version", schema, "mutt_version",
                                 MUTT_VERSION, "created_at", at, "pod", pod, "dynamic_keys", (json_int_t)dynamic_keys,
                                 "files", "mutt.conf", "dynamic_config.json", "rules.json", "dev_hosts.json",
                                 "teams.json");
    if (manifest && extra) { /* --full: more members, their checksums and line counts */
        json_t *files = json_object_get(manifest, "files");
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(extra, "extra_files"), i, v) json_array_append(files, v);
        json_object_del(extra, "extra_files");
        json_object_update(manifest, extra);
    }
    char *text = manifest ? json_dumps(manifest, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(manifest);
    return text;
}

/* Writes the archive to path, or nothing at path: 0, or -1 with the reason printed.
 * Written beside the target and renamed: a failed backup never leaves half a file at FILE.
 * The name is predictable, so it is created with O_EXCL|O_NOFOLLOW: whatever already sits
 * there (a stale file, a symlink planted to redirect the write) is neither followed nor
 * truncated nor removed; the backup fails instead. 0600: config data, owner only. */
static int write_archive(const char *path, time_t mtime, const char *manifest_text, const char *conf_text,
                         const char *dyn_text, char *const members[NTABLES], struct spool *sp, int nsp)
{
    char *tmp = NULL;
    int tmp_fd = -1, rc = -1;
    bool tmp_created = false;
    struct archive *a = NULL;
    if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0) {
        tmp = NULL;
        goto out;
    }
    tmp_fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (tmp_fd < 0) {
        fprintf(stderr, "backup: cannot create %s: %m\n", tmp);
        goto out;
    }
    tmp_created = true;
    a = archive_write_new();
    if (!a || archive_write_add_filter_gzip(a) != ARCHIVE_OK || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK)
        goto archive_fail;
    if (archive_write_open_fd(a, tmp_fd) != ARCHIVE_OK)
        goto archive_fail;
    if (add_member(a, "manifest.json", manifest_text, strlen(manifest_text), mtime) != 0 ||
        add_member(a, "mutt.conf", conf_text, strlen(conf_text), mtime) != 0 ||
        add_member(a, "dynamic_config.json", dyn_text, strlen(dyn_text), mtime) != 0)
        goto archive_fail;
    for (size_t i = 0; i < NTABLES; i++)
        if (add_member(a, tables[i].member, members[i], strlen(members[i]), mtime) != 0)
            goto archive_fail;
    for (int i = 0; i < nsp; i++)
        if (spool_to_archive(&sp[i], a, mtime) != 0)
            goto archive_fail;
    if (archive_write_close(a) != ARCHIVE_OK)
        goto archive_fail;
    if (fsync(tmp_fd) != 0 || close(tmp_fd) != 0) { /* archive_write_open_fd leaves the descriptor to us */
        tmp_fd = -1;
        fprintf(stderr, "backup: cannot write %s: %m\n", tmp);
        goto out;
    }
    tmp_fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "backup: cannot write %s: %m\n", path);
        goto out;
    }
    rc = 0;
    goto out;
archive_fail:
    fprintf(stderr, "backup: cannot write %s: %s\n", path, a ? archive_error_string(a) : "out of memory");
out:
    if (a)
        archive_write_free(a);
    if (tmp_fd >= 0)
        close(tmp_fd);
    if (tmp_created && rc != 0)
        unlink(tmp); /* ours only: a file that was already there stays */
    free(tmp);
    return rc;
}

int cli_backup(int argc, char **argv, struct mutt_config *cfg)
{
    const char *path = NULL;
    bool full = false, with_audit = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0)
            full = true;
        else if (strcmp(argv[i], "--with-audit") == 0)
            with_audit = true;
        else if (!path && argv[i][0] != '-')
            path = argv[i];
        else
            path = NULL, argc = 0;
    }
    if (!path || (with_audit && !full)) {
        fprintf(stderr, "backup: usage: mutt backup [--full [--with-audit]] FILE\n");
        return CLI_USAGE;
    }
    struct mutt_pg_opts po;
    mutt_pg_opts_from_config(cfg, &po);
    int schema = 0;
    char err[512] = "";
    if (mutt_migrate_status(&po, &schema, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "backup: %s\n", err);
        return CLI_FAIL;
    }
    PGconn *pg = cli_pg(cfg, "backup");
    if (!pg)
        return CLI_FAIL;
    redisContext *rc_ = cli_redis(cfg, "backup");
    if (!rc_) {
        PQfinish(pg);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    char *members[NTABLES] = {0};
    char *dyn_text = NULL, *manifest_text = NULL, *conf_text = NULL;
    json_t *dyn = NULL, *extra = NULL;
    struct spool sp[BACKUP_MAX_SPOOLS];
    int nsp = 0;

    if (export_tables(pg, members) != 0)
        goto out;
    dyn = read_dynamic(rc_, "backup");
    if (!dyn)
        goto out;
    dyn_text = json_dumps(dyn, JSON_COMPACT | JSON_SORT_KEYS);
    conf_text = static_conf(cfg);
    if (full && dyn_text && conf_text) {
        int n = spool_dlqs_init(sp, cfg);
        if (n < 0)
            goto spool_fail;
        nsp = n;
        for (int i = 0; i < n; i++)
            if (spool_fill_dlq(&sp[i], rc_, "backup") != 0)
                goto spool_fail;
        if (with_audit) {
            n = spool_audit_init(sp + nsp);
            if (n < 0)
                goto spool_fail;
            nsp += n;
            if (spool_fill_audit(sp + nsp - n, n, pg, "backup") != 0)
                goto spool_fail;
        }
        /* every member but the manifest, by sha256, so `restore --verify` can check them all */
        extra = json_pack("{s:b, s:b, s:[], s:{}, s:{}}", "full", 1, "with_audit", with_audit, "extra_files",
                          "checksums", "lines");
        if (!extra)
            goto spool_fail;
        json_t *sums = json_object_get(extra, "checksums"), *lines = json_object_get(extra, "lines");
        char hx[65];
        backup_sha256_hex(conf_text, strlen(conf_text), hx);
        json_object_set_new(sums, "mutt.conf", json_string(hx));
        backup_sha256_hex(dyn_text, strlen(dyn_text), hx);
        json_object_set_new(sums, "dynamic_config.json", json_string(hx));
        for (size_t i = 0; i < NTABLES; i++) {
            backup_sha256_hex(members[i], strlen(members[i]), hx);
            json_object_set_new(sums, tables[i].member, json_string(hx));
        }
        for (int i = 0; i < nsp; i++) {
            json_array_append_new(json_object_get(extra, "extra_files"), json_string(sp[i].name));
            json_object_set_new(sums, sp[i].name, json_string(sp[i].sha));
            json_object_set_new(lines, sp[i].name, json_integer(sp[i].lines));
        }
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    manifest_text = manifest_json(cfg, schema, json_object_size(dyn), &tv, extra);
    if (!dyn_text || !conf_text || !manifest_text) {
        fprintf(stderr, "backup: out of memory\n");
        goto out;
    }
    if (write_archive(path, tv.tv_sec, manifest_text, conf_text, dyn_text, members, sp, nsp) != 0)
        goto out;
    printf("backup: wrote %s (schema %d, %zu dynamic keys", path, schema, json_object_size(dyn));
    for (int i = 0; i < nsp; i++)
        printf(", %s %lld lines", sp[i].name, (long long)sp[i].lines);
    printf(")\n");
    rc = CLI_OK;
    goto out;
spool_fail:
    fprintf(stderr, "backup: cannot spool the DLQs or audit tables\n");
out:
    for (int i = 0; i < nsp; i++)
        spool_close(&sp[i]);
    json_decref(extra);
    for (size_t i = 0; i < NTABLES; i++)
        free(members[i]);
    free(dyn_text);
    free(manifest_text);
    free(conf_text);
    json_decref(dyn);
    redisFree(rc_);
    PQfinish(pg);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* restore                                                                                     */

enum member { M_MANIFEST, M_DYNAMIC, M_RULES, M_DEV_HOSTS, M_TEAMS, M__COUNT };
static const char *const member_names[M__COUNT] = {"manifest.json", "dynamic_config.json", "rules.json",
                                                   "dev_hosts.json", "teams.json"};

/* Reads the members we know into texts[] (malloc'd, NUL-terminated). Returns 0, or -1 with the
 * reason printed (exit 2: not a MUTT backup, or larger than max_bytes once expanded) or -2
 * (exit 1: I/O). Nothing is applied before this returns 0. */
struct restore_opts {
    const char *path;
    int64_t max_bytes;        /* the config part: every member but the streamed ones */
    int64_t max_stream_bytes; /* dlq/ and audit/ members of a full backup, spooled to disk */
    bool verify;              /* check only, apply nothing */
};

static bool streamed_member(const char *name)
{
    return name && (strncmp(name, "dlq/", 4) == 0 || strncmp(name, "audit/", 6) == 0);
}

static int read_archive(const struct restore_opts *o, char *texts[M__COUNT], char conf_sha[65], struct spool *sp,
                        int *nsp)
{
    const char *path = o->path;
    int64_t max_bytes = o->max_bytes;
    int64_t streamed = 0; /* expanded bytes of streamed members so far: not the config part's */
    struct archive *a = archive_read_new();
    if (!a)
        return -2;
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a); /* ours are tar; anything else is "not a MUTT backup" */
    if (archive_read_open_filename(a, path, 65536) != ARCHIVE_OK) {
        fprintf(stderr, "restore: cannot read %s: %s\n", path, archive_error_string(a));
        archive_read_free(a);
        return access(path, R_OK) == 0 ? -1 : -2;
    }
    struct archive_entry *e;
    int rc = 0, hr;
    while ((hr = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        /* Checked before the entry is read or skipped: skipping a gzip stream still inflates
         * it. Bytes so far (headers included) plus the size the header declares (for a sparse
         * entry, its full logical size). */
        la_int64_t declared = archive_entry_size(e);
        la_int64_t so_far = archive_filter_bytes(a, 0) - streamed;
        if (streamed_member(name)) {
            bool dup = false;
            for (int i = 0; i < *nsp; i++)
                dup = dup || strcmp(sp[i].name, name) == 0;
            if (declared < 0 || declared > o->max_stream_bytes - streamed) {
                fprintf(stderr,
                        "restore: the DLQ and audit members of %s expand to more than --max-stream-bytes=%lld bytes "
                        "(at %s); nothing was restored\n",
                        path, (long long)o->max_stream_bytes, name);
                rc = -1;
                break;
            }
            int sr = dup || *nsp >= BACKUP_MAX_SPOOLS ? 1 : spool_for_member(&sp[*nsp], name);
            if (sr < 0) {
                rc = -2;
                break;
            }
            if (sr == 1) { /* not one of ours, or a second copy: the first one counts */
                archive_read_data_skip(a);
                streamed += declared;
                continue;
            }
            (*nsp)++;
            if (spool_from_archive(&sp[*nsp - 1], a, declared) != 0) {
                fprintf(stderr, "restore: %s in %s is truncated or cannot be spooled\n", name, path);
                rc = -1;
                break;
            }
            streamed += declared;
            continue;
        }
        if (declared < 0 || so_far < 0 || declared > max_bytes || so_far > max_bytes - declared) {
            fprintf(stderr,
                    "restore: %s expands to more than --max-bytes=%lld bytes (at %s); nothing was restored "
                    "(raise --max-bytes if the archive is genuine)\n",
                    path, (long long)max_bytes, name ? name : "?");
            rc = -1;
            break;
        }
        int m = -1;
        for (int i = 0; i < M__COUNT; i++)
            if (name && strcmp(name, member_names[i]) == 0)
                m = i;
        if (m < 0 && name && strcmp(name, "mutt.conf") == 0 && !conf_sha[0] && declared <= (la_int64_t)MAX_MEMBER_BYTES) {
            /* never applied, only checked against the manifest's checksum */
            char *buf = malloc((size_t)declared + 1);
            if (!buf || archive_read_data(a, buf, (size_t)declared) != (la_ssize_t)declared) {
                free(buf);
                fprintf(stderr, "restore: mutt.conf in %s is truncated\n", path);
                rc = -1;
                break;
            }
            backup_sha256_hex(buf, (size_t)declared, conf_sha);
            free(buf);
            continue;
        }
        if (m < 0 || texts[m]) {
            archive_read_data_skip(a);
            continue;
        }
        la_int64_t size = archive_entry_size(e);
        if (size < 0 || size > (la_int64_t)MAX_MEMBER_BYTES) {
            fprintf(stderr, "restore: %s in %s is too large\n", name, path);
            rc = -1;
            break;
        }
        char *buf = malloc((size_t)size + 1);
        if (!buf) {
            rc = -2;
            break;
        }
        la_ssize_t got = archive_read_data(a, buf, (size_t)size);
        if (got != (la_ssize_t)size) {
            fprintf(stderr, "restore: %s in %s is truncated\n", name, path);
            free(buf);
            rc = -1;
            break;
        }
        buf[size] = '\0';
        texts[m] = buf;
    }
    if (rc == 0 && hr != ARCHIVE_EOF) {
        fprintf(stderr, "restore: %s is not a readable tar.gz: %s\n", path, archive_error_string(a));
        rc = -1;
    }
    archive_read_free(a);
    for (int i = 0; rc == 0 && i < M__COUNT; i++) {
        if (!texts[i]) {
            fprintf(stderr, "restore: %s is not a MUTT backup (no %s)\n", path, member_names[i]);
            rc = -1;
        }
    }
    return rc;
}

/* `restore [--verify] [--max-bytes N] [--max-stream-bytes M] [--emergency R | --change ID] FILE`: 0, or
 * CLI_USAGE with the reason printed. */
static int parse_restore_args(int argc, char **argv, struct restore_opts *o, struct cli_restore_gate *gate)
{
    const char *path = NULL;
    o->max_bytes = RESTORE_MAX_BYTES_DEFAULT;
    o->max_stream_bytes = RESTORE_MAX_AUDIT_BYTES_DEFAULT;
    o->verify = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--emergency") == 0 && i + 1 < argc && argv[i + 1][0]) {
            gate->emergency = argv[++i];
        } else if (strcmp(argv[i], "--change") == 0 && i + 1 < argc) {
            char *end = NULL;
            gate->change_id = strtoll(argv[++i], &end, 10);
            if (!end || *end || gate->change_id < 1) {
                fprintf(stderr, "restore: --change %s: must be a change request id\n", argv[i]);
                return CLI_USAGE;
            }
        } else if ((strcmp(argv[i], "--max-bytes") == 0 || strcmp(argv[i], "--max-stream-bytes") == 0) && i + 1 < argc) {
            const char *opt = argv[i];
            char *end = NULL;
            errno = 0;
            long long v = strtoll(argv[++i], &end, 10);
            if (errno || !end || *end || end == argv[i] || v < 1) {
                fprintf(stderr, "restore: %s %s: must be a positive number of bytes\n", opt, argv[i]);
                return CLI_USAGE;
            }
            if (strcmp(opt, "--max-bytes") == 0)
                o->max_bytes = v;
            else
                o->max_stream_bytes = v;
        } else if (strcmp(argv[i], "--verify") == 0) {
            o->verify = true;
        } else if (!path && argv[i][0] != '-') {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }
    if (!path) {
        fprintf(stderr,
                "restore: usage: mutt restore [--verify] [--max-bytes N] [--max-stream-bytes M] "
                "[--emergency REASON | --change ID] FILE (N defaults to %lld, 64 MiB; M, for the DLQ and audit "
                "members of a full backup, to %lld, 16 GiB)\n",
                (long long)RESTORE_MAX_BYTES_DEFAULT, (long long)RESTORE_MAX_AUDIT_BYTES_DEFAULT);
        return CLI_USAGE;
    }
    o->path = path;
    return 0;
}

/* Parses the members into j[] and checks they are a MUTT backup this binary can restore:
 * 0 with the schema version in *schema_out, or -1 with the reason printed. */
static int check_members(const char *path, char *const texts[M__COUNT], json_t *j[M__COUNT], int *schema_out)
{
    for (int i = 0; i < M__COUNT; i++) {
        json_error_t jerr;
        j[i] = json_loads(texts[i], 0, &jerr);
        bool shape = i == M_MANIFEST || i == M_DYNAMIC ? json_is_object(j[i]) : json_is_array(j[i]);
        if (!shape) {
            fprintf(stderr, "restore: %s in %s is not valid (%s)\n", member_names[i], path,
                    j[i] ? "wrong JSON type" : jerr.text);
            return -1;
        }
    }
    const char *format = json_string_value(json_object_get(j[M_MANIFEST], "format"));
    json_t *sv = json_object_get(j[M_MANIFEST], "schema_version");
    if (!format || strcmp(format, FORMAT_NAME) != 0 || !json_is_integer(sv)) {
        fprintf(stderr, "restore: %s is not a MUTT backup (manifest.json has no format/schema_version)\n", path);
        return -1;
    }
    int schema = (int)json_integer_value(sv);
    if (schema > mutt_migrate_latest()) {
        fprintf(stderr,
                "restore: %s was written with database schema version %d, newer than this binary's %d; "
                "restore it with a newer mutt\n",
                path, schema, mutt_migrate_latest());
        return -1;
    }
    const char *key;
    json_t *val;
    json_object_foreach(j[M_DYNAMIC], key, val)
    {
        if (!json_is_string(val) || !key[0]) {
            fprintf(stderr, "restore: dynamic_config.json in %s holds a non-string value for '%s'\n", path, key);
            return -1;
        }
    }
    *schema_out = schema;
    return 0;
}

/* A full backup's manifest lists every member's sha256 (and the streamed members' line counts):
 * each must be there and match. Older backups carry none; they get the structural checks only.
 * 0, or -1 with the bad member named. */
static int check_checksums(const char *path, char *const texts[M__COUNT], json_t *const j[M__COUNT],
                           const char *conf_sha, struct spool *sp, int nsp)
{
    json_t *sums = json_object_get(j[M_MANIFEST], "checksums");
    json_t *lines = json_object_get(j[M_MANIFEST], "lines");
    const char *name;
    json_t *want;
    json_object_foreach(sums, name, want)
    {
        char got[65] = "";
        bool present = false;
        int64_t nlines = -1;
        if (strcmp(name, "mutt.conf") == 0) {
            present = conf_sha[0] != '\0';
            snprintf(got, sizeof(got), "%s", conf_sha);
        }
        for (int i = 1; i < M__COUNT; i++) /* the manifest cannot hold its own checksum */
            if (strcmp(name, member_names[i]) == 0) {
                present = true;
                backup_sha256_hex(texts[i], strlen(texts[i]), got);
            }
        for (int i = 0; i < nsp; i++)
            if (strcmp(name, sp[i].name) == 0) {
                present = true;
                snprintf(got, sizeof(got), "%s", sp[i].sha);
                nlines = sp[i].lines;
            }
        if (!present) {
            fprintf(stderr, "restore: %s lacks %s, which its manifest lists\n", path, name);
            return -1;
        }
        if (!json_is_string(want) || strcmp(json_string_value(want), got) != 0) {
            fprintf(stderr, "restore: %s in %s does not match its checksum (corrupted)\n", name, path);
            return -1;
        }
        json_t *wl = json_object_get(lines, name);
        if (nlines >= 0 && json_is_integer(wl) && json_integer_value(wl) != nlines) {
            fprintf(stderr, "restore: %s in %s has %lld lines, its manifest says %lld\n", name, path,
                    (long long)nlines, (long long)json_integer_value(wl));
            return -1;
        }
    }
    return 0;
}

struct line_check {
    bool dlq;
    long long bad;
};

static int check_line(void *priv, const char *line, size_t len)
{
    struct line_check *c = priv;
    if (c->dlq) {
        char *item = NULL;
        size_t n = 0;
        if (spool_decode_item(line, len, &item, &n) != 0)
            c->bad++;
        free(item);
    } else {
        json_t *o = json_loadb(line, len, 0, NULL);
        if (!json_is_object(o) || !json_object_get(o, "id"))
            c->bad++;
        json_decref(o);
    }
    return 0;
}

/* --verify: every streamed line decodes (a DLQ item, an audit row object with an id). */
static int check_spool_lines(const char *path, struct spool *sp, int nsp)
{
    for (int i = 0; i < nsp; i++) {
        struct line_check c = {.dlq = strncmp(sp[i].name, "dlq/", 4) == 0};
        spool_each_line(&sp[i], check_line, &c);
        if (c.bad) {
            fprintf(stderr, "restore: %s in %s has %lld unreadable lines\n", sp[i].name, path, c.bad);
            return -1;
        }
    }
    return 0;
}

/* Step 1, PostgreSQL, left uncommitted: replaces the three tables, keeps the rule id sequence
 * ahead and audits the restore. 0, or -1 with the reason printed and the transaction rolled back. */
static int restore_tables(PGconn *pg, const char *path, char *const texts[M__COUNT], json_t *const j[M__COUNT],
                          int schema, struct spool *sp, int nsp)
{
    char msg[300];
    if (cli_pg_exec(pg, "restore", "BEGIN") != 0)
        return -1;
    for (size_t i = 0; i < NTABLES; i++) {
        PGresult *res = PQexec(pg, tables[i].delete_sql);
        bool ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        const char *p[] = {texts[M_RULES + i]};
        res = ok ? PQexecParams(pg, tables[i].insert_sql, 1, NULL, p, NULL, NULL, 0) : NULL;
        ok = ok && res && PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok) {
            fprintf(stderr, "restore: restoring %s failed: %s\n", tables[i].member, pg_msg(pg, msg, sizeof(msg)));
            cli_pg_exec(pg, "restore", "ROLLBACK");
            return -1;
        }
    }
    /* audit members of a --with-audit backup: added to what is there (ON CONFLICT DO NOTHING) */
    json_t *audit_rows = json_object();
    for (int i = 0; i < nsp; i++) {
        long long added = 0;
        if (strncmp(sp[i].name, "audit/", 6) != 0)
            continue;
        if (spool_restore_table(&sp[i], pg, "restore", &added) != 0) {
            json_decref(audit_rows);
            cli_pg_exec(pg, "restore", "ROLLBACK");
            return -1;
        }
        json_object_set_new(audit_rows, sp[i].key, json_integer(added));
    }
    PGresult *res = PQexec(pg, "SELECT setval(pg_get_serial_sequence('alert_rules', 'id'), "
                               "coalesce((SELECT max(id) FROM alert_rules), 0) + 1, false)");
    bool seq_ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    json_t *a = json_pack("{s:s, s:O?, s:O?, s:O?, s:i, s:I, s:I, s:I, s:I}", "file", path, "created_at",
                          json_object_get(j[M_MANIFEST], "created_at"), "pod", json_object_get(j[M_MANIFEST], "pod"),
                          "mutt_version", json_object_get(j[M_MANIFEST], "mutt_version"), "schema_version", schema,
                          "rules", (json_int_t)json_array_size(j[M_RULES]), "dev_hosts",
                          (json_int_t)json_array_size(j[M_DEV_HOSTS]), "teams", (json_int_t)json_array_size(j[M_TEAMS]),
                          "dynamic_keys", (json_int_t)json_object_size(j[M_DYNAMIC]));
    if (a && json_object_size(audit_rows))
        json_object_set(a, "audit_rows_added", audit_rows);
    json_decref(audit_rows);
    char *audit = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    int rc = 0;
    if (!seq_ok || !audit || cli_audit(pg, "restore", "RESTORE", "backup", path, NULL, audit, NULL) != 0) {
        if (!seq_ok)
            fprintf(stderr, "restore: resetting the rule id sequence failed: %s\n", pg_msg(pg, msg, sizeof(msg)));
        cli_pg_exec(pg, "restore", "ROLLBACK");
        rc = -1;
    }
    free(audit);
    return rc;
}

/* Step 2, Redis in one MULTI: the dynamic keys become exactly dyn's (existing ones it lacks are
 * deleted); every pod hears it. true when Redis took all of it. */
struct dlq_push {
    redisContext *c;
    const char *key;
    int queued;
};

static int push_item(void *priv, const char *line, size_t len)
{
    struct dlq_push *p = priv;
    char *item = NULL;
    size_t n = 0;
    if (spool_decode_item(line, len, &item, &n) != 0)
        return -1;
    redisAppendCommand(p->c, "RPUSH %s %b", p->key, item, n);
    p->queued++;
    free(item);
    return 0;
}

static const char *dlq_key_of(const struct mutt_config *cfg, const char *member)
{
    if (strcmp(member, "dlq/alerter.ndjson") == 0)
        return mutt_config_str(cfg, MUTT_CFG_ALERTER_DLQ_NAME);
    if (strcmp(member, "dlq/moog.ndjson") == 0)
        return mutt_config_str(cfg, MUTT_CFG_MOOG_DLQ_NAME);
    return mutt_config_str(cfg, MUTT_CFG_DEAD_LETTER_QUEUE);
}

static bool restore_dynamic(redisContext *rc_, json_t *existing, json_t *dyn, const struct mutt_config *cfg,
                            struct spool *sp, int nsp)
{
    const char *key;
    json_t *val;
    int queued = 0;
    redisAppendCommand(rc_, "MULTI");
    queued++;
    json_object_foreach(existing, key, val)
    {
        if (!json_object_get(dyn, key)) {
            redisAppendCommand(rc_, "DEL %s%s", MUTT_DYNCONFIG_PREFIX, key);
            redisAppendCommand(rc_, "PUBLISH %s %s", MUTT_DYNCONFIG_CHANNEL, key);
            queued += 2;
        }
    }
    json_object_foreach(dyn, key, val)
    {
        const char *v = json_string_value(val);
        redisAppendCommand(rc_, "SET %s%s %b", MUTT_DYNCONFIG_PREFIX, key, v, json_string_length(val));
        redisAppendCommand(rc_, "PUBLISH %s %s", MUTT_DYNCONFIG_CHANNEL, key);
        queued += 2;
    }
    /* a full backup's DLQs replace the lists, in their order (head first) */
    for (int i = 0; i < nsp; i++) {
        if (strncmp(sp[i].name, "dlq/", 4) != 0)
            continue;
        struct dlq_push p = {.c = rc_, .key = dlq_key_of(cfg, sp[i].name)};
        redisAppendCommand(rc_, "DEL %s", p.key);
        queued++;
        int lr = spool_each_line(&sp[i], push_item, &p);
        queued += p.queued;
        if (lr != 0) {
            /* a line --verify would have refused: DISCARD keeps Redis as it was */
            redisAppendCommand(rc_, "DISCARD");
            queued++;
            for (int k = 0; k < queued; k++) {
                redisReply *x = NULL;
                if (redisGetReply(rc_, (void **)&x) != REDIS_OK)
                    break;
                freeReplyObject(x);
            }
            fprintf(stderr, "restore: %s holds an unreadable line\n", sp[i].name);
            return false;
        }
    }
    redisAppendCommand(rc_, "PUBLISH %s restore", MUTT_KEY_RULES_CHANNEL);
    redisAppendCommand(rc_, "EXEC");
    queued += 2;
    bool redis_ok = true;
    for (int i = 0; i < queued; i++) {
        redisReply *x = NULL;
        bool bad = redisGetReply(rc_, (void **)&x) != REDIS_OK || !x || x->type == REDIS_REPLY_ERROR ||
                   (i == queued - 1 && x->type != REDIS_REPLY_ARRAY);
        if (bad && redis_ok) {
            cli_redis_ok(rc_, x && x->type == REDIS_REPLY_ERROR ? x : NULL, "restore", "writing dynamic config");
            redis_ok = false;
        }
        if (x)
            freeReplyObject(x);
        if (!x && rc_->err)
            break; /* connection gone: no more replies will come */
    }
    return redis_ok;
}

int cli_restore(int argc, char **argv, struct mutt_config *cfg)
{
    struct restore_opts o;
    struct cli_restore_gate gate = {0};
    if (parse_restore_args(argc, argv, &o, &gate) != 0)
        return CLI_USAGE;
    const char *path = o.path;
    struct spool sp[BACKUP_MAX_SPOOLS];
    int nsp = 0;
    char conf_sha[65] = "";
    char *texts[M__COUNT] = {0};
    json_t *j[M__COUNT] = {0};
    PGconn *pg = NULL;
    redisContext *rc_ = NULL;
    json_t *existing = NULL;
    int rc = CLI_FAIL;
    int schema = 0;

    int ar = read_archive(&o, texts, conf_sha, sp, &nsp);
    if (ar != 0) {
        rc = ar == -1 ? CLI_USAGE : CLI_FAIL;
        goto out;
    }
    if (check_members(path, texts, j, &schema) != 0 || check_checksums(path, texts, j, conf_sha, sp, nsp) != 0 ||
        (o.verify && check_spool_lines(path, sp, nsp) != 0)) {
        rc = CLI_USAGE;
        goto out;
    }
    if (o.verify) {
        bool sums = json_is_object(json_object_get(j[M_MANIFEST], "checksums"));
        printf("restore --verify: %s is a readable MUTT backup (schema %d%s): %zu rules, %zu dev hosts, %zu teams, "
               "%zu dynamic keys",
               path, schema, sums ? ", every checksum matches" : ", no checksums (not a --full backup)",
               json_array_size(j[M_RULES]), json_array_size(j[M_DEV_HOSTS]), json_array_size(j[M_TEAMS]),
               json_object_size(j[M_DYNAMIC]));
        for (int i = 0; i < nsp; i++)
            printf(", %s %lld lines", sp[i].name, (long long)sp[i].lines);
        printf("; nothing was applied\n");
        rc = CLI_OK;
        goto out;
    }
    pg = cli_pg(cfg, "restore");
    if (!pg)
        goto out;
    /* D47: one change request for the whole restore */
    int g = cli_restore_gate_check(cfg, pg, path, &gate);
    if (g != 0) {
        rc = g > 0 ? CLI_OK : CLI_FAIL;
        goto out;
    }
    rc_ = cli_redis(cfg, "restore");
    if (!rc_)
        goto out;
    existing = read_dynamic(rc_, "restore");
    if (!existing)
        goto out;
    if (restore_tables(pg, path, texts, j, schema, sp, nsp) != 0)
        goto out;
    if (!restore_dynamic(rc_, existing, j[M_DYNAMIC], cfg, sp, nsp)) {
        cli_pg_exec(pg, "restore", "ROLLBACK");
        goto out;
    }
    /* 3. Commit. */
    if (cli_pg_exec(pg, "restore", "COMMIT") != 0) {
        fprintf(stderr, "restore: dynamic config was restored but the database part was not committed\n");
        goto out;
    }
    printf("restore: restored %s (schema %d): %zu rules, %zu dev hosts, %zu teams, %zu dynamic keys\n", path, schema,
           json_array_size(j[M_RULES]), json_array_size(j[M_DEV_HOSTS]), json_array_size(j[M_TEAMS]),
           json_object_size(j[M_DYNAMIC]));
    rc = CLI_OK;
out:
    for (int i = 0; i < nsp; i++)
        spool_close(&sp[i]);
    for (int i = 0; i < M__COUNT; i++) {
        free(texts[i]);
        json_decref(j[i]);
    }
    json_decref(existing);
    if (rc_)
        redisFree(rc_);
    PQfinish(pg);
    return rc;
}
