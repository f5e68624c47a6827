/* Dynamic-config runtime: the in-memory cache of every schema key, fed by one MGET on each
 * (re)connect and every 5 s, and by a GET of a key as soon as its name arrives on
 * mutt:config:updates. Writes go through one Lua call (SET/DEL + PUBLISH). Reads are plain
 * memory reads. Loop thread only; borrows the shared Redis manager. */
#include "mutt/dynconfig.h"

#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/redis.h"

#define MAX_WATCHERS 64

/* One schema key's state. The effective value is redis_value when set, else fallback. */
struct entry {
    struct mutt_dynconfig *owner;         /* back-pointer: an entry is the privdata of its GET */
    const struct mutt_dynconfig_def *def; /* schema row, same index as the entry */
    char *key;                            /* "mutt:config:<name>" */
    char *legacy_key;                     /* "mutt:config:<v2.3 name>", NULL when none (issue 17) */
    bool legacy_logged;                   /* the deprecation line was written for the current value */
    char *redis_value;                    /* canonical value from Redis; NULL = none or refused */
    char *fallback;                       /* env/file/default, fixed at create */
    enum mutt_dyn_source fallback_src;
    char *refused_value;                  /* last invalid Redis value, so each is logged once */
    int64_t as_int;                       /* effective value parsed once per change */
    double as_double;
    bool as_bool;
};

struct watcher {
    const struct mutt_dynconfig_def *def; /* NULL = every key */
    mutt_dynconfig_watch_cb *cb;          /* NULL = free slot */
    void *privdata;
};

struct mutt_dynconfig {
    uv_loop_t *loop;
    struct mutt_redis *redis; /* borrowed; NULL = fallbacks only */
    const struct mutt_config *cfg; /* borrowed; source of the env/file fallbacks; may be NULL */
    struct entry *entries;
    size_t n_entries;
    size_t n_keys;             /* Redis keys of one full read: entries plus their legacy names */
    struct watcher watchers[MAX_WATCHERS];
    size_t n_watchers;         /* slots in use, some may have cb == NULL after unwatch */
    uv_timer_t refresh_timer;  /* heals missed pub/sub messages */
    uint64_t refresh_ms;       /* period of refresh_timer; 0 = off */
    unsigned refs;             /* open timer + accepted Redis commands: free only at 0 */
    bool started;
    bool stopped;
    bool destroyed;            /* destroy was called; free once refs drops to 0 */
    bool loaded;               /* one full MGET has been applied */
    bool refresh_inflight;     /* an MGET from the timer is pending: don't pile them up */
};

/* Atomic write + notice: one round trip, and no MULTI left open on the shared pipelined
 * connection if a later command of a MULTI/EXEC sequence were refused locally (EFULL). */
static const char set_script[] =
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "if ARGV[2] == '1' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end "
    "return 1";
static const char del_script[] =
    "redis.call('DEL', KEYS[1]) "
    "if ARGV[1] == '1' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end "
    "return 1";

/* ---- lifetime ----------------------------------------------------------------------------- */

static void free_now(struct mutt_dynconfig *d)
{
    if (d->entries) {
        for (size_t i = 0; i < d->n_entries; i++) {
            free(d->entries[i].key);
            free(d->entries[i].legacy_key);
            free(d->entries[i].redis_value);
            free(d->entries[i].fallback);
            free(d->entries[i].refused_value);
        }
        free(d->entries);
    }
    free(d);
}

/* Frees a destroyed instance once nothing can call back into it any more. */
static void release(struct mutt_dynconfig *d)
{
    if (d->refs > 0)
        d->refs--;
    if (d->destroyed && d->refs == 0)
        free_now(d);
}

static void on_timer_closed(uv_handle_t *h)
{
    release(h->data);
}

/* ---- effective values --------------------------------------------------------------------- */

static const char *effective(const struct entry *e)
{
    return e->redis_value ? e->redis_value : e->fallback;
}

