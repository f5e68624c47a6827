/* Returns the processing lists of dead pods to where their items came from, for the stages that
 * keep a per-pod processing list outside relq (web DLQ replay, remediate). Liveness is the pod
 * identity key (D16, pod.h: `mutt:pod:<name>`, refreshed every HEARTBEAT_INTERVAL, gone
 * HEARTBEAT_EXPIRY s after a crash, deleted by a graceful stop), read inside the same Lua call
 * that moves the items, exactly as relq's janitor reads a stage heartbeat: a live pod's list is
 * never touched and two janitors never move one item twice. Loop thread only. */
#ifndef MUTT_DEADLISTS_H
#define MUTT_DEADLISTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct mutt_redis;
struct mutt_deadlists;

#define MUTT_DEADLISTS_MAX_KEYS 4

/* The pod identity key is <prefix>:<POD_NAME> (core/pod.c writes it); it exists exactly while
 * that pod lives, which is what the janitors read. Here because io may not include core. */
#define MUTT_POD_KEY_PREFIX "mutt:pod"

/* The stage's move script for one list: fills keys[0..] (borrowed until the call returns) with
 * the destination keys that follow the list, for a list whose name ends in `tail` (the part after
 * "<prefix>:<pod>:", "" without tail). Returns how many (<= MUTT_DEADLISTS_MAX_KEYS), or -1 to
 * leave the list alone (an unknown tail). */
typedef int mutt_deadlists_keys_cb(void *priv, const char *tail, const char **keys);

struct mutt_deadlists_opts {
    const char *name;        /* for logs; borrowed for the janitor's life */
    const char *list_prefix; /* lists are <list_prefix>:<pod>[:<tail>]; borrowed */
    bool has_tail;           /* the part after the last ':' is a tail, not part of the pod name */
    const char *own_pod;     /* never touched (its items may be in flight); borrowed */
    int script;              /* registered script: KEYS = list, keys_cb's keys..., pod key;
                                ARGV[1] = "janitor"; returns the items moved, or -1 when the pod
                                key exists (alive) */
    uint64_t interval_ms;    /* JANITOR_INTERVAL; the first pass runs at once */
    mutt_deadlists_keys_cb *keys_cb;
    void *priv;
};

/* Starts the passes on the shared command connection. NULL on OOM (then nothing runs). */
struct mutt_deadlists *mutt_deadlists_start(uv_loop_t *loop, struct mutt_redis *redis,
                                            const struct mutt_deadlists_opts *opts);
/* Runs a pass now unless one is running. Returns 0 or MUTT_ESTATE when one is running. */
int mutt_deadlists_run(struct mutt_deadlists *j);
/* Items moved back since start (for tests and logs). */
uint64_t mutt_deadlists_moved(const struct mutt_deadlists *j);
/* Stops the timer; frees once the replies in flight have come back. NULL is fine. */
void mutt_deadlists_stop(struct mutt_deadlists *j);

#endif
