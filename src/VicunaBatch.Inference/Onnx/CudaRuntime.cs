using System.Runtime.InteropServices;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// The few CUDA runtime calls the engine makes itself (ONNX Runtime does the rest), through one checked funnel:
/// a failed call throws <see cref="InferenceException"/> with the CUDA error code. Every call but <see cref="DeviceCount"/>
/// works on the calling thread's current device (CUDA keeps one per thread) and its primary context, which the CUDA
/// execution provider created: the runners make their GPU current (<see cref="CudaDevice.MakeCurrent"/>) at each entry
/// point that reaches CUDA, on whichever thread calls it.
/// </summary>
internal static partial class CudaRuntime
{
    private const string Library = "libcudart.so.13";

    /// <summary>The CUDA GPUs this process sees (after <c>CUDA_VISIBLE_DEVICES</c>), numbered 0 to the count less one.</summary>
    public static int DeviceCount()
    {
        Check(CudaGetDeviceCount(out var count), "cudaGetDeviceCount");
        return count;
    }

    /// <summary>Makes GPU <paramref name="device"/> the calling thread's current device.</summary>
    public static void SetDevice(int device) => Check(CudaSetDevice(device), $"cudaSetDevice({device})");

    /// <summary><see cref="SetDevice"/> that reports a refusal instead of throwing (for a release path, which must not throw).</summary>
    public static bool TrySetDevice(int device) => CudaSetDevice(device) == 0;

    /// <summary>Free and total memory of the current device.</summary>
    public static (long Free, long Total) MemoryInfo()
    {
        Check(CudaMemGetInfo(out var free, out var total), "cudaMemGetInfo");
        return ((long)free, (long)total);
    }

    /// <summary>Page-locked host memory: device-to-host copies into it run at full bus speed (no staging).</summary>
    public static IntPtr HostAlloc(long numBytes)
    {
        Check(CudaHostAlloc(out var pointer, (nuint)numBytes, 0), $"cudaHostAlloc({numBytes})");
        return pointer;
    }

    /// <summary>Copies <paramref name="numBytes"/> from device memory to host memory (page-locked: at full bus speed);
    /// returns when the copy is done.</summary>
    public static void CopyToHost(IntPtr host, IntPtr device, long numBytes) =>
        Check(CudaMemcpy(host, device, (nuint)numBytes, CudaMemcpyDeviceToHost), $"cudaMemcpy(device to host, {numBytes})");

    /// <summary>Copies <paramref name="numBytes"/> from host memory (page-locked: at full bus speed) to device memory;
    /// returns when the copy is done.</summary>
    public static void CopyToDevice(IntPtr device, IntPtr host, long numBytes) =>
        Check(CudaMemcpy(device, host, (nuint)numBytes, CudaMemcpyHostToDevice), $"cudaMemcpy(host to device, {numBytes})");

    /// <summary>
    /// Copies <paramref name="height"/> runs of <paramref name="width"/> bytes, <paramref name="pitch"/> bytes apart, within
    /// device memory, and waits for the device: a device-to-device <c>cudaMemcpy2D</c> may return before it is done, and
    /// ONNX Runtime's next call runs on its own stream.
    /// </summary>
    public static void CopyOnDevice(IntPtr destination, IntPtr source, long pitch, long width, int height)
    {
        Check(CudaMemcpy2D(destination, (nuint)pitch, source, (nuint)pitch, (nuint)width, (nuint)height, CudaMemcpyDeviceToDevice),
            $"cudaMemcpy2D(device to device, {height} × {width} bytes)");
        Check(CudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }

    private const int CudaMemcpyHostToDevice = 1;
    private const int CudaMemcpyDeviceToHost = 2;
    private const int CudaMemcpyDeviceToDevice = 3;

    /// <summary>Releases <see cref="HostAlloc"/> memory; false when CUDA refused (a SafeHandle release must not throw).</summary>
    public static bool TryFreeHost(IntPtr pointer) => CudaFreeHost(pointer) == 0;

    private static void Check(int status, string call)
    {
        if (status != 0) throw new InferenceException($"{call} failed with CUDA error {status}");
    }

    [LibraryImport(Library, EntryPoint = "cudaGetDeviceCount")]
    private static partial int CudaGetDeviceCount(out int count);

    [LibraryImport(Library, EntryPoint = "cudaSetDevice")]
    private static partial int CudaSetDevice(int device);

    [LibraryImport(Library, EntryPoint = "cudaMemGetInfo")]
    private static partial int CudaMemGetInfo(out nuint free, out nuint total);

    [LibraryImport(Library, EntryPoint = "cudaHostAlloc")]
    private static partial int CudaHostAlloc(out IntPtr pointer, nuint size, uint flags);

    [LibraryImport(Library, EntryPoint = "cudaMemcpy")]
    private static partial int CudaMemcpy(IntPtr destination, IntPtr source, nuint count, int kind);

    [LibraryImport(Library, EntryPoint = "cudaMemcpy2D")]
    private static partial int CudaMemcpy2D(IntPtr destination, nuint destinationPitch, IntPtr source, nuint sourcePitch, nuint width, nuint height, int kind);

    [LibraryImport(Library, EntryPoint = "cudaDeviceSynchronize")]
    private static partial int CudaDeviceSynchronize();

    [LibraryImport(Library, EntryPoint = "cudaFreeHost")]
    private static partial int CudaFreeHost(IntPtr pointer);
}
