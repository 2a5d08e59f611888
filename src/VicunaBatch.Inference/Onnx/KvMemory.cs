using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Where <see cref="KvBuffers"/> lives: allocates its per-layer buffers once and names the memory their tensor views
/// are bound in. <see cref="HostKvMemory"/> for the CPU provider, <see cref="CudaKvMemory"/> for the CUDA provider.
/// </summary>
internal abstract class KvMemory : IDisposable
{
    /// <summary>The memory the allocations are in, for <see cref="OrtValue.CreateTensorValueWithData(OrtMemoryInfo, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType, long[], IntPtr, long)"/>.</summary>
    public abstract OrtMemoryInfo MemoryInfo { get; }

    /// <summary>One buffer of <paramref name="numBytes"/> bytes, live until disposed (before this memory).</summary>
    public abstract KvAllocation Allocate(long numBytes);

    /// <summary>
    /// Copies <paramref name="height"/> runs of <paramref name="width"/> bytes, <paramref name="pitch"/> bytes apart, from
    /// <paramref name="source"/> to <paramref name="destination"/> (both in this memory, not overlapping); returns when
    /// the copy is done, so the next decoder call reads it.
    /// </summary>
    public abstract void Copy(IntPtr destination, IntPtr source, long pitch, long width, int height);

    /// <summary>Host memory the KV is swapped to (page-locked beside a GPU: copies at full bus speed).</summary>
    public abstract KvAllocation AllocateHost(long numBytes);

    /// <summary>Copies <paramref name="numBytes"/> of KV memory to host memory; returns when done.</summary>
    public abstract void CopyToHost(IntPtr host, IntPtr kv, long numBytes);

    /// <summary>Copies <paramref name="numBytes"/> of host memory into KV memory; returns when done.</summary>
    public abstract void CopyFromHost(IntPtr kv, IntPtr host, long numBytes);

    public virtual void Dispose()
    {
    }

    /// <summary>Units of <paramref name="unitBytes"/> in <paramref name="availableBytes"/> less <paramref name="reserveBytes"/>: 0 to <paramref name="maxUnits"/>.</summary>
    internal static int Fit(long availableBytes, long reserveBytes, long unitBytes, int maxUnits) =>
        (int)Math.Clamp((availableBytes - reserveBytes) / unitBytes, 0, maxUnits);
}

/// <summary>One buffer of a <see cref="KvMemory"/>: its start address (host or device) and size.</summary>
internal abstract class KvAllocation : IDisposable
{
    public abstract IntPtr Pointer { get; }

    public abstract long NumBytes { get; }

    public IntPtr At(long byteOffset)
    {
        if (byteOffset < 0 || byteOffset > NumBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(byteOffset), byteOffset, $"buffer holds {NumBytes} bytes");
        }
        return Pointer + (nint)byteOffset;
    }

    public abstract void Dispose();
}

/// <summary>Zeroed, aligned host memory (<see cref="NativeBuffer"/>): the CPU provider reads and writes it in place.</summary>
internal sealed class HostKvMemory : KvMemory
{
    public override OrtMemoryInfo MemoryInfo => OrtMemoryInfo.DefaultInstance;

    /// <summary>
    /// At most <paramref name="maxSlots"/> slots; fewer when fewer fit in <paramref name="availableBytes"/> (the host memory
    /// left once the weights are loaded) less <see cref="EngineOptions.HostMemoryReserveBytes"/>. The cache is zeroed
    /// when it is made, so a cache larger than the memory would get the process killed by the kernel's OOM killer.
    /// </summary>
    public static int FitSlots(long slotBytes, int maxSlots, long availableBytes)
    {
        var fit = Fit(availableBytes, EngineOptions.HostMemoryReserveBytes, slotBytes, maxSlots);
        if (fit < 1)
        {
            throw new InferenceException(
                $"no KV slot fits: {availableBytes >> 20} MiB of memory available after the weights, one slot of {slotBytes >> 20} MiB plus {EngineOptions.HostMemoryReserveBytes >> 20} MiB reserve needed; use a shorter --max-sequence-length");
        }
        return fit;
    }

    public override KvAllocation Allocate(long numBytes) => new BufferAllocation(new NativeBuffer(numBytes));

    public override KvAllocation AllocateHost(long numBytes) => Allocate(numBytes);

    public override unsafe void CopyToHost(IntPtr host, IntPtr kv, long numBytes) => Buffer.MemoryCopy((void*)kv, (void*)host, numBytes, numBytes);

    public override unsafe void CopyFromHost(IntPtr kv, IntPtr host, long numBytes) => Buffer.MemoryCopy((void*)host, (void*)kv, numBytes, numBytes);

