/* The ingest stage's pure half: the Lua script that makes "cap check + rate limit + push +
 * dashboard counters" one atomic step (W27, W28, D7), the layout of its KEYS/ARGV, and the small
 * decisions (constant-time key compare, media type, Retry-After). No I/O, no clock: callers pass
 * the time. Any thread. */
#define _GNU_SOURCE
#include "mutt/ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mutt/error.h"
#include "mutt/queue_bytes.h"
#include "mutt/keys.h"

/* KEYS[1] queue, KEYS[2] rate window counter, KEYS[3..5] dashboard 1m/1h/24h, KEYS[6] the queue's
 * byte counter (D52). ARGV[1] cap, ARGV[2] rate max (0 = off), ARGV[3] rate key TTL, ARGV[4] byte
 * cap (0 = off), ARGV[5] R = requests in the group, ARGV[6..5+R] events of each request, then
 * the events of request 1, 2, .. R back to back.
 * D50 group commit: each request is judged in arrival order as if it had made its own call right
 * after the previous one (D6: rate before caps; D7: a request passes or fails whole), so a
 * refused request takes nothing and a later one that fits still goes in. Tokens are only taken
 * for events that are pushed. The accepted events are pushed with one LPUSH (per 1000: Lua's C
 * stack holds ~8000 values) and every counter is bumped once for the group, not per request.
 * A negative byte counter (drift the janitor has not reconciled yet) counts as 0.
 * Lineage (D63): when ARGV goes on after the events with [key prefix, TTL, field, value,
 * correlation id of request 1 .. R], every pushed event whose text ends in its "_event_id"
 * (as both serialisers leave it) gets the group's "accepted" step and its correlation id in
 * <prefix><event_id>, and each request's ids go into the set <prefix>c:<correlation_id>; both
 * expire after TTL. Without the block nothing of this runs. */
const char mutt_ingest_lua[] =
    "local R = tonumber(ARGV[5])\n"
    "local depth = redis.call('LLEN', KEYS[1])\n"
    "local rate_max = tonumber(ARGV[2])\n"
    "local used = 0\n"
    "if rate_max > 0 then used = tonumber(redis.call('GET', KEYS[2]) or '0') or 0 end\n"
    "local cap = tonumber(ARGV[1])\n"
    "local bcap = tonumber(ARGV[4])\n"
    "local held = 0\n"
    "if bcap > 0 then\n"
    "  held = tonumber(redis.call('GET', KEYS[6]) or '0') or 0\n"
    "  if held < 0 then held = 0 end\n"
    "end\n"
    "local out, take, nt, bytes, okr = {}, {}, 0, 0, {}\n"
    "local e = 6 + R\n"
    "for r = 1, R do\n"
    "  local n = tonumber(ARGV[5 + r])\n"
    "  local last = e + n - 1\n"
    "  local k = #out\n"
    "  if rate_max > 0 and used + n > rate_max then\n"
    "    out[k+1], out[k+2], out[k+3], out[k+4] = 1, depth, used, 0\n"
    "  elseif depth + n > cap then\n"
    "    out[k+1], out[k+2], out[k+3], out[k+4] = 2, depth, cap, 0\n"
    "  else\n"
    "    local b = 0\n"
    "    for i = e, last do b = b + #ARGV[i] end\n"
    "    if bcap > 0 and held + b > bcap then\n"
    "      out[k+1], out[k+2], out[k+3], out[k+4] = 3, depth, bcap, held\n"
    "    else\n"
    "      for i = e, last do nt = nt + 1; take[nt] = ARGV[i] end\n"
    "      okr[#okr + 1] = {r, e, last}\n"
    "      used, held, bytes, depth = used + n, held + b, bytes + b, depth + n\n"
    "      out[k+1], out[k+2], out[k+3], out[k+4] = 0, depth, n, 0\n"
    "    end\n"
    "  end\n"
    "  e = last + 1\n"
    "end\n"
    "if nt > 0 then\n"
    "  local i = 1\n"
    "  while i <= nt do\n"
    "    local j = i + 999\n"
    "    if j > nt then j = nt end\n"
    "    redis.call('LPUSH', KEYS[1], unpack(take, i, j))\n"
    "    i = j + 1\n"
    "  end\n"
    "  if rate_max > 0 then\n"
    "    redis.call('INCRBY', KEYS[2], nt)\n"
    "    redis.call('EXPIRE', KEYS[2], ARGV[3])\n"
    "  end\n"
    "  redis.call('INCRBY', KEYS[6], bytes)\n"
    "  redis.call('INCRBY', KEYS[3], nt)\n"
    "  redis.call('EXPIRE', KEYS[3], 7200)\n"
    "  redis.call('INCRBY', KEYS[4], nt)\n"
    "  redis.call('EXPIRE', KEYS[4], 172800)\n"
    "  redis.call('INCRBY', KEYS[5], nt)\n"
    "  redis.call('EXPIRE', KEYS[5], 2592000)\n"
    "end\n"
    /* lineage (D63), only when the caller appended its block after the events */
    "local lp = ARGV[e]\n"
    "if lp and #okr > 0 then\n"
    "  local ttl, fld, val = ARGV[e + 1], ARGV[e + 2], ARGV[e + 3]\n"
    "  for _, g in ipairs(okr) do\n"
    "    local cid, ids = ARGV[e + 3 + g[1]], {}\n"
    "    for i = g[2], g[3] do\n"
    "      local ev = ARGV[i]\n"
    "      if string.sub(ev, -51, -39) == '\"_event_id\":\"' then\n"
    "        local id = string.sub(ev, -38, -3)\n"
    "        local k = lp .. id\n"
    "        redis.call('HSET', k, fld, val, 'c', cid)\n"
    "        redis.call('EXPIRE', k, ttl)\n"
    "        ids[#ids + 1] = id\n"
    "      end\n"
    "    end\n"
    "    if #ids > 0 then\n"
    "      local ck = lp .. 'c:' .. cid\n"
    "      for i = 1, #ids, 1000 do redis.call('SADD', ck, unpack(ids, i, math.min(i + 999, #ids))) end\n"
    "      redis.call('EXPIRE', ck, ttl)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

