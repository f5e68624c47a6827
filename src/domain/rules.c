/* Alert rules: validation, compilation and indexed first-match (CONTRACT §4, D13, W25).
 * Owns the compiled ruleset and its indexes; does no I/O and no logging. A ruleset is read-only
 * once built; matching state lives in the caller's scratch (loop thread only).
 *
 * Index layout. Every rule gets a rank = its position in (priority, id) order, and the answer is
 * the matching rule of lowest rank, exactly as a linear scan would find it. Rules are split by
 * the cheapest criterion that must hold:
 *  - rules with a trap_oid sit in an OID hash keyed by the normalised prefix; an event probes
 *    each of its dot-boundary prefixes (about a dozen probes);
 *  - other `contains` rules sit in n-gram tables: each lower-cased needle is filed under one of
 *    its 4-byte grams (the rarest among all needles; needles shorter than 4 under themselves).
 *    The event is scanned once; each position probes a small bitmap, then the table; a hit gives
 *    the needle's offset, so verifying is one compare, not a search;
 *  - other regex rules are filed the same way under a literal every match must contain (found by
 *    a conservative look at the pattern), or, when none is found, on an "always" list that is
 *    evaluated in rank order only while a rule there could still beat the best found so far.
 * Every candidate is still checked against all its criteria, so the index only has to find a
 * superset of the matching rules. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "mutt/rules.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"

#define PCRE2_FLAGS (PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS)
#define NO_RANK UINT32_MAX
#define FAILED_CACHE 32 /* regex ranks remembered as failed within one event */
#define DEFER_CAP 64    /* regex candidates collected during the scan, evaluated after it */

/* ASCII-only lower-casing table (D13: other bytes compare exactly). */
static unsigned char lower_tab[256];
static bool lower_tab_ready;

static void init_lower_tab(void)
{
    if (lower_tab_ready)
        return;
    for (int c = 0; c < 256; c++)
        lower_tab[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    lower_tab_ready = true;
}

/* ======================================================================================
 * Types
 * ====================================================================================== */

struct crule {
    struct mutt_rule r;   /* owned copies of the strings; r.match_string/trap_oid NULL if unset */
    const char *oid;      /* normalised OID prefix (into oid_buf), NULL when unset */
    size_t oid_len;
    char *oid_buf;
    char *needle;         /* lower-cased contains string, or a regex's required literal */
    size_t needle_len;
    size_t str_len;       /* strlen(match_string) */
    pcre2_code *re;       /* regex rules only */
    bool needle_has_ks;   /* regex literal holds k/s: Unicode caseless may match non-ASCII forms */
};

struct gram_entry {
    uint32_t rank;
    uint32_t off; /* where the gram starts in the needle */
};

struct gram_slot {
    uint32_t key;
    uint32_t start; /* first entry */
    uint32_t count; /* 0 = empty slot */
};

struct gram_table {
    struct gram_slot *slots;
    uint32_t mask;
    struct gram_entry *entries; /* grouped by key, rank ascending within a key */
    uint64_t *bloom;            /* 65536 bits: a clear bit proves the key is absent */
    size_t n_entries;
};

struct oid_slot {
    uint64_t hash;
    const char *key; /* borrowed from the first rule of the group */
    size_t key_len;
    uint32_t start;
    uint32_t count; /* 0 = empty */
};

struct mutt_ruleset {
    struct crule *rules; /* in rank order */
    size_t n;
    struct gram_table grams[5]; /* index = gram length 1..4 */
    int active_lens[4];
    int n_active_lens;
    struct oid_slot *oid_slots;
    uint32_t oid_mask;
    uint32_t *oid_entries;
    uint32_t *always; /* regex ranks without literal and without OID, ascending */
    size_t n_always;
    uint32_t *ks; /* regex ranks whose literal holds k or s (checked for non-ASCII events) */
    size_t n_ks;
};

struct mutt_match_scratch {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    uint64_t limit_hits;
    uint32_t failed[FAILED_CACHE];
    unsigned n_failed;
    uint32_t deferred[DEFER_CAP]; /* regex ranks whose literal was seen, not yet evaluated */
    unsigned n_deferred;
};

/* ======================================================================================
 * Small helpers
 * ====================================================================================== */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_set(const char *s)
{
    return s && *s;
}

static uint64_t fnv1a_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

static uint32_t gram_hash(uint32_t key)
{
    uint32_t h = key ^ (key >> 15);
    h *= 0x2c1b3c6dU;
    h ^= h >> 12;
    h *= 0x297a2d39U;
    return h ^ (h >> 15);
}

static uint32_t bloom_bit(uint32_t key)
{
    return (key * 0x9e3779b1U) >> 16;
}

/* Normalised OID prefix of a rule: leading '.' and trailing ".*" dropped. Components must be
 * non-empty; returns false otherwise. */
static bool normalise_rule_oid(const char *oid, const char **out, size_t *out_len)
{
    const char *a = oid;
    size_t n;

    if (*a == '.')
        a++;
    n = strlen(a);
    if (n >= 2 && a[n - 2] == '.' && a[n - 1] == '*')
        n -= 2;
    if (n == 0)
        return false;
    if (a[0] == '.' || a[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == '*' || a[i] == ' ' || (a[i] == '.' && a[i + 1] == '.'))
            return false;
    }
    *out = a;
    *out_len = n;
    return true;
}

/* Does the event OID (leading '.' already dropped) start with the rule prefix on a dot boundary? */
static bool oid_prefix_holds(const struct crule *c, const char *eoid, size_t elen)
{
    return elen >= c->oid_len && memcmp(eoid, c->oid, c->oid_len) == 0 &&
           (elen == c->oid_len || eoid[c->oid_len] == '.');
}

/* ASCII case-insensitive search of a lower-cased needle. */
static bool ci_contains(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0)
        return true;
    if (nlen > hlen)
        return false;
    const unsigned char *h = (const unsigned char *)hay;
    const unsigned char *nd = (const unsigned char *)needle;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        if (lower_tab[h[i]] != nd[0])
            continue;
        size_t j = 1;
        while (j < nlen && lower_tab[h[i + j]] == nd[j])
            j++;
        if (j == nlen)
            return true;
    }
    return false;
}

