/* Owns one stage's reliable queue consumption: pops (BRPOPLPUSH, then batched non-blocking pops)
 * on a dedicated connection, hands items to the stage under a cap, completes them in batches (the
 * completions of one loop turn share one Lua call: pushes first, then the removals, D3/D51),
 * refreshes the stage heartbeat, runs the janitor and the graceful stop. Knows no queue names.
 * Loop thread only; every Redis call is async. */
#include "mutt/relq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/queue_bytes.h"

#define DEFAULT_BLOCK_TIMEOUT_S 5
#define DEFAULT_MAX_INFLIGHT 64
#define DEFAULT_HEARTBEAT_INTERVAL_MS 10000
#define DEFAULT_HEARTBEAT_EXPIRY_S 30
#define DEFAULT_JANITOR_INTERVAL_MS 60000
#define DEFAULT_RECOVER_BATCH 200
#define RETRY_DELAY_MS 1000        /* after a Redis error reply or a failed heartbeat/janitor */
#define SEND_RETRY_DELAY_MS 100    /* after a local send failure (EFULL, ENOMEM) */
#define RELEASE_MAX_ATTEMPTS 20    /* graceful stop: tries of the final return, 100 ms apart */
#define SCAN_COUNT "100"
#define COMPLETE_BATCH_MAX 128          /* items per completion call: bounds one script's run */
#define COMPLETE_BATCH_BYTES (1u << 20) /* and its arguments */
/* Completion calls go out at most once per this (issue 13): the forwarder's completions come one
 * per webhook answer, each in its own loop turn, so a call per turn was a script call (and its
 * LRANGE and trim) per alert; waiting out 1 ms after the previous call gathers the answers of
 * that millisecond. An item stays in the processing list meanwhile, so nothing is at risk; a
 * stage that completes less than once a millisecond never waits. */
#define COMPLETE_PACE_NS 1000000ull

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
static const char COMPLETE_BATCH_LUA[] =
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
static const char POP_BATCH_LUA[] =
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
static const char MOVE_LUA[] =
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

enum relq_state {
    RELQ_CREATED,
    RELQ_RUNNING,
    RELQ_DRAINING,  /* stop called: waiting for the stage to release what it holds */
    RELQ_RELEASING, /* returning our processing list to the source, then deleting the heartbeat */
    RELQ_STOPPED,
};

enum item_state {
    ITEM_HELD,       /* popped while paused: not handed out yet */
    ITEM_HANDED,     /* the stage holds it */
    ITEM_COMPLETING, /* a completion call is in flight */
    ITEM_FINISHED,   /* final completion callback running: freed when it returns */
};

struct mutt_relq_item {
    struct mutt_relq *q;
    struct mutt_relq_item *prev, *next; /* every live item */
    struct mutt_relq_item *ready_next;  /* FIFO of held items */
    enum item_state state;
    mutt_relq_complete_cb *cb;
    void *priv;
    struct mutt_relq_item *batch_next;                /* queued for the next completion call */
    struct mutt_relq_push pushes[MUTT_RELQ_MAX_PUSHES]; /* copied: keys and payloads in pbuf */
    size_t npushes;
    char *pbuf;
    size_t len;
    char data[]; /* the item's bytes, NUL-terminated for convenience */
};

/* One janitor script call for one dead pod's list (re-sent while items are left). */
struct janitor_op {
    struct mutt_relq *q;
    char *list;
    char *heartbeat;
};

struct depth_op {
    struct mutt_relq *q;
    mutt_relq_depth_cb *cb;
    void *priv;
};

struct mutt_relq {
    uv_loop_t *loop;
    struct mutt_redis *r;
    struct mutt_redis_conn *cmd;   /* shared pipelined connection: completions, heartbeat, janitor */
    struct mutt_redis_conn *bconn; /* ours: BRPOPLPUSH and the pops/claims that follow it */
    char *name;
    char *source;
    char *proc_prefix;
    char *hb_prefix;
    char *pod;
    char *proc_list;
    char *hb_key;
    char *scan_pattern;
    char block_timeout_str[16];
    char expiry_str[16];
    char batch_str[16];
    unsigned block_timeout_s;
    unsigned hb_expiry_s;
    size_t max_inflight;
    size_t recover_batch;
    uint64_t hb_interval_ms;
    uint64_t janitor_interval_ms;
    int script_complete;
    int script_pop_batch;
    int script_move;
    int script_reconcile;  /* -1 without a byte counter */
    char *bytes_key;       /* D52: the source's byte counter, NULL = none */
    mutt_relq_item_cb *on_item;
    void *item_priv;

    enum relq_state state;
    bool paused;
    bool dispatching;
    bool bconn_busy;   /* one pop or claim at a time on the dedicated connection */
    bool drain_next;   /* the last pop got everything it asked for: batch-pop, don't block */
    size_t pop_debt;   /* D52: bytes a BRPOPLPUSH took, not yet taken off the byte counter */
    bool need_claim;   /* our list may hold items nobody tracks: claim them once inflight == 0 */
    size_t pop_asked;  /* items the outstanding pop asked for */
    struct mutt_relq_item *items;
    struct mutt_relq_item *ready_head, *ready_tail;
    size_t inflight;   /* live items (held + handed out) */
    size_t held;
    struct mutt_relq_stats stats;

    uv_timer_t hb_timer;
    uv_timer_t janitor_timer;
    uv_timer_t retry_timer; /* pump again after an error */
    uv_timer_t stop_timer;  /* drain deadline, then the release attempts */
    uv_timer_t flush_timer; /* sends the queued completions (0 ms: once per loop turn) */
    struct mutt_relq_item *cq_head, *cq_tail; /* completions queued for the next call */
    uint64_t last_flush_ns;                   /* uv_hrtime of the last completion call (0: none) */
    unsigned timers_open;
    size_t pending;         /* Redis calls whose callback has not run yet */
    bool destroyed;

    bool janitor_running;
    bool janitor_started;
    char *janitor_cursor;
    size_t janitor_page_pending;

    mutt_relq_stopped_cb *stopped_cb;
    void *stopped_priv;
    unsigned release_attempts;
};

static void pump(struct mutt_relq *q);
static void settle_pop_debt(struct mutt_relq *q);
static void janitor_next_page(struct mutt_relq *q);

/* MOVE_LUA's KEYS: the byte counter is the optional fourth. */
static int move_nkeys(const struct mutt_relq *q)
{
    return q->bytes_key ? 4 : 3;
}

