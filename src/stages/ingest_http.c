/* ingest: the POST handler (D6's checks in order: auth, media type, size, parse/validate, then
 * the group) and its replies made before Redis. */
#define _GNU_SOURCE
#include "mutt/ingest.h"
#include "mutt/ingest_intake.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/event_fast.h"
#include "mutt/http.h"
#include "mutt/lineage.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/random.h"
#include "mutt/redis.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/uuid.h"

#include "ingest_internal.h"

/* JSON array [{"index":i,"error":".."},...] of the rejected items; NULL on OOM. */
static char *rejected_array(const struct mutt_event_batch *b, size_t *len)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < b->count; i++) {
        if (!b->items[i].error)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        json_object_set_new(o, "error", json_string(b->items[i].error));
        json_array_append_new(arr, o);
    }
    char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    *len = s ? strlen(s) : 0;
    return s;
}

/* 400 when no event of the body was valid: the list names each item's problem. */
static void reply_none_valid(struct ingest *ing, struct mutt_http_req *req, uint64_t start_ns,
                             const struct mutt_event_batch *b)
{
    const char *cid = mutt_http_req_correlation_id(req);
    json_t *o = json_object();
    char msg[300];
    if (b->count == 1)
        snprintf(msg, sizeof msg, "%s", b->items[0].error ? b->items[0].error : "invalid event");
    else
        snprintf(msg, sizeof msg, "no valid event in the body (%zu rejected)", b->rejected);
    json_object_set_new(o, "status", json_string("error"));
    json_object_set_new(o, "message", json_string(msg));
    json_object_set_new(o, "correlation_id", json_string(cid));
    size_t rlen = 0;
    char *rej = rejected_array(b, &rlen);
    json_t *arr = rej ? json_loadb(rej, rlen, 0, NULL) : NULL;
    free(rej);
    json_object_set_new(o, "rejected", arr ? arr : json_array());
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (body) {
        mutt_http_reply_json(req, 400, body, strlen(body));
        free(body);
    } else {
        mutt_http_reply_status_error(req, 400, msg);
    }
    ingest_count_request(ing, REASON_VALIDATION);
    mutt_counter_add(ing->ev_rejected, (double)b->rejected);
    ingest_observe_latency(ing, start_ns);
    ingest_record_slo(ing, 400, start_ns);
    mutt_log_kv(MUTT_LOG_INFO, "ingest", cid, NULL, "400 validation: %s", msg);
}

/* ------------------------------------------------------------------------------------------ */
/* the handler                                                                                 */


/* Bytes the fast path leaves after each event: ,"_correlation_id":"<cid>","_event_id":"<uuid>"} */
#define FAST_SUFFIX_FIXED (20 + 15 + (MUTT_UUID_STR_LEN - 1) + 2)
#define FAST_ROOM (FAST_SUFFIX_FIXED + 64)

/* Events from mutt_event_fast_body (already what normalise + dump would give, minus the '}'):
 * the two id fields are appended in place, in the order mutt_event_stamp_shared sets them. */
static void submit_fast(struct ingest *ing, struct mutt_http_req *req, uint64_t t0, size_t n)
{
    const char *cid = mutt_http_req_correlation_id(req);
    size_t cidlen = strlen(cid);
    struct mutt_event_fast *fp = &ing->fast;
    struct ingest_op *op = NULL;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += fp->lens[i] + FAST_SUFFIX_FIXED + cidlen;

    ingest_group_make_room(ing, n, bytes);
    if (!ingest_reserve_entries(ing, ing->gnev + n) || !ingest_reserve_bytes(ing, ing->gused + bytes) ||
        (op = malloc(sizeof *op)) == NULL) {
        free(op);
        ingest_refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
        return;
    }
    op->req = req;
    op->start_ns = t0;
    op->accepted = n;
    op->rejected = 0;
    op->rejected_len = 0;
    size_t used = ing->gused;
    for (size_t i = 0; i < n; i++) {
        char *e = ing->buf + used;
        size_t len = fp->lens[i];
        memcpy(e, fp->buf + fp->offs[i], len);
        uint8_t rnd[16];
        char id[MUTT_UUID_STR_LEN];
        mutt_random_bytes(rnd, sizeof rnd); /* D1: a fresh _event_id per event */
        mutt_uuid_v4_format(rnd, id);
        memcpy(e + len, ",\"_correlation_id\":\"", 20);
        len += 20;
        memcpy(e + len, cid, cidlen);
        len += cidlen;
        memcpy(e + len, "\",\"_event_id\":\"", 15);
        len += 15;
        memcpy(e + len, id, MUTT_UUID_STR_LEN - 1);
        len += MUTT_UUID_STR_LEN - 1;
        memcpy(e + len, "\"}", 2);
        len += 2;
        ing->offs[ing->gnev + i] = used;
        ing->lens[ing->gnev + i] = len;
        used += len;
    }
    ingest_group_add(ing, op, n, used);
}

