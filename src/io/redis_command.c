/* The Redis command path: every accepted command is tracked in send order until its one
 * callback runs (with the reply, or the reason there is none), its deadline feeds the manager's
 * watch (D48), and EVALSHA falls back to EVAL when the server lost its script cache. Loop thread
 * only. */
#include "mutt/redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <openssl/evp.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "redis_internal.h"

/* ------------------------------------------------------------------------------ commands */

static void op_unlink(struct op *op)
{
    struct mutt_redis_conn *c = op->conn;
    if (op->prev)
        op->prev->next = op->next;
    else if (c->oldest == op)
        c->oldest = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else if (c->newest == op)
        c->newest = op->prev;
    op->prev = op->next = NULL;
}

/* Seconds a blocking command may legitimately wait in the server (its last argument for the
 * blocking pops, WAIT's timeout in ms); 0 for every other command. Loose on purpose: an
 * unreadable value counts as 0 and the command gets the plain timeout. */
static uint64_t blocking_wait_ms(int argc, const char **argv, const size_t *argvlen)
{
    /* the blocking commands whose timeout is the last argument (MUTT sends no other) */
    static const char *const pops[] = {"BLPOP", "BRPOP", "BRPOPLPUSH", "BLMOVE", "BZPOPMIN", "BZPOPMAX", NULL};
    if (argc < 2)
        return 0;
    char name[16];
    size_t n = argvlen ? argvlen[0] : strlen(argv[0]);
    if (n >= sizeof(name))
        return 0;
    memcpy(name, argv[0], n);
    name[n] = '\0';
    char last[32];
    size_t ln = argvlen ? argvlen[argc - 1] : strlen(argv[argc - 1]);
    if (ln >= sizeof(last))
        return 0;
    memcpy(last, argv[argc - 1], ln);
    last[ln] = '\0';
    if (strcasecmp(name, "WAIT") == 0)
        return (uint64_t)strtoull(last, NULL, 10);
    for (int i = 0; pops[i]; i++)
        if (strcasecmp(name, pops[i]) == 0) {
            double secs = strtod(last, NULL);
            if (secs <= 0) /* 0 = wait forever: only keepalive can tell a dead peer then */
                return UINT64_MAX / 2;
            return (uint64_t)(secs * 1000.0);
        }
    return 0;
}

/* Appends an accepted command to the connection's list and arms the watch if it is the only one. */
static void op_track(struct mutt_redis_conn *c, struct op *op, uint64_t extra_ms)
{
    op->wait_ms = extra_ms;
    op->deadline_ms = uv_now(c->r->loop) + c->r->command_timeout_ms + extra_ms;
    op->prev = c->newest;
    op->next = NULL;
    if (c->newest)
        c->newest->next = op;
    else
        c->oldest = op;
    c->newest = op;
    if (c->oldest == op)
        redis_arm_command_timer(c);
}

static void on_op_reply(redisAsyncContext *ac, void *rp, void *privdata)
{
    struct op *op = privdata;
    struct mutt_redis_conn *c = op->conn;
    redisReply *reply = rp;
    int status;

    if (reply && reply->type == REDIS_REPLY_ERROR && op->script_id >= 0 && !op->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* the server lost its script cache (restart, SCRIPT FLUSH): run the source with EVAL,
         * and reload it so later EVALSHAs hit again. The op stays accepted: one callback. */
        const struct script *s = &c->r->scripts[op->script_id];
        op->retried = true;
        op->argv[0] = "EVAL";
        op->argvlen[0] = 4;
        op->argv[1] = s->source;
        op->argvlen[1] = strlen(s->source);
        if (redisAsyncCommandArgv(ac, on_op_reply, op, op->argc, op->argv, op->argvlen) == REDIS_OK) {
            if (c->ac == ac)
                redis_send_script_load(c, s, NULL);
            op_unlink(op); /* now behind everything sent meanwhile, with a fresh deadline */
            op_track(c, op, 0);
            return;
        }
        reply = NULL; /* the context is going away: report it like any lost connection */
        status = c->state == CONN_CLOSED ? MUTT_ECANCELED : MUTT_EDISCONNECTED;
    } else if (!reply) {
        status = c->null_reply_status;
    } else {
        status = reply->type == REDIS_REPLY_ERROR ? MUTT_EIO : 0;
    }
    if (status == MUTT_EIO && c->r->nsentinels > 0 && c->gen == c->r->gen && redis_reply_means_rediscover(reply)) {
        mutt_log_warn("redis", "%s (%s:%d): %.100s; asking the sentinels again", redis_kind_name(c), c->r->host, c->r->port,
                      reply->str);
        c->r->have_primary = false;
        redis_discovery_start(c->r);
    }
    c->inflight--; /* before the callback, so it can issue the next command at the cap */
    bool was_oldest = c->oldest == op;
    op_unlink(op);
    if (was_oldest && c->ac == ac && c->state == CONN_READY) {
        if (c->oldest) {
            /* the server only starts on the next command now (it may have waited behind a
             * blocking pop): its time runs from here, its own block time included */
            struct op *head = c->oldest;
            uint64_t from_now = uv_now(c->r->loop) + c->r->command_timeout_ms + head->wait_ms;
            if (head->deadline_ms < from_now)
                head->deadline_ms = from_now;
            redis_arm_command_timer(c);
        } else {
            uv_timer_stop(&c->timer);
        }
    }
    if (op->cb)
        op->cb(op->privdata, reply, status);
    free(op);
}

