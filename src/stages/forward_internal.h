/* Private to the forward stage (forward.c: lifecycle, helpers, retry promotion and gauges;
 * forward_deliver.c: the per-alert flow up to the POST; forward_outcome.c: completion, retries,
 * DLQ; forward_probe.c: acting on the breaker's verdicts; forward_lease.c: rate-limit leases;
 * forward_breaker.c: the shared circuit breaker's view and verdicts). Not a public header: nothing outside
 * src/stages/forward*.c includes it. Loop thread only. */
#ifndef MUTT_FORWARD_INTERNAL_H
#define MUTT_FORWARD_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/breaker.h"
#include "mutt/ctx.h"
#include "mutt/forward_classify.h"
#include "mutt/lineage.h"
#include "mutt/ratelimit.h"
#include "mutt/redis.h"
#include "mutt/relq.h"
#include "mutt/stage_life.h"

struct mutt_counter;
struct mutt_gauge;
struct mutt_histogram;
struct mutt_http_client;
struct mutt_metrics;

enum fwd_status_label { FWD_ST_SUCCESS = 0, FWD_ST_DLQ, FWD_ST_ERROR, FWD_ST_COUNT_ };

/* Where this pod is in getting the breaker probed (HALF_OPEN lets one attempt through, W15). */
enum fwd_probe_state {
    FWD_PROBE_NONE = 0, /* not probing */
    FWD_PROBE_FETCHING, /* relq resumed to pop one alert to probe with */
    FWD_PROBE_DECIDING, /* the breaker script is asked whether we may probe */
    FWD_PROBE_SENDING,  /* our probe is in flight; its result decides */
};

/* One alert between relq handing it out and its completion. */
struct fwd_op {
    struct forward *fw;
    struct mutt_relq_item *item;
    json_t *alert;               /* parsed, D33 applied; NULL for an unparseable item */
    char *body;                  /* Moog payload, built once */
    size_t body_len;
    uint64_t start_ns;           /* pop time (uv_hrtime) */
    bool probe;                  /* this attempt is the breaker's probe */
    enum fwd_status_label label; /* what a successful completion counts */
    char *payload;               /* push payload (owned) */
    struct mutt_relq_push push;  /* kept for a resend after EFULL */
    size_t npush;
    struct fwd_op *wait_next;    /* waiting list / stalled list link */
    json_t *lin_attempt;         /* lineage (D63): the last attempt's details, until its step is built */
    char *lin_payload;           /* the lineage push's payload (owned) */
    struct mutt_relq_push lin_push; /* rides in the completion with `push` */
    size_t nlin;                 /* 1 when lin_push is set */
    char lin_key[MUTT_LINEAGE_KEY_MAX];
};

struct forward {
    struct mutt_ctx *ctx;
    struct mutt_stage_life life; /* STOPPED / STARTING / RUNNING / DRAINING, and the stop's done */
    bool timers_open;          /* the uv timers below are initialised and not closed */
    bool relq_stopped;         /* stop: relq returned the processing list */
    bool waking;               /* re-entrancy guard of fwd_wake() */
    struct mutt_relq *relq;
    struct mutt_http_client *http;

    /* static config (borrowed from cfg) */
    const char *source;        /* ALERT_QUEUE_NAME */
    const char *dlq;           /* MOOG_DLQ_NAME */
    const char *retry_key;     /* MOOG_RETRY_KEY */
    const char *rate_key;      /* MOOG_RATE_LIMIT_KEY */
    const char *url;           /* MOOG_WEBHOOK_URL */
    uint64_t timeout_ms;       /* MOOG_TIMEOUT */
    uint64_t retry_base_ms, retry_max_ms;
    char *auth;                /* "Authorization: Bearer <key>" (malloc'd, rebuilt on rotation) */
    size_t auth_key_len;

