/* `mutt rules dry-run [--json] FILE.json` (issue 16 §1): what a rule body would catch in the
 * sample of recent events, printed as a table (or the API's JSON with --json). The same steps as
 * POST /rules/dry-run: the body validated as the API validates it, rules and dev hosts read in one
 * query, the sample with one LRANGE of sample_events items, and domain/dryrun.c to compare. A
 * read: nothing is written or audited. Blocking I/O: runs without a loop. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "mutt/config.h"
#include "mutt/dryrun.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/keys.h"

#define CMD "rules"
#define MAX_BODY_BYTES (1024 * 1024)
#define MESSAGE_COLUMN 60 /* bytes of a message shown in the examples table */

static void usage(void)
{
    fprintf(stderr, "usage: mutt rules dry-run [--json] FILE.json   (FILE '-' reads stdin)\n");
}

static json_t *read_body(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: cannot open %s: %m\n", CMD, path);
        return NULL;
    }
    char *buf = malloc(MAX_BODY_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_BODY_BYTES + 1, f) : 0;
    if (f != stdin)
        fclose(f);
    json_t *body = NULL;
    if (!buf)
        fprintf(stderr, "%s: out of memory\n", CMD);
    else if (n > MAX_BODY_BYTES)
        fprintf(stderr, "%s: %s is larger than %d bytes\n", CMD, path, MAX_BODY_BYTES);
    else {
        json_error_t jerr;
        body = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(body)) {
            fprintf(stderr, "%s: %s: body must be a JSON object%s%s\n", CMD, path, body ? "" : ": ",
                    body ? "" : jerr.text);
            json_decref(body);
            body = NULL;
        }
    }
    free(buf);
    return body;
}

/* sample_events as the daemon sees it: the Redis value when valid, else env/file/default. */
static int64_t sample_events(const struct mutt_config *cfg, redisContext *c)
{
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_at(MUTT_DYN_SAMPLE_EVENTS);
    char buf[64] = "";
    redisReply *r = redisCommand(c, "GET %s%s", MUTT_DYNCONFIG_PREFIX, def->name);
    bool stored = r && r->type == REDIS_REPLY_STRING && mutt_dynconfig_normalize(def, r->str, buf, sizeof buf, NULL, 0) == 0;
    if (r)
        freeReplyObject(r);
    if (!stored) {
        enum mutt_dyn_source src;
        mutt_dynconfig_fallback(def, cfg, buf, sizeof buf, &src, NULL, 0);
    }
    return strtoll(buf, NULL, 10);
}

static const char *jstr(const json_t *o, const char *k, const char *dflt)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static void print_table(const json_t *r, int64_t edit_id)
{
    if (edit_id > 0)
        printf("Dry-run of rule %lld as edited, over the sample of recent events\n\n", (long long)edit_id);
    else
        printf("Dry-run of a new rule over the sample of recent events\n\n");
    printf("  %-26s %lld\n", "examined", (long long)json_integer_value(json_object_get(r, "examined")));
    printf("  %-26s %lld\n", "would match", (long long)json_integer_value(json_object_get(r, "would_match")));
    printf("  %-26s %lld\n", "newly matched", (long long)json_integer_value(json_object_get(r, "newly_matched")));
    printf("  %-26s %lld\n", "unhandled now handled",
           (long long)json_integer_value(json_object_get(r, "unhandled_now_handled")));
    printf("  %-26s %lld\n", "held by maintenance",
           (long long)json_integer_value(json_object_get(r, "held_by_maintenance")));
    const char *id;
    const json_t *n;
    json_object_foreach((json_t *)json_object_get(r, "taken_from"), id, n) {
        char label[64];
        snprintf(label, sizeof label, "taken from rule %s", id);
        printf("  %-26s %lld\n", label, (long long)json_integer_value(n));
    }
    const json_t *ex = json_object_get(r, "examples");
    if (json_array_size(ex) == 0)
        return;
    printf("\n%-24s %-12s %-16s %-9s %-12s %s\n", "HOSTNAME", "ENVIRONMENT", "DECISION", "FORWARDED", "CURRENT RULE",
           "MESSAGE");
    size_t i;
    const json_t *e;
    json_array_foreach(ex, i, e) {
        const json_t *ev = json_object_get(e, "event");
        const json_t *dec = json_object_get(e, "decision");
        const json_t *cur = json_object_get(json_object_get(e, "current"), "rule_id");
        char curs[24];
        if (json_is_integer(cur))
            snprintf(curs, sizeof curs, "%lld", (long long)json_integer_value(cur));
        else
            snprintf(curs, sizeof curs, "unhandled");
        const char *msg = jstr(ev, "message", "");
        int mlen = (int)strcspn(msg, "\r\n");
        if (mlen > MESSAGE_COLUMN)
            mlen = MESSAGE_COLUMN;
        printf("%-24s %-12s %-16s %-9s %-12s %.*s\n", jstr(ev, "hostname", "-"), jstr(dec, "environment", "-"),
               jstr(dec, "handling_decision", "-"), json_is_true(json_object_get(dec, "forwarded")) ? "yes" : "no",
               curs, mlen, msg);
    }
}

