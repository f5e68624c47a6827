/* `mutt trace ID [--json]` (D63): the timeline of an event, by event id or correlation id, read
 * from the lineage hashes the stages write (lineage.h). Blocking, like every CLI command. */
#include "cli_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/lineage.h"

#define TRACE_MAX 200 /* events shown for one correlation id (as GET /events) */

/* HGETALL of one event into the decoded object; NULL when it has no hash (unknown, expired)
 * or Redis failed (then *failed). */
static json_t *read_event(redisContext *c, const char *id, bool *failed)
{
    char key[MUTT_LINEAGE_KEY_MAX];
    if (mutt_lineage_key(id, key, sizeof key) < 0)
        return NULL;
    redisReply *r = redisCommand(c, "HGETALL %s", key);
    if (!cli_redis_ok(c, r, "trace", "HGETALL")) {
        *failed = true;
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    json_t *o = NULL;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements / 2 : 0;
    if (n > 0) {
        const char **f = calloc(n, sizeof *f), **v = calloc(n, sizeof *v);
        size_t *fl = calloc(n, sizeof *fl), *vl = calloc(n, sizeof *vl);
        if (f && v && fl && vl) {
            for (size_t i = 0; i < n; i++) {
                f[i] = r->element[2 * i]->str ? r->element[2 * i]->str : "";
                fl[i] = r->element[2 * i]->len;
                v[i] = r->element[2 * i + 1]->str ? r->element[2 * i + 1]->str : "";
                vl[i] = r->element[2 * i + 1]->len;
            }
            o = mutt_lineage_decode(id, f, fl, v, vl, n);
        }
        free(f);
        free(v);
        free(fl);
        free(vl);
    }
    freeReplyObject(r);
    return o;
}

static void print_event(const json_t *ev)
{
    const json_t *cid = json_object_get(ev, "correlation_id");
    printf("event %s  correlation_id %s  state %s\n", json_string_value(json_object_get(ev, "event_id")),
           json_is_string(cid) ? json_string_value(cid) : "-", json_string_value(json_object_get(ev, "state")));
    size_t i;
    const json_t *e;
    json_array_foreach(json_object_get(ev, "timeline"), i, e)
    {
        printf("  %-24s  %-9s  %-11s", json_string_value(json_object_get(e, "at")),
               json_string_value(json_object_get(e, "stage")), json_string_value(json_object_get(e, "what")));
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)e, k, v)
        {
            if (strcmp(k, "at") == 0 || strcmp(k, "stage") == 0 || strcmp(k, "what") == 0)
                continue;
            char *s = json_is_string(v) ? NULL : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            printf(" %s=%s", k, s ? s : json_string_value(v));
            free(s);
        }
        printf("\n");
    }
}

int cli_trace(int argc, char **argv, struct mutt_config *cfg)
{
    const char *id = NULL;
    bool as_json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = true;
        else if (!id && argv[i][0] != '-')
            id = argv[i];
        else
            id = NULL, i = argc;
    }
    if (!id || !*id) {
        fprintf(stderr, "usage: mutt trace EVENT_ID|CORRELATION_ID [--json]\n");
        return CLI_USAGE;
    }
    redisContext *c = cli_redis(cfg, "trace");
    if (!c)
        return CLI_FAIL;
    bool failed = false;
    json_t *events = json_array();
    json_t *one = read_event(c, id, &failed);
    if (one) {
        json_array_append_new(events, one);
    } else if (!failed) {
        /* not an event id: a correlation id's events, oldest id order is as good as any here */
        char key[MUTT_LINEAGE_KEY_MAX];
        redisReply *r = mutt_lineage_cid_key(id, key, sizeof key) > 0 ? redisCommand(c, "SMEMBERS %s", key) : NULL;
        if (r && cli_redis_ok(c, r, "trace", "SMEMBERS") && r->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < r->elements && json_array_size(events) < TRACE_MAX && !failed; i++) {
                json_t *ev = r->element[i]->str ? read_event(c, r->element[i]->str, &failed) : NULL;
                if (ev)
                    json_array_append_new(events, ev);
            }
        } else if (r) {
            failed = true;
        }
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    int rc = CLI_OK;
    if (failed) {
        rc = CLI_FAIL;
    } else if (json_array_size(events) == 0) {
        fprintf(stderr, "trace: %s: unknown or expired event\n", id);
        rc = CLI_FAIL;
    } else if (as_json) {
        json_t *o = json_pack("{s:O}", "events", events);
        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        if (s)
            printf("%s\n", s);
        else
            rc = CLI_FAIL;
        free(s);
        json_decref(o);
    } else {
        size_t i;
        json_t *ev;
        json_array_foreach(events, i, ev)
        {
            if (i > 0)
                printf("\n");
            print_event(ev);
        }
    }
    json_decref(events);
    return rc;
}
