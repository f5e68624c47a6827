/* Test support: a strict reading of the Prometheus 0.0.4 text format, so tests can assert that
 * /metrics parses the way Prometheus would parse it. Test-only: it is not linked into the binary.
 * Pure (no I/O); the tests that use it link it from tests/support/. */
#include "metrics_text.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"

/* The metric and label name grammar (the registry in src/core/metrics.c checks the same). */
static bool is_name_start(char c, bool colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

static bool is_name_char(char c, bool colon_ok)
{
    return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

struct strset_entry {
    struct strset_entry *next;
    size_t line;
    char key[];
};

struct strset {
    struct strset_entry **tab;
    size_t size;  /* power of two */
    size_t count;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->size; i++) {
        struct strset_entry *e = s->tab[i];
        while (e) {
            struct strset_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(s->tab);
}

/* Returns the line of an existing equal key (> 0), 0 when inserted, or MUTT_ENOMEM. */
static long strset_add(struct strset *s, const char *key, size_t klen, size_t line)
{
    if (s->count >= s->size) {
        size_t size = s->size ? s->size * 2 : 64;
        struct strset_entry **tab = calloc(size, sizeof(*tab));
        if (!tab)
            return MUTT_ENOMEM;
        for (size_t i = 0; i < s->size; i++) {
            struct strset_entry *e = s->tab[i];
            while (e) {
                struct strset_entry *next = e->next;
                size_t slot = hash_bytes(e->key, strlen(e->key)) & (size - 1);
                e->next = tab[slot];
                tab[slot] = e;
                e = next;
            }
        }
        free(s->tab);
        s->tab = tab;
        s->size = size;
    }
    size_t slot = hash_bytes(key, klen) & (s->size - 1);
    for (struct strset_entry *e = s->tab[slot]; e; e = e->next)
        if (strlen(e->key) == klen && memcmp(e->key, key, klen) == 0)
            return (long)e->line;
    struct strset_entry *e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        return MUTT_ENOMEM;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    e->line = line;
    e->next = s->tab[slot];
    s->tab[slot] = e;
    s->count++;
    return 0;
}

struct vstate {
    struct strset help_seen;   /* names with a HELP line */
    struct strset type_seen;   /* names with a TYPE line */
    struct strset family_seen; /* families that have had lines (grouping check) */
    struct strset series_seen; /* canonical name{sorted labels} of every sample */
    char family[256];          /* family of the current group */
    char type[16];             /* its TYPE ("" when untyped) */
    bool group_has_samples;    /* the current group already had a sample line */
    char *err;
    size_t errlen;
    size_t line;
};

static int verr(struct vstate *v, const char *fmt, const char *arg)
{
    if (v->err && v->errlen) {
        char msg[200];
        snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
        snprintf(v->err, v->errlen, "line %zu: %s", v->line, msg);
    }
    return MUTT_EINVAL;
}

static size_t scan_name(const char *p, const char *end, bool colon_ok)
{
    size_t n = 0;
    if (p < end && is_name_start(*p, colon_ok))
        n = 1;
    else
        return 0;
    while (p + n < end && is_name_char(p[n], colon_ok))
        n++;
    return n;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool parse_float(const char *p, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (strcmp(tmp, "+Inf") == 0 || strcmp(tmp, "Inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(tmp, "-Inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (strcmp(tmp, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    /* strtod also takes "inf", "nan(...)", hex: Prometheus spells these only as above. */
    for (size_t i = 0; i < n; i++) {
        char c = tmp[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'))
            return false;
    }
    char *endp;
    *out = strtod(tmp, &endp);
    return *endp == '\0';
}

/* Moves to family `name` (the group that the current line belongs to); a family whose lines
 * are split into two groups is an error, as in Prometheus' parser. */
static int enter_family(struct vstate *v, const char *name, size_t n)
{
    if (strlen(v->family) == n && memcmp(v->family, name, n) == 0)
        return 0;
    if (n >= sizeof(v->family))
        return verr(v, "metric name too long", NULL);
    long prev = strset_add(&v->family_seen, name, n, v->line);
    if (prev < 0)
        return (int)prev;
    memcpy(v->family, name, n);
    v->family[n] = '\0';
    if (prev > 0)
        return verr(v, "lines of family %s are not grouped together", v->family);
    v->type[0] = '\0';
    v->group_has_samples = false;
    return 0;
}

static int validate_comment(struct vstate *v, const char *p, const char *end)
{
    p++; /* '#' */
    while (p < end && is_blank(*p))
        p++;
    bool is_help = (size_t)(end - p) >= 4 && memcmp(p, "HELP", 4) == 0 && (p + 4 == end || is_blank(p[4]));
    bool is_type = (size_t)(end - p) >= 4 && memcmp(p, "TYPE", 4) == 0 && (p + 4 == end || is_blank(p[4]));
    if (!is_help && !is_type)
        return 0; /* any other comment is allowed */
    p += 4;
    while (p < end && is_blank(*p))
        p++;
    size_t n = scan_name(p, end, true);
    if (n == 0)
        return verr(v, "%s without a valid metric name", is_help ? "HELP" : "TYPE");
    const char *name = p;
    p += n;
    if (p < end && !is_blank(*p))
        return verr(v, "bad character after metric name in %s", is_help ? "HELP" : "TYPE");
    while (p < end && is_blank(*p))
        p++;
    int rc = enter_family(v, name, n);
    if (rc)
        return rc;
    if (is_help) {
        for (const char *q = p; q < end; q++) {
            if (*q == '\\') {
                if (q + 1 >= end || (q[1] != '\\' && q[1] != 'n'))
                    return verr(v, "bad escape in HELP of %s", v->family);
                q++;
            }
        }
        long prev = strset_add(&v->help_seen, name, n, v->line);
        if (prev < 0)
            return (int)prev;
        if (prev > 0)
            return verr(v, "second HELP for %s", v->family);
        return 0;
    }
    size_t tn = (size_t)(end - p);
    while (tn > 0 && is_blank(p[tn - 1]))
        tn--;
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    bool known = false;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i]) == tn && memcmp(types[i], p, tn) == 0)
            known = true;
    if (!known)
        return verr(v, "unknown TYPE for %s", v->family);
    long prev = strset_add(&v->type_seen, name, n, v->line);
    if (prev < 0)
        return (int)prev;
    if (prev > 0)
        return verr(v, "second TYPE for %s", v->family);
    if (v->group_has_samples)
        return verr(v, "TYPE for %s after its samples", v->family);
    memcpy(v->type, p, tn);
    v->type[tn] = '\0';
    return 0;
}

static bool has_suffix(const char *name, size_t n, const char *base, const char *suffix)
{
    size_t bl = strlen(base), sl = strlen(suffix);
    return n == bl + sl && memcmp(name, base, bl) == 0 && memcmp(name + bl, suffix, sl) == 0;
}

struct label_span {
    const char *name;
    size_t name_len;
    const char *value; /* raw, still escaped */
    size_t value_len;
};

static int cmp_label_span(const void *a, const void *b)
{
    const struct label_span *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

#define VALIDATE_MAX_LABELS 64

static int validate_sample(struct vstate *v, const char *p, const char *end)
{
    size_t n = scan_name(p, end, true);
    if (n == 0)
        return verr(v, "sample does not start with a metric name", NULL);
    const char *name = p;
    p += n;

    struct label_span labels[VALIDATE_MAX_LABELS];
    size_t nlabels = 0;
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            while (p < end && is_blank(*p))
                p++;
            if (p < end && *p == '}') {
                p++;
                break;
            }
            size_t ln = scan_name(p, end, false);
            if (ln == 0)
                return verr(v, "bad label name", NULL);
            if (nlabels == VALIDATE_MAX_LABELS)
                return verr(v, "too many labels", NULL);
            struct label_span *l = &labels[nlabels++];
            l->name = p;
            l->name_len = ln;
            p += ln;
            while (p < end && is_blank(*p))
                p++;
            if (p >= end || *p != '=')
                return verr(v, "label name not followed by '='", NULL);
            p++;
            while (p < end && is_blank(*p))
                p++;
            if (p >= end || *p != '"')
                return verr(v, "label value not quoted", NULL);
            p++;
            l->value = p;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                        return verr(v, "bad escape in label value", NULL);
                    p++;
                }
                p++;
            }
            if (p >= end)
                return verr(v, "unterminated label value", NULL);
            l->value_len = (size_t)(p - l->value);
            p++; /* closing quote */
            while (p < end && is_blank(*p))
                p++;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            return verr(v, "expected ',' or '}' after label value", NULL);
        }
    }
    if (p >= end || !is_blank(*p))
        return verr(v, "no blank between metric and value", NULL);
    while (p < end && is_blank(*p))
        p++;
    const char *val = p;
    while (p < end && !is_blank(*p))
        p++;
    double value;
    if (!parse_float(val, (size_t)(p - val), &value))
        return verr(v, "value is not a number", NULL);
    while (p < end && is_blank(*p))
        p++;
    if (p < end) {
        if (*p == '-')
            p++;
        const char *digits = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == digits)
            return verr(v, "timestamp is not an integer", NULL);
        while (p < end && is_blank(*p))
            p++;
        if (p < end)
            return verr(v, "trailing text after value/timestamp", NULL);
    }

    /* Which family does this sample belong to? */
    const char *fam = v->family;
    bool in_current = false;
    if (strcmp(v->type, "histogram") == 0) {
        in_current = has_suffix(name, n, fam, "_bucket") || has_suffix(name, n, fam, "_sum") ||
                     has_suffix(name, n, fam, "_count");
        if (!in_current && has_suffix(name, n, fam, ""))
            return verr(v, "histogram %s has a sample without _bucket/_sum/_count", fam);
    } else if (strcmp(v->type, "summary") == 0) {
        in_current = has_suffix(name, n, fam, "") || has_suffix(name, n, fam, "_sum") ||
                     has_suffix(name, n, fam, "_count");
    } else {
        in_current = has_suffix(name, n, fam, "");
    }
    if (!in_current) {
        int rc = enter_family(v, name, n);
        if (rc)
            return rc;
    }
    v->group_has_samples = true;

    /* Label names unique; histogram buckets carry a numeric le. */
    qsort(labels, nlabels, sizeof(labels[0]), cmp_label_span);
    bool has_le = false;
    for (size_t i = 0; i < nlabels; i++) {
        if (i > 0 && cmp_label_span(&labels[i - 1], &labels[i]) == 0)
            return verr(v, "duplicate label name", NULL);
        if (labels[i].name_len == 2 && memcmp(labels[i].name, "le", 2) == 0) {
            double le;
            if (!parse_float(labels[i].value, labels[i].value_len, &le))
                return verr(v, "le label is not a number", NULL);
            has_le = true;
        }
    }
    if (strcmp(v->type, "histogram") == 0 && has_suffix(name, n, v->family, "_bucket") && !has_le)
        return verr(v, "histogram bucket without le label", NULL);

    /* Duplicate series: key = name '\0' (label '=' raw value '\0')*, labels sorted. */
    char key[2048];
    size_t kl = 0;
#define KEY_PUT(src, len)                                                                         \
    do {                                                                                          \
        if (kl + (len) + 1 >= sizeof(key))                                                        \
            return 0; /* too long to track: skip the duplicate check for this one line */        \
        memcpy(key + kl, (src), (len));                                                           \
        kl += (len);                                                                              \
    } while (0)
    KEY_PUT(name, n);
    KEY_PUT("\x01", 1);
    for (size_t i = 0; i < nlabels; i++) {
        KEY_PUT(labels[i].name, labels[i].name_len);
        KEY_PUT("=", 1);
        KEY_PUT(labels[i].value, labels[i].value_len);
        KEY_PUT("\x01", 1);
    }
#undef KEY_PUT
    long prev = strset_add(&v->series_seen, key, kl, v->line);
    if (prev < 0)
        return (int)prev;
    if (prev > 0) {
        char first[32];
        snprintf(first, sizeof(first), "%ld", prev);
        return verr(v, "duplicate series (first on line %s)", first);
    }
    return 0;
}

int mutt_test_metrics_text_validate(const char *text, size_t len, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    struct vstate v = {.err = err, .errlen = errlen};
    int rc = 0;
    if (!text && len)
        return verr(&v, "no text", NULL);
    if (len > 0 && text[len - 1] != '\n') {
        v.line = 1;
        for (size_t i = 0; i < len; i++)
            if (text[i] == '\n')
                v.line++;
        return verr(&v, "last line does not end with a newline", NULL);
    }
    const char *p = text, *end = text + len;
    while (p < end && rc == 0) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        v.line++;
        if (memchr(p, '\0', (size_t)(eol - p)))
            rc = verr(&v, "NUL byte in line", NULL);
        else if (eol == p)
            ; /* empty lines are ignored */
        else if (*p == '#')
            rc = validate_comment(&v, p, eol);
        else
            rc = validate_sample(&v, p, eol);
        p = eol + 1;
    }
    strset_free(&v.help_seen);
    strset_free(&v.type_seen);
    strset_free(&v.family_seen);
    strset_free(&v.series_seen);
    if (rc == MUTT_ENOMEM)
        return verr(&v, "out of memory", NULL);
    return rc;
}
