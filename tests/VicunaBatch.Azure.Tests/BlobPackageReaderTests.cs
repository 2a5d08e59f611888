using System.Diagnostics;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using VicunaBatch.Execution;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Azure.Tests;

/// <summary>
/// <see cref="BlobPackageReader"/> over <see cref="BlobModelSource"/> against a real Azurite: a package uploaded as the
/// README says (<c>az storage blob upload-batch -d models --destination-path NAME</c>) comes back into memory byte for
/// byte, in bounded parallel ranged reads, and ONNX Runtime computes from it exactly what it computes from the files.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class BlobPackageReaderTests(AzuriteFixture azurite, ExternalDataPackage exported) : IClassFixture<ExternalDataPackage>
{
    private static readonly string TinyPackage = Path.Combine(Checkout.Root, "models", "tiny");

    [Fact]
    public async Task ReadAsync_reads_every_file_byte_for_byte_in_ranged_reads_at_most_the_bound_at_once()
    {
        var counter = new RequestCounter(TimeSpan.FromMilliseconds(20)); // each read takes a while, so reads overlap when they may
        var blobs = new BlobServiceClient(azurite.ConnectionString, WithPolicy(counter));
        var source = BlobModelSource.From(blobs, await UploadAsync(TinyPackage, "tiny"));
        var options = new PackageReadOptions { ChunkBytes = 64 << 10, MaxParallelReads = 3 };

        var (files, summary) = await new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString(), options).ReadAsync();

        using (files)
        {
            var expected = Directory.GetFiles(TinyPackage).Select(Path.GetFileName).Order().ToList();
            Assert.Equal(expected, files.Buffers.Keys.Order());
            foreach (var name in expected) Assert.Equal(File.ReadAllBytes(Path.Combine(TinyPackage, name!)), files.ReadAllBytes(name!));
            var numRanges = Directory.GetFiles(TinyPackage).Sum(f => (new FileInfo(f).Length + options.ChunkBytes - 1) / options.ChunkBytes);
            Assert.True(numRanges > 10, $"{numRanges} ranges"); // model.onnx alone is 1.1 MB: many chunks
            Assert.Equal(numRanges, summary.NumReads);
            Assert.Equal(numRanges, counter.NumRangedGets); // one request per range, none for a whole blob
            Assert.Equal(Directory.GetFiles(TinyPackage).Sum(f => new FileInfo(f).Length), summary.NumBytes);
            Assert.Equal(options.MaxParallelReads, counter.MaxInFlight); // in parallel, never past the bound
            Assert.All(counter.RangeLengths, length => Assert.True(length <= options.ChunkBytes, $"a range of {length} bytes"));
        }
    }

    [Fact]
    public async Task ReadAsync_only_reads_the_named_files()
    {
        var counter = new RequestCounter(TimeSpan.Zero);
        var source = BlobModelSource.From(new BlobServiceClient(azurite.ConnectionString, WithPolicy(counter)), await UploadAsync(TinyPackage, "tiny"));

        var (files, summary) = await new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString())
            .ReadAsync(new HashSet<string> { ModelPackage.ConfigFileName, ModelPackage.TokenizerFileName });

        using (files)
        {
            Assert.Equal([ModelPackage.ConfigFileName, ModelPackage.TokenizerFileName], files.Buffers.Keys.Order());
            Assert.Equal(2, summary.NumReads);
            Assert.Equal(2, counter.NumRangedGets); // model.onnx is never read
        }
    }

    [Fact]
    public async Task A_package_read_into_memory_computes_the_same_logits_as_its_files_and_peaks_within_the_bound()
    {
        var source = BlobModelSource.From(azurite.Blobs, await UploadAsync(exported.Directory, "external"));
        var weights = Directory.GetFiles(exported.Directory).Sum(f => new FileInfo(f).Length);
        // few tokens a step: the engine's own buffers ([tokens, 240000] logits) stay small beside the package
        var options = new EngineOptions { MaxBatchSize = 2, NumThreads = 1, MaxSequenceLength = 64, MaxScheduledTokens = 8 };
        GC.Collect();
        var before = PeakResidentBytes.Reset();

        var (files, _) = await new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString()).ReadAsync();
        using var fromMemory = LoadedModel.Open(files, options);
        var peak = PeakResidentBytes.Read() - before;
        Console.WriteLine($"package {weights} bytes; peak resident memory rose by {peak} bytes reading it from blobs and opening it");
        using var fromDisk = LoadedModel.Open(exported.Directory, options);

        Assert.Equal(source.Uri.ToString(), fromMemory.Package.Location);
        Assert.Equal(ExternalDataPackage.DataFileName, Assert.Single(Directory.GetFiles(exported.Directory), f => f.EndsWith(".data")).Split('/')[^1]);
        var request = new GenerationRequest("p", [1, 15, 300, 9000, 120000], 6, ReturnLogits: true);
        var memoryResult = Run(fromMemory, request);
        var diskResult = Run(fromDisk, request);
        Assert.Equal(diskResult.OutputIds, memoryResult.OutputIds);
        for (int step = 0; step < diskResult.Logits!.Count; step++) Assert.Equal(diskResult.Logits[step], memoryResult.Logits![step]); // bit for bit
        // the package once in host memory (ONNX Runtime takes the weights in place), ONNX Runtime's packed copy of the
        // MatMul weights (here the 240,000 × 64 lm_head, half the package) and a fixed amount (the runtime's first session
        // in this process, the engine's buffers): 1.84 × the package measured; with ONNX Runtime copying the buffers it
        // is 2.78 ×, past the bound
        var bound = 2.0 * weights + (64L << 20);
        Assert.True(peak <= bound, $"peak resident memory rose by {peak >> 20} MiB loading a {weights >> 20} MiB package; bound {(long)bound >> 20} MiB");
    }

    [Fact]
    public async Task The_committed_tiny_model_read_into_memory_computes_the_same_logits_as_its_files()
    {
        var source = BlobModelSource.From(azurite.Blobs, await UploadAsync(TinyPackage, "tiny"));
        var options = new EngineOptions { MaxBatchSize = 1, NumThreads = 1, MaxSequenceLength = 64 };
        var (files, _) = await new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString()).ReadAsync();
        using var fromMemory = LoadedModel.Open(files, options);
        using var fromDisk = LoadedModel.Open(TinyPackage, options);

        var prompt = fromDisk.Tokenizer!.Encode("Once upon a time").Prepend(1).ToArray();
        var request = new GenerationRequest("p", prompt, 8, ReturnLogits: true);
        var memoryResult = Run(fromMemory, request);
        var diskResult = Run(fromDisk, request);

        Assert.Equal(fromDisk.Tokenizer.Encode("a longer text, with punctuation!"), fromMemory.Tokenizer!.Encode("a longer text, with punctuation!"));
        Assert.Equal(8, memoryResult.OutputIds.Count);
        Assert.Equal(diskResult.OutputIds, memoryResult.OutputIds);
        for (int step = 0; step < 8; step++) Assert.Equal(diskResult.Logits![step], memoryResult.Logits![step]);
    }

    [Fact]
    public async Task ReadAsync_without_a_package_at_the_source_says_what_it_found()
    {
        var container = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("models"));
        await container.CreateAsync();
        await container.GetBlobClient("other/readme.txt").UploadAsync(BinaryData.FromString("x"));
        var source = BlobModelSource.From(azurite.Blobs, new Uri(container.Uri + "/other"));

        var error = await Assert.ThrowsAsync<ModelPackageException>(() => new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString()).ReadAsync());

        Assert.Equal($"no model package at {container.Uri}/other (1 blobs there, none is genai_config.json)", error.Message);
    }

    [Fact]
    public async Task ReadAsync_of_a_blob_cut_short_while_it_is_read_fails_naming_it()
    {
        var uri = await UploadAsync(TinyPackage, "tiny");
        var graph = azurite.Blobs.GetBlobContainerClient(new BlobUriBuilder(uri).BlobContainerName).GetBlobClient("tiny/model.onnx");
        // the first ranged read of the graph finds it replaced by 1,000 bytes: listed long, read short
        var counter = new RequestCounter(TimeSpan.Zero, beforeFirstGetOf: ("tiny/model.onnx", () => graph.Upload(BinaryData.FromBytes(new byte[1000]), overwrite: true)));
        var source = BlobModelSource.From(new BlobServiceClient(azurite.ConnectionString, WithPolicy(counter)), uri);
        var reader = new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString(), new PackageReadOptions { ChunkBytes = 1 << 20, MaxParallelReads = 1 });

        var error = await Assert.ThrowsAsync<ModelPackageException>(() => reader.ReadAsync());

        var length = new FileInfo(Path.Combine(TinyPackage, "model.onnx")).Length;
        var firstRange = Math.Min(length, 1 << 20); // the first chunk's read fails
        Assert.Equal($"{uri}/model.onnx: short read: bytes [0, {firstRange}) gave 1000 of {firstRange} (the blob was {length} bytes when listed: changed while read?)", error.Message);
    }

    [Fact]
    public async Task Open_of_a_package_in_memory_without_its_external_data_fails_naming_the_file()
    {
        var uri = await UploadAsync(exported.Directory, "no-data", skip: ExternalDataPackage.DataFileName);
        var source = BlobModelSource.From(azurite.Blobs, uri);
        var (files, _) = await new BlobPackageReader(source.Store, source.Prefix, source.Uri.ToString()).ReadAsync();

        var error = Assert.Throws<ModelPackageException>(() => LoadedModel.Open(files, new EngineOptions { MaxBatchSize = 1, NumThreads = 1 }));

        Assert.StartsWith($"ONNX Runtime could not load {uri}/model.onnx: ", error.Message);
        Assert.Contains(ExternalDataPackage.DataFileName, error.Message);
    }

    private static GenerationResult Run(LoadedModel model, GenerationRequest request)
    {
        model.Engine.Submit(request);
        var results = new List<GenerationResult>();
        while (model.Engine.HasWork) results.AddRange(model.Engine.Step());
        return Assert.Single(results);
    }

    /// <summary>Uploads a package folder's files under <c>NAME/</c> of a new container, and a sibling that must not be read.</summary>
    private async Task<Uri> UploadAsync(string package, string name, string? skip = null)
    {
        var container = azurite.Blobs.GetBlobContainerClient(azurite.UniqueName("models"));
        await container.CreateAsync();
        foreach (var file in Directory.GetFiles(package).Where(f => Path.GetFileName(f) != skip))
            await container.GetBlobClient($"{name}/{Path.GetFileName(file)}").UploadAsync(file);
        await container.GetBlobClient($"{name}-other/genai_config.json").UploadAsync(BinaryData.FromString("{}"));
        return new Uri(container.Uri + "/" + name);
    }

    private static BlobClientOptions WithPolicy(HttpPipelinePolicy policy)
    {
        var options = new BlobClientOptions();
        options.AddPolicy(policy, HttpPipelinePosition.PerCall);
        return options;
    }

    /// <summary>Counts the blob GETs with a Range header (and their lengths) and the most in flight at once.</summary>
    private sealed class RequestCounter(TimeSpan delay, (string Blob, Action Run)? beforeFirstGetOf = null) : HttpPipelinePolicy
    {
        private readonly object _lock = new();
        private int _inFlight;
        private bool _ran;

        public int NumRangedGets { get; private set; }
        public int MaxInFlight { get; private set; }
        public List<long> RangeLengths { get; } = [];

        public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline) => ProcessAsync(message, pipeline).AsTask().GetAwaiter().GetResult();

        public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
        {
            string? range = null;
            var ranged = message.Request.Method == RequestMethod.Get
                && (message.Request.Headers.TryGetValue("x-ms-range", out range) || message.Request.Headers.TryGetValue("Range", out range));
            if (!ranged)
            {
                await ProcessNextAsync(message, pipeline);
                return;
            }
            lock (_lock)
            {
                NumRangedGets++;
                var bounds = range!.Split('=')[1].Split('-').Select(long.Parse).ToArray();
                RangeLengths.Add(bounds[1] - bounds[0] + 1);
                MaxInFlight = Math.Max(MaxInFlight, ++_inFlight);
                if (beforeFirstGetOf is { } hook && !_ran && message.Request.Uri.Path.EndsWith("/" + hook.Blob)) { _ran = true; hook.Run(); }
            }
            try
            {
                await Task.Delay(delay);
                await ProcessNextAsync(message, pipeline);
            }
            finally
            {
                lock (_lock) _inFlight--;
            }
        }
    }
}

