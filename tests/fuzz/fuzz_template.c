/* Template masking and the unhandled counter keys (src/domain/template.c,
 * mutt_alert_unhandled_keys in src/stages/alert_unhandled.c). Input: host1 \n message1 \n
 * host2 \n message2. Properties of the mask: the length returned is strlen(out) and below cap;
 * with cap 3*len+1 nothing is cut and no ASCII digit is left; with a smaller cap the output is a prefix of the full template. Of the keys (D36): two
 * distinct (hostname, template) pairs never share a counter or marker key, and a counter never
 * equals a marker. */
#include "fuzz.h"

#include "mutt/alert.h"
#include "mutt/template.h"

#define PREFIX "mutt:unhandled"
#define TEMPLATE_MAX 1024 /* as src/stages/alert_unhandled.c */

static void check_mask(const char *msg, size_t len, size_t small_cap)
{
    size_t cap = 3 * len + 1;
    char *full = malloc(cap), *small = malloc(small_cap + 1);
    if (!full || !small)
        goto out;
    size_t n = mutt_template_mask(msg, len, full, cap);
    /* an embedded NUL is copied like any byte, so strlen stops early then */
    FUZZ_CHECK(n < cap && full[n] == '\0' && (n == strlen(full) || memchr(msg, '\0', len) != NULL),
               "length %zu, strlen %zu", n, strlen(full));
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(full[i] < '0' || full[i] > '9', "digit left at %zu of '%s'", i, full);

    size_t ns = mutt_template_mask(msg, len, small, small_cap);
    if (small_cap == 0) {
        FUZZ_CHECK(ns == 0, "cap 0 wrote %zu bytes", ns);
    } else {
        FUZZ_CHECK(ns < small_cap && ns <= n && memcmp(small, full, ns) == 0,
                   "cap %zu: '%.*s' is not a prefix of '%s'", small_cap, (int)ns, small, full);
        FUZZ_CHECK(small[ns] == '\0', "cap %zu: not terminated", small_cap);
    }
out:
    free(full);
    free(small);
}

struct keys {
    char counter[600], marker[640], tmpl[TEMPLATE_MAX];
    int rc;
};

static void make_keys(const char *host, const char *msg, struct keys *k)
{
    k->rc = mutt_alert_unhandled_keys(PREFIX, host, msg, strlen(msg), k->counter, sizeof k->counter, k->marker,
                                      sizeof k->marker, k->tmpl, sizeof k->tmpl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p[4];
    if (!fuzz_split(data, size, p, 4))
        return 0;
    check_mask((const char *)data, size, size > 0 ? data[0] % 24 : 0);
    check_mask(p[1], strlen(p[1]), strlen(p[1]) / 2);

    struct keys *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (a && b) {
        make_keys(p[0], p[1], a);
        make_keys(p[2], p[3], b);
        if (a->rc == 0 && b->rc == 0) {
            bool same = strcmp(p[0], p[2]) == 0 && strcmp(a->tmpl, b->tmpl) == 0;
            FUZZ_CHECK(same == (strcmp(a->counter, b->counter) == 0),
                       "(%s, %s) and (%s, %s): counter keys %s and %s", p[0], a->tmpl, p[2], b->tmpl, a->counter,
                       b->counter);
            FUZZ_CHECK(same == (strcmp(a->marker, b->marker) == 0), "(%s, %s) and (%s, %s): marker keys %s", p[0],
                       a->tmpl, p[2], b->tmpl, a->marker);
            FUZZ_CHECK(strcmp(a->counter, b->marker) != 0 && strcmp(b->counter, a->marker) != 0,
                       "a counter key is also a marker key: %s / %s", a->counter, b->counter);
        }
    }
    free(a);
    free(b);
    fuzz_free_parts(p, 4);
    return 0;
}
