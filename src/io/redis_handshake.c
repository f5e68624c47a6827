/* The steps a fresh Redis connection takes before it is READY: AUTH (CURRENT, then NEXT), SELECT,
 * ROLE in Sentinel mode, then SCRIPT LOAD of every registered script (command connections) or
 * SUBSCRIBE to every channel (pub/sub). Any refusal drops the connection into the manager's
 * reconnect path (redis.c). Loop thread only. */
#include <stdio.h>
#include <string.h>

#include <hiredis/async.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "redis_internal.h"

/* Passwords tried in order at AUTH: CURRENT, then NEXT (secrets rotation), empty ones skipped. */
static const char *password_at(const struct mutt_redis *r, int idx)
{
    const char *cands[2];
    int n = 0;
    if (r->pass_current)
        cands[n++] = r->pass_current;
    if (r->pass_next && !(r->pass_current && strcmp(r->pass_current, r->pass_next) == 0))
        cands[n++] = r->pass_next;
    return idx < n ? cands[idx] : NULL;
}

static void handshake_scripts_or_subscribe(struct mutt_redis_conn *c);
static void handshake_role(struct mutt_redis_conn *c);

static bool reply_is_error(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR;
}

/* Is this reply one of the handshake's, on the live context? NULL replies come from a context
 * being freed: whoever freed it already decided what happens next. */
static bool handshake_reply_live(struct mutt_redis_conn *c, redisAsyncContext *ac, redisReply *reply)
{
    return reply && c->ac == ac && c->state == CONN_HANDSHAKE;
}

static void on_select_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (reply_is_error(reply)) {
        char why[192];
        snprintf(why, sizeof(why), "SELECT %d refused: %.150s", c->r->db, reply->str);
        redis_abort_connection(c, why);
        return;
    }
    handshake_role(c);
}

/* Sentinel mode: a sentinel's answer may be stale (a failover under way, a demoted primary
 * still announced), so each connection confirms it reached a master before it is used. */
static void on_role_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0) {
        handshake_scripts_or_subscribe(c);
        return;
    }
    char why[192];
    snprintf(why, sizeof(why), "not a master (ROLE: %.100s); asking the sentinels again",
             reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->str
                 ? reply->element[0]->str
                 : (reply->str ? reply->str : "?"));
    redis_abort_connection(c, why);
}

static void handshake_role(struct mutt_redis_conn *c)
{
    if (c->r->nsentinels == 0) {
        handshake_scripts_or_subscribe(c);
        return;
    }
    if (redisAsyncCommand(c->ac, on_role_reply, c, "ROLE") != REDIS_OK)
        redis_abort_connection(c, "ROLE could not be sent");
}

static void handshake_select(struct mutt_redis_conn *c)
{
    if (c->r->db <= 0) {
        handshake_role(c);
        return;
    }
    if (redisAsyncCommand(c->ac, on_select_reply, c, "SELECT %d", c->r->db) != REDIS_OK)
        redis_abort_connection(c, "SELECT could not be sent");
}

static int send_auth(struct mutt_redis_conn *c, const char *password);

static void on_auth_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (!reply_is_error(reply)) {
        handshake_select(c);
        return;
    }
    /* A server without a password refuses AUTH; it needs none, so go on (rotation to "no
     * password" must not take the service down). */
    if (strstr(reply->str, "without any password configured") || strstr(reply->str, "no password is set")) {
        mutt_log_warn("redis", "%s: server has no password; AUTH skipped", redis_kind_name(c));
        handshake_select(c);
        return;
    }
    const char *next = password_at(c->r, c->pass_index + 1);
    if (next) {
        mutt_log_warn("redis", "%s: AUTH with the current password refused (%.100s); trying the next password",
                      redis_kind_name(c), reply->str);
        c->pass_index++;
        if (send_auth(c, next) != 0)
            redis_abort_connection(c, "AUTH could not be sent");
        return;
    }
    char why[192];
    snprintf(why, sizeof(why), "AUTH refused: %.150s", reply->str);
    redis_abort_connection(c, why);
}

static int send_auth(struct mutt_redis_conn *c, const char *password)
{
    const char *argv[2] = {"AUTH", password};
    size_t lens[2] = {4, strlen(password)};
    return redisAsyncCommandArgv(c->ac, on_auth_reply, c, 2, argv, lens) == REDIS_OK ? 0 : MUTT_EIO;
}

static void on_script_load_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = r;
    if (!handshake_reply_live(c, ac, reply))
        return;
    if (reply_is_error(reply)) {
        char why[192];
        snprintf(why, sizeof(why), "SCRIPT LOAD refused: %.150s", reply->str);
        redis_abort_connection(c, why);
        return;
    }
    if (--c->handshake_pending == 0)
        redis_conn_ready(c);
}

static void handshake_scripts_or_subscribe(struct mutt_redis_conn *c)
{
    struct mutt_redis *r = c->r;
    c->handshake_pending = 0;
    c->handshake_last_step = true;
    if (c->kind == CONN_PUBSUB) {
        for (size_t i = 0; i < r->nsubs; i++) {
            if (redis_channel_subscribed_before(r, i))
                continue;
            if (redis_send_subscribe(c, r->subs[i].channel) != 0) {
                redis_abort_connection(c, "SUBSCRIBE could not be sent");
                return;
            }
            c->handshake_pending++;
        }
    } else {
        for (size_t i = 0; i < r->nscripts; i++) {
            if (redis_send_script_load(c, &r->scripts[i], on_script_load_reply) != 0) {
                redis_abort_connection(c, "SCRIPT LOAD could not be sent");
                return;
            }
            c->handshake_pending++;
        }
    }
    if (c->handshake_pending == 0)
        redis_conn_ready(c);
}

void redis_handshake_start(struct mutt_redis_conn *c)
{
    c->pass_index = 0;
    c->handshake_last_step = false;
    const char *password = password_at(c->r, 0);
    if (!password) {
        handshake_select(c);
        return;
    }
    if (send_auth(c, password) != 0)
        redis_abort_connection(c, "AUTH could not be sent");
}
