/* The PostgreSQL query path: the bounded FIFO of ops, each op's steps on its connection (a query,
 * or BEGIN, statements, COMMIT with ROLLBACK on error), per-query deadlines, and the one callback
 * each op gets. A server that stops being the writable one fails the op as disconnected (D55).
 * Loop thread only. */
#include "mutt/pg.h"

#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "mutt/error.h"
#include "mutt/log.h"
#include "mutt/pg_hosts.h"
#include "pg_internal.h"

/* ---------------------------------------------------------------- ops */

static void op_free(struct pg_op *op)
{
    if (!op)
        return;
    for (int i = 0; i < op->nsteps; i++) {
        struct pg_step *s = &op->steps[i];
        free(s->sql);
        if (s->values) {
            for (int j = 0; j < s->nparams; j++)
                free(s->values[j]);
            free(s->values);
        }
    }
    free(op->steps);
    if (op->held)
        PQclear(op->held);
    free(op);
}

static int step_init(struct pg_step *s, const char *sql, int nparams, const char *const *values)
{
    s->sql = strdup(sql);
    if (!s->sql)
        return MUTT_ENOMEM;
    s->nparams = nparams;
    if (nparams == 0)
        return 0;
    s->values = calloc((size_t)nparams, sizeof(*s->values));
    if (!s->values)
        return MUTT_ENOMEM;
    for (int i = 0; i < nparams; i++) {
        if (values[i] && !(s->values[i] = strdup(values[i])))
            return MUTT_ENOMEM;
    }
    return 0;
}

/* Delivers the op's one callback, then frees it. The op must already be detached. */
void pg_op_complete(struct pg_op *op, PGresult *res, int status)
{
    op->cb(op->privdata, res, status);
    if (res)
        PQclear(res);
    op_free(op);
}

static void queue_push(struct mutt_pg *pg, struct pg_op *op)
{
    op->next = NULL;
    if (pg->queue_tail)
        pg->queue_tail->next = op;
    else
        pg->queue_head = op;
    pg->queue_tail = op;
    pg->queue_len++;
}

struct pg_op *pg_queue_pop(struct mutt_pg *pg)
{
    struct pg_op *op = pg->queue_head;
    if (!op)
        return NULL;
    pg->queue_head = op->next;
    if (!pg->queue_head)
        pg->queue_tail = NULL;
    pg->queue_len--;
    op->next = NULL;
    return op;
}

/* Detaches the whole queue (so a callback that queues again cannot loop: the flags that make
 * it fail synchronously are already set), then fails each op with `status`. */
struct pg_op *pg_queue_take_all(struct mutt_pg *pg)
{
    struct pg_op *list = pg->queue_head;
    pg->queue_head = pg->queue_tail = NULL;
    pg->queue_len = 0;
    return list;
}

void pg_fail_list(struct pg_op *list, int status)
{
    while (list) {
        struct pg_op *op = list;
        list = op->next;
        pg_op_complete(op, NULL, status);
    }
}

/* ---------------------------------------------------------------- queries */

void pg_conn_lost(struct pg_conn *c, const char *why)
{
    struct mutt_pg *pg = c->pg;
    char reason[PG_REASON_MAX];
    pg_copy_reason(reason, why);
    struct pg_op *op = c->op;
    c->op = NULL;
    pg_conn_close(c);
    c->failed_attempts = 0;
    char where[MUTT_PG_HOST_MAX + 16];
    mutt_log_warn("pg", "connection %d to %s lost (%s); reconnecting", c->slot,
                  mutt_pg_host_format(&pg->hosts[c->host], where, sizeof where), reason);
    /* Reconnect at once: the queue waits for that one attempt, and is failed if it fails. */
    pg_conn_schedule(c, 0);
    if (op)
        pg_op_complete(op, NULL, MUTT_EDISCONNECTED);
    if (!pg->stopping)
        pg_dispatch(pg);
}

void pg_query_timed_out(struct pg_conn *c)
{
    struct mutt_pg *pg = c->pg;
    struct pg_op *op = c->op;
    c->op = NULL;
    /* PQcancel blocks (it opens a new connection synchronously): reset the connection instead.
     * The server rolls back whatever the op had started when it sees the socket close. */
    mutt_log_warn("pg", "connection %d: query exceeded %llu ms; resetting the connection", c->slot,
                  (unsigned long long)pg->opts.query_timeout_ms);
    pg_conn_close(c);
    c->failed_attempts = 0;
    pg_conn_schedule(c, 0);
    if (op)
        pg_op_complete(op, NULL, MUTT_ETIMEDOUT);
    if (!pg->stopping)
        pg_dispatch(pg);
}

