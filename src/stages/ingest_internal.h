/* Private to the ingest stage (src/stages/ingest*.c). ingest.c: the stage, its metrics and the
 * helpers shared by the others; ingest_http.c: the POST handler; ingest_group.c: the group
 * commit; ingest_intake.c: the listeners' entry; ingest_call.c: the script and its layout. */
#ifndef MUTT_STAGES_INGEST_INTERNAL_H
#define MUTT_STAGES_INGEST_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <hiredis/hiredis.h>

#include "mutt/event.h"
#include "mutt/event_fast.h"
#include "mutt/http.h"
#include "mutt/ingest.h"
#include "mutt/ingest_intake.h"
#include "mutt/metrics.h"
#include "mutt/redis.h"
#include "mutt/stage_life.h"

#define QUEUE_FULL_RETRY_AFTER_S 5  /* a full queue drains at the alerter's pace: don't hammer it */
#define REDIS_DOWN_RETRY_AFTER_S 1  /* reconnects are retried every 100 ms .. 5 s */
#define OVERLOADED_RETRY_AFTER_S 1  /* in-flight bytes drain within INGEST_TIMEOUT_MS */

/* One group never grows past these (a new request that would take it over sends the group
 * first): the script runs alone on Redis, so a group must not hold it much longer than one
 * MAX_BATCH_EVENTS batch did before groups (~2,000 events, ~1 MiB: a few ms), and Redis copies
 * every argument. A single request larger than the limits still goes, alone. */
#define GROUP_MAX_REQUESTS 256
#define GROUP_MAX_EVENTS 2000
#define GROUP_MAX_BYTES ((size_t)1 << 20)
/* Groups are sent at most once per this (mutt_ingest_pace_wait_ms): at 5,000 single-event
 * requests/s a loop turn holds ~1 request, so without pacing every request paid the script's
 * fixed commands (LLEN, byte counter, LPUSH, 7 counter commands) alone, and the alert stage then
 * popped and completed them one by one too. 1 ms gathers ~5 such requests into one call; below
 * 1,000 requests/s nothing waits. */
#define GROUP_PACE_NS 1000000ull

/* Values of the `reason` label of mutt_ingest_requests_total (python-original §12 plus the
 * outcomes the original could not produce). */
enum reason { REASON_OK = 0, REASON_AUTH, REASON_MEDIA, REASON_SIZE, REASON_JSON, REASON_VALIDATION, REASON_RATE, REASON_FULL, REASON_REDIS, REASON_SHUTDOWN, REASON_INFLIGHT, REASON_NOT_REPLICATED, REASON_COUNT_ };

/* finish_op's verdict for a pushed request whose WAIT confirmed fewer than INGEST_MIN_REPLICAS
 * replicas (D37): its events are queued on the primary only, so they are in doubt. Not a
 * script code (those are 0..3). */
#define CODE_NOT_REPLICATED 100

struct ingest {
    struct mutt_ctx *ctx;
    struct mutt_stage_life life; /* RUNNING once the routes are up; DRAINING; the stop's done */
    int script_id;
    struct mutt_redis_conn *conn; /* D49: ingest's own connection (pushes never wait behind relq,
                                     heartbeats or the web stage on the shared one) */
    uv_check_t flush_check;    /* sends the group once the loop turn's I/O has been read */
    uv_prepare_t flush_prepare; /* ...or before the loop would block, for a request that came in
                                   a timer or pending callback (the check handle alone would
                                   then wait for the next I/O) */
    bool check_ready;          /* both handles (and pace_timer) initialised (closed again at stop) */
    uv_timer_t pace_timer;     /* sends a group held back by GROUP_PACE_NS */
    uint64_t last_send_ns;     /* uv_hrtime of the last group sent (0: none yet) */
    size_t inflight;           /* requests waiting for their verdict (in the group or sent) */
    size_t inflight_bytes;     /* body bytes of those requests (INGEST_INFLIGHT_BYTES) */
    struct mutt_event_rules rules;
    int64_t last_depth;        /* queue depth seen by the last script reply */
    int64_t last_cap;          /* cap in force at that reply */
    bool last_bytes_full;      /* the last script reply refused for max_ingest_queue_bytes (D52) */

