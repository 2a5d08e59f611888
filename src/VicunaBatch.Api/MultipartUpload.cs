using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace VicunaBatch.Api;

/// <summary>
/// Reads a multipart/form-data body section by section without buffering it: small fields are collected,
/// the <c>file</c> part is handed to <c>onFile</c> as a stream as it arrives, with the fields
/// that preceded it; afterwards the result maps <c>file</c> to its file name.
/// </summary>
internal static class MultipartUpload
{
    private const int MaxFieldLength = 4096;

    /// <summary>Null when the request is not multipart (the caller answers 400).</summary>
    public static async Task<Dictionary<string, string>?> ReadAsync(
        HttpRequest request, long maxBytes, Func<string, Stream, IReadOnlyDictionary<string, string>, Task> onFile, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
            return null;
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = maxBytes;

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new MultipartReader(boundary, request.Body) { BodyLengthLimit = null };
        while (await reader.ReadNextSectionAsync(cancellationToken) is { } section)
        {
            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)) continue;
            var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
            if (disposition.IsFileDisposition())
            {
                var filename = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
                var fileName = Path.GetFileName(filename ?? "upload.jsonl");
                if (name == "file") await onFile(fileName, section.Body, fields);
                else await section.Body.CopyToAsync(Stream.Null, cancellationToken);
                fields[name] = fileName;
                continue;
            }
            using var text = new StreamReader(section.Body);
            var buffer = new char[MaxFieldLength + 1];
            int read = await text.ReadBlockAsync(buffer, cancellationToken);
            fields[name] = new string(buffer, 0, Math.Min(read, MaxFieldLength));
        }
        return fields;
    }
}
