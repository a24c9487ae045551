/* test_metrics.c - the registry and its Prometheus text exposition. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static int reset(void **state)
{
    (void)state;
    metrics_reset();
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, reset, reset)

static void check_render(const char *want)
{
    buf out = {0};
    assert_int_equal(metrics_render(&out), 0);
    if (strcmp(buf_cstr(&out), want) != 0) print_error("rendered:\n%s\nwanted:\n%s\n", buf_cstr(&out), want);
    assert_string_equal(buf_cstr(&out), want);
    buf_free(&out);
}

static int count_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* ------------------------------------------------------------ counters */

static void test_empty_registry_renders_nothing(void **state)
{
    (void)state;
    check_render("");
}

static void test_counter_without_labels(void **state)
{
    (void)state;
    metric *m = metrics_counter("t_events_total", "Events seen", "");
    metric_inc(m);
    metric_inc(m);
    metric_add(m, 40);
    assert_int_equal(metric_value(m), 42);
    check_render("# HELP t_events_total Events seen\n"
                 "# TYPE t_events_total counter\n"
                 "t_events_total 42\n");
}

static void test_counter_series_share_help_and_type(void **state)
{
    (void)state;
    metric *b = metrics_counter("t_requests_total", "Requests", "route=\"/b\"");
    metric *a = metrics_counter("t_requests_total", "Requests", "route=\"/a\"");
    metric_add(b, 5);
    metric_inc(a);
    metric_inc(a);
    metric_inc(a);
    /* series of one name are grouped under one HELP and TYPE, in label order */
    check_render("# HELP t_requests_total Requests\n"
                 "# TYPE t_requests_total counter\n"
                 "t_requests_total{route=\"/a\"} 3\n"
                 "t_requests_total{route=\"/b\"} 5\n");
}

static void test_same_name_and_labels_is_the_same_series(void **state)
{
    (void)state;
    metric *a = metrics_counter("t_x_total", "X", "k=\"v\"");
    metric *b = metrics_counter("t_x_total", "X", "k=\"v\"");
    metric *c = metrics_counter("t_x_total", "X", "k=\"w\"");
    metric *none1 = metrics_counter("t_x_total", "X", NULL);
    metric *none2 = metrics_counter("t_x_total", "X", "");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_ptr_equal(none1, none2);   /* NULL labels are no labels */
}

static void test_updates_accept_null(void **state)
{
    (void)state;
    metric_inc(NULL);
    metric_add(NULL, 3);
    metric_set(NULL, 3);
    metric_observe_us(NULL, 3);
    assert_int_equal(metric_value(NULL), 0);
    check_render("");
}

static void test_help_and_type_once_per_name_across_many_series(void **state)
{
    (void)state;
    for (int i = 0; i < 50; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "n=\"%02d\"", i);
        metric_inc(metrics_counter("t_many_total", "Many", labels));
    }
    metric_inc(metrics_counter("t_other_total", "Other", ""));
    buf out = {0};
    assert_int_equal(metrics_render(&out), 0);
    const char *s = buf_cstr(&out);
    assert_int_equal(count_occurrences(s, "# HELP t_many_total "), 1);
    assert_int_equal(count_occurrences(s, "# TYPE t_many_total counter\n"), 1);
    assert_int_equal(count_occurrences(s, "# HELP t_other_total "), 1);
    assert_int_equal(count_occurrences(s, "\nt_many_total{"), 50);
    /* the HELP line comes before its series */
    assert_true(strstr(s, "# HELP t_many_total") < strstr(s, "t_many_total{n=\"00\"} 1"));
    buf_free(&out);
}

static void test_names_render_in_order(void **state)
{
    (void)state;
    metric_inc(metrics_counter("t_b_total", "B", ""));
    metric_inc(metrics_counter("t_a_total", "A", ""));
    check_render("# HELP t_a_total A\n"
                 "# TYPE t_a_total counter\n"
                 "t_a_total 1\n"
                 "# HELP t_b_total B\n"
                 "# TYPE t_b_total counter\n"
                 "t_b_total 1\n");
}

/* -------------------------------------------------------------- gauges */

static void test_gauge_set_and_negative(void **state)
{
    (void)state;
    metric *g = metrics_gauge("t_temperature", "Temperature", "room=\"a\"");
    metric_set(g, 21);
    metric_set(g, -7);   /* the last value counts */
    check_render("# HELP t_temperature Temperature\n"
                 "# TYPE t_temperature gauge\n"
                 "t_temperature{room=\"a\"} -7\n");
}

