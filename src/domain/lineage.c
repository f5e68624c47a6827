/* Event lineage encoding and state (include/mutt/lineage.h). Pure; any thread. */
#include "mutt/lineage.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mutt/error.h"
#include "mutt/timefmt.h"

/* One row per step code: who wrote it, what it says, the state it leaves the event in, and its
 * rank among steps of the same millisecond (the order they can happen in, below). */
struct step_info {
    char code;
    const char *stage;
    const char *what;
    const char *state; /* NULL: decided by the details (handled) */
    int rank;
};

/* rank orders steps of one millisecond in the order they can happen: accepted, the alert stage's
 * DLQ move, a replay out of that DLQ, the alert stage's other outcomes, the forwarder's DLQ move, a
 * replay out of that DLQ, the forwarder's attempts, parking. A replay takes its rank from the DLQ
 * it left (the latest DLQ step at or before it; mutt_lineage_decode decides), so "replayed, then
 * delivered in the same millisecond" reads delivered, never pending. */
#define RANK_REPLAY_FROM_ALERT 2
#define RANK_REPLAY_FROM_FORWARD 5
static const struct step_info steps[] = {
    {MUTT_LINEAGE_ACCEPTED, "ingest", "accepted", "pending", 0},
    {MUTT_LINEAGE_ALERT_DLQ, "alert", "dlq", "in_dlq", 1},
    {MUTT_LINEAGE_ALERT_RETRY, "alert", "retry", "pending", 3},
    {MUTT_LINEAGE_HANDLED, "alert", "handled", NULL, 3},
    {MUTT_LINEAGE_UNHANDLED, "alert", "unhandled", "unhandled", 3},
    {MUTT_LINEAGE_MAINTENANCE, "alert", "maintenance", "maintenance", 3},
    {MUTT_LINEAGE_FORWARD_DLQ, "forward", "dlq", "in_dlq", 4},
    {MUTT_LINEAGE_FORWARD_RETRY, "forward", "retry", "pending", 6},
    {MUTT_LINEAGE_DELIVERED, "forward", "delivered", "delivered", 6},
    {MUTT_LINEAGE_REPLAY, "remediate", "replay", "pending", RANK_REPLAY_FROM_FORWARD},
    {MUTT_LINEAGE_DEAD, "remediate", "dead", "dead", 7},
};

static const struct step_info *step_of(char code)
{
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (steps[i].code == code)
            return &steps[i];
    return NULL;
}

static const struct step_info *step_named(const char *stage, const char *what)
{
    for (size_t i = 0; stage && what && i < sizeof steps / sizeof steps[0]; i++)
        if (strcmp(steps[i].stage, stage) == 0 && strcmp(steps[i].what, what) == 0)
            return &steps[i];
    return NULL;
}

static int put_key(const char *prefix, const char *id, char *out, size_t cap)
{
    if (!id || !*id || !out || cap == 0)
        return MUTT_EINVAL;
    int n = snprintf(out, cap, "%s%s", prefix, id);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return MUTT_EINVAL;
    }
    return n;
}

int mutt_lineage_key(const char *event_id, char *out, size_t cap)
{
    return put_key(MUTT_LINEAGE_KEY_PREFIX, event_id, out, cap);
}

int mutt_lineage_cid_key(const char *correlation_id, char *out, size_t cap)
{
    return put_key(MUTT_LINEAGE_CID_PREFIX, correlation_id, out, cap);
}

int mutt_lineage_field(int64_t at_ms, enum mutt_lineage_step code, char *out, size_t cap)
{
    if (at_ms < 0 || !step_of((char)code) || !out || cap == 0)
        return MUTT_EINVAL;
    int n = snprintf(out, cap, "%lld:%c", (long long)at_ms, (char)code);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return MUTT_EINVAL;
    }
    return n;
}

int mutt_lineage_value(const json_t *details, char **out, size_t *len)
{
    *out = NULL;
    if (details && !json_is_object(details))
        return MUTT_EINVAL;
    char *s = details ? json_dumps(details, JSON_COMPACT) : strdup("{}");
    if (!s)
        return details ? MUTT_EINVAL : MUTT_ENOMEM;
    *out = s;
    *len = strlen(s);
    return 0;
}

