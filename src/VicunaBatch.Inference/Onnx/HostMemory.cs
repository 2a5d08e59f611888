using System.Globalization;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Host memory this process can still take without the kernel's OOM killer ending it, on Linux: <c>MemAvailable</c>
/// (free memory plus what the page cache can give back) less the file pages this process has mapped (weights ONNX
/// Runtime reads in place count as page cache, but are in use), capped by the memory cgroup's limit less its use (a
/// container's, cgroup v2 or v1). Elsewhere unknown (<see cref="long.MaxValue"/>). Not the runtime's
/// <c>GCMemoryInfo.TotalAvailableMemoryBytes</c>: that is the managed heap's limit when one is set
/// (<c>DOTNET_GCHeapHardLimit</c>), and the KV cache is native memory.
/// </summary>
internal static class HostMemory
{
    public static long AvailableBytes()
    {
        if (!OperatingSystem.IsLinux())
        {
            return long.MaxValue;
        }
        var available = Read("/proc/meminfo") is { } meminfo ? ParseKiB(meminfo, "MemAvailable:") : null;
        var mapped = Read("/proc/self/status") is { } status ? ParseKiB(status, "RssFile:") ?? 0 : 0;
        var v2 = CgroupHeadroom(Read("/sys/fs/cgroup/memory.max"), Read("/sys/fs/cgroup/memory.current"));
        var v1 = CgroupHeadroom(Read("/sys/fs/cgroup/memory/memory.limit_in_bytes"), Read("/sys/fs/cgroup/memory/memory.usage_in_bytes"));
        var headroom = available is { } a ? a - mapped : long.MaxValue;
        return Math.Max(Math.Min(headroom, Math.Min(v2 ?? long.MaxValue, v1 ?? long.MaxValue)), 0);
    }

    /// <summary>The value of the line starting with <paramref name="key"/> in a <c>/proc</c> file of kB lines (<c>meminfo</c>, <c>status</c>), in bytes; null without one.</summary>
    internal static long? ParseKiB(string text, string key)
    {
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(key, StringComparison.Ordinal)) continue;
            var fields = line[key.Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
        }
        return null;
    }

    /// <summary>A cgroup's limit less its use; null when unlimited (<c>max</c>) or not there.</summary>
    internal static long? CgroupHeadroom(string? limit, string? used) =>
        long.TryParse(limit?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var l) &&
        long.TryParse(used?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var u)
            ? Math.Max(l - u, 0)
            : null;

    private static string? Read(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
