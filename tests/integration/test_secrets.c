/* Integration tests of the Vault secrets provider (src/core/secrets.c) against the Vault API
 * stand-in (tests/harness/vault-standin.c, started here as a child process on a free port):
 * AppRole login, KV v2 read into the config, renewal below the threshold, re-login after token
 * expiry, 403 on a bad secret id, rotation picked up by the periodic re-read, outage recovery.
 * Needs: the vault-standin binary (MUTT_VAULT_STANDIN_BIN, else <build>/tests/vault-standin next
 * to this binary's directory); skips without it. No Redis or PostgreSQL. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <uv.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/secrets.h"
#include "testenv.h"

#define DEADLINE_MS 10000

static const char *argv0;
static char standin_path[PATH_MAX];

static bool find_standin(void)
{
    const char *env = getenv("MUTT_VAULT_STANDIN_BIN");
    if (env && access(env, X_OK) == 0) {
        snprintf(standin_path, sizeof(standin_path), "%s", env);
        return true;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", argv0);
    snprintf(standin_path, sizeof(standin_path), "%s/../vault-standin", dirname(tmp));
    return access(standin_path, X_OK) == 0;
}

/* ------------------------------------------------------------------------------ fixture */

struct fx {
    pid_t pid;
    int port;
    uv_loop_t loop;
    char secret_file[64];
    char cfg_file[64];
    struct mutt_config *cfg;
    struct mutt_secrets *s;
    int ready_calls;
    int ready_status;
    int changes;
    int ingest_key_changes;
};

/* Starts vault-standin --port 0 plus args (NULL-terminated) and reads its port. Blocking. */
static void standin_start(struct fx *fx, ...)
{
    const char *args[32] = { standin_path, "--port", "0" };
    int n = 3;
    va_list ap;
    va_start(ap, fx);
    for (const char *a; n < 31 && (a = va_arg(ap, const char *));)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(standin_path, (char *const *)args);
        _exit(127);
    }
    close(fds[1]);
    char buf[512];
    size_t len = 0;
    struct pollfd p = { .fd = fds[0], .events = POLLIN };
    fx->port = 0;
    while (len < sizeof(buf) - 1 && poll(&p, 1, 5000) == 1) {
        ssize_t r = read(fds[0], buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        const char *at = strstr(buf, "listening on 127.0.0.1:");
        if (at && strchr(at, '(')) {
            fx->port = atoi(at + strlen("listening on 127.0.0.1:"));
            break;
        }
    }
    close(fds[0]);
    fx->pid = pid;
    assert_true(fx->port > 0);
}

static size_t sink_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    char *out = userdata;
    size_t have = strlen(out), n = size * nmemb;
    if (have + n < 1024) {
        memcpy(out + have, ptr, n);
        out[have + n] = '\0';
    }
    return n;
}

/* POSTs to the stand-in's control path; returns the body (static buffer). Blocking: test code. */
static const char *control(struct fx *fx, const char *path_and_query)
{
    static char body[1024];
    body[0] = '\0';
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_control/%s", fx->port, path_and_query);
    CURL *e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    if (strncmp(path_and_query, "stats", 5) != 0)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    assert_int_equal(rc, CURLE_OK);
    return body;
}

