using System.Security.Cryptography;
using System.Text.Json.Nodes;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Execution;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Cli.Eval;

/// <summary>What one request of an evaluation's batch came to: the answer's text, or why there is none.</summary>
internal sealed record BatchAnswer(string? Text, RequestError? Error);

/// <summary>
/// Runs one JSONL file of chat requests as one batch job, to its end, resuming the job a rerun finds in
/// <c>jobFolder</c>, with progress on stderr; returns each request's answer by <c>custom_id</c>. Lines that name no
/// answer in the job's files (it failed, expired or was cancelled before them) are absent.
/// </summary>
internal interface IEvalBatchRunner
{
    Task<IReadOnlyDictionary<string, BatchAnswer>> RunAsync(string inputPath, string jobFolder, CancellationToken cancellationToken = default);
}

/// <summary>
/// The job on this machine, as <c>vicuna-batch run</c> runs one (<see cref="LocalJobRun"/>, its state in
/// <c>jobFolder/.state/</c>): the same input and settings make the same job, so a rerun resumes it and a finished one is
/// only read.
/// </summary>
internal sealed class LocalBatchRunner(ModelChoice model, EngineOptions engine, int workers) : IEvalBatchRunner
{
    public async Task<IReadOnlyDictionary<string, BatchAnswer>> RunAsync(string inputPath, string jobFolder, CancellationToken cancellationToken = default)
    {
        var settings = new LocalRunSettings(inputPath, model, jobFolder, new RequestDefaults(), engine, workers, new InputOptions());
        ProgressLine? bar = null;
        try
        {
            var summary = await new LocalJobRun(settings, TimeProvider.System).RunAsync((done, failed, total, tokens) =>
            {
                bar ??= new ProgressLine(total);
                bar.Report(done + failed, tokens, failed);
            }, cancellationToken: cancellationToken);
            bar?.Clear();
            Console.Error.WriteLine($"  {ClientCommands.StatusLine(summary.Job)}{(summary.EndedBefore ? "; it had already ended: nothing was run now" : "")}");
        }
        finally
        {
            bar?.Clear();
        }
        return BatchResultFiles.Read(jobFolder);
    }
}

/// <summary>
/// The job on a batch API (ours or OpenAI's): the input uploaded and a batch created for it, its id kept in
/// <c>jobFolder/batch.json</c> with the input's hash, so a rerun with the same input waits for that batch again (unless
/// it failed, expired or was cancelled, or the API no longer knows it: then a new one runs) instead of paying for it twice.
/// </summary>
internal sealed class ApiBatchRunner(BatchApiClient client) : IEvalBatchRunner
{
    public async Task<IReadOnlyDictionary<string, BatchAnswer>> RunAsync(string inputPath, string jobFolder, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(jobFolder);
        var recordPath = Path.Combine(jobFolder, "batch.json");
        var inputHash = Convert.ToHexStringLower(SHA256.HashData(await File.ReadAllBytesAsync(inputPath, cancellationToken)));
        string? batchId = null;
        if (File.Exists(recordPath) && JsonNode.Parse(await File.ReadAllTextAsync(recordPath, cancellationToken)) is JsonObject record
            && record["input_sha256"]?.GetValue<string>() == inputHash && record["url"]?.GetValue<string>() == client.BaseUrl.AbsoluteUri)
        {
            batchId = record["batch_id"]?.GetValue<string>();
            try
            {
                var job = ClientCommands.ToJob(await client.GetBatchAsync(batchId!, cancellationToken));
                if (job.Status is JobStatus.Failed or JobStatus.Expired or JobStatus.Cancelled)
                {
                    Console.Error.WriteLine($"  batch {batchId} ended {job.Status.SnakeCase()}: submitting the input again");
                    batchId = null;
                }
                else
                {
                    Console.Error.WriteLine($"  resuming batch {batchId} ({job.Status.SnakeCase()})");
                }
            }
            catch (ApiClientException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                // the API no longer has it (another key, a data folder started afresh): nothing to resume
                Console.Error.WriteLine($"  batch {batchId} is unknown to {client.BaseUrl} ({e.Message}): submitting the input again");
                batchId = null;
            }
        }
        if (batchId is null)
        {
            var fileId = await client.UploadAsync(inputPath, cancellationToken);
            var created = await client.CreateBatchAsync(fileId, BatchEndpoints.ChatCompletionsUrl, null, new Dictionary<string, string>(), cancellationToken);
            batchId = created["id"]?.GetValue<string>() ?? throw new ApiClientException("the server's batch object has no id");
            EvalFolder.WriteAtomically(recordPath, System.Text.Encoding.UTF8.GetBytes(new JsonObject
            {
                ["batch_id"] = batchId, ["input_sha256"] = inputHash, ["url"] = client.BaseUrl.AbsoluteUri,
            }.ToJsonString() + "\n"));
            Console.Error.WriteLine($"  batch {batchId} submitted to {client.BaseUrl}");
        }
        var (node, ended) = await ClientCommands.WaitForEndAsync(client, batchId, cancellationToken);
        await ClientCommands.DownloadFilesAsync(client, node, ended, jobFolder, cancellationToken);
        Console.Error.WriteLine($"  {ClientCommands.StatusLine(ended)}");
        foreach (var error in ended.Errors?.Data ?? []) Console.Error.WriteLine($"    {error.Code}: {error.Message}");
        return BatchResultFiles.Read(jobFolder);
    }
}

/// <summary>
/// Reads a batch's <c>output.jsonl</c> and <c>errors.jsonl</c> (OpenAI's batch output shape, ours or OpenAI's) into each
/// request's answer: a 200 chat completion's first message, else the error line's code and message.
/// </summary>
internal static class BatchResultFiles
{
    public static IReadOnlyDictionary<string, BatchAnswer> Read(string folder)
    {
        var answers = new Dictionary<string, BatchAnswer>(StringComparer.Ordinal);
        foreach (var name in new[] { "output.jsonl", "errors.jsonl" })
        {
            var path = Path.Combine(folder, name);
            if (!File.Exists(path)) continue;
            foreach (var (line, where) in EvalJsonLines.Read(path))
            {
                if (line["custom_id"]?.GetValue<string>() is not { } customId) continue;
                answers[customId] = AnswerOf(line, where);
            }
        }
        return answers;
    }

    private static BatchAnswer AnswerOf(JsonObject line, string where)
    {
        var response = line["response"] as JsonObject;
        var body = response?["body"] as JsonObject;
        if (response?["status_code"]?.GetValue<int>() == 200 && body?["choices"]?[0]?["message"]?["content"] is JsonValue content)
            return new BatchAnswer(content.GetValue<string>(), null);
        var error = body?["error"] as JsonObject ?? line["error"] as JsonObject;
        return error is not null
            ? new BatchAnswer(null, new RequestError(error["code"]?.GetValue<string>() ?? "error", error["message"]?.GetValue<string>() ?? ""))
            : new BatchAnswer(null, new RequestError("no_answer", $"{where}: the line holds neither a chat completion nor an error"));
    }
}
