/* Unit tests of the lineage encoding and state (src/domain/lineage.c, D41 D63): key and field
 * shapes, decode ordering and details, the state each timeline ends in. No I/O. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/lineage.h"

#define EID "3f2b6c1e-8d4a-4e1b-9c3d-0a1b2c3d4e5f"

static void test_lineage_keys_and_fields(void **state)
{
    (void)state;
    char k[MUTT_LINEAGE_KEY_MAX];
    assert_int_equal(mutt_lineage_key(EID, k, sizeof k), (int)strlen("mutt:lineage:" EID));
    assert_string_equal(k, "mutt:lineage:" EID);
    assert_true(mutt_lineage_cid_key("req-1", k, sizeof k) > 0);
    assert_string_equal(k, "mutt:lineage:c:req-1");
    assert_int_equal(mutt_lineage_key("", k, sizeof k), MUTT_EINVAL);
    assert_int_equal(mutt_lineage_key(EID, k, 10), MUTT_EINVAL);
    assert_string_equal(k, "");

    char f[MUTT_LINEAGE_FIELD_MAX];
    assert_int_equal(mutt_lineage_field(1733362000123, MUTT_LINEAGE_DELIVERED, f, sizeof f), 15);
    assert_string_equal(f, "1733362000123:s");
    assert_int_equal(mutt_lineage_field(-1, MUTT_LINEAGE_DELIVERED, f, sizeof f), MUTT_EINVAL);
    assert_int_equal(mutt_lineage_field(1, (enum mutt_lineage_step)'?', f, sizeof f), MUTT_EINVAL);
    assert_int_equal(mutt_lineage_field(1733362000123, MUTT_LINEAGE_DELIVERED, f, 8), MUTT_EINVAL);
}

static void test_lineage_value_is_compact(void **state)
{
    (void)state;
    char *s = NULL;
    size_t len = 0;
    json_t *d = json_pack("{s:i, s:s}", "status", 200, "pod", "p 1");
    assert_int_equal(mutt_lineage_value(d, &s, &len), 0);
    assert_string_equal(s, "{\"status\":200,\"pod\":\"p 1\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    assert_int_equal(mutt_lineage_value(NULL, &s, &len), 0);
    assert_string_equal(s, "{}");
    free(s);
    assert_int_equal(mutt_lineage_entry(42, MUTT_LINEAGE_REPLAY, d, &s, &len), 0);
    assert_string_equal(s, "42:p {\"status\":200,\"pod\":\"p 1\"}");
    assert_int_equal(len, strlen(s));
    free(s);
    json_t *a = json_array();
    assert_int_equal(mutt_lineage_value(a, &s, &len), MUTT_EINVAL);
    assert_null(s);
    json_decref(a);
    json_decref(d);
}

/* Decodes n field/value pairs given as C strings. */
static json_t *decode(const char *const *kv, size_t n)
{
    const char *f[16], *v[16];
    size_t fl[16], vl[16];
    for (size_t i = 0; i < n; i++) {
        f[i] = kv[2 * i];
        v[i] = kv[2 * i + 1];
        fl[i] = strlen(f[i]);
        vl[i] = strlen(v[i]);
    }
    json_t *o = mutt_lineage_decode(EID, f, fl, v, vl, n);
    assert_non_null(o);
    return o;
}

static const char *state_of(const char *const *kv, size_t n)
{
    static char buf[32];
    json_t *o = decode(kv, n);
    strncpy(buf, json_string_value(json_object_get(o, "state")), sizeof buf - 1);
    json_decref(o);
    return buf;
}

static void test_lineage_decode_orders_by_time_then_pipeline(void **state)
{
    (void)state;
    /* stored in hash order (any order); same millisecond for accepted and handled */
    const char *kv[] = {
        "1000:s", "{\"attempt\":2,\"status\":200,\"latency_ms\":3}",
        "c", "req-9",
        "500:h", "{\"rule_id\":7,\"handling\":\"Page_and_ticket\",\"team\":\"NetOps\",\"forwarded\":true}",
        "500:a", "{\"pod\":\"i1\",\"queue\":\"mutt:ingest_queue\"}",
        "700:t", "{\"attempt\":1,\"status\":503,\"retry_in_ms\":250,\"stage\":\"bogus\"}",
        "junk", "{}",
        "800:?", "{}",
    };
    json_t *o = decode(kv, 7);
    assert_string_equal(json_string_value(json_object_get(o, "event_id")), EID);
    assert_string_equal(json_string_value(json_object_get(o, "correlation_id")), "req-9");
    assert_string_equal(json_string_value(json_object_get(o, "state")), "delivered");
    json_t *tl = json_object_get(o, "timeline");
    assert_int_equal(json_array_size(tl), 4);
    const char *whats[] = {"accepted", "handled", "retry", "delivered"};
    const char *stages[] = {"ingest", "alert", "forward", "forward"};
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(tl, i);
        assert_string_equal(json_string_value(json_object_get(e, "what")), whats[i]);
        assert_string_equal(json_string_value(json_object_get(e, "stage")), stages[i]);
    }
    json_t *first = json_array_get(tl, 0);
    assert_string_equal(json_string_value(json_object_get(first, "at")), "1970-01-01T00:00:00.500Z");
    assert_string_equal(json_string_value(json_object_get(first, "pod")), "i1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tl, 1), "rule_id")), 7);
    /* details never override the fixed names */
    assert_string_equal(json_string_value(json_object_get(json_array_get(tl, 2), "stage")), "forward");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tl, 2), "status")), 503);
    json_decref(o);
}

