using System.CommandLine;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Cli;

/// <summary>The input limits run and serve both take.</summary>
internal static class InputFlags
{
    public static Option<int> MaxLineBytes() => new("--max-line-bytes")
    {
        Description = "Longest input line, in bytes; a longer one is never read whole and becomes a line_too_long error line.",
        DefaultValueFactory = _ => InputOptions.DefaultMaxLineBytes,
    };
}
