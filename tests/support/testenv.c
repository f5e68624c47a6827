/* See testenv.h. Test-only code: blocking calls (system) are fine here. */
#include "testenv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *mutt_test_env(const char *name)
{
    char key[128];
    snprintf(key, sizeof(key), "MUTT_TEST_%s", name);
    const char *v = getenv(key);
    return (v && *v) ? v : NULL;
}

int mutt_test_env_int(const char *name, int dflt)
{
    const char *v = mutt_test_env(name);
    return v ? atoi(v) : dflt;
}

bool mutt_test_have_services(void)
{
    return mutt_test_env("REDIS_PORT") && mutt_test_env("PG_PORT");
}

void mutt_test_skip_note(const char *code, const char *fmt, ...)
{
    va_list ap;
    /* stdout, like cmocka's own lines, so the note stays between "[ RUN ]" and "[ SKIPPED ]" */
    printf("skip-reason: %s: ", code);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

int mutt_test_service(const char *action)
{
    const char *root = mutt_test_env("ROOT");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "bash %s/tests/harness/services.sh %s >&2", root ? root : ".", action);
    int rc = system(cmd);
    if (rc == -1)
        return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static bool run_until(uv_loop_t *loop, const bool *flag, const int *counter, int target, uint64_t deadline_ms)
{
    bool expired = false;
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, on_deadline, deadline_ms, 0);
    for (;;) {
        if (flag && *flag)
            break;
        if (counter && *counter >= target)
            break;
        if (expired)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* let the close callback run: the timer lives on our stack */
    return flag ? *flag : (*counter >= target);
}

bool mutt_test_run_until(uv_loop_t *loop, const bool *flag, uint64_t deadline_ms)
{
    return run_until(loop, flag, NULL, 0, deadline_ms);
}

bool mutt_test_run_until_count(uv_loop_t *loop, const int *counter, int target, uint64_t deadline_ms)
{
    return run_until(loop, NULL, counter, target, deadline_ms);
}

void mutt_test_run_for(uv_loop_t *loop, uint64_t ms)
{
    bool never = false;
    run_until(loop, &never, NULL, 0, ms);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int mutt_test_loop_close(uv_loop_t *loop)
{
    for (int i = 0; i < 100; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        int rc = uv_loop_close(loop);
        if (rc == 0)
            return 0;
        if (i == 50)
            uv_walk(loop, close_walk, NULL);
    }
    return uv_loop_close(loop);
}
