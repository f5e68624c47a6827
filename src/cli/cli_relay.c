/* `mutt relay` (D32): Debian 12's rsyslog has no omhttp, so its omprog module starts this command
 * and writes one line per message to its stdin; we post them to the ingest API as NDJSON
 * batches. Blocking by design (a CLI, no loop): while a batch cannot be delivered we stop reading,
 * so the pipe fills and rsyslog's own queue holds the backlog instead of us dropping lines.
 * This file reads stdin and turns lines into events (syslog through src/domain/syslog_parse.c);
 * relay_batch.c builds and posts the batches. */
#define _GNU_SOURCE
#include "mutt/cli_relay.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "mutt/config.h"
#include "mutt/event.h"
#include "mutt/syslog_parse.h"
#include "relay_batch.h"

/* ------------------------------------------------------------------------------------------ */
/* line → event                                                                                */

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

char *mutt_relay_line_to_event(const char *line, size_t len, const char *default_host, int64_t now)
{
    if (!mutt_syslog_trim(&line, &len))
        return NULL;
    if (line[0] == '{') {
        json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
        if (json_is_object(obj)) {
            /* D35: `_` fields are MUTT's own; the ingest API would strip them too */
            mutt_event_strip_reserved(obj);
            char *out = json_dumps(obj, JSON_COMPACT);
            json_decref(obj);
            return out;
        }
        json_decref(obj); /* not JSON after all: relay it as text */
    }
    /* a pipe from rsyslog: the sender's address is not known here */
    const struct mutt_syslog_origin origin = {.default_host = default_host, .source_ip = NULL, .now_ms = now};
    json_t *ev = mutt_syslog_parse(line, len, &origin);
    if (ev == NULL)
        return NULL;
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
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

/* What the command line asks for beyond the batcher's own settings. */
struct relay_args {
    const char *url; /* NULL: the local ingest endpoint */
    long batch, flush_ms;
    char host[256]; /* "": this host's name */
};

/* Reads the options into a and r: -1 to go on, else the exit status (usage, --help). */
static int parse_relay_args(int argc, char **argv, struct relay_args *a, struct relay_batch *r)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},      {"batch", required_argument, NULL, 'b'},
        {"flush-ms", required_argument, NULL, 'f'}, {"hostname", required_argument, NULL, 'H'},
        {"timeout", required_argument, NULL, 't'},  {"max-retries", required_argument, NULL, 'm'},
        {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0; /* main already ran getopt: 0 makes glibc re-initialise */
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            a->url = optarg;
            break;
        case 'b':
            a->batch = strtol(optarg, &end, 10);
            if (*end || a->batch < 1) {
                fprintf(stderr, "relay: --batch %s: must be a positive integer\n", optarg);
                return 2;
            }
            break;
        case 'f':
            a->flush_ms = strtol(optarg, &end, 10);
            if (*end || a->flush_ms < 0) {
                fprintf(stderr, "relay: --flush-ms %s: must be >= 0\n", optarg);
                return 2;
            }
            break;
        case 'H':
            snprintf(a->host, sizeof(a->host), "%s", optarg);
            break;
        case 't':
            r->timeout_s = strtol(optarg, &end, 10);
            if (*end || r->timeout_s < 1) {
                fprintf(stderr, "relay: --timeout %s: must be a positive integer\n", optarg);
                return 2;
            }
            break;
        case 'm':
            r->max_retries = strtol(optarg, &end, 10);
            if (*end || r->max_retries < -1) {
                fprintf(stderr, "relay: --max-retries %s: must be >= -1\n", optarg);
                return 2;
            }
            break;
        case 'v':
            r->verbose = true;
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
    return -1;
}

