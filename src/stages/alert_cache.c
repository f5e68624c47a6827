/* The alert stage's cache (CONTRACT §4, W25, W32): active rules (compiled by domain/rules.c),
 * development hosts and device teams, read from PostgreSQL in ONE statement (one snapshot) and
 * swapped in only when the whole load succeeded, so a failed reload keeps the old cache. Owns no
 * timer and no subscription: the stage decides when to reload. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/alert.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg.h"
#include "mutt/rules.h"

/* One statement, so rules, dev hosts and teams come from the same snapshot. Rows are ordered
 * the way matching walks them (W25), although compile re-sorts anyway. */
static const char LOAD_SQL[] =
    "SELECT (SELECT coalesce(json_agg(r ORDER BY r.priority, r.id), '[]'::json) FROM ("
    "  SELECT id, match_string, trap_oid, syslog_severity, match_type, priority, prod_handling,"
    "         dev_handling, team_assignment FROM alert_rules WHERE is_active) r),"
    " (SELECT coalesce(json_agg(hostname), '[]'::json) FROM development_hosts),"
    " (SELECT coalesce(json_object_agg(hostname, team_assignment), '{}'::json) FROM device_teams)";

/* ------------------------------------------------------------------------------------------ */
/* a small string map (open addressing, linear probing, power-of-two capacity)                 */

struct strmap_slot {
    char *key;   /* NULL = empty */
    char *value; /* may be NULL (a set) */
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap; /* 0 or a power of two */
    size_t count;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static void strmap_dispose(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
        free(m->slots[i].value);
    }
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* Sizes the table for n entries at most half full. Returns 0 or MUTT_ENOMEM. */
static int strmap_init(struct strmap *m, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    m->slots = calloc(cap, sizeof *m->slots);
    if (!m->slots)
        return MUTT_ENOMEM;
    m->cap = cap;
    m->count = 0;
    return 0;
}

static struct strmap_slot *strmap_find_slot(const struct strmap *m, const char *key)
{
    if (m->cap == 0)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)hash_str(key) & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key || strcmp(s->key, key) == 0)
            return s;
    }
}

/* Inserts or replaces (the table was sized by strmap_init, so it never fills). */
static int strmap_put(struct strmap *m, const char *key, const char *value)
{
    if (m->count * 2 >= m->cap)
        return MUTT_EFULL;
    struct strmap_slot *s = strmap_find_slot(m, key);
    char *v = value ? strdup(value) : NULL;
    if (value && !v)
        return MUTT_ENOMEM;
    if (s->key) {
        free(s->value);
        s->value = v;
        return 0;
    }
    s->key = strdup(key);
    if (!s->key) {
        free(v);
        return MUTT_ENOMEM;
    }
    s->value = v;
    m->count++;
    return 0;
}

