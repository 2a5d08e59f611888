using System.Globalization;
using System.Xml.Linq;

namespace VicunaBatch.Cli.Eval;

/// <summary>
/// The chart of <c>eval show</c> (<c>results.svg</c>): one horizontal bar per model, its length the model's relative
/// score (<see cref="EvalResults.RelativeScores"/>), as the Vicuna article's figure draws them, with the share written at
/// its end; a model without one has an empty bar marked "no verdict". Hand-written SVG 1.1, no script, so a browser (or
/// any image viewer) shows it. Each bar is a <c>rect</c> of class <c>bar</c> carrying <c>data-model</c> and
/// <c>data-relative</c>.
/// </summary>
internal static class EvalChart
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";
    private const int Width = 720, LabelWidth = 180, BarArea = 440, RowHeight = 34, Top = 64, BarHeight = 22;
    private static readonly string[] Colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"];

    public static string Render(EvalResults results)
    {
        var scores = results.RelativeScores();
        // the longest bar fills the area; 100 % at least, so shares of a reference stay comparable with the article's
        var scale = Math.Max(1.0, scores.Select(s => s.Relative ?? 0).DefaultIfEmpty(0).Max());
        int height = Top + scores.Count * RowHeight + 40;
        var svg = new XElement(Svg + "svg",
            new XAttribute("width", Width), new XAttribute("height", height), new XAttribute("viewBox", $"0 0 {Width} {height}"),
            new XAttribute("font-family", "Helvetica, Arial, sans-serif"), new XAttribute("font-size", 13),
            new XElement(Svg + "rect", new XAttribute("width", Width), new XAttribute("height", height), new XAttribute("fill", "white")),
            Text(Width / 2, 24, $"Relative score, judged by {results.Judge} ({results.Mode.Name()})", "middle", 16, "bold"),
            Text(Width / 2, 44, $"{results.RelativeTo()}; {results.NumNoVerdict} of {results.NumGames} judgments unparsable, {results.NumFailed} failed", "middle", 12, null));
        for (var i = 0; i < scores.Count; i++)
        {
            var (model, relative) = scores[i];
            int y = Top + i * RowHeight;
            double length = relative is { } r ? BarArea * r / scale : 0;
            svg.Add(Text(LabelWidth - 8, y + BarHeight / 2 + 5, model, "end", 13, null));
            svg.Add(new XElement(Svg + "rect",
                new XAttribute("class", "bar"), new XAttribute("data-model", model),
                new XAttribute("data-relative", relative is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : ""),
                new XAttribute("x", LabelWidth), new XAttribute("y", y), new XAttribute("width", Number(length)), new XAttribute("height", BarHeight),
                new XAttribute("fill", Colors[i % Colors.Length])));
            svg.Add(Text(LabelWidth + (int)Math.Ceiling(length) + 6, y + BarHeight / 2 + 5, relative is null ? "no verdict" : EvalReport.Percent(relative), "start", 13, null));
        }
        // the axis: 0 and the 100 % line
        int bottom = Top + scores.Count * RowHeight;
        svg.Add(Line(LabelWidth, Top - 6, LabelWidth, bottom, "#333"));
        var hundred = LabelWidth + BarArea / scale;
        svg.Add(Line(hundred, Top - 6, hundred, bottom, "#999", dashed: true));
        svg.Add(Text((int)hundred, bottom + 16, "100 %", "middle", 11, null));
        return new XDocument(new XDeclaration("1.0", "utf-8", null), svg).Declaration + "\n" + svg.ToString() + "\n";
    }

    private static XElement Text(int x, int y, string text, string anchor, int size, string? weight)
    {
        var element = new XElement(Svg + "text", new XAttribute("x", x), new XAttribute("y", y), new XAttribute("text-anchor", anchor),
            new XAttribute("font-size", size), text);
        if (weight is not null) element.Add(new XAttribute("font-weight", weight));
        return element;
    }

    private static XElement Line(double x1, double y1, double x2, double y2, string color, bool dashed = false)
    {
        var line = new XElement(Svg + "line", new XAttribute("x1", Number(x1)), new XAttribute("y1", Number(y1)),
            new XAttribute("x2", Number(x2)), new XAttribute("y2", Number(y2)), new XAttribute("stroke", color));
        if (dashed) line.Add(new XAttribute("stroke-dasharray", "4 3"));
        return line;
    }

    private static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
