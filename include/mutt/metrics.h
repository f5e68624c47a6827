/* The process's one Prometheus registry (CONTRACT §12; names from python-original §12): counter,
 * gauge and histogram families, their labelled children, and the text exposition renderer.
 * No I/O except the process collectors (procstat.c read /proc/self at render). Loop thread only:
 * values are plain doubles, not atomics, because counters are bumped >100k/s on the hot path. */
#ifndef MUTT_METRICS_H
#define MUTT_METRICS_H

#include <stddef.h>

struct mutt_metrics;
struct mutt_counter;   /* a counter family or one labelled child of it */
struct mutt_gauge;     /* a gauge family or one labelled child of it */
struct mutt_histogram; /* a histogram family or one labelled child of it */
struct redisReply;

/* Caps (curl `toobig`): a family that already has this many children refuses new label
 * combinations (labels() returns NULL, which every value function accepts as a no-op). */
#define MUTT_METRICS_MAX_CHILDREN 10000
#define MUTT_METRICS_MAX_LABELS 8
#define MUTT_METRICS_MAX_BUCKETS 64

/* Standard bucket sets (python-original §12). Sized, so sizeof(x)/sizeof(x[0]) works. */
extern const double mutt_metrics_latency_buckets[11]; /* s: .001 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 */
extern const double mutt_metrics_db_ms_buckets[11];   /* ms: 1 5 10 25 50 100 250 500 1000 2500 5000 */
extern const double mutt_metrics_default_buckets[14]; /* prometheus_client defaults: .005 .. 10 s */
#define MUTT_METRICS_NBUCKETS(arr) (sizeof(arr) / sizeof((arr)[0]))

/* Returns a new empty registry, or NULL on OOM. */
struct mutt_metrics *mutt_metrics_create(void);
/* Frees the registry and every family/child handle it gave out. NULL is fine. */
void mutt_metrics_destroy(struct mutt_metrics *m);

/* Family registration (start-up; not hot). `name`, `help` and `label_names` (NULL-terminated
 * array, or NULL for none) are copied. Registering a name again with the same type and label
 * names (and buckets, for histograms) returns the existing family, so two stages may share one;
 * a different type, label set or bucket set returns NULL, as do an invalid metric/label name,
 * more than MUTT_METRICS_MAX_LABELS labels, a histogram label named "le", and OOM.
 * For a label-less family the returned handle is also its only child: inc/set/observe it. */
struct mutt_counter *mutt_metrics_counter(struct mutt_metrics *m, const char *name, const char *help,
                                          const char *const *label_names);
struct mutt_gauge *mutt_metrics_gauge(struct mutt_metrics *m, const char *name, const char *help,
                                      const char *const *label_names);
/* `buckets` are upper bounds, strictly increasing, finite (+Inf is implicit; a trailing +Inf is
 * dropped), at most MUTT_METRICS_MAX_BUCKETS; they are copied. */
struct mutt_histogram *mutt_metrics_histogram(struct mutt_metrics *m, const char *name, const char *help,
                                              const char *const *label_names, const double *buckets,
                                              size_t nbuckets);

/* Callback metrics, label-less: `fn(arg)` is called at each render for the value (`arg` is
 * borrowed and must outlive the registry). Returns 0, MUTT_EEXIST if the name is already
 * registered, MUTT_EINVAL for a bad name or NULL fn, or MUTT_ENOMEM. */
typedef double mutt_metrics_value_cb(void *arg);
int mutt_metrics_gauge_fn(struct mutt_metrics *m, const char *name, const char *help,
                          mutt_metrics_value_cb *fn, void *arg);
int mutt_metrics_counter_fn(struct mutt_metrics *m, const char *name, const char *help,
                            mutt_metrics_value_cb *fn, void *arg);

/* Child lookup by label values (`values`: one string per label name, copied; NULL entries
 * mean ""). Returns a stable handle, valid until mutt_metrics_destroy, that callers should cache
 * so the hot path is a bare inc(). Same values -> same child; children render in creation
 * order. On a label-less family returns the family itself. NULL on OOM or past the cap.
 * Cost: one hash + compare, no allocation after the first call for a combination. */
struct mutt_counter *mutt_counter_labels(struct mutt_counter *family, const char *const *values);
struct mutt_gauge *mutt_gauge_labels(struct mutt_gauge *family, const char *const *values);
struct mutt_histogram *mutt_histogram_labels(struct mutt_histogram *family, const char *const *values);

/* Value updates: O(1) (observe is O(buckets)), cannot fail, and NULL is a no-op. Calling them
 * on a labelled family handle (instead of a child) is ignored. Negative or NaN counter
 * increments are ignored (counters only go up). */
void mutt_counter_inc(struct mutt_counter *c);
void mutt_counter_add(struct mutt_counter *c, double v);
double mutt_counter_value(const struct mutt_counter *c); /* for tests and /health; 0 for NULL */

void mutt_gauge_set(struct mutt_gauge *g, double v);
void mutt_gauge_inc(struct mutt_gauge *g);
void mutt_gauge_dec(struct mutt_gauge *g);
void mutt_gauge_add(struct mutt_gauge *g, double v); /* v may be negative */
double mutt_gauge_value(const struct mutt_gauge *g);
/* A depth gauge from a Redis reply (LLEN, ZCARD...): set to the integer when status is 0 and the
 * reply is one; an error or a lost connection leaves the last value. */
void mutt_gauge_set_from_reply(struct mutt_gauge *g, const struct redisReply *reply, int status);
/* The same for a depth handed over with a status (relq's processing depth). */
void mutt_gauge_set_if_ok(struct mutt_gauge *g, int status, long long depth);

void mutt_histogram_observe(struct mutt_histogram *h, double v);
/* Number of observations / their sum so far (tests); 0 for NULL. */
unsigned long long mutt_histogram_count(const struct mutt_histogram *h);
double mutt_histogram_sum(const struct mutt_histogram *h);

/* Renders the Prometheus text exposition format 0.0.4 (content type
 * "text/plain; version=0.0.4; charset=utf-8"): families in registration order, children in
 * creation order, deterministic. On success *out is a malloc'd NUL-terminated string the caller
 * frees and *len its length without the NUL; returns 0 or MUTT_ENOMEM (then *out is NULL). */
int mutt_metrics_render(struct mutt_metrics *m, char **out, size_t *len);

/* Formats `v` the way the renderer does: integers without exponent ("42"), other finite values
 * with the shortest round-trip %g, "+Inf", "-Inf", "NaN". Returns the length written
 * (buf of at least 32 bytes). */
size_t mutt_metrics_format_value(double v, char *buf, size_t buflen);

/* Process collectors (procstat.c): process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_cpu_seconds_total, process_open_fds, process_max_fds, process_start_time_seconds
 * (read from /proc/self and getrlimit at render; a read that fails yields 0) and
 * mutt_build_info{version,git_rev,pod,roles} 1. Strings are copied; NULL means "".
 * Returns 0, MUTT_EEXIST if already registered, or MUTT_ENOMEM. */
int mutt_metrics_register_process(struct mutt_metrics *m, const char *version, const char *git_rev,
                                  const char *pod, const char *roles);

#endif
