/* Vault secrets provider (secrets.h): one exchange with Vault at a time, driven by a small
 * work list (login, token check, KV read) that timers and failures fill and pump() drains.
 * Owns the Vault token, the secret id (held only for the login request) and which config keys
 * Vault provided. Does not own the config, Redis or PostgreSQL handles. Loop thread only. */
#define _GNU_SOURCE
#include "mutt/secrets.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mutt/backoff.h"
#include "mutt/error.h"
#include "mutt/http_client.h"
#include "mutt/log.h"
#include "mutt/pg.h"
#include "mutt/redis.h"

#define LOGGER "vault"

/* A Vault answer normally takes milliseconds; a stuck one must not hold the work list. */
static const uint64_t REQUEST_TIMEOUT_MS = 10000;
static const uint64_t CONNECT_TIMEOUT_MS = 5000;
/* Retry after a failure: 500 ms doubling to 30 s, so a Vault outage costs little and a
 * recovered Vault is found again within half a minute. */
static const struct mutt_backoff RETRY_BACKOFF = {
    .base_ms = 500,
    .max_ms = 30000,
    .jitter = MUTT_BACKOFF_JITTER_NONE,
};
/* A secret id is a UUID; anything this long is not one. */
#define SECRET_ID_FILE_CAP 4096

/* The keys Vault may supply (CONTRACT §9 + D26), in the order they are reported. */
static const enum mutt_cfg_key secret_keys[] = {
    MUTT_CFG_INGEST_API_KEY,     MUTT_CFG_INGEST_API_KEY_NEXT, MUTT_CFG_WEBUI_API_KEY,
    MUTT_CFG_WEBUI_READONLY_API_KEY, MUTT_CFG_MOOG_API_KEY,    MUTT_CFG_REDIS_PASS_CURRENT,
    MUTT_CFG_REDIS_PASS_NEXT,    MUTT_CFG_DB_PASS_CURRENT,     MUTT_CFG_DB_PASS_NEXT,
    MUTT_CFG_DB_USER,            MUTT_CFG_REDIS_SENTINEL_PASSWORD, MUTT_CFG_WEBUI_USERS,
};
#define N_SECRET_KEYS (sizeof(secret_keys) / sizeof(secret_keys[0]))

enum op { OP_NONE, OP_READ_FILE, OP_LOGIN, OP_LOOKUP, OP_RENEW, OP_READ };

struct mutt_secrets {
    uv_loop_t *loop;
    struct mutt_config *cfg;   /* borrowed; written on change */
    struct mutt_redis *redis;  /* borrowed, may be NULL */
    struct mutt_pg *pg;        /* borrowed, may be NULL */
    struct mutt_http_client *http;
    bool configured, started, stopped, destroying;
    enum mutt_secrets_state state;

    /* copied from cfg at create */
    char *login_url, *lookup_url, *renew_url, *kv_url;
    char *kv_name;             /* "<mount>/<path>", for messages */
    char *role_id;
    char *secret_id_file;
    char *ca_file;             /* NULL = system CAs */
    bool tls_verify;
    int64_t renew_threshold_s;
    uint64_t check_interval_ms, refresh_interval_ms;

    char *token_header;        /* "X-Vault-Token: ..."; NULL = no token, log in first */
    char *secret_id;           /* only between the file read and the login request */

    /* work list */
    bool need_login, need_check, need_read;
    enum op inflight;
    bool retry_waiting;
    unsigned failures;         /* consecutive failures, for the retry delay */

    uv_timer_t check_timer, refresh_timer, retry_timer, ready_timer;
    int open_handles;          /* timers not yet closed */
    bool timers_inited;

    /* secret-id file read (uv_fs chain open -> read -> close) */
    uv_fs_t fs;
    uv_file fd;
    bool fs_busy;
    int fs_result;             /* bytes read, or a negative uv error */
    char fbuf[SECRET_ID_FILE_CAP];

    bool provided[MUTT_CFG__COUNT]; /* Vault supplied this key at the last read */
    bool ever_read;
    bool ready_fired;
    mutt_secrets_ready_cb *ready_cb;
    void *ready_priv;
    mutt_secrets_change_cb *change_cb;
    void *change_priv;

    char last_error[256];
    struct mutt_secrets_stats stats;
};

static struct mutt_secrets *g_active; /* what /health reports on */

static void pump(struct mutt_secrets *s);

/* ------------------------------------------------------------------------------- helpers */

static void wipe_free(char *p)
{
    if (p) {
        explicit_bzero(p, strlen(p));
        free(p);
    }
}

static char *dup_or_null(const char *v)
{
    return v && v[0] ? strdup(v) : NULL;
}

