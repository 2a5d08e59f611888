using System.Text;
using System.Text.Json;
using VicunaBatch.Inference.Grammar;

namespace VicunaBatch.Inference.Tests.Grammar;

/// <summary>
/// The automaton against System.Text.Json's reader as the oracle: over a corpus of valid and invalid JSON, every byte
/// prefix is accepted exactly when the reader, told more may follow, finds nothing wrong in it, and the end is
/// allowed exactly when the whole text parses.
/// </summary>
public sealed class JsonMatcherTests
{
    public static readonly string[] Valid =
    [
        "{}", "[]", "0", "-0", "12", "-3.25", "1e5", "1E-7", "2.5e+10", "\"\"", "\"a\"", "true", "false", "null",
        "{\"a\":1}", "{ \"a\" : [1, 2, {\"b\": null}], \"c\": \"x\\ny\\u00e9\\\"\" }", "[[[]]]", "[{}, {}, [true, false]]",
        "\"caf\u00e9 \u4e2d\u6587 \U0001F600\"", "{\"k\":{\"k\":{\"k\":-0.5}}}", "[0,-1,2.0e0]",
        "\n{\"t\":\t\"\\/\\b\\f\\r\\t\\\\\"}",
    ];

    public static readonly string[] Invalid =
    [
        "{", "}", "[1,]", "{\"a\"}", "{\"a\":}", "{,}", "01", "-", "1.", "1e", ".5", "+1", "tru", "nul", "truex", "[1 2]",
        "{\"a\":1,}", "{a:1}", "'x'", "\"a", "\"\\x\"", "\"\\u12g4\"", "\"tab\there\"", "[]]", "{}{}", "NaN",
        "[--1]", "{\"a\" 1}", "\"\\u00\"",
    ];

    public static TheoryData<string> Corpus() => new(Valid.Concat(Invalid));

    [Theory]
    [MemberData(nameof(Corpus))]
    public void EveryPrefix_isAcceptedExactlyWhenTheReaderFindsNoError(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        for (var length = 0; length <= bytes.Length; length++)
        {
            var prefix = bytes.AsSpan(0, length);
            var matcher = JsonGrammar.ForSchema(JsonSchemaNode.Any).Start();
            var accepted = matcher.TryAdvance(prefix);
            Assert.True(accepted == ReaderAcceptsPrefix(prefix.ToArray()),
                $"prefix {length} of {text}: the automaton {(accepted ? "accepts" : "refuses")} \"{Encoding.UTF8.GetString(prefix)}\"");
            if (accepted)
            {
                Assert.True(matcher.CanEnd == Parses(prefix.ToArray()), $"prefix {length} of {text}: CanEnd {matcher.CanEnd}");
            }
        }
    }

    /// <summary>An object's key is not written twice (JSON allows it, and parsers keep one of the two values): the
    /// closing quote of a key the object has is refused; the same key in another object is fine.</summary>
    [Theory]
    [InlineData("{\"a\":1,\"a\"")]
    [InlineData("{\"ab\":1, \"b\":2, \"ab\"")]
    [InlineData("{\"a\\n\":[1],\"a\\n\"")]
    public void RepeatedKey_isRefusedAtItsClosingQuote(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var matcher = JsonGrammar.ForSchema(JsonSchemaNode.Any).Start();
        Assert.True(matcher.TryAdvance(bytes.AsSpan(0, bytes.Length - 1)), text);
        Assert.False(matcher.TryAdvance(bytes.AsSpan(bytes.Length - 1)), text);
    }

    [Theory]
    [InlineData("{\"a\":1,\"ab\":2,\"b\":{\"a\":3,\"b\":4}}")]
    [InlineData("[{\"a\":1},{\"a\":2}]")]
    public void TheSameKeyInAnotherObject_isAccepted(string text)
    {
        var matcher = JsonGrammar.ForSchema(JsonSchemaNode.Any).Start();
        Assert.True(matcher.TryAdvance(Encoding.UTF8.GetBytes(text)), text);
        Assert.True(matcher.CanEnd, text);
    }

    [Fact]
    public void TheCorpus_hasBothKinds()
    {
        Assert.All(Valid, v => Assert.True(Parses(Encoding.UTF8.GetBytes(v)), v));
        Assert.All(Invalid, v => Assert.False(Parses(Encoding.UTF8.GetBytes(v)), v));
    }

    [Theory]
    [InlineData("\"\\ud800\"")]          // half a surrogate pair
    [InlineData("\"\\ud83d\\ude00\"")]  // an escaped pair too: the character is written as UTF-8 instead
    [InlineData("\"\xC3\x28\"")]         // a lead byte without its continuation (as Latin-1 chars: bytes below)
    [InlineData("{} ")]                   // nothing after the value, not even whitespace: the end is forced
    [InlineData("1 2")]
    [InlineData("[1,                 2]")] // more whitespace in a row than MaxWhitespace
    [InlineData("1234567890123456789012345")] // longer than NumberFrame.MaxLength
    public void Refuses_whatItDeliberatelyNarrows(string text)
    {
        var bytes = text.Any(c => c is > '\x7F' and <= '\xFF') ? text.Select(c => (byte)c).ToArray() : Encoding.UTF8.GetBytes(text);
        Assert.False(JsonGrammar.ForSchema(JsonSchemaNode.Any).Start().TryAdvance(bytes));
    }

    [Fact]
    public void JsonObject_refusesAnythingButAnObject()
    {
        Assert.False(JsonGrammar.AnyObject.Start().TryAdvance("[1]"u8));
        Assert.False(JsonGrammar.AnyObject.Start().TryAdvance("\"s\""u8));
        var matcher = JsonGrammar.AnyObject.Start();
        Assert.True(matcher.TryAdvance(" {\"a\": [1, {\"b\": \"c\"}]}"u8));
        Assert.True(matcher.CanEnd);
    }

    [Fact]
    public void TryAdvance_refused_leavesTheMatcherWhereItWas()
    {
        var matcher = JsonGrammar.AnyObject.Start();
        Assert.True(matcher.TryAdvance("{\"a\":"u8));
        Assert.False(matcher.TryAdvance("1}}"u8));
        Assert.True(matcher.TryAdvance("1}"u8));
        Assert.True(matcher.CanEnd);
    }

    /// <summary>The reader, with more to come, reads every token the prefix completes without an error.</summary>
    private static bool ReaderAcceptsPrefix(byte[] prefix)
    {
        var reader = new Utf8JsonReader(prefix, isFinalBlock: false, state: default);
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType == JsonTokenType.String) reader.GetString(); // checks escapes and UTF-8
            }
            return true;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
    }

    private static bool Parses(byte[] text)
    {
        try
        {
            using var document = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
