namespace VicunaBatch.Inference.Engine;

/// <summary>Where ONNX Runtime runs the decoder and keeps the KV cache.</summary>
public enum ExecutionDevice
{
    /// <summary>ONNX Runtime's CPU execution provider; KV buffers in host memory. Runs float32, float16 and int4 packages.</summary>
    Cpu,

    /// <summary>
    /// ONNX Runtime's CUDA execution provider on one GPU (<see cref="EngineOptions.Gpu"/>); KV buffers allocated once in
    /// its memory. A host runs one engine per GPU (<see cref="VicunaBatch.Inference.GpuChoice"/>). Needs the native
    /// libraries of Microsoft.ML.OnnxRuntime.Gpu.Linux (the CPU package has none) and a float16 or bfloat16 package
    /// (the CUDA GroupQueryAttention kernel has no float32).
    /// </summary>
    Cuda,
}

/// <summary>
/// Where the tokens of sampled requests (temperature &gt; 0) are drawn, and the log probabilities of requests that ask for
/// them taken. Greedy ones take the graph's argmax when it has one.
/// </summary>
public enum SamplingSite
{
    /// <summary>In the graphs when the logits stay on the GPU (CUDA, a package with <c>greedy_ids</c>); else on the host.</summary>
    Auto,

    /// <summary>On the host, from the logits row copied down.</summary>
    Host,

    /// <summary>In the engine's <c>sampler.onnx</c> and <c>logprobs.onnx</c>, on the runner's device, over the logits where they are.</summary>
    Graph,
}

/// <summary>What admission asks of the KV cache (<see cref="EngineOptions.KvAdmission"/>).</summary>
public enum KvAdmission
{
    /// <summary>
    /// A request is admitted when the KV cache holds it to its end (prompt + max_tokens) beside what every running
    /// request will still take: nobody is preempted and recomputed, at the price of KV held back for requests that stop
    /// early (at EOS or a stop string).
    /// </summary>
    Reserve,

    /// <summary>
    /// A request is admitted when its first chunk fits; when a running request's KV cannot grow, the youngest is
    /// preempted and later recomputes its prompt and output (vLLM's default).
    /// </summary>
    OnDemand,
}

/// <summary>Whether decode calls replay as CUDA graphs (<see cref="EngineOptions.CudaGraphs"/>).</summary>
public enum CudaGraphUse
{
    /// <summary>On CUDA with a GroupQueryAttention package (variant A); off on the CPU and for paged packages.</summary>
    Auto,

    /// <summary>Always: an error on the CPU or with a paged package.</summary>
    On,

    /// <summary>Never: every node's kernels launched from the host, each call in its own shape.</summary>
    Off,
}

/// <summary>Engine sizing and scheduling limits. Defaults suit a CPU; the CLI prints them in --help.</summary>
public sealed class EngineOptions
{
    /// <summary>
    /// KV slots = requests decoding at once. Default 16; on the CPU fewer when fewer fit in the memory available once the
    /// weights are loaded, less <see cref="HostMemoryReserveBytes"/>. 0 (CUDA only): as many slots of <see cref="MaxSequenceLength"/>
    /// as fit in the GPU memory left once the weights are loaded, keeping <see cref="DeviceMemoryReserveBytes"/> free for
    /// activations, and at most <see cref="MaxScheduledTokens"/>. Paged packages: the most requests running at once
    /// (at most 256, PagedAttention's limit); 0 = the package's <c>engine.dynamic_batching.max_batch_size</c>.
    /// </summary>
    public int MaxBatchSize { get; set; } = 16;

    /// <summary>GPU memory left free when <see cref="MaxBatchSize"/> is 0: a step's activations and workspaces. 4 GiB.</summary>
    public const long DeviceMemoryReserveBytes = 4L << 30;

    /// <summary>
    /// Host memory left free on the CPU, where the KV slots are at most <see cref="MaxBatchSize"/> and fewer when fewer fit
    /// in the memory available once the weights are loaded: a step's activations, the logits, the rest of the process. 2 GiB.
    /// </summary>
    public const long HostMemoryReserveBytes = 2L << 30;

    /// <summary>Tokens (decodes + prefill chunk tokens) scheduled per step. Default 512.</summary>
    public int MaxScheduledTokens { get; set; } = 512;

    /// <summary>
    /// Paged packages (variant B) only: KV blocks of the package's block size in the device pool. Default 0: as many as fit in
    /// the GPU memory left once the weights are loaded, keeping <see cref="DeviceMemoryReserveBytes"/> free.
    /// </summary>
    public int NumKvBlocks { get; set; }

    /// <summary>Longest sequence (prompt + output) per slot; 0 = the package's context length.</summary>
    public int MaxSequenceLength { get; set; }

    /// <summary>The context the engine gives each request: <see cref="MaxSequenceLength"/>, at most the package's.</summary>
    public int ContextLengthFor(int packageContextLength) =>
        MaxSequenceLength == 0 ? packageContextLength : Math.Min(MaxSequenceLength, packageContextLength);

    /// <summary>ONNX Runtime intra-op threads; 0 = one per core.</summary>
    public int NumThreads { get; set; }

    /// <summary>
    /// Which waiting request gets a free slot. Default <see cref="AdmissionOrder.LongestFirst"/>: a batch job ends
    /// with its longest request, so those start first; arrival order is the tie-break, and a request overtaken by
    /// 16 × slots later arrivals goes next.
    /// </summary>
    public AdmissionOrder Admission { get; set; } = AdmissionOrder.LongestFirst;