static void parse_effective(struct entry *e)
{
    const char *v = effective(e);
    e->as_double = strtod(v, NULL);
    e->as_int = e->def->type == MUTT_DYN_DOUBLE ? (int64_t)e->as_double : strtoll(v, NULL, 10);
    e->as_bool = strcmp(v, "true") == 0;
    if (e->def->type == MUTT_DYN_BOOL) {
        e->as_int = e->as_bool;
        e->as_double = e->as_bool;
    }
}

static void notify(struct mutt_dynconfig *d, struct entry *e, const char *old_value, const char *new_value)
{
    /* Watchers may watch/unwatch while we iterate: index and bound are re-read every round. */
    for (size_t i = 0; i < d->n_watchers && !d->destroyed; i++) {
        struct watcher w = d->watchers[i];
        if (w.cb && (!w.def || w.def == e->def))
            w.cb(w.privdata, e->def->name, old_value, new_value);
    }
}

/* Replaces the Redis value (NULL = Redis holds none) and tells watchers when the effective
 * value changed. The caller holds a reference, so a watcher may destroy d. */
static void set_redis_value(struct mutt_dynconfig *d, struct entry *e, const char *value)
{
    if (value == e->redis_value || (value && e->redis_value && strcmp(value, e->redis_value) == 0))
        return;
    char *copy = NULL;
    if (value) {
        copy = strdup(value);
        if (!copy)
            return; /* keep the old value; the next refresh retries */
    }
    char *old_redis = e->redis_value;
    const char *old_value = effective(e);
    e->redis_value = copy;
    parse_effective(e);
    /* old_value stays valid (old_redis is freed only after the watchers ran). */
    if (strcmp(old_value, effective(e)) != 0)
        notify(d, e, old_value, effective(e));
    free(old_redis);
}

/* Applies what Redis holds for e: a string (validated), nil, or anything else (ignored). */
static void apply_reply(struct mutt_dynconfig *d, struct entry *e, const redisReply *r)
{
    if (r->type == REDIS_REPLY_NIL) {
        free(e->refused_value);
        e->refused_value = NULL; /* the same bad value written again is worth a new warning */
        set_redis_value(d, e, NULL);
        return;
    }
    if (r->type != REDIS_REPLY_STRING)
        return;
    char raw[MUTT_DYNCONFIG_MAX_VALUE + 1];
    char norm[MUTT_DYNCONFIG_MAX_VALUE + 1];
    char err[256];
    int rc = MUTT_EINVAL;
    if (r->len <= MUTT_DYNCONFIG_MAX_VALUE && !memchr(r->str, '\0', r->len)) {
        memcpy(raw, r->str, r->len);
        raw[r->len] = '\0';
        rc = mutt_dynconfig_normalize(e->def, raw, norm, sizeof(norm), err, sizeof(err));
    } else {
        snprintf(raw, sizeof(raw), "%.64s", r->len ? "(binary or oversized value)" : "");
        snprintf(err, sizeof(err), "%s: value too long or not text", e->def->name);
    }
    if (rc == 0) {
        set_redis_value(d, e, norm);
        return;
    }
    /* A bad value in Redis must not take effect (W41 also covers writes made with redis-cli). */
    if (!e->refused_value || strcmp(e->refused_value, raw) != 0) {
        mutt_log_warn("dynconfig", "ignoring %s%s from Redis (%s); using %s value %s", MUTT_DYNCONFIG_PREFIX,
                      e->def->name, err, mutt_dynconfig_source_name(e->fallback_src), e->fallback);
        free(e->refused_value);
        e->refused_value = strdup(raw);
    }
    set_redis_value(d, e, NULL);
}

/* ---- Redis reads -------------------------------------------------------------------------- */

/* The canonical key wins; a legacy key (v2.3 name) counts only when the canonical one is unset
 * (D62). The deprecation is logged once per legacy value taken. */
static void apply_pick(struct mutt_dynconfig *d, struct entry *e, const redisReply *canon, const redisReply *legacy)
{
    if (canon->type == REDIS_REPLY_NIL && legacy && legacy->type == REDIS_REPLY_STRING) {
        if (!e->legacy_logged)
            mutt_log_warn("dynconfig", "deprecated key %s is in use; write %s instead (the legacy name is an alias)",
                          e->legacy_key, e->def->name);
        e->legacy_logged = true;
        apply_reply(d, e, legacy);
        return;
    }
    e->legacy_logged = false;
    apply_reply(d, e, canon);
}

