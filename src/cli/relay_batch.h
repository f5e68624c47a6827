/* The HTTP side of `mutt relay` (src/cli/cli_relay.c): one NDJSON batch of events and its
 * delivery to the ingest API with blocking libcurl: retries what may succeed later, splits what
 * is too large (413), drops and counts what the API will never take. Private to src/cli. */
#ifndef MUTT_CLI_RELAY_BATCH_H
#define MUTT_CLI_RELAY_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

struct relay_batch {
    /* set by the caller before relay_batch_open */
    char url[1024];
    const char *api_key;    /* borrowed; sent as X-API-KEY */
    long timeout_s;         /* per request */
    long max_retries;       /* per batch; -1 = until delivered */
    size_t max_events;      /* events per POST */
    size_t max_bytes;       /* body bytes per POST */
    bool verbose;           /* one stderr line per POST */
    /* totals for the closing line, read by the caller (read_lines is the caller's own count) */
    unsigned long long read_lines, accepted, rejected, dropped;
    /* private */
    CURL *curl;
    struct curl_slist *headers;
    char *body; /* the batch being built: NDJSON, one event per line */
    size_t body_len, nevents;
    char resp[4096];
    size_t resp_len;
    long retry_after_s;
};

enum relay_post_outcome { RELAY_POST_DONE, RELAY_POST_FATAL };

/* Allocates the body (max_bytes + 1) and the curl handle set up for url and api_key. Returns 0,
 * or -1 on OOM with nothing held. */
int relay_batch_open(struct relay_batch *r);
/* Frees what relay_batch_open took; a batch still held is not posted. */
void relay_batch_close(struct relay_batch *r);
/* True when an event of elen bytes does not fit the batch any more (max_events or max_bytes):
 * flush first. An event longer than max_bytes - 1 never fits; the caller drops it. */
bool relay_batch_full_for(const struct relay_batch *r, size_t elen);
/* Appends one event (elen bytes, no newline) and its newline; the caller checked it fits. */
void relay_batch_append(struct relay_batch *r, const char *ev, size_t elen);
/* Posts the batch (nothing when empty) and empties it. RELAY_POST_FATAL when the API refused the
 * key (401/403): the caller stops; otherwise every event was accepted, rejected or dropped and
 * counted in the totals. Blocks while it retries. */
enum relay_post_outcome relay_batch_flush(struct relay_batch *r);

#endif
