/* Static configuration (CONTRACT §2, D23/D24): reads the KEY=VALUE file and the environment into
 * layers, resolves aliases, validates every value against the key table (config_keys.c) and
 * collects one `config error:` / `config warning:` line per problem; never prints or exits.
 * Runs before the loop starts (and on SIGHUP via reload_safe), so plain blocking file I/O is fine. */
#define _GNU_SOURCE /* vasprintf, strndup, realpath */
#include "mutt/approval.h"
#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg_hosts.h"
#include "mutt/redis_sentinels.h"
#include "mutt/redact.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_SYSTEM_PATH "/etc/mutt/mutt.conf"
#define DEFAULT_LOCAL_PATH "mutt.conf"
#define SUGGEST_MAX_DISTANCE 3

/* Names that are not a key's spelling but set keys through a mapping (D23). */
#define SPECIAL_LOG_JSON "LOG_JSON_ENABLED"
#define SPECIAL_VAULT_PATHS "VAULT_SECRETS_PATH"

struct cfg_value {
    char *s;   /* owned, never NULL */
    int64_t i; /* INT/PORT (and BOOL as 0/1, DOUBLE truncated) */
    double d;  /* DOUBLE (and INT as double) */
    bool b;    /* BOOL */
};

struct mutt_config {
    struct cfg_value v[MUTT_CFG__COUNT];
    enum mutt_cfg_source src[MUTT_CFG__COUNT];
    unsigned roles;
    char *path; /* file actually read (absolute when resolved by default), or NULL */
    char **env; /* NULL-terminated copy of the environment entries we know, for reload_safe */
};

/* ------------------------------------------------------------------------------------------ */
/* Report                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static void push_line(char ***arr, size_t *n, const char *fmt, va_list ap)
{
    char *line = NULL;
    if (vasprintf(&line, fmt, ap) < 0)
        return; /* out of memory while reporting: the line is lost, nothing else can be done */
    char **grown = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!grown) {
        free(line);
        return;
    }
    grown[(*n)++] = line;
    *arr = grown;
}

__attribute__((format(printf, 2, 3))) static void report_error(struct mutt_config_report *r, const char *fmt,
                                                                ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_line(&r->errors, &r->n_errors, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void report_warning(struct mutt_config_report *r,
                                                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    push_line(&r->warnings, &r->n_warnings, fmt, ap);
    va_end(ap);
}

void mutt_config_report_free(struct mutt_config_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_errors; i++)
        free(r->errors[i]);
    for (size_t i = 0; i < r->n_warnings; i++)
        free(r->warnings[i]);
    free(r->errors);
    free(r->warnings);
    memset(r, 0, sizeof *r);
}

/* Secret values never reach a report line (CONTRACT §9), nor do credentials inside a URL
 * (MOOG_WEBHOOK_URL=https://user:pw@...): every other value goes through the URL redactor,
 * which leaves non-URLs alone. `buf` holds the result when one is needed. */
static const char *shown(enum mutt_cfg_key key, const char *value, char *buf, size_t len)
{
    if (mutt_cfg_defs[key].type == MUTT_CFG_T_SECRET && value && value[0])
        return "***";
    return mutt_redact_url(value ? value : "", buf, len);
}

/* ------------------------------------------------------------------------------------------ */
/* Roles                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static const struct {
    unsigned bit;
    const char *name;
} role_names[] = {
    { MUTT_ROLE_INGEST, "ingest" }, { MUTT_ROLE_ALERT, "alert" }, { MUTT_ROLE_FORWARD, "forward" },
    { MUTT_ROLE_REMEDIATE, "remediate" }, { MUTT_ROLE_WEB, "web" }, { MUTT_ROLE_RETENTION, "retention" },
};
#define N_ROLES (sizeof role_names / sizeof role_names[0])

const char *mutt_role_name(unsigned role_bit)
{
    for (size_t i = 0; i < N_ROLES; i++)
        if (role_names[i].bit == role_bit)
            return role_names[i].name;
    return "unknown";
}

static void copy_bad(char *bad, size_t bad_len, const char *s, size_t n)
{
    if (!bad || bad_len == 0)
        return;
    if (n >= bad_len)
        n = bad_len - 1;
    memcpy(bad, s, n);
    bad[n] = '\0';
}

int mutt_roles_parse(const char *list, unsigned *out_roles, char *bad, size_t bad_len)
{
    copy_bad(bad, bad_len, "", 0);
    if (!list)
        return MUTT_EINVAL;
    unsigned roles = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len > 0 && isspace((unsigned char)*s)) {
            s++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)s[len - 1]))
            len--;
        if (len == 0) /* "" or "ingest,,web": an empty name is a typo, not "nothing" */
            return MUTT_EINVAL;
        bool found = false;
        if (len == 3 && strncasecmp(s, "all", 3) == 0) {
            roles |= MUTT_ROLE_ALL;
            found = true;
        }
        for (size_t i = 0; !found && i < N_ROLES; i++) {
            if (strlen(role_names[i].name) == len && strncasecmp(s, role_names[i].name, len) == 0) {
                roles |= role_names[i].bit;
                found = true;
            }
        }
        if (!found) {
            copy_bad(bad, bad_len, s, len);
            return MUTT_EINVAL;
        }
        if (!end)
            break;
        p = end + 1;
    }
    *out_roles = roles;
    return 0;
}

