using System.Runtime.InteropServices;

namespace GenAiPeer;

/// <summary>
/// GenAI 0.20.0's native Engine (<c>OgaCreateEngine</c>; its C API in build/native/include/ort_genai_c.h of the
/// package), which the C# binding does not wrap: every request added at once, the engine stepped until none is pending.
/// A package without <c>engine.dynamic_batching</c> (paged attention, CUDA) gets GenAI's static-batching engine;
/// the batch size and session options come as a config overlay.
/// </summary>
internal static class NativeEngine
{
    private const string Lib = "onnxruntime-genai";
    private const uint TokenFlag = 1u << 0, FinishedFlag = 1u << 1, FailedFlag = 1u << 3;

    /// <param name="overlay">JSON overlaid on the package's genai_config.json (<c>engine.static_batching.max_batch_size</c>, session options).</param>
    public static Generated Run(string package, string overlay, List<(int[] Prompt, int MaxTokens)> requests)
    {
        Check(OgaCreateConfig(package, out var config));
        Check(OgaConfigOverlay(config, overlay));
        Check(OgaCreateModelFromConfig(config, out var model));
        OgaDestroyConfig(config);
        Check(OgaCreateEngine(model, out var engine));
        OgaDestroyModel(model);
        Check(OgaCreateEngineEventBuffer(engine, 1024, out var buffer));
        var handles = new List<IntPtr>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            foreach (var (prompt, maxTokens) in requests)
            {
                Check(OgaEngineCreateRequest(engine, IntPtr.Zero, out var request));
                handles.Add(request);
                Check(OgaRequestCreateTurnOptions(request, out var turn));
                Check(OgaTurnOptionsSetMaxGeneratedTokens(turn, (ulong)maxTokens));
                Check(OgaTurnOptionsSetMinGeneratedTokens(turn, (ulong)maxTokens));  // EOS masked, as bench ignores it
                Check(OgaRequestBeginTurn(request, turn, prompt, (ulong)prompt.Length, out _));
                OgaDestroyTurnOptions(turn);
            }
            long tokens = 0, finished = 0;
            while (true)
            {
                Check(OgaEngineHasPendingRequests(engine, out var pending));
                if (!pending) break;
                Check(OgaEngineRun(engine, buffer));
                var count = (long)OgaEngineEventBufferGetCount(buffer);
                for (var i = 0; i < count; i++)
                {
                    var e = OgaEngineEventBufferGet(buffer, (nuint)i);
                    Check(OgaEngineEventGetFlags(e, out var flags));
                    if ((flags & FailedFlag) != 0) throw new InvalidOperationException("GenAI's engine reported a failed request");
                    if ((flags & TokenFlag) != 0) tokens++;
                    if ((flags & FinishedFlag) != 0) finished++;
                }
            }
            if (finished != requests.Count) throw new InvalidOperationException($"{finished} of {requests.Count} requests finished");
            return new Generated(tokens, tokens, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            handles.ForEach(OgaDestroyRequest);
            OgaDestroyEngineEventBuffer(buffer);
            OgaDestroyEngine(engine);
        }
    }

    private static void Check(IntPtr result)
    {
        if (result == IntPtr.Zero) return;
        var message = Marshal.PtrToStringUTF8(OgaResultGetError(result));
        OgaDestroyResult(result);
        throw new InvalidOperationException($"ONNX Runtime GenAI: {message}");
    }

    [DllImport(Lib)] private static extern IntPtr OgaResultGetError(IntPtr result);
    [DllImport(Lib)] private static extern void OgaDestroyResult(IntPtr result);
    [DllImport(Lib)] private static extern IntPtr OgaCreateConfig([MarshalAs(UnmanagedType.LPUTF8Str)] string path, out IntPtr config);
    [DllImport(Lib)] private static extern IntPtr OgaConfigOverlay(IntPtr config, [MarshalAs(UnmanagedType.LPUTF8Str)] string json);
    [DllImport(Lib)] private static extern IntPtr OgaCreateModelFromConfig(IntPtr config, out IntPtr model);
    [DllImport(Lib)] private static extern void OgaDestroyConfig(IntPtr config);
    [DllImport(Lib)] private static extern void OgaDestroyModel(IntPtr model);
    [DllImport(Lib)] private static extern IntPtr OgaCreateEngine(IntPtr model, out IntPtr engine);
    [DllImport(Lib)] private static extern void OgaDestroyEngine(IntPtr engine);
    [DllImport(Lib)] private static extern IntPtr OgaCreateEngineEventBuffer(IntPtr engine, nuint capacity, out IntPtr buffer);
    [DllImport(Lib)] private static extern void OgaDestroyEngineEventBuffer(IntPtr buffer);
    [DllImport(Lib)] private static extern IntPtr OgaEngineRun(IntPtr engine, IntPtr buffer);
    [DllImport(Lib)] private static extern nuint OgaEngineEventBufferGetCount(IntPtr buffer);
    [DllImport(Lib)] private static extern IntPtr OgaEngineEventBufferGet(IntPtr buffer, nuint index);
    [DllImport(Lib)] private static extern IntPtr OgaEngineEventGetFlags(IntPtr e, out uint flags);
    [DllImport(Lib)] private static extern IntPtr OgaEngineHasPendingRequests(IntPtr engine, [MarshalAs(UnmanagedType.U1)] out bool pending);
    [DllImport(Lib)] private static extern IntPtr OgaEngineCreateRequest(IntPtr engine, IntPtr options, out IntPtr request);
    [DllImport(Lib)] private static extern void OgaDestroyRequest(IntPtr request);
    [DllImport(Lib)] private static extern IntPtr OgaRequestCreateTurnOptions(IntPtr request, out IntPtr options);
    [DllImport(Lib)] private static extern void OgaDestroyTurnOptions(IntPtr options);
    [DllImport(Lib)] private static extern IntPtr OgaTurnOptionsSetMaxGeneratedTokens(IntPtr options, ulong value);
    [DllImport(Lib)] private static extern IntPtr OgaTurnOptionsSetMinGeneratedTokens(IntPtr options, ulong value);
    [DllImport(Lib)] private static extern IntPtr OgaRequestBeginTurn(IntPtr request, IntPtr options, int[] inputIds, ulong count, out ulong turnId);
}
