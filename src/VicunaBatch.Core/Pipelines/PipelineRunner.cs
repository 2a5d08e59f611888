using System.Globalization;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Pipelines;

public enum PipelineRunStatus
{
    /// <summary>New or changed documents were summarized (or recorded as errors); the watermark moved.</summary>
    Completed,
    /// <summary>No document changed since the watermark: no job, no manifest, no webhook.</summary>
    NothingToDo,
    /// <summary>Another run holds the pipeline's lock: this tick did nothing.</summary>
    Locked,
    /// <summary>A stage's job was still running when the host stopped waiting: the next tick resumes the same run.</summary>
    InProgress,
}

public sealed record PipelineRunResult(PipelineRunStatus Status, string RunId, RunManifest? Manifest);

/// <summary>Where a pipeline reads, writes and keeps state, and the model it sizes its requests for.</summary>
public sealed record PipelineParts(
    IBlobStore Source, IBlobStore Output, IBlobStore State, PipelineStages Stages, IDocumentTokenizer Tokenizer, int ContextLength,
    WebhookOutbox? Outbox);

/// <summary>Options of <see cref="PipelineRunner"/>.</summary>
public sealed class PipelineRunnerOptions
{
    /// <summary>How long a run's lock holds before another tick may take it over (a crashed run). Default 6 h.</summary>
    public TimeSpan LockDuration { get; init; } = TimeSpan.FromHours(6);
}

/// <summary>
/// One run of a pipeline: changed documents since the watermark → chunks → map job → reduce jobs (summaries of groups of
/// summaries, recursively, until each document has one) → one summary blob per document, a manifest, the webhook, and
/// only then the new watermark. A run that throws (or whose stage is still running when the host stops waiting) stays
/// the current run: the next tick resumes it with the same id and files, reusing its finished stage jobs, so a failed
/// run is retried, never skipped.
/// </summary>
public sealed class PipelineRunner(PipelineDefinition definition, PipelineParts parts, TimeProvider time, PipelineRunnerOptions? options = null)
{
    private const int PromptSlackTokens = 8; // BOS and tokens that merge differently across a chunk boundary
    private readonly PipelineRunnerOptions _options = options ?? new();
    private readonly PipelineState _state = new(parts.State, definition.Name, time);

    /// <summary>Run ids are <c>pl-{pipeline}-{UTC yyyyMMddTHHmmssfff}</c> (at most 55 characters, so stage job ids "{run id}-s{n}" stay valid job ids).</summary>
    public static string? PipelineNameOf(string runId) =>
        runId.StartsWith("pl-", StringComparison.Ordinal) && runId.LastIndexOf('-') is var dash and > 3 ? runId[3..dash] : null;

    public async Task<PipelineRunResult> RunAsync(CancellationToken cancellationToken = default)
    {
        CheckRequestsFit();
        var tickId = $"pl-{definition.Name}-{time.GetUtcNow().UtcDateTime.ToString("yyyyMMdd'T'HHmmssfff", CultureInfo.InvariantCulture)}";
        if (!await _state.TryLockAsync(tickId, _options.LockDuration, cancellationToken)) return new PipelineRunResult(PipelineRunStatus.Locked, tickId, null);
        var runId = tickId;
        try
        {
            var watermark = await _state.ReadWatermarkAsync(cancellationToken);
            var documents = new PipelineDocuments(parts.Source, definition);
            // an unfinished run is resumed with its own id and files: its finished stage jobs are reused, not rerun
            var current = await _state.ReadCurrentRunAsync(cancellationToken);
            if (current is null)
            {
                var found = await documents.FindChangedAsync(watermark, cancellationToken);
                if (found.Count == 0) return new PipelineRunResult(PipelineRunStatus.NothingToDo, runId, null);
                current = new PipelineCurrentRun(runId, time.GetUtcNow(), found);
                await _state.WriteCurrentRunAsync(current, cancellationToken);
            }
            runId = current.RunId;
            var (startedAt, changed) = (current.StartedAt, current.Files);

            var docs = new List<PipelineDocument>();
            var errors = new List<DocumentError>();
            foreach (var file in changed)
            {
                var (read, failed) = await documents.ReadAsync(file, cancellationToken);
                docs.AddRange(read);
                errors.AddRange(failed);
            }
            var summarize = new DocumentSummarizer(definition, parts, runId, time);
            var (summaries, stages) = await summarize.RunAsync(docs, cancellationToken);
            var manifest = await WriteResultsAsync(runId, startedAt, docs, errors, summaries, stages, cancellationToken);

            if (definition.Webhook is not null && parts.Outbox is { } outbox)
                await outbox.EnqueueAsync(PipelineRunEvent.For(definition, runId, PipelineRunEvent.Completed, manifest.FinishedAt, manifest, null), cancellationToken);
            // files with a failed request stay behind the watermark: the next run tries them again
            var retry = summaries.Values.Where(s => !s.Succeeded).Select(s => s.Document.Path).ToHashSet(StringComparer.Ordinal);
            var seen = new Dictionary<string, string>(watermark.PathToETag, StringComparer.Ordinal);
            foreach (var file in changed.Where(f => !retry.Contains(f.Path))) seen[file.Path] = file.ETag;
            await _state.WriteWatermarkAsync(new PipelineWatermark(seen, runId, manifest.FinishedAt), cancellationToken);
            await _state.ClearCurrentRunAsync(cancellationToken);
            return new PipelineRunResult(PipelineRunStatus.Completed, runId, manifest);
        }
        catch (PipelineStageNotFinishedException)
        {
            return new PipelineRunResult(PipelineRunStatus.InProgress, runId, null);
        }
        catch (Exception e) when (e is not OperationCanceledException && definition.Webhook is not null && parts.Outbox is not null)
        {
            await parts.Outbox.EnqueueAsync(PipelineRunEvent.For(definition, runId, PipelineRunEvent.Failed, time.GetUtcNow(), null, e.Message), CancellationToken.None);
            throw;
        }
        finally
        {
            await _state.UnlockAsync(tickId, CancellationToken.None);
        }
    }

