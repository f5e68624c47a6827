/* ingest: the listeners' entry to the group commit (include/mutt/ingest_intake.h). */
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

/* ------------------------------------------------------------------------------------------ */
/* intake for the listeners (ingest_intake.h)                                                  */

bool mutt_ingest_intake_ready(void)
{
    struct ingest *ing = &g_ingest;
    return ing->life.state == MUTT_STAGE_RUNNING && ing->conn && mutt_redis_conn_connected(ing->conn);
}

/* The same checks an HTTP event passes after parsing (D35, normalisation, MAX_EVENT_BYTES). */
static bool intake_valid(struct ingest *ing, json_t *ev)
{
    if (!json_is_object(ev))
        return false;
    size_t stripped = mutt_event_strip_reserved(ev);
    if (stripped)
        mutt_counter_add(ing->reserved_stripped, (double)stripped);
    return mutt_event_normalize(ev, &ing->rules, NULL, 0, NULL) == 0 &&
           mutt_event_check_size(ev, (size_t)mutt_config_int(ing->ctx->cfg, MUTT_CFG_MAX_EVENT_BYTES), NULL, 0) == 0;
}

long mutt_ingest_intake_submit(json_t *const *events, size_t n, const char *source_id, size_t *invalid,
                               mutt_ingest_intake_cb *cb, void *privdata)
{
    struct ingest *ing = &g_ingest;
    if (invalid)
        *invalid = 0;
    if (ing->life.state != MUTT_STAGE_RUNNING || !cb || !source_id ||
        !mutt_correlation_id_valid(source_id, strlen(source_id)))
        return MUTT_ESTATE;
    if (!mutt_redis_conn_connected(ing->conn))
        return MUTT_EDISCONNECTED;
    struct mutt_event_batch b = {.count = n};
    b.items = calloc(n ? n : 1, sizeof *b.items);
    if (!b.items)
        return MUTT_ENOMEM;
    size_t valid = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (intake_valid(ing, events[i])) {
            b.items[i].event = events[i]; /* borrowed: never disposed here */
            valid++;
            bytes += 1024;
        } else {
            b.rejected++;
        }
    }
    if (invalid)
        *invalid = b.rejected;
    if (b.rejected)
        mutt_counter_add(ing->ev_rejected, (double)b.rejected);
    if (valid == 0) {
        free(b.items);
        return 0;
    }
    ingest_group_make_room(ing, valid, bytes);
    struct ingest_op *op = NULL;
    long w = -1;
    if (ing->gnops == ing->gops_cap) {
        size_t cap = ing->gops_cap ? ing->gops_cap * 2 : 64;
        struct ingest_op **g = realloc(ing->gops, cap * sizeof *g);
        if (g) {
            ing->gops = g;
            ing->gops_cap = cap;
        }
    }
    if (ing->gnops == ing->gops_cap || !ingest_reserve_entries(ing, ing->gnev + valid) ||
        (op = calloc(1, sizeof *op)) == NULL || (w = ingest_serialise(ing, &b, source_id)) < 0) {
        free(op);
        free(b.items);
        return MUTT_ENOMEM;
    }
    free(b.items);
    op->icb = cb;
    op->ipriv = privdata;
    op->start_ns = uv_hrtime();
    op->accepted = (size_t)w;
    ing->gops[ing->gnops++] = op;
    ing->gused = ing->offs[ing->gnev + op->accepted - 1] + ing->lens[ing->gnev + op->accepted - 1];
    ing->gnev += op->accepted;
    ing->inflight++;
    if (ing->gnops == 1 && ing->check_ready) {
        uv_check_start(&ing->flush_check, ingest_on_flush_check);
        uv_prepare_start(&ing->flush_prepare, ingest_on_flush_prepare);
    }
    return (long)op->accepted;
}

