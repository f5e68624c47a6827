/* `mutt config list | get KEY | set KEY VALUE [--reason R] [--no-publish]` (CONTRACT §10): the
 * dynamic keys of dynconfig.h's schema, read and written in Redis exactly as the daemon does
 * (mutt:config:<key>, PUBLISH mutt:config:updates <key>), validated by the same schema (W41)
 * and audited as cli:<user> (D18, D20). Blocking hiredis/libpq: runs without a loop. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_internal.h"
#include "mutt/approval.h"
#include "mutt/config.h"
#include "mutt/config_drift.h"
#include "mutt/timefmt.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"

#define CMD "config"

/* The effective value of def: Redis when it holds a valid value, else the env/file/default
 * fallback (what the daemon would use). */
static void effective(const struct mutt_dynconfig_def *def, const struct mutt_config *cfg, redisReply *stored,
                      char *buf, size_t len, const char **source)
{
    if (stored && stored->type == REDIS_REPLY_STRING &&
        mutt_dynconfig_normalize(def, stored->str, buf, len, NULL, 0) == 0) {
        *source = "redis";
        return;
    }
    enum mutt_dyn_source src = MUTT_DYN_SRC_DEFAULT;
    mutt_dynconfig_fallback(def, cfg, buf, len, &src, NULL, 0);
    *source = mutt_dynconfig_source_name(src);
}

/* Reads every dynamic key with one MGET and fills `values` (key -> effective value) and, when
 * given, `sources` (key -> redis|env|file|default). Returns 0 or -1 (reason printed). */
static int effective_all(const struct mutt_config *cfg, redisContext *c, json_t *values, json_t *sources)
{
    size_t n = mutt_dynconfig_count();
    const char **argv = calloc(n + 1, sizeof(*argv));
    char **keys = calloc(n, sizeof(*keys));
    int rc = -1;
    redisReply *r = NULL;
    if (!argv || !keys)
        goto out;
    argv[0] = "MGET";
    for (size_t i = 0; i < n; i++) {
        if (asprintf(&keys[i], "%s%s", MUTT_DYNCONFIG_PREFIX, mutt_dynconfig_def_at(i)->name) < 0)
            goto out;
        argv[i + 1] = keys[i];
    }
    r = redisCommandArgv(c, (int)n + 1, argv, NULL);
    if (!cli_redis_ok(c, r, CMD, "MGET"))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(i);
        char value[MUTT_DYNCONFIG_MAX_VALUE + 1];
        const char *source;
        effective(def, cfg, i < r->elements ? r->element[i] : NULL, value, sizeof(value), &source);
        json_object_set_new(values, def->name, json_string(value));
        if (sources)
            json_object_set_new(sources, def->name, json_string(source));
    }
    rc = 0;
out:
    if (r)
        freeReplyObject(r);
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    return rc;
}

static int config_list(const struct mutt_config *cfg)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    json_t *values = json_object(), *sources = json_object();
    int rc = CLI_FAIL;
    if (values && sources && effective_all(cfg, c, values, sources) == 0) {
        for (size_t i = 0; i < mutt_dynconfig_count(); i++) {
            const char *name = mutt_dynconfig_def_at(i)->name;
            printf("%s=%s\t(%s)\n", name, json_string_value(json_object_get(values, name)),
                   json_string_value(json_object_get(sources, name)));
        }
        rc = CLI_OK;
    }
    json_decref(values);
    json_decref(sources);
    redisFree(c);
    return rc;
}

/* `mutt config baseline save [--reason R]`: the effective configuration becomes the approved
 * baseline GET /api/v1/config/drift compares against. One MULTI replaces it whole. */