static const struct strmap_slot *strmap_get(const struct strmap *m, const char *key)
{
    const struct strmap_slot *s = strmap_find_slot(m, key);
    return s && s->key ? s : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* snapshot                                                                                    */

struct snapshot {
    struct mutt_ruleset *rules;
    struct strmap dev_hosts; /* set */
    struct strmap teams;     /* hostname -> team */
    size_t rules_skipped;    /* rows refused by validation (logged at load) */
};

static void snapshot_free(struct snapshot *s)
{
    if (!s)
        return;
    mutt_rules_destroy(s->rules);
    strmap_dispose(&s->dev_hosts);
    strmap_dispose(&s->teams);
    free(s);
}

struct mutt_alert_cache {
    struct mutt_pg *pg;
    struct snapshot *cur;     /* NULL until the first successful load */
    bool loading;             /* a query is in flight */
    bool again;               /* a reload was asked for while loading: run one more after it */
    bool dying;               /* destroy was called while loading: free on the callback */
    mutt_alert_cache_loaded_cb *cb;
    void *cb_priv;
    uint64_t started_ns;
    char last_error[256];
};

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Builds a snapshot from the three JSON columns. Invalid rules are skipped one by one (logged)
 * rather than failing the whole reload: one bad row written around the API must not freeze
 * every other rule. Returns 0 or a negative MUTT_E* with the reason in err. */
static int build_snapshot(const char *rules_json, const char *dev_json, const char *teams_json,
                          struct snapshot **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *jr = json_loads(rules_json, 0, &jerr);
    json_t *jd = json_loads(dev_json, 0, &jerr);
    json_t *jt = json_loads(teams_json, 0, &jerr);
    struct snapshot *s = calloc(1, sizeof *s);
    struct mutt_rule *rules = NULL;
    int rc = 0;
    if (!s) {
        rc = MUTT_ENOMEM;
        goto out;
    }
    if (!json_is_array(jr) || !json_is_array(jd) || !json_is_object(jt)) {
        snprintf(err, errlen, "unexpected result shape from the cache query");
        rc = MUTT_EIO;
        goto out;
    }
    size_t n = json_array_size(jr), used = 0;
    rules = calloc(n ? n : 1, sizeof *rules);
    if (!rules) {
        rc = MUTT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *row = json_array_get(jr, i);
        struct mutt_rule *r = &rules[used];
        r->id = json_integer_value(json_object_get(row, "id"));
        r->match_string = jstr(row, "match_string");
        r->trap_oid = jstr(row, "trap_oid");
        const json_t *sev = json_object_get(row, "syslog_severity");
        r->syslog_severity = json_is_integer(sev) ? (int)json_integer_value(sev) : -1;
        const char *mt = jstr(row, "match_type");
        r->priority = (int)json_integer_value(json_object_get(row, "priority"));
        r->prod_handling = jstr(row, "prod_handling");
        r->dev_handling = jstr(row, "dev_handling");
        r->team_assignment = jstr(row, "team_assignment");
        r->is_active = true;
        char why[256] = "";
        if (!mt || mutt_rules_match_type_parse(mt, &r->match_type) != 0) {
            snprintf(why, sizeof why, "unknown match_type");
        } else if (!r->prod_handling || !r->dev_handling || !r->team_assignment) {
            snprintf(why, sizeof why, "missing handling or team");
        } else if (mutt_rules_validate(r, why, sizeof why) == 0) {
            used++;
            continue;
        }
        s->rules_skipped++;
        mutt_log_warn("alert", "rule %lld skipped: %s", (long long)r->id, why[0] ? why : "invalid");
    }
    s->rules = mutt_rules_compile(rules, used, err, errlen);
    if (!s->rules) {
        rc = MUTT_EINVAL;
        goto out;
    }
    if ((rc = strmap_init(&s->dev_hosts, json_array_size(jd))) != 0 ||
        (rc = strmap_init(&s->teams, json_object_size(jt))) != 0)
        goto out;
    for (size_t i = 0; i < json_array_size(jd); i++) {
        const char *h = json_string_value(json_array_get(jd, i));
        if (h && (rc = strmap_put(&s->dev_hosts, h, NULL)) != 0)
            goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(jt, k, v) {
        if (json_is_string(v) && (rc = strmap_put(&s->teams, k, json_string_value(v))) != 0)
            goto out;
    }
out:
    free(rules);
    json_decref(jr);
    json_decref(jd);
    json_decref(jt);
    if (rc != 0) {
        if (rc == MUTT_ENOMEM)
            snprintf(err, errlen, "out of memory");
        snapshot_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* loading                                                                                     */

static int start_load(struct mutt_alert_cache *c);

static void on_loaded(void *privdata, PGresult *res, int status)
{
    struct mutt_alert_cache *c = privdata;
    c->loading = false;
    if (c->dying) {
        free(c);
        return;
    }
    int rc = status;
    char err[256] = "";
    struct snapshot *s = NULL;
    if (status == 0 && PQntuples(res) == 1 && PQnfields(res) == 3) {
        rc = build_snapshot(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), &s, err,
                            sizeof err);
    } else if (status == 0) {
        rc = MUTT_EIO;
        snprintf(err, sizeof err, "unexpected result shape from the cache query");
    } else if (status == MUTT_EIO && res) {
        /* the server's message names a missing table or column: not a secret, worth logging */
        snprintf(err, sizeof err, "%s", PQresultErrorMessage(res));
        size_t n = strlen(err);
        while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
            err[--n] = '\0';
    } else {
        snprintf(err, sizeof err, "%s", mutt_strerror(status));
    }
    if (rc == 0) {
        snapshot_free(c->cur);
        c->cur = s;
        c->last_error[0] = '\0';
    } else {
        snprintf(c->last_error, sizeof c->last_error, "%s", err);
    }
    double secs = (double)(uv_hrtime() - c->started_ns) / 1e9;
    mutt_alert_cache_loaded_cb *cb = c->cb;
    void *priv = c->cb_priv;
    bool again = c->again;
    c->again = false;
    if (cb)
        cb(priv, rc, secs);
    if (again && !c->dying)
        start_load(c);
}

static int start_load(struct mutt_alert_cache *c)
{
    c->started_ns = uv_hrtime();
    int rc = mutt_pg_query(c->pg, LOAD_SQL, 0, NULL, on_loaded, c);
    if (rc == 0)
        c->loading = true;
    else
        snprintf(c->last_error, sizeof c->last_error, "%s", mutt_strerror(rc));
    return rc;
}

struct mutt_alert_cache *mutt_alert_cache_create(struct mutt_pg *pg, mutt_alert_cache_loaded_cb *cb, void *privdata)
{
    struct mutt_alert_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->pg = pg;
    c->cb = cb;
    c->cb_priv = privdata;
    return c;
}

int mutt_alert_cache_reload(struct mutt_alert_cache *c)
{
    if (c->loading) {
        c->again = true; /* coalesce: several triggers during one load give one more load */
        return 0;
    }
    return start_load(c);
}

void mutt_alert_cache_destroy(struct mutt_alert_cache *c)
{
    if (!c)
        return;
    snapshot_free(c->cur);
    c->cur = NULL;
    if (c->loading) {
        c->dying = true; /* the pg callback always fires (MUTT_ECANCELED at stop) and frees */
        return;
    }
    free(c);
}

bool mutt_alert_cache_ready(const struct mutt_alert_cache *c)
{
    return c->cur != NULL;
}

bool mutt_alert_cache_loading(const struct mutt_alert_cache *c)
{
    return c->loading;
}

const char *mutt_alert_cache_last_error(const struct mutt_alert_cache *c)
{
    return c->last_error;
}

const struct mutt_ruleset *mutt_alert_cache_rules(const struct mutt_alert_cache *c)
{
    return c->cur ? c->cur->rules : NULL;
}

bool mutt_alert_cache_is_dev(const struct mutt_alert_cache *c, const char *hostname)
{
    return c->cur && hostname && strmap_get(&c->cur->dev_hosts, hostname) != NULL;
}

const char *mutt_alert_cache_team(const struct mutt_alert_cache *c, const char *hostname)
{
    if (!c->cur || !hostname)
        return NULL;
    const struct strmap_slot *s = strmap_get(&c->cur->teams, hostname);
    return s ? s->value : NULL;
}

void mutt_alert_cache_counts(const struct mutt_alert_cache *c, size_t *rules, size_t *dev_hosts, size_t *teams)
{
    *rules = c->cur ? mutt_rules_count(c->cur->rules) : 0;
    *dev_hosts = c->cur ? c->cur->dev_hosts.count : 0;
    *teams = c->cur ? c->cur->teams.count : 0;
}
