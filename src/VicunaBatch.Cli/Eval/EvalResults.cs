namespace VicunaBatch.Cli.Eval;

/// <summary>
/// Single grades of one model, overall, by turn or in one category: the mean of the ratings read, how many were read,
/// and how many judgments held none (<see cref="NumNoRating"/>) or were never made (<see cref="NumFailed"/>).
/// </summary>
internal sealed record ScoreCell(double? Mean, int NumRated, int NumNoRating, int NumFailed)
{
    public static ScoreCell Of(IReadOnlyCollection<SingleJudgment> judgments)
    {
        var rated = judgments.Where(j => j.Score != Verdicts.NoRating).Select(j => j.Score).ToList();
        int failed = judgments.Count(j => j.Error is not null);
        return new ScoreCell(rated.Count > 0 ? rated.Average() : null, rated.Count, judgments.Count - rated.Count - failed, failed);
    }
}

/// <summary>
/// Pairwise outcomes of one model: wins, ties and losses (a pair wins only when both orders say so), and the pairs with
/// no outcome because a game's judgment held no verdict (<see cref="NumNoVerdict"/>) or was never made
/// (<see cref="NumFailed"/>); FastChat's show_result leaves those out too.
/// </summary>
internal sealed record PairCell(int NumWins, int NumTies, int NumLosses, int NumNoVerdict, int NumFailed)
{
    public int NumDecided => NumWins + NumTies + NumLosses;

    /// <summary>FastChat's <c>win_rate_adjusted</c>: (wins + ties / 2) / decided; null with none decided.</summary>
    public double? AdjustedWinRate => NumDecided > 0 ? (NumWins + 0.5 * NumTies) / NumDecided : null;

    public static PairCell Of(string model, IEnumerable<PairJudgment> judgments)
    {
        int wins = 0, ties = 0, losses = 0, noVerdict = 0, failed = 0;
        foreach (var j in judgments)
        {
            if (j.G1Error is not null || j.G2Error is not null) { failed++; continue; }
            switch (Verdicts.Outcome(j.G1Winner, j.G2Winner))
            {
                case null: noVerdict++; break;
                case PairOutcome.Tie: ties++; break;
                case PairOutcome.Model1Wins when j.Model1 == model:
                case PairOutcome.Model2Wins when j.Model2 == model: wins++; break;
                default: losses++; break;
            }
        }
        return new PairCell(wins, ties, losses, noVerdict, failed);
    }
}

/// <summary>One model's row: overall, by turn (single) and by category, in the questions' category order.</summary>
internal sealed record ModelResult<TCell>(string Model, TCell Overall, IReadOnlyList<TCell> ByTurn, IReadOnlyList<TCell> ByCategory);