/* ------------------------------------------------------------------------------ lifetime */

static void free_all(struct mutt_relq *q)
{
    while (q->items) {
        struct mutt_relq_item *it = q->items;
        q->items = it->next;
        free(it->pbuf);
        free(it);
    }
    free(q->janitor_cursor);
    free(q->name);
    free(q->source);
    free(q->proc_prefix);
    free(q->hb_prefix);
    free(q->pod);
    free(q->proc_list);
    free(q->hb_key);
    free(q->scan_pattern);
    free(q->bytes_key);
    free(q);
}

static void maybe_free(struct mutt_relq *q)
{
    if (q->destroyed && q->pending == 0 && q->timers_open == 0)
        free_all(q);
}

/* First thing in every Redis callback: false when the relq was destroyed meanwhile (then it may
 * have been freed by this very call: touch nothing). */
static bool op_return(struct mutt_relq *q)
{
    q->pending--;
    if (q->destroyed) {
        maybe_free(q);
        return false;
    }
    return true;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_relq *q = h->data;
    q->timers_open--;
    maybe_free(q);
}

static char *join_key(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + 1 + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    s[la] = ':';
    memcpy(s + la + 1, b, lb + 1);
    return s;
}

/* SCAN MATCH pattern for "<prefix>:*" with the prefix's glob characters escaped. */
static char *scan_pattern_for(const char *prefix)
{
    size_t n = strlen(prefix);
    char *s = malloc(2 * n + 3);
    if (!s)
        return NULL;
    char *p = s;
    for (size_t i = 0; i < n; i++) {
        if (strchr("*?[]\\", prefix[i]))
            *p++ = '\\';
        *p++ = prefix[i];
    }
    memcpy(p, ":*", 3);
    return s;
}

static void init_timer(struct mutt_relq *q, uv_timer_t *t)
{
    uv_timer_init(q->loop, t);
    t->data = q;
    q->timers_open++;
}

struct mutt_relq *mutt_relq_create(uv_loop_t *loop, struct mutt_redis *r, const struct mutt_relq_opts *opts,
                                   mutt_relq_item_cb *on_item, void *priv)
{
    if (!loop || !r || !opts || !on_item || !opts->source || !*opts->source || !opts->processing_prefix ||
        !*opts->processing_prefix || !opts->heartbeat_prefix || !*opts->heartbeat_prefix || !opts->pod ||
        !*opts->pod)
        return NULL;
    struct mutt_relq *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->loop = loop;
    q->r = r;
    q->cmd = mutt_redis_cmd(r);
    q->on_item = on_item;
    q->item_priv = priv;
    q->name = strdup(opts->name && *opts->name ? opts->name : "relq");
    q->source = strdup(opts->source);
    q->proc_prefix = strdup(opts->processing_prefix);
    q->hb_prefix = strdup(opts->heartbeat_prefix);
    q->pod = strdup(opts->pod);
    q->proc_list = join_key(opts->processing_prefix, opts->pod);
    q->hb_key = join_key(opts->heartbeat_prefix, opts->pod);
    q->scan_pattern = scan_pattern_for(opts->processing_prefix);
    q->bytes_key = opts->source_bytes_key && *opts->source_bytes_key ? strdup(opts->source_bytes_key) : NULL;
    if (!q->name || !q->source || !q->proc_prefix || !q->hb_prefix || !q->pod || !q->proc_list || !q->hb_key ||
        !q->scan_pattern || (opts->source_bytes_key && *opts->source_bytes_key && !q->bytes_key)) {
        free_all(q);
        return NULL;
    }
    q->block_timeout_s = opts->block_timeout_s ? opts->block_timeout_s : DEFAULT_BLOCK_TIMEOUT_S;
    q->hb_expiry_s = opts->heartbeat_expiry_s ? opts->heartbeat_expiry_s : DEFAULT_HEARTBEAT_EXPIRY_S;
    q->max_inflight = opts->max_inflight ? opts->max_inflight : DEFAULT_MAX_INFLIGHT;
    q->recover_batch = opts->recover_batch ? opts->recover_batch : DEFAULT_RECOVER_BATCH;
    q->hb_interval_ms = opts->heartbeat_interval_ms ? opts->heartbeat_interval_ms : DEFAULT_HEARTBEAT_INTERVAL_MS;
    q->janitor_interval_ms = opts->janitor_interval_ms ? opts->janitor_interval_ms : DEFAULT_JANITOR_INTERVAL_MS;
    snprintf(q->block_timeout_str, sizeof(q->block_timeout_str), "%u", q->block_timeout_s);
    snprintf(q->expiry_str, sizeof(q->expiry_str), "%u", q->hb_expiry_s);
    snprintf(q->batch_str, sizeof(q->batch_str), "%zu", q->recover_batch);
    q->stats.processing_depth = -1;

    q->script_complete = mutt_redis_script_register(r, "relq_complete_batch", COMPLETE_BATCH_LUA);
    q->script_pop_batch = mutt_redis_script_register(r, "relq_pop_batch", POP_BATCH_LUA);
    q->script_move = mutt_redis_script_register(r, "relq_move", MOVE_LUA);
    q->script_reconcile = q->bytes_key ? mutt_redis_script_register(r, "queue_bytes_reconcile",
                                                                    mutt_queue_bytes_reconcile_lua)
                                       : -1;
    if (q->script_complete < 0 || q->script_pop_batch < 0 || q->script_move < 0 ||
        (q->bytes_key && q->script_reconcile < 0)) {
        free_all(q);
        return NULL;
    }
    init_timer(q, &q->hb_timer);
    init_timer(q, &q->janitor_timer);
    init_timer(q, &q->retry_timer);
    init_timer(q, &q->stop_timer);
    init_timer(q, &q->flush_timer);
    q->state = RELQ_CREATED;
    return q;
}

void mutt_relq_destroy(struct mutt_relq *q)
{
    if (!q || q->destroyed)
        return;
    q->destroyed = true; /* first: callbacks run by the close below must see it */
    uv_close((uv_handle_t *)&q->hb_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->janitor_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->stop_timer, on_timer_closed);
    uv_close((uv_handle_t *)&q->flush_timer, on_timer_closed);
    if (q->bconn) {
        struct mutt_redis_conn *c = q->bconn;
        q->bconn = NULL;
        mutt_redis_conn_close(c); /* its pending pop is answered MUTT_ECANCELED */
    }
    maybe_free(q); /* normally the timer close callbacks (next loop turn) free it */
}

