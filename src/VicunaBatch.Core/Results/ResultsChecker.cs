using System.Text.Json;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Results;

/// <summary>What <see cref="ResultsChecker"/> found: the problems (empty when the results are whole) and the counts.</summary>
public sealed record CheckReport(
    IReadOnlyList<string> Problems, int NumValidRequests, int NumRejectedLines, int NumOutputLines, int NumErrorLines, int? NumTerminalEvents)
{
    public bool IsWhole => Problems.Count == 0;
}

/// <summary>
/// The promise a job makes, checked from its files alone: every valid input <c>custom_id</c> appears exactly once
/// across <c>output.jsonl</c> and <c>errors.jsonl</c>, every line rejected at validation appears once in
/// <c>errors.jsonl</c> with its line number, no unknown id appears, <c>job.json</c>'s request counts agree with both
/// files, and — given a webhook receiver's log (one received event body per line) — the job has exactly one
/// terminal event (distinct event ids: Standard Webhooks redelivers, receivers dedupe by id).
/// The input is validated with the same <see cref="InputValidator"/> the submitter uses.
/// </summary>
public sealed class ResultsChecker(InputOptions options)
{
    private static readonly HashSet<string> TerminalEvents = ["batch.completed", "batch.failed", "batch.cancelled", "batch.expired"];

    /// <summary>Problems beyond this many are counted, not listed.</summary>
    public const int MaxListedProblems = 50;

    public async Task<CheckReport> CheckAsync(
        Stream input, InputFormat format, Stream output, Stream errors, Stream job, Stream? webhookLog = null,
        CancellationToken cancellationToken = default)
    {
        var problems = new ProblemList();
        var validation = await new InputValidator(options).ValidateAsync(input, "check", "input", format, cancellationToken);
        var rejectedLines = validation.Errors.ToDictionary(e => e.LineNumber, e => e.CustomId);
        var validIds = await ValidIdsAsync(input, format, rejectedLines.Keys.ToHashSet(), cancellationToken);

        var seen = new Dictionary<string, string>(StringComparer.Ordinal); // custom_id -> where it appeared
        var numOutput = 0;
        await foreach (var (lineNumber, line) in ReadJsonLinesAsync(output, "output.jsonl", problems, cancellationToken))
        {
            numOutput++;
            var id = StringAt(line, "custom_id");
            if (id is null) { problems.Add($"output.jsonl:{lineNumber}: no custom_id"); continue; }
            if (!validIds.Contains(id)) problems.Add($"output.jsonl:{lineNumber}: custom_id \"{id}\" is not a valid request of the input");
            else if (!seen.TryAdd(id, $"output.jsonl:{lineNumber}")) problems.Add($"output.jsonl:{lineNumber}: custom_id \"{id}\" already in {seen[id]}");
            if (line.TryGetProperty("response", out var response) && response.TryGetProperty("status_code", out var status) && status.GetInt32() != 200)
                problems.Add($"output.jsonl:{lineNumber}: status_code {status.GetInt32()} in the output file");
        }

        var numErrors = 0;
        var rejectedSeen = new HashSet<int>();
        await foreach (var (lineNumber, line) in ReadJsonLinesAsync(errors, "errors.jsonl", problems, cancellationToken))
        {
            numErrors++;
            var id = StringAt(line, "custom_id");
            var error = ErrorOf(line);
            if (error is null) problems.Add($"errors.jsonl:{lineNumber}: neither a response with an error body nor an error");
            var inputLine = error is { } e && e.TryGetProperty("line", out var l) && l.TryGetInt32(out var n) ? n : (int?)null;
            if (inputLine is { } rejected && rejectedLines.ContainsKey(rejected))
            {
                if (!rejectedSeen.Add(rejected)) problems.Add($"errors.jsonl:{lineNumber}: input line {rejected} reported again");
                continue;
            }
            if (id is null) { problems.Add($"errors.jsonl:{lineNumber}: no custom_id and no rejected input line"); continue; }
            if (!validIds.Contains(id)) problems.Add($"errors.jsonl:{lineNumber}: custom_id \"{id}\" is not a request of the input");
            else if (!seen.TryAdd(id, $"errors.jsonl:{lineNumber}")) problems.Add($"errors.jsonl:{lineNumber}: custom_id \"{id}\" already in {seen[id]}");
        }

        foreach (var id in validIds.Where(id => !seen.ContainsKey(id)).Order(StringComparer.Ordinal))
            problems.Add($"custom_id \"{id}\" is in neither output.jsonl nor errors.jsonl");
        foreach (var (rejected, id) in rejectedLines.Where(r => !rejectedSeen.Contains(r.Key)).OrderBy(r => r.Key))
            problems.Add($"input line {rejected} (custom_id \"{id}\") was rejected but is not in errors.jsonl");

        var jobId = await CheckJobAsync(job, validIds.Count + rejectedLines.Count, numOutput, numErrors, problems, cancellationToken);
        int? terminal = webhookLog is null || jobId is null ? null : await CountTerminalEventsAsync(webhookLog, jobId, problems, cancellationToken);
        return new CheckReport(problems.Items, validIds.Count, rejectedLines.Count, numOutput, numErrors, terminal);
    }

