/* `mutt relay` (D32): Debian 12's rsyslog has no omhttp, so its omprog module starts this command
 * and writes one line per message to its stdin; we post them to the ingest API as NDJSON
 * batches. Blocking by design (a CLI, no loop): while a batch cannot be delivered we stop reading,
 * so the pipe fills and rsyslog's own queue holds the backlog instead of us dropping lines. */
#define _GNU_SOURCE
#include "mutt/cli_relay.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "mutt/config.h"
#include "mutt/timefmt.h"

/* ------------------------------------------------------------------------------------------ */
/* line → event                                                                                */

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Next space-separated token of [*p, end); advances *p past it and one space. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *tlen)
{
    const char *s = *p;
    if (s >= end)
        return false;
    const char *e = memchr(s, ' ', (size_t)(end - s));
    if (e == NULL)
        e = end;
    *tok = s;
    *tlen = (size_t)(e - s);
    *p = e < end ? e + 1 : end;
    return *tlen > 0;
}

static void set_strn(json_t *o, const char *key, const char *s, size_t n)
{
    /* NULL when the bytes are not UTF-8. A NUL byte is valid UTF-8 but would be written as
     * \u0000, which ingest refuses, and with it the whole batch: lossy path too. */
    json_t *v = memchr(s, '\0', n) == NULL ? json_stringn(s, n) : NULL;
    if (v == NULL) {
        char *ascii = malloc(n + 1); /* keep the line, lossily, rather than drop it */
        if (ascii == NULL)
            return;
        for (size_t i = 0; i < n; i++)
            ascii[i] = (unsigned char)s[i] < 0x80 && s[i] != '\0' ? s[i] : '?';
        v = json_stringn(ascii, n);
        free(ascii);
    }
    if (v != NULL)
        json_object_set_new(o, key, v);
}

/* "Oct 11 22:14:15" (RFC 3164 TIMESTAMP, day space-padded). */
static bool is_3164_time(const char *s, size_t n)
{
    static const char *months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (n < 16 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':' || s[15] != ' ')
        return false;
    bool month = false;
    for (int i = 0; i < 12; i++)
        month = month || memcmp(s, months + 3 * i, 3) == 0;
    return month && isdigit((unsigned char)s[5]) && isdigit((unsigned char)s[7]) && isdigit((unsigned char)s[14]);
}