/* ------------------------------------------------------------------------------ items */

static void unlink_item(struct mutt_relq_item *it)
{
    struct mutt_relq *q = it->q;
    if (it->prev)
        it->prev->next = it->next;
    else
        q->items = it->next;
    if (it->next)
        it->next->prev = it->prev;
    q->inflight--;
}

static void on_stop_timer(uv_timer_t *t);

/* The handle is gone for good: free it, then let consumption (or the stop) go on. */
static void release_item(struct mutt_relq_item *it)
{
    struct mutt_relq *q = it->q;
    unlink_item(it);
    free(it->pbuf);
    free(it);
    if (q->state == RELQ_RUNNING) {
        pump(q);
    } else if (q->state == RELQ_DRAINING && q->inflight == 0) {
        q->state = RELQ_RELEASING;
        uv_timer_stop(&q->hb_timer);
        uv_timer_start(&q->stop_timer, on_stop_timer, 0, 0);
    }
}

static struct mutt_relq_item *add_item(struct mutt_relq *q, const char *data, size_t len)
{
    struct mutt_relq_item *it = malloc(sizeof(*it) + len + 1);
    if (!it)
        return NULL;
    it->q = q;
    it->prev = NULL;
    it->next = q->items;
    if (q->items)
        q->items->prev = it;
    q->items = it;
    it->ready_next = NULL;
    it->state = ITEM_HELD;
    it->cb = NULL;
    it->priv = NULL;
    it->batch_next = NULL;
    it->npushes = 0;
    it->pbuf = NULL;
    it->len = len;
    memcpy(it->data, data, len);
    it->data[len] = '\0';
    if (q->ready_tail)
        q->ready_tail->ready_next = it;
    else
        q->ready_head = it;
    q->ready_tail = it;
    q->inflight++;
    q->held++;
    return it;
}

/* Hands held items out in pop order. Not re-entered: an item callback that resumes, or pops
 * more via pump, leaves the handing out to the outer loop. */
static void dispatch(struct mutt_relq *q)
{
    if (q->dispatching)
        return;
    q->dispatching = true;
    while (q->state == RELQ_RUNNING && !q->paused && q->ready_head) {
        struct mutt_relq_item *it = q->ready_head;
        q->ready_head = it->ready_next;
        if (!q->ready_head)
            q->ready_tail = NULL;
        it->ready_next = NULL;
        it->state = ITEM_HANDED;
        q->held--;
        q->stats.delivered++;
        q->on_item(q->item_priv, it, it->data, it->len);
    }
    q->dispatching = false;
}

/* Held items were never seen by the stage: forget them (they stay in the processing list and
 * the stop returns them to the source). */
static void drop_held(struct mutt_relq *q)
{
    while (q->ready_head) {
        struct mutt_relq_item *it = q->ready_head;
        q->ready_head = it->ready_next;
        unlink_item(it);
        q->held--;
        free(it);
    }
    q->ready_tail = NULL;
}

/* ------------------------------------------------------------------------------ popping */

static void on_retry_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void retry_later(struct mutt_relq *q, uint64_t delay_ms)
{
    if (q->state == RELQ_RUNNING && !uv_is_active((uv_handle_t *)&q->retry_timer))
        uv_timer_start(&q->retry_timer, on_retry_timer, delay_ms, 0);
}

/* A send that failed synchronously: EDISCONNECTED waits for the connection's "up" (which calls
 * pump), anything else retries shortly. */
static void send_failed(struct mutt_relq *q, int rc)
{
    if (rc != MUTT_EDISCONNECTED)
        retry_later(q, SEND_RETRY_DELAY_MS);
}

static void take_items(struct mutt_relq *q, const redisReply *reply, size_t *got)
{
    *got = 0;
    if (reply->type == REDIS_REPLY_STRING) {
        if (!add_item(q, reply->str, reply->len))
            q->need_claim = true; /* it sits in our list untracked: the claim returns it */
        *got = 1;
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        if (!add_item(q, e->str, e->len))
            q->need_claim = true;
        (*got)++;
    }
}

static void on_pop_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    q->bconn_busy = false;
    if (!op_return(q))
        return;
    if (status == 0 && reply) {
        size_t got = 0;
        /* D52: BRPOPLPUSH cannot run a script; the counter follows in a second command, on the
         * same connection as our reconcile so that one never lands in between (lost if we die
         * first: the janitor's reconcile repairs it): in the batch pop that pump sends next, or
         * alone when none goes */
        if (reply->type == REDIS_REPLY_STRING && q->bytes_key)
            q->pop_debt += reply->len;
        if (q->state == RELQ_RUNNING) /* else they stay in our list: the stop returns them */
            take_items(q, reply, &got);
        q->stats.popped += got;
        /* BRPOPLPUSH gave one: drain without blocking; a batch that got all it asked for: again */
        q->drain_next = got > 0 && got >= q->pop_asked;
        dispatch(q);
        pump(q);
        settle_pop_debt(q);
        return;
    }
    q->drain_next = false;
    if (status == MUTT_EDISCONNECTED) {
        /* the server may have moved an item whose reply we lost: claim our list once idle */
        q->need_claim = true;
        return; /* the connection's "up" calls pump */
    }
    if (status == MUTT_ECANCELED)
        return;
    mutt_log_warn("relq", "%s: pop from %s failed: %.200s", q->name, q->source,
                  reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status));
    retry_later(q, RETRY_DELAY_MS);
}

/* The bytes of a BRPOPLPUSH's item when no batch pop carried them off the counter. */
static void settle_pop_debt(struct mutt_relq *q)
{
    if (q->pop_debt == 0 || !q->bytes_key)
        return;
    char n[24];
    snprintf(n, sizeof n, "%zu", q->pop_debt);
    q->pop_debt = 0;
    const char *argv[3] = {"DECRBY", q->bytes_key, n};
    size_t lens[3] = {6, strlen(q->bytes_key), strlen(n)};
    if (!q->bconn || mutt_redis_command(q->bconn, NULL, NULL, 3, argv, lens) != 0)
        mutt_redis_command(q->cmd, NULL, NULL, 3, argv, lens);
}

