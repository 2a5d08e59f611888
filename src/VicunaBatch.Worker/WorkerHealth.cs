using System.Text.Json.Nodes;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Worker;

public enum WorkerState
{
    /// <summary>Loading the model; no shard taken yet.</summary>
    Starting,
    Ready,
    /// <summary>SIGTERM: no new shards; the ones held finish or are released.</summary>
    Draining,
    Stopped,
    /// <summary>The worker cannot run (model failed to load, the loop crashed).</summary>
    Failed,
}

/// <summary>
/// What <c>/healthz</c> reports. Healthy (200) while starting, ready or draining, unless the queue has refused every
/// receive for longer than <see cref="QueueOutageLimit"/>; 503 when failed, stopped or cut off from the queue.
/// </summary>
public sealed class WorkerHealth(TimeProvider time)
{
    /// <summary>How long receive may fail without a success before the worker reports itself unhealthy.</summary>
    public static readonly TimeSpan QueueOutageLimit = TimeSpan.FromSeconds(60);

    private readonly Lock _lock = new();
    private DateTimeOffset? _failingSince;
    private string? _lastQueueError;

    public WorkerState State { get; private set; } = WorkerState.Starting;

    public string? Model { get; private set; }

    public string? FailureReason { get; private set; }

    /// <summary>Requests in the engine (running + waiting); set by the worker loop.</summary>
    public Func<int> NumRequestsInFlight { get; set; } = () => 0;

    /// <summary>Each engine's requests in flight, by its label (<c>GPU 1</c>); set by the worker loop once its engines run.</summary>
    public Func<IReadOnlyList<(string Engine, int NumRequestsInFlight)>> EngineRequestsInFlight { get; set; } = () => [];

    public void Ready(string model)
    {
        lock (_lock) (State, Model) = (WorkerState.Ready, model);
    }

    public void Draining()
    {
        lock (_lock) if (State is WorkerState.Ready or WorkerState.Starting) State = WorkerState.Draining;
    }

    public void Stopped()
    {
        lock (_lock) if (State != WorkerState.Failed) State = WorkerState.Stopped;
    }

    public void Failed(string reason)
    {
        lock (_lock) (State, FailureReason) = (WorkerState.Failed, reason);
    }

    public void ReceiveSucceeded()
    {
        lock (_lock) (_failingSince, _lastQueueError) = (null, null);
    }

    public void ReceiveFailed(WorkQueueException e)
    {
        lock (_lock)
        {
            _failingSince ??= time.GetUtcNow();
            _lastQueueError = e.Message;
        }
    }

    public (bool Healthy, JsonObject Body) Check()
    {
        lock (_lock)
        {
            var outage = _failingSince is { } since ? time.GetUtcNow() - since : TimeSpan.Zero;
            var queueDown = outage > QueueOutageLimit;
            var healthy = State is WorkerState.Starting or WorkerState.Ready or WorkerState.Draining && !queueDown;
            var body = new JsonObject
            {
                ["status"] = healthy ? "healthy" : "unhealthy",
                ["state"] = State.SnakeCase(),
                ["model"] = Model,
                ["requests_in_flight"] = NumRequestsInFlight(),
                ["engines"] = new JsonArray([.. EngineRequestsInFlight().Select(e => (JsonNode)new JsonObject
                {
                    ["engine"] = e.Engine, ["requests_in_flight"] = e.NumRequestsInFlight,
                })]),
            };
            if (FailureReason is not null) body["reason"] = FailureReason;
            if (_lastQueueError is not null) body["queue_error"] = $"{_lastQueueError} (failing for {outage.TotalSeconds:F0} s)";
            return (healthy, body);
        }
    }
}