    /// <summary>A full chunk in either template, plus max_tokens, must fit the context, or every long document would fail.</summary>
    private void CheckRequestsFit()
    {
        foreach (var (template, field) in new[] { (definition.Prompt, "prompt"), (definition.ReducePrompt, "reduce_prompt") })
        {
            int overhead = parts.Tokenizer.Encode(template.Render("", "", "")).Count;
            int needed = overhead + definition.Chunking.ChunkTokens + definition.MaxTokens + PromptSlackTokens;
            if (needed > parts.ContextLength)
                throw new PipelineDefinitionException("chunking.chunk_tokens",
                    $"{field} ({overhead} tokens) + chunk_tokens ({definition.Chunking.ChunkTokens}) + max_tokens ({definition.MaxTokens}) + {PromptSlackTokens} = {needed} is over the model's context of {parts.ContextLength} tokens");
        }
    }

    private async Task<RunManifest> WriteResultsAsync(
        string runId, DateTimeOffset startedAt, IReadOnlyList<PipelineDocument> docs, IReadOnlyList<DocumentError> errors,
        IReadOnlyDictionary<string, DocumentSummary> summaries, IReadOnlyList<ManifestStage> stages, CancellationToken cancellationToken)
    {
        var entries = new List<ManifestDocument>();
        foreach (var doc in docs)
        {
            var summary = summaries[doc.Key];
            if (summary.Succeeded)
            {
                var name = definition.Output.Prefix + doc.SummaryName;
                await parts.Output.PutBytesAsync(name, Encoding.UTF8.GetBytes(summary.Text!.Trim() + "\n"), BlobCondition.None, cancellationToken);
                entries.Add(new ManifestDocument(doc.Key, doc.Path, ManifestDocumentStatus.Summarized, name, summary.NumChunks, summary.NumStages, null, null));
            }
            else
            {
                entries.Add(new ManifestDocument(doc.Key, doc.Path, ManifestDocumentStatus.Error, null, summary.NumChunks, summary.NumStages, DocumentErrorCode.RequestFailed, summary.Error));
            }
        }
        entries.AddRange(errors.Select(e => new ManifestDocument(e.Key, e.Path, ManifestDocumentStatus.Error, null, 0, 0, e.Code, e.Message)));
        entries.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        int numSummarized = entries.Count(e => e.Status == ManifestDocumentStatus.Summarized);
        var manifest = new RunManifest(definition.Name, runId, startedAt, time.GetUtcNow(), entries.Count, numSummarized, entries.Count - numSummarized, entries, stages);
        await parts.Output.PutBytesAsync(RunManifest.BlobName(definition.Output, runId),
            JsonSerializer.SerializeToUtf8Bytes(manifest, PipelinesJson.Indented), BlobCondition.None, cancellationToken);
        return manifest;
    }
}
