/* Unit tests of the ingest fast path (src/domain/event_fast.c): whenever it takes a body, its
 * output must be byte for byte what the general path (mutt_event_parse_body + normalize + stamp
 * + dump, as src/stages/ingest.c runs them) gives; everything it cannot prove so it must leave
 * to the general path. Hand-written cases plus a seeded mutation fuzz of both paths (the
 * comparison itself lives in tests/support/event_compare.c, shared with tests/fuzz/). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/event_fast.h"

#include "event_compare.h"

#define MAX_EVENTS 1000
#define MAX_EVENT_BYTES 65536
#define ROOM 200

/* Both paths on one body (tests/support/event_compare.c): when the fast one takes it, the
 * outputs must be equal. Returns whether the fast path took it. */
static bool compare_n(const char *body, size_t len, size_t max_events, size_t max_bytes,
                      const struct mutt_event_rules *rules)
{
    char msg[8192];
    enum mutt_test_event_cmp v = mutt_test_event_compare(body, len, max_events, max_bytes, rules, msg, sizeof msg);
    if (v == MUTT_TEST_EVCMP_DIFFER || v == MUTT_TEST_EVCMP_ERROR)
        fail_msg("%s", msg);
    return v == MUTT_TEST_EVCMP_SAME;
}

static bool compare(const char *body)
{
    struct mutt_event_rules rules;
    mutt_event_rules_init_default(&rules);
    return compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules);
}

#define BENCH_EVENT                                                                                \
    "{\"timestamp\":\"2026-11-25T11:30:00.123Z\",\"hostname\":\"core-sw-07.dc2.example.net\","    \
    "\"message\":\"%LINK-3-UPDOWN: Interface GigabitEthernet1/0/24, changed state to down (peer "  \
    "ap-113 lost carrier)\",\"syslog_severity\":3,\"source_type\":\"cisco-ios\",\"facility\":"     \
    "\"local7\",\"program\":\"ios\",\"source_ip\":\"10.20.7.1\"}"
#define BASE "\"hostname\":\"h1\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\""

static void test_event_fast_takes_the_benchmark_batch_and_matches_the_general_path(void **state)
{
    (void)state;
    char *body = malloc(100 * (sizeof BENCH_EVENT) + 4);
    size_t n = 0;
    body[n++] = '[';
    for (int i = 0; i < 100; i++) {
        if (i)
            body[n++] = ',';
        memcpy(body + n, BENCH_EVENT, sizeof BENCH_EVENT - 1);
        n += sizeof BENCH_EVENT - 1;
    }
    body[n++] = ']';
    body[n] = '\0';
    assert_true(compare(body));

    struct mutt_event_fast fp = {0};
    struct mutt_event_rules rules;
    mutt_event_rules_init_default(&rules);
    assert_int_equal(mutt_event_fast_body(body, n, MAX_EVENTS, MAX_EVENT_BYTES, &rules, ROOM, &fp), 100);
    assert_int_equal(fp.lens[99], sizeof BENCH_EVENT - 2);
    assert_memory_equal(fp.buf + fp.offs[99], BENCH_EVENT, sizeof BENCH_EVENT - 2);
    /* one more event than allowed: the general path answers 413 */
    assert_int_equal(mutt_event_fast_body(body, n, 99, MAX_EVENT_BYTES, &rules, ROOM, &fp), 0);
    assert_int_equal(fp.count, 0);
    assert_int_equal(mutt_event_fast_body(BENCH_EVENT, sizeof BENCH_EVENT - 1, 0, MAX_EVENT_BYTES, &rules, ROOM, &fp), 0);
    assert_int_equal(mutt_event_fast_body(BENCH_EVENT, sizeof BENCH_EVENT - 1, 1, MAX_EVENT_BYTES, &rules, ROOM, &fp), 1);
    mutt_event_fast_free(&fp);
    free(body);
}

