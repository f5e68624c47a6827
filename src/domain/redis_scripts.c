/* The shared Lua scripts (include/mutt/redis_scripts.h). Pure text; any thread. */
#include "mutt/redis_scripts.h"

const char mutt_script_dlq_move_lua[] =
    "local taken\n"
    "if ARGV[3] == '" MUTT_SCRIPT_DLQ_MOVE_TAIL "' then\n"
    "  taken = 0\n"
    "  if redis.call('LINDEX', KEYS[1], -1) == ARGV[1] then redis.call('RPOP', KEYS[1]) taken = 1 end\n"
    "elseif ARGV[3] == '" MUTT_SCRIPT_DLQ_MOVE_LREM "' then\n"
    "  taken = redis.call('LREM', KEYS[1], 1, ARGV[1])\n"
    "else\n"
    "  return redis.error_reply('dlq move: unknown mode')\n"
    "end\n"
    "if taken == 1 then\n"
    "  redis.call('LPUSH', KEYS[2], ARGV[2])\n"
    "  if KEYS[3] then redis.call('INCRBY', KEYS[3], #ARGV[2]) end\n"
    "  if ARGV[4] and ARGV[4] ~= '' then\n"
    "    redis.pcall('HSET', ARGV[4], ARGV[5], ARGV[6])\n"
    "    redis.pcall('EXPIRE', ARGV[4], ARGV[7])\n"
    "  end\n"
    "end\n"
    "return taken\n";

const char mutt_script_unhandled_top_lua[] =
    "local out, stale = {}, {}\n"
    "local limit = tonumber(ARGV[2])\n"
    "for page = 0, tonumber(ARGV[3]) - 1 do\n"
    "  local m = redis.call('ZREVRANGE', KEYS[1], page * limit, page * limit + limit - 1, 'WITHSCORES')\n"
    "  if #m == 0 then break end\n"
    "  for i = 1, #m, 2 do\n"
    "    if #out < limit then\n"
    "      local f = redis.call('HMGET', ARGV[1] .. m[i], 'hostname', 'template', 'sample', 'first_seen', 'last_seen')\n"
    "      if f[1] then\n"
    "        out[#out + 1] = {f[1], f[2] or '', m[i + 1], f[3] or '', f[4] or '', f[5] or ''}\n"
    "      else\n"
    "        stale[#stale + 1] = m[i]\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if #out >= limit then break end\n"
    "end\n"
    "for i = 1, #stale do redis.call('ZREM', KEYS[1], stale[i]) end\n"
    "return out\n";

const char mutt_script_sample_push_lua[] =
    "local cap = tonumber(ARGV[1])\n"
    "for i = 2, #ARGV, 1000 do\n"
    "  redis.call('LPUSH', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))\n"
    "end\n"
    "redis.call('LTRIM', KEYS[1], 0, cap - 1)\n"
    "return redis.call('LLEN', KEYS[1])\n";
