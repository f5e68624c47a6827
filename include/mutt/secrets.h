/* Secrets provider (CONTRACT §9, D26, W37). With VAULT_ADDR set it logs in to Vault with AppRole,
 * reads one KV v2 secret (VAULT_MOUNT_PATH/VAULT_SECRET_PATH), keeps its token alive (lookup-self,
 * renew-self below VAULT_TOKEN_RENEW_THRESHOLD, re-login when that fails) and re-reads the secret
 * every SECRETS_REFRESH_INTERVAL, writing what it finds into the static config (mutt_config_set)
 * and the Redis/PostgreSQL password slots, so rotation needs no restart. Without VAULT_ADDR it
 * does nothing: secrets stay as the environment/file gave them. HTTP goes over libcurl on the
 * loop (http_client.h), the secret-id file is read with uv_fs. Never logs a secret value.
 * Loop thread only. */
#ifndef MUTT_SECRETS_H
#define MUTT_SECRETS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mutt/config.h"

struct mutt_secrets; /* opaque */
struct mutt_redis;
struct mutt_pg;

/* What /health reports as "vault" (D17 values). */
enum mutt_secrets_state {
    MUTT_SECRETS_NOT_CONFIGURED = 0, /* VAULT_ADDR empty: secrets come from the environment/file */
    MUTT_SECRETS_DISCONNECTED,       /* configured; nothing succeeded yet, or the last exchange failed */
    MUTT_SECRETS_CONNECTED,          /* the last exchange with Vault succeeded */
};

/* Counters since create; for tests and logs. */
struct mutt_secrets_stats {
    uint64_t logins;         /* successful AppRole logins */
    uint64_t login_failures; /* refused or failed logins (file unreadable included) */
    uint64_t reads;          /* successful KV reads */
    uint64_t read_failures;  /* failed KV reads (token rejections included) */
    uint64_t lookups;        /* successful lookup-self */
    uint64_t renewals;       /* successful renew-self */
    uint64_t changes;        /* config values changed by reads (the first read's included) */
};

/* Fires exactly once, from the loop (never inside mutt_secrets_start): status 0 when the first
 * KV read was applied and every secret the enabled roles require is set (at once, from a 0 ms
 * timer, when Vault is not configured); MUTT_ECANCELED when stopped before that. */
typedef void mutt_secrets_ready_cb(void *privdata, int status);
/* Fires after a read changed `key` in the config (the value itself is never passed around). */
typedef void mutt_secrets_change_cb(void *privdata, enum mutt_cfg_key key);

/* Creates the provider. Borrows cfg (written to on every change), redis and pg (either may be
 * NULL; they get mutt_*_set_passwords when their passwords change). Copies what it needs from
 * cfg's vault keys now. NULL on allocation/libcurl failure. Nothing happens until start. */
struct mutt_secrets *mutt_secrets_create(uv_loop_t *loop, struct mutt_config *cfg, struct mutt_redis *redis,
                                         struct mutt_pg *pg);
/* Sets the (optional) change observer; call before start. */
void mutt_secrets_on_change(struct mutt_secrets *s, mutt_secrets_change_cb *cb, void *privdata);
/* Starts: login, first read, then the renewal-check and refresh timers. Returns 0 (cb will
 * fire once) or MUTT_ESTATE when already started. Makes this provider the one
 * mutt_secrets_vault_status reports on. */
int mutt_secrets_start(struct mutt_secrets *s, mutt_secrets_ready_cb *cb, void *privdata);
/* Cancels the exchange in flight and the timers; a pending ready callback fires with
 * MUTT_ECANCELED inside this call. Safe to call twice. */
void mutt_secrets_stop(struct mutt_secrets *s);
/* Stops (if needed) and frees; the memory is released once the loop has run the close
 * callbacks (and a secret-id file read in flight finished), so let the loop run afterwards.
 * Wipes the token and secret id. NULL is a no-op. */
void mutt_secrets_destroy(struct mutt_secrets *s);

enum mutt_secrets_state mutt_secrets_state(const struct mutt_secrets *s);
/* "connected" | "disconnected" | "not_configured" */
const char *mutt_secrets_state_name(enum mutt_secrets_state st);
/* Why the last exchange failed ("" when it did not): HTTP status and Vault's error text, never
 * a secret. Borrowed until the next exchange. */
const char *mutt_secrets_last_error(const struct mutt_secrets *s);
void mutt_secrets_get_stats(const struct mutt_secrets *s, struct mutt_secrets_stats *out);

/* For CLI commands and --check-config, where no loop runs yet: logs in and reads the secret once
 * on a private loop (blocking, at most timeout_ms), writing the values into cfg as the running
 * provider would. Returns 0 when Vault is not configured (nothing done) or the read succeeded;
 * MUTT_EIO (login or read refused/failed: err says why, never a secret), MUTT_ETIMEDOUT, or
 * MUTT_ENOMEM. Call curl_global_init first. Never on the daemon's loop. */
int mutt_secrets_load_once(struct mutt_config *cfg, uint64_t timeout_ms, char *err, size_t errlen);

/* /health's "vault" value for this process: the state name of the provider started last and
 * not yet destroyed, or "not_configured" when there is none. */
const char *mutt_secrets_vault_status(void);

#endif