/* Over 100 lines, left whole on purpose for now: the intake checks run in the order the
 * contract answers them (auth, media type, size, parse, validate, queue), and this body is being
 * changed by the reserved-field (D35) and in-flight budget work; split it after those land. */
/* The answers that need no parsing (shutdown, 401, 415, 413, the in-flight budget, a bad
 * X-Correlation-ID). Returns true when the request may go on; else it has been refused.
 * *body and *blen get the request body. */
static bool admit_request(struct ingest *ing, struct mutt_http_req *req, uint64_t t0, const char **body_out,
                          size_t *blen_out)
{
    const struct mutt_config *cfg = ing->ctx->cfg;
    if (ing->life.state != MUTT_STAGE_RUNNING) {
        ingest_refuse(ing, req, t0, 503, REASON_SHUTDOWN, "shutting down", REDIS_DOWN_RETRY_AFTER_S);
        return false;
    }

    /* 401: exactly one X-API-KEY header; never the query string (W34) */
    size_t klen = 0;
    int kcount = 0;
    const char *key = mutt_http_req_header(req, "x-api-key", &klen, &kcount);
    if (kcount != 1 || !mutt_ingest_key_matches(key, klen, mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY),
                                                 mutt_config_str(cfg, MUTT_CFG_INGEST_API_KEY_NEXT))) {
        ingest_refuse(ing, req, t0, 401, REASON_AUTH, "Unauthorized", 0);
        return false;
    }

    /* 415 */
    size_t ctlen = 0;
    int ctcount = 0;
    const char *ct = mutt_http_req_header(req, "content-type", &ctlen, &ctcount);
    if (ctcount != 1 || !mutt_ingest_media_type_ok(ct, ctlen)) {
        ingest_refuse(ing, req, t0, 415, REASON_MEDIA, "Content-Type must be application/json or application/x-ndjson", 0);
        return false;
    }

    /* 413 (h2o already refuses bodies over MAX_BODY_BYTES before routing, D10; this covers any
     * path around it) */
    size_t blen = 0;
    const char *body = mutt_http_req_body(req, &blen);
    size_t max_body = (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BODY_BYTES);
    if (blen > max_body) {
        char msg[96];
        snprintf(msg, sizeof msg, "body is larger than MAX_BODY_BYTES (%zu)", max_body);
        ingest_refuse(ing, req, t0, 413, REASON_SIZE, msg, 0);
        return false;
    }

    /* 503: this process already holds INGEST_INFLIGHT_BYTES of bodies waiting for Redis (a
     * stalled Redis must not grow memory without bound). One request is always admitted, so a
     * budget below MAX_BODY_BYTES cannot lock out a large body. */
    size_t budget = (size_t)mutt_config_int(cfg, MUTT_CFG_INGEST_INFLIGHT_BYTES);
    if (ing->inflight_bytes > 0 && ing->inflight_bytes + blen > budget) {
        char msg[160];
        snprintf(msg, sizeof msg, "overloaded: INGEST_INFLIGHT_BYTES (%zu) of requests are waiting for Redis", budget);
        ingest_refuse(ing, req, t0, 503, REASON_INFLIGHT, msg, OVERLOADED_RETRY_AFTER_S);
        return false;
    }

    /* 400: a correlation id we would otherwise silently replace (D8) */
    size_t cidlen = 0;
    int cidcount = 0;
    const char *cidh = mutt_http_req_header(req, "x-correlation-id", &cidlen, &cidcount);
    if (cidcount > 1 || (cidcount == 1 && !mutt_correlation_id_valid(cidh, cidlen))) {
        ingest_refuse(ing, req, t0, 400, REASON_VALIDATION,
               cidcount > 1 ? "X-Correlation-ID: sent more than once"
                            : "X-Correlation-ID: must be 1 to 64 characters from A-Z a-z 0-9 . _ : -",
               0);
        return false;
    }

    *body_out = body;
    *blen_out = blen;
    return true;
}

