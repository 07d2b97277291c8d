namespace VllmStack.EngineSim.Generation;

/// <summary>Common English words, so that simulated answers read like (meaningless) prose and tokenize like it.</summary>
internal static class WordList
{
    public static readonly string[] Words =
    [
        "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
        "this", "are", "at", "from", "but", "have", "an", "they", "which", "one", "you", "were", "all", "we",
        "there", "can", "their", "has", "more", "when", "will", "would", "if", "so", "about", "what", "some",
        "into", "than", "them", "these", "its", "only", "other", "new", "time", "could", "may", "like", "then",
        "first", "any", "also", "two", "most", "over", "such", "many", "where", "through", "model", "system",
        "between", "each", "should", "those", "because", "under", "request", "value", "memory", "cache", "token",
        "engine", "server", "cluster", "network", "latency", "answer", "question", "example", "result", "data",
        "process", "simple", "different", "important", "several", "people", "world", "information", "number",
        "problem", "service", "general", "support", "design", "approach", "performance", "simulation", "stream",
        "however", "therefore", "usually", "often", "quickly", "carefully", "together", "already", "always",
        "small", "large", "long", "short", "early", "later", "better", "common", "possible", "available",
        "make", "use", "find", "give", "keep", "show", "build", "serve", "route", "measure", "learn", "share",
        "explain", "consider", "provide", "include", "continue", "change", "follow", "return", "describe",
        "light", "water", "river", "mountain", "city", "garden", "window", "history", "language", "story",
    ];
}
