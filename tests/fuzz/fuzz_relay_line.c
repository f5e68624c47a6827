/* The relay's line parser (mutt_relay_line_to_event in src/cli_relay.c): RFC 5424, RFC 3164 and
 * JSON lines. Properties: no crash or leak; the result is one JSON object; a line that is not a
 * JSON object becomes an event with string hostname, message and timestamp, and the timestamp
 * is one ingest accepts. */
#include "fuzz.h"

#include <jansson.h>

#include "mutt/cli_relay.h"
#include "mutt/timefmt.h"

#define NOW_MS 1764000000123LL /* 2025-11-24T16:00:00.123Z: the parser takes time as an argument */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = mutt_relay_line_to_event((const char *)data, size, "relay-host", NOW_MS);
    if (out == NULL)
        return 0;
    json_error_t jerr;
    json_t *ev = json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK(json_is_object(ev), "not a JSON object (%s): %s", jerr.text, out);

    size_t lead = 0;
    while (lead < size && (data[lead] == ' ' || (data[lead] >= '\t' && data[lead] <= '\r')))
        lead++;
    json_t *as_json = lead < size && data[lead] == '{'
                          ? json_loadb((const char *)data + lead, size - lead, JSON_REJECT_DUPLICATES, NULL)
                          : NULL;
    if (!json_is_object(as_json)) {
        static const char *const fields[] = {"hostname", "message", "timestamp"};
        for (size_t i = 0; i < 3; i++)
            FUZZ_CHECK(json_is_string(json_object_get(ev, fields[i])), "no string %s in %s", fields[i], out);
        const char *ts = json_string_value(json_object_get(ev, "timestamp"));
        FUZZ_CHECK(mutt_time_parse_iso8601(ts, NULL) == 0, "timestamp '%s' does not parse", ts);
        FUZZ_CHECK(json_string_length(json_object_get(ev, "hostname")) > 0, "empty hostname: %s", out);
    }
    json_decref(as_json);
    json_decref(ev);
    free(out);
    return 0;
}
