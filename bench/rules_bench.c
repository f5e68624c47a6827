/* Rules engine benchmark (D13): events/s of mutt_rules_first_match on one core for 10, 1,000 and
 * 10,000 rules with the 70 % contains / 25 % OID / 5 % regex mix, against a synthetic event
 * stream (30 % traps, about a quarter of events matching). Not a test: `make bench-rules`.
 * Usage: rules_bench [seconds_per_size [indexed]]   (default 1.0; "indexed" skips the linear
 * reference scan, e.g. for profiling) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mutt/rules.h"

#define N_WORDS 4000
#define N_EVENTS 50000
#define MSG_CAP 256

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static uint32_t below(uint32_t n)
{
    return rnd() % n;
}

static char words[N_WORDS][16];

static void make_words(void)
{
    static const char *const real[] = {"link", "down", "up",      "interface", "error", "failed",
                                       "port", "state", "changed", "protocol", "denied", "session",
                                       "user", "login", "disk",    "full",     "timeout", "peer"};
    for (int i = 0; i < N_WORDS; i++) {
        if (i < (int)(sizeof real / sizeof real[0])) {
            strcpy(words[i], real[i]);
            continue;
        }
        int len = 3 + (int)below(8);
        for (int k = 0; k < len; k++)
            words[i][k] = (char)('a' + below(26));
        words[i][len] = '\0';
        if (below(8) == 0) /* some upper-case mnemonics, %FAC-N-MNEMONIC style */
            for (int k = 0; k < len; k++)
                words[i][k] = (char)(words[i][k] - 32);
    }
}

static const char *word(void)
{
    /* skewed: the first words are far more common, as in real logs */
    uint32_t r = below(100);
    return words[r < 50 ? below(100) : below(N_WORDS)];
}

struct gen_rule {
    char text[64];
    char oid[64];
};

static void make_oid(char *buf, size_t cap, uint32_t ent, int depth)
{
    int n = snprintf(buf, cap, "1.3.6.1.4.1.%u", ent);
    for (int d = 0; d < depth && n < (int)cap - 8; d++)
        n += snprintf(buf + n, cap - (size_t)n, ".%u", below(6));
}

static void make_rules(struct mutt_rule *rules, struct gen_rule *g, size_t n)
{
    static const char *const regex_shapes[] = {
        "%s-(up|down)", "%s\\s+\\d+ failed", "%s .* timeout", "^<\\d+>%s", "%s [0-9]+/[0-9]+",
        "(%s|%s) denied",
    };
    for (size_t i = 0; i < n; i++) {
        struct mutt_rule *r = &rules[i];
        uint32_t kind = below(100);
        memset(r, 0, sizeof *r);
        r->id = (int64_t)i + 1;
        r->priority = (int)below(200);
        r->syslog_severity = below(10) == 0 ? (int)below(8) : -1;
        r->prod_handling = "Page_and_ticket";
        r->dev_handling = "Ignore";
        r->team_assignment = "NETO";
        r->is_active = true;
        if (kind < 70) {
            snprintf(g[i].text, sizeof g[i].text, "%s%s%s", word(), below(2) ? " " : "-", word());
            r->match_type = MUTT_MATCH_CONTAINS;
            r->match_string = g[i].text;
        } else if (kind < 95) {
            make_oid(g[i].oid, sizeof g[i].oid, below(300), (int)below(5));
            r->match_type = MUTT_MATCH_OID_PREFIX;
            r->trap_oid = g[i].oid;
        } else {
            const char *shape = regex_shapes[below(sizeof regex_shapes / sizeof regex_shapes[0])];
            snprintf(g[i].text, sizeof g[i].text, shape, word(), word());
            r->match_type = MUTT_MATCH_REGEX;
            r->match_string = g[i].text;
        }
    }
}

struct gen_event {
    char msg[MSG_CAP];
    size_t len;
    char oid[64];
    int has_oid;
    int severity;
};