static void test_event_fast_takes_valid_compact_and_spaced_events_with_the_same_bytes(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "{" BASE "}",
        "[{" BASE "}]",
        "\xEF\xBB\xBF  [ {" BASE "} ,\n {" BASE ",\"x\":1} ]\n",
        "{ \"hostname\" : \"h1\" ,\n \"message\":\t\"m\", \"timestamp\": \"2025-01-15T10:30:00Z\" }",
        "{" BASE ",\"syslog_severity\":0}",
        "{" BASE ",\"syslog_severity\":7,\"severity\":\"bogus\"}",
        "{" BASE ",\"n\":[0,-5,123456789012345678,-123456789012345678,true,false,null]}",
        "{" BASE ",\"o\":{\"a\":{\"b\":[{},[],{\"c\":\"d\"}]}},\"e\":{}}",
        "{" BASE ",\"esc\":\"q\\\" b\\\\ \\b\\f\\n\\r\\t end\"}",
        "{\"hostname\":\"h\\\"1\",\"message\":\"\\n x\",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{" BASE ",\"u\":\"caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF\"}",
        "{\"caf\xC3\xA9\":1," BASE "}",
        "{\"timestamp\":\"2025-01-15T10:30:00+02:00\",\"hostname\":\"h1\",\"message\":\"m\",\"\":\"\"}",
        "{" BASE ",\"severity_text\":\"x\",\"source_ip\":\"1.2.3.4\",\"trap_oid\":\"1.3.6\"}",
        "{" BASE ",\"syslog_severity_text\":\"Major\",\"del\":\"\x7F\"}",
        "{" BASE ",\"deep\":[[[[[[[[[[[[[[1]]]]]]]]]]]]]]}",
        /* long strings (16-byte steps): one visible byte among spaces, escapes and UTF-8 at
         * every offset of a block */
        "{\"hostname\":\"h\",\"message\":\"                    x                    \",\"timestamp\":\"2025-01-15T10:30:00Z\",\"timestamp2\":1}",
        "{\"hostname\":\"h\",\"message\":\"               x\",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"                \\\"\",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{" BASE ",\"l\":\"0123456789abcde\\\"0123456789abcdef\\\\0123456789abcde\xC3\xA9" "0123456789abcdef\xE4\xB8\xAD\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (!compare(ok[i]))
            fail_msg("fast path declined case %zu: %s", i, ok[i]);
    }
}