const char *mutt_roles_format(unsigned roles, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < N_ROLES; i++) {
        if (!(roles & role_names[i].bit))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", role_names[i].name);
        if (n < 0 || (size_t)n >= len - used) {
            buf[used] = '\0'; /* never leave half a name behind */
            break;
        }
        used += (size_t)n;
    }
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Names, aliases, suggestions                                                                */
/* ------------------------------------------------------------------------------------------ */

enum mutt_cfg_key mutt_config_find(const char *name)
{
    if (!name)
        return MUTT_CFG__COUNT;
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        const struct mutt_cfg_def *d = &mutt_cfg_defs[k];
        if (strcmp(d->name, name) == 0)
            return (enum mutt_cfg_key)k;
        for (size_t a = 0; a < 4 && d->aliases[a]; a++)
            if (strcmp(d->aliases[a], name) == 0)
                return (enum mutt_cfg_key)k;
    }
    return MUTT_CFG__COUNT;
}

/* Returns the table's own (static) spelling for `name`, so entries can keep a pointer to it. */
static const char *static_spelling(enum mutt_cfg_key key, const char *name)
{
    const struct mutt_cfg_def *d = &mutt_cfg_defs[key];
    for (size_t a = 0; a < 4 && d->aliases[a]; a++)
        if (strcmp(d->aliases[a], name) == 0)
            return d->aliases[a];
    return d->name;
}

static bool is_special(const char *name)
{
    return strcmp(name, SPECIAL_LOG_JSON) == 0 || strcmp(name, SPECIAL_VAULT_PATHS) == 0;
}

/* Case-insensitive Levenshtein distance; names are short, so a two-row table on the stack. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = toupper((unsigned char)a[i - 1]) == toupper((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

static void consider(const char *name, const char *candidate, const char **best, size_t *best_d)
{
    size_t d = edit_distance(name, candidate);
    if (d < *best_d) {
        *best_d = d;
        *best = candidate;
    }
}

/* The known spelling nearest to `name`, or NULL when nothing is close enough to help. */
static const char *nearest_key(const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        consider(name, mutt_cfg_defs[k].name, &best, &best_d);
        for (size_t a = 0; a < 4 && mutt_cfg_defs[k].aliases[a]; a++)
            consider(name, mutt_cfg_defs[k].aliases[a], &best, &best_d);
    }
    consider(name, SPECIAL_LOG_JSON, &best, &best_d);
    consider(name, SPECIAL_VAULT_PATHS, &best, &best_d);
    if (best_d > SUGGEST_MAX_DISTANCE || best_d >= strlen(name))
        return NULL;
    return best;
}

