using System.Diagnostics;

namespace VicunaBatch.Core.Diagnostics;

/// <summary>
/// Named places where the fault tests kill a process (docs/reliability.md). With
/// <c>VICUNABATCH_CRASH_AT=POINT[@DETAIL][#N]</c> in the environment, the process sends itself SIGKILL — no
/// finally block, flush or shutdown hook runs, as when a machine dies — the N-th time (default: the first) it
/// reaches POINT, counting only hits with that DETAIL when one is given (a custom_id, a shard index, a job id).
/// Unset, as in production, a hit costs one read of a static field.
/// </summary>
public static class CrashPoints
{
    public const string Variable = "VICUNABATCH_CRASH_AT";

    /// <summary>A request's result exists in memory only (detail: custom_id).</summary>
    public const string RequestBeforeCheckpoint = "request.before-checkpoint";

    /// <summary>A request's result is checkpointed; its shard message is not settled (detail: custom_id).</summary>
    public const string RequestAfterCheckpoint = "request.after-checkpoint";

    /// <summary>A shard was received and is about to run (detail: shard index).</summary>
    public const string ShardStart = "shard.start";

    /// <summary>A shard's message was completed; the shard-done event is not sent yet (detail: shard index).</summary>
    public const string ShardAfterComplete = "shard.after-complete";

    /// <summary>A job's output and error files are written; job.json does not say completed yet (detail: job id).</summary>
    public const string JobAfterFiles = "job.after-files";

    /// <summary>job.json says the job ended; its webhook event is not in the outbox yet (detail: job id).</summary>
    public const string JobAfterEnd = "job.after-end";

    /// <summary>A webhook receiver answered 2xx; the attempt is not recorded and the outbox message not settled (detail: job id).</summary>
    public const string WebhookAfterSend = "webhook.after-send";

    public static readonly IReadOnlyList<string> All =
        [RequestBeforeCheckpoint, RequestAfterCheckpoint, ShardStart, ShardAfterComplete, JobAfterFiles, JobAfterEnd, WebhookAfterSend];

    private static readonly CrashPlan? Plan = CrashPlan.Parse(Environment.GetEnvironmentVariable(Variable));
    private static int _numHits;

    public static void Hit(string point, string? detail = null)
    {
        if (Plan is not { } plan || !plan.Matches(point, detail)) return;
        if (Interlocked.Increment(ref _numHits) != plan.Hit) return;
        Console.Error.WriteLine($"{Variable}: reached {point}{(detail is null ? "" : "@" + detail)} (hit {plan.Hit}): killing this process");
        Console.Error.Flush();
        Process.GetCurrentProcess().Kill(); // SIGKILL on Unix
        Thread.Sleep(Timeout.Infinite);
    }
}

/// <summary>A parsed <see cref="CrashPoints.Variable"/> value.</summary>
public sealed record CrashPlan(string Point, string? Detail, int Hit)
{
    public bool Matches(string point, string? detail) => point == Point && (Detail is null || Detail == detail);

    /// <summary>Null for an unset or empty value; a malformed one fails loudly, so a typo never silently disables a fault test.</summary>
    public static CrashPlan? Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        var rest = value.Trim();
        int hit = 1;
        if (rest.LastIndexOf('#') is var hash and >= 0)
        {
            if (!int.TryParse(rest[(hash + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out hit) || hit < 1)
                throw new ArgumentException($"{CrashPoints.Variable}=\"{value}\": the count after '#' must be a whole number >= 1");
            rest = rest[..hash];
        }
        string? detail = null;
        if (rest.IndexOf('@') is var at and >= 0) (rest, detail) = (rest[..at], rest[(at + 1)..]);
        if (!CrashPoints.All.Contains(rest))
            throw new ArgumentException($"{CrashPoints.Variable}=\"{value}\": unknown crash point \"{rest}\" (known: {string.Join(", ", CrashPoints.All)})");
        return new CrashPlan(rest, detail, hit);
    }
}
