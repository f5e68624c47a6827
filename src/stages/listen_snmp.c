/* The SNMP trap listener stage (listen_snmp.h). Reads datagrams with uv_udp, lets
 * domain/snmp_trap.c decode and shape them, and submits the events through a listener intake.
 * net-snmp is set up once without init_snmp (no MIBs, no /etc/snmp, no persistent state, D58)
 * and its log goes to MUTT's. */
#define _GNU_SOURCE
#include "mutt/listen_snmp.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/listen_intake.h"
#include "mutt/listen_storm.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/snmp_trap.h"
#include "mutt/stage_life.h"

#define DROP_LOG_INTERVAL_MS 60000 /* issue 15: a drop summary at most once a minute */

enum result { R_ACCEPTED = 0, R_DROPPED, R_BAD_COMMUNITY, R_MALFORMED, R_INVALID, R_RATE_LIMITED, R_COUNT_ };
static const char *const result_names[R_COUNT_] = {"accepted",  "dropped", "bad_community",
                                                   "malformed", "invalid", "rate_limited"};

struct snmp_listener {
    struct mutt_ctx *ctx;
    struct mutt_stage_life life;
    struct mutt_listen_intake intake;
    uv_udp_t udp;
    bool udp_open;
    bool storm_open; /* storm's timer not closed yet */
    bool enabled;
    struct mutt_listen_storm *storm; /* LISTENER_SOURCE_MAX_RATE; NULL = off */
    struct mutt_counter *results[R_COUNT_];
    struct mutt_counter *inform_replies; /* Response PDUs sent */
    uint64_t drops_since_log;
    uint64_t last_drop_log_ms;
    char rbuf[65536];
};

static struct snmp_listener g_snmp;

/* An INFORM waiting for its event's verdict: the Response goes out only once it is queued. */
struct inform_wait {
    struct sockaddr_storage to;
    size_t len;
    uint8_t resp[];
};

static void count(struct snmp_listener *l, enum result r)
{
    mutt_counter_inc(l->results[r]);
    if (r != R_DROPPED)
        return;
    l->drops_since_log++;
    uint64_t now = uv_now(l->ctx->loop);
    if (l->last_drop_log_ms == 0 || now - l->last_drop_log_ms >= DROP_LOG_INTERVAL_MS) {
        mutt_log_warn("listen", "snmp: %llu trap(s) dropped: ingest could not queue them (Redis unavailable or "
                                "queue full)", (unsigned long long)l->drops_since_log);
        l->drops_since_log = 0;
        l->last_drop_log_ms = now;
    }
}

static void maybe_stopped(struct snmp_listener *l)
{
    size_t pending = l->intake.pending ? l->intake.pending(l->intake.ud) : 0;
    if (!l->udp_open && !l->storm_open && mutt_stage_life_drained(&l->life, pending))
        mutt_stage_life_finish(&l->life);
}

/* net-snmp's log lines into MUTT's log (D58). */
static int on_snmp_log(int major, int minor, void *serverarg, void *clientarg)
{
    const struct snmp_log_message *m = serverarg;
    if (!m || !m->msg)
        return 0;
    size_t n = strlen(m->msg);
    while (n > 0 && m->msg[n - 1] == '\n')
        n--;
    enum mutt_log_level lvl = m->priority <= LOG_ERR ? MUTT_LOG_ERROR
                              : m->priority <= LOG_WARNING ? MUTT_LOG_WARNING
                              : m->priority <= LOG_INFO ? MUTT_LOG_INFO
                                                        : MUTT_LOG_DEBUG;
    mutt_log_kv(lvl, "net-snmp", NULL, NULL, "%.*s", (int)n, m->msg);
    return 0;
}

static void setup_library(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    mutt_snmp_lib_setup();
    snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING, on_snmp_log, NULL);
    snmp_enable_calllog(); /* replaces the stderr fallback */
}

static void on_verdict(void *arg, int verdict)
{
    struct snmp_listener *l = &g_snmp;
    struct inform_wait *w = arg;
    if (verdict == 0) {
        count(l, R_ACCEPTED);
        if (w && l->udp_open) {
            uv_buf_t b = uv_buf_init((char *)w->resp, (unsigned)w->len);
            /* try_send never blocks: a full socket buffer loses the Response and the sender
             * retries the inform (a duplicate event, never a lost one) */
            if (uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&w->to) >= 0)
                mutt_counter_inc(l->inform_replies);
        }
    } else {
        count(l, verdict == MUTT_EINVAL ? R_INVALID : R_DROPPED);
    }
    free(w);
    if (mutt_stage_life_draining(&l->life))
        maybe_stopped(l);
}

