/* Native syslog listeners (listen_syslog.h). UDP: each datagram is one message, read up to
 * UDP_MMSG a system call; the datagrams of one loop turn go to ingest as one submission (one
 * verdict) from a check handle after the poll phase; while ingest
 * cannot queue (Redis down, queue full, rate limit, too many datagrams waiting) it is dropped and
 * counted, never waited for, with one summary log line a minute at most. TCP: per connection the
 * first byte picks the framing (RFC 6587: a digit = octet counting, else LF-delimited); the
 * complete frames in the buffer go to ingest as one submission and the connection stops reading
 * until its verdict: queued → the frames are consumed and reading resumes; refused → the same
 * frames are submitted again after RETRY_MS, still without reading (the sender's window fills:
 * backpressure, nothing lost). A message over MUTT_SYSLOG_MAX_MSG is cut there and counted, the
 * rest of its frame skipped. Loop thread only; one instance per process. */
#define _GNU_SOURCE
#include "mutt/listen_syslog.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mutt/config.h"
#include "mutt/error.h"
#include "mutt/ingest_intake.h"
#include "mutt/listen_storm.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/syslog_frame.h"
#include "mutt/syslog_parse.h"

#define RETRY_MS 200                 /* a refused TCP submission is tried again this often */
#define TCP_BATCH_MAX 500            /* frames per submission */
#define TCP_BUF_CAP (MUTT_SYSLOG_MAX_MSG + 32) /* one maximal frame with its length prefix */
#define UDP_PENDING_MAX 20000        /* datagrams waiting for a verdict before new ones are dropped */
#define UDP_BATCH_MAX 1000           /* datagrams per submission (one loop turn's worth, at most) */
#define UDP_MMSG 20                  /* datagrams per recvmmsg (libuv's widest) */
#define UDP_CHUNK (64 * 1024)        /* libuv's slice of the receive buffer per datagram */
#define DROP_LOG_INTERVAL_MS 60000
#define EVENT_SLACK 1024             /* room left for the fields ingest adds (ids, severity) */
#define SMALL_EVENT_FIXED (6 * 256 + 1024) /* default hostname escaped + keys, source_ip, timestamp */

enum result { R_ACCEPTED, R_DROPPED, R_TRUNCATED, R_INVALID, R_RATE_LIMITED, R_COUNT_ };
static const char *const result_names[R_COUNT_] = {"accepted", "dropped", "truncated", "invalid", "rate_limited"};
enum lst { L_UDP, L_TCP, L_TLS, L_COUNT_ };
static const char *const lst_names[L_COUNT_] = {"syslog_udp", "syslog_tcp", "syslog_tls"};
#define TLS_CBUF 16384 /* ciphertext read per callback */

struct tcp_conn;

struct listen_syslog {
    struct mutt_ctx *ctx;
    uv_udp_t udp;
    uv_tcp_t tcp;
    uv_tcp_t tls;
    bool udp_open, tcp_open, tls_open;
    SSL_CTX *ssl_ctx; /* SYSLOG_TLS_CERT_FILE / _KEY_FILE */
    char host[256];         /* this host's name: hostname of header-less lines */
    size_t max_event_bytes; /* MAX_EVENT_BYTES */
    size_t udp_pending;     /* datagrams submitted, verdict not back yet */
    uint64_t udp_dropped_since_log;
    uint64_t last_drop_log_ms;
    struct tcp_conn *conns; /* open TCP connections (stop closes them) */
    struct mutt_listen_storm *storm; /* LISTENER_SOURCE_MAX_RATE; NULL = off */
    size_t handles_open;    /* handles whose close callback has not run yet */
    bool stopping;
    mutt_stage_done_cb *done;
    void *done_priv;
    struct mutt_counter *m[L_COUNT_][R_COUNT_];
    uv_check_t udp_flush;    /* submits the loop turn's datagrams after the poll phase */
    bool udp_flush_open;
    json_t *ubatch[UDP_BATCH_MAX]; /* this turn's events, not submitted yet */
    size_t nubatch;
    char udp_buf[UDP_MMSG * UDP_CHUNK];
    bool udp_buf_busy;
};

