using System.Globalization;
using System.Text.Json.Nodes;
using VicunaBatch.Core.Formats;

namespace VicunaBatch.Cli.Eval;

/// <summary>Who judges and how: the judge model's name at its API, the mode, the baseline (pairwise-baseline), tokens per judgment.</summary>
internal sealed record JudgeSettings(string JudgeModel, JudgeMode Mode, string? Baseline, int MaxTokens);

/// <summary>What judging came to: the judgment file, its lines, and how many games had no verdict or no judgment at all.</summary>
internal sealed record JudgeSummary(string JudgmentPath, int NumJudgments, int NumGames, int NumUnparsed, int NumFailed);

/// <summary>
/// Judges the answers of an evaluation folder in ONE batch: every prompt of the mode — each model's each turn alone, or
/// each pair's each turn in both orders (game 1 shows model_1's answer as A, game 2 shows it as B) — is a line of one
/// job, at temperature 0. Verdicts are read by <see cref="Verdicts"/>; a judgment without one, and a request that got
/// no judgment (<c>$ERROR$</c>, its error kept), are recorded as such and counted. Writes
/// <c>model_judgment/JUDGE_MODE.jsonl</c> in FastChat's fields.
/// </summary>
internal sealed class EvalJudging(EvalFolder folder, IReadOnlyList<EvalQuestion> questions, TimeProvider time)
{
    /// <summary>One judge request: its line's id, its prompt, and whose answers it weighs.</summary>
    private sealed record Game(string CustomId, JudgePrompt Prompt);