static void source_ip_of(const struct sockaddr *sa, char *ip, size_t len)
{
    ip[0] = '\0';
    if (sa->sa_family == AF_INET) {
        uv_ip4_name((const struct sockaddr_in *)sa, ip, len);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(s6, ip, len);
        /* an IPv4 sender on a dual-stack socket: snmptrapd names it by its IPv4 address */
        if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.'))
            memmove(ip, ip + 7, strlen(ip + 7) + 1);
    }
}

static void now_iso(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm); /* the traphandle's `date -u +%Y-%m-%dT%H:%M:%SZ` */
}

static void handle_datagram(struct snmp_listener *l, const uint8_t *data, size_t len, const struct sockaddr *from)
{
    struct mutt_snmp_msg m;
    if (mutt_snmp_decode(data, len, &m) != 0 || !mutt_snmp_is_notification(&m)) {
        mutt_snmp_msg_dispose(&m);
        count(l, R_MALFORMED);
        return;
    }
    if (!mutt_snmp_community_allowed(mutt_config_str(l->ctx->cfg, MUTT_CFG_SNMP_COMMUNITIES), m.community,
                                     m.community_len)) {
        mutt_snmp_msg_dispose(&m);
        count(l, R_BAD_COMMUNITY);
        return;
    }
    char ip[INET6_ADDRSTRLEN + 8], ts[32];
    source_ip_of(from, ip, sizeof ip);
    if (!mutt_listen_storm_admit(l->storm, ip)) {
        mutt_snmp_msg_dispose(&m);
        count(l, R_RATE_LIMITED); /* an inform stays unanswered: its sender retries */
        return;
    }
    now_iso(ts, sizeof ts);
    /* hostname: the sender's address (no reverse DNS on the loop; snmptrapd -n does the same) */
    json_t *ev = mutt_snmp_trap_event(&m, NULL, ip, ts);
    struct inform_wait *w = NULL;
    if (ev && mutt_snmp_is_inform(&m)) {
        uint8_t resp[65536];
        long n = mutt_snmp_inform_response(&m, resp, sizeof resp);
        if (n > 0 && (w = malloc(sizeof *w + (size_t)n)) != NULL) {
            memcpy(&w->to, from, from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
            w->len = (size_t)n;
            memcpy(w->resp, resp, (size_t)n);
        }
    }
    mutt_snmp_msg_dispose(&m);
    if (!ev) {
        free(w);
        count(l, R_MALFORMED); /* a notification without snmpTrapOID.0 */
        return;
    }
    int rc = l->intake.submit(l->intake.ud, ev, on_verdict, w);
    if (rc != 0) {
        free(w);
        count(l, rc == MUTT_EINVAL ? R_INVALID : R_DROPPED);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct snmp_listener *l = h->data;
    *buf = uv_buf_init(l->rbuf, sizeof l->rbuf);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags)
{
    struct snmp_listener *l = h->data;
    if (nread < 0) {
        mutt_log_warn("listen", "snmp: receive failed: %s", uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || !addr)
        return;
    if (flags & UV_UDP_PARTIAL) {
        count(l, R_MALFORMED); /* larger than any SNMP message we accept */
        return;
    }
    handle_datagram(l, (const uint8_t *)buf->base, (size_t)nread, addr);
}

static int register_metrics(struct snmp_listener *l, struct mutt_metrics *m)
{
    static const char *const labels[] = {"listener", "result", NULL};
    struct mutt_counter *fam = mutt_metrics_counter(
        m, "mutt_listener_messages_total",
        "Messages received by the syslog and SNMP listeners, by outcome (accepted = queued; dropped = could not be "
        "queued; bad_community, malformed, invalid = refused; rate_limited = over LISTENER_SOURCE_MAX_RATE for its "
        "sender).",
        labels);
    l->inform_replies = mutt_metrics_counter(m, "mutt_listener_snmp_inform_responses_total",
                                             "Response PDUs sent for SNMP informs whose event was queued.", NULL);
    if (!fam || !l->inform_replies)
        return MUTT_ENOMEM;
    for (int r = 0; r < R_COUNT_; r++) {
        const char *vals[] = {"snmp", result_names[r]};
        if ((l->results[r] = mutt_counter_labels(fam, vals)) == NULL)
            return MUTT_ENOMEM;
    }
    return 0;
}

/* D56: with INGEST_REUSEPORT the socket is shared with the other ingest processes through
 * SO_REUSEPORT (the kernel spreads senders over them); libuv 1.44 has no flag for it, so the
 * socket is made here and handed to libuv. Returns 0 or a libuv error. */
static int bind_reuseport(uv_udp_t *udp, const struct sockaddr_storage *ss)
{
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    int one = 1;
    socklen_t alen = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)ss, alen) != 0) {
        int err = uv_translate_sys_error(errno);
        close(fd);
        return err;
    }
    int rc = uv_udp_open(udp, fd);
    if (rc != 0)
        close(fd);
    return rc;
}