static const char *step_sql(const struct pg_op *op, int step, int *nparams, const char *const **values)
{
    if (op->rolling_back) {
        *nparams = 0;
        *values = NULL;
        return "ROLLBACK";
    }
    const struct pg_step *s = &op->steps[step];
    *nparams = s->nparams;
    *values = (const char *const *)s->values;
    return s->sql;
}

/* Sends the op's current step. Returns 0, or <0 after deferring the failure (conn BROKEN). */
static int send_step(struct pg_conn *c)
{
    int nparams;
    const char *const *values;
    const char *sql = step_sql(c->op, c->op->step, &nparams, &values);
    if (!PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL, 0)) {
        pg_conn_defer_failure(c, PQerrorMessage(c->conn));
        return MUTT_EIO;
    }
    int f = PQflush(c->conn); /* nonblocking: 1 = call again when writable */
    if (f < 0 || pg_conn_watch(c, f == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE) != 0) {
        pg_conn_defer_failure(c, PQerrorMessage(c->conn));
        return MUTT_EIO;
    }
    return 0;
}

void pg_conn_send_op(struct pg_conn *c, struct pg_op *op)
{
    c->op = op;
    c->state = CONN_BUSY;
    op->step = 0;
    if (send_step(c) != 0)
        return;
    if (c->pg->opts.query_timeout_ms > 0)
        uv_timer_start(&c->timer, pg_on_conn_timer, c->pg->opts.query_timeout_ms, 0);
}

/* The op is done: detach it, leave the conn idle, then (and only then) call back. */
static void conn_finish_op(struct pg_conn *c, PGresult *res, int status)
{
    struct mutt_pg *pg = c->pg;
    struct pg_op *op = c->op;
    c->op = NULL;
    c->state = CONN_READY;
    uv_timer_stop(&c->timer);
    if (pg_conn_watch(c, UV_READABLE) != 0)
        pg_conn_defer_failure(c, "cannot watch the connection socket");
    pg_op_complete(op, res, status);
    if (!pg->stopping)
        pg_dispatch(pg);
}

static bool result_ok(const PGresult *r)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* D55: errors that say "this server is no longer the one to write to" (a primary demoted to
 * read-only, an administrator's shutdown or a crash). The query is not at fault: the caller gets
 * MUTT_EDISCONNECTED as for a lost connection (a writer keeps its rows and retries; the web
 * answers 503), and the connection is dropped so the pool finds the writable host. */
static bool failover_error(const PGresult *r)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s && (strcmp(s, "25006") == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
                 strcmp(s, "57P03") == 0);
}

static void host_demoted(struct pg_conn *c, const PGresult *r)
{
    struct mutt_pg *pg = c->pg;
    char why[PG_REASON_MAX], where[MUTT_PG_HOST_MAX + 16];
    pg_copy_reason(why, PQresultErrorMessage(r));
    mutt_log_warn("pg", "connection %d: %s says %s (%s): reconnecting to find the writable host", c->slot,
                  mutt_pg_host_format(&pg->hosts[c->host], where, sizeof where),
                  PQresultErrorField(r, PG_DIAG_SQLSTATE), why);
    if (pg->cur_host == c->host)
        pg->cur_host = (c->host + 1) % pg->nhosts;
    /* Idle siblings on the same host would only fail their next query the same way. */
    for (int i = 0; i < pg->opts.pool_max; i++) {
        struct pg_conn *o = &pg->conns[i];
        if (o != c && o->state == CONN_READY && o->host == c->host) {
            pg_conn_close(o);
            o->failed_attempts = 0;
            pg_conn_schedule(o, 0);
        }
    }
}

