using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Api;

/// <summary><c>/v1/files</c>: upload (streamed into the blob store), metadata, content.</summary>
internal static class FileHandlers
{
    /// <summary>
    /// The content is streamed into its blob as the file part arrives (the OpenAI SDKs send it before <c>purpose</c>) and
    /// becomes a file only when the request is accepted; refused, failed or abandoned (the client went away), the blob
    /// is deleted, so nothing that no file names is left.
    /// </summary>
    public static async Task<IResult> UploadAsync(HttpContext context, FileCatalog files, ApiOptions options, CancellationToken cancellationToken)
    {
        var owner = ApiKeyFilter.TenantOf(context);
        StoredFile? upload = null;
        try
        {
            var fields = await MultipartUpload.ReadAsync(context.Request, options.MaxUploadBytes,
                async (filename, content, _) => upload = await files.UploadContentAsync(filename, content, cancellationToken), cancellationToken);
            if (Refusal(fields, upload) is { } refusal)
            {
                if (upload is not null) await files.DeleteContentAsync(upload, CancellationToken.None);
                return refusal;
            }
            var file = await files.RegisterUploadAsync(upload! with { Owner = owner, Purpose = FilePurpose.Batch }, cancellationToken);
            return Results.Json(FileObject.From(file), ApiJson.Options);
        }
        catch (Exception) when (upload is not null)
        {
            try { await files.DeleteContentAsync(upload, CancellationToken.None); }
            catch (BlobStoreException) { } // the first failure is the one to answer
            throw;
        }
    }

    private static IResult? Refusal(Dictionary<string, string>? fields, StoredFile? upload)
    {
        if (fields is null) return ApiErrors.BadRequest("Expected a multipart/form-data body with 'file' and 'purpose'.");
        if (upload is null) return ApiErrors.BadRequest("Missing required parameter: 'file'.", "file");
        if (!fields.TryGetValue("purpose", out var purpose)) return ApiErrors.BadRequest("Missing required parameter: 'purpose'.", "purpose");
        return purpose == "batch" ? null
            : ApiErrors.BadRequest($"Invalid purpose '{BatchCreateBody.Abbreviate(purpose)}': only 'batch' is supported.", "purpose");
    }

    public static async Task<IResult> GetAsync(HttpContext context, string fileId, FileCatalog files, CancellationToken cancellationToken) =>
        await files.GetAsync(ApiKeyFilter.TenantOf(context), fileId, cancellationToken) is { } file
            ? Results.Json(FileObject.From(file), ApiJson.Options)
            : ApiErrors.NotFound("file", fileId, "file_id");

    public static async Task<IResult> GetContentAsync(HttpContext context, string fileId, FileCatalog files, CancellationToken cancellationToken)
    {
        if (await files.GetAsync(ApiKeyFilter.TenantOf(context), fileId, cancellationToken) is not { } file)
            return ApiErrors.NotFound("file", fileId, "file_id");
        var content = await files.OpenReadAsync(file, cancellationToken);
        return Results.Stream(content, "application/octet-stream", file.Filename);
    }
}
