/* Ingest domain logic: body splitting, normalisation, ids, serialisation (CONTRACT §3, D1,
 * D6-D9, D33). Pure: jansson only, no I/O, no clock, no RNG. See include/mutt/event.h. */
#include "mutt/event.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mutt/error.h"
#include "mutt/timefmt.h"
#include "mutt/uuid.h"

/* jansson 2.14 always keeps insertion order; JSON_COMPACT drops the spaces. */
#define DUMP_FLAGS JSON_COMPACT
#define LOAD_FLAGS (JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY)

/* ======================================================================================
 * Body splitting
 * ====================================================================================== */

static char oom_message[] = "out of memory";

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *p, size_t len, size_t i)
{
    while (i < len && is_ws(p[i]))
        i++;
    return i;
}

/* What one linear pass over the raw bytes tells us before jansson runs: how deep the body nests
 * (jansson recurses up to 2048 levels and a body of 1000 brackets must be refused cheaply), and,
 * for a body that is one array, how many elements it has (an early 413 without parsing) and where
 * they start and end (each element's raw size, so that the per-event size limit needs no second
 * serialisation in the common case). Meaningful only for valid JSON; jansson judges validity. */
struct body_scan {
    size_t max_depth;
    bool single_array;  /* body = one array and nothing but whitespace after it */
    size_t n_elems;     /* elements of that array (valid JSON only) */
    uint32_t *bounds;   /* offsets of '[', each depth-1 ',' and the closing ']' (or NULL) */
    size_t n_bounds;
};

/* Offset of the quote closing a string whose body starts at `i` (len if unterminated). memchr
 * finds candidate quotes a word at a time; a quote preceded by an odd run of backslashes is
 * escaped. This loop is most of the scan's cost, hence not a byte-by-byte walk. */
static size_t string_end(const char *p, size_t len, size_t i)
{
    for (;;) {
        const char *q = i < len ? memchr(p + i, '"', len - i) : NULL;
        if (!q)
            return len;
        size_t at = (size_t)(q - p), bs = 0;
        while (at - bs > i && p[at - bs - 1] == '\\')
            bs++;
        if (bs % 2 == 0)
            return at;
        i = at + 1;
    }
}

/* Returns false when nesting exceeds MUTT_EVENT_HARD_DEPTH (scan stopped there). */
static bool scan_body(const char *p, size_t len, size_t start, size_t bounds_cap,
                      struct body_scan *sc)
{
    size_t depth = 0, commas = 0;
    bool in_array = p[start] == '[';
    bool closed = false, empty = true;
    size_t close_at = 0;

    for (size_t i = start; i < len; i++) {
        char c = p[i];
        switch (c) {
        case '"':
            i = string_end(p, len, i + 1);
            if (depth == 1)
                empty = false;
            break;
        case '[':
        case '{':
            if (depth == 1)
                empty = false;
            if (depth == 0 && i == start && in_array && sc->bounds && sc->n_bounds < bounds_cap)
                sc->bounds[sc->n_bounds++] = (uint32_t)i;
            if (++depth > sc->max_depth) {
                sc->max_depth = depth;
                if (depth > MUTT_EVENT_HARD_DEPTH)
                    return false;
            }
            break;
        case ']':
        case '}':
            if (depth == 1 && in_array && !closed) {
                closed = true;
                close_at = i;
                if (sc->bounds && sc->n_bounds < bounds_cap)
                    sc->bounds[sc->n_bounds++] = (uint32_t)i;
            }
            if (depth > 0)
                depth--;
            break;
        case ',':
            if (depth == 1 && in_array && !closed) {
                commas++;
                if (sc->bounds && sc->n_bounds < bounds_cap)
                    sc->bounds[sc->n_bounds++] = (uint32_t)i;
            }
            break;
        default:
            if (depth == 1 && !is_ws(c))
                empty = false;
            break;
        }
    }
    sc->single_array = in_array && closed && skip_ws(p, len, close_at + 1) == len;
    sc->n_elems = sc->single_array ? (empty ? 0 : commas + 1) : 0;
    return true;
}