static struct listen_syslog g_ls;

struct tcp_conn {
    uv_tcp_t h;
    uv_timer_t retry;
    struct listen_syslog *ls;
    struct tcp_conn *next;
    char ip[64];
    struct mutt_syslog_framer fr; /* RFC 6587 framing, picked from the first byte */
    char *buf;   /* TCP_BUF_CAP bytes */
    size_t len;
    bool waiting;    /* a submission is out (reading stopped) */
    bool eof;        /* the peer is done: close once the buffer is consumed */
    bool closing;
    int closed_parts; /* close callbacks run so far (of 2) */
    bool resubmit;    /* the frames at the front were refused once: already counted */
    enum lst kind;    /* L_TCP or L_TLS */
    SSL *ssl;         /* TLS: plaintext comes out of SSL_read into buf; NULL for plain TCP */
    BIO *rbio, *wbio; /* memory BIOs: ciphertext in from the socket, out to it (owned by ssl) */
    char *cbuf;       /* TLS_CBUF bytes of ciphertext per read */
    size_t writes;    /* TLS records being written: closing waits for them (close_notify) */
    bool close_wanted;
    size_t consume;  /* bytes the submission out covers */
    size_t checked;  /* buf[0..checked) holds frames storm control already let through: a
                      * resubmission does not judge (or count) them again */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void count(struct listen_syslog *ls, enum lst l, enum result r, size_t n)
{
    if (n)
        mutt_counter_add(ls->m[l][r], (double)n);
}

static void addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
    out[0] = '\0';
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, out, cap);
    else if (sa->sa_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)sa, out, cap);
}

/* Cuts the message so the stored event fits MAX_EVENT_BYTES (D56), at a UTF-8 boundary, and
 * marks the event truncated. True when it cut. */
static bool fit_event(struct listen_syslog *ls, json_t *ev)
{
    bool cut = false;
    for (int tries = 0; tries < 8; tries++) {
        char *s = json_dumps(ev, JSON_COMPACT);
        if (!s)
            return cut;
        size_t size = strlen(s);
        free(s);
        if (size + EVENT_SLACK <= ls->max_event_bytes)
            return cut;
        json_t *m = json_object_get(ev, "message");
        const char *msg = json_string_value(m);
        if (!msg || json_string_length(m) == 0)
            return cut;
        size_t mlen = json_string_length(m), over = size + EVENT_SLACK - ls->max_event_bytes;
        size_t keep = mlen > over ? mlen - over : 0;
        while (keep > 0 && ((unsigned char)msg[keep] & 0xC0) == 0x80)
            keep--;
        json_object_set_new(ev, "message", json_stringn(msg, keep));
        cut = true;
    }
    return cut;
}

/* One message → event (NULL for a blank one). *cut is set when the message was shortened. */
static json_t *make_event(struct listen_syslog *ls, const char *line, size_t len, const char *ip, bool *cut)
{
    const struct mutt_syslog_origin origin = {.default_host = ls->host, .source_ip = ip[0] ? ip : NULL,
                                              .now_ms = (int64_t)now_ms()};
    if (!mutt_syslog_trim(&line, &len))
        return NULL;
    json_t *ev = mutt_syslog_parse(line, len, &origin);
    /* Every field comes from the line (≤ 6 bytes of JSON per byte, \u00XX) or is short (the
     * default hostname, source_ip, timestamp, names): a line that small cannot make an event over
     * MAX_EVENT_BYTES, so the measuring dump is skipped for it (the common case, and a serialisation
     * per message saved). */
    bool small = 6 * len + SMALL_EVENT_FIXED + EVENT_SLACK <= ls->max_event_bytes;
    bool fitted = ev && !small && fit_event(ls, ev);
    if (ev && (fitted || *cut)) {
        *cut = true;
        json_object_set_new(ev, "truncated", json_true());
    }
    return ev;
}

/* ------------------------------------------------------------------------------------------ */
/* UDP                                                                                         */

