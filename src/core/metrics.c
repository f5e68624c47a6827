/* The Prometheus registry: families, labelled children and text exposition 0.0.4 (the validator
 * the tests use lives in tests/support/metrics_text.c). Holds no I/O (the /proc collectors live in procstat.c). Loop thread only; the
 * value functions are plain stores so the hot path costs a load and an add. */
#include "mutt/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"

const double mutt_metrics_latency_buckets[11] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                 0.25,  0.5,   1,    2.5,   5};
const double mutt_metrics_db_ms_buckets[11] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
const double mutt_metrics_default_buckets[14] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                                 0.5,   0.75, 1,     2.5,  5,     7.5, 10};

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct family;

/* One time series (or, for histograms, one bucket set). The public handle types
 * (struct mutt_counter etc.) are never defined: a handle is a struct child pointer in disguise,
 * so the three kinds cannot be mixed up at compile time but share one implementation. */
struct child {
    struct family *fam;
    char **values;            /* fam->nlabels copied strings; NULL for a family's root */
    double value;             /* counter/gauge value */
    double sum;               /* histogram: sum of observations */
    uint64_t count;           /* histogram: number of observations */
    uint64_t *bucket_counts;  /* histogram: NON-cumulative, nbounds + 1 (last = above all) */
    uint64_t hash;            /* of values, for the child table */
    struct child *next;       /* creation order */
    struct child *hash_next;  /* chain in fam->table */
};

struct family {
    /* First member: a label-less family's handle is &root and root is its only sample.
     * A labelled family's root takes updates silently but is never rendered. */
    struct child root;
    enum metric_type type;
    char *name;
    char *help;
    size_t nlabels;
    char **label_names;
    double *bounds;           /* histogram upper bounds, strictly increasing, finite */
    size_t nbounds;
    mutt_metrics_value_cb *fn; /* callback family: value computed at render */
    void *fn_arg;             /* borrowed */
    struct child *first;      /* labelled children in creation order */
    struct child *last;
    size_t nchildren;
    struct child **table;     /* hash table of children, table_size slots (power of two) */
    size_t table_size;
    struct family *next;      /* registration order */
};

struct mutt_metrics {
    struct family *first;
    struct family *last;
};

/* ------------------------------------------------------------------------------------------ */
/* Names */

static bool is_name_start(char c, bool colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

static bool is_name_char(char c, bool colon_ok)
{
    return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

static bool valid_metric_name(const char *s)
{
    if (!s || !is_name_start(s[0], true))
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!is_name_char(*p, true))
            return false;
    return true;
}

static bool valid_label_name(const char *s)
{
    if (!s || !is_name_start(s[0], false))
        return false;
    if (s[0] == '_' && s[1] == '_') /* reserved for Prometheus internals */
        return false;
    for (const char *p = s + 1; *p; p++)
        if (!is_name_char(*p, false))
            return false;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Families */

static void free_strv(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void child_free_members(struct child *c, size_t nlabels)
{
    free_strv(c->values, nlabels);
    free(c->bucket_counts);
}

/* Accepts a partly built family (every member checked), so every failure path uses it. */
static void family_free(struct family *f)
{
    if (!f)
        return;
    struct child *c = f->first;
    while (c) {
        struct child *next = c->next;
        child_free_members(c, f->nlabels);
        free(c);
        c = next;
    }
    child_free_members(&f->root, f->nlabels);
    free(f->table);
    free(f->name);
    free(f->help);
    free_strv(f->label_names, f->nlabels);
    free(f->bounds);
    free(f);
}

struct mutt_metrics *mutt_metrics_create(void)
{
    return calloc(1, sizeof(struct mutt_metrics));
}

void mutt_metrics_destroy(struct mutt_metrics *m)
{
    if (!m)
        return;
    struct family *f = m->first;
    while (f) {
        struct family *next = f->next;
        family_free(f);
        f = next;
    }
    free(m);
}

static struct family *find_family(struct mutt_metrics *m, const char *name)
{
    for (struct family *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static size_t count_labels(const char *const *label_names)
{
    size_t n = 0;
    while (label_names && label_names[n])
        n++;
    return n;
}

static bool same_labels(const struct family *f, const char *const *label_names, size_t n)
{
    if (f->nlabels != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->label_names[i], label_names[i]) != 0)
            return false;
    return true;
}

/* Trailing +Inf is accepted and dropped: it is always rendered anyway. */
static size_t effective_nbounds(const double *buckets, size_t nbuckets)
{
    if (nbuckets > 0 && isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0)
        nbuckets--;
    return nbuckets;
}

static bool valid_bounds(const double *b, size_t n)
{
    if (n > MUTT_METRICS_MAX_BUCKETS || (n > 0 && !b))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i]))
            return false;
        if (i > 0 && !(b[i] > b[i - 1]))
            return false;
    }
    return true;
}

