/* Load driver for bench/e2e.sh (`make bench-e2e`): POSTs single events to the ingest API at a
 * fixed rate (libcurl multi, keep-alive, a capped pool of connections; wrk cannot pace and wrk2
 * is not in Debian). Event `seq` is sent at start + seq/rate; each carries bench_seq and
 * bench_sent_ms (wall clock, ms with three decimals, taken just before it is handed to curl), so
 * the sink's stamped lines give ingest -> webhook latency. The event mix and the 100 rules it
 * matches are both defined here (--rules-sql prints them), so the expected deliveries cannot
 * drift from the rules. Not part of libmutt; a bench tool only.
 *
 *   e2e_driver --rules-sql
 *   e2e_driver --url URL --key KEY --rate N --seconds S [--conns C] --accepted FILE
 *              [--first-seq N] [--log FILE2]
 *
 * FILE gets one line "seq forwards(0|1)" per event answered 200. A summary goes to stdout.
 * --first-seq numbers the events from N (tests/fleet runs one driver per drill and tells their
 * events apart by seq); --log FILE2 gets one line "seq status done_ms" per request (status 0 for
 * a transport error, done_ms the wall clock when the answer came), so a drill can date the
 * refusals around a fault. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define N_CONTAINS 60 /* BENCHKEY-00..59: even ones Page_and_ticket, odd ones Ignore */
#define N_OID 25      /* .1.3.6.1.4.1.91xx prefixes: every fifth Ignore */
#define N_REGEX 15    /* LINK-(UP|DOWN)-NN\b: all Page_and_ticket */

enum kind { K_CONTAINS, K_OID, K_REGEX, K_NONE };

/* The mix by seq: 40 % contains, 20 % OID, 10 % regex, 30 % no rule. */
static enum kind kind_of(uint64_t seq, unsigned *rule)
{
    unsigned k = (unsigned)(seq % 20), r = (unsigned)(seq / 20);
    if (k < 8) {
        *rule = r % N_CONTAINS;
        return K_CONTAINS;
    }
    if (k < 12) {
        *rule = r % N_OID;
        return K_OID;
    }
    if (k < 14) {
        *rule = r % N_REGEX;
        return K_REGEX;
    }
    *rule = 0;
    return K_NONE;
}

static int forwards(enum kind k, unsigned rule)
{
    switch (k) {
    case K_CONTAINS:
        return rule % 2 == 0;
    case K_OID:
        return rule % 5 != 0;
    case K_REGEX:
        return 1;
    default:
        return 0;
    }
}

static void print_rules_sql(void)
{
    printf("BEGIN;\n");
    for (unsigned i = 0; i < N_CONTAINS; i++)
        printf("INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, "
               "team_assignment) VALUES ('BENCHKEY-%02u', 'contains', %u, '%s', 'Ignore', 'NETO');\n",
               i, 100 + i, forwards(K_CONTAINS, i) ? "Page_and_ticket" : "Ignore");
    for (unsigned i = 0; i < N_OID; i++)
        printf("INSERT INTO alert_rules (trap_oid, match_type, priority, prod_handling, dev_handling, "
               "team_assignment) VALUES ('.1.3.6.1.4.1.91%02u', 'oid_prefix', %u, '%s', 'Ignore', 'NETO');\n",
               i, 200 + i, forwards(K_OID, i) ? "Page_and_ticket" : "Ignore");
    for (unsigned i = 0; i < N_REGEX; i++)
        printf("INSERT INTO alert_rules (match_string, match_type, priority, prod_handling, dev_handling, "
               "team_assignment) VALUES ('LINK-(UP|DOWN)-%02u\\b', 'regex', %u, 'Page_and_ticket', 'Ignore', "
               "'NETO');\n",
               i, 300 + i);
    printf("COMMIT;\n");
}