/* "a//b/" -> "a//b" without leading/trailing slashes (mount and path are joined with one '/'). */
static void trim_slashes(const char *in, const char **start, int *len)
{
    size_t n = strlen(in);
    while (n && *in == '/') {
        in++;
        n--;
    }
    while (n && in[n - 1] == '/')
        n--;
    *start = in;
    *len = (int)n;
}

const char *mutt_secrets_state_name(enum mutt_secrets_state st)
{
    switch (st) {
    case MUTT_SECRETS_CONNECTED: return "connected";
    case MUTT_SECRETS_DISCONNECTED: return "disconnected";
    case MUTT_SECRETS_NOT_CONFIGURED: break;
    }
    return "not_configured";
}

/* The one writer of s->state: logs each transition once. */
static void set_state(struct mutt_secrets *s, enum mutt_secrets_state st)
{
    if (s->state == st)
        return;
    enum mutt_secrets_state old = s->state;
    s->state = st;
    if (st == MUTT_SECRETS_CONNECTED)
        mutt_log_info(LOGGER, "vault %s -> connected", mutt_secrets_state_name(old));
    else
        mutt_log_warn(LOGGER, "vault %s -> %s: %s", mutt_secrets_state_name(old), mutt_secrets_state_name(st),
                      s->last_error);
}

/* Records why an exchange failed; logs only when the reason changed, so a Vault outage with
 * retries every 30 s does not fill the log. */
static void set_error(struct mutt_secrets *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct mutt_secrets *s, const char *fmt, ...)
{
    char msg[sizeof s->last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strcmp(msg, s->last_error) != 0)
        mutt_log_error(LOGGER, "%s", msg);
    snprintf(s->last_error, sizeof s->last_error, "%s", msg);
}

/* Vault's error text: the first string of {"errors":[...]} (these name paths and reasons,
 * never secret values), else "". */
static void vault_error_text(const struct mutt_http_result *r, char *out, size_t len)
{
    out[0] = '\0';
    if (!r->body || r->body_len == 0)
        return;
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *errs = root ? json_object_get(root, "errors") : NULL;
    json_t *first = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
    if (json_is_string(first))
        snprintf(out, len, "%.120s", json_string_value(first));
    json_decref(root);
}

/* Describes a failed exchange: transport error, or HTTP status with Vault's text. */
static void describe_failure(const struct mutt_http_result *r, char *out, size_t len)
{
    if (r->curl_code != 0) {
        snprintf(out, len, "%s (curl %d)", r->error && r->error[0] ? r->error : "transfer failed", r->curl_code);
        return;
    }
    char text[128];
    vault_error_text(r, text, sizeof text);
    if (text[0])
        snprintf(out, len, "HTTP %ld: %s", r->http_status, text);
    else
        snprintf(out, len, "HTTP %ld", r->http_status);
}

static void fire_ready(struct mutt_secrets *s, int status)
{
    if (s->ready_fired || !s->ready_cb)
        return;
    s->ready_fired = true;
    s->ready_cb(s->ready_priv, status);
}

/* ------------------------------------------------------------------------- retry / timers */

static void on_retry(uv_timer_t *t)
{
    struct mutt_secrets *s = t->data;
    s->retry_waiting = false;
    pump(s);
}

/* A failed step: count it, wait (capped exponential) and pump again. */
static void fail_and_retry(struct mutt_secrets *s, bool mark_disconnected)
{
    s->failures++;
    if (mark_disconnected)
        set_state(s, MUTT_SECRETS_DISCONNECTED);
    if (s->stopped)
        return;
    uint64_t delay = mutt_backoff_ms(&RETRY_BACKOFF, s->failures - 1, 0);
    s->retry_waiting = true;
    uv_timer_start(&s->retry_timer, on_retry, delay, 0);
}

/* Vault refused the token (403: expired, revoked or never valid)? */
static bool token_refused(const struct mutt_http_result *r)
{
    return r->curl_code == 0 && r->http_status == 403;
}

/* When r says the token was refused: drops it, logs in again and returns true. The first
 * re-login goes at once; repeated refusals back off like any failure. */
static bool token_rejected(struct mutt_secrets *s, const struct mutt_http_result *r)
{
    if (!token_refused(r))
        return false;
    wipe_free(s->token_header);
    s->token_header = NULL;
    s->need_login = true;
    s->need_check = false;
    mutt_log_info(LOGGER, "vault token refused (expired or revoked): logging in again");
    if (s->failures == 0) {
        s->failures = 1; /* reset only by a successful lookup, renewal or read */
        pump(s);
        return true;
    }
    fail_and_retry(s, false);
    return true;
}

static void on_check_tick(uv_timer_t *t)
{
    struct mutt_secrets *s = t->data;
    s->need_check = true;
    pump(s);
}