/* ------------------------------------------------------------------------------------------ */
/* Value parsing and validation                                                               */
/* ------------------------------------------------------------------------------------------ */

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "1", "yes", "on" };
    static const char *const no[] = { "false", "0", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* 0 ok; MUTT_EINVAL not a number; MUTT_ERANGE does not fit int64. */
static int parse_int(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return MUTT_EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0')
        return MUTT_EINVAL;
    if (errno == ERANGE)
        return MUTT_ERANGE;
    *out = (int64_t)v;
    return 0;
}

static bool parse_double(const char *s, double *out)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static void format_range(const struct mutt_cfg_def *d, char *why, size_t len)
{
    if (d->type == MUTT_CFG_T_DOUBLE)
        snprintf(why, len, "must be between %g and %g", d->min, d->max);
    else if (d->max >= MUTT_CFG_NOMAX_THRESHOLD)
        snprintf(why, len, "must be >= %lld", (long long)d->min);
    else
        snprintf(why, len, "must be between %lld and %lld", (long long)d->min, (long long)d->max);
}

static bool is_http_url(const char *s)
{
    size_t skip;
    if (strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    return s[skip] != '\0' && s[skip] != '/' && !strpbrk(s, " \t\r\n");
}

static bool is_pod_name(const char *s)
{
    size_t n = strlen(s);
    if (n > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' && *s != '-')
            return false;
    return true;
}

/* The value parsed as its key's type (int, port, bool, double, with their ranges) into tmp's
 * numeric fields. On failure writes the reason into `why`. */
static bool check_type(const struct mutt_cfg_def *d, const char *v, struct cfg_value *tmp, char *why, size_t why_len)
{
    switch (d->type) {
    case MUTT_CFG_T_STRING:
    case MUTT_CFG_T_SECRET:
        break;
    case MUTT_CFG_T_PORT_LIST: {
        int n = mutt_pg_ports_check(v, why, why_len);
        if (n < 0)
            return false;
        if (n == 0) {
            snprintf(why, why_len, "must not be empty");
            return false;
        }
        tmp->i = strtol(v + strspn(v, " \t"), NULL, 10);
        tmp->d = (double)tmp->i;
        tmp->b = true;
        break;
    }
    case MUTT_CFG_T_INT:
    case MUTT_CFG_T_PORT: {
        int rc = parse_int(v, &tmp->i);
        if (rc == MUTT_ERANGE) {
            snprintf(why, why_len, "does not fit in a 64-bit integer");
            return false;
        }
        if (rc != 0) {
            snprintf(why, why_len, d->type == MUTT_CFG_T_PORT ? "not a port number (1..65535)" : "not an integer");
            return false;
        }
        if (d->type == MUTT_CFG_T_PORT && (tmp->i < 1 || tmp->i > 65535)) {
            snprintf(why, why_len, "port must be between 1 and 65535");
            return false;
        }
        if (d->type == MUTT_CFG_T_INT && mutt_cfg_def_has_range(d) && ((double)tmp->i < d->min || (double)tmp->i > d->max)) {
            format_range(d, why, why_len);
            return false;
        }
        tmp->d = (double)tmp->i;
        tmp->b = tmp->i != 0;
        break;
    }
    case MUTT_CFG_T_BOOL:
        if (!parse_bool(v, &tmp->b)) {
            snprintf(why, why_len, "not a boolean (use true/false, 1/0, yes/no, on/off)");
            return false;
        }
        tmp->i = tmp->b;
        tmp->d = tmp->b;
        break;
    case MUTT_CFG_T_DOUBLE:
        if (!parse_double(v, &tmp->d)) {
            snprintf(why, why_len, "not a number");
            return false;
        }
        if (mutt_cfg_def_has_range(d) && (tmp->d < d->min || tmp->d > d->max)) {
            format_range(d, why, why_len);
            return false;
        }
        tmp->i = (int64_t)tmp->d;
        tmp->b = tmp->d != 0;
        break;
    }
    return true;
}

/* Checks of one key's own syntax (enums, addresses, URLs, roles, D24); tmp holds the value as
 * its type. One case per key: a table in code, long because the keys are many. On failure
 * writes the reason into `why`. */
static bool check_key(enum mutt_cfg_key key, const char *v, const struct cfg_value *tmp, char *why, size_t why_len)
{
    switch (key) {
    case MUTT_CFG_MUTT_ROLES: {
        unsigned roles;
        char bad[64];
        if (mutt_roles_parse(v, &roles, bad, sizeof bad) != 0) {
            if (bad[0])
                snprintf(why, why_len, "unknown role '%s' (valid: all, ingest, alert, forward, remediate, web, retention)",
                         bad);
            else
                snprintf(why, why_len, "empty role name (valid: all, ingest, alert, forward, remediate, web, retention)");
            return false;
        }
        break;
    }
    case MUTT_CFG_MUTT_ENV:
        if (strcmp(v, "development") != 0 && strcmp(v, "production") != 0) {
            snprintf(why, why_len, "must be development or production");
            return false;
        }
        break;
    case MUTT_CFG_LOG_LEVEL: {
        enum mutt_log_level lvl;
        if (mutt_log_parse_level(v, &lvl) != 0) {
            snprintf(why, why_len, "must be one of DEBUG INFO WARNING ERROR CRITICAL");
            return false;
        }
        break;
    }
    case MUTT_CFG_LOG_FORMAT: {
        enum mutt_log_format fmt;
        if (mutt_log_parse_format(v, &fmt) != 0) {
            snprintf(why, why_len, "must be json or text");
            return false;
        }
        break;
    }
    case MUTT_CFG_BIND_ADDR: {
        unsigned char buf[16];
        if (inet_pton(AF_INET, v, buf) != 1 && inet_pton(AF_INET6, v, buf) != 1) {
            snprintf(why, why_len, "must be an IPv4 or IPv6 address literal (no host names)");
            return false;
        }
        break;
    }
    case MUTT_CFG_POD_NAME:
        if (!is_pod_name(v)) {
            snprintf(why, why_len, "may only contain letters, digits, '.', '_' and '-' (at most 128)");
            return false;
        }
        break;
    case MUTT_CFG_DB_TARGET_SESSION_ATTRS:
        if (v[0] && strcmp(v, "any") != 0 && strcmp(v, "read-write") != 0 && strcmp(v, "read-only") != 0 &&
            strcmp(v, "primary") != 0 && strcmp(v, "standby") != 0 && strcmp(v, "prefer-standby") != 0) {
            snprintf(why, why_len, "must be any, read-write, read-only, primary, standby or prefer-standby");
            return false;
        }
        break;
    case MUTT_CFG_DB_HOST: {
        struct mutt_pg_host hosts[MUTT_PG_MAX_HOSTS];
        if (mutt_pg_hosts_parse(v, NULL, hosts, MUTT_PG_MAX_HOSTS, why, why_len) < 0)
            return false;
        break;
    }
    case MUTT_CFG_DB_TLS_VERIFY:
        if (v[0] && strcmp(v, "none") != 0 && strcmp(v, "ca") != 0 && strcmp(v, "full") != 0) {
            snprintf(why, why_len, "must be none, ca or full");
            return false;
        }
        break;
    case MUTT_CFG_MOOG_WEBHOOK_URL:
    case MUTT_CFG_MOOG_HEALTH_URL:
    case MUTT_CFG_VAULT_ADDR:
        if (v[0] && !is_http_url(v)) {
            snprintf(why, why_len, "must be an http:// or https:// URL");
            return false;
        }
        break;
    case MUTT_CFG_REDIS_TLS_ENABLED:
        if (tmp->b) { /* D24 */
            snprintf(why, why_len,
                     "hiredis 0.14 has no TLS support; run a local TLS tunnel (stunnel) to Redis, "
                     "point REDIS_HOST at loopback (127.0.0.1) and set REDIS_TLS_ENABLED=false");
            return false;
        }
        break;
    default:
        break;
    }
    return true;
}

/* Checks that apply to one key on its own (types, ranges, enums, D24). On failure writes the
 * reason into `why` and leaves `out` untouched. */
static bool check_value(enum mutt_cfg_key key, const char *v, struct cfg_value *out, char *why, size_t why_len)
{
    const struct mutt_cfg_def *d = &mutt_cfg_defs[key];
    struct cfg_value tmp = { 0 };

    if (!check_type(d, v, &tmp, why, why_len))
        return false;

    /* Names of queues, hosts and the like have a non-empty default: empty would break the
     * key schema silently, so it is refused (REQUIRED_FIELDS may legitimately be empty). */
    if ((d->type == MUTT_CFG_T_STRING) && d->default_value && d->default_value[0] && !v[0] &&
        key != MUTT_CFG_REQUIRED_FIELDS) {
        snprintf(why, why_len, "must not be empty");
        return false;
    }

    if (!check_key(key, v, &tmp, why, why_len))
        return false;

    char *copy = strdup(v);
    if (!copy) {
        snprintf(why, why_len, "out of memory");
        return false;
    }
    /* a replaced secret (Vault rotation) must not linger in freed memory */
    if (out->s && mutt_cfg_defs[key].type == MUTT_CFG_T_SECRET)
        explicit_bzero(out->s, strlen(out->s));
    free(out->s);
    tmp.s = copy;
    *out = tmp;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* Layers: what the file and the environment each said, before precedence is applied          */
/* ------------------------------------------------------------------------------------------ */

struct entry {
    enum mutt_cfg_key key;
    const char *spelling; /* static: a table name/alias or a special's name */
    char *raw;            /* the value as written (what messages show) */
    char *value;          /* the value for `key` after any special mapping */
};

struct layer {
    struct entry *v;
    size_t n;
};

static void layer_free(struct layer *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].raw);
        free(l->v[i].value);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* The same spelling set twice in one layer: the later line wins, as in a shell. */
static int layer_add(struct layer *l, enum mutt_cfg_key key, const char *spelling, const char *raw,
                     const char *value)
{
    char *r = strdup(raw), *val = strdup(value);
    if (!r || !val) {
        free(r);
        free(val);
        return MUTT_ENOMEM;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].key == key && l->v[i].spelling == spelling) {
            free(l->v[i].raw);
            free(l->v[i].value);
            l->v[i].raw = r;
            l->v[i].value = val;
            return 0;
        }
    }
    struct entry *grown = realloc(l->v, (l->n + 1) * sizeof *grown);
    if (!grown) {
        free(r);
        free(val);
        return MUTT_ENOMEM;
    }
    l->v = grown;
    l->v[l->n++] = (struct entry){ key, spelling, r, val };
    return 0;
}

/* Adds NAME=VALUE to the layer, applying the D23 special mappings. Returns 0, MUTT_ENOTFOUND
 * for a name we do not know, or MUTT_EINVAL when a special's value is malformed (reported). */
static int layer_set(struct layer *l, const char *name, const char *value, struct mutt_config_report *r)
{
    if (strcmp(name, SPECIAL_LOG_JSON) == 0) {
        bool on;
        if (!parse_bool(value, &on)) {
            report_error(r, "config error: %s=%s: not a boolean (use true/false, 1/0, yes/no, on/off)", name, value);
            return MUTT_EINVAL;
        }
        return layer_add(l, MUTT_CFG_LOG_FORMAT, SPECIAL_LOG_JSON, value, on ? "json" : "text");
    }
    if (strcmp(name, SPECIAL_VAULT_PATHS) == 0) {
        const char *slash = strchr(value, '/');
        if (!slash || slash == value || slash[1] == '\0') {
            report_error(r, "config error: %s=%s: must be <mount>/<path>, e.g. secret/mutt/prod", name, value);
            return MUTT_EINVAL;
        }
        char *mount = strndup(value, (size_t)(slash - value));
        if (!mount)
            return MUTT_ENOMEM;
        int rc = layer_add(l, MUTT_CFG_VAULT_MOUNT_PATH, SPECIAL_VAULT_PATHS, value, mount);
        free(mount);
        if (rc == 0)
            rc = layer_add(l, MUTT_CFG_VAULT_SECRET_PATH, SPECIAL_VAULT_PATHS, value, slash + 1);
        return rc;
    }
    enum mutt_cfg_key key = mutt_config_find(name);
    if (key == MUTT_CFG__COUNT)
        return MUTT_ENOTFOUND;
    return layer_add(l, key, static_spelling(key, name), value, value);
}

/* Two spellings agree when their values mean the same ("true" and "yes" for a bool). */
static bool same_meaning(enum mutt_cfg_key key, const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return true;
    const struct mutt_cfg_def *d = &mutt_cfg_defs[key];
    if (d->type == MUTT_CFG_T_BOOL) {
        bool x, y;
        return parse_bool(a, &x) && parse_bool(b, &y) && x == y;
    }
    if (d->type == MUTT_CFG_T_INT || d->type == MUTT_CFG_T_PORT) {
        int64_t x, y;
        return parse_int(a, &x) == 0 && parse_int(b, &y) == 0 && x == y;
    }
    if (key == MUTT_CFG_LOG_FORMAT || key == MUTT_CFG_LOG_LEVEL)
        return strcasecmp(a, b) == 0;
    return false;
}

static void report_conflict(struct mutt_config_report *r, const struct entry *a, const struct entry *b)
{
    char abuf[MUTT_REDACT_URL_MAX], bbuf[MUTT_REDACT_URL_MAX];
    report_error(r, "config error: %s=%s: conflicts with %s=%s (both set %s)", a->spelling,
                 shown(a->key, a->raw, abuf, sizeof abuf), b->spelling, shown(b->key, b->raw, bbuf, sizeof bbuf),
                 mutt_cfg_defs[a->key].name);
}

static bool layer_has_spelling(const struct layer *l, enum mutt_cfg_key key, const char *spelling)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].key == key && l->v[i].spelling == spelling)
            return true;
    return false;
}

