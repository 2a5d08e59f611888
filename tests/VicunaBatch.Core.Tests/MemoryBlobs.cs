using System.Runtime.CompilerServices;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Tests;

/// <summary>Read-only single-blob store over a byte array, for range reads in Core tests.</summary>
internal sealed class MemoryBlobs(byte[] content) : IBlobStore
{
    public Task<Stream> OpenReadAsync(string name, BlobRange? range = null, CancellationToken cancellationToken = default)
    {
        var (offset, length) = range is { } r ? ((int)r.Offset, (int)(r.Length ?? content.Length - r.Offset)) : (0, content.Length);
        return Task.FromResult<Stream>(new MemoryStream(content, offset, length, writable: false));
    }

    public Task<BlobProperties> PutAsync(string name, Stream content, BlobCondition condition, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public Task<BlobProperties?> GetPropertiesAsync(string name, CancellationToken cancellationToken = default) =>
        Task.FromResult<BlobProperties?>(new BlobProperties(name, "\"1\"", content.Length, DateTimeOffset.UnixEpoch));

    public async IAsyncEnumerable<string> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask;
        yield break;
    }

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => throw new NotSupportedException();
}