static void on_mget_reply(void *privdata, redisReply *reply, int status)
{
    struct mutt_dynconfig *d = privdata;
    if (status == 0 && !d->destroyed && reply->type == REDIS_REPLY_ARRAY && reply->elements == d->n_keys) {
        d->refs++; /* watchers may destroy d: keep it until the loop below is done */
        size_t j = d->n_entries; /* legacy values follow the canonical ones, in entry order */
        for (size_t i = 0; i < d->n_entries && !d->destroyed; i++) {
            struct entry *e = &d->entries[i];
            apply_pick(d, e, reply->element[i], e->legacy_key ? reply->element[j++] : NULL);
        }
        d->loaded = true;
        d->refs--;
    } else if (status != 0 && status != MUTT_ECANCELED && status != MUTT_EDISCONNECTED) {
        mutt_log_debug("dynconfig", "reload failed: %s", mutt_strerror(status));
    }
    d->refresh_inflight = false;
    release(d);
}

/* One MGET of every key. Skipped when Redis is down: the next (re)connect reloads anyway. */
static void reload_all(struct mutt_dynconfig *d)
{
    if (!d->redis || d->destroyed)
        return;
    size_t argc = d->n_keys + 1;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    if (argv && lens) {
        argv[0] = "MGET";
        lens[0] = 4;
        size_t j = d->n_entries + 1;
        for (size_t i = 0; i < d->n_entries; i++) {
            argv[i + 1] = d->entries[i].key;
            lens[i + 1] = strlen(d->entries[i].key);
            if (d->entries[i].legacy_key) {
                argv[j] = d->entries[i].legacy_key;
                lens[j++] = strlen(d->entries[i].legacy_key);
            }
        }
        int rc = mutt_redis_command(mutt_redis_cmd(d->redis), on_mget_reply, d, (int)argc, argv, lens);
        if (rc == 0) {
            d->refs++;
            d->refresh_inflight = true;
        }
    }
    free(argv);
    free(lens);
}

static void on_refresh_timer(uv_timer_t *t)
{
    struct mutt_dynconfig *d = t->data;
    if (!d->stopped && !d->refresh_inflight)
        reload_all(d);
}

/* Both the command and the pub/sub connection: after either comes back, changes published
 * while it was away were missed, so read everything again at once rather than within 5 s. */
static void on_conn_state(void *privdata, struct mutt_redis_conn *conn, bool connected)
{
    struct mutt_dynconfig *d = privdata;
    /* Not gated on refresh_inflight: an MGET sent on the dead connection may not have been
     * failed yet. */
    if (connected && d->started && !d->stopped)
        reload_all(d);
}

static void on_get_reply(void *privdata, redisReply *reply, int status)
{
    struct entry *e = privdata;
    struct mutt_dynconfig *d = e->owner;
    if (status == 0 && !d->destroyed && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1) {
        d->refs++;
        apply_pick(d, e, reply->element[0], reply->elements > 1 ? reply->element[1] : NULL);
        d->refs--;
    }
    release(d);
}

