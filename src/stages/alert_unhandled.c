/* The alert stage's unhandled-event counting (CONTRACT §4, D14, W24): one Lua call per loop turn
 * counts the unmatched events of that turn per (hostname, message template) in a fixed window
 * from the first occurrence, decides the meta-alert at >= threshold exactly once per window, and
 * keeps the top-templates data GET /api/v1/unhandled answers from (the web stage reads it with
 * the shared script in redis_scripts.h). Builds no alert (the stage does) and never touches the
 * processing list. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/alert.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/redis.h"
#include "mutt/template.h"
#include "mutt/timefmt.h"
#include "mutt/unhandled_key.h"

#define TOP_CAP "1000"        /* templates kept in the top ZSET (the lowest scores go first) */
#define SAMPLE_MAX 500        /* bytes of the sample message kept per template */
#define TEMPLATE_MAX 1024     /* bytes of a template kept */

/* Counts the unmatched events of one loop turn in one call, grouped by (hostname, template): the
 * keys of a group are touched once for the whole group, the verdicts are those the events would
 * get one after the other, in arrival order.
 * KEYS[1] top ZSET; per group g (from 0): KEYS[2+4g] counter, KEYS[3+4g] triggered marker,
 * KEYS[4+4g] template info hash, KEYS[5+4g] the host's set of tracked template hashes (all named
 * by unhandled_key.h, D36). ARGV: threshold, expiry_s, top cap, max templates per host, now (ISO),
 * groups; per group: ZSET member, hostname, template, sample, template hash (16 hex), events,
 * then each event's id. Returns one verdict per event, group by group: 0 counted, 1 this event
 * raises the meta-alert, 2 refused (cap).
 * A template not yet tracked for this host (no live counter, not in the host's set) is refused
 * when the host already tracks max templates in its window (D62): nothing is written. The host's
 * set expires expiry_s after its first template (a fixed window, like the counters). The marker
 * holds the id of the event that crossed the threshold, with the counter's remaining TTL
 * (suppressed until the window ends, D14). If that same event comes back (its pod died after
 * this script but before its completion), the answer is 1 again, so the meta-alert is pushed
 * once by whichever completion succeeds: the one decision is not lost with the pod.
 * Fewest commands per group (issue 13): the info hash gets hostname, template, sample and
 * first_seen in the call that creates it (its last_seen field is new), else only last_seen; the
 * host's set gets its TTL when its first member is added (this script writes both, atomically,
 * so neither can exist without its TTL); the counter is only probed for a host at its cap. */
static const char COUNT_LUA[] =
    "local thr, expiry, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local maxt, now, ng = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])\n"
    "local out, scard = {}, {}\n"
    "local a = 7\n"
    "for g = 0, ng - 1 do\n"
    "  local kc, km, ki, kh = KEYS[2 + 4 * g], KEYS[3 + 4 * g], KEYS[4 + 4 * g], KEYS[5 + 4 * g]\n"
    "  local member, host, tmpl, sample, h16 = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n"
    "  local n = tonumber(ARGV[a + 5])\n"
    "  local ids = a + 6\n"
    "  a = ids + n\n"
    "  local refused = false\n"
    "  if redis.call('SISMEMBER', kh, h16) == 0 then\n"
    "    if scard[kh] == nil then scard[kh] = redis.call('SCARD', kh) end\n"
    "    if scard[kh] >= maxt and redis.call('EXISTS', kc) == 0 then\n"
    "      refused = true\n"
    "    else\n"
    "      redis.call('SADD', kh, h16)\n"
    "      scard[kh] = scard[kh] + 1\n"
    "      if scard[kh] == 1 then redis.call('EXPIRE', kh, expiry) end\n"
    "    end\n"
    "  end\n"
    "  if refused then\n"
    "    for i = 0, n - 1 do out[#out + 1] = 2 end\n"
    "  else\n"
    "    redis.call('ZINCRBY', KEYS[1], n, member)\n"
    "    if redis.call('HSET', ki, 'last_seen', now) == 1 then\n"
    "      redis.call('HSET', ki, 'hostname', host, 'template', tmpl, 'sample', sample, 'first_seen', now)\n"
    "    end\n"
    "    redis.call('EXPIRE', ki, expiry)\n"
    "    local marker = redis.call('GET', km)\n"
    "    local prior, add, set = nil, 0, false\n"
    "    if not marker then\n"
    "      prior = redis.call('INCRBY', kc, n) - n\n"
    "    end\n"
    "    for i = 0, n - 1 do\n"
    "      local id = ARGV[ids + i]\n"
    "      if marker then\n"
    "        out[#out + 1] = marker == id and 1 or 0\n"
    "      else\n"
    "        add = add + 1\n"
    "        if prior + add >= thr then\n"
    "          marker = id\n"
    "          set = true\n"
    "          out[#out + 1] = 1\n"
    "        else\n"
    "          out[#out + 1] = 0\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if prior then\n"
    "      if add < n then redis.call('DECRBY', kc, n - add) end\n"
    "      if prior == 0 then redis.call('EXPIRE', kc, expiry) end\n"
    "    end\n"
    "    if set then\n"
    "      local ttl = redis.call('PTTL', kc)\n"
    "      if ttl <= 0 then ttl = expiry * 1000 end\n"
    "      redis.call('SET', km, marker, 'PX', ttl)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if redis.call('ZCARD', KEYS[1]) > cap then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -cap - 1) end\n"
    "return out\n";

