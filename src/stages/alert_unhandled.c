/* The alert stage's unhandled-event counting (CONTRACT §4, D14, W24): one Lua call per
 * unmatched event counts it per (hostname, message template) in a fixed window from the first
 * occurrence, decides the meta-alert at >= threshold exactly once per window, and keeps the
 * top-templates data GET /api/v1/unhandled answers from (the web stage reads it with the shared
 * script in redis_scripts.h). Builds no alert (the stage does) and never touches the processing
 * list. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/redis.h"
#include "mutt/template.h"
#include "mutt/timefmt.h"
#include "mutt/unhandled_key.h"

#define TOP_CAP "1000"        /* templates kept in the top ZSET (the lowest scores go first) */
#define SAMPLE_MAX 500        /* bytes of the sample message kept per template */
#define TEMPLATE_MAX 1024     /* bytes of a template kept */

/* KEYS[1] counter, KEYS[2] triggered marker, KEYS[3] top ZSET, KEYS[4] template info hash,
 * KEYS[5] the host's set of tracked template hashes (all named by unhandled_key.h, D36).
 * ARGV: threshold, expiry_s, event id, ZSET member, hostname, template, sample, now (ISO), top cap,
 * max templates per host, template hash (16 hex).
 * A template not yet tracked for this host (no live counter, not in the host's set) is refused
 * when the host already tracks max templates in its window (D62): nothing is written, answer 2.
 * The host's set expires expiry_s after its first template (a fixed window, like the counters).
 * The marker holds the id of the event that crossed the threshold, with the counter's remaining
 * TTL (suppressed until the window ends, D14). If that same event comes back (its pod died
 * after this script but before its completion), the answer is 1 again, so the meta-alert is
 * pushed once by whichever completion succeeds: the one decision is not lost with the pod. */
static const char COUNT_LUA[] =
    "local expiry = tonumber(ARGV[2])\n"
    "if redis.call('SISMEMBER', KEYS[5], ARGV[11]) == 0 then\n"
    "  if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[10]) then\n"
    "    return 2\n"
    "  end\n"
    "  redis.call('SADD', KEYS[5], ARGV[11])\n"
    "  if redis.call('TTL', KEYS[5]) < 0 then redis.call('EXPIRE', KEYS[5], expiry) end\n"
    "end\n"
    "redis.call('ZINCRBY', KEYS[3], 1, ARGV[4])\n"
    "if redis.call('HSETNX', KEYS[4], 'first_seen', ARGV[8]) == 1 then\n"
    "  redis.call('HSET', KEYS[4], 'hostname', ARGV[5], 'template', ARGV[6], 'sample', ARGV[7])\n"
    "end\n"
    "redis.call('HSET', KEYS[4], 'last_seen', ARGV[8])\n"
    "redis.call('EXPIRE', KEYS[4], expiry)\n"
    "local cap = tonumber(ARGV[9])\n"
    "if redis.call('ZCARD', KEYS[3]) > cap then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -cap - 1) end\n"
    "local marker = redis.call('GET', KEYS[2])\n"
    "if marker then\n"
    "  if marker == ARGV[3] then return 1 end\n"
    "  return 0\n"
    "end\n"
    "local n = redis.call('INCR', KEYS[1])\n"
    "if n == 1 then redis.call('EXPIRE', KEYS[1], expiry) end\n"
    "if n >= tonumber(ARGV[1]) then\n"
    "  local ttl = redis.call('PTTL', KEYS[1])\n"
    "  if ttl <= 0 then ttl = expiry * 1000 end\n"
    "  redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

struct mutt_alert_unhandled {
    struct mutt_redis *redis;
    char *prefix;
    char *top_key;     /* <prefix>:_top */
    int count_script;
};

struct mutt_alert_unhandled *mutt_alert_unhandled_create(struct mutt_redis *redis, const struct mutt_config *cfg,
                                                         const char *prefix)
{
    struct mutt_alert_unhandled *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->redis = redis;
    u->prefix = strdup(prefix);
    if (asprintf(&u->top_key, "%s" MUTT_UNHANDLED_TOP_SUFFIX, prefix) < 0)
        u->top_key = NULL;
    u->count_script = mutt_redis_script_register(redis, "alert_unhandled", COUNT_LUA);
    if (!u->prefix || !u->top_key || u->count_script < 0) {
        mutt_alert_unhandled_destroy(u);
        return NULL;
    }
    return u;
}

void mutt_alert_unhandled_destroy(struct mutt_alert_unhandled *u)
{
    if (!u)
        return;
    free(u->prefix);
    free(u->top_key);
    free(u);
}

