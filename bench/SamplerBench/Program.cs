using System.Diagnostics;
using VicunaBatch.Inference.Engine;

// Microseconds per row of the host sampler at Vicuna's 32,000-token vocabulary, on rows shaped like a trained model's
// (spread logits, a few far ahead), for the settings users send.
const int Vocab = 32000;
var random = new Random(1);
var rows = Enumerable.Range(0, 64).Select(_ =>
{
    var row = new float[Vocab];
    for (var i = 0; i < Vocab; i++) row[i] = (float)(random.NextDouble() * 2 - 1) * 3;
    for (var k = 0; k < 5; k++) row[random.Next(Vocab)] += 12;
    return row;
}).ToArray();
var sampler = new Sampler();
var rng = new SamplingRng(7);
(string Name, SamplingParams Sampling)[] settings =
[
    ("greedy", new SamplingParams()), ("T 0.7", new SamplingParams(0.7f)), ("T 0.7, top-p 0.9", new SamplingParams(0.7f, TopP: 0.9f)),
    ("T 1, top-p 0.95", new SamplingParams(1f, TopP: 0.95f)), ("T 0.7, top-k 40", new SamplingParams(0.7f, TopK: 40)),
];
foreach (var (name, sampling) in settings)
{
    for (var warm = 0; warm < 3; warm++) foreach (var row in rows) sampler.Sample(row, sampling, Sampler.Uniform(rng));
    var clock = Stopwatch.StartNew();
    var n = 0;
    while (clock.ElapsedMilliseconds < 1500)
    {
        foreach (var row in rows) { sampler.Sample(row, sampling, Sampler.Uniform(rng)); n++; }
    }
    Console.WriteLine($"{name,-18} {clock.Elapsed.TotalMilliseconds * 1000 / n,8:F1} µs/row");
}