/* Depth of a parsed value, counting containers only; stops counting past `limit`. */
static size_t json_depth(const json_t *v, size_t limit)
{
    size_t best = 0;

    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        if (limit == 0)
            return 1;
        json_object_foreach((json_t *)v, key, child) {
            size_t d = json_depth(child, limit - 1);
            if (d > best)
                best = d;
            if (best >= limit)
                break;
        }
        return best + 1;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *child;
        if (limit == 0)
            return 1;
        json_array_foreach(v, i, child) {
            size_t d = json_depth(child, limit - 1);
            if (d > best)
                best = d;
            if (best >= limit)
                break;
        }
        return best + 1;
    }
    return 0;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER:
    case JSON_REAL: return "number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

static void item_set_error(struct mutt_event_item *it, const char *msg)
{
    size_t n = strlen(msg);
    char *copy = malloc(n + 1);

    if (copy)
        memcpy(copy, msg, n + 1);
    it->error = copy ? copy : oom_message;
}

/* Checks one parsed item; `raw_len` is an upper bound of its size in the body (0 = unknown).
 * Takes ownership of v: it ends up in the item or is released. */
static void add_item(struct mutt_event_batch *b, json_t *v, size_t raw_len, bool check_depth,
                     size_t max_event_bytes)
{
    struct mutt_event_item *it = &b->items[b->count++];
    char msg[160];

    it->event = NULL;
    it->error = NULL;
    if (!json_is_object(v)) {
        snprintf(msg, sizeof msg, "event must be a JSON object, got %s", json_type_name(v));
        goto reject;
    }
    if (check_depth && json_depth(v, MUTT_EVENT_MAX_DEPTH + 1) > MUTT_EVENT_MAX_DEPTH) {
        snprintf(msg, sizeof msg, "event nested deeper than %d levels", MUTT_EVENT_MAX_DEPTH);
        goto reject;
    }
    /* The raw span includes whitespace, so it can only overstate the compact size (reals aside,
     * which may be re-encoded a few bytes longer, D8); measure exactly only when it is over. */
    if (raw_len == 0 || raw_len > max_event_bytes) {
        size_t exact = 0;
        mutt_event_dump(v, NULL, 0, &exact);
        if (exact > max_event_bytes) {
            snprintf(msg, sizeof msg, "event is %zu bytes, over MAX_EVENT_BYTES (%zu)", exact,
                     max_event_bytes);
            goto reject;
        }
    }
    it->event = v;
    return;
reject:
    json_decref(v);
    item_set_error(it, msg);
    b->rejected++;
}

