using System.Diagnostics;
using System.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Infra.Tests;

/// <summary>
/// An <c>az</c> on PATH for running infra/deploy.sh without Azure: a bash script that appends each call (its arguments
/// and the <c>VICUNA_WORKER_IMAGE</c> it saw) to a log and answers by the last rule given whose bash glob matches the
/// arguments; other calls print nothing and succeed.
/// </summary>
public sealed class FakeAz : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fake-az-").FullName;
    private readonly List<(string Glob, string Stdout, int ExitCode)> _rules = [];

    /// <summary>Answers calls whose arguments match <paramref name="glob"/> (bash <c>case</c> pattern; quote literal parts);
    /// a later rule wins over an earlier one.</summary>
    public FakeAz On(string glob, string stdout, int exitCode = 0)
    {
        _rules.Add((glob, stdout, exitCode));
        return this;
    }

    /// <summary>The calls so far, one line each: the arguments, then <c> | image=</c> and the worker image variable.</summary>
    public IReadOnlyList<string> Calls =>
        File.Exists(LogPath) ? File.ReadAllLines(LogPath) : [];

    private string LogPath => Path.Combine(_dir, "calls.log");

    /// <summary>Runs infra/deploy.sh with <paramref name="args"/> and this az first on PATH.</summary>
    public async Task<(int ExitCode, string Stdout, string Stderr)> RunDeployAsync(params string[] args)
    {
        WriteScript();
        var info = new ProcessStartInfo("bash")
        {
            WorkingDirectory = Checkout.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(Checkout.Root, "infra", "deploy.sh"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["PATH"] = $"{_dir}{Path.PathSeparator}{Environment.GetEnvironmentVariable("PATH")}";
        info.Environment.Remove("VICUNA_WORKER_IMAGE");
        info.Environment.Remove("VICUNA_ADMIN_PRINCIPAL_ID");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    private void WriteScript()
    {
        var script = new StringBuilder();
        script.AppendLine("#!/usr/bin/env bash");
        script.AppendLine($"printf '%s | image=%s\\n' \"$*\" \"${{VICUNA_WORKER_IMAGE-unset}}\" >> '{LogPath}'");
        script.AppendLine("case \"$*\" in");
        for (var i = _rules.Count - 1; i >= 0; i--)
        {
            var stdoutPath = Path.Combine(_dir, $"stdout-{i}");
            File.WriteAllText(stdoutPath, _rules[i].Stdout);
            script.AppendLine($"  {_rules[i].Glob}) cat '{stdoutPath}'; exit {_rules[i].ExitCode} ;;");
        }
        script.AppendLine("  *) exit 0 ;;");
        script.AppendLine("esac");
        var path = Path.Combine(_dir, "az");
        File.WriteAllText(path, script.ToString());
        if (!OperatingSystem.IsWindows()) // bash runs it by PATH: it needs the execute bit
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
