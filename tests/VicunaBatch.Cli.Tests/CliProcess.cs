using System.Diagnostics;
using System.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>The compiled <c>vicuna-batch</c> program started as a child process, with its stdout and stderr captured.</summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private CliProcess(Process process)
    {
        _process = process;
    }

    public bool HasExited => _process.HasExited;

    public int ProcessId => _process.Id;

    public string Stdout
    {
        get { lock (_stdout) return _stdout.ToString(); }
    }

    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    /// <summary>Starts <c>dotnet vicuna-batch.dll ARGS</c> in <paramref name="workingDirectory"/>.</summary>
    public static CliProcess Start(string workingDirectory, params string[] args) =>
        Start(workingDirectory, new Dictionary<string, string>(), args);

    /// <summary>As <see cref="Start(string, string[])"/>, with extra environment variables.</summary>
    public static CliProcess Start(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        Start(workingDirectory, environment, inherit: true, args);

    /// <summary>
    /// As <see cref="Start(string, IReadOnlyDictionary{string, string}, string[])"/>, but the program sees only
    /// <paramref name="environment"/> and PATH, none of the variables the test run itself has (a CI system's among them).
    /// </summary>
    public static CliProcess StartInCleanEnvironment(string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args) =>
        Start(workingDirectory, environment, inherit: false, args);

    private static CliProcess Start(string workingDirectory, IReadOnlyDictionary<string, string> environment, bool inherit, string[] args)
    {
        var native = NativeProgramPath();
        var info = new ProcessStartInfo(native ?? Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (native is null) info.ArgumentList.Add(ProgramPath());
        foreach (var arg in args) info.ArgumentList.Add(arg);
        if (!inherit)
        {
            var path = Environment.GetEnvironmentVariable("PATH");
            info.Environment.Clear();
            if (path is not null) info.Environment["PATH"] = path;
        }
        foreach (var (name, value) in environment) info.Environment[name] = value;
        var process = new Process { StartInfo = info };
        var cli = new CliProcess(process);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (cli._stdout) cli._stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (cli._stderr) cli._stderr.AppendLine(e.Data); };
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    /// <summary>Runs the program to its end (killed after <paramref name="timeout"/>) and returns its exit code.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string workingDirectory, TimeSpan timeout, params string[] args) =>
        RunAsync(workingDirectory, timeout, new Dictionary<string, string>(), args);

    /// <summary>As <see cref="RunAsync(string, TimeSpan, string[])"/>, with extra environment variables.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(
        string workingDirectory, TimeSpan timeout, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var cli = Start(workingDirectory, environment, args);
        int exitCode = await cli.WaitForExitAsync(timeout);
        return (exitCode, cli.Stdout, cli.Stderr);
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill();
            throw new TimeoutException($"vicuna-batch did not exit within {timeout}; stderr:\n{Stderr}");
        }
        _process.WaitForExit(); // drains the redirected streams
        return _process.ExitCode;
    }

    /// <summary>SIGTERM: the program stops gracefully (what a container runtime sends on stop).</summary>
    public void Terminate() => Signals.Terminate(_process.Id);

    /// <summary>SIGKILL on Unix: no cleanup runs in the child.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>
    /// <c>$VICUNABATCH_CLI</c>: the native program (scripts/publish-native.sh) that these tests run instead of the built
    /// <c>vicuna-batch.dll</c> (tests/run.sh's second pass); null when unset. Set but missing is an error, not a fallback.
    /// </summary>
    internal static string? NativeProgramPath()
    {
        if (Environment.GetEnvironmentVariable("VICUNABATCH_CLI") is not { Length: > 0 } path) return null;
        return File.Exists(path) ? Path.GetFullPath(path) : throw new FileNotFoundException($"VICUNABATCH_CLI names {path}, which does not exist");
    }

    /// <summary>
    /// The program as the Cli project built it: <c>src/VicunaBatch.Cli/bin/CONFIGURATION/net10.0/vicuna-batch.dll</c>, the
    /// configuration these tests were built in. Not the copy the project reference puts beside the tests: the program is
    /// built for its runtime identifier (ReadyToRun), so its deps.json names native libraries where only its own bin
    /// folder has them.
    /// </summary>
    internal static string ProgramPath()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/CONFIGURATION/net10.0/
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var program = Path.Combine(folder.FullName, "src", "VicunaBatch.Cli", "bin", configuration, "net10.0", "vicuna-batch.dll");
            if (File.Exists(program)) return program;
        }
        throw new FileNotFoundException($"vicuna-batch.dll not found under src/VicunaBatch.Cli/bin/{configuration}/net10.0 above {AppContext.BaseDirectory}; build src/VicunaBatch.Cli -c {configuration}");
    }
}