static void send_blocking_pop(struct mutt_relq *q)
{
    const char *argv[4] = {"BRPOPLPUSH", q->source, q->proc_list, q->block_timeout_str};
    size_t lens[4] = {10, strlen(q->source), strlen(q->proc_list), strlen(q->block_timeout_str)};
    int rc = mutt_redis_command(q->bconn, on_pop_reply, q, 4, argv, lens);
    if (rc != 0) {
        send_failed(q, rc);
        return;
    }
    q->pending++;
    q->bconn_busy = true;
    q->pop_asked = 1;
}

static void send_batch_pop(struct mutt_relq *q, size_t n)
{
    char nbuf[24], debt[24];
    snprintf(nbuf, sizeof(nbuf), "%zu", n);
    snprintf(debt, sizeof(debt), "%zu", q->pop_debt);
    const char *keys[3] = {q->source, q->proc_list, q->bytes_key};
    const char *args[2] = {nbuf, debt};
    int rc = mutt_redis_evalsha(q->bconn, q->script_pop_batch, q->bytes_key ? 3 : 2, keys, NULL, 2, args, NULL,
                                on_pop_reply, q);
    if (rc != 0) {
        send_failed(q, rc);
        return;
    }
    q->pop_debt = 0;
    q->pending++;
    q->bconn_busy = true;
    q->pop_asked = n;
}

static void on_claim_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    q->bconn_busy = false;
    if (!op_return(q))
        return;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        if (status == MUTT_EDISCONNECTED || status == MUTT_ECANCELED)
            return; /* need_claim stays set; the next "up" claims again */
        mutt_log_warn("relq", "%s: recovering own list %s failed: %.200s", q->name, q->proc_list,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status ? status : MUTT_EIO));
        retry_later(q, RETRY_DELAY_MS);
        return;
    }
    long long moved = reply->element[0]->integer;
    long long left = reply->element[1]->integer;
    if (moved > 0) {
        q->stats.own_recovered += (uint64_t)moved;
        mutt_log_info("relq", "%s: returned %lld items of our own list %s to %s", q->name, moved, q->proc_list,
                      q->source);
    }
    if (left == 0) {
        q->need_claim = false;
        q->stats.processing_depth = 0;
    }
    if (!q->janitor_started && q->state == RELQ_RUNNING) {
        /* first janitor pass only now: our heartbeat is written, our list is clean */
        q->janitor_started = true;
        mutt_relq_run_janitor(q);
    }
    pump(q);
}

static void send_claim(struct mutt_relq *q)
{
    const char *keys[4] = {q->proc_list, q->hb_key, q->source, q->bytes_key};
    const char *args[3] = {"claim", q->batch_str, q->expiry_str};
    int rc = mutt_redis_evalsha(q->bconn, q->script_move, move_nkeys(q), keys, NULL, 3, args, NULL, on_claim_reply, q);
    if (rc != 0) {
        send_failed(q, rc);
        return;
    }
    q->pending++;
    q->bconn_busy = true;
}

/* The one place that decides the next command on the dedicated connection. */
static void pump(struct mutt_relq *q)
{
    if (q->state != RELQ_RUNNING || q->bconn_busy || !q->bconn)
        return;
    if (!mutt_redis_conn_connected(q->bconn))
        return; /* on_bconn_state calls us when it is up */
    if (q->need_claim) {
        /* only with nothing in flight is every item in our list known to be untracked; a claim
         * is no pop, so it runs while paused too (a stage paused from the start still writes
         * its heartbeat and returns a predecessor's items) */
        if (q->inflight == 0)
            send_claim(q);
        return;
    }
    /* Refill at half capacity, not at every free slot: one Lua pop then fetches a batch, where
     * topping up slot by slot cost a Redis call per item on top of its completion. */
    if (q->paused || q->inflight > q->max_inflight / 2)
        return;
    if (!mutt_redis_conn_connected(q->cmd)) {
        /* completions go out on the command connection: an item popped now could only be
         * abandoned, claimed back and popped again, a redelivery loop for as long as the two
         * connections are not up together (after a Redis failover they reconnect apart) */
        retry_later(q, SEND_RETRY_DELAY_MS);
        return;
    }
    if (q->drain_next)
        send_batch_pop(q, q->max_inflight - q->inflight);
    else
        send_blocking_pop(q);
}

static void on_bconn_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct mutt_relq *q = privdata;
    (void)conn;
    if (q->destroyed || q->bconn != conn)
        return;
    if (!connected) {
        q->drain_next = false;
        return;
    }
    /* first connect: our heartbeat + a crashed predecessor's items; reconnect: a pop whose reply
     * was lost may have left an item in our list */
    q->need_claim = true;
    pump(q);
}

/* ------------------------------------------------------------------------------ heartbeat */

static void on_hb_timer(uv_timer_t *t);

static void arm_heartbeat(struct mutt_relq *q, uint64_t delay_ms)
{
    if (q->state == RELQ_RUNNING || q->state == RELQ_DRAINING)
        uv_timer_start(&q->hb_timer, on_hb_timer, delay_ms, 0);
}

static void on_hb_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    (void)reply;
    if (!op_return(q))
        return;
    if (status != 0)
        mutt_log_warn("relq", "%s: heartbeat %s not written: %s", q->name, q->hb_key, mutt_strerror(status));
    uint64_t next = q->hb_interval_ms;
    if (status != 0 && next > RETRY_DELAY_MS)
        next = RETRY_DELAY_MS;
    arm_heartbeat(q, next);
}

static void on_hb_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    const char *argv[4] = {"SETEX", q->hb_key, q->expiry_str, "alive"};
    size_t lens[4] = {5, strlen(q->hb_key), strlen(q->expiry_str), 5};
    int rc = mutt_redis_command(q->cmd, on_hb_reply, q, 4, argv, lens);
    if (rc != 0) {
        arm_heartbeat(q, q->hb_interval_ms < RETRY_DELAY_MS ? q->hb_interval_ms : RETRY_DELAY_MS);
        return;
    }
    q->pending++;
}

/* ------------------------------------------------------------------------------ janitor */

static void on_janitor_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    if (mutt_relq_run_janitor(q) != 0 && !q->janitor_running && q->state == RELQ_RUNNING)
        uv_timer_start(&q->janitor_timer, on_janitor_timer, q->janitor_interval_ms, 0);
}

