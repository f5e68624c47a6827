/* Prometheus exposition-text validator for tests (tests/support/metrics_text.c). */
#ifndef MUTT_TEST_METRICS_TEXT_H
#define MUTT_TEST_METRICS_TEXT_H

#include <stddef.h>

/* Checks that `text` (len bytes) is valid exposition text: HELP/TYPE comments, samples
 * `name{label="value",...} value [timestamp]`, label syntax and escapes, numeric values,
 * histogram _bucket samples with le, no TYPE after its samples, no duplicate series, final
 * newline. Returns 0, or MUTT_EINVAL with "line N: <problem>" in err (errlen > 0; may be NULL). */
int mutt_test_metrics_text_validate(const char *text, size_t len, char *err, size_t errlen);

#endif
