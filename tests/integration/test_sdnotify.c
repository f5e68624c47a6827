/* sd_notify without libsystemd (src/core/sdnotify.c): the datagrams a real systemd would read
 * from $NOTIFY_SOCKET. The test plays systemd: it binds a unix datagram socket (a path, and an
 * abstract name), points NOTIFY_SOCKET at it and reads what arrives. Needs no harness service. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <uv.h>

#include "mutt/error.h"
#include "mutt/sdnotify.h"
#include "testenv.h"

struct fake_systemd {
    int fd;
    char path[108];
    char dir[64];
};

static int setup(void **state)
{
    struct fake_systemd *s = calloc(1, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "/tmp/mutt-sdnotify.XXXXXX");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(s->path, sizeof(s->path), "%s/notify", s->dir);
    s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return -1;
    setenv("NOTIFY_SOCKET", s->path, 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct fake_systemd *s = *state;
    close(s->fd);
    unlink(s->path);
    rmdir(s->dir);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    free(s);
    return 0;
}

/* Next datagram on fd as a string, or "" when none is queued (the sends are synchronous
 * sendto calls, so a datagram that was sent is already queued). */
static const char *next_datagram(int fd)
{
    static char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void test_sdnotify_ready_stopping_and_watchdog_each_send_one_datagram(void **state)
{
    struct fake_systemd *s = *state;
    assert_int_equal(1, mutt_sdnotify_ready());
    assert_int_equal(1, mutt_sdnotify_watchdog());
    assert_int_equal(1, mutt_sdnotify_stopping());
    assert_string_equal("READY=1", next_datagram(s->fd));
    assert_string_equal("WATCHDOG=1", next_datagram(s->fd));
    assert_string_equal("STOPPING=1", next_datagram(s->fd));
    assert_string_equal("", next_datagram(s->fd));
}

static void test_sdnotify_sends_several_assignments_in_one_datagram(void **state)
{
    struct fake_systemd *s = *state;
    assert_int_equal(1, mutt_sdnotify("READY=1\nSTATUS=running"));
    assert_string_equal("READY=1\nSTATUS=running", next_datagram(s->fd));
}

static void test_sdnotify_is_a_no_op_without_notify_socket(void **state)
{
    struct fake_systemd *s = *state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(0, mutt_sdnotify_ready());
    assert_string_equal("", next_datagram(s->fd));
}

static void test_sdnotify_refuses_a_relative_socket_path(void **state)
{
    setenv("NOTIFY_SOCKET", "relative/notify", 1);
    assert_int_equal(MUTT_EINVAL, mutt_sdnotify_ready());
}

static void test_sdnotify_reports_a_missing_socket_as_an_io_error(void **state)
{
    struct fake_systemd *s = *state;
    char gone[160];
    snprintf(gone, sizeof(gone), "%s/nobody-listens", s->dir);
    setenv("NOTIFY_SOCKET", gone, 1);
    assert_int_equal(MUTT_EIO, mutt_sdnotify_ready());
}

static void test_sdnotify_reaches_an_abstract_socket(void **state)
{
    char name[64];
    int n = snprintf(name, sizeof(name), "@mutt-sdnotify-test-%d", (int)getpid());
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path + 1, name + 1, (size_t)n - 1); /* sun_path[0] = NUL: abstract */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, len));
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(1, mutt_sdnotify_ready());
    assert_string_equal("READY=1", next_datagram(fd));
    close(fd);
}

static void test_sdnotify_watchdog_usec_honours_watchdog_pid(void **state)
{
    char pid[32];
    assert_int_equal(0, (int)mutt_sdnotify_watchdog_usec());
    setenv("WATCHDOG_USEC", "30000000", 1);
    assert_true(mutt_sdnotify_watchdog_usec() == 30000000u);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    assert_true(mutt_sdnotify_watchdog_usec() == 30000000u);
    snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", pid, 1);
    assert_true(mutt_sdnotify_watchdog_usec() == 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    assert_true(mutt_sdnotify_watchdog_usec() == 0);
}

struct ping_counter {
    int pings;
    int other;
};

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct ping_counter *c = p->data;
    char buf[64];
    ssize_t n;
    while ((n = recv(p->io_watcher.fd, buf, sizeof(buf) - 1, 0)) > 0) {
        buf[n] = '\0';
        if (strcmp(buf, "WATCHDOG=1") == 0)
            c->pings++;
        else
            c->other++;
    }
}

static void test_sdnotify_watchdog_timer_pings_at_half_the_interval_until_stopped(void **state)
{
    struct fake_systemd *s = *state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    setenv("WATCHDOG_USEC", "40000", 1); /* 40 ms: a ping every 20 ms */
    struct ping_counter c = {0};
    uv_poll_t poll;
    uv_poll_init(&loop, &poll, s->fd);
    poll.data = &c;
    uv_poll_start(&poll, UV_READABLE, on_readable);

    uint64_t t0 = uv_now(&loop);
    struct mutt_sdnotify_watchdog *w = mutt_sdnotify_watchdog_start(&loop);
    assert_non_null(w);
    assert_true(mutt_test_run_until_count(&loop, &c.pings, 5, 5000));
    uv_update_time(&loop);
    /* 1 immediate ping + 4 ticks of 20 ms: at least 80 ms must have passed */
    assert_true(uv_now(&loop) - t0 >= 75);
    assert_int_equal(0, c.other);

    mutt_sdnotify_watchdog_stop(w);
    int seen = c.pings;
    mutt_test_run_for(&loop, 100);
    assert_int_equal(seen, c.pings);
    uv_close((uv_handle_t *)&poll, NULL);
    assert_int_equal(0, mutt_test_loop_close(&loop));
}

static void test_sdnotify_watchdog_is_not_started_when_systemd_did_not_ask(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    assert_null(mutt_sdnotify_watchdog_start(&loop)); /* no WATCHDOG_USEC */
    setenv("WATCHDOG_USEC", "40000", 1);
    unsetenv("NOTIFY_SOCKET");
    assert_null(mutt_sdnotify_watchdog_start(&loop));
    mutt_sdnotify_watchdog_stop(NULL);
    assert_int_equal(0, mutt_test_loop_close(&loop));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sdnotify_ready_stopping_and_watchdog_each_send_one_datagram, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_sends_several_assignments_in_one_datagram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_is_a_no_op_without_notify_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_refuses_a_relative_socket_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_reports_a_missing_socket_as_an_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_reaches_an_abstract_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_watchdog_usec_honours_watchdog_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_watchdog_timer_pings_at_half_the_interval_until_stopped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sdnotify_watchdog_is_not_started_when_systemd_did_not_ask, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("sdnotify", tests, NULL, NULL);
}