/* Aliases of one key set to different values is an error naming both (CONTRACT §2): inside a
 * layer always; across file and environment unless the environment also overrides the file's
 * own spelling (then the override is explicit, not an accident of two names). */
static void check_conflicts(const struct layer *file, const struct layer *env, struct mutt_config_report *r)
{
    const struct layer *layers[2] = { file, env };
    for (int li = 0; li < 2; li++) {
        const struct layer *l = layers[li];
        for (size_t i = 0; i < l->n; i++)
            for (size_t j = i + 1; j < l->n; j++)
                if (l->v[i].key == l->v[j].key && l->v[i].spelling != l->v[j].spelling &&
                    !same_meaning(l->v[i].key, l->v[i].value, l->v[j].value))
                    report_conflict(r, &l->v[i], &l->v[j]);
    }
    for (size_t i = 0; i < file->n; i++) {
        const struct entry *f = &file->v[i];
        if (layer_has_spelling(env, f->key, f->spelling))
            continue;
        for (size_t j = 0; j < env->n; j++) {
            const struct entry *e = &env->v[j];
            if (e->key == f->key && e->spelling != f->spelling && !same_meaning(f->key, f->value, e->value))
                report_conflict(r, f, e);
        }
    }
}

static const struct entry *layer_last(const struct layer *l, enum mutt_cfg_key key)
{
    const struct entry *found = NULL;
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].key == key)
            found = &l->v[i];
    return found;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static bool is_key_name(const char *s)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_')
            return false;
    return true;
}

