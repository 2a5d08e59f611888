using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace VicunaBatch.Api;

/// <summary>
/// Reads a multipart/form-data body section by section without buffering it: small fields are collected,
/// the <c>file</c> part is handed to <c>onFile</c> as a stream as it arrives, with the fields
/// that preceded it; afterwards the result maps <c>file</c> to its file name.
/// A body past <c>maxBytes</c> (counted as it is read: a chunked body has no Content-Length), one that breaks off or
/// does not parse, one of more than <see cref="MaxParts"/> parts, or a part name sent twice throws
/// <see cref="RequestBodyException"/> — from inside <c>onFile</c>'s stream too, so what it was writing is dropped. A file
/// <c>onFile</c> stored before such a throw is the caller's to delete.
/// </summary>
internal static class MultipartUpload
{
    private const int MaxFieldLength = 4096;

    /// <summary>RFC 2046's longest boundary.</summary>
    private const int MaxBoundaryLength = 70;

    /// <summary>Parts in one body: OpenAI's upload has two (<c>file</c>, <c>purpose</c>); this leaves room and bounds the fields kept.</summary>
    public const int MaxParts = 16;

    /// <summary>Null when the request is not multipart (the caller answers 400).</summary>
    public static async Task<Dictionary<string, string>?> ReadAsync(
        HttpRequest request, long maxBytes, Func<string, Stream, IReadOnlyDictionary<string, string>, Task> onFile, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out var contentType)
            || !contentType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(contentType.Boundary).Value is not { Length: > 0 } boundary)
            return null;
        // the limit is counted here, where a host has no such feature too; Kestrel, with none of its own, then drains what
        // the client still sends after a 413 (to nowhere, for at most its 5 s), so the client reads the answer, not a reset
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
            limit.MaxRequestBodySize = null;
        if (boundary.Length > MaxBoundaryLength) throw RequestBodyException.Malformed($"the boundary is longer than {MaxBoundaryLength} characters.");
        if (request.ContentLength > maxBytes) throw RequestBodyException.TooLarge(maxBytes);

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new MultipartReader(boundary, new RequestBodyStream(request.Body, maxBytes)) { BodyLengthLimit = null };
        int numParts = 0;
        while (await ParsingAsync(reader.ReadNextSectionAsync(cancellationToken)) is { } section)
        {
            if (++numParts > MaxParts) throw RequestBodyException.Malformed($"more than {MaxParts} parts.");
            if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)) continue;
            var name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
            if (fields.ContainsKey(name)) throw RequestBodyException.DuplicatePart(name);
            var body = new RequestBodyStream(section.Body, null); // the reader's own "unexpected end" is the client's too
            if (disposition.IsFileDisposition())
            {
                var fileName = FileNameOf(disposition);
                if (name == "file") await onFile(fileName, body, fields);
                else await body.CopyToAsync(Stream.Null, cancellationToken);
                fields[name] = fileName;
                continue;
            }
            using var text = new StreamReader(body);
            var buffer = new char[MaxFieldLength + 1];
            int read = await text.ReadBlockAsync(buffer, cancellationToken);
            fields[name] = new string(buffer, 0, Math.Min(read, MaxFieldLength));
        }
        return fields;
    }

    /// <summary>The part's file name without folders; control characters (which no response header may carry) become '_'.</summary>
    private static string FileNameOf(ContentDispositionHeaderValue disposition)
    {
        var given = HeaderUtilities.RemoveQuotes(disposition.FileNameStar.HasValue ? disposition.FileNameStar : disposition.FileName).Value;
        var name = Path.GetFileName(given ?? "");
        return name.Length == 0 ? "upload.jsonl" : string.Concat(name.Select(c => char.IsControl(c) ? '_' : c));
    }

    /// <summary>The reader's own parse errors (a missing boundary, a bad header line) as the client's.</summary>
    private static async Task<T> ParsingAsync<T>(Task<T> read)
    {
        try { return await read; }
        catch (Exception e) when (e is IOException or InvalidDataException) { throw RequestBodyException.Malformed(e.Message, e); }
    }
}
