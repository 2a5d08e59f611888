using System.Text.Json;
using System.Text;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Pipelines;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Webhooks;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Local.Tests;
using VicunaBatch.Local.Tests.Webhooks;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// <c>pipeline run</c> in process on the embedded tiny model with a 192-token context (--max-sequence-length), so that
/// a few hundred words are "several times the context" and reduction recurses. Greedy decoding makes every count exact.
/// </summary>
public sealed class PipelineRunTests : IDisposable
{
    private const string Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string Docs => Path.Combine(_folder.Root, "docs");

    private string WriteDefinition(string? webhookUrl = null, int chunkTokens = 64, int maxTokens = 16)
    {
        var webhook = webhookUrl is null ? "" : $$""","webhook":{"url":"{{webhookUrl}}","secret":"{{Secret}}"}""";
        var path = Path.Combine(_folder.Root, "pipeline.json");
        File.WriteAllText(path, $$"""
            {"name":"test-notes","source":{"folder":"unused"},"prompt":"Summarize {title}:\n{text}\nSummary:",
             "reduce_prompt":"Combine:\n{text}\nSummary:","max_tokens":{{maxTokens}},"output":{"folder":"unused-out"},
             "max_document_bytes":20000,"chunking":{"chunk_tokens":{{chunkTokens}},"overlap_tokens":8}{{webhook}}}
            """);
        return path;
    }

    private LocalPipelineSettings Settings(string definition) => new(
        definition, Docs, _folder.Out, ModelChoice.Default, new EngineOptions { MaxSequenceLength = 192 }, Workers: 2);

    private void WriteDoc(string name, string text) => WriteDoc(name, Encoding.UTF8.GetBytes(text));

