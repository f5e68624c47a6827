/* RFC 6587 framing (syslog_frame.h). */
#include "mutt/syslog_frame.h"

#include <string.h>

#define LEN_DIGITS_MAX 12 /* more digits than any kept length: the frame is taken as LF text */

void mutt_syslog_frame_init(struct mutt_syslog_framer *f, size_t max_msg)
{
    *f = (struct mutt_syslog_framer){.max_msg = max_msg ? max_msg : 1};
}

bool mutt_syslog_frame_skipping(const struct mutt_syslog_framer *f)
{
    return f->skip > 0 || f->skip_to_lf;
}

size_t mutt_syslog_frame_skip(struct mutt_syslog_framer *f, const char *buf, size_t len)
{
    size_t drop = 0;
    if (f->skip) {
        drop = f->skip < len ? f->skip : len;
        f->skip -= drop;
    } else if (f->skip_to_lf) {
        const char *lf = memchr(buf, '\n', len);
        drop = lf ? (size_t)(lf - buf) + 1 : len;
        if (lf)
            f->skip_to_lf = false;
    }
    return drop;
}

size_t mutt_syslog_frame_next(struct mutt_syslog_framer *f, const char *buf, size_t len, size_t pos,
                              const char **msg, size_t *mlen, bool *cut)
{
    *cut = false;
    if (pos >= len || mutt_syslog_frame_skipping(f))
        return 0;
    const char *b = buf + pos;
    size_t avail = len - pos;
    if (f->framing == 0)
        f->framing = b[0] >= '1' && b[0] <= '9' ? 'o' : 'l';
    if (f->framing == 'o') {
        size_t i = 0, n = 0;
        while (i < avail && b[i] >= '0' && b[i] <= '9' && i < LEN_DIGITS_MAX)
            n = n * 10 + (size_t)(b[i++] - '0');
        if (i == avail)
            return 0;
        if (i == 0 || b[i] != ' ') {
            f->framing = 'l';
            return mutt_syslog_frame_next(f, buf, len, pos, msg, mlen, cut);
        }
        i++;
        if (n > f->max_msg) {
            if (avail - i < f->max_msg)
                return 0;
            *msg = b + i;
            *mlen = f->max_msg;
            *cut = true;
            f->skip = n - f->max_msg;
            return i + f->max_msg;
        }
        if (avail - i < n)
            return 0;
        *msg = b + i;
        *mlen = n;
        return i + n;
    }
    const char *lf = memchr(b, '\n', avail);
    size_t line = lf ? (size_t)(lf - b) : avail;
    if (line > f->max_msg) {
        /* too long, whether or not its LF is here yet: keep the head, skip to the LF */
        *msg = b;
        *mlen = f->max_msg;
        *cut = true;
        f->skip_to_lf = true;
        return f->max_msg;
    }
    if (!lf)
        return 0;
    *msg = b;
    *mlen = line;
    return line + 1;
}
