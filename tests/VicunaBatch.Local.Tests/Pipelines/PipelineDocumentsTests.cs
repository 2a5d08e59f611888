using System.Text;
using VicunaBatch.Core.Pipelines;

namespace VicunaBatch.Local.Tests.Pipelines;

/// <summary>Finding and reading a source folder's documents through the folder blob store.</summary>
public sealed class PipelineDocumentsTests : IDisposable
{
    private readonly TempFolder _folder = new();
    private readonly FolderBlobStore _source;

    public PipelineDocumentsTests() => _source = new FolderBlobStore(new FolderBlobStoreOptions { RootPath = _folder.Path });

    public void Dispose() => _folder.Dispose();

    private static PipelineDefinition Definition(string extra = "") => PipelineDefinition.Parse(
        $$"""{"name":"n","source":{"folder":"x","text_field":"body"},"prompt":"{text}","output":{"folder":"o"},"max_document_bytes":128{{extra}}}""");

    private void Write(string name, string text) => Write(name, Encoding.UTF8.GetBytes(text));

    private void Write(string name, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_folder.Combine(name))!);
        File.WriteAllBytes(_folder.Combine(name), bytes);
    }

    [Fact]
    public async Task FindChangedAsync_onlyConfiguredTypesNotInTheWatermark()
    {
        Write("a.txt", "alpha");
        Write("sub/b.md", "# Bee\nbody");
        Write("c.pdf", "no");
        Write("a.txt.summary.md", "ours");
        Write(".state/blobs/x.md", "state");
        Write("d.jsonl", "{\"body\":\"d\"}");
        var documents = new PipelineDocuments(_source, Definition());

        var all = await documents.FindChangedAsync(PipelineWatermark.Empty);
        Assert.Equal(["a.txt", "d.jsonl", "sub/b.md"], all.Select(f => f.Path));

        var seen = new PipelineWatermark(all.Where(f => f.Path != "d.jsonl").ToDictionary(f => f.Path, f => f.ETag), null, null);
        Assert.Equal(["d.jsonl"], (await documents.FindChangedAsync(seen)).Select(f => f.Path));

        File.SetLastWriteTimeUtc(_folder.Combine("a.txt"), DateTime.UtcNow.AddMinutes(1)); // changed: new ETag
        Assert.Equal(["a.txt", "d.jsonl"], (await documents.FindChangedAsync(seen)).Select(f => f.Path));
    }

    [Fact]
    public async Task ReadAsync_badFilesBecomeErrorsAndJsonlLinesBecomeDocuments()
    {
        Write("empty.txt", "  \n");
        Write("binary.txt", [0x66, 0xFF, 0xFE, 0x00]);
        Write("big.md", new string('x', 129));
        Write("notes.md", "intro\n# Title here\ntext");
        Write("lines.jsonl", "{\"body\":\"one\",\"title\":\"First\"}\n\n{\"body\":\"\"}\nnot json\n{\"other\":1}\n{\"body\":\"five\"}\n");
        var documents = new PipelineDocuments(_source, Definition());
        var results = new Dictionary<string, (IReadOnlyList<PipelineDocument> Docs, IReadOnlyList<DocumentError> Errors)>();
        foreach (var file in await documents.FindChangedAsync(PipelineWatermark.Empty)) results[file.Path] = await documents.ReadAsync(file);

        Assert.Equal(DocumentErrorCode.Empty, Assert.Single(results["empty.txt"].Errors).Code);
        var binary = Assert.Single(results["binary.txt"].Errors);
        Assert.Equal(DocumentErrorCode.Unreadable, binary.Code);
        Assert.StartsWith("not UTF-8 text: ", binary.Message);
        Assert.Equal(new DocumentError("big.md", "big.md", DocumentErrorCode.TooLarge, "129 bytes is over max_document_bytes (128)"), Assert.Single(results["big.md"].Errors));
        Assert.Equal(new PipelineDocument("notes.md", "notes.md", "Title here", "intro\n# Title here\ntext", "notes.md.summary.md"), Assert.Single(results["notes.md"].Docs));

        var (docs, errors) = results["lines.jsonl"];
        Assert.Equal(
            [("lines.jsonl#L1", "First", "one", "lines.jsonl.L1.summary.md"), ("lines.jsonl#L6", "lines line 6", "five", "lines.jsonl.L6.summary.md")],
            docs.Select(d => (d.Key, d.Title, d.Text, d.SummaryName)));
        Assert.Equal(
            [("lines.jsonl#L3", DocumentErrorCode.Empty), ("lines.jsonl#L4", DocumentErrorCode.Unreadable), ("lines.jsonl#L5", DocumentErrorCode.Unreadable)],
            errors.Select(e => (e.Key, e.Code)));
        Assert.Equal("line 5 has no string field \"body\"", errors[2].Message);
    }
}
