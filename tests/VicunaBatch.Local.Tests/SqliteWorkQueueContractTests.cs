using VicunaBatch.Contracts;
using VicunaBatch.Core.Ports;

namespace VicunaBatch.Local.Tests;

/// <summary>
/// The work-queue contract on <see cref="SqliteWorkQueue"/>: a fresh database per test, the clock moved by hand, and each
/// client with its own <see cref="ReceiverLease"/>, as each process of a data folder has.
/// </summary>
public sealed class SqliteWorkQueueContractTests : WorkQueueContract
{
    private readonly TempFolder _folder = new();
    private readonly ManualTimeProvider _time = new(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000));
    private readonly List<ReceiverLease> _leases = [];

    protected override TimeSpan LockDuration => TimeSpan.FromSeconds(30);

    protected override IWorkQueue Open()
    {
        var lease = ReceiverLease.Take(_folder.Combine("receivers"));
        _leases.Add(lease);
        return Queue(lease);
    }

    protected override DateTimeOffset Now => _time.GetUtcNow();

    protected override Task PassAsync(TimeSpan time)
    {
        _time.Advance(time);
        return Task.CompletedTask;
    }

    protected override async Task<IReadOnlyList<DeadLetterSeen>> ReadDeadLettersAsync() =>
        (await Queue(lease: null).ReadDeadLettersAsync()).Select(d => new DeadLetterSeen(d.MessageId, d.Reason, d.DeliveryCount)).ToList();

    public override Task DisposeAsync()
    {
        _leases.ForEach(lease => lease.Dispose());
        _folder.Dispose();
        return Task.CompletedTask;
    }

    private SqliteWorkQueue Queue(ReceiverLease? lease) => new(new SqliteWorkQueueOptions
    {
        DatabasePath = _folder.Combine("queue.db"), LockDuration = LockDuration, Lease = lease,
    }, _time);
}
