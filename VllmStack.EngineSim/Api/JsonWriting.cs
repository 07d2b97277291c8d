using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace VllmStack.EngineSim.Api;

internal static class JsonWriting
{
    /// <summary>Escapes only what JSON requires, as Python's json module does: model text stays readable on the wire.</summary>
    public static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true };

    public static Utf8JsonWriter Create(IBufferWriter<byte> output) => new(output, Options);
}
