/* `mutt dlq list [NAME [--count N]]` and `mutt dlq replay NAME [--count N]` (CONTRACT §10, D5):
 * the dead-letter lists alerter, moog and dead. A replay takes the oldest item (the tail),
 * rewrites it in C (_replay_count + 1, fresh attempt counters) and moves it with one Lua call
 * that checks the tail is still that item, so concurrent remediation never loses or doubles
 * one. `dead` replays each item to its `_origin`. Audited as REPLAY/dlq (D20). Blocking I/O:
 * runs without a loop. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_internal.h"
#include "mutt/config.h"
#include "mutt/lineage.h"
#include "mutt/queue_bytes.h"
#include "mutt/redis_scripts.h"

#define CMD "dlq"
#define LIST_DEFAULT_COUNT 10

enum dlq_name { DLQ_ALERTER, DLQ_MOOG, DLQ_DEAD, DLQ__COUNT };
static const char *const dlq_names[DLQ__COUNT] = {"alerter", "moog", "dead"};
static const enum mutt_cfg_key dlq_keys[DLQ__COUNT] = {MUTT_CFG_ALERTER_DLQ_NAME, MUTT_CFG_MOOG_DLQ_NAME,
                                                        MUTT_CFG_DEAD_LETTER_QUEUE};

static int find_dlq(const char *name)
{
    for (int i = 0; i < DLQ__COUNT; i++)
        if (strcmp(dlq_names[i], name) == 0)
            return i;
    fprintf(stderr, "dlq: unknown DLQ '%s' (valid: alerter, moog, dead)\n", name);
    return -1;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || v < 1 || v > 100000000) {
        fprintf(stderr, "dlq: --count must be a positive integer, got '%s'\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int dlq_list(const struct mutt_config *cfg, int which, long count)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    int rc = CLI_OK;
    for (int i = 0; i < DLQ__COUNT; i++) {
        if (which >= 0 && i != which)
            continue;
        const char *key = mutt_config_str(cfg, dlq_keys[i]);
        redisReply *r = redisCommand(c, "LLEN %s", key);
        if (!cli_redis_ok(c, r, CMD, "LLEN")) {
            rc = CLI_FAIL;
            if (r)
                freeReplyObject(r);
            break;
        }
        printf("%s\t%s\t%lld\n", dlq_names[i], key, r->integer);
        freeReplyObject(r);
        if (which < 0)
            continue;
        /* newest first: the head of an LPUSHed list */
        r = redisCommand(c, "LRANGE %s 0 %ld", key, count - 1);
        if (!cli_redis_ok(c, r, CMD, "LRANGE")) {
            rc = CLI_FAIL;
        } else {
            for (size_t k = 0; k < r->elements; k++)
                if (r->element[k]->type == REDIS_REPLY_STRING)
                    printf("%.*s\n", (int)r->element[k]->len, r->element[k]->str);
        }
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return rc;
}

/* Target list for an item of DLQ `which`; NULL when it cannot be replayed (why in *why). */
static const char *target_of(const struct mutt_config *cfg, int which, json_t *item, const char **why)
{
    const char *ingest = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME);
    const char *alert = mutt_config_str(cfg, MUTT_CFG_ALERT_QUEUE_NAME);
    if (which == DLQ_ALERTER)
        return ingest;
    if (which == DLQ_MOOG)
        return alert;
    const char *origin = json_string_value(json_object_get(item, "_origin"));
    if (origin && strcmp(origin, "ingest") == 0)
        return ingest;
    if (origin && strcmp(origin, "alert") == 0)
        return alert;
    *why = origin ? "its _origin is neither ingest nor alert" : "it has no _origin";
    return NULL;
}

/* The replayed form: _replay_count + 1, and the stage's own retry counter reset so the item
 * gets a full set of attempts again (a manual replay means "try again now"). */
