/* Config -> adapter options (include/mutt/adapter_opts.h). No I/O: it only reads the config. */
#include "mutt/adapter_opts.h"

#include <string.h>

#include "mutt/config.h"
#include "mutt/pg.h"
#include "mutt/redis.h"

void mutt_redis_opts_from_config(const struct mutt_config *cfg, struct mutt_redis_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = mutt_config_str(cfg, MUTT_CFG_REDIS_HOST);
    o->port = (int)mutt_config_int(cfg, MUTT_CFG_REDIS_PORT);
    o->db = (int)mutt_config_int(cfg, MUTT_CFG_REDIS_DB);
    o->pass_current = mutt_config_str(cfg, MUTT_CFG_REDIS_PASS_CURRENT);
    o->pass_next = mutt_config_str(cfg, MUTT_CFG_REDIS_PASS_NEXT);
    o->connect_timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_REDIS_CONNECT_TIMEOUT_MS);
    o->reconnect_min_ms = 100;
    o->reconnect_max_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_REDIS_RECONNECT_MAX_MS);
    o->max_inflight = (size_t)mutt_config_int(cfg, MUTT_CFG_REDIS_MAX_INFLIGHT);
    o->command_timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_REDIS_COMMAND_TIMEOUT_MS);
    o->sentinels = mutt_config_str(cfg, MUTT_CFG_REDIS_SENTINELS);
    o->sentinel_master = mutt_config_str(cfg, MUTT_CFG_REDIS_SENTINEL_MASTER);
    o->sentinel_pass = mutt_config_str(cfg, MUTT_CFG_REDIS_SENTINEL_PASSWORD);
}

void mutt_pg_opts_from_config(const struct mutt_config *cfg, struct mutt_pg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = mutt_config_str(cfg, MUTT_CFG_DB_HOST);
    o->port = (int)mutt_config_int(cfg, MUTT_CFG_DB_PORT);
    o->ports = mutt_config_str(cfg, MUTT_CFG_DB_PORT);
    o->target_session_attrs = mutt_config_str(cfg, MUTT_CFG_DB_TARGET_SESSION_ATTRS);
    o->dbname = mutt_config_str(cfg, MUTT_CFG_DB_NAME);
    o->user = mutt_config_str(cfg, MUTT_CFG_DB_USER);
    o->pass_current = mutt_config_str(cfg, MUTT_CFG_DB_PASS_CURRENT);
    o->pass_next = mutt_config_str(cfg, MUTT_CFG_DB_PASS_NEXT);
    o->tls = mutt_config_bool(cfg, MUTT_CFG_DB_TLS_ENABLED);
    o->ca_file = mutt_config_str(cfg, MUTT_CFG_DB_TLS_CA_CERT_PATH);
    /* D55: DB_TLS_VERIFY, or when unset `ca` with a CA file and `none` without one */
    const char *verify = mutt_config_str(cfg, MUTT_CFG_DB_TLS_VERIFY);
    if (strcmp(verify, "full") == 0)
        o->tls_verify = MUTT_PG_TLS_VERIFY_FULL;
    else if (strcmp(verify, "ca") == 0 || (!verify[0] && o->ca_file[0]))
        o->tls_verify = MUTT_PG_TLS_VERIFY_CA;
    else
        o->tls_verify = MUTT_PG_TLS_VERIFY_NONE;
    o->pool_min = (int)mutt_config_int(cfg, MUTT_CFG_DB_POOL_MIN_CONN);
    o->pool_max = (int)mutt_config_int(cfg, MUTT_CFG_DB_POOL_MAX_CONN);
    o->queue_max = (size_t)mutt_config_int(cfg, MUTT_CFG_DB_QUEUE_MAX);
    o->connect_timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_DB_CONNECT_TIMEOUT_MS);
    o->query_timeout_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_DB_QUERY_TIMEOUT_MS);
    o->application_name = "mutt";
}