/* Reads the file into `l`. Returns 0, or MUTT_EIO when it cannot be opened (reported). Bad lines
 * are errors, unknown keys warnings with the nearest known spelling. */
static int read_file(const char *path, struct layer *l, struct mutt_config_report *r)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        report_error(r, "config error: cannot read config file %s: %s", path, strerror(errno));
        return MUTT_EIO;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t'))
            s = trim(s + 6);
        char *eq = strchr(s, '=');
        if (!eq) {
            report_error(r, "config error: %s:%d: expected KEY=VALUE", path, lineno);
            continue;
        }
        *eq = '\0';
        char *name = trim(s);
        char *value = trim(eq + 1);
        if (!is_key_name(name)) {
            report_error(r, "config error: %s:%d: '%s' is not a valid key name", path, lineno, name);
            continue;
        }
        size_t vlen = strlen(value);
        if (vlen >= 2 && (value[0] == '"' || value[0] == '\'') && value[vlen - 1] == value[0]) {
            value[vlen - 1] = '\0';
            value++;
        }
        int rc = layer_set(l, name, value, r);
        if (rc == MUTT_ENOTFOUND) {
            const char *near = nearest_key(name);
            if (near)
                report_warning(r, "config warning: %s:%d: unknown key %s (did you mean %s?)", path, lineno, name, near);
            else
                report_warning(r, "config warning: %s:%d: unknown key %s", path, lineno, name);
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* Environment: only names we know count; the rest of the environment is someone else's. */
static void read_env(char *const *envp, struct layer *l, struct mutt_config_report *r)
{
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || eq == *e || (size_t)(eq - *e) >= 64)
            continue;
        char name[64];
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        if (!is_special(name) && mutt_config_find(name) == MUTT_CFG__COUNT)
            continue;
        layer_set(l, name, eq + 1, r);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Load                                                                                       */
/* ------------------------------------------------------------------------------------------ */

void mutt_config_destroy(struct mutt_config *cfg)
{
    if (!cfg)
        return;
    for (int k = 0; k < MUTT_CFG__COUNT; k++)
        free(cfg->v[k].s);
    for (char **e = cfg->env; e && *e; e++)
        free(*e);
    free(cfg->env);
    free(cfg->path);
    free(cfg);
}

static char **copy_known_env(char *const *envp)
{
    size_t n = 0;
    for (char *const *e = envp; e && *e; e++)
        n++;
    char **out = calloc(n + 1, sizeof *out);
    if (!out)
        return NULL;
    size_t m = 0;
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || (size_t)(eq - *e) >= 64)
            continue;
        char name[64];
        memcpy(name, *e, (size_t)(eq - *e));
        name[eq - *e] = '\0';
        if (!is_special(name) && mutt_config_find(name) == MUTT_CFG__COUNT)
            continue;
        out[m] = strdup(*e);
        if (!out[m]) {
            for (size_t i = 0; i < m; i++)
                free(out[i]);
            free(out);
            return NULL;
        }
        m++;
    }
    return out;
}