static struct family *register_family(struct mutt_metrics *m, enum metric_type type, const char *name,
                                      const char *help, const char *const *label_names,
                                      const double *buckets, size_t nbuckets)
{
    if (!m || !valid_metric_name(name))
        return NULL;
    size_t nlabels = count_labels(label_names);
    if (nlabels > MUTT_METRICS_MAX_LABELS)
        return NULL;
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_label_name(label_names[i]))
            return NULL;
        if (type == METRIC_HISTOGRAM && strcmp(label_names[i], "le") == 0)
            return NULL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(label_names[i], label_names[j]) == 0)
                return NULL;
    }
    size_t nbounds = 0;
    if (type == METRIC_HISTOGRAM) {
        nbounds = effective_nbounds(buckets, nbuckets);
        if (!valid_bounds(buckets, nbounds))
            return NULL;
    }

    struct family *existing = find_family(m, name);
    if (existing) {
        if (existing->type != type || existing->fn || !same_labels(existing, label_names, nlabels))
            return NULL;
        if (type == METRIC_HISTOGRAM &&
            (existing->nbounds != nbounds ||
             (nbounds && memcmp(existing->bounds, buckets, nbounds * sizeof(double)) != 0)))
            return NULL;
        return existing;
    }

    struct family *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->root.fam = f;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto fail;
    if (nlabels) {
        f->label_names = calloc(nlabels, sizeof(char *));
        if (!f->label_names)
            goto fail;
        f->nlabels = nlabels;
        for (size_t i = 0; i < nlabels; i++) {
            f->label_names[i] = strdup(label_names[i]);
            if (!f->label_names[i])
                goto fail;
        }
    }
    if (type == METRIC_HISTOGRAM) {
        if (nbounds) {
            f->bounds = malloc(nbounds * sizeof(double));
            if (!f->bounds)
                goto fail;
            memcpy(f->bounds, buckets, nbounds * sizeof(double));
        }
        f->nbounds = nbounds;
        /* The root needs buckets even when labelled, so an observe() on it stays harmless. */
        f->root.bucket_counts = calloc(nbounds + 1, sizeof(uint64_t));
        if (!f->root.bucket_counts)
            goto fail;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;

fail:
    family_free(f);
    return NULL;
}

struct mutt_counter *mutt_metrics_counter(struct mutt_metrics *m, const char *name, const char *help,
                                          const char *const *label_names)
{
    struct family *f = register_family(m, METRIC_COUNTER, name, help, label_names, NULL, 0);
    return f ? (struct mutt_counter *)&f->root : NULL;
}

struct mutt_gauge *mutt_metrics_gauge(struct mutt_metrics *m, const char *name, const char *help,
                                      const char *const *label_names)
{
    struct family *f = register_family(m, METRIC_GAUGE, name, help, label_names, NULL, 0);
    return f ? (struct mutt_gauge *)&f->root : NULL;
}