/* Checks shared by every send: fail fast when not connected, MUTT_EFULL at the cap. */
static int conn_can_send(const struct mutt_redis_conn *c)
{
    if (!c)
        return MUTT_EINVAL;
    if (c->kind == CONN_PUBSUB)
        return MUTT_EINVAL;
    if (c->state != CONN_READY || !c->ac || (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return MUTT_EDISCONNECTED;
    if (c->inflight >= c->r->max_inflight)
        return MUTT_EFULL;
    return 0;
}

/* A zeroed op for one command on c, with `extra` bytes after it (a script call's argv); NULL on
 * OOM. script_id is -1 for a plain command. */
static struct op *op_new(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, int script_id,
                         size_t extra)
{
    struct op *op = calloc(1, sizeof(*op) + extra);
    if (!op)
        return NULL;
    op->conn = c;
    op->cb = cb;
    op->privdata = privdata;
    op->script_id = script_id;
    return op;
}

static int send_error_code(const struct mutt_redis_conn *c)
{
    return (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) ? MUTT_EDISCONNECTED : MUTT_ENOMEM;
}

int mutt_redis_command(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, int argc,
                       const char **argv, const size_t *argvlen)
{
    if (argc <= 0 || !argv)
        return MUTT_EINVAL;
    int rc = conn_can_send(c);
    if (rc != 0)
        return rc;
    struct op *op = op_new(c, cb, privdata, -1, 0);
    if (!op)
        return MUTT_ENOMEM;
    /* hiredis copies the arguments into its output buffer at once (binary safe) */
    if (redisAsyncCommandArgv(c->ac, on_op_reply, op, argc, argv, argvlen) != REDIS_OK) {
        rc = send_error_code(c);
        free(op);
        return rc;
    }
    c->inflight++;
    op_track(c, op, blocking_wait_ms(argc, argv, argvlen));
    return 0;
}

int mutt_redis_commandf(struct mutt_redis_conn *c, mutt_redis_reply_cb *cb, void *privdata, const char *fmt, ...)
{
    if (!fmt)
        return MUTT_EINVAL;
    int rc = conn_can_send(c);
    if (rc != 0)
        return rc;
    struct op *op = op_new(c, cb, privdata, -1, 0);
    if (!op)
        return MUTT_ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    int hrc = redisvAsyncCommand(c->ac, on_op_reply, op, fmt, ap);
    va_end(ap);
    if (hrc != REDIS_OK) {
        rc = (c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) ? MUTT_EDISCONNECTED : MUTT_EINVAL;
        free(op);
        return rc;
    }
    c->inflight++;
    op_track(c, op, 0);
    return 0;
}

/* ------------------------------------------------------------------------------ scripts */

static void sha1_hex(const char *data, size_t len, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        out[0] = '\0'; /* EVALSHA then always falls back to EVAL */
        return;
    }
    for (unsigned i = 0; i < 20; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[40] = '\0';
}

int redis_send_script_load(struct mutt_redis_conn *c, const struct script *s, redisCallbackFn *fn)
{
    const char *argv[3] = {"SCRIPT", "LOAD", s->source};
    size_t lens[3] = {6, 4, strlen(s->source)};
    return redisAsyncCommandArgv(c->ac, fn, c, 3, argv, lens) == REDIS_OK ? 0 : MUTT_EIO;
}

int mutt_redis_script_register(struct mutt_redis *r, const char *name, const char *source)
{
    if (!r || !source || !*source)
        return MUTT_EINVAL;
    for (size_t i = 0; i < r->nscripts; i++)
        if (strcmp(r->scripts[i].source, source) == 0)
            return (int)i;
    if (r->nscripts >= MAX_SCRIPTS)
        return MUTT_EFULL;
    struct script *s = &r->scripts[r->nscripts];
    s->name = strdup(name ? name : "script");
    s->source = strdup(source);
    if (!s->name || !s->source) {
        free(s->name);
        free(s->source);
        memset(s, 0, sizeof(*s));
        return MUTT_ENOMEM;
    }
    sha1_hex(source, strlen(source), s->sha);
    r->nscripts++;
    /* connections already up load it now; every later (re)connect loads it in the handshake */
    for (struct mutt_redis_conn *c = r->conns; c; c = c->next)
        if (c->kind != CONN_PUBSUB && c->state == CONN_READY && c->ac)
            redis_send_script_load(c, s, NULL);
    return (int)(r->nscripts - 1);
}

int mutt_redis_evalsha(struct mutt_redis_conn *c, int script_id, int nkeys, const char **keys,
                       const size_t *keylens, int nargs, const char **args, const size_t *arglens,
                       mutt_redis_reply_cb *cb, void *privdata)
{
    if (!c || script_id < 0 || (size_t)script_id >= c->r->nscripts || nkeys < 0 || nargs < 0 ||
        (nkeys > 0 && !keys) || (nargs > 0 && !args))
        return MUTT_EINVAL;
    int rc = conn_can_send(c);
    if (rc != 0)
        return rc;
    const struct script *s = &c->r->scripts[script_id];
    char nkeys_str[16];
    int nkeys_len = snprintf(nkeys_str, sizeof(nkeys_str), "%d", nkeys);
    int argc = 3 + nkeys + nargs;

    /* one allocation: op, argv pointers, lengths, then copies of nkeys/keys/args (the EVAL retry
     * on NOSCRIPT needs them after the caller's buffers are gone) */
    size_t bytes = (size_t)nkeys_len + 1;
    for (int i = 0; i < nkeys; i++)
        bytes += (keylens ? keylens[i] : strlen(keys[i])) + 1;
    for (int i = 0; i < nargs; i++)
        bytes += (arglens ? arglens[i] : strlen(args[i])) + 1;
    size_t tail = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    struct op *op = op_new(c, cb, privdata, script_id, tail + bytes);
    if (!op)
        return MUTT_ENOMEM;
    op->argc = argc;
    op->argv = (const char **)(op + 1);
    op->argvlen = (size_t *)(op->argv + argc);
    char *data = (char *)(op->argvlen + argc);

    bool have_sha = s->sha[0] != '\0';
    op->argv[0] = have_sha ? "EVALSHA" : "EVAL";
    op->argvlen[0] = strlen(op->argv[0]);
    op->argv[1] = have_sha ? s->sha : s->source;
    op->argvlen[1] = strlen(op->argv[1]);
    op->retried = !have_sha;
    memcpy(data, nkeys_str, (size_t)nkeys_len + 1);
    op->argv[2] = data;
    op->argvlen[2] = (size_t)nkeys_len;
    data += nkeys_len + 1;
    for (int i = 0; i < nkeys + nargs; i++) {
        const char *src = i < nkeys ? keys[i] : args[i - nkeys];
        const size_t *lens = i < nkeys ? keylens : arglens;
        size_t len = lens ? lens[i < nkeys ? i : i - nkeys] : strlen(src);
        memcpy(data, src, len);
        data[len] = '\0';
        op->argv[3 + i] = data;
        op->argvlen[3 + i] = len;
        data += len + 1;
    }
    if (redisAsyncCommandArgv(c->ac, on_op_reply, op, op->argc, op->argv, op->argvlen) != REDIS_OK) {
        rc = send_error_code(c);
        free(op);
        return rc;
    }
    c->inflight++;
    op_track(c, op, 0);
    return 0;
}
