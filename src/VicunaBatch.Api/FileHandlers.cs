using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Files;

namespace VicunaBatch.Api;

/// <summary><c>/v1/files</c>: upload (streamed into the blob store), metadata, content.</summary>
internal static class FileHandlers
{
    public static async Task<IResult> UploadAsync(HttpContext context, FileCatalog files, ApiOptions options, CancellationToken cancellationToken)
    {
        var owner = ApiKeyFilter.TenantOf(context);
        StoredFile? upload = null;
        var fields = await MultipartUpload.ReadAsync(context.Request, options.MaxUploadBytes,
            async (filename, content, _) => upload = await files.UploadContentAsync(filename, content, cancellationToken), cancellationToken);
        if (fields is null) return ApiErrors.BadRequest("Expected a multipart/form-data body with 'file' and 'purpose'.");
        if (upload is null) return ApiErrors.BadRequest("Missing required parameter: 'file'.", "file");
        if (!fields.TryGetValue("purpose", out var purpose) || purpose != "batch")
        {
            await files.DeleteContentAsync(upload, CancellationToken.None);
            return ApiErrors.BadRequest(purpose is null ? "Missing required parameter: 'purpose'." : $"Invalid purpose '{purpose}': only 'batch' is supported.", "purpose");
        }
        upload = await files.RegisterUploadAsync(upload with { Owner = owner, Purpose = FilePurpose.Batch }, cancellationToken);
        return Results.Json(FileObject.From(upload), ApiJson.Options);
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
