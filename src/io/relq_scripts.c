/* relq's Lua scripts (registered by relq.c). Pure text; any thread. */
#include "relq_internal.h"

/* Batched completion (D3, D51). One call completes many items, each with its own outcome pushes.
 * An item's outcome is pushed only while the item is still in the processing list (a completion
 * racing a janitor or our stop pushes nothing: answer 0), and the item is removed only after all
 * of its pushes succeeded: a push error (redis.pcall, checked) leaves the item in the list, so a
 * failure can duplicate an outcome but never lose an item (answer -1). Pushes to one key of one
 * kind are grouped into one command (order kept). The targets of items with two or more pushes
 * (lineage pushes not counted) have their types checked once per key first, so a wrong-type target refuses such an item before
 * anything of it is written; an item with one push needs no check (issue 13: that was one TYPE
 * per key per call): Redis refuses a wrong-type push whole, and pcall answers -1 for it.
 * Presence and removal use one LRANGE of the list (bounded by the items in flight; no LLEN first:
 * the range asks for one item more than the limit, which tells a longer list): when the
 * completed items are runs at the ends (RPOPLPUSH puts new items at the head, so the oldest are
 * at the tail) one LTRIM removes them; when several sit in between, the survivors are written
 * back in their order (DEL + RPUSH, all inside the one script) instead of one O(N) LREM each.
 * A list longer than 2000 items falls back to LPOS/LREM per item.
 * KEYS[1] processing list, KEYS[2 .. nt+1] targets, then (D52) the source's byte counter.
 * ARGV[1] items, ARGV[2] nt, ARGV[3] the source's name ('' without a counter): pushes back to
 * the source (retries) add their bytes to the counter. Then per item: the item's bytes, pushes,
 * and per push: target index (into KEYS), kind (L/R/Z/H), payload, score.
 * H (lineage, D63) is "HSET key <field> <value> + EXPIRE key <score>" with payload
 * "<field> <value>": never checked, never refusing its item (a failed write loses a step of a
 * timeline, not an event), and no TYPE call is spent on its key.
 * Returns {depth after, code per item (1 removed, 0 gone, -1 refused), first error or ''}. */
