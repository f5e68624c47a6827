/* Spooled members of full backups (backup_full.h). */
#define _GNU_SOURCE
#include "backup_full.h"

#include <archive_entry.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "mutt/config.h"

#define PAGE 1000

static void hex(const unsigned char *md, char out[65])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

void backup_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(md, 0, sizeof(md));
    hex(md, out);
}

static int spool_open(struct spool *s, const char *name, const char *key)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->key, sizeof(s->key), "%s", key);
    s->f = tmpfile();
    s->md = EVP_MD_CTX_new();
    if (!s->f || !s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        spool_close(s);
        return -1;
    }
    return 0;
}

void spool_close(struct spool *s)
{
    if (s->f)
        fclose(s->f);
    if (s->md)
        EVP_MD_CTX_free(s->md);
    s->f = NULL;
    s->md = NULL;
}

int spool_dlqs_init(struct spool *s, const struct mutt_config *cfg)
{
    static const char *const names[] = {"dlq/alerter.ndjson", "dlq/moog.ndjson", "dlq/dead.ndjson"};
    static const enum mutt_cfg_key keys[] = {MUTT_CFG_ALERTER_DLQ_NAME, MUTT_CFG_MOOG_DLQ_NAME,
                                             MUTT_CFG_DEAD_LETTER_QUEUE};
    for (int i = 0; i < 3; i++)
        if (spool_open(&s[i], names[i], mutt_config_str(cfg, keys[i])) != 0) {
            while (i-- > 0)
                spool_close(&s[i]);
            return -1;
        }
    return 3;
}

int spool_for_member(struct spool *s, const char *member)
{
    static const char *const dlq[] = {"dlq/alerter.ndjson", "dlq/moog.ndjson", "dlq/dead.ndjson"};
    static const char *const audit[] = {"config_audit_log", "event_audit_log", "legal_holds"};
    for (int i = 0; i < 3; i++)
        if (strcmp(member, dlq[i]) == 0)
            return spool_open(s, member, "");
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof(name), "audit/%s.ndjson", audit[i]);
        if (strcmp(member, name) == 0)
            return spool_open(s, member, audit[i]);
    }
    return 1;
}

int spool_audit_init(struct spool *s)
{
    static const char *const tables[] = {"config_audit_log", "event_audit_log", "legal_holds"};
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof(name), "audit/%s.ndjson", tables[i]);
        if (spool_open(&s[i], name, tables[i]) != 0) {
            while (i-- > 0)
                spool_close(&s[i]);
            return -1;
        }
    }
    return 3;
}

static int put(struct spool *s, const void *p, size_t n)
{
    if (n && (fwrite(p, 1, n, s->f) != n || EVP_DigestUpdate(s->md, p, n) != 1))
        return -1;
    s->bytes += (int64_t)n;
    return 0;
}

int spool_line(struct spool *s, const char *data, size_t len, bool encode)
{
    int rc;
    if (!encode) {
        rc = put(s, data, len);
    } else {
        json_t *v = json_stringn(data, len); /* NULL when not UTF-8 (or has NUL) */
        if (!v) {
            int blen = 4 * (((int)len + 2) / 3) + 1;
            unsigned char *b = malloc((size_t)blen);
            if (!b)
                return -1;
            EVP_EncodeBlock(b, (const unsigned char *)data, (int)len);
            v = json_pack("{s:s}", "base64", (char *)b);
            free(b);
        }
        char *t = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        json_decref(v);
        rc = t ? put(s, t, strlen(t)) : -1;
        free(t);
    }
    if (rc == 0)
        rc = put(s, "\n", 1);
    if (rc == 0)
        s->lines++;
    return rc;
}

int spool_finish(struct spool *s)
{
    unsigned char md[32];
    unsigned int n = 0;
    if (fflush(s->f) != 0 || EVP_DigestFinal_ex(s->md, md, &n) != 1 || n != 32)
        return -1;
    hex(md, s->sha);
    rewind(s->f);
    return 0;
}

