using System.Diagnostics.Metrics;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Services;
using VicunaBatch.Inference.Engine;

namespace VicunaBatch.Worker;

/// <summary>
/// The worker's OpenTelemetry metrics (meter <see cref="MeterName"/>): output tokens (a counter: its rate is
/// tokens/s), requests by outcome, time to first token, queue lag (enqueue to receive), shards by disposition,
/// and gauges read from the engine after each step: batch occupancy, KV slots in use, KV blocks in use (paged KV
/// only), waiting requests. A worker of several engines (one per GPU) tags the gauges and the token and request
/// counters with <c>engine</c> (<c>GPU 1</c>; <c>engine 0</c> on the CPU), one series per engine.
/// </summary>
public sealed class WorkerMetrics : IDisposable
{
    public const string MeterName = "VicunaBatch.Worker";

    private readonly Meter _meter;
    private readonly Counter<long> _outputTokens;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _shards;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _queueLag;
    private EngineGauges[] _engines = [new("engine 0")];

    public WorkerMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _outputTokens = _meter.CreateCounter<long>("vicunabatch.worker.output_tokens", "{token}", "Tokens generated.");
        _requests = _meter.CreateCounter<long>("vicunabatch.worker.requests", "{request}", "Requests finished, by outcome (succeeded, failed).");
        _shards = _meter.CreateCounter<long>("vicunabatch.worker.shards", "{shard}", "Shard messages settled, by disposition.");
        _timeToFirstToken = _meter.CreateHistogram<double>("vicunabatch.worker.time_to_first_token", "s", "From a request's arrival in the engine to its first token.");
        _queueLag = _meter.CreateHistogram<double>("vicunabatch.worker.queue_lag", "s", "From a shard message's enqueue to its receipt by this worker.");
        _meter.CreateObservableGauge("vicunabatch.worker.batch_occupancy", () => Each(g => g.NumSlots == 0 ? 0 : (double)Volatile.Read(ref g.NumRunning) / g.NumSlots),
            "1", "Share of KV slots holding a request, after the last engine step.");
        _meter.CreateObservableGauge("vicunabatch.worker.kv_slots_in_use", () => Each(g => Volatile.Read(ref g.NumRunning)), "{slot}", "KV slots holding a request.");
        _meter.CreateObservableGauge("vicunabatch.worker.kv_blocks_in_use",
            () => Each(g => Volatile.Read(ref g.NumBlocksInUse)).Where(m => m.Value >= 0),
            "{block}", "Paged KV (variant B): blocks held by running requests; not reported for KV slots.");
        _meter.CreateObservableGauge("vicunabatch.worker.waiting_requests", () => Each(g => Volatile.Read(ref g.NumWaiting)), "{request}", "Requests waiting for a KV slot.");
    }

    /// <summary>The worker's engines by label (<c>GPU 0</c>, <c>GPU 1</c>), in the order <see cref="OnStep"/> numbers them; set once they run.</summary>
    public void UseEngines(IReadOnlyList<string> labels) => _engines = [.. labels.Select(label => new EngineGauges(label))];

    /// <summary>On engine <paramref name="index"/>'s thread after each of its steps: a few integer reads.</summary>
    public void OnStep(int index, InferenceEngine engine)
    {
        var gauges = _engines[index];
        gauges.NumSlots = engine.NumSlots;
        Volatile.Write(ref gauges.NumRunning, engine.NumRunning);
        Volatile.Write(ref gauges.NumWaiting, engine.NumWaiting);
        Volatile.Write(ref gauges.NumBlocksInUse, engine.KvUsage is { Unit: KvUnit.Block } kv ? kv.NumInUse : -1);
    }

    /// <summary>A request engine <paramref name="index"/> finished.</summary>
    public void OnGenerated(int index, GenerationResult result)
    {
        var succeeded = result.FinishReason is Inference.Engine.FinishReason.Stop or Inference.Engine.FinishReason.Length;
        var engine = _engines[index].Tag;
        _requests.Add(1, new KeyValuePair<string, object?>("outcome", succeeded ? "succeeded" : "failed"), engine);
        _outputTokens.Add(result.CompletionTokens, engine);
        if (result.CompletionTokens > 0) _timeToFirstToken.Record(result.TimeToFirstToken.TotalSeconds);
    }

    public void OnReceived(ReceivedMessage message, DateTimeOffset now)
    {
        if (message.EnqueuedAt is { } enqueued) _queueLag.Record(Math.Max(0, (now - enqueued).TotalSeconds));
    }

    public void OnShardSettled(ShardDisposition disposition) =>
        _shards.Add(1, new KeyValuePair<string, object?>("disposition", disposition.SnakeCase()));

    private IEnumerable<Measurement<T>> Each<T>(Func<EngineGauges, T> read) where T : struct =>
        [.. _engines.Select(g => new Measurement<T>(read(g), g.Tag))];

    /// <summary>One engine's figures after its last step, and its tag.</summary>
    private sealed class EngineGauges(string label)
    {
        public readonly KeyValuePair<string, object?> Tag = new("engine", label);
        public int NumSlots;
        public int NumRunning, NumWaiting;
        public int NumBlocksInUse = -1; // -1: KV slots, no blocks to report
    }

    /// <summary>This worker's meter (one per host, even in a process holding several, as tests do).</summary>
    internal Meter Meter => _meter;

    public void Dispose() => _meter.Dispose();
}
