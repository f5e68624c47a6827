/* vault-standin: the part of Vault's HTTP API that MUTT uses (Vault cannot be installed on the
 * test machines), with Vault's request/response shapes and status codes, for the secrets tests.
 * h2o + libuv + jansson only (no MUTT module), like mutt-sink.
 *
 *   vault-standin --port P [--bind 127.0.0.1] [--role-id ID] [--secret-id ID] [--mount secret]
 *                 [--path mutt/prod] [--ttl S] [--bad-login-status 403] [--secret KEY=VALUE]...
 *
 *   POST /v1/auth/approle/login     {"role_id","secret_id"} -> 200 {"auth":{"client_token",
 *                                   "accessor","policies","token_policies","metadata",
 *                                   "lease_duration":S,"renewable":true,"token_type":"service",
 *                                   "orphan":true},...}; wrong ids -> --bad-login-status (403)
 *                                   {"errors":["permission denied"]} (400: "invalid role or
 *                                   secret ID", what recent Vault releases answer)
 *   GET  /v1/auth/token/lookup-self X-Vault-Token -> 200 {"data":{"id","accessor","ttl",
 *                                   "creation_ttl","renewable","expire_time","policies",...}}
 *   POST /v1/auth/token/renew-self  X-Vault-Token -> 200 {"auth":{...,"lease_duration":S}}
 *   GET  /v1/<mount>/data/<path>    X-Vault-Token -> 200 {"data":{"data":{...},"metadata":
 *                                   {"version":N,"created_time",...}},...}; other paths 404
 *                                   {"errors":[]}
 *   GET  /v1/sys/health             200 {"initialized":true,"sealed":false,"standby":false}
 *   A missing, unknown or expired token -> 403 {"errors":["permission denied"]}.
 *
 *   Control (not Vault):
 *   POST /_control/set?K=V&K2=V2    set secret values (URL-decoded), version + 1
 *   POST /_control/unset?K&K2       remove secret keys, version + 1
 *   POST /_control/expire-tokens    every token issued so far is expired from now on
 *   POST /_control/ttl?ttl=S        TTL of tokens issued or renewed from now on
 *   POST /_control/outage?status=S  every /v1 request answers S (503...); status=0 ends it
 *   GET  /_control/stats            {"logins","login_failures","lookups","renewals","reads",
 *                                   "read_denied","version","tokens"}
 *
 * The port actually used is printed on stderr as "vault-standin: listening on ADDR:PORT (...)".
 * SIGTERM/SIGINT stop it with exit status 0, after its clients' connections have closed (h2o_conns.h:
 * h2o aborts when its context is disposed under an open keep-alive connection). Never a production
 * tool: tokens live in memory. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include <h2o.h>
#include <jansson.h>
#include "h2o_conns.h"

struct token {
    char id[64];
    char accessor[32];
    uint64_t expires_ms; /* uv_hrtime-based; 0 = expired */
    long creation_ttl;
};

#define MAX_TOKENS 4096

static struct {
    uv_loop_t *loop;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    h2o_hostconf_t *hosts[2];
    uv_tcp_t listener;
    uv_signal_t sigint, sigterm;
    struct harness_conns conns;
    const char *role_id, *secret_id, *mount, *path;
    long ttl_s;
    int bad_login_status;
    int outage_status;
    json_t *secrets;
    long version;
    struct token tokens[MAX_TOKENS];
    size_t ntokens;
    unsigned long long logins, login_failures, lookups, renewals, reads, read_denied;
} g;

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static void reply(h2o_req_t *req, int status, const char *body)
{
    req->res.status = status;
    req->res.reason = status == 200 ? "OK" : status == 204 ? "No Content" : status == 400 ? "Bad Request"
                    : status == 403 ? "Forbidden" : status == 404 ? "Not Found" : "Standin";
    req->res.content_length = strlen(body);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, body, strlen(body));
}

