using System.Globalization;
using System.Xml.Linq;
using VicunaBatch.Cli.Eval;

namespace VicunaBatch.Cli.Tests.Eval;

/// <summary>
/// <c>eval show</c>'s tables and chart computed from fixed judgment files in FastChat's fields: every count, mean and
/// rate worked out by hand below, unparsable verdicts and failed requests counted apart and left out of the scores.
/// </summary>
public sealed class EvalResultsTests : IDisposable
{
    private readonly RunFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    // q1 (writing) has two turns, q2 (math) one
    private static readonly IReadOnlyList<EvalQuestion> Questions =
    [
        new(1, "writing", ["Write a haiku.", "Now another."]),
        new(2, "math", ["What is 2 + 2?"]),
    ];

    private static string Single(long q, string model, int turn, double score, string judgment = "Fine. Rating: [[n]]", string? error = null) =>
        string.Create(CultureInfo.InvariantCulture,
            $$"""{"question_id": {{q}}, "model": "{{model}}", "judge": ["gpt-4", "single-v1"], "user_prompt": "p", "judgment": "{{judgment}}", "score": {{score}}, "turn": {{turn}}, "tstamp": 1700000000.5{{(error is null ? "" : $$""", "error": {"code": "{{error}}", "message": "m"}""")}}}""");

    private static string Pair(long q, string m1, string m2, int turn, string g1, string g2, bool g1Failed = false) =>
        $$"""{"question_id": {{q}}, "model_1": "{{m1}}", "model_2": "{{m2}}", "g1_winner": "{{g1}}", "g2_winner": "{{g2}}", "judge": ["gpt-4", "pair-v2"], "g1_user_prompt": "p1", "g1_judgment": "{{(g1Failed ? "$ERROR$" : "j1")}}", "g2_user_prompt": "p2", "g2_judgment": "j2", "turn": {{turn}}, "tstamp": 1700000000.5{{(g1Failed ? """, "g1_error": {"code": "server_error", "message": "m"}""" : "")}}}""";

    private string SingleFile() => _folder.WriteInput("gpt-4_single.jsonl",
    [
        Single(1, "m1", 1, 8),
        Single(1, "m1", 2, 6),
        Single(2, "m1", 1, -1, judgment: "I cannot decide."),
        Single(1, "m2", 1, 4),
        Single(1, "m2", 2, -1, judgment: "$ERROR$", error: "context_length_exceeded"),
        Single(2, "m2", 1, 5),
    ]);

    private string PairFile() => _folder.WriteInput("gpt-4_pairwise-baseline.jsonl",
    [
        Pair(1, "m1", "base", 1, "model_1", "model_1"), // m1 wins
        Pair(1, "m1", "base", 2, "model_1", "model_2"), // the orders disagree: a tie
        Pair(2, "m1", "base", 1, "error", "model_2"),   // game 1 held no verdict
        Pair(1, "m2", "base", 1, "model_2", "model_2"), // m2 loses
        Pair(1, "m2", "base", 2, "tie", "tie"),
        Pair(2, "m2", "base", 1, "error", "model_1", g1Failed: true), // game 1's request failed
    ]);

    [Fact]
    public void Single_grades_give_means_by_turn_and_category_without_the_unparsable_and_the_failed()
    {
        var results = EvalResults.Read(SingleFile(), Questions);

        Assert.Equal((JudgeMode.Single, "gpt-4", 6, 1, 1), (results.Mode, results.Judge, results.NumGames, results.NumNoVerdict, results.NumFailed));
        var m1 = results.Scores[0];
        Assert.Equal("m1", m1.Model);
        Assert.Equal(new ScoreCell(7, 2, 1, 0), m1.Overall);
        Assert.Equal([new ScoreCell(8, 1, 1, 0), new ScoreCell(6, 1, 0, 0)], m1.ByTurn);
        Assert.Equal([new ScoreCell(7, 2, 0, 0), new ScoreCell(null, 0, 1, 0)], m1.ByCategory);
        var m2 = results.Scores[1];
        Assert.Equal(new ScoreCell(4.5, 2, 0, 1), m2.Overall);
        Assert.Equal([new ScoreCell(4.5, 2, 0, 0), new ScoreCell(null, 0, 0, 1)], m2.ByTurn);
        Assert.Equal([new ScoreCell(4, 1, 0, 1), new ScoreCell(5, 1, 0, 0)], m2.ByCategory);
        Assert.Equal([("m1", (double?)1.0), ("m2", 4.5 / 7)], results.RelativeScores());

        var markdown = EvalReport.Markdown([results]);
        Assert.Contains("6 judgments: 1 held no verdict (unparsable), 1 requests got no judgment (failed).", markdown);
        Assert.Contains("| model | mean score | turn 1 | turn 2 | rated | unparsable | failed | relative |", markdown);
        Assert.Contains("| m1 | 7.00 | 8.00 | 6.00 | 2 | 1 | 0 | 100.0 % |", markdown);
        Assert.Contains("| m2 | 4.50 | 4.50 | – | 2 | 0 | 1 | 64.3 % |", markdown);
        Assert.Contains("| model | writing | math |", markdown);
        Assert.Contains("| m1 | 7.00 (2/2) | – (0/1) |", markdown);
        Assert.Contains("| m2 | 4.00 (1/2) | 5.00 (1/1) |", markdown);
    }

    [Fact]
    public void Single_grades_relative_to_a_baseline_are_shares_of_its_mean()
    {
        var results = EvalResults.Read(SingleFile(), Questions, baseline: "m2");

        Assert.Equal([("m1", (double?)(7 / 4.5)), ("m2", 1.0)], results.RelativeScores());
        Assert.Equal("mean rating as a share of m2's", results.RelativeTo());
    }