int mutt_lineage_entry(int64_t at_ms, enum mutt_lineage_step code, const json_t *details, char **out, size_t *len)
{
    *out = NULL;
    char f[MUTT_LINEAGE_FIELD_MAX];
    int fl = mutt_lineage_field(at_ms, code, f, sizeof f);
    if (fl < 0)
        return fl;
    char *v = NULL;
    size_t vl = 0;
    int rc = mutt_lineage_value(details, &v, &vl);
    if (rc != 0)
        return rc;
    char *s = malloc((size_t)fl + 1 + vl + 1);
    if (!s) {
        free(v);
        return MUTT_ENOMEM;
    }
    memcpy(s, f, (size_t)fl);
    s[fl] = ' ';
    memcpy(s + fl + 1, v, vl + 1);
    free(v);
    *out = s;
    *len = (size_t)fl + 1 + vl;
    return 0;
}

/* "<digits>:<code>" -> at and code; false for anything else. */
static bool parse_field(const char *f, size_t len, int64_t *at, char *code)
{
    if (len < 3 || len > 22 || f[len - 2] != ':')
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len - 2; i++) {
        if (f[i] < '0' || f[i] > '9')
            return false;
        v = v * 10 + (f[i] - '0');
    }
    *at = v;
    *code = f[len - 1];
    return true;
}

struct decoded {
    int64_t at;
    const struct step_info *info;
    int rank;   /* info->rank, or a replay's by the DLQ it left */
    size_t idx; /* into the caller's arrays */
};

/* A replay leaves the DLQ of the latest DLQ step at or before it (the forwarder's when both share
 * its millisecond: that is the later of the two). */
static void rank_replays(struct decoded *ds, size_t nd)
{
    for (size_t i = 0; i < nd; i++) {
        if (ds[i].info->code != MUTT_LINEAGE_REPLAY)
            continue;
        int64_t best = INT64_MIN;
        int rank = RANK_REPLAY_FROM_FORWARD;
        for (size_t j = 0; j < nd; j++) {
            char c = ds[j].info->code;
            if ((c != MUTT_LINEAGE_ALERT_DLQ && c != MUTT_LINEAGE_FORWARD_DLQ) || ds[j].at > ds[i].at)
                continue;
            if (ds[j].at > best || (ds[j].at == best && c == MUTT_LINEAGE_FORWARD_DLQ)) {
                best = ds[j].at;
                rank = c == MUTT_LINEAGE_ALERT_DLQ ? RANK_REPLAY_FROM_ALERT : RANK_REPLAY_FROM_FORWARD;
            }
        }
        ds[i].rank = rank;
    }
}