static void on_refresh_tick(uv_timer_t *t)
{
    struct mutt_secrets *s = t->data;
    s->need_read = true;
    pump(s);
}

static void on_ready_timer(uv_timer_t *t)
{
    fire_ready(t->data, 0);
}

/* ------------------------------------------------------------------------ HTTP requests */

static void on_http_done(void *privdata, const struct mutt_http_result *r);

static int send_request(struct mutt_secrets *s, enum op op, const char *method, const char *url, const char *body)
{
    const char *headers[2];
    size_t nh = 0;
    if (op != OP_LOGIN && s->token_header)
        headers[nh++] = s->token_header;
    if (body)
        headers[nh++] = "Content-Type: application/json";
    struct mutt_http_request req = {
        .method = method,
        .url = url,
        .headers = headers,
        .nheaders = nh,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = REQUEST_TIMEOUT_MS,
        .connect_timeout_ms = CONNECT_TIMEOUT_MS,
        .tls_skip_verify = !s->tls_verify,
        .ca_file = s->ca_file,
    };
    int rc = mutt_http_client_request(s->http, &req, on_http_done, s);
    if (rc == 0)
        s->inflight = op;
    return rc;
}

static void start_login(struct mutt_secrets *s)
{
    json_t *o = json_pack("{s:s, s:s}", "role_id", s->role_id ? s->role_id : "", "secret_id", s->secret_id);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (o) {
        /* jansson keeps its own copy of the secret id: overwrite it before the free */
        json_t *sid = json_object_get(o, "secret_id");
        const char *v = json_string_value(sid);
        if (v)
            explicit_bzero((char *)v, strlen(v));
        json_decref(o);
    }
    wipe_free(s->secret_id);
    s->secret_id = NULL;
    int rc = body ? send_request(s, OP_LOGIN, "POST", s->login_url, body) : MUTT_ENOMEM;
    wipe_free(body); /* the client copied it */
    if (rc != 0) {
        set_error(s, "vault login not sent: %s", mutt_strerror(rc));
        s->stats.login_failures++;
        fail_and_retry(s, true);
    }
}

/* ---------------------------------------------------------------- secret-id file (uv_fs) */

static void fs_finished(struct mutt_secrets *s);

static void on_fs_close(uv_fs_t *req)
{
    struct mutt_secrets *s = req->data;
    uv_fs_req_cleanup(req);
    fs_finished(s);
}

static void on_fs_read(uv_fs_t *req)
{
    struct mutt_secrets *s = req->data;
    s->fs_result = (int)req->result;
    uv_fs_req_cleanup(req);
    if (uv_fs_close(s->loop, &s->fs, s->fd, on_fs_close) != 0)
        fs_finished(s);
}

static void on_fs_open(uv_fs_t *req)
{
    struct mutt_secrets *s = req->data;
    int fd = (int)req->result;
    uv_fs_req_cleanup(req);
    if (fd < 0) {
        s->fs_result = fd;
        fs_finished(s);
        return;
    }
    s->fd = fd;
    uv_buf_t buf = uv_buf_init(s->fbuf, sizeof s->fbuf - 1);
    int rc = uv_fs_read(s->loop, &s->fs, fd, &buf, 1, 0, on_fs_read);
    if (rc != 0) {
        s->fs_result = rc;
        if (uv_fs_close(s->loop, &s->fs, fd, on_fs_close) != 0)
            fs_finished(s);
    }
}

static void maybe_free(struct mutt_secrets *s);

/* The file chain ended (data in fbuf, or fs_result < 0): take the trimmed id and log in. */
static void fs_finished(struct mutt_secrets *s)
{
    s->fs_busy = false;
    s->inflight = OP_NONE;
    int n = s->fs_result;
    if (s->destroying) {
        explicit_bzero(s->fbuf, sizeof s->fbuf);
        maybe_free(s);
        return;
    }
    if (s->stopped) {
        explicit_bzero(s->fbuf, sizeof s->fbuf);
        return;
    }
    if (n < 0) {
        set_error(s, "cannot read VAULT_SECRET_ID_FILE %s: %s", s->secret_id_file, uv_strerror(n));
    } else if (n >= (int)sizeof s->fbuf - 1) {
        set_error(s, "VAULT_SECRET_ID_FILE %s is too large for a secret id", s->secret_id_file);
        n = -1;
    } else {
        s->fbuf[n] = '\0';
        char *p = s->fbuf;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        size_t len = strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r' || p[len - 1] == '\n'))
            len--;
        if (len == 0) {
            set_error(s, "VAULT_SECRET_ID_FILE %s is empty", s->secret_id_file);
            n = -1;
        } else {
            wipe_free(s->secret_id);
            s->secret_id = strndup(p, len);
            if (!s->secret_id)
                n = -1;
        }
    }
    explicit_bzero(s->fbuf, sizeof s->fbuf);
    if (n < 0) {
        s->stats.login_failures++;
        fail_and_retry(s, true);
        return;
    }
    start_login(s);
}