/* Turns a jansson failure at absolute body offset `at` into the whole-body message. */
static void describe_parse_error(struct mutt_event_batch *b, const char *body, size_t at,
                                 const json_error_t *jerr)
{
    size_t line = 1, col = 1;

    /* jansson's position counts the offending byte itself: columns are 1-based like its own */
    if (at > 0)
        at--;
    for (size_t i = 0; i < at; i++) {
        if (body[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    switch (json_error_code(jerr)) {
    case json_error_invalid_utf8:
        snprintf(b->error, sizeof b->error, "invalid UTF-8 at line %zu column %zu", line, col);
        break;
    case json_error_numeric_overflow:
        snprintf(b->error, sizeof b->error,
                 "integer out of range at line %zu column %zu: integers must fit in 64 bits", line,
                 col);
        break;
    case json_error_null_character:
        snprintf(b->error, sizeof b->error, "string contains \\u0000 at line %zu column %zu",
                 line, col);
        break;
    case json_error_stack_overflow:
        snprintf(b->error, sizeof b->error, "JSON nested deeper than %d levels",
                 MUTT_EVENT_MAX_DEPTH);
        break;
    default:
        snprintf(b->error, sizeof b->error, "invalid JSON at line %zu column %zu: %.120s", line, col,
                 jerr->text);
        break;
    }
}

static int grow_items(struct mutt_event_batch *b, size_t *cap, size_t want)
{
    if (want <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    while (ncap < want)
        ncap *= 2;
    struct mutt_event_item *n = realloc(b->items, ncap * sizeof *n);
    if (!n)
        return MUTT_ENOMEM;
    b->items = n;
    *cap = ncap;
    return 0;
}

static int fail_body(struct mutt_event_batch *b, int rc, const char *msg)
{
    if (msg)
        snprintf(b->error, sizeof b->error, "%s", msg);
    mutt_event_batch_dispose(b);
    return rc;
}

static int too_many(struct mutt_event_batch *b, size_t max_events)
{
    char msg[96];
    snprintf(msg, sizeof msg, "more than %zu events in one request (MAX_BATCH_EVENTS)", max_events);
    return fail_body(b, MUTT_ERANGE, msg);
}

/* The body is one array: its elements are the items. Takes ownership of arr. */
static int split_array(struct mutt_event_batch *b, json_t *arr, const struct body_scan *sc,
                       size_t len, size_t max_events, size_t max_event_bytes)
{
    size_t n = json_array_size(arr);
    bool check_depth = sc->max_depth > MUTT_EVENT_MAX_DEPTH + 1; /* +1: the array itself */
    bool spans_ok = sc->bounds && sc->n_bounds == n + 1;

    if (n == 0) {
        json_decref(arr);
        return fail_body(b, MUTT_EINVAL, "empty JSON array: no events");
    }
    if (n > max_events) {
        json_decref(arr);
        return too_many(b, max_events);
    }
    b->items = malloc(n * sizeof *b->items);
    if (!b->items) {
        json_decref(arr);
        return fail_body(b, MUTT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        /* a body no larger than the limit cannot hold a larger element */
        size_t raw = len <= max_event_bytes ? len
                     : spans_ok            ? (size_t)(sc->bounds[i + 1] - sc->bounds[i] - 1)
                                           : 0;
        add_item(b, json_incref(json_array_get(arr, i)), raw, check_depth, max_event_bytes);
    }
    json_decref(arr);
    return 0;
}

void mutt_event_batch_dispose(struct mutt_event_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->count; i++) {
        json_decref(batch->items[i].event);
        if (batch->items[i].error != oom_message)
            free(batch->items[i].error);
    }
    free(batch->items);
    batch->items = NULL;
    batch->count = 0;
    batch->rejected = 0;
}

void mutt_event_batch_reject(struct mutt_event_batch *batch, size_t index, const char *message)
{
    struct mutt_event_item *it;

    if (!batch || index >= batch->count)
        return;
    it = &batch->items[index];
    if (it->error)
        return;
    json_decref(it->event);
    it->event = NULL;
    item_set_error(it, message ? message : "rejected");
    batch->rejected++;
}

int mutt_event_parse_body(const char *body, size_t len, size_t max_events, size_t max_event_bytes,
                          struct mutt_event_batch *out)
{
    struct body_scan sc = {0};
    json_error_t jerr;
    size_t start, off, cap = 0;
    json_t *v;
    int rc;

    memset(out, 0, sizeof *out);
    if (!body)
        len = 0;
    start = 0;
    if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
        start = 3; /* UTF-8 BOM, as some Windows senders write it */
    start = skip_ws(body, len, start);
    if (start >= len)
        return fail_body(out, MUTT_EINVAL, "empty body");
    if (len > INT_MAX)
        return fail_body(out, MUTT_ERANGE, "body too large"); /* jansson positions are int */

    /* Element spans are only needed when the body is larger than one event may be. */
    size_t bounds_cap = max_events + 2;
    if (body[start] == '[' && len > max_event_bytes) {
        sc.bounds = malloc(bounds_cap * sizeof *sc.bounds);
        if (!sc.bounds)
            return fail_body(out, MUTT_ENOMEM, "out of memory");
    }
    if (!scan_body(body, len, start, bounds_cap, &sc)) {
        free(sc.bounds);
        snprintf(out->error, sizeof out->error, "JSON nested deeper than %d levels",
                 MUTT_EVENT_MAX_DEPTH);
        return fail_body(out, MUTT_EINVAL, NULL);
    }
    if (sc.single_array && sc.n_elems > max_events) {
        free(sc.bounds);
        return too_many(out, max_events);
    }

    v = json_loadb(body + start, len - start, LOAD_FLAGS, &jerr);
    if (!v) {
        free(sc.bounds);
        describe_parse_error(out, body, start + (size_t)(jerr.position > 0 ? jerr.position : 0),
                             &jerr);
        return fail_body(out, MUTT_EINVAL, NULL);
    }
    off = start + (size_t)jerr.position; /* without EOF check, position = bytes consumed */
    if (json_is_array(v) && skip_ws(body, len, off) == len) {
        rc = split_array(out, v, &sc, len, max_events, max_event_bytes);
        free(sc.bounds);
        return rc;
    }
    free(sc.bounds);

    /* A sequence of values (NDJSON or pretty-printed objects): each one is an item. */
    bool check_depth = sc.max_depth > MUTT_EVENT_MAX_DEPTH;
    for (;;) {
        size_t raw = off - start;
        if (out->count >= max_events) {
            json_decref(v);
            return too_many(out, max_events);
        }
        if (grow_items(out, &cap, out->count + 1) < 0) {
            json_decref(v);
            return fail_body(out, MUTT_ENOMEM, "out of memory");
        }
        add_item(out, v, raw, check_depth, max_event_bytes);
        start = skip_ws(body, len, off);
        if (start >= len)
            return 0;
        v = json_loadb(body + start, len - start, LOAD_FLAGS, &jerr);
        if (!v) {
            describe_parse_error(out, body,
                                 start + (size_t)(jerr.position > 0 ? jerr.position : 0), &jerr);
            return fail_body(out, MUTT_EINVAL, NULL);
        }
        off = start + (size_t)jerr.position;
    }
}

/* ======================================================================================
 * Rules
 * ====================================================================================== */

void mutt_event_rules_init_default(struct mutt_event_rules *rules)
{
    memset(rules, 0, sizeof *rules);
    strcpy(rules->required[0], "hostname");
    strcpy(rules->required[1], "message");
    strcpy(rules->required[2], "timestamp");
    rules->n_required = 3;
}

int mutt_event_rules_set_required(struct mutt_event_rules *rules, const char *csv)
{
    struct mutt_event_rules tmp;
    const char *p = csv ? csv : "";

    memset(&tmp, 0, sizeof tmp);
    while (*p) {
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        const char *a = p, *z = stop;
        while (a < z && isspace((unsigned char)*a))
            a++;
        while (z > a && isspace((unsigned char)z[-1]))
            z--;
        if (z > a) {
            if (tmp.n_required >= MUTT_EVENT_MAX_REQUIRED ||
                (size_t)(z - a) >= MUTT_EVENT_FIELD_NAME_MAX)
                return MUTT_EINVAL;
            memcpy(tmp.required[tmp.n_required++], a, (size_t)(z - a));
        }
        p = end ? end + 1 : stop;
    }
    *rules = tmp;
    return 0;
}

/* ======================================================================================
 * Severity
 * ====================================================================================== */

static const struct {
    const char *name;
    int level;
} severity_names[] = {
    {"emerg", 0},   {"emergency", 0}, {"panic", 0},  {"alert", 1},   {"crit", 2},
    {"critical", 2}, {"err", 3},      {"error", 3},  {"major", 3},   {"warning", 4},
    {"warn", 4},    {"minor", 4},     {"notice", 5}, {"info", 6},    {"informational", 6},
    {"debug", 7},
};

int mutt_severity_parse(const char *text, size_t len)
{
    const char *a = text, *z = text + len;

    while (a < z && isspace((unsigned char)*a))
        a++;
    while (z > a && isspace((unsigned char)z[-1]))
        z--;
    if (a == z)
        return -1;
    /* D9: numeric strings count; any other number is out of range, not an unknown name */
    const char *d = a;
    if (*d == '-' || *d == '+')
        d++;
    if (d < z) {
        const char *q = d;
        unsigned v = 0;
        for (; q < z && *q >= '0' && *q <= '9'; q++)
            v = v < 1000 ? v * 10 + (unsigned)(*q - '0') : v; /* saturate: only the range matters */
        if (q == z)
            return (*a == '-' && v != 0) || v > 7 ? -2 : (int)v;
    }
    for (size_t i = 0; i < sizeof severity_names / sizeof severity_names[0]; i++) {
        const char *n = severity_names[i].name;
        if (strlen(n) == (size_t)(z - a) && strncasecmp(n, a, (size_t)(z - a)) == 0)
            return severity_names[i].level;
    }
    return -1;
}

const char *mutt_severity_alert_name(int sev)
{
    switch (sev) {
    case 0:
    case 1:
    case 2: return "Critical";
    case 3: return "Major";
    case 4: return "Warning";
    case 5: return "Minor";
    case 6:
    case 7: return "Info";
    default: return "Warning";
    }
}

int mutt_event_severity(const json_t *ev)
{
    json_t *s = json_object_get(ev, "syslog_severity");

    if (json_is_integer(s)) {
        json_int_t v = json_integer_value(s);
        if (v >= 0 && v <= 7)
            return (int)v;
    }
    return -1;
}

/* ======================================================================================
 * Normalisation
 * ====================================================================================== */

static int fail(char *err, size_t errlen, const char **err_field, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char **err_field, const char *field,
                const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    if (err_field)
        *err_field = field;
    return MUTT_EINVAL;
}

/* Sets key to v (a new reference taken by the object); false on allocation failure. */
static bool set_shared(json_t *ev, const char *key, json_t *v)
{
    return json_object_set(ev, key, v) == 0;
}

static int severity_step(json_t *ev, char *err, size_t errlen, const char **err_field)
{
    json_t *sev = json_object_get(ev, "syslog_severity");
    bool alias = false;
    int rc = 0;
    int level;

    if (!sev) {
        sev = json_object_get(ev, "severity");
        if (!sev)
            return 0;
        alias = true;
    }
    json_incref(sev); /* keep it alive while the keys holding it change */
    if (alias)
        json_object_del(ev, "severity");
    const char *sent_as = alias ? " (sent as severity)" : "";

    switch (json_typeof(sev)) {
    case JSON_NULL:
        json_object_del(ev, "syslog_severity");
        break;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(sev);
        if (v < 0 || v > 7) {
            rc = fail(err, errlen, err_field, "syslog_severity",
                      "syslog_severity%s must be 0..7 or a severity name, got %lld", sent_as,
                      (long long)v);
            break;
        }
        if (alias && !set_shared(ev, "syslog_severity", sev))
            rc = MUTT_ENOMEM;
        break;
    }
    case JSON_REAL: {
        double v = json_real_value(sev);
        if (!(v >= 0 && v <= 7) || v != (double)(int)v) {
            rc = fail(err, errlen, err_field, "syslog_severity",
                      "syslog_severity%s must be 0..7 or a severity name, got %g", sent_as, v);
            break;
        }
        if (json_object_set_new(ev, "syslog_severity", json_integer((json_int_t)v)) < 0)
            rc = MUTT_ENOMEM;
        break;
    }
    case JSON_STRING:
        level = mutt_severity_parse(json_string_value(sev), json_string_length(sev));
        if (level == -2) {
            rc = fail(err, errlen, err_field, "syslog_severity",
                      "syslog_severity%s must be 0..7 or a severity name, got \"%.32s\"", sent_as,
                      json_string_value(sev));
            break;
        }
        /* the text keeps the client's spelling ("Major"); shared, not copied */
        if (!set_shared(ev, "syslog_severity_text", sev)) {
            rc = MUTT_ENOMEM;
            break;
        }
        if (level < 0) {
            json_object_del(ev, "syslog_severity"); /* D9: unknown name, event still accepted */
        } else if (json_object_set_new(ev, "syslog_severity", json_integer(level)) < 0) {
            rc = MUTT_ENOMEM;
        }
        break;
    default:
        rc = fail(err, errlen, err_field, "syslog_severity",
                  "syslog_severity%s must be 0..7 or a severity name, got %s", sent_as,
                  json_type_name(sev));
        break;
    }
    json_decref(sev);
    return rc;
}

/* Null and an unknown name leave syslog_severity absent (D9), so `severity`, when present, is then
 * read as its alias in a second step: otherwise a later normalisation (an item replayed through
 * ingest) would read the alias the first one ignored, and the same event would change. */
static int normalize_severity(json_t *ev, char *err, size_t errlen, const char **err_field)
{
    int rc = severity_step(ev, err, errlen, err_field);
    if (rc == 0 && !json_object_get(ev, "syslog_severity") && json_object_get(ev, "severity"))
        rc = severity_step(ev, err, errlen, err_field);
    return rc;
}

static bool is_blank_or_absent(const json_t *v)
{
    return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0);
}

static bool is_nonblank_string(const json_t *v)
{
    if (!json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0; i < n; i++) {
        if (!isspace((unsigned char)s[i]))
            return true;
    }
    return false;
}

/* A growable text buffer for the trap message: starts on the stack, which fits common traps. */
struct text {
    char *p;
    size_t len, cap;
    bool heap, oom;
    char stack[512];
};

static void text_init(struct text *t)
{
    t->p = t->stack;
    t->len = 0;
    t->cap = sizeof t->stack;
    t->heap = false;
    t->oom = false;
}

static void text_add(struct text *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n > t->cap) {
        size_t ncap = t->cap * 2;
        while (ncap < t->len + n)
            ncap *= 2;
        char *np = t->heap ? realloc(t->p, ncap) : malloc(ncap);
        if (!np) {
            t->oom = true;
            return;
        }
        if (!t->heap)
            memcpy(np, t->p, t->len);
        t->p = np;
        t->cap = ncap;
        t->heap = true;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void text_adds(struct text *t, const char *s)
{
    text_add(t, s, strlen(s));
}

static void text_free(struct text *t)
{
    if (t->heap)
        free(t->p);
}

/* Strings as they are, numbers and literals as JSON text, containers as compact JSON. */
static void text_add_value(struct text *t, const json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        text_add(t, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        text_adds(t, num);
        return;
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        text_adds(t, num);
        return;
    case JSON_TRUE: text_adds(t, "true"); return;
    case JSON_FALSE: text_adds(t, "false"); return;
    case JSON_NULL: text_adds(t, "null"); return;
    default: {
        char *tmp = NULL;
        size_t need = 0;
        if (mutt_event_dump_alloc(v, &tmp, &need) < 0) {
            t->oom = true;
            return;
        }
        text_add(t, tmp, need);
        free(tmp);
        return;
    }
    }
}

/* The demo traps (snmptrapd output through PowerShell) carry "@{oid=X; value=Y}". */
static bool add_powershell_var(struct text *t, const char *s, size_t n)
{
    static const char sep[] = "; value=";
    if (n < 8 || memcmp(s, "@{oid=", 6) != 0 || s[n - 1] != '}')
        return false;
    const char *oid = s + 6, *end = s + n - 1;
    for (const char *q = oid; q + (sizeof sep - 1) <= end; q++) {
        if (memcmp(q, sep, sizeof sep - 1) == 0) {
            text_add(t, oid, (size_t)(q - oid));
            text_add(t, "=", 1);
            text_add(t, q + sizeof sep - 1, (size_t)(end - (q + sizeof sep - 1)));
            return true;
        }
    }
    return false;
}

static void add_variable(struct text *t, const json_t *var)
{
    if (json_is_string(var)) {
        if (!add_powershell_var(t, json_string_value(var), json_string_length(var)))
            text_add(t, json_string_value(var), json_string_length(var));
        return;
    }
    if (json_is_object(var)) {
        json_t *oid = json_object_get(var, "oid");
        if (json_is_string(oid)) {
            json_t *value = json_object_get(var, "value");
            text_add(t, json_string_value(oid), json_string_length(oid));
            text_add(t, "=", 1);
            if (value)
                text_add_value(t, value);
            return;
        }
    }
    text_add_value(t, var);
}

static int build_trap_message(json_t *ev, const json_t *trap_oid)
{
    json_t *vars = json_object_get(ev, "variables");
    struct text t;
    size_t n = 0;
    int rc = 0;

    text_init(&t);
    text_adds(&t, "SNMP trap ");
    text_add(&t, json_string_value(trap_oid), json_string_length(trap_oid));
    /* D9: " <oid>=<value>" per variable, joined with "," */
    if (json_is_object(vars)) {
        const char *key;
        json_t *value;
        json_object_foreach(vars, key, value) {
            text_adds(&t, n++ ? ", " : " ");
            text_adds(&t, key);
            text_add(&t, "=", 1);
            text_add_value(&t, value);
        }
    } else if (json_is_array(vars)) {
        size_t i;
        json_t *var;
        json_array_foreach(vars, i, var) {
            text_adds(&t, n++ ? ", " : " ");
            add_variable(&t, var);
        }
    } else if (json_is_string(vars) && json_string_length(vars) > 0) {
        text_adds(&t, " ");
        text_add(&t, json_string_value(vars), json_string_length(vars));
    }
    if (t.oom || json_object_set_new(ev, "message", json_stringn(t.p, t.len)) < 0)
        rc = MUTT_ENOMEM;
    text_free(&t);
    return rc;
}

const char *mutt_event_missing_required(const json_t *ev, const struct mutt_event_rules *rules)
{
    for (size_t i = 0; rules && i < rules->n_required; i++) {
        if (!is_nonblank_string(json_object_get(ev, rules->required[i])))
            return rules->required[i];
    }
    return NULL;
}

size_t mutt_event_strip_reserved(json_t *ev)
{
    const char *key;
    size_t key_len, n = 0;
    json_t *v;
    void *tmp;

    if (!json_is_object(ev))
        return 0;
    json_object_keylen_foreach_safe(ev, tmp, key, key_len, v) {
        if (key_len > 0 && key[0] == '_' && json_object_deln(ev, key, key_len) == 0)
            n++;
    }
    return n;
}

int mutt_event_normalize(json_t *ev, const struct mutt_event_rules *rules, char *err,
                         size_t errlen, const char **err_field)
{
    json_t *v;
    int rc;

    if (err && errlen)
        err[0] = '\0';
    if (err_field)
        *err_field = NULL;
    if (!json_is_object(ev))
        return fail(err, errlen, err_field, NULL, "event must be a JSON object");

    json_object_del(ev, "api_key"); /* D33: never forwarded, never logged */
    mutt_event_strip_reserved(ev);  /* D35: `_` fields are MUTT's; the stage counted them before */

    rc = normalize_severity(ev, err, errlen, err_field);
    if (rc < 0)
        return rc;

    if (is_blank_or_absent(json_object_get(ev, "hostname"))) {
        json_t *ip = json_object_get(ev, "source_ip");
        if (json_is_string(ip) && json_string_length(ip) > 0 && !set_shared(ev, "hostname", ip))
            return MUTT_ENOMEM;
    }

    if (is_blank_or_absent(json_object_get(ev, "message"))) {
        json_t *oid = json_object_get(ev, "trap_oid");
        if (json_is_string(oid) && json_string_length(oid) > 0) {
            json_incref(oid);
            rc = build_trap_message(ev, oid);
            json_decref(oid);
            if (rc < 0)
                return rc;
        }
    }

    if (rules) {
        for (size_t i = 0; i < rules->n_required; i++) {
            const char *name = rules->required[i];
            v = json_object_get(ev, name);
            if (!v)
                return fail(err, errlen, err_field, name, "missing required field: %s", name);
            if (!is_nonblank_string(v))
                return fail(err, errlen, err_field, name, "field %s must be a non-empty string",
                            name);
        }
    }

    v = json_object_get(ev, "hostname");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v))
            return fail(err, errlen, err_field, "hostname", "hostname must be a string");
        if (json_string_length(v) > MUTT_EVENT_HOSTNAME_MAX)
            return fail(err, errlen, err_field, "hostname",
                        "hostname is %zu bytes, longer than %d", json_string_length(v),
                        MUTT_EVENT_HOSTNAME_MAX);
    }

    v = json_object_get(ev, "timestamp");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) ||
            mutt_time_parse_iso8601n(json_string_value(v), json_string_length(v), NULL) < 0)
            return fail(err, errlen, err_field, "timestamp",
                        "timestamp must be an RFC 3339 / ISO 8601 date-time, e.g. "
                        "2025-01-15T10:30:00Z");
    }
    return 0;
}

