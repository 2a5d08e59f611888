using System.Globalization;
using Microsoft.AspNetCore.Http;
using VicunaBatch.Core.Files;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Api;

/// <summary><c>/v1/files</c>: upload (streamed into the blob store), list, metadata, content, delete.</summary>
internal static class FileHandlers
{
    /// <summary>OpenAI's bounds and default of <c>limit</c> on <c>GET /v1/files</c>.</summary>
    public const int MaxListLimit = 10_000;

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
            var (expiresAfter, refusal) = Refusal(fields, upload);
            if (refusal is not null)
            {
                if (upload is not null) await files.DeleteContentAsync(upload, CancellationToken.None);
                return refusal;
            }
            var file = await files.RegisterUploadAsync(upload! with { Owner = owner, Purpose = FilePurpose.Batch }, expiresAfter, cancellationToken);
            return Results.Json(FileObject.From(file), ApiJson.Options);
        }
        catch (Exception) when (upload is not null)
        {
            try { await files.DeleteContentAsync(upload, CancellationToken.None); }
            catch (BlobStoreException) { } // the first failure is the one to answer
            throw;
        }
    }

    /// <summary>The upload's <c>expires_after</c> seconds, or the 400 that refuses it.</summary>
    private static (long? ExpiresAfter, IResult? Refusal) Refusal(Dictionary<string, string>? fields, StoredFile? upload)
    {
        if (fields is null) return (null, ApiErrors.BadRequest("Expected a multipart/form-data body with 'file' and 'purpose'."));
        if (upload is null) return (null, ApiErrors.BadRequest("Missing required parameter: 'file'.", "file"));
        if (!fields.TryGetValue("purpose", out var purpose)) return (null, ApiErrors.BadRequest("Missing required parameter: 'purpose'.", "purpose"));
        if (purpose != "batch")
            return (null, ApiErrors.BadRequest($"Invalid purpose '{BatchCreateBody.Abbreviate(purpose)}': only 'batch' is supported.", "purpose"));
        var (seconds, error, param) = ExpiresAfterParam.FromForm(fields, "expires_after");
        return error is null ? (seconds, null) : (null, ApiErrors.BadRequest(error, param));
    }

    /// <summary><c>GET /v1/files?purpose&amp;limit&amp;order&amp;after</c>: the tenant's files as OpenAI lists them (newest first by default).</summary>
    public static async Task<IResult> ListAsync(HttpContext context, FileCatalog files, CancellationToken cancellationToken)
    {
        var query = context.Request.Query;
        int limit = MaxListLimit;
        if (query.TryGetValue("limit", out var text))
        {
            if (!int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out limit))
                return ApiErrors.BadRequest($"Invalid type for 'limit': expected an integer, but got '{BatchCreateBody.Abbreviate(text.ToString())}' instead.", "limit");
            if (limit is < 1 or > MaxListLimit)
                return ApiErrors.BadRequest($"Invalid 'limit': expected a value in [1, {MaxListLimit}], but got {limit} instead.", "limit");
        }
        var order = query.TryGetValue("order", out var o) ? o.ToString() : "desc";
        if (order is not ("asc" or "desc"))
            return ApiErrors.BadRequest($"Invalid value for 'order': '{BatchCreateBody.Abbreviate(order)}'. Supported values are: 'asc' and 'desc'.", "order");
        string? after = query.TryGetValue("after", out var a) && !string.IsNullOrEmpty(a) ? a.ToString() : null;
        string? purpose = query.TryGetValue("purpose", out var p) && !string.IsNullOrEmpty(p) ? p.ToString() : null;
        var page = await files.ListAsync(ApiKeyFilter.TenantOf(context), purpose, after, limit, order == "asc", cancellationToken);
        return Results.Json(FileListObject.From(page), ApiJson.Options);
    }

    public static async Task<IResult> GetAsync(HttpContext context, string fileId, FileCatalog files, CancellationToken cancellationToken) =>
        await files.GetAsync(ApiKeyFilter.TenantOf(context), fileId, cancellationToken) is { } file
            ? Results.Json(FileObject.From(file), ApiJson.Options)
            : ApiErrors.NotFound("file", fileId, "file_id");

    /// <summary><c>DELETE /v1/files/{id}</c>: the file is gone at once; a running batch made from it keeps reading its content
    /// (<see cref="FileCatalog.DeleteAsync"/>).</summary>
    public static async Task<IResult> DeleteAsync(HttpContext context, string fileId, FileCatalog files, CancellationToken cancellationToken) =>
        await files.DeleteAsync(ApiKeyFilter.TenantOf(context), fileId, cancellationToken)
            ? Results.Json(new FileDeletedObject(fileId), ApiJson.Options)
            : ApiErrors.NotFound("file", fileId, "file_id");

    public static async Task<IResult> GetContentAsync(HttpContext context, string fileId, FileCatalog files, CancellationToken cancellationToken)
    {
        if (await files.GetAsync(ApiKeyFilter.TenantOf(context), fileId, cancellationToken) is not { } file)
            return ApiErrors.NotFound("file", fileId, "file_id");
        var content = await files.OpenReadAsync(file, cancellationToken);
        return Results.Stream(content, "application/octet-stream", file.Filename);
    }
}
