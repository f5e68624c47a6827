/* Sliding-window-log limiter (include/mutt/ratelimit.h). A log rather than a counter so the
 * budget is exact over any window, not only aligned ones; its size is bounded by the limit. */
#include "mutt/ratelimit.h"

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
    "if not limit or not window or not now or window < 1 or not ARGV[4] then\n"
    "  return redis.error_reply('ERR ratelimit: bad arguments')\n"
    "end\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))\n"
    "if redis.call('ZCARD', KEYS[1]) < limit then\n"
    "  redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[4])\n"
    "  redis.call('PEXPIRE', KEYS[1], string.format('%d', window))\n"
    "  return {1, 0, now}\n"
    "end\n"
    "local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "local wait = 1\n"
    "if oldest[2] then wait = tonumber(oldest[2]) + window - now end\n"
    "if wait < 1 then wait = 1 end\n"
    "return {0, wait, now}\n";
