using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Package;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// ONNX Runtime's C API <c>AddExternalInitializersFromFilesInMemory</c> (since 1.18), which the C# binding does not wrap:
/// a graph loaded from bytes finds each initializer's external data (<c>location</c>, <c>offset</c>, <c>length</c>) in
/// the buffer of that name. With <c>session.use_external_initializer_file_buffers_directly</c> ONNX Runtime uses
/// naturally aligned tensors in place instead of copying them (host memory holds the weights once, not twice), so the
/// buffers must outlive every session made with these options.
/// </summary>
internal static unsafe partial class ExternalDataInMemory
{
    /// <summary>The first API version with the call; the function table only grows, so a newer library answers it too.</summary>
    private const uint ApiVersion = 18;

    // places in struct OrtApi (onnxruntime_c_api.h, 1.31.1; Microsoft.ML.OnnxRuntime's OrtApi mirrors it)
    private const int GetErrorMessageIndex = 2;
    private const int ReleaseStatusIndex = 93;
    private const int AddExternalInitializersFromFilesInMemoryIndex = 279;

    private const string UseBuffersDirectly = "session.use_external_initializer_file_buffers_directly";

    /// <summary>Offers <paramref name="files"/> (name in the package, buffer) to sessions made with <paramref name="options"/>.</summary>
    public static void Add(SessionOptions options, IReadOnlyList<KeyValuePair<string, PackageFileBuffer>> files)
    {
        if (files.Count == 0) return;
        options.AddSessionConfigEntry(UseBuffersDirectly, "1");
        var api = Api();
        var add = (delegate* unmanaged<IntPtr, byte**, byte**, nuint*, nuint, IntPtr>)api[AddExternalInitializersFromFilesInMemoryIndex];
        var names = new IntPtr[files.Count];
        var added = new bool[files.Count];
        try
        {
            var buffers = new byte*[files.Count];
            var lengths = new nuint[files.Count];
            for (int i = 0; i < files.Count; i++)
            {
                names[i] = Marshal.StringToCoTaskMemUTF8(files[i].Key);
                files[i].Value.DangerousAddRef(ref added[i]);
                buffers[i] = (byte*)files[i].Value.DangerousGetHandle();
                lengths[i] = (nuint)files[i].Value.NumBytes;
            }
            fixed (IntPtr* namePointers = names)
            fixed (byte** bufferPointers = buffers)
            fixed (nuint* lengthPointers = lengths)
            {
                Check(api, add(options.DangerousGetHandle(), (byte**)namePointers, bufferPointers, lengthPointers, (nuint)files.Count));
            }
        }
        finally
        {
            for (int i = 0; i < files.Count; i++)
            {
                Marshal.FreeCoTaskMem(names[i]);
                if (added[i]) files[i].Value.DangerousRelease();
            }
        }
    }

    private static IntPtr* Api()
    {
        var apiBase = (IntPtr*)OrtGetApiBase();
        var getApi = (delegate* unmanaged<uint, IntPtr*>)apiBase[0];
        var api = getApi(ApiVersion);
        if (api is null) throw new NotSupportedException($"ONNX Runtime's native library does not offer API version {ApiVersion} (AddExternalInitializersFromFilesInMemory)");
        return api;
    }

    /// <summary>A failed call's OrtStatus as a <see cref="ModelPackageException"/>, the status released.</summary>
    private static void Check(IntPtr* api, IntPtr status)
    {
        if (status == IntPtr.Zero) return;
        var message = Marshal.PtrToStringUTF8(((delegate* unmanaged<IntPtr, IntPtr>)api[GetErrorMessageIndex])(status));
        ((delegate* unmanaged<IntPtr, void>)api[ReleaseStatusIndex])(status);
        throw new ModelPackageException($"ONNX Runtime refused the package's external data in memory: {message}");
    }

    [LibraryImport("onnxruntime")]
    private static partial IntPtr OrtGetApiBase();
}
