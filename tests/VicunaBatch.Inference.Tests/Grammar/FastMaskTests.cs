using System.Text;
using VicunaBatch.Inference.Grammar;
using VicunaBatch.Inference.Tests.Text;
using VicunaBatch.Inference.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Grammar;

/// <summary>
/// <see cref="TokenTrie.Allow"/> (plain string tokens from a table, a walk of the rest) against
/// <see cref="TokenTrie.AllowByFullWalk"/>, bit for bit, on the committed tiny model's vocabulary and LLaMA's: at
/// every state of random walks that lean towards the tokens that make strings hard (bytes of split UTF-8 characters,
/// backslashes, quotes), and at hand-picked states partway through escapes and characters.
/// </summary>
public sealed class FastMaskTests
{
    private static readonly Lazy<TextTokenizer> Tiny = new(() => TextTokenizer.Load(Path.Combine(Checkout.Root, "models", "tiny", "tokenizer.model")));
    private static readonly Lazy<TextTokenizer> Llama = new(() => TextTokenizer.Load(SentencePieceOracle.LlamaTokenizerPath));

    /// <summary>Keys with escapes and multi-byte characters, a string or an enum of strings at one place (both states alive after the quote).</summary>
    public static readonly JsonSchemaNode Mixed = new ObjectSchema(
    [
        new("clé \"ü\"", new AnyOfSchema([new StringSchema(), new LiteralSchema(["\"ab\"", "\"é\\n\"", "\"\U0001F600\""])])),
        new("list", new ArraySchema(new StringSchema())), new("n", new NumberSchema(false)),
    ], ["clé \"ü\""], new StringSchema());

    private static readonly JsonGrammar[] Grammars =
    [
        JsonGrammar.AnyObject, JsonGrammar.ForSchema(TokenMaskTests.Person), JsonGrammar.ForSchema(TokenMaskTests.Points),
        JsonGrammar.ForSchema(TokenMaskTests.Choice), JsonGrammar.ForSchema(JsonSchemaNode.Any), JsonGrammar.ForSchema(Mixed),
    ];

    public static TheoryData<string> Vocabularies() => new() { "tiny", "llama" };

    [Theory]
    [MemberData(nameof(Vocabularies))]
    public void RandomWalks_fastMaskEqualsTheFullWalk(string vocabularyName)
    {
        var (tokenizer, steps) = vocabularyName == "tiny" ? (Tiny.Value, 2000) : (Llama.Value, 600);
        var tokenBytes = TokenTexts.Of(tokenizer);
        var trie = new TokenTrie(tokenBytes);
        var hard = HardTokens(tokenBytes);
        var seen = new HashSet<string>();
        var random = new Random(7);
        foreach (var grammar in Grammars)
        {
            var matcher = grammar.Start();
            for (var step = 0; step < steps; step++)
            {
                var allowed = AssertSameMask(trie, matcher, $"{vocabularyName}, step {step}");
                seen.UnionWith(matcher.Frames.Select(Kind));
                if (allowed.Count == 0 || step % 120 == 119)
                {
                    matcher = grammar.Start();
                    continue;
                }
                var token = Choose(allowed, hard, random);
                Assert.True(matcher.TryAdvance(tokenBytes[token]), $"token {token} was allowed but is not read");
            }
        }
        // the walks reached every kind of state the fast path has to get right
        string[] kinds = ["Plain", "Utf8", "Escape", "Hex", "KeyFrame", "LiteralFrame", "NumberFrame"];
        Assert.Empty(kinds.Except(seen));
    }