static bool ci_equal_at(const unsigned char *h, const char *needle, size_t nlen)
{
    const unsigned char *nd = (const unsigned char *)needle;
    for (size_t j = 0; j < nlen; j++) {
        if (lower_tab[h[j]] != nd[j])
            return false;
    }
    return true;
}

/* ======================================================================================
 * Match types and validation
 * ====================================================================================== */

int mutt_rules_match_type_parse(const char *name, enum mutt_match_type *out)
{
    if (!name || !out)
        return MUTT_EINVAL;
    if (strcmp(name, "contains") == 0)
        *out = MUTT_MATCH_CONTAINS;
    else if (strcmp(name, "regex") == 0)
        *out = MUTT_MATCH_REGEX;
    else if (strcmp(name, "oid_prefix") == 0)
        *out = MUTT_MATCH_OID_PREFIX;
    else
        return MUTT_EINVAL;
    return 0;
}

const char *mutt_rules_match_type_name(enum mutt_match_type t)
{
    switch (t) {
    case MUTT_MATCH_REGEX:
        return "regex";
    case MUTT_MATCH_OID_PREFIX:
        return "oid_prefix";
    case MUTT_MATCH_CONTAINS:
    default:
        return "contains";
    }
}

static pcre2_code *compile_regex(const char *pattern, char *err, size_t errlen)
{
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_FLAGS,
                                   &errcode, &erroff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(errcode, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", errcode);
        set_err(err, errlen, "invalid regex at offset %zu: %s", (size_t)erroff, (char *)msg);
    }
    return re;
}

int mutt_rules_validate_regex(const char *pattern, char *err, size_t errlen)
{
    if (!pattern) {
        set_err(err, errlen, "regex missing");
        return MUTT_EINVAL;
    }
    pcre2_code *re = compile_regex(pattern, err, errlen);
    if (!re)
        return MUTT_EINVAL;
    pcre2_code_free(re);
    return 0;
}

/* Everything but the regex compile; shared by validate and compile. */
static int validate_shape(const struct mutt_rule *r, char *err, size_t errlen)
{
    const char *o;
    size_t ol;

    if (r->match_type != MUTT_MATCH_CONTAINS && r->match_type != MUTT_MATCH_REGEX &&
        r->match_type != MUTT_MATCH_OID_PREFIX) {
        set_err(err, errlen, "rule %lld: unknown match_type", (long long)r->id);
        return MUTT_EINVAL;
    }
    if (!is_set(r->match_string) && !is_set(r->trap_oid)) {
        set_err(err, errlen, "rule %lld: needs match_string or trap_oid", (long long)r->id);
        return MUTT_EINVAL;
    }
    if (r->match_type == MUTT_MATCH_OID_PREFIX) {
        if (!is_set(r->trap_oid)) {
            set_err(err, errlen, "rule %lld: oid_prefix needs trap_oid", (long long)r->id);
            return MUTT_EINVAL;
        }
        if (is_set(r->match_string)) {
            set_err(err, errlen, "rule %lld: oid_prefix takes no match_string", (long long)r->id);
            return MUTT_EINVAL;
        }
    }
    if (is_set(r->trap_oid) && !normalise_rule_oid(r->trap_oid, &o, &ol)) {
        set_err(err, errlen, "rule %lld: trap_oid is not a dotted OID prefix", (long long)r->id);
        return MUTT_EINVAL;
    }
    if (r->syslog_severity < -1 || r->syslog_severity > 7) {
        set_err(err, errlen, "rule %lld: syslog_severity must be 0..7", (long long)r->id);
        return MUTT_EINVAL;
    }
    return 0;
}

