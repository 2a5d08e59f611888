using System.Diagnostics;
using System.Text.Json.Nodes;
using VicunaBatch.Testing;

namespace VicunaBatch.Infra.Tests;

/// <summary>One Bicep CLI run per test run: <c>bicep build main.bicep</c> and <c>bicep lint</c> of both parameter
/// files (each lints main.bicep and its modules too), started together.</summary>
public sealed class BicepFixture : IAsyncLifetime
{
    public static readonly string BicepDir = Path.Combine(Checkout.Root, "infra", "bicep");
    public static readonly string[] ParamFiles = ["main.dev.bicepparam", "main.prod.bicepparam"];

    /// <summary>Path of the Bicep CLI (restored by infra/bicep-tool.sh).</summary>
    public string Bicep { get; private set; } = null!;

    public ArmTemplate Main { get; private set; } = null!;
    public IReadOnlyDictionary<string, BicepRun> Lint { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        // restore once before the parallel runs
        var bicep = Bicep = (await RunAsync("bash", [Path.Combine(Checkout.Root, "infra", "bicep-tool.sh")], Checkout.Root)).RequireSuccess().Stdout.Trim();
        var build = RunAsync(bicep, ["build", "main.bicep", "--stdout"], BicepDir);
        var lints = ParamFiles.ToDictionary(f => f, f => RunAsync(bicep, ["lint", f], BicepDir));
        Main = new ArmTemplate(JsonNode.Parse((await build).RequireSuccess().Stdout)!.AsObject());
        var lint = new Dictionary<string, BicepRun>();
        foreach (var (file, run) in lints) lint[file] = await run;
        Lint = lint;
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public static async Task<BicepRun> RunAsync(string fileName, string[] args, string workingDirectory, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            if (value is null) info.Environment.Remove(name); else info.Environment[name] = value;
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return new BicepRun($"{fileName} {string.Join(' ', args)}", process.ExitCode, await stdout, await stderr);
    }
}

public sealed record BicepRun(string Command, int ExitCode, string Stdout, string Stderr)
{
    public BicepRun RequireSuccess() =>
        ExitCode == 0 ? this : throw new InvalidOperationException($"{Command} exited {ExitCode}:\n{Stderr}\n{Stdout}");
}

[CollectionDefinition(Name)]
public sealed class BicepCollection : ICollectionFixture<BicepFixture>
{
    public const string Name = "bicep";
}
