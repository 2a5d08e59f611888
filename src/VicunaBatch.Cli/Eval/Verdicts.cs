using System.Globalization;
using System.Text.RegularExpressions;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// Reads a judge's verdict out of its judgment, or says there is none: never a guess. A pairwise judgment must name one
/// of <c>[[A]]</c>, <c>[[B]]</c>, <c>[[C]]</c> (it may repeat it); none, or two different ones, is no verdict. A grade
/// must hold one rating <c>[[n]]</c> (<c>Rating: [[7]]</c>, <c>[[7.5]]</c>) from 1 to 10; none, one out of range, or two
/// different ones, is no grade (-1, FastChat's mark).
/// </summary>
internal static partial class Verdicts
{
    /// <summary>The winners as a judgment line states them.</summary>
    public const string Model1 = "model_1";
    public const string Model2 = "model_2";
    public const string Tie = "tie";
    public const string Error = "error";

    /// <summary>No grade: FastChat's <c>score</c> for a judgment without one.</summary>
    public const double NoRating = -1;

    /// <summary>"A", "B", "tie" or null (no verdict) for one game's judgment.</summary>
    public static string? PairVerdict(string judgment)
    {
        var named = PairPattern().Matches(judgment).Select(m => m.Groups[1].Value).Distinct().ToList();
        return named is [var one] ? (one == "C" ? Tie : one) : null;
    }

    /// <summary>The rating of a grade, or <see cref="NoRating"/>.</summary>
    public static double Rating(string judgment)
    {
        var ratings = RatingPattern().Matches(judgment)
            .Select(m => double.Parse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture)).Distinct().ToList();
        return ratings is [var one] && one is >= 1 and <= 10 ? one : NoRating;
    }

    /// <summary>
    /// Game 1's winner said of the models: A was model_1's answer. Game 2 showed model_2's answer as A. A game with no
    /// verdict is <see cref="Error"/>.
    /// </summary>
    public static string Winner(string? verdict, bool modelOneIsA) => verdict switch
    {
        "A" => modelOneIsA ? Model1 : Model2,
        "B" => modelOneIsA ? Model2 : Model1,
        Tie => Tie,
        _ => Error,
    };

    /// <summary>
    /// The pair's outcome for model_1, both orders together: it wins (or loses) only when both games say so; a tie in
    /// either, or games that disagree, is a tie (the judge's position bias cancels). Null when either game has no verdict.
    /// </summary>
    public static PairOutcome? Outcome(string g1Winner, string g2Winner)
    {
        if (g1Winner == Error || g2Winner == Error) return null;
        if (g1Winner == Tie || g1Winner != g2Winner) return PairOutcome.Tie;
        return g1Winner == Model1 ? PairOutcome.Model1Wins : PairOutcome.Model2Wins;
    }

    [GeneratedRegex(@"\[\[([ABC])\]\]")]
    private static partial Regex PairPattern();

    [GeneratedRegex(@"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")]
    private static partial Regex RatingPattern();
}

internal enum PairOutcome
{
    Model1Wins,
    Model2Wins,
    Tie,
}
