using VicunaBatch.Cli.Eval;

namespace VicunaBatch.Cli.Tests.Eval;

/// <summary>Every verdict form a judge writes, and the malformed ones, read as a verdict or as none: never a guess.</summary>
public sealed class VerdictsTests
{
    [Theory]
    [InlineData("A is clearer and covers more. [[A]]", "A")]
    [InlineData("[[B]]", "B")]
    [InlineData("Both are equally good.\n\nVerdict: [[C]]", "tie")]
    [InlineData("[[A]] ... so, to repeat: [[A]]", "A")]
    [InlineData("My final verdict is \"[[B]]\".", "B")]
    public void PairVerdict_reads_the_one_verdict_named(string judgment, string expected) =>
        Assert.Equal(expected, Verdicts.PairVerdict(judgment));

    [Theory]
    [InlineData("")]
    [InlineData("A is better.")]
    [InlineData("[A]")]
    [InlineData("[[a]]")]
    [InlineData("[[ A ]]")]
    [InlineData("[[D]]")]
    [InlineData("[[AB]]")]
    [InlineData("Not [[A]] but [[B]]")]
    [InlineData("[[A]] or [[C]]")]
    [InlineData("[[A")]
    [InlineData("$ERROR$")]
    public void PairVerdict_is_none_for_a_missing_malformed_or_ambiguous_verdict(string judgment) =>
        Assert.Null(Verdicts.PairVerdict(judgment));

    [Theory]
    [InlineData("Good answer.\nRating: [[7]]", 7)]
    [InlineData("Rating: [[10]]", 10)]
    [InlineData("Rating: [[1]]", 1)]
    [InlineData("[[7.5]]", 7.5)]
    [InlineData("Rating: [[ 8 ]]", 8)]
    [InlineData("Rating: [[3]]. Again, the rating: [[3]]", 3)]
    public void Rating_reads_one_rating_from_1_to_10(string judgment, double expected) =>
        Assert.Equal(expected, Verdicts.Rating(judgment));

    [Theory]
    [InlineData("")]
    [InlineData("Rating: 7")]
    [InlineData("Rating: [7]")]
    [InlineData("Rating: [[seven]]")]
    [InlineData("Rating: [[0]]")]
    [InlineData("Rating: [[11]]")]
    [InlineData("Rating: [[-3]]")]
    [InlineData("Rating: [[6]] or maybe [[8]]")]
    [InlineData("Rating: [[7/10]]")]
    [InlineData("[[A]]")]
    public void Rating_is_minus_one_for_a_missing_out_of_range_or_ambiguous_rating(string judgment) =>
        Assert.Equal(-1, Verdicts.Rating(judgment));

    [Theory]
    [InlineData("A", true, "model_1")]
    [InlineData("B", true, "model_2")]
    [InlineData("A", false, "model_2")]
    [InlineData("B", false, "model_1")]
    [InlineData("tie", true, "tie")]
    [InlineData("tie", false, "tie")]
    [InlineData(null, true, "error")]
    [InlineData(null, false, "error")]
    public void Winner_says_the_game_of_the_models_game_two_showing_model_2_as_A(string? verdict, bool modelOneIsA, string expected) =>
        Assert.Equal(expected, Verdicts.Winner(verdict, modelOneIsA));

    [Theory]
    [InlineData("model_1", "model_1", "Model1Wins")]
    [InlineData("model_2", "model_2", "Model2Wins")]
    [InlineData("model_1", "model_2", "Tie")] // the judge preferred whichever came first: position bias, a tie
    [InlineData("model_2", "model_1", "Tie")]
    [InlineData("tie", "tie", "Tie")]
    [InlineData("tie", "model_1", "Tie")]
    [InlineData("model_1", "tie", "Tie")]
    public void Outcome_wins_only_when_both_orders_agree(string g1, string g2, string expected) =>
        Assert.Equal(Enum.Parse<PairOutcome>(expected), Verdicts.Outcome(g1, g2));

    [Theory]
    [InlineData("error", "model_1")]
    [InlineData("model_2", "error")]
    [InlineData("error", "error")]
    public void Outcome_is_none_when_either_game_has_no_verdict(string g1, string g2) =>
        Assert.Null(Verdicts.Outcome(g1, g2));
}