int mutt_rules_validate(const struct mutt_rule *rule, char *err, size_t errlen)
{
    if (!rule) {
        set_err(err, errlen, "rule missing");
        return MUTT_EINVAL;
    }
    int rc = validate_shape(rule, err, errlen);
    if (rc)
        return rc;
    if (rule->match_type == MUTT_MATCH_REGEX && is_set(rule->match_string)) {
        char msg[200];
        if (mutt_rules_validate_regex(rule->match_string, msg, sizeof msg)) {
            set_err(err, errlen, "rule %lld: %s", (long long)rule->id, msg);
            return MUTT_EINVAL;
        }
    }
    return 0;
}

/* ======================================================================================
 * Required literal of a regex
 * ====================================================================================== */

static bool is_plain_literal(unsigned char c)
{
    if (c < 0x20 || c > 0x7e)
        return false; /* non-ASCII: Unicode caseless folding is not byte-wise */
    return !strchr("\\^$.[]|()?*+{}", c);
}

/* The index just past the character class that starts at p[i] ('['), or 0 when the class
 * never closes or holds \\Q/\\E (the literal scan stops there). */
static size_t skip_class(const char *p, size_t i)
{
    size_t j = i + 1;
    if (p[j] == '^')
        j++;
    if (p[j] == ']')
        j++;
    while (p[j] && p[j] != ']') {
        if (p[j] == '\\' && p[j + 1]) {
            if (p[j + 1] == 'Q' || p[j + 1] == 'E')
                return 0;
            j += 2;
        } else if (p[j] == '[' && p[j + 1] == ':') {
            const char *e = strstr(p + j + 2, ":]");
            j = e ? (size_t)(e - p) + 2 : j + 1;
        } else {
            j++;
        }
    }
    return p[j] ? j + 1 : 0;
}

/* Finds the longest run of literal bytes that every match of `p` must contain (as an ASCII
 * case-insensitive substring, since the regex is caseless). Conservative: anything not fully
 * understood ends the run, and constructs that could change the meaning of what follows (inline
 * options, verbs, \Q..\E, unusual escapes) stop the scan or drop the literal altogether. Only
 * top-level (depth 0) text counts; a top-level alternation means no literal. Writes the
 * lower-cased literal to out (cap >= strlen(p)+1) and returns its length (0 = none). */
static size_t regex_literal(const char *p, char *out)
{
    size_t best = 0, run = 0;
    char *cur = out + strlen(p) + 1; /* scratch half of out */
    int depth = 0;

    if (strstr(p, "(?") || strstr(p, "(*"))
        return 0; /* inline options (?x), (?-i), lookarounds, verbs: too many meanings */

#define END_RUN()                                                                            \
    do {                                                                                     \
        if (run > best) {                                                                    \
            memcpy(out, cur, run);                                                           \
            best = run;                                                                      \
        }                                                                                    \
        run = 0;                                                                             \
    } while (0)

    for (size_t i = 0; p[i];) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\') {
            unsigned char n = (unsigned char)p[i + 1];
            if (n && n < 0x80 && !((n >= '0' && n <= '9') || (n >= 'a' && n <= 'z') ||
                                    (n >= 'A' && n <= 'Z'))) {
                /* escaped punctuation is that literal character */
                if (depth == 0 && n >= 0x20 && n <= 0x7e) {
                    /* a quantifier after it is handled on the next iteration */
                    cur[run++] = (char)lower_tab[n];
                } else {
                    END_RUN();
                }
                i += 2;
                continue;
            }
            if (n && strchr("dDwWsShHvVRbBAzZGX", n)) {
                END_RUN();
                i += 2;
                continue;
            }
            break; /* \x, \p, \Q, back references...: stop here */
        }
        if (c == '[') {
            END_RUN();
            i = skip_class(p, i);
            if (i == 0)
                goto done;
            continue;
        }
        if (c == '(') {
            END_RUN();
            depth++;
            i++;
            continue;
        }
        if (c == ')') {
            END_RUN();
            depth--;
            i++;
            continue;
        }
        if (c == '|') {
            if (depth == 0)
                return 0;
            i++;
            continue;
        }
        if (c == '?' || c == '*') {
            if (run)
                run--; /* the previous character was optional */
            END_RUN();
            i++;
            continue;
        }
        if (c == '{') {
            if (run)
                run--;
            END_RUN();
            goto done; /* quantifier or literal brace: do not guess */
        }
        if (c == '+') {
            END_RUN(); /* the previous character occurs at least once: keep it */
            i++;
            continue;
        }
        if (depth == 0 && is_plain_literal(c)) {
            cur[run++] = (char)lower_tab[c];
        } else {
            END_RUN();
        }
        i++;
    }
done:
    END_RUN();
#undef END_RUN
    return best;
}

/* ======================================================================================
 * Compile
 * ====================================================================================== */

