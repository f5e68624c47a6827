/* Unit tests of the ingest stage's pure half (src/stages/ingest_call.c): the Lua call's KEYS and
 * ARGV, Retry-After, the constant-time key compare and the media-type check. No I/O. The script
 * itself runs against a real Redis in tests/e2e/test_ingest.sh. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mutt/error.h"
#include "mutt/ingest.h"

/* 2026-11-25T11:30:45.250Z */
#define NOW_MS 1795606245250LL

static struct mutt_ingest_params params(void)
{
    struct mutt_ingest_params p = {
        .queue = "mutt:ingest_queue",
        .metrics_prefix = "mutt:metrics",
        .now_ms = NOW_MS,
        .cap = 1000000,
        .rate_enabled = false,
        .rate_max = 1000,
        .rate_window_s = 60,
    };
    return p;
}

static void assert_key(const struct mutt_ingest_call *c, int i, const char *want)
{
    assert_string_equal(c->keys[i], want);
    assert_int_equal(c->keylens[i], strlen(want));
}

static void assert_arg(const struct mutt_ingest_call *c, int i, const char *want)
{
    assert_string_equal(c->args[i], want);
    assert_int_equal(c->arglens[i], strlen(want));
}

static void test_ingest_call_names_queue_and_dashboard_keys_in_utc(void **state)
{
    (void)state;
    struct mutt_ingest_params p = params();
    struct mutt_ingest_call c;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), 0);
    assert_key(&c, 0, "mutt:ingest_queue");
    assert_key(&c, 2, "mutt:metrics:1m:2026-11-25T11:30");
    assert_key(&c, 3, "mutt:metrics:1h:2026-11-25T11");
    assert_key(&c, 4, "mutt:metrics:24h:2026-11-25");
}

static void test_ingest_call_uses_the_configured_prefix_and_queue(void **state)
{
    (void)state;
    struct mutt_ingest_params p = params();
    p.queue = "q:custom";
    p.metrics_prefix = "x:m";
    struct mutt_ingest_call c;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), 0);
    assert_key(&c, 0, "q:custom");
    assert_key(&c, 2, "x:m:1m:2026-11-25T11:30");
}

static void test_ingest_call_passes_rate_max_zero_when_the_limit_is_off(void **state)
{
    (void)state;
    struct mutt_ingest_params p = params();
    struct mutt_ingest_call c;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), 0);
    assert_arg(&c, 0, "1000000");
    assert_arg(&c, 1, "0");
}

static void test_ingest_call_keys_the_rate_window_by_length_and_index(void **state)
{
    (void)state;
    struct mutt_ingest_params p = params();
    p.rate_enabled = true;
    p.rate_max = 250;
    p.rate_window_s = 60;
    struct mutt_ingest_call c;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), 0);
    /* 1795606245 s / 60 = 29926770 */
    assert_key(&c, 1, "mutt:rate_limit:ingestor:60:29926770");
    assert_arg(&c, 1, "250");
    assert_arg(&c, 2, "120"); /* the counter outlives its window, never forever */

    /* the next window gets a fresh counter; the same window keeps it */
    struct mutt_ingest_call c2;
    p.now_ms = NOW_MS + 14000; /* 11:30:59.250 */
    assert_int_equal(mutt_ingest_call_prepare(&c2, &p), 0);
    assert_string_equal(c2.keys[1], c.keys[1]);
    p.now_ms = NOW_MS + 15000; /* 11:31:00.250 */
    assert_int_equal(mutt_ingest_call_prepare(&c2, &p), 0);
    assert_string_equal(c2.keys[1], "mutt:rate_limit:ingestor:60:29926771");
    assert_string_equal(c2.keys[2], "mutt:metrics:1m:2026-11-25T11:31");
}

static void test_ingest_call_passes_the_byte_counter_and_byte_cap(void **state)
{
    (void)state;
    struct mutt_ingest_params p = params();
    struct mutt_ingest_call c;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), 0);
    assert_key(&c, 5, "mutt:ingest_queue:bytes");
    assert_arg(&c, 3, "0"); /* no byte cap */
    p.queue = "q:custom";
    p.byte_cap = 536870912;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), 0);
    assert_key(&c, 5, "q:custom:bytes");
    assert_arg(&c, 3, "536870912");
    p.byte_cap = -1;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), MUTT_EINVAL);
}

