using System.Runtime.InteropServices;

namespace VicunaBatch.Inference.Package;

/// <summary>
/// One file of a package in native host memory, page-aligned, of any length (a 26 GB weights file is one buffer): no
/// GC heap, no 2 GiB limit. Written through <see cref="OpenWrite"/> (each writer a disjoint range, so ranges fill in
/// parallel); ONNX Runtime reads the weights in place from <see cref="SafeHandle.DangerousGetHandle"/>.
/// </summary>
public sealed unsafe class PackageFileBuffer : SafeBuffer
{
    /// <summary>Page alignment: every tensor at a naturally aligned offset of the file is naturally aligned in memory.</summary>
    private const int Alignment = 4096;

    public PackageFileBuffer(long numBytes) : base(ownsHandle: true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numBytes);
        NumBytes = numBytes;
        // one byte for an empty file, so the handle is valid
        SetHandle((IntPtr)NativeMemory.AlignedAlloc((nuint)Math.Max(numBytes, 1), Alignment));
        Initialize((ulong)Math.Max(numBytes, 1));
    }

    public long NumBytes { get; }

    /// <summary>A stream that writes <paramref name="length"/> bytes from <paramref name="offset"/> and refuses to go past them.</summary>
    public UnmanagedMemoryStream OpenWrite(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > NumBytes)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset + length}) of a {NumBytes}-byte buffer");
        return new UnmanagedMemoryStream(this, offset, length, FileAccess.Write);
    }

    /// <summary>A copy of the bytes on the GC heap (a small file: the config, the tokenizer, the graph without its weights).</summary>
    public byte[] ToArray()
    {
        if (NumBytes > Array.MaxLength) throw new InvalidOperationException($"{NumBytes} bytes do not fit one array");
        return new ReadOnlySpan<byte>((void*)handle, (int)NumBytes).ToArray();
    }

    protected override bool ReleaseHandle()
    {
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}
