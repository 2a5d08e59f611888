using System.Text.Json;
using VicunaBatch.Core.Diagnostics;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Services;

public enum ShardDisposition
{
    /// <summary>Every request has an outcome; report written; message completed.</summary>
    Completed,
    /// <summary>Poison or malformed message; report written (when the shard is known); message dead-lettered.</summary>
    DeadLettered,
    /// <summary>Cancelled (shutdown) or failed; message abandoned for redelivery, never completed.</summary>
    Abandoned,
    /// <summary>The message's lock expired (or another receiver settled it) before this one could settle it: the
    /// receiver holding it now finishes the shard; what this one checkpointed stays and is not run again.</summary>
    LockLost,
    /// <summary>Not run: its job is cancelling, cancelled or expired. Report written (what ran before, if anything);
    /// message completed, so a cancellation settles once every shard has reported.</summary>
    Skipped,
    /// <summary>Not run: delivered <see cref="ShardProcessorOptions.ResendAfterDeliveries"/> times but not poison, it goes
    /// on as a fresh message (sent before this one was completed); no report.</summary>
    Resent,
}

/// <param name="NumExecuted">Requests sent to the executor in this delivery (checkpointed ones are skipped).</param>
/// <param name="Error">Why an abandoned shard failed; null when it was cancelled.</param>
public sealed record ShardResult(ShardDisposition Disposition, Shard? Shard, int NumExecuted, Exception? Error = null);

/// <summary>
/// Runs one received shard message: reads its byte range, skips lines rejected at validation and
/// custom_ids already checkpointed, sends all remaining requests to the executor at once (the engine
/// batches them with other shards' requests), checkpoints each outcome as it arrives, then writes the
/// shard report and completes the message. Safe to call concurrently for many messages.
/// </summary>
public sealed class ShardProcessor
{
    private readonly IBlobStore _blobs;
    private readonly ICheckpointStore _checkpoints;
    private readonly IWorkQueue _queue;
    private readonly IRequestExecutor _executor;
    private readonly ShardProcessorOptions _options;
    private readonly TimeProvider _time;
    private readonly LineParser _parser;
    private readonly ShardReports _reports;
    private readonly IJobStore _jobs;
    private readonly ShardAttempts _attempts;

    public ShardProcessor(IBlobStore blobs, ICheckpointStore checkpoints, IWorkQueue queue, IJobStore jobs, IRequestExecutor executor,
        InputOptions inputOptions, ShardProcessorOptions options, TimeProvider time)
    {
        options.Validate();
        (_blobs, _checkpoints, _queue, _jobs, _executor, _options, _time) = (blobs, checkpoints, queue, jobs, executor, options, time);
        _parser = new LineParser(inputOptions);
        _reports = new ShardReports(blobs);
        _attempts = new ShardAttempts(blobs);
    }

    public Task<ShardResult> ProcessAsync(ReceivedMessage message, CancellationToken cancellationToken = default) =>
        ProcessAsync(message, dispatched: null, cancellationToken);

    /// <summary>As <see cref="ProcessAsync(ReceivedMessage, CancellationToken)"/>; <paramref name="dispatched"/> completes once
    /// every request of the shard has been handed to the executor (or the shard ended first), so a caller that bounds
    /// the executor's load can read it again.</summary>
    public async Task<ShardResult> ProcessAsync(ReceivedMessage message, TaskCompletionSource? dispatched, CancellationToken cancellationToken = default)
    {
        try
        {
            return await ProcessCoreAsync(message, dispatched, cancellationToken);
        }
        finally
        {
            dispatched?.TrySetResult();
        }
    }