static void on_update_message(void *privdata, const char *channel, const char *message, size_t len)
{
    struct mutt_dynconfig *d = privdata;
    if (d->stopped || d->destroyed || !message || len == 0 || len > 128)
        return;
    char name[129];
    memcpy(name, message, len);
    name[len] = '\0';
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(name, NULL);
    if (!def)
        return; /* not ours (another tool's key, or garbage): nothing to refresh */
    struct entry *e = &d->entries[def - mutt_dynconfig_def_at(0)];
    const char *argv[3] = { "MGET", e->key, e->legacy_key };
    size_t lens[3] = { 4, strlen(e->key), e->legacy_key ? strlen(e->legacy_key) : 0 };
    if (mutt_redis_command(mutt_redis_cmd(d->redis), on_get_reply, e, e->legacy_key ? 3 : 2, argv, lens) == 0)
        d->refs++;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

struct mutt_dynconfig *mutt_dynconfig_create(uv_loop_t *loop, struct mutt_redis *redis,
                                             const struct mutt_config *cfg)
{
    struct mutt_dynconfig *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->loop = loop;
    d->redis = redis;
    d->cfg = cfg;
    d->n_entries = mutt_dynconfig_count();
    d->n_keys = d->n_entries;
    d->entries = calloc(d->n_entries, sizeof(*d->entries));
    if (!d->entries)
        goto fail;
    for (size_t i = 0; i < d->n_entries; i++) {
        struct entry *e = &d->entries[i];
        e->owner = d;
        e->def = mutt_dynconfig_def_at(i);
        size_t klen = strlen(MUTT_DYNCONFIG_PREFIX) + strlen(e->def->name) + 1;
        e->key = malloc(klen);
        char buf[MUTT_DYNCONFIG_MAX_VALUE + 1];
        char err[256];
        if (mutt_dynconfig_fallback(e->def, cfg, buf, sizeof(buf), &e->fallback_src, err, sizeof(err)) < 0)
            mutt_log_warn("dynconfig", "static value refused (%s); using the default %s", err, buf);
        e->fallback = strdup(buf);
        if (!e->key || !e->fallback)
            goto fail;
        snprintf(e->key, klen, "%s%s", MUTT_DYNCONFIG_PREFIX, e->def->name);
        const char *legacy = mutt_dynconfig_legacy_name(e->def->id);
        if (legacy) {
            size_t llen = strlen(MUTT_DYNCONFIG_PREFIX) + strlen(legacy) + 1;
            e->legacy_key = malloc(llen);
            if (!e->legacy_key)
                goto fail;
            snprintf(e->legacy_key, llen, "%s%s", MUTT_DYNCONFIG_PREFIX, legacy);
            d->n_keys++;
        }
        parse_effective(e);
    }
    if (uv_timer_init(loop, &d->refresh_timer) != 0)
        goto fail;
    d->refresh_timer.data = d;
    d->refresh_ms = MUTT_DYNCONFIG_REFRESH_MS;
    d->refs = 1; /* the timer handle, released by its close callback */
    return d;
fail:
    free_now(d);
    return NULL;
}

int mutt_dynconfig_start(struct mutt_dynconfig *d)
{
    if (d->started || d->destroyed)
        return MUTT_ESTATE;
    d->started = true;
    if (!d->redis)
        return 0;
    int rc = mutt_redis_subscribe(d->redis, MUTT_DYNCONFIG_CHANNEL, on_update_message, d);
    if (rc < 0)
        return rc;
    rc = mutt_redis_conn_on_state(mutt_redis_cmd(d->redis), on_conn_state, d);
    if (rc < 0)
        return rc;
    struct mutt_redis_conn *pubsub = mutt_redis_pubsub(d->redis);
    if (pubsub) {
        rc = mutt_redis_conn_on_state(pubsub, on_conn_state, d);
        if (rc < 0)
            return rc;
    }
    if (d->refresh_ms)
        uv_timer_start(&d->refresh_timer, on_refresh_timer, d->refresh_ms, d->refresh_ms);
    if (mutt_redis_connected(d->redis))
        reload_all(d);
    return 0;
}

void mutt_dynconfig_stop(struct mutt_dynconfig *d)
{
    if (!d)
        return;
    d->stopped = true;
    uv_timer_stop(&d->refresh_timer);
}

void mutt_dynconfig_destroy(struct mutt_dynconfig *d)
{
    if (!d || d->destroyed)
        return;
    d->destroyed = true;
    d->stopped = true;
    uv_timer_stop(&d->refresh_timer);
    uv_close((uv_handle_t *)&d->refresh_timer, on_timer_closed);
}

void mutt_dynconfig_set_refresh_interval(struct mutt_dynconfig *d, uint64_t interval_ms)
{
    d->refresh_ms = interval_ms;
    if (!d->started || d->stopped || !d->redis)
        return;
    uv_timer_stop(&d->refresh_timer);
    if (interval_ms)
        uv_timer_start(&d->refresh_timer, on_refresh_timer, interval_ms, interval_ms);
}

void mutt_dynconfig_reload_fallbacks(struct mutt_dynconfig *d)
{
    d->refs++; /* a watcher may destroy d */
    for (size_t i = 0; i < d->n_entries && !d->destroyed; i++) {
        struct entry *e = &d->entries[i];
        char buf[MUTT_DYNCONFIG_MAX_VALUE + 1];
        char err[256];
        enum mutt_dyn_source src;
        if (mutt_dynconfig_fallback(e->def, d->cfg, buf, sizeof(buf), &src, err, sizeof(err)) < 0)
            mutt_log_warn("dynconfig", "static value refused (%s); using the default %s", err, buf);
        e->fallback_src = src;
        if (strcmp(buf, e->fallback) == 0)
            continue;
        char *copy = strdup(buf);
        if (!copy)
            continue;
        char *old_fallback = e->fallback;
        e->fallback = copy;
        parse_effective(e);
        if (!e->redis_value)
            notify(d, e, old_fallback, e->fallback);
        free(old_fallback);
    }
    release(d);
}

bool mutt_dynconfig_loaded(const struct mutt_dynconfig *d)
{
    return d->loaded;
}

/* ---- reads -------------------------------------------------------------------------------- */

/* Ids come from the enum, so one outside the table means a cast gone wrong: say it once. */
static const struct entry *entry_of(const struct mutt_dynconfig *d, enum mutt_dyn_key key)
{
    static bool warned;
    if ((unsigned)key < d->n_entries)
        return &d->entries[key];
    if (!warned) {
        warned = true;
        mutt_log_error("dynconfig", "read of dynamic key id %d outside the schema (0..%zu)", (int)key,
                       d->n_entries - 1);
    }
    return NULL;
}

int64_t mutt_dynconfig_int(const struct mutt_dynconfig *d, enum mutt_dyn_key key)
{
    const struct entry *e = entry_of(d, key);
    return e ? e->as_int : 0;
}

double mutt_dynconfig_double(const struct mutt_dynconfig *d, enum mutt_dyn_key key)
{
    const struct entry *e = entry_of(d, key);
    return e ? e->as_double : 0.0;
}

bool mutt_dynconfig_bool(const struct mutt_dynconfig *d, enum mutt_dyn_key key)
{
    const struct entry *e = entry_of(d, key);
    return e ? e->as_bool : false;
}

const char *mutt_dynconfig_str(const struct mutt_dynconfig *d, enum mutt_dyn_key key)
{
    const struct entry *e = entry_of(d, key);
    return e ? effective(e) : "";
}

enum mutt_dyn_source mutt_dynconfig_source(const struct mutt_dynconfig *d, enum mutt_dyn_key key)
{
    const struct entry *e = entry_of(d, key);
    if (!e)
        return MUTT_DYN_SRC_DEFAULT;
    return e->redis_value ? MUTT_DYN_SRC_REDIS : e->fallback_src;
}

int mutt_dynconfig_str_by_name(const struct mutt_dynconfig *d, const char *name, const char **value)
{
    static bool warned;
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(name, NULL);
    if (!def) {
        if (value)
            *value = NULL;
        if (!warned) {
            warned = true;
            mutt_log_warn("dynconfig", "read of unknown dynamic key %.64s (further ones are not logged)",
                          name ? name : "(null)");
        }
        return MUTT_ENOTFOUND;
    }
    if (value)
        *value = effective(&d->entries[def->id]);
    return 0;
}

/* ---- watchers ----------------------------------------------------------------------------- */

int mutt_dynconfig_watch(struct mutt_dynconfig *d, enum mutt_dyn_key key, mutt_dynconfig_watch_cb *cb,
                         void *privdata)
{
    const struct mutt_dynconfig_def *def = NULL;
    if (!cb)
        return MUTT_EINVAL;
    if ((unsigned)key > MUTT_DYN_ALL_KEYS)
        return MUTT_ENOTFOUND;
    if (key != MUTT_DYN_ALL_KEYS)
        def = mutt_dynconfig_def_at((size_t)key);
    size_t slot = d->n_watchers;
    for (size_t i = 0; i < d->n_watchers; i++) {
        if (!d->watchers[i].cb) {
            slot = i;
            break;
        }
    }
    if (slot == MAX_WATCHERS)
        return MUTT_EFULL;
    d->watchers[slot] = (struct watcher){ .def = def, .cb = cb, .privdata = privdata };
    if (slot == d->n_watchers)
        d->n_watchers++;
    return 0;
}

void mutt_dynconfig_unwatch(struct mutt_dynconfig *d, mutt_dynconfig_watch_cb *cb, void *privdata)
{
    /* Slots are cleared, not compacted, so a dispatch in progress keeps its indexes. */
    for (size_t i = 0; i < d->n_watchers; i++)
        if (d->watchers[i].cb == cb && d->watchers[i].privdata == privdata)
            d->watchers[i].cb = NULL;
}

/* ---- writes ------------------------------------------------------------------------------- */

struct write_op {
    struct entry *entry;
    char *value; /* canonical value written; NULL = delete */
    mutt_dynconfig_done_cb *done;
    void *privdata;
};

static void on_write_reply(void *privdata, redisReply *reply, int status)
{
    struct write_op *op = privdata;
    struct mutt_dynconfig *d = op->entry->owner;
    d->refs++; /* done or a watcher may destroy d */
    if (status == 0 && !d->destroyed)
        set_redis_value(d, op->entry, op->value);
    if (op->done)
        op->done(op->privdata, status);
    free(op->value);
    free(op);
    d->refs--;
    release(d);
}

static int write_generic(struct mutt_dynconfig *d, const struct mutt_dynconfig_def *def, const char *value,
                         bool publish, mutt_dynconfig_done_cb *done, void *privdata)
{
    if (!d->redis || d->destroyed)
        return MUTT_EDISCONNECTED;
    struct write_op *op = calloc(1, sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->entry = &d->entries[def - mutt_dynconfig_def_at(0)];
    op->done = done;
    op->privdata = privdata;
    if (value) {
        op->value = strdup(value);
        if (!op->value) {
            free(op);
            return MUTT_ENOMEM;
        }
    }
    const char *flag = publish ? "1" : "0";
    const char *argv[8];
    int argc = 0;
    argv[argc++] = "EVAL";
    argv[argc++] = value ? set_script : del_script;
    argv[argc++] = "1";
    argv[argc++] = op->entry->key;
    if (value)
        argv[argc++] = value;
    argv[argc++] = flag;
    argv[argc++] = MUTT_DYNCONFIG_CHANNEL;
    argv[argc++] = def->name;
    size_t lens[8];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    int rc = mutt_redis_command(mutt_redis_cmd(d->redis), on_write_reply, op, argc, argv, lens);
    if (rc < 0) {
        free(op->value);
        free(op);
        return rc;
    }
    d->refs++;
    return 0;
}

int mutt_dynconfig_set(struct mutt_dynconfig *d, const char *key, const char *value, bool publish,
                       mutt_dynconfig_done_cb *done, void *privdata)
{
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(key, NULL);
    if (!def)
        return MUTT_ENOTFOUND;
    char norm[MUTT_DYNCONFIG_MAX_VALUE + 1];
    int rc = mutt_dynconfig_normalize(def, value, norm, sizeof(norm), NULL, 0);
    if (rc < 0)
        return rc;
    return write_generic(d, def, norm, publish, done, privdata);
}

int mutt_dynconfig_delete(struct mutt_dynconfig *d, const char *key, bool publish, mutt_dynconfig_done_cb *done,
                          void *privdata)
{
    const struct mutt_dynconfig_def *def = mutt_dynconfig_def_resolve(key, NULL);
    if (!def)
        return MUTT_ENOTFOUND;
    return write_generic(d, def, NULL, publish, done, privdata);
}