static int config_baseline_save(const struct mutt_config *cfg, const char *reason)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    json_t *values = json_object();
    int rc = CLI_FAIL;
    if (!values || effective_all(cfg, c, values, NULL) != 0)
        goto out;
    size_t n = json_object_size(values);
    const char **argv = calloc(2 * n + 2, sizeof(*argv));
    if (!argv)
        goto out;
    argv[0] = "HSET";
    argv[1] = MUTT_DRIFT_BASELINE_KEY;
    size_t a = 2;
    const char *k;
    json_t *v;
    json_object_foreach(values, k, v)
    {
        argv[a++] = k;
        argv[a++] = json_string_value(v);
    }
    char actor[112], when[40], count[24];
    cli_actor(actor, sizeof(actor));
    mutt_time_format_iso8601_ms((int64_t)time(NULL) * 1000, when, sizeof(when));
    snprintf(count, sizeof(count), "%zu", n);
    const char *meta[] = {"HSET", MUTT_DRIFT_BASELINE_META_KEY, "saved_at", when, "saved_by", actor,
                          "keys", count, "reason", reason ? reason : ""};
    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "DEL %s %s", MUTT_DRIFT_BASELINE_KEY, MUTT_DRIFT_BASELINE_META_KEY);
    redisAppendCommandArgv(c, (int)a, argv, NULL);
    redisAppendCommandArgv(c, 10, meta, NULL);
    redisAppendCommand(c, "EXEC");
    bool ok = true;
    for (int i = 0; i < 5; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !cli_redis_ok(c, r, CMD, "baseline save"))
            ok = false;
        if (i == 4 && r && r->type != REDIS_REPLY_ARRAY)
            ok = false;
        if (r)
            freeReplyObject(r);
        if (!ok)
            break;
    }
    free(argv);
    if (ok) {
        printf("baseline saved: %zu keys (%s, %s)\n", n, actor, when);
        rc = CLI_OK;
    }
out:
    json_decref(values);
    redisFree(c);
    return rc;
}

static json_t *hash_object(const redisReply *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        json_object_set_new(o, r->element[i]->str, json_stringn(r->element[i + 1]->str, r->element[i + 1]->len));
    return o;
}

/* `mutt config drift`: prints what differs from the approved baseline. Exit 0 either way (a
 * drift is information, not a failure); 1 when there is no baseline or Redis fails. */
static int config_drift(const struct mutt_config *cfg)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    int rc = CLI_FAIL;
    json_t *values = json_object(), *baseline = NULL, *report = NULL;
    redisReply *rb = NULL, *rm = NULL;
    if (!values || effective_all(cfg, c, values, NULL) != 0)
        goto out;
    rb = redisCommand(c, "HGETALL %s", MUTT_DRIFT_BASELINE_KEY);
    rm = redisCommand(c, "HGETALL %s", MUTT_DRIFT_BASELINE_META_KEY);
    if (!cli_redis_ok(c, rb, CMD, "HGETALL") || !cli_redis_ok(c, rm, CMD, "HGETALL"))
        goto out;
    if (rm->elements == 0) {
        fprintf(stderr, "config: no approved baseline saved; run `mutt config baseline save`\n");
        goto out;
    }
    baseline = hash_object(rb);
    report = baseline ? mutt_config_drift(values, baseline) : NULL;
    if (!report)
        goto out;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(report, "changed"), i, e)
        printf("changed %s: %s -> %s\n", json_string_value(json_object_get(e, "key")),
               json_string_value(json_object_get(e, "baseline")), json_string_value(json_object_get(e, "current")));
    json_array_foreach(json_object_get(report, "added"), i, e)
        printf("added %s=%s\n", json_string_value(json_object_get(e, "key")),
               json_string_value(json_object_get(e, "current")));
    json_array_foreach(json_object_get(report, "missing"), i, e)
        printf("missing %s (baseline %s)\n", json_string_value(json_object_get(e, "key")),
               json_string_value(json_object_get(e, "baseline")));
    printf("drift: %s\n", json_is_true(json_object_get(report, "drift")) ? "yes" : "no");
    rc = CLI_OK;
out:
    if (rb)
        freeReplyObject(rb);
    if (rm)
        freeReplyObject(rm);
    json_decref(values);
    json_decref(baseline);
    json_decref(report);
    redisFree(c);
    return rc;
}

/* A canonical or legacy (v2.3) key name; a legacy name is reported as deprecated. */
static const struct mutt_dynconfig_def *find_key(const char *key)
{
    bool legacy = false;
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(key, &legacy);
    if (!def)
        fprintf(stderr, "config: unknown key '%s' (mutt config list shows every key)\n", key);
    else if (legacy)
        fprintf(stderr, "config: '%s' is a deprecated name of %s; use the new name\n", key, def->name);
    return def;
}

