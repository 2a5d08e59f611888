using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Webhooks;

namespace VicunaBatch.Core.Pipelines;

public enum StageKind
{
    Map,
    Reduce,
}

public enum ManifestDocumentStatus
{
    Summarized,
    Error,
}

/// <summary>One stage of a run: a batch job over every document still being summarized.</summary>
public sealed record ManifestStage(int Index, StageKind Kind, string JobId, int NumRequests, int NumFailed, DateTimeOffset StartedAt, DateTimeOffset FinishedAt);

/// <summary>One document of a run: its summary's blob name, or its error.</summary>
public sealed record ManifestDocument(
    string Key, string Path, ManifestDocumentStatus Status, string? Summary, int NumChunks, int NumStages, DocumentErrorCode? ErrorCode, string? Error);

/// <summary>What one run did, written to <c>{output prefix}_runs/{run id}/manifest.json</c>.</summary>
public sealed record RunManifest(
    string Pipeline, string RunId, DateTimeOffset StartedAt, DateTimeOffset FinishedAt,
    int NumDocuments, int NumSummarized, int NumErrors,
    IReadOnlyList<ManifestDocument> Documents, IReadOnlyList<ManifestStage> Stages)
{
    public static string BlobName(PipelineLocation output, string runId) => $"{output.Prefix}_runs/{runId}/manifest.json";
}

/// <summary>
/// The run-end webhook: <c>{id, object:"event", type:"pipeline.run.completed"|"pipeline.run.failed", created_at,
/// data:{pipeline, run_id, num_documents, num_summarized, num_errors, manifest, error}}</c>, to the outbox as a
/// <see cref="WebhookDelivery"/> whose job id is the run id (the deliverer signs it with the pipeline's secret).
/// </summary>
public static class PipelineRunEvent
{
    public const string Completed = "pipeline.run.completed";
    public const string Failed = "pipeline.run.failed";

    public static WebhookDelivery For(PipelineDefinition definition, string runId, string type, DateTimeOffset at, RunManifest? manifest, string? error)
    {
        var id = "evt_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{runId}/{type}")))[..32];
        var payload = JsonSerializer.Serialize(new Wire(id, "event", type, at.ToUnixTimeSeconds(), new WireData(
            definition.Name, runId, manifest?.NumDocuments ?? 0, manifest?.NumSummarized ?? 0, manifest?.NumErrors ?? 0,
            manifest is null ? null : RunManifest.BlobName(definition.Output, runId), error)), PipelinesJson.Options);
        return new WebhookDelivery(id, type, runId, definition.Webhook!.Url, payload);
    }

    internal sealed record Wire(string Id, string Object, string Type, long CreatedAt, WireData Data);

    internal sealed record WireData(
        string Pipeline, string RunId, int NumDocuments, int NumSummarized, int NumErrors, string? Manifest, string? Error);
}
