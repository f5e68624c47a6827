/* Redis pub/sub: the channel list (kept across reconnects, so the handshake can subscribe again)
 * and the delivery of messages to their callbacks, on the manager's one pub/sub connection.
 * Loop thread only. */
#include "mutt/redis.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>

#include "mutt/error.h"
#include "redis_internal.h"

bool redis_channel_subscribed_before(const struct mutt_redis *r, size_t idx)
{
    for (size_t i = 0; i < idx; i++)
        if (strcmp(r->subs[i].channel, r->subs[idx].channel) == 0)
            return true;
    return false;
}

static void on_pubsub_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    struct mutt_redis_conn *c = privdata;
    redisReply *reply = rp;
    if (!reply || c->ac != ac)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    const char *channel = reply->element[1]->str;
    if (strcasecmp(kind, "subscribe") == 0) {
        /* the pub/sub connection counts as up once every channel is confirmed, so a publisher
         * that waits for "up" cannot race the re-subscription */
        if (c->state == CONN_HANDSHAKE && c->handshake_pending > 0 && --c->handshake_pending == 0)
            redis_conn_ready(c);
        return;
    }
    if (strcasecmp(kind, "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    struct mutt_redis *r = c->r;
    const redisReply *msg = reply->element[2];
    for (size_t i = 0; i < r->nsubs; i++) { /* by index: a callback may subscribe more */
        if (strcmp(r->subs[i].channel, channel) == 0)
            r->subs[i].cb(r->subs[i].privdata, channel, msg->str, msg->len);
        if (c->state == CONN_CLOSED) /* a callback stopped the manager */
            return;
    }
}

int redis_send_subscribe(struct mutt_redis_conn *c, const char *channel)
{
    const char *argv[2] = {"SUBSCRIBE", channel};
    size_t lens[2] = {9, strlen(channel)};
    return redisAsyncCommandArgv(c->ac, on_pubsub_reply, c, 2, argv, lens) == REDIS_OK ? 0 : MUTT_EIO;
}

int mutt_redis_subscribe(struct mutt_redis *r, const char *channel, mutt_redis_message_cb *cb, void *privdata)
{
    if (!r || !channel || !*channel || !cb)
        return MUTT_EINVAL;
    if (r->stopped)
        return MUTT_ESTATE;
    if (r->nsubs >= MAX_SUBSCRIPTIONS)
        return MUTT_EFULL;
    if (!r->pubsub) {
        r->pubsub = redis_conn_new(r, CONN_PUBSUB, "redis-pubsub");
        if (!r->pubsub)
            return MUTT_ENOMEM;
    }
    struct subscription *s = &r->subs[r->nsubs];
    s->channel = strdup(channel);
    if (!s->channel)
        return MUTT_ENOMEM;
    s->cb = cb;
    s->privdata = privdata;
    r->nsubs++;
    struct mutt_redis_conn *c = r->pubsub;
    if (c->state == CONN_READY) {
        /* a failed send is healed by the re-subscription at the next reconnect */
        if (!redis_channel_subscribed_before(r, r->nsubs - 1))
            redis_send_subscribe(c, channel);
    } else if (c->state == CONN_IDLE && r->started) {
        redis_conn_connect(c);
    }
    /* during the SUBSCRIBE step the list was already walked: add this channel to the round
     * (earlier steps pick it up when they get there) */
    else if (c->state == CONN_HANDSHAKE && c->handshake_last_step && c->ac &&
             !redis_channel_subscribed_before(r, r->nsubs - 1)) {
        if (redis_send_subscribe(c, channel) == 0)
            c->handshake_pending++;
    }
    return 0;
}
