using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using VicunaBatch.Inference.Engine;
using VicunaBatch.Inference.Onnx;

// Microseconds per pick of log probabilities with the 20 likeliest tokens, at the tiny model's 1,024 tokens and Vicuna's
// 32,000: TokenLogprobs.Of on a host row (what a logprobs request cost before, beside copying its row down) against
// one logprobs.onnx run over a call's rows on the CPU provider (one thread, as the engine opens it), N picks a run.
foreach (var vocab in new[] { 1024, 32000 })
{
    var random = new Random(1);
    const int NumRows = 64;
    var logits = new float[NumRows * vocab];
    for (var i = 0; i < logits.Length; i++) logits[i] = (float)(random.NextDouble() * 6 - 3);
    var tokens = Enumerable.Range(0, NumRows).Select(_ => random.Next(vocab)).ToArray();
    var scratch = new float[vocab];
    Console.WriteLine($"{"host TokenLogprobs.Of",-26} vocab {vocab,6}: {Time(() =>
    {
        for (var row = 0; row < NumRows; row++) TokenLogprobs.Of(logits.AsSpan(row * vocab, vocab), tokens[row], TokenLogprobs.MaxTop, scratch);
        return NumRows;
    }),8:F1} µs/pick");

    using var buffer = new NativeBuffer(4L * logits.Length);
    logits.CopyTo(buffer.AsSpan<float>(logits.Length));
    using var graph = new GraphLogprobs(ExecutionDevice.Cpu, NumRows, pinned: false);
    foreach (var picks in new[] { 1, 8, 64 })
    {
        var rows = Enumerable.Range(0, picks).ToArray();
        var chosen = tokens[..picks];
        var output = new TokenLogprobs[picks];
        Console.WriteLine($"{$"logprobs.onnx, {picks} a run",-26} vocab {vocab,6}: {Time(() =>
        {
            graph.Run(OrtMemoryInfo.DefaultInstance, buffer.At(0), NumRows, vocab, rows, chosen, output);
            return picks;
        }),8:F1} µs/pick");
    }
}

// warm up, then run for 1.5 s: µs per pick
static double Time(Func<int> run)
{
    for (var warm = 0; warm < 20; warm++) run();
    var clock = Stopwatch.StartNew();
    var n = 0;
    while (clock.ElapsedMilliseconds < 1500) n += run();
    return clock.Elapsed.TotalMilliseconds * 1000 / n;
}
