namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// What a runner's constructor has allocated so far: disposed in reverse order (device buffers before the memory and the
/// session they came from) when the constructor throws, kept once it calls <see cref="Keep"/>.
/// </summary>
internal sealed class DisposeOnFailure : IDisposable
{
    private readonly List<IDisposable> _owned = [];
    private bool _kept;

    public T Own<T>(T resource) where T : IDisposable
    {
        _owned.Add(resource);
        return resource;
    }

    /// <summary>Construction succeeded: the runner's own Dispose frees these from now on.</summary>
    public void Keep() => _kept = true;

    public void Dispose()
    {
        if (_kept) return;
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            _owned[i].Dispose();
        }
    }
}
