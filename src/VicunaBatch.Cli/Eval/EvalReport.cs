using System.Globalization;
using System.Text;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// The tables of <c>eval show</c> as Markdown (printed, and written to <c>results.md</c>): per judgment file, one row per
/// model overall — mean score by turn (single) or win / tie / loss (pairwise) — with the judgments that held no verdict
/// and the requests that got none, then the same per category.
/// </summary>
internal static class EvalReport
{
    /// <summary>
    /// Reads every judgment file of <paramref name="folder"/> and writes <c>results.md</c> and the chart
    /// <c>results.svg</c>: of the single grades when there are some (the article's figure), else of the first pairwise
    /// file. Returns the Markdown and the results charted.
    /// </summary>
    public static (string Markdown, EvalResults Charted) Write(EvalFolder folder, IReadOnlyList<EvalQuestion> questions, string? baseline)
    {
        var files = Directory.Exists(folder.JudgmentsFolder)
            ? Directory.EnumerateFiles(folder.JudgmentsFolder, "*.jsonl").Order(StringComparer.Ordinal).ToList()
            : [];
        if (files.Count == 0) throw new UsageException($"{folder.JudgmentsFolder} holds no judgment file: run eval judge first");
        var results = files.Select(f => EvalResults.Read(f, questions, baseline)).ToList();
        var markdown = Markdown(results);
        EvalFolder.WriteAtomically(folder.ResultsMarkdownPath, Encoding.UTF8.GetBytes(markdown));
        var charted = results.FirstOrDefault(x => x.Mode == JudgeMode.Single) ?? results[0];
        EvalFolder.WriteAtomically(folder.ResultsChartPath, Encoding.UTF8.GetBytes(EvalChart.Render(charted)));
        return (markdown, charted);
    }

    public static string Markdown(IReadOnlyList<EvalResults> results)
    {
        var text = new StringBuilder();
        foreach (var result in results)
        {
            if (text.Length > 0) text.Append('\n');
            text.Append(Section(result));
        }
        return text.ToString();
    }

    private static string Section(EvalResults r)
    {
        var text = new StringBuilder();
        text.Append(Invariant($"## {r.Mode.Name()}, judged by {r.Judge} (model_judgment/{r.FileName})\n\n"));
        text.Append(Invariant($"{r.NumGames} judgments: {r.NumNoVerdict} held no verdict (unparsable), {r.NumFailed} requests got no judgment (failed)"));
        text.Append(r.Baseline is not null ? $"; baseline {r.Baseline}.\n\n" : ".\n\n");
        var relative = r.RelativeScores().ToDictionary(s => s.Model, s => s.Relative);
        if (r.Mode == JudgeMode.Single)
        {
            var turns = Enumerable.Range(1, r.NumTurns).Select(t => $"turn {t}").ToList();
            Row(text, ["model", "mean score", .. (r.NumTurns > 1 ? turns : []), "rated", "unparsable", "failed", "relative"]);
            foreach (var s in r.Scores)
            {
                Row(text, [s.Model, Mean(s.Overall), .. (r.NumTurns > 1 ? s.ByTurn.Select(Mean) : []),
                    Invariant($"{s.Overall.NumRated}"), Invariant($"{s.Overall.NumNoRating}"), Invariant($"{s.Overall.NumFailed}"), Percent(relative[s.Model])]);
            }
            text.Append("\nBy category (mean score, rated of judged):\n\n");
            Row(text, ["model", .. r.Categories]);
            foreach (var s in r.Scores)
                Row(text, [s.Model, .. s.ByCategory.Select(c => Invariant($"{Mean(c)} ({c.NumRated}/{c.NumRated + c.NumNoRating + c.NumFailed})"))]);
        }
        else
        {
            Row(text, ["model", "win", "tie", "loss", "win rate", "win rate, ties half", "pairs unparsable", "pairs failed"]);
            foreach (var p in r.Pairs)
            {
                var c = p.Overall;
                Row(text, [p.Model, Invariant($"{c.NumWins}"), Invariant($"{c.NumTies}"), Invariant($"{c.NumLosses}"),
                    Percent(c.NumDecided > 0 ? (double)c.NumWins / c.NumDecided : null), Percent(c.AdjustedWinRate),
                    Invariant($"{c.NumNoVerdict}"), Invariant($"{c.NumFailed}")]);
            }
            text.Append("\nBy category (win/tie/loss; pairs without an outcome left out):\n\n");
            Row(text, ["model", .. r.Categories]);
            foreach (var p in r.Pairs) Row(text, [p.Model, .. p.ByCategory.Select(c => Invariant($"{c.NumWins}/{c.NumTies}/{c.NumLosses}"))]);
        }
        return text.ToString();
    }

    private static void Row(StringBuilder text, IReadOnlyList<string> cells)
    {
        text.Append("| ").Append(string.Join(" | ", cells.Select(c => c.Replace("|", "\\|")))).Append(" |\n");
        if (cells[0] == "model") text.Append('|').Append(string.Concat(cells.Select(_ => " --- |"))).Append('\n');
    }

    private static string Mean(ScoreCell cell) => cell.Mean is { } m ? m.ToString("F2", CultureInfo.InvariantCulture) : "–";

    internal static string Percent(double? value) => value is { } v ? (v * 100).ToString("F1", CultureInfo.InvariantCulture) + " %" : "–";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