const char relq_complete_batch_lua[] =
    "local n, nt, src = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]\n"
    "local bkey = nil\n"
    "if #KEYS > nt + 1 then bkey = KEYS[#KEYS] end\n"
    "local list = KEYS[1]\n"
    "local err = ''\n"
    "local types = {}\n"
    "local a = 4\n"
    "for k = 1, n do\n"
    "  local np = tonumber(ARGV[a + 1])\n"
    "  a = a + 2\n"
    "  local m = 0\n"
    "  for j = 0, np - 1 do if ARGV[a + 4 * j + 1] ~= 'H' then m = m + 1 end end\n"
    "  if m > 1 then\n"
    "    for j = 0, np - 1 do\n"
    "      local ti = tonumber(ARGV[a + 4 * j])\n"
    "      if ARGV[a + 4 * j + 1] ~= 'H' and types[ti] == nil then types[ti] = redis.call('TYPE', KEYS[ti]).ok end\n"
    "    end\n"
    "  end\n"
    "  a = a + 4 * np\n"
    "end\n"
    "local vals, have = redis.call('LRANGE', list, 0, 2000), {}\n"
    "local len = #vals\n"
    "if len > 2000 then\n"
    "  len = redis.call('LLEN', list)\n"
    "  vals = nil\n"
    "else\n"
    "  for _, v in ipairs(vals) do have[v] = (have[v] or 0) + 1 end\n"
    "end\n"
    "local items, code, pushes = {}, {}, {}\n"
    "a = 4\n"
    "for k = 1, n do\n"
    "  local v, np = ARGV[a], tonumber(ARGV[a + 1])\n"
    "  a = a + 2\n"
    "  items[k] = v\n"
    "  if not vals and have[v] == nil then have[v] = #redis.call('LPOS', list, v, 'COUNT', 0) end\n"
    "  local ok = (have[v] or 0) > 0\n"
    "  if ok then have[v] = have[v] - 1 code[k] = 1 else code[k] = 0 end\n"
    "  local mine = {}\n"
    "  for j = 1, np do\n"
    "    local ti, kind = tonumber(ARGV[a]), ARGV[a + 1]\n"
    "    local want = kind == 'Z' and 'zset' or 'list'\n"
    "    if ok and kind ~= 'H' and types[ti] and types[ti] ~= 'none' and types[ti] ~= want then\n"
    "      code[k] = -1\n"
    "      if err == '' then err = 'WRONGTYPE relq target ' .. KEYS[ti] .. ' is a ' .. types[ti] end\n"
    "    end\n"
    "    mine[j] = a\n"
    "    a = a + 4\n"
    "  end\n"
    "  if code[k] == 1 then pushes[#pushes + 1] = {k, mine} end\n"
    "end\n"
    "local groups, order = {}, {}\n"
    "for _, p in ipairs(pushes) do\n"
    "  for _, at in ipairs(p[2]) do\n"
    "    local gk = ARGV[at] .. ARGV[at + 1]\n"
    "    local g = groups[gk]\n"
    "    if not g then g = {ti = tonumber(ARGV[at]), kind = ARGV[at + 1], args = {}, its = {}, bytes = 0} groups[gk] = g order[#order + 1] = g end\n"
    "    if g.kind == 'H' then\n"
    "      local v = ARGV[at + 2]\n"
    "      local sp = string.find(v, ' ', 1, true) or (#v + 1)\n"
    "      g.args[#g.args + 1] = string.sub(v, 1, sp - 1)\n"
    "      g.args[#g.args + 1] = string.sub(v, sp + 1)\n"
    "      g.ttl = ARGV[at + 3]\n"
    "    else\n"
    "      if g.kind == 'Z' then g.args[#g.args + 1] = ARGV[at + 3] end\n"
    "      g.args[#g.args + 1] = ARGV[at + 2]\n"
    "      g.bytes = g.bytes + #ARGV[at + 2]\n"
    "    end\n"
    "    g.its[#g.its + 1] = p[1]\n"
    "  end\n"
    "end\n"
    "local back = 0\n"
    "for _, g in ipairs(order) do\n"
    "  local key = KEYS[g.ti]\n"
    "  if g.kind == 'H' then\n"
    "    redis.pcall('HSET', key, unpack(g.args))\n"
    "    redis.pcall('EXPIRE', key, g.ttl)\n"
    "  else\n"
    "    local cmd = g.kind == 'Z' and 'ZADD' or (g.kind == 'R' and 'RPUSH' or 'LPUSH')\n"
    "    local r = redis.pcall(cmd, key, unpack(g.args))\n"
    "    if type(r) == 'table' and r.err then\n"
    "      for _, k in ipairs(g.its) do code[k] = -1 end\n"
    "      if err == '' then err = r.err end\n"
    "    elseif bkey and g.kind ~= 'Z' and key == src then back = back + g.bytes end\n"
    "  end\n"
    "end\n"
    "if back > 0 then redis.call('INCRBY', bkey, back) end\n"
    "local rem, nrem = {}, 0\n"
    "for k = 1, n do\n"
    "  if code[k] == 1 then rem[items[k]] = (rem[items[k]] or 0) + 1 nrem = nrem + 1 end\n"
    "end\n"
    "if nrem > 0 and vals then\n"
    "  local lo, hi = 1, #vals\n"
    "  while hi >= lo and (rem[vals[hi]] or 0) > 0 do rem[vals[hi]] = rem[vals[hi]] - 1 hi = hi - 1 end\n"
    "  while lo <= hi and (rem[vals[lo]] or 0) > 0 do rem[vals[lo]] = rem[vals[lo]] - 1 lo = lo + 1 end\n"
    "  local left = 0\n"
    "  for i = lo, hi do if (rem[vals[i]] or 0) > 0 then left = left + 1 end end\n"
    "  if lo > hi then redis.call('DEL', list)\n"
    "  elseif left > 1 then\n"
    "    local keep = {}\n"
    "    for i = lo, hi do\n"
    "      local c = rem[vals[i]] or 0\n"
    "      if c > 0 then rem[vals[i]] = c - 1 else keep[#keep + 1] = vals[i] end\n"
    "    end\n"
    "    redis.call('DEL', list)\n"
    "    for i = 1, #keep, 1000 do redis.call('RPUSH', list, unpack(keep, i, math.min(i + 999, #keep))) end\n"
    "  elseif lo > 1 or hi < #vals then redis.call('LTRIM', list, lo - 1, hi - 1) end\n"
    "end\n"
    "for k = 1, n do\n"
    "  local c = rem[items[k]] or 0\n"
    "  if c > 0 then redis.call('LREM', list, -c, items[k]) rem[items[k]] = 0 end\n"
    "end\n"
    "local out = {len - nrem}\n"
    "for k = 1, n do out[k + 1] = code[k] end\n"
    "out[n + 2] = err\n"
    "return out\n";

