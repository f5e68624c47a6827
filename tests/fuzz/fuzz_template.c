/* Template masking and the unhandled counter keys (src/domain/template.c,
 * src/domain/unhandled_key.c). Input: host1 \n message1 \n
 * host2 \n message2. Properties of the mask: the length returned is strlen(out) and below cap;
 * with cap 3*len+1 nothing is cut and no ASCII digit is left; with a smaller cap the output is a prefix of the full template. Of the keys (D36): two
 * distinct (hostname, template hash) pairs never share a key of any kind, keys of different kinds
 * never meet, and a host key is never a per-template key. */
#include <stdbool.h>

#include "fuzz.h"

#include "mutt/unhandled_key.h"
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
    char key[3][700], host[600], tmpl[TEMPLATE_MAX];
    uint64_t hash;
    int rc;
};

static const enum mutt_unhandled_key_kind kinds[3] = {MUTT_UNHANDLED_KEY_COUNTER, MUTT_UNHANDLED_KEY_MARKER,
                                                      MUTT_UNHANDLED_KEY_INFO};

/* as src/stages/alert_unhandled.c: mask, hash, then every key of the pair */
static void make_keys(const char *host, const char *msg, struct keys *k)
{
    size_t tn = mutt_template_mask(msg, strlen(msg), k->tmpl, sizeof k->tmpl);
    k->hash = mutt_template_hash(k->tmpl, tn);
    k->rc = 0;
    for (int i = 0; i < 3; i++)
        if (mutt_unhandled_key(PREFIX, kinds[i], host, strlen(host), k->hash, k->key[i], sizeof k->key[i]) < 0)
            k->rc = -1;
    if (mutt_unhandled_host_key(PREFIX, host, strlen(host), k->host, sizeof k->host) < 0)
        k->rc = -1;
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
            /* D36: a key names exactly one (hostname, template hash) and one kind */
            bool same = strcmp(p[0], p[2]) == 0 && a->hash == b->hash;
            for (int i = 0; i < 3; i++) {
                FUZZ_CHECK(same == (strcmp(a->key[i], b->key[i]) == 0), "(%s, %s) and (%s, %s): %c keys %s and %s",
                           p[0], a->tmpl, p[2], b->tmpl, (char)kinds[i], a->key[i], b->key[i]);
                for (int j = 0; j < 3; j++)
                    FUZZ_CHECK(i == j || strcmp(a->key[i], b->key[j]) != 0, "a %c key is also a %c key: %s",
                               (char)kinds[i], (char)kinds[j], a->key[i]);
                FUZZ_CHECK(strcmp(a->key[i], b->host) != 0 && strcmp(b->key[i], a->host) != 0,
                           "a per-template key is also a host key: %s / %s", a->key[i], b->key[i]);
            }
            FUZZ_CHECK((strcmp(p[0], p[2]) == 0) == (strcmp(a->host, b->host) == 0), "host keys of %s and %s: %s",
                       p[0], p[2], a->host);
        }
    }
    free(a);
    free(b);
    fuzz_free_parts(p, 4);
    return 0;
}