int mutt_event_check_size(const json_t *ev, size_t max_event_bytes, char *err, size_t errlen)
{
    size_t len = 0;
    int rc = mutt_event_dump(ev, NULL, 0, &len);
    if (rc != 0 && rc != MUTT_EFULL)
        return fail(err, errlen, NULL, NULL, "event cannot be serialised");
    if (len > max_event_bytes)
        return fail(err, errlen, NULL, NULL,
                    "event is %zu bytes after normalisation, over MAX_EVENT_BYTES (%zu)", len,
                    max_event_bytes);
    return 0;
}

/* ======================================================================================
 * Identity
 * ====================================================================================== */

static int set_event_id(json_t *ev, const uint8_t rnd16[16])
{
    char id[MUTT_UUID_STR_LEN];

    mutt_uuid_v4_format(rnd16, id);
    /* ASCII by construction: skip jansson's UTF-8 check */
    return json_object_set_new(ev, "_event_id", json_stringn_nocheck(id, MUTT_UUID_STR_LEN - 1)) < 0
               ? MUTT_ENOMEM
               : 0;
}

int mutt_event_stamp_shared(json_t *ev, json_t *correlation_id, const uint8_t rnd16[16])
{
    if (!json_is_object(ev) || !json_is_string(correlation_id))
        return MUTT_EINVAL;
    if (json_object_set(ev, "_correlation_id", correlation_id) < 0)
        return MUTT_ENOMEM;
    return set_event_id(ev, rnd16);
}