static void start_file_read(struct mutt_secrets *s)
{
    s->fs.data = s;
    s->fs_result = 0;
    int rc = uv_fs_open(s->loop, &s->fs, s->secret_id_file, O_RDONLY | O_CLOEXEC, 0, on_fs_open);
    if (rc != 0) {
        set_error(s, "cannot read VAULT_SECRET_ID_FILE %s: %s", s->secret_id_file, uv_strerror(rc));
        s->stats.login_failures++;
        fail_and_retry(s, true);
        return;
    }
    s->fs_busy = true;
    s->inflight = OP_READ_FILE;
}

/* ------------------------------------------------------------------------ applying reads */

/* The value of `key` in the KV data: its canonical name first, then its aliases
 * (REDIS_PASS -> REDIS_PASS_CURRENT ..., as the original's secrets were named). */
static json_t *lookup_key(json_t *data, enum mutt_cfg_key key)
{
    const struct mutt_cfg_def *d = &mutt_cfg_defs[key];
    json_t *v = json_object_get(data, d->name);
    for (size_t a = 0; !v && a < 4 && d->aliases[a]; a++)
        v = json_object_get(data, d->aliases[a]);
    return v;
}

/* Required secrets of the enabled roles that are still empty, as "A, B" (names only). */
static bool missing_required(const struct mutt_secrets *s, char *out, size_t len)
{
    unsigned roles = mutt_config_roles(s->cfg);
    out[0] = '\0';
    for (size_t i = 0; i < N_SECRET_KEYS; i++) {
        enum mutt_cfg_key k = secret_keys[i];
        if (!(mutt_cfg_defs[k].required_roles & roles) || mutt_config_str(s->cfg, k)[0])
            continue;
        size_t used = strlen(out);
        snprintf(out + used, len - used, "%s%s", used ? ", " : "", mutt_cfg_defs[k].name);
    }
    return out[0] != '\0';
}

/* Writes the secret's values into the config; keys Vault stopped providing are cleared (a
 * retired *_NEXT must stop working). Tells Redis and PostgreSQL about password changes. */
static void apply_secrets(struct mutt_secrets *s, json_t *data, json_int_t version)
{
    char changed_names[512] = "";
    bool redis_changed = false, pg_changed = false;
    enum mutt_cfg_key changed[N_SECRET_KEYS];
    size_t nchanged = 0;

    for (size_t i = 0; i < N_SECRET_KEYS; i++) {
        enum mutt_cfg_key k = secret_keys[i];
        json_t *v = lookup_key(data, k);
        const char *want;
        if (json_is_string(v)) {
            want = json_string_value(v);
            s->provided[k] = true;
        } else if (v == NULL || json_is_null(v)) {
            if (!s->provided[k])
                continue; /* never came from Vault: the environment/file value stays */
            want = "";
            s->provided[k] = false;
        } else {
            mutt_log_warn(LOGGER, "vault secret %s: %s is not a string; ignored", s->kv_name, mutt_cfg_defs[k].name);
            continue;
        }
        if (strcmp(mutt_config_str(s->cfg, k), want) == 0)
            continue;
        int rc = mutt_config_set(s->cfg, k, want);
        if (rc != 0) {
            mutt_log_warn(LOGGER, "vault secret %s: %s refused by config validation; ignored", s->kv_name,
                          mutt_cfg_defs[k].name);
            continue;
        }
        s->stats.changes++;
        changed[nchanged++] = k;
        size_t used = strlen(changed_names);
        snprintf(changed_names + used, sizeof changed_names - used, "%s%s", used ? ", " : "", mutt_cfg_defs[k].name);
        if (k == MUTT_CFG_REDIS_PASS_CURRENT || k == MUTT_CFG_REDIS_PASS_NEXT)
            redis_changed = true;
        if (k == MUTT_CFG_DB_PASS_CURRENT || k == MUTT_CFG_DB_PASS_NEXT || k == MUTT_CFG_DB_USER)
            pg_changed = true;
        if (k == MUTT_CFG_REDIS_SENTINEL_PASSWORD && s->redis)
            mutt_redis_set_sentinel_password(s->redis, want);
    }
    if (redis_changed && s->redis)
        mutt_redis_set_passwords(s->redis, mutt_config_str(s->cfg, MUTT_CFG_REDIS_PASS_CURRENT),
                                 mutt_config_str(s->cfg, MUTT_CFG_REDIS_PASS_NEXT));
    if (pg_changed && s->pg) {
        /* user and password rotate together (Vault-issued database credentials) */
        mutt_pg_set_user(s->pg, mutt_config_str(s->cfg, MUTT_CFG_DB_USER));
        mutt_pg_set_passwords(s->pg, mutt_config_str(s->cfg, MUTT_CFG_DB_PASS_CURRENT),
                              mutt_config_str(s->cfg, MUTT_CFG_DB_PASS_NEXT));
    }
    if (nchanged)
        mutt_log_info(LOGGER, "secrets read from %s (version %lld): changed %s", s->kv_name, (long long)version,
                      changed_names);
    else if (!s->ever_read)
        mutt_log_info(LOGGER, "secrets read from %s (version %lld): nothing to change", s->kv_name,
                      (long long)version);
    for (size_t i = 0; i < nchanged && s->change_cb; i++) {
        s->change_cb(s->change_priv, changed[i]);
        if (s->stopped)
            return;
    }
}

