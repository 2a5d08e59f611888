using System.Runtime.CompilerServices;
using System.Text.Json;
using VicunaBatch.Core.Formats;
using VicunaBatch.Core.Jobs;
using VicunaBatch.Core.Ports;
using VicunaBatch.Core.Results;

namespace VicunaBatch.Core.Services;

public enum ShardState
{
    Completed,
    DeadLettered,
    /// <summary>Not run (its job was cancelled or had expired); the counts are what an earlier delivery ran.</summary>
    Skipped,
}

/// <summary>Written once when a shard is settled; its counts feed progress (granularity: one shard).</summary>
public sealed record ShardReport(Shard Shard, ShardState State, string? Reason, int Completed, int Failed, long InputTokens, long OutputTokens);

/// <summary>Shard reports at <c>jobs/{id}/shards/{index}.json</c>, create-only (the first report wins).</summary>
public sealed class ShardReports(IBlobStore blobs)
{
    /// <summary>Writes the report unless one exists; returns false when one did.</summary>
    public async Task<bool> TryWriteAsync(ShardReport report, CancellationToken cancellationToken = default)
    {
        var name = JobIds.ShardReportBlob(report.Shard.JobId, report.Shard.ShardIndex);
        try
        {
            await blobs.PutBytesAsync(name, JsonSerializer.SerializeToUtf8Bytes(report, ServicesJson.Options), BlobCondition.IfNotExists, cancellationToken);
            return true;
        }
        catch (BlobStoreException e) when (e.Reason == BlobStoreFailure.ConditionFailed)
        {
            return false;
        }
    }

    /// <summary>All reports of the job in shard order.</summary>
    public async IAsyncEnumerable<ShardReport> ReadAllAsync(string jobId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var names = new List<string>();
        await foreach (var name in blobs.ListAsync(JobIds.ShardReportPrefix(jobId), cancellationToken)) names.Add(name);
        names.Sort(StringComparer.Ordinal);
        foreach (var name in names)
            yield return JsonSerializer.Deserialize<ShardReport>(await blobs.ReadBytesAsync(name, cancellationToken), ServicesJson.Options)!;
    }

    /// <summary>Progress from the plan and the reports so far: one small blob per settled shard.
    /// Lines rejected at validation count as failed from the start.</summary>
    public Task<JobProgress> GetProgressAsync(string jobId, CancellationToken cancellationToken = default) =>
        ProgressAsync(jobId, running: false, cancellationToken);

    /// <summary>As <see cref="GetProgressAsync"/>, plus the progress records of the shards still running
    /// (<see cref="ShardProgress"/>), so the counts move per finished request.</summary>
    public Task<JobProgress> GetRunningProgressAsync(string jobId, CancellationToken cancellationToken = default) =>
        ProgressAsync(jobId, running: true, cancellationToken);

    private async Task<JobProgress> ProgressAsync(string jobId, bool running, CancellationToken cancellationToken)
    {
        var plan = await ReadPlanAsync(blobs, jobId, cancellationToken);
        var sum = ShardProgressRecord.None with { Failed = plan.NumInvalid };
        var reported = new HashSet<int>();
        await foreach (var report in ReadAllAsync(jobId, cancellationToken))
        {
            reported.Add(report.Shard.ShardIndex);
            // a request a settled shard never finished counts as failed
            var unfinished = Math.Max(0, report.Shard.NumRequests - report.Completed - report.Failed);
            sum = sum.Plus(new ShardProgressRecord(report.Completed, report.Failed + unfinished, report.InputTokens, report.OutputTokens));
        }
        if (running)
            foreach (var record in await ShardProgress.ReadUnreportedAsync(blobs, jobId, reported, cancellationToken)) sum = sum.Plus(record);
        return new JobProgress(plan.NumTotal, sum.Completed, sum.Failed, sum.InputTokens, sum.OutputTokens, reported.Count, plan.NumShards);
    }

    /// <summary>Report of a shard from its (deduplicated) checkpointed outcomes.</summary>
    public static ShardReport Summarize(Shard shard, ShardState state, string? reason, IEnumerable<RequestOutcome> outcomes)
    {
        var sum = outcomes.Aggregate(ShardProgressRecord.None, (counts, outcome) => counts.Add(outcome));
        return new ShardReport(shard, state, reason, sum.Completed, sum.Failed, sum.InputTokens, sum.OutputTokens);
    }

    public static async Task<JobPlan> ReadPlanAsync(IBlobStore blobs, string jobId, CancellationToken cancellationToken = default) =>
        JsonSerializer.Deserialize<JobPlan>(await blobs.ReadBytesAsync(JobIds.PlanBlob(jobId), cancellationToken), JobsJson.Options)!;
}

/// <summary>Keeps one outcome per custom_id: the first success, else the first failure.</summary>
public static class OutcomeDeduplication
{
    public static async Task<List<RequestOutcome>> DeduplicateAsync(IAsyncEnumerable<RequestOutcome> outcomes, CancellationToken cancellationToken = default)
    {
        var byId = new Dictionary<string, RequestOutcome>(StringComparer.Ordinal);
        await foreach (var outcome in outcomes.WithCancellation(cancellationToken))
            if (!byId.TryGetValue(outcome.CustomId, out var kept) || (!kept.Succeeded && outcome.Succeeded))
                byId[outcome.CustomId] = outcome;
        return byId.Values.OrderBy(o => o.LineNumber).ToList();
    }
}