/// <summary>
/// The results of one judgment file (<c>eval show</c>): its mode, judge, models and, per model, the cells; how many
/// judgments (games) it holds, how many had no verdict and how many requests got no judgment.
/// </summary>
internal sealed record EvalResults(
    string FileName, JudgeMode Mode, string Judge, string? Baseline, IReadOnlyList<string> Categories, int NumTurns,
    IReadOnlyList<ModelResult<ScoreCell>> Scores, IReadOnlyList<ModelResult<PairCell>> Pairs,
    int NumGames, int NumNoVerdict, int NumFailed)
{
    /// <summary>
    /// Reads a judgment file written by <c>eval judge</c> (or FastChat's gen_judgment: the same fields): its mode from its
    /// name (<c>JUDGE_single.jsonl</c>, <c>JUDGE_pairwise-baseline.jsonl</c>, <c>JUDGE_pairwise-all.jsonl</c>; FastChat's
    /// <c>JUDGE_pair.jsonl</c> reads as pairwise-all unless <paramref name="baseline"/> is given). The baseline of
    /// pairwise-baseline is <paramref name="baseline"/>, else the model in every pair.
    /// </summary>
    public static EvalResults Read(string path, IReadOnlyList<EvalQuestion> questions, string? baseline = null)
    {
        var name = Path.GetFileNameWithoutExtension(path);
        var at = name.LastIndexOf('_');
        var judge = at > 0 ? name[..at] : name;
        var suffix = at > 0 ? name[(at + 1)..] : "";
        var mode = suffix == "pair" ? (baseline is null ? JudgeMode.PairwiseAll : JudgeMode.PairwiseBaseline) : JudgeModes.Parse(suffix)
            ?? throw new InvalidDataException($"{path}: a judgment file is named JUDGE_MODE.jsonl, MODE one of single, pairwise-baseline, pairwise-all");
        if (mode == JudgeMode.PairwiseAll) baseline = null; // every model against every other: no baseline
        var categories = questions.Select(q => q.Category).Distinct().ToList();
        var categoryOf = questions.ToDictionary(q => q.QuestionId, q => q.Category);
        int numTurns = questions.Max(q => q.Turns.Count);
        var lines = EvalJsonLines.Read(path).ToList();
        if (mode == JudgeMode.Single)
        {
            var singles = lines.Select(l => SingleJudgment.Read(l.Root, l.Where)).ToList();
            var scores = singles.Select(s => s.Model).Distinct().Order(StringComparer.Ordinal).Select(model =>
            {
                var own = singles.Where(s => s.Model == model).ToList();
                return new ModelResult<ScoreCell>(model, ScoreCell.Of(own),
                    [.. Enumerable.Range(1, numTurns).Select(t => ScoreCell.Of([.. own.Where(s => s.Turn == t)]))],
                    [.. categories.Select(c => ScoreCell.Of([.. own.Where(s => categoryOf.GetValueOrDefault(s.QuestionId) == c)]))]);
            }).ToList();
            int failed = singles.Count(s => s.Error is not null);
            return new EvalResults(Path.GetFileName(path), mode, singles.FirstOrDefault()?.JudgeModel ?? judge, baseline, categories, numTurns,
                scores, [], singles.Count, singles.Count(s => s.Score == Verdicts.NoRating) - failed, failed);
        }
        var pairs = lines.Select(l => PairJudgment.Read(l.Root, l.Where)).ToList();
        var models = pairs.SelectMany(p => new[] { p.Model1, p.Model2 }).Distinct().Order(StringComparer.Ordinal).ToList();
        if (mode == JudgeMode.PairwiseBaseline)
        {
            baseline ??= models.FirstOrDefault(m => pairs.All(p => p.Model1 == m || p.Model2 == m));
            if (baseline is null && pairs.Count > 0) throw new InvalidDataException($"{path}: no model is in every pair; give --baseline NAME");
            pairs = [.. pairs.Where(p => p.Model1 == baseline || p.Model2 == baseline)];
            models.Remove(baseline ?? "");
        }
        var results = models.Select(model =>
        {
            var own = pairs.Where(p => p.Model1 == model || p.Model2 == model).ToList();
            return new ModelResult<PairCell>(model, PairCell.Of(model, own),
                [.. Enumerable.Range(1, numTurns).Select(t => PairCell.Of(model, own.Where(p => p.Turn == t)))],
                [.. categories.Select(c => PairCell.Of(model, own.Where(p => categoryOf.GetValueOrDefault(p.QuestionId) == c)))]);
        }).ToList();
        int pairFailed = pairs.Sum(p => (p.G1Error is null ? 0 : 1) + (p.G2Error is null ? 0 : 1));
        int noVerdict = pairs.Sum(p => (p.G1Winner == Verdicts.Error ? 1 : 0) + (p.G2Winner == Verdicts.Error ? 1 : 0));
        return new EvalResults(Path.GetFileName(path), mode, pairs.FirstOrDefault()?.JudgeModel ?? judge, baseline, categories, numTurns,
            [], results, pairs.Count * 2, noVerdict - pairFailed, pairFailed);
    }

    /// <summary>
    /// Each model's relative score, as the Vicuna article's chart shows them: single, its mean rating as a share of the
    /// reference model's (<see cref="Baseline"/> when it has a mean, else the best); pairwise, its win rate with ties
    /// counted half. Null for a model with no rating or no decided pair.
    /// </summary>
    public IReadOnlyList<(string Model, double? Relative)> RelativeScores()
    {
        if (Mode != JudgeMode.Single) return [.. Pairs.Select(p => (p.Model, p.Overall.AdjustedWinRate))];
        var means = Scores.Where(s => s.Overall.Mean is not null).ToDictionary(s => s.Model, s => s.Overall.Mean!.Value);
        double? reference = Baseline is not null && means.TryGetValue(Baseline, out var b) ? b : means.Count > 0 ? means.Values.Max() : null;
        return [.. Scores.Select(s => (s.Model, s.Overall.Mean is { } m && reference is > 0 ? m / reference : (double?)null))];
    }

    /// <summary>What the relative score is relative to, in words.</summary>
    public string RelativeTo()
    {
        if (Mode != JudgeMode.Single) return Baseline is null ? "win rate against the other models, ties counted half" : $"win rate against {Baseline}, ties counted half";
        var means = Scores.Where(s => s.Overall.Mean is not null).ToList();
        if (Baseline is not null && means.Any(s => s.Model == Baseline)) return $"mean rating as a share of {Baseline}'s";
        return means.Count > 0 ? $"mean rating as a share of the best model's ({means.MaxBy(s => s.Overall.Mean)!.Model})" : "mean rating (no model has one)";
    }
}
