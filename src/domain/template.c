/* Unhandled-event template masking and hashing (D14). Owns nothing; pure byte scanning with
 * no allocation, so the alert stage can call it per unmatched event. Any thread. */
#include "mutt/template.h"

#include <stdbool.h>
#include <string.h>

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

struct sink {
    char *out;
    size_t cap;
    size_t pos;
    bool full;
};

/* Appends whole pieces only; the first piece that does not fit ends the output, so a
 * replacement is never cut in half. Literal bytes are appended one at a time and trimmed to a
 * UTF-8 boundary at the end. */
static void put(struct sink *s, const char *p, size_t n)
{
    if (s->full)
        return;
    if (s->cap == 0 || s->pos + n > s->cap - 1) {
        s->full = true;
        return;
    }
    memcpy(s->out + s->pos, p, n);
    s->pos += n;
}

static size_t match_uuid(const unsigned char *m, size_t len, size_t i)
{
    static const int groups[5] = {8, 4, 4, 4, 12};
    size_t j = i;
    for (int g = 0; g < 5; g++) {
        for (int k = 0; k < groups[g]; k++, j++) {
            if (j >= len || !is_hex(m[j]))
                return 0;
        }
        if (g < 4) {
            if (j >= len || m[j] != '-')
                return 0;
            j++;
        }
    }
    if (j < len && is_alnum(m[j]))
        return 0;
    return j - i;
}

static size_t match_0x(const unsigned char *m, size_t len, size_t i)
{
    if (i + 2 >= len || m[i] != '0' || (m[i + 1] != 'x' && m[i + 1] != 'X') || !is_hex(m[i + 2]))
        return 0;
    size_t j = i + 2;
    while (j < len && is_hex(m[j]))
        j++;
    return j - i;
}

static size_t match_hex_run(const unsigned char *m, size_t len, size_t i)
{
    size_t j = i;
    bool digit = false, letter = false;
    while (j < len && is_hex(m[j])) {
        if (is_digit(m[j]))
            digit = true;
        else
            letter = true;
        j++;
    }
    if (j - i < 8 || !digit || !letter || (j < len && is_alnum(m[j])))
        return 0;
    return j - i;
}

static size_t match_ipv4(const unsigned char *m, size_t len, size_t i)
{
    size_t j = i;
    for (int octet = 0; octet < 4; octet++) {
        unsigned v = 0;
        size_t start = j;
        while (j < len && is_digit(m[j]) && j - start < 4)
            v = v * 10 + (unsigned)(m[j++] - '0');
        if (j == start || j - start > 3 || v > 255)
            return 0;
        if (octet < 3) {
            if (j >= len || m[j] != '.')
                return 0;
            j++;
        }
    }
    if (j < len && (is_alnum(m[j]) || (m[j] == '.' && j + 1 < len && is_digit(m[j + 1]))))
        return 0;
    return j - i;
}

size_t mutt_template_mask(const char *msg, size_t len, char *out, size_t cap)
{
    const unsigned char *m = (const unsigned char *)msg;
    struct sink s = {out, cap, 0, false};

    if (!msg)
        len = 0;
    for (size_t i = 0; i < len && !s.full;) {
        unsigned char prev = i ? m[i - 1] : ' ';
        size_t n;
        if (!is_alnum(prev)) {
            if ((n = match_uuid(m, len, i))) {
                put(&s, "<uuid>", 6);
                i += n;
                continue;
            }
            if ((n = match_0x(m, len, i)) || (n = match_hex_run(m, len, i))) {
                put(&s, "<hex>", 5);
                i += n;
                continue;
            }
            if (prev != '.' && (n = match_ipv4(m, len, i))) {
                put(&s, "<ip>", 4);
                i += n;
                continue;
            }
        }
        if (is_digit(m[i])) {
            while (i < len && is_digit(m[i]))
                i++;
            put(&s, "<n>", 3);
            continue;
        }
        put(&s, (const char *)&m[i], 1);
        i++;
    }
    if (s.full) {
        /* drop a UTF-8 sequence the cut left incomplete */
        size_t k = s.pos, lead = k;
        while (lead > 0 && ((unsigned char)out[lead - 1] & 0xC0) == 0x80)
            lead--;
        if (lead > 0 && (unsigned char)out[lead - 1] >= 0xC0) {
            unsigned char c = (unsigned char)out[lead - 1];
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (k - (lead - 1) < need)
                s.pos = lead - 1;
        }
    }
    if (cap)
        out[s.pos] = '\0';
    return s.pos;
}

uint64_t mutt_template_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}