static bool empty(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return cfg->v[key].s[0] == '\0';
}

/* Checks that involve several keys or the enabled roles; `bad` marks keys whose own value was
 * refused, so one typo does not also produce a misleading cross-key error. */
static void cross_check(const struct mutt_config *cfg, const bool *bad, struct mutt_config_report *r)
{
    const struct cfg_value *v = cfg->v;
    if (!bad[MUTT_CFG_HEARTBEAT_EXPIRY] && !bad[MUTT_CFG_HEARTBEAT_INTERVAL] &&
        v[MUTT_CFG_HEARTBEAT_EXPIRY].i <= v[MUTT_CFG_HEARTBEAT_INTERVAL].i)
        report_error(r, "config error: HEARTBEAT_EXPIRY=%s: must be greater than HEARTBEAT_INTERVAL (%s)",
                     v[MUTT_CFG_HEARTBEAT_EXPIRY].s, v[MUTT_CFG_HEARTBEAT_INTERVAL].s);
    /* D37: the WAIT must end before the request's own deadline, or every slow replica would
     * turn into a "Redis unavailable" 503 instead of not_replicated. */
    if (!bad[MUTT_CFG_INGEST_MIN_REPLICAS] && !bad[MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS] &&
        !bad[MUTT_CFG_INGEST_TIMEOUT_MS] && v[MUTT_CFG_INGEST_MIN_REPLICAS].i > 0 &&
        v[MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS].i >= v[MUTT_CFG_INGEST_TIMEOUT_MS].i)
        report_error(r, "config error: INGEST_REPLICA_TIMEOUT_MS=%s: must be below INGEST_TIMEOUT_MS (%s) when "
                        "INGEST_MIN_REPLICAS > 0",
                     v[MUTT_CFG_INGEST_REPLICA_TIMEOUT_MS].s, v[MUTT_CFG_INGEST_TIMEOUT_MS].s);
    if (!bad[MUTT_CFG_DB_HOST] && !bad[MUTT_CFG_DB_PORT]) {
        struct mutt_pg_host hosts[MUTT_PG_MAX_HOSTS];
        char why[160];
        if (mutt_pg_hosts_parse(v[MUTT_CFG_DB_HOST].s, v[MUTT_CFG_DB_PORT].s, hosts, MUTT_PG_MAX_HOSTS, why,
                                sizeof why) < 0)
            report_error(r, "config error: DB_PORT=%s: does not match DB_HOST=%s: %s", v[MUTT_CFG_DB_PORT].s,
                         v[MUTT_CFG_DB_HOST].s, why);
    }
    if (!bad[MUTT_CFG_REDIS_SENTINELS]) {
        struct mutt_redis_addr sentinels[MUTT_REDIS_MAX_SENTINELS];
        char why[160];
        if (mutt_redis_sentinels_parse(v[MUTT_CFG_REDIS_SENTINELS].s, sentinels, MUTT_REDIS_MAX_SENTINELS, why,
                                       sizeof why) < 0)
            report_error(r, "config error: REDIS_SENTINELS=%s: %s", v[MUTT_CFG_REDIS_SENTINELS].s, why);
    }
    if (!bad[MUTT_CFG_DB_POOL_MAX_CONN] && !bad[MUTT_CFG_DB_POOL_MIN_CONN] &&
        v[MUTT_CFG_DB_POOL_MAX_CONN].i < v[MUTT_CFG_DB_POOL_MIN_CONN].i)
        report_error(r, "config error: DB_POOL_MAX_CONN=%s: must be >= DB_POOL_MIN_CONN (%s)",
                     v[MUTT_CFG_DB_POOL_MAX_CONN].s, v[MUTT_CFG_DB_POOL_MIN_CONN].s);
    if (!bad[MUTT_CFG_MOOG_RETRY_MAX_DELAY] && !bad[MUTT_CFG_MOOG_RETRY_BASE_DELAY] &&
        v[MUTT_CFG_MOOG_RETRY_MAX_DELAY].d < v[MUTT_CFG_MOOG_RETRY_BASE_DELAY].d)
        report_error(r, "config error: MOOG_RETRY_MAX_DELAY=%s: must be >= MOOG_RETRY_BASE_DELAY (%s)",
                     v[MUTT_CFG_MOOG_RETRY_MAX_DELAY].s, v[MUTT_CFG_MOOG_RETRY_BASE_DELAY].s);
    if (empty(cfg, MUTT_CFG_TLS_CERT_FILE) != empty(cfg, MUTT_CFG_TLS_KEY_FILE)) {
        if (empty(cfg, MUTT_CFG_TLS_KEY_FILE))
            report_error(r, "config error: TLS_CERT_FILE=%s: TLS_KEY_FILE must be set too (both or neither)",
                         v[MUTT_CFG_TLS_CERT_FILE].s);
        else
            report_error(r, "config error: TLS_KEY_FILE=%s: TLS_CERT_FILE must be set too (both or neither)",
                         v[MUTT_CFG_TLS_KEY_FILE].s);
    }
    /* A read-only key equal to the admin key would let every read-only user write. Values are
     * compared, never printed (CONTRACT §9). Keys that arrive from Vault later are checked by the
     * web stage's auth instead (mutt_api_key_role refuses the pair). */
    if (!empty(cfg, MUTT_CFG_WEBUI_READONLY_API_KEY) &&
        strcmp(v[MUTT_CFG_WEBUI_API_KEY].s, v[MUTT_CFG_WEBUI_READONLY_API_KEY].s) == 0)
        report_error(r, "config error: WEBUI_READONLY_API_KEY=***: must differ from WEBUI_API_KEY (a read-only key "
                        "equal to the admin key would grant writes)");
    /* D55: verification without a CA would fall back to libpq's ~/.postgresql/root.crt, and
     * verification without TLS would silently connect in clear text: both are refused. */
    const char *verify = v[MUTT_CFG_DB_TLS_VERIFY].s;
    if (!bad[MUTT_CFG_DB_TLS_VERIFY] && (strcmp(verify, "ca") == 0 || strcmp(verify, "full") == 0)) {
        if (!v[MUTT_CFG_DB_TLS_ENABLED].b)
            report_error(r, "config error: DB_TLS_VERIFY=%s: needs DB_TLS_ENABLED=true", verify);
        else if (empty(cfg, MUTT_CFG_DB_TLS_CA_CERT_PATH))
            report_error(r, "config error: DB_TLS_VERIFY=%s: needs DB_TLS_CA_CERT_PATH (the CA to verify with)",
                         verify);
    }
    /* issue 17: a bad APPROVAL_REQUIRED item or users-file line, named, before anything starts */
    char aerr[400];
    if (!bad[MUTT_CFG_APPROVAL_REQUIRED] && mutt_approval_check_config(cfg, aerr, sizeof aerr) != 0)
        report_error(r, "config error: %s", aerr);
    bool vault = !empty(cfg, MUTT_CFG_VAULT_ADDR);
    if (vault && empty(cfg, MUTT_CFG_VAULT_ROLE_ID))
        report_error(r, "config error: VAULT_ROLE_ID=: required when VAULT_ADDR is set");

    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        const struct mutt_cfg_def *d = &mutt_cfg_defs[k];
        unsigned need = d->required_roles & cfg->roles;
        if (!need || !empty(cfg, (enum mutt_cfg_key)k) || bad[k])
            continue;
        /* With Vault the secret arrives after load; the secrets module checks it then. */
        if (vault && d->type == MUTT_CFG_T_SECRET)
            continue;
        char names[128];
        mutt_roles_format(need, names, sizeof names);
        report_error(r, "config error: %s=: required when role %s is enabled", d->name, names);
    }
}