/* Drain after a BRPOPLPUSH returned: up to ARGV[1] more items in one round trip, in the order
 * repeated RPOPLPUSH would take them (oldest first, each pushed to the head of the processing
 * list), with three commands for the whole batch instead of one per item. KEYS[1] source,
 * KEYS[2] processing list, KEYS[3] (optional) the source's byte counter (D52), lowered by the
 * bytes taken and by ARGV[2], the bytes of the item the BRPOPLPUSH before took (one DECRBY for
 * both instead of one after each blocking pop). */
const char relq_pop_batch_lua[] =
    "local extra = tonumber(ARGV[2]) or 0\n"
    "local v = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)\n"
    "if #v == 0 then\n"
    "  if KEYS[3] and extra > 0 then redis.call('DECRBY', KEYS[3], extra) end\n"
    "  return {}\n"
    "end\n"
    "redis.call('LTRIM', KEYS[1], 0, -#v - 1)\n"
    "local out, bytes = {}, 0\n"
    "for i = #v, 1, -1 do\n"
    "  out[#out + 1] = v[i]\n"
    "  bytes = bytes + #v[i]\n"
    "end\n"
    "for i = 1, #out, 1000 do\n"
    "  redis.call('LPUSH', KEYS[2], unpack(out, i, math.min(i + 999, #out)))\n"
    "end\n"
    "if KEYS[3] then redis.call('DECRBY', KEYS[3], bytes + extra) end\n"
    "return out\n";

/* Moves up to ARGV[2] items of a processing list back to the FRONT of the source (they were
 * popped first, so they are consumed next, in their original order: LPOP takes the newest,
 * RPUSH puts it at the consuming end, older ones follow behind it). Atomic, so two janitors can
 * never move one item twice. Modes: 'janitor' only when the owner's heartbeat is gone;
 * 'claim' (our own list at start/after reconnect) writes our heartbeat in the same call, so
 * nobody's janitor sees our list without it; 'release' (graceful stop) deletes the heartbeat
 * once the list is empty. KEYS[1] list, KEYS[2] heartbeat, KEYS[3] source, KEYS[4] (optional) the
 * source's byte counter (D52), raised by the bytes returned; ARGV[3] expiry.
 * Returns {moved, left} or {-1, 0} when a live owner's heartbeat was found. */
const char relq_move_lua[] =
    "local mode = ARGV[1]\n"
    "if mode == 'janitor' and redis.call('EXISTS', KEYS[2]) == 1 then return {-1, 0} end\n"
    "local t = redis.call('TYPE', KEYS[3]).ok\n"
    "if t ~= 'none' and t ~= 'list' then\n"
    "  return redis.error_reply('WRONGTYPE relq source ' .. KEYS[3] .. ' is a ' .. t)\n"
    "end\n"
    "if mode == 'claim' then redis.call('SETEX', KEYS[2], ARGV[3], 'alive') end\n"
    "local n, bytes = 0, 0\n"
    "for i = 1, tonumber(ARGV[2]) do\n"
    "  local v = redis.call('LPOP', KEYS[1])\n"
    "  if not v then break end\n"
    "  redis.call('RPUSH', KEYS[3], v)\n"
    "  n = n + 1\n"
    "  bytes = bytes + #v\n"
    "end\n"
    "if KEYS[4] and bytes > 0 then redis.call('INCRBY', KEYS[4], bytes) end\n"
    "local left = redis.call('LLEN', KEYS[1])\n"
    "if mode == 'release' and left == 0 then redis.call('DEL', KEYS[2]) end\n"
    "return {n, left}\n";