static void janitor_finish(struct mutt_relq *q, bool ok)
{
    q->janitor_running = false;
    free(q->janitor_cursor);
    q->janitor_cursor = NULL;
    if (ok)
        q->stats.janitor_runs++;
    if (q->state == RELQ_RUNNING)
        uv_timer_start(&q->janitor_timer, on_janitor_timer, ok ? q->janitor_interval_ms : RETRY_DELAY_MS, 0);
}

static void free_janitor_op(struct janitor_op *op)
{
    free(op->list);
    free(op->heartbeat);
    free(op);
}

static void on_janitor_move_reply(void *privdata, redisReply *reply, int status);

static int send_janitor_move(struct janitor_op *op)
{
    struct mutt_relq *q = op->q;
    const char *keys[4] = {op->list, op->heartbeat, q->source, q->bytes_key};
    const char *args[3] = {"janitor", q->batch_str, q->expiry_str};
    int rc = mutt_redis_evalsha(q->cmd, q->script_move, move_nkeys(q), keys, NULL, 3, args, NULL,
                                on_janitor_move_reply, op);
    if (rc == 0)
        q->pending++;
    return rc;
}

static void janitor_op_done(struct mutt_relq *q)
{
    if (--q->janitor_page_pending == 0)
        janitor_next_page(q);
}

static void on_janitor_move_reply(void *privdata, redisReply *reply, int status)
{
    struct janitor_op *op = privdata;
    struct mutt_relq *q = op->q;
    if (!op_return(q)) {
        free_janitor_op(op);
        return;
    }
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2) {
        long long moved = reply->element[0]->integer;
        long long left = reply->element[1]->integer;
        if (moved > 0) {
            q->stats.janitor_recovered += (uint64_t)moved;
            mutt_log_info("relq", "%s: janitor returned %lld items of dead pod list %s to %s (%lld left)", q->name,
                          moved, op->list, q->source, left);
            if (left > 0 && q->state == RELQ_RUNNING && send_janitor_move(op) == 0)
                return; /* same op, next batch */
        }
    } else if (status != MUTT_ECANCELED) {
        mutt_log_warn("relq", "%s: janitor on %s failed: %.200s", q->name, op->list,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status ? status : MUTT_EIO));
    }
    free_janitor_op(op);
    janitor_op_done(q);
}

static void on_scan_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    if (!op_return(q))
        return;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_ARRAY) {
        if (status != MUTT_ECANCELED)
            mutt_log_warn("relq", "%s: janitor SCAN failed: %s", q->name, mutt_strerror(status ? status : MUTT_EIO));
        janitor_finish(q, false);
        return;
    }
    char *cursor = strdup(reply->element[0]->str);
    if (!cursor) {
        janitor_finish(q, false);
        return;
    }
    free(q->janitor_cursor);
    q->janitor_cursor = cursor;
    size_t plen = strlen(q->proc_prefix);
    const redisReply *keys = reply->element[1];
    q->janitor_page_pending = 1; /* held by this loop so a synchronous finish cannot advance */
    for (size_t i = 0; i < keys->elements && q->state == RELQ_RUNNING; i++) {
        const redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= plen + 1 || memcmp(k->str, q->proc_prefix, plen) != 0 ||
            k->str[plen] != ':' || strlen(k->str) != k->len)
            continue;
        if (strcmp(k->str, q->proc_list) == 0)
            continue; /* never our own list: its items may be in flight */
        struct janitor_op *op = calloc(1, sizeof(*op));
        if (!op)
            break;
        op->q = q;
        op->list = strdup(k->str);
        op->heartbeat = join_key(q->hb_prefix, k->str + plen + 1);
        if (!op->list || !op->heartbeat || send_janitor_move(op) != 0) {
            free_janitor_op(op);
            continue;
        }
        q->janitor_page_pending++;
    }
    janitor_op_done(q);
}

static void janitor_scan(struct mutt_relq *q)
{
    const char *argv[6] = {"SCAN", q->janitor_cursor, "MATCH", q->scan_pattern, "COUNT", SCAN_COUNT};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (mutt_redis_command(q->cmd, on_scan_reply, q, 6, argv, lens) != 0) {
        janitor_finish(q, false);
        return;
    }
    q->pending++;
}

static void janitor_next_page(struct mutt_relq *q)
{
    if (q->state != RELQ_RUNNING) {
        janitor_finish(q, false);
        return;
    }
    if (strcmp(q->janitor_cursor, "0") == 0) {
        janitor_finish(q, true);
        return;
    }
    janitor_scan(q);
}

static void on_reconcile_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    if (!op_return(q))
        return;
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_INTEGER &&
        reply->element[2]->type == REDIS_REPLY_INTEGER) {
        long long mode = reply->element[0]->integer, before = reply->element[1]->integer;
        long long after = reply->element[2]->integer;
        q->stats.bytes_reconciles++;
        if (mode != 0 && before != after)
            mutt_log_info("relq", "%s: byte counter %s reconciled: %lld -> %lld (%s)", q->name, q->bytes_key, before,
                          after, mode == 1 ? "recounted" : "estimated");
    } else if (status != MUTT_ECANCELED && status != MUTT_EDISCONNECTED) {
        mutt_log_warn("relq", "%s: reconciling %s failed: %.200s", q->name, q->bytes_key,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status ? status : MUTT_EIO));
    }
}

/* D52: the byte counter drifts (a pop whose DECRBY was lost, items written by other tools); every
 * janitor pass sets it back to what the source holds. Sent on the dedicated connection, behind
 * any blocking pop: a recount between a pop and its DECRBY would count that item twice. */
static void reconcile_bytes(struct mutt_relq *q)
{
    if (!q->bytes_key || !q->bconn || !mutt_redis_conn_connected(q->bconn))
        return;
    char limit[24];
    snprintf(limit, sizeof limit, "%d", MUTT_QUEUE_BYTES_RECOUNT_MAX);
    const char *keys[2] = {q->source, q->bytes_key};
    const char *args[1] = {limit};
    if (mutt_redis_evalsha(q->bconn, q->script_reconcile, 2, keys, NULL, 1, args, NULL, on_reconcile_reply, q) == 0)
        q->pending++;
}

int mutt_relq_run_janitor(struct mutt_relq *q)
{
    if (!q || q->state != RELQ_RUNNING || q->janitor_running)
        return MUTT_ESTATE;
    if (!mutt_redis_conn_connected(q->cmd))
        return MUTT_EDISCONNECTED;
    uv_timer_stop(&q->janitor_timer);
    q->janitor_cursor = strdup("0");
    if (!q->janitor_cursor)
        return MUTT_ENOMEM;
    q->janitor_running = true;
    reconcile_bytes(q);
    janitor_scan(q);
    return 0;
}