static void test_event_fast_leaves_everything_else_to_the_general_path(void **state)
{
    (void)state;
    static const char *const no[] = {
        "",
        "   ",
        "[]",
        "[1]",
        "[{" BASE "},2]",
        "{" BASE "}\n{" BASE "}",            /* NDJSON */
        "{" BASE "} x",
        "[{" BASE "}] ]",
        "[{" BASE "}",
        "{}",
        "{" BASE ",\"r\":1.5}",
        "{" BASE ",\"r\":1e3}",
        "{" BASE ",\"r\":-0}",
        "{" BASE ",\"r\":01}",
        "{" BASE ",\"r\":1234567890123456789}",
        "{" BASE ",\"r\":9999999999999999999}", /* 19 digits: overflowed a long long (UBSan) */
        "{" BASE ",\"s\":\"a\\/b\"}",
        "{" BASE ",\"s\":\"\\u00e9\"}",
        "{" BASE ",\"s\":\"\\u0000\"}",
        "{" BASE ",\"s\":\"\\x\"}",
        "{" BASE ",\"s\":\"tab\there\"}",
        "{" BASE ",\"s\":\"\xC0\x80\"}",
        "{" BASE ",\"s\":\"\xED\xA0\x80\"}",
        "{" BASE ",\"s\":\"\xF5\x80\x80\x80\"}",
        "{" BASE ",\"s\":\"\xE0\x80\xAF\"}",
        "{" BASE ",\"s\":\"\xC3\"}",
        "{" BASE ",\"s\":\"\x80\"}",
        "{" BASE ",\"hostname\":\"h2\"}",     /* duplicate key */
        "{" BASE ",\"o\":{\"a\":1,\"a\":2}}",
        "{" BASE ",\"api_key\":\"k\"}",
        "{" BASE ",\"_event_id\":\"x\"}",
        "{" BASE ",\"_correlation_id\":\"x\"}",
        "{" BASE ",\"_retry_count\":99}",             /* D35: every top-level _ field */
        "{\"_origin\":\"ingest\"," BASE "}",
        "[{" BASE "},{" BASE ",\"_\":1}]",
        "{" BASE ",\"syslog_severity\":\"3\"}",
        "{" BASE ",\"syslog_severity\":8}",
        "{" BASE ",\"syslog_severity\":null}",
        "{" BASE ",\"severity\":3}",
        "{\"hostname\":\"\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\",\"source_ip\":\"1.2.3.4\"}",
        "{\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"\",\"timestamp\":\"2025-01-15T10:30:00Z\",\"trap_oid\":\"1.3\"}",
        "{\"hostname\":\"h\",\"message\":null,\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"   \",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"                                        \",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"                \\n                \",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"\\n\\t\",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{\"hostname\":\"h\",\"message\":\"m\",\"timestamp\":\"yesterday\"}",
        "{\"hostname\":\"h\",\"message\":\"m\",\"timestamp\":12}",
        "{\"hostname\":\"h\",\"message\":\"m\"}",
        "{\"hostname\":7,\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}",
        "{" BASE ",\"deep\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",
        "{" BASE ",\"x\":tru}",
        "{" BASE ",\"x\":nul}",
        "{" BASE ",\"x\":+1}",
        "{" BASE ",}",
        "{" BASE " \"x\":1}",
        "{\"host\\\"name\":\"h\"," BASE "}",
    };
    struct mutt_event_rules rules;
    mutt_event_rules_init_default(&rules);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        struct mutt_event_fast fp = {0};
        long n = mutt_event_fast_body(no[i], strlen(no[i]), MAX_EVENTS, MAX_EVENT_BYTES, &rules, ROOM, &fp);
        if (n != 0)
            fail_msg("fast path took case %zu: %s", i, no[i]);
        assert_int_equal(fp.count, 0);
        mutt_event_fast_free(&fp);
    }

    /* hostname of 255 bytes passes, 256 does not */
    char body[1024];
    char host[300];
    memset(host, 'a', sizeof host);
    snprintf(body, sizeof body, "{\"hostname\":\"%.255s\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", host);
    assert_true(compare(body));
    snprintf(body, sizeof body, "{\"hostname\":\"%.256s\",\"message\":\"m\",\"timestamp\":\"2025-01-15T10:30:00Z\"}", host);
    assert_false(compare(body));
    /* the size limit is on the compact text, checked like the general path */
    snprintf(body, sizeof body, "{" BASE "}");
    size_t exact = strlen(body);
    assert_true(compare_n(body, exact, MAX_EVENTS, exact, &rules));
    assert_false(compare_n(body, exact, MAX_EVENTS, exact - 1, &rules));
    snprintf(body, sizeof body, "[{ " BASE " }]");
    assert_true(compare_n(body, strlen(body), MAX_EVENTS, exact, &rules));
}

/* D35: a body with top-level `_` fields goes to the general path, which strips them: the result is
 * byte for byte what the fast path gives for the same body without them. Nested `_` keys are
 * data and stay (on the fast path too). */
static void test_event_fast_declines_reserved_fields_and_the_general_path_strips_them(void **state)
{
    (void)state;
    struct mutt_event_rules rules;
    mutt_event_rules_init_default(&rules);
    static const char with[] = "[{\"_retry_count\":99," BASE ",\"_origin\":\"x\",\"_dlq_reason\":\"y\"},"
                               "{" BASE ",\"_replay_count\":3,\"n\":{\"_k\":1}}]";
    static const char without[] = "[{" BASE "},{" BASE ",\"n\":{\"_k\":1}}]";
    struct mutt_event_fast fp = {0};
    size_t nf = 0, ng = 0;
    assert_null(mutt_test_event_fast(&fp, with, strlen(with), MAX_EVENTS, MAX_EVENT_BYTES, &rules, &nf));
    char *f = mutt_test_event_fast(&fp, without, strlen(without), MAX_EVENTS, MAX_EVENT_BYTES, &rules, &nf);
    bool gfailed = false;
    char *g = mutt_test_event_general(with, strlen(with), MAX_EVENTS, MAX_EVENT_BYTES, &rules, &ng, &gfailed);
    assert_false(gfailed);
    assert_non_null(f);
    assert_non_null(g);
    assert_string_equal(f, g);
    assert_int_equal(nf, 2);
    assert_int_equal(ng, 2);
    free(f);
    free(g);
    mutt_event_fast_free(&fp);
    assert_true(compare("{" BASE ",\"n\":{\"_k\":1}}"));
}