    /// <summary>States partway through escapes, multi-byte characters (every lead byte's range), keys and string enums.</summary>
    public static TheoryData<string, int, string> States()
    {
        string[] prefixes =
        [
            "{\"k\": \"", "{\"k\": \"a\\", "{\"k\": \"a\\u", "{\"k\": \"a\\ud", "{\"k\": \"a\\u00e", "{\"k\": \"\xC3", "{\"k\": \"\xE0",
            "{\"k\": \"\xE0\xA0", "{\"k\": \"\xED", "{\"k\": \"\xED\x9F", "{\"k\": \"\xE4\xB8", "{\"k\": \"\xF0", "{\"k\": \"\xF0\x9F",
            "{\"k\": \"\xF0\x9F\x98", "{\"k\": \"\xF1\x80", "{\"k\": \"\xF4", "{\"k\": \"\xF4\x8F\xBF", "{\"", "{\"\xC3", "{\"a\\",
            "[\"x\", \"", "\"", "\"\\u12", "{\"ab\": 1, \"a",
        ];
        var data = new TheoryData<string, int, string>();
        foreach (var vocabulary in new[] { "tiny", "llama" })
        {
            foreach (var prefix in prefixes) data.Add(vocabulary, 4, prefix);
        }
        foreach (var prefix in new[] { "{\"cl\xC3\xA9 \\\"", "{\"cl\xC3\xA9 \\\"\xC3", "{\"cl\xC3\xA9 \\\"\xC3\xBC\\\"\": \"", "{\"cl\xC3\xA9 \\\"\xC3\xBC\\\"\": \"\xC3", "{\"cl\xC3\xA9 \\\"\xC3\xBC\\\"\": \"\xF0\x9F" })
        {
            data.Add("tiny", 5, prefix);
            data.Add("llama", 5, prefix);
        }
        data.Add("llama", 1, "{\"kind\": \"");
        data.Add("llama", 3, "\"\xC3");
        return data;
    }

    /// <param name="prefix">The text so far, one char a byte (Latin-1), so a character can stop partway.</param>
    [Theory]
    [MemberData(nameof(States))]
    public void HandPickedStates_fastMaskEqualsTheFullWalk(string vocabularyName, int grammarIndex, string prefix)
    {
        var tokenBytes = TokenTexts.Of(vocabularyName == "tiny" ? Tiny.Value : Llama.Value);
        var matcher = Grammars[grammarIndex].Start();
        Assert.True(matcher.TryAdvance(Encoding.Latin1.GetBytes(prefix)), "the prefix is not a JSON prefix of the grammar");
        AssertSameMask(new TokenTrie(tokenBytes), matcher, prefix);
    }

    private static List<int> AssertSameMask(TokenTrie trie, JsonMatcher matcher, string where)
    {
        var words = (trie.VocabSize + 63) / 64;
        var fast = new ulong[words];
        var full = new ulong[words];
        trie.Allow(matcher, fast);
        trie.AllowByFullWalk(matcher, full);
        for (var w = 0; w < words; w++)
        {
            Assert.True(fast[w] == full[w], $"{where}: ids {w * 64}..{w * 64 + 63}: fast {fast[w]:x16}, full walk {full[w]:x16}");
        }
        var allowed = new List<int>();
        for (var id = 0; id < trie.VocabSize; id++)
        {
            if ((full[id >> 6] >> (id & 63) & 1) != 0) allowed.Add(id);
        }
        return allowed;
    }

    /// <summary>Token ids by what makes them hard in a string: a lone byte of 0x80 or above, any such byte, a backslash, a quote, the text of a <c>\u</c> escape.</summary>
    private static HashSet<int>[] HardTokens(IReadOnlyList<byte[]?> tokenBytes)
    {
        var kinds = new HashSet<int>[5];
        for (var k = 0; k < kinds.Length; k++) kinds[k] = [];
        for (var id = 0; id < tokenBytes.Count; id++)
        {
            if (tokenBytes[id] is not { Length: > 0 } bytes) continue;
            if (bytes is [>= 0x80]) kinds[0].Add(id);
            if (bytes.Any(b => b >= 0x80)) kinds[1].Add(id);
            if (bytes.Contains((byte)'\\')) kinds[2].Add(id);
            if (bytes.Contains((byte)'"')) kinds[3].Add(id);
            if (bytes.All(b => b is (byte)'u' or >= (byte)'0' and <= (byte)'9' or >= (byte)'a' and <= (byte)'f' or >= (byte)'A' and <= (byte)'F')) kinds[4].Add(id);
        }
        return kinds;
    }

    /// <summary>Half the time a hard token when one is allowed, else any allowed token.</summary>
    private static int Choose(List<int> allowed, HashSet<int>[] hard, Random random)
    {
        if (random.Next(2) == 0)
        {
            var pool = allowed.Where(hard[random.Next(hard.Length)].Contains).ToList();
            if (pool.Count > 0) return pool[random.Next(pool.Count)];
        }
        return allowed[random.Next(allowed.Count)];
    }

    private static string Kind(Frame frame) => frame is StringFrame s ? s.Phase.ToString() : frame.GetType().Name;
}