/* ------------------------------------------------------------------------------ stop */

static void finish_stop(struct mutt_relq *q, int status)
{
    q->state = RELQ_STOPPED;
    uv_timer_stop(&q->stop_timer);
    uv_timer_stop(&q->hb_timer);
    if (status == 0)
        mutt_log_info("relq", "%s: stopped; %s returned to %s, heartbeat deleted", q->name, q->proc_list, q->source);
    else
        mutt_log_warn("relq", "%s: stopped, but returning %s failed (%s): a janitor recovers it", q->name,
                      q->proc_list, mutt_strerror(status));
    mutt_relq_stopped_cb *cb = q->stopped_cb;
    q->stopped_cb = NULL;
    if (cb)
        cb(q->stopped_priv, status); /* last: the stage may destroy us from here */
}

static void send_release(struct mutt_relq *q);

static void release_failed(struct mutt_relq *q, int status)
{
    if (++q->release_attempts < RELEASE_MAX_ATTEMPTS) {
        uv_timer_start(&q->stop_timer, on_stop_timer, SEND_RETRY_DELAY_MS, 0);
        return;
    }
    finish_stop(q, status);
}

static void on_release_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_relq *q = privdata;
    if (!op_return(q))
        return;
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        release_failed(q, status ? status : MUTT_EIO);
        return;
    }
    long long moved = reply->element[0]->integer;
    long long left = reply->element[1]->integer;
    if (moved > 0)
        q->stats.returned_on_stop += (uint64_t)moved;
    q->stats.processing_depth = left;
    if (left > 0) {
        send_release(q);
        return;
    }
    finish_stop(q, 0);
}

static void send_release(struct mutt_relq *q)
{
    const char *keys[4] = {q->proc_list, q->hb_key, q->source, q->bytes_key};
    const char *args[3] = {"release", q->batch_str, q->expiry_str};
    int rc = mutt_redis_evalsha(q->cmd, q->script_move, move_nkeys(q), keys, NULL, 3, args, NULL, on_release_reply, q);
    if (rc != 0) {
        release_failed(q, rc);
        return;
    }
    q->pending++;
}

static void on_stop_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    if (q->state == RELQ_DRAINING) { /* deadline: whatever the stage still holds goes back too */
        if (q->inflight > 0)
            mutt_log_warn("relq", "%s: stop deadline passed with %zu items still held; returning them", q->name,
                          q->inflight);
        q->state = RELQ_RELEASING;
        uv_timer_stop(&q->hb_timer);
    }
    if (q->state == RELQ_RELEASING)
        send_release(q);
}

int mutt_relq_stop(struct mutt_relq *q, uint64_t drain_timeout_ms, mutt_relq_stopped_cb *cb, void *priv)
{
    if (!q || q->state != RELQ_RUNNING)
        return MUTT_ESTATE;
    q->state = RELQ_DRAINING;
    q->stopped_cb = cb;
    q->stopped_priv = priv;
    q->release_attempts = 0;
    uv_timer_stop(&q->janitor_timer);
    uv_timer_stop(&q->retry_timer);
    /* closing cancels a BRPOPLPUSH at once instead of waiting up to block_timeout_s. If the
     * server served it in that instant, the item is in our list and the release returns it. */
    if (q->bconn) {
        struct mutt_redis_conn *c = q->bconn;
        q->bconn = NULL;
        mutt_redis_conn_close(c);
    }
    drop_held(q);
    uv_timer_start(&q->stop_timer, on_stop_timer, q->inflight == 0 ? 0 : drain_timeout_ms, 0);
    return 0;
}

/* ------------------------------------------------------------------------------ completion */

/* One completion call in flight: the items it carries, in argument order. */
struct complete_batch {
    struct mutt_relq *q;
    size_t n;
    struct mutt_relq_item *items[];
};

static void on_flush_timer(uv_timer_t *t);

static void schedule_flush(struct mutt_relq *q, uint64_t delay_ms)
{
    if (!q->destroyed && !uv_is_active((uv_handle_t *)&q->flush_timer))
        uv_timer_start(&q->flush_timer, on_flush_timer, delay_ms, 0);
}

/* The call did not run as a whole: every item gets `status` and stays valid (the stage
 * completes it again or abandons it). */
static void batch_failed(struct mutt_relq_item **items, size_t n, int status)
{
    for (size_t i = 0; i < n; i++) {
        struct mutt_relq_item *it = items[i];
        it->state = ITEM_HANDED;
        if (it->cb)
            it->cb(it->priv, it, status);
    }
}

static void on_complete_batch_reply(void *privdata, redisReply *reply, int status)
{
    struct complete_batch *b = privdata;
    struct mutt_relq *q = b->q;
    if (!op_return(q)) {
        free(b); /* destroyed: free_all frees the items */
        return;
    }
    if (status == 0 && (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != b->n + 2 ||
                        reply->element[0]->type != REDIS_REPLY_INTEGER))
        status = MUTT_EIO; /* a script error, or a reply of the wrong shape: nothing known to be done */
    if (status != 0) {
        if (status != MUTT_ECANCELED && status != MUTT_EDISCONNECTED)
            mutt_log_warn("relq", "%s: completion of %zu items failed: %.200s", q->name, b->n,
                          reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status));
        batch_failed(b->items, b->n, status);
        free(b);
        return;
    }
    q->stats.processing_depth = reply->element[0]->integer;
    const redisReply *err = reply->element[b->n + 1];
    if (err->type == REDIS_REPLY_STRING && err->len > 0)
        mutt_log_warn("relq", "%s: completion refused by Redis (the item stays in %s): %.200s", q->name,
                      q->proc_list, err->str);
    for (size_t i = 0; i < b->n; i++) {
        struct mutt_relq_item *it = b->items[i];
        const redisReply *e = reply->element[i + 1];
        long long code = e->type == REDIS_REPLY_INTEGER ? e->integer : -1;
        if (code != 1 && code != 0) {
            /* refused: its outcome may be partly pushed, the item is still in our list */
            it->state = ITEM_HANDED;
            if (it->cb)
                it->cb(it->priv, it, MUTT_EIO);
            continue;
        }
        if (code == 1)
            q->stats.completed++;
        else
            q->stats.already_gone++;
        it->state = ITEM_FINISHED;
        if (it->cb)
            it->cb(it->priv, it, code == 1 ? 0 : MUTT_ENOTFOUND);
        release_item(it);
    }
    free(b);
}