    int script_rate, script_promote, script_breaker;
    uint64_t rate_seq;         /* makes each rate-limit member unique */
    uint64_t rate_hold_until_ms; /* loop time: no rate checks before it (a denial said wait) */
    struct mutt_rate_lease lease; /* tokens taken from the shared limit, spent locally */
    bool lease_pending;        /* a lease call is out (at most one) */
    bool lease_want;           /* ... and it asks for tokens (else it only settles) */
    uint64_t lease_sent_ms;    /* when it was sent (lease clock): the lease's deadline counts from here */
    uint64_t lease_len_ms;     /* its spending deadline */

    /* alerts held (breaker or rate), FIFO; completions refused locally */
    struct fwd_op *wait_head, *wait_tail;
    size_t nwaiting;
    struct fwd_op *stalled;

    size_t busy;               /* ops alive */
    size_t http_inflight;
    size_t rpending;           /* stage-level Redis calls out (promote, gauges, breaker) */

    uv_timer_t promote_timer, gauge_timer, rate_timer, stall_timer, probe_timer, reap_timer;
    uv_timer_t lease_timer;    /* the lease's deadline: give back what it did not spend */

    /* breaker view (forward_breaker.c) */
    bool breaker_enabled;
    bool bknown;               /* read from Redis at least once */
    bool bpolling;
    enum mutt_breaker_mode bmode;
    int64_t bfailures;
    int64_t bopen_ms;          /* epoch ms (Redis clock) it last opened */
    enum fwd_probe_state probe_state;
    const char *bkeys[4];

    /* metrics */
    struct mutt_counter *m_requests;   /* family {status, reason} */
    struct mutt_counter *c_success;
    struct mutt_counter *m_processed[FWD_ST_COUNT_];
    struct mutt_counter *m_rate_hits, *m_promoted, *m_already_gone;
    struct mutt_histogram *m_latency, *m_processing;
    struct mutt_gauge *m_dlq_depth, *m_processing_depth;
    struct mutt_gauge *m_bstate, *m_bfailures;
    struct mutt_counter *m_bchanges;   /* family {name, from_state, to_state} */
};

/* forward_breaker.c: verdicts only; it calls nothing in forward*.c (forward_probe.c and
 * forward_deliver.c act on them). */

#define FWD_BREAKER_RECHECK_MS 1000u /* HALF_OPEN held by another pod / script failed: look again */

/* What to do with an alert about to be attempted. */
enum fwd_breaker_verdict {
    FWD_BREAKER_ADMIT = 0, /* go on (rate limit, then send) */
    FWD_BREAKER_HOLD,      /* the breaker holds: the alert waits */
    FWD_BREAKER_PROBE,     /* a probe is being fetched: ask the script with this alert */
};

/* What a breaker poll did. */
enum fwd_breaker_poll {
    FWD_BREAKER_POLL_NONE = 0, /* nothing sent (one is out, or Redis refused) */
    FWD_BREAKER_POLL_SENT,     /* an MGET is out: its callback must call fwd_breaker_take_poll_reply */
    FWD_BREAKER_POLL_KNOWN,    /* breaker disabled: the view just became known (re-evaluate the pause) */
};

int fwd_breaker_init(struct forward *fw);
int fwd_breaker_register_metrics(struct forward *fw, struct mutt_metrics *m);
/* True while alerts must not be attempted: enabled and not seen CLOSED. */
bool fwd_breaker_holds(const struct forward *fw);
/* The verdict for every alert before the rate limit (reads probe_state, changes nothing). */
enum fwd_breaker_verdict fwd_breaker_admit(const struct forward *fw);
/* Milliseconds until the stage should try to probe, or -1 when no probe is due (view unknown or
 * CLOSED, or fw->probe_state is not NONE). */
int64_t fwd_breaker_probe_delay_ms(const struct forward *fw, int64_t now_wall_ms);
/* Asks the script whether this pod may probe. 0 = cb runs once with the reply; <0 = not sent. */
int fwd_breaker_request_decide(struct forward *fw, mutt_redis_reply_cb *cb, void *priv);
/* Feeds one attempt's outcome to the shared breaker. 1 = skipped (a success while the view is
 * CLOSED with no failures: nothing would change, cb never runs); 0 = sent, cb runs once; <0 = not
 * sent. */