/* The general path: split and parse with jansson, strip, normalise and size each event, then
 * join the loop turn's group (or answer 400/413 when nothing is valid). */
static void submit_general(struct ingest *ing, struct mutt_http_req *req, uint64_t t0, const char *body, size_t blen)
{
    const struct mutt_config *cfg = ing->ctx->cfg;
    /* 413 / 400: split and parse */
    struct mutt_event_batch b;
    int rc = mutt_event_parse_body(body, blen, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BATCH_EVENTS),
                                   (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), &b);
    if (rc != 0) {
        if (rc == MUTT_ERANGE)
            ingest_refuse(ing, req, t0, 413, REASON_SIZE, b.error, 0);
        else if (rc == MUTT_ENOMEM)
            ingest_refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
        else
            ingest_refuse(ing, req, t0, 400, REASON_JSON, b.error[0] ? b.error : "invalid JSON", 0);
        mutt_event_batch_dispose(&b);
        return;
    }
    for (size_t i = 0; i < b.count; i++) {
        if (!b.items[i].event)
            continue;
        char err[256];
        size_t stripped = mutt_event_strip_reserved(b.items[i].event); /* D35 */
        if (stripped)
            mutt_counter_add(ing->reserved_stripped, (double)stripped);
        if (mutt_event_normalize(b.items[i].event, &ing->rules, err, sizeof err, NULL) != 0 ||
            mutt_event_check_size(b.items[i].event, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), err,
                                  sizeof err) != 0)
            mutt_event_batch_reject(&b, i, err[0] ? err : "invalid event");
    }
    size_t accepted = b.count - b.rejected;
    if (accepted == 0) {
        reply_none_valid(ing, req, t0, &b);
        mutt_event_batch_dispose(&b);
        return;
    }

    /* 429 / 503 / 200: the group's script call */
    const char *cid = mutt_http_req_correlation_id(req);
    size_t rlen = 0;
    char *rej = NULL;
    struct ingest_op *op = NULL;
    long n = -1;
    ingest_group_make_room(ing, accepted, blen + accepted * (FAST_SUFFIX_FIXED + 64));
    if (!ingest_reserve_entries(ing, ing->gnev + accepted) ||
        (b.rejected > 0 && (rej = rejected_array(&b, &rlen)) == NULL) ||
        (op = malloc(sizeof *op + rlen)) == NULL || (n = ingest_serialise(ing, &b, cid)) < 0) {
        free(rej);
        free(op);
        mutt_event_batch_dispose(&b);
        ingest_refuse(ing, req, t0, 503, REASON_REDIS, "out of memory", REDIS_DOWN_RETRY_AFTER_S);
        return;
    }
    op->req = req;
    op->start_ns = t0;
    op->accepted = (size_t)n;
    op->rejected = b.rejected;
    op->rejected_len = rlen;
    if (rlen)
        memcpy(op->rejected_json, rej, rlen);
    free(rej);
    mutt_event_batch_dispose(&b);
    size_t used = op->accepted ? ing->offs[ing->gnev + op->accepted - 1] + ing->lens[ing->gnev + op->accepted - 1]
                               : ing->gused;
    ingest_group_add(ing, op, op->accepted, used);
}

/* POST /api/v2/ingest (and /ingest): the checks that need no parsing, then the fast path for
 * compact bodies, else the general path; both end in the loop turn's group (D50). */
void ingest_on_ingest(struct mutt_http_req *req, void *privdata)
{
    struct ingest *ing = privdata;
    const struct mutt_config *cfg = ing->ctx->cfg;
    uint64_t t0 = uv_hrtime();

    const char *body = NULL;
    size_t blen = 0;
    if (!admit_request(ing, req, t0, &body, &blen))
        return;

    /* Compact bodies that need no normalisation skip jansson (same bytes, see event_fast.h). */
    if (strlen(mutt_http_req_correlation_id(req)) + FAST_SUFFIX_FIXED <= FAST_ROOM) {
        long nfast = mutt_event_fast_body(body, blen, (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_BATCH_EVENTS),
                                          (size_t)mutt_config_int(cfg, MUTT_CFG_MAX_EVENT_BYTES), &ing->rules,
                                          FAST_ROOM, &ing->fast);
        if (nfast > 0) {
            submit_fast(ing, req, t0, (size_t)nfast);
            return;
        }
        /* 0: not a fast body; MUTT_ENOMEM: the general path will say so if it persists */
    }

    submit_general(ing, req, t0, body, blen);
}

