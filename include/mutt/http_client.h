/* Outgoing HTTP on the loop: libcurl multi driven by uv_poll (one per socket) and one uv_timer,
 * with a fixed cap on requests in flight. Owns the curl handles and the captured response
 * bodies; knows nothing about Moog or retries (the stage classifies results). Redirects are
 * never followed (D4). Loop thread only; main calls curl_global_init before creating one. */
#ifndef MUTT_HTTP_CLIENT_H
#define MUTT_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mutt_http_client; /* opaque */

/* Response bytes kept per request; the rest is read and dropped (result.body_truncated). */
#define MUTT_HTTP_CLIENT_BODY_CAP (64 * 1024)

/* One request. Every pointer is borrowed for the duration of mutt_http_client_request only:
 * url, method, headers, body and ca_file are copied. */
struct mutt_http_request {
    const char *method;           /* "POST", "GET", "PUT"...; NULL = POST when body_len > 0, else GET */
    const char *url;              /* http:// or https:// only (other schemes fail with curl code 1) */
    const char *const *headers;   /* "Name: value" lines; may be NULL when nheaders == 0 */
    size_t nheaders;
    const void *body;             /* may be NULL when body_len == 0 */
    size_t body_len;
    uint64_t timeout_ms;          /* whole exchange, connect included; 0 = no limit (avoid) */
    uint64_t connect_timeout_ms;  /* 0 = bounded by timeout_ms only */
    bool tls_skip_verify;         /* false (the zero value) = verify peer and host name */
    const char *ca_file;          /* PEM bundle; NULL = system CAs */
};

/* Delivered to the callback; everything in it is borrowed until the callback returns. */
struct mutt_http_result {
    int status;              /* 0: the transfer finished (see curl_code / http_status);
                              * MUTT_ECANCELED: mutt_http_client_stop cancelled it */
    int curl_code;           /* CURLcode: 0 ok, 7 couldn't connect, 28 timed out...; 42 when cancelled */
    long http_status;        /* final HTTP status, 0 when no response arrived */
    const char *body;        /* response body, NUL-terminated, at most MUTT_HTTP_CLIENT_BODY_CAP bytes */
    size_t body_len;
    bool body_truncated;     /* the server sent more than the cap */
    int64_t retry_after_s;   /* Retry-After as seconds from now (delta or HTTP-date, >= 0); -1 absent/unparsable */
    uint64_t total_time_us;  /* curl's total time for the exchange; 0 when cancelled */
    const char *error;       /* curl's error text for curl_code != 0 (never secrets), else "" */
};

/* Called exactly once per accepted request, from the loop (never from inside
 * mutt_http_client_request). The request's memory is released after it returns. The callback
 * may start new requests and may call mutt_http_client_stop; it must not destroy the client. */
typedef void mutt_http_client_cb(void *privdata, const struct mutt_http_result *result);

/* Creates a client on `loop` with at most max_inflight (>= 1) requests at a time. NULL on
 * allocation/libcurl failure or max_inflight == 0. Initialises one (inactive) uv_timer on the
 * loop, so the loop cannot be closed before mutt_http_client_destroy. */
struct mutt_http_client *mutt_http_client_create(uv_loop_t *loop, size_t max_inflight);

/* Starts a request. Returns 0 and later calls cb exactly once, or fails synchronously without
 * calling cb: MUTT_EFULL (max_inflight requests already in flight: the caller keeps its item
 * and tries later), MUTT_EINVAL (no url, header with CR/LF), MUTT_ESTATE (client stopped),
 * MUTT_ENOMEM, MUTT_EIO (libcurl refused the handle). */
int mutt_http_client_request(struct mutt_http_client *c, const struct mutt_http_request *req,
                             mutt_http_client_cb *cb, void *privdata);

/* Requests in flight right now (0..max_inflight). */
size_t mutt_http_client_inflight(const struct mutt_http_client *c);

/* Cancels every request in flight: each callback fires once, synchronously inside this call,
 * with status MUTT_ECANCELED; closes the sockets, timers and the curl multi handle. Later
 * requests fail with MUTT_ESTATE. Safe to call twice and from inside a callback. */
void mutt_http_client_stop(struct mutt_http_client *c);

/* Stops (if needed) and frees the client. The memory is released once the loop has run the
 * uv_close callbacks: immediately when they already ran, else from the last of them, so call
 * it and then let the loop run (mutt_test_loop_close / the shutdown uv_run). NULL is a no-op. */
void mutt_http_client_destroy(struct mutt_http_client *c);

/* Parses a Retry-After value (RFC 9110: delta-seconds or an HTTP-date), `len` bytes, not
 * necessarily NUL-terminated, surrounding blanks ignored. Returns seconds from now_epoch_s
 * (a date in the past gives 0), or -1 when unparsable. Pure; any thread. */
int64_t mutt_http_parse_retry_after(const char *value, size_t len, int64_t now_epoch_s);

#endif