static const char *resolve_default_path(void)
{
    if (access(DEFAULT_SYSTEM_PATH, F_OK) == 0)
        return DEFAULT_SYSTEM_PATH;
    if (access(DEFAULT_LOCAL_PATH, F_OK) == 0)
        return DEFAULT_LOCAL_PATH;
    return NULL;
}

struct mutt_config *mutt_config_load(const char *path, char *const *envp, unsigned roles,
                                     struct mutt_config_report *report)
{
    struct mutt_config_report local;
    struct mutt_config_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    if (!envp)
        envp = environ;

    struct layer file = { NULL, 0 }, env = { NULL, 0 };
    struct mutt_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        goto fail;
    cfg->env = copy_known_env(envp);
    if (!cfg->env)
        goto fail;

    const char *use_path = path ? path : resolve_default_path();
    if (use_path) {
        int rc = read_file(use_path, &file, r);
        if (rc != 0 && path)
            goto fail; /* an explicit file that cannot be read is fatal (a default one is reported) */
        if (rc == 0) {
            /* absolute, so a SIGHUP reload still finds it if the process changed directory */
            char *abs = realpath(use_path, NULL);
            cfg->path = abs ? abs : strdup(use_path);
            if (!cfg->path)
                goto fail;
        }
    }
    read_env(envp, &env, r);
    check_conflicts(&file, &env, r);

