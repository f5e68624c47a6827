/* Dynamic-config normalisation (src/core/dynconfig_schema.c): the check every write from the API,
 * the CLI and a restore goes through (W41). Input: key \n value; an unknown key picks a row by its
 * first byte. Properties: validate and normalize agree; a refusal names the key; an accepted value
 * has a canonical spelling that is a fixed point (normalising it again gives itself), and that
 * spelling respects the row's type and range. */
#include "fuzz.h"

#include <math.h>
#include <strings.h>

#include "mutt/dynconfig.h"
#include "mutt/error.h"

static void check_canonical(const struct mutt_dynconfig_def *def, const char *norm)
{
    char *end = NULL;
    switch (def->type) {
    case MUTT_DYN_INT: {
        long long v = strtoll(norm, &end, 10);
        FUZZ_CHECK(*norm != '\0' && *end == '\0', "%s: '%s' is not an integer", def->name, norm);
        FUZZ_CHECK(def->min > def->max || ((double)v >= def->min && (double)v <= def->max), "%s: %s out of range",
                   def->name, norm);
        break;
    }
    case MUTT_DYN_DOUBLE: {
        double v = strtod(norm, &end);
        FUZZ_CHECK(*norm != '\0' && *end == '\0' && isfinite(v), "%s: '%s' is not a finite number", def->name, norm);
        FUZZ_CHECK(def->min > def->max || (v >= def->min && v <= def->max), "%s: %s out of range", def->name, norm);
        break;
    }
    case MUTT_DYN_BOOL:
        FUZZ_CHECK(strcmp(norm, "true") == 0 || strcmp(norm, "false") == 0, "%s: bool '%s'", def->name, norm);
        break;
    case MUTT_DYN_ENUM: {
        bool listed = false;
        for (const char *const *a = def->allowed; a && *a; a++)
            listed = listed || strcmp(*a, norm) == 0;
        FUZZ_CHECK(listed, "%s: '%s' is not in the table's spelling", def->name, norm);
        break;
    }
    case MUTT_DYN_STRING:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p[2];
    size_t count = mutt_dynconfig_count();
    if (count == 0 || !fuzz_split(data, size, p, 2))
        return 0;
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(p[0]);
    if (def == NULL)
        def = mutt_dynconfig_def_at((size > 0 ? data[0] : 0) % count);

    char norm[MUTT_DYNCONFIG_MAX_VALUE + 1], again[MUTT_DYNCONFIG_MAX_VALUE + 1];
    char err[512] = "", verr[512] = "";
    int rc = mutt_dynconfig_normalize(def, p[1], norm, sizeof norm, err, sizeof err);
    int vrc = mutt_dynconfig_validate(def->name, p[1], verr, sizeof verr);
    FUZZ_CHECK(rc == vrc, "%s='%s': normalize %d, validate %d", def->name, p[1], rc, vrc);
    if (rc != 0) {
        FUZZ_CHECK(rc == MUTT_EINVAL, "%s: refusal %d", def->name, rc);
        FUZZ_CHECK(strncmp(err, def->name, strlen(def->name)) == 0, "refusal does not name the key: %s", err);
    } else {
        check_canonical(def, norm);
        FUZZ_CHECK(mutt_dynconfig_normalize(def, norm, again, sizeof again, err, sizeof err) == 0,
                   "%s: canonical '%s' refused: %s", def->name, norm, err);
        FUZZ_CHECK(strcmp(norm, again) == 0, "%s: '%s' -> '%s' -> '%s'", def->name, p[1], norm, again);
    }
    fuzz_free_parts(p, 2);
    return 0;
}