static void udp_drop(struct listen_syslog *ls, size_t n, const char *why)
{
    count(ls, L_UDP, R_DROPPED, n);
    ls->udp_dropped_since_log += n;
    uint64_t t = now_ms();
    if (t - ls->last_drop_log_ms >= DROP_LOG_INTERVAL_MS) {
        mutt_log_kv(MUTT_LOG_WARNING, "listen", NULL, NULL,
                    "syslog UDP: %llu datagrams dropped in the last minute (%s)",
                    (unsigned long long)ls->udp_dropped_since_log, why);
        ls->udp_dropped_since_log = 0;
        ls->last_drop_log_ms = t;
    }
}

/* One loop turn's datagrams, submitted together: one verdict for all of them. */
struct udp_batch {
    struct listen_syslog *ls;
    size_t n; /* events submitted */
};

static void on_udp_verdict(void *privdata, enum mutt_ingest_intake_result r, size_t queued)
{
    struct udp_batch *b = privdata;
    struct listen_syslog *ls = b->ls;
    ls->udp_pending -= b->n;
    if (r == MUTT_INTAKE_QUEUED)
        count(ls, L_UDP, R_ACCEPTED, queued);
    else
        udp_drop(ls, b->n, r == MUTT_INTAKE_QUEUE_FULL     ? "queue full"
                           : r == MUTT_INTAKE_RATE_LIMITED ? "rate limit"
                                                           : "Redis unavailable");
    free(b);
}

static void udp_submit_batch(struct listen_syslog *ls)
{
    size_t n = ls->nubatch;
    if (n == 0)
        return;
    ls->nubatch = 0;
    struct udp_batch *b = malloc(sizeof *b);
    size_t invalid = 0;
    long rc = b ? mutt_ingest_intake_submit(ls->ubatch, n, "syslog-udp", &invalid, on_udp_verdict, b) : MUTT_ENOMEM;
    for (size_t i = 0; i < n; i++)
        json_decref(ls->ubatch[i]);
    count(ls, L_UDP, R_INVALID, invalid);
    if (rc > 0) {
        b->ls = ls;
        b->n = (size_t)rc;
        ls->udp_pending += b->n;
        return;
    }
    free(b);
    if (rc < 0)
        udp_drop(ls, n, mutt_strerror((int)rc));
}

static void on_udp_flush(uv_check_t *h)
{
    udp_submit_batch(h->data);
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct listen_syslog *ls = h->data;
    if (ls->udp_buf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    ls->udp_buf_busy = true;
    *buf = uv_buf_init(ls->udp_buf, sizeof ls->udp_buf);
}

/* With recvmmsg libuv calls this once per datagram (UV_UDP_MMSG_CHUNK, slices of udp_buf) and
 * then once more to hand the buffer back; without it, once per datagram. */
static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr, unsigned flags)
{
    struct listen_syslog *ls = h->data;
    if (!(flags & UV_UDP_MMSG_CHUNK))
        ls->udp_buf_busy = false;
    if (nread <= 0 || !addr)
        return;
    size_t len = (size_t)nread;
    bool cut = len > MUTT_SYSLOG_MAX_MSG || (flags & UV_UDP_PARTIAL);
    if (len > MUTT_SYSLOG_MAX_MSG)
        len = MUTT_SYSLOG_MAX_MSG;
    char ip[64];
    addr_text(addr, ip, sizeof ip);
    if (!mutt_listen_storm_admit(ls->storm, ip)) {
        count(ls, L_UDP, R_RATE_LIMITED, 1);
        return;
    }
    if (ls->udp_pending + ls->nubatch >= UDP_PENDING_MAX || !mutt_ingest_intake_ready()) {
        udp_drop(ls, 1, ls->udp_pending + ls->nubatch >= UDP_PENDING_MAX ? "too many waiting" : "Redis unavailable");
        return;
    }
    json_t *ev = make_event(ls, buf->base, len, ip, &cut);
    if (!ev)
        return;
    if (cut)
        count(ls, L_UDP, R_TRUNCATED, 1);
    ls->ubatch[ls->nubatch++] = ev;
    if (ls->nubatch == UDP_BATCH_MAX)
        udp_submit_batch(ls);
}

/* ------------------------------------------------------------------------------------------ */
/* TCP                                                                                         */