static int config_get(const struct mutt_config *cfg, const char *key)
{
    const struct mutt_dynconfig_def *def = find_key(key);
    if (!def)
        return CLI_USAGE;
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    const char *legacy = mutt_dynconfig_legacy_name(def->id);
    redisReply *r = legacy ? redisCommand(c, "MGET %s%s %s%s", MUTT_DYNCONFIG_PREFIX, def->name, MUTT_DYNCONFIG_PREFIX,
                                          legacy)
                           : redisCommand(c, "MGET %s%s", MUTT_DYNCONFIG_PREFIX, def->name);
    int rc = CLI_FAIL;
    if (cli_redis_ok(c, r, CMD, "MGET") && r->type == REDIS_REPLY_ARRAY && r->elements >= 1) {
        /* the canonical key wins; the legacy one counts when the canonical is unset (D62) */
        redisReply *v = r->element[0]->type == REDIS_REPLY_NIL && r->elements > 1 ? r->element[1] : r->element[0];
        char value[MUTT_DYNCONFIG_MAX_VALUE + 1];
        const char *source;
        effective(def, cfg, v, value, sizeof(value), &source);
        printf("%s\n", value);
        rc = CLI_OK;
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* Same shape as the web API's rows ({"key","value","source"}), so its rollback reads ours. */
static char *audit_values(const char *key, const char *value)
{
    json_t *o = json_pack("{s:s, s:s?, s:s}", "key", key, "value", value, "source", "redis");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* APPROVAL_REQUIRED covers the key and no --emergency: file the change for another person to
 * approve through the API (which applies it as a PUT /config/{key} by the requester). */
static int config_file_request(const struct mutt_config *cfg, const char *key, const char *norm, const char *reason)
{
    PGconn *pg = cli_pg(cfg, CMD);
    if (!pg)
        return CLI_FAIL;
    json_t *ch = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s?}}", "method", "PUT", "path", "/config/{key}", "params",
                           "key", key, "body", "value", norm, "reason", reason);
    char *text = ch ? json_dumps(ch, JSON_COMPACT) : NULL;
    json_decref(ch);
    long long id = 0;
    int rc = text && cli_change_file(pg, CMD, "config", text, reason, NULL, &id) == 0 ? CLI_OK : CLI_FAIL;
    if (rc == CLI_OK)
        printf("config: %s=%s needs approval (APPROVAL_REQUIRED): change request %lld filed; an approver decides "
               "with POST /api/v2/changes/%lld/approve\n", key, norm, id, id);
    free(text);
    PQfinish(pg);
    return rc;
}

