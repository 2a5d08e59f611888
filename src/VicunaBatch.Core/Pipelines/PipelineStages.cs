using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;

namespace VicunaBatch.Core.Pipelines;

/// <summary>One prompt of a stage.</summary>
public sealed record StageRequest(string CustomId, string Prompt);

/// <summary>One line of a stage's batch input (the simple format).</summary>
internal sealed record StageInputLine(string CustomId, string Prompt, int MaxTokens, float Temperature);

/// <summary>The answer to a <see cref="StageRequest"/>: its text, or why there is none.</summary>
public sealed record StageAnswer(string CustomId, string? Text, string? Error)
{
    public bool Succeeded => Text is not null;
}

/// <summary>A stage's job is still running when the host stopped waiting: the run resumes on the next tick.</summary>
public sealed class PipelineStageNotFinishedException(string jobId, JobStatus status)
    : Exception($"job {jobId} is still {status.SnakeCase()}; the run resumes on the next tick")
{
    public string JobId { get; } = jobId;
}

/// <summary>
/// A pipeline stage as a normal batch job: the prompts become a simple-format JSONL input blob, <see cref="JobSubmitter"/>
/// validates and queues it, the host's <see cref="IJobDriver"/> takes it to the end, and the answers come back from
/// output.jsonl / errors.jsonl. Idempotent per job id (a retried stage reuses its job).
/// </summary>
public sealed class PipelineStages(IBlobStore blobs, JobSubmitter submitter, IJobDriver driver)
{
    public async Task<(BatchJob Job, IReadOnlyDictionary<string, StageAnswer> Answers)> RunAsync(
        string jobId, IReadOnlyList<StageRequest> requests, int maxTokens, float temperature,
        IReadOnlyDictionary<string, string>? metadata, CancellationToken cancellationToken = default)
    {
        var input = new StringBuilder();
        foreach (var request in requests)
        {
            input.Append(JsonSerializer.Serialize(new StageInputLine(request.CustomId, request.Prompt, maxTokens, temperature), PipelinesJson.Options))
                .Append('\n');
        }
        var inputBlob = $"inputs/{jobId}.jsonl";
        try { await blobs.PutBytesAsync(inputBlob, Encoding.UTF8.GetBytes(input.ToString()), BlobCondition.IfNotExists, cancellationToken); }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed) { } // a retried stage: same job, same input

        var job = await submitter.SubmitAsync(new JobSubmission(inputBlob) { JobId = jobId, Metadata = metadata }, cancellationToken);
        if (!JobStateMachine.IsTerminal(job.Status)) job = await driver.RunToEndAsync(job, cancellationToken);
        if (!JobStateMachine.IsTerminal(job.Status)) throw new PipelineStageNotFinishedException(jobId, job.Status);

        var answers = new Dictionary<string, StageAnswer>(StringComparer.Ordinal);
        await foreach (var line in ReadLinesAsync(JobIds.OutputBlob(jobId), cancellationToken))
        {
            var root = line.RootElement;
            var id = root.GetProperty("custom_id").GetString()!;
            var choice = root.GetProperty("response").GetProperty("body").GetProperty("choices")[0];
            var text = choice.TryGetProperty("text", out var t) ? t.GetString() : choice.GetProperty("message").GetProperty("content").GetString();
            answers[id] = new StageAnswer(id, text ?? "", null);
        }
        await foreach (var line in ReadLinesAsync(JobIds.ErrorsBlob(jobId), cancellationToken))
        {
            var root = line.RootElement;
            var id = root.GetProperty("custom_id").GetString()!;
            // a failed request's error is its response body's; one that never ran has the top-level error
            var error = root.GetProperty("response") is { ValueKind: JsonValueKind.Object } response
                ? response.GetProperty("body").GetProperty("error") : root.GetProperty("error");
            answers.TryAdd(id, new StageAnswer(id, null, $"{error.GetProperty("code").GetString()}: {error.GetProperty("message").GetString()}"));
        }
        foreach (var request in requests)
            answers.TryAdd(request.CustomId, new StageAnswer(request.CustomId, null, $"no_result: job {jobId} ended {job.Status.SnakeCase()} without an answer"));
        return (job, answers);
    }

    private async IAsyncEnumerable<JsonDocument> ReadLinesAsync(string blob, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!await blobs.ExistsAsync(blob, cancellationToken)) yield break;
        var text = Encoding.UTF8.GetString(await blobs.ReadBytesAsync(blob, cancellationToken));
        foreach (var line in text.Split('\n'))
            if (line.Length > 0) yield return JsonDocument.Parse(line);
    }
}
