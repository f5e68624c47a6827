/* Pod identity key (D16). The decision "is the current holder alive?" is made by watching the
 * key's TTL for one refresh period: a live holder refreshes it (TTL goes back up or the token
 * changes), a crashed one lets it run down. Every mutation that depends on the token is one Lua
 * script, so two starters can never both win. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/pod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hiredis/hiredis.h>

#include "mutt/deadlists.h"
#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/random.h"
#include "mutt/redis.h"

/* KEYS[1]=pod key, ARGV[1]=token, ARGV[2]=expiry s, ARGV[3]=old token ("" = none expected).
 * Returns 1 when the key is ours afterwards, 0 when someone else holds it. */
static const char CLAIM_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == false or cur == ARGV[1] or (ARGV[3] ~= '' and cur == ARGV[3]) then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
/* KEYS[1]=pod key, ARGV[1]=token: delete only if still ours. */
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

enum pod_state { POD_IDLE, POD_CLAIMING, POD_WATCHING, POD_HELD, POD_RELEASING, POD_DONE };

struct mutt_pod {
    uv_loop_t *loop;
    struct mutt_redis *redis;
    char *name;
    char key[300];
    char token[37];
    uint64_t interval_ms;
    uint64_t expiry_s;
    enum pod_state state;
    bool held;
    int claim_script;
    int release_script;
    uv_timer_t timer;
    int timer_open;
    /* watching an existing holder */
    char seen_token[128];
    int64_t seen_pttl;
    uint64_t seen_at_ms;
    mutt_pod_acquire_cb *acquire_cb;
    void *acquire_privdata;
    void (*release_done)(void *);
    void *release_privdata;
    int pending; /* replies outstanding: destroy must wait for none */
};

static void claim(struct mutt_pod *p, const char *expected_old);
static void on_timer(uv_timer_t *t);

void mutt_pod_default_name(char *buf, size_t len)
{
    char host[256];
    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        snprintf(host, sizeof(host), "mutt");
    host[sizeof(host) - 1] = '\0';
    snprintf(buf, len, "%s-%04x", host, (unsigned)(mutt_random_u64() & 0xffff));
}

struct mutt_pod *mutt_pod_create(uv_loop_t *loop, struct mutt_redis *redis, const char *name,
                                 uint64_t interval_ms, uint64_t expiry_s)
{
    struct mutt_pod *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->name = strdup(name);
    if (p->name == NULL) {
        free(p);
        return NULL;
    }
    p->loop = loop;
    p->redis = redis;
    p->interval_ms = interval_ms;
    p->expiry_s = expiry_s;
    snprintf(p->key, sizeof(p->key), MUTT_POD_KEY_PREFIX ":%s", name);
    mutt_random_uuid(p->token);
    p->claim_script = mutt_redis_script_register(redis, "pod_claim", CLAIM_LUA);
    p->release_script = mutt_redis_script_register(redis, "pod_release", RELEASE_LUA);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->timer_open = 1;
    return p;
}

const char *mutt_pod_name(const struct mutt_pod *pod)
{
    return pod->name;
}

const char *mutt_pod_token(const struct mutt_pod *pod)
{
    return pod->token;
}

bool mutt_pod_held(const struct mutt_pod *pod)
{
    return pod->held;
}

static void finish_acquire(struct mutt_pod *p, enum mutt_pod_outcome outcome)
{
    mutt_pod_acquire_cb *cb = p->acquire_cb;
    p->acquire_cb = NULL;
    if (cb)
        cb(p->acquire_privdata, outcome);
}

static void retry_later(struct mutt_pod *p, uint64_t ms)
{
    if (p->state != POD_RELEASING && p->state != POD_DONE)
        uv_timer_start(&p->timer, on_timer, ms, 0);
}

static void on_pttl_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_pod *p = privdata;
    p->pending--;
    if (p->state != POD_WATCHING)
        return;
    if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        retry_later(p, 200);
        return;
    }
    redisReply *tok = reply->element[0], *ttl = reply->element[1];
    if (tok->type == REDIS_REPLY_NIL) { /* holder gone meanwhile: claim normally */
        p->state = POD_CLAIMING;
        claim(p, "");
        return;
    }
    uint64_t now = uv_now(p->loop);
    int64_t pttl = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1;
    if (p->seen_at_ms == 0) {
        /* first look: remember, check again after one refresh period + 1 s */
        snprintf(p->seen_token, sizeof(p->seen_token), "%.*s", (int)tok->len, tok->str);
        p->seen_pttl = pttl;
        p->seen_at_ms = now;
        uv_timer_start(&p->timer, on_timer, p->interval_ms + 1000, 0);
        return;
    }
    int64_t elapsed = (int64_t)(now - p->seen_at_ms);
    bool token_changed = strlen(p->seen_token) != tok->len || memcmp(p->seen_token, tok->str, tok->len) != 0;
    /* a refresh resets the TTL, so it is well above what plain ageing would leave */
    bool ttl_refreshed = pttl > p->seen_pttl - elapsed + 500;
    if (token_changed || ttl_refreshed || pttl < 0) {
        mutt_log_error("pod", "POD_NAME=%s is in use by another running instance (its heartbeat is being "
                              "refreshed); choose a unique POD_NAME", p->name);
        p->state = POD_IDLE;
        finish_acquire(p, MUTT_POD_CONFLICT);
        return;
    }
    mutt_log_warn("pod", "taking over POD_NAME=%s from an instance that stopped refreshing it", p->name);
    p->state = POD_CLAIMING;
    claim(p, p->seen_token);
}

