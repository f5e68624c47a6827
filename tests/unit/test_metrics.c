/* Unit tests of the Prometheus registry (src/core/metrics.c, src/core/procstat.c): exact
 * rendering, escaping, histogram cumulation, re-registration, callbacks, process collectors,
 * and the exposition validator. No services needed. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mutt/error.h"
#include "mutt/metrics.h"
#include "metrics_text.h"

static char *render(struct mutt_metrics *m)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(mutt_metrics_render(m, &out, &len), 0);
    assert_non_null(out);
    assert_int_equal(strlen(out), len);
    return out;
}

static void assert_valid(const char *text)
{
    char err[256];
    int rc = mutt_test_metrics_text_validate(text, strlen(text), err, sizeof(err));
    if (rc != 0)
        fail_msg("validator rejected our output: %s\n%s", err, text);
}

/* Value of the first sample line that starts with `prefix` followed by a blank. */
static double sample_value(const char *text, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, prefix, pl) == 0 && p[pl] == ' ')
            return strtod(p + pl + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    fail_msg("no sample %s in\n%s", prefix, text);
    return NAN;
}

static void test_metrics_counter_and_gauge_render_exactly(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"status", "reason", NULL};
    struct mutt_counter *req = mutt_metrics_counter(m, "mutt_ingest_requests_total", "Ingest requests.", labels);
    struct mutt_gauge *depth = mutt_metrics_gauge(m, "mutt_ingest_queue_depth", "Queue depth.", NULL);
    assert_non_null(req);
    assert_non_null(depth);
    struct mutt_counter *ok = mutt_counter_labels(req, (const char *const[]){"success", ""});
    struct mutt_counter *auth = mutt_counter_labels(req, (const char *const[]){"fail", "auth"});
    mutt_counter_inc(ok);
    mutt_counter_inc(ok);
    mutt_counter_add(ok, 40);
    mutt_counter_inc(auth);
    mutt_gauge_set(depth, 1234567);
    mutt_gauge_add(depth, 0.5);

    char *out = render(m);
    assert_string_equal(out, "# HELP mutt_ingest_requests_total Ingest requests.\n"
                             "# TYPE mutt_ingest_requests_total counter\n"
                             "mutt_ingest_requests_total{status=\"success\",reason=\"\"} 42\n"
                             "mutt_ingest_requests_total{status=\"fail\",reason=\"auth\"} 1\n"
                             "# HELP mutt_ingest_queue_depth Queue depth.\n"
                             "# TYPE mutt_ingest_queue_depth gauge\n"
                             "mutt_ingest_queue_depth 1234567.5\n");
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    const double b[] = {0.1, 1, 2.5};
    struct mutt_histogram *h = mutt_metrics_histogram(m, "lat_seconds", "Latency.", NULL, b, 3);
    assert_non_null(h);
    mutt_histogram_observe(h, 0.05); /* le 0.1 */
    mutt_histogram_observe(h, 0.1);  /* le 0.1: bound is inclusive */
    mutt_histogram_observe(h, 2);    /* le 2.5 */
    mutt_histogram_observe(h, 7);    /* only +Inf */
    assert_int_equal(mutt_histogram_count(h), 4);

    char *out = render(m);
    assert_string_equal(out, "# HELP lat_seconds Latency.\n"
                             "# TYPE lat_seconds histogram\n"
                             "lat_seconds_bucket{le=\"0.1\"} 2\n"
                             "lat_seconds_bucket{le=\"1\"} 2\n"
                             "lat_seconds_bucket{le=\"2.5\"} 3\n"
                             "lat_seconds_bucket{le=\"+Inf\"} 4\n"
                             "lat_seconds_sum 9.15\n"
                             "lat_seconds_count 4\n");
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_labelled_histogram_puts_le_after_own_labels(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"endpoint", NULL};
    const double b[] = {1, INFINITY}; /* a trailing +Inf is accepted and not rendered twice */
    struct mutt_histogram *fam = mutt_metrics_histogram(m, "api_seconds", "API.", labels, b, 2);
    struct mutt_histogram *rules = mutt_histogram_labels(fam, (const char *const[]){"rules"});
    mutt_histogram_observe(rules, 0.25);

    char *out = render(m);
    assert_string_equal(out, "# HELP api_seconds API.\n"
                             "# TYPE api_seconds histogram\n"
                             "api_seconds_bucket{endpoint=\"rules\",le=\"1\"} 1\n"
                             "api_seconds_bucket{endpoint=\"rules\",le=\"+Inf\"} 1\n"
                             "api_seconds_sum{endpoint=\"rules\"} 0.25\n"
                             "api_seconds_count{endpoint=\"rules\"} 1\n");
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_label_values_and_help_are_escaped(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"path", NULL};
    struct mutt_counter *c = mutt_metrics_counter(m, "esc_total", "a \\ b\nc \"q\"", labels);
    mutt_counter_inc(mutt_counter_labels(c, (const char *const[]){"a\\b\"c\nd"}));

    char *out = render(m);
    assert_string_equal(out, "# HELP esc_total a \\\\ b\\nc \"q\"\n"
                             "# TYPE esc_total counter\n"
                             "esc_total{path=\"a\\\\b\\\"c\\nd\"} 1\n");
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_values_format_like_prometheus(void **state)
{
    (void)state;
    char buf[64];
    struct {
        double v;
        const char *want;
    } cases[] = {
        {42, "42"},           {0, "0"},           {-0.0, "0"},         {-3, "-3"},
        {0.1, "0.1"},         {1e15, "1e+15"},    {123456789012, "123456789012"},
        {1.0 / 3, "0.3333333333333333"}, {0.1 + 0.2, "0.30000000000000004"},         {INFINITY, "+Inf"},  {-INFINITY, "-Inf"},
        {NAN, "NaN"},         {2.5e-7, "2.5e-07"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = mutt_metrics_format_value(cases[i].v, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
        if (isfinite(cases[i].v))
            assert_true(strtod(buf, NULL) == cases[i].v);
    }
}

static void test_metrics_same_name_and_shape_returns_same_family(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"mode", NULL};
    struct mutt_counter *a = mutt_metrics_counter(m, "shed_total", "Shed.", labels);
    struct mutt_counter *b = mutt_metrics_counter(m, "shed_total", "Other help.", labels);
    assert_non_null(a);
    assert_ptr_equal(a, b);
    struct mutt_counter *ca = mutt_counter_labels(a, (const char *const[]){"dlq"});
    struct mutt_counter *cb = mutt_counter_labels(b, (const char *const[]){"dlq"});
    assert_ptr_equal(ca, cb);
    mutt_counter_inc(ca);
    mutt_counter_inc(cb);
    assert_true(mutt_counter_value(ca) == 2);

    struct mutt_histogram *h1 = mutt_metrics_histogram(m, "h_seconds", "", NULL, mutt_metrics_latency_buckets,
                                                       MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
    struct mutt_histogram *h2 = mutt_metrics_histogram(m, "h_seconds", "", NULL, mutt_metrics_latency_buckets,
                                                       MUTT_METRICS_NBUCKETS(mutt_metrics_latency_buckets));
    assert_non_null(h1);
    assert_ptr_equal(h1, h2);

    char *out = render(m); /* one family rendered once */
    assert_non_null(strstr(out, "# TYPE shed_total counter\n"));
    assert_null(strstr(strstr(out, "# TYPE shed_total") + 1, "# TYPE shed_total"));
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_type_or_shape_clash_returns_null(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const l1[] = {"a", NULL};
    static const char *const l2[] = {"b", NULL};
    assert_non_null(mutt_metrics_counter(m, "x_total", "", l1));
    assert_null(mutt_metrics_gauge(m, "x_total", "", l1));
    assert_null(mutt_metrics_counter(m, "x_total", "", l2));
    assert_null(mutt_metrics_counter(m, "x_total", "", NULL));
    assert_null(mutt_metrics_histogram(m, "x_total", "", l1, mutt_metrics_db_ms_buckets, 11));

    assert_non_null(mutt_metrics_histogram(m, "h_ms", "", NULL, mutt_metrics_db_ms_buckets, 11));
    assert_null(mutt_metrics_histogram(m, "h_ms", "", NULL, mutt_metrics_db_ms_buckets, 10));

    assert_int_equal(mutt_metrics_gauge_fn(m, "x_total", "", (mutt_metrics_value_cb *)NULL, NULL), MUTT_EINVAL);
    mutt_metrics_destroy(m);
}

static void test_metrics_invalid_names_and_buckets_are_refused(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const bad_label[] = {"9x", NULL};
    static const char *const reserved[] = {"__name", NULL};
    static const char *const le[] = {"le", NULL};
    static const char *const dup[] = {"a", "a", NULL};
    const double unsorted[] = {1, 0.5};
    assert_null(mutt_metrics_counter(m, "bad-name", "", NULL));
    assert_null(mutt_metrics_counter(m, "", "", NULL));
    assert_null(mutt_metrics_counter(m, "ok_total", "", bad_label));
    assert_null(mutt_metrics_counter(m, "ok_total", "", reserved));
    assert_null(mutt_metrics_counter(m, "ok_total", "", dup));
    assert_null(mutt_metrics_histogram(m, "h", "", le, mutt_metrics_latency_buckets, 11));
    assert_null(mutt_metrics_histogram(m, "h", "", NULL, unsorted, 2));
    /* Nothing half-registered is rendered. */
    char *out = render(m);
    assert_string_equal(out, "");
    free(out);
    mutt_metrics_destroy(m);
}

static double callback_value;
static int callback_calls;
static double read_callback(void *arg)
{
    callback_calls++;
    return *(double *)arg;
}

static void test_metrics_callback_gauge_is_evaluated_at_each_render(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    callback_calls = 0;
    callback_value = 7;
    assert_int_equal(mutt_metrics_gauge_fn(m, "cb_gauge", "Cb.", read_callback, &callback_value), 0);
    assert_int_equal(mutt_metrics_gauge_fn(m, "cb_gauge", "Cb.", read_callback, &callback_value), MUTT_EEXIST);
    assert_int_equal(callback_calls, 0);

    char *out = render(m);
    assert_string_equal(out, "# HELP cb_gauge Cb.\n# TYPE cb_gauge gauge\ncb_gauge 7\n");
    free(out);
    callback_value = 0.25;
    out = render(m);
    assert_string_equal(out, "# HELP cb_gauge Cb.\n# TYPE cb_gauge gauge\ncb_gauge 0.25\n");
    free(out);
    assert_int_equal(callback_calls, 2);
    /* A callback family cannot be re-registered as a plain gauge either. */
    assert_null(mutt_metrics_gauge(m, "cb_gauge", "", NULL));
    mutt_metrics_destroy(m);
}

static void test_metrics_labelless_family_is_its_own_child(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    struct mutt_gauge *g = mutt_metrics_gauge(m, "plain", "", NULL);
    assert_ptr_equal(mutt_gauge_labels(g, NULL), g);
    assert_ptr_equal(mutt_gauge_labels(g, (const char *const[]){"ignored"}), g);
    mutt_gauge_inc(g);
    mutt_gauge_inc(g);
    mutt_gauge_dec(g);
    assert_true(mutt_gauge_value(g) == 1);
    char *out = render(m);
    assert_string_equal(out, "# HELP plain \n# TYPE plain gauge\nplain 1\n");
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_counter_ignores_negative_and_null(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    struct mutt_counter *c = mutt_metrics_counter(m, "c_total", "", NULL);
    mutt_counter_add(c, 3);
    mutt_counter_add(c, -1);
    mutt_counter_add(c, NAN);
    assert_true(mutt_counter_value(c) == 3);
    /* NULL handles (failed lookups) are no-ops rather than crashes. */
    mutt_counter_inc(NULL);
    mutt_gauge_set(NULL, 1);
    mutt_histogram_observe(NULL, 1);
    assert_true(mutt_counter_value(NULL) == 0);
    mutt_metrics_destroy(m);
}

static void test_metrics_labelled_family_without_children_renders_only_comments(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"name", NULL};
    struct mutt_gauge *fam = mutt_metrics_gauge(m, "breaker_state", "State.", labels);
    mutt_gauge_set(fam, 5); /* on the family handle of a labelled family: ignored */
    assert_null(mutt_gauge_labels(fam, NULL));
    char *out = render(m);
    assert_string_equal(out, "# HELP breaker_state State.\n# TYPE breaker_state gauge\n");
    assert_valid(out);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_process_collectors_are_present_and_plausible(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    assert_int_equal(mutt_metrics_register_process(m, "0.1.0", "abc1234", "pod-a", "ingest,alert"), 0);
    assert_int_equal(mutt_metrics_register_process(m, "0.1.0", "abc1234", "pod-a", "ingest"), MUTT_EEXIST);
    /* Burn a little CPU so the counter has something to show on a fast machine. */
    volatile double x = 0;
    for (int i = 0; i < 2000000; i++)
        x += i * 0.5;
    char *out = render(m);
    assert_valid(out);

    double rss = sample_value(out, "process_resident_memory_bytes");
    double vms = sample_value(out, "process_virtual_memory_bytes");
    double fds = sample_value(out, "process_open_fds");
    double max_fds = sample_value(out, "process_max_fds");
    double cpu = sample_value(out, "process_cpu_seconds_total");
    double start = sample_value(out, "process_start_time_seconds");
    assert_true(rss > 1024 * 1024);
    assert_true(vms >= rss);
    assert_true(fds >= 3); /* stdin, stdout, stderr */
    assert_true(max_fds >= fds);
    assert_true(cpu >= 0);
    double now = (double)time(NULL);
    assert_true(start <= now + 1);
    assert_true(start > now - 86400);
    assert_non_null(strstr(out, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(out, "mutt_build_info{version=\"0.1.0\",git_rev=\"abc1234\",pod=\"pod-a\","
                                "roles=\"ingest,alert\"} 1\n"));
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_open_fds_follows_opened_files(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    assert_int_equal(mutt_metrics_register_process(m, "v", "r", NULL, NULL), 0);
    char *out = render(m);
    double before = sample_value(out, "process_open_fds");
    free(out);
    FILE *f[3];
    for (int i = 0; i < 3; i++)
        f[i] = fopen("/dev/null", "r");
    out = render(m);
    double after = sample_value(out, "process_open_fds");
    free(out);
    for (int i = 0; i < 3; i++)
        fclose(f[i]);
    assert_true(after == before + 3);
    mutt_metrics_destroy(m);
}

static void expect_invalid(const char *text, const char *fragment)
{
    char err[256];
    int rc = mutt_test_metrics_text_validate(text, strlen(text), err, sizeof(err));
    if (rc != MUTT_EINVAL)
        fail_msg("validator accepted:\n%s", text);
    if (!strstr(err, fragment))
        fail_msg("error \"%s\" lacks \"%s\"", err, fragment);
}

static void test_metrics_validator_rejects_malformed_text(void **state)
{
    (void)state;
    expect_invalid("foo 1", "newline");
    expect_invalid("foo\n", "line 1: no blank");
    expect_invalid("foo abc\n", "not a number");
    expect_invalid("foo 0x10\n", "not a number");
    expect_invalid("foo{a=\"x} 1\n", "unterminated");
    expect_invalid("foo{a=x} 1\n", "not quoted");
    expect_invalid("foo{9a=\"x\"} 1\n", "bad label name");
    expect_invalid("foo{a=\"\\t\"} 1\n", "bad escape");
    expect_invalid("foo{a=\"x\" b=\"y\"} 1\n", "expected ','");
    expect_invalid("foo{a=\"1\",a=\"2\"} 1\n", "duplicate label");
    expect_invalid("foo 1 notatime\n", "timestamp");
    expect_invalid("# TYPE foo banana\n", "unknown TYPE");
    expect_invalid("# TYPE foo gauge\n# TYPE foo gauge\n", "line 2: second TYPE");
    expect_invalid("foo 1\n# TYPE foo gauge\n", "after its samples");
    expect_invalid("foo{a=\"1\"} 1\nfoo{a=\"1\"} 2\n", "line 2: duplicate series");
    expect_invalid("foo 1\nbar 1\nfoo 2\n", "not grouped");
    expect_invalid("# TYPE h histogram\nh_bucket 1\n", "without le");
    expect_invalid("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "le label");
    expect_invalid("# TYPE h histogram\nh 1\n", "without _bucket");
    expect_invalid("bad-name 1\n", "no blank");
}

static void test_metrics_validator_accepts_valid_text(void **state)
{
    (void)state;
    const char *ok = "# a free comment\n"
                     "\n"
                     "# HELP foo Foo \\\\ with \\n escapes.\n"
                     "# TYPE foo counter\n"
                     "foo{a=\"x\\\"y\",b=\"\",} 1.5e3 1700000000000\n"
                     "foo{b=\"\",a=\"z\"} +Inf\n"
                     "bar NaN\n"
                     "baz -Inf\n";
    char err[256] = "";
    assert_int_equal(mutt_test_metrics_text_validate(ok, strlen(ok), err, sizeof(err)), 0);
    assert_int_equal(mutt_test_metrics_text_validate("", 0, err, sizeof(err)), 0);
}

static void test_metrics_rendering_many_children_is_fine(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"host", "kind", NULL};
    struct mutt_counter *fam = mutt_metrics_counter(m, "many_total", "Many.", labels);
    struct mutt_counter *kids[1000];
    char host[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof(host), "host-%d", i);
        kids[i] = mutt_counter_labels(fam, (const char *const[]){host, i % 2 ? "odd" : "even"});
        assert_non_null(kids[i]);
        mutt_counter_add(kids[i], i);
    }
    /* Lookups find the existing children (stable handles), in any order. */
    for (int i = 999; i >= 0; i--) {
        snprintf(host, sizeof(host), "host-%d", i);
        assert_ptr_equal(mutt_counter_labels(fam, (const char *const[]){host, i % 2 ? "odd" : "even"}), kids[i]);
    }
    char *out = render(m);
    assert_valid(out);
    /* Children in creation order: host-0 first, host-999 last. */
    const char *first = strstr(out, "many_total{host=\"host-0\",kind=\"even\"} 0\n");
    const char *last = strstr(out, "many_total{host=\"host-999\",kind=\"odd\"} 999\n");
    assert_non_null(first);
    assert_non_null(last);
    assert_true(first < last);
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1002);
    free(out);
    mutt_metrics_destroy(m);
}

static void test_metrics_children_beyond_the_cap_are_refused(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"id", NULL};
    struct mutt_gauge *fam = mutt_metrics_gauge(m, "capped", "", labels);
    char id[32];
    for (int i = 0; i < MUTT_METRICS_MAX_CHILDREN; i++) {
        snprintf(id, sizeof(id), "%d", i);
        assert_non_null(mutt_gauge_labels(fam, (const char *const[]){id}));
    }
    assert_null(mutt_gauge_labels(fam, (const char *const[]){"one-more"}));
    /* Existing combinations are still found. */
    assert_non_null(mutt_gauge_labels(fam, (const char *const[]){"0"}));
    mutt_metrics_destroy(m);
}

static void test_metrics_render_is_deterministic(void **state)
{
    (void)state;
    struct mutt_metrics *m = mutt_metrics_create();
    static const char *const labels[] = {"k", NULL};
    struct mutt_counter *c = mutt_metrics_counter(m, "d_total", "", labels);
    mutt_counter_inc(mutt_counter_labels(c, (const char *const[]){"b"}));
    mutt_counter_inc(mutt_counter_labels(c, (const char *const[]){"a"}));
    mutt_histogram_observe(mutt_metrics_histogram(m, "d_seconds", "", NULL, mutt_metrics_default_buckets, 14), 0.3);
    char *a = render(m);
    char *b = render(m);
    assert_string_equal(a, b);
    assert_true(strstr(a, "k=\"b\"") < strstr(a, "k=\"a\""));
    assert_valid(a);
    free(a);
    free(b);
    mutt_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_counter_and_gauge_render_exactly),
        cmocka_unit_test(test_metrics_histogram_buckets_are_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(test_metrics_labelled_histogram_puts_le_after_own_labels),
        cmocka_unit_test(test_metrics_label_values_and_help_are_escaped),
        cmocka_unit_test(test_metrics_values_format_like_prometheus),
        cmocka_unit_test(test_metrics_same_name_and_shape_returns_same_family),
        cmocka_unit_test(test_metrics_type_or_shape_clash_returns_null),
        cmocka_unit_test(test_metrics_invalid_names_and_buckets_are_refused),
        cmocka_unit_test(test_metrics_callback_gauge_is_evaluated_at_each_render),
        cmocka_unit_test(test_metrics_labelless_family_is_its_own_child),
        cmocka_unit_test(test_metrics_counter_ignores_negative_and_null),
        cmocka_unit_test(test_metrics_labelled_family_without_children_renders_only_comments),
        cmocka_unit_test(test_metrics_process_collectors_are_present_and_plausible),
        cmocka_unit_test(test_metrics_open_fds_follows_opened_files),
        cmocka_unit_test(test_metrics_validator_rejects_malformed_text),
        cmocka_unit_test(test_metrics_validator_accepts_valid_text),
        cmocka_unit_test(test_metrics_rendering_many_children_is_fine),
        cmocka_unit_test(test_metrics_children_beyond_the_cap_are_refused),
        cmocka_unit_test(test_metrics_render_is_deterministic),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
