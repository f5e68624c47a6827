/* Delivery outcome of one webhook attempt (CONTRACT §5, D4; W14): maps an HTTP status and a
 * libcurl result code to delivered / retry / dead, plus the `_dlq_reason` text and the metric
 * reason label. Pure: no I/O, no libcurl call (curl codes are plain ints here). Any thread. */
#ifndef MUTT_FORWARD_CLASSIFY_H
#define MUTT_FORWARD_CLASSIFY_H

#include <stddef.h>

/* What to do with an alert after one attempt. A separate enum, not an error code (STYLE 2.3). */
enum mutt_delivery {
    MUTT_DELIVERED = 0, /* any 2xx */
    MUTT_RETRY,         /* 408, 429, 5xx, timeout, connection or any other transport error */
    MUTT_DEAD,          /* other 4xx, 1xx/3xx final answers (no redirects are followed, D4) */
};

/* Classifies one finished attempt. `curl_code` is the CURLcode (0 = the exchange completed);
 * a non-zero curl_code wins over any status (a timeout after the headers is still a timeout).
 * curl_code 0 with http_status 0 (no HTTP answer at all) is MUTT_RETRY. Cannot fail. */
enum mutt_delivery mutt_forward_classify(long http_status, int curl_code);

/* Writes the `_dlq_reason` / log text for the same inputs into buf (always NUL-terminated when
 * len > 0): "http_400", "curl_7: Couldn't connect", "curl_28: Timeout was reached",
 * "no_http_status". Returns buf. */
const char *mutt_forward_reason(long http_status, int curl_code, char *buf, size_t len);

/* Label value for mutt_moog_requests_total{status="fail",reason=...} (reference §6.2 / §12.3):
 * "rate_limit" for 429, "timeout" for curl 28, "connect" for curl 6/7, else "http". Static. */
const char *mutt_forward_metric_reason(long http_status, int curl_code);

/* Human text for a libcurl result code without linking libcurl ("Couldn't connect"); codes
 * not in the table give "transport error". Static storage, cannot fail. */
const char *mutt_forward_curl_text(int curl_code);

#endif
