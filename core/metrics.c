/* metrics.c - the metrics registry and its text exposition. */
#include "metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

#define MAX_BOUNDS 16

struct metric {
    int type;
    char *name, *help, *labels;
    atomic_uint_fast64_t value;          /* counter, or gauge as two's complement */
    int nbounds;
    int64_t bounds[MAX_BOUNDS];
    atomic_uint_fast64_t buckets[MAX_BOUNDS + 1];
    atomic_uint_fast64_t sum_us;
    metric *next;                        /* hash chain */
};

#define NSLOTS 1024
static metric *g_slots[NSLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

const int64_t metrics_latency_bounds_us[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
const int metrics_latency_nbounds = 12;

static unsigned hash2(const char *a, const char *b)
{
    unsigned h = 2166136261u;
    for (; *a; a++) h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ '{') * 16777619u;
    for (; *b; b++) h = (h ^ (unsigned char)*b) * 16777619u;
    return h;
}

static metric *lookup(int type, const char *name, const char *help, const char *labels,
                      const int64_t *bounds, int nbounds)
{
    if (!labels) labels = "";
    unsigned slot = hash2(name, labels) % NSLOTS;
    pthread_mutex_lock(&g_lock);
    metric *m = g_slots[slot];
    while (m && (strcmp(m->name, name) != 0 || strcmp(m->labels, labels) != 0)) m = m->next;
    if (!m) {
        m = calloc(1, sizeof *m);
        if (m) {
            m->type = type;
            m->name = strdup(name);
            m->help = strdup(help ? help : "");
            m->labels = strdup(labels);
            m->nbounds = nbounds > MAX_BOUNDS ? MAX_BOUNDS : nbounds;
            for (int i = 0; i < m->nbounds; i++) m->bounds[i] = bounds[i];
            if (!m->name || !m->help || !m->labels) {
                free(m->name);
                free(m->help);
                free(m->labels);
                free(m);
                m = NULL;
            } else {
                m->next = g_slots[slot];
                g_slots[slot] = m;
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    return m;
}

metric *metrics_counter(const char *name, const char *help, const char *labels)
{
    return lookup(M_COUNTER, name, help, labels, NULL, 0);
}

metric *metrics_gauge(const char *name, const char *help, const char *labels)
{
    return lookup(M_GAUGE, name, help, labels, NULL, 0);
}

metric *metrics_histogram(const char *name, const char *help, const char *labels, const int64_t *bounds, int n)
{
    return lookup(M_HISTOGRAM, name, help, labels, bounds, n);
}

void metric_inc(metric *m)
{
    if (m) atomic_fetch_add_explicit(&m->value, 1, memory_order_relaxed);
}

void metric_add(metric *m, uint64_t n)
{
    if (m) atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed);
}

void metric_set(metric *m, int64_t v)
{
    if (m) atomic_store_explicit(&m->value, (uint64_t)v, memory_order_relaxed);
}

uint64_t metric_value(const metric *m)
{
    return m ? atomic_load_explicit(&((metric *)m)->value, memory_order_relaxed) : 0;
}

void metric_observe_us(metric *m, int64_t us)
{
    if (!m) return;
    int i = 0;
    while (i < m->nbounds && us > m->bounds[i]) i++;
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_us, (uint64_t)(us < 0 ? 0 : us), memory_order_relaxed);
    atomic_fetch_add_explicit(&m->value, 1, memory_order_relaxed);
}

void metrics_escape(const char *in, char *out, size_t n)
{
    size_t o = 0;
    for (; *in && o + 3 < n; in++) {
        if (*in == '\\' || *in == '"') { out[o++] = '\\'; out[o++] = *in; }
        else if (*in == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else out[o++] = *in;
    }
    out[o] = '\0';
}

static int cmp_metric(const void *a, const void *b)
{
    const metric *x = *(metric *const *)a, *y = *(metric *const *)b;
    int r = strcmp(x->name, y->name);
    return r ? r : strcmp(x->labels, y->labels);
}

/* seconds with 6 decimals, from microseconds, without floating point */
static void put_seconds(buf *out, uint64_t us)
{
    buf_printf(out, "%llu.%06llu", (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000));
}

static void series(buf *out, const metric *m, const char *suffix, const char *extra)
{
    buf_printf(out, "%s%s", m->name, suffix);
    if (m->labels[0] || (extra && extra[0])) {
        buf_putc(out, '{');
        buf_puts(out, m->labels);
        if (m->labels[0] && extra && extra[0]) buf_putc(out, ',');
        if (extra) buf_puts(out, extra);
        buf_putc(out, '}');
    }
    buf_putc(out, ' ');
}

int metrics_render(buf *out)
{
    pthread_mutex_lock(&g_lock);
    size_t n = 0;
    for (int i = 0; i < NSLOTS; i++)
        for (metric *m = g_slots[i]; m; m = m->next) n++;
    metric **all = malloc((n ? n : 1) * sizeof *all);
    if (!all) {
        pthread_mutex_unlock(&g_lock);
        return -1;
    }
    n = 0;
    for (int i = 0; i < NSLOTS; i++)
        for (metric *m = g_slots[i]; m; m = m->next) all[n++] = m;
    pthread_mutex_unlock(&g_lock);
    qsort(all, n, sizeof *all, cmp_metric);
    static const char *types[] = {"counter", "gauge", "histogram"};
    for (size_t i = 0; i < n; i++) {
        metric *m = all[i];
        if (i == 0 || strcmp(all[i - 1]->name, m->name) != 0)
            buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, types[m->type]);
        if (m->type == M_COUNTER) {
            series(out, m, "", NULL);
            buf_printf(out, "%llu\n", (unsigned long long)atomic_load(&m->value));
        } else if (m->type == M_GAUGE) {
            series(out, m, "", NULL);
            buf_printf(out, "%lld\n", (long long)(int64_t)atomic_load(&m->value));
        } else {
            uint64_t cum = 0;
            char le[48];
            for (int b = 0; b <= m->nbounds; b++) {
                cum += atomic_load(&m->buckets[b]);
                if (b < m->nbounds) {
                    buf tmp = {0};
                    put_seconds(&tmp, (uint64_t)m->bounds[b]);
                    /* trim trailing zeros: 0.005000 -> 0.005 */
                    while (tmp.len > 1 && tmp.data[tmp.len - 1] == '0' && tmp.data[tmp.len - 2] != '.') tmp.data[--tmp.len] = '\0';
                    snprintf(le, sizeof le, "le=\"%s\"", buf_cstr(&tmp));
                    buf_free(&tmp);
                } else {
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                }
                series(out, m, "_bucket", le);
                buf_printf(out, "%llu\n", (unsigned long long)cum);
            }
            series(out, m, "_sum", NULL);
            put_seconds(out, atomic_load(&m->sum_us));
            buf_putc(out, '\n');
            series(out, m, "_count", NULL);
            buf_printf(out, "%llu\n", (unsigned long long)atomic_load(&m->value));
        }
    }
    free(all);
    return 0;
}

void metrics_reset(void)
{
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < NSLOTS; i++) {
        metric *m = g_slots[i];
        while (m) {
            metric *nx = m->next;
            free(m->name);
            free(m->help);
            free(m->labels);
            free(m);
            m = nx;
        }
        g_slots[i] = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}