#define BATCH_MAX 256 /* events per counting call */

/* One event waiting for the next counting call; everything copied. */
struct hit {
    struct hit *next;
    mutt_alert_unhandled_cb *cb;
    void *priv;
    int64_t threshold, expiry_s, max_templates, now_ms;
    size_t tlen, slen, hlen;
    char h16[17];
    char counter[640], marker[640], info[640], hostset[640], member[600];
    char *host, *tmpl, *sample, *event_id; /* one allocation: str */
    char str[];
};

struct mutt_alert_unhandled {
    struct mutt_redis *redis;
    char *prefix;
    char *top_key;     /* <prefix>:_top */
    int count_script;
    uv_timer_t flush_timer; /* 0 ms: the events of one loop turn share one call */
    struct hit *head, *tail;
};

static void on_flush(uv_timer_t *t);

struct mutt_alert_unhandled *mutt_alert_unhandled_create(uv_loop_t *loop, struct mutt_redis *redis,
                                                         const struct mutt_config *cfg, const char *prefix)
{
    (void)cfg;
    struct mutt_alert_unhandled *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->redis = redis;
    u->prefix = strdup(prefix);
    if (asprintf(&u->top_key, "%s" MUTT_UNHANDLED_TOP_SUFFIX, prefix) < 0)
        u->top_key = NULL;
    u->count_script = mutt_redis_script_register(redis, "alert_unhandled_batch", COUNT_LUA);
    if (!u->prefix || !u->top_key || u->count_script < 0) {
        free(u->prefix);
        free(u->top_key);
        free(u);
        return NULL;
    }
    uv_timer_init(loop, &u->flush_timer);
    u->flush_timer.data = u;
    return u;
}

static void on_closed(uv_handle_t *h)
{
    struct mutt_alert_unhandled *u = h->data;
    free(u->prefix);
    free(u->top_key);
    free(u);
}

void mutt_alert_unhandled_destroy(struct mutt_alert_unhandled *u)
{
    if (!u)
        return;
    while (u->head) { /* never called back: the stage stops only once every item is done */
        struct hit *h = u->head;
        u->head = h->next;
        free(h);
    }
    uv_close((uv_handle_t *)&u->flush_timer, on_closed);
}

/* One counting call in flight: its events in argument order. */
struct count_op {
    size_t n;
    struct hit *hits[];
};

static void on_counted(void *privdata, redisReply *reply, int status)
{
    struct count_op *op = privdata;
    int rc = status;
    if (rc == 0 && (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != op->n))
        rc = MUTT_EIO;
    for (size_t i = 0; i < op->n; i++) {
        struct hit *h = op->hits[i];
        enum mutt_alert_unhandled_verdict verdict = MUTT_ALERT_UNHANDLED_COUNTED;
        int hrc = rc;
        if (hrc == 0) {
            const redisReply *e = reply->element[i];
            if (e->type == REDIS_REPLY_INTEGER && e->integer >= 0 && e->integer <= 2)
                verdict = e->integer == 1   ? MUTT_ALERT_UNHANDLED_TRIGGER
                          : e->integer == 2 ? MUTT_ALERT_UNHANDLED_CAPPED
                                            : MUTT_ALERT_UNHANDLED_COUNTED;
            else
                hrc = MUTT_EIO;
        }
        h->cb(h->priv, hrc, verdict);
        free(h);
    }
    free(op);
}