    /// <summary>
    /// Paged packages: whether admission reserves a request's KV to its end (<see cref="KvAdmission.Reserve"/>, the
    /// default: no preemption) or takes it as the request grows (<see cref="KvAdmission.OnDemand"/>). KV slots hold the
    /// maximum length from the start, so over slots both are the same.
    /// </summary>
    public KvAdmission KvAdmission { get; set; } = KvAdmission.Reserve;

    /// <summary>
    /// Paged packages: bytes of host memory (page-locked) that hold the KV of requests preempted when the blocks run
    /// out, so they resume where they stopped instead of computing their prompt and output again; a request whose KV
    /// does not fit there is recomputed. Default 4 GiB (vLLM's swap space); 0: recompute only. Taken only under
    /// <see cref="KvAdmission.OnDemand"/>: reserve admission preempts nobody (but requests of n choices that outgrow the
    /// pool, which recompute), so it takes no host memory.
    /// </summary>
    public long KvSwapSpaceBytes { get; set; } = 4L << 30;

    /// <summary>
    /// Paged packages: the prefix cache. A whole KV block of computed tokens is cached under its tokens and the blocks
    /// before it; a request admitted later whose prompt starts with the same whole blocks (a template, a system prompt)
    /// shares them instead of computing them again, and blocks no request holds stay cached until the pool needs them
    /// (the least recently used first). Default true. KV slots hold no blocks: GroupQueryAttention packages ignore it.
    /// </summary>
    public bool PrefixCache { get; set; } = true;

    /// <summary>Execution provider and home of the KV cache. Default <see cref="ExecutionDevice.Cpu"/>.</summary>
    public ExecutionDevice Device { get; set; } = ExecutionDevice.Cpu;

    /// <summary>
    /// With <see cref="ExecutionDevice.Cuda"/>: the GPU (CUDA device ordinal) this engine runs on. Default 0. Not a
    /// setting of its own: a host runs one engine per GPU it was given (<see cref="VicunaBatch.Inference.GpuChoice"/>) and gives each its
    /// options <see cref="OnGpu"/> (a private setter, so configuration binding never sets it).
    /// </summary>
    public int Gpu { get; private set; }

    /// <summary>A copy of these options for the engine on GPU <paramref name="gpu"/>.</summary>
    public EngineOptions OnGpu(int gpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(gpu);
        var copy = (EngineOptions)MemberwiseClone();
        copy.Gpu = gpu;
        return copy;
    }

    /// <summary>Where sampled tokens are drawn. Default <see cref="SamplingSite.Auto"/>.</summary>
    public SamplingSite Sampling { get; set; } = SamplingSite.Auto;

    /// <summary>
    /// CUDA, GroupQueryAttention packages (variant A): each decode call is a CUDA graph that ONNX Runtime captures once
    /// per batch bucket and then replays, instead of launching every node's kernels from the host. Decode calls then
    /// pad their rows to a power of two and their attention mask to the slot length. Default <see cref="CudaGraphUse.Auto"/>.
    /// </summary>
    public CudaGraphUse CudaGraphs { get; set; } = CudaGraphUse.Auto;

    public void Validate()
    {
        if (MaxBatchSize < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "must be at least 1, or 0 to fit GPU memory");
        }
        if (MaxBatchSize == 0 && Device != ExecutionDevice.Cuda)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBatchSize), MaxBatchSize, "0 (as many KV slots as fit) needs the CUDA device");
        }
        if (MaxScheduledTokens < Math.Max(MaxBatchSize, 1))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxScheduledTokens), MaxScheduledTokens,
                $"must be at least the max batch size ({MaxBatchSize}) so every running request decodes each step");
        }
        if (NumKvBlocks < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(NumKvBlocks), NumKvBlocks, "must be >= 0 (0 = fit GPU memory)");
        }
        if (MaxSequenceLength < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxSequenceLength), MaxSequenceLength, "must be >= 0");
        }
        if (NumThreads < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(NumThreads), NumThreads, "must be >= 0");
        }
        if (!Enum.IsDefined(Admission))
        {
            throw new ArgumentOutOfRangeException(nameof(Admission), Admission, "unknown admission order");
        }
        if (!Enum.IsDefined(KvAdmission))
        {
            throw new ArgumentOutOfRangeException(nameof(KvAdmission), KvAdmission, "unknown KV admission");
        }
        if (KvSwapSpaceBytes < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(KvSwapSpaceBytes), KvSwapSpaceBytes, "must be >= 0");
        }
        if (!Enum.IsDefined(Device))
        {
            throw new ArgumentOutOfRangeException(nameof(Device), Device, "unknown execution device");
        }
        if (!Enum.IsDefined(CudaGraphs))
        {
            throw new ArgumentOutOfRangeException(nameof(CudaGraphs), CudaGraphs, "unknown CUDA graph use");
        }
        if (Gpu != 0 && Device != ExecutionDevice.Cuda)
        {
            throw new ArgumentOutOfRangeException(nameof(Gpu), Gpu, "a GPU needs the CUDA device");
        }
        if (CudaGraphs == CudaGraphUse.On && Device != ExecutionDevice.Cuda)
        {
            throw new ArgumentOutOfRangeException(nameof(CudaGraphs), CudaGraphs, "CUDA graphs need the CUDA device");
        }
    }
}
