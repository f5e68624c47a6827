/* GET /events/{event_id} and GET /events?correlation_id= (D41, D63): an event's timeline, read
 * from its lineage hash in one script call (lineage.h has the encoding). Read-only key enough.
 * Loop thread only. */
#include "web_internal.h"

#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/lineage.h"
#include "mutt/redis.h"

#define EVENTS_MAX 200 /* events of one correlation id answered (D18's limit clamp) */

/* KEYS[1] the event's hash, or the correlation id's set when ARGV[1] is 'c'. ARGV[2] the hash
 * prefix, ARGV[3] the event id (single mode), ARGV[4] most events. Returns {id, HGETALL, ...}
 * for the ids whose hash still exists (a set can outlive some of its events); a key of another
 * type (an old writer's id that looks like "c:...") reads as absent. The hashes of a
 * correlation id are not in KEYS: MUTT runs on one Redis, not a cluster. */
static const char LUA_LINEAGE_READ[] =
    "local ids\n"
    "if ARGV[1] == 'c' then\n"
    "  ids = redis.pcall('SMEMBERS', KEYS[1])\n"
    "  if ids.err then ids = {} end\n"
    "  table.sort(ids)\n"
    "else ids = {ARGV[3]} end\n"
    "local out, max = {}, tonumber(ARGV[4])\n"
    "for _, id in ipairs(ids) do\n"
    "  if #out >= 2 * max then break end\n"
    "  local h = redis.pcall('HGETALL', ARGV[2] .. id)\n"
    "  if not h.err and #h > 0 then out[#out + 1] = id out[#out + 1] = h end\n"
    "end\n"
    "return out\n";

static int script_read = -1;

int web_events_register_scripts(struct mutt_ctx *ctx)
{
    script_read = mutt_redis_script_register(ctx->redis, "web_lineage_read", LUA_LINEAGE_READ);
    return script_read < 0 ? script_read : 0;
}

/* Orders events by their first step (the oldest first); events without one go last. */
static int cmp_first_at(const void *a, const void *b)
{
    const json_t *x = json_array_get(json_object_get(*(json_t *const *)a, "timeline"), 0);
    const json_t *y = json_array_get(json_object_get(*(json_t *const *)b, "timeline"), 0);
    const char *sx = json_string_value(json_object_get(x, "at")), *sy = json_string_value(json_object_get(y, "at"));
    if (!sx || !sy)
        return sx ? -1 : sy ? 1 : 0;
    return strcmp(sx, sy);
}

/* One event from its id and HGETALL reply; NULL when the reply is not that shape or OOM. */
static json_t *decode_reply(const redisReply *id, const redisReply *h)
{
    if (id->type != REDIS_REPLY_STRING || h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return NULL;
    size_t n = h->elements / 2;
    const char **f = malloc((n ? n : 1) * sizeof *f), **v = malloc((n ? n : 1) * sizeof *v);
    size_t *fl = malloc((n ? n : 1) * sizeof *fl), *vl = malloc((n ? n : 1) * sizeof *vl);
    json_t *o = NULL;
    if (f && v && fl && vl) {
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            const redisReply *a = h->element[2 * i], *b = h->element[2 * i + 1];
            ok = a->type == REDIS_REPLY_STRING && b->type == REDIS_REPLY_STRING;
            if (ok) {
                f[i] = a->str;
                fl[i] = a->len;
                v[i] = b->str;
                vl[i] = b->len;
            }
        }
        char *eid = ok ? strndup(id->str, id->len) : NULL;
        if (eid)
            o = mutt_lineage_decode(eid, f, fl, v, vl, n);
        free(eid);
    }
    free(f);
    free(v);
    free(fl);
    free(vl);
    return o;
}

static void on_read(struct web_call *c, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
        web_reply_error(c, 500, "internal error", NULL);
        return;
    }
    size_t n = reply->elements / 2;
    if (n == 0) {
        web_reply_error(c, 404, "unknown or expired event", NULL);
        return;
    }
    json_t **evs = calloc(n, sizeof *evs);
    json_t *arr = json_array(), *out = json_object();
    bool ok = evs && arr && out;
    for (size_t i = 0; ok && i < n; i++)
        ok = (evs[i] = decode_reply(reply->element[2 * i], reply->element[2 * i + 1])) != NULL;
    if (ok) {
        qsort(evs, n, sizeof *evs, cmp_first_at);
        for (size_t i = 0; ok && i < n; i++) {
            ok = json_array_append_new(arr, evs[i]) == 0;
            evs[i] = NULL;
        }
    }
    for (size_t i = 0; evs && i < n; i++)
        json_decref(evs[i]);
    free(evs);
    if (ok && json_object_set_new(out, "events", arr) == 0) {
        web_reply_obj(c, 200, out);
        return;
    }
    json_decref(arr);
    json_decref(out);
    web_reply_error(c, 500, "internal error", NULL);
}

/* Ids are UUIDs and correlation ids are D8's safe characters: anything else cannot be stored. */
static bool id_ok(const char *s)
{
    return s && *s && mutt_correlation_id_valid(s, strlen(s));
}

static void read_lineage(struct web_call *c, bool by_cid, const char *id)
{
    char key[MUTT_LINEAGE_KEY_MAX], max[16];
    int n = by_cid ? mutt_lineage_cid_key(id, key, sizeof key) : mutt_lineage_key(id, key, sizeof key);
    if (n < 0) {
        web_reply_error(c, 404, "unknown or expired event", NULL);
        return;
    }
    snprintf(max, sizeof max, "%d", EVENTS_MAX);
    const char *keys[] = {key};
    const char *args[] = {by_cid ? "c" : "e", MUTT_LINEAGE_KEY_PREFIX, id, max};
    web_evalsha(c, script_read, 1, keys, NULL, 4, args, NULL, on_read);
}

void web_event(struct web_call *c)
{
    const char *id = web_path_param(c, "event_id");
    if (!id_ok(id)) {
        web_reply_error(c, 404, "unknown or expired event", NULL);
        return;
    }
    read_lineage(c, false, id);
}

void web_events(struct web_call *c)
{
    const char *cid = web_query_param(c, "correlation_id");
    if (!cid || !*cid) {
        web_reply_error(c, 400, "correlation_id is required", "correlation_id");
        return;
    }
    if (!id_ok(cid)) {
        web_reply_error(c, 400, "correlation_id has characters no correlation id can have", "correlation_id");
        return;
    }
    read_lineage(c, true, cid);
}