int mutt_event_stamp(json_t *ev, const char *correlation_id, const uint8_t rnd16[16])
{
    json_t *cid;
    int rc;

    if (!json_is_object(ev) || !correlation_id)
        return MUTT_EINVAL;
    cid = json_string(correlation_id);
    if (!cid)
        return MUTT_EINVAL; /* NULL from jansson here means invalid UTF-8 (or no memory) */
    rc = mutt_event_stamp_shared(ev, cid, rnd16);
    json_decref(cid);
    return rc;
}

int mutt_event_ensure_event_id(json_t *ev, const uint8_t rnd16[16])
{
    json_t *id;
    int rc;

    if (!json_is_object(ev))
        return MUTT_EINVAL;
    id = json_object_get(ev, "_event_id");
    if (json_is_string(id) && json_string_length(id) > 0)
        return 0;
    rc = set_event_id(ev, rnd16);
    return rc < 0 ? rc : 1;
}

bool mutt_correlation_id_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ======================================================================================
 * Serialisation
 * ====================================================================================== */

/* jansson's json_dumpb costs about 2 us for a 300-byte event (a callback per fragment and a
 * per-code-point escape loop), as much as half the parse; this writer produces the same bytes
 * as json_dumpb(JSON_COMPACT) (tested on the demo data) in a fraction of that. Like snprintf it
 * keeps counting past the end of the buffer so the caller learns the size needed. */