    private void WriteDoc(string name, byte[] bytes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(Docs, name))!);
        File.WriteAllBytes(Path.Combine(Docs, name), bytes);
    }

    /// <summary>
    /// The stage sizes the summarizer's rule gives this run's own answers, replayed from the stage jobs' output files: map,
    /// one request per chunk; then, stage after stage, a document's pieces grouped greedily while their tokens (each piece
    /// cut to half of <paramref name="chunkTokens"/>) fit <paramref name="chunkTokens"/>, one request per group of two or
    /// more and a lone piece carried to the next stage, until each document has one piece. The counts follow the model's
    /// summaries whatever their lengths; <c>Carried</c> counts the lone pieces.
    /// </summary>
    private (List<int> Sizes, int Carried) ReplayStages(RunManifest m, int chunkTokens)
    {
        var tokenizer = new VicunaBatch.Execution.TokenizerDocuments(
            VicunaBatch.Inference.Text.TextTokenizer.Load(Path.Combine(Checkout.Root, "models", "tiny", "tokenizer.model")));
        var answers = new Dictionary<string, string>();
        foreach (var stage in m.Stages)
        {
            foreach (var line in RunFolder.ReadJsonLines(Path.Combine(_folder.Out, ".state", "blobs", "jobs", stage.JobId, "output.jsonl")))
                answers[line.GetProperty("custom_id").GetString()!] = line.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("text").GetString()!.Trim();
        }
        // request ids are d{document}-s{stage}-p{piece}
        var pieces = answers.Keys.Where(k => k.Contains("-s0-", StringComparison.Ordinal))
            .GroupBy(k => k[..k.IndexOf("-s0-", StringComparison.Ordinal)])
            .ToDictionary(g => g.Key, g => g.OrderBy(k => int.Parse(k[(k.LastIndexOf("-p", StringComparison.Ordinal) + 2)..])).Select(k => answers[k]).ToList());
        var sizes = new List<int> { pieces.Values.Sum(p => p.Count) };
        int carried = 0, cap = chunkTokens / 2;
        for (int stage = 1; pieces.Values.Any(p => p.Count > 1); stage++)
        {
            int requests = 0;
            foreach (var (doc, docPieces) in pieces.Where(p => p.Value.Count > 1).ToList())
            {
                var groups = new List<List<string>> { new() };
                int used = 0;
                foreach (var piece in docPieces)
                {
                    var ids = tokenizer.Encode(piece);
                    int numTokens = Math.Min(ids.Count, cap);
                    if (groups[^1].Count > 0 && used + numTokens > chunkTokens) (groups, used) = ([.. groups, new()], 0);
                    groups[^1].Add(ids.Count > cap ? tokenizer.Decode(ids.Take(cap).ToList()) : piece);
                    used += numTokens;
                }
                requests += groups.Count(g => g.Count > 1);
                carried += groups.Count(g => g.Count == 1);
                pieces[doc] = groups.Select((g, i) => g.Count == 1 ? g[0] : answers[$"{doc}-s{stage}-p{i}"]).ToList();
            }
            sizes.Add(requests);
        }
        return (sizes, carried);
    }

    /// <summary>Deterministic prose of <paramref name="numWords"/> words (about one token each on the tiny model's vocabulary, often more).</summary>
    private static string Words(int numWords, int seed)
    {
        string[] vocabulary = ["queue", "worker", "shard", "engine", "token", "batch", "model", "cache", "block", "request", "summary", "night"];
        var random = new Random(seed);
        return string.Join(' ', Enumerable.Range(0, numWords).Select(_ => vocabulary[random.Next(vocabulary.Length)])) + ".";
    }

    [Fact]
    public async Task RunAsync_mixedFolder_summaryPerReadableDocumentErrorsManifestAndSignedWebhook_thenOnlyNewDocuments()
    {
        await using var receiver = new LoopbackReceiver();
        var definition = WriteDefinition(receiver.Url);
        WriteDoc("short.txt", "The night batch finished early.");
        WriteDoc("long.md", "# Handbook\n\n" + Words(900, seed: 1)); // several times the 192-token context
        WriteDoc("empty.md", "\n\n");
        WriteDoc("broken.txt", [0xC3, 0x28, 0xFF]);
        WriteDoc("ignored.pdf", "not a configured type");

        var first = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();

        Assert.Equal(PipelineRunStatus.Completed, first.Run.Status);
        var m = first.Run.Manifest!;
        Assert.Equal((4, 2, 2), (m.NumDocuments, m.NumSummarized, m.NumErrors));
        Assert.Equal(
            [("broken.txt", ManifestDocumentStatus.Error, (DocumentErrorCode?)DocumentErrorCode.Unreadable, (string?)null),
             ("empty.md", ManifestDocumentStatus.Error, DocumentErrorCode.Empty, null),
             ("long.md", ManifestDocumentStatus.Summarized, null, "long.md.summary.md"),
             ("short.txt", ManifestDocumentStatus.Summarized, null, "short.txt.summary.md")],
            m.Documents.Select(d => (d.Key, d.Status, d.ErrorCode, d.Summary)));
        var longDoc = m.Documents.Single(d => d.Key == "long.md");
        Assert.Equal(27, longDoc.NumChunks);
        // map: 27 chunks + short.txt; then reduce stages down to one piece, as the summaries' lengths make them, a lone
        // piece carried past a stage on the way (28 → 7 → 1 + the carried piece → 1 on the committed model)
        var (sizes, carried) = ReplayStages(m, chunkTokens: 64);
        Assert.Equal(28, sizes[0]);
        Assert.True(carried >= 1, "no piece was carried: the test no longer covers a lone last group");
        Assert.Equal(sizes, m.Stages.Select(s => s.NumRequests));
        Assert.True(m.Stages.Count >= 3, $"{m.Stages.Count} stages");
        Assert.Equal((1, 1), (m.Documents.Single(d => d.Key == "short.txt").NumChunks, m.Documents.Single(d => d.Key == "short.txt").NumStages));
        Assert.Equal(m.Stages.Count, longDoc.NumStages);
        Assert.Equal(StageKind.Map, m.Stages[0].Kind);
        Assert.All(m.Stages.Skip(1), s => Assert.Equal(StageKind.Reduce, s.Kind));
        Assert.All(m.Stages, s => Assert.Equal(0, s.NumFailed));
        Assert.Equal(m.Stages.Select((_, i) => $"{m.RunId}-s{i}"), m.Stages.Select(s => s.JobId));

        foreach (var name in new[] { "long.md.summary.md", "short.txt.summary.md" })
            Assert.True(new FileInfo(Path.Combine(_folder.Out, name)).Length > 1, name);
        Assert.False(File.Exists(Path.Combine(_folder.Out, "empty.md.summary.md")));
        // the source folder is only read: it holds the user's five files and nothing of ours
        Assert.Equal(["broken.txt", "empty.md", "ignored.pdf", "long.md", "short.txt"],
            Directory.EnumerateFileSystemEntries(Docs, "*", SearchOption.AllDirectories).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        // and the output folder holds the summaries, _runs/ and the state folder, no folder of writes in progress
        Assert.Equal([".state", "_runs", "long.md.summary.md", "short.txt.summary.md"],
            Directory.EnumerateFileSystemEntries(_folder.Out).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        if (!OperatingSystem.IsWindows())
        {
            // the state folder and the secrets in it (the signing secret, the definition with the pipeline's own) are the
            // user's alone; the summaries, in the user's folder, keep the umask's modes
            var state = Path.Combine(_folder.Out, ".state");
            Assert.Equal(("700", "600", "600"), (UnixModes.Of(state), UnixModes.Of(Path.Combine(state, "webhook_secret")),
                UnixModes.Of(Path.Combine(state, "blobs", "pipelines", "_definitions", "test-notes.json"))));
            Assert.Equal(UnixModes.OfNewFile(), UnixModes.Of(Path.Combine(_folder.Out, "long.md.summary.md")));
        }
        var manifestPath = Path.Combine(_folder.Out, "_runs", m.RunId, "manifest.json");
        var onDisk = JsonDocument.Parse(File.ReadAllText(manifestPath)).RootElement;
        Assert.Equal(m.RunId, onDisk.GetProperty("run_id").GetString());
        Assert.Equal(4, onDisk.GetProperty("documents").GetArrayLength());
        Assert.Equal("not UTF-8 text: ", onDisk.GetProperty("documents")[0].GetProperty("error").GetString()![..16]);

        // the run-end webhook: delivered once, signed with the pipeline's secret, naming the manifest
        var attempt = Assert.Single(first.WebhookAttempts);
        Assert.Equal((PipelineRunEvent.Completed, WebhookAttemptOutcome.Delivered, (int?)200), (attempt.EventType, attempt.Outcome, attempt.StatusCode));
        var request = Assert.Single(receiver.Requests);
        var body = Encoding.UTF8.GetString(request.Body);
        Assert.Equal(WebhookVerifyResult.Valid,
            WebhookSigner.Verify(Secret, new WebhookHeaders(request.Id!, request.Timestamp!, request.Signature!), body, DateTimeOffset.UtcNow));
        Assert.Equal([null], await StandardWebhooksLibrary.VerifyAsync(Secret, [new ReceivedWebhook(request.Id!, request.Timestamp!, request.Signature!, body)]));
        var evt = JsonDocument.Parse(body).RootElement;
        Assert.Equal(("event", "pipeline.run.completed"), (evt.GetProperty("object").GetString(), evt.GetProperty("type").GetString()));
        var data = evt.GetProperty("data");
        Assert.Equal(("test-notes", m.RunId, 4, 2, 2, $"_runs/{m.RunId}/manifest.json"),
            (data.GetProperty("pipeline").GetString(), data.GetProperty("run_id").GetString(), data.GetProperty("num_documents").GetInt32(),
             data.GetProperty("num_summarized").GetInt32(), data.GetProperty("num_errors").GetInt32(), data.GetProperty("manifest").GetString()));

        // nothing new: no job, no manifest, no webhook
        var jobsBefore = Directory.GetDirectories(Path.Combine(_folder.Out, ".state", "blobs", "jobs")).Length;
        var second = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();
        Assert.Equal(PipelineRunStatus.NothingToDo, second.Run.Status);
        Assert.Empty(second.WebhookAttempts);
        Assert.Single(receiver.Requests);
        Assert.Equal(jobsBefore, Directory.GetDirectories(Path.Combine(_folder.Out, ".state", "blobs", "jobs")).Length);
        Assert.Single(Directory.GetDirectories(Path.Combine(_folder.Out, "_runs")));

        // one new document: only it is summarized
        var longSummary = File.ReadAllBytes(Path.Combine(_folder.Out, "long.md.summary.md"));
        WriteDoc("sub/added.txt", "A new note arrived after the first run.");
        var third = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();
        Assert.Equal(PipelineRunStatus.Completed, third.Run.Status);
        var added = Assert.Single(third.Run.Manifest!.Documents);
        Assert.Equal(("sub/added.txt", ManifestDocumentStatus.Summarized, "sub/added.txt.summary.md"), (added.Key, added.Status, added.Summary));
        Assert.Equal(1, Assert.Single(third.Run.Manifest.Stages).NumRequests);
        Assert.True(File.Exists(Path.Combine(_folder.Out, "sub", "added.txt.summary.md")));
        Assert.Equal(longSummary, File.ReadAllBytes(Path.Combine(_folder.Out, "long.md.summary.md")));
        Assert.Equal(2, receiver.Requests.Count);
    }

    [Fact]
    public async Task RunAsync_documentManyContextsLong_reductionRecursesAtLeastTwice()
    {
        // 64-token chunks, 16-token summaries: about 25 chunks → groups of up to 4 → … → 1
        var definition = WriteDefinition(chunkTokens: 64, maxTokens: 16);
        WriteDoc("book.txt", Words(1400, seed: 2));

        var result = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();

        var m = result.Run.Manifest!;
        var doc = Assert.Single(m.Documents);
        Assert.Equal(ManifestDocumentStatus.Summarized, doc.Status);
        var reduces = m.Stages.Where(s => s.Kind == StageKind.Reduce).ToList();
        Assert.Equal(43, doc.NumChunks);
        // map 43 chunks; reduce groups of summaries that fit 64 tokens, stage after stage, down to one
        var (sizes, _) = ReplayStages(m, chunkTokens: 64);
        Assert.Equal(sizes, m.Stages.Select(s => s.NumRequests));
        Assert.Equal(43, sizes[0]);
        Assert.Equal([StageKind.Map, .. reduces.Select(_ => StageKind.Reduce)], m.Stages.Select(s => s.Kind));
        Assert.True(reduces.Count >= 2, $"{reduces.Count} reduce stages");
        Assert.Equal(1, reduces[^1].NumRequests);
        Assert.Equal(m.Stages.Count, doc.NumStages);
        var summary = File.ReadAllText(Path.Combine(_folder.Out, "book.txt.summary.md"));
        var lastAnswer = JsonDocument.Parse(File.ReadAllLines(Path.Combine(_folder.Out, ".state", "blobs", "jobs", m.Stages[^1].JobId, "output.jsonl"))[0])
            .RootElement.GetProperty("response").GetProperty("body").GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.Equal(lastAnswer.Trim() + "\n", summary);
    }

    [Fact]
    public async Task RunAsync_runThatFails_leavesTheWatermarkSoTheNextRunRetriesItAndSendsAFailedEvent()
    {
        await using var receiver = new LoopbackReceiver();
        var definition = WriteDefinition(receiver.Url);
        WriteDoc("a.txt", "First note.");
        WriteDoc("b.txt", "Second note.");
        var blocker = Path.Combine(_folder.Out, "b.txt.summary.md");
        Directory.CreateDirectory(blocker); // a folder where the summary must go: writing it fails

        await Assert.ThrowsAnyAsync<Exception>(() => new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync());
        Directory.Delete(blocker);
        var retried = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();

        Assert.Equal(PipelineRunStatus.Completed, retried.Run.Status);
        Assert.Equal(["a.txt", "b.txt"], retried.Run.Manifest!.Documents.Select(d => d.Key));
        Assert.All(retried.Run.Manifest.Documents, d => Assert.Equal(ManifestDocumentStatus.Summarized, d.Status));
        // the failed run's event was left in the durable outbox and goes out with the next run's
        Assert.Equal(["pipeline.run.completed", "pipeline.run.failed"],
            receiver.Requests.Select(r => JsonDocument.Parse(r.Body).RootElement.GetProperty("type").GetString()).Order(StringComparer.Ordinal));
        Assert.All(retried.WebhookAttempts, a => Assert.Equal(WebhookAttemptOutcome.Delivered, a.Outcome));
    }

    [Fact]
    public async Task PipelineRunCommand_example_summarizesEachDocumentThenHasNothingToDo()
    {
        var example = Path.Combine(Checkout.Root, "examples", "pipelines", "notes.json");

        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "pipeline", "run", example, "--out", _folder.Out);

        Assert.True(exitCode == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.Matches("^run pl-nightly-notes-[0-9]{8}T[0-9]{9}: 4 summarized, 0 errors of 4 documents in 3 stages, ", lines[0]);
        Assert.Equal(
            [$"  handbook.md: {Path.Combine(_folder.Out, "handbook.md.summary.md")} (17 chunks, 3 stages)",
             $"  standup.txt: {Path.Combine(_folder.Out, "standup.txt.summary.md")} (1 chunk, 1 stage)",
             $"  tickets.jsonl#L1: {Path.Combine(_folder.Out, "tickets.jsonl.L1.summary.md")} (1 chunk, 1 stage)",
             $"  tickets.jsonl#L2: {Path.Combine(_folder.Out, "tickets.jsonl.L2.summary.md")} (1 chunk, 1 stage)"],
            lines[1..5]);
        Assert.StartsWith($"  manifest: {Path.Combine(_folder.Out, "_runs", "pl-nightly-notes-")}", lines[5]);
        // each stage named on stderr as it starts (its progress too, on a terminal or every 10 s into a log)
        var stageSizes = JsonDocument.Parse(File.ReadAllText(lines[5]["  manifest: ".Length..])).RootElement.GetProperty("stages")
            .EnumerateArray().Select(s => s.GetProperty("num_requests").GetInt32()).ToList();
        Assert.Equal(3, stageSizes.Count); // "in 3 stages" above
        Assert.Equal(stageSizes.Select((n, i) => $"-s{i}: {n} request{(n == 1 ? "" : "s")}"),
            stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith("stage pl-nightly-notes-", StringComparison.Ordinal))
                .Select(l => l[l.LastIndexOf("-s", StringComparison.Ordinal)..]));
        Assert.Equal(20, stageSizes[0]);

        var again = await CliProcess.RunAsync(_folder.Root, TimeSpan.FromSeconds(60), "pipeline", "run", example, "--out", _folder.Out);
        Assert.Equal((0, "nothing to do: no document is new or changed since the last run\n"), (again.ExitCode, again.Stdout.Replace("\r", "")));
    }

    [Theory]
    [InlineData("workers", "MaxConcurrentShards")]
    [InlineData("engine", "MaxBatchSize")]
    [InlineData("model", null)]
    public async Task RunAsync_settingOutOfRange_failsBeforeMakingTheStateFolder(string setting, string? parameter)
    {
        var definition = WriteDefinition();
        WriteDoc("a.txt", "The night batch finished early.");
        var settings = setting switch
        {
            "workers" => Settings(definition) with { Workers = 0 },
            "engine" => Settings(definition) with { Engine = new EngineOptions { MaxBatchSize = 0 } },
            _ => Settings(definition) with { Model = ModelChoice.Of(Path.Combine(_folder.Root, "no-model")) },
        };

        var e = await Assert.ThrowsAnyAsync<Exception>(() => new LocalPipelineRun(settings, TimeProvider.System).RunAsync());

        if (parameter is null) Assert.IsType<Inference.Package.ModelPackageException>(e);
        else Assert.Equal(parameter, Assert.IsType<ArgumentOutOfRangeException>(e).ParamName);
        Assert.False(Directory.Exists(_folder.Out), "a run refused for its settings made its output and state folder");
    }

    [Fact]
    public async Task RunAsync_chunkTooBigForTheContext_failsBeforeAnyJobNamingTheField()
    {
        var definition = WriteDefinition(chunkTokens: 180, maxTokens: 16);
        WriteDoc("a.txt", "text");

        var e = await Assert.ThrowsAsync<PipelineDefinitionException>(() => new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync());

        Assert.Equal("chunking.chunk_tokens", e.Field);
        Assert.EndsWith("is over the model's context of 192 tokens", e.Reason);
        Assert.False(Directory.Exists(Path.Combine(_folder.Out, ".state", "blobs", "jobs")));
    }

    [Fact]
    public async Task RunAsync_lockLeftByAKilledRun_isBrokenByTheLocalHostWhichOwnsTheStateFolder()
    {
        var definition = WriteDefinition();
        WriteDoc("a.txt", "text");
        var state = new PipelineState(new Local.FolderBlobStore(new Local.FolderBlobStoreOptions { RootPath = Path.Combine(_folder.Out, ".state", "blobs") }),
            "test-notes", TimeProvider.System);
        Assert.True(await state.TryLockAsync("pl-test-notes-killed", TimeSpan.FromHours(6)));

        var result = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();

        Assert.Equal(PipelineRunStatus.Completed, result.Run.Status);
        Assert.Null(await state.ReadLockAsync());
    }

    /// <summary>Hands a stage's job back still running from stage <paramref name="stopAtStage"/> on, as a host that waits only so long does.</summary>
    private sealed class StageStopper(IJobDriver inner, int stopAtStage) : IJobDriver
    {
        public List<string> Drained { get; } = [];

        public Task<BatchJob> RunToEndAsync(BatchJob job, CancellationToken cancellationToken = default)
        {
            if (job.Id.EndsWith($"-s{stopAtStage}", StringComparison.Ordinal)) return Task.FromResult(job);
            Drained.Add(job.Id);
            return inner.RunToEndAsync(job, cancellationToken);
        }
    }

    [Fact]
    public async Task RunAsync_stageStillRunning_nextRunResumesTheSameRunAndReusesItsFinishedStages()
    {
        var definition = WriteDefinition();
        WriteDoc("long.txt", Words(300, seed: 3));
        StageStopper? firstDriver = null, secondDriver = null;

        var first = await new LocalPipelineRun(Settings(definition) with
        {
            WrapDriver = inner => firstDriver = new StageStopper(inner, stopAtStage: 1),
        }, TimeProvider.System).RunAsync();
        Assert.False(Directory.Exists(Path.Combine(_folder.Out, "_runs")));
        WriteDoc("later.txt", "Arrived while the run was in progress."); // not part of the resumed run
        var second = await new LocalPipelineRun(Settings(definition) with
        {
            WrapDriver = inner => secondDriver = new StageStopper(inner, stopAtStage: -1),
        }, TimeProvider.System).RunAsync();
        var third = await new LocalPipelineRun(Settings(definition), TimeProvider.System).RunAsync();

        Assert.Equal(PipelineRunStatus.InProgress, first.Run.Status);
        Assert.Equal([$"{first.Run.RunId}-s0"], firstDriver!.Drained);

        Assert.Equal(PipelineRunStatus.Completed, second.Run.Status);
        Assert.Equal(first.Run.RunId, second.Run.RunId);
        // stage 0 was already completed: the resumed run reads its answers instead of draining it again
        Assert.DoesNotContain($"{first.Run.RunId}-s0", secondDriver!.Drained);
        Assert.Contains($"{first.Run.RunId}-s1", secondDriver.Drained);
        Assert.Equal(["long.txt"], second.Run.Manifest!.Documents.Select(d => d.Key));

        Assert.Equal(PipelineRunStatus.Completed, third.Run.Status);
        Assert.Equal(["later.txt"], third.Run.Manifest!.Documents.Select(d => d.Key));
    }
}
