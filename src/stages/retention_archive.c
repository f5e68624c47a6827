/* Retention archives on disk (include/mutt/retention_archive.h). Blocking: runs on a uv_queue_work thread
 * or in the CLI, never on the loop. */
#define _GNU_SOURCE
#include "mutt/retention_archive.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "mutt/archive_format.h"
#include "mutt/error.h"

extern char **environ;

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t len, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return MUTT_EIO;
}

/* ------------------------------------------------------------------------------------------ */
/* small file helpers                                                                          */

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes data to dir/name through dir/.name.tmp, fsync, rename, fsync(dir): after 0 the file
 * survives a crash with exactly these bytes. */
static int write_durable(const char *dir, const char *name, const void *data, size_t len, char *err, size_t elen)
{
    char tmp[4096], dst[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp) ||
        (size_t)snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= sizeof(dst))
        return fail(err, elen, "archive path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return fail(err, elen, "cannot create %s: %s", tmp, strerror(errno));
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return fail(err, elen, "cannot write %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0 || rename(tmp, dst) != 0 || fsync_dir(dir) != 0) {
        int e = errno;
        unlink(tmp);
        return fail(err, elen, "cannot commit %s: %s", dst, strerror(e));
    }
    return 0;
}

/* Reads a whole (small) file; *out NULL and 0 when it does not exist. */
static int read_small(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
            cap += 65536;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* writing                                                                                     */

struct gzbuf {
    unsigned char *p;
    size_t len, cap;
};

static int gz_compress(const struct mutt_archive_row *rows, size_t n, struct gzbuf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MUTT_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i <= n && rc == 0; i++) {
        /* every row, then its '\n'; a last pass with Z_FINISH */
        for (int part = 0; part < 2 && rc == 0; part++) {
            if (i == n && part == 1)
                break;
            int flush = Z_NO_FLUSH;
            if (i == n) {
                z.next_in = NULL;
                z.avail_in = 0;
                flush = Z_FINISH;
            } else if (part == 0) {
                z.next_in = (unsigned char *)rows[i].json;
                z.avail_in = (uInt)rows[i].len;
            } else {
                z.next_in = (unsigned char *)"\n";
                z.avail_in = 1;
            }
            for (;;) {
                if (out->cap - out->len < 16384) {
                    size_t nc = out->cap ? out->cap * 2 : 65536;
                    unsigned char *np = realloc(out->p, nc);
                    if (!np) {
                        rc = MUTT_ENOMEM;
                        break;
                    }
                    out->p = np;
                    out->cap = nc;
                }
                z.next_out = out->p + out->len;
                z.avail_out = (uInt)(out->cap - out->len);
                int zr = deflate(&z, flush);
                out->len = out->cap - z.avail_out;
                if (zr == Z_STREAM_END)
                    break;
                if (zr != Z_OK && zr != Z_BUF_ERROR) {
                    rc = MUTT_EIO;
                    break;
                }
                if (flush != Z_FINISH && z.avail_in == 0)
                    break;
            }
        }
    }
    deflateEnd(&z);
    return rc;
}

static int run_command(const char *command, const char *path, char *err, size_t elen)
{
    char script[4096];
    if ((size_t)snprintf(script, sizeof(script), "%s \"$1\"", command) >= sizeof(script))
        return fail(err, elen, "ARCHIVE_COMMAND too long");
    char *argv[] = {"/bin/sh", "-c", script, "mutt-archive", (char *)path, NULL};
    pid_t pid;
    int e = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (e != 0)
        return fail(err, elen, "cannot run ARCHIVE_COMMAND: %s", strerror(e));
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return fail(err, elen, "waiting for ARCHIVE_COMMAND: %s", strerror(errno));
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fail(err, elen, "ARCHIVE_COMMAND failed (%s %d) for %s", WIFEXITED(st) ? "exit" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), path);
    return 0;
}

