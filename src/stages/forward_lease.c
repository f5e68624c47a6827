/* forward: tokens of the shared rate limit taken in leases (W13). */
#define _GNU_SOURCE
#include "mutt/forward.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "forward_internal.h"
#include "lineage_push.h"
#include "mutt/alert_item.h"
#include "mutt/backoff.h"
#include "mutt/config.h"
#include "mutt/dynconfig.h"
#include "mutt/error.h"
#include "mutt/event.h"
#include "mutt/forward_classify.h"
#include "mutt/http_client.h"
#include "mutt/keys.h"
#include "mutt/log.h"
#include "mutt/metrics.h"
#include "mutt/moog_payload.h"
#include "mutt/random.h"
#include "mutt/ratelimit.h"
#include "mutt/redact.h"
#include "mutt/redis.h"
#include "mutt/relq.h"
#include "mutt/replay.h"
#include "mutt/retryset.h"
#include "mutt/slo_counters.h"
#include "mutt/stage_life.h"
#include "mutt/version.h"

/* ------------------------------------------------------------------------------------------ */
/* shared rate limit (W13)                                                                     */

/* The stage takes tokens from the shared limit in leases (include/mutt/ratelimit.h): one script
 * call per lease, not per alert. Alerts with no token wait in the waiting list while the one
 * lease call is out; its reply wakes them. At a lease's deadline (lease_timer) a pod that used it
 * settles it and takes the next one in the same call (so a steady flow does not stop at every
 * deadline); an idle pod gives its unspent tokens back, so it does not starve the others. */

static void on_lease_timer(uv_timer_t *t);

/* The lease's clock (ms): read fresh, not the loop's cached time, so a spend late in a long loop
 * turn is recorded when it happens. */
uint64_t fwd_lease_clock(void)
{
    return uv_hrtime() / 1000000u;
}

/* Redis failed: fail open like the original (the completion that follows needs Redis anyway),
 * a lease's worth of tokens at a time, with nothing to settle. */
static void lease_fail_open(struct forward *fw, uint32_t n, uint64_t lease_ms)
{
    uint64_t now = fwd_lease_clock();
    mutt_rate_lease_grant(&fw->lease, "", n ? n : 1, now, lease_ms, 0, now);
    uv_timer_start(&fw->lease_timer, on_lease_timer, 0, 0); /* wakes the waiting alerts (not from inside admit) */
}

static void on_lease_timer(uv_timer_t *t)
{
    struct forward *fw = t->data;
    if (mutt_stage_life_draining(&fw->life))
        return;
    if (fw->nwaiting > 0)
        fwd_wake(fw); /* each admit spends a token or asks for the next lease (settling this one) */
    if (fw->lease_pending || fwd_lease_clock() < fw->lease.deadline)
        return;
    if (fw->lease.spent > 0 && fw->lease.member[0] && !fwd_rate_held(fw))
        fwd_lease_request(fw, true); /* in use: settle it and take the next one before an alert waits */
    else if (mutt_rate_lease_has_unspent(&fw->lease))
        fwd_lease_request(fw, false); /* idle: give back what was not spent */
    else
        mutt_rate_lease_clear(&fw->lease); /* its entry already ends at the deadline */
}

static void on_lease_reply(void *priv, redisReply *reply, int status)
{
    struct forward *fw = priv;
    fw->rpending--;
    fw->lease_pending = false;
    uint64_t now = fwd_lease_clock();
    if (mutt_stage_life_draining(&fw->life)) {
        fwd_maybe_stopped(fw); /* a lease granted now ends at its deadline in Redis */
        return;
    }
    if (status == 0 && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 4 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[1]->type == REDIS_REPLY_INTEGER) {
        long long granted = reply->element[0]->integer;
        if (granted > 0 && reply->element[3]->type == REDIS_REPLY_STRING) {
            long long redis_now = reply->element[2]->type == REDIS_REPLY_INTEGER ? reply->element[2]->integer : 0;
            mutt_rate_lease_grant(&fw->lease, reply->element[3]->str, (uint32_t)granted, fw->lease_sent_ms,
                                  fw->lease_len_ms, redis_now, now);
            uint64_t d = fw->lease.deadline > now ? fw->lease.deadline - now : 0;
            uv_timer_start(&fw->lease_timer, on_lease_timer, d, 0);
        } else if (fw->lease_want) {
            long long wait = reply->element[1]->integer;
            if (wait < 1)
                wait = 1;
            mutt_counter_add(fw->m_rate_hits, (double)fw->nwaiting);
            uint64_t until = uv_now(fw->ctx->loop) + (uint64_t)wait;
            if (until > fw->rate_hold_until_ms) {
                fw->rate_hold_until_ms = until;
                uv_timer_start(&fw->rate_timer, fwd_on_rate_timer, (uint64_t)wait, 0);
            }
        }
    } else if (fw->lease_want) {
        lease_fail_open(fw, mutt_ratelimit_lease_size(mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_RATE_LIMIT)),
                        fw->lease_len_ms);
    }
    fwd_wake(fw);
    fwd_maybe_stopped(fw);
}

void fwd_lease_request(struct forward *fw, bool want_tokens)
{
    if (fw->lease_pending)
        return;
    int64_t limit = mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_RATE_LIMIT);
    int64_t window = mutt_dynconfig_int(fw->ctx->dyn, MUTT_DYN_MOOG_RATE_PERIOD) * 1000;
    uint64_t lease_ms = mutt_ratelimit_lease_ms(window);
    uint32_t want = want_tokens ? mutt_ratelimit_lease_size(limit) : 0;
    if (want_tokens && want == 0)
        want = 1; /* a limit of 0: the script denies */
    const char *prev = "";
    uint32_t spent = 0;
    int64_t last = -1;
    mutt_rate_lease_settlement(&fw->lease, &prev, &spent, &last);
    char a_limit[24], a_window[24], a_base[160], a_want[16], a_lease[24], a_spent[16], a_last[24] = "";
    if (last >= 0)
        snprintf(a_last, sizeof a_last, "%lld", (long long)last);
    snprintf(a_limit, sizeof a_limit, "%lld", (long long)limit);
    snprintf(a_window, sizeof a_window, "%lld", (long long)window);
    snprintf(a_base, sizeof a_base, "%s:%llu", fw->ctx->pod_name, (unsigned long long)++fw->rate_seq);
    snprintf(a_want, sizeof a_want, "%u", want);
    snprintf(a_lease, sizeof a_lease, "%llu", (unsigned long long)lease_ms);
    snprintf(a_spent, sizeof a_spent, "%u", spent);
    const char *keys[] = {fw->rate_key};
    const char *args[] = {a_limit, a_window, "", a_base, a_want, a_lease, prev, a_spent, a_last};
    uint64_t sent = fwd_lease_clock();
    int rc = mutt_redis_evalsha(mutt_redis_cmd(fw->ctx->redis), fw->script_rate, 1, keys, NULL, 9, args, NULL,
                                on_lease_reply, fw); /* args are copied at once */
    /* the settlement is sent (or lost with Redis): this lease spends no more either way */
    mutt_rate_lease_clear(&fw->lease);
    if (rc == 0) {
        fw->rpending++;
        fw->lease_pending = true;
        fw->lease_want = want_tokens;
        fw->lease_sent_ms = sent;
        fw->lease_len_ms = lease_ms;
        return;
    }
    if (want_tokens)
        lease_fail_open(fw, want, lease_ms);
}