static void maybe_done(struct listen_syslog *ls)
{
    if (ls->stopping && ls->handles_open == 0 && ls->done) {
        mutt_stage_done_cb *done = ls->done;
        ls->done = NULL;
        done(ls->ctx, ls->done_priv);
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct listen_syslog *ls = &g_ls;
    (void)h;
    ls->handles_open--;
    maybe_done(ls);
}

static void on_conn_part_closed(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;
    struct listen_syslog *ls = c->ls;
    /* two handles per connection: the second close callback (in whatever order libuv runs
     * them) frees it */
    if (++c->closed_parts == 2) {
        SSL_free(c->ssl);
        free(c->cbuf);
        free(c->buf);
        free(c);
    }
    ls->handles_open--;
    maybe_done(ls);
}

static void conn_close(struct tcp_conn *c)
{
    if (c->closing)
        return;
    if (c->writes > 0) { /* uv_close would cancel them: close once they are out */
        c->close_wanted = true;
        uv_read_stop((uv_stream_t *)&c->h);
        return;
    }
    c->closing = true;
    struct listen_syslog *ls = c->ls;
    for (struct tcp_conn **p = &ls->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    uv_close((uv_handle_t *)&c->h, on_conn_part_closed);
    uv_close((uv_handle_t *)&c->retry, on_conn_part_closed);
}

/* Discards the rest of an over-long frame from the front of the buffer. */
static void skip_front(struct tcp_conn *c)
{
    size_t drop = mutt_syslog_frame_skip(&c->fr, c->buf, c->len);
    if (drop) {
        memmove(c->buf, c->buf + drop, c->len - drop);
        c->len -= drop;
        c->checked = c->checked > drop ? c->checked - drop : 0;
    }
}

static void tcp_pump(struct tcp_conn *c);

static void tcp_read_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct tcp_conn *c = h->data;
    if (c->ssl)
        *buf = uv_buf_init(c->cbuf, TLS_CBUF);
    else
        *buf = uv_buf_init(c->buf + c->len, (unsigned)(TCP_BUF_CAP - c->len));
}

struct tls_write {
    uv_write_t req;
    struct tcp_conn *c;
    char data[];
};

static void on_tls_written(uv_write_t *req, int status)
{
    (void)status;
    struct tls_write *w = req->data;
    struct tcp_conn *c = w->c;
    free(w);
    if (--c->writes == 0 && c->close_wanted)
        conn_close(c);
}

/* Sends what OpenSSL wrote to the memory BIO (handshake records, alerts). */
static void tls_flush(struct tcp_conn *c)
{
    size_t pending;
    while (!c->closing && (pending = BIO_ctrl_pending(c->wbio)) > 0) {
        struct tls_write *w = malloc(sizeof *w + pending);
        if (!w)
            return;
        int n = BIO_read(c->wbio, w->data, (int)pending);
        if (n <= 0) {
            free(w);
            return;
        }
        w->req.data = w;
        w->c = c;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
        if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, on_tls_written) != 0)
            free(w);
        else
            c->writes++;
    }
}

/* Moves decrypted bytes into the frame buffer while it has room; a TLS error or the peer's
 * close_notify ends the stream like EOF. */
static void tls_drain(struct tcp_conn *c)
{
    while (!c->eof && c->len < TCP_BUF_CAP) {
        int n = SSL_read(c->ssl, c->buf + c->len, (int)(TCP_BUF_CAP - c->len));
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            if (e == SSL_ERROR_ZERO_RETURN)
                SSL_shutdown(c->ssl); /* answer the peer's close_notify (tls_flush sends it) */
            else
                mutt_log_kv(MUTT_LOG_INFO, "listen", NULL, NULL, "syslog TLS from %s: %s", c->ip,
                            e == SSL_ERROR_SSL ? ERR_reason_error_string(ERR_peek_last_error()) : "connection error");
            ERR_clear_error();
            c->eof = true;
            uv_read_stop((uv_stream_t *)&c->h);
        }
        break;
    }
    tls_flush(c);
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        uv_read_stop(s);
        c->eof = true;
        tcp_pump(c);
        return;
    }
    if (c->ssl) {
        if (nread > 0 && BIO_write(c->rbio, buf->base, (int)nread) != (int)nread) {
            c->eof = true;
            uv_read_stop(s);
        }
    } else {
        c->len += (size_t)nread;
    }
    tcp_pump(c);
}

