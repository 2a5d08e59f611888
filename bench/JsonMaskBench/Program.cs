using System.Diagnostics;
using System.Text;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Grammar;
using VicunaBatch.Inference.Text;

// Microseconds per token of the response_format mask (the trie walk, then the −∞ copy and the sampler) at points of
// a JSON text where the grammar leaves few or most tokens open, for the committed tiny model's vocabulary and LLaMA's.
var root = FindRoot();
var shared = args.Length > 0 ? args[0] : Path.Combine(root, "..", "shared");
(string Name, string Path)[] vocabularies =
[
    ("tiny (1,024)", System.IO.Path.Combine(root, "models", "tiny", "tokenizer.model")),
    ("LLaMA (32,000)", System.IO.Path.Combine(shared, "models", "llama-tokenizer.model")),
];
var schema = JsonGrammar.ForSchema(new ObjectSchema(
    [new("name", new StringSchema()), new("age", new NumberSchema(true)), new("tags", new ArraySchema(new StringSchema())),
     new("kind", new LiteralSchema(["\"a\"", "\"b\""]))], ["name", "age", "kind"], null));
(string Name, JsonGrammar Grammar, string Prefix)[] points =
[
    ("json_object, start", JsonGrammar.AnyObject, ""),
    ("json_object, in a string", JsonGrammar.AnyObject, "{\"story\": \"Once upon a"),
    ("json_object, after a value", JsonGrammar.AnyObject, "{\"a\": [1, {\"b\": true}]"),
    ("json_object, in a number", JsonGrammar.AnyObject, "{\"n\": 12"),
    ("schema, a key", schema, "{\"name\": \"x\", \""),
    ("schema, in a string", schema, "{\"name\": \"Ada Love"),
    ("schema, an enum", schema, "{\"kind\": "),
];
var random = new Random(1);
foreach (var (vocabularyName, path) in vocabularies)
{
    var tokenizer = TextTokenizer.Load(path);
    var clock = Stopwatch.StartNew();
    var vocabulary = new ModelVocabulary([tokenizer.EosId], tokenizer.Decode, TokenTexts.Of(tokenizer));
    var trie = vocabulary.Trie!;
    Console.WriteLine($"{vocabularyName}: trie of {trie.NumNodes} nodes built in {clock.Elapsed.TotalMilliseconds:F1} ms");
    var sampling = new GrammarSampling(vocabulary, new Sampler());
    var logits = Enumerable.Range(0, tokenizer.VocabSize).Select(_ => (float)random.NextDouble() * 4).ToArray();
    foreach (var (pointName, grammar, prefix) in points)
    {
        var matcher = grammar.Start();
        if (!matcher.TryAdvance(Encoding.UTF8.GetBytes(prefix))) throw new InvalidOperationException($"{pointName}: the prefix is not JSON");
        var numAllowed = Count(sampling.Mask(matcher, logits.Length));
        var maskUs = Time(() => sampling.Mask(matcher, logits.Length));
        var pickUs = Time(() => sampling.Pick(matcher, logits, SamplingParams.Greedy, 0f));
        Console.WriteLine($"  {pointName,-28} {numAllowed,6} allowed  mask {maskUs,8:F1} µs  mask + pick {pickUs,8:F1} µs/token");
    }
}

static double Time(Action action)
{
    for (var i = 0; i < 20; i++) action();
    var clock = Stopwatch.StartNew();
    var n = 0;
    while (clock.ElapsedMilliseconds < 1000)
    {
        action();
        n++;
    }
    return clock.Elapsed.TotalMilliseconds * 1000 / n;
}

static int Count(ReadOnlySpan<ulong> mask)
{
    var count = 0;
    foreach (var word in mask) count += System.Numerics.BitOperations.PopCount(word);
    return count;
}

static string FindRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "VicunaBatch.sln"))) return dir.FullName;
    }
    throw new DirectoryNotFoundException("no VicunaBatch.sln above the benchmark");
}