    [Fact]
    public void Pairs_against_the_baseline_count_a_win_only_when_both_orders_agree()
    {
        var results = EvalResults.Read(PairFile(), Questions);

        Assert.Equal((JudgeMode.PairwiseBaseline, "base", 12, 1, 1), (results.Mode, results.Baseline, results.NumGames, results.NumNoVerdict, results.NumFailed));
        Assert.Equal(["m1", "m2"], results.Pairs.Select(p => p.Model));
        Assert.Equal(new PairCell(1, 1, 0, 1, 0), results.Pairs[0].Overall);
        Assert.Equal([new PairCell(1, 1, 0, 0, 0), new PairCell(0, 0, 0, 1, 0)], results.Pairs[0].ByCategory);
        Assert.Equal(new PairCell(0, 1, 1, 0, 1), results.Pairs[1].Overall);
        Assert.Equal([new PairCell(0, 1, 1, 0, 0), new PairCell(0, 0, 0, 0, 1)], results.Pairs[1].ByCategory);
        Assert.Equal([("m1", (double?)0.75), ("m2", 0.25)], results.RelativeScores());

        var markdown = EvalReport.Markdown([results]);
        Assert.Contains("12 judgments: 1 held no verdict (unparsable), 1 requests got no judgment (failed); baseline base.", markdown);
        Assert.Contains("| model | win | tie | loss | win rate | win rate, ties half | pairs unparsable | pairs failed |", markdown);
        Assert.Contains("| m1 | 1 | 1 | 0 | 50.0 % | 75.0 % | 1 | 0 |", markdown);
        Assert.Contains("| m2 | 0 | 1 | 1 | 0.0 % | 25.0 % | 0 | 1 |", markdown);
        Assert.Contains("| m1 | 1/1/0 | 0/0/0 |", markdown);
        Assert.Contains("| m2 | 0/1/1 | 0/0/0 |", markdown);
    }

    [Fact]
    public void Pairwise_all_counts_each_model_over_every_pair_it_is_in()
    {
        var path = _folder.WriteInput("j_pairwise-all.jsonl",
        [
            Pair(1, "a", "b", 1, "model_1", "model_1"), // a beats b
            Pair(1, "a", "c", 1, "model_2", "model_2"), // c beats a
            Pair(1, "b", "c", 1, "model_1", "model_2"), // b, c tie
        ]);

        var results = EvalResults.Read(path, Questions, baseline: "a"); // show's --baseline is for the other files

        Assert.Null(results.Baseline);
        Assert.Equal("win rate against the other models, ties counted half", results.RelativeTo());
        Assert.Equal([("a", new PairCell(1, 0, 1, 0, 0)), ("b", new PairCell(0, 1, 1, 0, 0)), ("c", new PairCell(1, 1, 0, 0, 0))],
            results.Pairs.Select(p => (p.Model, p.Overall)));
    }

    [Fact]
    public void A_file_not_named_judge_mode_or_with_a_broken_line_is_refused_naming_it()
    {
        var unnamed = _folder.WriteInput("judgments.jsonl", [Single(1, "m1", 1, 8)]);
        Assert.Contains("JUDGE_MODE.jsonl", Assert.Throws<InvalidDataException>(() => EvalResults.Read(unnamed, Questions)).Message);

        var broken = _folder.WriteInput("x_single.jsonl", [Single(1, "m1", 1, 8), """{"question_id": 1, "model": "m1", "judge": "gpt-4"}"""]);
        var error = Assert.Throws<InvalidDataException>(() => EvalResults.Read(broken, Questions));
        Assert.Contains("x_single.jsonl:2", error.Message);
    }

    [Fact]
    public void The_chart_has_one_bar_per_model_as_long_as_its_relative_score()
    {
        var svg = XDocument.Parse(EvalChart.Render(EvalResults.Read(SingleFile(), Questions)));

        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(ns + "svg", svg.Root!.Name);
        var bars = svg.Descendants(ns + "rect").Where(r => (string?)r.Attribute("class") == "bar").ToList();
        Assert.Equal(["m1", "m2"], bars.Select(b => (string)b.Attribute("data-model")!));
        var widths = bars.Select(b => double.Parse((string)b.Attribute("width")!, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(440, widths[0]); // the best model fills the bar area
        Assert.Equal(440 * 4.5 / 7, widths[1], precision: 2);
        Assert.Contains(svg.Descendants(ns + "text"), t => t.Value == "64.3 %");
    }

    [Fact]
    public void A_model_without_a_decided_pair_gets_an_empty_bar_marked_no_verdict()
    {
        var path = _folder.WriteInput("j_pairwise-baseline.jsonl",
        [
            Pair(1, "m1", "base", 1, "model_1", "model_1"),
            Pair(1, "m2", "base", 1, "error", "error"),
        ]);

        var svg = XDocument.Parse(EvalChart.Render(EvalResults.Read(path, Questions)));

        XNamespace ns = "http://www.w3.org/2000/svg";
        var bars = svg.Descendants(ns + "rect").Where(r => (string?)r.Attribute("class") == "bar").ToList();
        Assert.Equal([("m1", "440"), ("m2", "0")], bars.Select(b => ((string)b.Attribute("data-model")!, (string)b.Attribute("width")!)));
        Assert.Equal("", (string)bars[1].Attribute("data-relative")!);
        Assert.Contains(svg.Descendants(ns + "text"), t => t.Value == "no verdict");
    }
}