/// <summary>
/// A package whose weights are external data (<c>model.onnx.data</c>, as every real package's): export.py writes it so
/// above 100 MiB of weights, here a tiny config with a 240,000-token vocabulary (about 123 MB), once per test class.
/// </summary>
public sealed class ExternalDataPackage : IDisposable
{
    public const string DataFileName = "model.onnx.data";

    public ExternalDataPackage()
    {
        Directory = Path.Combine(Path.GetTempPath(), "vicuna-external-data-" + Guid.NewGuid().ToString("N"));
        var export = Process.Start(new ProcessStartInfo("/usr/bin/python3",
            ["model-export/export.py", "--config", "tiny", "--seed", "1", "--vocab-size", "240000", "--out", Directory])
            { WorkingDirectory = Checkout.Root, RedirectStandardError = true, RedirectStandardOutput = true })!;
        var stderr = export.StandardError.ReadToEndAsync();
        export.StandardOutput.ReadToEnd();
        export.WaitForExit();
        if (export.ExitCode != 0) throw new InvalidOperationException($"export.py failed ({export.ExitCode}): {stderr.Result}");
    }

    public string Directory { get; }

    public void Dispose()
    {
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (DirectoryNotFoundException) { }
    }
}

/// <summary>The process's peak resident set (VmHWM), which Linux resets on request (<c>/proc/self/clear_refs</c>, 5).</summary>
internal static class PeakResidentBytes
{
    /// <summary>Sets the peak to the current resident set; returns it.</summary>
    public static long Reset()
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Read();
    }

    public static long Read() => long.Parse(File.ReadAllLines("/proc/self/status").First(l => l.StartsWith("VmHWM:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
}
