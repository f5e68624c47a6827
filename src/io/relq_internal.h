/* Private to relq (src/io/relq*.c): the relq's state, its items, and what the files share.
 * relq.c: lifetime, items, control; relq_pop.c: pops, claims, heartbeat; relq_janitor.c: the
 * janitor and the graceful stop; relq_complete.c: batched completion; relq_scripts.c: the Lua. */
#ifndef MUTT_IO_RELQ_INTERNAL_H
#define MUTT_IO_RELQ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/relq.h"
#include "mutt/redis.h"

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

/* The scripts (relq_scripts.c). */
extern const char relq_complete_batch_lua[];
extern const char relq_pop_batch_lua[];
extern const char relq_move_lua[];

/* relq.c */
void relq_free_all(struct mutt_relq *q);
bool relq_op_return(struct mutt_relq *q);
char *relq_join_key(const char *a, const char *b);
void relq_release_item(struct mutt_relq_item *it);
struct mutt_relq_item *relq_add_item(struct mutt_relq *q, const char *data, size_t len);
void relq_dispatch(struct mutt_relq *q);
void relq_drop_held(struct mutt_relq *q);

/* relq_pop.c */
void relq_pump(struct mutt_relq *q);
void relq_on_bconn_state(void *privdata, struct mutt_redis_conn *conn, bool connected);
void relq_on_hb_timer(uv_timer_t *t);

/* relq_janitor.c */
void relq_on_stop_timer(uv_timer_t *t);

/* relq_move_lua's KEYS: the byte counter is the optional fourth. */
static inline int relq_move_nkeys(const struct mutt_relq *q)
{
    return q->bytes_key ? 4 : 3;
}

#endif
