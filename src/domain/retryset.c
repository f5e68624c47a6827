/* Retry set member format and scripts (include/mutt/retryset.h, D4). */
#include "mutt/retryset.h"

#include <stdlib.h>
#include <string.h>

char *mutt_retry_member(const char *uuid, const char *alert_json, size_t json_len, size_t *out_len)
{
    size_t ulen = strlen(uuid);
    char *m = malloc(ulen + 1 + json_len + 1);
    if (!m)
        return NULL;
    memcpy(m, uuid, ulen);
    m[ulen] = '|';
    if (json_len)
        memcpy(m + ulen + 1, alert_json, json_len);
    m[ulen + 1 + json_len] = '\0';
    if (out_len)
        *out_len = ulen + 1 + json_len;
    return m;
}

const char mutt_retry_schedule_lua[] =
    "redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])\n"
    "return redis.call('LREM', KEYS[2], 1, ARGV[3])\n";

const char mutt_retry_promote_lua[] =
    "local now = ARGV[1]\n"
    "if now == nil or now == '' then\n"
    "  local t = redis.call('TIME')\n"
    "  now = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))\n"
    "end\n"
    "local max = tonumber(ARGV[2])\n"
    "if not tonumber(now) or not max or max < 1 then\n"
    "  return redis.error_reply('ERR retry promote: bad arguments')\n"
    "end\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, max)\n"
    "for _, m in ipairs(due) do\n"
    "  redis.call('ZREM', KEYS[1], m)\n"
    "  local bar = string.find(m, '|', 1, true)\n"
    "  if bar then\n"
    "    redis.call('LPUSH', KEYS[2], string.sub(m, bar + 1))\n"
    "  else\n"
    "    redis.call('LPUSH', KEYS[2], m)\n"
    "  end\n"
    "end\n"
    "return #due\n";
