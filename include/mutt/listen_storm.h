/* Storm control shared by the native listeners (issue 15 item 3, CONTRACT D39
 * LISTENER_SOURCE_MAX_RATE): admits each message against its sender's token bucket
 * (domain/source_rate.h) and, for every sender that had messages refused, queues one summary
 * event a minute through ingest's intake, saying how many were suppressed. Loop thread only. */
#ifndef MUTT_LISTEN_STORM_H
#define MUTT_LISTEN_STORM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define MUTT_LISTEN_STORM_SOURCES 4096 /* senders remembered; the least recently seen goes first */
#define MUTT_LISTEN_STORM_WINDOW_MS 60000

struct mutt_listen_storm;

/* Sets up storm control for one listener stage: `listener` names it in the summaries ("syslog",
 * "snmp"), `source_id` is the summaries' D8 correlation id. rate 0 = off: *out is NULL (and every
 * message is admitted). Returns 0, or MUTT_ENOMEM. */
int mutt_listen_storm_start(uv_loop_t *loop, const char *listener, const char *source_id, uint32_t rate,
                            struct mutt_listen_storm **out);

/* True when a message from `ip` may pass (always, when s is NULL); false = drop it and count it
 * rate_limited (its summary is queued later). */
bool mutt_listen_storm_admit(struct mutt_listen_storm *s, const char *ip);

/* Queues the summaries still open (when ingest can take them), stops the timer and frees s once
 * its handle is closed; then calls closed(arg). With s NULL, returns 0 at once without calling
 * closed. Returns 1 when closed will be called. */
int mutt_listen_storm_stop(struct mutt_listen_storm *s, void (*closed)(void *arg), void *arg);

#endif
