/* Owns a small pool of nonblocking libpq connections on the loop (DB_POOL_MIN_CONN..MAX_CONN),
 * a bounded FIFO of parameterised queries, reconnects with backoff and CURRENT/NEXT passwords.
 * Knows no table: callers pass SQL. Loop thread only. */
#ifndef MUTT_PG_H
#define MUTT_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct pg_result; /* libpq's PGresult (opaque here; the .c files include <libpq-fe.h>) */
struct mutt_pg;

/* How far a TLS connection checks the server (D55, DB_TLS_VERIFY). */
enum mutt_pg_tls_verify {
    MUTT_PG_TLS_VERIFY_NONE = 0, /* sslmode=require: encrypted, any certificate */
    MUTT_PG_TLS_VERIFY_CA,       /* sslmode=verify-ca: signed by ca_file */
    MUTT_PG_TLS_VERIFY_FULL,     /* sslmode=verify-full: signed by ca_file and naming the host */
};

struct mutt_pg_opts {
    const char *host;          /* IP literal or name (resolved with uv_getaddrinfo, passed as hostaddr), or a
                                * comma list of them (D38): each connect attempt tries one, in turn */
    int port;                  /* used when ports is NULL/"" */
    const char *ports;         /* comma list matching host, or one port for all (DB_PORT) */
    const char *target_session_attrs; /* libpq's; NULL/"" = read-write with several hosts, else any */
    const char *dbname;
    const char *user;
    const char *pass_current;
    const char *pass_next;
    bool tls;                  /* false: sslmode=disable; true: sslmode per tls_verify */
    enum mutt_pg_tls_verify tls_verify;
    const char *ca_file;       /* sslrootcert (NULL/"" = libpq's default) */
    int pool_min;
    int pool_max;
    size_t queue_max;          /* queued (not yet sent) queries; above it: MUTT_EFULL */
    uint64_t connect_timeout_ms;
    uint64_t query_timeout_ms; /* 0 = none; on expiry cb gets MUTT_ETIMEDOUT and that connection is reset (the server rolls the query back) */
    const char *application_name;
};

/* Called exactly once per accepted query. res is borrowed (PQclear'd after cb returns) and
 * non-NULL when status is 0 (PGRES_COMMAND_OK/TUPLES_OK) or MUTT_EIO with a server error
 * (read PQresultErrorField(res, PG_DIAG_SQLSTATE), e.g. "23505" unique violation).
 * status MUTT_EDISCONNECTED/MUTT_ETIMEDOUT/MUTT_ECANCELED: res is NULL. A server error that
 * means "not the server to write to" (SQLSTATE 25006 read-only, 57P01/57P02/57P03 shutdown) is
 * reported as MUTT_EDISCONNECTED and that connection reconnects, starting at the next host (D55). */
typedef void mutt_pg_result_cb(void *privdata, struct pg_result *res, int status);

struct mutt_pg *mutt_pg_create(uv_loop_t *loop, const struct mutt_pg_opts *opts);
int mutt_pg_start(struct mutt_pg *pg);   /* opens pool_min connections */
void mutt_pg_stop(struct mutt_pg *pg);   /* queued/in-flight queries get MUTT_ECANCELED */
void mutt_pg_destroy(struct mutt_pg *pg);
void mutt_pg_set_passwords(struct mutt_pg *pg, const char *current, const char *next);
/* Replaces the role new connections log in as (Vault-issued credentials rotate the user with the
 * password); connections already up keep theirs until they reconnect. Copies; NULL/"" ignored. */
void mutt_pg_set_user(struct mutt_pg *pg, const char *user);
/* True when at least one connection is ready (what /health reports as "database"). */
bool mutt_pg_connected(const struct mutt_pg *pg);
/* "host:port" of the server the ready connections use (the newest one's when they differ), or ""
 * when none is up (/health "database_host"). Returns buf. */
const char *mutt_pg_host_in_use(const struct mutt_pg *pg, char *buf, size_t len);

/* Queues a parameterised query (values copied; NULL entries are SQL NULL). Returns 0 and calls cb
 * exactly once, or fails synchronously: MUTT_EFULL (queue at cap), MUTT_EDISCONNECTED (no
 * connection and none coming up: fail fast), MUTT_ECANCELED (stopped). */
int mutt_pg_query(struct mutt_pg *pg, const char *sql, int nparams, const char *const *values,
                  mutt_pg_result_cb *cb, void *privdata);

/* Runs several statements in one transaction on one connection (BEGIN ... COMMIT; ROLLBACK on
 * the first error). Each statement is parameterised. cb receives the last statement's result. */
struct mutt_pg_stmt {
    const char *sql;
    int nparams;
    const char *const *values;
};
int mutt_pg_transaction(struct mutt_pg *pg, const struct mutt_pg_stmt *stmts, int nstmts,
                        mutt_pg_result_cb *cb, void *privdata);

/* Builds a libpq conninfo string for opts with the given password (for blocking CLI use, e.g.
 * `mutt migrate`, which runs before/without the loop): the host and port lists and
 * target_session_attrs go to libpq as its own multi-host parameters, with connect_timeout (which
 * a blocking connect applies per host). Returns malloc'd string or NULL. */
char *mutt_pg_conninfo(const struct mutt_pg_opts *opts, const char *password);

#endif
