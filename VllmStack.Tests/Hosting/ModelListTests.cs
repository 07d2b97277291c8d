using Aspire.Hosting;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Models;

namespace VllmStack.Tests.Hosting;

/// <summary>The AppHost's model list as configuration gives it: defaults, derived names, and the errors of a bad list.</summary>
public sealed class ModelListTests
{
    private static readonly ModelDefaults Defaults = new("meta-llama/Llama-3.1-8B-Instruct", Replicas: 2, SimulatorPreset: "h100-8b", Gpus: 1,
        MinReplicas: 1, MaxReplicas: 4);

    private static IReadOnlyList<ModelOptions> Load(params (string Key, string? Value)[] settings) =>
        ModelList.Load(new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build(), Defaults);

    private static string Error(params (string Key, string? Value)[] settings) =>
        Assert.Throws<DistributedApplicationException>(() => Load(settings)).Message;

    [Fact]
    public void Without_a_models_section_the_stack_serves_the_default_model_with_two_replicas_in_the_engine_group()
    {
        var model = Assert.Single(Load());
        Assert.Equal(("meta-llama/Llama-3.1-8B-Instruct", "engine", 2, 1, 4, "h100-8b", 1),
            (model.Name, model.Group, model.Replicas, model.Autoscaling.MinReplicas, model.Autoscaling.MaxReplicas, model.SimulatorPreset, model.Gpus));
    }

    [Fact]
    public void Configured_models_take_their_own_values_and_the_defaults_for_the_rest()
    {
        var models = Load(("Models:0:Name", "Qwen/Qwen2.5-7B-Instruct"), ("Models:0:Replicas", "3"), ("Models:0:Autoscaling:MaxReplicas", "6"),
            ("Models:0:Gpus", "2"), ("Models:0:MaxModelLen", "8192"), ("Models:0:MaxLoras", "4"),
            ("Models:0:Adapters:0:Name", "sql"), ("Models:0:Adapters:0:Source", "/adapters/sql"),
            ("Models:1:Name", "mistralai/Mistral-7B-Instruct-v0.3"), ("Models:1:Group", "engine-mistral"), ("Models:1:SimulatorPreset", "fast"));
        Assert.Equal(2, models.Count);
        var (qwen, mistral) = (models[0], models[1]);
        Assert.Equal(("engine-qwen2-5-7b-instruct", 3, 1, 6, 2, 8192, 4), (qwen.Group, qwen.Replicas, qwen.Autoscaling.MinReplicas,
            qwen.Autoscaling.MaxReplicas, qwen.Gpus, qwen.MaxModelLen, qwen.MaxLoras));
        Assert.Equal(("sql", "/adapters/sql"), (qwen.Adapters[0].Name, qwen.Adapters[0].Source));
        Assert.Equal(("engine-mistral", 2, "fast", 1, null), (mistral.Group, mistral.Replicas, mistral.SimulatorPreset, mistral.Gpus, mistral.MaxModelLen));
    }

    [Fact]
    public void An_adapters_base_model_is_the_model_it_is_declared_under()
    {
        var model = Assert.Single(Load(("Models:0:Name", "a/m"), ("Models:0:Adapters:0:Name", "sql"), ("Models:0:Adapters:0:Source", "/s"),
            ("Models:0:Adapters:0:BaseModel", "a/m"), ("Models:0:Adapters:1:Name", "chat"), ("Models:0:Adapters:1:Source", "org/chat-lora")));
        Assert.Equal([("sql", "/s", "a/m"), ("chat", "org/chat-lora", null)], model.Adapters.Select(a => (a.Name, a.Source, a.BaseModel)));
        Assert.Contains("Models:1 (b/n): adapter 'sql' has BaseModel 'a/m' but is declared under model 'b/n'",
            Error(("Models:0:Name", "a/m"), ("Models:1:Name", "b/n"), ("Models:1:Adapters:0:Name", "sql"), ("Models:1:Adapters:0:Source", "/s"),
                ("Models:1:Adapters:0:BaseModel", "a/m")));
    }

    [Fact]
    public void A_bad_model_list_fails_at_start_up_naming_each_problem()
    {
        Assert.Contains("the list is empty", Error(("Models", "")));
        Assert.Contains("model 'a/m' is declared 2 times", Error(("Models:0:Name", "a/m"), ("Models:1:Name", "a/m")));
        Assert.Contains("engine group 'engine-m' is used by 2 models", Error(("Models:0:Name", "a/m"), ("Models:1:Name", "b/m")));
        Assert.Contains("Models:0 (a/m): Replicas 5 is outside the autoscaling bounds 1..4", Error(("Models:0:Name", "a/m"), ("Models:0:Replicas", "5")));
        Assert.Contains("Replicas 0 is outside", Error(("Models:0:Name", "a/m"), ("Models:0:Replicas", "0")));
        Assert.Contains("Autoscaling bounds 3..2", Error(("Models:0:Name", "a/m"), ("Models:0:Autoscaling:MinReplicas", "3"), ("Models:0:Autoscaling:MaxReplicas", "2")));
        Assert.Contains("Models:0 (no name): Name is required", Error(("Models:0:Replicas", "1")));
        Assert.Contains("Group 'Engine_A'", Error(("Models:0:Name", "a/m"), ("Models:0:Group", "Engine_A")));
        Assert.Contains("needs a Name (without '=' or whitespace) and a Source", Error(("Models:0:Name", "a/m"), ("Models:0:Adapters:0:Name", "sql")));
        Assert.Contains("adapter 'my sql' needs a Name (without '=' or whitespace)",
            Error(("Models:0:Name", "a/m"), ("Models:0:Adapters:0:Name", "my sql"), ("Models:0:Adapters:0:Source", "/s")));
        Assert.Contains("adapter 'sql' is declared 2 times", Error(("Models:0:Name", "a/m"), ("Models:0:Adapters:0:Name", "sql"), ("Models:0:Adapters:0:Source", "/s"),
            ("Models:1:Name", "b/n"), ("Models:1:Adapters:0:Name", "sql"), ("Models:1:Adapters:0:Source", "/t")));
        Assert.Contains("MaxLoras is set but the model has no Adapters", Error(("Models:0:Name", "a/m"), ("Models:0:MaxLoras", "2")));
    }
}