static void test_gauge_extremes(void **state)
{
    (void)state;
    metric_set(metrics_gauge("t_g_max", "Max", ""), INT64_MAX);
    metric_set(metrics_gauge("t_g_min", "Min", ""), INT64_MIN);
    check_render("# HELP t_g_max Max\n"
                 "# TYPE t_g_max gauge\n"
                 "t_g_max 9223372036854775807\n"
                 "# HELP t_g_min Min\n"
                 "# TYPE t_g_min gauge\n"
                 "t_g_min -9223372036854775808\n");
}

/* ---------------------------------------------------------- histograms */

static const int64_t BOUNDS[] = {1000, 5000};   /* 1 ms and 5 ms */

static void test_histogram_buckets_are_cumulative(void **state)
{
    (void)state;
    metric *h = metrics_histogram("t_latency_seconds", "Latency", "", BOUNDS, 2);
    metric_observe_us(h, 500);    /* <= 1 ms */
    metric_observe_us(h, 1000);   /* <= 1 ms: a bound is inclusive */
    metric_observe_us(h, 1500);   /* <= 5 ms */
    metric_observe_us(h, 7000);   /* only +Inf */
    /* sum: 500 + 1000 + 1500 + 7000 = 10000 us = 0.010000 s */
    check_render("# HELP t_latency_seconds Latency\n"
                 "# TYPE t_latency_seconds histogram\n"
                 "t_latency_seconds_bucket{le=\"0.001\"} 2\n"
                 "t_latency_seconds_bucket{le=\"0.005\"} 3\n"
                 "t_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                 "t_latency_seconds_sum 0.010000\n"
                 "t_latency_seconds_count 4\n");
}

static void test_histogram_sum_in_seconds(void **state)
{
    (void)state;
    metric *h = metrics_histogram("t_h_seconds", "H", "", BOUNDS, 2);
    metric_observe_us(h, 1500);   /* 1500 us = 0.001500 s */
    check_render("# HELP t_h_seconds H\n"
                 "# TYPE t_h_seconds histogram\n"
                 "t_h_seconds_bucket{le=\"0.001\"} 0\n"
                 "t_h_seconds_bucket{le=\"0.005\"} 1\n"
                 "t_h_seconds_bucket{le=\"+Inf\"} 1\n"
                 "t_h_seconds_sum 0.001500\n"
                 "t_h_seconds_count 1\n");
}

static void test_histogram_with_labels(void **state)
{
    (void)state;
    metric *h = metrics_histogram("t_req_seconds", "Req", "route=\"/x\"", BOUNDS, 2);
    metric_observe_us(h, 2500000);   /* 2.5 s */
    check_render("# HELP t_req_seconds Req\n"
                 "# TYPE t_req_seconds histogram\n"
                 "t_req_seconds_bucket{route=\"/x\",le=\"0.001\"} 0\n"
                 "t_req_seconds_bucket{route=\"/x\",le=\"0.005\"} 0\n"
                 "t_req_seconds_bucket{route=\"/x\",le=\"+Inf\"} 1\n"
                 "t_req_seconds_sum{route=\"/x\"} 2.500000\n"
                 "t_req_seconds_count{route=\"/x\"} 1\n");
}

static void test_histogram_empty(void **state)
{
    (void)state;
    metrics_histogram("t_empty_seconds", "E", "", BOUNDS, 2);
    check_render("# HELP t_empty_seconds E\n"
                 "# TYPE t_empty_seconds histogram\n"
                 "t_empty_seconds_bucket{le=\"0.001\"} 0\n"
                 "t_empty_seconds_bucket{le=\"0.005\"} 0\n"
                 "t_empty_seconds_bucket{le=\"+Inf\"} 0\n"
                 "t_empty_seconds_sum 0.000000\n"
                 "t_empty_seconds_count 0\n");
}

static void test_histogram_negative_observation_counts_as_zero(void **state)
{
    (void)state;
    metric *h = metrics_histogram("t_neg_seconds", "N", "", BOUNDS, 2);
    metric_observe_us(h, -5);
    metric_observe_us(h, 2000);
    /* -5 falls in the first bucket and adds nothing to the sum: 0.002000 */
    check_render("# HELP t_neg_seconds N\n"
                 "# TYPE t_neg_seconds histogram\n"
                 "t_neg_seconds_bucket{le=\"0.001\"} 1\n"
                 "t_neg_seconds_bucket{le=\"0.005\"} 2\n"
                 "t_neg_seconds_bucket{le=\"+Inf\"} 2\n"
                 "t_neg_seconds_sum 0.002000\n"
                 "t_neg_seconds_count 2\n");
}