static void crule_dispose(struct crule *c)
{
    free((char *)c->r.match_string);
    free((char *)c->r.trap_oid);
    free((char *)c->r.prod_handling);
    free((char *)c->r.dev_handling);
    free((char *)c->r.team_assignment);
    free(c->oid_buf);
    free(c->needle);
    if (c->re)
        pcre2_code_free(c->re);
}

void mutt_rules_destroy(struct mutt_ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++)
        crule_dispose(&rs->rules[i]);
    free(rs->rules);
    for (int l = 1; l <= 4; l++) {
        free(rs->grams[l].slots);
        free(rs->grams[l].entries);
        free(rs->grams[l].bloom);
    }
    free(rs->oid_slots);
    free(rs->oid_entries);
    free(rs->always);
    free(rs->ks);
    free(rs);
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

static int cmp_rule_order(const void *a, const void *b)
{
    const struct mutt_rule *x = *(const struct mutt_rule *const *)a;
    const struct mutt_rule *y = *(const struct mutt_rule *const *)b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x < y ? -1 : x > y; /* duplicate ids keep input order */
}

static uint32_t pow2_at_least(size_t n)
{
    uint32_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

/* ---- gram tables ---- */

struct gram_tuple {
    uint32_t key;
    uint32_t rank;
    uint32_t off;
};

static int cmp_gram_tuple(const void *a, const void *b)
{
    const struct gram_tuple *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return 0;
}

static uint32_t pack_gram(const char *s, int len)
{
    uint32_t k = 0;
    for (int i = 0; i < len; i++)
        k = (k << 8) | (unsigned char)s[i];
    return k;
}

static int gram_table_build(struct gram_table *t, struct gram_tuple *tup, size_t n)
{
    if (n == 0)
        return 0;
    qsort(tup, n, sizeof *tup, cmp_gram_tuple);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += i == 0 || tup[i].key != tup[i - 1].key;
    uint32_t cap = pow2_at_least(distinct * 2);
    t->slots = calloc(cap, sizeof *t->slots);
    t->entries = malloc(n * sizeof *t->entries);
    t->bloom = calloc(65536 / 64, sizeof *t->bloom);
    if (!t->slots || !t->entries || !t->bloom)
        return MUTT_ENOMEM;
    t->mask = cap - 1;
    t->n_entries = n;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && tup[j].key == tup[i].key) {
            t->entries[j].rank = tup[j].rank;
            t->entries[j].off = tup[j].off;
            j++;
        }
        uint32_t h = gram_hash(tup[i].key) & t->mask;
        while (t->slots[h].count)
            h = (h + 1) & t->mask;
        t->slots[h].key = tup[i].key;
        t->slots[h].start = (uint32_t)i;
        t->slots[h].count = (uint32_t)(j - i);
        uint32_t b = bloom_bit(tup[i].key);
        t->bloom[b >> 6] |= 1ULL << (b & 63);
        i = j;
    }
    return 0;
}

/* Counting map for choosing the rarest gram: open addressing, keys are 4-byte grams. */
struct gram_count {
    uint32_t *keys;
    uint32_t *counts; /* 0 = empty */
    uint32_t mask;
};

static uint32_t *gram_count_slot(struct gram_count *gc, uint32_t key)
{
    uint32_t h = gram_hash(key) & gc->mask;
    while (gc->counts[h] && gc->keys[h] != key)
        h = (h + 1) & gc->mask;
    gc->keys[h] = key;
    return &gc->counts[h];
}

static int build_gram_index(struct mutt_ruleset *rs)
{
    size_t n4 = 0, total = 0;
    struct gram_tuple *tup[5] = {0};
    size_t nt[5] = {0};
    struct gram_count gc = {0};
    int rc = MUTT_ENOMEM;

    for (size_t i = 0; i < rs->n; i++) {
        const struct crule *c = &rs->rules[i];
        if (c->oid || !c->needle_len)
            continue;
        total++;
        if (c->needle_len >= 4)
            n4 += c->needle_len - 3;
    }
    if (total == 0)
        return 0;
    for (int l = 1; l <= 4; l++) {
        tup[l] = malloc(total * sizeof *tup[l]);
        if (!tup[l])
            goto out;
    }
    uint32_t cap = pow2_at_least(n4 * 2 + 2);
    gc.keys = malloc(cap * sizeof *gc.keys);
    gc.counts = calloc(cap, sizeof *gc.counts);
    if (!gc.keys || !gc.counts)
        goto out;
    gc.mask = cap - 1;
    /* pass 1: how many needles share each gram (a needle's repeated gram counts each time;
     * close enough for choosing) */
    for (size_t i = 0; i < rs->n; i++) {
        const struct crule *c = &rs->rules[i];
        if (c->oid || c->needle_len < 4)
            continue;
        for (size_t o = 0; o + 4 <= c->needle_len; o++)
            (*gram_count_slot(&gc, pack_gram(c->needle + o, 4)))++;
    }
    /* pass 2: file each needle under its rarest gram */
    for (size_t i = 0; i < rs->n; i++) {
        const struct crule *c = &rs->rules[i];
        if (c->oid || !c->needle_len)
            continue;
        if (c->needle_len < 4) {
            int l = (int)c->needle_len;
            tup[l][nt[l]++] = (struct gram_tuple){pack_gram(c->needle, l), (uint32_t)i, 0};
            continue;
        }
        uint32_t best_cnt = UINT32_MAX, best_off = 0;
        for (size_t o = 0; o + 4 <= c->needle_len; o++) {
            uint32_t cnt = *gram_count_slot(&gc, pack_gram(c->needle + o, 4));
            if (cnt < best_cnt) {
                best_cnt = cnt;
                best_off = (uint32_t)o;
            }
        }
        tup[4][nt[4]++] =
            (struct gram_tuple){pack_gram(c->needle + best_off, 4), (uint32_t)i, best_off};
    }
    for (int l = 1; l <= 4; l++) {
        if (gram_table_build(&rs->grams[l], tup[l], nt[l]))
            goto out;
        if (nt[l])
            rs->active_lens[rs->n_active_lens++] = l;
    }
    rc = 0;
out:
    for (int l = 1; l <= 4; l++)
        free(tup[l]);
    free(gc.keys);
    free(gc.counts);
    return rc;
}

