/* See capture.h. */
#include "capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define CAPTURE_MAX 65536

char *mutt_test_capture_stderr(void (*fn)(void))
{
    int p[2];
    if (pipe(p) != 0)
        return NULL;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    if (saved < 0 || dup2(p[1], STDERR_FILENO) < 0) {
        if (saved >= 0)
            close(saved);
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    fn();
    fflush(stderr);
    int restored = dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    char *buf = calloc(1, CAPTURE_MAX);
    size_t len = 0;
    ssize_t n;
    while (buf && (n = read(p[0], buf + len, CAPTURE_MAX - 1 - len)) > 0)
        len += (size_t)n;
    close(p[0]);
    if (restored < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