/* Replies with a jansson value (stolen). */
static void reply_json(h2o_req_t *req, int status, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    reply(req, status, s ? s : "{}");
    free(s);
}

static void reply_denied(h2o_req_t *req) { reply(req, 403, "{\"errors\":[\"permission denied\"]}"); }

/* A Vault-like envelope around auth or data. */
static json_t *envelope(json_t *data, json_t *auth)
{
    char rid[40];
    snprintf(rid, sizeof rid, "standin-%08lx-%04x", (unsigned long)now_ms(), (unsigned)rand() & 0xffff);
    return json_pack("{s:s, s:s, s:b, s:i, s:o, s:n, s:n, s:o}", "request_id", rid, "lease_id", "", "renewable", 0,
                     "lease_duration", 0, "data", data ? data : json_null(), "wrap_info", "warnings", "auth",
                     auth ? auth : json_null());
}

static struct token *find_token(h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-vault-token"), -1);
    if (i == -1)
        return NULL;
    h2o_iovec_t v = req->headers.entries[i].value;
    for (size_t t = 0; t < g.ntokens; t++) {
        struct token *tk = &g.tokens[t];
        if (strlen(tk->id) == v.len && memcmp(tk->id, v.base, v.len) == 0)
            return tk->expires_ms > now_ms() ? tk : NULL;
    }
    return NULL;
}

static long remaining_s(const struct token *tk)
{
    uint64_t now = now_ms();
    return tk->expires_ms > now ? (long)((tk->expires_ms - now + 999) / 1000) : 0;
}

static json_t *auth_object(const struct token *tk, long lease)
{
    return json_pack("{s:s, s:s, s:[s,s], s:[s,s], s:{s:s}, s:I, s:b, s:s, s:b}", "client_token", tk->id, "accessor",
                     tk->accessor, "policies", "default", "mutt", "token_policies", "default", "mutt", "metadata",
                     "role_name", "mutt", "lease_duration", (json_int_t)lease, "renewable", 1, "token_type", "service",
                     "orphan", 1);
}

/* ------------------------------------------------------------------------- Vault API */

static void on_login(h2o_req_t *req)
{
    json_t *body = json_loadb(req->entity.base ? req->entity.base : "", req->entity.base ? req->entity.len : 0, 0, NULL);
    const char *rid = json_string_value(json_object_get(body, "role_id"));
    const char *sid = json_string_value(json_object_get(body, "secret_id"));
    if (!rid || !rid[0]) {
        json_decref(body);
        g.login_failures++;
        reply(req, 400, "{\"errors\":[\"missing role_id\"]}");
        return;
    }
    bool ok = strcmp(rid, g.role_id) == 0 && sid && strcmp(sid, g.secret_id) == 0;
    json_decref(body);
    if (!ok || g.ntokens == MAX_TOKENS) {
        g.login_failures++;
        if (g.bad_login_status == 400)
            reply(req, 400, "{\"errors\":[\"invalid role or secret ID\"]}");
        else
            reply(req, g.bad_login_status, "{\"errors\":[\"permission denied\"]}");
        return;
    }
    struct token *tk = &g.tokens[g.ntokens++];
    snprintf(tk->id, sizeof tk->id, "hvs.standin%06zu%08x", g.ntokens, (unsigned)rand());
    snprintf(tk->accessor, sizeof tk->accessor, "acc%06zu%08x", g.ntokens, (unsigned)rand());
    tk->expires_ms = now_ms() + (uint64_t)g.ttl_s * 1000u;
    tk->creation_ttl = g.ttl_s;
    g.logins++;
    reply_json(req, 200, envelope(NULL, auth_object(tk, g.ttl_s)));
}

