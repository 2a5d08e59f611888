using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Results;
using Xunit.Abstractions;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// A 100,000-line job through <c>vicuna-batch run</c> on the tiny model, with the process's managed heap capped at
/// 32 MB: the input, checkpoints and results are streamed (copying the 40 MB output back whole did not fit, before it
/// was streamed). With <c>tests/run.sh --long</c>: 1,000,000 lines under a 160 MB cap — the set of custom_ids the
/// validator keeps to find duplicates is the one thing that grows with the file. The checker's verdict on the files;
/// the process's peak resident memory is printed.
/// </summary>
public sealed class LongJobTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Set by <c>tests/run.sh --long</c>.</summary>
    public const string LongVariable = "VICUNABATCH_LONG_TESTS";

    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task A_100000_line_job_completes_whole_within_a_32_MB_managed_heap()
    {
        bool isLong = Environment.GetEnvironmentVariable(LongVariable) == "1";
        int numLines = isLong ? 1_000_000 : 100_000;
        var input = _folder.WriteInput("long.jsonl", Enumerable.Range(0, numLines)
            .Select(i => JsonSerializer.Serialize(new { custom_id = $"r{i}", prompt = $"line {i} of the long job", max_tokens = 2 })));

        using var run = CliProcess.Start(_folder.Root, new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = isLong ? "0xA000000" : "0x2000000" },
            "run", input, "--out", _folder.Out);
        long peakKb = 0;
        var started = DateTime.UtcNow;
        var exit = run.WaitForExitAsync(TimeSpan.FromSeconds(numLines / 100 + 120));
        while (!exit.IsCompleted)
        {
            peakKb = Math.Max(peakKb, PeakResidentKb(run.ProcessId));
            await Task.WhenAny(exit, Task.Delay(200));
        }
        Assert.True(await exit == 0, $"run failed:\n{run.Stderr}");
        output.WriteLine($"{numLines} lines: {(DateTime.UtcNow - started).TotalSeconds:0.0} s, peak resident memory {peakKb / 1024} MB (last sample)");

        await using var inputFile = File.OpenRead(input);
        await using var outputFile = File.OpenRead(_folder.OutputPath);
        await using var errorsFile = File.OpenRead(_folder.ErrorsPath);
        await using var jobFile = File.OpenRead(_folder.JobPath);
        var report = await new ResultsChecker(new InputOptions()).CheckAsync(inputFile, InputFormat.Jsonl, outputFile, errorsFile, jobFile);
        Assert.True(report.IsWhole, string.Join("\n", report.Problems));
        Assert.Equal(numLines, report.NumOutputLines);
    }

    /// <summary>VmHWM of a running process (0 once it is gone).</summary>
    private static long PeakResidentKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return 0;
    }
}