struct mutt_histogram *mutt_metrics_histogram(struct mutt_metrics *m, const char *name, const char *help,
                                              const char *const *label_names, const double *buckets,
                                              size_t nbuckets)
{
    struct family *f = register_family(m, METRIC_HISTOGRAM, name, help, label_names, buckets, nbuckets);
    return f ? (struct mutt_histogram *)&f->root : NULL;
}

static int register_fn(struct mutt_metrics *m, enum metric_type type, const char *name, const char *help,
                       mutt_metrics_value_cb *fn, void *arg)
{
    if (!m || !fn || !valid_metric_name(name))
        return MUTT_EINVAL;
    if (find_family(m, name))
        return MUTT_EEXIST;
    struct family *f = register_family(m, type, name, help, NULL, NULL, 0);
    if (!f)
        return MUTT_ENOMEM;
    f->fn = fn;
    f->fn_arg = arg;
    return 0;
}

int mutt_metrics_gauge_fn(struct mutt_metrics *m, const char *name, const char *help,
                          mutt_metrics_value_cb *fn, void *arg)
{
    return register_fn(m, METRIC_GAUGE, name, help, fn, arg);
}

int mutt_metrics_counter_fn(struct mutt_metrics *m, const char *name, const char *help,
                            mutt_metrics_value_cb *fn, void *arg)
{
    return register_fn(m, METRIC_COUNTER, name, help, fn, arg);
}

/* ------------------------------------------------------------------------------------------ */
/* Children */

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        const char *s = values[i] ? values[i] : "";
        for (; *s; s++) {
            h ^= (unsigned char)*s;
            h *= 1099511628211ULL;
        }
        h ^= 0xff; /* separator: ("ab","c") and ("a","bc") differ */
        h *= 1099511628211ULL;
    }
    return h;
}

static bool values_equal(const struct child *c, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(c->values[i], values[i] ? values[i] : "") != 0)
            return false;
    return true;
}

static int table_grow(struct family *f)
{
    size_t size = f->table_size ? f->table_size * 2 : 16;
    struct child **table = calloc(size, sizeof(*table));
    if (!table)
        return MUTT_ENOMEM;
    for (struct child *c = f->first; c; c = c->next) {
        size_t slot = c->hash & (size - 1);
        c->hash_next = table[slot];
        table[slot] = c;
    }
    free(f->table);
    f->table = table;
    f->table_size = size;
    return 0;
}

static struct child *child_lookup(struct child *root, const char *const *values)
{
    if (!root)
        return NULL;
    struct family *f = root->fam;
    if (f->nlabels == 0)
        return root;
    if (!values)
        return NULL;
    uint64_t h = hash_values(values, f->nlabels);
    if (f->table_size) {
        for (struct child *c = f->table[h & (f->table_size - 1)]; c; c = c->hash_next)
            if (c->hash == h && values_equal(c, values, f->nlabels))
                return c;
    }
    if (f->nchildren >= MUTT_METRICS_MAX_CHILDREN)
        return NULL;
    if (f->nchildren >= f->table_size && table_grow(f) != 0)
        return NULL;

    struct child *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fam = f;
    c->hash = h;
    c->values = calloc(f->nlabels, sizeof(char *));
    if (!c->values)
        goto fail;
    for (size_t i = 0; i < f->nlabels; i++) {
        c->values[i] = strdup(values[i] ? values[i] : "");
        if (!c->values[i])
            goto fail;
    }
    if (f->type == METRIC_HISTOGRAM) {
        c->bucket_counts = calloc(f->nbounds + 1, sizeof(uint64_t));
        if (!c->bucket_counts)
            goto fail;
    }
    size_t slot = h & (f->table_size - 1);
    c->hash_next = f->table[slot];
    f->table[slot] = c;
    if (f->last)
        f->last->next = c;
    else
        f->first = c;
    f->last = c;
    f->nchildren++;
    return c;

fail:
    child_free_members(c, f->nlabels);
    free(c);
    return NULL;
}