    public override unsafe void Copy(IntPtr destination, IntPtr source, long pitch, long width, int height)
    {
        for (var run = 0; run < height; run++)
        {
            Buffer.MemoryCopy((void*)(source + (nint)(run * pitch)), (void*)(destination + (nint)(run * pitch)), width, width);
        }
    }
}

/// <summary>
/// Device memory from the session's CUDA allocator (<see cref="OrtAllocator"/> over the session, device allocator of
/// GPU <c>deviceId</c>). Not zeroed: GroupQueryAttention reads a row only up to its <c>seqlens_k</c>, which it wrote
/// itself. The session must outlive this memory and its allocations.
/// </summary>
internal sealed class CudaKvMemory : KvMemory
{
    private readonly OrtMemoryInfo _memoryInfo;
    private readonly OrtAllocator _allocator;

    public CudaKvMemory(InferenceSession session, int deviceId)
    {
        _memoryInfo = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, deviceId, OrtMemType.Default);
        try
        {
            _allocator = new OrtAllocator(session, _memoryInfo);
        }
        catch
        {
            _memoryInfo.Dispose();
            throw;
        }
    }

    public override OrtMemoryInfo MemoryInfo => _memoryInfo;

    /// <summary>As many slots as the free device memory holds, less <see cref="EngineOptions.DeviceMemoryReserveBytes"/>; at most <paramref name="maxSlots"/>.</summary>
    public int FitSlots(long slotBytes, int maxSlots) => Fit(slotBytes, maxSlots, "slot", "use a shorter --max-sequence-length");

    /// <summary>As many KV blocks (paged) as the free device memory holds, less the same reserve; at most <paramref name="maxBlocks"/>.</summary>
    public int FitBlocks(long blockBytes, int maxBlocks) => Fit(blockBytes, maxBlocks, "block", "free GPU memory or give --num-kv-blocks");

    private static int Fit(long unitBytes, int maxUnits, string unit, string advice)
    {
        var free = CudaRuntime.MemoryInfo().Free; // after what the session holds (the weights)
        var fit = Fit(free, EngineOptions.DeviceMemoryReserveBytes, unitBytes, maxUnits);
        if (fit < 1)
        {
            throw new InferenceException(
                $"no KV {unit} fits: {free >> 20} MiB of GPU memory free after the weights, one {unit} of {unitBytes >> 20} MiB plus {EngineOptions.DeviceMemoryReserveBytes >> 20} MiB reserve needed; {advice}");
        }
        return fit;
    }

    public override KvAllocation Allocate(long numBytes)
    {
        // OrtAllocator.Allocate takes a uint; one layer's key (or value) buffer for all slots is far below 4 GiB
        // for the models this engine runs (Vicuna-13B fp16, 32 slots of 2048: 640 MiB)
        if (numBytes <= 0 || numBytes > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(numBytes), numBytes, "one device KV buffer must be 1 byte to 4 GiB; use fewer slots or KV blocks, or a shorter --max-sequence-length");
        }
        return new DeviceAllocation(_allocator.Allocate((uint)numBytes));
    }

    public override void Copy(IntPtr destination, IntPtr source, long pitch, long width, int height) =>
        CudaRuntime.CopyOnDevice(destination, source, pitch, width, height);

    public override KvAllocation AllocateHost(long numBytes) => new BufferAllocation(new NativeBuffer(numBytes, pinned: true));

    public override void CopyToHost(IntPtr host, IntPtr kv, long numBytes) => CudaRuntime.CopyToHost(host, kv, numBytes);

    public override void CopyFromHost(IntPtr kv, IntPtr host, long numBytes) => CudaRuntime.CopyToDevice(kv, host, numBytes);

    public override void Dispose()
    {
        _allocator.Dispose();
        _memoryInfo.Dispose();
    }

    private sealed class DeviceAllocation(OrtMemoryAllocation allocation) : KvAllocation
    {
        // OrtMemoryAllocation is a SafeHandle over the allocated address (its Pointer property is internal)
        public override IntPtr Pointer => allocation.DangerousGetHandle();

        public override long NumBytes => (long)allocation.Size;

        public override void Dispose() => allocation.Dispose();
    }
}

/// <summary>An allocation of host memory (<see cref="NativeBuffer"/>, page-locked or not).</summary>
internal sealed class BufferAllocation(NativeBuffer buffer) : KvAllocation
{
    public override IntPtr Pointer => buffer.At(0);

    public override long NumBytes => buffer.NumBytes;

    public override void Dispose() => buffer.Dispose();
}
