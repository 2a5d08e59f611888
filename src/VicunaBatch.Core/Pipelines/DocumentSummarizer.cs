using VicunaBatch.Core.Formats;

namespace VicunaBatch.Core.Pipelines;

/// <summary>A document's final summary, or the failed request that ended it.</summary>
public sealed record DocumentSummary(PipelineDocument Document, string? Text, string? Error, int NumChunks, int NumStages)
{
    public bool Succeeded => Text is not null;
}

/// <summary>
/// Map-reduce over documents, one batch job per stage for all documents at once. Map: one request per chunk. Reduce:
/// a document's pieces (summaries) are grouped greedily while the group fits <c>chunk_tokens</c> — each piece capped at
/// half of it, so every group holds at least two and each stage shrinks the count — and each group of two or more is
/// summarized; a lone last piece waits for the next stage. Stages repeat until every document has one piece.
/// </summary>
internal sealed class DocumentSummarizer(PipelineDefinition definition, PipelineParts parts, string runId, TimeProvider time)
{
    private const string Separator = "\n\n";

    private sealed class Progress(PipelineDocument document, List<string> pieces, int numChunks)
    {
        public PipelineDocument Document { get; } = document;
        public List<string> Pieces { get; set; } = pieces;
        public int NumChunks { get; } = numChunks;
        public int NumStages { get; set; }
        public string? Error { get; set; }
    }

    public async Task<(IReadOnlyDictionary<string, DocumentSummary>, IReadOnlyList<ManifestStage>)> RunAsync(
        IReadOnlyList<PipelineDocument> documents, CancellationToken cancellationToken)
    {
        var progress = documents.Select(d =>
        {
            var chunks = TokenChunker.Split(parts.Tokenizer, d.Text, definition.Chunking).Select(c => c.Text).ToList();
            return new Progress(d, chunks, chunks.Count);
        }).ToList();
        var stages = new List<ManifestStage>();
        for (int stage = 0; progress.Any(p => p.Error is null && (stage == 0 || p.Pieces.Count > 1)); stage++)
        {
            var kind = stage == 0 ? StageKind.Map : StageKind.Reduce;
            var requests = new List<StageRequest>();
            var plans = new List<(Progress Doc, List<object> Next)>(); // Next: string (carried piece) or StageRequest
            for (int d = 0; d < progress.Count; d++)
            {
                var doc = progress[d];
                if (doc.Error is not null || (stage > 0 && doc.Pieces.Count == 1)) continue;
                var next = new List<object>();
                var groups = stage == 0 ? doc.Pieces.Select(p => new List<string> { p }).ToList() : Group(doc.Pieces);
                foreach (var group in groups)
                {
                    if (stage > 0 && group.Count == 1) { next.Add(group[0]); continue; }
                    var template = stage == 0 ? definition.Prompt : definition.ReducePrompt;
                    var request = new StageRequest($"d{d}-s{stage}-p{next.Count}", template.Render(string.Join(Separator, group), doc.Document.Title, doc.Document.Path));
                    requests.Add(request);
                    next.Add(request);
                }
                doc.NumStages++;
                plans.Add((doc, next));
            }

            var jobId = $"{runId}-s{stage}";
            var startedAt = time.GetUtcNow();
            var (_, answers) = await parts.Stages.RunAsync(jobId, requests, definition.MaxTokens, definition.Temperature,
                new Dictionary<string, string> { ["pipeline"] = definition.Name, ["pipeline_run"] = runId, ["stage"] = $"{stage}" }, cancellationToken);
            stages.Add(new ManifestStage(stage, kind, jobId, requests.Count, requests.Count(r => !answers[r.CustomId].Succeeded), startedAt, time.GetUtcNow()));

            foreach (var (doc, next) in plans)
            {
                var failed = next.OfType<StageRequest>().Select(r => answers[r.CustomId]).FirstOrDefault(a => !a.Succeeded);
                if (failed is not null) doc.Error = $"{kind.SnakeCase()} stage {stage} ({jobId}), {failed.CustomId}: {failed.Error}";
                else doc.Pieces = next.Select(n => n as string ?? answers[((StageRequest)n).CustomId].Text!.Trim()).ToList();
            }
        }
        var result = progress.ToDictionary(
            p => p.Document.Key,
            p => new DocumentSummary(p.Document, p.Error is null ? p.Pieces.Single() : null, p.Error, p.NumChunks, p.NumStages),
            StringComparer.Ordinal);
        return (result, stages);
    }

    /// <summary>Consecutive pieces, greedily, while their tokens fit <c>chunk_tokens</c>; a piece over half of it is cut to half.</summary>
    internal List<List<string>> Group(IReadOnlyList<string> pieces)
    {
        int budget = definition.Chunking.ChunkTokens, cap = budget / 2;
        var groups = new List<List<string>>();
        var current = new List<string>();
        int used = 0;
        foreach (var piece in pieces)
        {
            var ids = parts.Tokenizer.Encode(piece);
            var text = ids.Count > cap ? parts.Tokenizer.Decode(ids.Take(cap).ToList()) : piece;
            int numTokens = Math.Min(ids.Count, cap);
            if (current.Count > 0 && used + numTokens > budget)
            {
                groups.Add(current);
                (current, used) = ([], 0);
            }
            current.Add(text);
            used += numTokens;
        }
        if (current.Count > 0) groups.Add(current);
        return groups;
    }
}
