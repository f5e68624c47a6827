/* The stand-in listener intake (listen_intake.h): one ingest script call per event, with the
 * ingest stage's own Lua, caps and rate limit, on a Redis connection of its own. The group intake
 * of the ingest stage (one call per loop turn) replaces it. */
#define _GNU_SOURCE
#include "mutt/listen_intake.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/ingest.h"
#include "mutt/log.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/uuid.h"

/* Datagrams keep arriving while Redis is slow: past this many outstanding calls the listener drops
 * (and counts) instead of growing memory. */
#define MAX_PENDING 4096

struct local_intake {
    struct mutt_ctx *ctx;
    struct mutt_redis_conn *conn;
    int script_id;
    size_t pending;
    struct mutt_event_rules rules;
    char *buf;
    size_t buf_cap;
};

struct call {
    mutt_listen_verdict_cb *cb;
    void *arg;
};

static struct local_intake g_local;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_reply(void *privdata, redisReply *reply, int status)
{
    struct call *c = privdata;
    struct local_intake *li = &g_local;
    int verdict = status != 0 ? (status < 0 ? status : MUTT_EIO) : MUTT_EIO;
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == MUTT_INGEST_RESULT_WIDTH &&
        reply->element[0]->type == REDIS_REPLY_INTEGER)
        verdict = reply->element[0]->integer == MUTT_INGEST_PUSHED ? 0 : MUTT_EFULL;
    li->pending--;
    if (c->cb)
        c->cb(c->arg, verdict);
    free(c);
}

static int serialise(struct local_intake *li, json_t *ev, size_t *len)
{
    uint8_t rnd[16];
    char cid[MUTT_UUID_STR_LEN];
    mutt_random_bytes(rnd, sizeof rnd);
    mutt_uuid_v4_format(rnd, cid); /* one correlation id per trap, as one POST per trap had */
    mutt_random_bytes(rnd, sizeof rnd);
    int rc = mutt_event_stamp(ev, cid, rnd);
    if (rc != 0)
        return rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = mutt_event_dump(ev, li->buf, li->buf_cap, len);
        if (rc != MUTT_EFULL)
            return rc;
        char *b = realloc(li->buf, *len + 1024);
        if (!b)
            return MUTT_ENOMEM;
        li->buf = b;
        li->buf_cap = *len + 1024;
    }
    return MUTT_ENOMEM;
}

static int local_submit(void *ud, json_t *ev, mutt_listen_verdict_cb *cb, void *arg)
{
    struct local_intake *li = ud;
    const struct mutt_config *cfg = li->ctx->cfg;
    int rc = 0;
    size_t len = 0;
    struct call *c = NULL;
    char err[256] = "";
    if (!mutt_redis_conn_connected(li->conn)) {
        rc = MUTT_EDISCONNECTED;
        goto out;
    }
    if (li->pending >= MAX_PENDING) {
        rc = MUTT_EFULL;
        goto out;
    }
    mutt_event_strip_reserved(ev);
    if (mutt_event_normalize(ev, &li->rules, err, sizeof err, NULL) != 0 ||
        mutt_event_check_size(ev, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), err, sizeof err) != 0) {
        mutt_log_warn("listen", "trap event refused: %s", err);
        rc = MUTT_EINVAL;
        goto out;
    }
    if ((rc = serialise(li, ev, &len)) != 0)
        goto out;
    struct mutt_ingest_params p = {
        .queue = mutt_config_str(cfg, MUTT_CFG_INGEST_QUEUE_NAME),
        .metrics_prefix = mutt_config_str(cfg, MUTT_CFG_METRICS_PREFIX),
        .now_ms = wall_ms(),
        .cap = mutt_dynconfig_int(li->ctx->dyn, MUTT_DYN_MAX_INGEST_QUEUE_SIZE),
        .rate_enabled = mutt_config_bool(cfg, MUTT_CFG_RATE_LIMIT_ENABLED),
        .rate_max = mutt_dynconfig_int(li->ctx->dyn, MUTT_DYN_INGEST_MAX_RATE),
        .rate_window_s = mutt_dynconfig_int(li->ctx->dyn, MUTT_DYN_INGEST_RATE_WINDOW),
        .byte_cap = mutt_dynconfig_int(li->ctx->dyn, MUTT_DYN_MAX_INGEST_QUEUE_BYTES),
    };
    struct mutt_ingest_call call;
    if ((rc = mutt_ingest_call_prepare(&call, &p)) != 0)
        goto out;
    const char *argv[MUTT_INGEST_NFIXED + 3];
    size_t argl[MUTT_INGEST_NFIXED + 3];
    for (int i = 0; i < MUTT_INGEST_NFIXED; i++) {
        argv[i] = call.args[i];
        argl[i] = call.arglens[i];
    }
    argv[MUTT_INGEST_NFIXED] = "1"; /* one request ... */
    argl[MUTT_INGEST_NFIXED] = 1;
    argv[MUTT_INGEST_NFIXED + 1] = "1"; /* ... of one event */
    argl[MUTT_INGEST_NFIXED + 1] = 1;
    argv[MUTT_INGEST_NFIXED + 2] = li->buf;
    argl[MUTT_INGEST_NFIXED + 2] = len;
    if ((c = malloc(sizeof *c)) == NULL) {
        rc = MUTT_ENOMEM;
        goto out;
    }
    c->cb = cb;
    c->arg = arg;
    rc = mutt_redis_evalsha(li->conn, li->script_id, MUTT_INGEST_NKEYS, call.keys, call.keylens,
                            MUTT_INGEST_NFIXED + 3, argv, argl, on_reply, c);
    if (rc != 0) {
        free(c);
        goto out;
    }
    li->pending++;
out:
    json_decref(ev);
    return rc;
}

static size_t local_pending(void *ud)
{
    return ((struct local_intake *)ud)->pending;
}

int mutt_listen_intake_local(struct mutt_ctx *ctx, struct mutt_listen_intake *out)
{
    struct local_intake *li = &g_local;
    if (!li->conn) {
        li->ctx = ctx;
        mutt_event_rules_init_default(&li->rules);
        if (mutt_event_rules_set_required(&li->rules, mutt_config_str(ctx->cfg, MUTT_CFG_REQUIRED_FIELDS)) != 0)
            return MUTT_EINVAL;
        li->script_id = mutt_redis_script_register(ctx->redis, "listen-ingest", mutt_ingest_lua);
        if (li->script_id < 0)
            return li->script_id;
        li->conn = mutt_redis_conn_open(ctx->redis, "listen");
        if (!li->conn)
            return MUTT_ENOMEM;
    }
    out->submit = local_submit;
    out->pending = local_pending;
    out->ud = li;
    return 0;
}