/* A counter from the stand-in's /_control/stats. */
static long standin_stat(struct fx *fx, const char *name)
{
    const char *body = control(fx, "stats");
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(body, key);
    assert_non_null(at);
    return atol(at + strlen(key));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads a config: vault keys pointing at the stand-in (when port > 0) + extra lines. */
static void load_cfg(struct fx *fx, bool vault, const char *extra)
{
    char text[2048];
    int n = 0;
    if (vault)
        n = snprintf(text, sizeof text,
                     "VAULT_ADDR=http://127.0.0.1:%d/\nVAULT_ROLE_ID=mutt-role\nVAULT_SECRET_ID_FILE=%s\n"
                     "VAULT_MOUNT_PATH=secret\nVAULT_SECRET_PATH=mutt/prod\n",
                     fx->port, fx->secret_file);
    snprintf(text + n, sizeof text - (size_t)n, "%s", extra ? extra : "");
    write_file(fx->cfg_file, text);
    char *envp[] = { NULL };
    struct mutt_config_report rep = { 0 };
    fx->cfg = mutt_config_load(fx->cfg_file, envp, MUTT_ROLE_INGEST, &rep);
    assert_non_null(fx->cfg);
    for (size_t i = 0; i < rep.n_errors; i++)
        print_message("%s\n", rep.errors[i]);
    assert_int_equal(rep.n_errors, 0);
    mutt_config_report_free(&rep);
}

static void on_ready(void *privdata, int status)
{
    struct fx *fx = privdata;
    fx->ready_calls++;
    fx->ready_status = status;
}

static void on_change(void *privdata, enum mutt_cfg_key key)
{
    struct fx *fx = privdata;
    fx->changes++;
    if (key == MUTT_CFG_INGEST_API_KEY)
        fx->ingest_key_changes++;
}

static void start_secrets(struct fx *fx)
{
    fx->s = mutt_secrets_create(&fx->loop, fx->cfg, NULL, NULL);
    assert_non_null(fx->s);
    mutt_secrets_on_change(fx->s, on_change, fx);
    assert_int_equal(mutt_secrets_start(fx->s, on_ready, fx), 0);
    assert_int_equal(fx->ready_calls, 0); /* never inside start */
}

static int setup(void **state)
{
    if (!find_standin()) {
        *state = NULL;
        return 0;
    }
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    snprintf(fx->secret_file, sizeof fx->secret_file, "/tmp/mutt-secrets-it-sid-XXXXXX");
    int fd = mkstemp(fx->secret_file);
    assert_true(fd >= 0);
    close(fd);
    write_file(fx->secret_file, "  mutt-secret-id\n"); /* surrounding blanks are trimmed */
    snprintf(fx->cfg_file, sizeof fx->cfg_file, "/tmp/mutt-secrets-it-cfg-XXXXXX");
    fd = mkstemp(fx->cfg_file);
    assert_true(fd >= 0);
    close(fd);
    fx->ready_status = 1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    if (!fx)
        return 0;
    mutt_secrets_destroy(fx->s);
    assert_int_equal(mutt_test_loop_close(&fx->loop), 0);
    assert_string_equal(mutt_secrets_vault_status(), "not_configured"); /* destroyed: nobody to report on */
    mutt_config_destroy(fx->cfg);
    if (fx->pid > 0) {
        kill(fx->pid, SIGTERM);
        waitpid(fx->pid, NULL, 0);
    }
    unlink(fx->secret_file);
    unlink(fx->cfg_file);
    free(fx);
    return 0;
}

#define NEED_STANDIN(state)                                                                                  \
    do {                                                                                                     \
        if (!*(state))                                                                                       \
            MUTT_SKIP("no-harness", "vault stand-in not running");                                                                                          \
    } while (0)

static bool run_until_ready(struct fx *fx)
{
    return mutt_test_run_until_count(&fx->loop, &fx->ready_calls, 1, DEADLINE_MS);
}

/* Runs the loop until the provider's stat `field` reaches target (deadline). */
static bool run_until_stat(struct fx *fx, size_t offset, uint64_t target)
{
    uint64_t start = uv_now(&fx->loop);
    for (;;) {
        struct mutt_secrets_stats st;
        mutt_secrets_get_stats(fx->s, &st);
        if (*(uint64_t *)((char *)&st + offset) >= target)
            return true;
        if (uv_now(&fx->loop) - start > DEADLINE_MS)
            return false;
        mutt_test_run_for(&fx->loop, 20);
    }
}
#define STAT(f) offsetof(struct mutt_secrets_stats, f)

static struct mutt_secrets_stats stats_of(struct fx *fx)
{
    struct mutt_secrets_stats st;
    mutt_secrets_get_stats(fx->s, &st);
    return st;
}

/* ------------------------------------------------------------------------------ tests */

static void test_secrets_login_and_kv_read_fill_the_config(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "INGEST_API_KEY=ingest-key-1", "--secret", "REDIS_PASS_CURRENT=redis-1",
                  "--secret", "DB_PASS=db-1", "--secret", "MOOG_API_KEY=moog-1", "--secret", "UNRELATED=x", NULL);
    load_cfg(fx, true, "INGEST_API_KEY=from-file\nWEBUI_API_KEY=web-from-file\n");
    start_secrets(fx);
    assert_string_equal(mutt_secrets_vault_status(), "disconnected"); /* nothing succeeded yet */

    assert_true(run_until_ready(fx));
    assert_int_equal(fx->ready_status, 0);
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "ingest-key-1");
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_REDIS_PASS_CURRENT), "redis-1");
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_DB_PASS_CURRENT), "db-1"); /* alias DB_PASS */
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_MOOG_API_KEY), "moog-1");
    /* not in Vault: the file's value stays */
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_WEBUI_API_KEY), "web-from-file");
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_CONNECTED);
    assert_string_equal(mutt_secrets_vault_status(), "connected");
    struct mutt_secrets_stats st = stats_of(fx);
    assert_int_equal(st.logins, 1);
    assert_int_equal(st.reads, 1);
    assert_int_equal(st.changes, 4);
    assert_int_equal(fx->changes, 4);
    assert_int_equal(standin_stat(fx, "logins"), 1);
    assert_int_equal(standin_stat(fx, "reads"), 1);
}