/* Sends `n` hits (group order: events of one member together, arrival order kept inside a
 * group). Returns 0 or the send's error (the hits are then untouched). */
static int send_hits(struct mutt_alert_unhandled *u, struct hit **hits, size_t n)
{
    /* group by member: hits of one (hostname, template) are adjacent in `order` */
    struct hit **order = malloc(n * sizeof *order);
    size_t *gstart = malloc((n + 1) * sizeof *gstart);
    bool *taken = calloc(n, sizeof *taken);
    const char **keys = malloc((1 + 4 * n) * sizeof *keys);
    size_t *keylens = malloc((1 + 4 * n) * sizeof *keylens);
    const char **args = malloc((6 + 7 * n) * sizeof *args);
    size_t *arglens = malloc((6 + 7 * n) * sizeof *arglens);
    char (*nums)[24] = malloc((6 + n) * sizeof *nums);
    struct count_op *op = malloc(sizeof *op + n * sizeof op->hits[0]);
    int rc = MUTT_ENOMEM;
    if (!order || !gstart || !taken || !keys || !keylens || !args || !arglens || !nums || !op)
        goto out;
    size_t no = 0, ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (taken[i])
            continue;
        gstart[ng++] = no;
        for (size_t j = i; j < n; j++) {
            if (!taken[j] && strcmp(hits[j]->member, hits[i]->member) == 0) {
                taken[j] = true;
                order[no++] = hits[j];
            }
        }
    }
    gstart[ng] = no;
    const struct hit *last = hits[n - 1]; /* live settings and clock: the newest event's */
    char now[MUTT_TIME_ISO8601_MS_LEN];
    if (mutt_time_format_iso8601_ms(last->now_ms, now, sizeof now) != 0)
        now[0] = '\0';
    snprintf(nums[0], sizeof nums[0], "%lld", (long long)last->threshold);
    snprintf(nums[1], sizeof nums[1], "%lld", (long long)last->expiry_s);
    snprintf(nums[2], sizeof nums[2], "%s", TOP_CAP);
    snprintf(nums[3], sizeof nums[3], "%lld", (long long)last->max_templates);
    snprintf(nums[5], sizeof nums[5], "%zu", ng);
    size_t na = 0, nk = 0, nn = 6;
    for (int i = 0; i < 6; i++) {
        args[na] = i == 4 ? now : nums[i];
        arglens[na] = strlen(args[na]);
        na++;
    }
    keys[nk++] = u->top_key;
    for (size_t g = 0; g < ng; g++) {
        const struct hit *h = order[gstart[g]];
        keys[nk++] = h->counter;
        keys[nk++] = h->marker;
        keys[nk++] = h->info;
        keys[nk++] = h->hostset;
        const char *ga[5] = {h->member, h->host, h->tmpl, h->sample, h->h16};
        size_t gl[5] = {strlen(h->member), h->hlen, h->tlen, h->slen, 16};
        for (int k = 0; k < 5; k++) {
            args[na] = ga[k];
            arglens[na++] = gl[k];
        }
        snprintf(nums[nn], sizeof nums[nn], "%zu", gstart[g + 1] - gstart[g]);
        args[na] = nums[nn];
        arglens[na++] = strlen(nums[nn++]);
        for (size_t i = gstart[g]; i < gstart[g + 1]; i++) {
            args[na] = order[i]->event_id;
            arglens[na++] = strlen(order[i]->event_id);
        }
    }
    for (size_t i = 0; i < nk; i++)
        keylens[i] = strlen(keys[i]);
    op->n = n;
    memcpy(op->hits, order, n * sizeof order[0]);
    rc = mutt_redis_evalsha(mutt_redis_cmd(u->redis), u->count_script, (int)nk, keys, keylens, (int)na, args,
                            arglens, on_counted, op);
    if (rc == 0)
        op = NULL;