static int dry_run(const struct mutt_config *cfg, const char *path, bool as_json)
{
    json_t *body = read_body(path);
    if (!body)
        return CLI_USAGE;
    int rc = CLI_FAIL;
    PGconn *pg = NULL;
    redisContext *c = NULL;
    PGresult *res = NULL;
    redisReply *sample = NULL;
    json_t *rows = NULL, *dev = NULL, *windows = NULL, *cand = NULL, *result = NULL;
    struct mutt_dryrun *d = NULL;
    char err[300] = "";
    const char *field = NULL;
    int64_t edit_id = 0;
    if (mutt_dryrun_parse_rule_id(body, &edit_id, err, sizeof err) != 0) {
        fprintf(stderr, "%s: invalid rule: %s\n", CMD, err);
        rc = CLI_USAGE;
        goto out;
    }
    if (!(pg = cli_pg(cfg, CMD)))
        goto out;
    res = PQexec(pg, MUTT_DRYRUN_ROWS_SQL);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 4) {
        fprintf(stderr, "%s: reading the rules failed: %s", CMD, PQerrorMessage(pg));
        goto out;
    }
    rows = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    dev = json_loads(PQgetvalue(res, 0, 1), 0, NULL);
    windows = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (!rows || !dev || !windows) {
        fprintf(stderr, "%s: unexpected rows from PostgreSQL\n", CMD);
        goto out;
    }
    int vrc = mutt_dryrun_candidate(body, rows, edit_id, &cand, err, sizeof err, &field);
    if (vrc == MUTT_ENOTFOUND) {
        fprintf(stderr, "%s: rule %lld not found\n", CMD, (long long)edit_id);
        rc = CLI_USAGE;
        goto out;
    }
    if (vrc != 0) {
        fprintf(stderr, "%s: invalid rule: %s%s%s%s\n", CMD, err, field ? " (field " : "", field ? field : "",
                field ? ")" : "");
        rc = CLI_USAGE;
        goto out;
    }
    if (!(d = mutt_dryrun_create(rows, dev, cand, edit_id, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", CMD, err);
        goto out;
    }
    if (mutt_dryrun_set_windows(d, windows, strtoll(PQgetvalue(res, 0, 3), NULL, 10)) != 0) {
        fprintf(stderr, "%s: out of memory\n", CMD);
        goto out;
    }
    if (!(c = cli_redis(cfg, CMD)))
        goto out;
    int64_t n = sample_events(cfg, c);
    if (n > 0) {
        sample = redisCommand(c, "LRANGE %s 0 %lld", MUTT_KEY_SAMPLE_EVENTS, (long long)n - 1);
        if (!cli_redis_ok(c, sample, CMD, "LRANGE"))
            goto out;
        for (size_t i = 0; sample->type == REDIS_REPLY_ARRAY && i < sample->elements; i++) {
            const redisReply *e = sample->element[i];
            if (e->type == REDIS_REPLY_STRING && mutt_dryrun_add_event(d, e->str, e->len) != 0) {
                fprintf(stderr, "%s: out of memory\n", CMD);
                goto out;
            }
        }
    }
    if (!(result = mutt_dryrun_result(d))) {
        fprintf(stderr, "%s: out of memory\n", CMD);
        goto out;
    }
    if (as_json) {
        char *s = json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
            goto out;
        printf("%s\n", s);
        free(s);
    } else {
        print_table(result, edit_id);
    }
    rc = CLI_OK;
out:
    json_decref(result);
    mutt_dryrun_destroy(d);
    if (sample)
        freeReplyObject(sample);
    if (c)
        redisFree(c);
    PQclear(res);
    if (pg)
        PQfinish(pg);
    json_decref(cand);
    json_decref(rows);
    json_decref(dev);
    json_decref(windows);
    json_decref(body);
    return rc;
}

int cli_rules(int argc, char **argv, struct mutt_config *cfg)
{
    if (argc < 1 || strcmp(argv[0], "dry-run") != 0) {
        usage();
        return CLI_USAGE;
    }
    bool as_json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else if (!path)
            path = argv[i];
        else {
            usage();
            return CLI_USAGE;
        }
    }
    if (!path) {
        usage();
        return CLI_USAGE;
    }
    return dry_run(cfg, path, as_json);
}