static void test_secrets_token_below_threshold_is_renewed(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--ttl", "3", "--secret", "INGEST_API_KEY=k", NULL);
    load_cfg(fx, true, "VAULT_TOKEN_RENEW_THRESHOLD=10\nVAULT_RENEW_CHECK_INTERVAL=1\n");
    start_secrets(fx);
    assert_true(run_until_ready(fx));
    assert_true(run_until_stat(fx, STAT(renewals), 2));
    assert_true(stats_of(fx).lookups >= 2);
    assert_int_equal(stats_of(fx).logins, 1); /* renewed, never logged in again */
    assert_true(standin_stat(fx, "renewals") >= 2);
    assert_int_equal(standin_stat(fx, "logins"), 1);
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_CONNECTED);
}

static void test_secrets_token_above_threshold_is_not_renewed(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--ttl", "600", "--secret", "INGEST_API_KEY=k", NULL);
    load_cfg(fx, true, "VAULT_TOKEN_RENEW_THRESHOLD=60\nVAULT_RENEW_CHECK_INTERVAL=1\n");
    start_secrets(fx);
    assert_true(run_until_ready(fx));
    assert_true(run_until_stat(fx, STAT(lookups), 2));
    assert_int_equal(stats_of(fx).renewals, 0);
    assert_int_equal(standin_stat(fx, "renewals"), 0);
}

static void test_secrets_expired_token_leads_to_a_new_login(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--ttl", "600", "--secret", "INGEST_API_KEY=k", NULL);
    load_cfg(fx, true, "SECRETS_REFRESH_INTERVAL=1\n");
    start_secrets(fx);
    assert_true(run_until_ready(fx));
    assert_int_equal(stats_of(fx).logins, 1);

    control(fx, "expire-tokens");
    assert_true(run_until_stat(fx, STAT(logins), 2));
    assert_true(run_until_stat(fx, STAT(reads), 2)); /* the refused read was done again */
    assert_true(standin_stat(fx, "read_denied") >= 1);
    assert_int_equal(standin_stat(fx, "logins"), 2);
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_CONNECTED);
    assert_int_equal(fx->ready_calls, 1);
}

static void test_secrets_bad_secret_id_is_refused_with_403_and_disconnected(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "INGEST_API_KEY=k", NULL);
    write_file(fx->secret_file, "wrong-secret-id-value\n");
    load_cfg(fx, true, "INGEST_API_KEY=from-file\n");
    start_secrets(fx);
    assert_true(run_until_stat(fx, STAT(login_failures), 1));
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_DISCONNECTED);
    assert_string_equal(mutt_secrets_vault_status(), "disconnected");
    const char *err = mutt_secrets_last_error(fx->s);
    assert_non_null(strstr(err, "HTTP 403"));
    assert_non_null(strstr(err, "permission denied"));
    assert_null(strstr(err, "wrong-secret")); /* never the secret id itself */
    assert_int_equal(fx->ready_calls, 0);
    assert_int_equal(stats_of(fx).logins, 0);
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "from-file");

    /* the file is read again for each attempt: a corrected secret id lets it in */
    write_file(fx->secret_file, "mutt-secret-id");
    assert_true(run_until_ready(fx));
    assert_int_equal(fx->ready_status, 0);
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_CONNECTED);
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "k");
}

static void test_secrets_missing_secret_id_file_is_reported_by_name(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "INGEST_API_KEY=k", NULL);
    unlink(fx->secret_file);
    load_cfg(fx, true, NULL);
    start_secrets(fx);
    assert_true(run_until_stat(fx, STAT(login_failures), 1));
    assert_non_null(strstr(mutt_secrets_last_error(fx->s), fx->secret_file));
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_DISCONNECTED);
    assert_int_equal(standin_stat(fx, "logins") + standin_stat(fx, "login_failures"), 0); /* nothing sent */
}

static void test_secrets_rotation_is_applied_within_the_refresh_interval(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "INGEST_API_KEY=old-key", "--secret", "INGEST_API_KEY_NEXT=next-key", NULL);
    load_cfg(fx, true, "SECRETS_REFRESH_INTERVAL=1\n");
    start_secrets(fx);
    assert_true(run_until_ready(fx));
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "old-key");
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY_NEXT), "next-key");
    assert_int_equal(fx->ingest_key_changes, 1);

    /* promote NEXT to CURRENT and retire NEXT, as an operator finishes a rotation */
    control(fx, "set?INGEST_API_KEY=next-key");
    control(fx, "unset?INGEST_API_KEY_NEXT");
    uint64_t t0 = uv_now(&fx->loop);
    assert_true(mutt_test_run_until_count(&fx->loop, &fx->ingest_key_changes, 2, DEADLINE_MS));
    assert_true(uv_now(&fx->loop) - t0 <= 2500); /* one refresh interval (1 s) plus slack */
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "next-key");
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY_NEXT), ""); /* retired */
    assert_int_equal(stats_of(fx).logins, 1);
}

