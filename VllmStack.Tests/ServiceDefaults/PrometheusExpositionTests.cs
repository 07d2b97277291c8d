using System.Diagnostics.Metrics;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>Golden tests of the text format, one per instrument kind, plus escaping, naming and the hot path.</summary>
public sealed class PrometheusExpositionTests : IDisposable
{
    private readonly Meter _meter = new("test.exposition." + Guid.NewGuid().ToString("N"));
    private PrometheusMetricsRegistry? _registry;

    private PrometheusMetricsRegistry Registry(int maxSeries = 2000, PrometheusNumberFormat format = PrometheusNumberFormat.Go) =>
        _registry ??= new PrometheusMetricsRegistry(new PrometheusExporterOptions
        {
            InstrumentFilter = i => i.Meter == _meter,
            MaxSeriesPerInstrument = maxSeries,
            NumberFormat = format,
        });

    public void Dispose()
    {
        _registry?.Dispose();
        _meter.Dispose();
    }

    [Fact]
    public void Counter_is_exposed_with_total_suffix_and_sorted_labels_in_any_tag_order()
    {
        var registry = Registry();
        var counter = _meter.CreateCounter<long>("requests", null, "Requests served.");
        counter.Add(3, new("method", "GET"), new("code", 200));
        counter.Add(2, new("code", 200), new("method", "GET"));
        counter.Add(1, new("code", 404), new("method", "GET"));

        Assert.Equal(
            """
            # HELP requests_total Requests served.
            # TYPE requests_total counter
            requests_total{code="200",method="GET"} 5
            requests_total{code="404",method="GET"} 1

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void Histogram_has_cumulative_inclusive_buckets_sum_and_count_and_keeps_colons()
    {
        var registry = Registry();
        var histogram = _meter.CreateHistogram<double>("vllm:time_to_first_token_seconds", "s", "Time to first token.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.5, 1] });
        foreach (var value in new[] { 0.25, 0.5, 0.75, 3 })
        {
            histogram.Record(value, new KeyValuePair<string, object?>("model_name", "m"));
        }

        Assert.Equal(
            """
            # HELP vllm:time_to_first_token_seconds Time to first token.
            # TYPE vllm:time_to_first_token_seconds histogram
            vllm:time_to_first_token_seconds_bucket{model_name="m",le="0.5"} 2
            vllm:time_to_first_token_seconds_bucket{model_name="m",le="1"} 3
            vllm:time_to_first_token_seconds_bucket{model_name="m",le="+Inf"} 4
            vllm:time_to_first_token_seconds_sum{model_name="m"} 4.5
            vllm:time_to_first_token_seconds_count{model_name="m"} 4

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void Python_number_format_writes_bounds_and_values_as_prometheus_client_does()
    {
        var registry = Registry(format: PrometheusNumberFormat.Python);
        var histogram = _meter.CreateHistogram<long>("vllm:request_params_n", null, "Histogram of the n request parameter.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 5] });
        histogram.Record(2, new KeyValuePair<string, object?>("model_name", "m"));
        var latency = _meter.CreateHistogram<double>("latency", "s", null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 2560] });
        latency.Record(0.001);
        _meter.CreateObservableGauge("big", () => 1234567.0);

        Assert.Equal(
            """
            # TYPE big gauge
            big 1.234567e+06
            # TYPE latency_seconds histogram
            latency_seconds_bucket{le="0.005"} 1.0
            latency_seconds_bucket{le="2560.0"} 1.0
            latency_seconds_bucket{le="+Inf"} 1.0
            latency_seconds_sum 0.001
            latency_seconds_count 1.0
            # HELP vllm:request_params_n Histogram of the n request parameter.
            # TYPE vllm:request_params_n histogram
            vllm:request_params_n_bucket{model_name="m",le="1.0"} 0.0
            vllm:request_params_n_bucket{model_name="m",le="2.0"} 1.0
            vllm:request_params_n_bucket{model_name="m",le="5.0"} 1.0
            vllm:request_params_n_bucket{model_name="m",le="+Inf"} 1.0
            vllm:request_params_n_sum{model_name="m"} 2.0
            vllm:request_params_n_count{model_name="m"} 1.0

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void A_histogram_advised_no_buckets_is_a_summary_of_sum_and_count()
    {
        var registry = Registry();
        var sizes = _meter.CreateHistogram<long>("http_request_size_bytes", null, "Content length.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [] });
        sizes.Record(100, new KeyValuePair<string, object?>("handler", "/v1/completions"));
        sizes.Record(20, new KeyValuePair<string, object?>("handler", "/v1/completions"));

        Assert.Equal(
            """
            # HELP http_request_size_bytes Content length.
            # TYPE http_request_size_bytes summary
            http_request_size_bytes_sum{handler="/v1/completions"} 120
            http_request_size_bytes_count{handler="/v1/completions"} 2

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void Untagged_histogram_writes_only_the_le_label()
    {
        var registry = Registry();
        var histogram = _meter.CreateHistogram<long>("batch.size", null, null, advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [10] });
        histogram.Record(4);
        histogram.Record(40);

        Assert.Equal(
            """
            # TYPE batch_size histogram
            batch_size_bucket{le="10"} 1
            batch_size_bucket{le="+Inf"} 2
            batch_size_sum 44
            batch_size_count 2

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void Gauges_escape_label_values_and_help_text()
    {
        var registry = Registry();
        _meter.CreateObservableGauge("disk.free", () => new Measurement<double>(1.5, new KeyValuePair<string, object?>("path", "C:\\dir \"x\"\nnext")),
            "By", "Free space,\nper \\ path \"quoted\".");

        Assert.Equal(
            """
            # HELP disk_free_bytes Free space,\nper \\ path "quoted".
            # TYPE disk_free_bytes gauge
            disk_free_bytes{path="C:\\dir \"x\"\nnext"} 1.5

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void UpDownCounter_and_synchronous_gauge_are_gauges_with_special_values()
    {
        var registry = Registry();
        var active = _meter.CreateUpDownCounter<int>("http.server.active_requests", "{request}", "Active requests.");
        active.Add(3);
        active.Add(-1);
        var temperature = _meter.CreateGauge<double>("temperature.ratio");
        temperature.Record(double.PositiveInfinity, new KeyValuePair<string, object?>("sensor", "a"));
        temperature.Record(double.NaN, new KeyValuePair<string, object?>("sensor", "b"));

        Assert.Equal(
            """
            # HELP http_server_active_requests Active requests.
            # TYPE http_server_active_requests gauge
            http_server_active_requests 2
            # TYPE temperature_ratio gauge
            temperature_ratio{sensor="a"} +Inf
            temperature_ratio{sensor="b"} NaN

            """.ReplaceLineEndings("\n"),
            registry.Scrape());
    }

    [Fact]
    public void Observable_counter_reports_the_callbacks_cumulative_value()
    {
        var registry = Registry();
        long total = 10;
        _meter.CreateObservableCounter("bytes.sent", () => total, "By");
        Assert.Contains("bytes_sent_bytes_total 10\n", registry.Scrape());
        total = 25;
        Assert.Contains("bytes_sent_bytes_total 25\n", registry.Scrape());
        Assert.Contains("# TYPE bytes_sent_bytes_total counter\n", registry.Scrape());
    }

    [Fact]
    public void Observable_series_the_callback_stops_reporting_leave_the_exposition()
    {
        var registry = Registry();
        var current = "a";
        _meter.CreateObservableGauge("replicas", () => new Measurement<int>(1, new KeyValuePair<string, object?>("name", current)));
        Assert.Contains("replicas{name=\"a\"} 1", registry.Scrape());
        current = "b";
        var second = registry.Scrape();
        Assert.Contains("replicas{name=\"b\"} 1", second);
        Assert.DoesNotContain("name=\"a\"", second);
    }

    [Fact]
    public void Names_and_label_keys_are_sanitised_and_units_become_suffixes()
    {
        var registry = Registry();
        _meter.CreateCounter<double>("http.client.request.duration", "ms").Add(2.5, new KeyValuePair<string, object?>("url.scheme", "http"));
        _meter.CreateCounter<long>("2xx-responses").Add(1, new KeyValuePair<string, object?>("__reserved", "x"));

        var text = registry.Scrape();
        Assert.Contains("http_client_request_duration_milliseconds_total{url_scheme=\"http\"} 2.5\n", text);
        Assert.Contains("_2xx_responses_total{_reserved=\"x\"} 1\n", text);
    }

    [Fact]
    public void Output_is_valid_for_the_parser_and_round_trips_values()
    {
        var registry = Registry();
        _meter.CreateCounter<long>("events").Add(7, new KeyValuePair<string, object?>("kind", "a\"b"));
        var samples = PrometheusTextParser.Parse(registry.Scrape());
        var sample = Assert.Single(samples);
        Assert.Equal("events_total", sample.Name);
        Assert.Equal("a\"b", sample.Labels["kind"]);
        Assert.Equal(7, sample.Value);
    }

    [Fact]
    public void Series_beyond_the_cap_go_to_one_overflow_series()
    {
        var registry = Registry(maxSeries: 2);
        var counter = _meter.CreateCounter<long>("users");
        for (var i = 0; i < 5; i++)
        {
            counter.Add(1, new KeyValuePair<string, object?>("user", $"u{i}"));
        }

        var text = registry.Scrape();
        Assert.Contains("users_total{user=\"u0\"} 1\n", text);
        Assert.Contains("users_total{user=\"u1\"} 1\n", text);
        Assert.Contains("users_total{otel_metric_overflow=\"true\"} 3\n", text);
        Assert.DoesNotContain("u2", text);
    }

    [Fact]
    public void Disposed_meters_leave_the_exposition()
    {
        var registry = Registry();
        var counter = _meter.CreateCounter<long>("gone");
        counter.Add(1);
        Assert.Contains("gone_total 1", registry.Scrape());
        _meter.Dispose();
        Assert.DoesNotContain("gone_total", registry.Scrape());
    }

    [Theory]
    [InlineData(PrometheusNumberFormat.Go)]
    [InlineData(PrometheusNumberFormat.Python)]
    public void Recording_into_an_existing_series_allocates_nothing(PrometheusNumberFormat format)
    {
        var registry = Registry(format: format);
        var counter = _meter.CreateCounter<long>("hot.counter");
        var histogram = _meter.CreateHistogram<double>("hot.histogram", "s");
        var model = new KeyValuePair<string, object?>("model_name", "m");
        var engine = new KeyValuePair<string, object?>("engine", "0");
        for (var i = 0; i < 1000; i++)
        {
            counter.Add(1, model, engine);
            histogram.Record(0.01 * i, engine, model);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100_000; i++)
        {
            counter.Add(1, model, engine);
            histogram.Record(0.001 * i, engine, model);
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Contains(format == PrometheusNumberFormat.Go ? "hot_counter_total{engine=\"0\",model_name=\"m\"} 101000\n" : "hot_counter_total{engine=\"0\",model_name=\"m\"} 101000.0\n",
            registry.Scrape());
    }

    [Fact]
    public async Task Concurrent_recording_loses_no_increments()
    {
        var registry = Registry();
        var counter = _meter.CreateCounter<long>("racy");
        var histogram = _meter.CreateHistogram<double>("racy.latency", "s");
        await Task.WhenAll(Enumerable.Range(0, 4).Select(t => Task.Run(() =>
        {
            for (var i = 0; i < 50_000; i++)
            {
                counter.Add(1, new KeyValuePair<string, object?>("shard", i % 3));
                histogram.Record(0.5);
            }
        })));

        var samples = PrometheusTextParser.Parse(registry.Scrape());
        Assert.Equal(200_000, samples.Sum("racy_total"));
        Assert.Equal(200_000, samples.Sum("racy_latency_seconds_count"));
        Assert.Equal(100_000, samples.Sum("racy_latency_seconds_sum"));
    }
}