/* ---- OID hash ---- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = fnv1a_step(h, (unsigned char)s[i]);
    return h;
}

struct oid_tuple {
    const char *oid;
    size_t len;
    uint32_t rank;
};

static int cmp_oid_tuple(const void *a, const void *b)
{
    const struct oid_tuple *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->oid, y->oid, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int build_oid_index(struct mutt_ruleset *rs)
{
    size_t n = 0, distinct = 0;
    struct oid_tuple *tup;

    for (size_t i = 0; i < rs->n; i++)
        n += rs->rules[i].oid != NULL;
    if (n == 0)
        return 0;
    tup = malloc(n * sizeof *tup);
    rs->oid_entries = malloc(n * sizeof *rs->oid_entries);
    if (!tup || !rs->oid_entries)
        goto nomem;
    n = 0;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->rules[i].oid)
            tup[n++] = (struct oid_tuple){rs->rules[i].oid, rs->rules[i].oid_len, (uint32_t)i};
    }
    qsort(tup, n, sizeof *tup, cmp_oid_tuple);
    for (size_t i = 0; i < n; i++) {
        rs->oid_entries[i] = tup[i].rank;
        distinct += i == 0 || tup[i].len != tup[i - 1].len ||
                    memcmp(tup[i].oid, tup[i - 1].oid, tup[i].len) != 0;
    }
    uint32_t cap = pow2_at_least(distinct * 2);
    rs->oid_slots = calloc(cap, sizeof *rs->oid_slots);
    if (!rs->oid_slots)
        goto nomem;
    rs->oid_mask = cap - 1;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && tup[j].len == tup[i].len && memcmp(tup[i].oid, tup[j].oid, tup[i].len) == 0)
            j++;
        uint64_t h = hash_bytes(tup[i].oid, tup[i].len);
        uint32_t s = (uint32_t)h & rs->oid_mask;
        while (rs->oid_slots[s].count)
            s = (s + 1) & rs->oid_mask;
        rs->oid_slots[s] = (struct oid_slot){h, tup[i].oid, tup[i].len, (uint32_t)i, (uint32_t)(j - i)};
        i = j;
    }
    free(tup);
    return 0;
nomem:
    free(tup);
    return MUTT_ENOMEM;
}

static int build_regex_lists(struct mutt_ruleset *rs)
{
    size_t na = 0, nk = 0;
    for (size_t i = 0; i < rs->n; i++) {
        const struct crule *c = &rs->rules[i];
        if (!c->re || c->oid)
            continue;
        na += c->needle_len == 0;
        nk += c->needle_has_ks;
    }
    if (na && !(rs->always = malloc(na * sizeof *rs->always)))
        return MUTT_ENOMEM;
    if (nk && !(rs->ks = malloc(nk * sizeof *rs->ks)))
        return MUTT_ENOMEM;
    for (size_t i = 0; i < rs->n; i++) {
        const struct crule *c = &rs->rules[i];
        if (!c->re || c->oid)
            continue;
        if (c->needle_len == 0)
            rs->always[rs->n_always++] = (uint32_t)i;
        if (c->needle_has_ks)
            rs->ks[rs->n_ks++] = (uint32_t)i;
    }
    return 0;
}

static int crule_init(struct crule *c, const struct mutt_rule *src, char *err, size_t errlen)
{
    bool oom = false;
    int rc = validate_shape(src, err, errlen);
    if (rc)
        return rc;

    c->r = *src;
    c->r.match_string = is_set(src->match_string) ? dup_or_null(src->match_string, &oom) : NULL;
    c->r.trap_oid = is_set(src->trap_oid) ? dup_or_null(src->trap_oid, &oom) : NULL;
    c->r.prod_handling = dup_or_null(src->prod_handling, &oom);
    c->r.dev_handling = dup_or_null(src->dev_handling, &oom);
    c->r.team_assignment = dup_or_null(src->team_assignment, &oom);
    if (oom)
        goto nomem;
    if (c->r.trap_oid) {
        const char *o;
        size_t ol;
        normalise_rule_oid(c->r.trap_oid, &o, &ol); /* checked by validate_shape */
        c->oid_buf = malloc(ol + 1);
        if (!c->oid_buf)
            goto nomem;
        memcpy(c->oid_buf, o, ol);
        c->oid_buf[ol] = '\0';
        c->oid = c->oid_buf;
        c->oid_len = ol;
    }
    if (c->r.match_string) {
        size_t n = strlen(c->r.match_string);
        c->str_len = n;
        if (c->r.match_type == MUTT_MATCH_REGEX) {
            char msg[200];
            c->re = compile_regex(c->r.match_string, msg, sizeof msg);
            if (!c->re) {
                set_err(err, errlen, "rule %lld: %s", (long long)src->id, msg);
                return MUTT_EINVAL;
            }
            (void)pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE); /* interpreter if no JIT */
            c->needle = malloc(2 * n + 2);
            if (!c->needle)
                goto nomem;
            c->needle_len = regex_literal(c->r.match_string, c->needle);
            for (size_t i = 0; i < c->needle_len; i++)
                c->needle_has_ks |= c->needle[i] == 'k' || c->needle[i] == 's';
        } else {
            c->needle = malloc(n + 1);
            if (!c->needle)
                goto nomem;
            for (size_t i = 0; i <= n; i++)
                c->needle[i] = (char)lower_tab[(unsigned char)c->r.match_string[i]];
            c->needle_len = n;
        }
    }
    return 0;