    struct mutt_counter *requests[REASON_COUNT_]; /* mutt_ingest_requests_total{status,reason} */
    struct mutt_counter *api_requests[REASON_COUNT_]; /* mutt_api_requests_total{version,endpoint,status} */
    struct mutt_counter *ev_accepted;        /* mutt_ingest_events_total{result="accepted"} */
    struct mutt_counter *ev_rejected;        /* {result="rejected"}: invalid events */
    struct mutt_counter *ev_refused;         /* {result="refused"}: valid, but 429/503 */
    struct mutt_counter *in_doubt;           /* events queued after their request got a 503 (D2) */
    struct mutt_counter *rate_hits;
    struct mutt_counter *reserved_stripped; /* D35: client `_` fields removed */
    struct mutt_counter *calls;              /* script calls sent: one per group (D50) */
    struct mutt_counter *not_replicated;     /* requests answered 503 not_replicated (D37) */
    int64_t min_replicas;      /* INGEST_MIN_REPLICAS: 0 = no WAIT */
    char wait_n[24], wait_ms[24]; /* WAIT's arguments, written at start */
    long long last_replicas;   /* replicas the last WAIT confirmed (-1: none answered yet) */
    struct mutt_gauge *depth;
    struct mutt_gauge *inflight_bytes_g;     /* mutt_ingest_inflight_bytes */
    struct mutt_histogram *latency;

    /* The group being gathered (D50), reused after each send: mutt_redis_evalsha copies its
     * arguments at once. */
    struct ingest_op **gops; /* its requests, in arrival order */
    size_t gnops, gops_cap;
    size_t gnev;          /* events of the group: entries used in offs/lens */
    size_t gused;         /* bytes used in buf */
    char *buf;            /* serialised events of the group, back to back */
    size_t buf_cap;
    size_t *offs;         /* per accepted event: offset and length in buf */
    size_t *lens;
    const char **argv;    /* fixed ARGV, R, per-request counts, then the events */
    size_t *argl;
    size_t arr_cap;       /* entries in offs/lens/argv/argl */
    char *nums;           /* the decimal strings of R and the per-request counts */
    size_t nums_cap;
    struct mutt_event_fast fast; /* bodies that need no jansson tree (event_fast.h) */
    char *lin_value;      /* lineage (D63): the "accepted" step's details; NULL = LINEAGE_ENABLED off */
    size_t lin_value_len;
    char lin_ttl[24];     /* LINEAGE_TTL_SECONDS */
};

extern struct ingest g_ingest;

/* One request's verdict from the script, kept until the group's WAIT answers. */
struct ingest_verdict {
    long long code, depth, extra, held;
};

/* A sent group: the reply answers ops[0..nops) in order. With INGEST_MIN_REPLICAS a WAIT
 * follows the script call on the same connection (D37, D49): the script's verdicts are kept in
 * `v` until it answers, and only then is any request answered. */
struct ingest_flight {
    size_t nops;
    bool waiting;      /* a WAIT was sent after the script call and has not answered */
    bool have_reply;   /* the script's reply came (v, status, why hold it) */
    bool unconfirmed;  /* the WAIT could not be sent: pushed requests are not replicated */
    bool wait_early;   /* the WAIT answered before the script (an EVALSHA re-sent as EVAL after
                          NOSCRIPT goes out behind it): it did not cover the push */
    int status;        /* the script call's status */
    char *why;         /* its error text (owned), or NULL */
    struct ingest_verdict *v; /* nops entries, only when waiting */
    struct ingest_op *ops[];
};

/* One request waiting for its verdict (in the group, then in a sent call). The request is held
 * until the reply (or the cancel) comes back. */
struct ingest_op {
    struct mutt_http_req *req; /* NULL for a listener's submission (ingest_intake.h) */
    mutt_ingest_intake_cb *icb; /* ...which is answered here instead; read only when req is NULL */
    void *ipriv;
    uint64_t start_ns;
    size_t body_bytes;   /* counted in ing->inflight_bytes while the call is out */
    size_t accepted;     /* valid events: its share of the group's events */
    size_t rejected;
    size_t rejected_len; /* bytes of `rejected_json` (a JSON array), 0 when none was rejected */
    char rejected_json[];
};

/* ingest.c */
int64_t ingest_wall_ms(void);
void ingest_observe_latency(struct ingest *ing, uint64_t start_ns);
void ingest_record_slo(struct ingest *ing, int status, uint64_t start_ns);
void ingest_count_request(struct ingest *ing, enum reason r);
void ingest_maybe_stopped(struct ingest *ing);
void ingest_add_retry_after(struct mutt_http_req *req, unsigned secs);
void ingest_refuse(struct ingest *ing, struct mutt_http_req *req, uint64_t start_ns, int status, enum reason r,
                   const char *message, unsigned retry_after);

/* ingest_http.c */
void ingest_on_ingest(struct mutt_http_req *req, void *privdata);

/* ingest_group.c */
bool ingest_reserve_entries(struct ingest *ing, size_t want);
bool ingest_reserve_bytes(struct ingest *ing, size_t want);
long ingest_serialise(struct ingest *ing, struct mutt_event_batch *b, const char *cid);
void ingest_on_flush_check(uv_check_t *h);
void ingest_on_flush_prepare(uv_prepare_t *h);
void ingest_group_make_room(struct ingest *ing, size_t nev, size_t bytes);
void ingest_group_add(struct ingest *ing, struct ingest_op *op, size_t nev, size_t used);

#endif
