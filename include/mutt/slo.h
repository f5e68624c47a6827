/* Service-level objectives (D22, reference §8.6): the six SLO definitions, the Redis key of a
 * per-minute counter and the pure evaluation of good/total counts into a status and burn rate.
 * Writers (the stages) HINCRBY fields "good" and "total" of mutt:slo:<name>:<YYYY-MM-DDTHH:MM>
 * (UTC minute) and set a TTL of at least the longest window they care about; readers (GET
 * /api/v1/slo) sum the minutes of the window. For the latency SLOs "good" counts requests that
 * finished within target_seconds, so the SLI is "share of requests within target" with a 99 %
 * objective (p99 <= target). No I/O. Any thread. */
#ifndef MUTT_SLO_H
#define MUTT_SLO_H

#include <stddef.h>
#include <stdint.h>

#define MUTT_SLO_PREFIX "mutt:slo:"
#define MUTT_SLO_KEY_MAX 96
#define MUTT_SLO_MAX_MINUTES 10080 /* windows are read over at most 7 days of minute keys */

enum mutt_slo_kind { MUTT_SLO_AVAILABILITY, MUTT_SLO_LATENCY };

struct mutt_slo_def {
    const char *name;        /* ingestor_availability ... (dynamic keys slo_<name>_*) */
    enum mutt_slo_kind kind;
    double target;           /* share of good events, 0..1 */
    double target_seconds;   /* latency SLOs: the per-request bound that makes a request good */
    const char *description;
};

extern const struct mutt_slo_def mutt_slo_defs[6];

/* "mutt:slo:<name>:<YYYY-MM-DDTHH:MM>" for the UTC minute holding epoch_ms. Returns 0 or
 * MUTT_EINVAL (buffer too small). */
int mutt_slo_key(const char *name, int64_t epoch_ms, char *buf, size_t len);

struct mutt_slo_result {
    double actual;            /* good/total, or -1 when total is 0 (no data) */
    double burn_rate;         /* (1-actual)/(1-target); 0 without data */
    double budget_remaining;  /* (actual-target)/(1-target); 1 without data */
    const char *status;       /* ok | breaching | warning | critical | no_data */
    char message[160];
};

/* Reference §8.6 availability rule: critical when burn >= crit, warning when >= warn, breaching
 * when actual < target, else ok. No events in the window gives status "no_data" (not a page). */
void mutt_slo_evaluate(const struct mutt_slo_def *def, double good, double total, double burn_warn,
                       double burn_crit, struct mutt_slo_result *out);

#endif