struct writer {
    char *buf;
    size_t cap, len;
    bool bad; /* a value jansson could not dump either */
};

static void w_put(struct writer *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        size_t room = w->cap - w->len;
        memcpy(w->buf + w->len, s, n < room ? n : room);
    }
    w->len += n;
}

static void w_char(struct writer *w, char c)
{
    if (w->len < w->cap)
        w->buf[w->len] = c;
    w->len++;
}

static void w_string(struct writer *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0;

    w_char(w, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        w_put(w, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': w_put(w, "\\\"", 2); break;
        case '\\': w_put(w, "\\\\", 2); break;
        case '\b': w_put(w, "\\b", 2); break;
        case '\f': w_put(w, "\\f", 2); break;
        case '\n': w_put(w, "\\n", 2); break;
        case '\r': w_put(w, "\\r", 2); break;
        case '\t': w_put(w, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            w_put(w, u, 6);
            break;
        }
        }
    }
    w_put(w, s + run, n - run);
    w_char(w, '"');
}

static void w_value(struct writer *w, const json_t *v)
{
    char num[32];
    int n;

    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *child;
        bool first = true;
        w_char(w, '{');
        json_object_foreach((json_t *)v, key, child) {
            if (!first)
                w_char(w, ',');
            first = false;
            w_string(w, key, strlen(key));
            w_char(w, ':');
            w_value(w, child);
        }
        w_char(w, '}');
        return;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *child;
        w_char(w, '[');
        json_array_foreach(v, i, child) {
            if (i)
                w_char(w, ',');
            w_value(w, child);
        }
        w_char(w, ']');
        return;
    }
    case JSON_STRING:
        w_string(w, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        w_put(w, num, (size_t)n);
        return;
    case JSON_REAL: {
        /* rare: let jansson format it so reals stay byte-identical to its own output */
        size_t need = json_dumpb(v, num, sizeof num, JSON_ENCODE_ANY | DUMP_FLAGS);
        if (need == 0 || need > sizeof num)
            w->bad = true;
        else
            w_put(w, num, need);
        return;
    }
    case JSON_TRUE: w_put(w, "true", 4); return;
    case JSON_FALSE: w_put(w, "false", 5); return;
    case JSON_NULL: w_put(w, "null", 4); return;
    }
}

int mutt_event_dump(const json_t *ev, char *buf, size_t cap, size_t *len)
{
    struct writer w = {.buf = buf, .cap = buf ? cap : 0};

    if (!ev)
        return MUTT_EINVAL;
    w_value(&w, ev);
    if (w.bad)
        return MUTT_EINVAL;
    if (len)
        *len = w.len;
    return w.len > cap ? MUTT_EFULL : 0;
}

int mutt_event_dump_alloc(const json_t *ev, char **out, size_t *len)
{
    char stack[2048];
    size_t n = 0;
    char *p;
    int rc;

    *out = NULL;
    /* one pass into the stack for typical events, a second only for large ones */
    rc = mutt_event_dump(ev, stack, sizeof stack, &n);
    if (rc < 0 && rc != MUTT_EFULL)
        return rc;
    p = malloc(n + 1);
    if (!p)
        return MUTT_ENOMEM;
    if (rc == 0)
        memcpy(p, stack, n);
    else if (mutt_event_dump(ev, p, n, &n) != 0) {
        free(p);
        return MUTT_EINVAL;
    }
    p[n] = '\0';
    *out = p;
    if (len)
        *len = n;
    return 0;
}
