/* See event_compare.h. Both paths get the same correlation id and the same "random" bytes per
 * event index, so their outputs are comparable byte for byte. */
#include "event_compare.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/event_fast.h"
#include "mutt/uuid.h"

#define ROOM 200
#define CID "cid-test.1:2_3"

static void rnd_for(size_t i, uint8_t rnd[16])
{
    for (int k = 0; k < 16; k++)
        rnd[k] = (uint8_t)(i * 31 + (size_t)k * 7);
}

/* Appends s[0..n) and a '\n' to the growing text *out. Returns false on OOM (*out freed). */
static bool append_line(char **out, size_t *used, size_t *cap, const char *s, size_t n)
{
    while (*used + n + 2 > *cap) {
        char *grown = realloc(*out, *cap * 2);
        if (grown == NULL) {
            free(*out);
            *out = NULL;
            return false;
        }
        *out = grown;
        *cap *= 2;
    }
    memcpy(*out + *used, s, n);
    *used += n;
    (*out)[(*used)++] = '\n';
    (*out)[*used] = '\0';
    return true;
}

/* The general path: accepted events joined by '\n'; NULL when the body fails, any item is
 * rejected, or stamping/dumping fails (*failed then tells it apart from a refusal: true). */
char *mutt_test_event_general(const char *body, size_t len, size_t max_events, size_t max_bytes,
                              const struct mutt_event_rules *rules, size_t *count, bool *failed)
{
    struct mutt_event_batch b;
    *count = 0;
    *failed = false;
    if (mutt_event_parse_body(body, len, max_events, max_bytes, &b) != 0) {
        mutt_event_batch_dispose(&b);
        return NULL;
    }
    for (size_t i = 0; i < b.count; i++) {
        char err[256];
        if (!b.items[i].event)
            continue;
        mutt_event_strip_reserved(b.items[i].event); /* D35, as the stage does */
        if (mutt_event_normalize(b.items[i].event, rules, err, sizeof err, NULL) != 0 ||
            mutt_event_check_size(b.items[i].event, max_bytes, err, sizeof err) != 0)
            mutt_event_batch_reject(&b, i, err);
    }
    if (b.rejected > 0 || b.count == 0) {
        mutt_event_batch_dispose(&b);
        return NULL;
    }
    json_t *cid = json_string(CID);
    size_t cap = 1024, used = 0;
    char *out = malloc(cap);
    for (size_t i = 0; out != NULL && cid != NULL && i < b.count; i++) {
        uint8_t rnd[16];
        char *s = NULL;
        size_t n = 0;
        rnd_for(i, rnd);
        if (mutt_event_stamp_shared(b.items[i].event, cid, rnd) != 0 ||
            mutt_event_dump_alloc(b.items[i].event, &s, &n) != 0) {
            free(out);
            out = NULL;
            break;
        }
        bool ok = append_line(&out, &used, &cap, s, n);
        free(s);
        if (!ok)
            break;
    }
    if (out == NULL || cid == NULL) {
        free(out);
        out = NULL;
        *failed = true;
    }
    *count = b.count;
    json_decref(cid);
    mutt_event_batch_dispose(&b);
    return out;
}

/* The fast path with the suffix src/stages/ingest.c appends: NULL and *count 0 when it
 * declines; NULL and *count (size_t)-1 when it fails. */
char *mutt_test_event_fast(struct mutt_event_fast *fp, const char *body, size_t len, size_t max_events,
                           size_t max_bytes, const struct mutt_event_rules *rules, size_t *count)
{
    long n = mutt_event_fast_body(body, len, max_events, max_bytes, rules, ROOM, fp);
    *count = n < 0 ? (size_t)-1 : (size_t)n;
    if (n <= 0)
        return NULL;
    size_t cap = 1024, used = 0;
    char *out = malloc(cap);
    for (long i = 0; out != NULL && i < n; i++) {
        char *e = fp->buf + fp->offs[i];
        size_t el = fp->lens[i];
        uint8_t rnd[16];
        char id[MUTT_UUID_STR_LEN];
        rnd_for((size_t)i, rnd);
        mutt_uuid_v4_format(rnd, id);
        el += (size_t)snprintf(e + el, ROOM, ",\"_correlation_id\":\"%s\",\"_event_id\":\"%s\"}", CID, id);
        if (!append_line(&out, &used, &cap, e, el))
            break;
    }
    if (out == NULL)
        *count = (size_t)-1;
    return out;
}

enum mutt_test_event_cmp mutt_test_event_compare(const char *body, size_t len, size_t max_events,
                                                 size_t max_event_bytes, const struct mutt_event_rules *rules,
                                                 char *msg, size_t msglen)
{
    struct mutt_event_fast fp = {0};
    size_t nf = 0, ng = 0;
    bool gfailed = false;
    enum mutt_test_event_cmp verdict = MUTT_TEST_EVCMP_DECLINED;
    char *g = NULL;
    char *f = mutt_test_event_fast(&fp, body, len, max_events, max_event_bytes, rules, &nf);
    char dummy[1];
    if (msg == NULL || msglen == 0) {
        msg = dummy;
        msglen = sizeof dummy;
    }
    msg[0] = '\0';
    if (nf == (size_t)-1) {
        snprintf(msg, msglen, "fast path failed (out of memory?) on %.*s", (int)(len > 300 ? 300 : len), body);
        verdict = MUTT_TEST_EVCMP_ERROR;
        goto out;
    }
    if (f == NULL)
        goto out;
    g = mutt_test_event_general(body, len, max_events, max_event_bytes, rules, &ng, &gfailed);
    if (gfailed) {
        snprintf(msg, msglen, "general path failed to stamp or dump %.*s", (int)(len > 300 ? 300 : len), body);
        verdict = MUTT_TEST_EVCMP_ERROR;
    } else if (g == NULL) {
        snprintf(msg, msglen, "fast path took a body the general path refuses: %.*s", (int)len, body);
        verdict = MUTT_TEST_EVCMP_DIFFER;
    } else if (strcmp(f, g) != 0 || nf != ng) {
        snprintf(msg, msglen, "outputs differ (%zu vs %zu events) for %.*s\nfast:    %s\ngeneral: %s", nf, ng,
                 (int)len, body, f, g);
        verdict = MUTT_TEST_EVCMP_DIFFER;
    } else {
        verdict = MUTT_TEST_EVCMP_SAME;
    }
out:
    free(f);
    free(g);
    mutt_event_fast_free(&fp);
    return verdict;
}