/* One count call in flight: the caller's callback and what it needs back. */
struct count_op {
    mutt_alert_unhandled_cb *cb;
    void *priv;
};

static void on_counted(void *privdata, redisReply *reply, int status)
{
    struct count_op *op = privdata;
    int rc = status;
    enum mutt_alert_unhandled_verdict verdict = MUTT_ALERT_UNHANDLED_COUNTED;
    if (rc == 0) {
        if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 && reply->integer <= 2)
            verdict = reply->integer == 1   ? MUTT_ALERT_UNHANDLED_TRIGGER
                      : reply->integer == 2 ? MUTT_ALERT_UNHANDLED_CAPPED
                                            : MUTT_ALERT_UNHANDLED_COUNTED;
        else
            rc = MUTT_EIO;
    }
    mutt_alert_unhandled_cb *cb = op->cb;
    void *priv = op->priv;
    free(op);
    cb(priv, rc, verdict);
}

int mutt_alert_unhandled_count(struct mutt_alert_unhandled *u, const struct mutt_alert_unhandled_hit *hit,
                               mutt_alert_unhandled_cb *cb, void *priv)
{
    /* hostname <= MUTT_EVENT_HOSTNAME_MAX bytes at ingest; items from elsewhere (D33) may hold
     * anything, so a key that does not fit is MUTT_EINVAL, never a cut (cut keys could collide) */
    char counter[640], marker[640], info[640], hostset[640], member[600], h16[17];
    const char *host = hit->hostname ? hit->hostname : "";
    size_t hlen = strlen(host);
    char *tmpl = malloc(TEMPLATE_MAX);
    if (!tmpl)
        return MUTT_ENOMEM;
    size_t mlen = hit->message_len;
    size_t tn = mutt_template_mask(hit->message, mlen, tmpl, TEMPLATE_MAX);
    uint64_t th = mutt_template_hash(tmpl, tn);
    mutt_unhandled_hash_hex(th, h16);
    if (mutt_unhandled_key(u->prefix, MUTT_UNHANDLED_KEY_COUNTER, host, hlen, th, counter, sizeof counter) < 0 ||
        mutt_unhandled_key(u->prefix, MUTT_UNHANDLED_KEY_MARKER, host, hlen, th, marker, sizeof marker) < 0 ||
        mutt_unhandled_key(u->prefix, MUTT_UNHANDLED_KEY_INFO, host, hlen, th, info, sizeof info) < 0 ||
        mutt_unhandled_host_key(u->prefix, host, hlen, hostset, sizeof hostset) < 0 ||
        mutt_unhandled_member(host, hlen, th, member, sizeof member) < 0) {
        free(tmpl);
        return MUTT_EINVAL;
    }
    char thr[24], exp[24], maxt[24], now[MUTT_TIME_ISO8601_MS_LEN];
    snprintf(thr, sizeof thr, "%lld", (long long)hit->threshold);
    snprintf(exp, sizeof exp, "%lld", (long long)hit->expiry_s);
    snprintf(maxt, sizeof maxt, "%lld", (long long)hit->max_templates);
    if (mutt_time_format_iso8601_ms(hit->now_ms, now, sizeof now) != 0)
        now[0] = '\0';
    /* the sample is cut at a byte limit on a UTF-8 boundary (never half a character) */
    size_t slen = mlen < SAMPLE_MAX ? mlen : SAMPLE_MAX;
    while (slen < mlen && slen > 0 && ((unsigned char)hit->message[slen] & 0xC0) == 0x80)
        slen--;
    const char *keys[5] = {counter, marker, u->top_key, info, hostset};
    size_t keylens[5] = {strlen(counter), strlen(marker), strlen(u->top_key), strlen(info), strlen(hostset)};
    const char *args[11] = {thr, exp, hit->event_id, member, host, tmpl, hit->message, now, TOP_CAP, maxt, h16};
    size_t arglens[11] = {strlen(thr), strlen(exp), strlen(hit->event_id), strlen(member), hlen,
                          tn, slen, strlen(now), strlen(TOP_CAP), strlen(maxt), 16};
    struct count_op *op = malloc(sizeof *op);
    if (!op) {
        free(tmpl);
        return MUTT_ENOMEM;
    }
    op->cb = cb;
    op->priv = priv;
    int rc = mutt_redis_evalsha(mutt_redis_cmd(u->redis), u->count_script, 5, keys, keylens, 11, args, arglens,
                                on_counted, op);
    free(tmpl);
    if (rc != 0)
        free(op);
    return rc;
}