static void make_events(struct gen_event *ev, size_t n, const struct mutt_rule *rules, size_t nr)
{
    for (size_t i = 0; i < n; i++) {
        struct gen_event *e = &ev[i];
        int pos = snprintf(e->msg, MSG_CAP, "%%%s-%u-%s: ", word(), below(8), word());
        int nw = 6 + (int)below(9);
        for (int w = 0; w < nw && pos < MSG_CAP - 40; w++) {
            switch (below(10)) {
            case 0:
                pos += snprintf(e->msg + pos, MSG_CAP - (size_t)pos, "%u ", below(65536));
                break;
            case 1:
                pos += snprintf(e->msg + pos, MSG_CAP - (size_t)pos, "10.%u.%u.%u ", below(256),
                                below(256), below(256));
                break;
            default:
                pos += snprintf(e->msg + pos, MSG_CAP - (size_t)pos, "%s ", word());
            }
        }
        /* about one event in five carries some rule's string */
        if (nr && below(5) == 0) {
            const struct mutt_rule *r = &rules[below((uint32_t)nr)];
            if (r->match_type == MUTT_MATCH_CONTAINS && pos < MSG_CAP - 70)
                pos += snprintf(e->msg + pos, MSG_CAP - (size_t)pos, "%s", r->match_string);
        }
        e->len = (size_t)pos;
        e->has_oid = below(10) < 3;
        if (e->has_oid)
            make_oid(e->oid, sizeof e->oid, below(400), 2 + (int)below(6));
        e->severity = (int)below(9) - 1;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the host may be shared */
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef const struct mutt_rule *match_fn(const struct mutt_ruleset *, const char *, size_t,
                                         const char *, int, struct mutt_match_scratch *);

static double run(match_fn *fn, const struct mutt_ruleset *rs, const struct gen_event *ev,
                  size_t n, double seconds, struct mutt_match_scratch *s, double *hit_ratio)
{
    size_t done = 0, hits = 0;
    double t0 = now_s(), t;
    do {
        for (size_t i = 0; i < n; i++) {
            const struct gen_event *e = &ev[i];
            hits += fn(rs, e->msg, e->len, e->has_oid ? e->oid : NULL, e->severity, s) != NULL;
        }
        done += n;
        t = now_s() - t0;
    } while (t < seconds);
    *hit_ratio = (double)hits / (double)done;
    return (double)done / t;
}

int main(int argc, char **argv)
{
    static const size_t sizes[] = {10, 1000, 10000};
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    int with_linear = !(argc > 2 && strcmp(argv[2], "indexed") == 0);
    struct mutt_match_scratch *s = mutt_match_scratch_create();
    struct gen_event *ev = malloc(N_EVENTS * sizeof *ev);

    if (!s || !ev || seconds <= 0)
        return 1;
    make_words();
    printf("rules  indexed_events_per_s  linear_events_per_s  matched  compile_ms\n");
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        struct mutt_rule *rules = calloc(n, sizeof *rules);
        struct gen_rule *g = calloc(n, sizeof *g);
        char err[256];
        double hr, hr_lin;
        if (!rules || !g)
            return 1;
        make_rules(rules, g, n);
        make_events(ev, N_EVENTS, rules, n);
        double c0 = now_s();
        struct mutt_ruleset *rs = mutt_rules_compile(rules, n, err, sizeof err);
        double compile_ms = (now_s() - c0) * 1e3;
        if (!rs) {
            fprintf(stderr, "compile: %s\n", err);
            return 1;
        }
        double idx = run(mutt_rules_first_match, rs, ev, N_EVENTS, seconds, s, &hr);
        /* the linear scan is slow at 10k rules: a smaller slice is enough */
        size_t lin_n = n >= 10000 ? 2000 : n >= 1000 ? 10000 : N_EVENTS;
        double lin = with_linear ? run(mutt_rules_first_match_linear, rs, ev, lin_n, seconds / 2,
                                       s, &hr_lin)
                                 : 0;
        printf("%5zu  %20.0f  %19.0f  %6.1f%%  %10.1f\n", n, idx, lin, hr * 100, compile_ms);
        mutt_rules_destroy(rs);
        free(rules);
        free(g);
    }
    printf("regex limit hits: %llu\n", (unsigned long long)mutt_match_scratch_regex_limit_hits(s));
    mutt_match_scratch_destroy(s);
    free(ev);
    return 0;
}