/* ------------------------------------------------------------------------ answers */

static void on_login_done(struct mutt_secrets *s, const struct mutt_http_result *r, json_t *root)
{
    char why[200];
    if (r->curl_code != 0 || r->http_status != 200) {
        describe_failure(r, why, sizeof why);
        set_error(s, "vault AppRole login refused or failed (%s)", why);
        s->stats.login_failures++;
        fail_and_retry(s, true);
        return;
    }
    json_t *auth = json_object_get(root, "auth");
    const char *tok = json_string_value(json_object_get(auth, "client_token"));
    if (!tok || !tok[0]) {
        set_error(s, "vault AppRole login answered 200 without auth.client_token");
        s->stats.login_failures++;
        fail_and_retry(s, true);
        return;
    }
    wipe_free(s->token_header);
    if (asprintf(&s->token_header, "X-Vault-Token: %s", tok) < 0) {
        s->token_header = NULL;
        s->stats.login_failures++;
        fail_and_retry(s, true);
        return;
    }
    json_int_t lease = json_integer_value(json_object_get(auth, "lease_duration"));
    s->stats.logins++;
    s->need_login = false;
    s->need_check = false; /* a fresh token has its full TTL */
    s->need_read = true;   /* what failed may have been a read; a read after login is cheap */
    s->last_error[0] = '\0';
    set_state(s, MUTT_SECRETS_CONNECTED);
    mutt_log_info(LOGGER, "vault AppRole login ok (token TTL %llds, renewable %s)", (long long)lease,
                  json_is_true(json_object_get(auth, "renewable")) ? "yes" : "no");
    pump(s);
}

static void on_lookup_done(struct mutt_secrets *s, const struct mutt_http_result *r, json_t *root)
{
    char why[200];
    if (token_rejected(s, r))
        return;
    if (r->curl_code != 0 || r->http_status != 200) {
        describe_failure(r, why, sizeof why);
        set_error(s, "vault token lookup-self failed (%s)", why);
        s->need_check = true;
        fail_and_retry(s, true);
        return;
    }
    json_t *data = json_object_get(root, "data");
    json_int_t ttl = json_integer_value(json_object_get(data, "ttl"));
    bool renewable = json_is_true(json_object_get(data, "renewable"));
    s->stats.lookups++;
    s->failures = 0;
    s->last_error[0] = '\0';
    set_state(s, MUTT_SECRETS_CONNECTED);
    /* ttl 0 = a token that never expires (root/periodic without TTL): nothing to do */
    if (ttl > 0 && ttl < s->renew_threshold_s) {
        if (renewable) {
            int rc = send_request(s, OP_RENEW, "POST", s->renew_url, "{}");
            if (rc != 0) {
                set_error(s, "vault renew-self not sent: %s", mutt_strerror(rc));
                s->need_check = true;
                fail_and_retry(s, true);
            }
            return;
        }
        mutt_log_info(LOGGER, "vault token TTL %llds below VAULT_TOKEN_RENEW_THRESHOLD and not renewable: "
                              "logging in again", (long long)ttl);
        s->need_login = true;
    }
    pump(s);
}

static void on_renew_done(struct mutt_secrets *s, const struct mutt_http_result *r, json_t *root)
{
    char why[200];
    if (token_rejected(s, r))
        return;
    if (r->curl_code != 0 || r->http_status != 200) {
        /* Vault answers 400 when the token reached its max TTL: a new login is the remedy */
        describe_failure(r, why, sizeof why);
        mutt_log_warn(LOGGER, "vault token renewal failed (%s): logging in again", why);
        wipe_free(s->token_header);
        s->token_header = NULL;
        s->need_login = true;
        if (r->curl_code != 0 || r->http_status >= 500) {
            set_error(s, "vault token renewal failed (%s)", why);
            fail_and_retry(s, true);
            return;
        }
        pump(s);
        return;
    }
    json_int_t lease = json_integer_value(json_object_get(json_object_get(root, "auth"), "lease_duration"));
    s->stats.renewals++;
    s->failures = 0;
    s->last_error[0] = '\0';
    set_state(s, MUTT_SECRETS_CONNECTED);
    mutt_log_info(LOGGER, "vault token renewed (TTL %llds)", (long long)lease);
    pump(s);
}