static void test_ingest_call_refuses_bad_parameters(void **state)
{
    (void)state;
    struct mutt_ingest_call c;
    struct mutt_ingest_params p = params();
    p.cap = 0;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), MUTT_EINVAL);
    p = params();
    p.queue = "";
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), MUTT_EINVAL);
    p = params();
    p.rate_enabled = true;
    p.rate_window_s = 0;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), MUTT_EINVAL);
    char longp[300];
    memset(longp, 'p', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    p = params();
    p.metrics_prefix = longp;
    assert_int_equal(mutt_ingest_call_prepare(&c, &p), MUTT_EINVAL);
}

static void test_ingest_retry_after_counts_whole_seconds_to_the_window_end(void **state)
{
    (void)state;
    /* 11:30:45.250 in a 60 s window ending 11:31:00 -> 14.75 s -> 15 */
    assert_int_equal(mutt_ingest_retry_after_s(NOW_MS, 60), 15);
    /* exactly on a boundary: a full window */
    assert_int_equal(mutt_ingest_retry_after_s(1795606200000LL, 60), 60);
    /* 1 ms before the end still says 1, never 0 (D7) */
    assert_int_equal(mutt_ingest_retry_after_s(1795606259999LL, 60), 1);
    assert_int_equal(mutt_ingest_retry_after_s(NOW_MS, 1), 1);
    assert_int_equal(mutt_ingest_retry_after_s(NOW_MS, 0), 1);
    assert_int_equal(mutt_ingest_retry_after_s(-5, 10), 10);
}

static void test_ingest_pace_waits_only_within_the_pace_of_the_last_send(void **state)
{
    (void)state;
    const uint64_t ms = 1000000, pace = 1 * ms, t0 = 5000 * ms;
    /* nothing sent yet, or idle for a pace or more: send now */
    assert_int_equal(mutt_ingest_pace_wait_ms(t0, 0, pace), 0);
    assert_int_equal(mutt_ingest_pace_wait_ms(t0 + pace, t0, pace), 0);
    assert_int_equal(mutt_ingest_pace_wait_ms(t0 + 50 * ms, t0, pace), 0);
    /* within the pace: wait, rounded up to whole ms, never 0 */
    assert_int_equal(mutt_ingest_pace_wait_ms(t0, t0, pace), 1);
    assert_int_equal(mutt_ingest_pace_wait_ms(t0 + pace - 1, t0, pace), 1);
    assert_int_equal(mutt_ingest_pace_wait_ms(t0 + 1000, t0, 3 * ms), 3);
    assert_int_equal(mutt_ingest_pace_wait_ms(t0 + ms + 1, t0, 3 * ms), 2);
    /* a clock that went backwards never holds a group */
    assert_int_equal(mutt_ingest_pace_wait_ms(t0 - 1, t0, pace), 0);
}

static void test_ingest_key_matches_current_or_next(void **state)
{
    (void)state;
    const char *cur = "current-key-0123456789", *next = "next-key-abcdef";
    assert_true(mutt_ingest_key_matches(cur, strlen(cur), cur, next));
    assert_true(mutt_ingest_key_matches(next, strlen(next), cur, next));
    assert_true(mutt_ingest_key_matches(cur, strlen(cur), cur, ""));
    assert_true(mutt_ingest_key_matches(cur, strlen(cur), cur, NULL));
}

static void test_ingest_key_refuses_prefixes_extensions_and_empty_keys(void **state)
{
    (void)state;
    const char *cur = "current-key-0123456789";
    assert_false(mutt_ingest_key_matches("current-key-012345678", 21, cur, NULL));   /* prefix */
    assert_false(mutt_ingest_key_matches("current-key-01234567890", 23, cur, NULL)); /* longer */
    assert_false(mutt_ingest_key_matches("current-key-0123456788", 22, cur, NULL));  /* last byte */
    assert_false(mutt_ingest_key_matches("Current-key-0123456789", 22, cur, NULL));  /* case */
    assert_false(mutt_ingest_key_matches("", 0, cur, NULL));
    assert_false(mutt_ingest_key_matches(NULL, 0, cur, NULL));
    /* an unset key matches nothing, not even an empty header */
    assert_false(mutt_ingest_key_matches("", 0, "", ""));
    assert_false(mutt_ingest_key_matches("x", 1, "", NULL));
    /* the key is compared as bytes: a NUL inside the header does not end it */
    assert_false(mutt_ingest_key_matches("current-key-0123456789\0x", 24, cur, NULL));
    /* a wrapped compare (given longer than the key, repeating it) must not match */
    assert_false(mutt_ingest_key_matches("abab", 4, "ab", NULL));
}

