/* Collision-free key names of the unhandled-event store (D36). Pure; see
 * include/mutt/unhandled_key.h. The old shape "<prefix>:<hostname>:<hash>" let a sender named
 * "_info:db01" create a string where db01's info hash lives; every variable part is now either
 * length-prefixed (hostname) or fixed-width (hash), behind a fixed tag per kind of key. */
#include "mutt/unhandled_key.h"

#include <stdio.h>
#include <string.h>

#include "mutt/error.h"

static int too_small(char *out, size_t cap)
{
    if (cap > 0)
        out[0] = '\0';
    return MUTT_EFULL;
}

void mutt_unhandled_hash_hex(uint64_t template_hash, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[template_hash & 0xF];
        template_hash >>= 4;
    }
    out[16] = '\0';
}

/* Writes head (NUL-terminated), then the hostname bytes verbatim, then tail. */
static int put3(char *out, size_t cap, const char *head, const char *host, size_t host_len, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    if (hl > cap || host_len > cap - hl || tl >= cap - hl - host_len)
        return too_small(out, cap);
    memcpy(out, head, hl);
    if (host_len)
        memcpy(out + hl, host, host_len);
    memcpy(out + hl + host_len, tail, tl + 1);
    return (int)(hl + host_len + tl);
}

int mutt_unhandled_member(const char *hostname, size_t host_len, uint64_t template_hash, char *out, size_t cap)
{
    char head[32], tail[20], h16[17];
    if (host_len > (size_t)1 << 30)
        return too_small(out, cap);
    snprintf(head, sizeof head, "%zu:", host_len);
    mutt_unhandled_hash_hex(template_hash, h16);
    snprintf(tail, sizeof tail, ":%s", h16);
    return put3(out, cap, head, hostname, host_len, tail);
}

int mutt_unhandled_key(const char *prefix, enum mutt_unhandled_key_kind kind, const char *hostname, size_t host_len,
                       uint64_t template_hash, char *out, size_t cap)
{
    if (kind != MUTT_UNHANDLED_KEY_COUNTER && kind != MUTT_UNHANDLED_KEY_MARKER && kind != MUTT_UNHANDLED_KEY_INFO)
        return MUTT_EINVAL;
    size_t pl = strlen(prefix);
    if (pl + 3 >= cap)
        return too_small(out, cap);
    memcpy(out, prefix, pl);
    out[pl] = ':';
    out[pl + 1] = (char)kind;
    out[pl + 2] = ':';
    int n = mutt_unhandled_member(hostname, host_len, template_hash, out + pl + 3, cap - pl - 3);
    if (n < 0)
        return too_small(out, cap);
    return (int)(pl + 3) + n;
}

int mutt_unhandled_host_key(const char *prefix, const char *hostname, size_t host_len, char *out, size_t cap)
{
    char head[64];
    size_t pl = strlen(prefix);
    if (pl >= cap)
        return too_small(out, cap);
    int hn = snprintf(head, sizeof head, ":h:%zu:", host_len);
    if (hn < 0 || (size_t)hn >= sizeof head || pl + (size_t)hn >= cap)
        return too_small(out, cap);
    memcpy(out, prefix, pl);
    int n = put3(out + pl, cap - pl, head, hostname, host_len, "");
    if (n < 0)
        return too_small(out, cap);
    return (int)pl + n;
}