nomem:
    set_err(err, errlen, "out of memory");
    return MUTT_ENOMEM;
}

struct mutt_ruleset *mutt_rules_compile(const struct mutt_rule *rules, size_t n, char *err,
                                        size_t errlen)
{
    struct mutt_ruleset *rs = NULL;
    const struct mutt_rule **order = NULL;
    size_t na = 0;

    init_lower_tab();
    if (n && !rules) {
        set_err(err, errlen, "rules missing");
        return NULL;
    }
    rs = calloc(1, sizeof *rs);
    order = malloc((n ? n : 1) * sizeof *order);
    if (!rs || !order)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        if (rules[i].is_active)
            order[na++] = &rules[i];
    }
    if (na > UINT32_MAX - 1) {
        set_err(err, errlen, "too many rules");
        goto fail;
    }
    qsort(order, na, sizeof *order, cmp_rule_order);
    rs->rules = calloc(na ? na : 1, sizeof *rs->rules);
    if (!rs->rules)
        goto nomem;
    for (size_t i = 0; i < na; i++) {
        rs->n = i + 1; /* so destroy frees the partly built rule too */
        if (crule_init(&rs->rules[i], order[i], err, errlen))
            goto fail;
    }
    rs->n = na;
    if (build_oid_index(rs) || build_gram_index(rs) || build_regex_lists(rs))
        goto nomem;
    free(order);
    return rs;
nomem:
    set_err(err, errlen, "out of memory");
fail:
    free(order);
    mutt_rules_destroy(rs);
    return NULL;
}

size_t mutt_rules_count(const struct mutt_ruleset *rs)
{
    return rs ? rs->n : 0;
}

const struct mutt_rule *mutt_rules_at(const struct mutt_ruleset *rs, size_t i)
{
    return rs && i < rs->n ? &rs->rules[i].r : NULL;
}

/* ======================================================================================
 * Scratch
 * ====================================================================================== */

struct mutt_match_scratch *mutt_match_scratch_create(void)
{
    struct mutt_match_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    init_lower_tab();
    /* one ovector pair: we only ask "is there a match" (rc 0 = matched, ovector too small) */
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->md || !s->mctx) {
        mutt_match_scratch_destroy(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, MUTT_RULES_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, MUTT_RULES_DEPTH_LIMIT);
    return s;
}

void mutt_match_scratch_destroy(struct mutt_match_scratch *s)
{
    if (!s)
        return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    free(s);
}

int mutt_match_scratch_set_limits(struct mutt_match_scratch *s, uint32_t match_limit,
                                  uint32_t depth_limit)
{
    if (!s)
        return MUTT_EINVAL;
    if (match_limit)
        pcre2_set_match_limit(s->mctx, match_limit);
    if (depth_limit)
        pcre2_set_depth_limit(s->mctx, depth_limit);
    return 0;
}

uint64_t mutt_match_scratch_regex_limit_hits(const struct mutt_match_scratch *s)
{
    return s ? s->limit_hits : 0;
}

/* ======================================================================================
 * Matching
 * ====================================================================================== */

