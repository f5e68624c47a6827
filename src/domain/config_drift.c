/* Drift between the effective dynamic configuration and the approved baseline. Pure. */
#include "mutt/config_drift.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keys of o, sorted, in a malloc'd array (borrowed strings); NULL on OOM. */
static const char **sorted_keys(const json_t *o, size_t *n)
{
    *n = json_object_size(o);
    const char **keys = malloc((*n + 1) * sizeof(*keys));
    if (keys == NULL)
        return NULL;
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) keys[i++] = k;
    qsort(keys, *n, sizeof(*keys), cmp_str);
    return keys;
}

static const char *str_or_empty(const json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : "";
}

json_t *mutt_config_drift(const json_t *current, const json_t *baseline)
{
    size_t ncur = 0, nbase = 0;
    const char **cur = sorted_keys(current, &ncur);
    const char **base = sorted_keys(baseline, &nbase);
    json_t *report = json_object(), *changed = json_array(), *added = json_array(), *missing = json_array();
    if (!cur || !base || !report || !changed || !added || !missing) {
        free(cur);
        free(base);
        json_decref(report);
        json_decref(changed);
        json_decref(added);
        json_decref(missing);
        return NULL;
    }
    for (size_t i = 0; i < ncur; i++) {
        const char *key = cur[i];
        const char *now = str_or_empty(json_object_get(current, key));
        json_t *approved = json_object_get(baseline, key);
        if (approved == NULL) {
            json_array_append_new(added, json_pack("{s:s,s:s}", "key", key, "current", now));
        } else if (strcmp(now, str_or_empty(approved)) != 0) {
            json_array_append_new(changed, json_pack("{s:s,s:s,s:s}", "key", key, "baseline",
                                                     str_or_empty(approved), "current", now));
        }
    }
    for (size_t i = 0; i < nbase; i++)
        if (json_object_get(current, base[i]) == NULL)
            json_array_append_new(missing, json_pack("{s:s,s:s}", "key", base[i], "baseline",
                                                     str_or_empty(json_object_get(baseline, base[i]))));
    bool drift = json_array_size(changed) + json_array_size(added) + json_array_size(missing) > 0;
    json_object_set_new(report, "drift", json_boolean(drift));
    json_object_set_new(report, "changed", changed);
    json_object_set_new(report, "added", added);
    json_object_set_new(report, "missing", missing);
    free(cur);
    free(base);
    return report;
}