static void test_secrets_missing_required_secret_holds_ready_until_it_arrives(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "MOOG_API_KEY=m", NULL); /* no INGEST_API_KEY: the ingest role needs it */
    load_cfg(fx, true, "SECRETS_REFRESH_INTERVAL=1\n");
    start_secrets(fx);
    assert_true(run_until_stat(fx, STAT(reads), 2));
    assert_int_equal(fx->ready_calls, 0);
    control(fx, "set?INGEST_API_KEY=arrived");
    assert_true(run_until_ready(fx));
    assert_int_equal(fx->ready_status, 0);
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "arrived");
}

static void test_secrets_vault_outage_disconnects_and_recovers(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "INGEST_API_KEY=k", NULL);
    load_cfg(fx, true, "SECRETS_REFRESH_INTERVAL=1\n");
    start_secrets(fx);
    assert_true(run_until_ready(fx));
    control(fx, "outage?status=503");
    assert_true(run_until_stat(fx, STAT(read_failures), 1));
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_DISCONNECTED);
    assert_non_null(strstr(mutt_secrets_last_error(fx->s), "HTTP 503"));
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "k"); /* kept through the outage */
    uint64_t reads = stats_of(fx).reads;
    control(fx, "outage?status=0");
    assert_true(run_until_stat(fx, STAT(reads), reads + 1));
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_CONNECTED);
}

static void test_secrets_without_vault_addr_are_not_configured_and_ready_at_once(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    load_cfg(fx, false, "INGEST_API_KEY=env-key\n");
    start_secrets(fx);
    assert_string_equal(mutt_secrets_vault_status(), "not_configured");
    /* The callback comes from a 0 ms timer. Not run_until_ready: with no other handle active,
     * its UV_RUN_ONCE would then block in poll until its own deadline timer. */
    mutt_test_run_for(&fx->loop, 100);
    assert_int_equal(fx->ready_calls, 1);
    assert_int_equal(fx->ready_status, 0);
    assert_int_equal(mutt_secrets_state(fx->s), MUTT_SECRETS_NOT_CONFIGURED);
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_INGEST_API_KEY), "env-key");
    assert_int_equal(stats_of(fx).logins, 0);
}

static void test_secrets_stop_before_ready_reports_canceled_once(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "INGEST_API_KEY=k", NULL);
    load_cfg(fx, true, NULL);
    start_secrets(fx);
    mutt_secrets_stop(fx->s);
    assert_int_equal(fx->ready_calls, 1);
    assert_int_equal(fx->ready_status, MUTT_ECANCELED);
    mutt_test_run_for(&fx->loop, 200);
    assert_int_equal(fx->ready_calls, 1);
    assert_int_equal(standin_stat(fx, "logins"), 0);
}

static void test_secrets_load_once_fills_the_config_without_a_running_loop(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "DB_PASS_CURRENT=db-once", NULL);
    load_cfg(fx, true, NULL);
    char err[256];
    assert_int_equal(mutt_secrets_load_once(fx->cfg, DEADLINE_MS, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_DB_PASS_CURRENT), "db-once");
    assert_int_equal(standin_stat(fx, "reads"), 1);
    assert_string_equal(mutt_secrets_vault_status(), "not_configured"); /* no provider left behind */
}

static void test_secrets_load_once_reports_a_refused_login(void **state)
{
    NEED_STANDIN(state);
    struct fx *fx = *state;
    standin_start(fx, "--secret", "DB_PASS_CURRENT=db-once", NULL);
    write_file(fx->secret_file, "wrong-secret-id-value");
    load_cfg(fx, true, "DB_PASS_CURRENT=from-file\n");
    char err[256];
    assert_int_equal(mutt_secrets_load_once(fx->cfg, DEADLINE_MS, err, sizeof err), MUTT_EIO);
    assert_non_null(strstr(err, "HTTP 403"));
    assert_null(strstr(err, "wrong-secret"));
    assert_string_equal(mutt_config_str(fx->cfg, MUTT_CFG_DB_PASS_CURRENT), "from-file");
}

int main(int argc, char **argv)
{
    (void)argc;
    argv0 = argv[0];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secrets_login_and_kv_read_fill_the_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_token_below_threshold_is_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_token_above_threshold_is_not_renewed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_expired_token_leads_to_a_new_login, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_bad_secret_id_is_refused_with_403_and_disconnected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_missing_secret_id_file_is_reported_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_rotation_is_applied_within_the_refresh_interval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_missing_required_secret_holds_ready_until_it_arrives, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_vault_outage_disconnects_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_without_vault_addr_are_not_configured_and_ready_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_stop_before_ready_reports_canceled_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_load_once_fills_the_config_without_a_running_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_load_once_reports_a_refused_login, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("secrets", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