/* The TTL literals above must be the header's (one place for callers and tests to read). */
_Static_assert(MUTT_INGEST_TTL_1M_S == 7200 && MUTT_INGEST_TTL_1H_S == 172800 && MUTT_INGEST_TTL_24H_S == 2592000,
               "update mutt_ingest_lua with the TTLs");

static int put(char *buf, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        return MUTT_EINVAL;
    *len = (size_t)n;
    return 0;
}

static int metrics_key(char *buf, size_t cap, size_t *len, const char *prefix, enum mutt_key_metrics_period period,
                       int64_t now_ms)
{
    int n = mutt_key_metrics(prefix, period, now_ms, buf, cap);
    if (n < 0)
        return n;
    *len = (size_t)n;
    return 0;
}

int mutt_ingest_call_prepare(struct mutt_ingest_call *call, const struct mutt_ingest_params *p)
{
    if (!call || !p || !p->queue || !*p->queue || !p->metrics_prefix || p->now_ms < 0 || p->cap < 1 || p->byte_cap < 0 ||
        (p->rate_enabled && (p->rate_max < 1 || p->rate_window_s < 1)))
        return MUTT_EINVAL;
    memset(call, 0, sizeof(*call));
    time_t now_s = (time_t)(p->now_ms / 1000);
    int64_t window = p->rate_window_s > 0 ? p->rate_window_s : 1;
    const char *pre = p->metrics_prefix;

    call->keys[0] = p->queue;
    call->keylens[0] = strlen(p->queue);
    int rc = 0;
    rc |= put(call->rate_key, sizeof call->rate_key, &call->keylens[1], "mutt:rate_limit:ingestor:%lld:%lld",
              (long long)window, (long long)((int64_t)now_s / window));
    rc |= metrics_key(call->key_1m, sizeof call->key_1m, &call->keylens[2], pre, MUTT_KEY_METRICS_1M, p->now_ms);
    rc |= metrics_key(call->key_1h, sizeof call->key_1h, &call->keylens[3], pre, MUTT_KEY_METRICS_1H, p->now_ms);
    rc |= metrics_key(call->key_24h, sizeof call->key_24h, &call->keylens[4], pre, MUTT_KEY_METRICS_24H, p->now_ms);
    rc |= put(call->arg_cap, sizeof call->arg_cap, &call->arglens[0], "%lld", (long long)p->cap);
    rc |= put(call->arg_rate_max, sizeof call->arg_rate_max, &call->arglens[1], "%lld",
              p->rate_enabled ? (long long)p->rate_max : 0LL);
    rc |= put(call->arg_rate_ttl, sizeof call->arg_rate_ttl, &call->arglens[2], "%lld", (long long)(2 * window));
    rc |= put(call->arg_byte_cap, sizeof call->arg_byte_cap, &call->arglens[3], "%lld", (long long)p->byte_cap);
    rc |= mutt_queue_bytes_key(p->queue, call->bytes_key, sizeof call->bytes_key) != 0;
    if (rc != 0)
        return MUTT_EINVAL;
    call->keys[1] = call->rate_key;
    call->keys[2] = call->key_1m;
    call->keys[3] = call->key_1h;
    call->keys[4] = call->key_24h;
    call->keys[5] = call->bytes_key;
    call->keylens[5] = strlen(call->bytes_key);
    call->args[0] = call->arg_cap;
    call->args[1] = call->arg_rate_max;
    call->args[2] = call->arg_rate_ttl;
    call->args[3] = call->arg_byte_cap;
    return 0;
}

