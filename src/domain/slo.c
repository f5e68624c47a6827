/* SLO definitions, counter keys and evaluation (see include/mutt/slo.h). Pure. */
#include "mutt/slo.h"

#include <stdio.h>
#include <time.h>

#include "mutt/error.h"

const struct mutt_slo_def mutt_slo_defs[6] = {
    {"ingestor_availability", MUTT_SLO_AVAILABILITY, 0.999, 0, "Ingest requests answered 2xx/4xx (not 5xx)"},
    {"ingestor_latency_p99", MUTT_SLO_LATENCY, 0.99, 0.5, "Ingest requests answered within 0.5 s"},
    {"forwarder_availability", MUTT_SLO_AVAILABILITY, 0.995, 0, "Webhook deliveries that succeeded"},
    {"forwarder_latency_p99", MUTT_SLO_LATENCY, 0.99, 2.0, "Webhook deliveries answered within 2 s"},
    {"alerter_processing_success", MUTT_SLO_AVAILABILITY, 0.999, 0, "Events processed without error"},
    {"alerter_cache_reload_success", MUTT_SLO_AVAILABILITY, 0.99, 0, "Rule cache reloads that succeeded"},
};

int mutt_slo_key(const char *name, int64_t epoch_ms, char *buf, size_t len)
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return MUTT_EINVAL;
    int n = snprintf(buf, len, MUTT_SLO_PREFIX "%s:%04d-%02d-%02dT%02d:%02d", name, tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min);
    return n < 0 || (size_t)n >= len ? MUTT_EINVAL : 0;
}

void mutt_slo_evaluate(const struct mutt_slo_def *def, double good, double total, double burn_warn,
                       double burn_crit, struct mutt_slo_result *out)
{
    double budget = 1.0 - def->target;
    if (total <= 0) {
        out->actual = -1;
        out->burn_rate = 0;
        out->budget_remaining = 1;
        out->status = "no_data";
        snprintf(out->message, sizeof out->message, "No events in the window");
        return;
    }
    if (good > total)
        good = total;
    out->actual = good / total;
    out->burn_rate = budget > 0 ? (1.0 - out->actual) / budget : 0;
    out->budget_remaining = budget > 0 ? (out->actual - def->target) / budget : 1.0;
    if (out->burn_rate >= burn_crit && burn_crit > 0)
        out->status = "critical";
    else if (out->burn_rate >= burn_warn && burn_warn > 0)
        out->status = "warning";
    else if (out->actual < def->target)
        out->status = "breaching";
    else
        out->status = "ok";
    snprintf(out->message, sizeof out->message, "%.4f%% good of %.0f events, burn rate %.2f", out->actual * 100,
             total, out->burn_rate);
}
