using System.Runtime.InteropServices;

namespace VicunaBatch.Testing;

/// <summary>Unix signals to a child process, as a container runtime or an operator sends them.</summary>
public static partial class Signals
{
    /// <summary>SIGTERM: what a container runtime sends on stop (the program drains and exits).</summary>
    public static void Terminate(int processId) => Send(processId, 15, "SIGTERM");

    /// <summary>SIGKILL: what comes when the grace period after SIGTERM is over; no cleanup runs.</summary>
    public static void KillNow(int processId) => Send(processId, 9, "SIGKILL");

    private static void Send(int processId, int signal, string name)
    {
        if (kill(processId, signal) != 0) throw new InvalidOperationException($"kill({name}) of {processId} failed: errno {Marshal.GetLastPInvokeError()}");
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