/* Steps of one millisecond read in the order they can happen: a DLQ move, the replay out of it,
 * then what the stage that takes the event back does (a replay and its delivery often share a
 * millisecond when the sink is fast). */
static void test_lineage_same_millisecond_follows_cause(void **state)
{
    (void)state;
    const char *fwd_replay_delivered[] = {"1:a", "{}", "2:h", "{\"forwarded\":true}", "3:d", "{}",
                                          "9:s", "{}", "9:p", "{\"from\":\"mutt:dlq:moog\"}"};
    assert_string_equal(state_of(fwd_replay_delivered, 5), "delivered");
    const char *alert_replay_handled[] = {"1:a", "{}", "5:h", "{\"forwarded\":false}", "5:p", "{}", "5:D", "{}"};
    assert_string_equal(state_of(alert_replay_handled, 4), "ignored");
    /* a 4xx answer goes to the DLQ at once: handled and the DLQ move may share a millisecond */
    const char *handled_then_dlq[] = {"1:a", "{}", "4:d", "{}", "4:h", "{\"forwarded\":true}"};
    assert_string_equal(state_of(handled_then_dlq, 3), "in_dlq");
    /* the full loop inside one millisecond: moved, replayed, delivered */
    const char *one_ms[] = {"7:s", "{}", "7:p", "{}", "7:d", "{}", "7:h", "{\"forwarded\":true}", "7:a", "{}"};
    json_t *o = decode(one_ms, 5);
    json_t *tl = json_object_get(o, "timeline");
    const char *whats[] = {"accepted", "handled", "dlq", "replay", "delivered"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(tl, i), "what")), whats[i]);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "delivered");
    json_decref(o);
}

static void test_lineage_states(void **state)
{
    (void)state;
    const char *accepted[] = {"1:a", "{}"};
    assert_string_equal(state_of(accepted, 1), "pending");
    const char *ignored[] = {"1:a", "{}", "2:h", "{\"forwarded\":false,\"handling\":\"Ignore\"}"};
    assert_string_equal(state_of(ignored, 2), "ignored");
    const char *fwd[] = {"1:a", "{}", "2:h", "{\"forwarded\":true}"};
    assert_string_equal(state_of(fwd, 2), "pending");
    const char *unhandled[] = {"1:a", "{}", "2:n", "{\"meta_alert\":true}", "3:s", "{\"meta_alert\":true}"};
    assert_string_equal(state_of(unhandled, 3), "unhandled");
    const char *dlq[] = {"1:a", "{}", "2:h", "{\"forwarded\":true}", "3:d", "{\"status\":400}"};
    assert_string_equal(state_of(dlq, 3), "in_dlq");
    const char *replayed[] = {"1:a", "{}", "2:h", "{}", "3:d", "{}", "4:p", "{}"};
    assert_string_equal(state_of(replayed, 4), "pending");
    const char *back[] = {"1:a", "{}", "2:h", "{}", "3:d", "{}", "4:p", "{}", "5:s", "{}"};
    assert_string_equal(state_of(back, 5), "delivered");
    const char *dead[] = {"1:a", "{}", "2:D", "{}", "3:x", "{}"};
    assert_string_equal(state_of(dead, 3), "dead");
    const char *maint[] = {"1:a", "{}", "2:m", "{}"};
    assert_string_equal(state_of(maint, 2), "maintenance");
    const char *alert_dlq[] = {"1:a", "{}", "2:e", "{}", "3:D", "not json"};
    json_t *o = decode(alert_dlq, 3);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "in_dlq");
    assert_true(json_is_null(json_object_get(o, "correlation_id")));
    assert_int_equal(json_array_size(json_object_get(o, "timeline")), 3);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lineage_keys_and_fields),
        cmocka_unit_test(test_lineage_value_is_compact),
        cmocka_unit_test(test_lineage_decode_orders_by_time_then_pipeline),
        cmocka_unit_test(test_lineage_same_millisecond_follows_cause),
        cmocka_unit_test(test_lineage_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