static void on_retry(uv_timer_t *t)
{
    tcp_pump(t->data);
}

static void on_tcp_verdict(void *privdata, enum mutt_ingest_intake_result r, size_t queued)
{
    struct tcp_conn *c = privdata;
    c->waiting = false;
    if (r != MUTT_INTAKE_QUEUED) {
        /* nothing consumed: the same frames go again, reading stays stopped */
        c->resubmit = true;
        if (c->ls->stopping)
            conn_close(c);
        else if (!c->closing)
            uv_timer_start(&c->retry, on_retry, RETRY_MS, 0);
        return;
    }
    c->resubmit = false;
    count(c->ls, c->kind, R_ACCEPTED, queued);
    memmove(c->buf, c->buf + c->consume, c->len - c->consume);
    c->len -= c->consume;
    c->checked = c->checked > c->consume ? c->checked - c->consume : 0;
    c->consume = 0;
    if (!c->closing)
        tcp_pump(c);
}

/* Submits the complete frames in the buffer, or resumes reading when there are none. */
static void tcp_pump(struct tcp_conn *c)
{
    struct listen_syslog *ls = c->ls;
    if (c->waiting || c->closing)
        return;
    skip_front(c);
    if (c->ssl)
        tls_drain(c);
    if (ls->stopping) {
        conn_close(c);
        return;
    }
    if (!mutt_ingest_intake_ready()) {
        uv_read_stop((uv_stream_t *)&c->h); /* backpressure: the sender's window fills */
        uv_timer_start(&c->retry, on_retry, RETRY_MS, 0);
        return;
    }
    json_t *evs[TCP_BATCH_MAX];
    size_t nev = 0, pos = 0, truncated = 0, kept = 0, limited = 0;
    while (nev < TCP_BATCH_MAX && !mutt_syslog_frame_skipping(&c->fr)) {
        const char *msg;
        size_t mlen;
        bool cut;
        size_t start = pos;
        size_t used = mutt_syslog_frame_next(&c->fr, c->buf, c->len, pos, &msg, &mlen, &cut);
        if (used == 0)
            break;
        pos += used;
        if (pos > c->checked && !mutt_listen_storm_admit(ls->storm, c->ip)) {
            limited++; /* left out of buf below, so a resubmission never sees it */
            continue;
        }
        json_t *ev = make_event(ls, msg, mlen, c->ip, &cut);
        if (kept != start)
            memmove(c->buf + kept, c->buf + start, used);
        kept += used;
        if (cut)
            truncated++;
        if (ev)
            evs[nev++] = ev;
    }
    if (kept != pos) { /* frames were suppressed: close the gaps they leave */
        memmove(c->buf + kept, c->buf + pos, c->len - pos);
        c->len -= pos - kept;
        pos = kept;
    }
    if (pos > c->checked)
        c->checked = pos;
    count(ls, c->kind, R_RATE_LIMITED, limited);
    if (c->eof && nev == 0 && pos == 0 && c->len > 0 && !mutt_syslog_frame_skipping(&c->fr)) {
        /* the peer closed after a last frame without its LF: take it as it is */
        bool cut = false;
        if (c->len > c->checked && !mutt_listen_storm_admit(ls->storm, c->ip)) {
            count(ls, c->kind, R_RATE_LIMITED, 1);
            c->len = 0;
        } else {
            json_t *ev = make_event(ls, c->buf, c->len, c->ip, &cut);
            pos = c->checked = c->len;
            if (cut)
                truncated++;
            if (ev)
                evs[nev++] = ev;
        }
    }
    if (nev == 0) {
        memmove(c->buf, c->buf + pos, c->len - pos);
        c->len -= pos;
        c->checked = c->checked > pos ? c->checked - pos : 0;
        if (c->eof) {
            conn_close(c);
            return;
        }
        if (c->ssl && mutt_syslog_frame_skipping(&c->fr) && c->len > 0) {
            tcp_pump(c); /* more plaintext may be waiting inside OpenSSL */
            return;
        }
        if (c->len < TCP_BUF_CAP || mutt_syslog_frame_skipping(&c->fr))
            uv_read_start((uv_stream_t *)&c->h, tcp_read_alloc, on_tcp_read);
        return;
    }
    size_t invalid = 0;
    long rc = mutt_ingest_intake_submit(evs, nev, c->ssl ? "syslog-tls" : "syslog-tcp", &invalid, on_tcp_verdict, c);
    for (size_t i = 0; i < nev; i++)
        json_decref(evs[i]);
    if (rc < 0) {
        uv_read_stop((uv_stream_t *)&c->h);
        uv_timer_start(&c->retry, on_retry, RETRY_MS, 0);
        return;
    }
    /* counted once: a retried submission parses the same frames again */
    if (!c->resubmit) {
        count(ls, c->kind, R_INVALID, invalid);
        count(ls, c->kind, R_TRUNCATED, truncated);
    }
    if (rc == 0) {
        memmove(c->buf, c->buf + pos, c->len - pos);
        c->len -= pos;
        c->checked = c->checked > pos ? c->checked - pos : 0;
        tcp_pump(c);
        return;
    }
    c->consume = pos;
    c->waiting = true;
    uv_read_stop((uv_stream_t *)&c->h);
}

