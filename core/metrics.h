/* metrics.h - Prometheus counters, gauges and histograms.
 *
 * A series is a metric name plus a rendered label set; looking one up
 * registers it on first use. Updates are lock-free atomics, so any thread may
 * count; hot paths keep the returned handle. */
#ifndef BB_METRICS_H
#define BB_METRICS_H

#include <stdint.h>

#include "buf.h"

typedef struct metric metric;

/* `labels` is the inside of the braces, already escaped, e.g.
 * `route="/healthz",status="200"`, or "" for none. NULL when out of memory
 * (every update accepts NULL). */
metric *metrics_counter(const char *name, const char *help, const char *labels);
metric *metrics_gauge(const char *name, const char *help, const char *labels);
/* Buckets are upper bounds in microseconds, ascending. */
metric *metrics_histogram(const char *name, const char *help, const char *labels,
                          const int64_t *bounds_us, int nbounds);

void metric_inc(metric *m);
void metric_add(metric *m, uint64_t n);
void metric_set(metric *m, int64_t v);
void metric_observe_us(metric *m, int64_t us);
uint64_t metric_value(const metric *m);

/* Escapes a label value for the text format into out (size n). */
void metrics_escape(const char *in, char *out, size_t n);

/* Appends the text exposition format (version 0.0.4). */
int metrics_render(buf *out);
/* Forgets every series (tests). */
void metrics_reset(void);

extern const int64_t metrics_latency_bounds_us[];
extern const int metrics_latency_nbounds;

#endif