int spool_fill_dlq(struct spool *s, redisContext *c, const char *cmd)
{
    for (long start = 0;; start += PAGE) {
        redisReply *r = redisCommand(c, "LRANGE %s %ld %ld", s->key, start, start + PAGE - 1);
        if (!cli_redis_ok(c, r, cmd, "LRANGE") || r->type != REDIS_REPLY_ARRAY) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        size_t n = r->elements;
        for (size_t i = 0; i < n; i++) {
            redisReply *it = r->element[i];
            if (it->type == REDIS_REPLY_STRING && spool_line(s, it->str, it->len, true) != 0) {
                freeReplyObject(r);
                fprintf(stderr, "%s: cannot spool %s\n", cmd, s->key);
                return -1;
            }
        }
        freeReplyObject(r);
        if (n < PAGE)
            return spool_finish(s);
    }
}

int spool_fill_audit(struct spool *s, int n, PGconn *pg, const char *cmd)
{
    if (cli_pg_exec(pg, cmd, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char sql[128 + sizeof(s[i].key)];
        /* s->key is one of spool_audit_init's constant table names */
        snprintf(sql, sizeof(sql), "DECLARE mutt_backup_c NO SCROLL CURSOR FOR SELECT row_to_json(t)::text FROM %s t",
                 s[i].key);
        if (cli_pg_exec(pg, cmd, sql) != 0)
            return -1;
        for (;;) {
            PGresult *res = PQexec(pg, "FETCH 2000 FROM mutt_backup_c");
            if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
                fprintf(stderr, "%s: reading %s failed: %s", cmd, s[i].key, PQerrorMessage(pg));
                PQclear(res);
                return -1;
            }
            int rows = PQntuples(res);
            for (int r = 0; r < rows; r++)
                if (spool_line(&s[i], PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0), false) != 0) {
                    PQclear(res);
                    fprintf(stderr, "%s: cannot spool %s\n", cmd, s[i].key);
                    return -1;
                }
            PQclear(res);
            if (rows == 0)
                break;
        }
        if (cli_pg_exec(pg, cmd, "CLOSE mutt_backup_c") != 0 || spool_finish(&s[i]) != 0)
            return -1;
    }
    return cli_pg_exec(pg, cmd, "COMMIT");
}

int spool_to_archive(struct spool *s, struct archive *a, time_t mtime)
{
    struct archive_entry *e = archive_entry_new();
    if (!e)
        return -1;
    archive_entry_set_pathname(e, s->name);
    archive_entry_set_size(e, (la_int64_t)s->bytes);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0600);
    archive_entry_set_mtime(e, mtime, 0);
    int rc = archive_write_header(a, e) == ARCHIVE_OK ? 0 : -1;
    archive_entry_free(e);
    rewind(s->f);
    char buf[65536];
    int64_t left = s->bytes;
    while (rc == 0 && left > 0) {
        size_t want = left < (int64_t)sizeof(buf) ? (size_t)left : sizeof(buf);
        if (fread(buf, 1, want, s->f) != want || archive_write_data(a, buf, want) != (la_ssize_t)want)
            rc = -1;
        left -= (int64_t)want;
    }
    return rc;
}

int spool_from_archive(struct spool *s, struct archive *a, int64_t size)
{
    char buf[65536];
    int64_t left = size;
    while (left > 0) {
        la_ssize_t got = archive_read_data(a, buf, sizeof(buf));
        if (got <= 0)
            return -1;
        if (put(s, buf, (size_t)got) != 0)
            return -1;
        for (la_ssize_t i = 0; i < got; i++)
            if (buf[i] == '\n')
                s->lines++;
        left -= got;
    }
    return spool_finish(s);
}