static void watch_holder(struct mutt_pod *p)
{
    const char *script = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}";
    const char *argv[] = {"EVAL", script, "1", p->key};
    size_t lens[] = {4, strlen(script), 1, strlen(p->key)};
    if (mutt_redis_command(mutt_redis_cmd(p->redis), on_pttl_reply, p, 4, argv, lens) == 0)
        p->pending++;
    else
        retry_later(p, 500);
}

static void on_claim_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_pod *p = privdata;
    p->pending--;
    if (p->state == POD_RELEASING || p->state == POD_DONE)
        return;
    if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        /* Redis down or erroring: keep what we had (held stays true: the key, if any, is ours
         * until it expires) and try again soon */
        retry_later(p, p->state == POD_HELD ? p->interval_ms : 500);
        return;
    }
    if (reply->integer == 1) {
        p->held = true;
        if (p->state != POD_HELD) {
            p->state = POD_HELD;
            mutt_log_info("pod", "pod identity %s acquired", p->name);
            finish_acquire(p, MUTT_POD_ACQUIRED);
        }
        retry_later(p, p->interval_ms);
        return;
    }
    if (p->state == POD_HELD) {
        /* someone took our name while we were cut off: say so loudly, keep trying to reclaim
         * only when it lapses */
        p->held = false;
        mutt_log_error("pod", "pod identity %s is now held by another instance", p->name);
        retry_later(p, p->interval_ms);
        return;
    }
    p->state = POD_WATCHING;
    p->seen_at_ms = 0;
    watch_holder(p);
}

static void claim(struct mutt_pod *p, const char *expected_old)
{
    char expiry[24];
    snprintf(expiry, sizeof(expiry), "%llu", (unsigned long long)p->expiry_s);
    const char *keys[] = {p->key};
    size_t keylens[] = {strlen(p->key)};
    const char *args[] = {p->token, expiry, expected_old};
    size_t arglens[] = {strlen(p->token), strlen(expiry), strlen(expected_old)};
    if (mutt_redis_evalsha(mutt_redis_cmd(p->redis), p->claim_script, 1, keys, keylens, 3, args, arglens,
                           on_claim_reply, p) == 0)
        p->pending++;
    else
        retry_later(p, p->state == POD_HELD ? p->interval_ms : 250);
}

static void on_timer(uv_timer_t *t)
{
    struct mutt_pod *p = t->data;
    switch (p->state) {
    case POD_CLAIMING:
    case POD_HELD:
        claim(p, "");
        break;
    case POD_WATCHING:
        watch_holder(p);
        break;
    default:
        break;
    }
}

int mutt_pod_acquire(struct mutt_pod *pod, mutt_pod_acquire_cb *cb, void *privdata)
{
    if (pod->state != POD_IDLE)
        return MUTT_ESTATE;
    pod->acquire_cb = cb;
    pod->acquire_privdata = privdata;
    pod->state = POD_CLAIMING;
    claim(pod, "");
    return 0;
}

static void on_release_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_pod *p = privdata;
    p->pending--;
    p->held = false;
    p->state = POD_DONE;
    if (p->release_done)
        p->release_done(p->release_privdata);
}

void mutt_pod_release(struct mutt_pod *pod, void (*done)(void *privdata), void *privdata)
{
    bool was_held = pod->held;
    pod->state = POD_RELEASING;
    uv_timer_stop(&pod->timer);
    pod->release_done = done;
    pod->release_privdata = privdata;
    if (was_held) {
        const char *keys[] = {pod->key};
        size_t keylens[] = {strlen(pod->key)};
        const char *args[] = {pod->token};
        size_t arglens[] = {strlen(pod->token)};
        if (mutt_redis_evalsha(mutt_redis_cmd(pod->redis), pod->release_script, 1, keys, keylens, 1, args, arglens,
                               on_release_reply, pod) == 0) {
            pod->pending++;
            return;
        }
    }
    pod->state = POD_DONE;
    pod->held = false;
    if (done)
        done(privdata);
}

static void on_pod_timer_closed(uv_handle_t *h)
{
    struct mutt_pod *p = h->data;
    free(p->name);
    free(p);
}

void mutt_pod_destroy(struct mutt_pod *pod)
{
    if (pod == NULL)
        return;
    pod->state = POD_DONE;
    uv_close((uv_handle_t *)&pod->timer, on_pod_timer_closed);
}
