using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using VicunaBatch.Testing;

namespace VicunaBatch.Cli.Tests.Eval;

/// <summary>
/// <c>eval answer</c>, <c>judge</c> and <c>show</c> as the compiled program, the judge served by a real <c>serve</c> on
/// 127.0.0.1: the tiny model answers a few questions of the Vicuna benchmark and MT-bench (read from ../shared) under
/// two names, here and through the API, is judged single and pairwise, and the files are FastChat's, field by field.
/// </summary>
public sealed partial class EvalCommandTests : IDisposable
{
    private const string ApiKey = "vb-test-key-eval-3c9a";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(180);
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string EvalDir => Path.Combine(_folder.Root, "eval");

    private static string Tiny => Path.Combine(Checkout.Root, "models", "tiny");

    private async Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(params string[] args) =>
        await CliProcess.RunAsync(_folder.Root, Timeout, new Dictionary<string, string> { ["VICUNABATCH_API_KEY"] = ApiKey }, args);

    /// <summary>Two single-turn questions of the Vicuna benchmark and two two-turn ones of MT-bench, as a question file of the test's own.</summary>
    private string WriteQuestions()
    {
        var data = Path.Combine(Checkout.Shared, "data");
        var vicuna = Path.Combine(data, "vicuna_bench_questions.jsonl");
        Assert.True(File.Exists(vicuna), $"{vicuna} is missing: these tests read the question sets from the shared data ($VICUNA_SHARED or ../shared)");
        return _folder.WriteInput("questions.jsonl",
            [.. File.ReadLines(vicuna).Take(2), .. File.ReadLines(Path.Combine(data, "mt_bench_questions.jsonl")).Take(2)]);
    }

    [Fact]
    public async Task Two_models_answer_here_and_through_the_api_the_served_model_judges_them_and_show_counts_every_unparsable_verdict()
    {
        var questions = WriteQuestions();
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey, extraArgs: ["--model", $"tiny={Tiny}"]);
        var url = serve.Http.BaseAddress!.ToString();

        // t0 greedy on this machine; tiny at temperature 1 on serve, through the batch API
        var here = await CliAsync("eval", "answer", questions, "--model", $"t0={Tiny}", "--temperature", "0", "--max-tokens", "8", "--out", EvalDir);
        Assert.True(here.ExitCode == 0, here.Stderr);
        Assert.Contains("t0: 4 questions, 6 of 6 turns answered", here.Stdout);
        var there = await CliAsync("eval", "answer", questions, "--model", "tiny", "--url", url, "--temperature", "1", "--max-tokens", "8", "--out", EvalDir);
        Assert.True(there.ExitCode == 0, there.Stderr);
        Assert.Contains("tiny, turn 2: 2 questions", there.Stderr);

        var asked = RunFolder.ReadJsonLines(questions);
        AssertFastChatAnswers("t0", asked);
        AssertFastChatAnswers("tiny", asked);
        // turn 2 asks with the question's first turn and the model's own first answer
        var t0 = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_answer", "t0.jsonl"));
        var secondTurn = RunFolder.ReadJsonLines(Path.Combine(EvalDir, ".jobs", "answer", "t0", "turn-2", "input.jsonl"));
        Assert.Equal(2, secondTurn.Count);
        var messages = secondTurn[0].GetProperty("body").GetProperty("messages").EnumerateArray()
            .Select(m => (m.GetProperty("role").GetString(), m.GetProperty("content").GetString())).ToList();
        Assert.Equal([
            ("user", asked[2].GetProperty("turns")[0].GetString()),
            ("assistant", t0[2].GetProperty("choices")[0].GetProperty("turns")[0].GetString()),
            ("user", asked[2].GetProperty("turns")[1].GetString())], messages);

