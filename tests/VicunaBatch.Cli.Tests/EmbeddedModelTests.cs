using System.Text.Json;
using System.Text.RegularExpressions;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests;

/// <summary>
/// The embedded model speaks (models/tiny, trained on model-export/tiny-corpus.txt): the README's first command, run as a
/// newcomer runs it, answers in words of the corpus; chats get answers, not the template; a sampled answer varies with
/// its seed. Run as the compiled program (and again on the native build by tests/run.sh).
/// </summary>
public sealed partial class EmbeddedModelTests : IDisposable
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Run_readmeFirstCommand_answersInWordsOfTheTrainingCorpus()
    {
        // README: dotnet run --project src/VicunaBatch.Cli -c Release -- run examples/prompts.jsonl (from the checkout;
        // here from an empty folder, so its results/<job id>/ land in the test's folder)
        var (exitCode, stdout, stderr) = await CliProcess.RunAsync(_folder.Root, RunTimeout,
            "run", Path.Combine(Checkout.Root, "examples", "prompts.jsonl"));

        Assert.True(exitCode == 0, $"exit {exitCode}; stderr:\n{stderr}");
        Assert.StartsWith("completed: 56 succeeded, 4 failed of 60", stdout);
        var output = Path.Combine(Assert.Single(Directory.GetDirectories(Path.Combine(_folder.Root, "results"))), "output.jsonl");
        var answers = RunFolder.ReadJsonLines(output).ToDictionary(CustomId, AnswerText);
        Assert.Equal(56, answers.Count);

        var corpusWords = Words(File.ReadAllText(Path.Combine(Checkout.Root, "model-export", "tiny-corpus.txt"))).ToHashSet();
        var words = answers.Values.SelectMany(Words).ToList();
        int known = words.Count(corpusWords.Contains);
        // 852 words on the committed model; an empty or near-empty output is a failure, not a 100 % score
        Assert.True(words.Count >= 400, $"only {words.Count} words in 56 answers");
        Assert.True(known >= 0.95 * words.Count,
            $"{known} of {words.Count} answer words ({100.0 * known / words.Count:F1} %) occur in the corpus; unknown: " +
            string.Join(", ", words.Where(w => !corpusWords.Contains(w)).Distinct().Take(30)));
        // every greedy chat answer is an answer: text, and not the template's roles echoed
        foreach (var (id, text) in answers.Where(a => a.Key.StartsWith("openai-chat-", StringComparison.Ordinal)))
        {
            Assert.True(Words(text).Count() >= 3, $"{id}: \"{text}\"");
            Assert.DoesNotContain("USER:", text, StringComparison.Ordinal);
            Assert.DoesNotContain("ASSISTANT:", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Generate_sampledChat_variesWithTheSeedAndRepeatsWithTheSameSeed()
    {
        var input = _folder.WriteInput("sampled.jsonl", Enumerable.Range(1, 6).Select(seed =>
            JsonSerializer.Serialize(new
            {
                custom_id = $"seed-{seed}",
                messages = new[] { new { role = "user", content = "What is continuous batching?" } },
                max_tokens = 32,
                temperature = 0.9,
                top_p = 0.95,
                seed = seed <= 3 ? seed : 1, // seeds 1, 2, 3, then 1 three times
            })));

        var (exitCode, _, stderr) = await CliProcess.RunAsync(_folder.Root, RunTimeout, "run", input, "--out", _folder.Out);

        Assert.True(exitCode == 0, $"exit {exitCode}; stderr:\n{stderr}");
        var answers = RunFolder.ReadJsonLines(_folder.OutputPath).ToDictionary(CustomId, AnswerText);
        Assert.Equal(3, new[] { answers["seed-1"], answers["seed-2"], answers["seed-3"] }.Distinct().Count());
        Assert.All(new[] { "seed-4", "seed-5", "seed-6" }, id => Assert.Equal(answers["seed-1"], answers[id]));
        Assert.All(answers.Values, text => Assert.True(Words(text).Count() >= 3, $"\"{text}\""));
    }

    private static IEnumerable<string> Words(string text) => WordPattern().Matches(text).Select(m => m.Value.ToLowerInvariant());

    private static string CustomId(JsonElement line) => line.GetProperty("custom_id").GetString()!;

    /// <summary>The text of a chat or completion output line's first choice.</summary>
    private static string AnswerText(JsonElement line)
    {
        var choice = line.GetProperty("response").GetProperty("body").GetProperty("choices")[0];
        return choice.TryGetProperty("message", out var message) ? message.GetProperty("content").GetString()! : choice.GetProperty("text").GetString()!;
    }

    [GeneratedRegex("[A-Za-z]+")]
    private static partial Regex WordPattern();
}