static void on_lookup_self(h2o_req_t *req)
{
    struct token *tk = find_token(req);
    if (!tk) {
        reply_denied(req);
        return;
    }
    g.lookups++;
    time_t exp = time(NULL) + remaining_s(tk);
    char expire[40];
    strftime(expire, sizeof expire, "%Y-%m-%dT%H:%M:%SZ", gmtime(&exp));
    json_t *data = json_pack("{s:s, s:s, s:I, s:s, s:s, s:b, s:I, s:[s,s], s:s, s:i, s:b}", "id", tk->id, "accessor",
                             tk->accessor, "creation_ttl", (json_int_t)tk->creation_ttl, "display_name", "approle",
                             "expire_time", expire, "renewable", 1, "ttl", (json_int_t)remaining_s(tk), "policies",
                             "default", "mutt", "type", "service", "num_uses", 0, "orphan", 1);
    reply_json(req, 200, envelope(data, NULL));
}

static void on_renew_self(h2o_req_t *req)
{
    struct token *tk = find_token(req);
    if (!tk) {
        reply_denied(req);
        return;
    }
    g.renewals++;
    tk->expires_ms = now_ms() + (uint64_t)g.ttl_s * 1000u;
    reply_json(req, 200, envelope(NULL, auth_object(tk, g.ttl_s)));
}

static void on_kv_read(h2o_req_t *req, const char *path, size_t len)
{
    char want[512];
    snprintf(want, sizeof want, "/v1/%s/data/%s", g.mount, g.path);
    if (!(strlen(want) == len && memcmp(want, path, len) == 0)) {
        /* Vault checks the token before it looks for the secret */
        if (!find_token(req)) {
            g.read_denied++;
            reply_denied(req);
            return;
        }
        reply(req, 404, "{\"errors\":[]}");
        return;
    }
    if (!find_token(req)) {
        g.read_denied++;
        reply_denied(req);
        return;
    }
    g.reads++;
    char created[40];
    time_t t = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%S.000000Z", gmtime(&t));
    json_t *data = json_pack("{s:O, s:{s:s, s:n, s:s, s:b, s:I}}", "data", g.secrets, "metadata", "created_time",
                             created, "custom_metadata", "deletion_time", "", "destroyed", 0, "version",
                             (json_int_t)g.version);
    reply_json(req, 200, envelope(data, NULL));
}

/* ------------------------------------------------------------------------- control */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* URL-decodes [s, s+n) into a malloc'd string ('+' = space). */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *o++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *o = '\0';
    return out;
}

/* Calls fn(key, value-or-NULL) for each k[=v] pair of the query string. */
static void each_query_pair(h2o_req_t *req, void (*fn)(const char *k, const char *v))
{
    if (req->query_at == SIZE_MAX)
        return;
    const char *q = req->path.base + req->query_at + 1;
    size_t qlen = req->path.len - req->query_at - 1;
    size_t i = 0;
    while (i < qlen) {
        size_t j = i;
        while (j < qlen && q[j] != '&')
            j++;
        const char *eq = memchr(q + i, '=', j - i);
        char *k = url_decode(q + i, (eq ? (size_t)(eq - q) : j) - i);
        char *v = eq ? url_decode(eq + 1, j - (size_t)(eq - q) - 1) : NULL;
        if (k[0])
            fn(k, v);
        free(k);
        free(v);
        i = j + 1;
    }
}

static void set_pair(const char *k, const char *v) { json_object_set_new(g.secrets, k, json_string(v ? v : "")); }
static void unset_pair(const char *k, const char *v) { (void)v; json_object_del(g.secrets, k); }
static long g_num;
static void num_pair(const char *k, const char *v)
{
    if (v && (!strcmp(k, "ttl") || !strcmp(k, "status")))
        g_num = atol(v);
}