        // run again: the finished jobs are read, not run again (greedy: the same answers)
        var again = await CliAsync("eval", "answer", questions, "--model", $"t0={Tiny}", "--temperature", "0", "--max-tokens", "8", "--out", EvalDir);
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Equal(t0.Select(a => a.GetProperty("answer_id").GetString()),
            RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_answer", "t0.jsonl")).Select(a => a.GetProperty("answer_id").GetString()));
        var resumed = await CliAsync("eval", "answer", questions, "--model", "tiny", "--url", url, "--temperature", "1", "--max-tokens", "8", "--out", EvalDir);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        Assert.Equal(2, ResumingBatch().Matches(resumed.Stderr).Count); // both turns' batches, not new ones
        // a recorded batch the API does not know (another key, a fresh data folder) is submitted again, not a failure
        var record = Path.Combine(EvalDir, ".jobs", "answer", "tiny", "turn-1", "batch.json");
        File.WriteAllText(record, File.ReadAllText(record).Replace("\"batch_id\":\"batch_", "\"batch_id\":\"batch_0", StringComparison.Ordinal));
        var unknown = await CliAsync("eval", "answer", questions, "--model", "tiny", "--url", url, "--temperature", "1", "--max-tokens", "8", "--out", EvalDir);
        Assert.True(unknown.ExitCode == 0, unknown.Stderr);
        Assert.Contains("is unknown to", unknown.Stderr);
        Assert.Contains(": submitting the input again", unknown.Stderr);

        foreach (var mode in new[] { "single", "pairwise-baseline" })
        {
            var judged = await CliAsync("eval", "judge", EvalDir, "--judge-url", url, "--judge-model", "tiny", "--judge-max-tokens", "16",
                "--mode", mode, "--baseline", "t0");
            Assert.True(judged.ExitCode == 0, judged.Stderr);
            Assert.Contains("prompts in one batch", judged.Stderr);
            Assert.Single(BatchSubmitted().Matches(judged.Stderr)); // every prompt of the mode in ONE batch
        }
        var singles = AssertFastChatSingleJudgments(asked);
        var pairs = AssertFastChatPairJudgments(asked);
        Assert.Equal(2 * 6, singles.Count); // each model's each turn
        Assert.Equal(6, pairs.Count);      // tiny against t0, each turn, in both orders

        var shown = await CliAsync("eval", "show", EvalDir);
        Assert.True(shown.ExitCode == 0, shown.Stderr);
        // the counts the table states are those of the files: a score of -1 without an error is an unparsable verdict
        int unrated = singles.Count(s => s.GetProperty("score").GetDouble() == -1 && !s.TryGetProperty("error", out _));
        Assert.Contains($"12 judgments: {unrated} held no verdict (unparsable), 0 requests got no judgment (failed).", shown.Stdout);
        int noVerdict = pairs.Sum(p => (p.GetProperty("g1_winner").GetString() == "error" ? 1 : 0) + (p.GetProperty("g2_winner").GetString() == "error" ? 1 : 0));
        Assert.Contains($"12 judgments: {noVerdict} held no verdict (unparsable), 0 requests got no judgment (failed); baseline t0.", shown.Stdout);
        Assert.Equal(File.ReadAllText(Path.Combine(EvalDir, "results.md")), shown.Stdout[..shown.Stdout.IndexOf("\n" + Path.Combine(EvalDir, "results.md"), StringComparison.Ordinal)]);

        XNamespace ns = "http://www.w3.org/2000/svg";
        var chart = XDocument.Load(Path.Combine(EvalDir, "results.svg"));
        var bars = chart.Descendants(ns + "rect").Where(r => (string?)r.Attribute("class") == "bar").Select(r => (string)r.Attribute("data-model")!);
        Assert.Equal(["t0", "tiny"], bars);
    }

    [Fact]
    public async Task A_question_too_long_for_the_context_has_an_error_answer_and_its_failed_judgment_is_counted_not_guessed()
    {
        var questions = _folder.WriteInput("long.jsonl",
        [
            """{"question_id": 1, "category": "generic", "turns": ["How can I sleep better?"]}""",
            $$"""{"question_id": 2, "category": "generic", "turns": ["{{string.Concat(Enumerable.Repeat("Summarize the night batch report. ", 1200))}}"]}""",
        ]);
        using var serve = await ServeProcess.StartAsync(_folder.Root, Path.Combine(_folder.Root, "data"), ApiKey, extraArgs: ["--model", $"tiny={Tiny}"]);

        var answered = await CliAsync("eval", "answer", questions, "--model", $"t0={Tiny}", "--max-tokens", "8", "--out", EvalDir);

        Assert.Equal(1, answered.ExitCode);
        Assert.Contains("t0: 2 questions, 1 of 2 turns answered", answered.Stdout);
        Assert.Contains("t0: 1 turns have no answer ($ERROR$)", answered.Stderr);
        var answers = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_answer", "t0.jsonl"));
        Assert.Equal("$ERROR$", answers[1].GetProperty("choices")[0].GetProperty("turns")[0].GetString());

        var judged = await CliAsync("eval", "judge", EvalDir, "--judge-url", serve.Http.BaseAddress!.ToString(), "--judge-model", "tiny", "--judge-max-tokens", "8");

        Assert.True(judged.ExitCode == 0, judged.Stderr);
        Assert.Matches(@"^2 judgments \(2 games\): \d unparsable, 1 failed: ", judged.Stdout);
        var failed = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_judgment", "tiny_single.jsonl"))[1];
        Assert.Equal(("$ERROR$", -1.0, "context_length_exceeded"),
            (failed.GetProperty("judgment").GetString(), failed.GetProperty("score").GetDouble(), failed.GetProperty("error").GetProperty("code").GetString()));
    }

