using VicunaBatch.Core.Ports;

namespace VicunaBatch.Azure;

/// <summary>
/// Where a port blob name lives in the storage account. The first segment of a name picks a container and is
/// dropped ("files/file-1/content.jsonl" → container inputs, blob "file-1/content.jsonl"; "inbox/a.jsonl" →
/// container inbox, blob "a.jsonl", which is what a person dropping a.jsonl into the inbox container writes);
/// any other name goes whole into the jobs container ("jobs/batch_1/job.json", "tenants/…"). One container per
/// role is what lets the infra grant the GPU workers read-only access to inputs and write access to job state.
/// Names are checked as the folder store checks them (relative, no empty, "." or ".." segments).
/// </summary>
internal sealed class BlobRoutes
{
    private readonly Dictionary<string, string> _segmentToContainer;

    public BlobRoutes(StorageContainerNames containers)
    {
        DefaultContainer = containers.Jobs;
        _segmentToContainer = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["files"] = containers.Inputs,
            ["inbox"] = containers.Inbox,
            ["pipelines"] = containers.Pipelines,
        };
    }

    /// <summary>Every name whole in one container, no segment routed (a pipeline's source or output container).</summary>
    public BlobRoutes(string container)
    {
        DefaultContainer = container;
        _segmentToContainer = new Dictionary<string, string>(StringComparer.Ordinal);
    }

    /// <summary>Container of every name whose first segment has no route of its own.</summary>
    public string DefaultContainer { get; }

    /// <summary>Routed first segments in ordinal order.</summary>
    public IEnumerable<string> Segments => _segmentToContainer.Keys.Order(StringComparer.Ordinal);

    public IEnumerable<string> Containers => _segmentToContainer.Values.Append(DefaultContainer).Distinct(StringComparer.Ordinal);

    /// <summary>The container and blob name of a port name.</summary>
    /// <exception cref="BlobStoreException"><see cref="BlobStoreFailure.InvalidName"/>.</exception>
    public (string Container, string Blob) Locate(string name)
    {
        Check(name);
        int slash = name.IndexOf('/');
        if (slash > 0 && _segmentToContainer.TryGetValue(name[..slash], out var container)) return (container, name[(slash + 1)..]);
        if (slash < 0 && _segmentToContainer.ContainsKey(name))
            throw new BlobStoreException(BlobStoreFailure.InvalidName, name, $"invalid blob name \"{name}\": \"{name}/\" is a container, not a blob");
        return (DefaultContainer, name);
    }

    /// <summary>The container of a routed segment.</summary>
    public string ContainerOf(string segment) => _segmentToContainer[segment];

    /// <summary>True when a default-container blob name starts with a routed segment (written around the store; never listed).</summary>
    public bool IsShadowed(string defaultContainerBlob)
    {
        int slash = defaultContainerBlob.IndexOf('/');
        return slash > 0 && _segmentToContainer.ContainsKey(defaultContainerBlob[..slash]);
    }

    private static void Check(string name)
    {
        if (string.IsNullOrEmpty(name) || name.StartsWith('/') || name.Contains('\\') || name.Contains('\0') || name.Length > 1024)
            throw Invalid(name, "must be a relative name of at most 1024 characters with '/' separators");
        if (name.Split('/').Any(s => s is "" or "." or ".."))
            throw Invalid(name, "must not contain empty, '.' or '..' segments");
    }

    private static BlobStoreException Invalid(string name, string why) => new(BlobStoreFailure.InvalidName, name, $"invalid blob name \"{name}\": {why}");
}