    bool bad[MUTT_CFG__COUNT] = { false };
    char why[256];
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        const struct mutt_cfg_def *d = &mutt_cfg_defs[k];
        const char *dflt = d->default_value ? d->default_value : "";
        if (!check_value((enum mutt_cfg_key)k, dflt, &cfg->v[k], why, sizeof why)) {
            /* the table itself is wrong: say so loudly rather than run with garbage */
            report_error(r, "config error: %s=%s: built-in default invalid: %s", d->name, dflt, why);
            cfg->v[k].s = strdup("");
            if (!cfg->v[k].s)
                goto fail;
            bad[k] = true;
            continue;
        }
        cfg->src[k] = MUTT_CFG_SRC_DEFAULT;

        const struct entry *e = layer_last(&env, (enum mutt_cfg_key)k);
        enum mutt_cfg_source src = MUTT_CFG_SRC_ENV;
        if (!e) {
            e = layer_last(&file, (enum mutt_cfg_key)k);
            src = MUTT_CFG_SRC_FILE;
        }
        if (!e)
            continue;
        if (check_value((enum mutt_cfg_key)k, e->value, &cfg->v[k], why, sizeof why)) {
            cfg->src[k] = src;
        } else {
            /* Show what the user wrote under the name they wrote it with. */
            char vbuf[MUTT_REDACT_URL_MAX];
            report_error(r, "config error: %s=%s: %s", e->spelling,
                         shown((enum mutt_cfg_key)k, e->raw, vbuf, sizeof vbuf), why);
            bad[k] = true;
        }
    }

    if (roles) {
        cfg->roles = (roles & MUTT_ROLE_NONE) ? 0 : (roles & MUTT_ROLE_ALL);
    } else if (mutt_roles_parse(cfg->v[MUTT_CFG_MUTT_ROLES].s, &cfg->roles, NULL, 0) != 0) {
        cfg->roles = MUTT_ROLE_ALL; /* already reported by check_value */
    }
    cross_check(cfg, bad, r);

    layer_free(&file);
    layer_free(&env);
    return cfg;

fail:
    if (r->n_errors == 0)
        report_error(r, "config error: out of memory while loading the configuration");
    layer_free(&file);
    layer_free(&env);
    mutt_config_destroy(cfg);
    if (!report)
        mutt_config_report_free(&local);
    return NULL;
}

int mutt_config_reload_safe(struct mutt_config *cfg, struct mutt_config_report *report)
{
    struct mutt_config_report local;
    struct mutt_config_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    if (!cfg)
        return MUTT_EINVAL;
    if (!cfg->path)
        return 0; /* no file was read at start: nothing can have changed */

    /* Build a complete config the same way start-up did, and only then take the safe keys:
     * any error anywhere leaves the running config untouched. */
    struct mutt_config *fresh = mutt_config_load(cfg->path, cfg->env, cfg->roles ? cfg->roles : MUTT_ROLE_NONE, r);
    int rc = 0;
    if (!fresh || r->n_errors > 0) {
        rc = MUTT_EINVAL;
        goto out;
    }
    for (int k = 0; k < MUTT_CFG__COUNT; k++) {
        if (!mutt_cfg_defs[k].dynamic_safe)
            continue;
        struct cfg_value tmp = cfg->v[k];
        cfg->v[k] = fresh->v[k];
        fresh->v[k] = tmp; /* the old value is freed with `fresh` */
        cfg->src[k] = fresh->src[k];
    }
out:
    mutt_config_destroy(fresh);
    if (!report)
        mutt_config_report_free(&local);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static bool valid_key(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return cfg && (int)key >= 0 && key < MUTT_CFG__COUNT;
}

const char *mutt_config_str(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return valid_key(cfg, key) ? cfg->v[key].s : "";
}

int64_t mutt_config_int(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return valid_key(cfg, key) ? cfg->v[key].i : 0;
}

bool mutt_config_bool(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return valid_key(cfg, key) ? cfg->v[key].b : false;
}

double mutt_config_double(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return valid_key(cfg, key) ? cfg->v[key].d : 0.0;
}

enum mutt_cfg_source mutt_config_source(const struct mutt_config *cfg, enum mutt_cfg_key key)
{
    return valid_key(cfg, key) ? cfg->src[key] : MUTT_CFG_SRC_DEFAULT;
}

unsigned mutt_config_roles(const struct mutt_config *cfg)
{
    return cfg ? cfg->roles : 0;
}

const char *mutt_config_path(const struct mutt_config *cfg)
{
    return cfg ? cfg->path : NULL;
}

int mutt_config_set(struct mutt_config *cfg, enum mutt_cfg_key key, const char *value)
{
    if (!valid_key(cfg, key) || !value)
        return MUTT_EINVAL;
    char why[256];
    if (!check_value(key, value, &cfg->v[key], why, sizeof why))
        return MUTT_EINVAL;
    return 0;
}

