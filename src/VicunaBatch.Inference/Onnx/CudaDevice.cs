using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// The GPU a runner runs on (<see cref="EngineOptions.Gpu"/>). CUDA's current device belongs to the calling thread, and
/// <see cref="CudaRuntime"/>'s calls use it, so a runner calls <see cref="MakeCurrent"/> first at each of its entry points
/// that reach CUDA — its constructor (the loading thread), <c>Execute</c> and <c>CopyKv</c> (the engine host's thread)
/// and <c>Dispose</c> (any thread): no CUDA call of an engine runs on another engine's GPU, whichever thread makes it.
/// ONNX Runtime's own calls take the GPU from the session's <c>device_id</c> (<see cref="DecoderSession"/>).
/// </summary>
internal sealed record CudaDevice(int Ordinal)
{
    /// <summary>Makes this GPU the calling thread's current device (a few hundred nanoseconds when it already is).</summary>
    public void MakeCurrent() => CudaRuntime.SetDevice(Ordinal);

    /// <summary>As <see cref="MakeCurrent"/>, for a release path: a refusal is left to the release calls that follow.</summary>
    public void TryMakeCurrent() => CudaRuntime.TrySetDevice(Ordinal);
}