static void on_read_done(struct mutt_secrets *s, const struct mutt_http_result *r, json_t *root)
{
    char why[200];
    if (token_refused(r))
        s->stats.read_failures++;
    if (token_rejected(s, r))
        return;
    json_t *outer = json_object_get(root, "data");
    json_t *data = json_object_get(outer, "data");
    if (r->curl_code != 0 || r->http_status != 200 || !json_is_object(data)) {
        if (r->curl_code == 0 && r->http_status == 200)
            snprintf(why, sizeof why, "answer without data.data%s", r->body_truncated ? " (body over 64 KiB)" : "");
        else
            describe_failure(r, why, sizeof why);
        set_error(s, "vault KV read of %s failed (%s)", s->kv_name, why);
        s->stats.read_failures++;
        s->need_read = true;
        fail_and_retry(s, true);
        return;
    }
    json_int_t version = json_integer_value(json_object_get(json_object_get(outer, "metadata"), "version"));
    s->stats.reads++;
    s->failures = 0;
    s->last_error[0] = '\0';
    set_state(s, MUTT_SECRETS_CONNECTED);
    apply_secrets(s, data, version);
    if (s->stopped)
        return;
    bool first = !s->ever_read;
    s->ever_read = true;
    if (!s->ready_fired && s->ready_cb) { /* load_once has no ready callback and no roles to wait for */
        char missing[256];
        if (missing_required(s, missing, sizeof missing)) {
            /* start-up waits: the stages cannot run without them; the next refresh may bring them */
            if (first)
                mutt_log_error(LOGGER, "vault secret %s lacks what the enabled roles need: %s", s->kv_name, missing);
        } else {
            fire_ready(s, 0);
            if (s->stopped)
                return;
        }
    }
    pump(s);
}

static void on_http_done(void *privdata, const struct mutt_http_result *r)
{
    struct mutt_secrets *s = privdata;
    enum op op = s->inflight;
    s->inflight = OP_NONE;
    if (r->status == MUTT_ECANCELED || s->stopped)
        return;
    json_t *root = NULL;
    if (r->curl_code == 0 && r->body && r->body_len)
        root = json_loadb(r->body, r->body_len, 0, NULL);
    switch (op) {
    case OP_LOGIN: on_login_done(s, r, root); break;
    case OP_LOOKUP: on_lookup_done(s, r, root); break;
    case OP_RENEW: on_renew_done(s, r, root); break;
    case OP_READ: on_read_done(s, r, root); break;
    default: break;
    }
    if (root) {
        /* the login answer holds the token: overwrite jansson's copy */
        const char *tok = json_string_value(json_object_get(json_object_get(root, "auth"), "client_token"));
        if (tok)
            explicit_bzero((char *)tok, strlen(tok));
        json_decref(root);
    }
}

/* ------------------------------------------------------------------------ the work list */

/* Starts the next exchange unless one is in flight or a retry is pending. Login comes first
 * (nothing else works without a token), then the token check, then the KV read. */
static void pump(struct mutt_secrets *s)
{
    if (s->stopped || s->inflight != OP_NONE || s->retry_waiting)
        return;
    int rc = 0;
    if (s->need_login || !s->token_header) {
        s->need_login = true;
        start_file_read(s);
        return;
    }
    if (s->need_check) {
        s->need_check = false;
        rc = send_request(s, OP_LOOKUP, "GET", s->lookup_url, NULL);
        if (rc != 0) {
            set_error(s, "vault lookup-self not sent: %s", mutt_strerror(rc));
            s->need_check = true;
            fail_and_retry(s, true);
        }
        return;
    }
    if (s->need_read) {
        s->need_read = false;
        rc = send_request(s, OP_READ, "GET", s->kv_url, NULL);
        if (rc != 0) {
            set_error(s, "vault KV read not sent: %s", mutt_strerror(rc));
            s->need_read = true;
            fail_and_retry(s, true);
        }
    }
}

/* ------------------------------------------------------------------------ lifecycle */

