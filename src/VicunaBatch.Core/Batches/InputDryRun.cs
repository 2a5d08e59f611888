using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Batches;

/// <summary>Prompt size of one input line.</summary>
public sealed record LinePromptTokens(int Line, string CustomId, int Tokens);

/// <summary>
/// What a dry run found. Lists are capped at <see cref="InputDryRun.MaxListed"/> entries; the counts are exact.
/// <see cref="Errors"/> holds every rejected line (duplicates and endpoint mismatches included).
/// </summary>
public sealed record DryRunReport(
    int NumLines, int NumRequests, int NumInvalid, IReadOnlyList<LineError> Errors, IReadOnlyList<string> DuplicateCustomIds,
    int? ContextLength, IReadOnlyList<LinePromptTokens> PromptTokens, int NumOverContext, IReadOnlyList<LinePromptTokens> OverContext)
{
    public bool IsValid => NumInvalid == 0 && NumRequests > 0;

    /// <summary>The first model a line names, refused lines included (<see cref="ParsedLine.Model"/>): the model a batch
    /// of this file that fails validation names; null when no line names one.</summary>
    public string? AskedModel { get; init; }
}

/// <summary>
/// Checks an input file without creating a job: the same parsing and duplicate rules as
/// <see cref="InputValidator"/>, plus (when given) every line must target <c>expectedEndpoint</c>,
/// plus prompt token counts against the context when a <see cref="IPromptTokenCounter"/> is supplied.
/// One streaming pass; memory is bounded by the custom_id set and the capped lists.
/// </summary>
public sealed class InputDryRun(InputOptions options, IPromptTokenCounter? tokenCounter)
{
    public const int MaxListed = 1000;
    private readonly LineParser _parser = new(options);

    public async Task<DryRunReport> RunAsync(Stream input, InputFormat format, BatchEndpoint? expectedEndpoint, CancellationToken cancellationToken = default)
    {
        var errors = new List<LineError>();
        var duplicates = new List<string>();
        var tokens = new List<LinePromptTokens>();
        var overContext = new List<LinePromptTokens>();
        var rules = new FileLineRules(expectedEndpoint);
        int numLines = 0, numRequests = 0, numInvalid = 0, numOver = 0;
        string? askedModel = null;
        await foreach (var line in PhysicalLineReader.ReadAsync(input, 0, 1, options.MaxLineBytes, cancellationToken))
        {
            numLines = line.LineNumber;
            if (line.IsBlank) continue;
            var parsed = _parser.Parse(line, format);
            var error = rules.Check(parsed);
            askedModel ??= parsed.Model;
            if (error is { Code: LineErrorCode.DuplicateCustomId } && duplicates.Count < MaxListed) duplicates.Add(parsed.CustomId);
            if (error is not null)
            {
                numInvalid++;
                if (errors.Count < MaxListed) errors.Add(error);
                continue;
            }
            numRequests++;
            if (tokenCounter is null) continue;
            var count = new LinePromptTokens(line.LineNumber, parsed.CustomId, tokenCounter.CountPromptTokens(parsed.Request!));
            if (tokens.Count < MaxListed) tokens.Add(count);
            if (!tokenCounter.FitsContext(count.Tokens) && numOver++ < MaxListed) overContext.Add(count);
        }
        return new DryRunReport(numLines, numRequests, numInvalid, errors, duplicates,
            tokenCounter?.ContextLength, tokens, numOver, overContext) { AskedModel = askedModel };
    }
}
