/* The general ingest path (src/domain/event.c): body splitting, normalisation and the own JSON
 * encoder. Properties: no crash or leak on any body; mutt_event_dump writes exactly jansson's
 * JSON_COMPACT bytes (its header's promise) and reports the size it needs when the buffer is
 * short; an accepted event, dumped and ingested again, is accepted again and dumps to the same
 * bytes (what ingest writes to the queue survives the DLQ replay that sends it through ingest). */
#include "fuzz.h"

#include <jansson.h>

#include "mutt/error.h"
#include "mutt/event.h"

/* Normalises and dumps one item; returns the malloc'd text or NULL when it is refused. */
static char *normalise_and_dump(json_t *ev, const struct mutt_event_rules *rules, size_t *len)
{
    char err[256];
    if (mutt_event_normalize(ev, rules, err, sizeof err, NULL) != 0)
        return NULL;
    char *s = NULL;
    int rc = mutt_event_dump_alloc(ev, &s, len);
    FUZZ_CHECK(rc == 0, "dump of a normalised event failed (%d)", rc);

    char *ref = json_dumps(ev, JSON_COMPACT);
    FUZZ_CHECK(ref != NULL && strlen(ref) == *len && memcmp(ref, s, *len) == 0,
               "mutt_event_dump differs from jansson:\nours:    %s\njansson: %s", s, ref ? ref : "(null)");
    free(ref);

    char small[16];
    size_t need = 0;
    rc = mutt_event_dump(ev, small, sizeof small, &need);
    if (*len <= sizeof small)
        FUZZ_CHECK(rc == 0 && need == *len && memcmp(small, s, need) == 0, "short dump of %s", s);
    else
        FUZZ_CHECK(rc == MUTT_EFULL && need == *len, "dump into 16 bytes: rc %d need %zu, want %zu", rc, need, *len);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mutt_event_rules rules;
    struct mutt_event_batch b;

    mutt_event_rules_init_default(&rules);
    /* a small byte cap too, so oversized events are rejected per item */
    size_t max_bytes = size > 0 && data[0] == '[' ? 128 : 65536;
    int rc = mutt_event_parse_body((const char *)data, size, 1000, max_bytes, &b);
    if (rc != 0) {
        FUZZ_CHECK(b.count == 0 && b.error[0] != '\0', "failed parse (%d) left %zu items or no message", rc, b.count);
        mutt_event_batch_dispose(&b);
        return 0;
    }
    size_t rejected = 0;
    for (size_t i = 0; i < b.count; i++) {
        FUZZ_CHECK((b.items[i].event == NULL) != (b.items[i].error == NULL), "item %zu: event and error", i);
        rejected += b.items[i].error != NULL;
        if (b.items[i].event == NULL)
            continue;
        size_t len = 0;
        char *first = normalise_and_dump(b.items[i].event, &rules, &len);
        if (first == NULL)
            continue;

        struct mutt_event_batch again;
        rc = mutt_event_parse_body(first, len, 1, (size_t)1 << 30, &again);
        FUZZ_CHECK(rc == 0 && again.count == 1 && again.items[0].event != NULL,
                   "ingest refuses its own output (%d: %s): %s", rc, again.error, first);
        size_t len2 = 0;
        char *second = normalise_and_dump(again.items[0].event, &rules, &len2);
        FUZZ_CHECK(second != NULL, "normalisation refuses its own output: %s", first);
        FUZZ_CHECK(len == len2 && memcmp(first, second, len) == 0, "normalising twice changes the event:\n%s\n%s",
                   first, second);
        free(second);
        free(first);
        mutt_event_batch_dispose(&again);
    }
    FUZZ_CHECK(rejected == b.rejected, "batch counts %zu rejected, items say %zu", b.rejected, rejected);
    mutt_event_batch_dispose(&b);
    return 0;
}
