using System.Threading.Channels;

namespace VicunaBatch.Inference.Engine;

/// <summary>
/// The async front of one engine: callers on any thread await <see cref="GenerateAsync"/>; one dedicated
/// thread owns the engine, admits new requests between steps and completes each caller as its request ends.
/// </summary>
public sealed class EngineHost : IAsyncDisposable
{
    private readonly InferenceEngine _engine;
    private readonly Channel<Command> _commands = Channel.CreateUnbounded<Command>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Dictionary<string, Pending> _pendingByKey = [];
    private readonly Thread _thread;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, long> _keyToSequence = [];
    private readonly bool _ownsEngine;
    private long _nextKey;
    private int _numInFlight;

    /// <param name="ownsEngine">Dispose the engine with the host.</param>
    public EngineHost(InferenceEngine engine, bool ownsEngine = true)
    {
        _engine = engine;
        _ownsEngine = ownsEngine;
        _thread = new Thread(Loop) { IsBackground = true, Name = "vicuna-engine" };
        _thread.Start();
    }

    public InferenceEngine Engine => _engine;

    /// <summary>Requests submitted and not yet finished.</summary>
    public int NumInFlight => Volatile.Read(ref _numInFlight);

    /// <summary>Observed after each step on the engine thread (progress, metrics).</summary>
    public event Action<InferenceEngine>? StepCompleted;

    /// <summary>Runs a request of one choice (<see cref="GenerationRequest.NumChoices"/> 1).</summary>
    public async Task<GenerationResult> GenerateAsync(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        if (request.NumChoices != 1)
        {
            throw new ArgumentException($"a request of {request.NumChoices} choices has as many results: use {nameof(GenerateChoicesAsync)}", nameof(request));
        }
        return (await GenerateChoicesAsync(request, cancellationToken))[0];
    }

    /// <summary>Runs a request and returns its <see cref="GenerationRequest.NumChoices"/> results, in choice order.</summary>
    public Task<IReadOnlyList<GenerationResult>> GenerateChoicesAsync(GenerationRequest request, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        var key = Interlocked.Increment(ref _nextKey).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var pending = new Pending(request);
        Interlocked.Increment(ref _numInFlight);
        if (!_commands.Writer.TryWrite(new Command(key, pending)))
        {
            Interlocked.Decrement(ref _numInFlight);
            throw new ObjectDisposedException(nameof(EngineHost));
        }
        if (cancellationToken.CanBeCanceled)
        {
            // after the submit: a token already cancelled runs this at once, and its cancel must come behind the submit
            pending.Registration = cancellationToken.Register(() => _commands.Writer.TryWrite(new Command(key, null)));
        }
        return pending.Completion.Task;
    }

    private void Loop()
    {
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                if (!_engine.HasWork)
                {
                    // idle: block until a command arrives or the host stops
                    if (!_commands.Reader.WaitToReadAsync(_stopping.Token).AsTask().GetAwaiter().GetResult())
                    {
                        return;
                    }
                }
                while (_commands.Reader.TryRead(out var command))
                {
                    Apply(command);
                }
                foreach (var result in _engine.Step())
                {
                    Complete(result);
                }
                StepCompleted?.Invoke(_engine);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            FailAll(e);
        }
    }

    private void Apply(Command command)
    {
        if (command.Submit is { } pending)
        {
            // the engine's result carries the caller's id; route by a host-unique id instead
            var routed = pending.Request with { Id = command.Key };
            _pendingByKey[command.Key] = pending;
            _keyToSequence[command.Key] = _engine.Submit(routed);
        }
        else if (_keyToSequence.TryGetValue(command.Key, out var sequenceId))
        {
            _engine.Cancel(sequenceId);
        }
    }

    private void Complete(GenerationResult result)
    {
        if (!_pendingByKey.TryGetValue(result.Id, out var pending) || !pending.Add(result with { Id = pending.Request.Id }))
        {
            return; // more choices to come
        }
        _pendingByKey.Remove(result.Id);
        _keyToSequence.Remove(result.Id);
        pending.Registration.Dispose();
        Interlocked.Decrement(ref _numInFlight);
        pending.Completion.TrySetResult(pending.Results);
    }

    private void FailAll(Exception e)
    {
        foreach (var pending in _pendingByKey.Values)
        {
            pending.Completion.TrySetException(e);
        }
        _pendingByKey.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        _commands.Writer.TryComplete();
        await _stopping.CancelAsync();
        await Task.Run(() => _thread.Join());
        foreach (var pending in _pendingByKey.Values)
        {
            pending.Completion.TrySetCanceled();
        }
        if (_ownsEngine)
        {
            _engine.Dispose();
        }
        _stopping.Dispose();
    }

    private sealed record Command(string Key, Pending? Submit);

    private sealed class Pending(GenerationRequest request)
    {
        private readonly GenerationResult?[] _results = new GenerationResult?[Math.Max(1, request.NumChoices)];
        private int _numResults;

        public GenerationRequest Request { get; } = request;

        public TaskCompletionSource<IReadOnlyList<GenerationResult>> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public CancellationTokenRegistration Registration { get; set; }

        public IReadOnlyList<GenerationResult> Results => [.. _results.Select(r => r!)];

        /// <summary>Takes one choice's result; true once every choice has one.</summary>
        public bool Add(GenerationResult result)
        {
            if (result.Choice < 0 || result.Choice >= _results.Length || _results[result.Choice] is not null)
            {
                throw new InvalidOperationException($"request {Request.Id}: result of choice {result.Choice} unexpected ({_results.Length} choices, {_numResults} in)");
            }
            _results[result.Choice] = result;
            return ++_numResults == _results.Length;
        }
    }
}
