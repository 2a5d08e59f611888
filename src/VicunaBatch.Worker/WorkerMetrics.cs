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
/// only), waiting requests.
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
    private int _numRunning, _numWaiting, _numSlots;
    private int _numBlocksInUse = -1; // -1: KV slots, no blocks to report

    public WorkerMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _outputTokens = _meter.CreateCounter<long>("vicunabatch.worker.output_tokens", "{token}", "Tokens generated.");
        _requests = _meter.CreateCounter<long>("vicunabatch.worker.requests", "{request}", "Requests finished, by outcome (succeeded, failed).");
        _shards = _meter.CreateCounter<long>("vicunabatch.worker.shards", "{shard}", "Shard messages settled, by disposition.");
        _timeToFirstToken = _meter.CreateHistogram<double>("vicunabatch.worker.time_to_first_token", "s", "From a request's arrival in the engine to its first token.");
        _queueLag = _meter.CreateHistogram<double>("vicunabatch.worker.queue_lag", "s", "From a shard message's enqueue to its receipt by this worker.");
        _meter.CreateObservableGauge("vicunabatch.worker.batch_occupancy", () => _numSlots == 0 ? 0 : (double)Volatile.Read(ref _numRunning) / _numSlots,
            "1", "Share of KV slots holding a request, after the last engine step.");
        _meter.CreateObservableGauge("vicunabatch.worker.kv_slots_in_use", () => Volatile.Read(ref _numRunning), "{slot}", "KV slots holding a request.");
        _meter.CreateObservableGauge("vicunabatch.worker.kv_blocks_in_use",
            () => Volatile.Read(ref _numBlocksInUse) is >= 0 and var n ? [new Measurement<int>(n)] : Array.Empty<Measurement<int>>(),
            "{block}", "Paged KV (variant B): blocks held by running requests; not reported for KV slots.");
        _meter.CreateObservableGauge("vicunabatch.worker.waiting_requests", () => Volatile.Read(ref _numWaiting), "{request}", "Requests waiting for a KV slot.");
    }

    /// <summary>On the engine thread after each step: a few integer reads.</summary>
    public void OnStep(InferenceEngine engine)
    {
        _numSlots = engine.NumSlots;
        Volatile.Write(ref _numRunning, engine.NumRunning);
        Volatile.Write(ref _numWaiting, engine.NumWaiting);
        Volatile.Write(ref _numBlocksInUse, engine.KvUsage is { Unit: KvUnit.Block } kv ? kv.NumInUse : -1);
    }

    public void OnGenerated(GenerationResult result)
    {
        var succeeded = result.FinishReason is Inference.Engine.FinishReason.Stop or Inference.Engine.FinishReason.Length;
        _requests.Add(1, new KeyValuePair<string, object?>("outcome", succeeded ? "succeeded" : "failed"));
        _outputTokens.Add(result.CompletionTokens);
        if (result.CompletionTokens > 0) _timeToFirstToken.Record(result.TimeToFirstToken.TotalSeconds);
    }

    public void OnReceived(ReceivedMessage message, DateTimeOffset now)
    {
        if (message.EnqueuedAt is { } enqueued) _queueLag.Record(Math.Max(0, (now - enqueued).TotalSeconds));
    }

    public void OnShardSettled(ShardDisposition disposition) =>
        _shards.Add(1, new KeyValuePair<string, object?>("disposition", disposition.SnakeCase()));

    /// <summary>This worker's meter (one per host, even in a process holding several, as tests do).</summary>
    internal Meter Meter => _meter;

    public void Dispose() => _meter.Dispose();
}