static void on_control(h2o_req_t *req, const char *what, size_t len)
{
#define IS(s) (len == strlen(s) && memcmp(what, s, len) == 0)
    char buf[512];
    if (IS("set")) {
        each_query_pair(req, set_pair);
        g.version++;
    } else if (IS("unset")) {
        each_query_pair(req, unset_pair);
        g.version++;
    } else if (IS("expire-tokens")) {
        for (size_t t = 0; t < g.ntokens; t++)
            g.tokens[t].expires_ms = 0;
    } else if (IS("ttl")) {
        g_num = -1;
        each_query_pair(req, num_pair);
        if (g_num > 0)
            g.ttl_s = g_num;
    } else if (IS("outage")) {
        g_num = -1;
        each_query_pair(req, num_pair);
        if (g_num == 0 || (g_num >= 400 && g_num <= 599))
            g.outage_status = (int)g_num;
    } else if (!IS("stats")) {
        reply(req, 404, "{\"errors\":[\"unknown control\"]}");
        return;
    }
    size_t valid = 0;
    for (size_t t = 0; t < g.ntokens; t++)
        valid += g.tokens[t].expires_ms > now_ms();
    snprintf(buf, sizeof buf,
             "{\"logins\":%llu,\"login_failures\":%llu,\"lookups\":%llu,\"renewals\":%llu,\"reads\":%llu,"
             "\"read_denied\":%llu,\"version\":%ld,\"tokens\":%zu,\"ttl\":%ld,\"outage\":%d}",
             g.logins, g.login_failures, g.lookups, g.renewals, g.reads, g.read_denied, g.version, valid, g.ttl_s,
             g.outage_status);
    reply(req, 200, buf);
#undef IS
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    bool post = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) ||
                h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")); /* Vault takes both */
    bool get = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"));
    size_t plen = req->query_at == SIZE_MAX ? req->path.len : req->query_at;
    const char *p = req->path.base;
#define PATH_IS(s) (plen == strlen(s) && memcmp(p, s, plen) == 0)
    if (plen > 10 && memcmp(p, "/_control/", 10) == 0) {
        on_control(req, p + 10, plen - 10);
        return 0;
    }
    if (g.outage_status && plen >= 4 && memcmp(p, "/v1/", 4) == 0) {
        reply(req, g.outage_status, "{\"errors\":[\"Vault is sealed\"]}");
        return 0;
    }
    if (post && PATH_IS("/v1/auth/approle/login"))
        on_login(req);
    else if (get && PATH_IS("/v1/auth/token/lookup-self"))
        on_lookup_self(req);
    else if (post && PATH_IS("/v1/auth/token/renew-self"))
        on_renew_self(req);
    else if (get && PATH_IS("/v1/sys/health"))
        reply(req, 200, "{\"initialized\":true,\"sealed\":false,\"standby\":false,\"version\":\"standin\"}");
    else if (get && plen > 4 && memcmp(p, "/v1/", 4) == 0)
        on_kv_read(req, p, plen);
    else if (find_token(req))
        reply(req, 405, "{\"errors\":[\"unsupported operation\"]}");
    else
        reply_denied(req); /* Vault answers 403 to unauthenticated unknown paths too */
#undef PATH_IS
    return 0;
}

/* ------------------------------------------------------------------------- plumbing */

static void on_accept(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    harness_conns_accept(&g.conns, listener);
}

static void on_drained(struct harness_conns *cs, int all_closed)
{
    if (!all_closed)
        fprintf(stderr, "vault-standin: %zu connection(s) still open 5 s after the stop\n", cs->open);
    uv_stop(g.loop);
}

static void on_signal(uv_signal_t *s, int signum)
{
    fprintf(stderr, "vault-standin: signal %d, stopping (logins %llu, reads %llu)\n", signum, g.logins, g.reads);
    uv_close((uv_handle_t *)&g.listener, NULL);
    uv_close((uv_handle_t *)&g.sigint, NULL);
    uv_close((uv_handle_t *)&g.sigterm, NULL);
    harness_conns_stop(&g.conns, g.loop, 5000, on_drained);
}

static void close_walk(uv_handle_t *h, void *arg) { if (!uv_is_closing(h)) uv_close(h, NULL); }

