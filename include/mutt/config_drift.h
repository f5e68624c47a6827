/* Configuration drift (issue 7): compares the effective dynamic configuration with an approved
 * baseline (saved by `mutt config baseline save` in the Redis hash MUTT_DRIFT_BASELINE_KEY).
 * Pure: callers fetch both sides and get a JSON report back. */
#ifndef MUTT_CONFIG_DRIFT_H
#define MUTT_CONFIG_DRIFT_H

#include <jansson.h>

#define MUTT_DRIFT_BASELINE_KEY "mutt:config_baseline"           /* hash key -> approved value */
#define MUTT_DRIFT_BASELINE_META_KEY "mutt:config_baseline:meta" /* hash saved_at, saved_by, keys */

/* `current` and `baseline` are JSON objects of key -> string value (borrowed). Returns a new
 * object {"drift":bool,"changed":[{"key","baseline","current"}],"added":[{"key","current"}],
 * "missing":[{"key","baseline"}]}: `added` = keys in current absent from the baseline, `missing`
 * = baseline keys the running schema no longer has. Lists are sorted by key. NULL on OOM. */
json_t *mutt_config_drift(const json_t *current, const json_t *baseline);

#endif