static void on_tcp_conn(uv_stream_t *server, int status)
{
    struct listen_syslog *ls = server->data;
    if (status < 0 || ls->stopping)
        return;
    struct tcp_conn *c = calloc(1, sizeof *c);
    char *b = malloc(TCP_BUF_CAP);
    if (!c || !b) {
        free(c);
        free(b);
        return;
    }
    c->buf = b;
    c->ls = ls;
    mutt_syslog_frame_init(&c->fr, MUTT_SYSLOG_MAX_MSG);
    c->kind = server == (uv_stream_t *)&ls->tls ? L_TLS : L_TCP;
    if (c->kind == L_TLS) {
        c->cbuf = malloc(TLS_CBUF);
        c->ssl = SSL_new(ls->ssl_ctx);
        c->rbio = BIO_new(BIO_s_mem());
        c->wbio = BIO_new(BIO_s_mem());
        if (!c->cbuf || !c->ssl || !c->rbio || !c->wbio) {
            BIO_free(c->rbio);
            BIO_free(c->wbio);
            SSL_free(c->ssl);
            free(c->cbuf);
            free(c);
            free(b);
            return;
        }
        SSL_set_bio(c->ssl, c->rbio, c->wbio);
        SSL_set_accept_state(c->ssl);
    }
    uv_tcp_init(ls->ctx->loop, &c->h);
    uv_timer_init(ls->ctx->loop, &c->retry);
    c->h.data = c;
    c->retry.data = c;
    ls->handles_open += 2;
    c->next = ls->conns;
    ls->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->h) != 0) {
        conn_close(c);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &sl) == 0)
        addr_text((struct sockaddr *)&ss, c->ip, sizeof c->ip);
    uv_read_start((uv_stream_t *)&c->h, tcp_read_alloc, on_tcp_read);
}

/* ------------------------------------------------------------------------------------------ */
/* stage                                                                                       */

