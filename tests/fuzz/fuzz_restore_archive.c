/* The restore archive reader (read_archive in src/cli/cli_backup.c, libarchive): the part of
 * `mutt restore` that reads untrusted bytes before any database is touched. read_archive is
 * static and opens a path, so this file compiles cli_backup.c into itself and hands it the input
 * as a memory file (memfd, opened through /proc/self/fd): no disk, no PostgreSQL, no Redis.
 * Properties: no crash or leak on any bytes (truncated gzip, bogus sizes, duplicate or huge
 * members); the result is 0 with all five members, or -1/-2 with the reason printed. */
#include "../../src/cli/cli_backup.c"

#include <sys/mman.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("mutt-restore-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        fuzz_fail("memfd_create failed");
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            fuzz_fail("writing the memory file failed");
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    char *texts[M__COUNT] = {0};
    /* the restore's default cap (64 MiB): a bomb is refused, not expanded; the streamed (DLQ,
     * audit) members of a full backup spool to tmpfiles, capped the same here */
    struct restore_opts o = {.path = path, .max_bytes = (int64_t)64 << 20, .max_stream_bytes = (int64_t)64 << 20};
    char conf_sha[65] = "";
    struct spool sp[BACKUP_MAX_SPOOLS];
    int nsp = 0;
    int rc = read_archive(&o, texts, conf_sha, sp, &nsp);
    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2, "read_archive returned %d", rc);
    FUZZ_CHECK(nsp >= 0 && nsp <= BACKUP_MAX_SPOOLS, "spool count %d", nsp);
    for (int i = 0; i < nsp; i++)
        spool_close(&sp[i]);
    for (int i = 0; i < M__COUNT; i++) {
        FUZZ_CHECK(rc != 0 || texts[i] != NULL, "success without %s", member_names[i]);
        if (rc == 0) {
            /* what cli_restore does next with each member */
            json_t *j = json_loads(texts[i], 0, NULL);
            json_decref(j);
        }
        free(texts[i]);
    }
    close(fd);
    return 0;
}
