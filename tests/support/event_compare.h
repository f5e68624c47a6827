/* The ingest fast path's proof obligation, shared by tests/unit/test_event_fast.c and the fuzz
 * target tests/fuzz/fuzz_event_fast.c: whenever mutt_event_fast_body takes a body, the general
 * path (parse + normalise + stamp + dump, as src/stages/ingest.c runs them) must accept it and
 * write the same bytes. No test framework inside: it reports, the caller asserts. */
#ifndef MUTT_TEST_EVENT_COMPARE_H
#define MUTT_TEST_EVENT_COMPARE_H

#include <stdbool.h>
#include <stddef.h>

#include "mutt/event.h"

enum mutt_test_event_cmp {
    MUTT_TEST_EVCMP_DECLINED = 0, /* the fast path left the body to the general path */
    MUTT_TEST_EVCMP_SAME,         /* both took it and wrote the same events */
    MUTT_TEST_EVCMP_DIFFER,       /* the fast path took it and the general path refused it or
                                     wrote other bytes: the message says which */
    MUTT_TEST_EVCMP_ERROR,        /* out of memory, or the fast path failed (< 0) */
};

/* Runs both paths on body[0..len) with the same limits and rules. On DIFFER and ERROR writes one
 * line (the body and both outputs, cut to fit) into msg (may be NULL). */
enum mutt_test_event_cmp mutt_test_event_compare(const char *body, size_t len, size_t max_events,
                                                 size_t max_event_bytes, const struct mutt_event_rules *rules,
                                                 char *msg, size_t msglen);

/* The two sides on their own (malloc'd, events joined by '\n'; NULL when refused or declined;
 * *count = items, (size_t)-1 on failure). *failed (general) tells a failure from a refusal. */
char *mutt_test_event_general(const char *body, size_t len, size_t max_events, size_t max_bytes,
                              const struct mutt_event_rules *rules, size_t *count, bool *failed);
struct mutt_event_fast;
char *mutt_test_event_fast(struct mutt_event_fast *fp, const char *body, size_t len, size_t max_events,
                           size_t max_bytes, const struct mutt_event_rules *rules, size_t *count);

#endif
