using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// ONNX Runtime's own telemetry, off unless the user set <c>ORT_DISABLE_TELEMETRY</c> themselves. Its official builds
/// collect events on Linux too (1.31: a device id and an offline event cache of a few MB under
/// <c>$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime</c>, uploaded when the machine can reach the collector); a
/// self-hosted engine sends nothing anywhere on its own. ONNX Runtime reads the variable once, when it initializes, from
/// the native environment, which <see cref="Environment.SetEnvironmentVariable(string, string)"/> does not change on
/// Unix: libc's <c>setenv</c> sets it, before the first session.
/// </summary>
internal static partial class OnnxRuntimeTelemetry
{
    public const string DisableVariable = "ORT_DISABLE_TELEMETRY";

    private static readonly Lazy<bool> Disabled = new(Disable);

    /// <summary>Call before any ONNX Runtime session is created; true when this process turned the telemetry off.</summary>
    public static bool EnsureDisabled() => Disabled.Value;

    private static bool Disable()
    {
        if (Environment.GetEnvironmentVariable(DisableVariable) is not null) return false; // the user's choice stands
        if (!OperatingSystem.IsWindows() && SetEnv(DisableVariable, "1", overwrite: 0) != 0)
        {
            throw new InvalidOperationException($"setenv({DisableVariable}) failed with errno {Marshal.GetLastPInvokeError()}");
        }
        OrtEnv.Instance().DisableTelemetryEvents(); // Windows' events; elsewhere what the variable leaves
        return true;
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