    /// <summary>The custom_ids of the valid requests (a second pass: the validator reports only the rejected lines).</summary>
    private async Task<HashSet<string>> ValidIdsAsync(Stream input, InputFormat format, HashSet<int> rejected, CancellationToken cancellationToken)
    {
        input.Position = 0;
        var parser = new LineParser(options);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var line in PhysicalLineReader.ReadAsync(input, 0, 1, options.MaxLineBytes, cancellationToken))
            if (!line.IsBlank && !rejected.Contains(line.LineNumber)) ids.Add(parser.Parse(line, format).CustomId);
        return ids;
    }

    private static async Task<string?> CheckJobAsync(Stream job, int numTotal, int numOutput, int numErrors, ProblemList problems, CancellationToken cancellationToken)
    {
        JsonElement root;
        try { root = (await JsonDocument.ParseAsync(job, cancellationToken: cancellationToken)).RootElement; }
        catch (JsonException e) { problems.Add($"job.json: not JSON ({e.Message})"); return null; }
        if (!root.TryGetProperty("request_counts", out var counts)) { problems.Add("job.json: no request_counts"); return StringAt(root, "id"); }
        foreach (var (name, expected, what) in new[] { ("total", numTotal, "input requests"), ("completed", numOutput, "output.jsonl lines"), ("failed", numErrors, "errors.jsonl lines") })
        {
            var actual = counts.TryGetProperty(name, out var value) ? value.GetInt32() : -1;
            if (actual != expected) problems.Add($"job.json: request_counts.{name} is {actual}, but there are {expected} {what}");
        }
        return StringAt(root, "id");
    }

    private static async Task<int> CountTerminalEventsAsync(Stream log, string jobId, ProblemList problems, CancellationToken cancellationToken)
    {
        var eventIds = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var (_, line) in ReadJsonLinesAsync(log, "webhook log", problems, cancellationToken))
        {
            if (StringAt(line, "type") is not { } type || !TerminalEvents.Contains(type)) continue;
            if (!line.TryGetProperty("data", out var data) || StringAt(data, "id") != jobId) continue;
            eventIds.Add(StringAt(line, "id") ?? "");
        }
        if (eventIds.Count != 1) problems.Add($"webhook log: {eventIds.Count} terminal events for job {jobId}, expected exactly one");
        return eventIds.Count;
    }

    private static async IAsyncEnumerable<(int LineNumber, JsonElement Line)> ReadJsonLinesAsync(
        Stream stream, string name, ProblemList problems, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(stream, leaveOpen: true);
        var lineNumber = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } text)
        {
            lineNumber++;
            if (text.Length == 0) continue;
            JsonElement element;
            try { element = JsonDocument.Parse(text).RootElement.Clone(); }
            catch (JsonException) { problems.Add($"{name}:{lineNumber}: not JSON"); continue; }
            yield return (lineNumber, element);
        }
    }

    /// <summary>
    /// The error object of an errors.jsonl line: <c>response.body.error</c> of a failed request or rejected line (a
    /// rejected line's carries its input <c>line</c>), or the top-level <c>error</c> of one that never ran (or of any
    /// line written before the lines took OpenAI's shape); null when the line has neither.
    /// </summary>
    private static JsonElement? ErrorOf(JsonElement line)
    {
        if (line.ValueKind != JsonValueKind.Object) return null;
        if (line.TryGetProperty("response", out var response) && response.ValueKind == JsonValueKind.Object
            && response.TryGetProperty("body", out var body) && body.ValueKind == JsonValueKind.Object
            && body.TryGetProperty("error", out var bodyError) && bodyError.ValueKind == JsonValueKind.Object)
            return bodyError;
        return line.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object ? error : null;
    }

    private static string? StringAt(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() : null;

    private sealed class ProblemList
    {
        private readonly List<string> _items = [];
        private int _numOmitted;

        public IReadOnlyList<string> Items => _numOmitted == 0 ? _items : [.. _items, $"... and {_numOmitted} more"];

        public void Add(string problem)
        {
            if (_items.Count < MaxListedProblems) _items.Add(problem);
            else _numOmitted++;
        }
    }
}
