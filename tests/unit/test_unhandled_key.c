/* Unit tests of the unhandled store's key names (src/domain/unhandled_key.c, D36): the reported
 * "_info:db01" collision, the exact shapes, buffer limits, and a property test that distinct
 * (hostname, template) pairs never share a key of any kind. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/template.h"
#include "mutt/unhandled_key.h"

#define PREFIX "mutt:unhandled"

static uint64_t hash_of(const char *tmpl)
{
    return mutt_template_hash(tmpl, strlen(tmpl));
}

static const char *key(enum mutt_unhandled_key_kind kind, const char *host, const char *tmpl)
{
    static char out[4][600];
    static int slot;
    char *o = out[slot++ % 4];
    int n = mutt_unhandled_key(PREFIX, kind, host, strlen(host), hash_of(tmpl), o, sizeof out[0]);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(o));
    return o;
}

static void test_unhandled_key_shapes_are_tagged_and_length_prefixed(void **state)
{
    (void)state;
    char h16[17];
    mutt_unhandled_hash_hex(0x0123456789abcdefULL, h16);
    assert_string_equal(h16, "0123456789abcdef");
    char out[200];
    assert_int_equal(mutt_unhandled_key(PREFIX, MUTT_UNHANDLED_KEY_COUNTER, "db01", 4, 0x0123456789abcdefULL, out,
                                        sizeof out),
                     (int)strlen("mutt:unhandled:c:4:db01:0123456789abcdef"));
    assert_string_equal(out, "mutt:unhandled:c:4:db01:0123456789abcdef");
    mutt_unhandled_key(PREFIX, MUTT_UNHANDLED_KEY_MARKER, "db01", 4, 1, out, sizeof out);
    assert_string_equal(out, "mutt:unhandled:m:4:db01:0000000000000001");
    mutt_unhandled_key(PREFIX, MUTT_UNHANDLED_KEY_INFO, "db01", 4, 1, out, sizeof out);
    assert_string_equal(out, "mutt:unhandled:i:4:db01:0000000000000001");
    mutt_unhandled_member("db01", 4, 1, out, sizeof out);
    assert_string_equal(out, "4:db01:0000000000000001");
    /* the GET script joins prefix + suffix + member: that must be the info key */
    char joined[200];
    snprintf(joined, sizeof joined, "%s%s%s", PREFIX, MUTT_UNHANDLED_INFO_SUFFIX, "4:db01:0000000000000001");
    assert_string_equal(joined, "mutt:unhandled:i:4:db01:0000000000000001");
    mutt_unhandled_host_key(PREFIX, "db01", 4, out, sizeof out);
    assert_string_equal(out, "mutt:unhandled:h:4:db01");
    assert_int_equal(mutt_unhandled_key(PREFIX, (enum mutt_unhandled_key_kind)'x', "a", 1, 1, out, sizeof out),
                     MUTT_EINVAL);
}

/* The reported failure: host "_info:db01" used to write "<prefix>:_info:db01:<hash>", the very
 * key of db01's info hash, so db01's counting script then failed on a wrong-type key. */
static void test_unhandled_key_info_prefixed_hostname_cannot_reach_another_hosts_keys(void **state)
{
    (void)state;
    const char *tmpl = "disk <n> failed";
    const char *victim[] = {key(MUTT_UNHANDLED_KEY_COUNTER, "db01", tmpl), key(MUTT_UNHANDLED_KEY_MARKER, "db01", tmpl),
                            key(MUTT_UNHANDLED_KEY_INFO, "db01", tmpl)};
    char v[3][600];
    for (int i = 0; i < 3; i++)
        snprintf(v[i], sizeof v[i], "%s", victim[i]);
    const char *hostile[] = {"_info:db01", "i:4:db01", "c:4:db01", "4:db01", "_top", "db01:triggered", "h:4:db01"};
    enum mutt_unhandled_key_kind kinds[] = {MUTT_UNHANDLED_KEY_COUNTER, MUTT_UNHANDLED_KEY_MARKER,
                                            MUTT_UNHANDLED_KEY_INFO};
    for (size_t h = 0; h < sizeof hostile / sizeof *hostile; h++) {
        for (int k = 0; k < 3; k++) {
            const char *mine = key(kinds[k], hostile[h], tmpl);
            for (int i = 0; i < 3; i++)
                assert_string_not_equal(mine, v[i]);
            assert_string_not_equal(mine, PREFIX MUTT_UNHANDLED_TOP_SUFFIX);
        }
        char hk[600];
        mutt_unhandled_host_key(PREFIX, hostile[h], strlen(hostile[h]), hk, sizeof hk);
        for (int i = 0; i < 3; i++)
            assert_string_not_equal(hk, v[i]);
    }
}

