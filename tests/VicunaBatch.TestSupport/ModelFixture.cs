using System.Diagnostics;
using System.Text.Json;

namespace VicunaBatch.Testing;

/// <summary>Greedy ids from model-export/reference.py, and (when asked) the logits that chose each id.</summary>
public sealed record ReferenceResult(IReadOnlyList<int> Ids, IReadOnlyList<float[]>? Logits);

/// <summary>
/// Model packages written by model-export/export.py once per test run (cached by arguments), and the
/// independent numpy reference. A test project shares one per run through a collection of its own
/// (<c>[CollectionDefinition("models")]</c> with <c>ICollectionFixture&lt;ModelFixture&gt;</c>: xunit finds collection
/// definitions only in the test assembly).
/// </summary>
public sealed class ModelFixture : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly object _exportLock = new();
    private readonly Dictionary<string, string> _argsToPackage = new();
    private readonly string _workDir = Path.Combine(Path.GetTempPath(), "vicunabatch-models-" + Guid.NewGuid().ToString("N"));

    public ModelFixture()
    {
        SharedDir = FindSharedDir();
        Directory.CreateDirectory(_workDir);
    }

    public string SharedDir { get; }

    public string StoriesBin => Path.Combine(SharedDir, "models", "stories260K.bin");

    /// <summary>reference.py / export.py source arguments of <see cref="StoriesPackage"/>.</summary>
    public string StoriesSource => $"--from-llama2c {StoriesBin}";

    /// <summary>reference.py / export.py source arguments of <see cref="TinyPackage"/>.</summary>
    public string TinySource => "--config tiny --seed 1";

    /// <summary>stories260K (dim 64, 5 layers, 8 heads, 4 kv heads, head 8, vocab 512), float32.</summary>
    public string StoriesPackage => Export(StoriesSource);

    /// <summary>Random tiny config (dim 64, 2 layers, 4 heads, 2 kv heads, head 16, vocab 32000), float32.</summary>
    public string TinyPackage => Export(TinySource);

    /// <summary>Exports a package for <paramref name="arguments"/> (space-separated, without --out) once.</summary>
    public string Export(string arguments)
    {
        lock (_exportLock)
        {
            if (_argsToPackage.TryGetValue(arguments, out var cached))
            {
                return cached;
            }

            var outDir = Path.Combine(_workDir, "package-" + _argsToPackage.Count);
            RunPython("export.py", [.. Split(arguments), "--out", outDir]);
            _argsToPackage[arguments] = outDir;
            return outDir;
        }
    }

    /// <summary>A new empty folder under the fixture's temp folder (deleted with it).</summary>
    public string NewDirectory(string prefix)
    {
        var dir = Path.Combine(_workDir, $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>A copy of <paramref name="package"/> whose graph lacks the output <paramref name="output"/> and the node that makes it
    /// (a package from an exporter that did not write it; model-export/tools/strip_output.py).</summary>
    public string WithoutOutput(string package, string output)
    {
        var copy = Path.Combine(_workDir, $"without-{output}-{Guid.NewGuid():N}");
        RunPython("tools/strip_output.py", [package, copy, output]);
        return copy;
    }

    /// <summary>stories260K as a Hugging Face LlamaForCausalLM folder (model-export/tools/llama2c_to_hf.py: q/k permuted to
    /// half-split, safetensors), in a new folder; <paramref name="options"/> as that script takes them (<c>--dtype BF16</c>, <c>--shards 2</c>).</summary>
    public string StoriesAsHf(params string[] options)
    {
        var dir = NewDirectory("hf-stories");
        RunPython("tools/llama2c_to_hf.py", [StoriesBin, "--out", dir, .. options]);
        return dir;
    }

    /// <summary>Runs a model-export script (path relative to model-export/, e.g. <c>tools/llama2c_to_hf.py</c>); returns stdout.</summary>
    public string RunScript(string script, params string[] arguments) => RunPython(script, arguments);

    /// <summary>Runs a model-export script that may fail: (exit code, stdout, stderr).</summary>
    public (int ExitCode, string Stdout, string Stderr) TryRunScript(string script, params string[] arguments) =>
        StartPython(script, arguments);

    /// <summary>Runs reference.py once for all <paramref name="prompts"/>; one result per prompt.</summary>
    public IReadOnlyList<ReferenceResult> Reference(string sourceArgs, IEnumerable<int[]> prompts, int maxTokens, bool logits)
    {
        var promptsFile = Path.Combine(_workDir, $"prompts-{Guid.NewGuid():N}.txt");
        var lines = prompts.Select(p => string.Join(',', p)).ToList();
        File.WriteAllLines(promptsFile, lines);
        List<string> args = [.. Split(sourceArgs), "--prompts-file", promptsFile, "--max-tokens", maxTokens.ToString()];
        if (logits)
        {
            args.Add("--logits");
        }

        var stdout = RunPython("reference.py", args);
        var results = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(ParseResult).ToList();
        if (results.Count != lines.Count)
        {
            throw new InvalidOperationException($"reference.py printed {results.Count} results for {lines.Count} prompts:\n{stdout}");
        }

        return results;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_workDir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless.
        }
    }

    private static ReferenceResult ParseResult(string line)
    {
        using var doc = JsonDocument.Parse(line);
        var ids = doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
        List<float[]>? logits = null;
        if (doc.RootElement.TryGetProperty("logits", out var rows))
        {
            logits = rows.EnumerateArray().Select(r => r.EnumerateArray().Select(v => (float)v.GetDouble()).ToArray()).ToList();
        }

        return new ReferenceResult(ids, logits);
    }

    private static string[] Split(string arguments) => arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Runs a model-export script (path relative to model-export/) from the checkout; returns stdout, throws with stderr when it fails.</summary>
    public static string RunPython(string script, IEnumerable<string> arguments)
    {
        var (exitCode, stdout, stderr) = StartPython(script, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException(
                $"{Python} {script} {string.Join(' ', arguments)} exited with {exitCode}:\n{stderr}");
        }

        return stdout;
    }

    private static (int ExitCode, string Stdout, string Stderr) StartPython(string script, IEnumerable<string> arguments)
    {
        var psi = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Checkout.Root,
        };
        psi.ArgumentList.Add(Path.Combine(Checkout.Root, "model-export", script));
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Python}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }

    private static string FindSharedDir()
    {
        var dir = Checkout.Shared;
        if (!File.Exists(Path.Combine(dir, "models", "stories260K.bin")))
        {
            throw new InvalidOperationException(
                $"shared folder with models/stories260K.bin not found at '{dir}' " +
                "(set VICUNA_SHARED, or place it next to the repository as ../shared)");
        }

        return dir;
    }
}