static int event_body(char *buf, size_t cap, uint64_t seq, double sent_ms)
{
    unsigned rule;
    enum kind k = kind_of(seq, &rule);
    unsigned host = (unsigned)(seq % 997);
    char msg[160], extra[64] = "";
    switch (k) {
    case K_CONTAINS:
        snprintf(msg, sizeof msg, "%%LINEPROTO-5-UPDOWN: BENCHKEY-%02u interface Gi0/%u changed state", rule,
                 (unsigned)(seq % 48));
        break;
    case K_OID:
        snprintf(extra, sizeof extra, ",\"trap_oid\":\".1.3.6.1.4.1.91%02u.%u\"", rule, (unsigned)(seq % 10));
        snprintf(msg, sizeof msg, "SNMP trap .1.3.6.1.4.1.91%02u.%u ifIndex=%u", rule, (unsigned)(seq % 10),
                 (unsigned)(seq % 100));
        break;
    case K_REGEX:
        snprintf(msg, sizeof msg, "%%LINK-3-UPDOWN: LINK-DOWN-%02u port %u went down", rule, (unsigned)(seq % 48));
        break;
    default:
        snprintf(msg, sizeof msg, "kernel: eth%u watchdog timeout after %u ms", (unsigned)(seq % 4),
                 (unsigned)(seq % 10000));
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return snprintf(buf, cap,
                    "{\"timestamp\":\"%s\",\"hostname\":\"bench-host-%03u.example.com\",\"message\":\"%s\","
                    "\"syslog_severity\":%u,\"source\":\"bench-e2e\"%s,\"bench_seq\":%" PRIu64
                    ",\"bench_sent_ms\":%.3f}",
                    ts, host, msg, (unsigned)(seq % 8), extra, seq, sent_ms);
}

static double wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000.0 + (double)tv.tv_usec / 1000.0;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct slot {
    CURL *easy;
    uint64_t seq;
    uint64_t start_us;
    int busy;
};

static size_t discard(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *key = NULL, *accepted_path = NULL, *log_path = NULL;
    uint64_t first_seq = 0;
    double rate = 5000;
    unsigned seconds = 60, conns = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules-sql")) {
            print_rules_sql();
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        if (!strcmp(argv[i], "--url"))
            url = v;
        else if (!strcmp(argv[i], "--key"))
            key = v;
        else if (!strcmp(argv[i], "--rate"))
            rate = atof(v);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--conns"))
            conns = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--accepted"))
            accepted_path = v;
        else if (!strcmp(argv[i], "--first-seq"))
            first_seq = strtoull(v, NULL, 10);
        else if (!strcmp(argv[i], "--log"))
            log_path = v;
        else
            goto usage;
        i++;
    }
    if (!url || !key || !accepted_path || rate <= 0 || seconds == 0 || conns == 0 || conns > 4096)
        goto usage;

    FILE *acc = fopen(accepted_path, "w");
    if (!acc) {
        perror(accepted_path);
        return 1;
    }
    FILE *lg = NULL;
    if (log_path && !(lg = fopen(log_path, "w"))) {
        perror(log_path);
        return 1;
    }
    uint64_t total = (uint64_t)(rate * seconds);
    uint32_t *lat_us = calloc(total ? total : 1, sizeof *lat_us);
    struct slot *slots = calloc(conns, sizeof *slots);
    if (!lat_us || !slots)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    char keyh[256];
    snprintf(keyh, sizeof keyh, "X-API-KEY: %s", key);
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, keyh);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (unsigned i = 0; i < conns; i++) {
        slots[i].easy = curl_easy_init();
        curl_easy_setopt(slots[i].easy, CURLOPT_URL, url);
        curl_easy_setopt(slots[i].easy, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(slots[i].easy, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(slots[i].easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(slots[i].easy, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, &slots[i]);
    }

    uint64_t next = 0, ok = 0, nlat = 0, failed = 0, statuses[6] = {0};
    uint64_t max_lag_us = 0, late = 0; /* how far behind the schedule a send went out */
    double interval_us = 1e6 / rate;
    uint64_t t0 = mono_us();
    int running = 0;
    char body[768];
    unsigned free_hint = 0;
    while (next < total || running > 0) {
        uint64_t now = mono_us();
        while (next < total && t0 + (uint64_t)((double)next * interval_us) <= now) {
            struct slot *s = NULL;
            for (unsigned j = 0; j < conns; j++) {
                unsigned idx = (free_hint + j) % conns;
                if (!slots[idx].busy) {
                    s = &slots[idx];
                    free_hint = idx + 1;
                    break;
                }
            }
            if (!s)
                break; /* every connection busy: the send goes out late (counted below) */
            uint64_t due = t0 + (uint64_t)((double)next * interval_us);
            if (now - due > max_lag_us)
                max_lag_us = now - due;
            if (now - due > 5000)
                late++;
            int n = event_body(body, sizeof body, first_seq + next, wall_ms());
            curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)n);
            curl_easy_setopt(s->easy, CURLOPT_COPYPOSTFIELDS, body);
            s->seq = first_seq + next++;
            s->start_us = now;
            s->busy = 1;
            curl_multi_add_handle(multi, s->easy);
            running++;
        }
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct slot *s;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            long code = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            if (lg)
                fprintf(lg, "%" PRIu64 " %ld %.3f\n", s->seq, m->data.result == CURLE_OK ? code : 0L, wall_ms());
            if (m->data.result != CURLE_OK) {
                failed++;
            } else {
                statuses[code >= 100 && code < 600 ? code / 100 : 0]++;
                if (code == 200) {
                    ok++;
                    unsigned rule;
                    enum kind k = kind_of(s->seq, &rule);
                    fprintf(acc, "%" PRIu64 " %d\n", s->seq, forwards(k, rule));
                }
            }
            uint64_t d = mono_us() - s->start_us;
            lat_us[nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            curl_multi_remove_handle(multi, m->easy_handle);
            s->busy = 0;
        }
        int timeout_ms = 100;
        if (next < total) {
            uint64_t due = t0 + (uint64_t)((double)next * interval_us), n2 = mono_us();
            timeout_ms = due > n2 ? (int)((due - n2 + 999) / 1000) : 0;
        }
        if (timeout_ms > 0 || running > 0)
            curl_multi_poll(multi, NULL, 0, timeout_ms, NULL);
    }
    double secs = (double)(mono_us() - t0) / 1e6;
    fclose(acc);
    if (lg)
        fclose(lg);
    qsort(lat_us, nlat, sizeof *lat_us, cmp_u32);
    printf("driver: sent %" PRIu64 " events in %.2f s (%.0f/s, target %.0f/s), 200: %" PRIu64 ", 2xx %" PRIu64
           " 4xx %" PRIu64 " 5xx %" PRIu64 ", transport errors %" PRIu64 "\n",
           next, secs, (double)next / secs, rate, ok, statuses[2], statuses[4], statuses[5], failed);
    if (nlat)
        printf("driver: ingest response time p50 %.2f ms, p99 %.2f ms, max %.2f ms; sends >5 ms behind schedule "
               "%" PRIu64 " (max %.1f ms)\n",
               lat_us[nlat / 2] / 1000.0, lat_us[(size_t)((double)nlat * 0.99)] / 1000.0, lat_us[nlat - 1] / 1000.0,
               late, max_lag_us / 1000.0);
    for (unsigned i = 0; i < conns; i++)
        curl_easy_cleanup(slots[i].easy);
    curl_slist_free_all(hdrs);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    free(lat_us);
    free(slots);
    return 0;
usage:
    fprintf(stderr, "usage: e2e_driver --rules-sql | --url URL --key KEY --rate N --seconds S [--conns C] "
                    "--accepted FILE [--first-seq N] [--log FILE]\n");
    return 2;
}
