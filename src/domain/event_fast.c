/* Ingest fast path: see include/mutt/event_fast.h. jansson's parser costs about 4 us per
 * 300-byte event (a value at a time through a character stream, one allocation per value) and
 * was two thirds of the ingest stage's CPU in batch mode; most senders post compact JSON that
 * needs no normalisation, and for those the queue text is the input minus whitespace plus the
 * two id fields. This scanner checks exactly the conditions under which that holds and gives up
 * (returns 0) on anything else, so the general path keeps every error message and every rule;
 * tests/unit/test_event_fast.c compares both paths byte for byte. */
#include "mutt/event_fast.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/timefmt.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FAST_MAX_DEPTH 16 /* containers, the event itself included */
#define FAST_MAX_KEYS 64  /* per object: the duplicate check is quadratic */

enum vtype { V_STR, V_INT, V_LIT_NULL, V_LIT_BOOL, V_OBJ, V_ARR };

struct vinfo {
    enum vtype type;
    const char *s;      /* V_STR: raw bytes between the quotes */
    size_t raw_len;
    size_t dec_len;     /* V_STR: decoded length */
    bool escaped;       /* V_STR: held a backslash escape */
    bool nonblank;      /* V_STR: holds a byte that is certainly not isspace() */
    long long ival;     /* V_INT */
};

struct field {
    const char *key;
    size_t klen;
    struct vinfo v;
};

struct scan {
    const char *p;
    size_t len, i;
    struct mutt_event_fast *fp;
    size_t olen;
    bool nomem;
};

static inline bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void skip_ws(struct scan *s)
{
    while (s->i < s->len && is_ws(s->p[s->i]))
        s->i++;
}

/* Output capacity is reserved per event for its whole remaining input, which the compact text
 * can never exceed, so the writers below need no checks. */
static inline void out_put(struct scan *s, const char *src, size_t n)
{
    memcpy(s->fp->buf + s->olen, src, n);
    s->olen += n;
}

static inline void out_char(struct scan *s, char c)
{
    s->fp->buf[s->olen++] = c;
}

/* One UTF-8 sequence starting at p[i] (a byte >= 0x80), checked as strictly as jansson does
 * (no overlongs, no surrogates, nothing above U+10FFFF). Returns its length, 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t len, size_t i)
{
    unsigned char c = p[i];
    size_t n;
    uint32_t cp;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (i + n > len)
        return 0;
    for (size_t k = 1; k < n; k++) {
        unsigned char d = p[i + k];
        if (d < 0x80 || d > 0xBF)
            return 0;
        cp = (cp << 6) | (d & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* A string at p[i] == '"'. Only escapes that mutt_event_dump writes back unchanged pass. */
static bool scan_string(struct scan *s, struct vinfo *v)
{
    const unsigned char *p = (const unsigned char *)s->p;
    size_t i = s->i + 1, start = i, esc = 0;
    bool escaped = false, nonblank = false;

    for (;;) {
#ifdef __SSE2__
        /* 16 bytes at a time up to the first byte that needs a look: < 0x20 or >= 0x80 (one
         * signed compare), '"' or '\\'. This loop was a fifth of the stage's CPU byte by byte. */
        while (i + 16 <= s->len) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            __m128i special = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                           _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                        _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            unsigned mask = (unsigned)_mm_movemask_epi8(special);
            unsigned spaces = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
            if (mask == 0) {
                if (spaces != 0xFFFFu)
                    nonblank = true;
                i += 16;
                continue;
            }
            unsigned k = (unsigned)__builtin_ctz(mask);
            if (~spaces & ((1u << k) - 1u))
                nonblank = true;
            i += k;
            break;
        }
#endif
        if (i >= s->len)
            return false;
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            if (c != ' ')
                nonblank = true;
            i++;
            continue;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            if (i + 1 >= s->len)
                return false;
            switch (p[i + 1]) {
            case '"':
            case '\\':
            case 'b':
                nonblank = true;
                break;
            case 'f':
            case 'n':
            case 'r':
            case 't':
                break;
            default:
                return false; /* \/ and \uXXXX are written back differently */
            }
            escaped = true;
            esc++;
            i += 2;
            continue;
        }
        if (c < 0x20)
            return false; /* invalid JSON: the general path words the error */
        size_t n = utf8_seq(p, s->len, i);
        if (n == 0)
            return false;
        i += n;
    }
    v->type = V_STR;
    v->s = s->p + start;
    v->raw_len = i - start;
    v->dec_len = v->raw_len - esc;
    v->escaped = escaped;
    v->nonblank = nonblank;
    out_put(s, s->p + s->i, i + 1 - s->i);
    s->i = i + 1;
    return true;
}

/* An integer as jansson would print it back: no "-0", no fraction or exponent, <= 18 digits
 * (so it always fits in 64 bits). */