    /// <summary>The judgment file's name for a judge: its model name, with what a file name cannot hold replaced.</summary>
    public static string JudgeFileName(string judgeModel) =>
        string.Concat(judgeModel.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : '_'));

    public async Task<JudgeSummary> JudgeAsync(IReadOnlyList<string> models, JudgeSettings settings, IEvalBatchRunner runner, CancellationToken cancellationToken = default)
    {
        var answers = models.ToDictionary(m => m, m => ModelAnswer.ReadAll(folder.AnswerPath(m)), StringComparer.Ordinal);
        var judge = JudgeFileName(settings.JudgeModel);
        var jobFolder = folder.JudgeJobFolder(judge, settings.Mode);
        var input = Path.Combine(jobFolder, "input.jsonl");
        var path = folder.JudgmentPath(judge, settings.Mode);
        if (settings.Mode == JudgeMode.Single)
        {
            var games = SingleGames(models, answers).ToList();
            var results = await RunAsync(games.Select(g => g.Game), input, jobFolder, settings, runner, cancellationToken);
            var tstamp = EvalJsonLines.Now(time);
            var lines = games.Select(g =>
            {
                var (judgment, error) = JudgmentOf(results, g.Game.CustomId);
                return new SingleJudgment(g.QuestionId, g.Model, settings.JudgeModel, g.Game.Prompt.Name, g.Game.Prompt.User, judgment,
                    error is null ? Verdicts.Rating(judgment) : Verdicts.NoRating, g.Turn, tstamp, error);
            }).ToList();
            EvalJsonLines.Write(path, lines.Select(l => l.ToJson()));
            int failed = lines.Count(l => l.Error is not null);
            return new JudgeSummary(path, lines.Count, lines.Count, lines.Count(l => l.Score == Verdicts.NoRating) - failed, failed);
        }
        var pairs = PairGames(Pairs(models, settings), answers).ToList();
        var pairResults = await RunAsync(pairs.SelectMany(p => new[] { p.G1, p.G2 }), input, jobFolder, settings, runner, cancellationToken);
        var now = EvalJsonLines.Now(time);
        var pairLines = pairs.Select(p =>
        {
            var (g1, g1Error) = JudgmentOf(pairResults, p.G1.CustomId);
            var (g2, g2Error) = JudgmentOf(pairResults, p.G2.CustomId);
            return new PairJudgment(p.QuestionId, p.Model1, p.Model2,
                Verdicts.Winner(g1Error is null ? Verdicts.PairVerdict(g1) : null, modelOneIsA: true),
                Verdicts.Winner(g2Error is null ? Verdicts.PairVerdict(g2) : null, modelOneIsA: false),
                settings.JudgeModel, p.G1.Prompt.Name, p.G1.Prompt.User, g1, p.G2.Prompt.User, g2, p.Turn, now, g1Error, g2Error);
        }).ToList();
        EvalJsonLines.Write(path, pairLines.Select(l => l.ToJson()));
        int numFailed = pairLines.Sum(l => (l.G1Error is null ? 0 : 1) + (l.G2Error is null ? 0 : 1));
        int numNoVerdict = pairLines.Sum(l => (l.G1Winner == Verdicts.Error ? 1 : 0) + (l.G2Winner == Verdicts.Error ? 1 : 0));
        return new JudgeSummary(path, pairLines.Count, pairLines.Count * 2, numNoVerdict - numFailed, numFailed);
    }

    /// <summary>The pairs judged: each model against the baseline (model_2), or every two models in name order.</summary>
    internal static IReadOnlyList<(string Model1, string Model2)> Pairs(IReadOnlyList<string> models, JudgeSettings settings)
    {
        if (settings.Mode == JudgeMode.PairwiseBaseline)
        {
            var baseline = settings.Baseline ?? throw new UsageException("--mode pairwise-baseline needs --baseline NAME");
            return [.. models.Where(m => m != baseline).Select(m => (m, baseline))];
        }
        var sorted = models.Order(StringComparer.Ordinal).ToList();
        return [.. sorted.SelectMany((m, i) => sorted.Skip(i + 1).Select(other => (m, other)))];
    }

    private IEnumerable<(string Model, long QuestionId, int Turn, Game Game)> SingleGames(
        IReadOnlyList<string> models, IReadOnlyDictionary<string, IReadOnlyDictionary<long, ModelAnswer>> answers)
    {
        foreach (var model in models)
        foreach (var question in questions)
        {
            if (!answers[model].TryGetValue(question.QuestionId, out var answer)) continue;
            for (var turn = 1; turn <= Math.Min(question.Turns.Count, answer.Turns.Count); turn++)
                yield return (model, question.QuestionId, turn, new Game(Id("single", model, question.QuestionId, turn), JudgePrompts.Single(question, answer.Turns, turn)));
        }
    }

    private IEnumerable<(string Model1, string Model2, long QuestionId, int Turn, Game G1, Game G2)> PairGames(
        IReadOnlyList<(string Model1, string Model2)> pairs, IReadOnlyDictionary<string, IReadOnlyDictionary<long, ModelAnswer>> answers)
    {
        foreach (var (m1, m2) in pairs)
        foreach (var question in questions)
        {
            if (!answers[m1].TryGetValue(question.QuestionId, out var a1) || !answers[m2].TryGetValue(question.QuestionId, out var a2)) continue;
            for (var turn = 1; turn <= Math.Min(question.Turns.Count, Math.Min(a1.Turns.Count, a2.Turns.Count)); turn++)
            {
                var id = Id("pair", $"{m1}:{m2}", question.QuestionId, turn);
                yield return (m1, m2, question.QuestionId, turn,
                    new Game(id + ":g1", JudgePrompts.Pair(question, a1.Turns, a2.Turns, turn)),
                    new Game(id + ":g2", JudgePrompts.Pair(question, a2.Turns, a1.Turns, turn)));
            }
        }
    }

    private static string Id(string kind, string models, long questionId, int turn) =>
        FormattableString.Invariant($"{kind}:{models}:{questionId}:t{turn}");

    private static async Task<IReadOnlyDictionary<string, BatchAnswer>> RunAsync(
        IEnumerable<Game> games, string input, string jobFolder, JudgeSettings settings, IEvalBatchRunner runner, CancellationToken cancellationToken)
    {
        var lines = games.Select(g => new JsonObject
        {
            ["custom_id"] = g.CustomId,
            ["method"] = "POST",
            ["url"] = BatchEndpoints.ChatCompletionsUrl,
            ["body"] = new JsonObject
            {
                ["model"] = settings.JudgeModel,
                ["messages"] = new JsonArray(
                    new JsonObject { ["role"] = "system", ["content"] = g.Prompt.System },
                    new JsonObject { ["role"] = "user", ["content"] = g.Prompt.User }),
                ["max_tokens"] = settings.MaxTokens,
                ["temperature"] = 0,
            },
        }).ToList();
        if (lines.Count == 0) throw new UsageException($"nothing to judge: no answer of {(settings.Mode == JudgeMode.Single ? "the models" : "both models of a pair")} to any question");
        EvalJsonLines.Write(input, lines);
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"judge {settings.JudgeModel}, {settings.Mode.Name()}: {lines.Count} prompts in one batch"));
        return await runner.RunAsync(input, jobFolder, cancellationToken);
    }

    /// <summary>The judgment's text, or <see cref="EvalFolder.ErrorText"/> and why the request got none.</summary>
    private static (string Judgment, RequestError? Error) JudgmentOf(IReadOnlyDictionary<string, BatchAnswer> results, string customId) =>
        results.TryGetValue(customId, out var answer)
            ? answer.Text is { } text ? (text, null) : (EvalFolder.ErrorText, answer.Error)
            : (EvalFolder.ErrorText, new RequestError("no_result", "the batch ended without a result for this request"));
}
