/* RFC 6587 framing of syslog TCP/TLS streams (src/domain/syslog_frame.c), driven the way the
 * listener drives it (src/stages/listen_syslog.c): a buffer of max_msg + 32 bytes filled by
 * partial reads, the over-long remainder skipped at its front, complete frames consumed, the
 * leftover taken as one last message at EOF. Input: byte 0 picks max_msg (1..64, so the cut
 * paths are reached), byte 1 seeds the read sizes, the rest is the stream. Properties: the same
 * messages (bytes and cut flags, in order) come out whether the stream arrives in one read or in
 * pieces of any size; a full buffer always yields a frame or a skip (never a stall); every message
 * is at most max_msg bytes, and a cut one exactly max_msg; every byte is consumed once (frames +
 * skipped + leftover = the stream). */
#include "fuzz.h"

#include "mutt/syslog_frame.h"

struct out {
    uint8_t *p;
    size_t len, cap;
};

static void out_put(struct out *o, const char *m, size_t n, bool cut)
{
    if (o->len + n + 9 > o->cap) {
        size_t cap = (o->len + n + 9) * 2;
        uint8_t *p = realloc(o->p, cap);
        if (!p)
            fuzz_fail("out of memory");
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, &n, sizeof n);
    o->p[o->len + sizeof n] = cut;
    memcpy(o->p + o->len + sizeof n + 1, m, n);
    o->len += sizeof n + 1 + n;
}

/* One connection: reads of `step()` bytes (whole stream at once when seed is 0). */
static void run(const char *s, size_t n, size_t max, unsigned seed, struct out *o)
{
    struct mutt_syslog_framer f;
    mutt_syslog_frame_init(&f, max);
    size_t cap = seed ? max + 32 : n + 1;
    char *buf = malloc(cap);
    if (!buf)
        fuzz_fail("out of memory");
    size_t len = 0, in = 0, accounted = 0;
    uint32_t x = seed * 2654435761u + 1;
    for (;;) {
        /* read */
        size_t room = cap - len, want = n - in;
        if (seed) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            size_t step = 1 + x % (max + 40);
            if (want > step)
                want = step;
        }
        if (want > room)
            want = room;
        memcpy(buf + len, s + in, want);
        len += want;
        in += want;
        bool eof = in == n;
        /* the listener's pump */
        size_t drop = mutt_syslog_frame_skip(&f, buf, len);
        memmove(buf, buf + drop, len - drop);
        len -= drop;
        accounted += drop;
        size_t pos = 0, frames = 0;
        for (;;) {
            const char *m;
            size_t ml;
            bool cut;
            size_t used = mutt_syslog_frame_next(&f, buf, len, pos, &m, &ml, &cut);
            if (used == 0)
                break;
            FUZZ_CHECK(used <= len - pos && m >= buf + pos && m + ml <= buf + pos + used, "frame outside the buffer");
            FUZZ_CHECK(ml <= max, "message of %zu bytes over max %zu", ml, max);
            FUZZ_CHECK(!cut || ml == max, "cut message of %zu bytes, not max %zu", ml, max);
            out_put(o, m, ml, cut);
            pos += used;
            frames++;
        }
        memmove(buf, buf + pos, len - pos);
        len -= pos;
        accounted += pos;
        if (frames == 0 && drop == 0 && len == cap && !mutt_syslog_frame_skipping(&f))
            fuzz_fail("stall: a full buffer (%zu bytes) with no frame and no skip", cap);
        if (eof && frames == 0 && drop == 0) {
            if (len > 0 && !mutt_syslog_frame_skipping(&f)) {
                out_put(o, buf, len, false); /* the peer closed after a frame without its end */
                accounted += len;
                len = 0;
            }
            if (len == 0 || mutt_syslog_frame_skipping(&f))
                break;
        }
    }
    accounted += len;
    FUZZ_CHECK(accounted + (n - in) == n, "%zu of %zu bytes accounted for", accounted, n);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 1 + data[0] % 64;
    unsigned seed = data[1] | 1u;
    const char *s = (const char *)data + 2;
    size_t n = size - 2;
    struct out whole = {0}, pieces = {0};
    run(s, n, max, 0, &whole);
    run(s, n, max, seed, &pieces);
    FUZZ_CHECK(whole.len == pieces.len && (whole.len == 0 || memcmp(whole.p, pieces.p, whole.len) == 0),
               "one read and pieces of the stream give different messages (%zu vs %zu bytes of output)", whole.len,
               pieces.len);
    free(whole.p);
    free(pieces.p);
    return 0;
}
