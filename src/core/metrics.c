/* The Prometheus registry: families, labelled children, text exposition 0.0.4 and a validator
 * for that text. Holds no I/O (the /proc collectors live in procstat.c). Loop thread only; the
 * value functions are plain stores so the hot path costs a load and an add. */
#include "mutt/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------------------------------ */
/* Validator: a strict reading of the 0.0.4 text format, so integration tests can assert that
 * /metrics parses the way Prometheus would parse it. */

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

int mutt_metrics_text_validate(const char *text, size_t len, char *err, size_t errlen)
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
