/* Delivery of `mutt relay`'s NDJSON batches to the ingest API (src/cli/relay_batch.h). Blocking
 * libcurl by design: while a batch cannot be delivered the relay stops reading its pipe, so
 * rsyslog's own queue holds the backlog. */
#define _GNU_SOURCE
#include "relay_batch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "mutt/redact.h"

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct relay_batch *r = ud;
    size_t n = size * nmemb;
    size_t room = sizeof(r->resp) - 1 - r->resp_len;
    size_t take = n < room ? n : room;
    memcpy(r->resp + r->resp_len, ptr, take);
    r->resp_len += take;
    r->resp[r->resp_len] = '\0';
    return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    struct relay_batch *r = ud;
    size_t n = size * nitems;
    if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0)
        r->retry_after_s = strtol(buf + 12, NULL, 10);
    return n;
}

/* One POST of body[0..len). Returns the HTTP status, or 0 when nothing answered. */
static long post_once(struct relay_batch *r, const char *body, size_t len)
{
    r->resp_len = 0;
    r->resp[0] = '\0';
    r->retry_after_s = 0;
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(r->curl);
    if (rc != CURLE_OK) {
        char shown[MUTT_REDACT_URL_MAX]; /* --url may carry credentials (CONTRACT §9) */
        fprintf(stderr, "relay: POST %s: %s\n", mutt_redact_url(r->url, shown, sizeof shown), curl_easy_strerror(rc));
        return 0;
    }
    long code = 0;
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static unsigned long long json_count(const char *body, const char *key, bool array)
{
    json_t *o = json_loads(body, 0, NULL);
    json_t *v = json_object_get(o, key);
    unsigned long long n = array ? json_array_size(v) : (json_is_integer(v) ? (unsigned long long)json_integer_value(v) : 0);
    json_decref(o);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Delivers body[0..len) holding n events: retries what may succeed later, splits what is too
 * large, drops (and counts) what the API will never take. */
static enum relay_post_outcome post_batch(struct relay_batch *r, const char *body, size_t len, size_t n)
{
    long delay_ms = 500;
    for (long attempt = 0;; attempt++) {
        long code = post_once(r, body, len);
        if (r->verbose)
            fprintf(stderr, "relay: %zu event(s) → HTTP %ld %s\n", n, code, r->resp);
        if (code >= 200 && code < 300) {
            unsigned long long rej = json_count(r->resp, "rejected", true);
            unsigned long long acc = json_count(r->resp, "accepted", false);
            r->accepted += acc;
            r->rejected += rej;
            if (rej > 0)
                fprintf(stderr, "relay: %llu of %zu event(s) rejected: %s\n", rej, n, r->resp);
            return RELAY_POST_DONE;
        }
        if (code == 401 || code == 403) {
            char shown[MUTT_REDACT_URL_MAX];
            fprintf(stderr, "relay: HTTP %ld from %s: the API refused INGEST_API_KEY\n", code,
                    mutt_redact_url(r->url, shown, sizeof shown));
            return RELAY_POST_FATAL;
        }
        if (code == 413 && n > 1) {
            /* split at the line boundary nearest the middle */
            size_t half = n / 2, seen = 0, cut = 0;
            for (size_t i = 0; i < len && seen < half; i++)
                if (body[i] == '\n') {
                    seen++;
                    cut = i + 1;
                }
            if (post_batch(r, body, cut, half) == RELAY_POST_FATAL)
                return RELAY_POST_FATAL;
            return post_batch(r, body + cut, len - cut, n - half);
        }
        bool retry = code == 0 || code == 408 || code == 429 || code >= 500;
        if (!retry) {
            fprintf(stderr, "relay: HTTP %ld: dropped %zu event(s): %s\n", code, n, r->resp);
            r->rejected += n;
            return RELAY_POST_DONE;
        }
        if (r->max_retries >= 0 && attempt >= r->max_retries) {
            fprintf(stderr, "relay: giving up on %zu event(s) after %ld retries (last HTTP %ld)\n", n, attempt, code);
            r->dropped += n;
            return RELAY_POST_DONE;
        }
        long wait = r->retry_after_s > 0 ? r->retry_after_s * 1000 : delay_ms;
        if (wait > 30000)
            wait = 30000;
        fprintf(stderr, "relay: HTTP %ld; retrying %zu event(s) in %ld ms\n", code, n, wait);
        sleep_ms(wait);
        if (delay_ms < 30000)
            delay_ms *= 2;
    }
}

enum relay_post_outcome relay_batch_flush(struct relay_batch *r)
{
    if (r->nevents == 0)
        return RELAY_POST_DONE;
    enum relay_post_outcome o = post_batch(r, r->body, r->body_len, r->nevents);
    r->body_len = 0;
    r->nevents = 0;
    return o;
}

int relay_batch_open(struct relay_batch *r)
{
    r->body = malloc(r->max_bytes + 1);
    r->curl = curl_easy_init();
    if (r->body == NULL || r->curl == NULL) {
        free(r->body);
        r->body = NULL;
        if (r->curl)
            curl_easy_cleanup(r->curl);
        r->curl = NULL;
        return -1;
    }
    char keyhdr[600];
    snprintf(keyhdr, sizeof(keyhdr), "X-API-KEY: %s", r->api_key);
    r->headers = curl_slist_append(r->headers, keyhdr);
    r->headers = curl_slist_append(r->headers, "Content-Type: application/x-ndjson");
    r->headers = curl_slist_append(r->headers, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(r->curl, CURLOPT_URL, r->url);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, r->timeout_s);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "mutt-relay");
    return 0;
}

void relay_batch_close(struct relay_batch *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    r->curl = NULL;
    free(r->body);
    r->body = NULL;
}

bool relay_batch_full_for(const struct relay_batch *r, size_t elen)
{
    return r->nevents >= r->max_events || r->body_len + elen + 1 > r->max_bytes;
}

void relay_batch_append(struct relay_batch *r, const char *ev, size_t elen)
{
    memcpy(r->body + r->body_len, ev, elen);
    r->body_len += elen;
    r->body[r->body_len++] = '\n';
    r->nevents++;
}