struct mutt_secrets *mutt_secrets_create(uv_loop_t *loop, struct mutt_config *cfg, struct mutt_redis *redis,
                                         struct mutt_pg *pg)
{
    struct mutt_secrets *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = cfg;
    s->redis = redis;
    s->pg = pg;
    s->fd = -1;
    const char *addr = mutt_config_str(cfg, MUTT_CFG_VAULT_ADDR);
    s->configured = addr[0] != '\0';
    s->state = s->configured ? MUTT_SECRETS_DISCONNECTED : MUTT_SECRETS_NOT_CONFIGURED;
    if (!s->configured)
        return s;

    int alen = (int)strlen(addr);
    while (alen > 0 && addr[alen - 1] == '/')
        alen--;
    const char *mount, *path;
    int mlen, plen;
    trim_slashes(mutt_config_str(cfg, MUTT_CFG_VAULT_MOUNT_PATH), &mount, &mlen);
    trim_slashes(mutt_config_str(cfg, MUTT_CFG_VAULT_SECRET_PATH), &path, &plen);
    bool ok = asprintf(&s->login_url, "%.*s/v1/auth/approle/login", alen, addr) >= 0;
    ok = ok && asprintf(&s->lookup_url, "%.*s/v1/auth/token/lookup-self", alen, addr) >= 0;
    ok = ok && asprintf(&s->renew_url, "%.*s/v1/auth/token/renew-self", alen, addr) >= 0;
    ok = ok && asprintf(&s->kv_url, "%.*s/v1/%.*s/data/%.*s", alen, addr, mlen, mount, plen, path) >= 0;
    ok = ok && asprintf(&s->kv_name, "%.*s/%.*s", mlen, mount, plen, path) >= 0;
    if (!ok) {
        /* asprintf leaves the pointer undefined on failure: forget whatever it left */
        s->login_url = s->lookup_url = s->renew_url = s->kv_url = s->kv_name = NULL;
        goto fail;
    }
    s->role_id = dup_or_null(mutt_config_str(cfg, MUTT_CFG_VAULT_ROLE_ID));
    s->secret_id_file = strdup(mutt_config_str(cfg, MUTT_CFG_VAULT_SECRET_ID_FILE));
    s->ca_file = dup_or_null(mutt_config_str(cfg, MUTT_CFG_VAULT_CA_CERT));
    s->tls_verify = mutt_config_bool(cfg, MUTT_CFG_VAULT_TLS_VERIFY);
    s->renew_threshold_s = mutt_config_int(cfg, MUTT_CFG_VAULT_TOKEN_RENEW_THRESHOLD);
    s->check_interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_VAULT_RENEW_CHECK_INTERVAL) * 1000u;
    s->refresh_interval_ms = (uint64_t)mutt_config_int(cfg, MUTT_CFG_SECRETS_REFRESH_INTERVAL) * 1000u;
    if (!s->secret_id_file)
        goto fail;
    s->http = mutt_http_client_create(loop, 2);
    if (!s->http)
        goto fail;
    return s;
fail:
    mutt_secrets_destroy(s);
    return NULL;
}

void mutt_secrets_on_change(struct mutt_secrets *s, mutt_secrets_change_cb *cb, void *privdata)
{
    s->change_cb = cb;
    s->change_priv = privdata;
}

static void init_timer(struct mutt_secrets *s, uv_timer_t *t)
{
    uv_timer_init(s->loop, t);
    t->data = s;
    s->open_handles++;
}

int mutt_secrets_start(struct mutt_secrets *s, mutt_secrets_ready_cb *cb, void *privdata)
{
    if (s->started || s->stopped)
        return MUTT_ESTATE;
    s->started = true;
    s->ready_cb = cb;
    s->ready_priv = privdata;
    g_active = s;
    init_timer(s, &s->ready_timer);
    init_timer(s, &s->check_timer);
    init_timer(s, &s->refresh_timer);
    init_timer(s, &s->retry_timer);
    s->timers_inited = true;
    if (!s->configured) {
        uv_timer_start(&s->ready_timer, on_ready_timer, 0, 0);
        return 0;
    }
    mutt_log_info(LOGGER, "secrets from Vault: %s (role id set: %s, renew below %llds, check every %llus, "
                          "re-read every %llus)",
                  s->kv_name, s->role_id ? "yes" : "no", (long long)s->renew_threshold_s,
                  (unsigned long long)(s->check_interval_ms / 1000u),
                  (unsigned long long)(s->refresh_interval_ms / 1000u));
    uv_timer_start(&s->check_timer, on_check_tick, s->check_interval_ms, s->check_interval_ms);
    uv_timer_start(&s->refresh_timer, on_refresh_tick, s->refresh_interval_ms, s->refresh_interval_ms);
    s->need_login = true;
    s->need_read = true;
    /* from a 0 ms timer: the first request must not go out inside start (and the loop may not
     * be running yet) */
    s->retry_waiting = true;
    uv_timer_start(&s->retry_timer, on_retry, 0, 0);
    return 0;
}

