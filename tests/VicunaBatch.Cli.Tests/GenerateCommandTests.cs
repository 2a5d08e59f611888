using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// <c>vicuna-batch generate --json --logits</c> as the compiled program, and model-export's <c>export.py --verify</c>,
/// which reads those logits to compare the engine with the numpy reference.
/// </summary>
public sealed partial class GenerateCommandTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "vicunabatch-generate-" + Guid.NewGuid().ToString("N"));

    public GenerateCommandTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(new[] { "--cuda-graphs", "on" }, "vicuna-batch: --cuda-graphs on: CUDA graphs need the CUDA device")]
    [InlineData(new[] { "--max-batch-size", "0" }, "vicuna-batch: --max-batch-size 0: 0 (as many KV slots as fit) needs the CUDA device")]
    [InlineData(new[] { "--max-batch-size", "4", "--max-scheduled-tokens", "2" },
        "vicuna-batch: --max-scheduled-tokens 2: must be at least the max batch size (4) so every running request decodes each step")]
    public async Task An_engine_option_out_of_range_is_one_line_naming_its_flag(string[] options, string error)
    {
        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, ["generate", "--prompt-ids", "1,300", "--max-tokens", "2", .. options]);

        Assert.Equal(2, exitCode);
        Assert.Equal(error, stderr.Trim());
    }

    [Theory]
    [InlineData("-2")]
    [InlineData("NaN")]
    public async Task A_kv_swap_space_that_is_no_size_is_refused_naming_the_flag(string gib)
    {
        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout, ["generate", "--prompt-ids", "1,300", "--max-tokens", "2", "--kv-swap-space", gib]);

        Assert.NotEqual(0, exitCode);
        Assert.Equal($"--kv-swap-space {gib}: must be a number of GiB >= 0", stderr.Trim());
    }

    [Fact]
    public async Task Every_default_the_help_prints_for_a_named_choice_is_accepted_back()
    {
        var (helpExit, help, _) = await CliProcess.RunAsync(_dir, Timeout, "generate", "--help");
        Assert.Equal(0, helpExit);
        // "--admission <longest-first|arrival>  ... [default: LongestFirst]"
        var defaults = ChoiceDefault().Matches(help).Select(m => (Flag: m.Groups["flag"].Value, Value: m.Groups["value"].Value)).ToList();
        Assert.Equal(["--device", "--admission", "--kv-admission", "--prefix-cache", "--sampling", "--cuda-graphs"], defaults.Select(d => d.Flag));

        var (exitCode, _, stderr) = await CliProcess.RunAsync(_dir, Timeout,
            ["generate", "--prompt-ids", "1,300", "--max-tokens", "2", .. defaults.SelectMany(d => new[] { d.Flag, d.Value })]);
        Assert.True(exitCode == 0, stderr);
    }

    [GeneratedRegex(@"^\s+(?<flag>--[a-z-]+) <[a-z-]+(\|[a-z-]+)+>.*\[default: (?<value>\w+)\]\s*$", RegexOptions.Multiline)]
    private static partial Regex ChoiceDefault();

    [Fact]
    public async Task OnnxRuntime_telemetry_is_off_unless_the_user_turns_it_on()
    {
        // ONNX Runtime keeps its cache under XDG_CACHE_HOME when that is set, else under HOME/.cache: both point into
        // a folder of the test's own, whatever the machine running it has set. And it turns its telemetry off by itself
        // when it sees a CI system's variables (CI, GITHUB_ACTIONS, JENKINS_URL, TF_BUILD, ...): on a CI machine both
        // runs would then write nothing and the test could not tell the product's default from ONNX Runtime's. So the
        // program starts in a clean environment, as on a user's machine.
        async Task<(string Home, string Stderr)> Generate(string name, Dictionary<string, string> environment)
        {
            var home = Directory.CreateDirectory(Path.Combine(_dir, name)).FullName;
            environment["HOME"] = home;
            environment["XDG_CACHE_HOME"] = Path.Combine(home, "xdg-cache");
            using var cli = CliProcess.StartInCleanEnvironment(_dir, environment, "generate", "--prompt-ids", "1,300", "--max-tokens", "2");
            Assert.Equal(0, await cli.WaitForExitAsync(Timeout));
            return (home, cli.Stderr);
        }
        static string[] Written(string home) =>
            Directory.GetFileSystemEntries(home, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(home, p)).Order().ToArray();

        // opted in: ONNX Runtime keeps its device id and event cache there (so the check below can see one)
        var (optedIn, optedInStderr) = await Generate("home-opted-in", new() { ["ORT_DISABLE_TELEMETRY"] = "0" });
        Assert.True(File.Exists(Path.Combine(optedIn, "xdg-cache", "Microsoft", "DeveloperTools", ".onnxruntime", "deviceid")),
            $"ONNX Runtime's telemetry wrote no device id when asked to run; it wrote [{string.Join(", ", Written(optedIn))}]; stderr: {optedInStderr}");

        var (plain, _) = await Generate("home-default", []);
        Assert.Empty(Written(plain));
    }

    [Fact]
    public async Task Generate_jsonLogits_printsOneVocabRowPerIdThatChoosesIt()
    {
        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout,
            "generate", "--prompt-ids", "1,300,301,302", "--max-tokens", "5", "--json", "--logits");

        Assert.True(exitCode == 0, stderr);
        using var line = JsonDocument.Parse(stdout);
        var ids = line.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var rows = line.RootElement.GetProperty("logits").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToList();
        Assert.Equal("length", line.RootElement.GetProperty("finish_reason").GetString());
        Assert.Equal(5, ids.Count);
        Assert.Equal(5, rows.Count);
        Assert.All(rows, r => Assert.Equal(1024, r.Length));   // the embedded tiny model's vocab
        Assert.Equal(ids, rows.Select(r => Array.IndexOf(r, r.Max())));
    }

    [Fact]
    public async Task Generate_jsonWithoutLogits_printsNoLogitsField()
    {
        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout, "generate", "--prompt-ids", "1,300", "--max-tokens", "2", "--json");

        Assert.True(exitCode == 0, stderr);
        using var line = JsonDocument.Parse(stdout);
        Assert.False(line.RootElement.TryGetProperty("logits", out _));
        Assert.Equal(2, line.RootElement.GetProperty("ids").GetArrayLength());
    }

    [Fact]
    public async Task Generate_topLogprobs_printsEachTokensLogprobs_theGraphsEqualTheLogitsRows()
    {
        string[] common = ["generate", "--prompt-ids", "1,300,301,302", "--max-tokens", "5", "--json", "--top-logprobs", "3"];
        var (hostExit, hostOut, hostErr) = await CliProcess.RunAsync(_dir, Timeout, [.. common, "--logits"]); // read on the host
        var (graphExit, graphOut, graphErr) = await CliProcess.RunAsync(_dir, Timeout, [.. common, "--sampling", "graph"]);

        Assert.True(hostExit == 0, hostErr);
        Assert.True(graphExit == 0, graphErr);
        using var host = JsonDocument.Parse(hostOut);
        using var graph = JsonDocument.Parse(graphOut);
        var ids = host.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        var rows = host.RootElement.GetProperty("logits").EnumerateArray().Select(r => r.EnumerateArray().Select(v => (double)v.GetSingle()).ToArray()).ToList();
        Assert.Equal(ids, graph.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()));
        var hostSteps = host.RootElement.GetProperty("logprobs").EnumerateArray().ToList();
        var graphSteps = graph.RootElement.GetProperty("logprobs").EnumerateArray().ToList();
        Assert.Equal(5, graphSteps.Count);
        for (var step = 0; step < 5; step++)
        {
            var logSum = Math.Log(rows[step].Sum(Math.Exp));
            Assert.Equal(ids[step], graphSteps[step].GetProperty("id").GetInt32());
            Assert.Equal(rows[step][ids[step]] - logSum, graphSteps[step].GetProperty("logprob").GetDouble(), 1e-4);
            var top = graphSteps[step].GetProperty("top").EnumerateArray().Select(e => (Id: e[0].GetInt32(), Logprob: e[1].GetDouble())).ToList();
            Assert.Equal(hostSteps[step].GetProperty("top").EnumerateArray().Select(e => e[0].GetInt32()), top.Select(t => t.Id));
            Assert.Equal(rows[step].Select((l, id) => (l, id)).OrderByDescending(t => t.l).ThenBy(t => t.id).Take(3).Select(t => t.id), top.Select(t => t.Id));
            Assert.All(top, t => Assert.Equal(rows[step][t.Id] - logSum, t.Logprob, 1e-4));
        }
    }

    [Fact]
    public async Task Generate_topLogprobsWithoutJson_isAUsageError()
    {
        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout, "generate", "--prompt-ids", "1,300", "--top-logprobs", "2");

        Assert.Equal(2, exitCode);
        Assert.Equal("", stdout);
        Assert.Contains("--top-logprobs needs --json", stderr);
    }

    [Fact]
    public async Task Generate_logitsWithoutJson_isAUsageError()
    {
        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_dir, Timeout, "generate", "--prompt-ids", "1,300", "--logits");

        Assert.Equal(2, exitCode);
        Assert.Equal("", stdout);
        Assert.Contains("--logits needs --json", stderr);
    }

    [Fact]
    public void ExportVerify_tinyRandomModel_printsGreedyAgreementAndMaxDeltaLogit()
    {
        var (exitCode, stdout, stderr) = RunExport("--config", "tiny", "--seed", "1", "--out", Path.Combine(_dir, "pkg"), "--verify");

        Assert.True(exitCode == 0, $"{stdout}\n{stderr}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("verify: prompt [1]: agree on 16 ids; max |delta logit| ", lines[0]);
        Assert.StartsWith("verify: prompt [1, 10666, 16000, 31999, 3]: agree on 16 ids; max |delta logit| ", lines[1]);
        var overall = OverallLine().Match(lines[2]);
        Assert.True(overall.Success, lines[2]);
        Assert.Equal("2/2", overall.Groups["agree"].Value);
        Assert.Equal("32", overall.Groups["positions"].Value);
        // float32 through ONNX Runtime against the float64 reference
        Assert.InRange(double.Parse(overall.Groups["delta"].Value, CultureInfo.InvariantCulture), 0, 1e-4);
    }

    [GeneratedRegex(@"^verify: greedy ids agree on (?<agree>\d+/\d+) prompts \(16 tokens\); max \|delta logit\| (?<delta>[0-9.e+-]+) over (?<positions>\d+) positions \(max \|logit\| [0-9.]+\); float32 package vs float64 reference$")]
    private static partial Regex OverallLine();

    /// <summary>/usr/bin/python3 model-export/export.py ARGS, its --verify running the built vicuna-batch.dll (<see cref="CliProcess.ProgramPath"/>).</summary>
    private static (int ExitCode, string Stdout, string Stderr) RunExport(params string[] args)
    {
        var root = Checkout.Root;
        var info = new ProcessStartInfo("/usr/bin/python3")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = root,
        };
        info.ArgumentList.Add(Path.Combine(root, "model-export", "export.py"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["VICUNA_BATCH_CLI"] = CliProcess.ProgramPath();
        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start /usr/bin/python3");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }

}