struct mutt_counter *mutt_counter_labels(struct mutt_counter *family, const char *const *values)
{
    return (struct mutt_counter *)child_lookup((struct child *)family, values);
}

struct mutt_gauge *mutt_gauge_labels(struct mutt_gauge *family, const char *const *values)
{
    return (struct mutt_gauge *)child_lookup((struct child *)family, values);
}

struct mutt_histogram *mutt_histogram_labels(struct mutt_histogram *family, const char *const *values)
{
    return (struct mutt_histogram *)child_lookup((struct child *)family, values);
}

/* ------------------------------------------------------------------------------------------ */
/* Values (hot path) */

void mutt_counter_inc(struct mutt_counter *c)
{
    if (c)
        ((struct child *)c)->value += 1;
}

void mutt_counter_add(struct mutt_counter *c, double v)
{
    if (c && v >= 0) /* also false for NaN */
        ((struct child *)c)->value += v;
}

double mutt_counter_value(const struct mutt_counter *c)
{
    return c ? ((const struct child *)c)->value : 0;
}

void mutt_gauge_set(struct mutt_gauge *g, double v)
{
    if (g)
        ((struct child *)g)->value = v;
}

void mutt_gauge_set_from_reply(struct mutt_gauge *g, const struct redisReply *reply, int status)
{
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER)
        mutt_gauge_set(g, (double)reply->integer);
}

void mutt_gauge_set_if_ok(struct mutt_gauge *g, int status, long long depth)
{
    if (status == 0)
        mutt_gauge_set(g, (double)depth);
}

void mutt_gauge_inc(struct mutt_gauge *g)
{
    if (g)
        ((struct child *)g)->value += 1;
}

void mutt_gauge_dec(struct mutt_gauge *g)
{
    if (g)
        ((struct child *)g)->value -= 1;
}

void mutt_gauge_add(struct mutt_gauge *g, double v)
{
    if (g)
        ((struct child *)g)->value += v;
}

double mutt_gauge_value(const struct mutt_gauge *g)
{
    return g ? ((const struct child *)g)->value : 0;
}

void mutt_histogram_observe(struct mutt_histogram *h, double v)
{
    if (!h)
        return;
    struct child *c = (struct child *)h;
    const struct family *f = c->fam;
    size_t i = 0;
    /* Linear: bucket sets are short (<= 14 in practice) and this beats a branchy bisection. */
    while (i < f->nbounds && !(v <= f->bounds[i]))
        i++;
    c->bucket_counts[i]++;
    c->count++;
    c->sum += v;
}

unsigned long long mutt_histogram_count(const struct mutt_histogram *h)
{
    return h ? ((const struct child *)h)->count : 0;
}