static bool scan_int(struct scan *s, struct vinfo *v)
{
    size_t i = s->i, digits = 0;
    bool neg = false;
    long long val = 0;

    if (s->p[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= s->len || s->p[i] < '0' || s->p[i] > '9')
        return false;
    if (s->p[i] == '0') {
        if (neg)
            return false;
        i++;
        digits = 1;
    } else {
        while (i < s->len && s->p[i] >= '0' && s->p[i] <= '9') {
            if (++digits > 18)
                return false; /* before multiplying: a 19th digit could overflow */
            val = val * 10 + (s->p[i] - '0');
            i++;
        }
    }
    if (i < s->len && (s->p[i] == '.' || s->p[i] == 'e' || s->p[i] == 'E' ||
                       (s->p[i] >= '0' && s->p[i] <= '9')))
        return false;
    v->type = V_INT;
    v->ival = neg ? -val : val;
    out_put(s, s->p + s->i, i - s->i);
    s->i = i;
    return true;
}

static bool scan_literal(struct scan *s, const char *lit, size_t n, enum vtype t, struct vinfo *v)
{
    if (s->len - s->i < n || memcmp(s->p + s->i, lit, n) != 0)
        return false;
    v->type = t;
    out_put(s, lit, n);
    s->i += n;
    return true;
}

static bool scan_object(struct scan *s, size_t depth, struct field *top, size_t *n_top);
static bool scan_value(struct scan *s, size_t depth, struct vinfo *v);

static bool scan_array(struct scan *s, size_t depth)
{
    struct vinfo v;

    if (depth > FAST_MAX_DEPTH)
        return false;
    out_char(s, '[');
    s->i++;
    skip_ws(s);
    if (s->i < s->len && s->p[s->i] == ']') {
        out_char(s, ']');
        s->i++;
        return true;
    }
    for (;;) {
        skip_ws(s);
        if (!scan_value(s, depth, &v))
            return false;
        skip_ws(s);
        if (s->i >= s->len)
            return false;
        if (s->p[s->i] == ']') {
            out_char(s, ']');
            s->i++;
            return true;
        }
        if (s->p[s->i] != ',')
            return false;
        out_char(s, ',');
        s->i++;
    }
}

/* A value at s->i (no leading whitespace); `depth` = containers already open around it. */
static bool scan_value(struct scan *s, size_t depth, struct vinfo *v)
{
    if (s->i >= s->len)
        return false;
    switch (s->p[s->i]) {
    case '"': return scan_string(s, v);
    case '{': v->type = V_OBJ; return scan_object(s, depth + 1, NULL, NULL);
    case '[': v->type = V_ARR; return scan_array(s, depth + 1);
    case 't': return scan_literal(s, "true", 4, V_LIT_BOOL, v);
    case 'f': return scan_literal(s, "false", 5, V_LIT_BOOL, v);
    case 'n': return scan_literal(s, "null", 4, V_LIT_NULL, v);
    default: return scan_int(s, v);
    }
}

/* An object at s->i == '{'. For the event itself `top` collects its fields (FAST_MAX_KEYS). */
static bool scan_object(struct scan *s, size_t depth, struct field *top, size_t *n_top)
{
    struct field local[FAST_MAX_KEYS];
    struct field *f = top ? top : local;
    size_t n = 0;

    if (depth > FAST_MAX_DEPTH)
        return false;
    out_char(s, '{');
    s->i++;
    skip_ws(s);
    if (s->i < s->len && s->p[s->i] == '}') {
        if (top)
            return false; /* an empty event: required fields, let the general path say it */
        out_char(s, '}');
        s->i++;
        return true;
    }
    for (;;) {
        struct vinfo k;
        skip_ws(s);
        if (s->i >= s->len || s->p[s->i] != '"' || n >= FAST_MAX_KEYS)
            return false;
        if (!scan_string(s, &k) || k.escaped)
            return false;
        /* jansson keeps the last of duplicate keys at the first one's place: not a copy */
        for (size_t j = 0; j < n; j++) {
            if (f[j].klen == k.raw_len && memcmp(f[j].key, k.s, k.raw_len) == 0)
                return false;
        }
        f[n].key = k.s;
        f[n].klen = k.raw_len;
        skip_ws(s);
        if (s->i >= s->len || s->p[s->i] != ':')
            return false;
        out_char(s, ':');
        s->i++;
        skip_ws(s);
        if (!scan_value(s, depth, &f[n].v))
            return false;
        n++;
        skip_ws(s);
        if (s->i >= s->len)
            return false;
        if (s->p[s->i] == '}') {
            out_char(s, '}');
            s->i++;
            break;
        }
        if (s->p[s->i] != ',')
            return false;
        out_char(s, ',');
        s->i++;
    }
    if (n_top)
        *n_top = n;
    return true;
}

static const struct vinfo *find(const struct field *f, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++) {
        if (f[i].klen == kl && memcmp(f[i].key, key, kl) == 0)
            return &f[i].v;
    }
    return NULL;
}

static bool nonempty_string(const struct vinfo *v)
{
    return v && v->type == V_STR && v->dec_len > 0;
}