static void test_ingest_media_type_accepts_json_and_ndjson_with_parameters(void **state)
{
    (void)state;
    static const char *ok[] = {
        "application/json", "Application/JSON", "application/json; charset=utf-8", "application/json;charset=UTF-8",
        " application/json ", "application/x-ndjson", "application/x-ndjson; charset=utf-8",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(mutt_ingest_media_type_ok(ok[i], strlen(ok[i])));
}

static void test_ingest_media_type_refuses_other_types(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", "text/plain", "application/x-www-form-urlencoded", "application/jsonx", "application/json-seq",
        "application", "application/json x", "multipart/form-data; boundary=x", "json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mutt_ingest_media_type_ok(bad[i], strlen(bad[i])));
    assert_false(mutt_ingest_media_type_ok(NULL, 0));
    /* length-bounded: the bytes after len do not count */
    assert_false(mutt_ingest_media_type_ok("application/json", 11));
}

static void test_ingest_lua_script_uses_the_documented_ttls_without_expire_nx(void **state)
{
    (void)state;
    assert_non_null(strstr(mutt_ingest_lua, "'EXPIRE', KEYS[3], 7200)"));
    assert_non_null(strstr(mutt_ingest_lua, "'EXPIRE', KEYS[4], 172800)"));
    assert_non_null(strstr(mutt_ingest_lua, "'EXPIRE', KEYS[5], 2592000)"));
    assert_null(strstr(mutt_ingest_lua, "NX"));
}

/* D63: the correlation id ingest's lineage block passes for a request is read back from the tail
 * both serialisers leave; anything else gives none (and the script then records nothing). */
static void test_ingest_tail_cid_reads_the_stamped_tail_only(void **state)
{
    (void)state;
    static const char ev[] = "{\"message\":\"a \\\"q\\\"\",\"_correlation_id\":\"req-42\","
                             "\"_event_id\":\"3f2b6c1e-8d4a-4e1b-9c3d-0a1b2c3d4e5f\"}";
    size_t n = 0;
    const char *cid = mutt_ingest_tail_cid(ev, strlen(ev), &n);
    assert_non_null(cid);
    assert_int_equal(n, 6);
    assert_memory_equal(cid, "req-42", 6);
    static const char empty[] = "{\"_correlation_id\":\"\",\"_event_id\":\"3f2b6c1e-8d4a-4e1b-9c3d-0a1b2c3d4e5f\"}";
    cid = mutt_ingest_tail_cid(empty, strlen(empty), &n);
    assert_non_null(cid);
    assert_int_equal(n, 0);
    static const char *const bad[] = {
        "{\"message\":\"m\"}",
        "{\"_event_id\":\"3f2b6c1e-8d4a-4e1b-9c3d-0a1b2c3d4e5f\"}",                       /* no cid */
        "{\"_correlation_id\":\"x\",\"_event_id\":\"3f2b6c1e-8d4a-4e1b-9c3d-0a1b2c3d4e5\"}", /* short id */
        "{\"x_correlation_id\":\"x\",\"_event_id\":\"3f2b6c1e-8d4a-4e1b-9c3d-0a1b2c3d4e5f\"}",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(mutt_ingest_tail_cid(bad[i], strlen(bad[i]), &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_call_names_queue_and_dashboard_keys_in_utc),
        cmocka_unit_test(test_ingest_call_uses_the_configured_prefix_and_queue),
        cmocka_unit_test(test_ingest_call_passes_rate_max_zero_when_the_limit_is_off),
        cmocka_unit_test(test_ingest_call_keys_the_rate_window_by_length_and_index),
        cmocka_unit_test(test_ingest_call_passes_the_byte_counter_and_byte_cap),
        cmocka_unit_test(test_ingest_call_refuses_bad_parameters),
        cmocka_unit_test(test_ingest_retry_after_counts_whole_seconds_to_the_window_end),
        cmocka_unit_test(test_ingest_pace_waits_only_within_the_pace_of_the_last_send),
        cmocka_unit_test(test_ingest_key_matches_current_or_next),
        cmocka_unit_test(test_ingest_key_refuses_prefixes_extensions_and_empty_keys),
        cmocka_unit_test(test_ingest_media_type_accepts_json_and_ndjson_with_parameters),
        cmocka_unit_test(test_ingest_media_type_refuses_other_types),
        cmocka_unit_test(test_ingest_lua_script_uses_the_documented_ttls_without_expire_nx),
        cmocka_unit_test(test_ingest_tail_cid_reads_the_stamped_tail_only),
    };
    return cmocka_run_group_tests_name("ingest", tests, NULL, NULL);
}