char *mutt_relay_line_to_event(const char *line, size_t len, const char *default_host, int64_t now)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n' || line[len - 1] == ' '))
        len--;
    size_t lead = 0;
    while (lead < len && isspace((unsigned char)line[lead]))
        lead++;
    if (lead == len)
        return NULL;
    if (line[lead] == '{') {
        json_t *obj = json_loadb(line + lead, len - lead, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_object(obj)) {
            char *out = json_dumps(obj, JSON_COMPACT);
            json_decref(obj);
            return out;
        }
        json_decref(obj); /* not JSON after all: relay it as text */
    }

    json_t *ev = json_object();
    if (ev == NULL)
        return NULL;
    const char *p = line + lead, *end = line + len;
    const char *host = NULL, *ts = NULL, *prog = NULL;
    size_t host_len = 0, ts_len = 0, prog_len = 0;

    if (p < end && *p == '<') {
        const char *q = p + 1;
        int pri = 0, digits = 0;
        while (q < end && isdigit((unsigned char)*q) && digits < 3) {
            pri = pri * 10 + (*q - '0');
            q++;
            digits++;
        }
        if (digits > 0 && q < end && *q == '>' && pri <= 191) {
            json_object_set_new(ev, "syslog_severity", json_integer(pri & 7));
            json_object_set_new(ev, "facility", json_integer(pri >> 3));
            p = q + 1;
        }
    }
    if (end - p >= 2 && p[0] == '1' && p[1] == ' ') {
        /* RFC 5424: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]; "-" is nil */
        const char *q = p + 2, *tok;
        size_t tl;
        const char *f[5];
        size_t fl[5];
        int n = 0;
        while (n < 5 && next_token(&q, end, &tok, &tl)) {
            f[n] = tok;
            fl[n] = tl;
            n++;
        }
        if (n == 5) {
            if (!(fl[0] == 1 && f[0][0] == '-')) {
                ts = f[0];
                ts_len = fl[0];
            }
            if (!(fl[1] == 1 && f[1][0] == '-')) {
                host = f[1];
                host_len = fl[1];
            }
            if (!(fl[2] == 1 && f[2][0] == '-')) {
                prog = f[2];
                prog_len = fl[2];
            }
            /* STRUCTURED-DATA: "-" or one or more [..] elements ("\]" escapes a bracket) */
            if (q < end && *q == '-') {
                q++;
            } else {
                while (q < end && *q == '[') {
                    while (q < end && *q != ']') {
                        if (*q == '\\' && q + 1 < end)
                            q++;
                        q++;
                    }
                    if (q < end)
                        q++;
                }
            }
            if (q < end && *q == ' ')
                q++;
            if (end - q >= 3 && memcmp(q, "\xEF\xBB\xBF", 3) == 0)
                q += 3; /* UTF-8 BOM */
            p = q;
        }
    } else if (is_3164_time(p, (size_t)(end - p))) {
        /* RFC 3164: "Mmm dd hh:mm:ss HOST TAG: msg". The header has no year or zone, so the
         * event is stamped with the arrival time and the original kept as syslog_timestamp. */
        set_strn(ev, "syslog_timestamp", p, 15);
        const char *q = p + 16, *tok;
        size_t tl;
        if (next_token(&q, end, &tok, &tl)) {
            host = tok;
            host_len = tl;
            p = q;
        }
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        if (colon != NULL && (sp == NULL || colon < sp)) {
            prog = p;
            prog_len = (size_t)(colon - p);
            const char *br = memchr(p, '[', prog_len);
            if (br != NULL)
                prog_len = (size_t)(br - p); /* "sshd[123]" → "sshd" */
        }
    }

    if (host != NULL && host_len > 0)
        set_strn(ev, "hostname", host, host_len);
    else
        json_object_set_new(ev, "hostname", json_string(default_host));
    if (prog != NULL && prog_len > 0)
        set_strn(ev, "program", prog, prog_len);
    set_strn(ev, "message", p, (size_t)(end - p));
    char tbuf[MUTT_TIME_ISO8601_MS_LEN];
    if (ts != NULL && mutt_time_parse_iso8601n(ts, ts_len, NULL) == 0)
        set_strn(ev, "timestamp", ts, ts_len);
    else if (mutt_time_format_iso8601_ms(now, tbuf, sizeof(tbuf)) == 0)
        json_object_set_new(ev, "timestamp", json_string(tbuf));
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* posting                                                                                     */

struct relay {
    char url[1024];
    const char *api_key;
    long timeout_s;
    long max_retries; /* per batch; -1 = until delivered */
    size_t max_events, max_bytes;
    bool verbose;
    CURL *curl;
    struct curl_slist *headers;
    /* the batch being built: NDJSON, one event per line */
    char *body;
    size_t body_len, nevents;
    /* totals for the closing line */
    unsigned long long read_lines, accepted, rejected, dropped;
    char resp[4096];
    size_t resp_len;
    long retry_after_s;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct relay *r = ud;
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
    struct relay *r = ud;
    size_t n = size * nitems;
    if (n > 12 && strncasecmp(buf, "Retry-After:", 12) == 0)
        r->retry_after_s = strtol(buf + 12, NULL, 10);
    return n;
}

