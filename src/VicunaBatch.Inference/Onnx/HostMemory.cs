using System.Globalization;

namespace VicunaBatch.Inference.Onnx;

/// <summary>
/// Host memory this process can still take without the kernel's OOM killer ending it: Linux's <c>MemAvailable</c>
/// (free memory plus what the page cache can give back), capped by the memory cgroup's limit less its use (a
/// container's <c>memory.max</c>), and by the runtime's view of the memory limit less this process's working set (which
/// is all there is elsewhere).
/// </summary>
internal static class HostMemory
{
    public static long AvailableBytes()
    {
        var limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes - Environment.WorkingSet;
        if (!OperatingSystem.IsLinux())
        {
            return Math.Max(limit, 0);
        }
        var available = Read("/proc/meminfo") is { } meminfo ? ParseMemAvailable(meminfo) : null;
        var cgroup = CgroupHeadroom(Read("/sys/fs/cgroup/memory.max"), Read("/sys/fs/cgroup/memory.current"));
        // the runtime's limit also knows a cgroup v1 container's
        return Math.Max(Math.Min(limit, Math.Min(available ?? long.MaxValue, cgroup ?? long.MaxValue)), 0);
    }

    /// <summary>The <c>MemAvailable:</c> line of <c>/proc/meminfo</c> (kB), in bytes; null without one.</summary>
    internal static long? ParseMemAvailable(string meminfo)
    {
        foreach (var line in meminfo.Split('\n'))
        {
            if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
            var fields = line["MemAvailable:".Length..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : null;
        }
        return null;
    }

    /// <summary>cgroup v2: <c>memory.max</c> less <c>memory.current</c>; null when unlimited (<c>max</c>) or not there.</summary>
    internal static long? CgroupHeadroom(string? max, string? current) =>
        long.TryParse(max?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var limit) &&
        long.TryParse(current?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var used)
            ? Math.Max(limit - used, 0)
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