int fwd_breaker_request_record(struct forward *fw, enum mutt_delivery d, bool probe, mutt_redis_reply_cb *cb,
                               void *priv);
/* Applies a script reply {verdict, state, failures, open_time_ms, ...} to the view (logging and
 * counting transitions). Returns the verdict string ("PROBE", "ALLOW", "DENY", "" for record
 * calls), or NULL when reply is NULL or malformed (view unchanged). Borrows reply. */
const char *fwd_breaker_take_script_reply(struct forward *fw, const redisReply *reply);
/* Re-reads the shared state (gauges, transitions made by other pods); see enum fwd_breaker_poll. */
enum fwd_breaker_poll fwd_breaker_request_poll(struct forward *fw, mutt_redis_reply_cb *cb, void *priv);
/* Ends a poll: NULL reply (failed, or the stage stops) only clears the poll; a valid MGET reply
 * updates the view. True when the view was updated. Borrows reply. */
bool fwd_breaker_take_poll_reply(struct forward *fw, const redisReply *reply);
/* Writes the /health details line and returns true when the breaker degrades the stage. */
bool fwd_breaker_health(struct forward *fw, char *detail, size_t len);

/* forward.c and its parts (forward_deliver.c, forward_outcome.c, forward_probe.c,
 * forward_lease.c): what they share. */

#define DLQ_ORIGIN MUTT_REPLAY_ORIGIN_ALERT /* D5: a moog DLQ item replays to the alert queue */
#define HTTP_CLIENT_CAP 10000u      /* = moog_max_inflight's schema max; relq caps the real number */
#define PROMOTE_INTERVAL_MS 200u    /* retry-set promotion period (any pod) */
#define PROMOTE_BATCH 1000          /* members moved per promotion call */
#define GAUGE_INTERVAL_MS 1000u     /* depth gauges + breaker view refresh */
#define STALL_RETRY_MS 20u          /* resend of a completion refused locally (EFULL/ENOMEM) */

/* forward.c */
int64_t fwd_wall_ms(void);
const char *fwd_alert_str(const json_t *a, const char *key);
const char *fwd_op_cid(const struct fwd_op *op);
void fwd_op_finish(struct fwd_op *op);
void fwd_op_abandon(struct fwd_op *op);
struct mutt_counter *fwd_requests_child(struct forward *fw, const char *status, const char *reason);
void fwd_maybe_stopped(struct forward *fw);

/* forward_deliver.c */
void fwd_wait_push(struct fwd_op *op, bool front);
struct fwd_op *fwd_wait_pop(struct forward *fw);
bool fwd_rate_held(const struct forward *fw);
void fwd_update_pause(struct forward *fw);
void fwd_wake(struct forward *fw);
void fwd_on_rate_timer(uv_timer_t *t);
void fwd_admit(struct fwd_op *op);
void fwd_on_item(void *priv, struct mutt_relq_item *item, const char *data, size_t len);
void fwd_attempt(struct fwd_op *op);

/* forward_outcome.c */
void fwd_complete(struct fwd_op *op);
void fwd_set_lineage(struct fwd_op *op, enum mutt_lineage_step code, json_t *extra);
void fwd_to_dlq(struct fwd_op *op, const char *reason);
void fwd_to_dlq_raw(struct fwd_op *op, const char *data, size_t len, const char *reason);
int64_t fwd_retry_count(const struct fwd_op *op);
void fwd_to_retry(struct fwd_op *op, const char *reason, int64_t retry_after_s);

/* forward_probe.c */
void fwd_arm_probe(struct forward *fw);
void fwd_decide_probe(struct forward *fw, struct fwd_op *op);
void fwd_probe_abandoned(struct forward *fw);
void fwd_record_outcome(struct forward *fw, enum mutt_delivery d, bool probe);
void fwd_poll_breaker(struct forward *fw);

/* forward_lease.c */
uint64_t fwd_lease_clock(void);
void fwd_lease_request(struct forward *fw, bool want_tokens);

#endif
