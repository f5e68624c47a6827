/* RFC 6587 framing of a syslog TCP/TLS stream (issue 15 item 1): octet counting ("LEN SP MSG")
 * or LF-delimited lines, picked per connection from its first byte (a digit 1-9 = octet
 * counting), with messages longer than a maximum cut there and the rest of their frame skipped.
 * Pure: works on the caller's buffer, which may end in the middle of a frame (partial reads).
 * One framer per connection; no shared state. */
#ifndef MUTT_SYSLOG_FRAME_H
#define MUTT_SYSLOG_FRAME_H

#include <stdbool.h>
#include <stddef.h>

struct mutt_syslog_framer {
    int framing;      /* 0 = not known yet, 'o' = octet counting, 'l' = LF */
    size_t max_msg;   /* longest message kept */
    size_t skip;      /* bytes of an over-long octet-counted frame still to be discarded */
    bool skip_to_lf;  /* LF framing: discard up to the next LF */
};

/* A framer keeping messages up to max_msg (≥ 1) bytes. A buffer of max_msg + 32 bytes always
 * holds a complete frame or the kept part of a long one, so a full buffer never stalls. */
void mutt_syslog_frame_init(struct mutt_syslog_framer *f, size_t max_msg);

/* True while the rest of an over-long frame is being discarded: call mutt_syslog_frame_skip on
 * the buffer's front before looking for frames. */
bool mutt_syslog_frame_skipping(const struct mutt_syslog_framer *f);

/* How many bytes at the front of buf[0..len) belong to an over-long frame's remainder and are to
 * be discarded; ends skipping when the remainder is all there. */
size_t mutt_syslog_frame_skip(struct mutt_syslog_framer *f, const char *buf, size_t len);

/* Finds the next complete frame at buf[pos..len). Returns the bytes it takes (to consume) and
 * the message in *msg, *mlen (pointing into buf), or 0 when no complete frame is there yet.
 * *cut is set when the message was longer than max_msg: its first max_msg bytes are returned and
 * the framer is then skipping the rest (no further frame until mutt_syslog_frame_skip ends it).
 * An octet-counted stream whose next frame does not start with "LEN SP" switches to LF framing
 * for good (tolerated, as rsyslog does). */
size_t mutt_syslog_frame_next(struct mutt_syslog_framer *f, const char *buf, size_t len, size_t pos,
                              const char **msg, size_t *mlen, bool *cut);

#endif
