using System.Text;
using System.Text.Json;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Pipelines;

public enum DocumentErrorCode
{
    Empty,
    Unreadable,
    TooLarge,
    RequestFailed,
}

/// <summary>A source file that changed since the watermark (<see cref="Path"/> is relative to the source prefix).</summary>
public sealed record SourceFile(string BlobName, string Path, string ETag, long Length);

/// <summary>One document to summarize: a .txt/.md file, or one line of a .jsonl file (<see cref="Key"/> <c>path#L3</c>).</summary>
public sealed record PipelineDocument(string Key, string Path, string Title, string Text, string SummaryName);

/// <summary>A document (or a whole file) that will not be summarized, and why.</summary>
public sealed record DocumentError(string Key, string Path, DocumentErrorCode Code, string Message);

/// <summary>Finds changed files of a pipeline's source and reads them into documents; bad files become errors, never exceptions.</summary>
public sealed class PipelineDocuments(IBlobStore source, PipelineDefinition definition)
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Files under the source prefix with a configured type (not <c>*.summary.md</c>, not in hidden folders) whose ETag differs from the watermark's, in name order.</summary>
    public async Task<IReadOnlyList<SourceFile>> FindChangedAsync(PipelineWatermark watermark, CancellationToken cancellationToken = default)
    {
        var prefix = definition.Source.Location.Prefix;
        var changed = new List<SourceFile>();
        await foreach (var name in source.ListAsync(prefix, cancellationToken))
        {
            var path = name[prefix.Length..];
            if (!definition.Source.FileTypes.Contains(System.IO.Path.GetExtension(path).ToLowerInvariant())) continue;
            // our own summaries (an output inside the source) and hidden folders such as .state/ are not documents
            if (path.EndsWith(".summary.md", StringComparison.OrdinalIgnoreCase) || path.Split('/').Any(s => s.StartsWith('.'))) continue;
            if (await source.GetPropertiesAsync(name, cancellationToken) is not { } properties) continue; // deleted meanwhile
            if (watermark.PathToETag.TryGetValue(path, out var seen) && seen == properties.ETag) continue;
            changed.Add(new SourceFile(name, path, properties.ETag, properties.Length));
        }
        return changed;
    }

    /// <summary>The documents of <paramref name="file"/>, or the errors that stand for it.</summary>
    public async Task<(IReadOnlyList<PipelineDocument> Documents, IReadOnlyList<DocumentError> Errors)> ReadAsync(
        SourceFile file, CancellationToken cancellationToken = default)
    {
        DocumentError Error(DocumentErrorCode code, string message, string? key = null) => new(key ?? file.Path, file.Path, code, message);
        if (file.Length > definition.MaxDocumentBytes)
            return ([], [Error(DocumentErrorCode.TooLarge, $"{file.Length} bytes is over max_document_bytes ({definition.MaxDocumentBytes})")]);
        string text;
        try { text = StrictUtf8.GetString(await source.ReadBytesAsync(file.BlobName, cancellationToken)); }
        catch (DecoderFallbackException e) { return ([], [Error(DocumentErrorCode.Unreadable, $"not UTF-8 text: {e.Message}")]); }
        catch (BlobStoreException e) when (!e.IsTransient) { return ([], [Error(DocumentErrorCode.Unreadable, e.Message)]); }
        catch (IOException e) { return ([], [Error(DocumentErrorCode.Unreadable, e.Message)]); }
        catch (UnauthorizedAccessException e) { return ([], [Error(DocumentErrorCode.Unreadable, e.Message)]); }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];

        if (System.IO.Path.GetExtension(file.Path).Equals(".jsonl", StringComparison.OrdinalIgnoreCase)) return ReadLines(file, text);
        if (string.IsNullOrWhiteSpace(text)) return ([], [Error(DocumentErrorCode.Empty, "the document has no text")]);
        return ([new PipelineDocument(file.Path, file.Path, TitleOf(file.Path, text), text, file.Path + ".summary.md")], []);
    }

    private (IReadOnlyList<PipelineDocument>, IReadOnlyList<DocumentError>) ReadLines(SourceFile file, string text)
    {
        var documents = new List<PipelineDocument>();
        var errors = new List<DocumentError>();
        var field = definition.Source.TextField;
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (line.Trim().Length == 0) continue;
            var key = $"{file.Path}#L{i + 1}";
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.String)
                {
                    errors.Add(new DocumentError(key, file.Path, DocumentErrorCode.Unreadable, $"line {i + 1} has no string field \"{field}\""));
                    continue;
                }
                var body = value.GetString()!;
                if (string.IsNullOrWhiteSpace(body))
                {
                    errors.Add(new DocumentError(key, file.Path, DocumentErrorCode.Empty, $"line {i + 1}: \"{field}\" is empty"));
                    continue;
                }
                var title = json.RootElement.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String
                    ? t.GetString()! : $"{System.IO.Path.GetFileNameWithoutExtension(file.Path)} line {i + 1}";
                documents.Add(new PipelineDocument(key, file.Path, title, body, $"{file.Path}.L{i + 1}.summary.md"));
            }
            catch (JsonException e)
            {
                errors.Add(new DocumentError(key, file.Path, DocumentErrorCode.Unreadable, $"line {i + 1} is not JSON: {e.Message}"));
            }
        }
        if (documents.Count == 0 && errors.Count == 0) errors.Add(new DocumentError(file.Path, file.Path, DocumentErrorCode.Empty, "the file has no lines"));
        return (documents, errors);
    }

    /// <summary>A Markdown file's first <c># heading</c>, else the file name without its extension.</summary>
    private static string TitleOf(string path, string text)
    {
        if (path.EndsWith(".md", StringComparison.OrdinalIgnoreCase))
            foreach (var line in text.Split('\n'))
                if (line.StartsWith("# ", StringComparison.Ordinal)) return line[2..].Trim();
        return System.IO.Path.GetFileNameWithoutExtension(path);
    }
}
