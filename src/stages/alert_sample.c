/* The dry-run sample's writer (issue 16, D62): copies of the events the alert stage matches are
 * gathered during one loop turn (relq hands a popped batch out in one turn) and pushed with ONE
 * script call (LPUSH + LTRIM to sample_events) on the next, fire and forget: the sample is a
 * convenience, never data, so a refused or lost push is simply a gap in it. Loop thread only. */
#include "alert_internal.h"

#include <stdlib.h>
#include <string.h>

#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/keys.h"
#include "mutt/redis.h"
#include "mutt/redis_scripts.h"

#define SAMPLE_BUF_MAX MUTT_SCRIPT_SAMPLE_PUSH_MAX_ARGS /* events per call; a bigger turn sends again */

struct alert_sample {
    struct mutt_redis *redis;
    const struct mutt_dynconfig *dyn;
    int script;
    uv_timer_t flush_timer;
    char *items[SAMPLE_BUF_MAX]; /* owned copies */
    size_t lens[SAMPLE_BUF_MAX];
    size_t n;
};

static void drop_items(struct alert_sample *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i]);
    s->n = 0;
}

static void flush(struct alert_sample *s)
{
    if (s->n == 0)
        return;
    int64_t cap = mutt_dynconfig_int(s->dyn, MUTT_DYN_SAMPLE_EVENTS);
    if (cap > 0 && mutt_redis_connected(s->redis)) {
        char capbuf[24];
        snprintf(capbuf, sizeof capbuf, "%lld", (long long)cap);
        const char *args[SAMPLE_BUF_MAX + 1];
        size_t lens[SAMPLE_BUF_MAX + 1];
        args[0] = capbuf;
        lens[0] = strlen(capbuf);
        for (size_t i = 0; i < s->n; i++) {
            args[i + 1] = s->items[i];
            lens[i + 1] = s->lens[i];
        }
        const char *keys[] = {MUTT_KEY_SAMPLE_EVENTS};
        size_t klens[] = {strlen(MUTT_KEY_SAMPLE_EVENTS)};
        /* arguments are copied into the command at once; a full connection is a gap, not a wait */
        (void)mutt_redis_evalsha(mutt_redis_cmd(s->redis), s->script, 1, keys, klens, (int)s->n + 1, args, lens,
                                 NULL, NULL);
    }
    drop_items(s);
}

static void on_flush_timer(uv_timer_t *t)
{
    flush(t->data);
}

struct alert_sample *alert_sample_create(uv_loop_t *loop, struct mutt_redis *r, const struct mutt_dynconfig *dyn)
{
    struct alert_sample *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->redis = r;
    s->dyn = dyn;
    s->script = mutt_redis_script_register(r, "sample_push", mutt_script_sample_push_lua);
    if (s->script < 0) {
        free(s);
        return NULL;
    }
    uv_timer_init(loop, &s->flush_timer);
    s->flush_timer.data = s;
    return s;
}

void alert_sample_add(struct alert_sample *s, const char *data, size_t len)
{
    if (!s || mutt_dynconfig_int(s->dyn, MUTT_DYN_SAMPLE_EVENTS) <= 0)
        return;
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return;
    memcpy(copy, data, len);
    s->items[s->n] = copy;
    s->lens[s->n++] = len;
    if (s->n == SAMPLE_BUF_MAX)
        flush(s);
    else if (!uv_is_active((uv_handle_t *)&s->flush_timer))
        uv_timer_start(&s->flush_timer, on_flush_timer, 0, 0); /* after this turn's batch */
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void alert_sample_destroy(struct alert_sample *s)
{
    if (!s)
        return;
    drop_items(s);
    uv_close((uv_handle_t *)&s->flush_timer, on_closed);
}