static char *rewrite(json_t *item, const char *target, const struct mutt_config *cfg)
{
    json_int_t n = json_integer_value(json_object_get(item, "_replay_count"));
    json_object_set_new(item, "_replay_count", json_integer(n + 1));
    if (strcmp(target, mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME)) == 0)
        json_object_del(item, "_retry_count");
    else
        json_object_del(item, "_moog_retry_count");
    return json_dumps(item, JSON_COMPACT);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dlq_replay(const struct mutt_config *cfg, int which, long count)
{
    redisContext *c = cli_redis(cfg, CMD);
    if (!c)
        return CLI_FAIL;
    const char *key = mutt_config_str(cfg, dlq_keys[which]);
    long moved = 0, to_ingest = 0, to_alert = 0;
    int rc = CLI_OK;
    int races = 0;
    while (moved < count) {
        redisReply *r = redisCommand(c, "LINDEX %s -1", key);
        if (!cli_redis_ok(c, r, CMD, "LINDEX")) {
            rc = CLI_FAIL;
            if (r)
                freeReplyObject(r);
            break;
        }
        if (r->type != REDIS_REPLY_STRING) { /* empty */
            freeReplyObject(r);
            break;
        }
        json_t *item = json_loadb(r->str, r->len, 0, NULL);
        const char *why = "it is not a JSON object";
        const char *target = json_is_object(item) ? target_of(cfg, which, item, &why) : NULL;
        char *out = target ? rewrite(item, target, cfg) : NULL;
        struct mutt_lineage_args lin; /* D63: the replay is a step of the item's event */
        bool has_lin = out && mutt_lineage_args_make(mutt_config_bool(cfg, MUTT_CFG_LINEAGE_ENABLED),
                                                     mutt_config_int(cfg, MUTT_CFG_LINEAGE_TTL_SECONDS), item,
                                                     MUTT_LINEAGE_REPLAY,
                                                     json_pack("{s:s, s:s, s:s}", "from", key, "to", target, "by", "cli"),
                                                     wall_ms(), &lin);
        json_decref(item);
        if (!target || !out) {
            fprintf(stderr, "dlq: stopped at the oldest item of %s: %s; it stays there\n", key, why);
            free(out);
            freeReplyObject(r);
            rc = CLI_FAIL;
            break;
        }
        /* moved only while it is still the tail (redis_scripts.h); the ingest queue's byte
         * counter (D52) grows with it */
        char bytes_key[MUTT_QUEUE_BYTES_KEY_MAX];
        bool ingest_target = strcmp(target, mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME)) == 0 &&
                             mutt_queue_bytes_key(target, bytes_key, sizeof bytes_key) == 0;
        const char *argv[13] = {"EVAL", mutt_script_dlq_move_lua, ingest_target ? "3" : "2", key, target};
        size_t lens[13] = {4, strlen(mutt_script_dlq_move_lua), 1, strlen(key), strlen(target)};
        int na = 5;
        if (ingest_target) { /* the third key only then */
            argv[na] = bytes_key;
            lens[na++] = strlen(bytes_key);
        }
        const char *rest[] = {r->str, out, MUTT_SCRIPT_DLQ_MOVE_TAIL};
        size_t restl[] = {r->len, strlen(out), strlen(MUTT_SCRIPT_DLQ_MOVE_TAIL)};
        for (int i = 0; i < 3; i++, na++) {
            argv[na] = rest[i];
            lens[na] = restl[i];
        }
        for (int i = 0; has_lin && i < 4; i++, na++) {
            argv[na] = lin.argv[i];
            lens[na] = lin.argl[i];
        }
        redisReply *m = redisCommandArgv(c, na, argv, lens);
        if (has_lin)
            mutt_lineage_args_free(&lin);
        bool ok = cli_redis_ok(c, m, CMD, "move");
        long did = ok && m->type == REDIS_REPLY_INTEGER ? (long)m->integer : 0;
        if (m)
            freeReplyObject(m);
        free(out);
        freeReplyObject(r);
        if (!ok) {
            rc = CLI_FAIL;
            break;
        }
        if (did == 0) { /* someone else took the tail first: read it again */
            if (++races > 1000) {
                fprintf(stderr, "dlq: %s keeps changing under the replay; stopped\n", key);
                rc = CLI_FAIL;
                break;
            }
            continue;
        }
        moved++;
        if (strcmp(target, mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME)) == 0)
            to_ingest++;
        else
            to_alert++;
    }
    redisFree(c);
    if (moved > 0) {
        PGconn *pg = cli_pg(cfg, CMD);
        json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I}", "dlq", dlq_names[which], "key", key, "replayed",
                              (json_int_t)moved, "to_ingest_queue", (json_int_t)to_ingest, "to_alert_queue",
                              (json_int_t)to_alert);
        char *nv = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!pg || cli_audit(pg, CMD, "REPLAY", "dlq", dlq_names[which], NULL, nv, NULL) != 0) {
            fprintf(stderr, "dlq: %ld item(s) were replayed but the audit row could not be written\n", moved);
            rc = CLI_FAIL;
        }
        free(nv);
        PQfinish(pg);
    }
    printf("dlq: replayed %ld item(s) from %s\n", moved, key);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "dlq: usage: mutt dlq list [NAME [--count N]] | replay NAME [--count N]\n");
    return CLI_USAGE;
}

int cli_dlq(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc < 1)
        return usage();
    bool replay = strcmp(argv[0], "replay") == 0;
    if (!replay && strcmp(argv[0], "list") != 0)
        return usage();
    int which = -1;
    long count = replay ? 100000000L : LIST_DEFAULT_COUNT;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], &count) != 0)
                return CLI_USAGE;
        } else if (argv[i][0] != '-' && which < 0) {
            which = find_dlq(argv[i]);
            if (which < 0)
                return CLI_USAGE;
        } else {
            return usage();
        }
    }
    if (replay && which < 0)
        return usage();
    return replay ? dlq_replay(cfg, which, count) : dlq_list(cfg, which, count);
}
