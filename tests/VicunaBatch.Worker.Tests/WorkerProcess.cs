using System.Diagnostics;
using System.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Worker.Tests;

/// <summary>The compiled <c>vicuna-worker</c> started as a child process (as a container runs it), its output captured.</summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private WorkerProcess(Process process) => _process = process;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>Starts <c>dotnet vicuna-worker.dll</c> with settings as environment variables (<c>Worker__DrainSeconds</c>…).</summary>
    public static WorkerProcess Start(IReadOnlyDictionary<string, string> environment)
    {
        var info = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "vicuna-worker.dll"));
        foreach (var (key, value) in environment) info.Environment[key] = value;
        var process = new Process { StartInfo = info };
        var worker = new WorkerProcess(process);
        DataReceivedEventHandler append = (_, e) => { if (e.Data is not null) lock (worker._output) worker._output.AppendLine(e.Data); };
        process.OutputDataReceived += append;
        process.ErrorDataReceived += append;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return worker;
    }

    /// <summary>What a container runtime sends on stop.</summary>
    public void SendSigterm() => Signals.Terminate(_process.Id);

    /// <summary>What a container runtime sends when the grace period after SIGTERM is over: no cleanup runs.</summary>
    public void SendSigkill() => Signals.KillNow(_process.Id);

    public bool HasExited => _process.HasExited;

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try { await _process.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { throw new TimeoutException($"vicuna-worker did not exit within {timeout}; output:\n{Output}"); }
        _process.WaitForExit(); // drains the redirected streams
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}
