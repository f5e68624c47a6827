/* Blocking Sentinel discovery for the CLI (mutt_redis_sentinel_discover_sync in redis.h): no loop
 * runs while a CLI command does, so plain hiredis is fine here. */
#include "mutt/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/redis_sentinels.h"

/* Asks one sentinel; 0 with host/port, or MUTT_EIO with why. */
static int ask(const struct mutt_redis_addr *s, const struct mutt_redis_opts *o, struct timeval tv, char *host,
               size_t host_len, int *port, char *why, size_t why_len)
{
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    if (!c || c->err) {
        snprintf(why, why_len, "sentinel %s:%d: %s", s->host, s->port, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return MUTT_EIO;
    }
    redisSetTimeout(c, tv);
    if (o->sentinel_pass && o->sentinel_pass[0]) {
        redisReply *r = redisCommand(c, "AUTH %s", o->sentinel_pass);
        if (r)
            freeReplyObject(r); /* a refusal shows in the query's own reply */
    }
    const char *master = o->sentinel_master && o->sentinel_master[0] ? o->sentinel_master : "mymaster";
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", master);
    int rc = MUTT_EIO;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
        r->element[1]->type == REDIS_REPLY_STRING && atoi(r->element[1]->str) > 0) {
        snprintf(host, host_len, "%s", r->element[0]->str);
        *port = atoi(r->element[1]->str);
        rc = 0;
    } else {
        snprintf(why, why_len, "sentinel %s:%d: no address for %s: %s", s->host, s->port, master,
                 !r ? (c->errstr[0] ? c->errstr : "no reply")
                    : r->type == REDIS_REPLY_ERROR ? r->str
                    : r->type == REDIS_REPLY_NIL   ? "unknown master"
                                                   : "bad reply");
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

int mutt_redis_sentinel_discover_sync(const struct mutt_redis_opts *o, char *host, size_t host_len, int *port,
                                      char *why, size_t why_len)
{
    struct mutt_redis_addr s[MUTT_REDIS_MAX_SENTINELS];
    int n = mutt_redis_sentinels_parse(o->sentinels, s, MUTT_REDIS_MAX_SENTINELS, why, why_len);
    if (n <= 0) {
        if (n == 0)
            snprintf(why, why_len, "REDIS_SENTINELS is empty");
        return MUTT_EINVAL;
    }
    uint64_t ms = o->connect_timeout_ms ? o->connect_timeout_ms : 2000;
    struct timeval tv = {.tv_sec = (long)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000};
    for (int i = 0; i < n; i++)
        if (ask(&s[i], o, tv, host, host_len, port, why, why_len) == 0)
            return 0;
    return MUTT_EIO; /* why: the last sentinel's reason */
}