static size_t target_index(const char **targets, size_t *nt, const char *key)
{
    for (size_t i = 0; i < *nt; i++)
        if (strcmp(targets[i], key) == 0)
            return i;
    targets[*nt] = key;
    return (*nt)++;
}

/* Sends `n` queued items (detached from the queue) in one call. Returns 0 or the send's error
 * (the items are then untouched). */
static int send_batch(struct mutt_relq *q, struct mutt_relq_item **items, size_t n)
{
    size_t npush = 0;
    for (size_t i = 0; i < n; i++)
        npush += items[i]->npushes;
    size_t maxkeys = 2 + npush, maxargs = 3 + 2 * n + 4 * npush;
    const char **keys = malloc(maxkeys * sizeof *keys);
    size_t *keylens = malloc(maxkeys * sizeof *keylens);
    const char **args = malloc(maxargs * sizeof *args);
    size_t *arglens = malloc(maxargs * sizeof *arglens);
    char (*nums)[32] = malloc((2 + n + 2 * npush) * sizeof *nums);
    struct complete_batch *b = malloc(sizeof *b + n * sizeof(b->items[0]));
    int rc = MUTT_ENOMEM;
    if (!keys || !keylens || !args || !arglens || !nums || !b)
        goto out;
    const char **targets = keys + 1;
    size_t nt = 0, na = 3, nn = 2;
    for (size_t i = 0; i < n; i++) {
        struct mutt_relq_item *it = items[i];
        args[na] = it->data;
        arglens[na++] = it->len;
        snprintf(nums[nn], sizeof nums[nn], "%zu", it->npushes);
        args[na] = nums[nn];
        arglens[na++] = strlen(nums[nn++]);
        for (size_t j = 0; j < it->npushes; j++) {
            const struct mutt_relq_push *p = &it->pushes[j];
            size_t ti = target_index(targets, &nt, p->key);
            snprintf(nums[nn], sizeof nums[nn], "%zu", ti + 2);
            args[na] = nums[nn];
            arglens[na++] = strlen(nums[nn++]);
            args[na] = p->kind == MUTT_RELQ_ZADD ? "Z" : p->kind == MUTT_RELQ_RPUSH ? "R" : p->kind == MUTT_RELQ_HSET ? "H" : "L";
            arglens[na++] = 1;
            args[na] = p->payload;
            arglens[na++] = p->len;
            if (p->kind == MUTT_RELQ_ZADD || p->kind == MUTT_RELQ_HSET) {
                snprintf(nums[nn], sizeof nums[nn], "%.17g", p->score);
                args[na] = nums[nn];
                arglens[na++] = strlen(nums[nn++]);
            } else { /* unused by the script: no float formatting per push */
                args[na] = "0";
                arglens[na++] = 1;
            }
        }
    }
    keys[0] = q->proc_list;
    size_t nk = 1 + nt;
    if (q->bytes_key) /* D52: pushes back to the source (retries) raise its byte counter */
        keys[nk++] = q->bytes_key;
    for (size_t i = 0; i < nk; i++)
        keylens[i] = strlen(keys[i]);
    snprintf(nums[0], sizeof nums[0], "%zu", n);
    snprintf(nums[1], sizeof nums[1], "%zu", nt);
    args[0] = nums[0];
    args[1] = nums[1];
    args[2] = q->bytes_key ? q->source : "";
    for (size_t i = 0; i < 3; i++)
        arglens[i] = strlen(args[i]);
    b->q = q;
    b->n = n;
    memcpy(b->items, items, n * sizeof items[0]);
    rc = mutt_redis_evalsha(q->cmd, q->script_complete, (int)nk, keys, keylens, (int)na, args, arglens,
                            on_complete_batch_reply, b);
    if (rc == 0) {
        q->pending++;
        b = NULL;
    }
out:
    free(keys);
    free(keylens);
    free(args);
    free(arglens);
    free(nums);
    free(b);
    return rc;
}

/* Sends everything queued, COMPLETE_BATCH_MAX items (or COMPLETE_BATCH_BYTES) per call. A local
 * refusal (the connection's cap, OOM) keeps the items queued and tries again shortly; any other
 * send failure is the items' answer. */
static void on_flush_timer(uv_timer_t *t)
{
    struct mutt_relq *q = t->data;
    /* taken off the queue first: a completion the callbacks below make again goes out in the
     * next call, never in a loop here */
    struct mutt_relq_item *list = q->cq_head;
    q->cq_head = q->cq_tail = NULL;
    if (list)
        q->last_flush_ns = uv_hrtime();
    while (list) {
        struct mutt_relq_item *items[COMPLETE_BATCH_MAX];
        size_t n = 0, bytes = 0;
        struct mutt_relq_item *it = list;
        while (it && n < COMPLETE_BATCH_MAX && (n == 0 || bytes < COMPLETE_BATCH_BYTES)) {
            items[n++] = it;
            bytes += it->len;
            for (size_t j = 0; j < it->npushes; j++)
                bytes += it->pushes[j].len;
            it = it->batch_next;
        }
        int rc = send_batch(q, items, n);
        if (rc == MUTT_EFULL || rc == MUTT_ENOMEM) {
            /* back in front of whatever was queued meanwhile, in order */
            struct mutt_relq_item *last = list;
            while (last->batch_next)
                last = last->batch_next;
            last->batch_next = q->cq_head;
            if (!q->cq_head)
                q->cq_tail = last;
            q->cq_head = list;
            uv_timer_stop(&q->flush_timer);
            schedule_flush(q, SEND_RETRY_DELAY_MS);
            return;
        }
        list = it;
        for (size_t i = 0; i < n; i++)
            items[i]->batch_next = NULL;
        if (rc != 0)
            batch_failed(items, n, rc);
    }
}