    [Fact]
    public async Task Bad_input_is_one_line_naming_it_and_writes_nothing()
    {
        var questions = _folder.WriteInput("q.jsonl", ["""{"question_id": 1, "category": "generic", "turns": ["Hi?"]}""", """{"question_id": "two", "turns": ["Hi?"]}"""]);

        var badLine = await CliAsync("eval", "answer", questions, "--model", $"t0={Tiny}", "--out", EvalDir);
        Assert.Equal(2, badLine.ExitCode);
        Assert.Contains($"{questions}:2: \"question_id\" must be an integer", badLine.Stderr);
        Assert.False(Directory.Exists(EvalDir));

        var good = _folder.WriteInput("good.jsonl", ["""{"question_id": 1, "category": "generic", "turns": ["Hi?"]}"""]);
        var missing = Path.Combine(_folder.Root, "no-such-package");
        var badPackage = await CliAsync("eval", "answer", good, "--model", $"t0={Tiny}", "--model", $"t1={missing}", "--out", EvalDir);
        Assert.Equal(2, badPackage.ExitCode);
        Assert.Contains($"model package folder not found: {missing}", badPackage.Stderr);
        Assert.False(Directory.Exists(EvalDir)); // not even the first model answered
        var noJudgments = await CliAsync("eval", "show", EvalDir, "--questions", good);
        Assert.Equal(2, noJudgments.ExitCode);
        Assert.Contains("holds no judgment file: run eval judge first", noJudgments.Stderr);

        Assert.Equal(0, (await CliAsync("eval", "answer", good, "--model", $"a={Tiny}", "--model", $"b={Tiny}", "--max-tokens", "4", "--out", EvalDir)).ExitCode);
        foreach (var (args, message) in new (string[], string)[]
        {
            (["--mode", "ranked"], "--mode ranked: must be single, pairwise-baseline or pairwise-all"),
            (["--mode", "pairwise-baseline"], "--mode pairwise-baseline needs --baseline NAME"),
            (["--mode", "pairwise-baseline", "--baseline", "c"], "--baseline c has no answers in"),
            (["--models", "a", "--models", "z"], "z has no answers in"),
        })
        {
            var refused = await CliAsync(["eval", "judge", EvalDir, "--judge-url", "http://127.0.0.1:9", "--judge-model", "j", .. args]);
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains(message, refused.Stderr);
        }
        var other = _folder.WriteInput("other.jsonl", ["""{"question_id": 7, "category": "generic", "turns": ["Bye?"]}"""]);
        var otherQuestions = await CliAsync("eval", "answer", other, "--model", $"a={Tiny}", "--out", EvalDir);
        Assert.Equal(2, otherQuestions.ExitCode);
        Assert.Contains("holds other questions", otherQuestions.Stderr);
        Assert.False(Directory.Exists(Path.Combine(EvalDir, "model_judgment")));
    }

    /// <summary>The answer file of <paramref name="model"/>, field by field as FastChat's load_model_answers and gen_judgment read it.</summary>
    private void AssertFastChatAnswers(string model, List<JsonElement> questions)
    {
        var answers = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_answer", model + ".jsonl")); // the file name is the model's
        Assert.Equal(questions.Select(q => q.GetProperty("question_id").GetInt64()), answers.Select(a => a.GetProperty("question_id").GetInt64()));
        foreach (var (answer, question) in answers.Zip(questions))
        {
            Assert.Equal(["question_id", "answer_id", "model_id", "choices", "tstamp"], answer.EnumerateObject().Select(p => p.Name));
            Assert.Equal(JsonValueKind.Number, answer.GetProperty("question_id").ValueKind);
            Assert.Equal(22, answer.GetProperty("answer_id").GetString()!.Length);
            Assert.Equal(model, answer.GetProperty("model_id").GetString());
            Assert.True(answer.GetProperty("tstamp").GetDouble() > 1.7e9);
            var choice = Assert.Single(answer.GetProperty("choices").EnumerateArray());
            Assert.Equal(["index", "turns"], choice.EnumerateObject().Select(p => p.Name));
            Assert.Equal(0, choice.GetProperty("index").GetInt32());
            Assert.Equal(question.GetProperty("turns").GetArrayLength(), choice.GetProperty("turns").GetArrayLength());
            Assert.All(choice.GetProperty("turns").EnumerateArray(), t => Assert.Equal(JsonValueKind.String, t.ValueKind));
        }
    }

