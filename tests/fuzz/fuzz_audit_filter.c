/* The audit filter parser (mutt_api_filter_parse, mutt_api_parse_paging, mutt_api_like_escape in
 * src/domain/webapi.c). Input: one "name=value" query parameter per line (first one of a name
 * wins, as the router's lookup does); both audit kinds are parsed. Properties: a refusal names a
 * field and says why; an accepted filter has page >= 1, 1 <= limit <= 200, one "$n" placeholder
 * per bound value in order, and a WHERE clause made only of column names, operators,
 * placeholders and casts, so no client text reaches the SQL; ILIKE escaping round-trips. */
#include "fuzz.h"

#include <ctype.h>

#include "mutt/error.h"
#include "mutt/webapi.h"

#define MAX_PARAMS 16

struct query {
    char *names[MAX_PARAMS], *values[MAX_PARAMS];
    size_t n;
};

static const char *get(void *privdata, const char *name)
{
    const struct query *q = privdata;
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->names[i], name) == 0)
            return q->values[i];
    return NULL;
}

static void check_where(const struct mutt_api_filter *f)
{
    for (const char *c = f->where; *c; c++)
        FUZZ_CHECK(isalnum((unsigned char)*c) || strchr("_ $=<>:", *c) != NULL, "'%c' in WHERE: %s", *c, f->where);
    const char *p = f->where;
    for (int i = 1; i <= f->nvalues; i++) {
        char ph[16];
        snprintf(ph, sizeof ph, "$%d", i);
        p = strstr(p, ph);
        FUZZ_CHECK(p != NULL, "no %s in %s", ph, f->where);
        FUZZ_CHECK(f->values[i - 1] == f->store[i - 1], "value %d not in the store", i);
        p += strlen(ph);
    }
    char next[16];
    snprintf(next, sizeof next, "$%d", f->nvalues + 1);
    FUZZ_CHECK(strstr(f->where, next) == NULL, "more placeholders than values: %s", f->where);
}

static void check_like_escape(const char *s)
{
    size_t n = strlen(s);
    char *esc = malloc(2 * n + 1), *back = malloc(n + 1);
    if (esc && back) {
        FUZZ_CHECK(mutt_api_like_escape(s, esc, 2 * n + 1) == 0, "2n+1 bytes are not enough for '%s'", s);
        size_t o = 0;
        for (const char *c = esc; *c; c++) {
            if (*c == '\\') {
                c++;
                FUZZ_CHECK(*c == '%' || *c == '_' || *c == '\\', "stray escape in '%s'", esc);
            } else {
                FUZZ_CHECK(*c != '%' && *c != '_', "unescaped wildcard in '%s'", esc);
            }
            back[o++] = *c;
        }
        back[o] = '\0';
        FUZZ_CHECK(strcmp(back, s) == 0, "'%s' escapes to '%s' which reads back as '%s'", s, esc, back);
        if (n > 0)
            FUZZ_CHECK(mutt_api_like_escape(s, esc, strlen(esc)) == MUTT_EFULL, "no room for the NUL accepted");
    }
    free(esc);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    if (text == NULL)
        return 0;
    struct query q = {.n = 0};
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line && q.n < MAX_PARAMS;
         line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        q.names[q.n] = line;
        q.values[q.n] = eq ? eq + 1 : line + strlen(line); /* "?x" alone is x="" */
        if (eq)
            *eq = '\0';
        check_like_escape(q.values[q.n]);
        q.n++;
    }
    static const enum mutt_api_audit_kind kinds[] = {MUTT_API_AUDIT_CONFIG, MUTT_API_AUDIT_EVENT};
    struct mutt_api_filter *f = malloc(sizeof *f);
    for (size_t k = 0; f && k < 2; k++) {
        char err[256] = "";
        const char *bad = NULL;
        int rc = mutt_api_filter_parse(kinds[k], get, &q, f, err, sizeof err, &bad);
        if (rc != 0) {
            FUZZ_CHECK(rc == MUTT_EINVAL && bad != NULL && err[0] != '\0', "refusal %d without field or message", rc);
            continue;
        }
        FUZZ_CHECK(f->page >= 1 && f->limit >= 1 && f->limit <= MUTT_API_LIMIT_MAX, "page %ld limit %ld", f->page,
                   f->limit);
        FUZZ_CHECK(f->nvalues >= 0 && f->nvalues <= MUTT_API_MAX_FILTERS, "%d values", f->nvalues);
        check_where(f);
    }
    free(f);
    free(text);
    return 0;
}
