using System.Text;
using System.Text.Json;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Grammar;
using VicunaBatch.Inference.Tests.Text;
using VicunaBatch.Inference.Text;
using VicunaBatch.Testing;

namespace VicunaBatch.Inference.Tests.Grammar;

/// <summary>
/// Random token choices under the mask, on real vocabularies (the committed tiny model's 1,024 pieces and LLaMA's
/// 32,000): every walk that ends on end of sequence decodes to JSON that parses and satisfies its schema, and the
/// mask holds exactly the tokens the automaton can read.
/// </summary>
public sealed class TokenMaskTests
{
    private const int Eos = 2;

    private static readonly Lazy<TextTokenizer> Tiny = new(() => TextTokenizer.Load(Path.Combine(Checkout.Root, "models", "tiny", "tokenizer.model")));
    private static readonly Lazy<TextTokenizer> Llama = new(() => TextTokenizer.Load(SentencePieceOracle.LlamaTokenizerPath));

    public static readonly JsonSchemaNode Person = new ObjectSchema(
    [
        new("name", new StringSchema()), new("age", new NumberSchema(true)), new("tags", new ArraySchema(new StringSchema())),
        new("kind", new LiteralSchema(["\"a\"", "\"b\"", "\"c\""])), new("nick", new AnyOfSchema([new StringSchema(), new NullSchema()])),
        new("say \"hi\"", new BooleanSchema()),
    ], ["name", "age", "kind"], null);

    public static readonly JsonSchemaNode Points = new ArraySchema(new ObjectSchema(
        [new("x", new NumberSchema(false)), new("y", new BooleanSchema()), new("z", new LiteralSchema(["{\"k\":[1,2]}"]))], ["x", "z"], null));

    public static readonly JsonSchemaNode Choice = new AnyOfSchema(
        [new NumberSchema(true), new ObjectSchema([new("a", new NullSchema())], ["a"], null), new LiteralSchema(["1", "12", "123", "\"é\""])]);

    public static TheoryData<string, string> Cases() => new()
    {
        { "tiny", "json_object" }, { "tiny", "person" }, { "tiny", "points" }, { "tiny", "choice" }, { "tiny", "any" },
        { "llama", "json_object" }, { "llama", "person" }, { "llama", "points" }, { "llama", "choice" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void RandomTokensUnderTheMask_alwaysDecodeToJsonOfTheSchema(string vocabularyName, string schemaName)
    {
        var (tokenizer, walks) = vocabularyName == "tiny" ? (Tiny.Value, 60) : (Llama.Value, 12);
        var (grammar, schema) = Grammar(schemaName);
        var vocabulary = new ModelVocabulary([Eos], tokenizer.Decode, TokenTexts.Of(tokenizer));
        var sampling = new GrammarSampling(vocabulary, new Sampler());
        var random = new Random(schemaName.Length * 31 + walks);
        for (var walk = 0; walk < walks; walk++)
        {
            var ids = Walk(grammar.Start(), sampling, vocabulary, random, checkExact: walk == 0);
            var text = tokenizer.Decode(ids);
            using var document = JsonDocument.Parse(text);
            Assert.True(SchemaCheck.Satisfies(document.RootElement, schema), $"walk {walk}: {text} is not of {schemaName}");
        }
    }

    /// <summary>Random allowed tokens until end of sequence; after a while it prefers tokens that close something, so it ends.</summary>
    private static List<int> Walk(JsonMatcher matcher, GrammarSampling sampling, ModelVocabulary vocabulary, Random random, bool checkExact)
    {
        var ids = new List<int>();
        for (var step = 0; step < 3000; step++)
        {
            var allowed = Allowed(sampling.Mask(matcher, vocabulary.TokenBytes!.Count));
            Assert.NotEmpty(allowed);
            if (checkExact && step % 4 == 0) AssertMaskIsExact(matcher, vocabulary, allowed);
            var closers = allowed.Where(id => id == Eos || vocabulary.TokenBytes[id] is [(byte)'"' or (byte)'}' or (byte)']' or (byte)'0']).ToList();
            var pool = step > 30 && closers.Count > 0 ? closers : allowed;
            var token = pool[random.Next(pool.Count)];
            if (token == Eos)
            {
                Assert.True(matcher.CanEnd);
                return ids;
            }
            Assert.True(matcher.TryAdvance(vocabulary.TokenBytes[token]), $"token {token} was allowed but is not read");
            ids.Add(token);
        }
        throw new Xunit.Sdk.XunitException($"no end after 3000 tokens: {Encoding.UTF8.GetString(ids.SelectMany(id => vocabulary.TokenBytes![id]!).ToArray())}");
    }

    /// <summary>A token is in the mask exactly when a copy of the matcher can read its bytes (end of sequence: when it can end).</summary>
    private static void AssertMaskIsExact(JsonMatcher matcher, ModelVocabulary vocabulary, List<int> allowed)
    {
        var set = allowed.ToHashSet();
        for (var id = 0; id < vocabulary.TokenBytes!.Count; id++)
        {
            var bytes = vocabulary.TokenBytes[id];
            var readable = id == Eos ? matcher.CanEnd : bytes is { Length: > 0 } && new JsonMatcher(matcher.Frames).TryAdvance(bytes);
            Assert.True(readable == set.Contains(id), $"token {id} ({(bytes is null ? "control" : Encoding.UTF8.GetString(bytes))}): readable {readable}, masked {!set.Contains(id)}");
        }
    }

    private static List<int> Allowed(ReadOnlySpan<ulong> mask)
    {
        var ids = new List<int>();
        for (var id = 0; id < mask.Length * 64; id++)
        {
            if ((mask[id >> 6] >> (id & 63) & 1) != 0) ids.Add(id);
        }
        return ids;
    }

    private static (JsonGrammar Grammar, JsonSchemaNode Schema) Grammar(string name) => name switch
    {
        "json_object" => (JsonGrammar.AnyObject, JsonSchemaNode.AnyObject),
        "person" => (JsonGrammar.ForSchema(Person), Person),
        "points" => (JsonGrammar.ForSchema(Points), Points),
        "choice" => (JsonGrammar.ForSchema(Choice), Choice),
        _ => (JsonGrammar.ForSchema(JsonSchemaNode.Any), JsonSchemaNode.Any),
    };
}