/* True when mutt_event_normalize would accept the event and change nothing. */
static bool needs_nothing(const struct field *f, size_t n, const struct mutt_event_rules *rules)
{
    const struct vinfo *v;

    if (find(f, n, "api_key"))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (f[i].klen > 0 && f[i].key[0] == '_')
            return false; /* D35: stripped and counted by the general path */
    }
    v = find(f, n, "syslog_severity");
    if (v) {
        if (v->type != V_INT || v->ival < 0 || v->ival > 7)
            return false;
    } else if (find(f, n, "severity")) {
        return false;
    }
    v = find(f, n, "hostname");
    if (!nonempty_string(v) || v->dec_len > MUTT_EVENT_HOSTNAME_MAX)
        return false;
    if (!nonempty_string(find(f, n, "message")))
        return false;
    v = find(f, n, "timestamp");
    if (v && v->type != V_LIT_NULL) {
        if (v->type != V_STR || v->escaped || mutt_time_parse_iso8601n(v->s, v->raw_len, NULL) < 0)
            return false;
    }
    for (size_t r = 0; rules && r < rules->n_required; r++) {
        v = find(f, n, rules->required[r]);
        if (!v || v->type != V_STR || !v->nonblank)
            return false;
    }
    return true;
}

static bool reserve_out(struct mutt_event_fast *fp, size_t want)
{
    if (want <= fp->cap)
        return true;
    size_t cap = fp->cap ? fp->cap : 65536;
    while (cap < want)
        cap *= 2;
    char *b = realloc(fp->buf, cap);
    if (!b)
        return false;
    fp->buf = b;
    fp->cap = cap;
    return true;
}

static bool reserve_events(struct mutt_event_fast *fp, size_t want)
{
    if (want <= fp->n_cap)
        return true;
    size_t cap = fp->n_cap ? fp->n_cap : 128;
    while (cap < want)
        cap *= 2;
    size_t *o = realloc(fp->offs, cap * sizeof *o);
    if (o)
        fp->offs = o;
    size_t *l = realloc(fp->lens, cap * sizeof *l);
    if (l)
        fp->lens = l;
    if (!o || !l)
        return false;
    fp->n_cap = cap;
    return true;
}

/* One event at s->i == '{'. Returns 1 (taken), 0 (not fast), MUTT_ENOMEM. */
static int one_event(struct scan *s, size_t max_event_bytes, const struct mutt_event_rules *rules,
                     size_t room)
{
    struct field top[FAST_MAX_KEYS];
    size_t n = 0, start = s->olen;

    if (!reserve_out(s->fp, s->olen + (s->len - s->i) + room) ||
        !reserve_events(s->fp, s->fp->count + 1))
        return MUTT_ENOMEM;
    if (!scan_object(s, 1, top, &n))
        return 0;
    size_t ev_len = s->olen - start;
    if (ev_len > max_event_bytes || !needs_nothing(top, n, rules))
        return 0;
    s->fp->offs[s->fp->count] = start;
    s->fp->lens[s->fp->count] = ev_len - 1; /* the caller writes over the '}' */
    s->fp->count++;
    s->olen = start + ev_len - 1 + room;
    return 1;
}

static long fast_body(const char *body, size_t len, size_t max_events, size_t max_event_bytes,
                      const struct mutt_event_rules *rules, size_t room, struct mutt_event_fast *fp)
{
    struct scan s = {.p = body, .len = body ? len : 0, .fp = fp};
    int rc;

    fp->count = 0;
    if (!body || len > INT_MAX || max_events < 1)
        return 0;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        s.i = 3;
    skip_ws(&s);
    if (s.i >= s.len)
        return 0;
    if (body[s.i] == '{') {
        rc = one_event(&s, max_event_bytes, rules, room);
        if (rc <= 0)
            return rc;
    } else if (body[s.i] == '[') {
        s.i++;
        for (;;) {
            skip_ws(&s);
            if (s.i >= s.len || body[s.i] != '{' || fp->count >= max_events)
                return 0;
            rc = one_event(&s, max_event_bytes, rules, room);
            if (rc <= 0)
                return rc;
            skip_ws(&s);
            if (s.i >= s.len)
                return 0;
            if (body[s.i] == ']') {
                s.i++;
                break;
            }
            if (body[s.i] != ',')
                return 0;
            s.i++;
        }
    } else {
        return 0;
    }
    skip_ws(&s);
    return s.i == s.len ? (long)fp->count : 0;
}

long mutt_event_fast_body(const char *body, size_t len, size_t max_events, size_t max_event_bytes,
                          const struct mutt_event_rules *rules, size_t room,
                          struct mutt_event_fast *fp)
{
    long n = fast_body(body, len, max_events, max_event_bytes, rules, room, fp);
    if (n <= 0)
        fp->count = 0;
    return n;
}

void mutt_event_fast_free(struct mutt_event_fast *fp)
{
    if (!fp)
        return;
    free(fp->buf);
    free(fp->offs);
    free(fp->lens);
    memset(fp, 0, sizeof *fp);
}
