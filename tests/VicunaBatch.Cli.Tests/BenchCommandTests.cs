using System.Text.Json;
using VicunaBatch.Inference;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary><c>bench</c>'s sampled workloads: the lines' own temperature, top_p and seed, or --temperature / --top-p, and --sampling;
/// --top-logprobs and the logits rows it brings to the host.</summary>
public sealed class BenchCommandTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "vicunabatch-bench-" + Guid.NewGuid().ToString("N"));

    public BenchCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ReadWorkload_linesSampleAtTheirOwnSettings_othersAtTheDefaults()
    {
        var workload = Write("""
            {"custom_id": "own", "prompt": "one", "max_tokens": 4, "temperature": 0.5, "top_p": 0.8, "seed": 9}
            {"custom_id": "defaults", "prompt": "two", "max_tokens": 4}
            {"custom_id": "greedy", "prompt": "three", "max_tokens": 4, "temperature": 0}
            """);
        using var model = LoadedModel.Open(Path.Combine(Checkout.Root, "models", "tiny"), new EngineOptions());

        var sampled = BenchCommand.ReadWorkload(model, new FileInfo(workload), limit: 0, ignoreEos: true, temperature: 0.7f, topP: 0.9f);
        var greedy = BenchCommand.ReadWorkload(model, new FileInfo(workload), limit: 0, ignoreEos: true);

        Assert.Equal(new SamplingParams(0.5f, 0, 0.8f, 9), sampled[0].Sampling);
        Assert.Equal(new SamplingParams(0.7f, 0, 0.9f, 2), sampled[1].Sampling); // no seed: the line number
        Assert.Null(sampled[2].Sampling);
        Assert.Equal(new SamplingParams(0.5f, 0, 0.8f, 9), greedy[0].Sampling);
        Assert.Null(greedy[1].Sampling);
    }

    [Theory]
    [InlineData("graph", true)]
    [InlineData("host", false)]
    public async Task Bench_samplingGraph_countsItsSamplerRuns(string site, bool inGraph)
    {
        var workload = Write(string.Join('\n', Enumerable.Range(1, 4).Select(i => $$"""{"custom_id": "r{{i}}", "prompt": "line {{i}}", "max_tokens": 6}""")));

        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout,
            "bench", "--workload", workload, "--temperature", "0.8", "--top-p", "0.9", "--sampling", site, "--json");

        Assert.True(exitCode == 0, stderr);
        using var report = JsonDocument.Parse(stdout);
        Assert.Equal(24, report.RootElement.GetProperty("output_tokens").GetInt32());
        Assert.Equal(inGraph, report.RootElement.TryGetProperty("graph_samplings", out var runs));
        if (inGraph) Assert.True(runs.GetInt32() >= 6, stdout); // at least one run a step: 6 tokens each
    }

    [Theory]
    [InlineData("graph", 0)]
    [InlineData("host", 24)] // every token of the 4 requests
    public async Task Bench_topLogprobs_countsTheLogitsRowsBroughtToTheHost(string site, int rowsRead)
    {
        var workload = Write(string.Join('\n', Enumerable.Range(1, 4).Select(i => $$"""{"custom_id": "r{{i}}", "prompt": "line {{i}}", "max_tokens": 6}""")));

        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout,
            "bench", "--workload", workload, "--top-logprobs", "5", "--sampling", site, "--json");

        Assert.True(exitCode == 0, stderr);
        using var report = JsonDocument.Parse(stdout);
        Assert.Equal(24, report.RootElement.GetProperty("output_tokens").GetInt32());
        Assert.Equal(rowsRead, report.RootElement.GetProperty("logit_rows_read").GetInt32());
        Assert.Equal(rowsRead == 0, report.RootElement.TryGetProperty("graph_logprob_runs", out var runs));
        if (rowsRead == 0) Assert.True(runs.GetInt32() >= 6, stdout); // at least one run a step: 6 tokens each
    }

    [Fact]
    public async Task Bench_choices_computeEachPromptOnceWhereSeparateChoicesComputeItPerChoice()
    {
        var workload = Write(string.Join('\n', Enumerable.Range(1, 3).Select(i => $$"""{"custom_id": "r{{i}}", "prompt": "the batch of line {{i}} runs", "max_tokens": 5}""")));
        string[] bench = ["bench", "--workload", workload, "--temperature", "0.8", "--choices", "4", "--json"];

        var shared = await CliProcess.RunAsync(_dir, Timeout, bench);
        var separate = await CliProcess.RunAsync(_dir, Timeout, [.. bench, "--separate-choices"]);

        Assert.True(shared.ExitCode == 0, shared.Stderr);
        Assert.True(separate.ExitCode == 0, separate.Stderr);
        using var sharedReport = JsonDocument.Parse(shared.Stdout);
        using var separateReport = JsonDocument.Parse(separate.Stdout);
        int Figure(JsonDocument report, string name) => report.RootElement.GetProperty(name).GetInt32();
        Assert.Equal((12, 60), (Figure(sharedReport, "requests"), Figure(sharedReport, "output_tokens")));
        Assert.Equal((12, 60), (Figure(separateReport, "requests"), Figure(separateReport, "output_tokens")));
        Assert.Equal(9, Figure(sharedReport, "forked_choices"));
        Assert.False(separateReport.RootElement.TryGetProperty("forked_choices", out _));
        Assert.Equal(4 * Figure(sharedReport, "prefill_tokens"), Figure(separateReport, "prefill_tokens"));
        // each prompt counted once where the choices share it, once a choice where they are requests of their own; computed once each
        Assert.Equal(Figure(sharedReport, "prefill_tokens"), Figure(sharedReport, "prompt_tokens"));
        Assert.Equal(Figure(separateReport, "prefill_tokens"), Figure(separateReport, "prompt_tokens"));
        Assert.Equal(1.0, sharedReport.RootElement.GetProperty("prefill_per_prompt_token").GetDouble());
    }

    [Fact]
    public async Task Bench_prefixCacheOnAGroupQueryAttentionPackage_isIgnored()
    {
        // the embedded model holds its KV in slots: no blocks to share, whatever --prefix-cache says
        var workload = Write(string.Join('\n', Enumerable.Range(1, 4).Select(i => $$"""{"custom_id": "r{{i}}", "prompt": "the same long template for every line, then line {{i}}", "max_tokens": 3}""")));

        var on = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", workload, "--json", "--prefix-cache", "on");
        var off = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", workload, "--json", "--prefix-cache", "off");

        Assert.True(on.ExitCode == 0, on.Stderr);
        Assert.True(off.ExitCode == 0, off.Stderr);
        using var onReport = JsonDocument.Parse(on.Stdout);
        using var offReport = JsonDocument.Parse(off.Stdout);
        Assert.Equal(offReport.RootElement.GetProperty("prefill_tokens").GetInt32(), onReport.RootElement.GetProperty("prefill_tokens").GetInt32());
        Assert.False(onReport.RootElement.TryGetProperty("cached_prompt_tokens", out _));
    }

    [Fact]
    public async Task Bench_devicePeaks_giveTheDecodeAndPrefillStepsAsFractionsOfThem()
    {
        var workload = Write(string.Join('\n', Enumerable.Range(1, 6).Select(i => $$"""{"custom_id": "r{{i}}", "prompt": "line {{i}} of a workload", "max_tokens": 12}""")));
        string[] args = ["bench", "--workload", workload, "--copy-bandwidth", "40", "--matmul-tflops", "0.2"];

        var json = await CliProcess.RunAsync(_dir, Timeout, [.. args, "--json"]);
        var table = await CliProcess.RunAsync(_dir, Timeout, args);

        Assert.True(json.ExitCode == 0, json.Stderr);
        Assert.True(table.ExitCode == 0, table.Stderr);
        var report = JsonDocument.Parse(json.Stdout).RootElement;
        var decodeSteps = report.GetProperty("decode_only_steps").GetInt32();
        Assert.True(decodeSteps > 0, json.Stdout);
        // the byte model's mean step over its mean time is the rate; the fraction is that rate over the given bandwidth
        var gbPerS = report.GetProperty("decode_step_bytes_mean").GetDouble() / report.GetProperty("decode_step_ms_mean").GetDouble() / 1e6;
        Assert.Equal(gbPerS, report.GetProperty("decode_gb_per_s").GetDouble(), tolerance: 0.01 * gbPerS + 0.1);
        Assert.Equal(report.GetProperty("decode_gb_per_s").GetDouble() / 40, report.GetProperty("decode_roofline_fraction").GetDouble(), tolerance: 0.01);
        Assert.Equal(report.GetProperty("prefill_tflops").GetDouble() / 0.2, report.GetProperty("prefill_matmul_fraction").GetDouble(), tolerance: 0.05);
        Assert.True(report.GetProperty("decode_step_bytes_mean").GetDouble() > report.GetProperty("weight_bytes").GetDouble(), json.Stdout); // and the KV
        Assert.Matches(@"decode roofline +\d+ decode-only steps, .* = \d+\.\d % of 40 GB/s \(step / floor \d+\.\d\d\)", table.Stdout);
        Assert.Matches(@"prefill rate +\d+ steps with prompt chunks: .* = \d+\.\d % of 0\.2 TFLOP/s", table.Stdout);
    }

    [Theory]
    [InlineData("--copy-bandwidth", "0", "GB/s")]
    [InlineData("--matmul-tflops", "-5", "TFLOP/s")]
    public async Task Bench_devicePeakNotPositive_isAUsageError(string option, string value, string unit)
    {
        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", Write(""), option, value);

        Assert.Equal(1, exitCode);
        Assert.Contains($"{option} {value}: must be the device's measured rate in {unit}, a number > 0", stderr);
    }

    [Fact]
    public async Task Bench_unknownPrefixCache_isAUsageError()
    {
        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", Write(""), "--prefix-cache", "maybe");

        Assert.Equal(1, exitCode);
        Assert.Contains("--prefix-cache must be on or off, not 'maybe'", stderr);
    }

    [Fact]
    public async Task Bench_unknownSampling_isAUsageError()
    {
        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, "bench", "--workload", Write(""), "--sampling", "gpu");

        Assert.Equal(1, exitCode); // System.CommandLine's exit code for a value it cannot parse
        Assert.Contains("--sampling must be auto, host or graph, not 'gpu'", stderr);
    }

    private string Write(string lines)
    {
        var path = Path.Combine(_dir, $"workload-{Guid.NewGuid():N}.jsonl");
        File.WriteAllText(path, lines + "\n");
        return path;
    }
}