int mutt_relq_complete(struct mutt_relq_item *item, const struct mutt_relq_push *pushes, size_t npushes,
                       mutt_relq_complete_cb *cb, void *priv)
{
    if (!item || npushes > MUTT_RELQ_MAX_PUSHES || (npushes > 0 && !pushes))
        return MUTT_EINVAL;
    if (item->state != ITEM_HANDED)
        return MUTT_ESTATE;
    struct mutt_relq *q = item->q;
    size_t total = 0;
    for (size_t i = 0; i < npushes; i++) {
        const struct mutt_relq_push *p = &pushes[i];
        if (!p->key || !*p->key || (!p->payload && p->len > 0))
            return MUTT_EINVAL;
        if (p->kind != MUTT_RELQ_LPUSH && p->kind != MUTT_RELQ_RPUSH && p->kind != MUTT_RELQ_ZADD &&
            p->kind != MUTT_RELQ_HSET)
            return MUTT_EINVAL;
        if (p->kind == MUTT_RELQ_ZADD || p->kind == MUTT_RELQ_HSET) {
            char sc[32];
            int n = snprintf(sc, sizeof sc, "%.17g", p->score);
            if (p->score != p->score || n <= 0 || strstr(sc, "inf"))
                return MUTT_EINVAL; /* NaN/inf: ZADD would refuse it */
        }
        total += strlen(p->key) + 1 + p->len;
    }
    if (!mutt_redis_conn_connected(q->cmd))
        return MUTT_EDISCONNECTED;
    /* copied: the call goes out later in this loop turn, with the other completions */
    char *buf = total ? malloc(total) : NULL;
    if (total && !buf)
        return MUTT_ENOMEM;
    char *w = buf;
    for (size_t i = 0; i < npushes; i++) {
        const struct mutt_relq_push *p = &pushes[i];
        size_t kl = strlen(p->key) + 1;
        item->pushes[i] = *p;
        memcpy(w, p->key, kl);
        item->pushes[i].key = w;
        w += kl;
        if (p->len)
            memcpy(w, p->payload, p->len);
        item->pushes[i].payload = w;
        w += p->len;
    }
    free(item->pbuf);
    item->pbuf = buf;
    item->npushes = npushes;
    item->state = ITEM_COMPLETING;
    item->cb = cb;
    item->priv = priv;
    item->batch_next = NULL;
    if (q->cq_tail)
        q->cq_tail->batch_next = item;
    else
        q->cq_head = item;
    q->cq_tail = item;
    uint64_t now = uv_hrtime(), delay_ms = 0;
    if (q->last_flush_ns != 0 && now >= q->last_flush_ns && now - q->last_flush_ns < COMPLETE_PACE_NS)
        delay_ms = (COMPLETE_PACE_NS - (now - q->last_flush_ns) + 999999) / 1000000;
    schedule_flush(q, delay_ms);
    return 0;
}

int mutt_relq_abandon(struct mutt_relq_item *item)
{
    if (!item)
        return MUTT_EINVAL;
    if (item->state != ITEM_HANDED)
        return MUTT_ESTATE;
    struct mutt_relq *q = item->q;
    /* it stays in our list untracked: once nothing is in flight, the claim returns it to the
     * source, so it is retried within this pod's life and not only after a crash */
    if (q->state == RELQ_RUNNING)
        q->need_claim = true;
    release_item(item);
    return 0;
}

const char *mutt_relq_item_data(const struct mutt_relq_item *item, size_t *len)
{
    if (len)
        *len = item ? item->len : 0;
    return item ? item->data : NULL;
}

/* ------------------------------------------------------------------------------ control */

int mutt_relq_start(struct mutt_relq *q)
{
    if (!q || q->state != RELQ_CREATED)
        return MUTT_ESTATE;
    char cname[96];
    snprintf(cname, sizeof(cname), "redis-relq-%s", q->name);
    q->bconn = mutt_redis_conn_open(q->r, cname);
    if (!q->bconn)
        return MUTT_ENOMEM;
    /* the observer goes away with the connection (closed at stop/destroy): it never outlives us */
    int rc = mutt_redis_conn_on_state(q->bconn, on_bconn_state, q);
    if (rc != 0) {
        mutt_redis_conn_close(q->bconn);
        q->bconn = NULL;
        return rc;
    }
    q->state = RELQ_RUNNING;
    q->need_claim = true;
    uv_timer_start(&q->hb_timer, on_hb_timer, q->hb_interval_ms, 0);
    pump(q); /* in case the connection is already up */
    return 0;
}

void mutt_relq_pause(struct mutt_relq *q)
{
    if (q)
        q->paused = true;
}

void mutt_relq_resume(struct mutt_relq *q)
{
    if (!q || !q->paused)
        return;
    q->paused = false;
    dispatch(q);
    pump(q);
}

bool mutt_relq_paused(const struct mutt_relq *q)
{
    return q && q->paused;
}

void mutt_relq_set_max_inflight(struct mutt_relq *q, size_t max_inflight)
{
    if (!q)
        return;
    q->max_inflight = max_inflight ? max_inflight : 1;
    pump(q);
}

void mutt_relq_get_stats(const struct mutt_relq *q, struct mutt_relq_stats *out)
{
    *out = q->stats;
    out->inflight = q->inflight;
    out->held = q->held;
}

static void on_depth_reply(void *privdata, redisReply *reply, int status)
{
    struct depth_op *op = privdata;
    struct mutt_relq *q = op->q;
    if (!op_return(q)) {
        free(op);
        return;
    }
    long long depth = -1;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER) {
        depth = reply->integer;
        q->stats.processing_depth = depth;
    } else if (status == 0) {
        status = MUTT_EIO;
    }
    mutt_relq_depth_cb *cb = op->cb;
    void *priv = op->priv;
    free(op);
    if (cb)
        cb(priv, status, depth);
}

int mutt_relq_processing_depth(struct mutt_relq *q, mutt_relq_depth_cb *cb, void *priv)
{
    if (!q || q->destroyed)
        return MUTT_EINVAL;
    struct depth_op *op = malloc(sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->q = q;
    op->cb = cb;
    op->priv = priv;
    const char *argv[2] = {"LLEN", q->proc_list};
    size_t lens[2] = {4, strlen(q->proc_list)};
    int rc = mutt_redis_command(q->cmd, on_depth_reply, op, 2, argv, lens);
    if (rc != 0) {
        free(op);
        return rc;
    }
    q->pending++;
    return 0;
}

const char *mutt_relq_processing_list(const struct mutt_relq *q)
{
    return q->proc_list;
}

const char *mutt_relq_heartbeat_key(const struct mutt_relq *q)
{
    return q->hb_key;
}