    /// <summary>The single grades, field by field as FastChat's show_result reads them (model, score, turn) and gen_judgment writes them.</summary>
    private List<JsonElement> AssertFastChatSingleJudgments(List<JsonElement> questions)
    {
        var lines = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_judgment", "tiny_single.jsonl"));
        foreach (var line in lines)
        {
            Assert.Equal(["question_id", "model", "judge", "user_prompt", "judgment", "score", "turn", "tstamp"], line.EnumerateObject().Select(p => p.Name));
            Assert.Contains(line.GetProperty("question_id").GetInt64(), questions.Select(q => q.GetProperty("question_id").GetInt64()));
            Assert.Contains(line.GetProperty("model").GetString(), new[] { "t0", "tiny" });
            Assert.Equal(["tiny", line.GetProperty("turn").GetInt32() == 1 ? "vb-single-v1" : "vb-single-v1-multi-turn"],
                line.GetProperty("judge").EnumerateArray().Select(j => j.GetString()));
            Assert.Equal(JsonValueKind.String, line.GetProperty("user_prompt").ValueKind);
            var score = line.GetProperty("score").GetDouble();
            // a rating is read only from the one [[n]] the judgment holds
            if (score != -1) Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"[[{score}]]"), line.GetProperty("judgment").GetString());
            Assert.True(score == -1 || score is >= 1 and <= 10, $"score {score}");
            Assert.Contains(line.GetProperty("turn").GetInt32(), new[] { 1, 2 });
        }
        return lines;
    }

    /// <summary>The pairwise verdicts, field by field as FastChat's show_result reads them (model_1, model_2, g1_winner, g2_winner).</summary>
    private List<JsonElement> AssertFastChatPairJudgments(List<JsonElement> questions)
    {
        var lines = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_judgment", "tiny_pairwise-baseline.jsonl"));
        foreach (var line in lines)
        {
            Assert.Equal(["question_id", "model_1", "model_2", "g1_winner", "g2_winner", "judge", "g1_user_prompt", "g1_judgment",
                "g2_user_prompt", "g2_judgment", "turn", "tstamp"], line.EnumerateObject().Select(p => p.Name));
            Assert.Equal(("tiny", "t0"), (line.GetProperty("model_1").GetString(), line.GetProperty("model_2").GetString()));
            foreach (var game in new[] { "g1", "g2" })
            {
                var winner = line.GetProperty($"{game}_winner").GetString();
                Assert.Contains(winner, new[] { "model_1", "model_2", "tie", "error" });
                if (winner != "error") Assert.Matches(@"\[\[[ABC]\]\]", line.GetProperty($"{game}_judgment").GetString()!);
            }
            // game 2 shows the answers the other way round: another prompt, unless the two models answered alike
            var g1 = line.GetProperty("g1_user_prompt").GetString()!;
            var g2 = line.GetProperty("g2_user_prompt").GetString()!;
            var (answer1, answer2) = (AnswerOf("tiny", line), AnswerOf("t0", line));
            Assert.Contains(answer1, g1);
            Assert.Contains(answer2, g1);
            if (answer1 == answer2) Assert.Equal(g1, g2);
            else Assert.NotEqual(g1, g2);
            Assert.Contains(line.GetProperty("question_id").GetInt64(), questions.Select(q => q.GetProperty("question_id").GetInt64()));
        }
        return lines;
    }

    /// <summary>What <paramref name="model"/> answered in the judgment line's question and turn (its model_answer file).</summary>
    private string AnswerOf(string model, JsonElement judgment)
    {
        var answer = RunFolder.ReadJsonLines(Path.Combine(EvalDir, "model_answer", $"{model}.jsonl"))
            .Single(a => a.GetProperty("question_id").GetInt64() == judgment.GetProperty("question_id").GetInt64());
        return answer.GetProperty("choices")[0].GetProperty("turns")[judgment.GetProperty("turn").GetInt32() - 1].GetString()!;
    }

    [GeneratedRegex("resuming batch batch_")]
    private static partial Regex ResumingBatch();

    [GeneratedRegex("batch batch_[0-9a-f]+ submitted")]
    private static partial Regex BatchSubmitted();
}