/* A socket bound to addr:port, with SO_REUSEPORT when INGEST_REUSEPORT is on (D56); -1 + errno. */
static int bound_socket(const struct sockaddr *sa, int type, bool reuseport)
{
    int fd = socket(sa->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0)
        return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int register_metrics(struct listen_syslog *ls, struct mutt_metrics *m)
{
    static const char *const labels[] = {"listener", "result", NULL};
    struct mutt_counter *fam = mutt_metrics_counter(
        m, "mutt_listener_messages_total",
        "Messages received by the native listeners, by outcome (accepted = queued, dropped, truncated, invalid, "
        "rate_limited = over LISTENER_SOURCE_MAX_RATE for its sender).",
        labels);
    if (!fam)
        return MUTT_ENOMEM;
    for (int l = 0; l < L_COUNT_; l++)
        for (int r = 0; r < R_COUNT_; r++) {
            const char *vals[] = {lst_names[l], result_names[r]};
            ls->m[l][r] = mutt_counter_labels(fam, vals);
        }
    return 0;
}

/* D56: the listener's own certificate and key (the HTTP TLS_* keys stay HTTP's). */
static int tls_setup(struct listen_syslog *ls, const struct mutt_config *cfg)
{
    const char *cert = mutt_config_str(cfg, MUTT_CFG_SYSLOG_TLS_CERT_FILE);
    const char *key = mutt_config_str(cfg, MUTT_CFG_SYSLOG_TLS_KEY_FILE);
    if (!cert || !*cert || !key || !*key) {
        mutt_log_error("listen", "config error: SYSLOG_TLS_PORT needs SYSLOG_TLS_CERT_FILE and SYSLOG_TLS_KEY_FILE");
        return MUTT_EINVAL;
    }
    ls->ssl_ctx = SSL_CTX_new(TLS_server_method());
    if (!ls->ssl_ctx)
        return MUTT_ENOMEM;
    SSL_CTX_set_min_proto_version(ls->ssl_ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ls->ssl_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ls->ssl_ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ls->ssl_ctx) != 1) {
        mutt_log_error("listen", "config error: SYSLOG_TLS_CERT_FILE=%s / SYSLOG_TLS_KEY_FILE=%s: %s", cert, key,
                       ERR_reason_error_string(ERR_peek_last_error()));
        ERR_clear_error();
        SSL_CTX_free(ls->ssl_ctx);
        ls->ssl_ctx = NULL;
        return MUTT_EINVAL;
    }
    return 0;
}

static int ls_start(struct mutt_ctx *ctx)
{
    struct listen_syslog *ls = &g_ls;
    const struct mutt_config *cfg = ctx->cfg;
    int64_t uport = mutt_config_int(cfg, MUTT_CFG_SYSLOG_UDP_PORT);
    int64_t tport = mutt_config_int(cfg, MUTT_CFG_SYSLOG_TCP_PORT);
    int64_t sport = mutt_config_int(cfg, MUTT_CFG_SYSLOG_TLS_PORT);
    ls->ctx = ctx;
    if (uport == 0 && tport == 0 && sport == 0)
        return 0;
    if (sport != 0) {
        int trc = tls_setup(ls, cfg);
        if (trc != 0)
            return trc;
    }
    int rc = register_metrics(ls, ctx->metrics);
    if (rc != 0)
        return rc;
    if (gethostname(ls->host, sizeof ls->host - 1) != 0 || !ls->host[0])
        snprintf(ls->host, sizeof ls->host, "localhost");
    ls->max_event_bytes = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES);
    rc = mutt_listen_storm_start(ctx->loop, "syslog", "syslog-storm",
                                 (uint32_t)mutt_config_int(cfg, MUTT_CFG_LISTENER_SOURCE_MAX_RATE), &ls->storm);
    if (rc != 0)
        return rc;
    const char *addr = mutt_config_str(cfg, MUTT_CFG_LISTENER_BIND_ADDR);
    if (!addr || !*addr)
        addr = mutt_config_str(cfg, MUTT_CFG_BIND_ADDR);
    bool reuse = mutt_config_bool(cfg, MUTT_CFG_INGEST_REUSEPORT);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    for (int l = 0; l < L_COUNT_; l++) {
        int64_t port = l == L_UDP ? uport : l == L_TCP ? tport : sport;
        if (port == 0)
            continue;
        if (uv_ip4_addr(addr, (int)port, (struct sockaddr_in *)&ss) != 0 &&
            uv_ip6_addr(addr, (int)port, (struct sockaddr_in6 *)&ss) != 0) {
            mutt_log_error("listen", "config error: LISTENER_BIND_ADDR=%s is not an IP address", addr);
            return MUTT_EINVAL;
        }
        int fd = bound_socket((struct sockaddr *)&ss, l == L_UDP ? SOCK_DGRAM : SOCK_STREAM, reuse);
        if (fd < 0) {
            mutt_log_error("listen", "%s listener %s:%lld: %s", lst_names[l], addr, (long long)port, strerror(errno));
            return MUTT_EIO;
        }
        if (l == L_UDP) {
            int buf = 8 << 20; /* bursts wait in the kernel while a loop turn runs */
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
            /* recvmmsg: up to UDP_MMSG datagrams a system call (libuv falls back to recvmsg) */
            uv_udp_init_ex(ctx->loop, &ls->udp, AF_UNSPEC | UV_UDP_RECVMMSG);
            ls->udp.data = ls;
            ls->udp_open = true;
            ls->handles_open++;
            uv_check_init(ctx->loop, &ls->udp_flush);
            ls->udp_flush.data = ls;
            ls->udp_flush_open = true;
            ls->handles_open++;
            uv_check_start(&ls->udp_flush, on_udp_flush);
            rc = uv_udp_open(&ls->udp, fd);
            if (rc == 0)
                rc = uv_udp_recv_start(&ls->udp, udp_alloc, on_udp);
        } else {
            uv_tcp_t *t = l == L_TCP ? &ls->tcp : &ls->tls;
            uv_tcp_init(ctx->loop, t);
            t->data = ls;
            *(l == L_TCP ? &ls->tcp_open : &ls->tls_open) = true;
            ls->handles_open++;
            rc = uv_tcp_open(t, fd);
            if (rc == 0)
                rc = uv_listen((uv_stream_t *)t, 1024, on_tcp_conn);
        }
        if (rc != 0) {
            mutt_log_error("listen", "%s listener %s:%lld: %s", lst_names[l], addr, (long long)port, uv_strerror(rc));
            return MUTT_EIO;
        }
        mutt_log_info("listen", "syslog over %s on %s:%lld", l == L_UDP ? "UDP" : l == L_TCP ? "TCP" : "TLS", addr,
                      (long long)port);
    }
    return 0;
}