int spool_decode_item(const char *line, size_t len, char **out, size_t *out_len)
{
    json_t *v = json_loadb(line, len, JSON_DECODE_ANY, NULL);
    int rc = -1;
    if (json_is_string(v)) {
        *out_len = json_string_length(v);
        *out = malloc(*out_len + 1);
        if (*out) {
            memcpy(*out, json_string_value(v), *out_len);
            rc = 0;
        }
    } else if (json_is_object(v) && json_is_string(json_object_get(v, "base64"))) {
        const char *b = json_string_value(json_object_get(v, "base64"));
        size_t bl = strlen(b);
        *out = malloc(bl / 4 * 3 + 3);
        int n = *out ? EVP_DecodeBlock((unsigned char *)*out, (const unsigned char *)b, (int)bl) : -1;
        if (n >= 0) {
            /* EVP_DecodeBlock counts the padding as bytes */
            if (bl >= 1 && b[bl - 1] == '=')
                n--;
            if (bl >= 2 && b[bl - 2] == '=')
                n--;
            *out_len = (size_t)n;
            rc = 0;
        } else {
            free(*out);
            *out = NULL;
        }
    }
    json_decref(v);
    return rc;
}

int spool_each_line(struct spool *s, int (*cb)(void *priv, const char *line, size_t len), void *priv)
{
    rewind(s->f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, s->f)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        if (n > 0)
            rc = cb(priv, line, (size_t)n);
    }
    free(line);
    return rc;
}

struct copy_ctx {
    PGconn *pg;
    char *esc;
    size_t cap;
};

/* One COPY text row per line (cli_copy_json_row). */
static int copy_line(void *priv, const char *line, size_t len)
{
    struct copy_ctx *c = priv;
    return cli_copy_json_row(c->pg, &c->esc, &c->cap, line, len);
}

int spool_restore_table(struct spool *s, PGconn *pg, const char *cmd, long long *inserted)
{
    char sql[1024 + 4 * sizeof(s->key)];
    *inserted = 0;
    if (cli_pg_exec(pg, cmd, "CREATE TEMP TABLE IF NOT EXISTS mutt_restore_rows (j json) ON COMMIT DROP") != 0 ||
        cli_pg_exec(pg, cmd, "TRUNCATE mutt_restore_rows") != 0)
        return -1;
    PGresult *res = PQexec(pg, "COPY mutt_restore_rows (j) FROM STDIN");
    bool ok = res && PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!ok) {
        fprintf(stderr, "%s: COPY for %s failed: %s", cmd, s->key, PQerrorMessage(pg));
        return -1;
    }
    struct copy_ctx c = {.pg = pg};
    int rc = spool_each_line(s, copy_line, &c);
    free(c.esc);
    if (PQputCopyEnd(pg, rc == 0 ? NULL : "spool unreadable") != 1)
        rc = -1;
    while ((res = PQgetResult(pg)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = -1;
        PQclear(res);
    }
    if (rc != 0) {
        fprintf(stderr, "%s: loading %s failed: %s", cmd, s->name, PQerrorMessage(pg));
        return -1;
    }
    /* s->key is one of spool_audit_init's constant table names */
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s SELECT (json_populate_record(NULL::%s, j)).* FROM mutt_restore_rows ON CONFLICT DO NOTHING",
             s->key, s->key);
    res = PQexec(pg, sql);
    ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (ok)
        *inserted = atoll(PQcmdTuples(res));
    PQclear(res);
    /* the id sequence ahead of every restored id, and never moved back */
    snprintf(sql, sizeof(sql),
             "SELECT setval(s, GREATEST(coalesce((SELECT max(id) FROM %s), 0), coalesce(pg_sequence_last_value(s), 0)) "
             "+ 1, false) FROM (SELECT pg_get_serial_sequence('%s', 'id')::regclass s) x",
             s->key, s->key);
    res = ok ? PQexec(pg, sql) : NULL;
    ok = ok && res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!ok)
        fprintf(stderr, "%s: restoring %s failed: %s", cmd, s->key, PQerrorMessage(pg));
    return ok ? 0 : -1;
}