void mutt_secrets_stop(struct mutt_secrets *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = true;
    if (s->timers_inited) {
        uv_timer_stop(&s->ready_timer);
        uv_timer_stop(&s->check_timer);
        uv_timer_stop(&s->refresh_timer);
        uv_timer_stop(&s->retry_timer);
    }
    if (s->http)
        mutt_http_client_stop(s->http); /* the in-flight callback fires now, with ECANCELED */
    fire_ready(s, MUTT_ECANCELED);
}

static void free_now(struct mutt_secrets *s)
{
    if (g_active == s)
        g_active = NULL;
    free(s->login_url);
    free(s->lookup_url);
    free(s->renew_url);
    free(s->kv_url);
    free(s->kv_name);
    free(s->role_id);
    free(s->secret_id_file);
    free(s->ca_file);
    wipe_free(s->token_header);
    wipe_free(s->secret_id);
    free(s);
}

static void maybe_free(struct mutt_secrets *s)
{
    if (s->open_handles == 0 && !s->fs_busy)
        free_now(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct mutt_secrets *s = h->data;
    s->open_handles--;
    maybe_free(s);
}

void mutt_secrets_destroy(struct mutt_secrets *s)
{
    if (!s || s->destroying)
        return;
    mutt_secrets_stop(s);
    s->destroying = true;
    if (g_active == s)
        g_active = NULL;
    mutt_http_client_destroy(s->http);
    s->http = NULL;
    wipe_free(s->token_header);
    s->token_header = NULL;
    if (s->timers_inited) {
        uv_close((uv_handle_t *)&s->ready_timer, on_timer_closed);
        uv_close((uv_handle_t *)&s->check_timer, on_timer_closed);
        uv_close((uv_handle_t *)&s->refresh_timer, on_timer_closed);
        uv_close((uv_handle_t *)&s->retry_timer, on_timer_closed);
        return;
    }
    maybe_free(s);
}

/* ------------------------------------------------------------------------ queries */

enum mutt_secrets_state mutt_secrets_state(const struct mutt_secrets *s)
{
    return s ? s->state : MUTT_SECRETS_NOT_CONFIGURED;
}

const char *mutt_secrets_last_error(const struct mutt_secrets *s)
{
    return s ? s->last_error : "";
}

void mutt_secrets_get_stats(const struct mutt_secrets *s, struct mutt_secrets_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (s)
        *out = s->stats;
}

const char *mutt_secrets_vault_status(void)
{
    return mutt_secrets_state_name(mutt_secrets_state(g_active));
}

/* ------------------------------------------------------------------------ one-shot (CLI) */

struct load_once {
    struct mutt_secrets *s;
    uint64_t deadline_ms;
    bool timed_out;
};

/* Polls the provider's counters: a read done, or the first failure, ends the private loop. */
static void on_load_once_poll(uv_timer_t *t)
{
    struct load_once *lo = t->data;
    struct mutt_secrets_stats st = lo->s->stats;
    bool failed = st.login_failures > 0 || st.read_failures > 0;
    if (st.reads > 0 || failed || uv_now(t->loop) >= lo->deadline_ms) {
        lo->timed_out = st.reads == 0 && !failed;
        uv_timer_stop(t);
        mutt_secrets_stop(lo->s);
    }
}

int mutt_secrets_load_once(struct mutt_config *cfg, uint64_t timeout_ms, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (!mutt_config_str(cfg, MUTT_CFG_VAULT_ADDR)[0])
        return 0;
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
        return MUTT_ENOMEM;
    struct mutt_secrets *active = g_active; /* a CLI helper must not change what /health reports */
    int rc = MUTT_ENOMEM;
    struct mutt_secrets *s = mutt_secrets_create(&loop, cfg, NULL, NULL);
    uv_timer_t poll;
    uv_timer_init(&loop, &poll);
    struct load_once lo = { .s = s, .deadline_ms = uv_now(&loop) + timeout_ms };
    poll.data = &lo;
    if (s && mutt_secrets_start(s, NULL, NULL) == 0) {
        uv_timer_start(&poll, on_load_once_poll, 20, 20);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (s->stats.reads > 0) {
            rc = 0;
        } else if (lo.timed_out) {
            rc = MUTT_ETIMEDOUT;
            if (errlen)
                snprintf(err, errlen, "no answer from Vault within %llu ms", (unsigned long long)timeout_ms);
        } else {
            rc = MUTT_EIO;
            if (errlen)
                snprintf(err, errlen, "%s", s->last_error);
        }
    }
    uv_close((uv_handle_t *)&poll, NULL);
    mutt_secrets_destroy(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    g_active = active;
    return rc;
}