/* All results of the step in flight have arrived (PQgetResult gave NULL). */
static void step_done(struct pg_conn *c)
{
    struct pg_op *op = c->op;
    PGresult *r = c->cur;
    c->cur = NULL;
    bool ok = result_ok(r);
    if (!ok && failover_error(r)) {
        host_demoted(c, r);
        PQclear(r);
        pg_conn_lost(c, "server no longer writable"); /* the op gets MUTT_EDISCONNECTED */
        return;
    }
    if (!op->is_txn) {
        conn_finish_op(c, r, ok ? 0 : MUTT_EIO);
        return;
    }
    if (op->rolling_back) { /* report the first error, whatever ROLLBACK said */
        if (r)
            PQclear(r);
        PGresult *held = op->held;
        op->held = NULL;
        conn_finish_op(c, held, MUTT_EIO);
        return;
    }
    int last = op->nsteps - 1; /* COMMIT */
    if (!ok) {
        if (op->step == 0 || op->step == last) { /* BEGIN or COMMIT failed: no transaction left open */
            conn_finish_op(c, r, MUTT_EIO);
            return;
        }
        if (op->held)
            PQclear(op->held);
        op->held = r;
        op->rolling_back = true;
        send_step(c);
        return;
    }
    if (op->step == last) {
        if (r)
            PQclear(r);
        PGresult *held = op->held;
        op->held = NULL;
        conn_finish_op(c, held, 0);
        return;
    }
    if (op->step == last - 1) { /* the last statement: its result is what the caller gets */
        if (op->held)
            PQclear(op->held);
        op->held = r;
    } else if (r) {
        PQclear(r);
    }
    op->step++;
    send_step(c);
}

void pg_on_readable_busy(struct pg_conn *c)
{
    /* Never call PQgetResult while PQisBusy: it would block. */
    while (!PQisBusy(c->conn)) {
        PGresult *r = PQgetResult(c->conn);
        if (!r) {
            step_done(c);
            return;
        }
        if (c->cur)
            PQclear(c->cur);
        c->cur = r;
    }
}

/* ---------------------------------------------------------------- public API */

static int submit(struct mutt_pg *pg, struct pg_op *op)
{
    if (pg->stopping) {
        op_free(op);
        return MUTT_ECANCELED;
    }
    if (!pg->started) {
        op_free(op);
        return MUTT_ESTATE;
    }
    if (pg->pg_connect_failed && !pg_any_up(pg)) {
        op_free(op);
        return MUTT_EDISCONNECTED;
    }
    if (pg->queue_len >= pg->opts.queue_max) {
        op_free(op);
        return MUTT_EFULL;
    }
    queue_push(pg, op);
    pg_dispatch(pg);
    return 0;
}

int mutt_pg_query(struct mutt_pg *pg, const char *sql, int nparams, const char *const *values,
                  mutt_pg_result_cb *cb, void *privdata)
{
    if (!pg || !sql || !cb || nparams < 0 || (nparams > 0 && !values))
        return MUTT_EINVAL;
    struct pg_op *op = calloc(1, sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->cb = cb;
    op->privdata = privdata;
    op->steps = calloc(1, sizeof(*op->steps));
    if (!op->steps) {
        free(op);
        return MUTT_ENOMEM;
    }
    op->nsteps = 1;
    if (step_init(&op->steps[0], sql, nparams, values) != 0) {
        op_free(op);
        return MUTT_ENOMEM;
    }
    return submit(pg, op);
}

int mutt_pg_transaction(struct mutt_pg *pg, const struct mutt_pg_stmt *stmts, int nstmts,
                        mutt_pg_result_cb *cb, void *privdata)
{
    if (!pg || !stmts || nstmts < 1 || !cb)
        return MUTT_EINVAL;
    for (int i = 0; i < nstmts; i++)
        if (!stmts[i].sql || stmts[i].nparams < 0 || (stmts[i].nparams > 0 && !stmts[i].values))
            return MUTT_EINVAL;
    struct pg_op *op = calloc(1, sizeof(*op));
    if (!op)
        return MUTT_ENOMEM;
    op->cb = cb;
    op->privdata = privdata;
    op->is_txn = true;
    op->steps = calloc((size_t)nstmts + 2, sizeof(*op->steps));
    if (!op->steps) {
        free(op);
        return MUTT_ENOMEM;
    }
    op->nsteps = nstmts + 2;
    int rc = step_init(&op->steps[0], "BEGIN", 0, NULL);
    for (int i = 0; i < nstmts && rc == 0; i++)
        rc = step_init(&op->steps[i + 1], stmts[i].sql, stmts[i].nparams, stmts[i].values);
    if (rc == 0)
        rc = step_init(&op->steps[nstmts + 1], "COMMIT", 0, NULL);
    if (rc != 0) {
        op_free(op);
        return rc;
    }
    return submit(pg, op);
}