struct event_view {
    const char *msg;
    size_t len;
    const char *oid; /* leading '.' dropped; NULL when the event has none */
    size_t oid_len;
    int severity;
};

static bool regex_holds(const struct crule *c, const struct event_view *ev,
                        struct mutt_match_scratch *s)
{
    int rc = pcre2_match(c->re, (PCRE2_SPTR)ev->msg, ev->len, 0, 0, s->md, s->mctx);
    if (rc >= 0)
        return true;
    switch (rc) {
    case PCRE2_ERROR_MATCHLIMIT:
    case PCRE2_ERROR_DEPTHLIMIT:
    case PCRE2_ERROR_HEAPLIMIT:
    case PCRE2_ERROR_JIT_STACKLIMIT:
        s->limit_hits++;
        return false;
    default:
        return false; /* no match, or a subject that is not valid UTF-8 */
    }
}

/* Every criterion the rule sets, cheapest first. `string_known` skips the string check when the
 * caller has already verified a contains needle at a known position. */
static bool rule_holds(const struct crule *c, const struct event_view *ev,
                       struct mutt_match_scratch *s, bool string_known)
{
    if (c->r.syslog_severity >= 0 && c->r.syslog_severity != ev->severity)
        return false;
    if (c->oid && !(ev->oid && oid_prefix_holds(c, ev->oid, ev->oid_len)))
        return false;
    if (!c->r.match_string || string_known)
        return true;
    if (c->re)
        return regex_holds(c, ev, s);
    return ci_contains(ev->msg, ev->len, c->needle, c->needle_len);
}

static void view_init(struct event_view *ev, const char *message, size_t len,
                      const char *trap_oid, int severity)
{
    ev->msg = message ? message : "";
    ev->len = message ? len : 0;
    ev->oid = NULL;
    ev->oid_len = 0;
    if (trap_oid && *trap_oid) {
        ev->oid = trap_oid[0] == '.' ? trap_oid + 1 : trap_oid;
        ev->oid_len = strlen(ev->oid);
    }
    ev->severity = severity;
}

const struct mutt_rule *mutt_rules_first_match_linear(const struct mutt_ruleset *rs,
                                                      const char *message, size_t len,
                                                      const char *trap_oid, int severity,
                                                      struct mutt_match_scratch *scratch)
{
    struct event_view ev;

    if (!rs || !scratch)
        return NULL;
    view_init(&ev, message, len, trap_oid, severity);
    for (size_t i = 0; i < rs->n; i++) {
        if (rule_holds(&rs->rules[i], &ev, scratch, false))
            return &rs->rules[i].r;
    }
    return NULL;
}

static bool failed_before(const struct mutt_match_scratch *s, uint32_t rank)
{
    for (unsigned i = 0; i < s->n_failed; i++) {
        if (s->failed[i] == rank)
            return true;
    }
    return false;
}

static void remember_failed(struct mutt_match_scratch *s, uint32_t rank)
{
    if (s->n_failed < FAILED_CACHE)
        s->failed[s->n_failed++] = rank;
}

/* OID candidates: every dot-boundary prefix of the event OID. */
static uint32_t match_oid(const struct mutt_ruleset *rs, const struct event_view *ev,
                          struct mutt_match_scratch *s, uint32_t best)
{
    uint64_t h = FNV_OFFSET;

    if (!rs->oid_slots || !ev->oid)
        return best;
    for (size_t i = 0; i <= ev->oid_len; i++) {
        if (i == ev->oid_len || ev->oid[i] == '.') {
            uint32_t slot = (uint32_t)h & rs->oid_mask;
            while (rs->oid_slots[slot].count) {
                const struct oid_slot *os = &rs->oid_slots[slot];
                if (os->hash == h && os->key_len == i && memcmp(os->key, ev->oid, i) == 0) {
                    for (uint32_t k = 0; k < os->count; k++) {
                        uint32_t rank = rs->oid_entries[os->start + k];
                        if (rank >= best)
                            break;
                        if (rule_holds(&rs->rules[rank], ev, s, false)) {
                            best = rank;
                            break;
                        }
                    }
                    break;
                }
                slot = (slot + 1) & rs->oid_mask;
            }
        }
        if (i < ev->oid_len)
            h = fnv1a_step(h, (unsigned char)ev->oid[i]);
    }
    return best;
}