static void test_unhandled_key_too_small_buffer_is_efull_and_empty(void **state)
{
    (void)state;
    char out[24];
    assert_int_equal(mutt_unhandled_key(PREFIX, MUTT_UNHANDLED_KEY_COUNTER, "db01", 4, 1, out, sizeof out),
                     MUTT_EFULL);
    assert_string_equal(out, "");
    assert_int_equal(mutt_unhandled_member("db01", 4, 1, out, 23), MUTT_EFULL);
    assert_int_equal(mutt_unhandled_member("db01", 4, 1, out, 24), 23);
    assert_int_equal(mutt_unhandled_host_key(PREFIX, "db01", 4, out, 23), MUTT_EFULL);
    assert_int_equal(mutt_unhandled_host_key(PREFIX, "db01", 4, out, 24), 23);
    assert_int_equal(mutt_unhandled_member(NULL, 0, 1, out, sizeof out), 19);
    assert_string_equal(out, "0::0000000000000001");
}

/* Property: over random hostnames drawn from the bytes that matter (':', digits, the tags, '_',
 * NUL) and random templates, keys of distinct (kind, hostname, template) triples never coincide,
 * and host keys never coincide with each other or with any per-template key. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct sample {
    char host[12];
    size_t host_len;
    char tmpl[12];
};

static int cmp_str(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

static void test_unhandled_key_distinct_pairs_never_share_a_key(void **state)
{
    (void)state;
    static const char alphabet[] = ":0123456789cmih_x";
    enum { N = 3000, KINDS = 4 };
    struct sample *s = calloc(N, sizeof *s);
    char **keys = calloc((size_t)N * KINDS, sizeof *keys);
    assert_non_null(s);
    assert_non_null(keys);
    size_t nk = 0;
    for (int i = 0; i < N; i++) {
        s[i].host_len = rnd() % 8;
        for (size_t j = 0; j < s[i].host_len; j++)
            s[i].host[j] = (rnd() % 23 == 0) ? '\0' : alphabet[rnd() % (sizeof alphabet - 1)];
        size_t tl = 1 + rnd() % 4;
        for (size_t j = 0; j < tl; j++)
            s[i].tmpl[j] = alphabet[rnd() % (sizeof alphabet - 1)];
        /* duplicates of earlier pairs are dropped: the property is about distinct pairs */
        bool dup = false;
        for (int k = 0; k < i && !dup; k++)
            dup = s[k].host_len == s[i].host_len && memcmp(s[k].host, s[i].host, s[i].host_len) == 0 &&
                  strcmp(s[k].tmpl, s[i].tmpl) == 0;
        if (dup)
            continue;
        uint64_t h = mutt_template_hash(s[i].tmpl, strlen(s[i].tmpl));
        enum mutt_unhandled_key_kind kinds[] = {MUTT_UNHANDLED_KEY_COUNTER, MUTT_UNHANDLED_KEY_MARKER,
                                                MUTT_UNHANDLED_KEY_INFO};
        for (int k = 0; k < 3; k++) {
            char buf[128];
            int n = mutt_unhandled_key(PREFIX, kinds[k], s[i].host, s[i].host_len, h, buf, sizeof buf);
            assert_true(n > 0);
            /* NUL bytes inside the hostname: compare as escaped text */
            char *e = malloc(4 * (size_t)n + 1), *p = e;
            for (int b = 0; b < n; b++)
                p += buf[b] ? sprintf(p, "%c", buf[b]) : sprintf(p, "\\0");
            keys[nk++] = e;
        }
    }
    /* one host key per distinct hostname */
    for (int i = 0; i < N; i++) {
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            seen = s[k].host_len == s[i].host_len && memcmp(s[k].host, s[i].host, s[i].host_len) == 0;
        if (seen)
            continue;
        char buf[128];
        int n = mutt_unhandled_host_key(PREFIX, s[i].host, s[i].host_len, buf, sizeof buf);
        assert_true(n > 0);
        char *e = malloc(4 * (size_t)n + 1), *p = e;
        for (int b = 0; b < n; b++)
            p += buf[b] ? sprintf(p, "%c", buf[b]) : sprintf(p, "\\0");
        keys[nk++] = e;
    }
    qsort(keys, nk, sizeof *keys, cmp_str);
    for (size_t i = 1; i < nk; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            fail_msg("two distinct pairs share the key %s", keys[i]);
    assert_true(nk > (size_t)N); /* the generator produced enough distinct pairs */
    for (size_t i = 0; i < nk; i++)
        free(keys[i]);
    free(keys);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unhandled_key_shapes_are_tagged_and_length_prefixed),
        cmocka_unit_test(test_unhandled_key_info_prefixed_hostname_cannot_reach_another_hosts_keys),
        cmocka_unit_test(test_unhandled_key_too_small_buffer_is_efull_and_empty),
        cmocka_unit_test(test_unhandled_key_distinct_pairs_never_share_a_key),
    };
    return cmocka_run_group_tests_name("unhandled_key", tests, NULL, NULL);
}