static void test_event_fast_follows_required_fields(void **state)
{
    (void)state;
    struct mutt_event_rules rules;
    const char *body = "{" BASE ",\"x\":\"v\",\"blank\":\" \",\"num\":1}";
    assert_int_equal(mutt_event_rules_set_required(&rules, "hostname,x"), 0);
    assert_true(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
    assert_int_equal(mutt_event_rules_set_required(&rules, "hostname,missing"), 0);
    assert_false(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
    assert_int_equal(mutt_event_rules_set_required(&rules, "blank"), 0);
    assert_false(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
    assert_int_equal(mutt_event_rules_set_required(&rules, "num"), 0);
    assert_false(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
    assert_int_equal(mutt_event_rules_set_required(&rules, ""), 0);
    assert_true(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
    /* a null timestamp is absent: fine unless required */
    body = "{\"hostname\":\"h1\",\"message\":\"m\",\"timestamp\":null}";
    assert_true(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
    mutt_event_rules_init_default(&rules);
    assert_false(compare_n(body, strlen(body), MAX_EVENTS, MAX_EVENT_BYTES, &rules));
}

/* Seeded mutations of valid bodies: whatever the fast path takes, the general path must accept
 * and serialise to the same bytes. */
static void test_event_fast_agrees_with_the_general_path_on_mutated_bodies(void **state)
{
    (void)state;
    static const char *const seeds[] = {
        "[" BENCH_EVENT "," BENCH_EVENT "]",
        "{" BASE ",\"o\":{\"a\":[1,-2,true,null,\"s\\n\"]},\"syslog_severity\":5}",
        "[{" BASE ",\"u\":\"caf\xC3\xA9\xF0\x9F\x98\x80\"},{" BASE ",\"k\":{}}]",
    };
    static const char alphabet[] = "{}[]\":,\\ \n0123456789-.eEtrufalsn/abxu\xC3\xA9\x80\xF0_";
    uint64_t x = 0x9E3779B97F4A7C15ull;
    struct mutt_event_rules rules;
    size_t taken = 0, total = 0;
    char buf[2048];

    mutt_event_rules_init_default(&rules);
    for (int round = 0; round < 300000; round++) {
        const char *seed = seeds[round % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int edits = 1 + round % 3;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t pos = (size_t)(x % (n + 1));
            char c = alphabet[(x >> 32) % (sizeof alphabet - 1)];
            switch ((x >> 48) % 3) {
            case 0: /* replace */
                if (pos < n)
                    buf[pos] = c;
                break;
            case 1: /* insert */
                if (n + 1 < sizeof buf) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = c;
                    n++;
                }
                break;
            default: /* delete */
                if (pos < n) {
                    memmove(buf + pos, buf + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            }
        }
        total++;
        if (compare_n(buf, n, MAX_EVENTS, MAX_EVENT_BYTES, &rules))
            taken++;
    }
    /* the mutations must leave a fair share on the fast path, or the test proves little */
    assert_true(taken > total / 20);
    print_message("fast path took %zu of %zu mutated bodies\n", taken, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_fast_takes_the_benchmark_batch_and_matches_the_general_path),
        cmocka_unit_test(test_event_fast_takes_valid_compact_and_spaced_events_with_the_same_bytes),
        cmocka_unit_test(test_event_fast_leaves_everything_else_to_the_general_path),
        cmocka_unit_test(test_event_fast_declines_reserved_fields_and_the_general_path_strips_them),
        cmocka_unit_test(test_event_fast_follows_required_fields),
        cmocka_unit_test(test_event_fast_agrees_with_the_general_path_on_mutated_bodies),
    };
    return cmocka_run_group_tests_name("event_fast", tests, NULL, NULL);
}