/* A needle was seen ending at msg[end-1] (its gram at offset e->off): check the rest. */
static uint32_t try_gram_entry(const struct mutt_ruleset *rs, const struct event_view *ev,
                               struct mutt_match_scratch *s, const struct gram_entry *e,
                               size_t gram_start, uint32_t best)
{
    const struct crule *c = &rs->rules[e->rank];
    if (gram_start < e->off)
        return best;
    size_t start = gram_start - e->off;
    if (start + c->needle_len > ev->len)
        return best;
    if (!ci_equal_at((const unsigned char *)ev->msg + start, c->needle, c->needle_len))
        return best;
    if (!c->re)
        return rule_holds(c, ev, s, true) ? e->rank : best;
    /* A regex costs far more than a compare: wait until the scan is over, when the contains
     * rules found so far may have made it irrelevant (evaluate_deferred). */
    if (c->r.syslog_severity >= 0 && c->r.syslog_severity != ev->severity)
        return best;
    for (unsigned i = 0; i < s->n_deferred; i++) {
        if (s->deferred[i] == e->rank)
            return best;
    }
    if (s->n_deferred < DEFER_CAP) {
        s->deferred[s->n_deferred++] = e->rank;
        return best;
    }
    if (failed_before(s, e->rank))
        return best;
    if (rule_holds(c, ev, s, false))
        return e->rank;
    remember_failed(s, e->rank);
    return best;
}

/* Regex candidates in rank order, each only while it could still beat `best`. */
static uint32_t evaluate_deferred(const struct mutt_ruleset *rs, const struct event_view *ev,
                                  struct mutt_match_scratch *s, uint32_t best)
{
    uint32_t *d = s->deferred;
    for (unsigned i = 1; i < s->n_deferred; i++) {
        uint32_t v = d[i];
        unsigned j = i;
        while (j > 0 && d[j - 1] > v) {
            d[j] = d[j - 1];
            j--;
        }
        d[j] = v;
    }
    for (unsigned i = 0; i < s->n_deferred && d[i] < best; i++) {
        if (failed_before(s, d[i]))
            continue;
        if (rule_holds(&rs->rules[d[i]], ev, s, false))
            return d[i];
        remember_failed(s, d[i]);
    }
    return best;
}

static uint32_t match_grams(const struct mutt_ruleset *rs, const struct event_view *ev,
                            struct mutt_match_scratch *s, uint32_t best, bool *non_ascii)
{
    const unsigned char *m = (const unsigned char *)ev->msg;
    uint32_t g = 0;
    unsigned char seen_high = 0;

    for (size_t i = 0; i < ev->len; i++) {
        seen_high |= m[i];
        g = (g << 8) | lower_tab[m[i]];
        for (int a = 0; a < rs->n_active_lens; a++) {
            int l = rs->active_lens[a];
            if (i + 1 < (size_t)l)
                continue;
            uint32_t key = l == 4 ? g : g & ((1U << (8 * l)) - 1);
            const struct gram_table *t = &rs->grams[l];
            uint32_t b = bloom_bit(key);
            if (!(t->bloom[b >> 6] & (1ULL << (b & 63))))
                continue;
            uint32_t slot = gram_hash(key) & t->mask;
            while (t->slots[slot].count) {
                if (t->slots[slot].key == key) {
                    const struct gram_slot *gs = &t->slots[slot];
                    for (uint32_t k = 0; k < gs->count; k++) {
                        const struct gram_entry *e = &t->entries[gs->start + k];
                        if (e->rank >= best)
                            break;
                        best = try_gram_entry(rs, ev, s, e, i + 1 - (size_t)l, best);
                    }
                    break;
                }
                slot = (slot + 1) & t->mask;
            }
        }
    }
    *non_ascii = (seen_high & 0x80) != 0;
    return best;
}

static uint32_t match_list(const struct mutt_ruleset *rs, const uint32_t *list, size_t n,
                           const struct event_view *ev, struct mutt_match_scratch *s,
                           uint32_t best)
{
    for (size_t i = 0; i < n && list[i] < best; i++) {
        if (failed_before(s, list[i]))
            continue;
        if (rule_holds(&rs->rules[list[i]], ev, s, false))
            return list[i];
        remember_failed(s, list[i]);
    }
    return best;
}

const struct mutt_rule *mutt_rules_first_match(const struct mutt_ruleset *rs, const char *message,
                                               size_t len, const char *trap_oid, int severity,
                                               struct mutt_match_scratch *scratch)
{
    struct event_view ev;
    uint32_t best = NO_RANK;
    bool non_ascii = false;

    if (!rs || !scratch)
        return NULL;
    view_init(&ev, message, len, trap_oid, severity);
    scratch->n_failed = 0;
    scratch->n_deferred = 0;
    best = match_oid(rs, &ev, scratch, best);
    if (rs->n_active_lens) {
        best = match_grams(rs, &ev, scratch, best, &non_ascii);
        best = evaluate_deferred(rs, &ev, scratch, best);
    } else {
        for (size_t i = 0; i < ev.len; i++)
            non_ascii |= (unsigned char)ev.msg[i] >= 0x80;
    }
    best = match_list(rs, rs->always, rs->n_always, &ev, scratch, best);
    /* Unicode caseless matching lets U+212A match 'k' and U+017F match 's': a literal holding
     * those letters proves nothing about a message with non-ASCII bytes. */
    if (non_ascii)
        best = match_list(rs, rs->ks, rs->n_ks, &ev, scratch, best);
    return best == NO_RANK ? NULL : &rs->rules[best].r;
}