    private async Task<ShardResult> ProcessCoreAsync(ReceivedMessage message, TaskCompletionSource? dispatched, CancellationToken cancellationToken)
    {
        Shard shard;
        try { shard = Shard.FromJson(message.Body); }
        catch (JsonException e)
        {
            return await SettleAsync(() => _queue.DeadLetterAsync(message, $"malformed shard message: {e.Message}", CancellationToken.None),
                new ShardResult(ShardDisposition.DeadLettered, null, 0));
        }
        using var renewal = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var renewLoop = RenewLockLoopAsync(message, renewal.Token);
        ShardAttempt? attempt = null;
        try
        {
            var done = await _checkpoints.GetDoneCustomIdsAsync(shard.JobId, shard.ShardIndex, cancellationToken);
            attempt = await _attempts.BeginAsync(shard, message, done.Count, cancellationToken);
            if (attempt.Stalled >= _options.MaxDeliveriesWithoutProgress)
            {
                await StopAsync(renewal, renewLoop);
                return await DeadLetterAsync(message, shard, $"{attempt.Stalled} deliver{(attempt.Stalled == 1 ? "y" : "ies")} in a row made no progress " +
                    $"(no request checkpointed; MaxDeliveriesWithoutProgress {_options.MaxDeliveriesWithoutProgress})", cancellationToken);
            }
            if (message.DeliveryCount >= _options.ResendAfterDeliveries)
            {
                await StopAsync(renewal, renewLoop);
                return await ResendAsync(message, shard, attempt, done.Count, cancellationToken);
            }
            CrashPoints.Hit(CrashPoints.ShardStart, shard.ShardIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (await NotToRunAsync(shard.JobId, cancellationToken) is { } status)
            {
                // the report counts what an earlier delivery ran, if any
                await WriteReportAsync(shard, ShardState.Skipped, $"not run: the job is {status.SnakeCase()}", cancellationToken);
                await StopAsync(renewal, renewLoop);
                return await SettleAsync(() => _queue.CompleteAsync(message, CancellationToken.None), new ShardResult(ShardDisposition.Skipped, shard, 0));
            }
            int executed = await RunAsync(shard, done, await ProgressOfAsync(shard, done.Count, cancellationToken), dispatched, cancellationToken);
            await WriteReportAsync(shard, ShardState.Completed, null, cancellationToken);
            await StopAsync(renewal, renewLoop);
            var result = await SettleAsync(() => _queue.CompleteAsync(message, CancellationToken.None), new ShardResult(ShardDisposition.Completed, shard, executed));
            if (result.Disposition == ShardDisposition.Completed)
                CrashPoints.Hit(CrashPoints.ShardAfterComplete, shard.ShardIndex.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return result;
        }
        catch (Exception e) when (e is not WorkQueueException)
        {
            await StopAsync(renewal, renewLoop);
            bool cancelled = e is OperationCanceledException && cancellationToken.IsCancellationRequested;
            if (cancelled && attempt is not null) await ReleaseAsync(shard, attempt); // given back on a stop: this delivery does not count
            return await SettleAsync(() => _queue.AbandonAsync(message, CancellationToken.None), new ShardResult(ShardDisposition.Abandoned, shard, 0, cancelled ? null : e));
        }
    }

    /// <summary>Records a delivery as given back, best effort (a stopping process may lose the store first: it then counts).</summary>
    private async Task ReleaseAsync(Shard shard, ShardAttempt attempt)
    {
        try
        {
            var done = await _checkpoints.GetDoneCustomIdsAsync(shard.JobId, shard.ShardIndex, CancellationToken.None);
            await _attempts.ReleaseAsync(shard, attempt, done.Count, CancellationToken.None);
        }
        catch (Exception e) when (e is BlobStoreException or CheckpointStoreException) { }
    }

    /// <summary>
    /// Sends the shard again as its next generation (a message id the queue has not seen) and completes this delivery,
    /// which is given back rather than run: the fresh message's delivery count starts again, its progress record does not.
    /// </summary>
    private async Task<ShardResult> ResendAsync(ReceivedMessage message, Shard shard, ShardAttempt attempt, int numDone, CancellationToken cancellationToken)
    {
        await _attempts.ReleaseAsync(shard, attempt, numDone, cancellationToken);
        try { await _queue.SendAsync([new OutgoingMessage(ShardAttempts.MessageIdOf(shard, attempt.Generation + 1), message.Body)], cancellationToken); }
        catch (WorkQueueException e)
        {
            // not sent: this message stays the shard's, delivered again
            return await SettleAsync(() => _queue.AbandonAsync(message, CancellationToken.None), new ShardResult(ShardDisposition.Abandoned, shard, 0, e));
        }
        return await SettleAsync(() => _queue.CompleteAsync(message, CancellationToken.None), new ShardResult(ShardDisposition.Resent, shard, 0));
    }

    /// <summary>
    /// The job's status when its shards are no longer to run: the user cancelled it (cancelling, cancelled), or it
    /// expired (its files are written). Null: run the shard — also when the job cannot be found, which is not this
    /// worker's to judge. One read of the job per shard; a shard already running when the job is cancelled finishes.
    /// </summary>
    private async Task<JobStatus?> NotToRunAsync(string jobId, CancellationToken cancellationToken) =>
        await _jobs.GetAsync(jobId, cancellationToken) is { Job.Status: JobStatus.Cancelling or JobStatus.Cancelled or JobStatus.Expired } stored
            ? stored.Job.Status
            : null;

    /// <summary>The shard's report from its checkpointed outcomes (deduplicated); the first report written wins.</summary>
    private async Task WriteReportAsync(Shard shard, ShardState state, string? reason, CancellationToken cancellationToken)
    {
        var outcomes = await OutcomeDeduplication.DeduplicateAsync(
            _checkpoints.ReadShardAsync(shard.JobId, shard.ShardIndex, cancellationToken), cancellationToken);
        await _reports.TryWriteAsync(ShardReports.Summarize(shard, state, reason, outcomes), cancellationToken);
    }

    /// <summary>Settles the message as <paramref name="settled"/> says; a lock lost before that (expired, or the message
    /// settled by another receiver) makes it <see cref="ShardDisposition.LockLost"/>: whoever holds it now finishes it.</summary>
    private static async Task<ShardResult> SettleAsync(Func<Task> settle, ShardResult settled)
    {
        try
        {
            await settle();
            return settled;
        }
        catch (WorkQueueException e) when (e.Reason == WorkQueueFailure.LockLost)
        {
            return settled with { Disposition = ShardDisposition.LockLost, Error = e };
        }
    }

    /// <summary>The shard's progress record, counting from what earlier deliveries checkpointed (read only when there is some).</summary>
    private async Task<ShardProgress> ProgressOfAsync(Shard shard, int numDone, CancellationToken cancellationToken)
    {
        var progress = new ShardProgress(_blobs, shard, _time, _options.ProgressInterval);
        if (numDone > 0)
            progress.Seed(await OutcomeDeduplication.DeduplicateAsync(_checkpoints.ReadShardAsync(shard.JobId, shard.ShardIndex, cancellationToken), cancellationToken));
        return progress;
    }

    private async Task<int> RunAsync(Shard shard, IReadOnlySet<string> done, ShardProgress progress, TaskCompletionSource? dispatched, CancellationToken cancellationToken)
    {
        var seen = new HashSet<string>(done, StringComparer.Ordinal);
        var inFlight = new List<Task>();
        int executed = 0;
        var numUndispatched = 1; // the reader's own hold, released once every line is read
        void OnDispatched()
        {
            if (Interlocked.Decrement(ref numUndispatched) == 0) dispatched?.TrySetResult();
        }
        await foreach (var parsed in shard.ReadAsync(_blobs, _parser, cancellationToken))
        {
            if (!seen.Add(parsed.CustomId)) continue;
            if (parsed.Request is { } request)
            {
                executed++;
                Interlocked.Increment(ref numUndispatched);
                inFlight.Add(ExecuteAsync(shard, request, progress, OnDispatched, cancellationToken));
            }
            else inFlight.Add(CheckpointAsync(shard, InvalidOutcome(parsed.Error!), progress, cancellationToken));
        }
        OnDispatched();
        await Task.WhenAll(inFlight);
        return executed;
    }

    private async Task ExecuteAsync(Shard shard, BatchRequest request, ShardProgress progress, Action onDispatched, CancellationToken cancellationToken)
    {
        await Task.Yield(); // start every request before any completes, even with a synchronous executor prologue
        RequestOutcome outcome;
        try
        {
            // the executor's synchronous part (the engine takes the request) has run once its task exists
            Task<RequestOutcome> execution;
            try { execution = _executor.ExecuteAsync(request, cancellationToken); }
            finally { onDispatched(); }
            outcome = await execution;
        }
        catch (Exception e) when (!(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            outcome = RequestOutcome.Failure(request, RequestErrorCode.ExecutionFailed, e.Message, _time.GetUtcNow());
        }
        CrashPoints.Hit(CrashPoints.RequestBeforeCheckpoint, request.CustomId);
        await CheckpointAsync(shard, outcome, progress, cancellationToken);
        CrashPoints.Hit(CrashPoints.RequestAfterCheckpoint, request.CustomId);
    }

    /// <summary>Checkpoints the outcome, then counts it in the shard's progress record (which counts only what is durable).</summary>
    private async Task CheckpointAsync(Shard shard, RequestOutcome outcome, ShardProgress progress, CancellationToken cancellationToken)
    {
        await _checkpoints.AppendAsync(shard.JobId, shard.ShardIndex, outcome with { ShardIndex = shard.ShardIndex }, cancellationToken);
        await progress.RecordAsync(outcome, cancellationToken);
    }

    private RequestOutcome InvalidOutcome(LineError error) => new()
    {
        CustomId = error.CustomId, LineNumber = error.LineNumber, Endpoint = BatchEndpoint.Completions,
        CreatedAt = _time.GetUtcNow().ToUnixTimeSeconds(), ErrorCode = RequestErrorCode.InvalidRequest,
        ErrorMessage = $"line passed validation but no longer parses ({error.Code.SnakeCase()}: {error.Message})",
    };

    private async Task<ShardResult> DeadLetterAsync(ReceivedMessage message, Shard shard, string reason, CancellationToken cancellationToken)
    {
        await WriteReportAsync(shard, ShardState.DeadLettered, reason, cancellationToken);
        return await SettleAsync(() => _queue.DeadLetterAsync(message, reason, CancellationToken.None), new ShardResult(ShardDisposition.DeadLettered, shard, 0));
    }

    private async Task RenewLockLoopAsync(ReceivedMessage message, CancellationToken stop)
    {
        if (_options.LockRenewalInterval == TimeSpan.Zero) return;
        try
        {
            while (true)
            {
                await Task.Delay(_options.LockRenewalInterval, _time, stop);
                await _queue.RenewLockAsync(message, stop);
            }
        }
        catch (OperationCanceledException) { }
        catch (WorkQueueException) { } // lock lost: keep working; results are idempotent and Complete reports it
    }

    private static async Task StopAsync(CancellationTokenSource renewal, Task renewLoop)
    {
        await renewal.CancelAsync();
        await renewLoop;
    }
}