static int cmp_decoded(const void *a, const void *b)
{
    const struct decoded *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static json_t *entry(const struct decoded *d, const char *value, size_t vlen)
{
    json_t *e = json_object();
    if (!e)
        return NULL;
    char at[MUTT_TIME_ISO8601_MS_LEN];
    if (mutt_time_format_iso8601_ms(d->at, at, sizeof at) != 0)
        at[0] = '\0';
    int rc = json_object_set_new(e, "at", json_string(at));
    rc |= json_object_set_new(e, "stage", json_string(d->info->stage));
    rc |= json_object_set_new(e, "what", json_string(d->info->what));
    json_t *det = value ? json_loadb(value, vlen, 0, NULL) : NULL;
    if (json_is_object(det)) {
        const char *k;
        json_t *v;
        json_object_foreach(det, k, v)
        {
            if (strcmp(k, "at") != 0 && strcmp(k, "stage") != 0 && strcmp(k, "what") != 0)
                rc |= json_object_set(e, k, v);
        }
    }
    json_decref(det);
    if (rc != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

json_t *mutt_lineage_decode(const char *event_id, const char *const *fields, const size_t *flens,
                            const char *const *values, const size_t *vlens, size_t n)
{
    struct decoded *ds = n ? calloc(n, sizeof *ds) : NULL;
    json_t *out = json_object(), *tl = json_array(), *cid = NULL;
    if ((n && !ds) || !out || !tl)
        goto fail;
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (flens[i] == 1 && fields[i][0] == MUTT_LINEAGE_CID_FIELD[0]) {
            json_decref(cid);
            cid = json_stringn(values[i], vlens[i]);
            continue;
        }
        int64_t at;
        char code;
        if (!parse_field(fields[i], flens[i], &at, &code) || !(ds[nd].info = step_of(code)))
            continue;
        ds[nd].at = at;
        ds[nd].rank = ds[nd].info->rank;
        ds[nd].idx = i;
        nd++;
    }
    rank_replays(ds, nd);
    qsort(ds, nd, sizeof *ds, cmp_decoded);
    for (size_t i = 0; i < nd; i++) {
        json_t *e = entry(&ds[i], values[ds[i].idx], vlens[ds[i].idx]);
        if (!e || json_array_append_new(tl, e) != 0)
            goto fail;
    }
    int rc = json_object_set_new(out, "event_id", json_string(event_id ? event_id : ""));
    rc |= json_object_set_new(out, "correlation_id", cid ? cid : json_null());
    cid = NULL;
    rc |= json_object_set_new(out, "state", json_string(mutt_lineage_state(tl)));
    rc |= json_object_set_new(out, "timeline", tl);
    tl = NULL;
    if (rc != 0)
        goto fail;
    free(ds);
    return out;
fail:
    free(ds);
    json_decref(cid);
    json_decref(tl);
    json_decref(out);
    return NULL;
}

const char *mutt_lineage_state(const json_t *timeline)
{
    const char *state = "pending";
    size_t i;
    const json_t *e;
    json_array_foreach(timeline, i, e)
    {
        const json_t *st = json_object_get(e, "stage"), *wh = json_object_get(e, "what");
        const struct step_info *info = step_named(json_string_value(st), json_string_value(wh));
        if (!info)
            continue;
        /* a meta-alert carries the event's id: its fate is the meta-alert's, not the event's */
        bool after_alert = strcmp(info->stage, "ingest") != 0 && strcmp(info->stage, "alert") != 0;
        if (after_alert && json_is_true(json_object_get(e, "meta_alert")))
            continue;
        if (info->state)
            state = info->state;
        else /* handled: forwarded means it still has to be delivered */
            state = json_is_false(json_object_get(e, "forwarded")) ? "ignored" : "pending";
    }
    return state;
}

bool mutt_lineage_args_make(bool enabled, int64_t ttl_s, const json_t *item, enum mutt_lineage_step code,
                            json_t *details, int64_t now_ms, struct mutt_lineage_args *a)
{
    memset(a, 0, sizeof *a);
    const json_t *id = json_object_get(item, "_event_id"), *host = json_object_get(item, "hostname");
    size_t vl = 0;
    if (details && json_is_string(host) && strcmp(json_string_value(host), MUTT_LINEAGE_META_HOSTNAME) == 0)
        json_object_set_new(details, "meta_alert", json_true());
    bool ok = enabled && json_is_string(id) &&
              mutt_lineage_key(json_string_value(id), a->key, sizeof a->key) > 0 &&
              mutt_lineage_field(now_ms, code, a->field, sizeof a->field) > 0 &&
              mutt_lineage_value(details, &a->value, &vl) == 0;
    json_decref(details);
    if (!ok)
        return false;
    snprintf(a->ttl, sizeof a->ttl, "%lld", (long long)ttl_s);
    const char *v[4] = {a->key, a->field, a->value, a->ttl};
    for (int i = 0; i < 4; i++) {
        a->argv[i] = v[i];
        a->argl[i] = i == 2 ? vl : strlen(v[i]);
    }
    return true;
}

void mutt_lineage_args_free(struct mutt_lineage_args *a)
{
    free(a->value);
    a->value = NULL;
}