static void on_storm_closed(void *arg)
{
    struct listen_syslog *ls = arg;
    ls->handles_open--;
    maybe_done(ls);
}

static void ls_stop(struct mutt_ctx *ctx, mutt_stage_done_cb *done, void *privdata)
{
    struct listen_syslog *ls = &g_ls;
    ls->stopping = true;
    ls->done = done;
    ls->done_priv = privdata;
    if (mutt_listen_storm_stop(ls->storm, on_storm_closed, ls))
        ls->handles_open++;
    ls->storm = NULL;
    if (ls->udp_open) {
        ls->udp_open = false;
        uv_close((uv_handle_t *)&ls->udp, on_handle_closed);
    }
    if (ls->udp_flush_open) {
        udp_submit_batch(ls); /* the last turn's datagrams, before ingest stops */
        ls->udp_flush_open = false;
        uv_close((uv_handle_t *)&ls->udp_flush, on_handle_closed);
    }
    if (ls->tcp_open) {
        ls->tcp_open = false;
        uv_close((uv_handle_t *)&ls->tcp, on_handle_closed);
    }
    if (ls->tls_open) {
        ls->tls_open = false;
        uv_close((uv_handle_t *)&ls->tls, on_handle_closed);
    }
    SSL_CTX_free(ls->ssl_ctx); /* each connection's SSL holds its own reference */
    ls->ssl_ctx = NULL;
    /* connections with a submission out close when its verdict comes back (tcp_pump) */
    for (struct tcp_conn *c = ls->conns, *next; c; c = next) {
        next = c->next;
        if (!c->waiting)
            conn_close(c);
        else
            uv_read_stop((uv_stream_t *)&c->h);
    }
    maybe_done(ls);
    (void)ctx;
}

static enum mutt_role_health ls_health(struct mutt_ctx *ctx, char *detail, size_t detail_len)
{
    (void)ctx;
    (void)detail;
    (void)detail_len;
    return MUTT_HEALTH_OK;
}

const struct mutt_stage mutt_listen_syslog_stage = {
    .name = "ingest",
    .role = MUTT_ROLE_INGEST,
    .start = ls_start,
    .stop = ls_stop,
    .health = ls_health,
    .reload = NULL,
};
