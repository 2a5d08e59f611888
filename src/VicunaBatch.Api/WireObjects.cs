using System.Text.Json.Nodes;
using System.Text.Json;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;

namespace VicunaBatch.Api;

/// <summary>OpenAI's file object; <see cref="ExpiresAt"/> is null for a file that never expires.</summary>
internal sealed record FileObject(string Id, long Bytes, long CreatedAt, long? ExpiresAt, string Filename, string Purpose)
{
    public string Object => "file";
    public string Status => "processed";
    public object? StatusDetails => null;

    public static FileObject From(StoredFile file) => new(file.Id, file.Bytes, file.CreatedAt, file.ExpiresAt, file.Filename, file.Purpose.SnakeCase());
}

/// <summary>OpenAI's list of files: a cursor page (<c>after</c> = <see cref="LastId"/> for the next).</summary>
internal sealed record FileListObject(IReadOnlyList<FileObject> Data, string? FirstId, string? LastId, bool HasMore)
{
    public string Object => "list";

    public static FileListObject From(FilePage page)
    {
        var data = page.Items.Select(FileObject.From).ToList();
        return new(data, data.FirstOrDefault()?.Id, data.LastOrDefault()?.Id, page.HasMore);
    }
}

/// <summary>OpenAI's answer to <c>DELETE /v1/files/{id}</c>.</summary>
internal sealed record FileDeletedObject(string Id)
{
    public string Object => "file";
    public bool Deleted => true;
}

/// <summary>The dry run report on the wire (<c>POST /v1/batches/validate</c>).</summary>
internal sealed record ValidationObject(
    bool Valid, int NumLines, int NumRequests, int NumInvalid, IReadOnlyList<ValidationObject.LineProblem> Errors,
    IReadOnlyList<string> DuplicateCustomIds, int? ContextLength, IReadOnlyList<LinePromptTokens>? PromptTokens,
    int? NumOverContext, IReadOnlyList<LinePromptTokens>? OverContext)
{
    public string Object => "batch.validation";

    public sealed record LineProblem(int Line, string CustomId, string Code, string Message, string? Param);

    public static ValidationObject From(DryRunReport report)
    {
        bool counted = report.ContextLength is not null;
        return new(report.IsValid, report.NumLines, report.NumRequests, report.NumInvalid,
            report.Errors.Select(e => new LineProblem(e.LineNumber, e.CustomId, e.Code.SnakeCase(), e.Message, e.Param)).ToList(),
            report.DuplicateCustomIds, report.ContextLength, counted ? report.PromptTokens : null,
            counted ? report.NumOverContext : null, counted ? report.OverContext : null);
    }

    /// <summary>One line for an error message: the counts and the first few reasons.</summary>
    public static string Summarize(DryRunReport report, string fileId)
    {
        if (report.NumRequests == 0 && report.NumInvalid == 0) return $"Input file {fileId} has no requests.";
        var reasons = string.Join("; ", report.Errors.Take(5).Select(e => $"line {e.LineNumber}: {e.Code.SnakeCase()}: {e.Message}"));
        var more = report.NumInvalid > 5 ? $"; and {report.NumInvalid - 5} more" : "";
        return $"Input file {fileId} has {report.NumInvalid} invalid line(s) of {report.NumInvalid + report.NumRequests}: {reasons}{more}.";
    }
}

/// <summary>
/// The batch object of a tenant's job: the stored <see cref="BatchJob"/> with file ids instead of blob names
/// (a finished job's output and error blobs are registered as the owner's files on first sight) and current progress.
/// </summary>
internal sealed class BatchObjects(TenantBatches batches, FileCatalog files)
{
    public async Task<JsonObject> RenderAsync(BatchJob job, BatchRecord record, CancellationToken cancellationToken)
    {
        job = await batches.WithCurrentProgressAsync(job, cancellationToken);
        job = await batches.WithFileIdsAsync(job, files, cancellationToken);
        var node = JsonSerializer.SerializeToNode(job, JobsJson.Options)!.AsObject();
        node["input_file_id"] = record.InputFileId;
        return node;
    }
}