static int config_set(const struct mutt_config *cfg, const char *key_arg, const char *value, const char *reason,
                      bool publish, const char *emergency)
{
    const struct mutt_dynconfig_def *def = find_key(key_arg);
    if (!def)
        return CLI_USAGE;
    const char *key = def->name; /* a legacy name writes the canonical key */
    char note[1200];
    if (strcmp(key_arg, key) != 0) {
        snprintf(note, sizeof note, "deprecated key name %s (alias of %s)%s%s", key_arg, key, reason ? "; " : "",
                 reason ? reason : "");
        reason = note;
    }
    char norm[MUTT_DYNCONFIG_MAX_VALUE + 1], err[300];
    if (mutt_dynconfig_normalize(def, value, norm, sizeof(norm), err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return CLI_USAGE;
    }
    bool covered = false;
    if (cli_approval_covers(cfg, MUTT_APPROVAL_CONFIG, key, &covered) != 0)
        return CLI_USAGE;
    if (covered && !emergency)
        return config_file_request(cfg, key, norm, reason);
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    PGconn *pg = cli_pg(cfg, CMD);
    if (!pg) {
        redisFree(c);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    char *old_json = NULL, *new_json = NULL, *old = NULL;
    redisReply *r = redisCommand(c, "GET %s%s", MUTT_DYNCONFIG_PREFIX, key);
    if (!cli_redis_ok(c, r, CMD, "GET"))
        goto out;
    if (r->type == REDIS_REPLY_STRING)
        old = strdup(r->str);
    freeReplyObject(r);
    r = NULL;
    old_json = old ? audit_values(key, old) : NULL;
    new_json = audit_values(key, norm);
    /* The audit row commits only once Redis has the value: no row for a change that did not
     * happen, and a failed audit insert leaves Redis untouched. */
    if (cli_pg_exec(pg, CMD, "BEGIN") != 0 ||
        cli_audit(pg, CMD, old ? "UPDATE" : "CREATE", "dynamic_config", key, old_json, new_json, reason) != 0)
        goto out;
    if (covered) {
        /* --emergency: applied now, listed (status emergency, EMERGENCY audit row) for a decision
         * after the fact; committed with the change itself */
        json_t *ch = json_pack("{s:s, s:s, s:{s:s}, s:{s:s, s:s?}}", "method", "PUT", "path", "/config/{key}",
                               "params", "key", key, "body", "value", norm, "reason", reason);
        char *text = ch ? json_dumps(ch, JSON_COMPACT) : NULL;
        json_decref(ch);
        long long id = 0;
        int frc = text ? cli_change_file(pg, CMD, "config", text, reason, emergency, &id) : -1;
        free(text);
        if (frc != 0) {
            cli_pg_exec(pg, CMD, "ROLLBACK");
            goto out;
        }
        fprintf(stderr, "config: EMERGENCY change %lld applied without approval; it is listed for approval\n", id);
    }
    bool ok;
    if (publish) {
        /* SET and PUBLISH together, as the daemon's write does */
        redisAppendCommand(c, "MULTI");
        redisAppendCommand(c, "SET %s%s %s", MUTT_DYNCONFIG_PREFIX, key, norm);
        redisAppendCommand(c, "PUBLISH %s %s", MUTT_DYNCONFIG_CHANNEL, key);
        redisAppendCommand(c, "EXEC");
        ok = true;
        for (int i = 0; i < 4; i++) {
            redisReply *x = NULL;
            bool bad = redisGetReply(c, (void **)&x) != REDIS_OK || !x || x->type == REDIS_REPLY_ERROR ||
                       (i == 3 && x->type != REDIS_REPLY_ARRAY);
            if (bad && ok) {
                cli_redis_ok(c, x && x->type == REDIS_REPLY_ERROR ? x : NULL, CMD, "SET + PUBLISH");
                ok = false;
            }
            if (x)
                freeReplyObject(x);
        }
    } else {
        r = redisCommand(c, "SET %s%s %s", MUTT_DYNCONFIG_PREFIX, key, norm);
        ok = cli_redis_ok(c, r, CMD, "SET");
    }
    if (!ok) {
        cli_pg_exec(pg, CMD, "ROLLBACK");
        goto out;
    }
    if (cli_pg_exec(pg, CMD, "COMMIT") != 0) {
        fprintf(stderr, "config: %s=%s is set in Redis but its audit row was not committed\n", key, norm);
        goto out;
    }
    printf("config: %s=%s (was %s)%s\n", key, norm, old ? old : "unset", publish ? "" : " (not published)");
    rc = CLI_OK;
out:
    if (r)
        freeReplyObject(r);
    free(old);
    free(old_json);
    free(new_json);
    PQfinish(pg);
    redisFree(c);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "config: usage: mutt config list | get KEY | set KEY VALUE [--reason R] [--no-publish] [--emergency R]\n"
                    "                   | baseline save [--reason R] | drift\n");
    return CLI_USAGE;
}

int cli_config(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc < 1)
        return usage();
    const char *sub = argv[0];
    if (strcmp(sub, "list") == 0)
        return argc == 1 ? config_list(cfg) : usage();
    if (strcmp(sub, "get") == 0)
        return argc == 2 ? config_get(cfg, argv[1]) : usage();
    if (strcmp(sub, "drift") == 0)
        return argc == 1 ? config_drift(cfg) : usage();
    if (strcmp(sub, "baseline") == 0) {
        if (argc == 2 && strcmp(argv[1], "save") == 0)
            return config_baseline_save(cfg, NULL);
        if (argc == 4 && strcmp(argv[1], "save") == 0 && strcmp(argv[2], "--reason") == 0)
            return config_baseline_save(cfg, argv[3]);
        return usage();
    }
    if (strcmp(sub, "set") != 0 || argc < 3)
        return usage();
    const char *reason = NULL, *emergency = NULL;
    bool publish = true;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else if (strcmp(argv[i], "--emergency") == 0 && i + 1 < argc && argv[i + 1][0])
            emergency = argv[++i];
        else if (strcmp(argv[i], "--no-publish") == 0)
            publish = false;
        else
            return usage();
    }
    return config_set(cfg, argv[1], argv[2], reason, publish, emergency);
}
