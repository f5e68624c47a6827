/* Janitor of dead pods' processing lists outside relq (see include/mutt/deadlists.h): SCAN
 * <prefix>:*, and for each foreign list one atomic script call gated on the owner's pod key.
 * One pass at a time; replies in flight keep the janitor alive after stop. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/deadlists.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/redis.h"

#define SCAN_COUNT "100"

struct mutt_deadlists {
    uv_loop_t *loop;
    struct mutt_redis *redis;
    struct mutt_deadlists_opts o;
    char *pattern;     /* <prefix>:* */
    char *cursor;      /* SCAN cursor of the pass running; NULL between passes */
    uv_timer_t timer;
    size_t pending;    /* replies outstanding (SCAN + moves) */
    size_t page_moves; /* moves of the current page still outstanding */
    bool running;      /* a pass is in progress */
    bool stopped;
    bool timer_closed;
    uint64_t moved;
};

static void maybe_free(struct mutt_deadlists *j)
{
    if (!j->stopped || j->pending > 0 || !j->timer_closed)
        return;
    free(j->pattern);
    free(j->cursor);
    free(j);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_deadlists *j = h->data;
    j->timer_closed = true;
    maybe_free(j);
}

static void on_timer(uv_timer_t *t)
{
    mutt_deadlists_run(t->data);
}

static void pass_end(struct mutt_deadlists *j, bool ok)
{
    j->running = false;
    free(j->cursor);
    j->cursor = NULL;
    if (!j->stopped)
        uv_timer_start(&j->timer, on_timer, ok ? j->o.interval_ms : 1000, 0);
}

static void scan_page(struct mutt_deadlists *j);

static void page_move_done(struct mutt_deadlists *j)
{
    if (--j->page_moves > 0)
        return;
    if (j->stopped) {
        j->running = false;
        return;
    }
    if (strcmp(j->cursor, "0") == 0)
        pass_end(j, true);
    else
        scan_page(j);
}

struct move_op {
    struct mutt_deadlists *j;
    char *list;
};

static void on_move_reply(void *privdata, redisReply *reply, int status)
{
    struct move_op *op = privdata;
    struct mutt_deadlists *j = op->j;
    j->pending--;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        j->moved += (uint64_t)reply->integer;
        mutt_log_info(j->o.name, "janitor returned %lld item(s) of dead pod list %s", reply->integer, op->list);
    } else if (status != 0 && status != MUTT_ECANCELED) {
        mutt_log_warn(j->o.name, "janitor on %s failed: %.200s", op->list,
                      reply && reply->type == REDIS_REPLY_ERROR ? reply->str : mutt_strerror(status));
    }
    free(op->list);
    free(op);
    page_move_done(j);
    maybe_free(j);
}

/* Splits "<prefix>:<pod>[:<tail>]"; false when the name does not have that shape. */
static bool split_list(const struct mutt_deadlists *j, const char *list, char *pod, size_t podlen,
                       const char **tail)
{
    size_t plen = strlen(j->o.list_prefix);
    if (strncmp(list, j->o.list_prefix, plen) != 0 || list[plen] != ':')
        return false;
    const char *p = list + plen + 1;
    const char *end = p + strlen(p);
    *tail = "";
    if (j->o.has_tail) {
        const char *colon = strrchr(p, ':');
        if (!colon || colon == p || colon[1] == '\0')
            return false;
        end = colon;
        *tail = colon + 1;
    }
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= podlen)
        return false;
    memcpy(pod, p, n);
    pod[n] = '\0';
    return true;
}

static void send_move(struct mutt_deadlists *j, const char *list)
{
    char pod[256], podkey[300];
    const char *tail;
    if (!split_list(j, list, pod, sizeof pod, &tail) || strcmp(pod, j->o.own_pod) == 0)
        return;
    const char *keys[MUTT_DEADLISTS_MAX_KEYS + 2];
    int n = j->o.keys_cb(j->o.priv, tail, keys + 1);
    if (n < 0 || n > MUTT_DEADLISTS_MAX_KEYS)
        return;
    snprintf(podkey, sizeof podkey, "%s:%s", MUTT_POD_KEY_PREFIX, pod);
    keys[0] = list;
    keys[n + 1] = podkey;
    struct move_op *op = calloc(1, sizeof *op);
    if (!op || !(op->list = strdup(list))) {
        free(op);
        return;
    }
    op->j = j;
    const char *args[] = {"janitor"};
    if (mutt_redis_evalsha(mutt_redis_cmd(j->redis), j->o.script, n + 2, keys, NULL, 1, args, NULL, on_move_reply,
                           op) != 0) {
        free(op->list);
        free(op);
        return;
    }
    j->pending++;
    j->page_moves++;
}

static void on_scan_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_deadlists *j = privdata;
    j->pending--;
    if (j->stopped) {
        j->running = false;
        maybe_free(j);
        return;
    }
    if (status != 0 || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING || reply->element[1]->type != REDIS_REPLY_ARRAY) {
        pass_end(j, false);
        return;
    }
    char *cursor = strdup(reply->element[0]->str);
    if (!cursor) {
        pass_end(j, false);
        return;
    }
    free(j->cursor);
    j->cursor = cursor;
    j->page_moves = 1; /* held by this loop: a synchronous failure cannot end the page early */
    const redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *k = keys->element[i];
        if (k->type == REDIS_REPLY_STRING && strlen(k->str) == k->len)
            send_move(j, k->str);
    }
    page_move_done(j);
}

static void scan_page(struct mutt_deadlists *j)
{
    const char *argv[] = {"SCAN", j->cursor, "MATCH", j->pattern, "COUNT", SCAN_COUNT};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (mutt_redis_command(mutt_redis_cmd(j->redis), on_scan_reply, j, 6, argv, lens) != 0) {
        pass_end(j, false);
        return;
    }
    j->pending++;
}

int mutt_deadlists_run(struct mutt_deadlists *j)
{
    if (j->running || j->stopped)
        return MUTT_ESTATE;
    j->cursor = strdup("0");
    if (!j->cursor) {
        uv_timer_start(&j->timer, on_timer, 1000, 0);
        return MUTT_ENOMEM;
    }
    j->running = true;
    scan_page(j);
    return 0;
}

struct mutt_deadlists *mutt_deadlists_start(uv_loop_t *loop, struct mutt_redis *redis,
                                            const struct mutt_deadlists_opts *opts)
{
    struct mutt_deadlists *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->loop = loop;
    j->redis = redis;
    j->o = *opts;
    if (asprintf(&j->pattern, "%s:*", opts->list_prefix) < 0) {
        free(j);
        return NULL;
    }
    uv_timer_init(loop, &j->timer);
    j->timer.data = j;
    uv_unref((uv_handle_t *)&j->timer); /* never keeps the loop alive on its own */
    uv_timer_start(&j->timer, on_timer, 0, 0);
    return j;
}

uint64_t mutt_deadlists_moved(const struct mutt_deadlists *j)
{
    return j ? j->moved : 0;
}

void mutt_deadlists_stop(struct mutt_deadlists *j)
{
    if (!j || j->stopped)
        return;
    j->stopped = true;
    uv_timer_stop(&j->timer);
    uv_close((uv_handle_t *)&j->timer, on_timer_closed);
}