/* The batcher's endpoint, key and limits from the config and a: 0, or 2 (config error). */
static int relay_configure(const struct mutt_config *cfg, struct relay_args *a, struct relay_batch *r)
{
    r->api_key = mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY);
    if (r->api_key[0] == '\0') {
        fprintf(stderr, "config error: INGEST_API_KEY=: required by mutt relay\n");
        return 2;
    }
    if (a->url != NULL)
        snprintf(r->url, sizeof(r->url), "%s", a->url);
    else
        snprintf(r->url, sizeof(r->url), "%s://127.0.0.1:%lld/api/v2/ingest",
                 mutt_config_str(cfg, MUTT_CFG_TLS_CERT_FILE)[0] ? "https" : "http",
                 (long long)mutt_config_int(cfg, MUTT_CFG_INGESTOR_PORT));
    if (a->host[0] == '\0' && gethostname(a->host, sizeof(a->host) - 1) != 0)
        snprintf(a->host, sizeof(a->host), "localhost");
    r->max_events = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BATCH_EVENTS);
    if ((size_t)a->batch < r->max_events)
        r->max_events = (size_t)a->batch;
    r->max_bytes = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BODY_BYTES);
    return 0;
}

/* Reads stdin to its end into batches of r, in buf (cap bytes), counting lines longer than
 * max_event in *oversized. true when a post failed fatally (the key was refused). */
static bool relay_pump(struct relay_batch *r, const struct relay_args *a, size_t max_event, char *buf, size_t cap,
                       unsigned long long *oversized)
{
    size_t have = 0;       /* bytes of the current (incomplete) line in buf */
    bool skipping = false; /* inside a line longer than cap: drop it up to its newline */
    bool eof = false, fatal = false;
    while (!eof && !fatal) {
        if (r->nevents > 0) {
            struct pollfd pfd = {.fd = 0, .events = POLLIN};
            int pr = poll(&pfd, 1, (int)a->flush_ms);
            if (pr == 0) {
                fatal = relay_batch_flush(r) == RELAY_POST_FATAL;
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
            r->read_lines++;
            char *ev = mutt_relay_line_to_event(buf + start, i - start, a->host, now_ms());
            start = i + 1;
            if (ev == NULL)
                continue;
            size_t elen = strlen(ev);
            if (elen > max_event || elen + 1 > r->max_bytes) {
                (*oversized)++;
                free(ev);
                continue;
            }
            if (relay_batch_full_for(r, elen))
                fatal = relay_batch_flush(r) == RELAY_POST_FATAL;
            relay_batch_append(r, ev, elen);
            free(ev);
        }
        memmove(buf, buf + start, total - start);
        have = total - start;
        if (have == cap) { /* a line longer than any event may be: drop it, count it */
            skipping = true;
            (*oversized)++;
            r->read_lines++;
            have = 0;
        }
    }
    return fatal;
}

int mutt_cli_relay(struct mutt_config *cfg, int argc, char **argv)
{
    struct relay_batch r = {.timeout_s = 10, .max_retries = -1};
    struct relay_args a = {.url = NULL, .batch = 100, .flush_ms = 1000, .host = ""};
    int status = parse_relay_args(argc, argv, &a, &r);
    if (status >= 0)
        return status;
    if (relay_configure(cfg, &a, &r) != 0)
        return 2;
    size_t max_event = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES);

    size_t cap = max_event + 4096; /* a line may be a little longer than the event it becomes */
    char *buf = malloc(cap);
    if (buf == NULL || relay_batch_open(&r) != 0) {
        fprintf(stderr, "relay: out of memory\n");
        free(buf);
        return 1;
    }
    unsigned long long oversized = 0;
    bool fatal = relay_pump(&r, &a, max_event, buf, cap, &oversized);
    if (!fatal)
        fatal = relay_batch_flush(&r) == RELAY_POST_FATAL;
    if (oversized > 0)
        fprintf(stderr, "relay: dropped %llu line(s) longer than MAX_EVENT_BYTES=%zu\n", oversized, max_event);
    fprintf(stderr, "relay: %llu line(s) read, %llu accepted, %llu rejected, %llu dropped\n", r.read_lines,
            r.accepted, r.rejected, r.dropped + oversized);
    relay_batch_close(&r);
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
