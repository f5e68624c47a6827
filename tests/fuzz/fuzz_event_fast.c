/* Differential target: the ingest fast path (src/domain/event_fast.c) against parse + normalise
 * + stamp + dump (src/domain/event.c). Whatever the fast path takes, the general path must take
 * too and write the same bytes (tests/support/event_compare.c); declining is always allowed.
 * Run with the production limits and with tight ones, so the size and count checks are hit. */
#include "fuzz.h"

#include "event_compare.h"
#include "mutt/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct {
        size_t max_events, max_event_bytes;
    } limits[] = {{1000, 65536}, {2, 96}};
    struct mutt_event_rules rules;
    char msg[4096];

    mutt_event_rules_init_default(&rules);
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        enum mutt_test_event_cmp v = mutt_test_event_compare((const char *)data, size, limits[i].max_events,
                                                             limits[i].max_event_bytes, &rules, msg, sizeof msg);
        FUZZ_CHECK(v == MUTT_TEST_EVCMP_DECLINED || v == MUTT_TEST_EVCMP_SAME, "limits %zu/%zu: %s",
                   limits[i].max_events, limits[i].max_event_bytes, msg);
    }
    return 0;
}
