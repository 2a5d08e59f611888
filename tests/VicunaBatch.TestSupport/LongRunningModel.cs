namespace VicunaBatch.Testing;

/// <summary>
/// A package of the tiny shape with random weights (export.py --config tiny --seed 20261128, the embedded model before it
/// was trained, with its tokenizer), exported once per test process: its text seldom samples EOS, so a request runs to
/// its max_tokens. For tests whose work must still be running when a process is killed, a lock expires or a signal
/// comes; the trained models/tiny ends its answers within a few dozen tokens.
/// </summary>
public static class LongRunningModel
{
    private static readonly Lazy<string> Package = new(() =>
    {
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "vicunabatch-long-running-model", $"{Environment.ProcessId}");
        ModelFixture.RunPython("export.py", ["--config", "tiny", "--seed", "20261128", "--dtype", "float32",
            "--tokenizer", System.IO.Path.Combine(Checkout.Root, "models", "tiny", "tokenizer.model"), "--out", dir]);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } };
        return dir;
    });

    /// <summary>The package's folder.</summary>
    public static string Path => Package.Value;
}