static void test_histogram_latency_bounds_render_as_seconds(void **state)
{
    (void)state;
    metric *h = metrics_histogram("t_lat_seconds", "L", "", metrics_latency_bounds_us, metrics_latency_nbounds);
    metric_observe_us(h, 1);
    buf out = {0};
    assert_int_equal(metrics_render(&out), 0);
    const char *s = buf_cstr(&out);
    /* every le value reads back as its bound in seconds, in order; all cumulative counts are 1 */
    const char *p = s;
    for (int i = 0; i < metrics_latency_nbounds; i++) {
        p = strstr(p, "t_lat_seconds_bucket{le=\"");
        assert_non_null(p);
        p += strlen("t_lat_seconds_bucket{le=\"");
        char *end;
        double le = strtod(p, &end);
        assert_true(*end == '"');
        double want = (double)metrics_latency_bounds_us[i] / 1e6;
        assert_true(le > want * 0.999999 && le < want * 1.000001);
        assert_true(strncmp(end, "\"} 1\n", 5) == 0);
    }
    assert_non_null(strstr(s, "t_lat_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(s, "t_lat_seconds_sum 0.000001\n"));
    /* bounds are trimmed: 100 us is 0.0001, not 0.000100 */
    assert_non_null(strstr(s, "le=\"0.0001\""));
    assert_non_null(strstr(s, "le=\"0.00025\""));
    buf_free(&out);
}

static void test_latency_bounds_ascend(void **state)
{
    (void)state;
    assert_true(metrics_latency_nbounds > 0);
    for (int i = 1; i < metrics_latency_nbounds; i++)
        assert_true(metrics_latency_bounds_us[i] > metrics_latency_bounds_us[i - 1]);
}

static void test_render_appends(void **state)
{
    (void)state;
    metric_inc(metrics_counter("t_c_total", "C", ""));
    buf out = {0};
    buf_puts(&out, "head\n");
    assert_int_equal(metrics_render(&out), 0);
    assert_true(strncmp(buf_cstr(&out), "head\n# HELP t_c_total C\n", 24) == 0);
    buf_free(&out);
}

static void test_reset_forgets_everything(void **state)
{
    (void)state;
    metric_inc(metrics_counter("t_gone_total", "Gone", ""));
    metrics_reset();
    check_render("");
    /* registering again starts from zero */
    assert_int_equal(metric_value(metrics_counter("t_gone_total", "Gone", "")), 0);
}

/* -------------------------------------------------------------- escape */

static void test_escape_quotes_backslashes_newlines(void **state)
{
    (void)state;
    char out[64];
    metrics_escape("a\"b\\c\nd", out, sizeof out);
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    metrics_escape("/api/v1/rules", out, sizeof out);
    assert_string_equal(out, "/api/v1/rules");
    metrics_escape("", out, sizeof out);
    assert_string_equal(out, "");
}

static void test_escape_never_overflows(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 12; n++) {
        char out[32];
        memset(out, '#', sizeof out);
        metrics_escape("\"\"\"\"\"\"\"\"\"\"abc", out, n);
        assert_true(strlen(out) < n);       /* terminated inside the buffer */
        for (size_t i = n; i < sizeof out; i++) assert_int_equal(out[i], '#');
        /* and never cut in the middle of an escape */
        size_t len = strlen(out);
        size_t bs = 0;
        while (bs < len && out[len - 1 - bs] == '\\') bs++;
        assert_int_equal(bs % 2, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_registry_renders_nothing),
        T(test_counter_without_labels),
        T(test_counter_series_share_help_and_type),
        T(test_same_name_and_labels_is_the_same_series),
        T(test_updates_accept_null),
        T(test_help_and_type_once_per_name_across_many_series),
        T(test_names_render_in_order),
        T(test_gauge_set_and_negative),
        T(test_gauge_extremes),
        T(test_histogram_buckets_are_cumulative),
        T(test_histogram_sum_in_seconds),
        T(test_histogram_with_labels),
        T(test_histogram_empty),
        T(test_histogram_negative_observation_counts_as_zero),
        T(test_histogram_latency_bounds_render_as_seconds),
        T(test_latency_bounds_ascend),
        T(test_render_appends),
        T(test_reset_forgets_everything),
        T(test_escape_quotes_backslashes_newlines),
        T(test_escape_never_overflows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
