/* The ingest queue's byte counter name and its reconcile script (D52). Pure; any thread. */
#include "mutt/queue_bytes.h"

#include <stdio.h>
#include <string.h>

#include "mutt/error.h"

int mutt_queue_bytes_key(const char *queue, char *buf, size_t len)
{
    if (!queue || !*queue || !buf)
        return MUTT_EINVAL;
    int n = snprintf(buf, len, "%s" MUTT_QUEUE_BYTES_SUFFIX, queue);
    return n < 0 || (size_t)n >= len ? MUTT_EINVAL : 0;
}

/* The exact recount reads the list in pages of 1000 (Lua's stack and one reply stay small); the
 * list cannot change meanwhile: a script runs alone. */
const char mutt_queue_bytes_reconcile_lua[] =
    "local n = redis.call('LLEN', KEYS[1])\n"
    "local cur = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "if n <= tonumber(ARGV[1]) then\n"
    "  local sum, i = 0, 0\n"
    "  while i < n do\n"
    "    for _, v in ipairs(redis.call('LRANGE', KEYS[1], i, i + 999)) do sum = sum + #v end\n"
    "    i = i + 1000\n"
    "  end\n"
    "  if n == 0 then redis.call('DEL', KEYS[2]) else redis.call('SET', KEYS[2], string.format('%.0f', sum)) end\n"
    "  return {1, cur, sum}\n"
    "end\n"
    "local sum, cnt = 0, 0\n"
    "for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, 99)) do sum = sum + #v cnt = cnt + 1 end\n"
    "for _, v in ipairs(redis.call('LRANGE', KEYS[1], -100, -1)) do sum = sum + #v cnt = cnt + 1 end\n"
    "local est = math.floor(sum / cnt * n)\n"
    "if cur < est / 2 or cur > est * 2 then\n"
    "  redis.call('SET', KEYS[2], string.format('%.0f', est))\n"
    "  return {2, cur, est}\n"
    "end\n"
    "return {0, cur, cur}\n";
