/* Leased sliding-window-log limiter (include/mutt/ratelimit.h). A log rather than a counter so
 * the budget is exact over any window, not only aligned ones. Members: "<base>#<n>" a pending
 * lease of n tokens (scored at its deadline), "<base>=<n>" a settled one (n tokens spent, scored
 * at the last spend, the settle time or the deadline, whichever is earliest), anything else one
 * token (the older
 * script's entries). The log holds at most `limit` entries: each holds at least one token. */
#include "mutt/ratelimit.h"

#include <stdio.h>
#include <string.h>

const char mutt_ratelimit_lua[] =
    "local limit = tonumber(ARGV[1])\n"
    "local window = tonumber(ARGV[2])\n"
    "local now\n"
    "if ARGV[3] == nil or ARGV[3] == '' then\n"
    "  local t = redis.call('TIME')\n"
    "  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "else\n"
    "  now = tonumber(ARGV[3])\n"
    "end\n"
    "local want = tonumber(ARGV[5])\n"
    "local lease = tonumber(ARGV[6])\n"
    "local spent = tonumber(ARGV[8] or '0')\n"
    "if not limit or not window or not now or window < 1 or not ARGV[4] or ARGV[4] == '' or not want\n"
    "   or want < 0 or not lease or lease < 0 or not spent or spent < 0 then\n"
    "  return redis.error_reply('ERR ratelimit: bad arguments')\n"
    "end\n"
    "local key = KEYS[1]\n"
    "local function fmt(x) return string.format('%d', x) end\n"
    "local prev = ARGV[7]\n"
    "if prev and prev ~= '' then\n"
    "  local score = redis.call('ZSCORE', key, prev)\n"
    "  if score then\n"
    "    redis.call('ZREM', key, prev)\n"
    "    if spent > 0 then\n"
    "      local s = tonumber(score)\n"
    "      if now < s then s = now end\n"
    "      local last = tonumber(ARGV[9] or '')\n"
    "      if last and last < s then s = last end\n"
    "      local base = string.match(prev, '^(.*)#%d+$') or prev\n"
    "      redis.call('ZADD', key, fmt(s), base .. '=' .. fmt(spent))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - window))\n"
    "local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')\n"
    "local used = 0\n"
    "for i = 1, #entries, 2 do\n"
    "  used = used + (tonumber(string.match(entries[i], '[#=](%d+)$')) or 1)\n"
    "end\n"
    "if want > 0 and used < limit then\n"
    "  local n = limit - used\n"
    "  if want < n then n = want end\n"
    "  local member = ARGV[4] .. '#' .. fmt(n)\n"
    "  redis.call('ZADD', key, fmt(now + lease), member)\n"
    "  redis.call('PEXPIRE', key, fmt(window + lease))\n"
    "  return {n, 0, now, member}\n"
    "end\n"
    "if #entries > 0 then redis.call('PEXPIRE', key, fmt(window + lease)) end\n"
    "if want == 0 then return {0, 0, now, ''} end\n"
    "local wait\n"
    "for i = 1, #entries, 2 do\n"
    "  local s = tonumber(entries[i + 1])\n"
    "  local w = s + window - now\n"
    "  if s > now and string.find(entries[i], '#%d+$') then w = s - now end\n"
    "  if not wait or w < wait then wait = w end\n"
    "end\n"
    "if not wait or wait < 1 then wait = 1 end\n"
    "return {0, wait, now, ''}\n";

uint32_t mutt_ratelimit_lease_size(int64_t limit)
{
    if (limit <= 0)
        return 0;
    int64_t n = limit / 10;
    if (n < 1)
        n = 1;
    if (n > (int64_t)MUTT_RATELIMIT_LEASE_MAX)
        n = MUTT_RATELIMIT_LEASE_MAX;
    return (uint32_t)n;
}

uint64_t mutt_ratelimit_lease_ms(int64_t window_ms)
{
    int64_t ms = window_ms / 10;
    if (ms < 10)
        ms = 10;
    if (ms > 1000)
        ms = 1000;
    return (uint64_t)ms;
}

void mutt_rate_lease_grant(struct mutt_rate_lease *l, const char *member, uint32_t granted, uint64_t sent_ms,
                           uint64_t lease_ms, int64_t redis_now_ms, uint64_t received_ms)
{
    memset(l, 0, sizeof *l);
    snprintf(l->member, sizeof l->member, "%s", member ? member : "");
    l->granted = granted;
    l->deadline = sent_ms + lease_ms;
    l->granted_at = redis_now_ms;
    l->received = received_ms;
}

bool mutt_rate_lease_take(struct mutt_rate_lease *l, uint64_t now_ms)
{
    if (l->spent >= l->granted || now_ms >= l->deadline)
        return false;
    l->spent++;
    l->last_spend = now_ms;
    return true;
}

bool mutt_rate_lease_settlement(const struct mutt_rate_lease *l, const char **member_out, uint32_t *spent,
                                int64_t *last_spend_at)
{
    if (!l->member[0])
        return false;
    *member_out = l->member;
    *spent = l->spent;
    *last_spend_at = -1;
    if (l->spent > 0) {
        uint64_t after = l->last_spend > l->received ? l->last_spend - l->received : 0;
        *last_spend_at = l->granted_at + (int64_t)after;
    }
    return true;
}

bool mutt_rate_lease_has_unspent(const struct mutt_rate_lease *l)
{
    return l->member[0] && l->spent < l->granted;
}

void mutt_rate_lease_clear(struct mutt_rate_lease *l)
{
    memset(l, 0, sizeof *l);
}
