namespace VllmStack.Router.Lora;

/// <summary>
/// A LoRA adapter of the catalogue: the name clients ask for (as a model), the base model whose engines can serve it,
/// and where an engine loads it from (a local path, or a Hugging Face repo id the engine resolves: vLLM's <c>lora_path</c>).
/// </summary>
/// <param name="Runtime">Added through the admin API rather than declared with the stack.</param>
public sealed record LoraAdapter(string Name, string BaseModel, string Source, bool Runtime = false)
{
    /// <summary>Same definition (the origin aside): re-adding it changes nothing.</summary>
    public bool SameAs(LoraAdapter other) => Name == other.Name && BaseModel == other.BaseModel && Source == other.Source;
}
