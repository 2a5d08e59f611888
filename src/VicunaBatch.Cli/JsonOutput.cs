using System.Text.Encodings.Web;
using System.Text.Json;

namespace VicunaBatch.Cli;

/// <summary>JSON as the CLI prints it: UTF-8 text left readable (no \uXXXX for non-ASCII).</summary>
internal static class JsonOutput
{
    public static JsonSerializerOptions Options { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