static int append_manifest(const char *dir, const char *name, const uint8_t sha[32], char *err, size_t elen)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, MUTT_ARCHIVE_MANIFEST) >= sizeof(path))
        return fail(err, elen, "archive path too long");
    char *old = NULL;
    size_t olen = 0;
    if (read_small(path, &old, &olen) != 0)
        return fail(err, elen, "cannot read %s: %s", path, strerror(errno));
    char line[MUTT_ARCHIVE_NAME_MAX + 80];
    int rc = mutt_archive_manifest_line(line, sizeof(line), sha, name);
    if (rc != 0) {
        free(old);
        return fail(err, elen, "bad archive name %s", name);
    }
    size_t ll = strlen(line);
    char *all = malloc(olen + ll + 1);
    if (!all) {
        free(old);
        return MUTT_ENOMEM;
    }
    if (olen)
        memcpy(all, old, olen);
    if (olen && all[olen - 1] != '\n')
        all[olen++] = '\n';
    memcpy(all + olen, line, ll);
    free(old);
    rc = write_durable(dir, MUTT_ARCHIVE_MANIFEST, all, olen + ll, err, elen);
    free(all);
    return rc;
}

static int write_day(const struct mutt_archive_batch *b, const struct mutt_archive_row *rows, size_t n, char *err,
                     size_t elen)
{
    char name[MUTT_ARCHIVE_NAME_MAX], dir[4096];
    if (mutt_archive_file_name(name, sizeof(name), b->table, rows[0].day, b->run_ms, b->seq) != 0)
        return fail(err, elen, "cannot name an archive for %s day '%s'", b->table, rows[0].day);
    bool cmd = b->command && b->command[0];
    int w = cmd ? snprintf(dir, sizeof(dir), "%s/.outgoing", b->dir)
                : snprintf(dir, sizeof(dir), "%s/%s/%s", b->dir, b->table, rows[0].day);
    if (w < 0 || (size_t)w >= sizeof(dir))
        return fail(err, elen, "archive path too long");
    if (mkdir_p(dir) != 0)
        return fail(err, elen, "cannot create %s: %s", dir, strerror(errno));
    struct gzbuf gz = {0};
    int rc = gz_compress(rows, n, &gz);
    if (rc != 0) {
        free(gz.p);
        return rc == MUTT_ENOMEM ? rc : fail(err, elen, "gzip failed");
    }
    uint8_t sha[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(gz.p, gz.len, sha, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        free(gz.p);
        return fail(err, elen, "sha256 failed");
    }
    rc = write_durable(dir, name, gz.p, gz.len, err, elen);
    free(gz.p);
    if (rc != 0)
        return rc;
    if (cmd) {
        char path[4096 + MUTT_ARCHIVE_NAME_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        rc = run_command(b->command, path, err, elen);
        unlink(path); /* the command took it (exit 0) or the rows stay in the table (not 0) */
        return rc;
    }
    return append_manifest(dir, name, sha, err, elen);
}

int mutt_archive_write(const struct mutt_archive_batch *b, char *err, size_t err_len)
{
    if (!b || !b->dir || !b->dir[0] || !mutt_archive_table_ok(b->table))
        return fail(err, err_len, "archive: no ARCHIVE_DIR or unknown table");
    size_t i = 0;
    while (i < b->nrows) {
        size_t j = i + 1;
        while (j < b->nrows && strcmp(b->rows[j].day, b->rows[i].day) == 0)
            j++;
        int rc = write_day(b, b->rows + i, j - i, err, err_len);
        if (rc != 0)
            return rc;
        i = j;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* verifying                                                                                   */

int mutt_archive_sha256_file(const char *path, uint8_t out[32])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return MUTT_EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : MUTT_EIO;
    unsigned char buf[65536];
    while (rc == 0) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = MUTT_EIO;
        else if (r == 0)
            break;
        else if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
            rc = MUTT_EIO;
    }
    unsigned int n = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != 32))
        rc = MUTT_EIO;
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

/* nftw has no user pointer: the walk collects paths into this list, then checks them. */
struct pathlist {
    char **v;
    size_t n, cap;
};
static __thread struct pathlist *walk_manifests, *walk_archives;

static int push(struct pathlist *l, const char *p)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv)
            return -1;
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(p)))
        return -1;
    l->n++;
    return 0;
}

