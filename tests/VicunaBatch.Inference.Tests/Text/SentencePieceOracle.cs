using System.Diagnostics;
using System.Text;
using System.Text.Json;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Text;

/// <summary>What python sentencepiece answers for one text: <c>sp.encode(text)</c> and <c>sp.decode(ids)</c>.</summary>
public sealed record OracleAnswer(int[] Ids, string Decoded);

/// <summary>
/// Reference tokenization by python sentencepiece (<c>/usr/bin/python3</c>), plus the shared folder
/// (env <c>VICUNA_SHARED</c>, else <c>&lt;repo root&gt;/../shared</c>) holding the LLaMA tokenizer and the questions.
/// </summary>
public static class SentencePieceOracle
{
    private const string Python = "/usr/bin/python3";

    private const string Script = """
        import json, sys
        import sentencepiece as spm
        if sys.argv[1] == "train":
            corpus, prefix, vocab_size, model_type = sys.argv[2:6]
            spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, model_type=model_type,
                                           vocab_size=int(vocab_size), byte_fallback=True, character_coverage=1.0)
        else:
            sp = spm.SentencePieceProcessor(model_file=sys.argv[2])
            for line in sys.stdin:
                ids = sp.encode(json.loads(line))
                print(json.dumps({"ids": ids, "decoded": sp.decode(ids)}))
        """;

    private static readonly Lazy<string> SharedFolderLazy = new(FindSharedFolder);

    public static string SharedFolder => SharedFolderLazy.Value;

    public static string LlamaTokenizerPath => Path.Combine(SharedFolder, "models", "llama-tokenizer.model");

    /// <summary>Every turn of every question in vicuna_bench_questions.jsonl and mt_bench_questions.jsonl.</summary>
    public static IReadOnlyList<string> BenchmarkTurns()
    {
        var turns = new List<string>();
        foreach (string file in new[] { "vicuna_bench_questions.jsonl", "mt_bench_questions.jsonl" })
        {
            foreach (string line in File.ReadLines(Path.Combine(SharedFolder, "data", file)).Where(l => l.Length > 0))
            {
                using var question = JsonDocument.Parse(line);
                turns.AddRange(question.RootElement.GetProperty("turns").EnumerateArray().Select(t => t.GetString()!));
            }
        }
        return turns;
    }

    /// <summary>Encodes and decodes all <paramref name="texts"/> in one python run.</summary>
    public static IReadOnlyList<OracleAnswer> Encode(string modelPath, IReadOnlyList<string> texts)
    {
        var input = new StringBuilder();
        foreach (string text in texts)
        {
            input.Append(JsonSerializer.Serialize(text)).Append('\n'); // ASCII-only JSON: non-ASCII is \u-escaped
        }
        string output = RunPython(["encode", modelPath], input.ToString());
        var answers = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonSerializer.Deserialize<OracleAnswer>(line, JsonSerializerOptions.Web)!)
            .ToList();
        if (answers.Count != texts.Count)
        {
            throw new InvalidOperationException($"python sentencepiece answered {answers.Count} lines for {texts.Count} texts.");
        }
        return answers;
    }

    /// <summary>Trains a byte-fallback model (default nmt_nfkc normalization) on <paramref name="corpusLines"/>; returns its path.</summary>
    public static string Train(string directory, IEnumerable<string> corpusLines, int vocabSize, string modelType = "bpe")
    {
        Directory.CreateDirectory(directory);
        string corpus = Path.Combine(directory, "corpus.txt");
        File.WriteAllLines(corpus, corpusLines);
        string prefix = Path.Combine(directory, modelType);
        RunPython(["train", corpus, prefix, vocabSize.ToString(), modelType], "");
        return prefix + ".model";
    }

    private static string RunPython(string[] arguments, string stdin)
    {
        if (!File.Exists(Python))
        {
            throw new InvalidOperationException($"{Python} (with the sentencepiece module) is needed to compute reference token ids.");
        }
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Script);
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["PYTHONIOENCODING"] = "utf-8";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.Write(stdin);
        process.StandardInput.Close();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"python sentencepiece {arguments[0]} failed ({process.ExitCode}): {stderr.Result}");
        }
        return stdout.Result;
    }

    private static string FindSharedFolder()
    {
        string shared = Checkout.Shared;
        if (Directory.Exists(shared)) return shared;
        throw new DirectoryNotFoundException(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("VICUNA_SHARED"))
            ? $"Shared folder '{shared}' not found; set VICUNA_SHARED to the folder holding models/ and data/."
            : $"VICUNA_SHARED points to '{shared}', which does not exist.");
    }
}
