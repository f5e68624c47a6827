/* Private to src/io/pg*.c: the PostgreSQL adapter's state and the calls between its files. pg.c
 * owns the pool (connection slots, their poll and timer, dispatch, lifecycle); pg_connect.c runs
 * connect attempts over the host list; pg_query.c the queue and each op's steps; pg_conninfo.c
 * builds libpq's conninfo strings. Not a public interface: include/mutt/pg.h is. Loop thread
 * only; the invariants that keep "exactly one callback" true are at the top of pg.c. */
#ifndef MUTT_IO_PG_INTERNAL_H
#define MUTT_IO_PG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "mutt/pg.h"
#include "mutt/pg_hosts.h"

#define PG_REASON_MAX 256

enum conn_state {
    CONN_UNUSED = 0, /* slot free (no PGconn, no poll, timer stopped) */
    CONN_BACKOFF,    /* waiting for the timer to start a connect attempt */
    CONN_RESOLVING,  /* uv_getaddrinfo in flight */
    CONN_CONNECTING, /* PQconnectPoll state machine running */
    CONN_READY,      /* idle, watched for readable (detects server close) */
    CONN_BUSY,       /* one op in flight */
    CONN_BROKEN,     /* failure seen synchronously; handled from the timer (never inside the API) */
};

struct pg_step {
    char *sql;
    int nparams;
    char **values; /* copies; NULL entries are SQL NULL */
};

struct pg_op {
    struct pg_op *next;      /* queue link */
    mutt_pg_result_cb *cb;
    void *privdata;
    bool is_txn;             /* steps = BEGIN, stmts..., COMMIT */
    int nsteps;
    int step;                /* index of the step in flight */
    bool rolling_back;       /* ROLLBACK in flight; `held` is the error to report */
    PGresult *held;          /* txn: last statement's result, or the first error */
    struct pg_step *steps;
};

struct pg_resolve {
    uv_getaddrinfo_t req;
    struct pg_conn *conn;    /* NULL once the conn gave up on it (stop/timeout): just free */
};

struct pg_conn {
    struct mutt_pg *pg;
    int slot;
    enum conn_state state;
    PGconn *conn;
    uv_poll_t *poll;         /* heap: its close is asynchronous and the fd may change */
    int fd;                  /* fd the poll watches, -1 when none */
    uv_timer_t timer;        /* backoff / connect deadline / query deadline / deferred failure */
    struct pg_resolve *resolve;
    struct pg_op *op;        /* in flight (CONN_BUSY, or CONN_BROKEN after a failed send) */
    PGresult *cur;           /* newest result of the step in flight */
    bool reached_ready;      /* this PGconn got to READY (a failure is "lost", not "connect failed") */
    int pw_index;            /* 0 = CURRENT, 1 = NEXT */
    unsigned failed_attempts;/* consecutive failed rounds over every host, drives the backoff */
    int host;                /* index into pg->hosts of the attempt / connection */
    int hosts_tried;         /* hosts that failed in the current round (0 = a new round) */
    char reason[PG_REASON_MAX];
};

struct mutt_pg {
    uv_loop_t *loop;
    struct mutt_pg_opts opts;    /* strings are our own copies */
    struct mutt_pg_host hosts[MUTT_PG_MAX_HOSTS]; /* DB_HOST x DB_PORT, in order */
    bool host_is_name[MUTT_PG_MAX_HOSTS]; /* resolve with uv_getaddrinfo before each attempt */
    int nhosts;
    int cur_host;                /* where a new round starts: the host last found usable, or the one after a failed one */
    int up_host;                 /* host of the newest connection that got READY, -1 before any */
    char tsa[32];                /* target_session_attrs passed to libpq ("" = libpq's default, any) */
    struct pg_conn *conns;       /* pool_max slots */
    struct pg_op *queue_head, *queue_tail;
    size_t queue_len;
    bool started, stopping, destroy_requested;
    bool pg_connect_failed;         /* the last connect attempt failed and nothing succeeded since */
    bool dispatching, dispatch_again;
    int pending_closes;          /* timers still closing; free waits for 0 */
};

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

/* pg.c: the pool */
void pg_copy_reason(char *dst, const char *src);
bool pg_any_up(const struct mutt_pg *pg);
int pg_conn_watch(struct pg_conn *c, int events);
void pg_conn_close(struct pg_conn *c);
void pg_conn_defer_failure(struct pg_conn *c, const char *why);
void pg_conn_schedule(struct pg_conn *c, uint64_t delay_ms);
void pg_on_conn_timer(uv_timer_t *t);
void pg_dispatch(struct mutt_pg *pg);

/* pg_conninfo.c */
void pg_sb_put(struct sbuf *b, const char *s, size_t n);
char *pg_build_conninfo(const struct mutt_pg_opts *o, const char *password, const char *host,
                        const char *hostaddr, const char *port, const char *tsa, bool with_timeout);
const char *pg_effective_tsa(const struct mutt_pg_opts *o, int nhosts);

/* pg_connect.c: one connect attempt, and the walk over the hosts when it fails */
void pg_start_connect(struct pg_conn *c);
void pg_connect_failed(struct pg_conn *c, const char *why);
void pg_connect_step(struct pg_conn *c, PostgresPollingStatusType st);

/* pg_query.c: the queue and the op in flight */
void pg_op_complete(struct pg_op *op, PGresult *res, int status);
struct pg_op *pg_queue_pop(struct mutt_pg *pg);
struct pg_op *pg_queue_take_all(struct mutt_pg *pg);
void pg_fail_list(struct pg_op *list, int status);
void pg_conn_lost(struct pg_conn *c, const char *why);
void pg_query_timed_out(struct pg_conn *c);
void pg_conn_send_op(struct pg_conn *c, struct pg_op *op);
void pg_on_readable_busy(struct pg_conn *c);

#endif
