/* The pod identity key (CONTRACT terms, D16): `mutt:pod:<POD_NAME>` holds this process's random
 * token with a TTL, refreshed every HEARTBEAT_INTERVAL. At start a name held by a live instance
 * is refused; one left by a crashed predecessor is taken over. Loop thread only. */
#ifndef MUTT_POD_H
#define MUTT_POD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct mutt_pod;
struct mutt_redis;

/* The identity key is MUTT_POD_KEY_PREFIX:<POD_NAME> (defined in deadlists.h, whose janitors
 * read it from io, below this module). */

enum mutt_pod_outcome {
    MUTT_POD_ACQUIRED = 0, /* the name is ours (fresh or taken over) */
    MUTT_POD_CONFLICT,     /* another live instance refreshes it: refuse to start (exit 2) */
};
typedef void mutt_pod_acquire_cb(void *privdata, enum mutt_pod_outcome outcome);

/* `name` copied. interval_ms: refresh period; expiry_s: key TTL (HEARTBEAT_EXPIRY). */
struct mutt_pod *mutt_pod_create(uv_loop_t *loop, struct mutt_redis *redis, const char *name,
                                 uint64_t interval_ms, uint64_t expiry_s);
/* Starts acquiring; waits for Redis if it is down. cb fires exactly once (never on stop). */
int mutt_pod_acquire(struct mutt_pod *pod, mutt_pod_acquire_cb *cb, void *privdata);
/* True while we hold the key (last refresh succeeded or Redis is merely unreachable). */
bool mutt_pod_held(const struct mutt_pod *pod);
const char *mutt_pod_name(const struct mutt_pod *pod);
const char *mutt_pod_token(const struct mutt_pod *pod);
/* Stops refreshing and deletes the key if it is still ours (graceful stop). `done` fires once
 * when the DEL was answered or could not be sent. */
void mutt_pod_release(struct mutt_pod *pod, void (*done)(void *privdata), void *privdata);
/* Frees; timers must have been closed by release + a loop run. */
void mutt_pod_destroy(struct mutt_pod *pod);

/* Default POD_NAME: `<hostname>-<4 random hex>` into buf. */
void mutt_pod_default_name(char *buf, size_t len);

#endif
