/* ISO 8601 parse/format (src/domain/timefmt.c). Properties: the counted and the NUL-terminated
 * parser agree; a timestamp the parser accepts can be formatted (ingest stores what it accepts,
 * later stages format it) and the formatted text parses back to the same milliseconds; any
 * epoch inside years 0000..9999 formats and round-trips, any other is refused. The input's
 * first 8 bytes are also read as an epoch in milliseconds. */
#include "fuzz.h"

#include "mutt/timefmt.h"

static void round_trip(int64_t ms, const char *from)
{
    char buf[MUTT_TIME_ISO8601_MS_LEN];
    int rc = mutt_time_format_iso8601_ms(ms, buf, sizeof buf);
    FUZZ_CHECK(rc == 0, "%lld ms (from '%s') does not format", (long long)ms, from);
    FUZZ_CHECK(strlen(buf) == MUTT_TIME_ISO8601_MS_LEN - 1 && buf[10] == 'T' && buf[23] == 'Z', "odd format '%s'",
               buf);
    int64_t back = 0;
    FUZZ_CHECK(mutt_time_parse_iso8601(buf, &back) == 0 && back == ms, "'%s' parses to %lld, not %lld", buf,
               (long long)back, (long long)ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t lo = 0, hi = 0, ms = 0;
    if (mutt_time_parse_iso8601("0000-01-01T00:00:00Z", &lo) != 0 ||
        mutt_time_parse_iso8601("9999-12-31T23:59:59.999Z", &hi) != 0)
        fuzz_fail("the range ends do not parse");

    char *s = fuzz_strndup(data, size);
    if (s == NULL)
        return 0;
    int rc = mutt_time_parse_iso8601n((const char *)data, size, &ms);
    if (memchr(data, '\0', size) == NULL) {
        int64_t ms2 = 0;
        int rc2 = mutt_time_parse_iso8601(s, &ms2);
        FUZZ_CHECK(rc == rc2 && (rc != 0 || ms == ms2), "'%s': counted %d/%lld, terminated %d/%lld", s, rc,
                   (long long)ms, rc2, (long long)ms2);
    }
    if (rc == 0)
        round_trip(ms, s);

    if (size >= 8) {
        int64_t v;
        memcpy(&v, data, sizeof v);
        char buf[MUTT_TIME_ISO8601_MS_LEN];
        rc = mutt_time_format_iso8601_ms(v, buf, sizeof buf);
        FUZZ_CHECK((rc == 0) == (v >= lo && v <= hi), "%lld: format says %d", (long long)v, rc);
        if (rc == 0)
            round_trip(v, "raw epoch");
        FUZZ_CHECK(mutt_time_format_iso8601_ms(v, buf, MUTT_TIME_ISO8601_MS_LEN - 1) != 0, "short buffer accepted");
    }
    free(s);
    return 0;
}
