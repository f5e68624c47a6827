/* Captures what a function writes to stderr (where MUTT's log goes), for tests of log lines.
 * No test framework inside: the caller asserts. */
#ifndef MUTT_TEST_CAPTURE_H
#define MUTT_TEST_CAPTURE_H

/* Runs fn with stderr redirected into a pipe and returns what it wrote (malloc'd, NUL-terminated,
 * at most 64 KiB - 1), or NULL when the redirection could not be set up. */
char *mutt_test_capture_stderr(void (*fn)(void));

#endif
