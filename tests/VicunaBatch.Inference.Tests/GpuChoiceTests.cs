using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests;

/// <summary>The rule for a host's GPUs (<see cref="GpuChoice"/>), an engine's GPU (<see cref="EngineOptions.OnGpu"/>) and a
/// package opened once per engine (<see cref="LoadedModel.OpenEach"/>), all without a GPU.</summary>
public sealed class GpuChoiceTests
{
    [Theory]
    [InlineData("0", new[] { 0 })]
    [InlineData("0,1", new[] { 0, 1 })]
    [InlineData(" 3 , 1 ", new[] { 3, 1 })]
    public void Parse_reads_gpu_numbers_separated_by_commas(string text, int[] expected) => Assert.Equal(expected, GpuChoice.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("0,")]
    [InlineData("-1")]
    [InlineData("0;1")]
    [InlineData("gpu0")]
    [InlineData("+1")]
    public void Parse_refuses_anything_else(string text) => Assert.Null(GpuChoice.Parse(text));

    [Fact]
    public void Every_visible_gpu_when_none_is_chosen()
    {
        Assert.Equal([0, 1, 2], GpuChoice.Resolve(null, 3));
        Assert.Equal([1], GpuChoice.Resolve([1], 2));
    }

    [Theory]
    [InlineData(new[] { 0, 2 }, 2, "there is no GPU 2: this machine has GPUs 0 and 1")]
    [InlineData(new[] { 1 }, 1, "there is no GPU 1: this machine has GPU 0")]
    [InlineData(new[] { 7 }, 4, "there is no GPU 7: this machine has GPUs 0 to 3")]
    [InlineData(new[] { 1, 0, 1 }, 2, "names GPU 1 twice (one engine a GPU)")]
    [InlineData(new int[0], 2, "names no GPU")]
    [InlineData(new[] { 0 }, 0, "no CUDA GPU is visible to this process (the driver, or CUDA_VISIBLE_DEVICES)")]
    public void A_gpu_not_present_or_named_twice_is_a_problem_naming_the_gpus_there_are(int[] chosen, int numVisible, string problem)
    {
        Assert.Equal(problem, GpuChoice.Problem(chosen, numVisible));
        Assert.Equal(problem, Assert.Throws<ArgumentException>(() => GpuChoice.Resolve(chosen, numVisible)).Message.Split(" (Parameter")[0]);
    }

    [Fact]
    public void No_visible_gpu_is_a_problem_when_none_is_chosen_too() =>
        Assert.Equal("no CUDA GPU is visible to this process (the driver, or CUDA_VISIBLE_DEVICES)", GpuChoice.Problem(null, 0));

    [Fact]
    public void OnGpu_copies_the_options_with_the_engines_gpu()
    {
        var options = new EngineOptions { Device = ExecutionDevice.Cuda, MaxBatchSize = 7 };
        var second = options.OnGpu(1);

        Assert.Equal((1, 7, ExecutionDevice.Cuda), (second.Gpu, second.MaxBatchSize, second.Device));
        Assert.Equal(0, options.Gpu);
        second.Validate();
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineOptions().OnGpu(1).Validate());
        Assert.Contains("a GPU needs the CUDA device", error.Message);
    }

    [Fact]
    public void OpenEach_opens_the_package_once_per_engine_and_disposes_the_shared_files_with_the_last_model()
    {
        var files = new CountingFiles(PackageFiles.InDirectory(Path.Combine(Checkout.Root, "models", "tiny")));
        var options = new EngineOptions { MaxBatchSize = 2, NumThreads = 1 };
        var models = LoadedModel.OpenEach(files, [options, options]);

        Assert.Equal(2, models.Count);
        Assert.NotSame(models[0].Engine, models[1].Engine);
        Assert.All(models, m => Assert.Null(m.Gpu)); // the CPU: no GPU
        models[0].Dispose();
        Assert.Equal(0, files.NumDisposed);
        models[1].Dispose();
        Assert.Equal(1, files.NumDisposed);
    }

    [Fact]
    public void OpenEach_disposes_the_models_it_opened_when_one_cannot_open()
    {
        var files = new CountingFiles(PackageFiles.InDirectory(Path.Combine(Checkout.Root, "models", "tiny")));
        var good = new EngineOptions { MaxBatchSize = 2, NumThreads = 1 };
        var bad = new EngineOptions { MaxBatchSize = 2, NumThreads = 1, CudaGraphs = CudaGraphUse.On }; // refused on the CPU

        Assert.Throws<ArgumentOutOfRangeException>(() => LoadedModel.OpenEach(files, [good, bad]));
        Assert.Equal(1, files.NumDisposed); // the good engine's model went, and the files with it
    }

    /// <summary>A folder's files that count their disposals.</summary>
    private sealed class CountingFiles(PackageFiles files) : ForwardingPackageFiles(files)
    {
        public int NumDisposed;

        public override void Dispose()
        {
            Interlocked.Increment(ref NumDisposed);
            base.Dispose();
        }
    }
}