static int bind_udp(struct snmp_listener *l, const char *host, int port)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 && uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        mutt_log_error("listen", "config error: BIND_ADDR=%s is not an IP address", host);
        return MUTT_EINVAL;
    }
    if (uv_udp_init(l->ctx->loop, &l->udp) != 0)
        return MUTT_EIO;
    l->udp.data = l;
    l->udp_open = true;
    int rc = mutt_config_bool(l->ctx->cfg, MUTT_CFG_INGEST_REUSEPORT) ? bind_reuseport(&l->udp, &ss)
                                                                        : uv_udp_bind(&l->udp, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        int rcvbuf = 8 << 20; /* bursts wait in the kernel while a loop turn runs (capped by rmem_max) */
        uv_recv_buffer_size((uv_handle_t *)&l->udp, &rcvbuf);
        rc = uv_udp_recv_start(&l->udp, on_alloc, on_recv);
    }
    if (rc != 0) {
        mutt_log_error("listen", "snmp: cannot listen on udp %s:%d: %s", host, port, uv_strerror(rc));
        return MUTT_EIO;
    }
    return 0;
}

static int snmp_start(struct mutt_ctx *ctx)
{
    struct snmp_listener *l = &g_snmp;
    if (mutt_stage_life_started(&l->life))
        return MUTT_ESTATE;
    l->ctx = ctx;
    mutt_stage_life_init(&l->life, "listen-snmp", ctx);
    int port = (int)mutt_config_int(ctx->cfg, MUTT_CFG_SNMP_TRAP_PORT);
    l->enabled = port > 0;
    if (!l->enabled) {
        mutt_stage_life_set_state(&l->life, MUTT_STAGE_RUNNING);
        return 0;
    }
    int rc = register_metrics(l, ctx->metrics);
    if (rc == 0)
        rc = mutt_listen_intake_group("snmp-trap", &l->intake);
    if (rc != 0)
        return rc;
    setup_library();
    rc = mutt_listen_storm_start(ctx->loop, "snmp", "snmp-storm",
                                 (uint32_t)mutt_config_int(ctx->cfg, MUTT_CFG_LISTENER_SOURCE_MAX_RATE), &l->storm);
    if (rc != 0)
        return rc;
    const char *host = mutt_config_str(ctx->cfg, MUTT_CFG_LISTENER_BIND_ADDR); /* D39: = BIND_ADDR when empty */
    if (!host || !*host)
        host = mutt_config_str(ctx->cfg, MUTT_CFG_BIND_ADDR);
    if ((rc = bind_udp(l, host, port)) != 0)
        return rc;
    mutt_stage_life_set_state(&l->life, MUTT_STAGE_RUNNING);
    mutt_log_info("listen", "snmp: receiving v1/v2c traps and v2c informs on udp %s:%d -> %s", host, port,
                  mutt_config_str(ctx->cfg, MUTT_CFG_INGEST_QUEUE_NAME));
    return 0;
}

static void on_udp_closed(uv_handle_t *h)
{
    struct snmp_listener *l = h->data;
    l->udp_open = false;
    maybe_stopped(l);
}

static void on_storm_closed(void *arg)
{
    struct snmp_listener *l = arg;
    l->storm_open = false;
    maybe_stopped(l);
}

static void snmp_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct snmp_listener *l = &g_snmp;
    if (!mutt_stage_life_begin_stop(&l->life, done, privdata))
        return;
    if (mutt_listen_storm_stop(l->storm, on_storm_closed, l))
        l->storm_open = true;
    l->storm = NULL;
    if (l->udp_open && !uv_is_closing((uv_handle_t *)&l->udp))
        uv_close((uv_handle_t *)&l->udp, on_udp_closed);
    else
        maybe_stopped(l);
}

static enum mutt_role_health snmp_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    (void)ctx;
    (void)detail;
    (void)detail_len;
    return MUTT_HEALTH_OK; /* drops are counted, not a health verdict: UDP cannot push back */
}

const struct mutt_stage mutt_listen_snmp_stage = {
    .name = "ingest",
    .role = MUTT_ROLE_INGEST,
    .start = snmp_start,
    .stop = snmp_stop,
    .health = snmp_health,
    .reload = NULL,
};