out:
    free(order);
    free(gstart);
    free(taken);
    free(keys);
    free(keylens);
    free(args);
    free(arglens);
    free(nums);
    free(op);
    return rc;
}

static void on_flush(uv_timer_t *t)
{
    struct mutt_alert_unhandled *u = t->data;
    struct hit *list = u->head;
    u->head = u->tail = NULL;
    while (list) {
        struct hit *hits[BATCH_MAX];
        size_t n = 0;
        while (list && n < BATCH_MAX) {
            hits[n++] = list;
            list = list->next;
        }
        int rc = send_hits(u, hits, n);
        if (rc != 0) {
            /* the stage retries or leaves the item for relq's recovery, as for any Redis error */
            for (size_t i = 0; i < n; i++) {
                hits[i]->cb(hits[i]->priv, rc, MUTT_ALERT_UNHANDLED_COUNTED);
                free(hits[i]);
            }
        }
    }
}

int mutt_alert_unhandled_count(struct mutt_alert_unhandled *u, const struct mutt_alert_unhandled_hit *hit,
                               mutt_alert_unhandled_cb *cb, void *priv)
{
    /* hostname <= MUTT_EVENT_HOSTNAME_MAX bytes at ingest; items from elsewhere (D33) may hold
     * anything, so a key that does not fit is MUTT_EINVAL, never a cut (cut keys could collide) */
    const char *host = hit->hostname ? hit->hostname : "";
    const char *eid = hit->event_id ? hit->event_id : "";
    size_t hlen = strlen(host), elen = strlen(eid);
    size_t mlen = hit->message_len;
    /* the sample is cut at a byte limit on a UTF-8 boundary (never half a character) */
    size_t slen = mlen < SAMPLE_MAX ? mlen : SAMPLE_MAX;
    while (slen < mlen && slen > 0 && ((unsigned char)hit->message[slen] & 0xC0) == 0x80)
        slen--;
    struct hit *h = malloc(sizeof *h + TEMPLATE_MAX + hlen + 1 + slen + 1 + elen + 1);
    if (!h)
        return MUTT_ENOMEM;
    h->tmpl = h->str;
    h->tlen = mutt_template_mask(hit->message, mlen, h->tmpl, TEMPLATE_MAX);
    uint64_t th = mutt_template_hash(h->tmpl, h->tlen);
    mutt_unhandled_hash_hex(th, h->h16);
    if (mutt_unhandled_key(u->prefix, MUTT_UNHANDLED_KEY_COUNTER, host, hlen, th, h->counter, sizeof h->counter) < 0 ||
        mutt_unhandled_key(u->prefix, MUTT_UNHANDLED_KEY_MARKER, host, hlen, th, h->marker, sizeof h->marker) < 0 ||
        mutt_unhandled_key(u->prefix, MUTT_UNHANDLED_KEY_INFO, host, hlen, th, h->info, sizeof h->info) < 0 ||
        mutt_unhandled_host_key(u->prefix, host, hlen, h->hostset, sizeof h->hostset) < 0 ||
        mutt_unhandled_member(host, hlen, th, h->member, sizeof h->member) < 0) {
        free(h);
        return MUTT_EINVAL;
    }
    h->host = h->str + TEMPLATE_MAX;
    memcpy(h->host, host, hlen + 1);
    h->hlen = hlen;
    h->sample = h->host + hlen + 1;
    memcpy(h->sample, hit->message, slen);
    h->sample[slen] = '\0';
    h->slen = slen;
    h->event_id = h->sample + slen + 1;
    memcpy(h->event_id, eid, elen + 1);
    h->threshold = hit->threshold;
    h->expiry_s = hit->expiry_s;
    h->max_templates = hit->max_templates;
    h->now_ms = hit->now_ms;
    h->cb = cb;
    h->priv = priv;
    h->next = NULL;
    if (u->tail)
        u->tail->next = h;
    else
        u->head = h;
    u->tail = h;
    if (!uv_is_active((uv_handle_t *)&u->flush_timer))
        uv_timer_start(&u->flush_timer, on_flush, 0, 0);
    return 0;
}
