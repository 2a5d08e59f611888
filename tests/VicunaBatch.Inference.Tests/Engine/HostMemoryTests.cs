using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;

namespace VicunaBatch.Inference.Tests.Engine;

/// <summary>
/// KV slots on the CPU: at most the slots asked, fewer when fewer fit in the memory left after the weights (a cache
/// larger than the memory got the process killed by the kernel while it was zeroed), none an error; and where the
/// available memory is read from.
/// </summary>
public sealed class HostMemoryTests
{
    private const long GiB = 1L << 30;

    [Fact]
    public void Slots_are_those_asked_when_they_fit_and_fewer_when_not()
    {
        Assert.Equal(16, HostKvMemory.FitSlots(slotBytes: 64L << 20, maxSlots: 16, availableBytes: 20 * GiB));
        // Vicuna-7B in int4 on a 24 GiB machine: 2 GiB slots (2,048 tokens of float32 KV), 20.8 GiB left after the weights
        Assert.Equal(9, HostKvMemory.FitSlots(slotBytes: 2 * GiB, maxSlots: 16, availableBytes: 20 * GiB + 800L * (1 << 20)));
        Assert.Equal(1, HostKvMemory.FitSlots(slotBytes: 2 * GiB, maxSlots: 16, availableBytes: EngineOptions.HostMemoryReserveBytes + 2 * GiB));
    }

    [Fact]
    public void No_slot_fitting_is_an_error_that_says_what_to_change()
    {
        var error = Assert.Throws<InferenceException>(() => HostKvMemory.FitSlots(slotBytes: 4 * GiB, maxSlots: 16, availableBytes: 5 * GiB));
        Assert.Contains("no KV slot fits: 5120 MiB of memory available after the weights, one slot of 4096 MiB", error.Message);
        Assert.Contains("--max-sequence-length", error.Message);
    }

    [Fact]
    public void Available_memory_is_read_from_meminfo_less_mapped_files_and_capped_by_the_cgroup()
    {
        const string meminfo = "MemTotal:       24684140 kB\nMemFree:        21666200 kB\nMemAvailable:   23607100 kB\nBuffers:           1 kB\n";
        Assert.Equal(23607100L * 1024, HostMemory.ParseKiB(meminfo, "MemAvailable:"));
        Assert.Equal(961304L * 1024, HostMemory.ParseKiB("VmRSS:\t 6379636 kB\nRssAnon:\t 5418332 kB\nRssFile:\t  961304 kB\n", "RssFile:"));
        Assert.Null(HostMemory.ParseKiB("MemTotal: 1 kB\n", "MemAvailable:"));
        Assert.Equal(3 * GiB, HostMemory.CgroupHeadroom($"{8 * GiB}\n", $"{5 * GiB}\n"));
        Assert.Equal(0, HostMemory.CgroupHeadroom($"{4 * GiB}", $"{5 * GiB}"));
        Assert.Null(HostMemory.CgroupHeadroom("max\n", "123"));
        Assert.Null(HostMemory.CgroupHeadroom(null, null));

        // native memory: not the managed heap's limit (DOTNET_GCHeapHardLimit, which LongJobTests sets to 32 MB)
        var available = HostMemory.AvailableBytes();
        Assert.InRange(available, 1, long.MaxValue);
        if (OperatingSystem.IsLinux())
        {
            // read again a moment later: other tests may have taken some memory since
            var memAvailable = HostMemory.ParseKiB(File.ReadAllText("/proc/meminfo"), "MemAvailable:")!.Value;
            Assert.InRange(available, 1, memAvailable + GiB);
        }
    }
}
