/* Helpers shared by integration tests: where the harness's throw-away services are
 * (tests/harness/services.sh writes MUTT_TEST_* into the environment), how to stop/start them
 * mid-test, and how to run the loop until a condition holds under a deadline (no sleeps). */
#ifndef MUTT_TESTENV_H
#define MUTT_TESTENV_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* Value of MUTT_TEST_<name> (e.g. "REDIS_PORT"); NULL when the harness did not set it. */
const char *mutt_test_env(const char *name);
int mutt_test_env_int(const char *name, int dflt);
/* True when the harness services are available (MUTT_TEST_REDIS_PORT and MUTT_TEST_PG_PORT set). */
bool mutt_test_have_services(void);

/* D60: a test may skip only for a reason code listed in tests/skips.list. MUTT_SKIP prints
 * "skip-reason: CODE: detail" (tests/harness/run-tests.sh lists every skip with it, and fails the
 * run for a code not in the list, or for a "harness" code while the harness services are up) and
 * then skips the current cmocka test. Use it instead of a bare skip(). */
void mutt_test_skip_note(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define MUTT_SKIP(code, ...)                        \
    do {                                            \
        mutt_test_skip_note((code), __VA_ARGS__);   \
        skip();                                     \
    } while (0)
/* Skips with "no-harness" unless the harness services are available. */
#define MUTT_NEED_SERVICES()                                                                          \
    do {                                                                                              \
        if (!mutt_test_have_services())                                                               \
            MUTT_SKIP("no-harness", "MUTT_TEST_REDIS_PORT/MUTT_TEST_PG_PORT not set (not run by run-tests.sh)"); \
    } while (0)

/* Runs `bash tests/harness/services.sh <action>` (actions: stop-redis start-redis stop-pg
 * start-pg pause-redis MS). Returns the exit status (0 = ok). Blocking: test code only. */
int mutt_test_service(const char *action);

/* Runs the loop (UV_RUN_ONCE steps) until *flag becomes true or deadline_ms passes.
 * Returns true when the flag was seen. */
bool mutt_test_run_until(uv_loop_t *loop, const bool *flag, uint64_t deadline_ms);
/* Same, for a counter reaching at least `target`. */
bool mutt_test_run_until_count(uv_loop_t *loop, const int *counter, int target, uint64_t deadline_ms);
/* Runs the loop for `ms` milliseconds (to let timers/reconnects happen). */
void mutt_test_run_for(uv_loop_t *loop, uint64_t ms);
/* Closes every handle still open and runs the loop until uv_loop_close succeeds. Returns the
 * uv_loop_close result (0 = nothing leaked). */
int mutt_test_loop_close(uv_loop_t *loop);

#endif
