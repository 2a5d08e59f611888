using System.Runtime.InteropServices;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Zeroed, 64-byte aligned host memory that ONNX Runtime reads and writes through tensor views; with
/// <c>pinned</c>, page-locked by the CUDA runtime, so the CUDA provider's copies to and from it skip the driver's
/// staging buffers (what a GPU step's logits and inputs cross every step).
/// </summary>
internal sealed unsafe class NativeBuffer : SafeHandle
{
    private readonly bool _pinned;

    public NativeBuffer(long numBytes, bool pinned = false) : base(IntPtr.Zero, ownsHandle: true)
    {
        if (numBytes <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(numBytes), numBytes, "must be positive");
        }
        NumBytes = numBytes;
        _pinned = pinned;
        // cudaHostAlloc aligns to pages, far more than 64 bytes
        var pointer = pinned ? (void*)CudaRuntime.HostAlloc(numBytes) : NativeMemory.AlignedAlloc((nuint)numBytes, 64);
        NativeMemory.Clear(pointer, (nuint)numBytes);
        SetHandle((IntPtr)pointer);
    }

    public long NumBytes { get; }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public IntPtr At(long byteOffset)
    {
        if (byteOffset < 0 || byteOffset > NumBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(byteOffset), byteOffset, $"buffer holds {NumBytes} bytes");
        }
        return handle + (nint)byteOffset;
    }

    public Span<T> AsSpan<T>(int count) where T : unmanaged
    {
        if ((long)count * sizeof(T) > NumBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(count), count, $"buffer holds {NumBytes} bytes");
        }
        return new Span<T>((void*)handle, count);
    }

    protected override bool ReleaseHandle()
    {
        if (_pinned) return CudaRuntime.TryFreeHost(handle);
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}
