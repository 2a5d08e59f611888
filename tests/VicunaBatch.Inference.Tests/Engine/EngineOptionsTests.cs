using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Engine;

public sealed class EngineOptionsTests
{
    [Fact]
    public void MaxBatchSize_zero_fits_gpu_memory_and_is_refused_on_the_cpu()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineOptions { MaxBatchSize = 0 }.Validate());
        Assert.Contains("needs the CUDA device", error.Message);
        new EngineOptions { MaxBatchSize = 0, Device = ExecutionDevice.Cuda }.Validate();
    }

    [Theory]
    [InlineData(-1, 512)]
    [InlineData(16, 15)]
    public void Limits_out_of_range_are_refused(int maxBatchSize, int maxScheduledTokens) =>
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            new EngineOptions { MaxBatchSize = maxBatchSize, MaxScheduledTokens = maxScheduledTokens, Device = ExecutionDevice.Cuda }.Validate());

    [Fact]
    public void An_engine_on_the_cpu_has_the_slots_it_was_given_and_no_cuda_graphs()
    {
        using var model = LoadedModel.Open(Path.Combine(Checkout.Root, "models", "tiny"), new EngineOptions { MaxBatchSize = 5, NumThreads = 1 });
        Assert.Equal(5, model.Engine.NumSlots);
        Assert.Null(model.SlotsNote); // they fit: nothing to say
        Assert.Equal(CudaGraphUse.Auto, new EngineOptions().CudaGraphs);
        Assert.False(model.Engine.ReplaysCudaGraphs, "auto: CUDA graphs only on the CUDA device");
    }

    [Fact]
    public void CudaGraphs_on_is_refused_on_the_cpu()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineOptions { CudaGraphs = CudaGraphUse.On }.Validate());
        Assert.Contains("CUDA graphs need the CUDA device", error.Message);
        new EngineOptions { CudaGraphs = CudaGraphUse.On, Device = ExecutionDevice.Cuda }.Validate();
        new EngineOptions { CudaGraphs = CudaGraphUse.Off }.Validate();
    }
}