double mutt_histogram_sum(const struct mutt_histogram *h)
{
    return h ? ((const struct child *)h)->sum : 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering */

size_t mutt_metrics_format_value(double v, char *buf, size_t buflen)
{
    int n;
    if (isnan(v))
        n = snprintf(buf, buflen, "NaN");
    else if (isinf(v))
        n = snprintf(buf, buflen, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15)
        n = snprintf(buf, buflen, "%.0f", v == 0 ? 0.0 : v); /* no "-0" */
    else {
        /* Shortest of %.15g..%.17g that reads back to the same double: 0.1 stays "0.1". */
        n = 0;
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(buf, buflen, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    if (n < 0)
        n = 0;
    return (size_t)n < buflen ? (size_t)n : buflen - 1;
}

struct outbuf {
    char *p;
    size_t len;
    size_t cap;
    bool oom;
};

static bool out_reserve(struct outbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void out_mem(struct outbuf *b, const char *s, size_t n)
{
    if (!out_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void out_str(struct outbuf *b, const char *s)
{
    out_mem(b, s, strlen(s));
}

static void out_char(struct outbuf *b, char c)
{
    out_mem(b, &c, 1);
}

static void out_value(struct outbuf *b, double v)
{
    char num[64];
    size_t n = mutt_metrics_format_value(v, num, sizeof(num));
    out_mem(b, num, n);
}

static void out_u64(struct outbuf *b, uint64_t v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
    out_mem(b, num, (size_t)n);
}

/* HELP escapes backslash and newline; label values also escape the double quote. */
static void out_escaped(struct outbuf *b, const char *s, bool label_value)
{
    for (; *s; s++) {
        if (*s == '\\')
            out_str(b, "\\\\");
        else if (*s == '\n')
            out_str(b, "\\n");
        else if (*s == '"' && label_value)
            out_str(b, "\\\"");
        else
            out_char(b, *s);
    }
}

/* Writes `{a="x",b="y",le="0.5"}` (or nothing when there is no label at all). */
static void out_labels(struct outbuf *b, const struct family *f, const struct child *c, const char *le)
{
    if (f->nlabels == 0 && !le)
        return;
    out_char(b, '{');
    for (size_t i = 0; i < f->nlabels; i++) {
        if (i)
            out_char(b, ',');
        out_str(b, f->label_names[i]);
        out_str(b, "=\"");
        out_escaped(b, c->values[i], true);
        out_char(b, '"');
    }
    if (le) {
        if (f->nlabels)
            out_char(b, ',');
        out_str(b, "le=\"");
        out_str(b, le);
        out_char(b, '"');
    }
    out_char(b, '}');
}

static void render_child(struct outbuf *b, const struct family *f, const struct child *c)
{
    if (f->type != METRIC_HISTOGRAM) {
        out_str(b, f->name);
        out_labels(b, f, c, NULL);
        out_char(b, ' ');
        out_value(b, f->fn ? f->fn(f->fn_arg) : c->value);
        out_char(b, '\n');
        return;
    }
    uint64_t cumulative = 0;
    char le[64];
    for (size_t i = 0; i <= f->nbounds; i++) {
        cumulative += c->bucket_counts[i];
        if (i < f->nbounds)
            mutt_metrics_format_value(f->bounds[i], le, sizeof(le));
        else
            snprintf(le, sizeof(le), "+Inf");
        out_str(b, f->name);
        out_str(b, "_bucket");
        out_labels(b, f, c, le);
        out_char(b, ' ');
        out_u64(b, cumulative);
        out_char(b, '\n');
    }
    out_str(b, f->name);
    out_str(b, "_sum");
    out_labels(b, f, c, NULL);
    out_char(b, ' ');
    out_value(b, c->sum);
    out_char(b, '\n');
    out_str(b, f->name);
    out_str(b, "_count");
    out_labels(b, f, c, NULL);
    out_char(b, ' ');
    out_u64(b, c->count);
    out_char(b, '\n');
}

static const char *type_name(enum metric_type t)
{
    switch (t) {
    case METRIC_COUNTER:
        return "counter";
    case METRIC_GAUGE:
        return "gauge";
    case METRIC_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

int mutt_metrics_render(struct mutt_metrics *m, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    struct outbuf b = {0};
    if (out_reserve(&b, 0)) /* an empty registry still yields "" rather than NULL */
        b.p[0] = '\0';
    for (const struct family *f = m ? m->first : NULL; f; f = f->next) {
        out_str(&b, "# HELP ");
        out_str(&b, f->name);
        out_char(&b, ' ');
        out_escaped(&b, f->help, false);
        out_str(&b, "\n# TYPE ");
        out_str(&b, f->name);
        out_char(&b, ' ');
        out_str(&b, type_name(f->type));
        out_char(&b, '\n');
        if (f->nlabels == 0)
            render_child(&b, f, &f->root);
        else
            for (const struct child *c = f->first; c; c = c->next)
                render_child(&b, f, c);
    }
    if (b.oom) {
        free(b.p);
        return MUTT_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