/* One POST of body[0..len). Returns the HTTP status, or 0 when nothing answered. */
static long post_once(struct relay *r, const char *body, size_t len)
{
    r->resp_len = 0;
    r->resp[0] = '\0';
    r->retry_after_s = 0;
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(r->curl);
    if (rc != CURLE_OK) {
        fprintf(stderr, "relay: POST %s: %s\n", r->url, curl_easy_strerror(rc));
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

enum post_outcome { POST_DONE, POST_FATAL };

/* Delivers body[0..len) holding n events: retries what may succeed later, splits what is too
 * large, drops (and counts) what the API will never take. */
static enum post_outcome post_batch(struct relay *r, const char *body, size_t len, size_t n)
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
            return POST_DONE;
        }
        if (code == 401 || code == 403) {
            fprintf(stderr, "relay: HTTP %ld from %s: the API refused INGEST_API_KEY\n", code, r->url);
            return POST_FATAL;
        }
        if (code == 413 && n > 1) {
            /* split at the line boundary nearest the middle */
            size_t half = n / 2, seen = 0, cut = 0;
            for (size_t i = 0; i < len && seen < half; i++)
                if (body[i] == '\n') {
                    seen++;
                    cut = i + 1;
                }
            if (post_batch(r, body, cut, half) == POST_FATAL)
                return POST_FATAL;
            return post_batch(r, body + cut, len - cut, n - half);
        }
        bool retry = code == 0 || code == 408 || code == 429 || code >= 500;
        if (!retry) {
            fprintf(stderr, "relay: HTTP %ld: dropped %zu event(s): %s\n", code, n, r->resp);
            r->rejected += n;
            return POST_DONE;
        }
        if (r->max_retries >= 0 && attempt >= r->max_retries) {
            fprintf(stderr, "relay: giving up on %zu event(s) after %ld retries (last HTTP %ld)\n", n, attempt, code);
            r->dropped += n;
            return POST_DONE;
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

static enum post_outcome flush(struct relay *r)
{
    if (r->nevents == 0)
        return POST_DONE;
    enum post_outcome o = post_batch(r, r->body, r->body_len, r->nevents);
    r->body_len = 0;
    r->nevents = 0;
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* command                                                                                     */

static void relay_usage(FILE *out)
{
    fprintf(out,
            "Usage: mutt [--config FILE] relay [OPTIONS]\n"
            "Reads one syslog line (RFC 5424, RFC 3164 or a JSON event object) per line on stdin and\n"
            "posts them in NDJSON batches to the ingest API with INGEST_API_KEY. For rsyslog's omprog.\n"
            "\n"
            "  --url URL          ingest endpoint (default http://127.0.0.1:INGESTOR_PORT/api/v2/ingest,\n"
            "                     https when TLS_CERT_FILE is set)\n"
            "  --batch N          events per POST (default 100, at most MAX_BATCH_EVENTS)\n"
            "  --flush-ms MS      post a partial batch after MS without new input (default 1000)\n"
            "  --hostname NAME    hostname for lines whose header has none (default: this host)\n"
            "  --timeout S        per-request timeout in seconds (default 10)\n"
            "  --max-retries N    retries of a batch on 429/5xx/connection errors; -1 (default) retries\n"
            "                     until delivered, which makes rsyslog queue upstream meanwhile\n"
            "  --verbose          one stderr line per POST\n"
            "Exit status: 0 every line accepted, 1 lines dropped or the key refused, 2 usage/config error.\n");
}

int mutt_cli_relay(struct mutt_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},      {"batch", required_argument, NULL, 'b'},
        {"flush-ms", required_argument, NULL, 'f'}, {"hostname", required_argument, NULL, 'H'},
        {"timeout", required_argument, NULL, 't'},  {"max-retries", required_argument, NULL, 'm'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct relay r = {.timeout_s = 10, .max_retries = -1};
    const char *url = NULL;
    long batch = 100, flush_ms = 1000;
    char host[256] = "";
    optind = 0; /* main already ran getopt: 0 makes glibc re-initialise */
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            url = optarg;
            break;
        case 'b':
            batch = strtol(optarg, &end, 10);
            if (*end || batch < 1) {
                fprintf(stderr, "relay: --batch %s: must be a positive integer\n", optarg);
                return 2;
            }
            break;
        case 'f':
            flush_ms = strtol(optarg, &end, 10);
            if (*end || flush_ms < 0) {
                fprintf(stderr, "relay: --flush-ms %s: must be >= 0\n", optarg);
                return 2;
            }
            break;
        case 'H':
            snprintf(host, sizeof(host), "%s", optarg);
            break;
        case 't':
            r.timeout_s = strtol(optarg, &end, 10);
            if (*end || r.timeout_s < 1) {
                fprintf(stderr, "relay: --timeout %s: must be a positive integer\n", optarg);
                return 2;
            }
            break;
        case 'm':
            r.max_retries = strtol(optarg, &end, 10);
            if (*end || r.max_retries < -1) {
                fprintf(stderr, "relay: --max-retries %s: must be >= -1\n", optarg);
                return 2;
            }
            break;
        case 'v':
            r.verbose = true;
            break;
        case 'h':
            relay_usage(stdout);
            return 0;
        default:
            relay_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "relay: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    r.api_key = mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY);
    if (r.api_key[0] == '\0') {
        fprintf(stderr, "config error: INGEST_API_KEY=: required by mutt relay\n");
        return 2;
    }
    if (url != NULL)
        snprintf(r.url, sizeof(r.url), "%s", url);
    else
        snprintf(r.url, sizeof(r.url), "%s://127.0.0.1:%lld/api/v2/ingest",
                 mutt_config_str(cfg, MUTT_CFG_TLS_CERT_FILE)[0] ? "https" : "http",
                 (long long)mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT));
    if (host[0] == '\0' && gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    r.max_events = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BATCH_EVENTS);
    if ((size_t)batch < r.max_events)
        r.max_events = (size_t)batch;
    r.max_bytes = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BODY_BYTES);
    size_t max_event = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES);

    r.body = malloc(r.max_bytes + 1);
    size_t cap = max_event + 4096; /* a line may be a little longer than the event it becomes */
    char *buf = malloc(cap);
    r.curl = curl_easy_init();
    if (r.body == NULL || buf == NULL || r.curl == NULL) {
        fprintf(stderr, "relay: out of memory\n");
        free(r.body);
        free(buf);
        if (r.curl)
            curl_easy_cleanup(r.curl);
        return 1;
    }
    char keyhdr[600];
    snprintf(keyhdr, sizeof(keyhdr), "X-API-KEY: %s", r.api_key);
    r.headers = curl_slist_append(r.headers, keyhdr);
    r.headers = curl_slist_append(r.headers, "Content-Type: application/x-ndjson");
    r.headers = curl_slist_append(r.headers, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(r.curl, CURLOPT_URL, r.url);
    curl_easy_setopt(r.curl, CURLOPT_HTTPHEADER, r.headers);
    curl_easy_setopt(r.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r.curl, CURLOPT_TIMEOUT, r.timeout_s);
    curl_easy_setopt(r.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r.curl, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(r.curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r.curl, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(r.curl, CURLOPT_USERAGENT, "mutt-relay");

    size_t have = 0;       /* bytes of the current (incomplete) line in buf */
    bool skipping = false; /* inside a line longer than cap: drop it up to its newline */
    bool eof = false, fatal = false;
    unsigned long long oversized = 0;
    while (!eof && !fatal) {
        if (r.nevents > 0) {
            struct pollfd pfd = {.fd = 0, .events = POLLIN};
            int pr = poll(&pfd, 1, (int)flush_ms);
            if (pr == 0) {
                fatal = flush(&r) == POST_FATAL;
                continue;
            }
        }
        ssize_t n = read(0, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            eof = true;
            if (have == 0 || skipping)
                break;
            buf[have] = '\n'; /* a last line without newline still counts */
            n = 1;
        }
        size_t total = have + (size_t)n, start = 0;
        for (size_t i = have; i < total && !fatal; i++) {
            if (buf[i] != '\n')
                continue;
            if (skipping) {
                skipping = false;
                start = i + 1;
                continue;
            }
            r.read_lines++;
            char *ev = mutt_relay_line_to_event(buf + start, i - start, host, now_ms());
            start = i + 1;
            if (ev == NULL)
                continue;
            size_t elen = strlen(ev);
            if (elen > max_event || elen + 1 > r.max_bytes) {
                oversized++;
                free(ev);
                continue;
            }
            if (r.nevents >= r.max_events || r.body_len + elen + 1 > r.max_bytes)
                fatal = flush(&r) == POST_FATAL;
            memcpy(r.body + r.body_len, ev, elen);
            r.body_len += elen;
            r.body[r.body_len++] = '\n';
            r.nevents++;
            free(ev);
        }
        memmove(buf, buf + start, total - start);
        have = total - start;
        if (have == cap) { /* a line longer than any event may be: drop it, count it */
            skipping = true;
            oversized++;
            r.read_lines++;
            have = 0;
        }
    }
    if (!fatal)
        fatal = flush(&r) == POST_FATAL;
    if (oversized > 0)
        fprintf(stderr, "relay: dropped %llu line(s) longer than MAX_EVENT_BYTES=%zu\n", oversized, max_event);
    fprintf(stderr, "relay: %llu line(s) read, %llu accepted, %llu rejected, %llu dropped\n", r.read_lines,
            r.accepted, r.rejected, r.dropped + oversized);
    curl_slist_free_all(r.headers);
    curl_easy_cleanup(r.curl);
    free(r.body);
    free(buf);
    if (fatal)
        return 1;
    return (r.rejected + r.dropped + oversized) > 0 ? 1 : 0;
}

int mutt_cli_relay_cmd(int argc, char **argv, struct mutt_config *cfg)
{
    char **v = calloc((size_t)argc + 2, sizeof(*v));
    if (v == NULL)
        return 1;
    v[0] = "relay";
    for (int i = 0; i < argc; i++)
        v[i + 1] = argv[i];
    int rc = mutt_cli_relay(cfg, argc + 1, v);
    free(v);
    return rc;
}
