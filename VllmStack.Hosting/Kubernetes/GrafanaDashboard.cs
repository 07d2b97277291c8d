using System.Text.Json;
using System.Text.Json.Nodes;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// The Grafana dashboard the publisher writes as a ConfigMap (label <c>grafana_dashboard: "1"</c> for Grafana's sidecar),
/// written against the metric names our services and vLLM export.
/// </summary>
internal static class GrafanaDashboard
{
    public const string ConfigMapName = "vllmstack-grafana-dashboard";
    public const string File = "grafana/vllmstack-dashboard.json";

    /// <summary>
    /// The panels the Production Stack's dashboard has (available engines, request latency, TTFT distribution, running and
    /// waiting requests, KV usage, KV hit rate, QPS), plus the router's own overhead, its admission queue, stream migrations, LoRA adapter loads and the autoscaler's replicas. Engine
    /// series are told from the router's copies of them by <c>model_name</c>, which only the engines' carry.
    /// </summary>
    public static string Json()
    {
        var panels = new JsonArray();
        var y = 0;
        void Row(params (string Title, string Type, string Unit, (string Expr, string Legend)[] Targets)[] row)
        {
            var width = 24 / row.Length;
            for (var i = 0; i < row.Length; i++)
            {
                var (title, type, unit, targets) = row[i];
                var targetArray = new JsonArray();
                for (var t = 0; t < targets.Length; t++)
                {
                    targetArray.Add(new JsonObject
                    {
                        ["refId"] = ((char)('A' + t)).ToString(),
                        ["expr"] = targets[t].Expr,
                        ["legendFormat"] = targets[t].Legend,
                        ["datasource"] = new JsonObject { ["type"] = "prometheus", ["uid"] = "${datasource}" },
                    });
                }
                panels.Add(new JsonObject
                {
                    ["id"] = panels.Count + 1,
                    ["title"] = title,
                    ["type"] = type,
                    ["datasource"] = new JsonObject { ["type"] = "prometheus", ["uid"] = "${datasource}" },
                    ["gridPos"] = new JsonObject { ["x"] = i * width, ["y"] = y, ["w"] = width, ["h"] = 8 },
                    ["fieldConfig"] = new JsonObject { ["defaults"] = new JsonObject { ["unit"] = unit }, ["overrides"] = new JsonArray() },
                    ["targets"] = targetArray,
                });
            }
            y += 8;
        }
        const string engines = "model_name=~\"$model\"";
        Row(
            ("Available engines", "stat", "short", [("max(vllm:healthy_pods_total)", "routable engines")]),
            ("QPS", "timeseries", "reqps", [
                ("sum(rate(vllm:num_incoming_requests_total[1m]))", "router → engines"),
                ($"sum by (model_name) (rate(vllm:request_success_total{{{engines}}}[1m]))", "completed {{model_name}}")]),
            ("Engine replicas (autoscaler)", "timeseries", "short", [
                ("vllmstack:autoscaler_current_replicas", "current {{target}}"),
                ("vllmstack:autoscaler_desired_replicas", "desired {{target}}")]));
        Row(
            ("Request latency", "timeseries", "s", Quantiles("vllm:e2e_request_latency_seconds_bucket", engines)),
            ("Time to first token", "timeseries", "s", Quantiles("vllm:time_to_first_token_seconds_bucket", engines)),
            ("TTFT distribution", "heatmap", "s", [($"sum by (le) (increase(vllm:time_to_first_token_seconds_bucket{{{engines}}}[$__rate_interval]))", "{{le}}")]));
        Row(
            ("Running requests", "timeseries", "short", [($"sum by (model_name) (vllm:num_requests_running{{{engines}}})", "{{model_name}}")]),
            ("Waiting requests", "timeseries", "short", [($"sum by (model_name) (vllm:num_requests_waiting{{{engines}}})", "{{model_name}}")]),
            ("KV-cache usage", "timeseries", "percentunit", [($"avg by (model_name) (vllm:kv_cache_usage_perc{{{engines}}})", "{{model_name}}")]));
        Row(
            ("KV-cache hit rate", "timeseries", "percentunit", [
                ($"sum(rate(vllm:prefix_cache_hits_total{{{engines}}}[5m])) / clamp_min(sum(rate(vllm:prefix_cache_queries_total{{{engines}}}[5m])), 1)", "engines' prefix cache"),
                ("sum(rate(vllmstack:kv_lookup_hit_tokens_total[5m])) / clamp_min(sum(rate(vllmstack:kv_lookup_queried_tokens_total[5m])), 1)", "cache server lookups")]),
            ("Router overhead", "timeseries", "s", [
                ("histogram_quantile(0.5, sum by (le) (rate(vllmstack:router_added_latency_seconds_bucket[5m])))", "p50"),
                ("histogram_quantile(0.99, sum by (le) (rate(vllmstack:router_added_latency_seconds_bucket[5m])))", "p99")]),
            ("Rejected and retried", "timeseries", "reqps", [
                ("sum by (reason) (rate(vllmstack:router_rejected_requests_total[5m]))", "rejected {{reason}}"),
                ("sum by (reason) (rate(vllmstack:router_retries_total[5m]))", "retried {{reason}}")]));
        Row(
            ("Router queue depth (admission control)", "timeseries", "short", [("sum by (model) (vllmstack:router_queue_depth)", "{{model}}")]),
            ("Router queue wait", "timeseries", "s", [
                ("histogram_quantile(0.5, sum by (le) (rate(vllmstack:router_queue_wait_seconds_bucket[5m])))", "p50"),
                ("histogram_quantile(0.99, sum by (le) (rate(vllmstack:router_queue_wait_seconds_bucket[5m])))", "p99")]),
            ("Admission decisions", "timeseries", "reqps", [
                ("sum by (decision, reason) (rate(vllmstack:router_admission_decisions_total[5m]))", "{{decision}} {{reason}}")]));
        Row(
            ("Stream migrations", "timeseries", "reqps", [
                ("sum by (reason, outcome) (rate(vllmstack:router_stream_migrations_total[5m]))", "{{reason}} {{outcome}}")]),
            ("Migration delay", "timeseries", "s", [
                ("histogram_quantile(0.5, sum by (le) (rate(vllmstack:router_migration_delay_seconds_bucket[5m])))", "p50"),
                ("histogram_quantile(0.99, sum by (le) (rate(vllmstack:router_migration_delay_seconds_bucket[5m])))", "p99")]));
        Row(
            ("LoRA adapter loads and unloads", "timeseries", "ops", [
                ("sum by (reason, outcome) (rate(vllmstack:router_lora_adapter_loads_total[5m]))", "load {{reason}} {{outcome}}"),
                ("sum by (reason) (rate(vllmstack:router_lora_adapter_unloads_total[5m]))", "unload {{reason}}")]),
            ("LoRA adapter load time", "timeseries", "s", [
                ("histogram_quantile(0.5, sum by (le) (rate(vllmstack:router_lora_adapter_load_duration_seconds_bucket[5m])))", "p50"),
                ("histogram_quantile(0.99, sum by (le) (rate(vllmstack:router_lora_adapter_load_duration_seconds_bucket[5m])))", "p99")]),
            ("Requests per LoRA adapter (top 10)", "timeseries", "reqps", [
                ("topk(10, sum by (adapter) (rate(vllmstack:router_lora_requests_total[5m])))", "{{adapter}}"),
                ("sum(rate(vllmstack:router_lora_load_waits_total[5m]))", "waited for a load")]));

        var dashboard = new JsonObject
        {
            ["uid"] = "vllmstack",
            ["title"] = "VllmStack",
            ["tags"] = new JsonArray("vllm", "vllmstack"),
            ["timezone"] = "browser",
            ["schemaVersion"] = 39,
            ["refresh"] = "10s",
            ["time"] = new JsonObject { ["from"] = "now-1h", ["to"] = "now" },
            ["templating"] = new JsonObject
            {
                ["list"] = new JsonArray(
                    new JsonObject { ["name"] = "datasource", ["type"] = "datasource", ["query"] = "prometheus", ["label"] = "Data source" },
                    new JsonObject
                    {
                        ["name"] = "model",
                        ["label"] = "Model",
                        ["type"] = "query",
                        ["datasource"] = new JsonObject { ["type"] = "prometheus", ["uid"] = "${datasource}" },
                        ["query"] = "label_values(vllm:num_requests_running, model_name)",
                        ["includeAll"] = true,
                        ["multi"] = true,
                        // "All" must not match the router's copies of engine gauges, which have no model_name.
                        ["allValue"] = ".+",
                        ["refresh"] = 2,
                    }),
            },
            ["panels"] = panels,
        };
        return dashboard.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    private static (string, string)[] Quantiles(string bucket, string selector) =>
        [.. new[] { 0.5, 0.9, 0.99 }.Select(q => (
            $"histogram_quantile({q.ToString(System.Globalization.CultureInfo.InvariantCulture)}, sum by (le) (rate({bucket}{{{selector}}}[5m])))",
            $"p{(q * 100).ToString(System.Globalization.CultureInfo.InvariantCulture)}"))];
}
