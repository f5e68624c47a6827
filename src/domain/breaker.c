/* Circuit breaker state machine (CONTRACT §5). This C version is the specification and the
 * oracle the Lua twin (breaker_lua.c) is tested against; every state change goes through
 * set_mode so both read the same way. */
#include "mutt/breaker.h"

#include <string.h>

#include "mutt/error.h"

void mutt_breaker_state_init(struct mutt_breaker_state *s)
{
    memset(s, 0, sizeof(*s));
    s->mode = MUTT_BREAKER_CLOSED;
}

/* The one writer of s->mode; runs the on-enter step of each state. */
static void set_mode(struct mutt_breaker_state *s, enum mutt_breaker_mode mode, int64_t now_ms)
{
    s->mode = mode;
    switch (mode) {
    case MUTT_BREAKER_CLOSED:
        s->open_since_ms = 0;
        s->probe_until_ms = 0;
        break;
    case MUTT_BREAKER_OPEN:
        s->open_since_ms = now_ms;
        s->probe_until_ms = 0;
        break;
    case MUTT_BREAKER_HALF_OPEN:
        break; /* the probe lock is taken by decide, right after */
    }
}

static enum mutt_breaker_verdict take_probe(struct mutt_breaker_state *s, const struct mutt_breaker_cfg *cfg,
                                            int64_t now_ms)
{
    if (s->probe_until_ms > now_ms)
        return MUTT_BREAKER_DENY; /* another attempt is the probe */
    s->probe_until_ms = now_ms + cfg->probe_ttl_ms;
    return MUTT_BREAKER_PROBE;
}

enum mutt_breaker_verdict mutt_breaker_decide(struct mutt_breaker_state *s, const struct mutt_breaker_cfg *cfg,
                                              int64_t now_ms)
{
    switch (s->mode) {
    case MUTT_BREAKER_CLOSED:
        return MUTT_BREAKER_ALLOW;
    case MUTT_BREAKER_OPEN:
        if (now_ms - s->open_since_ms < cfg->open_timeout_ms)
            return MUTT_BREAKER_DENY;
        set_mode(s, MUTT_BREAKER_HALF_OPEN, now_ms);
        return take_probe(s, cfg, now_ms);
    case MUTT_BREAKER_HALF_OPEN:
        return take_probe(s, cfg, now_ms);
    }
    return MUTT_BREAKER_DENY;
}

void mutt_breaker_on_result(struct mutt_breaker_state *s, const struct mutt_breaker_cfg *cfg,
                            enum mutt_breaker_outcome outcome, int64_t now_ms)
{
    if (outcome == MUTT_BREAKER_SUCCESS) {
        s->failures = 0;
        if (s->mode == MUTT_BREAKER_HALF_OPEN)
            set_mode(s, MUTT_BREAKER_CLOSED, now_ms);
        return;
    }
    switch (s->mode) {
    case MUTT_BREAKER_HALF_OPEN:
        set_mode(s, MUTT_BREAKER_OPEN, now_ms); /* the probe failed: wait a full timeout again */
        break;
    case MUTT_BREAKER_CLOSED:
        s->failures++;
        if (s->failures >= cfg->threshold)
            set_mode(s, MUTT_BREAKER_OPEN, now_ms);
        break;
    case MUTT_BREAKER_OPEN:
        s->failures++; /* a straggler; the open time stays so the timeout is not extended */
        break;
    }
}

enum mutt_breaker_outcome mutt_breaker_outcome_of(enum mutt_delivery delivery)
{
    /* A 4xx the alert is dead for still proves the endpoint is up (reference §6.2 did not
     * count it either way; counting it as success lets a probe that meets one close it). */
    return delivery == MUTT_RETRY ? MUTT_BREAKER_FAILURE : MUTT_BREAKER_SUCCESS;
}

const char *mutt_breaker_mode_name(enum mutt_breaker_mode mode)
{
    switch (mode) {
    case MUTT_BREAKER_CLOSED:
        return "CLOSED";
    case MUTT_BREAKER_OPEN:
        return "OPEN";
    case MUTT_BREAKER_HALF_OPEN:
        return "HALF_OPEN";
    }
    return "CLOSED";
}

int mutt_breaker_mode_parse(const char *name, enum mutt_breaker_mode *out)
{
    *out = MUTT_BREAKER_CLOSED;
    if (!name || strcmp(name, "CLOSED") == 0)
        return 0;
    if (strcmp(name, "OPEN") == 0) {
        *out = MUTT_BREAKER_OPEN;
        return 0;
    }
    if (strcmp(name, "HALF_OPEN") == 0) {
        *out = MUTT_BREAKER_HALF_OPEN;
        return 0;
    }
    return MUTT_EINVAL;
}

int mutt_breaker_mode_gauge(enum mutt_breaker_mode mode)
{
    return mode == MUTT_BREAKER_OPEN ? 2 : mode == MUTT_BREAKER_HALF_OPEN ? 1 : 0;
}