static int usage(void)
{
    fprintf(stderr, "usage: vault-standin --port P [--bind ADDR] [--role-id ID] [--secret-id ID] [--mount M]\n"
                    "                     [--path P] [--ttl S] [--bad-login-status 403|400] [--secret KEY=VALUE]...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *bind = "127.0.0.1";
    int port = -1;
    g.role_id = "mutt-role";
    g.secret_id = "mutt-secret-id";
    g.mount = "secret";
    g.path = "mutt/prod";
    g.ttl_s = 60;
    g.bad_login_status = 403;
    g.version = 1;
    g.secrets = json_object();
    srand((unsigned)uv_hrtime());
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--port"))
            port = atoi(v);
        else if (!strcmp(argv[i], "--bind"))
            bind = v;
        else if (!strcmp(argv[i], "--role-id"))
            g.role_id = v;
        else if (!strcmp(argv[i], "--secret-id"))
            g.secret_id = v;
        else if (!strcmp(argv[i], "--mount"))
            g.mount = v;
        else if (!strcmp(argv[i], "--path"))
            g.path = v;
        else if (!strcmp(argv[i], "--ttl"))
            g.ttl_s = atol(v);
        else if (!strcmp(argv[i], "--bad-login-status"))
            g.bad_login_status = atoi(v);
        else if (!strcmp(argv[i], "--secret")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return usage();
            char *k = strndup(v, (size_t)(eq - v));
            json_object_set_new(g.secrets, k, json_string(eq + 1));
            free(k);
        } else
            return usage();
        i++;
    }
    if (port < 0 || port > 65535 || g.ttl_s <= 0 || (g.bad_login_status != 400 && g.bad_login_status != 403))
        return usage();
    signal(SIGPIPE, SIG_IGN);
    g.loop = uv_default_loop();

    h2o_config_init(&g.config);
    g.config.http1.upgrade_to_http2 = 0;
    g.hosts[0] = h2o_config_register_host(&g.config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(g.hosts[0], "/", 0);
    h2o_create_handler(pathconf, sizeof(h2o_handler_t))->on_req = on_req;
    h2o_context_init(&g.ctx, g.loop, &g.config);
    g.accept.ctx = &g.ctx;
    g.accept.hosts = g.hosts;
    g.conns.accept = &g.accept;

    struct sockaddr_storage addr;
    int addrlen = sizeof(addr), r;
    uv_tcp_init(g.loop, &g.listener);
    if ((r = uv_ip4_addr(bind, port, (struct sockaddr_in *)&addr)) != 0 &&
        (r = uv_ip6_addr(bind, port, (struct sockaddr_in6 *)&addr)) != 0) {
        fprintf(stderr, "vault-standin: bad --bind %s\n", bind);
        return 2;
    }
    if ((r = uv_tcp_bind(&g.listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (r = uv_listen((uv_stream_t *)&g.listener, 128, on_accept)) != 0) {
        fprintf(stderr, "vault-standin: listen on %s:%d: %s\n", bind, port, uv_strerror(r));
        return 1;
    }
    uv_tcp_getsockname(&g.listener, (struct sockaddr *)&addr, &addrlen);
    port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)&addr)->sin_port);
    uv_signal_init(g.loop, &g.sigint);
    uv_signal_start(&g.sigint, on_signal, SIGINT);
    uv_signal_init(g.loop, &g.sigterm);
    uv_signal_start(&g.sigterm, on_signal, SIGTERM);
    fprintf(stderr, "vault-standin: listening on %s:%d (kv %s/%s, ttl %lds)\n", bind, port, g.mount, g.path, g.ttl_s);

    uv_run(g.loop, UV_RUN_DEFAULT);

    uv_run(g.loop, UV_RUN_NOWAIT);
    if (g.conns.open > 0) /* disposing the context now would abort in h2o; the OS cleans up */
        return 1;
    h2o_context_dispose(&g.ctx);
    uv_walk(g.loop, close_walk, NULL);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_loop_close(g.loop);
    h2o_config_dispose(&g.config);
    json_decref(g.secrets);
    return 0;
}
