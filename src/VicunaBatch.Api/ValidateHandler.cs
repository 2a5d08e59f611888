using System.Text.Json;
using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Batches;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Api;

/// <summary>
/// <c>POST /v1/batches/validate</c>: a dry run of an uploaded file (<c>{"input_file_id", "endpoint"?}</c>) or of a
/// multipart <c>file</c> (streamed, not stored; <c>endpoint</c> as a query parameter or a field before the file).
/// 200 with the report when the file would be accepted; 400 with the reasons and the same report when not.
/// </summary>
internal static class ValidateHandler
{
    public static async Task<IResult> ValidateAsync(
        HttpContext context, FileCatalog files, InputDryRun dryRun, ApiOptions options, CancellationToken cancellationToken)
    {
        var request = context.Request;
        string fileId;
        DryRunReport? report = null;
        if (request.HasFormContentType)
        {
            string? unsupported = null;
            var fields = await MultipartUpload.ReadAsync(request, options.MaxUploadBytes, async (filename, content, before) =>
            {
                var url = request.Query["endpoint"].FirstOrDefault() ?? before.GetValueOrDefault("endpoint");
                BatchEndpoint? expected = null;
                if (url is not null && BatchEndpoints.TryParseUrl(url, out var e)) expected = e;
                else if (url is not null) { unsupported = url; return; }
                report = await dryRun.RunAsync(content, InputOptions.FormatFromName(filename), expected, cancellationToken);
            }, cancellationToken);
            if (unsupported is not null) return UnsupportedEndpoint(unsupported);
            if (fields is null || report is null) return ApiErrors.BadRequest("Missing required parameter: 'file'.", "file");
            fileId = fields["file"];
        }
        else
        {
            if (await BatchHandlers.ReadJsonAsync(request, cancellationToken) is not { ValueKind: JsonValueKind.Object } root
                || !root.TryGetProperty("input_file_id", out var idElement) || idElement.ValueKind != JsonValueKind.String || idElement.GetString() is not { } id)
                return ApiErrors.BadRequest("Send JSON {\"input_file_id\": ..., \"endpoint\"?: ...} or a multipart 'file'.", "input_file_id");
            BatchEndpoint? expected = null;
            if (root.TryGetProperty("endpoint", out var endpointElement) && endpointElement.ValueKind == JsonValueKind.String)
            {
                if (!BatchEndpoints.TryParseUrl(endpointElement.GetString(), out var e)) return UnsupportedEndpoint(endpointElement.GetString()!);
                expected = e;
            }
            if (await files.GetAsync(ApiKeyFilter.TenantOf(context), id, cancellationToken) is not { } file)
                return ApiErrors.NotFound("file", id, "input_file_id");
            await using var content = await files.OpenReadAsync(file, cancellationToken);
            report = await dryRun.RunAsync(content, file.Format, expected, cancellationToken);
            fileId = file.Id;
        }
        var body = ValidationObject.From(report);
        return report.IsValid
            ? Results.Json(body, ApiJson.Options)
            : ApiErrors.BadRequest(ValidationObject.Summarize(report, fileId), "file", "invalid_input_file", body);
    }

    private static IResult UnsupportedEndpoint(string url) => ApiErrors.BadRequest(
        $"Unsupported endpoint '{url}': use '{BatchEndpoints.ChatCompletionsUrl}' or '{BatchEndpoints.CompletionsUrl}'.", "endpoint");
}
