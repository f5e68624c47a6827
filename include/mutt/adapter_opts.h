/* The one translation of the static config into adapter options (Redis, PostgreSQL), so the
 * process, `mutt retention`, --check-config and every CLI command reach the same servers with
 * the same settings. Callers that need something else for their own purpose (a one-connection
 * pool, an application_name) change the filled struct afterwards. Any thread. */
#ifndef MUTT_ADAPTER_OPTS_H
#define MUTT_ADAPTER_OPTS_H

struct mutt_config;
struct mutt_pg_opts;
struct mutt_redis_opts;

/* Fills every field of *o (zeroing the rest) from cfg: REDIS_HOST/PORT/DB, both passwords,
 * REDIS_CONNECT_TIMEOUT_MS, a 100 ms first reconnect doubling to REDIS_RECONNECT_MAX_MS,
 * REDIS_MAX_INFLIGHT and REDIS_COMMAND_TIMEOUT_MS (D48). Strings are borrowed from cfg. Cannot
 * fail. */
void mutt_redis_opts_from_config(const struct mutt_config *cfg, struct mutt_redis_opts *o);

/* Fills every field of *o (zeroing the rest) from the DB_* keys (host and port lists and
 * target_session_attrs as given: the pool applies the several-hosts default), TLS verification per D55, and
 * application_name "mutt". Strings are borrowed from cfg. Cannot fail. */
void mutt_pg_opts_from_config(const struct mutt_config *cfg, struct mutt_pg_opts *o);

#endif