unsigned mutt_ingest_retry_after_s(int64_t now_ms, int64_t window_s)
{
    if (window_s < 1)
        return 1;
    if (now_ms < 0)
        now_ms = 0;
    /* Same window arithmetic as the rate key (whole seconds), so the client comes back just as
     * the counter it hit stops being the current one. */
    int64_t now_s = now_ms / 1000;
    int64_t end_s = (now_s / window_s + 1) * window_s;
    int64_t remaining_ms = end_s * 1000 - now_ms;
    int64_t secs = (remaining_ms + 999) / 1000;
    return secs < 1 ? 1u : (unsigned)secs;
}

uint64_t mutt_ingest_pace_wait_ms(uint64_t now_ns, uint64_t last_ns, uint64_t pace_ns)
{
    if (last_ns == 0 || now_ns < last_ns || now_ns - last_ns >= pace_ns)
        return 0;
    uint64_t left = pace_ns - (now_ns - last_ns);
    return (left + 999999) / 1000000;
}

/* Compares every byte of `given` whatever the outcome, so the time taken tells an attacker
 * neither where the first difference is nor (beyond given's own length) the key's length. */
static bool ct_equal(const unsigned char *given, size_t glen, const char *want)
{
    if (!want || !*want)
        return false;
    const unsigned char *w = (const unsigned char *)want;
    size_t wlen = strlen(want);
    unsigned diff = (unsigned)(glen != wlen);
    for (size_t i = 0; i < glen; i++)
        diff |= (unsigned)(given[i] ^ w[i % wlen]);
    return diff == 0;
}

bool mutt_ingest_key_matches(const char *given, size_t glen, const char *current, const char *next)
{
    if (!given || glen == 0)
        return false;
    bool a = ct_equal((const unsigned char *)given, glen, current);
    bool b = ct_equal((const unsigned char *)given, glen, next);
    return a | b; /* not ||: both compares always run */
}

bool mutt_ingest_media_type_ok(const char *value, size_t len)
{
    if (!value)
        return false;
    size_t i = 0, end;
    while (i < len && (value[i] == ' ' || value[i] == '\t'))
        i++;
    end = i;
    while (end < len && value[end] != ';' && value[end] != ' ' && value[end] != '\t')
        end++;
    /* after the type: only spaces, then nothing or a parameter list */
    for (size_t k = end; k < len && value[k] != ';'; k++)
        if (value[k] != ' ' && value[k] != '\t')
            return false;
    size_t n = end - i;
    static const char json[] = "application/json", ndjson[] = "application/x-ndjson";
    return (n == sizeof json - 1 && strncasecmp(value + i, json, n) == 0) ||
           (n == sizeof ndjson - 1 && strncasecmp(value + i, ndjson, n) == 0);
}

const char *mutt_ingest_tail_cid(const char *ev, size_t len, size_t *cid_len)
{
    static const char id_tag[] = "\",\"_event_id\":\"", cid_tag[] = "\"_correlation_id\":\"";
    const size_t id_tail = sizeof id_tag - 1 + 36 + 2, tag = sizeof cid_tag - 1;
    if (!ev || len < id_tail + tag || memcmp(ev + len - 2, "\"}", 2) != 0)
        return NULL;
    size_t end = len - id_tail;
    if (memcmp(ev + end, id_tag, sizeof id_tag - 1) != 0)
        return NULL;
    size_t start = end;
    while (start > 0 && ev[start - 1] != '"')
        start--;
    if (start < tag || memcmp(ev + start - tag, cid_tag, tag) != 0)
        return NULL;
    *cid_len = end - start;
    return ev + start;
}
