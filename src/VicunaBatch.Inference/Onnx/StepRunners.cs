using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Onnx;

/// <summary>The one place the package's attention variant picks the runner (and with it, through the runner's KV layout, the scheduler).</summary>
internal static class StepRunners
{
    public static IStepRunner Open(ModelPackage package, EngineOptions options, int maxLength)
    {
        if (package.Config.Attention == AttentionVariant.GroupQuery)
        {
            return new GqaRunner(package, options.MaxBatchSize, maxLength, options.MaxScheduledTokens, options.NumThreads, options.Device, options.Sampling,
                cudaGraphs: options.CudaGraphs == CudaGraphUse.On || (options.CudaGraphs == CudaGraphUse.Auto && options.Device == ExecutionDevice.Cuda));
        }
        if (options.Device != ExecutionDevice.Cuda)
        {
            throw new NotSupportedException(
                $"{package.Directory} is a paged-attention package (ONNX_CONTRACT.md variant B, com.microsoft.PagedAttention), which ONNX Runtime runs on CUDA only: " +
                "run it with --device cuda on a GPU, or export variant A for the CPU (model-export/export.py without --attention paged)");
        }
        if (options.CudaGraphs == CudaGraphUse.On)
        {
            throw new NotSupportedException(
                $"{package.Directory} is a paged-attention package: its calls are not captured as CUDA graphs (PagedAttention reads each step's bounds on the host); run it with --cuda-graphs auto or off");
        }
        return new PagedRunner(package, PagedBatchSize(package, options), maxLength, options.MaxScheduledTokens, options.NumKvBlocks, options.NumThreads, options.Sampling);
    }

    /// <summary>Requests running at once: <see cref="EngineOptions.MaxBatchSize"/>, 0 = the package's max_batch_size; at most the step's tokens.</summary>
    internal static int PagedBatchSize(ModelPackage package, EngineOptions options)
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