static int on_walk(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    if (type != FTW_F)
        return 0;
    const char *base = path + ftw->base;
    size_t bl = strlen(base), sl = strlen(MUTT_ARCHIVE_SUFFIX);
    if (strcmp(base, MUTT_ARCHIVE_MANIFEST) == 0)
        return push(walk_manifests, path);
    if (base[0] != '.' && bl > sl && strcmp(base + bl - sl, MUTT_ARCHIVE_SUFFIX) == 0)
        return push(walk_archives, path);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_list(struct pathlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

int mutt_archive_verify(const char *dir, FILE *out, char *err, size_t err_len)
{
    struct pathlist man = {0}, arc = {0}, listed = {0};
    walk_manifests = &man;
    walk_archives = &arc;
    int rc = 0;
    if (nftw(dir, on_walk, 16, FTW_PHYS) != 0) {
        rc = fail(err, err_len, "cannot walk %s: %s", dir, strerror(errno));
        goto out;
    }
    if (man.n == 0) {
        snprintf(err, err_len, "no %s under %s", MUTT_ARCHIVE_MANIFEST, dir);
        rc = MUTT_ENOTFOUND;
        goto out;
    }
    qsort(man.v, man.n, sizeof(char *), cmp_str);
    for (size_t m = 0; m < man.n; m++) {
        char *text = NULL;
        size_t tlen = 0;
        if (read_small(man.v[m], &text, &tlen) != 0) {
            fprintf(out, "FAILED %s: unreadable\n", man.v[m]);
            if (rc == 0)
                rc = fail(err, err_len, "%s is unreadable", man.v[m]);
            continue;
        }
        size_t dl = strlen(man.v[m]) - strlen(MUTT_ARCHIVE_MANIFEST);
        size_t pos = 0;
        while (pos < tlen) {
            const char *line = text + pos;
            const char *nl = memchr(line, '\n', tlen - pos);
            size_t ll = nl ? (size_t)(nl - line) : tlen - pos;
            pos += ll + 1;
            if (ll == 0)
                continue;
            char hex[65], name[MUTT_ARCHIVE_NAME_MAX + 64], path[4096 + sizeof(name)];
            if (mutt_archive_manifest_parse(line, ll, hex, name, sizeof(name)) != 0) {
                fprintf(out, "FAILED %s: malformed line\n", man.v[m]);
                if (rc == 0)
                    rc = fail(err, err_len, "%s has a malformed line", man.v[m]);
                continue;
            }
            snprintf(path, sizeof(path), "%.*s%s", (int)dl, man.v[m], name);
            uint8_t sha[32];
            char got[65];
            if (mutt_archive_sha256_file(path, sha) != 0) {
                fprintf(out, "FAILED %s: missing or unreadable\n", path);
                if (rc == 0)
                    rc = fail(err, err_len, "%s is missing or unreadable", path);
                continue;
            }
            mutt_archive_hex(sha, got);
            if (strcmp(got, hex) != 0) {
                fprintf(out, "FAILED %s: checksum mismatch\n", path);
                if (rc == 0)
                    rc = fail(err, err_len, "%s: checksum mismatch", path);
                continue;
            }
            fprintf(out, "OK %s\n", path);
            if (push(&listed, path) != 0) {
                rc = MUTT_ENOMEM;
                break;
            }
        }
        free(text);
    }
    qsort(listed.v, listed.n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < arc.n; i++)
        if (!listed.n || !bsearch(&arc.v[i], listed.v, listed.n, sizeof(char *), cmp_str))
            fprintf(out, "UNLISTED %s (in no manifest; its rows were not deleted)\n", arc.v[i]);
out:
    walk_manifests = walk_archives = NULL;
    free_list(&man);
    free_list(&arc);
    free_list(&listed);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* reading                                                                                     */

int mutt_archive_read(const char *path, mutt_archive_line_cb *cb, void *privdata, char *err, size_t err_len)
{
    gzFile f = gzopen(path, "rb");
    if (!f)
        return fail(err, err_len, "cannot open %s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, len = 0;
    int rc = 0;
    for (;;) {
        if (cap - len < 65536) {
            char *nb = realloc(buf, cap + 262144);
            if (!nb) {
                rc = MUTT_ENOMEM;
                break;
            }
            buf = nb;
            cap += 262144;
        }
        int r = gzread(f, buf + len, (unsigned)(cap - len));
        if (r < 0) {
            int zerr;
            rc = fail(err, err_len, "%s: %s", path, gzerror(f, &zerr));
            break;
        }
        len += (size_t)r;
        size_t start = 0;
        for (size_t i = 0; i < len && rc == 0; i++) {
            if (buf[i] != '\n')
                continue;
            if (i > start)
                rc = cb(privdata, buf + start, i - start);
            start = i + 1;
        }
        if (rc != 0)
            break;
        memmove(buf, buf + start, len - start);
        len -= start;
        if (r == 0) {
            if (len > 0)
                rc = cb(privdata, buf, len);
            break;
        }
    }
    free(buf);
    gzclose(f);
    return rc;
}
