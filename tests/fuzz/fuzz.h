/* Shared by the fuzz targets in tests/fuzz/: the libFuzzer entry point's prototype, a failure
 * that every build turns into a crash (libFuzzer under clang, the corpus replay under gcc), and
 * an input splitter. Header only, test code only. */
#ifndef MUTT_FUZZ_H
#define MUTT_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property: says which and aborts (libFuzzer keeps the input as crash-<sha1>). */
__attribute__((noreturn, format(printf, 1, 2))) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz property broken: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__VA_ARGS__);                                                                \
    } while (0)

/* Splits data[0..size) at '\n' into at most n NUL-terminated, malloc'd parts (parts[i] = ""
 * when the input has fewer lines; the last part keeps any further newlines). Returns false on
 * OOM (nothing to free then). Free with fuzz_free_parts. Embedded NULs cut a part short, as they
 * would a C string. */
static inline int fuzz_split(const uint8_t *data, size_t size, char **parts, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        size_t end = start;
        if (i + 1 < n)
            while (end < size && data[end] != '\n')
                end++;
        else
            end = size > start ? size : start;
        size_t len = end > start ? end - start : 0;
        parts[i] = malloc(len + 1);
        if (parts[i] == NULL) {
            while (i-- > 0)
                free(parts[i]);
            return 0;
        }
        if (len)
            memcpy(parts[i], data + start, len);
        parts[i][len] = '\0';
        start = end < size ? end + 1 : size;
    }
    return 1;
}

static inline void fuzz_free_parts(char **parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(parts[i]);
}

/* A NUL-terminated copy of data (NULL on OOM). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s != NULL) {
        if (size)
            memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

#endif
