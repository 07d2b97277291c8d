namespace VllmStack.Router.Forwarding.Migration;

/// <summary>
/// Mid-stream migration: section <c>Router:Migration</c>. When the engine serving a streaming chat or completions request
/// fails after part of the answer reached the client, the router continues the same response from another engine of
/// the model (the answer so far sent as a continuation), so that the client sees one uninterrupted stream.
/// </summary>
public sealed class MigrationOptions
{
    /// <summary>Continuations one request may have (a continuation's engine may fail too); 0 turns migration off.</summary>
    public int MaxMigrations { get; set; } = 2;

    public bool Enabled => MaxMigrations > 0;

    public IEnumerable<string> Validate()
    {
        if (MaxMigrations is < 0 or > 16)
        {
            yield return "Migration:MaxMigrations (--max-migrations) must be between 0 (off) and 16";
        }
    }
}
