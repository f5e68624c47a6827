/* `mutt config list | get KEY | set KEY VALUE [--reason R] [--no-publish]` (CONTRACT §10): the
 * dynamic keys of dynconfig.h's schema, read and written in Redis exactly as the daemon does
 * (mutt:config:<key>, PUBLISH mutt:config:updates <key>), validated by the same schema (W41)
 * and audited as cli:<user> (D18, D20). Blocking hiredis/libpq: runs without a loop. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "mutt/config.h"
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

static int config_list(const struct mutt_config *cfg)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    size_t n = mutt_dynconfig_count();
    const char **argv = calloc(n + 1, sizeof(*argv));
    char **keys = calloc(n, sizeof(*keys));
    int rc = CLI_FAIL;
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
        printf("%s=%s\t(%s)\n", def->name, value, source);
    }
    rc = CLI_OK;
out:
    if (r)
        freeReplyObject(r);
    for (size_t i = 0; keys && i < n; i++)
        free(keys[i]);
    free(keys);
    free(argv);
    redisFree(c);
    return rc;
}

static const struct mutt_dynconfig_def *find_key(const char *key)
{
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_find(key);
    if (!def)
        fprintf(stderr, "config: unknown key '%s' (mutt config list shows every key)\n", key);
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
    redisReply *r = redisCommand(c, "GET %s%s", MUTT_DYNCONFIG_PREFIX, key);
    int rc = CLI_FAIL;
    if (cli_redis_ok(c, r, CMD, "GET")) {
        char value[MUTT_DYNCONFIG_MAX_VALUE + 1];
        const char *source;
        effective(def, cfg, r, value, sizeof(value), &source);
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

static int config_set(const struct mutt_config *cfg, const char *key, const char *value, const char *reason,
                      bool publish)
{
    const struct mutt_dynconfig_def *def = find_key(key);
    if (!def)
        return CLI_USAGE;
    char norm[MUTT_DYNCONFIG_MAX_VALUE + 1], err[300];
    if (mutt_dynconfig_normalize(def, value, norm, sizeof(norm), err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        return CLI_USAGE;
    }
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
    fprintf(stderr, "config: usage: mutt config list | get KEY | set KEY VALUE [--reason R] [--no-publish]\n");
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
    if (strcmp(sub, "set") != 0 || argc < 3)
        return usage();
    const char *reason = NULL;
    bool publish = true;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
            reason = argv[++i];
        else if (strcmp(argv[i], "--no-publish") == 0)
            publish = false;
        else
            return usage();
    }
    return config_set(cfg, argv[1], argv[2], reason, publish);
}
