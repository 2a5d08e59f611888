using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// The package's attention variant, chosen once (<see cref="Of"/>): it opens the runner together with the KV cache
/// manager that places sequences in that runner's KV memory. Past this point nothing branches on the variant.
/// </summary>
internal abstract class EngineVariant
{
    public static EngineVariant Of(ModelPackage package) => package.Config.Attention switch
    {
        AttentionVariant.GroupQuery => new GqaVariant(),
        AttentionVariant.Paged => new PagedVariant(),
        var other => throw new ArgumentOutOfRangeException(nameof(package), other, "unknown attention variant"),
    };

    /// <summary>The runner, for sequences of at most <paramref name="maxLength"/> tokens, and its KV cache manager.</summary>
    public abstract (IStepRunner Runner, IKvCacheManager KvCache) Open(ModelPackage package, EngineOptions options, int maxLength);
}

/// <summary>Variant A, GroupQueryAttention: KV slots of the maximum length, as many as <see cref="GqaRunner"/> allocated.</summary>
internal sealed class GqaVariant : EngineVariant
{
    public override (IStepRunner Runner, IKvCacheManager KvCache) Open(ModelPackage package, EngineOptions options, int maxLength)
    {
        var runner = new GqaRunner(package, options.MaxBatchSize, maxLength, options.MaxScheduledTokens, options.NumThreads, options.Device, options.Sampling,
            cudaGraphs: options.CudaGraphs == CudaGraphUse.On || (options.CudaGraphs == CudaGraphUse.Auto && options.Device == ExecutionDevice.Cuda), gpu: options.Gpu);
        return (runner, new SlotTable(runner.NumSlots, maxLength));
    }
}

/// <summary>
/// Variant B, PagedAttention (CUDA only): block tables over the block pool <see cref="PagedRunner"/> allocated, with the
/// prefix cache when <see cref="EngineOptions.PrefixCache"/> is on.
/// </summary>
internal sealed class PagedVariant : EngineVariant
{
    public override (IStepRunner Runner, IKvCacheManager KvCache) Open(ModelPackage package, EngineOptions options, int maxLength)
    {
        if (options.Device != ExecutionDevice.Cuda)
        {
            throw new NotSupportedException(
                $"{package.Location} is a paged-attention package (ONNX_CONTRACT.md variant B, com.microsoft.PagedAttention), which ONNX Runtime runs on CUDA only: " +
                "run it with --device cuda on a GPU, or export variant A for the CPU (model-export/export.py without --attention paged)");
        }
        if (options.CudaGraphs == CudaGraphUse.On)
        {
            throw new NotSupportedException(
                $"{package.Location} is a paged-attention package: its calls are not captured as CUDA graphs (PagedAttention reads each step's bounds on the host); run it with --cuda-graphs auto or off");
        }
        using var owned = new DisposeOnFailure();
        var runner = owned.Own(new PagedRunner(package, BatchSize(package, options), maxLength, options.MaxScheduledTokens, options.NumKvBlocks, options.NumThreads,
            options.Sampling, options.Gpu, options.KvAdmission == KvAdmission.OnDemand ? options.KvSwapSpaceBytes : 0));
        var blocks = new BlockTables(runner.Blocks.NumBlocks, runner.Blocks.BlockSize, maxLength, options.PrefixCache, runner.NumSwapBlocks);
        owned.Keep();
        return (runner, blocks);
    }

    /// <summary>Requests running at once: <see cref="EngineOptions.MaxBatchSize"/>, 0 = the package's max_batch_size; at most the step's tokens.</summary>
    internal static int BatchSize(ModelPackage package, EngineOptions options)
    {
        var requested = options.MaxBatchSize > 0 ? options.MaxBatchSize : package.Config.DynamicBatching!.MaxBatchSize;
        if (requested > PagedRunner.MaxBatchSizeLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(options), requested,
                $"max batch size {requested}: PagedAttention runs at most {PagedRunner.MaxBatchSizeLimit} requests per call");
        }
        return Math.Min(requested, options.MaxScheduledTokens);
    }
}
