namespace VicunaBatch.Inference.Tests.Text;

/// <summary>Texts compared against python sentencepiece: all benchmark turns plus edge cases.</summary>
public static class TokenizerCorpus
{
    public static readonly string[] EdgeCases =
    [
        "",
        " ",
        "\n",
        " leading space",
        "trailing space ",
        "  both sides  ",
        "multiple  spaces   between    words",
        "                                ",
        "tab\tseparated\tvalues",
        "\tindented with a tab",
        "line one\nline two\n\nline four\r\nwindows line",
        "naïve café",
        "Ünïcödé ñ ß Ω ж",
        "日本語のテキストです。中文字符",
        "👍🏽 🚀",
        "1234567 3.14",
        "x = 1000000; y = 0.000001",
        "def add(a, b):\n    return {a: b}\n",
        "if (x) {\n\tfoo();\n}",
        "    four spaces of indentation",
        "aaaa aaaaaaa zzzzzz lalalalala",
        "---- ======== ........ !!!!!",
        "x</s>y <s> <unk>",
        "Ｈｅｌｌｏ ﬁ ①",
        "\u00A0non-breaking\u00A0space",
    ];

    public static IReadOnlyList<string> All() => [.. SentencePieceOracle.BenchmarkTurns(), .. EdgeCases];
}
