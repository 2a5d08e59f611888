using System.Text.Json;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Core.Pipelines;

public enum PipelineTickOutcome
{
    /// <summary>No schedule occurrence since the last tick, and no unfinished run to resume.</summary>
    NotDue,
    /// <summary>The pipeline ran (see <see cref="PipelineTickResult.Run"/>).</summary>
    Ran,
    /// <summary>The run threw; its current run stays and the next tick resumes it.</summary>
    Failed,
}

public sealed record PipelineTickResult(string Pipeline, PipelineTickOutcome Outcome, PipelineRunResult? Run, string? Error);

/// <summary>When a pipeline last ticked here, and when its run last failed: <c>pipelines/{name}/schedule.json</c>.</summary>
public sealed record PipelineScheduleMark(DateTimeOffset LastTickAt, DateTimeOffset? LastFailedAt = null);

/// <summary>What a tick does (<see cref="PipelineTicker.Decide"/>).</summary>
public enum ScheduledTick
{
    /// <summary>A first tick: the time is marked, nothing runs (the first run is at the next occurrence).</summary>
    MarkOnly,
    /// <summary>No occurrence since the last tick and nothing to resume (or a failed run still backing off).</summary>
    NotDue,
    /// <summary>Run now: an occurrence fell since the last tick, or an unfinished run is resumed.</summary>
    Run,
}

/// <summary>Options of <see cref="PipelineTicker"/>.</summary>
public sealed class PipelineTickerOptions
{
    /// <summary>After a failed run, how long before a tick resumes it (a schedule occurrence still runs it). Default 5 min.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// The scheduled host's one call, from a frequent timer (the Functions timer, <c>serve --pipelines</c>): each pipeline
/// whose cron schedule had an occurrence since its last tick — or that has an unfinished run to resume — runs now. The
/// first tick of a new pipeline only marks the time (it runs at its next occurrence). A pipeline without a schedule never
/// runs here. One pipeline's failure does not stop the others; a failed run is resumed after <see cref="PipelineTickerOptions.RetryDelay"/>.
/// </summary>
public sealed class PipelineTicker(IBlobStore state, Func<PipelineDefinition, PipelineRunner> runnerFor, TimeProvider time, PipelineTickerOptions? options = null)
{
    private readonly PipelineTickerOptions _options = options ?? new();

    public static string MarkBlob(string pipelineName) => $"pipelines/{pipelineName}/schedule.json";

    public async Task<IReadOnlyList<PipelineTickResult>> TickAsync(IReadOnlyList<PipelineDefinition> definitions, CancellationToken cancellationToken = default)
    {
        var results = new List<PipelineTickResult>();
        foreach (var definition in definitions)
        {
            cancellationToken.ThrowIfCancellationRequested();
            results.Add(await TickAsync(definition, cancellationToken));
        }
        return results;
    }

    private async Task<PipelineTickResult> TickAsync(PipelineDefinition definition, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (definition.Schedule is not { } schedule) return new(definition.Name, PipelineTickOutcome.NotDue, null, null);
        var mark = await ReadMarkAsync(definition.Name, cancellationToken);
        bool resume = await new PipelineState(state, definition.Name, time).ReadCurrentRunAsync(cancellationToken) is not null;
        switch (Decide(schedule, mark, resume, now, _options.RetryDelay))
        {
            case ScheduledTick.MarkOnly:
                await WriteMarkAsync(definition.Name, now, cancellationToken);
                return new(definition.Name, PipelineTickOutcome.NotDue, null, null);
            case ScheduledTick.NotDue:
                return new(definition.Name, PipelineTickOutcome.NotDue, null, null);
        }
        try
        {
            var run = await runnerFor(definition).RunAsync(cancellationToken);
            // a locked tick leaves the mark to the run that holds the lock
            if (run.Status != PipelineRunStatus.Locked) await WriteMarkAsync(definition.Name, now, cancellationToken);
            return new(definition.Name, PipelineTickOutcome.Ran, run, null);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            await WriteMarkAsync(definition.Name, now, cancellationToken, failed: true);
            return new(definition.Name, PipelineTickOutcome.Failed, null, e.Message);
        }
    }

    /// <summary>
    /// The one rule of a scheduled host's tick, for pipelines and for anything else run on a <see cref="PipelineSchedule"/>
    /// (<c>serve</c>'s scheduled evaluations): the first tick only marks the time; then a run starts at each occurrence
    /// since the last tick, and an unfinished run is resumed at once, or <paramref name="retryDelay"/> after it failed.
    /// </summary>
    public static ScheduledTick Decide(PipelineSchedule schedule, PipelineScheduleMark? mark, bool hasUnfinishedRun, DateTimeOffset now, TimeSpan retryDelay)
    {
        if (mark is null && !hasUnfinishedRun) return ScheduledTick.MarkOnly;
        bool due = mark is not null && schedule.IsDue(mark.LastTickAt, now);
        bool backingOff = mark?.LastFailedAt is { } failedAt && now - failedAt < retryDelay;
        return due || (hasUnfinishedRun && !backingOff) ? ScheduledTick.Run : ScheduledTick.NotDue;
    }

    private async Task<PipelineScheduleMark?> ReadMarkAsync(string name, CancellationToken cancellationToken) =>
        await state.ExistsAsync(MarkBlob(name), cancellationToken)
            ? JsonSerializer.Deserialize<PipelineScheduleMark>(await state.ReadBytesAsync(MarkBlob(name), cancellationToken), PipelinesJson.Options)
            : null;

    private Task WriteMarkAsync(string name, DateTimeOffset at, CancellationToken cancellationToken, bool failed = false) =>
        state.PutBytesAsync(MarkBlob(name), JsonSerializer.SerializeToUtf8Bytes(new PipelineScheduleMark(at, failed ? at : null), PipelinesJson.Options),
            BlobCondition.None, cancellationToken);
}

/// <summary>Options of <see cref="PollingJobDriver"/>.</summary>
public sealed class PollingJobDriverOptions
{
    /// <summary>How long one tick waits for a stage's job before leaving it to the next tick. Default 4 min (under a Functions timeout).</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>Between job store reads. Default 2 s.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>For hosts where workers and the finalizer run the jobs (Functions, <c>serve</c>): reads the job until it ends or <see cref="PollingJobDriverOptions.MaxWait"/> passes.</summary>
public sealed class PollingJobDriver(IJobStore jobs, TimeProvider time, PollingJobDriverOptions? options = null) : IJobDriver
{
    private readonly PollingJobDriverOptions _options = options ?? new();

    public async Task<BatchJob> RunToEndAsync(BatchJob job, CancellationToken cancellationToken = default)
    {
        var deadline = time.GetUtcNow() + _options.MaxWait;
        while (!JobStateMachine.IsTerminal(job.Status) && time.GetUtcNow() < deadline)
        {
            await Task.Delay(_options.PollInterval, time, cancellationToken);
            job = (await jobs.GetAsync(job.Id, cancellationToken))?.Job ?? job;
        }
        return job;
    }
}
